/**
 * The local decision counter: what the deployed decision counter
 * (functions/decision-counter/handler.ts, fed by the decision log bucket's
 * object notifications) does for each object Firehose writes, done for the
 * local decision log's writes (local/decision-log.ts `onWrite`), with the
 * same counting code (shared/store/statistics.ts `countDecisionLogChunk`).
 *
 * Writes that follow each other in one file are gathered into one chunk
 * for DECISION_COUNT_INTERVAL_MS (the local log writes every 50 ms; a
 * transaction per write would load DynamoDB Local beside the decisions
 * being measured), then the chunk is counted under its id
 * `<run>/<file>@<byte offset>`, which names its bytes for good: `<run>`
 * names this counter (the stack's run: its start instant and a random
 * part), since a file's offsets start again at 0 when the file was moved
 * away or deleted between two runs (archived, rotated by a tool), and
 * `<file>@<offset>` alone would then name bytes already counted, so the
 * new ones were never counted. Chunks are
 * counted one at a time in order; a chunk whose count fails (the store
 * down) is counted again after a pause, the same chunk under the same id,
 * so it is counted once whatever the retries (exactly as a redelivered
 * object is). A chunk that fails `decisionCountSettings.maxReceiveCount`
 * times in a row (5, the deployed queue's redrive) is set aside, as SQS
 * moves a message to the failure queue: a line naming its bytes (id, file,
 * offset, end, attempts, the last error) is appended to the failure file
 * and `onSetAside` is told once; the later chunks are counted. The report's
 * `decisions` lag the decisions by up to about DECISION_COUNT_INTERVAL_MS
 * plus the log's flush.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { decisionCountSettings } from '#shared/functions.ts';

/** How long the writes of the local decision log are gathered into one chunk before it is counted, ms. */
export const DECISION_COUNT_INTERVAL_MS = 500;

/** The pause after a chunk's first failure, ms (doubled with each failure). */
const DEFAULT_RETRY_PAUSE_MS = 1_000;

/** The longest pause between two attempts at a chunk that failed, ms. */
const MAX_RETRY_PAUSE_MS = 10_000;

/** The file of the chunks set aside, in the data folder. */
export const DECISION_COUNT_FAILURES_FILE = 'decision-count-failures.jsonl';

/** A line of the failure file: a chunk given up on, by its bytes in the decision log folder (not their text). */
export interface SetAsideChunk {
  /** The chunk's id, `<run>/<file>@<offset>`. */
  readonly chunk: string;
  /** Its file, relative to the decision log folder. */
  readonly file: string;
  /** Its first byte and the byte after its last, in the file. */
  readonly offset: number;
  readonly end: number;
  /** The attempts made (decisionCountSettings.maxReceiveCount). */
  readonly attempts: number;
  /** The last attempt's error message. */
  readonly reason: string;
  /** When it was set aside, ISO-8601. */
  readonly at: string;
}

/** Counts a chunk (its id and text); rejects when it could not (it is tried again). */
export type CountChunk = (chunk: string, text: string) => Promise<unknown>;

interface Chunk {
  readonly file: string;
  readonly offset: number;
  end: number;
  readonly parts: string[];
}

export interface LocalDecisionCounterOptions {
  /** What names this run in its chunks' ids (see the module). @default `localRunId()` */
  readonly run?: string;
  /** @default DECISION_COUNT_INTERVAL_MS */
  readonly intervalMs?: number;
  /** Told of a chunk that failed (it is tried again, unless it is set aside). @default none */
  readonly onFailure?: (chunk: string, error: unknown) => void;
  /** Attempts at a chunk before it is set aside. @default decisionCountSettings.maxReceiveCount (5) */
  readonly maxAttempts?: number;
  /** The JSON Lines file set-aside chunks are appended to (SetAsideChunk); none: `setAside` only. @default none */
  readonly failureFile?: string;
  /** Told once of a chunk set aside, with its last error. @default none */
  readonly onSetAside?: (chunk: SetAsideChunk, error: unknown) => void;
  /**
   * The pause after a chunk's first failure, ms; it doubles with each failure, up to 10 s: by default a chunk is
   * set aside after about 24 s of failures (2, 4, 8 and 10 s apart), a store that comes back within them counts it.
   * @default 1000
   */
  readonly retryPauseMs?: number;
}

/** A run's name in its chunks' ids: its start instant (epoch ms, base 36) and 8 random hex digits. */
export const localRunId = (now: number = Date.now()): string => `${now.toString(36)}-${randomBytes(4).toString('hex')}`;

/** Gathers the local decision log's writes into chunks and counts each once (see the module). */
export class LocalDecisionCounter {
  private readonly intervalMs: number;
  private readonly runId: string;
  private open: Chunk | undefined;
  private readonly queue: Chunk[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private failures = 0;
  private readonly given: SetAsideChunk[] = [];

  constructor(
    private readonly count: CountChunk,
    private readonly options: LocalDecisionCounterOptions = {},
  ) {
    this.intervalMs = options.intervalMs ?? DECISION_COUNT_INTERVAL_MS;
    this.runId = options.run ?? localRunId();
  }

  /** A write of the decision log (local/decision-log.ts `onWrite`): gathered, counted within the interval. */
  readonly add = (file: string, offset: number, text: string): void => {
    const bytes = Buffer.byteLength(text, 'utf8');
    if (this.open && this.open.file === file && this.open.end === offset) {
      this.open.parts.push(text);
      this.open.end += bytes;
    } else {
      this.seal();
      this.open = { file, offset, end: offset + bytes, parts: [text] };
    }
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.seal();
      void this.pump();
    }, this.intervalMs).unref();
  };

  /** The chunks set aside since this counter was made, oldest first. */
  get setAside(): readonly SetAsideChunk[] {
    return [...this.given];
  }

  /** Chunks gathered or waiting to be counted. */
  get pending(): number {
    return this.queue.length + (this.open ? 1 : 0);
  }

  /** Count everything gathered now; resolves when nothing is left or at `deadline` (epoch ms), whichever is first. */
  async drain(deadline: number): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.seal();
    while (this.queue.length > 0 && Date.now() < deadline) {
      await Promise.race([this.pump(), new Promise((resolve) => setTimeout(resolve, Math.max(0, deadline - Date.now())).unref())]);
      if (this.queue.length > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  private seal(): void {
    if (this.open) this.queue.push(this.open);
    this.open = undefined;
  }

  /** Count the queue in order, one at a time; a failure pauses (growing) and tries the same chunk again. */
  private pump(): Promise<void> {
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(): Promise<void> {
    while (this.queue.length > 0) {
      const chunk = this.queue[0] as Chunk;
      const id = `${this.runId}/${chunk.file}@${chunk.offset}`;
      try {
        await this.count(id, chunk.parts.join(''));
        this.queue.shift();
        this.failures = 0;
      } catch (error) {
        this.failures++;
        this.options.onFailure?.(id, error);
        const attempts = this.failures;
        if (attempts >= (this.options.maxAttempts ?? decisionCountSettings.maxReceiveCount)) {
          this.queue.shift();
          this.failures = 0;
          this.putAside({ chunk: id, file: chunk.file, offset: chunk.offset, end: chunk.end, attempts, reason: error instanceof Error ? error.message : String(error), at: new Date().toISOString() }, error);
          continue;
        }
        const pause = Math.min(MAX_RETRY_PAUSE_MS, (this.options.retryPauseMs ?? DEFAULT_RETRY_PAUSE_MS) * 2 ** Math.min(attempts, 6));
        setTimeout(() => void this.pump(), pause).unref();
        return;
      }
    }
  }

  private putAside(aside: SetAsideChunk, error: unknown): void {
    this.given.push(aside);
    if (this.options.failureFile) {
      try {
        mkdirSync(dirname(this.options.failureFile), { recursive: true });
        appendFileSync(this.options.failureFile, `${JSON.stringify(aside)}\n`, 'utf8');
      } catch {
        // The line is in `setAside` and told below: a full disk must not stop the later chunks.
      }
    }
    this.options.onSetAside?.(aside, error);
  }
}
