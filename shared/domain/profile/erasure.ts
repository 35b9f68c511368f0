/**
 * The rules an erasure of a customer follows, in the domain's terms, read by
 * the two that apply them: the profile plan (plan.ts), which drops what the
 * erased customer did and replaces the erased customer's items it meets, and
 * the erasure itself (shared/store/erasure.ts), which deletes them.
 *
 * - `happenedAt`: when an event happened, for an erasure: at or before the
 *   erasure, the erased customer's (dropped by the plan, deleted by the
 *   erasure); after it, the returning customer's;
 * - `nextRunEnding`: the next share of an erased customer's journey runs in
 *   progress to end in a write of its own, before the write that deletes or
 *   replaces its item (DynamoDB's MAX_TRANSACTION_ITEMS items per
 *   transaction: the item and one journey counter per run ended); the
 *   profile plan ends so, too, the runs a merge drops past its write's room.
 *
 * Which items are the erased customer's is profile-item.ts
 * `erasedCustomersItem`.
 */
import type { StoredEvent } from '../stored-event.ts';
import { timerOrigin } from '../journeys/timer.ts';
import { endRunsInProgress, endedRunCounts, type JourneyCount, type RunEnd } from '../journeys/machine.ts';
import { MAX_TRANSACTION_ITEMS } from '../transaction-budget.ts';
import { cloneProfileState, type ProfileState } from './state.ts';

/**
 * When an event happened, for an erasure (epoch ms): its receipt or its time
 * (`timestamp`), whichever is earlier, and for a timer what set it off if
 * earlier still (journeys/timer.ts `timerOrigin`). An event that happened at
 * or before its key's erasure is the erased customer's (dropped by the plan,
 * deleted by the erasure); one that happened after it, the returning
 * customer's.
 */
export function happenedAt(event: Pick<StoredEvent, 'receivedAt' | 'timestamp' | 'sourceId' | 'type' | 'event' | 'properties'>): number {
  return Math.min(Date.parse(event.receivedAt), Date.parse(event.timestamp), timerOrigin(event) ?? Number.POSITIVE_INFINITY);
}

/**
 * Runs an ending write ends: one transaction holds the erased customer's
 * item and one journey counter per run ended (each run is of its own
 * journey, so of its own counter).
 */
export const RUNS_PER_ENDING_WRITE = MAX_TRANSACTION_ITEMS - 1;

/** An ending write: the erased customer's state with a share of its runs ended, and their counts. */
export interface RunEnding {
  /** The state to put again (its `keyErasedAt` kept: still the erased customer's item). */
  readonly state: ProfileState;
  /** The journey report's counts of the runs it ends (`exited` at the erasure), at most RUNS_PER_ENDING_WRITE. */
  readonly counts: readonly JourneyCount[];
}

/**
 * The next write that ends runs of the erased customer's profile `state`
 * (its key erased at `erasedAt`, epoch ms) before the write that deletes or
 * replaces the item: `state` with its first RUNS_PER_ENDING_WRITE runs in
 * progress (by journey id) ended `exited` at `erasedAt` (machine.ts
 * `endRunsInProgress`), and their counts; undefined once at most `keep` runs
 * are left in progress, which the write that deletes or replaces the item
 * counts itself (`keep` 0: it counts none). Apply it to its own `state` for
 * the write after it: a run ended is no longer in progress, so each is
 * counted once however the writes are retried or resumed.
 *
 * `end` names other runs to end, and why (machine.ts `RunEnd`): the profile
 * plan ends so, before the write that merges an anonymous profile, the runs
 * of it the merge drops (machine.ts `joinRuns`, EXIT_REASONS.merged), at
 * the merge's time, when they are more than that write has room for.
 */
export function nextRunEnding(state: ProfileState, erasedAt: number, keep: number, end: RunEnd = {}): RunEnding | undefined {
  if (endedRunCounts(state.journeys, erasedAt, end).length <= Math.max(0, keep)) return undefined;
  const { runs, counts } = endRunsInProgress(state.journeys, erasedAt, RUNS_PER_ENDING_WRITE, end);
  return { state: { ...cloneProfileState(state), journeys: runs }, counts };
}
