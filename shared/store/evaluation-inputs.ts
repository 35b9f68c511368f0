/**
 * What an off-policy evaluation reads from the store besides the decision
 * log (shared/domain/evaluation/evaluate.ts): the outcomes of the decisions
 * made in a time range, indexed by decision, and the learning statistics the
 * candidate decides with and the direct method reads. Shared by
 * `npm run evaluate` (scripts/evaluate.ts) and the evaluation function.
 */
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import type { DecisionKey } from '#domain/decide/decision-id.ts';
import type { LearningStats } from '#domain/decide/types.ts';
import { indexOutcomes, type OutcomeEvent, type OutcomeIndex } from '#domain/evaluation/evaluate.ts';
import { anonymousProfileKey, userProfileKey } from '#domain/stored-event.ts';
import { windowedCounts, type OutcomeCounts } from '#domain/learning/statistics.ts';
import { ATTRIBUTION_WINDOW_MS, CLOCK_SKEW_MS } from '#domain/profile/outcomes.ts';
import type { DynamoClient } from './client.ts';
import { readErasures } from './erasure.ts';
import { readOutcomeEvents } from './outcome-events.ts';
import { readStatistics } from './statistics.ts';
import { learningStatsOf } from './statistics-cache.ts';

export interface EvaluationRange {
  /** Decisions made at or after this instant, epoch ms. */
  readonly from: number;
  /** Decisions made before this instant, epoch ms. */
  readonly to: number;
}

/**
 * The outcomes of decisions made in `range`: the outcome events stamped from
 * CLOCK_SKEW_MS before its start to the longest attribution window
 * (impressions and clicks, or the candidate's conversion window) after its
 * end, attributed with `decisionKey` (a Scan of the Events table:
 * outcome-events.ts); an outcome whose decision was issued at or before the
 * erasure of the event's userId or anonymousId (their erasure records,
 * erasure.ts `readErasures`) was the erased customer's and counts for
 * nothing, as on the profile.
 */
export async function readOutcomeIndex(
  candidate: CompiledCatalog,
  range: EvaluationRange,
  decisionKey: DecisionKey,
  options: { readonly client?: DynamoClient; readonly table?: string } = {},
): Promise<OutcomeIndex> {
  const windowMs = Math.max(ATTRIBUTION_WINDOW_MS, candidate.learning.conversionWindowMs);
  const events: OutcomeEvent[] = [];
  for await (const event of readOutcomeEvents({ from: range.from - CLOCK_SKEW_MS, to: range.to + windowMs, ...options })) events.push(event);
  const keysOf = (event: OutcomeEvent): string[] => [
    ...(event.userId !== undefined ? [userProfileKey(event.userId)] : []),
    ...(event.anonymousId !== undefined ? [anonymousProfileKey(event.anonymousId)] : []),
  ];
  const erasures = await readErasures(new Set(events.flatMap(keysOf)), options.client ? { client: options.client } : {});
  const erasedAt = (event: OutcomeEvent): number | undefined => {
    const times = keysOf(event).flatMap((key) => erasures.get(key) ?? []);
    return times.length > 0 ? Math.max(...times) : undefined;
  };
  return indexOutcomes(events, decisionKey, candidate.learning.conversionWindowMs, erasedAt);
}

/**
 * The learning statistics of the buckets from the candidate's learning
 * window before `range` to its end, summed per cell (`cellKey`; one
 * snapshot for the whole range).
 */
export async function readEvaluationCounts(
  candidate: CompiledCatalog,
  range: EvaluationRange,
  options: { readonly client?: DynamoClient; readonly table?: string } = {},
): Promise<Map<string, OutcomeCounts>> {
  const from = range.from - candidate.learning.windowMs;
  const rows = await readStatistics({ from, to: range.to, ...options });
  return windowedCounts(rows, range.to, range.to - from);
}

/** Those counts as decide reads them (statistics-cache.ts `learningStatsOf`). */
export const evaluationStatistics = (counts: ReadonlyMap<string, OutcomeCounts>): LearningStats => learningStatsOf(counts, 1);
