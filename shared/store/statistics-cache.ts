/**
 * The outcome statistics decide learns from: a process-wide in-memory copy
 * of the windowed counts (statistics.ts `readStatistics`, then
 * learning/statistics.ts `windowedCounts`), refreshed in the background and
 * never awaited by a decision.
 *
 * - `current(now, windowMs)` answers at once with the last good statistics
 *   (undefined before the first load: decisions use the catalog's prior) and,
 *   when they are REFRESH_INTERVAL_MS old or the window changed, starts one
 *   refresh that the caller does not wait for: what decide uses is at most
 *   REFRESH_INTERVAL_MS (plus one read) stale.
 * - A refresh reads every shard's buckets of the window (one Query per
 *   shard, paged, REFRESH_CONCURRENCY at a time) under READ_DEADLINE_MS; a failure keeps the last good
 *   statistics (told to `onRefreshFailure`, counted in `failures`).
 * - `generation` changes only when the counts do, so decide's cached arm
 *   probabilities (learning/policy.ts `ArmProbabilityCache`) survive a
 *   refresh that read nothing new.
 * - The reads go through a client of their own (`client`), so a background
 *   refresh is never counted as a request of the decision that happened to
 *   start it: "one DynamoDB request per decision" is measured on the store's
 *   one client, these reads apart (bench/decide.ts reports both).
 */
import { config } from '#shared/config.ts';
import type { Channel } from '#domain/channels.ts';
import type { LearningStats } from '#domain/decide/types.ts';
import { CELL_KEY_SEPARATOR, parseCellKey, windowedCounts, type OutcomeCounts } from '#domain/learning/statistics.ts';
import { DynamoClient } from './client.ts';
import { readStatistics } from './statistics.ts';

/** How often the statistics are read again while decisions ask for them, ms. */
export const REFRESH_INTERVAL_MS = 5_000;
/** Deadline of one refresh (every shard, every page), ms. */
export const READ_DEADLINE_MS = 3_000;
/**
 * Shard Queries a refresh keeps in flight at once. A refresh runs in the
 * background, so it need not send its 16 Queries together: sent together on
 * a new instance, whose connection pool is empty, each opened a connection of
 * its own (16 TLS handshakes to DynamoDB right after the first answer, the
 * CPU of which a deployed instance pays at the start of its second request).
 * Two at a time, a new instance's refresh opens two. Measured on the decide
 * bundle against the bench's TLS front (bench/README.md, "The statistics
 * refresh of a new instance"): 16 → 2 connections, and 15–20 ms less CPU in
 * the 200 ms after the first answer.
 */
export const REFRESH_CONCURRENCY = 2;

/** The key of a slot and context (channel, placement, context), and of an arm in it (action, variant). */
const slotKey = (channel: Channel, placement: string | undefined, context: string): string =>
  `${channel}${CELL_KEY_SEPARATOR}${placement ?? ''}${CELL_KEY_SEPARATOR}${context}`;
const armKey = (actionId: string, variant: string | undefined): string => (variant === undefined ? actionId : `${actionId}${CELL_KEY_SEPARATOR}${variant}`);

/**
 * Windowed counts by slot and context, then by arm, summed over experiment
 * arms: decide's view of them. A decision asks for many arms of one slot and
 * context: the last slot's map is kept, so a lookup builds no string for an
 * action without variants.
 */
class WindowedStatistics implements LearningStats {
  private last: { channel: Channel; placement: string | undefined; context: string; arms: ReadonlyMap<string, OutcomeCounts> | undefined } | undefined;

  constructor(
    readonly generation: number,
    private readonly bySlot: ReadonlyMap<string, ReadonlyMap<string, OutcomeCounts>>,
  ) {}

  get(actionId: string, variant: string | undefined, context: string, channel: Channel, placement: string | undefined): OutcomeCounts | undefined {
    let last = this.last;
    if (!last || last.channel !== channel || last.placement !== placement || last.context !== context) {
      last = { channel, placement, context, arms: this.bySlot.get(slotKey(channel, placement, context)) };
      this.last = last;
    }
    return last.arms?.get(armKey(actionId, variant));
  }

  /** Arms with counts, over every slot and context. */
  get size(): number {
    let n = 0;
    for (const arms of this.bySlot.values()) n += arms.size;
    return n;
  }
}

/** Sum the windowed cells of each arm over the experiment arms they were served under, by slot and context. */
function bySlot(cells: ReadonlyMap<string, OutcomeCounts>): Map<string, Map<string, OutcomeCounts>> {
  const slots = new Map<string, Map<string, { impressions: number; clicks: number; conversions: number }>>();
  for (const [key, counts] of cells) {
    const cell = parseCellKey(key);
    // A holdout's cell (no action) is for reports, not for choosing.
    if (cell.actionId === '') continue;
    const slot = slotKey(cell.channel, cell.placement, cell.context);
    let arms = slots.get(slot);
    if (!arms) slots.set(slot, (arms = new Map()));
    const arm = armKey(cell.actionId, cell.variant);
    const sum = arms.get(arm) ?? { impressions: 0, clicks: 0, conversions: 0 };
    sum.impressions += counts.impressions;
    sum.clicks += counts.clicks;
    sum.conversions += counts.conversions;
    arms.set(arm, sum);
  }
  return slots;
}

/**
 * Decide's view of windowed counts (learning/statistics.ts `windowedCounts`,
 * keyed by `cellKey`): by arm, slot and context, summed over experiment arms.
 */
export function learningStatsOf(cells: ReadonlyMap<string, OutcomeCounts>, generation: number): LearningStats {
  return new WindowedStatistics(generation, bySlot(cells));
}

/** The counts as one comparable text (sorted): a refresh that read the same counts keeps the generation. */
const signature = (counts: ReadonlyMap<string, OutcomeCounts>): string =>
  [...counts.entries()]
    .map(([key, c]) => `${key}=${c.impressions},${c.clicks},${c.conversions}`)
    .sort()
    .join('\n');

export interface StatisticsCacheOptions {
  /** The client its reads go through. @default a client of its own */
  readonly client?: DynamoClient;
  /** @default config.CONTROL_TABLE */
  readonly table?: string;
  /** @default REFRESH_INTERVAL_MS */
  readonly intervalMs?: number;
  /** Told of each failed refresh (the decide function logs it); the last good statistics stay served. */
  readonly onRefreshFailure?: (error: unknown) => void;
  /** Shard Queries in flight at once during a refresh (at least 1). @default REFRESH_CONCURRENCY */
  readonly concurrency?: number;
}

export interface StatisticsCacheStatus {
  /** When the statistics served were read (epoch ms), 0 before the first load. */
  readonly loadedAt: number;
  /** Refreshes that read the store, and those that failed. */
  readonly refreshes: number;
  readonly failures: number;
  /** Arms (action, variant, context, slot) with counts. */
  readonly arms: number;
}

export class StatisticsCache {
  /** The client of the background reads (its `requests` and `counts` are these reads only). */
  readonly client: DynamoClient;
  private readonly table: string;
  private readonly intervalMs: number;
  private readonly onRefreshFailure: ((error: unknown) => void) | undefined;
  private readonly concurrency: number;
  private stats: WindowedStatistics | undefined;
  private signature = '';
  private windowMs: number | undefined;
  private checkedAt = Number.NEGATIVE_INFINITY;
  private loadedAt = 0;
  private refreshes = 0;
  private failures = 0;
  private refreshing: Promise<LearningStats | undefined> | undefined;

  constructor(options: StatisticsCacheOptions = {}) {
    this.client = options.client ?? new DynamoClient();
    this.table = options.table ?? config.CONTROL_TABLE;
    this.intervalMs = options.intervalMs ?? REFRESH_INTERVAL_MS;
    this.onRefreshFailure = options.onRefreshFailure;
    this.concurrency = options.concurrency ?? REFRESH_CONCURRENCY;
  }

  /**
   * The statistics to decide with at `now` (epoch ms) over a window of
   * `windowMs` (catalog `learning.windowMs`), without waiting: undefined
   * before the first successful load. Starts a background refresh when due.
   */
  current(now: number, windowMs: number): LearningStats | undefined {
    if (!this.refreshing && (now - this.checkedAt >= this.intervalMs || windowMs !== this.windowMs)) {
      this.refresh(now, windowMs).catch(() => undefined);
    }
    return this.stats;
  }

  /**
   * Read the window's statistics now (one refresh at a time: a call during
   * one gets that one). Rejects with the store's fault; the last good
   * statistics stay served.
   */
  refresh(now: number, windowMs: number): Promise<LearningStats | undefined> {
    if (this.refreshing) return this.refreshing;
    this.checkedAt = now;
    this.windowMs = windowMs;
    this.refreshes++;
    const p = readStatistics({ from: now - windowMs, client: this.client, table: this.table, deadline: Date.now() + READ_DEADLINE_MS, concurrency: this.concurrency })
      .then((rows) => {
        const counts = windowedCounts(rows, now, windowMs);
        const text = signature(counts);
        if (!this.stats || text !== this.signature) {
          this.stats = new WindowedStatistics((this.stats?.generation ?? 0) + 1, bySlot(counts));
          this.signature = text;
        }
        this.loadedAt = now;
        return this.stats;
      })
      .catch((error: unknown) => {
        this.failures++;
        this.onRefreshFailure?.(error);
        throw error;
      })
      .finally(() => {
        if (this.refreshing === p) this.refreshing = undefined;
      });
    this.refreshing = p;
    return p;
  }

  status(): StatisticsCacheStatus {
    return { loadedAt: this.loadedAt, refreshes: this.refreshes, failures: this.failures, arms: this.stats?.size ?? 0 };
  }
}
