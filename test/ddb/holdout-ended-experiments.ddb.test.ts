/**
 * The holdout bound with a long history of ended experiments, against
 * DynamoDB Local (a Control table of this file's own, so the catalog it
 * publishes is live for it alone): a catalog with the most experiments that
 * can still hold customers out (MAX_HOLDOUT_EXPERIMENTS), 30 that have ended
 * and 5 paused, all with a holdout of 0.9, and 20 triggers and journeys of
 * 60 items all starting on a click, is published; decide holds a customer
 * out of the live experiments only (the customer is in the control group of
 * every one of them, ended and paused included, were they assigning); and
 * the click on that decision, through the profile function with the live
 * catalog, commits in one transaction within DynamoDB's 100 items, every
 * control cell of the live experiments counted and none of the others.
 */
import type { DynamoDBRecord } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  process.env.CONTROL_TABLE = `holdouts-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { customerKey, decide } from '#domain/decide/decide.ts';
import { decisionKey, decodeDecisionId, sealDecisionId } from '#domain/decide/decision-id.ts';
import { assignArm } from '#domain/decide/experiments.ts';
import { CONTROL_ARM } from '#domain/catalog/compiled.ts';
import { STATISTICS_BUCKET_MS } from '#domain/learning/statistics.ts';
import { emptyProfileView } from '#domain/profile/view.ts';
import { MAX_HOLDOUT_EXPERIMENTS } from '#domain/transaction-budget.ts';
import { config } from '#shared/config.ts';
import { publishCatalog } from '#store/catalog.ts';
import { DynamoClient, type Operation } from '#store/client.ts';
import { appliedMarkerItem } from '#store/items.ts';
import { readStatistics } from '#store/statistics.ts';
import { catalogEnrichment, createProfileHandler } from '#functions/profile/handler.ts';
import { createOwnControlTable } from '../support/sdk-clients.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const DAY = 86_400_000;
const DECISION_KEY = decisionKey(process.env.KAIROS_DECISION_KEY ?? '');
const run = Date.now().toString(36);
const ENDED = 30;
const PAUSED = 5;

/** Experiment ids by kind: each an `actions` experiment of two web banners of its own, holding out 0.9. */
const ids = {
  live: Array.from({ length: MAX_HOLDOUT_EXPERIMENTS }, (_, i) => `live-${i}`),
  ended: Array.from({ length: ENDED }, (_, i) => `ended-${i}`),
  paused: Array.from({ length: PAUSED }, (_, i) => `paused-${i}`),
};

function catalogText(now: number): string {
  const all = [...ids.live, ...ids.ended, ...ids.paused];
  const journey = (id: string, acts: number) => ({
    id,
    entry: { event: 'Promotion Clicked' },
    reentry: 'once',
    steps: [...Array.from({ length: acts }, (_, i) => ({ id: `act-${i}`, act: { channel: 'call_center' } })), { id: 'later', wait: '1d' }],
  });
  return JSON.stringify({
    kind: 'kairos/v1',
    actions: [
      { id: 'call', name: 'Call', content: { call_center: { script: 'Hola' } } },
      ...all.flatMap((e) => ['one', 'two'].map((arm) => ({ id: `${e}-${arm}`, name: `${e} ${arm}`, content: { web: { title: `${e} ${arm}` } } }))),
    ],
    experiments: all.map((e) => ({
      id: e,
      kind: 'actions',
      holdout: 0.9,
      arms: [
        { id: 'one', action: `${e}-one` },
        { id: 'two', action: `${e}-two` },
      ],
      ...(e.startsWith('ended') ? { validity: { from: new Date(now - 90 * DAY).toISOString(), to: new Date(now - 30 * DAY - Number(e.slice(6)) * DAY).toISOString() } } : {}),
      ...(e.startsWith('paused') ? { status: 'paused' } : {}),
    })),
    triggers: Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, on: { event: 'Promotion Clicked' }, decide: { channel: 'call_center' } })),
    journeys: [journey('j0', 6), journey('j1', 6), journey('j2', 6), journey('j3', 4)],
  });
}

/** A client that remembers how many items each TransactWriteItems held (the requests still go to DynamoDB Local). */
class CountingClient extends DynamoClient {
  readonly transactions: number[] = [];
  override send: DynamoClient['send'] = (operation, input, options) => {
    if ((operation as Operation) === 'TransactWriteItems') this.transactions.push((input as { TransactItems: unknown[] }).TransactItems.length);
    return DynamoClient.prototype.send.call(this, operation, input, options) as never;
  };
}

beforeAll(async () => {
  await createOwnControlTable();
});

describe('the holdout bound with many ended experiments', () => {
  it(`published with ${MAX_HOLDOUT_EXPERIMENTS} live, ${ENDED} ended and ${PAUSED} paused; a decision is held out of the live ones only, and its click's write stays within 100 items, every live control cell counted`, async () => {
    const now = Date.now();
    const published = await publishCatalog(catalogText(now), 'json', { principal: 'test' });
    expect(published.ok ? [] : published.problems).toEqual([]);
    if (!published.ok) return;
    const catalog = published.catalog;

    // A customer in the control group of every experiment, ended and paused ones included, were they assigning.
    const profileOf = (userId: string) => ({ ...emptyProfileView(), userId });
    const userId = Array.from({ length: 100_000 }, (_, i) => `held-${run}-${i}`).find((id) =>
      catalog.experiments.every((e) => assignArm(e, customerKey(profileOf(id), { userId: id })) === CONTROL_ARM),
    )!;
    expect(userId).toBeDefined();

    const decidedAt = Date.now();
    const decision = decide(catalog, profileOf(userId), { userId, channel: 'web', limit: 1, context: {}, explain: false }, new Date(decidedAt));
    const served = decision.actions[0]?.actionId;
    expect(served).toMatch(/^(ended|paused)-\d+-(one|two)$/);
    const holdouts = decodeDecisionId(decision.decisionId)!.holdouts;
    expect([...holdouts].sort()).toEqual([...ids.live].sort());

    const event = storedEvent({
      type: 'track',
      userId,
      event: 'Promotion Clicked',
      messageId: `click-${run}`,
      timestamp: new Date(decidedAt + 60_000).toISOString(),
      properties: { decision_id: sealDecisionId(decision.decisionId, DECISION_KEY), action_id: served },
    });
    await new DynamoClient().send('PutItem', { TableName: config.EVENTS_TABLE, Item: event });
    const client = new CountingClient();
    const process = createProfileHandler({ ...catalogEnrichment, client });
    const records: DynamoDBRecord[] = [streamRecord(event, { sequenceNumber: sequenceNumber(1) })];
    expect((await process(streamEvent(records))).batchItemFailures).toEqual([]);
    const marker = await new DynamoClient().send('GetItem', { TableName: config.PROFILES_TABLE, Key: appliedMarkerItem.key(event.pk), ConsistentRead: true });
    expect(marker.Item).toBeDefined();
    expect(client.transactions).toHaveLength(1);
    expect(client.transactions[0]).toBeLessThanOrEqual(100);
    // The triggers' sends and the journeys did take their room: the write is near the limit.
    expect(client.transactions[0]).toBeGreaterThan(80);

    const rows = await readStatistics({ from: decidedAt - STATISTICS_BUCKET_MS, to: decidedAt + STATISTICS_BUCKET_MS });
    const controls = rows.filter((row) => row.cell.actionId === '').map((row) => row.cell.experiment);
    expect([...controls].sort()).toEqual([...ids.live].sort());
    expect(rows.filter((row) => row.cell.actionId === served)).toHaveLength(1);
  });
});
