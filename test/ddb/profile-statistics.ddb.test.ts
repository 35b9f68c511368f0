/**
 * Outcome statistics from the real profile function against DynamoDB Local:
 * whatever the stream redelivers, reorders or duplicates, the statistics
 * items read back (`readStatistics`) hold what the final profile counted,
 * once; two customers' outcomes on the same cell in one batch go in
 * one transaction, their updates summed, within the 100-item limit; and a
 * decision reported by customers it was not made for counts once, for its own.
 *
 * Every run uses a persona of its own (the cells' learning context), so the
 * cells it reads are its own in the shared Control table.
 */
import type { DynamoDBRecord } from 'aws-lambda';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { customerTag, decisionKey, encodeDecisionId, sealDecisionId } from '#domain/decide/decision-id.ts';
import { STATISTICS_BUCKET_MS, type OutcomeLearning } from '#domain/learning/statistics.ts';
import { userProfileKey, type StoredEvent } from '#domain/stored-event.ts';
import { DynamoClient, type Operation } from '#store/client.ts';
import { statisticsShardOf } from '#store/items.ts';
import { readStatistics } from '#store/statistics.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';
import { expectedStatistics, statisticsTotals } from '../unit/profile-support.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
const { createProfileHandler } = await import('#functions/profile/handler.ts');

const DAY = 86_400_000;
const DECISION_KEY = decisionKey(process.env.KAIROS_DECISION_KEY ?? '');
const LEARNING: OutcomeLearning = { contextBy: 'persona', conversionWindowMs: DAY };
const settings = { halfLifeDays: 14, decisionKey: DECISION_KEY, learning: LEARNING };
const nothing = () => ({ segments: [], scores: {} });
let unique = 0;
const uid = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++unique}`;

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

/** A client that remembers how many items each TransactWriteItems held (the requests still go to DynamoDB Local). */
class CountingClient extends DynamoClient {
  readonly transactions: number[] = [];
  override send: DynamoClient['send'] = (operation, input, options) => {
    if ((operation as Operation) === 'TransactWriteItems') this.transactions.push((input as { TransactItems: unknown[] }).TransactItems.length);
    return DynamoClient.prototype.send.call(this, operation, input, options) as never;
  };
}

const DECIDED = [Date.parse('2026-04-01T09:30:00Z'), Date.parse('2026-04-01T11:10:00Z')];

/** Two sealed decisions of a run for `customer` (decide's customer key): on the web (the customer in exp-h's holdout) and by push. */
function decisions(persona: string, holdout: string, customer: string): string[] {
  return DECIDED.map((at, i) =>
    sealDecisionId(
      encodeDecisionId({
        catalogVersion: '1',
        channel: i === 0 ? 'web' : 'push',
        ...(i === 0 ? { placement: 'home' } : {}),
        issuedAt: new Date(at),
        nonce: `n${i}`,
        fallback: false,
        degraded: false,
        persona,
        actions: [
          { actionId: 'a1', variant: 'x', propensity: 0.5 },
          { actionId: 'a2', experiment: { id: 'exp-a', arm: 'b' }, propensity: 0.5 },
        ],
        holdouts: i === 0 ? [holdout] : [],
        customer: customerTag(customer),
      }),
      DECISION_KEY,
    ),
  );
}

/** The run's statistics as stored, summed per (bucket, cell). */
async function storedTotals(persona: string): Promise<Record<string, string>> {
  const rows = await readStatistics({ from: DECIDED[0]! - STATISTICS_BUCKET_MS, to: DECIDED[1]! + STATISTICS_BUCKET_MS });
  return statisticsTotals(rows.filter((row) => row.cell.context === persona));
}

describe('outcome statistics of the profile function', () => {
  it('redelivered, reordered and duplicated records add what the final profile counted, once', async () => {
    const outcome = fc.record({
      event: fc.constantFrom('Promotion Viewed', 'Promotion Clicked', 'Push Notification Received', 'Email Opened', 'Order Completed'),
      decision: fc.nat(1),
      action: fc.constantFrom(undefined, 'a1', 'a2', 'a3'),
      variant: fc.constantFrom(undefined, undefined, 'x', 'y'),
      lagHours: fc.constantFrom(0, 1, 30, 200),
      known: fc.boolean(),
      shard: fc.nat(2),
    });
    const scenario = fc.record({
      outcomes: fc.array(outcome, { minLength: 1, maxLength: 16 }),
      identifyAt: fc.nat(),
      identifyShard: fc.nat(2),
      plan: fc.array(
        fc.record({
          size: fc.integer({ min: 1, max: 6 }),
          duplicate: fc.option(fc.nat(5), { nil: undefined }),
          failAt: fc.option(fc.nat(5), { nil: undefined }),
          rewind: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
        }),
        { minLength: 1, maxLength: 8 },
      ),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ outcomes, identifyAt, identifyShard, plan }) => {
        const persona = uid('p');
        const userId = uid('u');
        const anonymousId = uid('a');
        // Decided while anonymous; after the login the customer's reports carry both ids (as trackers send them).
        const ids = decisions(persona, uid('exp-h'), anonymousId);
        const sourceId = uid('src');
        const process = createProfileHandler({ enricher: nothing, settings, learning: () => LEARNING });
        const list: { event: StoredEvent; shard: number }[] = outcomes.map((o, i) => ({
          event: storedEvent({
            type: 'track',
            event: o.event,
            sourceId,
            messageId: `m${i}`,
            ...(o.known ? { userId, anonymousId } : { anonymousId }),
            timestamp: new Date(DECIDED[o.decision]! + o.lagHours * 3_600_000).toISOString(),
            properties: { decision_id: ids[o.decision], ...(o.action ? { action_id: o.action } : {}), ...(o.variant ? { variant: o.variant } : {}) },
          }),
          shard: o.shard,
        }));
        const link = storedEvent({ type: 'identify', sourceId, messageId: 'link', userId, anonymousId, timestamp: '2026-04-01T12:00:00.000Z' });
        list.splice(identifyAt % (list.length + 1), 0, { event: link, shard: identifyShard });

        const shards = [0, 1, 2].map((s) =>
          list.filter((e) => e.shard === s).map((e, i) => streamRecord(e.event, { sequenceNumber: sequenceNumber(s * 1000 + i) })),
        );
        const checkpoints = [0, 0, 0];
        for (let step = 0; shards.some((records, s) => checkpoints[s]! < records.length); step++) {
          const last = step >= plan.length;
          await Promise.all(
            shards.map(async (records, s) => {
              const from = checkpoints[s]!;
              if (from >= records.length) return;
              const move = plan[(step + s) % plan.length]!;
              const batch: DynamoDBRecord[] = records.slice(from, from + move.size);
              if (!last && move.duplicate !== undefined && move.duplicate < batch.length) batch.splice(move.duplicate, 0, batch[move.duplicate]!);
              const response = await process(streamEvent(batch));
              expect(response.batchItemFailures).toEqual([]);
              const delivered = records.slice(from, from + move.size).length;
              if (!last && move.failAt !== undefined && move.failAt < delivered) checkpoints[s] = from + move.failAt;
              else checkpoints[s] = from + delivered;
              if (!last && move.rewind !== undefined) checkpoints[s] = Math.max(0, checkpoints[s]! - move.rewind);
            }),
          );
        }
        // One customer in the end: every outcome on the user's profile.
        expect(await storedTotals(persona)).toEqual(expectedStatistics([list.map((e) => e.event)], settings));
      }),
      { numRuns: 10 },
    );
  }, 300_000);

  it('two customers\' outcomes on the same cell in one batch: one transaction, the updates summed', async () => {
    const persona = uid('p');
    const holdout = uid('exp-h');
    const first = uid('u');
    let second = uid('u');
    while (statisticsShardOf(userProfileKey(second)) !== statisticsShardOf(userProfileKey(first))) second = uid('u');
    const client = new CountingClient();
    const process = createProfileHandler({ enricher: nothing, settings, learning: () => LEARNING, client });
    const sourceId = uid('src');
    // Each customer's own decision, on the same cells.
    const viewed = (userId: string, n: number) =>
      streamRecord(
        storedEvent({ type: 'track', event: 'Promotion Viewed', sourceId, messageId: `v${n}`, userId, timestamp: '2026-04-01T09:31:00.000Z', properties: { decision_id: decisions(persona, holdout, userId)[0], action_id: 'a1' } }),
        { sequenceNumber: sequenceNumber(n) },
      );
    const response = await process(streamEvent([viewed(first, 1), viewed(second, 2)]));
    expect(response.batchItemFailures).toEqual([]);
    // Two profiles and two markers, one action cell and one control cell.
    expect(client.transactions).toEqual([6]);
    const hour = Math.floor(DECIDED[0]! / STATISTICS_BUCKET_MS) * STATISTICS_BUCKET_MS;
    const totals = await storedTotals(persona);
    expect(Object.entries(totals).filter(([key]) => key.startsWith(`${hour} a1`)).map(([, sum]) => sum)).toEqual(['2/0/0']);
    expect(Object.values(totals)).toEqual(['2/0/0', '2/0/0']);
  });

  it('a batch of many customers on one shard and cell is packed within 100 items, each statistics item counted once', async () => {
    const persona = uid('p');
    const holdout = uid('exp-h');
    const shard = statisticsShardOf(userProfileKey('anchor'));
    const users: string[] = [];
    while (users.length < 120) {
      const userId = uid('u');
      if (statisticsShardOf(userProfileKey(userId)) === shard) users.push(userId);
    }
    const client = new CountingClient();
    const process = createProfileHandler({ enricher: nothing, settings, learning: () => LEARNING, client });
    const sourceId = uid('src');
    const records = users.map((userId, n) =>
      streamRecord(
        storedEvent({ type: 'track', event: 'Promotion Viewed', sourceId, messageId: `v${n}`, userId, timestamp: '2026-04-01T09:31:00.000Z', properties: { decision_id: decisions(persona, holdout, userId)[0], action_id: 'a1' } }),
        { sequenceNumber: sequenceNumber(n + 1) },
      ),
    );
    const response = await process(streamEvent(records));
    expect(response.batchItemFailures).toEqual([]);
    // 49 customers (98 items) and the two shared statistics items fill a transaction exactly.
    expect(client.transactions.sort((a, b) => b - a)).toEqual([100, 100, 46]);
    expect(Object.values(await storedTotals(persona))).toEqual(['120/0/0', '120/0/0']);
  }, 120_000);

  it('one decision reported by 50 other customers in one batch counts once, for the customer it was made for', async () => {
    const persona = uid('p');
    const harvester = uid('harvest');
    const [web] = decisions(persona, uid('exp-h'), harvester);
    const process = createProfileHandler({ enricher: nothing, settings, learning: () => LEARNING });
    const sourceId = uid('src');
    const report = (event: string, anonymousId: string, n: number) =>
      streamRecord(
        storedEvent({ type: 'track', event, sourceId, messageId: `m${n}`, anonymousId, timestamp: '2026-04-01T09:31:00.000Z', properties: { decision_id: web, action_id: 'a1' } }),
        { sequenceNumber: sequenceNumber(n + 1) },
      );
    const sybils = Array.from({ length: 50 }, (_, i) => report('Promotion Clicked', `${harvester}-sybil-${i}`, i + 2));
    const response = await process(streamEvent([report('Promotion Viewed', harvester, 0), ...sybils, report('Promotion Clicked', harvester, 1)]));
    expect(response.batchItemFailures).toEqual([]);
    // The action's cell and exp-h's control cell: 1 impression and 1 click each (impressions/clicks/conversions).
    expect(Object.values(await storedTotals(persona))).toEqual(['1/1/0', '1/1/0']);
  }, 120_000);

  it('50 fresh users reporting a decision under its customer\'s anonymousId beside their own userId count nothing', async () => {
    const persona = uid('p');
    const harvester = uid('harvest');
    const [web] = decisions(persona, uid('exp-h'), harvester);
    const process = createProfileHandler({ enricher: nothing, settings, learning: () => LEARNING });
    const sourceId = uid('src');
    const at = '2026-04-01T09:31:00.000Z';
    const report = (event: string, ids: { userId?: string; anonymousId: string }, n: number) =>
      streamRecord(storedEvent({ type: 'track', event, sourceId, messageId: `m${n}`, ...ids, timestamp: at, properties: { decision_id: web, action_id: 'a1' } }), {
        sequenceNumber: sequenceNumber(n + 1),
      });
    // The customer logs in on the browser the decision was made for: the anonymous id is the customer's.
    const login = streamRecord(storedEvent({ type: 'identify', sourceId, messageId: 'login', userId: `${harvester}-user`, anonymousId: harvester, timestamp: at }), {
      sequenceNumber: sequenceNumber(1_000),
    });
    const first = await process(streamEvent([report('Promotion Viewed', { anonymousId: harvester }, 0), login]));
    expect(first.batchItemFailures).toEqual([]);
    const sybils = Array.from({ length: 50 }, (_, i) => report('Promotion Clicked', { userId: `${harvester}-sybil-${i}`, anonymousId: harvester }, i + 2));
    const response = await process(streamEvent([...sybils, report('Promotion Clicked', { anonymousId: harvester }, 1)]));
    expect(response.batchItemFailures).toEqual([]);
    // The customer's own click counts; the 50 others count nothing.
    expect(Object.values(await storedTotals(persona))).toEqual(['1/1/0', '1/1/0']);
  }, 120_000);
});
