/**
 * Where a mistake is in a text: a 0-based character offset turned into the
 * 1-based line and column an editor shows, with the offending line; and the
 * one reading of a JSON syntax error (the admin catalog routes and every
 * JSON body of the API use it).
 */

/** Where in a text: 1-based `line` and `column`, and the text of that line (at most EXCERPT_CHARS around the column). */
export interface TextPosition {
  readonly line: number;
  readonly column: number;
  readonly excerpt: string;
}

/** Longest excerpt of a line returned (characters), centred on the column when the line is longer. */
export const EXCERPT_CHARS = 120;

/** The line and column of a 0-based character `offset` in `text` (clamped to the text). */
export function positionIn(text: string, offset: number): TextPosition {
  const at = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = text.indexOf('\n'); i !== -1 && i < at; i = text.indexOf('\n', i + 1)) {
    line++;
    lineStart = i + 1;
  }
  let lineEnd = text.indexOf('\n', lineStart);
  if (lineEnd === -1) lineEnd = text.length;
  const column = at - lineStart + 1;
  let from = lineStart;
  let to = lineEnd;
  if (to - from > EXCERPT_CHARS) {
    from = Math.max(lineStart, Math.min(at - EXCERPT_CHARS / 2, lineEnd - EXCERPT_CHARS));
    to = from + EXCERPT_CHARS;
  }
  return { line, column, excerpt: text.slice(from, to).replace(/\r$/, '') };
}

/** A JSON syntax error: what is wrong (the parser's words, without its own position), where, and for common slips a hint. */
export interface JsonSyntaxError extends Partial<TextPosition> {
  readonly message: string;
  /**
   * 0-based character offset of the offending character (the text's length
   * when it ends too early); absent only when the parser does not say and
   * the text is too long to search (over MAX_PREFIX_SEARCH characters).
   */
  readonly position?: number;
  readonly hint?: string;
}

/** Longest text whose error is searched by parsing its prefixes (about 20 parses of up to this many characters). */
export const MAX_PREFIX_SEARCH = 512 * 1024;
/** Characters V8 quotes on each side of the offending one. */
const V8_CONTEXT = 10;

const V8_POSITION = /(?: in JSON)? at position (\d+)(?: \(line \d+ column \d+\))?$/;
// V8 quotes the text, or V8_CONTEXT characters each side of the offending one (`..."a part"...`): left out
// of the message (the line is in `excerpt`), and read for where the offending character is.
const V8_SNIPPET = /^(Unexpected .+?), (\.\.\.)?"(.*)"(\.\.\.)? is not valid JSON$/s;

/** Whether `prefix` could still begin a valid JSON text (it parses, or fails only because it ends). */
function isValidPrefix(prefix: string): boolean {
  try {
    JSON.parse(prefix);
    return true;
  } catch (error) {
    const message = (error as Error).message;
    if (/Unexpected end of JSON input|Unterminated string/.test(message)) return true;
    const m = V8_POSITION.exec(message);
    return m !== null && Number(m[1]) >= prefix.length;
  }
}

/**
 * Offset of the first character no valid JSON text could have there: the
 * parser's own position when it gives one, else where its quote of the
 * text is (when that is unambiguous), else the shortest prefix that cannot
 * begin a valid text (a binary search of parses, only on failure, only up
 * to MAX_PREFIX_SEARCH characters).
 */
function errorOffset(text: string, message: string): number | undefined {
  const m = V8_POSITION.exec(message);
  if (m) return Number(m[1]);
  if (/Unexpected end of JSON input/.test(message)) return text.length;
  const quoted = V8_SNIPPET.exec(message);
  if (quoted) {
    const [, , cutBefore, snippet = '', cutAfter] = quoted;
    if (cutBefore) {
      const at = text.indexOf(snippet);
      if (at !== -1 && at === text.lastIndexOf(snippet)) return at + V8_CONTEXT;
    } else if (cutAfter && text.startsWith(snippet)) return snippet.length - V8_CONTEXT;
  }
  if (text.length > MAX_PREFIX_SEARCH) return undefined;
  let lo = 0;
  let hi = text.length;
  // Invariant: text[0, lo) is a valid prefix, text[0, hi] is not (or hi is the end).
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (isValidPrefix(text.slice(0, mid))) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function jsonHint(text: string, offset: number): string | undefined {
  const c = text[offset];
  let before = offset - 1;
  while (before >= 0 && /\s/.test(text[before] as string)) before--;
  if ((c === '}' || c === ']') && text[before] === ',') return `remove the comma before "${c}": JSON allows no comma after the last item`;
  if (c === "'") return 'JSON strings and names are written in double quotes (")';
  if (c === '/' || c === '#') return 'JSON has no comments';
  if (offset >= text.length) return 'the text ends before every "{" and "[" is closed';
  if (c === '"' && (text[before] === '"' || text[before] === '}' || text[before] === ']' || /[\w]/.test(text[before] ?? ''))) {
    return 'a comma is missing before this';
  }
  return undefined;
}

/** Read a JSON.parse failure of `text` as a JsonSyntaxError (message without the parser's position, line, column, the line, a hint). */
export function jsonSyntaxError(text: string, error: unknown): JsonSyntaxError {
  const raw = error instanceof Error ? error.message : String(error);
  const position = errorOffset(text, raw);
  const message = (V8_SNIPPET.exec(raw)?.[1] ?? raw.replace(V8_POSITION, '')).replace(/^Unexpected end of JSON input$/, 'the text ends too early');
  if (position === undefined) return { message };
  const hint = jsonHint(text, position);
  return { message, position, ...positionIn(text, position), ...(hint ? { hint } : {}) };
}
