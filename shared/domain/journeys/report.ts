/**
 * The journey report (`GET /v1/admin/reports/journeys`): per journey and
 * UTC day, how many runs were entered, how many times each step was
 * reached, how many runs completed and how many exited.
 *
 * The counts are kept exactly once like the outcome statistics: each
 * applied event's milestones (machine.ts `JourneyCount`) are added, in the
 * same conditional transaction as the profile and the event's "applied"
 * marker, to a counter per (day, journey, milestone) on the profile's shard
 * (shared/store/journey-counts.ts). The report sums the shards.
 */
import type { CompiledJourney } from '../catalog/compiled.ts';
import type { JourneyCount, JourneyMilestone } from './machine.ts';

/** A milestone as a counter's name: `entered`, `completed`, `exited`, `step:<step id>`. */
export function milestoneKey(milestone: JourneyMilestone): string {
  return milestone.kind === 'step' ? `step:${milestone.step}` : milestone.kind;
}

/** The counter a count adds 1 to: its journey, its day (days since the epoch, UTC) and its milestone key. */
export interface JourneyCounter {
  readonly journey: string;
  readonly day: number;
  readonly milestone: string;
}

/** A counter and how much it adds (the counts of one write, summed per counter). */
export interface JourneyCounterIncrement extends JourneyCounter {
  readonly n: number;
}

/** Sum counts per counter, in first-seen order. */
export function journeyIncrements(counts: readonly JourneyCount[]): JourneyCounterIncrement[] {
  const sums = new Map<string, { journey: string; day: number; milestone: string; n: number }>();
  for (const count of counts) {
    const milestone = milestoneKey(count.milestone);
    const id = JSON.stringify([count.journey, count.day, milestone]);
    const sum = sums.get(id);
    if (sum) sum.n += 1;
    else sums.set(id, { journey: count.journey, day: count.day, milestone, n: 1 });
  }
  return [...sums.values()];
}

/** One journey's counts over a day or a range. */
export interface JourneyTally {
  readonly entered: number;
  /** Step id → times reached, every step of the journey in catalog order. */
  readonly steps: Readonly<Record<string, number>>;
  readonly completed: number;
  readonly exited: number;
}

export interface JourneyReport {
  /** First and last day, `YYYY-MM-DD` (UTC), both included. */
  readonly from: string;
  readonly to: string;
  readonly journeys: readonly {
    readonly id: string;
    readonly name?: string;
    readonly totals: JourneyTally;
    /** Each day of the range that counted anything, in order. */
    readonly days: readonly (JourneyTally & { readonly day: string })[];
  }[];
}

const DAY_MS = 86_400_000;

/** `YYYY-MM-DD` of a day number (days since the epoch, UTC). */
export const dayText = (day: number): string => new Date(day * DAY_MS).toISOString().slice(0, 10);

/** The day number of `YYYY-MM-DD` (UTC); NaN for anything else. */
export function dayNumber(text: string): number {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(text)) return Number.NaN;
  const at = Date.parse(`${text}T00:00:00Z`);
  return Number.isFinite(at) && dayText(at / DAY_MS) === text ? at / DAY_MS : Number.NaN;
}

/**
 * The report of the catalog's `journeys` from the counters read for days
 * `from`..`to` (day numbers, both included; rows outside are ignored, as
 * are rows of journeys or steps the catalog no longer has).
 */
export function journeyReport(
  journeys: readonly Pick<CompiledJourney, 'id' | 'name' | 'steps'>[],
  rows: readonly JourneyCounterIncrement[],
  from: number,
  to: number,
): JourneyReport {
  return {
    from: dayText(from),
    to: dayText(to),
    journeys: journeys.map((journey) => {
      const empty = (): { entered: number; steps: Record<string, number>; completed: number; exited: number } => ({
        entered: 0,
        steps: Object.fromEntries(journey.steps.map((s) => [s.id, 0])),
        completed: 0,
        exited: 0,
      });
      const totals = empty();
      const days = new Map<number, ReturnType<typeof empty>>();
      for (const row of rows) {
        if (row.journey !== journey.id || row.day < from || row.day > to) continue;
        const day = days.get(row.day) ?? empty();
        for (const tally of [totals, day]) {
          if (row.milestone === 'entered' || row.milestone === 'completed' || row.milestone === 'exited') tally[row.milestone] += row.n;
          else if (row.milestone.startsWith('step:') && Object.hasOwn(tally.steps, row.milestone.slice(5))) tally.steps[row.milestone.slice(5)]! += row.n;
          else continue;
          days.set(row.day, day);
        }
      }
      return {
        id: journey.id,
        ...(journey.name !== undefined ? { name: journey.name } : {}),
        totals,
        days: [...days.entries()].sort(([a], [b]) => a - b).map(([day, tally]) => ({ day: dayText(day), ...tally })),
      };
    }),
  };
}
