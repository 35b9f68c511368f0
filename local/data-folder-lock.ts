/**
 * One local stack per data folder. Two stacks over the same folder would run
 * two DynamoDB Locals over one database file, two stream pollers over one
 * checkpoint file and two writers of the keys file; the second start is
 * refused instead, saying what to do. The claim is the file
 * `<data folder>/kairos.pid`, holding the claiming process's id; a claim
 * whose process is gone (a stack ended with SIGKILL) is taken over.
 */
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The claim's file name inside the data folder. */
export const DATA_FOLDER_LOCK = 'kairos.pid';

/** Whether a process with this id runs (one of another user's counts: it cannot be signalled, but it is there). */
function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The process id a claim file holds, or undefined when it holds none (or is gone). */
function holderOf(file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function removeIfPresent(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/**
 * Claims `dataDir` (created if missing) for process `pid`. Throws an Error
 * naming the folder, the process that holds it and what to do when another
 * running process holds it. Returns the release: it removes the claim if it
 * is still this process's.
 */
export function claimDataFolder(dataDir: string, pid: number = process.pid): () => void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, DATA_FOLDER_LOCK);
  for (let attempt = 1; ; attempt++) {
    // The claim appears whole or not at all: written beside it, then linked into place (EEXIST when held), so
    // another starter never reads an empty claim and takes it for a stale one.
    const draft = `${file}.${pid}.tmp`;
    writeFileSync(draft, `${pid}\n`, { mode: 0o644 });
    try {
      linkSync(draft, file);
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = holderOf(file);
      if (holder !== undefined && holder !== pid && isRunning(holder)) {
        throw new Error(
          `The data folder ${dataDir} is in use by another local stack (process ${holder}): stop that one, or give this one another folder ` +
            `(KAIROS_DATA_DIR) or none (KAIROS_IN_MEMORY=1). If no stack runs there, delete ${file}.`,
        );
      }
      // A claim left by a process that is gone (or by this one): taken over, once.
      if (attempt > 1) throw new Error(`Cannot claim the data folder ${dataDir}: ${file} keeps coming back`);
      removeIfPresent(file);
    } finally {
      removeIfPresent(draft);
    }
  }
  return () => {
    if (holderOf(file) === pid) removeIfPresent(file);
  };
}
