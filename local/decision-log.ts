/**
 * The local decision log: what the deployed decision log
 * (infra/constructs/decision-log.ts) delivers to S3, kept in the data
 * folder. Deployed, the decide function writes each decision record as one
 * JSON line on its standard output, captured into its log group, and a subscription filter sends
 * the lines whose `message` is DECISION_RECORD_MESSAGE to Firehose, which
 * writes each line as it was logged. Locally every function runs in this
 * process and logs to its stdout, so the stack watches stdout for those
 * lines (recognised by DECISION_RECORD_LINE_PREFIX without parsing them; an
 * indented line, from a logger in development mode, by parsing it), appends
 * each to `<folder>/<yyyy-mm-dd>.jsonl` (the UTC day it was written)
 * instead of the terminal, and lets every other line through. The
 * function's code path is the deployed one: it only logs.
 *
 * Writes leave the request's path: `append` queues the line and the queue
 * is written in one write DECISION_LOG_FLUSH_MS later (a write per line
 * right after each answer cost the HTTP bench's ratio about 0.1);
 * `flush` writes it at once, `close` flushes first, and a process that
 * exits while capturing flushes, so a clean shutdown loses nothing.
 *
 * Rotation: by UTC day, and within a day by size — past `maxBytes` (64 MB
 * by default) the next line starts `<yyyy-mm-dd>.1.jsonl`, then `.2`…
 * `decisionLogFiles` lists a folder's files in the order they were written.
 *
 * Each write is handed to `onWrite` (the file, the byte offset it was
 * written at, its text): the local stack counts the decisions of what was
 * written (local/decision-counter.ts), as the deployed stack counts each
 * object Firehose delivers.
 */
import { closeSync, mkdirSync, openSync, readdirSync, readSync, statSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';
import { DECISION_RECORD_KEY, DECISION_RECORD_LINE_PREFIX, DECISION_RECORD_MESSAGE } from '#domain/evaluation/decision-record.ts';

/** How long an appended line may wait before the queue is written, ms: the writes of a busy stack are one per this period, off the requests' path. */
export const DECISION_LOG_FLUSH_MS = 50;

/** Size past which a day's file is continued in the next part. */
export const DECISION_LOG_MAX_BYTES = 64 * 1024 * 1024;

const FILE = /^(\d{4}-\d{2}-\d{2})(?:\.(\d+))?\.jsonl$/;

/** The file of a day's part: `2026-11-30.jsonl`, `2026-11-30.1.jsonl`… */
const fileName = (day: string, part: number) => (part === 0 ? `${day}.jsonl` : `${day}.${part}.jsonl`);

/** The decision log files of a folder, oldest first (by day, then part); none when the folder does not exist. */
export function decisionLogFiles(folder: string): string[] {
  let names: string[];
  try {
    names = readdirSync(folder);
  } catch {
    return [];
  }
  return names
    .map((name) => ({ name, match: FILE.exec(name) }))
    .filter((f): f is { name: string; match: RegExpExecArray } => f.match !== null)
    .sort((a, b) => ((a.match[1] as string) < (b.match[1] as string) ? -1 : (a.match[1] as string) > (b.match[1] as string) ? 1 : Number(a.match[2] ?? 0) - Number(b.match[2] ?? 0)))
    .map((f) => join(folder, f.name));
}

export interface LocalDecisionLogOptions {
  /** @default DECISION_LOG_MAX_BYTES */
  readonly maxBytes?: number;
  /** The clock that picks the day. @default the wall clock */
  readonly now?: () => Date;
  /**
   * Called after each write with the file's name (`2026-11-30.jsonl`), the
   * byte offset the text was written at and the text (whole lines). It
   * must not throw. @default none
   */
  readonly onWrite?: (file: string, offset: number, text: string) => void;
}

/** Appends decision record lines to the folder's files, rotated by UTC day and by size, written DECISION_LOG_FLUSH_MS after they are appended. */
export class LocalDecisionLog {
  private readonly maxBytes: number;
  private readonly now: () => Date;
  private readonly onWrite: LocalDecisionLogOptions['onWrite'];
  private fd: number | undefined;
  private path = '';
  /** Bytes of the open file on disk (the offset of the next write). */
  private written = 0;
  private day = '';
  private part = 0;
  private bytes = 0;
  /** Lines appended to the open file and not yet written. */
  private pending: string[] = [];
  private scheduled: NodeJS.Timeout | undefined;

  constructor(
    public readonly folder: string,
    options: LocalDecisionLogOptions = {},
  ) {
    this.maxBytes = options.maxBytes ?? DECISION_LOG_MAX_BYTES;
    this.now = options.now ?? (() => new Date());
    this.onWrite = options.onWrite;
    mkdirSync(folder, { recursive: true });
  }

  /** Append one record line (its JSON, without the newline): queued, written by `flush` (scheduled DECISION_LOG_FLUSH_MS later). */
  append(line: string): void {
    const text = `${line}\n`;
    const size = Buffer.byteLength(text, 'utf8');
    const day = this.now().toISOString().slice(0, 10);
    if (this.fd === undefined || day !== this.day) this.openDay(day);
    else if (this.bytes > 0 && this.bytes + size > this.maxBytes) this.openPart(this.part + 1);
    this.pending.push(text);
    this.bytes += size;
    this.scheduled ??= setTimeout(() => this.flush(), DECISION_LOG_FLUSH_MS).unref();
  }

  /** Write the queued lines now. */
  flush(): void {
    if (this.scheduled) clearTimeout(this.scheduled);
    this.scheduled = undefined;
    if (this.pending.length === 0 || this.fd === undefined) return;
    const text = this.pending.join('');
    this.pending = [];
    const offset = this.written;
    writeSync(this.fd, text);
    this.written += Buffer.byteLength(text, 'utf8');
    this.onWrite?.(basename(this.path), offset, text);
  }

  /** Flush, then close the open file. */
  close(): void {
    this.flush();
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  /** The day's last part (an earlier run's file is continued), or its first. */
  private openDay(day: string): void {
    this.day = day;
    let last = 0;
    for (const file of decisionLogFiles(this.folder)) {
      const match = FILE.exec(file.slice(this.folder.length + 1));
      if (match?.[1] === day) last = Math.max(last, Number(match[2] ?? 0));
    }
    this.openPart(last);
  }

  private openPart(part: number): void {
    this.close();
    this.part = part;
    const path = join(this.folder, fileName(this.day, part));
    this.fd = openSync(path, 'a+');
    this.path = path;
    this.bytes = statSync(path).size;
    // A file an earlier run left mid-line (killed during a write, the disk full): the fragment ends here, so the next record starts a line of its own.
    if (this.bytes > 0 && !endsWithNewline(this.fd, this.bytes)) {
      writeSync(this.fd, '\n');
      this.bytes += 1;
    }
    this.written = this.bytes;
    if (this.bytes > 0 && this.bytes >= this.maxBytes) this.openPart(part + 1);
  }
}

/** Whether the file open as `fd`, of `size` bytes, ends with a newline. */
function endsWithNewline(fd: number, size: number): boolean {
  const last = Buffer.alloc(1);
  readSync(fd, last, 0, 1, size - 1);
  return last[0] === 0x0a;
}

/** The record line a chunk of stdout is, or undefined when it is anything else. */
function recordLine(chunk: string): string | undefined {
  // The decide function's lines as it writes them (decisionRecordLine): taken as they are.
  if (chunk.startsWith(DECISION_RECORD_LINE_PREFIX)) return chunk.trim();
  if (!chunk.includes(DECISION_RECORD_MESSAGE)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(chunk);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object') return undefined;
  const line = parsed as Record<string, unknown>;
  // A record line written some other way: its message and record, and none of a standard logger's keys (`service`).
  if (line.message !== DECISION_RECORD_MESSAGE || line[DECISION_RECORD_KEY] === undefined || 'service' in line) return undefined;
  // A logger in development mode indents its JSON: the same JSON on one line.
  return JSON.stringify(parsed);
}

/**
 * Divert the decide function's decision record lines from this process's
 * stdout to `log` (every other write goes through unchanged), and flush
 * `log` if the process exits while diverting. Returns the function that
 * puts stdout back.
 */
export function captureDecisionRecords(log: LocalDecisionLog): () => void {
  const stdout = process.stdout;
  const write = stdout.write;
  const diverted = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
    const text = typeof chunk === 'string' ? chunk : chunk instanceof Uint8Array ? Buffer.from(chunk).toString('utf8') : undefined;
    const line = text === undefined ? undefined : recordLine(text);
    if (line === undefined) return (write as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    log.append(line);
    const callback = rest.find((r): r is (error?: Error | null) => void => typeof r === 'function');
    if (callback) process.nextTick(callback);
    return true;
  };
  stdout.write = diverted as typeof stdout.write;
  // A process that exits without closing the log (process.exit) still writes what is queued.
  const flushOnExit = () => log.flush();
  process.once('exit', flushOnExit);
  return () => {
    process.removeListener('exit', flushOnExit);
    if (stdout.write === diverted) stdout.write = write;
  };
}
