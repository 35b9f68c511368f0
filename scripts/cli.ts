/**
 * What the operator commands in scripts/ share: a caller's mistake is one
 * line on standard error and exit code 2 (never a stack trace), anything
 * else exit code 1, and files are read with a message naming them.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';

/** A mistake of the caller: printed as one line, exit code 2. */
export class UsageError extends Error {}

/**
 * A file's text; a missing or unreadable file, one that is not a regular
 * file (a folder, a device such as /dev/zero, which would be read without
 * end), or one over `maxBytes` is a UsageError naming it and `what` it was
 * meant to be.
 */
export function readText(path: string, what: string, maxBytes?: number): string {
  const refuse = (why: string) => new UsageError(`cannot read the ${what} ${path}: ${why}`);
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw refuse('not a regular file');
    if (maxBytes !== undefined && stat.size > maxBytes) throw refuse(`larger than ${maxBytes} bytes`);
    return readFileSync(path, 'utf8');
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw refuse(code === 'ENOENT' ? 'no such file' : (code ?? (error as Error).message));
  }
}

/**
 * Run a command's body: its result code (0 by default), 2 for a UsageError
 * (`<name>: <message>` on stderr), 1 for anything else.
 */
export async function runCommand(name: string, body: () => Promise<number | void>): Promise<number> {
  try {
    return (await body()) ?? 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`${name}: ${error.message}`);
      return 2;
    }
    console.error(`${name}: unexpected error: ${(error as Error).message}`);
    return 1;
  }
}

/**
 * The values of a command line given `options` (node:util parseArgs, strict,
 * no positionals). An unknown option or a missing value is a UsageError
 * (its first line, and "see --help").
 */
export function parseCommandLine<const T extends ParseArgsOptionsConfig>(argv: readonly string[], options: T) {
  try {
    return parseArgs({ args: [...argv], strict: true, allowPositionals: false, options }).values;
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]} (see --help)`);
  }
}
