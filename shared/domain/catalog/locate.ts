/**
 * Where a catalog problem is in the text the author wrote: the 1-based line
 * and column of the offending value (of its name, for an unknown field),
 * moved to the offending token inside a CEL expression or template when the
 * text shows the value as written (one line, plain or quoted; or a literal
 * block `|`), else the start of the value; a path the text does not have
 * (a default) is shown at the nearest enclosing value.
 *
 * YAML: from the parsed document's nodes. JSON: one scan of the text (it
 * has parsed, so it is valid) that records where the values of the
 * problems' paths begin.
 */
import { isMap, isNode, isScalar, Scalar, type Document, type Node as YamlNode } from 'yaml';
import { formatPath } from '../issues.ts';
import { positionIn } from '../text-position.ts';
import type { CatalogProblem } from './compiled.ts';

/** Where a value begins, how it is written, and (in a mapping) where its name begins. */
export interface Place {
  readonly start: number;
  readonly key?: number;
  /** A string value: how its text is written, and the value itself (for a literal block). */
  readonly style?: 'plain' | 'double' | 'single' | 'block';
  readonly value?: string;
}

/** The place of a path (`actions[3].content.email.subject`), undefined when the text does not have it. */
export type Places = (path: string) => Place | undefined;

/** `actions[3].content.email.subject` → ['actions', 3, 'content', 'email', 'subject']. */
function pathParts(path: string): (string | number)[] {
  if (path === '(root)') return [];
  const parts: (string | number)[] = [];
  for (const m of path.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) parts.push(m[2] !== undefined ? Number(m[2]) : (m[1] as string));
  return parts;
}

const STYLES: Partial<Record<string, Place['style']>> = {
  [Scalar.PLAIN]: 'plain',
  [Scalar.QUOTE_DOUBLE]: 'double',
  [Scalar.QUOTE_SINGLE]: 'single',
  [Scalar.BLOCK_LITERAL]: 'block',
};

/** The places of a parsed YAML document. */
export function yamlPlaces(doc: Document): Places {
  return (path) => {
    const parts = pathParts(path);
    const node = (parts.length === 0 ? doc.contents : doc.getIn(parts, true)) as YamlNode | null | undefined;
    const owner = parts.length > 0 ? doc.getIn(parts.slice(0, -1), true) : undefined;
    const keyNode = isMap(owner) ? owner.items.find((pair) => isScalar(pair.key) && pair.key.value === parts.at(-1))?.key : undefined;
    const key = isNode(keyNode) ? keyNode.range?.[0] : undefined;
    const start = isNode(node) ? node.range?.[0] : key;
    if (start === undefined) return undefined;
    const value = isScalar(node) && typeof node.value === 'string' ? node.value : undefined;
    const style = value !== undefined && isScalar(node) && node.type ? STYLES[node.type] : undefined;
    return { start, ...(key === undefined ? {} : { key }), ...(style ? { style, value } : {}) };
  };
}

const WHITESPACE = new Set([' ', '\t', '\n', '\r']);

/** End (exclusive) of the JSON string whose opening quote is at `at`. */
function stringEnd(text: string, at: number): number {
  let i = at + 1;
  while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
  return i + 1;
}

/**
 * The places of the given paths (and of every path enclosing them) in a JSON
 * text that parses: one pass, an explicit stack (no recursion).
 */
export function jsonPlaces(text: string, paths: readonly string[]): Places {
  const wanted = new Set<string>();
  for (const path of paths) {
    const parts = pathParts(path);
    for (let n = 0; n <= parts.length; n++) wanted.add(formatPath(parts.slice(0, n)));
  }
  const found = new Map<string, Place>();
  type Frame = { array: boolean; path: string; index: number; key: string; keyAt: number };
  const stack: Frame[] = [];
  // As formatPath writes paths (`(root)` for the empty one).
  const childPath = (f: Frame) => (f.array ? `${f.path === '(root)' ? '' : f.path}[${f.index}]` : f.path === '(root)' ? f.key : `${f.path}.${f.key}`);
  let i = 0;
  const skip = () => {
    while (i < text.length && WHITESPACE.has(text[i] as string)) i++;
  };
  // At each turn: a value begins at i (after skipping whitespace, and an object's key).
  for (;;) {
    skip();
    const top = stack.at(-1);
    if (top && !top.array) {
      if (text[i] === '}') {
        i++;
        stack.pop();
        if (!closeValue()) break;
        continue;
      }
      const end = stringEnd(text, i);
      top.key = JSON.parse(text.slice(i, end)) as string;
      top.keyAt = i;
      i = end;
      skip();
      i++; // ':'
      skip();
    } else if (top?.array && text[i] === ']') {
      i++;
      stack.pop();
      if (!closeValue()) break;
      continue;
    }
    const path = top ? childPath(top) : '(root)';
    const c = text[i];
    if (wanted.has(path)) {
      found.set(path, { start: i, ...(top && !top.array ? { key: top.keyAt } : {}), ...(c === '"' ? { style: 'double' as const } : {}) });
    }
    if (c === '{' || c === '[') {
      stack.push({ array: c === '[', path, index: 0, key: '', keyAt: i });
      i++;
      continue;
    }
    if (c === '"') i = stringEnd(text, i);
    else while (i < text.length && !WHITESPACE.has(text[i] as string) && text[i] !== ',' && text[i] !== '}' && text[i] !== ']') i++;
    if (!closeValue()) break;
  }
  return (path) => found.get(path);

  /** After a value: a comma moves to the next item; a closing bracket ends its container. False at the end of the text. */
  function closeValue(): boolean {
    for (;;) {
      skip();
      const top = stack.at(-1);
      if (!top || i >= text.length) return false;
      if (text[i] === ',') {
        i++;
        top.index++;
        return true;
      }
      if (text[i] === '}' || text[i] === ']') {
        i++;
        stack.pop();
        continue;
      }
      return true;
    }
  }
}

/**
 * The offsets of the keys a JSON text (that parses) gives again in the same
 * object, at most `max`: one scan, an explicit stack. JSON.parse keeps the
 * last of them silently.
 */
export function jsonDuplicateKeys(text: string, max: number): { key: string; at: number }[] {
  const found: { key: string; at: number }[] = [];
  // Per open container: the keys of an object so far (undefined for an array), and whether a key comes next.
  const stack: { keys: Set<string> | undefined; keyNext: boolean }[] = [];
  for (let i = 0; i < text.length && found.length < max; i++) {
    const c = text[i];
    const top = stack.at(-1);
    if (c === '"') {
      const end = stringEnd(text, i);
      if (top?.keys && top.keyNext) {
        const key = JSON.parse(text.slice(i, end)) as string;
        if (top.keys.has(key)) found.push({ key, at: i });
        top.keys.add(key);
        top.keyNext = false;
      }
      i = end - 1;
    } else if (c === '{' || c === '[') stack.push({ keys: c === '{' ? new Set() : undefined, keyNext: c === '{' });
    else if (c === '}' || c === ']') stack.pop();
    else if (c === ',' && top?.keys) top.keyNext = true;
  }
  return found;
}

/** Offset in the text of character `index` of a quoted one-line string whose opening quote is at `start`. */
function quotedOffset(text: string, start: number, index: number, quote: string): number | undefined {
  let raw = start + 1;
  for (let decoded = 0; decoded < index; decoded++) {
    const c = text[raw];
    if (c === undefined || c === '\n' || c === '\r' || (c === quote && !(quote === "'" && text[raw + 1] === "'"))) return undefined;
    if (quote === '"' && c === '\\') {
      const e = text[raw + 1];
      raw += e === 'u' ? 6 : e === 'x' ? 4 : e === 'U' ? 10 : 2;
    } else if (quote === "'" && c === "'") raw += 2;
    else raw += 1;
  }
  return raw;
}

/** Offset in the text of character `index` of a literal block (`|`) whose header starts at `start`. */
function blockOffset(text: string, start: number, value: string, index: number): number | undefined {
  const before = value.slice(0, index).split('\n');
  const column = (before.at(-1) ?? '').length;
  let at = text.indexOf('\n', start);
  if (at === -1) return undefined;
  at++;
  // The block's indentation: that of its first line with text.
  let probe = at;
  while (probe < text.length && text[probe] === '\n') probe++;
  let indent = 0;
  while (text[probe + indent] === ' ') indent++;
  for (let k = 1; k < before.length; k++) {
    const next = text.indexOf('\n', at);
    if (next === -1) return undefined;
    at = next + 1;
  }
  return at + indent + column;
}

/** Offset of character `index` of a string value, when the text shows it as written. */
function valueOffset(text: string, place: Place, index: number): number | undefined {
  switch (place.style) {
    case 'plain':
      return place.value === undefined || place.value.includes('\n') || !text.startsWith(place.value, place.start) ? undefined : place.start + index;
    case 'double':
      return quotedOffset(text, place.start, index, '"');
    case 'single':
      return quotedOffset(text, place.start, index, "'");
    case 'block':
      return place.value === undefined ? undefined : blockOffset(text, place.start, place.value, index);
    default:
      return undefined;
  }
}

/** The problem with its `line`, `column` and `excerpt` (unchanged when it has them, or the text has no place for it). */
export function locateProblem<P extends CatalogProblem & { unknownField?: boolean }>(text: string, places: Places, problem: P): P {
  if (problem.line !== undefined) return problem;
  const parts = pathParts(problem.path);
  for (let n = parts.length; n >= 0; n--) {
    const place = places(formatPath(parts.slice(0, n)));
    if (!place) continue;
    let offset = place.start;
    if (n === parts.length) {
      // An unknown field at its name; a value at the position in it, else at its first character (after a quote).
      if (problem.unknownField === true && place.key !== undefined) offset = place.key + (text[place.key] === '"' || text[place.key] === "'" ? 1 : 0);
      else offset = valueOffset(text, place, problem.position ?? 0) ?? place.start;
    }
    const where = positionIn(text, offset);
    return { ...problem, line: where.line, column: where.column, excerpt: where.excerpt };
  }
  return problem;
}
