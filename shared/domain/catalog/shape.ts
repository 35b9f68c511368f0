/**
 * The shape check of a catalog (the zod schema of schema.ts), entry by
 * entry: every shape mistake is reported once, in words an author can act
 * on, and the entries that passed go on to the deeper checks (CEL, Liquid,
 * references, compile.ts) while an entry whose own shape failed is left out
 * of them (references to its id are not reported as unknown).
 *
 * One message per mistake: a union reports the branch of the value's type
 * (or one "expected X or Y"), a field with several failed checks reports
 * the first, and a misspelled field is one "unknown field" with its likely
 * name, not also "required" for the name it missed.
 */
import type * as z from 'zod';
import { formatPath } from '../issues.ts';
import type { CatalogProblem } from './compiled.ts';
import { catalogSchema, type CatalogDocument } from './schema.ts';
import { didYouMean } from './suggest.ts';

/** Ids of entries left out of the deeper checks because their own shape failed, per kind. */
export interface UncheckedIds {
  readonly tags: ReadonlySet<string>;
  readonly segments: ReadonlySet<string>;
  readonly personas: ReadonlySet<string>;
  readonly models: ReadonlySet<string>;
  readonly actions: ReadonlySet<string>;
}

/** A shape problem with its path as parts (for locating it in the text). */
export interface ShapeProblem extends CatalogProblem {
  readonly parts: readonly PropertyKey[];
  /** A field the schema does not know: left out of the entry, which is still checked (`rest` is the problem as reported). */
  readonly unknownField?: boolean;
}

export interface ShapeResult {
  /** The document of the entries that passed (defaults applied); absent when the catalog's own frame failed. */
  readonly doc?: CatalogDocument;
  readonly problems: readonly ShapeProblem[];
  readonly unchecked: UncheckedIds;
  /**
   * For each list some entries were left out of (`actions`,
   * `policies.suppressions`): the index in the text of each entry kept, so
   * the deeper checks' paths name the entry as written.
   */
  readonly kept: ReadonlyMap<string, readonly number[]>;
}

/** The lists whose entries are checked one by one. */
const ENTRY_LISTS = [
  ['tags'],
  ['segments'],
  ['exclusiveGroups'],
  ['personas'],
  ['models'],
  ['actions'],
  ['experiments'],
  ['triggers'],
  ['policies', 'suppressions'],
  ['policies', 'channelCaps'],
  ['policies', 'quietHours'],
  ['arbitration', 'placements'],
] as const;

const UNCHECKED_KINDS = new Set(['tags', 'segments', 'personas', 'models', 'actions']);

type Issue = z.core.$ZodIssue;

// --- the schema, walked by path (for the fields an object knows)

interface Def {
  type: string;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  innerType?: z.ZodType;
  in?: z.ZodType;
  options?: z.ZodType[];
  valueType?: z.ZodType;
}
const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** The concrete schemas a schema may be (optional, default, pipe and union unwrapped). */
function unwrap(schema: z.ZodType): z.ZodType[] {
  const def = defOf(schema);
  if (def.innerType) return unwrap(def.innerType);
  if (def.type === 'pipe' && def.in) return unwrap(def.in);
  if (def.type === 'union' && def.options) return def.options.flatMap(unwrap);
  return [schema];
}

/** The field names of the object(s) the schema has at `path`. */
export function knownFields(path: readonly PropertyKey[]): string[] {
  let current: z.ZodType[] = unwrap(catalogSchema);
  for (const part of path) {
    const next: z.ZodType[] = [];
    for (const schema of current) {
      const def = defOf(schema);
      if (def.type === 'object' && typeof part === 'string' && def.shape && Object.hasOwn(def.shape, part)) next.push(def.shape[part] as z.ZodType);
      else if (def.type === 'array' && typeof part === 'number' && def.element) next.push(def.element);
      else if (def.type === 'record' && typeof part === 'string' && def.valueType) next.push(def.valueType);
    }
    current = next.flatMap(unwrap);
  }
  return [...new Set(current.flatMap((s) => (defOf(s).type === 'object' ? Object.keys(defOf(s).shape ?? {}) : [])))];
}

// --- issues → problems

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let at = root;
  for (const part of path) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, part)) return undefined;
    at = (at as Record<PropertyKey, unknown>)[part];
  }
  return at;
}

const TYPE_WORDS: Record<string, string> = {
  string: 'a text',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
  object: 'a mapping (fields)',
  array: 'a list',
  record: 'a mapping',
};
const typeWord = (type: string) => TYPE_WORDS[type] ?? type;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the text ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  return `${typeof value === 'number' ? 'the number' : typeof value} ${String(value)}`;
}

function problem(parts: readonly PropertyKey[], message: string, hint?: string): ShapeProblem {
  return { parts, path: formatPath(parts), message: hint ? `${message}; ${hint}` : message, ...(hint ? { hint } : {}) };
}

/** Whether a union branch failed only because the value is of another type. */
const otherType = (branch: readonly Issue[]) => branch.length === 1 && branch[0]?.code === 'invalid_type' && branch[0].path.length === 0;

function issueProblems(issue: Issue, prefix: readonly PropertyKey[], root: unknown, out: ShapeProblem[]): void {
  const parts = [...prefix, ...issue.path];
  switch (issue.code) {
    case 'invalid_union': {
      const branches = (issue as { errors?: Issue[][] }).errors ?? [];
      const own = branches.filter((b) => !otherType(b));
      if (own.length === 0) {
        const expected = branches.map((b) => typeWord(String((b[0] as { expected?: string } | undefined)?.expected)));
        out.push(problem(parts, `expected ${[...new Set(expected)].join(' or ')}, got ${describe(valueAt(root, parts))}`));
        return;
      }
      // The branch of the value's type; among several, the one with the fewest mistakes.
      const best = own.reduce((a, b) => (b.length < a.length ? b : a));
      for (const sub of best) issueProblems(sub, parts, root, out);
      return;
    }
    case 'unrecognized_keys': {
      const known = knownFields(parts);
      for (const key of issue.keys) {
        const hint = didYouMean(key, known);
        out.push({ ...problem([...parts, key], `unknown field "${key}"`, hint), unknownField: true });
      }
      return;
    }
    case 'invalid_type': {
      const value = valueAt(root, parts);
      const expected = typeWord(issue.expected);
      out.push(problem(parts, value === undefined ? `required: ${expected}` : `expected ${expected}, got ${describe(value)}`));
      return;
    }
    case 'invalid_value': {
      const value = valueAt(root, parts);
      const values = issue.values.map(String);
      // With one allowed value the message already names it: no "did you mean" repeating it.
      const hint = typeof value === 'string' && values.length > 1 ? didYouMean(value, values) : undefined;
      const list = values.map((v) => JSON.stringify(v)).join(', ');
      const got = value === undefined ? '' : `, got ${describe(value)}`;
      out.push(problem(parts, values.length === 1 ? `must be ${list}${got}` : `must be one of ${list}${got}`, hint));
      return;
    }
    case 'too_big':
    case 'too_small': {
      const big = issue.code === 'too_big';
      const limit = Number(big ? issue.maximum : issue.minimum);
      const inclusive = issue.inclusive !== false;
      const value = valueAt(root, parts);
      const bound = big ? (inclusive ? 'at most' : 'less than') : inclusive ? 'at least' : 'more than';
      if (issue.origin === 'string' && typeof value === 'string') {
        out.push(problem(parts, !big && limit === 1 ? 'must not be empty' : `must be ${bound} ${limit} characters (it has ${value.length})`));
      } else if (issue.origin === 'array' && Array.isArray(value)) {
        out.push(problem(parts, `must have ${bound} ${limit} item${limit === 1 ? '' : 's'} (it has ${value.length})`));
      } else if (issue.origin === 'number' || issue.origin === 'int') {
        out.push(problem(parts, `must be ${bound} ${limit}, got ${describe(value)}`));
      } else out.push(problem(parts, issue.message));
      return;
    }
    default:
      out.push(problem(parts, issue.message));
  }
}

/** Every shape mistake once: the first problem per path, and a misspelled required field as its "unknown field" only. */
export function shapeProblems(issues: readonly Issue[], root: unknown): ShapeProblem[] {
  const all: ShapeProblem[] = [];
  for (const issue of issues) issueProblems(issue, [], root, all);
  const suggested = new Set(
    all.filter((p) => p.unknownField && p.hint).map((p) => `${formatPath(p.parts.slice(0, -1))}\u0000${/"(.*)"/.exec(p.hint ?? '')?.[1]}`),
  );
  const missing = new Set(
    all.filter((p) => p.message.startsWith('required:')).map((p) => `${formatPath(p.parts.slice(0, -1))}\u0000${String(p.parts.at(-1))}`),
  );
  const seen = new Set<string>();
  return all.flatMap((p) => {
    if (seen.has(p.path)) return [];
    seen.add(p.path);
    const key = `${formatPath(p.parts.slice(0, -1))}\u0000${String(p.parts.at(-1))}`;
    if (p.message.startsWith('required:') && suggested.has(key)) return [];
    // A misspelled required field: its entry is incomplete, so it fails like any other mistake.
    if (p.unknownField && missing.has(`${formatPath(p.parts.slice(0, -1))}\u0000${/"(.*)"/.exec(p.hint ?? '')?.[1]}`)) return [{ ...p, unknownField: false }];
    return [p];
  });
}

// --- leaving failed entries out

function entryOf(path: readonly PropertyKey[]): { list: string; at: readonly string[]; index: number } | undefined {
  for (const list of ENTRY_LISTS) {
    const index = path[list.length];
    if (typeof index === 'number' && list.every((part, i) => path[i] === part)) return { list: list.join('.'), at: list, index };
  }
  return undefined;
}

/** The object holding `path`'s last part, created in the copy if it must be (undefined: not an object). */
function holderOf(root: Record<string, unknown>, path: readonly PropertyKey[]): Record<PropertyKey, unknown> | undefined {
  let at: unknown = root;
  for (const part of path.slice(0, -1)) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<PropertyKey, unknown>)[part];
  }
  return at !== null && typeof at === 'object' && !Array.isArray(at) ? (at as Record<PropertyKey, unknown>) : undefined;
}

function idOf(entry: unknown, list: string): string | undefined {
  if (list === 'tags' && typeof entry === 'string') return entry;
  const id = entry !== null && typeof entry === 'object' ? (entry as { id?: unknown }).id : undefined;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Check the shape of a parsed catalog (a plain object) entry by entry. Each
 * round leaves out the entries that failed (and resets a failed field
 * outside the entries to its default) and checks the rest again, until the
 * rest passes (at most three rounds; a frame that still fails gives no
 * document).
 */
export function checkShape(value: Record<string, unknown>): ShapeResult {
  const problems: ShapeProblem[] = [];
  const unchecked = { tags: new Set<string>(), segments: new Set<string>(), personas: new Set<string>(), models: new Set<string>(), actions: new Set<string>() };
  const kept = new Map<string, number[]>();
  let current: Record<string, unknown> = value;
  for (let round = 0; round < 3; round++) {
    const parsed = catalogSchema.safeParse(current);
    if (parsed.success) return { doc: parsed.data, problems, unchecked, kept };
    const found = shapeProblems(parsed.error.issues, current);
    // Later rounds see the entries kept: their paths are the text's through `kept`.
    problems.push(...found.map((p) => (kept.size === 0 ? p : { ...p, path: remapPath(p.path, kept), parts: remapParts(p.parts, kept) })));
    let copy: Record<string, unknown>;
    try {
      copy = structuredClone(current);
    } catch {
      return { problems, unchecked, kept };
    }
    const dropped = new Map<string, { at: readonly string[]; indexes: Set<number> }>();
    // An unknown field is left out and its entry still checked; any other mistake leaves its entry out.
    const entryKey = (e: ReturnType<typeof entryOf>) => (e ? `${e.list}[${e.index}]` : '');
    const failed = new Set(found.filter((p) => !p.unknownField).map((p) => entryKey(entryOf(p.parts))));
    for (const p of found) {
      const entry = entryOf(p.parts);
      if (p.unknownField && !(entry && failed.has(entryKey(entry)))) {
        const holder = holderOf(copy, p.parts);
        if (holder) delete holder[p.parts.at(-1) as PropertyKey];
        continue;
      }
      if (entry) {
        const d = dropped.get(entry.list) ?? { at: entry.at, indexes: new Set<number>() };
        d.indexes.add(entry.index);
        dropped.set(entry.list, d);
        continue;
      }
      // Outside the entries: reset the field (its default applies), or the list it is in.
      const firstIndex = p.parts.findIndex((part) => typeof part === 'number');
      const field = firstIndex === -1 ? p.parts : p.parts.slice(0, firstIndex);
      if (field.length === 0) return { problems, unchecked, kept };
      const holder = holderOf(copy, field);
      if (holder) delete holder[field.at(-1) as PropertyKey];
    }
    for (const [list, { at, indexes }] of dropped) {
      const holder = holderOf(copy, at);
      const items = holder?.[at.at(-1) as string];
      if (!Array.isArray(items)) continue;
      const kind = at[0] as string;
      const before = kept.get(list) ?? items.map((_, i) => i);
      const keep: number[] = [];
      (holder as Record<string, unknown>)[at.at(-1) as string] = items.filter((item, i) => {
        if (!indexes.has(i)) {
          keep.push(before[i] as number);
          return true;
        }
        const id = idOf(item, kind);
        if (id !== undefined && UNCHECKED_KINDS.has(kind) && at.length === 1) (unchecked[kind as keyof typeof unchecked] as Set<string>).add(id);
        return false;
      });
      kept.set(list, keep);
    }
    current = copy;
  }
  return { problems, unchecked, kept };
}

const LIST_PATH = new RegExp(
  `(?<![\\w.\\]])(${ENTRY_LISTS.map((l) => l.join('\\.')).join('|')})\\[(\\d+)\\]`,
  'g',
);

/** A path (or a message naming paths) of the entries kept, as the text's: `actions[1]` → `actions[3]` when two were left out. */
export function remapPath(text: string, kept: ReadonlyMap<string, readonly number[]>): string {
  if (kept.size === 0) return text;
  return text.replace(LIST_PATH, (whole, list: string, index: string) => {
    const original = kept.get(list)?.[Number(index)];
    return original === undefined ? whole : `${list}[${original}]`;
  });
}

function remapParts(parts: readonly PropertyKey[], kept: ReadonlyMap<string, readonly number[]>): readonly PropertyKey[] {
  const entry = entryOf(parts);
  const original = entry ? kept.get(entry.list)?.[entry.index] : undefined;
  if (!entry || original === undefined) return parts;
  return [...entry.at, original, ...parts.slice(entry.at.length + 1)];
}
