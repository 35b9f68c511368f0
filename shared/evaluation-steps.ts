/**
 * The deployed evaluation's steps and what travels between them (the state
 * machine of infra/constructs/evaluation.ts):
 *
 * 1. inputs (functions/evaluation-inputs): the candidate catalog checked,
 *    the outcomes of the range indexed and the learning statistics summed
 *    (shared/store/evaluation-inputs.ts), written to the evaluation bucket
 *    for the map step (`writeEvaluationInputs`): the catalog and the
 *    statistics as one JSON object (`evaluations/<execution>/inputs.json`),
 *    the outcome index split by shard as the shuffle splits the log
 *    (`evaluations/<execution>/outcomes/<shard>.json`, shuffle.ts
 *    `shardOutcomes`), for KAIROS_EVALUATION_SHARDS shards;
 * 2. shuffle: a Distributed Map over the decision log's objects under the
 *    range's common `dt=` prefix (S3 ListObjectsV2), in batches: each batch
 *    one invocation of functions/evaluation-shuffle, which sends each line
 *    of its objects of a day in the range to the shard of its decision's
 *    reference (shared/domain/evaluation/shuffle.ts), written as GZIP JSON
 *    lines under the execution's scratch prefix of the evaluation bucket
 *    (`shuffle/<execution>/<shard>/<batch>-<part>.jsonl.gz`, expired by the
 *    bucket's lifecycle) → the counts of the lines no shard takes;
 * 3. a Distributed Map over the shards: each shard one invocation of
 *    functions/evaluation-map, the map step of
 *    shared/domain/evaluation/evaluate.ts on every part of the shard with
 *    one set of the references read and the shard's own outcomes → one
 *    PartitionSums. Every copy of a decision's record is in one shard, so
 *    it is evaluated once, whatever objects and batches its copies were
 *    delivered in;
 * 4. reduce (functions/evaluation-reduce): the shuffle's and the shards'
 *    results → the Evaluation, the execution's output.
 *
 * Both Distributed Maps write their results to the evaluation bucket with
 * their ResultWriter (under the execution's `resultsPrefixOf`, expired by
 * the bucket's lifecycle), not into the execution's state (at most 256 KB): what travels
 * to the reduce step is where their manifests are (`MapResultsLocation`),
 * and the reduce step reads the results from there (`readMapResults`).
 */
import { reduceEvaluation, type Evaluation, type OutcomeIndex, type PartitionSums } from '#domain/evaluation/evaluate.ts';
import { shardOutcomes, shuffledPartitions, type ShuffleCounts } from '#domain/evaluation/shuffle.ts';
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

/** The inputs step's event: the request, the execution's name and where the decision log's partitions start. */
export interface InputsEvent {
  readonly request: EvaluationRequest;
  readonly execution: string;
  /** The decision log's prefix (infra/constructs/decision-log.ts DECISION_LOG_PREFIX). */
  readonly logPrefix: string;
}

/** The inputs step's result: the state the map and reduce steps read. */
export interface InputsResult {
  readonly inputsKey: string;
  /** Where the shards' outcomes are (`shardOutcomesKeyOf`). */
  readonly outcomesPrefix: string;
  /** The ListObjectsV2 prefix of the range's days: the longest common prefix of their `dt=` folders. */
  readonly listPrefix: string;
  /** The execution's scratch prefix in the evaluation bucket (`scratchPrefixOf`). */
  readonly scratchPrefix: string;
  /** The execution's prefix of its maps' results in the evaluation bucket (`resultsPrefixOf`), their ResultWriter's. */
  readonly resultsPrefix: string;
  /** The number of shards (KAIROS_EVALUATION_SHARDS, config-ranges.ts EVALUATION_SHARDS) … */
  readonly shardCount: number;
  /** … and the shards, 0 … shardCount − 1: the items of the map over the shards. */
  readonly shards: readonly number[];
  readonly from: string;
  readonly to: string;
  readonly reward: 'click' | 'conversion';
  readonly minSupport: number;
}

/** The object the inputs step writes for every map invocation (the outcomes are written apart, by shard). */
export interface EvaluationInputs {
  readonly catalog: string;
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
  readonly outcomesPrefix: string;
  readonly from: string;
  readonly to: string;
}

/** Where a Distributed Map's ResultWriter wrote its manifest: the map state's `ResultWriterDetails`. */
export interface MapResultsLocation {
  readonly Bucket: string;
  readonly Key: string;
}

/** The reduce step's event: where the shuffle's counts (one per batch) and the shards' sums are. */
export interface ReduceEvent {
  readonly shuffled: MapResultsLocation;
  readonly partitions: MapResultsLocation;
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

/** Where the outcomes of an execution's shards are written in the evaluation bucket (`shardOutcomesKeyOf`). */
export const outcomesPrefixOf = (execution: string): string => `evaluations/${execution}/outcomes/`;

/** The outcomes of a shard's decisions (shuffle.ts `shardOutcomes`): `<outcomes prefix><shard, 4 digits>.json`. */
export const shardOutcomesKeyOf = (outcomesPrefix: string, shard: number): string => `${outcomesPrefix}${String(shard).padStart(4, '0')}.json`;

/** The evaluation bucket's prefix of the evaluation's Distributed Maps' results (their ResultWriter; expired by the bucket's lifecycle like the scratch objects). */
export const RESULTS_PREFIX = 'results/';

/**
 * An execution's ResultWriter prefix in the evaluation bucket,
 * `results/<execution>`: Step Functions writes each map run's manifest and
 * result files under `<prefix>/<map run id>/`.
 */
export const resultsPrefixOf = (execution: string): string => `${RESULTS_PREFIX}${execution}`;

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

/** Objects written at once. */
const PUTS_AT_ONCE = 16;

/**
 * The inputs step's objects (module docstring, step 1): the catalog and the
 * statistics for every map invocation, and the outcome index split into
 * `shardCount` shards by decision reference (shuffle.ts `shardOutcomes`),
 * one object per shard, `{}` for a shard without outcomes. Returns their
 * keys.
 */
export async function writeEvaluationInputs(
  objects: EvaluationObjects,
  bucket: string,
  execution: string,
  inputs: EvaluationInputs & { readonly outcomes: OutcomeIndex },
  shardCount: number,
): Promise<{ readonly inputsKey: string; readonly outcomesPrefix: string }> {
  const inputsKey = inputsKeyOf(execution);
  const outcomesPrefix = outcomesPrefixOf(execution);
  const shards = shardOutcomes(inputs.outcomes, shardCount);
  for (let i = 0; i < shards.length; i += PUTS_AT_ONCE) {
    await Promise.all(shards.slice(i, i + PUTS_AT_ONCE).map((outcomes, j) => objects.put(bucket, shardOutcomesKeyOf(outcomesPrefix, i + j), Buffer.from(JSON.stringify(outcomes)))));
  }
  const shared: EvaluationInputs = { catalog: inputs.catalog, counts: inputs.counts };
  await objects.put(bucket, inputsKey, Buffer.from(JSON.stringify(shared)));
  return { inputsKey, outcomesPrefix };
}

/**
 * A Distributed Map's ResultWriter manifest (`<prefix><map run id>/manifest.json`):
 * the result files of its child executions by status, each a JSON array of
 * `MapRunResult`.
 */
export interface MapResultsManifest {
  readonly DestinationBucket: string;
  readonly MapRunArn: string;
  readonly ResultFiles: {
    readonly FAILED: readonly { readonly Key: string; readonly Size: number }[];
    readonly PENDING: readonly { readonly Key: string; readonly Size: number }[];
    readonly SUCCEEDED: readonly { readonly Key: string; readonly Size: number }[];
  };
}

/** One child execution in a ResultWriter result file: its `Output` is the JSON text of what the item's Lambda returned. */
export interface MapRunResult {
  readonly Name: string;
  readonly Status: string;
  readonly Input: string;
  readonly Output: string;
}

/**
 * The outputs of a Distributed Map's child executions, read from its
 * ResultWriter's manifest and result files (in the manifest's order). A
 * map whose children did not all succeed fails the step: an error naming
 * the manifest and the count (the state machine tolerates no failed item,
 * so this is a defect).
 */
export async function readMapResults<T>(objects: EvaluationObjects, location: MapResultsLocation): Promise<T[]> {
  const manifest = JSON.parse((await objects.get(location.Bucket, location.Key)).toString('utf8')) as MapResultsManifest;
  const unfinished = manifest.ResultFiles.FAILED.length + manifest.ResultFiles.PENDING.length;
  if (unfinished > 0) throw new Error(`the map run of ${location.Key} has ${unfinished} result file(s) of failed or pending items`);
  const outputs: T[] = [];
  for (const file of manifest.ResultFiles.SUCCEEDED) {
    for (const result of JSON.parse((await objects.get(location.Bucket, file.Key)).toString('utf8')) as MapRunResult[]) {
      if (result.Status !== 'SUCCEEDED') throw new Error(`the map run of ${location.Key} has an item ${result.Status} (${result.Name})`);
      outputs.push(JSON.parse(result.Output) as T);
    }
  }
  return outputs;
}

/**
 * What a Distributed Map's ResultWriter writes for `outputs` (each a child
 * execution's output, all succeeded): one result file and the manifest,
 * under `<prefix>/<run>/` (`run` in place of the map run's id). The local
 * run of the steps writes its map results with it, so the reduce step
 * reads them as deployed.
 */
export async function writeMapResults(objects: EvaluationObjects, bucket: string, prefix: string, run: string, outputs: readonly unknown[]): Promise<MapResultsLocation> {
  const folder = `${prefix}/${run}/`;
  const results: MapRunResult[] = outputs.map((output, i) => ({ Name: `${run}-${i}`, Status: 'SUCCEEDED', Input: '{}', Output: JSON.stringify(output) }));
  const file = Buffer.from(JSON.stringify(results));
  await objects.put(bucket, `${folder}SUCCEEDED_0.json`, file);
  const manifest: MapResultsManifest = {
    DestinationBucket: bucket,
    MapRunArn: `local:${run}`,
    ResultFiles: { FAILED: [], PENDING: [], SUCCEEDED: [{ Key: `${folder}SUCCEEDED_0.json`, Size: file.length }] },
  };
  const location = { Bucket: bucket, Key: `${folder}manifest.json` };
  await objects.put(bucket, location.Key, Buffer.from(JSON.stringify(manifest)));
  return location;
}

/**
 * The reduce step (module docstring, step 4): the shuffle's counts and the
 * shards' sums read from the maps' results (`readMapResults`) and reduced
 * (evaluate.ts `reduceEvaluation`). Run by functions/evaluation-reduce
 * deployed and by `npm run evaluate` locally, on the same result files.
 */
export async function reduceMapResults(objects: EvaluationObjects, event: ReduceEvent): Promise<{ readonly evaluation: Evaluation; readonly batches: number; readonly shards: number }> {
  const shuffled = await readMapResults<ShuffleCounts>(objects, event.shuffled);
  const partitions = await readMapResults<PartitionSums>(objects, event.partitions);
  const evaluation = reduceEvaluation(shuffledPartitions(shuffled, partitions), { reward: event.reward, minSupport: event.minSupport });
  return { evaluation, batches: shuffled.length, shards: partitions.length };
}
