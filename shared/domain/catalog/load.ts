/**
 * Loading a catalog: parse (YAML or JSON), check the shape (zod, entry by
 * entry: shape.ts), check every reference, compile every CEL expression and
 * Liquid template of the entries whose shape passed, and only when nothing
 * is wrong build the CompiledCatalog. Every mistake is reported once, with
 * its path (`actions[3].eligibility`), for expressions and templates the
 * character position inside them, for a text its line and column (of the
 * offending token when known: a syntax error, a CEL or Liquid error in a
 * one-line or literal-block value; else of the field) and that line, and a
 * hint for common slips. Nothing partial is ever returned.
 */
import { isAlias, isMap, isNode, isScalar, parseDocument, visit, type Document } from 'yaml';
import { jsonSyntaxError, positionIn } from '../text-position.ts';
import type { CatalogFormat, CatalogProblem, LoadResult } from './compiled.ts';
import { MAX_PROBLEMS, compileDocument, type LoadOptions } from './compile.ts';
import { jsonDuplicateKeys, jsonPlaces, locateProblem, yamlPlaces } from './locate.ts';
import { checkShape, remapPath } from './shape.ts';
import { compileTemplate } from './template.ts';

export { MAX_PROBLEMS, compileDocument, windowToMs, type LoadOptions } from './compile.ts';

/** Largest catalog text accepted (the admin route limits the body to the same). */
export const MAX_CATALOG_BYTES = 5 * 1024 * 1024;

/** Deepest flow nesting (`[`/`{`) and indentation a catalog may use; deeper is refused before parsing. */
export const MAX_YAML_FLOW_DEPTH = 64;
export const MAX_YAML_INDENT = 512;

/** A cheap scan that refuses pathological nesting before the YAML parser sees it. */
function yamlNestingProblem(text: string): CatalogProblem | undefined {
  let depth = 0;
  let quote = '';
  let indent = 0;
  let lineStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\n') {
      lineStart = true;
      indent = 0;
      if (quote === '') continue;
    } else if (lineStart) {
      if (c === ' ') {
        if (++indent > MAX_YAML_INDENT) return { path: '(root)', message: `not valid YAML: indentation deeper than ${MAX_YAML_INDENT}`, position: i };
        continue;
      }
      lineStart = false;
    }
    if (quote !== '') {
      if (c === quote) quote = '';
      else if (c === '\\' && quote === '"') i++;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || text[i - 1] === ' ' || text[i - 1] === '\n')) {
      while (i < text.length && text[i] !== '\n') i++;
      i--;
    } else if (c === '[' || c === '{') {
      if (++depth > MAX_YAML_FLOW_DEPTH) return { path: '(root)', message: `not valid YAML: nesting deeper than ${MAX_YAML_FLOW_DEPTH}`, position: i };
    } else if (c === ']' || c === '}') depth = Math.max(0, depth - 1);
  }
  return undefined;
}

/**
 * The keys of the text's mappings that a catalog cannot have: a key given
 * twice in one mapping, and a key that is not text (`? [a, b]`, `? {a: 1}`,
 * or an alias of either), which a plain object could only hold stringified.
 * Each is `not valid YAML` at the key's offset (`position`).
 */
function keyProblems(doc: ReturnType<typeof parseDocument>): CatalogProblem[] {
  const problems: CatalogProblem[] = [];
  // What each alias stands for, found in one pass in document order as the library's own `Alias.resolve` finds it
  // (the last node anchored with its name before it): resolving each alias key by itself walks the whole document
  // again, quadratic in a text of many alias keys.
  const aliased = new Map<unknown, unknown>();
  const anchored = new Map<string, unknown>();
  visit(doc, {
    Node(_key, node) {
      if (isAlias(node)) aliased.set(node, anchored.get(node.source));
      else if (node.anchor) anchored.set(node.anchor, node);
    },
  });
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (problems.length >= MAX_PROBLEMS) return visit.BREAK;
        const key = isAlias(pair.key) ? aliased.get(pair.key) : pair.key;
        const position = isNode(pair.key) ? pair.key.range?.[0] : undefined;
        if (isNode(key) && !isScalar(key)) {
          const kind = isMap(key) ? 'a mapping' : 'a list';
          problems.push({ path: '(root)', message: `not valid YAML: a key must be text, not ${kind}`, ...(position === undefined ? {} : { position }) });
          continue;
        }
        if (!isScalar(key)) continue;
        const text = String(key.value);
        if (seen.has(text)) {
          problems.push({ path: '(root)', message: `not valid YAML: duplicate key "${text.slice(0, 100)}"`, ...(position === undefined ? {} : { position }) });
        }
        seen.add(text);
      }
      return undefined;
    },
  });
  return problems;
}

/** A parsed catalog text: the plain value, and for locating problems the YAML document (a JSON text is parsed as one on demand). */
type Parsed = { ok: true; value: unknown; doc?: Document } | { ok: false; problems: CatalogProblem[] };

/** A problem of the text itself (`not valid YAML` / `not valid JSON`), at its line and column when its offset is known. */
function syntaxProblem(text: string, message: string, position?: number, language: 'YAML' | 'JSON' = 'YAML'): CatalogProblem {
  if (position === undefined) return { path: '(root)', message: `not valid ${language}: ${message}` };
  // Noticed only at the end of the text (a bracket never closed): shown at the end of its last line with text.
  if (text.slice(position).trim() === '') position = text.trimEnd().length;
  const at = positionIn(text, position);
  return { path: '(root)', message: `not valid ${language}: ${message}`, position, line: at.line, column: at.column, excerpt: at.excerpt };
}

function parseText(input: string | unknown, format: CatalogFormat): Parsed {
  if (format === 'object') return { ok: true, value: input };
  if (typeof input !== 'string') return { ok: false, problems: [{ path: '(root)', message: 'the catalog must be text' }] };
  if (Buffer.byteLength(input, 'utf8') > MAX_CATALOG_BYTES) {
    return { ok: false, problems: [{ path: '(root)', message: `the catalog is larger than ${MAX_CATALOG_BYTES} bytes` }] };
  }
  if (format === 'json') {
    let value: unknown;
    try {
      value = JSON.parse(input);
    } catch (error) {
      const e = jsonSyntaxError(input, error);
      return {
        ok: false,
        problems: [
          {
            path: '(root)',
            message: `not valid JSON: ${e.message}${e.hint ? `; ${e.hint}` : ''}`,
            ...(e.position === undefined ? {} : { position: e.position, line: e.line, column: e.column, excerpt: e.excerpt }),
            ...(e.hint ? { hint: e.hint } : {}),
          },
        ],
      };
    }
    // JSON.parse keeps the last of a key given twice (a second "actions" would drop the first list): refused, as in YAML.
    const duplicateKeys = jsonDuplicateKeys(input, MAX_PROBLEMS).map(({ key, at }) =>
      syntaxProblem(input, `duplicate key "${key.slice(0, 100)}"`, at, 'JSON'),
    );
    return duplicateKeys.length > 0 ? { ok: false, problems: duplicateKeys } : { ok: true, value };
  }
  const tooDeep = yamlNestingProblem(input);
  if (tooDeep) return { ok: false, problems: [syntaxProblem(input, tooDeep.message.replace(/^not valid YAML: /, ''), tooDeep.position)] };
  let doc: ReturnType<typeof parseDocument>;
  try {
    // Duplicate and non-text keys are checked below in one pass (the parser's own check is quadratic in a mapping's size).
    // logLevel 'error': what the library would print as a warning (a collection key stringified) is a problem below, never server output.
    doc = parseDocument(input, { prettyErrors: false, uniqueKeys: false, strict: true, logLevel: 'error' });
  } catch (error) {
    // e.g. nesting deep enough to exhaust the parser's stack
    return { ok: false, problems: [{ path: '(root)', message: `not valid YAML: ${(error as Error).message.split('\n')[0]}` }] };
  }
  if (doc.errors.length > 0) {
    // The parser's follow-on errors on a line already reported are the same mistake.
    const lines = new Set<number>();
    const problems: CatalogProblem[] = [];
    for (const e of doc.errors) {
      const problem = syntaxProblem(input, e.message.split('\n')[0] ?? e.code, e.pos[0]);
      if (lines.has(problem.line ?? 0)) continue;
      lines.add(problem.line ?? 0);
      problems.push(problem);
      if (problems.length >= MAX_PROBLEMS) break;
    }
    return { ok: false, problems };
  }
  const badKeys = keyProblems(doc).map((p) => syntaxProblem(input, p.message.replace(/^not valid YAML: /, ''), p.position));
  if (badKeys.length > 0) return { ok: false, problems: badKeys };
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }), doc };
  } catch (error) {
    return { ok: false, problems: [{ path: '(root)', message: `not valid YAML: ${(error as Error).message.split('\n')[0]}` }] };
  }
}

/** Parse text (or take an object) into a plain value; problems for unparseable text. */
export function parseCatalogText(
  input: string | unknown,
  format: CatalogFormat,
): { ok: true; value: unknown } | { ok: false; problems: CatalogProblem[] } {
  const parsed = parseText(input, format);
  return parsed.ok ? { ok: true, value: parsed.value } : parsed;
}

const byPlace = (a: CatalogProblem, b: CatalogProblem) => (a.line ?? 0) - (b.line ?? 0) || (a.column ?? 0) - (b.column ?? 0);

/**
 * Validate and compile a catalog. `format`: `yaml` or `json` for text,
 * `object` for an already-parsed value. Returns every problem (up to
 * MAX_PROBLEMS, in text order when the catalog is text) or the compiled
 * catalog with its validated document; `warnings` either way.
 */
export function loadCatalog(input: string | unknown, format: CatalogFormat, options: LoadOptions = {}): LoadResult {
  const parsed = parseText(input, format);
  if (!parsed.ok) return { ok: false, problems: parsed.problems };
  if (parsed.value === null || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
    return { ok: false, problems: [{ path: '(root)', message: 'the catalog must be an object (a mapping)' }] };
  }
  const shape = checkShape(parsed.value as Record<string, unknown>);
  const compiled = shape.doc ? compileDocument(shape.doc, { compileTemplate, ...options, unchecked: shape.unchecked }) : undefined;
  const remap = (p: CatalogProblem): CatalogProblem => ({ ...p, path: remapPath(p.path, shape.kept), message: remapPath(p.message, shape.kept) });
  const deeper = compiled && !compiled.ok ? compiled.problems.map(remap) : [];
  // An unknown field is located at its name (stripped after locating).
  let problems: (CatalogProblem & { unknownField?: boolean })[] = [
    ...shape.problems.map(({ parts: _parts, unknownField, ...p }) => (unknownField ? { ...p, unknownField } : p)),
    ...deeper,
  ].slice(0, MAX_PROBLEMS);
  let warnings: CatalogProblem[] = (compiled?.warnings ?? []).map(remap);
  if (typeof input === 'string' && format !== 'object' && (problems.length > 0 || warnings.length > 0)) {
    const places = parsed.doc ? yamlPlaces(parsed.doc) : jsonPlaces(input, [...problems, ...warnings].map((p) => p.path));
    problems = problems.map((p) => locateProblem(input, places, p));
    if (problems.every((p) => p.line !== undefined)) problems.sort(byPlace);
    warnings = warnings.map((p) => locateProblem(input, places, p));
  }
  if (compiled?.ok && problems.length === 0) return warnings.length > 0 ? { ...compiled, warnings } : compiled;
  return { ok: false, problems: problems.map(({ unknownField: _unknown, ...p }) => p), ...(warnings.length > 0 ? { warnings } : {}) };
}
