/**
 * One event that sets off all a catalog allows, through the real profile
 * function against DynamoDB Local: an outcome (`Promotion Clicked`) naming a
 * decision held out of many experiments, for a catalog whose 20 triggers and
 * journeys (60 items per event, the most compile-journeys.ts takes) all
 * start on that event. Its write (profile, marker, sends, journey emissions
 * and counters, the outcome's statistics cells) is one transaction, which
 * DynamoDB takes only up to 100 items:
 *
 * - a decision held out of MAX_HOLDOUT_EXPERIMENTS experiments (the most a
 *   catalog may now hold) commits with every control cell counted;
 * - a decision held out of 50 (the most a decision id carries, issued under
 *   a catalog published before the bound) commits too, the control cells
 *   that do not fit left out, instead of a transaction refused on every
 *   delivery until the failure queue.
 */
import type { DynamoDBRecord } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { customerTag, decisionKey, encodeDecisionId, sealDecisionId } from '#domain/decide/decision-id.ts';
import { createJourneyStepper } from '#domain/journeys/react.ts';
import { STATISTICS_BUCKET_MS, type OutcomeLearning } from '#domain/learning/statistics.ts';
import { createTriggerReactor } from '#domain/triggers/react.ts';
import { MAX_HOLDOUT_EXPERIMENTS } from '#domain/transaction-budget.ts';
import { DynamoClient, type Operation } from '#store/client.ts';
import { appliedMarkerItem } from '#store/items.ts';
import { readStatistics } from '#store/statistics.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
const { createProfileHandler } = await import('#functions/profile/handler.ts');
const { config } = await import('#shared/config.ts');

const DAY = 86_400_000;
const DECISION_KEY = decisionKey(process.env.KAIROS_DECISION_KEY ?? '');
const LEARNING: OutcomeLearning = { contextBy: 'persona', conversionWindowMs: DAY };
const DECIDED = Date.parse('2026-04-01T09:30:00Z');
const run = Date.now().toString(36);
let sequence = 0;

/** 20 triggers and four journeys (6 + 6 + 6 + 4 acts, then a wait: 16 + 16 + 16 + 12 = 60 items), all on a click. */
const catalog: CompiledCatalog = (() => {
  const journey = (id: string, acts: number) => ({
    id,
    entry: { event: 'Promotion Clicked' },
    reentry: 'once',
    steps: [...Array.from({ length: acts }, (_, i) => ({ id: `act-${i}`, act: { channel: 'call_center' } })), { id: 'later', wait: '1d' }],
  });
  const result = loadCatalog(
    JSON.stringify({
      kind: 'kairos/v1',
      actions: [{ id: 'call', name: 'Call', content: { call_center: { script: 'Hola' } } }],
      triggers: Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, on: { event: 'Promotion Clicked' }, decide: { channel: 'call_center' } })),
      journeys: [journey('j0', 6), journey('j1', 6), journey('j2', 6), journey('j3', 4)],
    }),
    'json',
  );
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
})();

/** A client that remembers how many items each TransactWriteItems held (the requests still go to DynamoDB Local). */
class CountingClient extends DynamoClient {
  readonly transactions: number[] = [];
  override send: DynamoClient['send'] = (operation, input, options) => {
    if ((operation as Operation) === 'TransactWriteItems') this.transactions.push((input as { TransactItems: unknown[] }).TransactItems.length);
    return DynamoClient.prototype.send.call(this, operation, input, options) as never;
  };
}

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

/** A sealed web decision for `userId` (its customer tag), its learning context `persona`, held out of `holdouts` experiments. */
const heldOut = (userId: string, persona: string, holdouts: number): string =>
  sealDecisionId(
    encodeDecisionId({
      catalogVersion: '1',
      channel: 'web',
      placement: 'home',
      issuedAt: new Date(DECIDED),
      nonce: `n${holdouts}`,
      fallback: false,
      degraded: false,
      persona,
      actions: [{ actionId: 'a1', propensity: 0.5 }],
      holdouts: Array.from({ length: holdouts }, (_, i) => `exp-${i}`),
      customer: customerTag(userId),
    }),
    DECISION_KEY,
  );

/** Apply one click on the decision through the profile function: its batch failures, the transactions' sizes, the persona's statistics cells. */
async function click(holdouts: number) {
  const userId = `budget-${holdouts}-${run}`;
  const persona = `p-budget-${holdouts}-${run}`;
  const event = storedEvent({
    type: 'track',
    userId,
    event: 'Promotion Clicked',
    messageId: `click-${holdouts}-${run}`,
    timestamp: new Date(DECIDED + 60_000).toISOString(),
    properties: { decision_id: heldOut(userId, persona, holdouts), action_id: 'a1' },
  });
  await new DynamoClient().send('PutItem', { TableName: config.EVENTS_TABLE, Item: event });
  const client = new CountingClient();
  const process = createProfileHandler({
    enricher: () => ({ segments: [], scores: {} }),
    reactor: createTriggerReactor(() => catalog),
    journeys: createJourneyStepper(() => catalog),
    settings: { halfLifeDays: 14, decisionKey: DECISION_KEY, learning: LEARNING },
    learning: () => LEARNING,
    client,
  });
  const records: DynamoDBRecord[] = [streamRecord(event, { sequenceNumber: sequenceNumber(sequence++) })];
  const response = await process(streamEvent(records));
  const marker = await new DynamoClient().send('GetItem', { TableName: config.PROFILES_TABLE, Key: appliedMarkerItem.key(event.pk), ConsistentRead: true });
  const rows = (await readStatistics({ from: DECIDED - STATISTICS_BUCKET_MS, to: DECIDED + STATISTICS_BUCKET_MS })).filter((row) => row.cell.context === persona);
  return {
    failures: response.batchItemFailures,
    transactions: client.transactions,
    applied: marker.Item !== undefined,
    served: rows.filter((row) => row.cell.actionId === 'a1').length,
    controls: rows.filter((row) => row.cell.actionId === '').length,
  };
}

describe("an event that sets off all the catalog allows: its one transaction within DynamoDB's 100 items", () => {
  it(`a decision held out of ${MAX_HOLDOUT_EXPERIMENTS} experiments (the most a catalog holds): applied once, every control cell counted`, async () => {
    const result = await click(MAX_HOLDOUT_EXPERIMENTS);
    expect(result.failures).toEqual([]);
    expect(result.applied).toBe(true);
    expect(result.served).toBe(1);
    expect(result.controls).toBe(MAX_HOLDOUT_EXPERIMENTS);
    expect(Math.max(...result.transactions)).toBeLessThanOrEqual(100);
    // The catalog's sends and journeys did take their room: the write is near the limit.
    expect(Math.max(...result.transactions)).toBeGreaterThan(80);
  });

  it('a decision held out of 50 (a catalog published before the bound): applied once, within 100 items, the control cells that fit counted', async () => {
    const result = await click(50);
    expect(result.failures).toEqual([]);
    expect(result.applied).toBe(true);
    expect(result.served).toBe(1);
    expect(result.controls).toBeGreaterThanOrEqual(MAX_HOLDOUT_EXPERIMENTS);
    expect(result.controls).toBeLessThan(50);
    expect(result.transactions).toContain(100);
    expect(Math.max(...result.transactions)).toBe(100);
  });
});
