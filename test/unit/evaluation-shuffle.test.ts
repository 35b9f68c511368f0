/**
 * The deployed evaluation counts a decision once across the whole log:
 * the decision log is delivered at least once (the log subscription and
 * Firehose retry), so a decision's record may sit in two S3 objects that
 * the Distributed Map hands to different batches. The handlers the state
 * machine runs (functions/evaluation-shuffle, evaluation-map,
 * evaluation-reduce; infra/constructs/evaluation.ts) are driven here as
 * the state machine drives them — the inputs written (the outcomes split
 * by shard), the log's objects listed under the range's prefix in key
 * order and batched, every shard mapped, both maps' results written as
 * their ResultWriter writes them, the reduce reading them from there — on
 * Firehose-shaped objects (GZIP JSON lines
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
import { shardOf, shardOutcomes } from '#domain/evaluation/shuffle.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { evaluationShuffle } from '#functions/evaluation-shuffle/handler.ts';
import { evaluationMap } from '#functions/evaluation-map/handler.ts';
import { evaluationReduce } from '#functions/evaluation-reduce/handler.ts';
import {
  keyInRange,
  listPrefixOf,
  resultsPrefixOf,
  scratchPrefixOf,
  shardOutcomesKeyOf,
  writeEvaluationInputs,
  writeMapResults,
} from '#shared/evaluation-steps.ts';
import { memoryObjects } from '../support/memory-objects.ts';

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

/** The deployed path: the state machine's steps, the inputs step's writing of the inputs on, on the log's objects in a bucket. */
async function deployed(run: Run, objects = memoryObjects()): Promise<Evaluation> {
  run.objects.forEach((lines, i) => void objects.put(LOG_BUCKET, objectKey(i), gzipSync(lines.map((l) => `${l}\n`).join(''))));
  const execution = 'evaluation-run-1';
  // What the inputs step writes and returns (functions/evaluation-inputs).
  const { inputsKey, outcomesPrefix } = await writeEvaluationInputs(objects, EVALUATION_BUCKET, execution, { catalog: CANDIDATE, outcomes: run.outcomes, counts: [] }, run.shards);
  const state = { inputsKey, outcomesPrefix, resultsPrefix: resultsPrefixOf(execution), listPrefix: listPrefixOf('decisions/', FROM, TO), scratchPrefix: scratchPrefixOf(execution), from: new Date(FROM).toISOString(), to: new Date(TO).toISOString() };
  // The Distributed Map: ListObjectsV2 under the prefix (key order), batched; its ResultWriter writes the batches' counts.
  const listed = await objects.list(LOG_BUCKET, state.listPrefix);
  const shuffle = evaluationShuffle({ objects, logBucket: LOG_BUCKET, evaluationBucket: EVALUATION_BUCKET, ...(run.flushBytes !== undefined ? { flushBytes: run.flushBytes } : {}) });
  const counts = [];
  for (let i = 0; i < listed.length; i += run.batch) {
    counts.push(await shuffle({ Items: listed.slice(i, i + run.batch).map((Key) => ({ Key })), BatchInput: { scratchPrefix: state.scratchPrefix, shardCount: run.shards, from: state.from, to: state.to } }));
  }
  const shuffled = await writeMapResults(objects, EVALUATION_BUCKET, state.resultsPrefix, 'shuffle-run', counts);
  // The Distributed Map over the shards, its ResultWriter writing the shards' sums.
  const map = evaluationMap({ objects, evaluationBucket: EVALUATION_BUCKET });
  const sums = [];
  for (let shard = 0; shard < run.shards; shard++) sums.push(await map({ shard, scratchPrefix: state.scratchPrefix, inputsKey: state.inputsKey, outcomesPrefix: state.outcomesPrefix, from: state.from, to: state.to }));
  const partitions = await writeMapResults(objects, EVALUATION_BUCKET, state.resultsPrefix, 'shards-run', sums);
  return evaluationReduce(objects)({ shuffled, partitions, reward: 'click', minSupport: 0 });
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

describe('the outcomes of a shard', () => {
  it('are all a map invocation reads of the outcome index: its own shard’s object, whose references all hash to it', async () => {
    const objects = memoryObjects();
    const log = [Array.from({ length: 40 }, (_, n) => line(`n${n}`, n % 2 === 0 ? 0 : 1))];
    const outcomes: OutcomeIndex = Object.fromEntries(Array.from({ length: 40 }, (_, n) => [`${SECOND}.n${n}`, [`click ${n % 2 === 0 ? 'a' : 'b'}`]]));
    const shards = 5;
    const evaluation = await deployed({ objects: log, outcomes, batch: 20, shards }, objects);
    expect(evaluation).toMatchObject({ ok: true, replayed: 40 });
    const outcomeObjects = objects.reads.filter((key) => key.includes('/outcomes/'));
    // Each shard's map invocation got its own shard's outcomes once, and no other outcomes.
    expect(outcomeObjects).toEqual(Array.from({ length: shards }, (_, shard) => shardOutcomesKeyOf('evaluations/evaluation-run-1/outcomes/', shard)));
    let total = 0;
    for (let shard = 0; shard < shards; shard++) {
      const part = JSON.parse((await objects.get(EVALUATION_BUCKET, shardOutcomesKeyOf('evaluations/evaluation-run-1/outcomes/', shard))).toString('utf8')) as OutcomeIndex;
      for (const reference of Object.keys(part)) expect(shardOf(reference, shards)).toBe(shard);
      total += Object.keys(part).length;
    }
    expect(total).toBe(40);
  });

  it('give the estimates of the whole index, for any assignment of decisions and outcomes to shards', async () => {
    const kinds = ['click a', 'click b', 'impression a', 'impression b'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom<0 | 1>(0, 1), { minLength: 1, maxLength: 40 }),
        // Outcomes of logged decisions (by index) and of decisions the log does not hold (other nonces).
        fc.array(fc.tuple(fc.nat(), fc.subarray(kinds, { minLength: 1 })), { maxLength: 40 }),
        fc.array(fc.tuple(fc.string({ minLength: 1, maxLength: 6 }), fc.subarray(kinds, { minLength: 1 })), { maxLength: 10 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 10 }),
        async (served, logged, stray, shards, batch) => {
          const outcomes: Record<string, readonly string[]> = {};
          for (const [n, k] of logged) outcomes[`${SECOND}.n${n % served.length}`] = k;
          for (const [nonce, k] of stray) outcomes[`${SECOND + 1}.x${nonce}`] = k;
          const objects = [served.map((s, n) => line(`n${n}`, s))];
          const unsharded = local({ objects, outcomes, batch, shards: 1 });
          expect(await deployed({ objects, outcomes, batch, shards })).toEqual(unsharded);
          expect(await deployed({ objects, outcomes, batch, shards: 1 })).toEqual(unsharded);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('the shard count at the edges of its range (config-ranges.ts EVALUATION_SHARDS: 1 to 1000)', () => {
  const outcomes: OutcomeIndex = Object.fromEntries(Array.from({ length: 300 }, (_, n) => [`${SECOND}.n${n}`, ['click a']]));

  it('splits the outcomes into 1 shard (the whole index) or 1000, each reference in its decision’s shard', () => {
    expect(shardOutcomes(outcomes, 1)).toEqual([outcomes]);
    const split = shardOutcomes(outcomes, 1000);
    expect(split).toHaveLength(1000);
    split.forEach((part, shard) => {
      for (const reference of Object.keys(part)) expect(shardOf(reference, 1000)).toBe(shard);
    });
    expect(split.reduce((n, part) => n + Object.keys(part).length, 0)).toBe(300);
  });

  it('the shuffle step takes 1 and 1000 shards and refuses 0, 1001 and a fraction (a defect of the state machine’s input)', async () => {
    const objects = memoryObjects();
    await objects.put(LOG_BUCKET, objectKey(0), gzipSync(`${line('n1', 0)}\n`));
    const shuffle = evaluationShuffle({ objects, logBucket: LOG_BUCKET, evaluationBucket: EVALUATION_BUCKET });
    const run = (shardCount: number) => shuffle({ Items: [{ Key: objectKey(0) }], BatchInput: { scratchPrefix: scratchPrefixOf(`x${shardCount}`), shardCount, from: new Date(FROM).toISOString(), to: new Date(TO).toISOString() } });
    for (const shardCount of [1, 1000]) expect(await run(shardCount)).toEqual({ records: 0, malformed: 0 });
    for (const shardCount of [0, 1001, 2.5]) await expect(run(shardCount)).rejects.toThrow(/^shardCount must be a whole number from 1 to 1000/);
  });

  it('evaluates with 1000 shards as with 1', async () => {
    const log = [Array.from({ length: 30 }, (_, n) => line(`n${n}`, n % 2 === 0 ? 0 : 1))];
    const one = await deployed({ objects: log, outcomes, batch: 20, shards: 1 });
    expect(one).toMatchObject({ ok: true, replayed: 30 });
    expect(await deployed({ objects: log, outcomes, batch: 20, shards: 1000 })).toEqual(one);
  });
});
