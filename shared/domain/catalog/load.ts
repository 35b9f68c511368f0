/**
 * Loading a catalog: parse (YAML or JSON), check the shape (zod), check every
 * reference, compile every CEL expression and Liquid template, and only when
 * nothing is wrong build the CompiledCatalog. Every problem is reported with
 * its path (`actions[3].eligibility`) and, for expressions and templates, the
 * character position inside it. Nothing partial is ever returned.
 */
import { isScalar, parseDocument, visit } from 'yaml';
import type { ZodError } from 'zod';
import type { CatalogFormat, CatalogProblem, LoadResult } from './compiled.ts';
import { MAX_PROBLEMS, compileDocument, type LoadOptions } from './compile.ts';
import { compileTemplate } from './template.ts';
import { catalogSchema } from './schema.ts';

export { MAX_PROBLEMS, compileDocument, windowToMs, type LoadOptions } from './compile.ts';

/** Largest catalog text accepted (the admin route limits the body to the same). */
export const MAX_CATALOG_BYTES = 5 * 1024 * 1024;

function pathOf(parts: readonly PropertyKey[]): string {
  let out = '';
  for (const part of parts) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}

function zodProblems(error: ZodError): CatalogProblem[] {
  const out: CatalogProblem[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'invalid_union' && 'errors' in issue && Array.isArray(issue.errors)) {
      // Report the branch that got furthest, not "invalid input".
      const branches = issue.errors as { path: PropertyKey[]; message: string }[][];
      const best = branches.reduce((a, b) => (b.length > 0 && (a.length === 0 || b.length < a.length) ? b : a), [] as { path: PropertyKey[]; message: string }[]);
      if (best.length > 0) {
        for (const sub of best) out.push({ path: pathOf([...issue.path, ...sub.path]), message: sub.message });
        continue;
      }
    }
    if (issue.code === 'unrecognized_keys') {
      out.push({ path: pathOf(issue.path), message: `unknown field(s): ${issue.keys.join(', ')}` });
      continue;
    }
    out.push({ path: pathOf(issue.path), message: issue.message });
  }
  return out;
}

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

function duplicateKeyProblems(doc: ReturnType<typeof parseDocument>): CatalogProblem[] {
  const problems: CatalogProblem[] = [];
  visit(doc, {
    Map(_key, map) {
      const seen = new Set<string>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        if (seen.has(key) && problems.length < MAX_PROBLEMS) {
          const position = pair.key.range?.[0];
          problems.push({ path: '(root)', message: `not valid YAML: duplicate key "${key.slice(0, 100)}"`, ...(position === undefined ? {} : { position }) });
        }
        seen.add(key);
      }
    },
  });
  return problems;
}

/** Parse text (or take an object) into a plain value; problems for unparseable text. */
export function parseCatalogText(
  input: string | unknown,
  format: CatalogFormat,
): { ok: true; value: unknown } | { ok: false; problems: CatalogProblem[] } {
  if (format === 'object') return { ok: true, value: input };
  if (typeof input !== 'string') return { ok: false, problems: [{ path: '(root)', message: 'the catalog must be text' }] };
  if (Buffer.byteLength(input, 'utf8') > MAX_CATALOG_BYTES) {
    return { ok: false, problems: [{ path: '(root)', message: `the catalog is larger than ${MAX_CATALOG_BYTES} bytes` }] };
  }
  if (format === 'json') {
    try {
      return { ok: true, value: JSON.parse(input) };
    } catch (error) {
      const m = /position (\d+)/.exec((error as Error).message);
      return {
        ok: false,
        problems: [
          {
            path: '(root)',
            message: `not valid JSON: ${(error as Error).message}`,
            ...(m?.[1] ? { position: Number(m[1]) } : {}),
          },
        ],
      };
    }
  }
  const tooDeep = yamlNestingProblem(input);
  if (tooDeep) return { ok: false, problems: [tooDeep] };
  let doc: ReturnType<typeof parseDocument>;
  try {
    // Duplicate keys are checked below in one pass (the parser's own check is quadratic in a mapping's size).
    doc = parseDocument(input, { prettyErrors: false, uniqueKeys: false, strict: true });
  } catch (error) {
    // e.g. nesting deep enough to exhaust the parser's stack
    return { ok: false, problems: [{ path: '(root)', message: `not valid YAML: ${(error as Error).message.split('\n')[0]}` }] };
  }
  if (doc.errors.length > 0) {
    return {
      ok: false,
      problems: doc.errors.slice(0, MAX_PROBLEMS).map((e) => ({
        path: '(root)',
        message: `not valid YAML: ${e.message.split('\n')[0]}${e.linePos ? ` (line ${e.linePos[0].line}, column ${e.linePos[0].col})` : ''}`,
        position: e.pos[0],
      })),
    };
  }
  const duplicateKeys = duplicateKeyProblems(doc);
  if (duplicateKeys.length > 0) return { ok: false, problems: duplicateKeys };
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }) };
  } catch (error) {
    return { ok: false, problems: [{ path: '(root)', message: `not valid YAML: ${(error as Error).message.split('\n')[0]}` }] };
  }
}

/**
 * Validate and compile a catalog. `format`: `yaml` or `json` for text,
 * `object` for an already-parsed value. Returns every problem (up to
 * MAX_PROBLEMS) or the compiled catalog with its validated document.
 */
export function loadCatalog(input: string | unknown, format: CatalogFormat, options: LoadOptions = {}): LoadResult {
  const parsed = parseCatalogText(input, format);
  if (!parsed.ok) return { ok: false, problems: parsed.problems };
  if (parsed.value === null || typeof parsed.value !== 'object' || Array.isArray(parsed.value)) {
    return { ok: false, problems: [{ path: '(root)', message: 'the catalog must be an object (a mapping)' }] };
  }
  const shape = catalogSchema.safeParse(parsed.value);
  if (!shape.success) return { ok: false, problems: zodProblems(shape.error).slice(0, MAX_PROBLEMS) };
  return compileDocument(shape.data, { compileTemplate, ...options });
}
