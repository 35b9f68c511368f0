/**
 * decide's statistics cache (shared/store/statistics-cache.ts) on DynamoDB
 * Local: statistics items written as the profile function writes them
 * (statisticsUpdates in a TransactWriteItems), read in the background and
 * never awaited (nothing before the first load), windowed, summed over
 * shards and experiment arms, a generation that moves only when the counts
 * do, the last good statistics kept through a store outage, and its reads
 * counted on its own client, never on the store's one client.
 *
 * This file uses its own Control table.
 */
import { randomBytes } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  // Before any import reads the environment (hoisted): the guard every ddb file runs.
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
  process.env.CONTROL_TABLE = `stats-cache-test-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { createTableInput } from '#local/tables.ts';
import { config } from '#shared/config.ts';
import { controlTable } from '#store/tables.ts';
import { DynamoClient, dynamo } from '#store/client.ts';
import { statisticsUpdates } from '#store/statistics.ts';
import { REFRESH_CONCURRENCY, StatisticsCache } from '#store/statistics-cache.ts';
import { STATISTICS_BUCKET_MS, type StatisticsIncrement } from '#domain/learning/statistics.ts';
import { refusingEndpoint } from '../support/store-faults.ts';

const run = randomBytes(3).toString('hex');
const HOUR = STATISTICS_BUCKET_MS;
const NOW = Math.floor(Date.now() / HOUR) * HOUR + 30 * 60_000;
const WINDOW = 24 * HOUR;
const bucket = (hoursAgo: number) => Math.floor((NOW - hoursAgo * HOUR) / HOUR) * HOUR;

const increment = (actionId: string, variant: string | undefined, hoursAgo: number, counts: Partial<StatisticsIncrement['counts']>, extra: Partial<StatisticsIncrement['cell']> = {}): StatisticsIncrement => ({
  cell: { actionId, ...(variant !== undefined ? { variant } : {}), context: '-', channel: 'web', placement: 'home_hero', ...extra },
  bucket: bucket(hoursAgo),
  counts: { impressions: 0, clicks: 0, conversions: 0, ...counts },
});

/** Add increments to a shard as the profile function does: ADD updates in one transaction. */
async function seed(shard: number, increments: readonly StatisticsIncrement[]): Promise<void> {
  await dynamo().send('TransactWriteItems', { TransactItems: statisticsUpdates(increments, shard) });
}

beforeAll(async () => {
  const client = new DynamoDBClient({ region: config.AWS_REGION, endpoint: config.DYNAMODB_ENDPOINT, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  await client.send(new CreateTableCommand(createTableInput(controlTable, config.CONTROL_TABLE)));
  client.destroy();
});

describe('the statistics cache', () => {
  it('serves nothing before its first load, then the windowed sums over shards and experiment arms, without a wait', async () => {
    const hero = `hero-${run}`;
    await seed(0, [increment(hero, 'a', 1, { impressions: 10, clicks: 1 }), increment(hero, 'b', 2, { impressions: 10, clicks: 4 })]);
    await seed(7, [
      increment(hero, 'b', 3, { impressions: 5, clicks: 2 }, { experiment: 'copy', arm: 'b' }),
      // Outside the window: aged out.
      increment(hero, 'a', 30, { impressions: 1_000, clicks: 900 }),
      // Another slot and another context: kept apart.
      increment(hero, 'a', 1, { impressions: 7, clicks: 7 }, { placement: 'sidebar' }),
      increment(hero, 'a', 1, { impressions: 3, clicks: 3 }, { context: 'student' }),
    ]);
    const cache = new StatisticsCache();
    dynamo().resetCounts();
    expect(cache.current(NOW, WINDOW)).toBeUndefined();
    // The refresh it started runs in the background; the next refresh call joins it.
    const stats = await cache.refresh(NOW, WINDOW);
    expect(stats?.get(hero, 'a', '-', 'web', 'home_hero')).toEqual({ impressions: 10, clicks: 1, conversions: 0 });
    expect(stats?.get(hero, 'b', '-', 'web', 'home_hero')).toEqual({ impressions: 15, clicks: 6, conversions: 0 });
    expect(stats?.get(hero, 'a', '-', 'web', 'sidebar')).toEqual({ impressions: 7, clicks: 7, conversions: 0 });
    expect(stats?.get(hero, 'a', 'student', 'web', 'home_hero')).toEqual({ impressions: 3, clicks: 3, conversions: 0 });
    expect(stats?.get(hero, 'a', '-', 'web', undefined)).toBeUndefined();
    expect(cache.current(NOW + 1, WINDOW)).toBe(stats);
    // Its reads are its own client's (16 shards, one Query each), none on the store's one client.
    expect(cache.client.counts.get(`Query ${config.CONTROL_TABLE}`)).toBe(16);
    expect(dynamo().requests).toBe(0);
  });

  it('keeps REFRESH_CONCURRENCY shard Queries in flight at once, and reads what all 16 at once read', async () => {
    const spread = `spread-${run}`;
    for (let shard = 0; shard < 16; shard++) await seed(shard, [increment(spread, shard % 2 === 0 ? 'a' : undefined, shard % 5, { impressions: shard + 1, clicks: 1 })]);
    /** The most Queries of `cache`'s client in flight at once during one refresh. */
    const mostInFlight = async (cache: StatisticsCache) => {
      const send = cache.client.send.bind(cache.client);
      let now = 0;
      let most = 0;
      cache.client.send = (async (...args: Parameters<typeof send>) => {
        most = Math.max(most, ++now);
        try {
          return await send(...args);
        } finally {
          now--;
        }
      }) as typeof send;
      const stats = await cache.refresh(NOW, WINDOW);
      return { most, stats, arms: cache.status().arms };
    };
    const bounded = await mostInFlight(new StatisticsCache());
    const together = await mostInFlight(new StatisticsCache({ concurrency: 16 }));
    expect(REFRESH_CONCURRENCY).toBe(2);
    expect(bounded.most).toBe(REFRESH_CONCURRENCY);
    expect(together.most).toBe(16);
    for (const variant of ['a', undefined]) {
      const want = together.stats?.get(spread, variant, '-', 'web', 'home_hero');
      expect(want?.impressions).toBeGreaterThan(0);
      expect(bounded.stats?.get(spread, variant, '-', 'web', 'home_hero')).toEqual(want);
    }
    expect(bounded.arms).toBe(together.arms);
  });

  it('moves its generation only when the counts change; refreshes at most every interval', async () => {
    const side = `side-${run}`;
    const cache = new StatisticsCache({ intervalMs: 5_000 });
    const first = await cache.refresh(NOW, WINDOW);
    const again = await cache.refresh(NOW + 1_000, WINDOW);
    expect(again?.generation).toBe(first?.generation);
    await seed(3, [increment(side, undefined, 0, { impressions: 4, clicks: 1 })]);
    // Within the interval: no read, the same statistics.
    const reads = cache.client.requests;
    expect(cache.current(NOW + 2_000, WINDOW)).toBe(again);
    expect(cache.client.requests).toBe(reads);
    // Past it: one background refresh, not awaited by the caller.
    expect(cache.current(NOW + 7_000, WINDOW)).toBe(again);
    await vi.waitFor(() => expect(cache.current(NOW + 7_001, WINDOW)?.get(side, undefined, '-', 'web', 'home_hero')).toEqual({ impressions: 4, clicks: 1, conversions: 0 }));
    expect(cache.current(NOW + 7_002, WINDOW)?.generation).toBe((first?.generation ?? 0) + 1);
  });

  it('keeps the last good statistics through a store outage', async () => {
    const client = new DynamoClient({ maxAttempts: 1 });
    const told: unknown[] = [];
    const cache = new StatisticsCache({ client, intervalMs: 0, onRefreshFailure: (error) => told.push(error) });
    const good = await cache.refresh(NOW, WINDOW);
    expect(good).toBeDefined();
    client.useEndpoint(await refusingEndpoint());
    await expect(cache.refresh(NOW + 1, WINDOW)).rejects.toThrow();
    expect(cache.current(NOW + 2, WINDOW)).toBe(good);
    expect(cache.status().failures).toBeGreaterThanOrEqual(1);
    expect(told.length).toBe(cache.status().failures);
    client.useEndpoint(undefined);
    await vi.waitFor(async () => expect(await cache.refresh(NOW + 3, WINDOW)).toBeDefined());
  });
});
