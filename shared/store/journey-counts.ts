/**
 * The journey report's counters in the Control table (items.ts
 * `journeyCountItem`): the `ADD` updates that count an applied event's
 * journey milestones, and the read of a range of days.
 *
 * Like the outcome statistics (statistics.ts), the updates go in the
 * profile function's conditional transaction, the one that puts the profile
 * (with its journey runs) and the event's "applied" marker: a milestone is
 * counted exactly when it happens, once, whatever the redelivery.
 */
import { config } from '#shared/config.ts';
import type { JourneyCounterIncrement } from '#domain/journeys/report.ts';
import { dynamo, type DynamoClient, type Item, type TransactWriteItem } from './client.ts';
import { JOURNEY_COUNT_PK_PREFIX, journeyCountDaySk, journeyCountItem } from './items.ts';
import { queryShards } from './statistics.ts';

/** How long a day's counters are kept after it, s (DynamoDB TTL). */
export const JOURNEY_COUNT_RETENTION_S = 400 * 24 * 3600;

const DAY_S = 86_400;

/** A counter's identity within a transaction: two updates of one item must be summed first. */
const counterId = (increment: Pick<JourneyCounterIncrement, 'journey' | 'day' | 'milestone'>): string =>
  `${journeyCountDaySk(increment.day)}#${increment.journey}#${increment.milestone}`;

/** The `Update` items that add `increments` on shard `shard`: one per counter, its increments summed. */
export function journeyCountUpdates(increments: readonly JourneyCounterIncrement[], shard: number, table: string = config.CONTROL_TABLE): TransactWriteItem[] {
  const sums = new Map<string, JourneyCounterIncrement & { n: number }>();
  for (const increment of increments) {
    const id = counterId(increment);
    const sum = sums.get(id);
    if (sum) sum.n += increment.n;
    else sums.set(id, { ...increment });
  }
  return [...sums.values()]
    .filter((sum) => sum.n !== 0)
    .map((sum) => ({
      Update: {
        TableName: table,
        Key: journeyCountItem.key(shard, sum.day, sum.journey, sum.milestone),
        UpdateExpression: 'ADD #n :n SET expiresAt = :ttl',
        ExpressionAttributeNames: { '#n': 'n' },
        ExpressionAttributeValues: { ':n': sum.n, ':ttl': (sum.day + 1) * DAY_S + JOURNEY_COUNT_RETENTION_S },
      },
    }));
}

/** The distinct counter items `increments` fall on (a transaction's item count). */
export const journeyCounterItems = (increments: readonly JourneyCounterIncrement[]): ReadonlySet<string> => new Set(increments.map(counterId));

/** One stored item as a counter row; undefined for an item that is not one. */
function rowOf(item: Item): JourneyCounterIncrement | undefined {
  if (typeof item.sk !== 'string') return undefined;
  const [day, journey, milestone, ...rest] = item.sk.split('#');
  if (rest.length > 0 || day === undefined || journey === undefined || milestone === undefined || !/^\d{6}$/.test(day)) return undefined;
  const n = typeof item.n === 'number' ? item.n : Number(item.n ?? 0) || 0;
  return { journey, day: Number(day), milestone, n };
}

export interface ReadJourneyCountsOptions {
  /** First and last day read (days since the epoch, UTC), both included. */
  readonly from: number;
  readonly to: number;
  readonly client?: DynamoClient;
  readonly table?: string;
  /** Instant (epoch ms) by which every page is read. */
  readonly deadline?: number;
}

/**
 * Every counter of every shard for days `from`..`to`: one Query per shard,
 * sent together, each paged to its end. The same counter on several shards
 * gives several rows (the report sums them).
 */
export async function readJourneyCounts(options: ReadJourneyCountsOptions): Promise<JourneyCounterIncrement[]> {
  const client = options.client ?? dynamo();
  const table = options.table ?? config.CONTROL_TABLE;
  const low = `${journeyCountDaySk(Math.max(0, options.from))}#`;
  // '$' sorts after '#': past the last key of the last day.
  const high = `${journeyCountDaySk(Math.max(0, options.to))}$`;
  return queryShards(client, { table, pkPrefix: JOURNEY_COUNT_PK_PREFIX, low, high, deadline: options.deadline }, (item) => {
    const row = rowOf(item);
    return row && row.day >= options.from && row.day <= options.to ? row : undefined;
  });
}
