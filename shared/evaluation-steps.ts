/**
 * The deployed evaluation's steps and what travels between them (the state
 * machine of infra/constructs/evaluation.ts):
 *
 * 1. inputs (functions/evaluation-inputs): the candidate catalog checked,
 *    the outcomes of the range indexed and the learning statistics summed
 *    (shared/store/evaluation-inputs.ts), written as one JSON object to the
 *    evaluation bucket (`evaluations/<execution>/inputs.json`);
 * 2. shuffle: a Distributed Map over the decision log's objects under the
 *    range's common `dt=` prefix (S3 ListObjectsV2), in batches: each batch
 *    one invocation of functions/evaluation-shuffle, which sends each line
 *    of its objects of a day in the range to the shard of its decision's
 *    reference (shared/domain/evaluation/shuffle.ts), written as GZIP JSON
 *    lines under the execution's scratch prefix of the evaluation bucket
 *    (`shuffle/<execution>/<shard>/<batch>-<part>.jsonl.gz`, expired by the
 *    bucket's lifecycle) → the counts of the lines no shard takes;
 * 3. a Map over the shards: each shard one invocation of
 *    functions/evaluation-map, the map step of
 *    shared/domain/evaluation/evaluate.ts on every part of the shard with
 *    one set of the references read → one PartitionSums. Every copy of a
 *    decision's record is in one shard, so it is evaluated once, whatever
 *    objects and batches its copies were delivered in;
 * 4. reduce (functions/evaluation-reduce): the shuffle's and the shards'
 *    sums → the Evaluation, the execution's output.
 */
import type { Evaluation, OutcomeIndex, PartitionSums } from '#domain/evaluation/evaluate.ts';
import type { ShuffleCounts } from '#domain/evaluation/shuffle.ts';
import type { OutcomeCounts } from '#domain/learning/statistics.ts';

/** The state machine's input (what `npm run evaluate -- --deployed` sends). */
export interface EvaluationRequest {
  /** The candidate catalog, YAML or JSON text (Step Functions takes an input of up to 256 KB). */
  readonly catalog: string;
  /** Decisions made from this instant (ISO-8601) … */
  readonly from: string;
  /** … to before this one. */
  readonly to: string;
  /** Support bar of the reduce step (evaluate.ts DEFAULT_MIN_SUPPORT when absent). */
  readonly minSupport?: number;
}

/** The inputs step's event: the request, the execution's name, where the decision log's partitions start, and the number of shards. */
export interface InputsEvent {
  readonly request: EvaluationRequest;
  readonly execution: string;
  /** The decision log's prefix (infra/constructs/decision-log.ts DECISION_LOG_PREFIX). */
  readonly logPrefix: string;
  /** How many shards the log's records are sent to (1 … shuffle.ts MAX_SHARDS; the construct's `shards`). */
  readonly shardCount: number;
}

/** The inputs step's result: the state the map and reduce steps read. */
export interface InputsResult {
  readonly inputsKey: string;
  /** The ListObjectsV2 prefix of the range's days: the longest common prefix of their `dt=` folders. */
  readonly listPrefix: string;
  /** The execution's scratch prefix in the evaluation bucket (`scratchPrefixOf`). */
  readonly scratchPrefix: string;
  /** The number of shards … */
  readonly shardCount: number;
  /** … and the shards, 0 … shardCount − 1: the items of the map over the shards. */
  readonly shards: readonly number[];
  readonly from: string;
  readonly to: string;
  readonly reward: 'click' | 'conversion';
  readonly minSupport: number;
}

/** The object the inputs step writes for the map step. */
export interface EvaluationInputs {
  readonly catalog: string;
  readonly outcomes: OutcomeIndex;
  /** Windowed counts per cell (learning/statistics.ts `cellKey`). */
  readonly counts: readonly (readonly [string, OutcomeCounts])[];
}

/** One shuffle invocation's event: a batch of the Distributed Map's items (ListObjectsV2 entries) and the batch input. */
export interface ShuffleEvent {
  readonly Items: readonly { readonly Key: string }[];
  readonly BatchInput: { readonly scratchPrefix: string; readonly shardCount: number; readonly from: string; readonly to: string };
}

/** One map invocation's event: a shard and the state it reads. */
export interface MapEvent {
  readonly shard: number;
  readonly scratchPrefix: string;
  readonly inputsKey: string;
  readonly from: string;
  readonly to: string;
}

/** The reduce step's event: the shuffle's counts (one per batch) and the shards' sums. */
export interface ReduceEvent {
  readonly shuffled: readonly ShuffleCounts[];
  readonly partitions: readonly PartitionSums[];
  readonly reward: 'click' | 'conversion';
  readonly minSupport: number;
}

/**
 * The S3 objects the steps read and write (deployed: shared/aws-requests.ts
 * `s3Objects`). `list`: the keys under a prefix, in ascending order.
 */
export interface EvaluationObjects {
  readonly get: (bucket: string, key: string) => Promise<Buffer>;
  readonly put: (bucket: string, key: string, body: Buffer) => Promise<void>;
  readonly list: (bucket: string, prefix: string) => Promise<readonly string[]>;
}

export type { Evaluation };

const DAY_MS = 86_400_000;

/** The UTC day (yyyy-MM-dd) of an instant. */
const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Where the inputs of an execution are written in the evaluation bucket. */
export const inputsKeyOf = (execution: string): string => `evaluations/${execution}/inputs.json`;

/** The evaluation bucket's prefix of the shuffle's scratch objects (expired by the bucket's lifecycle; infra/constructs/evaluation.ts). */
export const SCRATCH_PREFIX = 'shuffle/';

/** An execution's scratch prefix in the evaluation bucket. */
export const scratchPrefixOf = (execution: string): string => `${SCRATCH_PREFIX}${execution}/`;

/** The prefix of a shard's parts under an execution's scratch prefix (the shard's number, 4 digits). */
export const shardPrefixOf = (scratchPrefix: string, shard: number): string => `${scratchPrefix}${String(shard).padStart(4, '0')}/`;

/** A part a shuffle batch writes to a shard: `<shard prefix><batch>-<part>.jsonl.gz`. */
export const shardPartKeyOf = (scratchPrefix: string, shard: number, batch: string, part: number): string => `${shardPrefixOf(scratchPrefix, shard)}${batch}-${part}.jsonl.gz`;

/**
 * How far a decision's day in the log may stand from the day it was made,
 * ms. A day's file or folder holds what arrived that UTC day, not what was
 * decided then: a decision made just before midnight is written just after
 * it (the local log's flush, 50 ms; deployed, the log subscription's
 * delivery), and Firehose names an object by the arrival of its oldest
 * record, so an object begun before midnight holds what arrived up to its
 * 5-minute buffer later. An hour covers both with room for delays.
 */
export const LOG_DAY_MARGIN_MS = 3_600_000;

/**
 * Whether the decision log's partition of a UTC day (`yyyy-mm-dd`: a local
 * file, a `dt=` folder) may hold decisions made in [from, to), epoch ms: its
 * day widened by LOG_DAY_MARGIN_MS each side overlaps the range.
 */
export function logDayMayHold(day: string, from: number | undefined, to: number | undefined): boolean {
  const start = Date.parse(`${day}T00:00:00Z`);
  if (!Number.isFinite(start)) return true;
  return (from === undefined || start + DAY_MS + LOG_DAY_MARGIN_MS > from) && (to === undefined || start - LOG_DAY_MARGIN_MS < to);
}

/** The longest common prefix of the `dt=` folders whose objects may hold decisions from `from` to just before `to` (epoch ms; `logDayMayHold`). */
export function listPrefixOf(logPrefix: string, from: number, to: number): string {
  const first = `${logPrefix}dt=${dayOf(from - LOG_DAY_MARGIN_MS)}/`;
  const last = `${logPrefix}dt=${dayOf(Math.max(from, to - 1) + LOG_DAY_MARGIN_MS)}/`;
  let n = 0;
  while (n < first.length && first[n] === last[n]) n++;
  return first.slice(0, n);
}

/** Whether an object of the decision log (`…dt=yyyy-MM-dd/…`) may hold decisions of [from, to) (`logDayMayHold`); an object outside any `dt=` folder is read. */
export function keyInRange(key: string, from: number, to: number): boolean {
  const day = /(?:^|\/)dt=(\d{4}-\d{2}-\d{2})\//.exec(key)?.[1];
  return day === undefined || logDayMayHold(day, from, to);
}
