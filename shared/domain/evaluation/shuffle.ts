/**
 * The shuffle of the deployed evaluation: the decision log's lines sent to
 * shards by their decision's reference, so that every copy of a decision's
 * record — however many objects the log's at-least-once delivery put it in —
 * lands in the same shard, and one map step per shard (evaluate.ts
 * `mapStep`, one `seen` over the shard's parts) evaluates it once.
 *
 * A line goes to `shardOf(reference, shards)` as it is (its text, not a
 * re-serialised record), so the map step reads it exactly as the local
 * path reads the log. What cannot reach a shard is counted here, as the map
 * step would count it: a line that is no decision record (`malformed`), a
 * record whose decision id does not open (a record read, and `malformed`).
 */
import type { DecisionKey } from '../decide/decision-id.ts';
import { hash32 } from '../decide/random.ts';
import { decisionRecordOfLine } from './decision-record.ts';
import { EMPTY_PARTITION, referenceOf, type OutcomeIndex, type PartitionSums } from './evaluate.ts';

/**
 * What the shuffle kept out of the shards, as the map step would have
 * counted it (`PartitionSums`' fields of the same names): `records`,
 * readable records whose decision id does not open; `malformed`, those
 * and the lines that are no record. One per shuffle batch: the results of
 * the shuffle's Distributed Map, which its ResultWriter writes to S3 for
 * the reduce step (shared/evaluation-steps.ts).
 */
export interface ShuffleCounts {
  readonly records: number;
  readonly malformed: number;
}

export const NO_SHUFFLE_COUNTS: ShuffleCounts = Object.freeze({ records: 0, malformed: 0 });

/** Two shuffle counts together. */
export const addShuffleCounts = (a: ShuffleCounts, b: ShuffleCounts): ShuffleCounts => ({ records: a.records + b.records, malformed: a.malformed + b.malformed });

/** The shuffle's counts and the shards' sums as the partitions of the reduce step (evaluate.ts `reduceEvaluation`). */
export function shuffledPartitions(shuffled: Iterable<ShuffleCounts>, shards: Iterable<PartitionSums>): PartitionSums[] {
  let counts = NO_SHUFFLE_COUNTS;
  for (const c of shuffled) counts = addShuffleCounts(counts, c);
  return [{ ...EMPTY_PARTITION, ...counts }, ...shards];
}

/** The shard of a decision reference (evaluate.ts `decisionRef`), 0 … shards − 1: a 32-bit FNV-1a hash modulo `shards`. */
export function shardOf(reference: string, shards: number): number {
  return hash32(reference) % shards;
}

/**
 * The outcome index (evaluate.ts `indexOutcomes`, keyed by decision
 * reference) split as the shuffle splits the log: entry `s` holds the
 * outcomes of the references `shardOf` sends to shard `s`, so the map step
 * of a shard needs only its own entry — every record it reads has its
 * reference there. `shards`: 1 or more.
 */
export function shardOutcomes(outcomes: OutcomeIndex, shards: number): OutcomeIndex[] {
  const parts: Record<string, readonly string[]>[] = Array.from({ length: shards }, () => ({}));
  for (const [reference, kinds] of Object.entries(outcomes)) (parts[shardOf(reference, shards)] as Record<string, readonly string[]>)[reference] = kinds;
  return parts;
}

/**
 * One text of the log (an object's JSON lines) sent line by line to
 * `send(shard, line)`; returns the counts of what was kept out
 * (`ShuffleCounts`). `decisionKey`:
 * the key the ids are sealed with (absent: plain ids).
 */
export function shuffleText(text: string, shards: number, decisionKey: DecisionKey | undefined, send: (shard: number, line: string) => void): ShuffleCounts {
  let unreadable = 0;
  let unopened = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const record = decisionRecordOfLine(line);
    if (!record) {
      unreadable++;
      continue;
    }
    const reference = referenceOf(record, decisionKey);
    if (reference === undefined) {
      unopened++;
      continue;
    }
    send(shardOf(reference, shards), line);
  }
  return { records: unopened, malformed: unreadable + unopened };
}
