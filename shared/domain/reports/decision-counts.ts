/**
 * The decision counts of the actions report (API.md §5 `decisions`): how
 * many times decide served each statistics cell, counted from the decision
 * log, never by decide itself (its hot path makes one DynamoDB request and
 * no write).
 *
 * A chunk of the log (deployed: one object Firehose wrote to S3; locally:
 * one write of the local decision log) is turned into the decisions it adds
 * to each (hourly bucket, cell) by `decisionIncrements`, and the store adds
 * them to the outcome statistics' items exactly once per chunk
 * (shared/store/decision-counts.ts). Cells are those of the outcome
 * statistics (shared/domain/learning/statistics.ts `StatisticsCell`), in the
 * bucket of the decision's hour:
 * - each served action (fallbacks and degraded answers included) adds 1 to
 *   its cell: action, variant, the experiment and arm it was served under,
 *   the decision's learning context, channel and placement;
 * - each experiment whose control group (holdout) the customer was in adds
 *   1 to that experiment's control cell (action '', arm CONTROL_ARM), once
 *   per decision, as a holdout's outcomes count once per decision.
 * A decision that served nothing adds nothing.
 *
 * Only records that say which experiment arms they served (version 4 on,
 * decision-record.ts `holdouts` present) are counted; older ones are
 * returned as `uncounted`, so a count never puts a decision in the wrong
 * arm. A record whose cells no catalog could have served (an id, variant,
 * experiment, arm, learning context or placement not of the catalog's id
 * shape, catalog/patterns.ts ID_PATTERN; a channel that is none) is
 * returned as `malformed` and adds nothing: such an id could hold the cell
 * key's separator and count in another cell, or make a key too long to
 * store, which failed its whole chunk (every other decision in it) on
 * every delivery.
 */
import { isChannel, type Channel } from '../channels.ts';
import { ID_PATTERN } from '../catalog/patterns.ts';
import { CONTROL_ARM } from '../catalog/compiled.ts';
import type { DecisionLogRecord } from '../evaluation/decision-record.ts';
import { bucketOf, cellKey, NO_CONTEXT, parseCellKey, type StatisticsCell } from '../learning/statistics.ts';

/** What one chunk of the log adds to one cell's bucket. */
export interface DecisionIncrement {
  readonly cell: StatisticsCell;
  /** Start of the decisions' hour, epoch ms. */
  readonly bucket: number;
  /** Decisions that served the cell, ≥ 1. */
  readonly decisions: number;
}

export interface DecisionCounts {
  /** One per distinct (bucket, cell), sorted by bucket then cell key: the same records give the same list. */
  readonly increments: readonly DecisionIncrement[];
  /** Records counted. */
  readonly counted: number;
  /** Records older than version 4, which do not say which experiment arms they served: not counted. */
  readonly uncounted: number;
  /** Records whose cells no catalog could have served (see the module): not counted. */
  readonly malformed: number;
  /** Records of a decision already counted in this chunk (the same reference: a second delivery): not counted again. */
  readonly duplicates: number;
}

const isId = (value: string | undefined): boolean => value === undefined || ID_PATTERN.test(value);

/** Whether `cell` is one a catalog could have served: every id of the catalog's shape, a channel (see the module). */
function isCatalogCell(cell: StatisticsCell): boolean {
  return (
    (cell.actionId === '' || isId(cell.actionId)) &&
    isId(cell.variant) &&
    isId(cell.experiment) &&
    isId(cell.arm) &&
    (cell.context === NO_CONTEXT || isId(cell.context)) &&
    isChannel(cell.channel) &&
    isId(cell.placement)
  );
}

/** The cells one record's decision served (decision-counts.ts module doc). */
export function decisionCells(record: DecisionLogRecord): StatisticsCell[] {
  const context = record.learningContext ?? NO_CONTEXT;
  const channel = record.channel as Channel;
  const placement = record.placement !== undefined ? { placement: record.placement } : {};
  const cells: StatisticsCell[] = record.served.map((served) => ({
    actionId: served.actionId,
    ...(served.variant !== undefined ? { variant: served.variant } : {}),
    ...(served.experiment !== undefined ? { experiment: served.experiment.id, arm: served.experiment.arm } : {}),
    context,
    channel,
    ...placement,
  }));
  for (const experiment of new Set(record.holdouts ?? [])) cells.push({ actionId: '', experiment, arm: CONTROL_ARM, context, channel, ...placement });
  return cells;
}

/**
 * The decisions `records` (one chunk of the log, any order) add to each
 * (bucket, cell); a decision whose record is in the chunk more than once
 * (its `decisionRef`, else its `decisionId`) counts once.
 */
export function decisionIncrements(records: Iterable<DecisionLogRecord>): DecisionCounts {
  const sums = new Map<string, { bucket: number; cell: string; decisions: number }>();
  let counted = 0;
  let uncounted = 0;
  let malformed = 0;
  let duplicates = 0;
  const seen = new Set<string>();
  for (const record of records) {
    // The log's deliveries are at least once: a decision twice in the chunk counts once.
    const id = record.decisionRef ?? record.decisionId;
    if (seen.has(id)) {
      duplicates++;
      continue;
    }
    seen.add(id);
    const at = Date.parse(record.at);
    if (record.holdouts === undefined || !Number.isFinite(at)) {
      uncounted++;
      continue;
    }
    const cells = decisionCells(record);
    if (!cells.every(isCatalogCell)) {
      malformed++;
      continue;
    }
    counted++;
    const bucket = bucketOf(at);
    for (const cell of cells) {
      const key = cellKey(cell);
      const id = `${String(bucket).padStart(13, '0')}#${key}`;
      const sum = sums.get(id);
      if (sum) sum.decisions++;
      else sums.set(id, { bucket, cell: key, decisions: 1 });
    }
  }
  const increments = [...sums.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([, sum]): DecisionIncrement => ({ cell: parseCellKey(sum.cell), bucket: sum.bucket, decisions: sum.decisions }));
  return { increments, counted, uncounted, malformed, duplicates };
}
