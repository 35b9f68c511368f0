/**
 * Outcome statistics for learning: what a counted outcome adds, and the Beta
 * posterior of an arm from its windowed counts.
 *
 * A counted outcome (shared/domain/profile/outcomes.ts: once per decision,
 * action and kind; a click or a conversion brings the impression it implies
 * when none was counted, outcomes.ts `impliedImpression`, so a cell's
 * clicks and conversions never exceed its impressions but through the
 * limits below) adds 1 to the impressions, clicks or conversions of its
 * cell — (action, variant, learning context, channel, placement) — in the
 * hourly bucket of its decision's time. Buckets are keyed by the decision's
 * time, not the report's, so any delivery order adds to the same bucket; the
 * window (`learning.window`) keeps the buckets whose hour starts no earlier
 * than now − window. Counts are sums, so any order of increments gives the
 * same totals.
 *
 * Exactly once: the profile plan's writes (shared/domain/profile/plan.ts)
 * carry what the outcomes their events newly count add (`countedIncrements`),
 * and the store adds it in the same conditional transaction as the events'
 * "applied" markers (shared/store/profile-batch.ts), so a redelivery adds
 * nothing. A holdout's control cell counts once per (decision, experiment,
 * kind) on a profile. When a user absorbs an anonymous profile, the merge
 * takes back what both had counted (`mergeTakeBack`): an anonymous profile
 * keeps the cells of each key it counted (ProfileState `outcomeCells`).
 *
 * Limits — where an outcome can stay counted twice, or count for nothing:
 * - a profile remembers at most COUNTED_OUTCOMES_LIMIT (200) counted keys
 *   (shared/domain/profile/outcomes.ts), dropping the oldest decisions'
 *   first: a merge cannot take back a double count of a dropped key, and a
 *   decision whose keys of a kind were all dropped can count its control
 *   cells again; a very late report of an old decision counts for nothing;
 * - keys an anonymous profile counted before it kept their cells (a profile
 *   written before the statistics were counted) are not taken back;
 * - a merge whose take-back needs more statistics items than its
 *   transaction has room for (100 items with the profile, tombstones and
 *   markers) takes back only what fits, with a warning in the log;
 * - an erased customer's outcomes applied before the erasure stay in the
 *   statistics (they name no customer); those not applied by then are
 *   dropped with their events;
 * - cells are keyed by the learning context of the catalog live when the
 *   outcome was counted: a change of `learning.contextBy` starts new cells.
 *
 * Posterior (Beta–Bernoulli conjugacy): α = prior.α + rewards,
 * β = prior.β + max(0, impressions − rewards), where rewards are clicks or
 * conversions (`learning.reward`). A reward counts its impression with it
 * (above); where the limits leave more rewards than impressions, β never
 * goes below its prior.
 */
import type { Channel } from '../channels.ts';
import { CONTROL_ARM } from '../catalog/compiled.ts';
import { ATTRIBUTION_WINDOW_MS, parseOutcomeKey, type AttributedOutcome, type OutcomeKind } from '../profile/outcomes.ts';

/** Width of a statistics bucket: one hour, ms. */
export const STATISTICS_BUCKET_MS = 3_600_000;

/** Context of a decision made without one (contextBy none, or no persona). */
export const NO_CONTEXT = '-';

/** What a learning context is keyed by (catalog `learning.contextBy`). */
export type ContextBy = 'none' | 'persona' | 'segment';

/** What the profile function reads of the catalog's learning settings to count outcomes (compiled `catalog.learning`). */
export interface OutcomeLearning {
  readonly contextBy: ContextBy;
  /** How long after its decision a conversion is attributed to it, ms (`learning.conversionWindow`). */
  readonly conversionWindowMs: number;
}

/** The catalog's defaults (catalog/defaults.ts LEARNING_DEFAULTS: persona, 7d): used while no catalog is loaded. */
export const DEFAULT_OUTCOME_LEARNING: OutcomeLearning = Object.freeze({ contextBy: 'persona', conversionWindowMs: ATTRIBUTION_WINDOW_MS });

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
export interface StatisticsRow extends StatisticsIncrement {
  /**
   * How many decisions served the cell in the bucket, counted from the
   * decision log (shared/domain/reports/decision-counts.ts); absent: none
   * counted. Learning reads only `counts`.
   */
  readonly decisions?: number;
}

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

/** Start of the hour of `decidedAt` (epoch ms): the bucket its outcomes add to. */
export const bucketOf = (decidedAt: number): number => Math.floor(decidedAt / STATISTICS_BUCKET_MS) * STATISTICS_BUCKET_MS;

/** One outcome of `kind` counted (`sign` 1) or taken back (−1). */
const countsOf = (kind: OutcomeKind, sign: 1 | -1): OutcomeCounts => ({
  impressions: kind === 'impression' ? sign : 0,
  clicks: kind === 'click' ? sign : 0,
  conversions: kind === 'conversion' ? sign : 0,
});

/** The served action's cell of `outcome`: its variant, and its experiment and arm when it was served under one. */
function actionCell(outcome: AttributedOutcome, contextBy: ContextBy): StatisticsCell {
  const { action, decision } = outcome;
  return {
    actionId: action.actionId,
    ...(action.variant !== undefined ? { variant: action.variant } : {}),
    ...(action.experiment !== undefined ? { experiment: action.experiment.id, arm: action.experiment.arm } : {}),
    context: learningContext(contextBy, decision),
    channel: outcome.channel,
    ...(decision.placement !== undefined ? { placement: decision.placement } : {}),
  };
}

/** What `outcome` adds to its action's cell. */
export function outcomeIncrement(outcome: AttributedOutcome, contextBy: ContextBy): StatisticsIncrement {
  return { cell: actionCell(outcome, contextBy), bucket: bucketOf(outcome.decidedAt), counts: countsOf(outcome.kind, 1) };
}

/**
 * The cells a counted outcome adds to, as `cellKey`s (an anonymous profile
 * keeps them with its counted key, ProfileState `outcomeCells`): first its action's
 * cell, then one control cell per experiment whose control group the
 * decision's customer was in (`decision.holdouts`: action '', the
 * experiment, arm CONTROL_ARM, the decision's channel). The control cells
 * count once per (decision, experiment, kind): whichever of the decision's
 * outcomes of a kind is counted first on the profile adds them.
 */
export function countedCells(outcome: AttributedOutcome, contextBy: ContextBy): string[] {
  const { decision } = outcome;
  const context = learningContext(contextBy, decision);
  const controls = decision.holdouts.map((experiment) =>
    cellKey({
      actionId: '',
      experiment,
      arm: CONTROL_ARM,
      context,
      channel: decision.channel,
      ...(decision.placement !== undefined ? { placement: decision.placement } : {}),
    }),
  );
  return [cellKey(actionCell(outcome, contextBy)), ...controls];
}

/** A counted key's (decision, kind): the unit a control cell counts once per. */
const decisionKindOf = (key: string): string => {
  const { kind, decision } = parseOutcomeKey(key);
  return `${kind} ${decision}`;
};

/**
 * What the outcomes a profile counted while events were applied add to the
 * statistics. `before` and `after` are the profile's counted outcomes
 * (ProfileState `outcomes`) before and after; `outcomes` the outcomes the
 * applied events are (counted or not), in any order. Each key counted now
 * (in `after`, not in `before`) adds 1 of its kind to its action's cell;
 * the first of a (decision, kind) the profile had not counted before adds 1
 * to each of the decision's control cells.
 */
export function countedIncrements(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
  outcomes: Iterable<AttributedOutcome>,
  contextBy: ContextBy,
): StatisticsIncrement[] {
  const increments: StatisticsIncrement[] = [];
  const counted = new Set<string>();
  const seen = new Set(Object.keys(before).map(decisionKindOf));
  for (const outcome of outcomes) {
    if (counted.has(outcome.key) || Object.hasOwn(before, outcome.key) || !Object.hasOwn(after, outcome.key)) continue;
    counted.add(outcome.key);
    const [action, ...controls] = countedCells(outcome, contextBy);
    const bucket = bucketOf(outcome.decidedAt);
    increments.push({ cell: parseCellKey(action as string), bucket, counts: countsOf(outcome.kind, 1) });
    const unit = decisionKindOf(outcome.key);
    if (seen.has(unit)) continue;
    seen.add(unit);
    for (const cell of controls) increments.push({ cell: parseCellKey(cell), bucket, counts: countsOf(outcome.kind, 1) });
  }
  return increments;
}

/**
 * What merging `source` (an anonymous profile, which keeps the cells of its
 * counted outcomes) into `target` (a user's counted outcomes) takes back
 * from the statistics: each key both had counted before the join
 * (outcomes.ts `mergeCountedOutcomes` `countedTwice`) was added twice, so
 * its action's cell gets −1; each (decision, kind) both had counted added
 * its control cells twice, so they get −1. A key whose cells `source` did
 * not keep (counted before they were kept) is not taken back.
 */
export function mergeTakeBack(
  target: Readonly<Record<string, number>>,
  source: { readonly outcomes: Readonly<Record<string, number>>; readonly outcomeCells: Readonly<Record<string, readonly string[]>> },
): StatisticsIncrement[] {
  const increments: StatisticsIncrement[] = [];
  const targetUnits = new Set(Object.keys(target).map(decisionKindOf));
  const unitsTakenBack = new Set<string>();
  for (const [key, decidedAt] of Object.entries(source.outcomes)) {
    const cells = Object.hasOwn(source.outcomeCells, key) ? source.outcomeCells[key] : undefined;
    if (!cells || cells.length === 0) continue;
    const { kind } = parseOutcomeKey(key);
    const bucket = bucketOf(decidedAt);
    if (Object.hasOwn(target, key)) increments.push({ cell: parseCellKey(cells[0] as string), bucket, counts: countsOf(kind, -1) });
    const unit = decisionKindOf(key);
    if (!targetUnits.has(unit) || unitsTakenBack.has(unit)) continue;
    unitsTakenBack.add(unit);
    for (const cell of cells.slice(1)) increments.push({ cell: parseCellKey(cell), bucket, counts: countsOf(kind, -1) });
  }
  return increments;
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
