/**
 * What is wrong with an input, where: the one shape and path format of every
 * refusal the domain reports (ingest messages, decide requests, catalogs),
 * which the HTTP edge turns into API.md §6's `details`.
 */

/** One problem: the path of the offending field (`batch[3].userId`, `(root)`) and what is wrong. */
export interface ErrorDetail {
  path: string;
  message: string;
  /** Catalog problems (API.md §5): 0-based offset inside a CEL expression or template, or in the text for a syntax error. */
  position?: number;
  /** Catalog problems: 1-based line and column in the submitted text, and that line. */
  line?: number;
  column?: number;
  excerpt?: string;
  /** For a common slip, what to write instead. */
  hint?: string;
}

/** Turn zod-style issue paths into `batch[3].userId`; the empty path is `(root)`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out === '' ? String(part) : `.${String(part)}`;
  }
  return out === '' ? '(root)' : out;
}
