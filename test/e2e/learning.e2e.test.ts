/**
 * Seed scenario 11, decide's half, on the local stack: outcome statistics
 * written as the profile function writes them (statisticsUpdates in a
 * TransactWriteItems, straight into DynamoDB Local) reach decide over HTTP
 * within seconds, without a restart: the hero banner shifts to the variant
 * that does better while the other keeps its floor share, and every answer
 * says with what probability it was chosen. Before any outcome, the
 * catalog's prior decides (variant `a`, the first, mostly).
 */
import { describe, expect, it } from 'vitest';
import { useLocalStack, type TestStack } from '../support/stack.ts';
import { decide, uniqueId, type StackAccess } from './fixtures/kairos.ts';

let stack: TestStack;
let api: StackAccess;
useLocalStack((started, access) => {
  stack = started;
  api = access;
});

/** The demo catalog's floor (catalog/demo.yaml `learning.floor`). */
const FLOOR = 0.02;

/**
 * A first-time visitor's decision on the hero banner. A degraded answer (the
 * store slower than decide's deadline on a loaded machine: the fail-safe, not
 * what this file tests) is asked again, a few times.
 */
async function heroDecision(): Promise<{ variant: string; probability: number }> {
  for (let attempt = 0; ; attempt++) {
    const d = await decide(api, { anonymousId: uniqueId('s11'), channel: 'web', placement: 'home_hero' });
    if (d.degraded && attempt < 5) continue;
    const top = d.actions[0];
    expect(top?.actionId).toBe('spring-sale-banner');
    return { variant: top?.variant ?? '', probability: top?.probability ?? Number.NaN };
  }
}

/** `n` first-time visitors' decisions on the hero banner, 5 at a time: the variants served and the probabilities reported. */
async function heroDecisions(n: number): Promise<{ variant: string; probability: number }[]> {
  const served: { variant: string; probability: number }[] = [];
  for (let i = 0; i < n; i += 5) served.push(...(await Promise.all(Array.from({ length: Math.min(5, n - i) }, heroDecision))));
  return served;
}

const share = (served: readonly { variant: string }[], variant: string) => served.filter((s) => s.variant === variant).length / served.length;

describe('11. test and learn: decide learns from outcome statistics within seconds', () => {
  it('shifts the hero banner to the better variant, the other keeping its floor share', async () => {
    const before = await heroDecisions(100);
    expect(share(before, 'a')).toBeGreaterThan(0.8);
    for (const s of before) expect(s.probability).toBeGreaterThan(0);

    // Variant b converts clicks five times better, in this hour's bucket, spread over two shards.
    const { DynamoClient } = await import('#store/client.ts');
    const { statisticsUpdates } = await import('#store/statistics.ts');
    const { STATISTICS_BUCKET_MS } = await import('#domain/learning/statistics.ts');
    const client = new DynamoClient({ endpoint: stack.dynamoEndpoint });
    const bucket = Math.floor(Date.now() / STATISTICS_BUCKET_MS) * STATISTICS_BUCKET_MS;
    const cell = (variant: string) => ({ actionId: 'spring-sale-banner', variant, context: '-', channel: 'web' as const, placement: 'home_hero' });
    for (const shard of [2, 11]) {
      await client.send('TransactWriteItems', {
        TransactItems: statisticsUpdates(
          [
            { cell: cell('a'), bucket, counts: { impressions: 1_000, clicks: 20, conversions: 0 } },
            { cell: cell('b'), bucket, counts: { impressions: 1_000, clicks: 100, conversions: 0 } },
          ],
          shard,
        ),
      });
    }

    // Visible within seconds (the statistics cache refreshes at most every 5 s, in the background).
    const seeded = Date.now();
    let after: { variant: string; probability: number }[] = [];
    await expect
      .poll(
        async () => {
          after = await heroDecisions(20);
          return share(after, 'b');
        },
        { timeout: 15_000, interval: 500 },
      )
      .toBeGreaterThan(0.7);
    expect(Date.now() - seeded).toBeLessThan(15_000);

    // Now: b is the greedy arm; a keeps at least its floor share (the probability b reports leaves it that much).
    after = await heroDecisions(400);
    const b = after.filter((s) => s.variant === 'b');
    const a = after.filter((s) => s.variant === 'a');
    expect(share(after, 'b')).toBeGreaterThan(0.85);
    expect(a.length).toBeGreaterThan(0);
    for (const s of b) expect(s.probability).toBeLessThanOrEqual(1 - FLOOR);
    for (const s of a) expect(s.probability).toBeGreaterThanOrEqual(FLOOR);
    expect(new Set(b.map((s) => s.probability)).size).toBe(1);
    expect(b[0]!.probability + a[0]!.probability).toBeCloseTo(1, 3);
  });
});
