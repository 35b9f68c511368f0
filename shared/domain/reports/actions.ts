/**
 * The actions report (API.md §5, `GET /v1/admin/reports/actions`): the
 * outcome statistics and decision counts of a time range, summed per cell,
 * with their rates,
 * and per experiment each arm's rates, its uplift against the control group
 * and a sample-ratio-mismatch check. Pure: it reads stored rows (hourly
 * buckets of shared/domain/learning/statistics.ts, any number of shards)
 * and the live catalog, so its cost follows the number of cells and hours,
 * not the traffic.
 *
 * Shape (every rate and difference is a share in [0, 1] or [−1, 1], `null`
 * without impressions; counts are integers):
 *
 *   { from, to,                      ISO-8601, the range of bucket starts read [from, to)
 *     channel?, placement?, experiment?,  the filters asked for
 *     reward,                        the catalog's learning.reward: 'click' | 'conversion'
 *     rows: [{ actionId?, variant?, experiment?, arm?, context, channel, placement?,
 *              decisions, impressions, clicks, conversions,
 *              clickRate: Rate, conversionRate: Rate }],
 *     experiments: [{ id, inCatalog, kind?, status?, holdout?,
 *              arms: [{ arm, actionId?, variant?, expectedShare?,
 *                       decisions, impressions, clicks, conversions, clickRate, conversionRate,
 *                       uplift?: { click: Difference, conversion: Difference } }],
 *              sampleRatio?: { expectedShares, observed, chiSquare, degreesOfFreedom,
 *                              pValue, mismatch } }] }
 *   Rate       = { rate, low, high }        rate = successes / impressions
 *   Difference = { difference, low, high }  arm rate − control rate
 *
 * A row is one cell (action, variant, experiment, arm, learning context,
 * channel, placement) summed over the range's buckets and the shards.
 * `decisions` is how many decisions served the cell (for a control row:
 * how many decisions found the customer in the control group), counted
 * from the decision log (shared/domain/reports/decision-counts.ts); 0 when
 * none were counted. The decision log's counts lag the decisions by its
 * delivery (deployed, Firehose's buffering: minutes; locally its flush),
 * and impressions are what clients reported seeing, so the two need not
 * agree. A
 * control row (a holdout customer's exposures, no action served) has no
 * `actionId` and the arm `control`. In `experiments`, the control arm comes
 * first, then the catalog's arms in catalog order, then any arm the
 * statistics name that the live catalog no longer has.
 *
 * Formulas (shared/domain/reports/intervals.ts, with their sources there):
 * - rates: Wilson score interval at 95% (Wilson 1927; Newcombe 1998a,
 *   method 3), impressions as trials;
 * - uplift: the difference of an arm's rate and the control group's, with
 *   Newcombe's hybrid score interval at 95% (Newcombe 1998b, method 10),
 *   for clicks and for conversions (`reward` says which the catalog
 *   optimises);
 * - sample ratio: Pearson's χ² goodness of fit of the impressions per arm,
 *   control included, against the configured split — control `holdout`,
 *   arm i (1 − holdout) · weightᵢ / Σ weight — flagged (`mismatch`) when
 *   p < SAMPLE_RATIO_ALPHA. Impressions in an arm the split gives no share
 *   (an arm since removed, a control group of an experiment without
 *   holdout) are a mismatch by themselves: pValue 0, chiSquare null.
 *   It counts exposures, not customers: a customer exposed twice counts
 *   twice in its arm.
 */
import type { Channel } from '../channels.ts';
import type { CompiledCatalog, CompiledExperiment } from '../catalog/compiled.ts';
import { CONTROL_ARM } from '../catalog/compiled.ts';
import { cellKey, parseCellKey, type OutcomeCounts, type StatisticsCell, type StatisticsRow } from '../learning/statistics.ts';
import { newcombeDifference, sampleRatioMismatch, wilsonInterval, type RateEstimate } from './intervals.ts';

/** A sample-ratio check with a p-value below this flags a mismatch. */
export const SAMPLE_RATIO_ALPHA = 0.001;

/** Which rows the report keeps, and the range it names. */
export interface ActionsReportQuery {
  /** First bucket start read, epoch ms (inclusive). */
  readonly from: number;
  /** End of the range, epoch ms (exclusive). */
  readonly to: number;
  readonly channel?: Channel;
  readonly placement?: string;
  readonly experiment?: string;
}

/** A rate with its 95% Wilson interval; `null` without impressions. */
export interface ReportRate {
  readonly rate: number | null;
  readonly low: number | null;
  readonly high: number | null;
}

/** A difference of rates (arm − control) with its 95% Newcombe interval; `null` when a side has no impressions. */
export interface ReportDifference {
  readonly difference: number | null;
  readonly low: number | null;
  readonly high: number | null;
}

interface Counted extends OutcomeCounts {
  /** Decisions that served the cell (the decision log's count; 0 for none). */
  readonly decisions: number;
  readonly clickRate: ReportRate;
  readonly conversionRate: ReportRate;
}

export interface ActionsReportRow extends Counted {
  readonly actionId?: string;
  readonly variant?: string;
  readonly experiment?: string;
  readonly arm?: string;
  readonly context: string;
  readonly channel: Channel;
  readonly placement?: string;
}

export interface ExperimentArmReport extends Counted {
  readonly arm: string;
  /** kind `actions`: the arm's action (from the catalog). */
  readonly actionId?: string;
  /** kind `variants`: the arm's variant (from the catalog). */
  readonly variant?: string;
  /** Configured share of the experiment's exposures; absent for an arm the catalog no longer has. */
  readonly expectedShare?: number;
  /** Against the control group; absent on the control arm itself. */
  readonly uplift?: { readonly click: ReportDifference; readonly conversion: ReportDifference };
}

export interface SampleRatioReport {
  /** In the order of `arms`. */
  readonly expectedShares: readonly number[];
  /** Impressions, in the order of `arms`. */
  readonly observed: readonly number[];
  /** `null` when exposures fall in an arm with no configured share. */
  readonly chiSquare: number | null;
  readonly degreesOfFreedom: number;
  readonly pValue: number;
  /** pValue < SAMPLE_RATIO_ALPHA: the split served is not the configured one. */
  readonly mismatch: boolean;
}

export interface ExperimentReport {
  readonly id: string;
  /** The live catalog has this experiment (its split, kind and status below). */
  readonly inCatalog: boolean;
  readonly kind?: CompiledExperiment['kind'];
  readonly status?: 'running' | 'paused';
  readonly holdout?: number;
  readonly arms: readonly ExperimentArmReport[];
  /** Absent for an experiment the live catalog does not have (no configured split to test). */
  readonly sampleRatio?: SampleRatioReport;
}

export interface ActionsReport {
  readonly from: string;
  readonly to: string;
  readonly channel?: Channel;
  readonly placement?: string;
  readonly experiment?: string;
  readonly reward: 'click' | 'conversion';
  readonly rows: readonly ActionsReportRow[];
  readonly experiments: readonly ExperimentReport[];
}

const rateOf = (estimate: RateEstimate): ReportRate => ({ rate: estimate.rate ?? null, low: estimate.low ?? null, high: estimate.high ?? null });

// Stored counts are sums of increments; a reward counts the impression it implies
// (learning/statistics.ts), but the limits there (a merge's take-back, the bound on
// counted keys) can leave more rewards than impressions in a cell: no proportion.
const wilson = (successes: number, impressions: number): RateEstimate => wilsonInterval(Math.min(successes, impressions), impressions);

function counted(counts: Totals): Counted {
  return {
    decisions: counts.decisions,
    impressions: counts.impressions,
    clicks: counts.clicks,
    conversions: counts.conversions,
    clickRate: rateOf(wilson(counts.clicks, counts.impressions)),
    conversionRate: rateOf(wilson(counts.conversions, counts.impressions)),
  };
}

function difference(arm: OutcomeCounts, control: OutcomeCounts, kind: 'clicks' | 'conversions'): ReportDifference {
  const d = newcombeDifference(wilson(arm[kind], arm.impressions), wilson(control[kind], control.impressions));
  return { difference: d.difference ?? null, low: d.low ?? null, high: d.high ?? null };
}

/** A cell's or an arm's sums: the outcome counts and the decisions. */
interface Totals extends OutcomeCounts {
  readonly decisions: number;
}

type MutableCounts = { decisions: number; impressions: number; clicks: number; conversions: number };

const zero = (): MutableCounts => ({ decisions: 0, impressions: 0, clicks: 0, conversions: 0 });

const add = (total: MutableCounts, row: StatisticsRow): void => {
  const counts = row.counts;
  total.decisions += row.decisions ?? 0;
  total.impressions += counts.impressions;
  total.clicks += counts.clicks;
  total.conversions += counts.conversions;
};

const keeps = (cell: StatisticsCell, query: ActionsReportQuery): boolean =>
  (query.channel === undefined || cell.channel === query.channel) &&
  (query.placement === undefined || cell.placement === query.placement) &&
  (query.experiment === undefined || cell.experiment === query.experiment);

function sampleRatio(arms: readonly string[], observed: readonly number[], shares: ReadonlyMap<string, number>): SampleRatioReport {
  const expectedShares = arms.map((arm) => shares.get(arm) ?? 0);
  const positive = expectedShares.filter((share) => share > 0).length;
  if (observed.some((count, i) => count > 0 && expectedShares[i] === 0)) {
    return { expectedShares, observed, chiSquare: null, degreesOfFreedom: positive - 1, pValue: 0, mismatch: true };
  }
  const check = sampleRatioMismatch(observed, expectedShares);
  return { expectedShares, observed, ...check, mismatch: check.pValue < SAMPLE_RATIO_ALPHA };
}

/** Configured share of each arm's exposures, control included (experiments.ts `assignArm`). */
function configuredShares(experiment: CompiledExperiment): Map<string, number> {
  const total = experiment.arms.reduce((sum, arm) => sum + arm.weight, 0);
  const shares = new Map<string, number>([[CONTROL_ARM, experiment.holdout]]);
  for (const arm of experiment.arms) shares.set(arm.id, total > 0 ? ((1 - experiment.holdout) * arm.weight) / total : 0);
  return shares;
}

function experimentReport(id: string, armCounts: ReadonlyMap<string, Totals>, experiment: CompiledExperiment | undefined): ExperimentReport {
  const none: Totals = zero();
  const control = armCounts.get(CONTROL_ARM) ?? none;
  const order = [CONTROL_ARM, ...(experiment?.arms.map((arm) => arm.id) ?? [])];
  for (const arm of [...armCounts.keys()].sort()) if (!order.includes(arm)) order.push(arm);
  const shares = experiment ? configuredShares(experiment) : undefined;
  const arms = order.map((arm): ExperimentArmReport => {
    const counts = armCounts.get(arm) ?? none;
    const configured = experiment?.arms.find((a) => a.id === arm);
    const share = shares?.get(arm);
    return {
      arm,
      ...(configured?.action !== undefined ? { actionId: configured.action } : {}),
      ...(configured?.variant !== undefined ? { variant: configured.variant } : {}),
      ...(share !== undefined ? { expectedShare: share } : {}),
      ...counted(counts),
      ...(arm !== CONTROL_ARM
        ? { uplift: { click: difference(counts, control, 'clicks'), conversion: difference(counts, control, 'conversions') } }
        : {}),
    };
  });
  if (!experiment || !shares) return { id, inCatalog: false, arms };
  return {
    id,
    inCatalog: true,
    kind: experiment.kind,
    status: experiment.running ? 'running' : 'paused',
    holdout: experiment.holdout,
    arms,
    sampleRatio: sampleRatio(order, arms.map((arm) => arm.impressions), shares),
  };
}

/**
 * The report of `rows` (stored statistics rows, any shards, any order) for
 * `query`, against the live `catalog` (its experiments' split and its
 * learning reward). Rows outside [query.from, query.to) or the filters are
 * left out. Every running or paused experiment of the catalog is reported
 * (with zero counts if it has no statistics), and every experiment the
 * statistics name; with `query.experiment`, only that one.
 */
export function buildActionsReport(
  rows: Iterable<StatisticsRow>,
  catalog: Pick<CompiledCatalog, 'experiments' | 'experimentsById' | 'learning'>,
  query: ActionsReportQuery,
): ActionsReport {
  const cells = new Map<string, MutableCounts>();
  const experiments = new Map<string, Map<string, MutableCounts>>();
  for (const experiment of catalog.experiments) {
    if (query.experiment === undefined || experiment.id === query.experiment) experiments.set(experiment.id, new Map());
  }
  for (const row of rows) {
    if (row.bucket < query.from || row.bucket >= query.to || !keeps(row.cell, query)) continue;
    const key = cellKey(row.cell);
    let total = cells.get(key);
    if (!total) cells.set(key, (total = zero()));
    add(total, row);
    const { experiment, arm } = row.cell;
    if (experiment === undefined || arm === undefined) continue;
    let arms = experiments.get(experiment);
    if (!arms) experiments.set(experiment, (arms = new Map()));
    let armTotal = arms.get(arm);
    if (!armTotal) arms.set(arm, (armTotal = zero()));
    add(armTotal, row);
  }
  const reportRows = [...cells.keys()].sort().map((key): ActionsReportRow => {
    const { actionId, ...cell } = parseCellKey(key);
    return { ...(actionId !== '' ? { actionId } : {}), ...cell, ...counted(cells.get(key) as MutableCounts) };
  });
  const catalogOrder = new Map(catalog.experiments.map((experiment, index) => [experiment.id, index]));
  const experimentIds = [...experiments.keys()].sort((a, b) => {
    const ia = catalogOrder.get(a) ?? Infinity;
    const ib = catalogOrder.get(b) ?? Infinity;
    return ia !== ib ? ia - ib : a < b ? -1 : a > b ? 1 : 0;
  });
  return {
    from: new Date(query.from).toISOString(),
    to: new Date(query.to).toISOString(),
    ...(query.channel !== undefined ? { channel: query.channel } : {}),
    ...(query.placement !== undefined ? { placement: query.placement } : {}),
    ...(query.experiment !== undefined ? { experiment: query.experiment } : {}),
    reward: catalog.learning.reward,
    rows: reportRows,
    experiments: experimentIds.map((id) => experimentReport(id, experiments.get(id) as Map<string, Totals>, catalog.experimentsById.get(id))),
  };
}
