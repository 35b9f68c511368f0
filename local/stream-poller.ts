/**
 * The local event source mapping: reads the Events table's stream the way
 * Lambda's DynamoDB event source mapping does for the deployed profile
 * function, and invokes the same handler with a real `DynamoDBStreamEvent`.
 *
 * - every shard of the stream, a parent shard fully before its children,
 *   records in order within a shard, one batch in flight per shard;
 * - only the kinds of record its settings name reach the function (the
 *   deployed mapping's filters, shared/functions.ts `eventNames`; INSERT by
 *   default); the others are checkpointed past;
 * - `batchItemFailures`: the records before the lowest reported failure are
 *   done, and the batch is read again from that record with an
 *   AT_SEQUENCE_NUMBER iterator; an invalid identifier fails the whole batch;
 * - a function error (throw, timeout) bisects the batch and retries each half;
 * - bounded retries with a short backoff, after which the failing records go
 *   to the on-failure destination (the local failure queue) and the shard
 *   moves on, so a poison record never blocks it;
 * - checkpoints survive a restart when the stack is persistent;
 * - `pause()` while the store is down (DynamoDB Local restarting): no batch
 *   is invoked until `resume()`, and a batch that failed because the store
 *   went away is invoked again without counting against its retries, so an
 *   outage never sends a record to the failure queue. Reads resume with new
 *   shard iterators from the checkpoint each shard had `rewindMs` before the
 *   outage: DynamoDB Local can lose the last writes it acknowledged when its
 *   JVM is killed (a profile transaction among them), so the records
 *   delivered just before are delivered again; the profile function is
 *   idempotent (its applied markers), so what was kept is not applied twice.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
  ListStreamsCommand,
  type AttributeValue as SdkAttributeValue,
  type Shard,
  type ShardIteratorType,
  type _Record,
} from '@aws-sdk/client-dynamodb-streams';
import type { AttributeValue, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { FailureQueue } from './failure-queue.ts';
import { functionArn, invokeFunction, type LocalFunction } from './lambda.ts';

export interface StreamPollerOptions {
  /** DynamoDB Local's URL. */
  readonly endpoint: string;
  readonly region: string;
  /** The table whose stream is read (the Events table). */
  readonly tableName: string;
  /** The function the stream feeds (the profile function). */
  readonly fn: LocalFunction;
  /** Where batches whose retries are exhausted are sent. */
  readonly failures: FailureQueue;
  /** @default 100 (the deployed mapping's batch size) */
  readonly batchSize?: number;
  /** Pause between reads of a shard with nothing new. @default 50 */
  readonly idlePollMs?: number;
  /** Retries after the first failed invocation of a record. @default 3 */
  readonly maxRetryAttempts?: number;
  /** First retry delay, doubled on each retry. @default 100 */
  readonly retryBackoffMs?: number;
  /** @default true */
  readonly bisectOnError?: boolean;
  /** How often new shards are looked for. @default 1000 */
  readonly discoverIntervalMs?: number;
  /** Which records reach the function. @default INSERT only */
  readonly filter?: (record: DynamoDBRecord) => boolean;
  /** How far back before an outage each shard is read again on `resume()`. @default 15000 */
  readonly rewindMs?: number;
  /** JSON file that keeps the checkpoints across restarts; none keeps them in memory. */
  readonly checkpointFile?: string;
  readonly log?: (line: string) => void;
}

export interface StreamPollerStats {
  readonly invocations: number;
  readonly recordsDelivered: number;
  readonly failedInvocations: number;
  readonly deadLettered: number;
}

type Position = { type: Extract<ShardIteratorType, 'TRIM_HORIZON'> } | { type: 'AT_SEQUENCE_NUMBER' | 'AFTER_SEQUENCE_NUMBER'; sequenceNumber: string };

type InvokeResult = { kind: 'ok' } | { kind: 'partial'; index: number } | { kind: 'error' } | { kind: 'stopped' };

/** A checkpoint and when it was taken; `sequenceNumber` undefined stands for the shard's start (TRIM_HORIZON). */
interface TimedCheckpoint {
  readonly at: number;
  readonly sequenceNumber: string | undefined;
}

type Delivery = { kind: 'done' } | { kind: 'retry'; from: string; before?: string } | { kind: 'stopped' };

interface CheckpointFile {
  streamArn: string;
  shards: Record<string, { sequenceNumber?: string; closed?: boolean }>;
}

/** The records of these kinds (a stream mapping's `eventNames`), as the deployed mapping's filters pass them. */
export const eventNameFilter =
  (names: readonly string[]) =>
  (record: DynamoDBRecord): boolean =>
    record.eventName !== undefined && names.includes(record.eventName);

const INSERT_ONLY = eventNameFilter(['INSERT']);

/** The SDK's attribute values (binary as bytes) to the JSON form Lambda delivers (binary as base64). */
function toLambdaAttribute(value: SdkAttributeValue): AttributeValue {
  if (value.B !== undefined) return { B: Buffer.from(value.B).toString('base64') };
  if (value.BS !== undefined) return { BS: value.BS.map((b) => Buffer.from(b).toString('base64')) };
  if (value.M !== undefined) return { M: toLambdaImage(value.M) };
  if (value.L !== undefined) return { L: value.L.map(toLambdaAttribute) };
  if (value.S !== undefined) return { S: value.S };
  if (value.N !== undefined) return { N: value.N };
  if (value.BOOL !== undefined) return { BOOL: value.BOOL };
  if (value.NULL !== undefined) return { NULL: value.NULL };
  if (value.SS !== undefined) return { SS: value.SS };
  if (value.NS !== undefined) return { NS: value.NS };
  // DynamoDB Local writes an empty map as `{}` in stream records (DynamoDB writes {"M":{}}); lists keep {"L":[]}.
  if (Object.keys(value).length === 0) return { M: {} };
  throw new Error(`Unsupported attribute value in a stream record: ${Object.keys(value).join(',')}`);
}

function toLambdaImage(image: Record<string, SdkAttributeValue>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(image)) out[name] = toLambdaAttribute(value);
  return out;
}

/** One record as Lambda puts it in a `DynamoDBStreamEvent`. */
export function toLambdaRecord(record: _Record, streamArn: string, region: string): DynamoDBRecord {
  const data = record.dynamodb ?? {};
  const created = data.ApproximateCreationDateTime;
  return {
    eventID: record.eventID,
    eventName: record.eventName,
    eventVersion: record.eventVersion ?? '1.1',
    eventSource: record.eventSource ?? 'aws:dynamodb',
    awsRegion: record.awsRegion ?? region,
    dynamodb: {
      ...(created ? { ApproximateCreationDateTime: Math.floor(new Date(created).getTime() / 1000) } : {}),
      ...(data.Keys ? { Keys: toLambdaImage(data.Keys) } : {}),
      ...(data.NewImage ? { NewImage: toLambdaImage(data.NewImage) } : {}),
      ...(data.OldImage ? { OldImage: toLambdaImage(data.OldImage) } : {}),
      SequenceNumber: data.SequenceNumber,
      SizeBytes: data.SizeBytes,
      StreamViewType: data.StreamViewType,
    },
    eventSourceARN: streamArn,
    ...(record.userIdentity ? { userIdentity: { ...record.userIdentity } } : {}),
  };
}

const sequenceOf = (record: DynamoDBRecord): string => record.dynamodb?.SequenceNumber ?? '';

const arrival = (record: DynamoDBRecord): string => {
  const seconds = record.dynamodb?.ApproximateCreationDateTime;
  return seconds === undefined ? new Date().toISOString() : new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
};

export class StreamPoller {
  readonly #o: Required<Omit<StreamPollerOptions, 'checkpointFile' | 'log'>> & Pick<StreamPollerOptions, 'checkpointFile'>;
  readonly #log: (line: string) => void;
  readonly #client: DynamoDBStreamsClient;
  readonly #workers = new Map<string, Promise<void>>();
  readonly #closed = new Set<string>();
  readonly #checkpoints = new Map<string, string>();
  /** Per shard: the checkpoints of the last `rewindMs` and the newest one before (for `resume()`). */
  readonly #recent = new Map<string, TimedCheckpoint[]>();
  /** When each closed shard was read to its end (a shard closed after the rewind point is read again). */
  readonly #closedAt = new Map<string, number>();
  /** Bumped by each rewind: a batch read before it does not move the checkpoint. */
  #epoch = 0;
  /** When the current outage began. */
  #pausedAt = 0;
  /** Per shard: the record a retry starts at and how many invocations of it failed. */
  readonly #retries = new Map<string, { sequenceNumber: string; failures: number }>();
  readonly #sleepers = new Set<() => void>();
  #streamArn = '';
  #stopping = false;
  /** Set while paused: resolves on resume (or stop). */
  #paused: { promise: Promise<void>; resolve: () => void } | undefined;
  /** Outages so far: an invocation that failed while this changed failed because of the outage. */
  #outages = 0;
  #loop: Promise<void> | undefined;
  #wakeDiscovery: (() => void) | undefined;
  #stats = { invocations: 0, recordsDelivered: 0, failedInvocations: 0, deadLettered: 0 };

  constructor(options: StreamPollerOptions) {
    this.#o = {
      batchSize: 100,
      idlePollMs: 50,
      maxRetryAttempts: 3,
      retryBackoffMs: 100,
      bisectOnError: true,
      discoverIntervalMs: 1_000,
      filter: INSERT_ONLY,
      rewindMs: 15_000,
      ...options,
    };
    this.#log = options.log ?? ((line) => console.error(`[kairos] stream: ${line}`));
    this.#client = new DynamoDBStreamsClient({
      endpoint: options.endpoint,
      region: options.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 2,
    });
  }

  get streamArn(): string {
    return this.#streamArn;
  }

  stats(): StreamPollerStats {
    return { ...this.#stats };
  }

  /** Find the stream and start polling; resolves once the shards are known. */
  async start(): Promise<void> {
    const { Streams } = await this.#client.send(new ListStreamsCommand({ TableName: this.#o.tableName }));
    const arn = Streams?.[0]?.StreamArn;
    if (!arn) throw new Error(`Table ${this.#o.tableName} has no stream; the Events table must stream NEW_IMAGE`);
    this.#streamArn = arn;
    this.#loadCheckpoints();
    await this.#discover();
    this.#loop = this.#run();
  }

  /** The store is down: invoke nothing until `resume()`; failures meanwhile do not count as retries. */
  pause(): void {
    if (this.#paused) return;
    this.#outages++;
    this.#pausedAt = Date.now();
    let resolvePause = () => undefined as void;
    const promise = new Promise<void>((r) => (resolvePause = r));
    this.#paused = { promise, resolve: resolvePause };
  }

  /** The store answers again: carry on, reading each shard again from its checkpoint of `rewindMs` before the outage. */
  resume(): void {
    const paused = this.#paused;
    if (!paused) return;
    this.#rewind(this.#pausedAt - this.#o.rewindMs);
    this.#paused = undefined;
    paused.resolve();
    for (const wake of this.#sleepers) wake();
    this.#wakeDiscovery?.();
  }

  /** Stop polling; the batches in flight finish (without further retries) first. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#paused?.resolve();
    for (const wake of this.#sleepers) wake();
    this.#wakeDiscovery?.();
    await this.#loop;
    await Promise.allSettled([...this.#workers.values()]);
    this.#client.destroy();
  }

  async #run(): Promise<void> {
    while (!this.#stopping) {
      await new Promise<void>((resolveWait) => {
        const timer = setTimeout(done, this.#o.discoverIntervalMs);
        function done() {
          clearTimeout(timer);
          resolveWait();
        }
        this.#wakeDiscovery = done;
      });
      if (this.#stopping) return;
      if (this.#paused) continue;
      try {
        await this.#discover();
      } catch (error) {
        if (!this.#stopping) this.#log(`cannot describe the stream: ${(error as Error).message}`);
      }
    }
  }

  async #describeShards(): Promise<Shard[]> {
    const shards: Shard[] = [];
    let start: string | undefined;
    do {
      const { StreamDescription } = await this.#client.send(
        new DescribeStreamCommand({ StreamArn: this.#streamArn, ...(start ? { ExclusiveStartShardId: start } : {}) }),
      );
      shards.push(...(StreamDescription?.Shards ?? []));
      start = StreamDescription?.LastEvaluatedShardId;
    } while (start);
    return shards;
  }

  async #discover(): Promise<void> {
    const shards = await this.#describeShards();
    const present = new Set(shards.map((s) => s.ShardId));
    for (const shard of shards) {
      const id = shard.ShardId;
      if (!id || this.#closed.has(id) || this.#workers.has(id) || this.#stopping) continue;
      const parent = shard.ParentShardId;
      // A child waits until its parent (when the stream still has it) has been read to its end.
      if (parent && present.has(parent) && !this.#closed.has(parent)) continue;
      const worker = this.#readShard(id).finally(() => this.#workers.delete(id));
      this.#workers.set(id, worker);
    }
  }

  #position(shardId: string): Position {
    const retry = this.#retries.get(shardId);
    if (retry) return { type: 'AT_SEQUENCE_NUMBER', sequenceNumber: retry.sequenceNumber };
    const checkpoint = this.#checkpoints.get(shardId);
    return checkpoint ? { type: 'AFTER_SEQUENCE_NUMBER', sequenceNumber: checkpoint } : { type: 'TRIM_HORIZON' };
  }

  async #iterator(shardId: string, position: Position): Promise<string | undefined> {
    const { ShardIterator } = await this.#client.send(
      new GetShardIteratorCommand({
        StreamArn: this.#streamArn,
        ShardId: shardId,
        ShardIteratorType: position.type,
        ...('sequenceNumber' in position ? { SequenceNumber: position.sequenceNumber } : {}),
      }),
    );
    return ShardIterator;
  }

  async #readShard(shardId: string): Promise<void> {
    let iterator: string | undefined;
    let epoch = this.#epoch;
    let consecutiveErrors = 0;
    while (!this.#stopping) {
      if (this.#paused) {
        await this.#paused.promise;
        iterator = undefined; // an iterator does not outlive the emulator that issued it
        continue;
      }
      try {
        if (iterator === undefined || epoch !== this.#epoch) {
          epoch = this.#epoch;
          iterator = await this.#iterator(shardId, this.#position(shardId));
        }
        if (!iterator) {
          this.#shardClosed(shardId);
          return;
        }
        const page = await this.#client.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: this.#o.batchSize }));
        consecutiveErrors = 0;
        const records = page.Records ?? [];
        const next = page.NextShardIterator;
        if (records.length === 0) {
          if (!next) {
            this.#shardClosed(shardId);
            return;
          }
          iterator = next;
          await this.#sleep(this.#o.idlePollMs);
          continue;
        }
        const converted = records.map((r) => toLambdaRecord(r, this.#streamArn, this.#o.region));
        const delivery = await this.#deliver(shardId, converted);
        if (delivery.kind === 'stopped') return;
        if (epoch !== this.#epoch) {
          // Rewound while this batch was in flight: read again from the rewound checkpoint.
          iterator = undefined;
          continue;
        }
        if (delivery.kind === 'retry') {
          if (delivery.before) this.#checkpoint(shardId, delivery.before);
          iterator = undefined; // read again AT_SEQUENCE_NUMBER the failed record
          continue;
        }
        this.#checkpoint(shardId, sequenceOf(converted[converted.length - 1] as DynamoDBRecord));
        if (!next) {
          this.#shardClosed(shardId);
          return;
        }
        iterator = next;
      } catch (error) {
        if (this.#stopping) return;
        const name = (error as Error).name;
        iterator = undefined;
        if (name === 'ExpiredIteratorException') continue;
        if (name === 'TrimmedDataAccessException') {
          if (this.#checkpoints.has(shardId) || this.#retries.has(shardId)) {
            // The checkpoint is older than the stream's retention: resume at the oldest record kept.
            this.#log(`shard ${shardId}: records past the stream's retention were trimmed; resuming at the oldest record`);
            this.#checkpoints.delete(shardId);
            this.#retries.delete(shardId);
          } else {
            // DynamoDB Local says so for a TRIM_HORIZON iterator taken on a brand-new shard; read again shortly.
            await this.#sleep(this.#o.idlePollMs);
          }
          continue;
        }
        if (name === 'ResourceNotFoundException') return;
        consecutiveErrors++;
        if (consecutiveErrors === 1 || consecutiveErrors % 20 === 0) {
          this.#log(`shard ${shardId}: cannot read (${name}: ${(error as Error).message}); retrying`);
        }
        await this.#sleep(Math.min(5_000, 100 * 2 ** Math.min(consecutiveErrors, 6)));
      }
    }
  }

  /**
   * Deliver one read of the shard. Returns where to continue: past the
   * whole read, or again from a failed record (retry by re-reading).
   */
  async #deliver(shardId: string, records: DynamoDBRecord[]): Promise<Delivery> {
    const batch = records.filter(this.#o.filter);
    if (batch.length === 0) return { kind: 'done' };
    const result = await this.#invoke(batch);
    if (result.kind === 'stopped') return { kind: 'stopped' };
    if (result.kind === 'ok') {
      this.#retries.delete(shardId);
      return { kind: 'done' };
    }
    if (result.kind === 'error' && this.#o.bisectOnError && batch.length > 1) {
      this.#retries.delete(shardId);
      const mid = Math.ceil(batch.length / 2);
      for (const half of [batch.slice(0, mid), batch.slice(mid)]) {
        if ((await this.#processInMemory(shardId, half)) === 'stopped') return { kind: 'stopped' };
      }
      return { kind: 'done' };
    }
    const index = result.kind === 'partial' ? result.index : 0;
    const failed = batch[index] as DynamoDBRecord;
    const from = sequenceOf(failed);
    const previous = this.#retries.get(shardId);
    const failures = (previous?.sequenceNumber === from ? previous.failures : 0) + 1;
    if (failures > this.#o.maxRetryAttempts) {
      this.#retries.delete(shardId);
      this.#deadLetter(shardId, batch.slice(index), failures, result.kind === 'error');
      return { kind: 'done' };
    }
    this.#retries.set(shardId, { sequenceNumber: from, failures });
    if (!(await this.#backoff(failures))) return { kind: 'stopped' };
    const at = records.indexOf(failed);
    const before = at > 0 ? sequenceOf(records[at - 1] as DynamoDBRecord) : undefined;
    return before ? { kind: 'retry', from, before } : { kind: 'retry', from };
  }

  /** Bisected halves are retried from memory (stream records never change). */
  async #processInMemory(shardId: string, batch: DynamoDBRecord[]): Promise<'done' | 'stopped'> {
    let pending = batch;
    let failures = 0;
    for (;;) {
      if (this.#stopping) return 'stopped';
      const result = await this.#invoke(pending);
      if (result.kind === 'stopped') return 'stopped';
      if (result.kind === 'ok') return 'done';
      if (result.kind === 'error' && this.#o.bisectOnError && pending.length > 1) {
        const mid = Math.ceil(pending.length / 2);
        for (const half of [pending.slice(0, mid), pending.slice(mid)]) {
          if ((await this.#processInMemory(shardId, half)) === 'stopped') return 'stopped';
        }
        return 'done';
      }
      if (result.kind === 'partial' && result.index > 0) {
        // Progress: the records before the failure are done; count afresh for the new head.
        pending = pending.slice(result.index);
        failures = 0;
      }
      failures++;
      if (failures > this.#o.maxRetryAttempts) {
        this.#deadLetter(shardId, pending, failures, result.kind === 'error');
        return 'done';
      }
      if (!(await this.#backoff(failures))) return 'stopped';
    }
  }

  async #invoke(batch: DynamoDBRecord[]): Promise<InvokeResult> {
    for (;;) {
      while (this.#paused && !this.#stopping) await this.#paused.promise;
      if (this.#stopping) return { kind: 'stopped' };
      const outages = this.#outages;
      const result = await this.#invokeOnce(batch);
      if (result.kind === 'ok' || (outages === this.#outages && !this.#paused)) return result;
      // The store went away during this invocation: not the function's failure; again once it is back.
      this.#log(`${this.#o.fn.name} function: ${batch.length} record(s) are invoked again once DynamoDB Local is back`);
    }
  }

  async #invokeOnce(batch: DynamoDBRecord[]): Promise<InvokeResult> {
    const event: DynamoDBStreamEvent = { Records: batch };
    const outcome = await invokeFunction(this.#o.fn, event, this.#o.region);
    this.#stats.invocations++;
    if (!outcome.ok) {
      this.#stats.failedInvocations++;
      this.#log(`${this.#o.fn.name} function failed on ${batch.length} record(s) (${outcome.reason}): ${outcome.error.message}`);
      return { kind: 'error' };
    }
    const failures = (outcome.result as { batchItemFailures?: unknown } | null)?.batchItemFailures;
    if (!Array.isArray(failures) || failures.length === 0) {
      this.#stats.recordsDelivered += batch.length;
      return { kind: 'ok' };
    }
    this.#stats.failedInvocations++;
    let index = batch.length;
    for (const failure of failures) {
      const id = (failure as { itemIdentifier?: unknown } | null)?.itemIdentifier;
      const at = typeof id === 'string' && id !== '' ? batch.findIndex((r) => sequenceOf(r) === id) : -1;
      // Lambda treats a missing or unknown identifier as a failure of the whole batch.
      if (at === -1) return { kind: 'partial', index: 0 };
      index = Math.min(index, at);
    }
    this.#stats.recordsDelivered += index;
    return { kind: 'partial', index };
  }

  #deadLetter(shardId: string, records: DynamoDBRecord[], invokeCount: number, functionError: boolean): void {
    const first = records[0] as DynamoDBRecord;
    const last = records[records.length - 1] as DynamoDBRecord;
    this.#stats.deadLettered += records.length;
    this.#log(
      `shard ${shardId}: ${records.length} record(s) from ${sequenceOf(first)} to ${sequenceOf(last)} sent to the failure queue after ${invokeCount} attempts`,
    );
    this.#o.failures.send({
      requestContext: {
        requestId: randomUUID(),
        functionArn: functionArn(this.#o.fn.name, this.#o.region),
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: invokeCount,
      },
      responseContext: {
        statusCode: 200,
        executedVersion: '$LATEST',
        ...(functionError ? { functionError: 'Unhandled' as const } : {}),
      },
      version: '1.0',
      timestamp: new Date().toISOString(),
      DDBStreamBatchInfo: {
        shardId,
        startSequenceNumber: sequenceOf(first),
        endSequenceNumber: sequenceOf(last),
        approximateArrivalOfFirstRecord: arrival(first),
        approximateArrivalOfLastRecord: arrival(last),
        batchSize: records.length,
        streamArn: this.#streamArn,
      },
    });
  }

  /** Wait before retry `n` (1-based); false when stopping. */
  async #backoff(n: number): Promise<boolean> {
    await this.#sleep(this.#o.retryBackoffMs * 2 ** (n - 1));
    return !this.#stopping;
  }

  #sleep(ms: number): Promise<void> {
    if (this.#stopping) return Promise.resolve();
    return new Promise((resolveSleep) => {
      const wake = () => {
        clearTimeout(timer);
        this.#sleepers.delete(wake);
        resolveSleep();
      };
      const timer = setTimeout(wake, ms);
      this.#sleepers.add(wake);
    });
  }

  #shardClosed(shardId: string): void {
    this.#closed.add(shardId);
    this.#closedAt.set(shardId, Date.now());
    this.#saveCheckpoints();
    this.#wakeDiscovery?.(); // its children may start now
  }

  #checkpoint(shardId: string, sequenceNumber: string): void {
    const now = Date.now();
    const recent = this.#recent.get(shardId) ?? [{ at: 0, sequenceNumber: this.#checkpoints.get(shardId) }];
    recent.push({ at: now, sequenceNumber });
    // Keep the last rewindMs (and the newest older one, the point a rewind may go back to).
    const keepFrom = recent.findLastIndex((c) => c.at <= now - this.#o.rewindMs);
    if (keepFrom > 0) recent.splice(0, keepFrom);
    this.#recent.set(shardId, recent);
    this.#checkpoints.set(shardId, sequenceNumber);
    this.#saveCheckpoints();
  }

  /** Move every shard back to the checkpoint it had at `cutoff` (ms since the epoch); shards closed since are read again. */
  #rewind(cutoff: number): void {
    this.#epoch++;
    this.#retries.clear();
    for (const [shardId, recent] of this.#recent) {
      const back = recent.findLast((c) => c.at <= cutoff) ?? recent[0];
      if (back === undefined) continue;
      if (back.sequenceNumber === undefined) this.#checkpoints.delete(shardId);
      else this.#checkpoints.set(shardId, back.sequenceNumber);
      this.#recent.set(shardId, [back]);
    }
    for (const [shardId, at] of this.#closedAt) {
      if (at > cutoff) {
        this.#closed.delete(shardId);
        this.#closedAt.delete(shardId);
      }
    }
    this.#saveCheckpoints();
  }

  #loadCheckpoints(): void {
    const file = this.#o.checkpointFile;
    if (!file) return;
    let saved: CheckpointFile;
    try {
      saved = JSON.parse(readFileSync(file, 'utf8')) as CheckpointFile;
    } catch {
      return; // none yet, or unreadable: start from the oldest record (the profile function is idempotent)
    }
    if (saved.streamArn !== this.#streamArn) return;
    for (const [shardId, state] of Object.entries(saved.shards ?? {})) {
      if (state.sequenceNumber) this.#checkpoints.set(shardId, state.sequenceNumber);
      if (state.closed) this.#closed.add(shardId);
    }
  }

  #saveCheckpoints(): void {
    const file = this.#o.checkpointFile;
    if (!file) return;
    const shards: CheckpointFile['shards'] = {};
    for (const [id, sequenceNumber] of this.#checkpoints) shards[id] = { sequenceNumber };
    for (const id of this.#closed) shards[id] = { ...shards[id], closed: true };
    const body: CheckpointFile = { streamArn: this.#streamArn, shards };
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(`${file}.tmp`, JSON.stringify(body), 'utf8');
    renameSync(`${file}.tmp`, file);
  }
}
