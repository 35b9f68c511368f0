/**
 * The local event source mapping against DynamoDB Local's real stream, with
 * small functions of the test's own: what Lambda's DynamoDB mapping
 * promises — INSERT only, batch size, order, `batchItemFailures` retried from
 * the failed record, bisect on a function error, bounded retries, the
 * on-failure record, the shard moving on, clean stop, checkpoints kept.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTableCommand, DeleteItemCommand, DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FailureQueue } from '#local/failure-queue.ts';
import type { LocalFunction } from '#local/lambda.ts';
import { StreamPoller, eventNameFilter, type StreamPollerOptions } from '#local/stream-poller.ts';
import { createTableInput } from '#local/tables.ts';
import { eventsTable } from '#store/tables.ts';
import { dispatcherStreamSettings } from '#shared/functions.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';

const endpoint = process.env.DYNAMODB_ENDPOINT ?? '';
const region = 'us-east-1';
let client: DynamoDBClient;
const pollers: StreamPoller[] = [];

beforeAll(() => {
  assertLocalEndpoint(endpoint, 'This test');
  client = new DynamoDBClient({ endpoint, region, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
});

afterEach(async () => {
  await Promise.all(pollers.splice(0).map((p) => p.stop()));
});

afterAll(() => client.destroy());

/** A fresh streaming table per test, from the Events table definition: no other test's records in its stream. */
async function createTableNow(name: string): Promise<void> {
  await client.send(new CreateTableCommand(createTableInput(eventsTable, name)));
}

async function put(table: string, id: string, extra: Record<string, { S: string } | { B: Uint8Array }> = {}): Promise<void> {
  await client.send(new PutItemCommand({ TableName: table, Item: { pk: { S: id }, ...extra } }));
}

interface Probe {
  readonly fn: LocalFunction;
  readonly invocations: DynamoDBRecord[][];
  /** Ids (pk) of records in invocations that succeeded, in delivery order. */
  readonly applied: string[];
}

const idOf = (r: DynamoDBRecord): string => r.dynamodb?.NewImage?.pk?.S ?? r.dynamodb?.Keys?.pk?.S ?? '';

/** A function that succeeds, or fails as `decide` says: throw, or report item failures. */
function probe(decide: (records: DynamoDBRecord[]) => 'ok' | 'throw' | string[] = () => 'ok', delayMs = 0): Probe {
  const invocations: DynamoDBRecord[][] = [];
  const applied: string[] = [];
  const handler = async (event: unknown) => {
    const records = (event as DynamoDBStreamEvent).Records;
    invocations.push(records);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    const verdict = decide(records);
    if (verdict === 'throw') throw new Error('poison');
    if (verdict === 'ok') {
      applied.push(...records.map(idOf));
      return { batchItemFailures: [] };
    }
    // Like a Powertools batch handler: every record not reported has been processed.
    const failed = new Set(verdict);
    applied.push(...records.filter((r) => !failed.has(idOf(r))).map(idOf));
    return {
      batchItemFailures: records.filter((r) => failed.has(idOf(r))).map((r) => ({ itemIdentifier: r.dynamodb?.SequenceNumber })),
    };
  };
  return { fn: { name: 'probe', handler, timeoutSeconds: 5, memorySize: 128 }, invocations, applied };
}

async function startPoller(table: string, p: Probe, options: Partial<StreamPollerOptions> = {}) {
  const failures = options.failures ?? new FailureQueue();
  const poller = new StreamPoller({
    endpoint,
    region,
    tableName: table,
    fn: p.fn,
    failures,
    retryBackoffMs: 10,
    idlePollMs: 20,
    discoverIntervalMs: 200,
    log: () => undefined,
    ...options,
  });
  pollers.push(poller);
  await poller.start();
  return { poller, failures };
}

/**
 * Wait for a condition, never for a fixed time: it returns as soon as the condition holds, and the deadline
 * (well inside the tier's 60 s test timeout) only decides how long a broken poller takes to be reported.
 */
async function until(condition: () => boolean, what: string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);

describe('the local stream poller (event source mapping)', () => {
  it('delivers only INSERT records, in order, in batches no larger than the batch size, as a real DynamoDBStreamEvent', async () => {
    const table = `poller-${randomUUID().slice(0, 8)}`;
    await createTableNow(table);
    const p = probe();
    const { poller } = await startPoller(table, p, { batchSize: 4 });
    const want = ids('in', 10);
    for (const id of want) await put(table, id, { blob: { B: new Uint8Array([0, 1, 254, 255]) } });
    await client.send(
      new UpdateItemCommand({
        TableName: table,
        Key: { pk: { S: 'in-00' } },
        UpdateExpression: 'SET touched = :t',
        ExpressionAttributeValues: { ':t': { S: 'yes' } },
      }),
    );
    await client.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'in-01' } } }));
    await put(table, 'last');
    await until(() => p.applied.includes('last'), 'the last insert');

    expect(p.applied).toEqual([...want, 'last']); // once each, in order; the MODIFY and REMOVE never delivered
    expect(p.invocations.every((batch) => batch.length >= 1 && batch.length <= 4)).toBe(true);
    const record = p.invocations[0]?.[0] as DynamoDBRecord;
    expect(record).toMatchObject({
      eventName: 'INSERT',
      eventSource: 'aws:dynamodb',
      eventVersion: expect.any(String),
      eventID: expect.any(String),
      awsRegion: expect.any(String),
      eventSourceARN: poller.streamArn,
      dynamodb: {
        Keys: { pk: { S: 'in-00' } },
        NewImage: { pk: { S: 'in-00' }, blob: { B: Buffer.from([0, 1, 254, 255]).toString('base64') } },
        SequenceNumber: expect.stringMatching(/^\d+$/),
        SizeBytes: expect.any(Number),
        StreamViewType: 'NEW_IMAGE',
        ApproximateCreationDateTime: expect.any(Number),
      },
    });
    expect(poller.streamArn).toMatch(/^arn:aws:dynamodb:.*:table\/poller-.*\/stream\//);
    const sequence = p.invocations.flat().map((r) => BigInt(r.dynamodb?.SequenceNumber ?? '0'));
    expect([...sequence].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))).toEqual(sequence);
  });

  it("delivers the kinds of record its mapping's settings name: the Outbox's (dispatcher) inserts and removals, in order, never a MODIFY", async () => {
    const table = `poller-${randomUUID().slice(0, 8)}`;
    await createTableNow(table);
    const p = probe();
    await startPoller(table, p, { filter: eventNameFilter(dispatcherStreamSettings.eventNames) });
    await put(table, 'o-1');
    await client.send(
      new UpdateItemCommand({ TableName: table, Key: { pk: { S: 'o-1' } }, UpdateExpression: 'SET touched = :t', ExpressionAttributeValues: { ':t': { S: 'yes' } } }),
    );
    await client.send(new DeleteItemCommand({ TableName: table, Key: { pk: { S: 'o-1' } } }));
    await put(table, 'last');
    await until(() => p.applied.includes('last'), 'the last insert');
    expect(p.invocations.flat().map((r) => [r.eventName, idOf(r)])).toEqual([
      ['INSERT', 'o-1'],
      ['REMOVE', 'o-1'],
      ['INSERT', 'last'],
    ]);
  });

  it('bisects a batch on a function error, dead-letters the poison record after bounded retries, applies the rest and moves on', async () => {
    const table = `poller-${randomUUID().slice(0, 8)}`;
    await createTableNow(table);
    const p = probe((records) => (records.some((r) => idOf(r) === 'b-05') ? 'throw' : 'ok'));
    const first = ids('b', 10);
    // Written before the poller starts: the whole group is one read of the shard, one batch.
    await Promise.all(first.map((id) => put(table, id)));
    const { poller, failures } = await startPoller(table, p, { batchSize: 100, maxRetryAttempts: 3 });
    await until(() => failures.list().length === 1 && first.filter((id) => id !== 'b-05').every((id) => p.applied.includes(id)), 'the poison record to be dead-lettered');

    const poisonRecord = p.invocations.flat().find((r) => idOf(r) === 'b-05') as DynamoDBRecord;
    const seq = poisonRecord.dynamodb?.SequenceNumber;
    const [failure] = failures.list();
    expect(failure).toMatchObject({
      requestContext: {
        condition: 'RetryAttemptsExhausted',
        approximateInvokeCount: 4, // the first attempt and 3 retries
        functionArn: expect.stringMatching(/^arn:aws:lambda:us-east-1:\d{12}:function:kairos-probe$/),
        requestId: expect.any(String),
      },
      responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
      version: '1.0',
      timestamp: expect.any(String),
      DDBStreamBatchInfo: {
        shardId: expect.stringMatching(/^shardId-/),
        startSequenceNumber: seq,
        endSequenceNumber: seq,
        batchSize: 1,
        streamArn: poller.streamArn,
        approximateArrivalOfFirstRecord: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
        approximateArrivalOfLastRecord: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/),
      },
    });
    // Invoked alone 4 times, then given up: never retried forever.
    const alone = p.invocations.filter((batch) => batch.length === 1 && idOf(batch[0] as DynamoDBRecord) === 'b-05');
    expect(alone).toHaveLength(4);
    expect(p.applied).not.toContain('b-05');

    // The shard is not blocked: later records flow.
    await put(table, 'after');
    await until(() => p.applied.includes('after'), 'a record after the poison one');
    expect(failures.list()).toHaveLength(1);
  });

  it('honours batchItemFailures: records before the failure are done, the batch is read again from the failed record', async () => {
    const table = `poller-${randomUUID().slice(0, 8)}`;
    await createTableNow(table);
    const p = probe((records) => (records.some((r) => idOf(r) === 'p-03') ? ['p-03'] : 'ok'));
    const all = ids('p', 6);
    for (const id of all) await put(table, id); // in this order in the stream, one read when the poller starts
    const { failures } = await startPoller(table, p, { batchSize: 100, maxRetryAttempts: 2 });
    await until(() => failures.list().length === 1 && ['p-04', 'p-05'].every((id) => p.applied.includes(id)), 'the reported record to be dead-lettered');

    const [failure] = failures.list();
    expect(failure?.requestContext.approximateInvokeCount).toBe(3);
    expect(failure?.responseContext.functionError).toBeUndefined(); // the function succeeded; it reported a failed item
    const poisonSeq = p.invocations.flat().find((r) => idOf(r) === 'p-03')?.dynamodb?.SequenceNumber;
    expect(failure?.DDBStreamBatchInfo.startSequenceNumber).toBe(poisonSeq);
    // Every retry starts at the failed record (AT_SEQUENCE_NUMBER): the records before it are never sent again.
    const withPoison = p.invocations.filter((batch) => batch.some((r) => idOf(r) === 'p-03'));
    expect(withPoison).toHaveLength(3);
    for (const batch of withPoison.slice(1)) expect(idOf(batch[0] as DynamoDBRecord)).toBe('p-03');
    for (const id of ['p-00', 'p-01', 'p-02']) expect(p.applied.filter((x) => x === id)).toHaveLength(1);
    expect(p.applied).toEqual(expect.arrayContaining(all.filter((id) => id !== 'p-03')));
  });

  it('treats an unknown itemIdentifier as a failure of the whole batch', async () => {
    const table = `poller-${randomUUID().slice(0, 8)}`;
    await createTableNow(table);
    let calls = 0;
    const invocations: number[] = [];
    const fn: LocalFunction = {
      name: 'probe',
      timeoutSeconds: 5,
      memorySize: 128,
      handler: async (event) => {
        invocations.push((event as DynamoDBStreamEvent).Records.length);
        calls++;
        return { batchItemFailures: [{ itemIdentifier: 'not-a-sequence-number' }] };
      },
    };
    const { failures } = await startPoller(table, { fn, invocations: [], applied: [] }, { maxRetryAttempts: 1 });
    await put(table, 'x-1');
    await until(() => failures.list().length === 1, 'the batch to be dead-lettered');
    expect(calls).toBe(2);
    expect(failures.list()[0]?.DDBStreamBatchInfo.batchSize).toBe(1);
  });

  it('stops cleanly: the batch in flight finishes first, and a restarted poller resumes after its checkpoint', async () => {
    const table = `poller-${randomUUID().slice(0, 8)}`;
    await createTableNow(table);
    const dir = mkdtempSync(join(tmpdir(), 'kairos-poller-'));
    try {
      const checkpointFile = join(dir, 'checkpoints.json');
      let finished = 0;
      const slow = probe(() => {
        finished++;
        return 'ok';
      }, 300);
      const { poller } = await startPoller(table, slow, { checkpointFile });
      await put(table, 'c-1');
      await until(() => slow.invocations.length === 1, 'the first invocation to start');
      await poller.stop();
      expect(finished).toBe(1); // stop() waited for the function
      expect(JSON.parse(readFileSync(checkpointFile, 'utf8')).streamArn).toBe(poller.streamArn);

      await put(table, 'c-2');
      const next = probe();
      await startPoller(table, next, { checkpointFile });
      await until(() => next.applied.includes('c-2'), 'the record written while stopped');
      expect(next.applied).toEqual(['c-2']); // c-1 is not delivered again
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('after an outage reads each shard again from its checkpoint of rewindMs before it (the emulator may lose its last writes), and not further back', async () => {
    const table = `poller-${randomUUID().slice(0, 8)}`;
    await createTableNow(table);
    const p = probe();
    const { poller } = await startPoller(table, p, { rewindMs: 60_000 });
    for (const id of ['r-1', 'r-2']) await put(table, id);
    await until(() => p.applied.includes('r-2'), 'the records before the outage');
    poller.pause();
    poller.resume();
    await put(table, 'r-3');
    await until(() => p.applied.includes('r-3'), 'the record after the outage');
    // Checkpointed within the last minute: delivered again (the profile function's markers make that harmless).
    expect(p.applied).toEqual(['r-1', 'r-2', 'r-1', 'r-2', 'r-3']);

    const q = probe();
    const { poller: second } = await startPoller(table, q, { rewindMs: 0 });
    await until(() => q.applied.includes('r-3'), 'a second poller to read the stream');
    second.pause();
    second.resume();
    await put(table, 'r-4');
    await until(() => q.applied.includes('r-4'), 'the record after the second outage');
    // No rewind window: nothing before the outage again. r-4 may come twice: a read in flight across the
    // pause can return it, and a batch read before a rewind does not move the checkpoint (at least once).
    expect(q.applied.slice(0, 4)).toEqual(['r-1', 'r-2', 'r-3', 'r-4']);
    expect(q.applied.slice(4).every((id) => id === 'r-4')).toBe(true);
  });
});
