/**
 * Regular expressions of rules, through RE2 (the `re2js` port): matching
 * takes time linear in the text, whatever the pattern (`^(a+)+$` included),
 * where a backtracking engine (JavaScript's RegExp) can take exponential
 * time. CEL's `matches()` is defined on RE2 syntax, so this is also the
 * engine the language specifies.
 *
 * cel-js evaluates `matches()` with RegExp and does not let an overload be
 * replaced, so rules.ts renames every `matches` call of a parsed rule to
 * MATCHES_FUNCTION (registered with `re2Matches` as its implementation)
 * before the rule is checked or run.
 *
 * re2js (about 147 KB minified) is loaded on the first use of a pattern, so
 * a process whose catalog never calls `matches()` never loads it: loading
 * stays synchronous (compiling a rule is), through Node's `require`, which
 * takes re2js's CommonJS build (its `exports` `require` condition). The
 * Lambda bundles leave the package out and ship it beside the bundle, in
 * the asset's `node_modules/re2js` (infra/bundling.ts `LAZY_MODULES`).
 */
import { createRequire as createModuleRequire } from 'node:module';
import type { RE2JS } from 're2js';

/** The name `matches()` calls are given in a compiled rule (not a CEL name a catalog would use). */
export const MATCHES_FUNCTION = 'matchesRe2';

/** Compiled programs by pattern, bounded (patterns computed at run time are compiled each time past the bound). */
const programs = new Map<string, RE2JS>();
const MAX_PROGRAMS = 1_024;

/** The re2js engine, loaded on first use (resolved from this module, or from the bundle holding it). */
let engine: typeof RE2JS | undefined;
function re2Engine(): typeof RE2JS {
  engine ??= (createModuleRequire(import.meta.url)('re2js') as { RE2JS: typeof RE2JS }).RE2JS;
  return engine;
}

/** Compile an RE2 pattern. Throws an Error with RE2's message for an invalid one. */
export function re2(pattern: string): RE2JS {
  let program = programs.get(pattern);
  if (program === undefined) {
    program = re2Engine().compile(pattern);
    if (programs.size < MAX_PROGRAMS) programs.set(pattern, program);
  }
  return program;
}

/**
 * The RE2 program size of a pattern (its instructions: what matching costs
 * per character of text), or 0 for a pattern RE2 refuses (reported by
 * `re2Error`).
 */
export function re2ProgramSize(pattern: string): number {
  try {
    return re2(pattern).programSize();
  } catch {
    return 0;
  }
}

/** The error message of an invalid RE2 pattern, or undefined when it compiles. */
export function re2Error(pattern: string): string | undefined {
  try {
    re2(pattern);
    return undefined;
  } catch (error) {
    return `invalid regular expression (RE2): ${(error as Error).message}`;
  }
}

/** CEL `text.matches(pattern)`: true when the pattern matches any part of the text (RE2 semantics). */
export function re2Matches(text: string, pattern: string): boolean {
  return re2(pattern).test(text);
}
