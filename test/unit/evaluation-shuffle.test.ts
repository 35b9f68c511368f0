/**
 * The deployed evaluation counts a decision once across the whole log:
 * the decision log is delivered at least once (the log subscription and
 * Firehose retry), so a decision's record may sit in two S3 objects that
 * the Distributed Map hands to different batches. The handlers the state
 * machine runs (functions/evaluation-shuffle, evaluation-map,
 * evaluation-reduce; infra/constructs/evaluation.ts) are driven here as
 * the state machine drives them — the log's objects listed under the
 * range's prefix in key order and batched, every shard mapped, the reduce
 * over both maps' results — on Firehose-shaped objects (GZIP JSON lines
 * under `decisions/dt=…/`) in an in-memory bucket standing in for S3
 * (which no emulator here provides), and their answer is compared with
 * the local path's (scripts/evaluate.ts: one map step over every file).
 */
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';

// Before the handlers' loggers read it: their per-batch and per-shard lines would flood the output of the property below.
vi.hoisted(() => {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
});
import { decisionRecordsOfText } from '#domain/evaluation/decision-record.ts';
import { mapStep, reduceEvaluation, type Evaluation, type OutcomeIndex } from '#domain/evaluation/evaluate.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { evaluationShuffle } from '#functions/evaluation-shuffle/handler.ts';
import { evaluationMap } from '#functions/evaluation-map/handler.ts';
import { evaluationReduce } from '#functions/evaluation-reduce/handler.ts';
import { inputsKeyOf, keyInRange, listPrefixOf, scratchPrefixOf, type EvaluationInputs, type EvaluationObjects } from '#shared/evaluation-steps.ts';

const LOG_BUCKET = 'kairos-decision-log';
const EVALUATION_BUCKET = 'kairos-evaluation';

/** The candidate serves `a` first to everyone. */
const CANDIDATE = JSON.stringify({
  learning: { enabled: false },
  actions: [
    { id: 'a', name: 'a', value: 2, content: { web: { title: 'A' } } },
    { id: 'b', name: 'b', content: { web: { title: 'B' } } },
  ],
});
const candidate = (() => {
  const loaded = loadCatalog(CANDIDATE, 'json');
  if (!loaded.ok) throw new Error('candidate');
  return loaded.catalog;
})();

const FROM = Date.parse('2026-11-20T00:00:00Z');
const TO = Date.parse('2026-11-21T00:00:00Z');
const SECOND = Date.parse('2026-11-20T10:00:00Z') / 1000;
const FEATURES = { sg: [], sc: {}, fl: {}, cx: {} };

/** A version 5 log line as decide logs it: `a` and `b` at 0.5 each, `served` (its index in `e`) served, sampled. */
const line = (nonce: string, served: 0 | 1): string =>
  JSON.stringify({
    level: 'INFO',
    message: 'decision record',
    decision: { v: 5, id: `${SECOND}.${nonce}`, cv: '3', ch: 'web', c: 'pseudonym', e: [['a', 2, 0.5], ['b', 1, 0.5]], s: [[served]], f: FEATURES },
  });

/** A version 1 record (the long form, no `v`) whose decision id does not open: read, and counted unreadable. */
const UNOPENED = JSON.stringify({
  decisionId: 'not-a-decision-id',
  at: '2026-11-20T10:00:00.000Z',
  catalogVersion: '3',
  channel: 'web',
  customer: 'pseudonym',
  fallback: false,
  degraded: false,
  eligible: [{ actionId: 'a', score: 2, probability: 1 }],
  served: [{ actionId: 'a', score: 2, probability: 1 }],
});

/** A Firehose object key of the day (`decisions/dt=…/<stream>-<version>-<time>-<id>`), in the order written. */
const objectKey = (i: number): string => `decisions/dt=2026-11-20/kairos-decisions-1-2026-11-20-10-${String(i).padStart(4, '0')}-0c1d.gz`;

/** An in-memory bucket store with S3's answers: NoSuchKey, keys listed in ascending order. */
function memoryObjects(): EvaluationObjects & { readonly keys: (bucket: string) => string[] } {
  const stored = new Map<string, Buffer>();
  const id = (bucket: string, key: string) => `${bucket}\u0000${key}`;
  const keys = (bucket: string) =>
    [...stored.keys()]
      .filter((k) => k.startsWith(`${bucket}\u0000`))
      .map((k) => k.slice(bucket.length + 1))
      .sort();
  return {
    get: async (bucket, key) => {
      const body = stored.get(id(bucket, key));
      if (!body) throw new Error(`NoSuchKey: ${bucket}/${key}`);
      return body;
    },
    put: async (bucket, key, body) => {
      stored.set(id(bucket, key), Buffer.from(body));
    },
    list: async (bucket, prefix) => keys(bucket).filter((k) => k.startsWith(prefix)),
    keys,
  };
}

interface Run {
  /** The log's objects: each a list of lines, written in this order (`objectKey`). */
  readonly objects: readonly (readonly string[])[];
  readonly outcomes: OutcomeIndex;
  /** Decision log objects per shuffle invocation (the Distributed Map's MaxItemsPerBatch). */
  readonly batch: number;
  readonly shards: number;
  /** Lines waiting in a shuffle invocation before it writes them as parts (small: several parts per shard). */
  readonly flushBytes?: number;
}

/** The deployed path: the state machine's steps after the inputs step, on the log's objects in a bucket. */
async function deployed(run: Run): Promise<Evaluation> {
  const objects = memoryObjects();
  run.objects.forEach((lines, i) => void objects.put(LOG_BUCKET, objectKey(i), gzipSync(lines.map((l) => `${l}\n`).join(''))));
  const execution = 'evaluation-run-1';
  // What the inputs step writes and returns (functions/evaluation-inputs).
  const inputs: EvaluationInputs = { catalog: CANDIDATE, outcomes: run.outcomes, counts: [] };
  await objects.put(EVALUATION_BUCKET, inputsKeyOf(execution), Buffer.from(JSON.stringify(inputs)));
  const state = { inputsKey: inputsKeyOf(execution), listPrefix: listPrefixOf('decisions/', FROM, TO), scratchPrefix: scratchPrefixOf(execution), from: new Date(FROM).toISOString(), to: new Date(TO).toISOString() };
  // The Distributed Map: ListObjectsV2 under the prefix (key order), batched.
  const listed = await objects.list(LOG_BUCKET, state.listPrefix);
  const shuffle = evaluationShuffle({ objects, logBucket: LOG_BUCKET, evaluationBucket: EVALUATION_BUCKET, ...(run.flushBytes !== undefined ? { flushBytes: run.flushBytes } : {}) });
  const shuffled = [];
  for (let i = 0; i < listed.length; i += run.batch) {
    shuffled.push(await shuffle({ Items: listed.slice(i, i + run.batch).map((Key) => ({ Key })), BatchInput: { scratchPrefix: state.scratchPrefix, shardCount: run.shards, from: state.from, to: state.to } }));
  }
  // The Map over the shards.
  const map = evaluationMap({ objects, evaluationBucket: EVALUATION_BUCKET });
  const partitions = [];
  for (let shard = 0; shard < run.shards; shard++) partitions.push(await map({ shard, scratchPrefix: state.scratchPrefix, inputsKey: state.inputsKey, from: state.from, to: state.to }));
  return evaluationReduce({ shuffled, partitions, reward: 'click', minSupport: 0 });
}

/** The local path (scripts/evaluate.ts `evaluateLocalLog`): each object a file of the folder, in name order, one map step over them all. */
function local(run: Run): Evaluation {
  const step = mapStep({ candidate, outcomes: run.outcomes, from: FROM, to: TO });
  const files = run.objects.map((lines, i) => ({ name: objectKey(i), text: lines.join('\n') })).filter((f) => keyInRange(f.name, FROM, TO));
  return reduceEvaluation(
    files.map((f) => step(decisionRecordsOfText(f.text))),
    { reward: 'click', minSupport: 0 },
  );
}

describe('a decision whose record sits in two objects of different batches', () => {
  // 25 objects of four decisions each: batches of 20 put objects 0 … 19 in one shuffle invocation, 20 … 24 in another.
  const objects = Array.from({ length: 25 }, (_, o) => Array.from({ length: 4 }, (_, d) => line(`n${o * 4 + d}`, d % 2 === 0 ? 0 : 1)));
  // Every decision that served `a` was clicked.
  const outcomes: OutcomeIndex = Object.fromEntries(Array.from({ length: 100 }, (_, n) => n).filter((n) => n % 2 === 0).map((n) => [`${SECOND}.n${n}`, ['click a']]));
  // Decision n0 (served `a`, clicked: weight 2) delivered again into the last object, of the second batch.
  const redelivered = objects.map((lines, o) => (o === 24 ? [...lines, line('n0', 0)] : lines));

  it('is evaluated once by the deployed steps: counted a duplicate, its weight not doubled', async () => {
    const once = await deployed({ objects, outcomes, batch: 20, shards: 32 });
    const twice = await deployed({ objects: redelivered, outcomes, batch: 20, shards: 32 });
    expect(once).toMatchObject({ ok: true, records: 100, duplicates: 0, replayed: 100 });
    expect(twice).toMatchObject({ ok: true, records: 101, duplicates: 1, replayed: 100 });
    if (!once.ok || !twice.ok) throw new Error('refused');
    expect(twice.estimate).toEqual(once.estimate);
    // The candidate serves `a`: weight 2 on the 50 decisions that served it, all clicked: IPS = 100 / 100.
    expect(twice.estimate.ips.estimate).toBe(1);
  });

  it('gives the local path’s answer, also with one shard, one object per batch and a part per few lines', async () => {
    // And lines no shard takes: one that is no record, a record whose id does not open.
    const log = redelivered.map((lines, o) => (o === 3 ? [...lines, 'not a record', UNOPENED] : lines));
    const expected = local({ objects: log, outcomes, batch: 20, shards: 32 });
    expect(expected).toMatchObject({ ok: true, records: 102, malformed: 2, duplicates: 1, replayed: 100 });
    for (const run of [
      { batch: 20, shards: 32 },
      { batch: 1, shards: 1 },
      { batch: 7, shards: 5, flushBytes: 2_000 },
    ]) {
      expect(await deployed({ objects: log, outcomes, ...run })).toEqual(expected);
    }
  });

  it('writes the shuffle’s parts only under the execution’s scratch prefix, GZIP JSON lines named by shard and batch', async () => {
    const objects = memoryObjects();
    await objects.put(LOG_BUCKET, objectKey(0), gzipSync(`${line('n1', 0)}\nnot a record\n${UNOPENED}\n`));
    const shuffle = evaluationShuffle({ objects, logBucket: LOG_BUCKET, evaluationBucket: EVALUATION_BUCKET });
    const kept = await shuffle({ Items: [{ Key: objectKey(0) }], BatchInput: { scratchPrefix: scratchPrefixOf('x'), shardCount: 4, from: new Date(FROM).toISOString(), to: new Date(TO).toISOString() } });
    expect(kept).toEqual({ records: 1, malformed: 2 });
    const written = objects.keys(EVALUATION_BUCKET);
    expect(written).toHaveLength(1);
    expect(written[0]).toMatch(/^shuffle\/x\/000[0-3]\/[0-9a-f]{16}-0\.jsonl\.gz$/);
  });
});

describe('the deployed path and the local path', () => {
  it('give the same evaluation for logs with random duplicates spread over random objects, batches and shards', async () => {
    const decisionArb = fc.record({ served: fc.constantFrom<0 | 1>(0, 1), clicked: fc.boolean() });
    await fc.assert(
      fc.asyncProperty(
        fc.array(decisionArb, { minLength: 1, maxLength: 30 }),
        // Each delivery of a decision (its index; the first delivery of each decision is added below): copies, anywhere.
        fc.array(fc.nat(), { maxLength: 30 }),
        fc.integer({ min: 1, max: 30 }),
        fc.infiniteStream(fc.nat()),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 8 }),
        fc.nat({ max: 3 }),
        async (decisions, copies, objectCount, placements, batch, shards, garbage) => {
          const lines = [...decisions.map((d, n) => line(`n${n}`, d.served)), ...copies.map((c) => line(`n${c % decisions.length}`, decisions[c % decisions.length]?.served ?? 0)), ...Array.from({ length: garbage }, () => '{"not":"a record"')];
          const objects: string[][] = Array.from({ length: objectCount }, () => []);
          const where = placements[Symbol.iterator]();
          for (const l of lines) objects[(where.next().value as number) % objectCount]?.push(l);
          const outcomes: OutcomeIndex = Object.fromEntries(decisions.flatMap((d, n) => (d.clicked ? [[`${SECOND}.n${n}`, [`click ${d.served === 0 ? 'a' : 'b'}`]]] : [])));
          const run = { objects, outcomes, batch, shards };
          const expected = local(run);
          expect(expected).toMatchObject({ records: lines.length - garbage, malformed: garbage, duplicates: copies.length, replayed: decisions.length });
          expect(await deployed(run)).toEqual(expected);
        },
      ),
      { numRuns: 150 },
    );
  });
});
