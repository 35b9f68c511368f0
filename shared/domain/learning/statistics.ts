/**
 * Outcome statistics for learning: what a counted outcome adds, and the Beta
 * posterior of an arm from its windowed counts.
 *
 * A counted outcome (shared/domain/profile/outcomes.ts: once per decision,
 * action and kind) adds 1 to the impressions, clicks or conversions of its
 * cell — (action, variant, learning context, channel, placement) — in the
 * hourly bucket of its decision's time. Buckets are keyed by the decision's
 * time, not the report's, so any delivery order adds to the same bucket; the
 * window (`learning.window`) keeps the buckets whose hour starts no earlier
 * than now − window. Counts are sums, so any order of increments gives the
 * same totals.
 *
 * Posterior (Beta–Bernoulli conjugacy): α = prior.α + rewards,
 * β = prior.β + max(0, impressions − rewards), where rewards are clicks or
 * conversions (`learning.reward`). A reward reported without its impression
 * still counts as one trial (β never goes below its prior).
 */
import type { Channel } from '../channels.ts';
import type { AttributedOutcome } from '../profile/outcomes.ts';

/** Width of a statistics bucket: one hour, ms. */
export const STATISTICS_BUCKET_MS = 3_600_000;

/** Context of a decision made without one (contextBy none, or no persona). */
export const NO_CONTEXT = '-';

/** What a learning context is keyed by (catalog `learning.contextBy`). */
export type ContextBy = 'none' | 'persona' | 'segment';

/**
 * The arm and the context an outcome's statistics are kept under.
 *
 * `experiment` and `arm` name the experiment arm the decision served the
 * action under. A customer in an experiment's control group (holdout) is
 * counted in a cell of its own: `actionId` empty, `experiment` the
 * experiment's id, `arm` CONTROL_ARM (`control`): the exposures and rewards
 * uplift is measured against.
 */
export interface StatisticsCell {
  readonly actionId: string;
  readonly variant?: string;
  readonly experiment?: string;
  readonly arm?: string;
  readonly context: string;
  readonly channel: Channel;
  readonly placement?: string;
}

export interface OutcomeCounts {
  readonly impressions: number;
  readonly clicks: number;
  readonly conversions: number;
}

/** One counted outcome's addition to its cell's bucket. */
export interface StatisticsIncrement {
  readonly cell: StatisticsCell;
  /** Start of the decision's hour, epoch ms. */
  readonly bucket: number;
  readonly counts: OutcomeCounts;
}

/** A cell's counts in one bucket, as stored. */
export type StatisticsRow = StatisticsIncrement;

/**
 * The learning context of a decision: the one it carries (`context`, the
 * exact context decide learnt and chose in: decide.ts `learningContextOf`);
 * for a decision that carries none (ids issued before it did), its persona
 * when contextBy is `persona`, otherwise NO_CONTEXT.
 */
export function learningContext(contextBy: ContextBy, decision: Pick<AttributedOutcome['decision'], 'persona' | 'context'>): string {
  if (decision.context !== undefined && decision.context !== '') return decision.context;
  return contextBy === 'persona' && decision.persona !== undefined ? decision.persona : NO_CONTEXT;
}

/** What `outcome` adds to the statistics. */
export function outcomeIncrement(outcome: AttributedOutcome, contextBy: ContextBy): StatisticsIncrement {
  const { action, decision } = outcome;
  return {
    cell: {
      actionId: action.actionId,
      ...(action.variant !== undefined ? { variant: action.variant } : {}),
      context: learningContext(contextBy, decision),
      channel: outcome.channel,
      ...(decision.placement !== undefined ? { placement: decision.placement } : {}),
    },
    bucket: Math.floor(outcome.decidedAt / STATISTICS_BUCKET_MS) * STATISTICS_BUCKET_MS,
    counts: {
      impressions: outcome.kind === 'impression' ? 1 : 0,
      clicks: outcome.kind === 'click' ? 1 : 0,
      conversions: outcome.kind === 'conversion' ? 1 : 0,
    },
  };
}

/** Separator of a cell key's fields: cannot appear in catalog ids, channels or placements. */
export const CELL_KEY_SEPARATOR = '\u001f';

/** A cell's identity as one string: action, variant, experiment, arm, context, channel, placement. */
export const cellKey = (cell: StatisticsCell): string =>
  [cell.actionId, cell.variant ?? '', cell.experiment ?? '', cell.arm ?? '', cell.context, cell.channel, cell.placement ?? ''].join(CELL_KEY_SEPARATOR);

/** The cell a key made by `cellKey` names (absent fields for empty ones). */
export function parseCellKey(key: string): StatisticsCell {
  const [actionId = '', variant = '', experiment = '', arm = '', context = NO_CONTEXT, channel = '', placement = ''] = key.split(CELL_KEY_SEPARATOR);
  return {
    actionId,
    ...(variant !== '' ? { variant } : {}),
    ...(experiment !== '' ? { experiment } : {}),
    ...(arm !== '' ? { arm } : {}),
    context,
    channel: channel as Channel,
    ...(placement !== '' ? { placement } : {}),
  };
}

/**
 * Each cell's counts summed over the buckets that start at or after
 * `now − windowMs`.
 */
export function windowedCounts(rows: Iterable<StatisticsRow>, now: number, windowMs: number): Map<string, OutcomeCounts> {
  const since = now - windowMs;
  const totals = new Map<string, { impressions: number; clicks: number; conversions: number }>();
  for (const row of rows) {
    if (row.bucket < since) continue;
    const key = cellKey(row.cell);
    const total = totals.get(key) ?? { impressions: 0, clicks: 0, conversions: 0 };
    total.impressions += row.counts.impressions;
    total.clicks += row.counts.clicks;
    total.conversions += row.counts.conversions;
    totals.set(key, total);
  }
  return totals;
}

/** The Beta posterior of an arm's reward rate. */
export function posterior(
  counts: OutcomeCounts | undefined,
  prior: { readonly alpha: number; readonly beta: number },
  reward: 'click' | 'conversion',
): { readonly alpha: number; readonly beta: number } {
  if (!counts) return { alpha: prior.alpha, beta: prior.beta };
  const rewards = reward === 'click' ? counts.clicks : counts.conversions;
  return { alpha: prior.alpha + rewards, beta: prior.beta + Math.max(0, counts.impressions - rewards) };
}
