/**
 * One local stack per data folder. Two stacks over the same folder would run
 * two DynamoDB Locals over one database file, two stream pollers over one
 * checkpoint file and two writers of the keys file; the second start is
 * refused instead, saying what to do. The claim is the file
 * `<data folder>/kairos.pid`, holding the claiming process's id; a claim
 * whose process is gone (a stack ended with SIGKILL) is taken over, by one
 * starter at a time (`kairos.pid.takeover`).
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
    return pidOf(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}

/** The process id a claim's text holds (`<pid>\n`), else undefined. */
function pidOf(text: string): number | undefined {
  const pid = Number.parseInt(text.trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

function removeIfPresent(file: string): void {
  try {
    unlinkSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}

/** How long a starter waits for another one's takeover of a stale claim (held for microseconds) before giving up. */
const TAKEOVER_WAIT_MS = 2_000;

/** Blocks the thread for `ms` (the claim is taken once, at start, before anything else runs). */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Writes `<pid>\n` beside `file` and links it into place: the file appears whole or not at all (false: it exists). */
function createWhole(file: string, pid: number): boolean {
  const draft = `${file}.${pid}.tmp`;
  writeFileSync(draft, `${pid}\n`, { mode: 0o644 });
  try {
    linkSync(draft, file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  } finally {
    removeIfPresent(draft);
  }
}

const inUse = (dataDir: string, holder: number, file: string) =>
  new Error(
    `The data folder ${dataDir} is in use by another local stack (process ${holder}): stop that one, or give this one another folder ` +
      `(KAIROS_DATA_DIR) or none (KAIROS_IN_MEMORY=1). If no stack runs there, delete ${file}.`,
  );

/**
 * Removes the stale claim `file` on behalf of `pid`, one starter at a time:
 * only the starter that creates the takeover marker (`kairos.pid.takeover`,
 * linked into place whole) may remove the claim, and only after reading it
 * again under the marker. Without the marker, two starters that both saw
 * the stale claim could each remove it, the second removing the claim the
 * first had just made, and both would run. `removed`: the claim is gone;
 * `held`: a running process claimed the folder meanwhile; `busy`: another
 * starter is taking it over now.
 * @throws Error when a marker is left by a starter that stopped mid-takeover.
 */
function takeOverStale(file: string, pid: number): 'removed' | 'held' | 'busy' {
  const marker = `${file}.takeover`;
  if (!createWhole(marker, pid)) {
    const taker = holderOf(marker);
    if (taker !== undefined && taker !== pid && isRunning(taker)) return 'busy';
    throw new Error(`Cannot take over the stale claim ${file}: ${marker} was left by a start that stopped while taking it over; if no stack runs there, delete ${marker}.`);
  }
  try {
    // Gone already: another starter removed it and may be creating its own claim this instant; removing
    // "the file" now could remove that fresh claim, so nothing is removed.
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 'removed';
      throw error;
    }
    const holder = pidOf(text);
    if (holder !== undefined && holder !== pid && isRunning(holder)) return 'held';
    // A stale claim (or an unreadable one) stays in place until a marker holder removes it, so this is still it.
    removeIfPresent(file);
    return 'removed';
  } finally {
    removeIfPresent(marker);
  }
}

/** What a test can do inside a claim. */
export interface ClaimHooks {
  /** Called when a stale claim has been seen, before it is taken over: where another starter can race this one. */
  readonly beforeTakeover?: () => void;
}

/**
 * Claims `dataDir` (created if missing) for process `pid`. Throws an Error
 * naming the folder, the process that holds it and what to do when another
 * running process holds it. A claim whose process is gone is taken over,
 * one starter at a time (`takeOverStale`): of two `npm start` over one
 * folder with a stale claim, one runs and the other is refused. Returns the
 * release: it removes the claim if it is still this process's.
 */
export function claimDataFolder(dataDir: string, pid: number = process.pid, hooks: ClaimHooks = {}): () => void {
  mkdirSync(dataDir, { recursive: true });
  const file = join(dataDir, DATA_FOLDER_LOCK);
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  // The claim appears whole or not at all (createWhole), so another starter never reads an empty claim and takes
  // it for a stale one.
  while (!createWhole(file, pid)) {
    const holder = holderOf(file);
    if (holder !== undefined && holder !== pid && isRunning(holder)) throw inUse(dataDir, holder, file);
    // A claim left by a process that is gone (or by this one): taken over, then claimed again.
    hooks.beforeTakeover?.();
    if (takeOverStale(file, pid) === 'busy') {
      if (Date.now() > deadline) throw new Error(`Cannot claim the data folder ${dataDir}: another start has been taking over ${file} for ${TAKEOVER_WAIT_MS} ms`);
      sleepSync(5);
    } else if (Date.now() > deadline) {
      throw new Error(`Cannot claim the data folder ${dataDir}: ${file} keeps coming back`);
    }
  }
  return () => {
    if (holderOf(file) === pid) removeIfPresent(file);
  };
}
