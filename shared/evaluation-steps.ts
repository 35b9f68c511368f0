/**
 * The deployed evaluation's steps and what travels between them (the state
 * machine of infra/constructs/evaluation.ts):
 *
 * 1. inputs (functions/evaluation-inputs): the candidate catalog checked,
 *    the outcomes of the range indexed and the learning statistics summed
 *    (shared/store/evaluation-inputs.ts), written as one JSON object to the
 *    evaluation bucket (`evaluations/<execution>/inputs.json`);
 * 2. a Distributed Map over the decision log's objects under the range's
 *    common `dt=` prefix (S3 ListObjectsV2), in batches: each batch one
 *    invocation of functions/evaluation-map, the map step of
 *    shared/domain/evaluation/evaluate.ts on each object of a day in the
 *    range → one PartitionSums;
 * 3. reduce (functions/evaluation-reduce): the sums → the Evaluation, the
 *    execution's output.
 */
import type { Evaluation, OutcomeIndex, PartitionSums } from '#domain/evaluation/evaluate.ts';
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
  /** The ListObjectsV2 prefix of the range's days: the longest common prefix of their `dt=` folders. */
  readonly listPrefix: string;
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

/** One map invocation's event: a batch of the Distributed Map's items (ListObjectsV2 entries) and the batch input. */
export interface MapEvent {
  readonly Items: readonly { readonly Key: string }[];
  readonly BatchInput: { readonly inputsKey: string; readonly from: string; readonly to: string };
}

/** The reduce step's event. */
export interface ReduceEvent {
  readonly partitions: readonly PartitionSums[];
  readonly reward: 'click' | 'conversion';
  readonly minSupport: number;
}

export type { Evaluation };

const DAY_MS = 86_400_000;

/** The UTC day (yyyy-MM-dd) of an instant. */
const dayOf = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** Where the inputs of an execution are written in the evaluation bucket. */
export const inputsKeyOf = (execution: string): string => `evaluations/${execution}/inputs.json`;

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
