/**
 * Outcome statistics in the Control table (items.ts `statisticsItem`): the
 * writes that add counted outcomes to their cells, the writes that add a
 * decision log chunk's decisions to them (`countDecisionChunk`), and the
 * read of a time range.
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
import { decisionRecordsOfText } from '#domain/evaluation/decision-record.ts';
import { decisionIncrements, type DecisionIncrement } from '#domain/reports/decision-counts.ts';
import { dynamo, type DynamoClient, type Item, type TransactWriteItem } from './client.ts';
import { cancellationCodes, isUnavailable } from './faults.ts';
import { decisionChunkItem, STATISTICS_PK_PREFIX, STATISTICS_SHARDS, statisticsBucketSk, statisticsItem, statisticsShardOf } from './items.ts';
import { pool } from './pool.ts';
import { retrying } from './retry.ts';

/** How long a bucket is kept after its hour, s (DynamoDB TTL): past any `learning.window` and report range the catalog accepts. */
export const STATISTICS_RETENTION_S = 400 * 24 * 3600;

/** Attribute names of a statistics item's counts. */
const COUNT_ATTRIBUTES = { impressions: 'impressions', clicks: 'clicks', conversions: 'conversions' } as const;

/** Attribute name of a statistics item's decision count (the decision log's, `countDecisionChunk`). */
const DECISIONS_ATTRIBUTE = 'decisions';

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

/** The statistics items a transaction of `countDecisionChunk` updates: the chunk part's marker is its 100th item. */
export const DECISION_COUNT_UPDATES_PER_PART = 99;

/** How long a chunk's markers are kept, s (DynamoDB TTL): as long as the counts they guard. */
export const DECISION_CHUNK_RETENTION_S = STATISTICS_RETENTION_S;

export interface CountDecisionChunkOptions {
  readonly client?: DynamoClient;
  readonly table?: string;
  /** The clock of the markers' `countedAt` and expiry. @default Date.now */
  readonly now?: () => number;
}

/** What `countDecisionChunk` did. */
export interface DecisionChunkCount {
  /** Parts (transactions) the chunk's increments make. */
  readonly parts: number;
  /** Parts added now; the others had been counted before (a redelivery). */
  readonly added: number;
}

/**
 * Add one decision log chunk's decisions (decision-counts.ts
 * `decisionIncrements` of its records) to the statistics items, exactly
 * once per chunk whatever the redelivery.
 *
 * `chunk` names the chunk for good (deployed `s3://<bucket>/<key>` of the
 * object Firehose wrote; locally `<run>/<file>@<byte offset>`). The increments,
 * in their order, are cut into parts of DECISION_COUNT_UPDATES_PER_PART;
 * each part is one TransactWriteItems: the part's marker (items.ts
 * `decisionChunkItem`, put only if it does not exist) and an `ADD
 * decisions` update per cell, in the shard of the chunk
 * (`statisticsShardOf(chunk)`). A part whose marker exists is cancelled
 * whole and skipped: it was counted. The same chunk gives the same
 * increments in the same order, so its parts are the same on every
 * delivery, and a delivery that failed half-way adds only its missing
 * parts the next time. Parts are sent together; a conflict or an
 * unavailable store is retried (store retry.ts), any other failure is
 * thrown after every part has settled (deliver the chunk again).
 */
export async function countDecisionChunk(chunk: string, increments: readonly DecisionIncrement[], options: CountDecisionChunkOptions = {}): Promise<DecisionChunkCount> {
  const client = options.client ?? dynamo();
  const table = options.table ?? config.CONTROL_TABLE;
  const now = (options.now ?? Date.now)();
  const shard = statisticsShardOf(chunk);
  const parts: DecisionIncrement[][] = [];
  for (let i = 0; i < increments.length; i += DECISION_COUNT_UPDATES_PER_PART) parts.push(increments.slice(i, i + DECISION_COUNT_UPDATES_PER_PART));
  const addPart = async (part: readonly DecisionIncrement[], index: number): Promise<boolean> => {
    const items: TransactWriteItem[] = [
      {
        Put: {
          TableName: table,
          Item: {
            ...decisionChunkItem.key(chunk, index),
            chunk: chunk.slice(0, 1024),
            countedAt: new Date(now).toISOString(),
            expiresAt: Math.floor(now / 1000) + DECISION_CHUNK_RETENTION_S,
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      ...part.map(
        ({ bucket, cell, decisions }): TransactWriteItem => ({
          Update: {
            TableName: table,
            Key: statisticsItem.key(shard, bucket, cellKey(cell)),
            UpdateExpression: 'ADD #d :d SET expiresAt = :ttl',
            ExpressionAttributeNames: { '#d': DECISIONS_ATTRIBUTE },
            ExpressionAttributeValues: { ':d': decisions, ':ttl': Math.floor(bucket / 1000) + STATISTICS_RETENTION_S },
          },
        }),
      ),
    ];
    try {
      await retrying(() => client.send('TransactWriteItems', { TransactItems: items }), isUnavailable, { attempts: 6 });
      return true;
    } catch (error) {
      if (cancellationCodes(error)[0] === 'ConditionalCheckFailed') return false;
      throw error;
    }
  };
  const settled = await Promise.allSettled(parts.map(addPart));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return { parts: parts.length, added: settled.filter((s) => s.status === 'fulfilled' && s.value).length };
}

/** What `countDecisionLogChunk` found in a chunk and did with it. */
export interface DecisionLogChunkCount extends DecisionChunkCount {
  /** Decision records counted. */
  readonly counted: number;
  /** Records older than version 4 (they do not say which arms they served): not counted. */
  readonly uncounted: number;
  /** Lines that are no decision record, or a record whose cells no catalog could have served (decision-counts.ts). */
  readonly malformed: number;
  /** Records of a decision already in the chunk (decision-counts.ts `decisionIncrements`): counted once. */
  readonly duplicates: number;
}

/**
 * Count one chunk of the decision log, as its text (JSON lines, as the
 * decide function logged them): its records (decision-record.ts
 * `decisionRecordsOfText`), the decisions they add per cell
 * (decision-counts.ts `decisionIncrements`), added once (`countDecisionChunk`).
 * The deployed decision counter and the local decision log both count
 * through here.
 */
export async function countDecisionLogChunk(chunk: string, text: string, options: CountDecisionChunkOptions = {}): Promise<DecisionLogChunkCount> {
  const { records, malformed: unread } = decisionRecordsOfText(text);
  const { increments, counted, uncounted, malformed, duplicates } = decisionIncrements(records);
  const written = await countDecisionChunk(chunk, increments, options);
  return { ...written, counted, uncounted, malformed: unread + malformed, duplicates };
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
  /** Shard Queries in flight at once (at least 1). @default STATISTICS_SHARDS: all together */
  readonly concurrency?: number;
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
  const decisions = count(DECISIONS_ATTRIBUTE);
  return { cell: parseCellKey(sk.slice(14)), bucket, counts, ...(decisions !== 0 ? { decisions } : {}) };
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
  return queryShards(client, { table, pkPrefix: STATISTICS_PK_PREFIX, low, high, deadline: options.deadline, concurrency: options.concurrency }, (item) => {
    const row = rowOf(item);
    return row && row.bucket >= options.from && (options.to === undefined || row.bucket < options.to) ? row : undefined;
  });
}

/**
 * Every item of every shard (`<pkPrefix>00`..`15`) whose sort key is between
 * `low` and `high`: one Query per shard, each paged to its end, all sent
 * together or `range.concurrency` shards at a time; `rowOf` keeps or drops
 * each item; rows in shard order either way. The sharded reads of the
 * learning statistics and the journey report counters.
 */
export async function queryShards<Row>(
  client: DynamoClient,
  range: { readonly table: string; readonly pkPrefix: string; readonly low: string; readonly high: string; readonly deadline?: number | undefined; readonly concurrency?: number | undefined },
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
  const shards: Row[][] = new Array<Row[]>(STATISTICS_SHARDS);
  await pool(
    Array.from({ length: STATISTICS_SHARDS }, (_, shard) => shard),
    range.concurrency ?? STATISTICS_SHARDS,
    async (shard) => {
      shards[shard] = await shardRows(shard);
    },
  );
  return shards.flat();
}
