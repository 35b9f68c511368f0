/**
 * Outcome statistics in the Control table (items.ts `statisticsItem`): the
 * writes that add counted outcomes to their cells, and the read of a time
 * range.
 *
 * Increments are written as `ADD` updates inside the profile function's
 * conditional transaction (the same one that puts the profile and its
 * "applied" markers), so an outcome adds to its cell exactly when its event
 * is applied: once, whatever the redelivery. `statisticsUpdates` sums the
 * increments that fall on one item (DynamoDB refuses two operations on one
 * item in a transaction).
 */
import { config } from '#shared/config.ts';
import { parseCellKey, cellKey, type OutcomeCounts, type StatisticsIncrement, type StatisticsRow } from '#domain/learning/statistics.ts';
import { dynamo, type DynamoClient, type Item, type TransactWriteItem } from './client.ts';
import { STATISTICS_PK_PREFIX, STATISTICS_SHARDS, statisticsBucketSk, statisticsItem } from './items.ts';

/** How long a bucket is kept after its hour, s (DynamoDB TTL): past any `learning.window` and report range the catalog accepts. */
export const STATISTICS_RETENTION_S = 400 * 24 * 3600;

/** Attribute names of a statistics item's counts. */
const COUNT_ATTRIBUTES = { impressions: 'impressions', clicks: 'clicks', conversions: 'conversions' } as const;

/**
 * The `Update` items that add `increments` to the shard `shard`: one per
 * distinct (bucket, cell), the increments on it summed. A sum of zero in
 * every count writes nothing.
 */
export function statisticsUpdates(increments: readonly StatisticsIncrement[], shard: number, table: string = config.CONTROL_TABLE): TransactWriteItem[] {
  const sums = new Map<string, { bucket: number; cell: string; counts: { impressions: number; clicks: number; conversions: number } }>();
  for (const increment of increments) {
    const cell = cellKey(increment.cell);
    const id = `${statisticsBucketSk(increment.bucket)}#${cell}`;
    const sum = sums.get(id) ?? { bucket: increment.bucket, cell, counts: { impressions: 0, clicks: 0, conversions: 0 } };
    sum.counts.impressions += increment.counts.impressions;
    sum.counts.clicks += increment.counts.clicks;
    sum.counts.conversions += increment.counts.conversions;
    sums.set(id, sum);
  }
  const updates: TransactWriteItem[] = [];
  for (const { bucket, cell, counts } of sums.values()) {
    if (counts.impressions === 0 && counts.clicks === 0 && counts.conversions === 0) continue;
    updates.push({
      Update: {
        TableName: table,
        Key: statisticsItem.key(shard, bucket, cell),
        UpdateExpression: 'ADD #i :i, #c :c, #v :v SET expiresAt = :ttl',
        ExpressionAttributeNames: { '#i': COUNT_ATTRIBUTES.impressions, '#c': COUNT_ATTRIBUTES.clicks, '#v': COUNT_ATTRIBUTES.conversions },
        ExpressionAttributeValues: {
          ':i': counts.impressions,
          ':c': counts.clicks,
          ':v': counts.conversions,
          ':ttl': Math.floor(bucket / 1000) + STATISTICS_RETENTION_S,
        },
      },
    });
  }
  return updates;
}

export interface ReadStatisticsOptions {
  /** First bucket start read, epoch ms (inclusive). */
  readonly from: number;
  /** Read buckets starting before this instant, epoch ms (exclusive). Default: no end. */
  readonly to?: number;
  readonly client?: DynamoClient;
  readonly table?: string;
  /** Instant (epoch ms) by which every page is read. */
  readonly deadline?: number;
}

/** One stored item as a row; undefined for an item that is not one. */
function rowOf(item: Item): StatisticsRow | undefined {
  const sk = item.sk;
  if (typeof sk !== 'string') return undefined;
  const hash = sk.indexOf('#');
  if (hash !== 13) return undefined;
  const bucket = Number(sk.slice(0, 13));
  const count = (name: string): number => (typeof item[name] === 'number' ? (item[name] as number) : Number(item[name] ?? 0) || 0);
  const counts: OutcomeCounts = {
    impressions: count(COUNT_ATTRIBUTES.impressions),
    clicks: count(COUNT_ATTRIBUTES.clicks),
    conversions: count(COUNT_ATTRIBUTES.conversions),
  };
  return { cell: parseCellKey(sk.slice(14)), bucket, counts };
}

/**
 * Every (bucket, cell) row of every shard whose bucket starts in
 * [from, to): one Query per shard, sent together, each paged to its end.
 * The same cell in several shards gives several rows (sum them:
 * statistics.ts `windowedCounts`).
 */
export async function readStatistics(options: ReadStatisticsOptions): Promise<StatisticsRow[]> {
  const client = options.client ?? dynamo();
  const table = options.table ?? config.CONTROL_TABLE;
  const low = statisticsBucketSk(Math.max(0, options.from));
  // '$' sorts after '#': the last key of the bucket before `to`.
  const high = options.to === undefined ? '9999999999999$' : `${statisticsBucketSk(Math.max(0, options.to - 1))}$`;
  return queryShards(client, { table, pkPrefix: STATISTICS_PK_PREFIX, low, high, deadline: options.deadline }, (item) => {
    const row = rowOf(item);
    return row && row.bucket >= options.from && (options.to === undefined || row.bucket < options.to) ? row : undefined;
  });
}

/**
 * Every item of every shard (`<pkPrefix>00`..`15`) whose sort key is between
 * `low` and `high`: one Query per shard, sent together, each paged to its
 * end; `rowOf` keeps or drops each item. The sharded reads of the learning
 * statistics and the journey report counters.
 */
export async function queryShards<Row>(
  client: DynamoClient,
  range: { readonly table: string; readonly pkPrefix: string; readonly low: string; readonly high: string; readonly deadline?: number | undefined },
  rowOf: (item: Item) => Row | undefined,
): Promise<Row[]> {
  const shardRows = async (shard: number): Promise<Row[]> => {
    const rows: Row[] = [];
    let start: Item | undefined;
    do {
      const page = await client.send(
        'Query',
        {
          TableName: range.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :low AND :high',
          ExpressionAttributeValues: { ':pk': `${range.pkPrefix}${String(shard).padStart(2, '0')}`, ':low': range.low, ':high': range.high },
          ...(start ? { ExclusiveStartKey: start } : {}),
        },
        range.deadline !== undefined ? { deadline: range.deadline } : {},
      );
      for (const item of page.Items ?? []) {
        const row = rowOf(item);
        if (row !== undefined) rows.push(row);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return rows;
  };
  const shards = await Promise.all(Array.from({ length: STATISTICS_SHARDS }, (_, shard) => shardRows(shard)));
  return shards.flat();
}
