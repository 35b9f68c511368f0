/**
 * What an erased customer's decisions still do once the customer comes back
 * under the same userId, on DynamoDB Local through the real functions
 * (decide, admin erasure, the profile function): a decision issued before
 * the erasure (last week's email) whose click is reported after the return
 * counts for nothing — not on the new profile (its counted outcomes, its
 * contacts), not in the outcome statistics the actions report and the
 * learning read, not in the outcomes an off-policy evaluation joins to the
 * decision log (`readOutcomeIndex`) — while a decision made after the return
 * counts as ever.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  // Its own Control table (createOwnControlTable): the catalog this file publishes is live for it alone.
  process.env.CONTROL_TABLE = `erasure-outcomes-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.KAIROS_ADMIN_TOKEN = 'erasure-outcomes-admin-token-0123456789';
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler as decideHandler } from '#functions/decide/handler.ts';
import { handler as adminHandler } from '#functions/admin/handler.ts';
import { processStreamEvent } from '#functions/profile/handler.ts';
import { publishCatalog } from '#store/catalog.ts';
import { putWriteKey } from '#store/write-keys.ts';
import { readStatistics } from '#store/statistics.ts';
import { readOutcomeIndex } from '#store/evaluation-inputs.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { decisionKey } from '#domain/decide/decision-id.ts';
import { decisionRef } from '#domain/evaluation/evaluate.ts';
import { config } from '#shared/config.ts';
import { STATISTICS_BUCKET_MS } from '#domain/learning/statistics.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { createOwnControlTable, documentClient } from '../support/sdk-clients.ts';
import { apiGatewayEvent, basicAuth, lambdaContext } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const run = `r${Date.now().toString(36)}`;
const KEY = `wk_erasure_outcomes_${run}`;
const ADMIN = `Bearer ${process.env.KAIROS_ADMIN_TOKEN}`;
const ACTION = `banner-${run}`;
const SOURCE = `s-${run}`;
let sequence = 0;

const DECISION_KEY = decisionKey(process.env.KAIROS_DECISION_KEY ?? '');
const catalog = {
  learning: { enabled: false, exploration: 0 },
  actions: [{ id: ACTION, name: 'Banner', content: { web: { title: 'Hola', placements: ['home_hero'] } } }],
};

beforeAll(async () => {
  await createOwnControlTable();
  await putWriteKey(KEY, { keyId: SOURCE, name: 'erasure outcome tests', kind: 'server', createdAt: new Date().toISOString() });
  const published = await publishCatalog(JSON.stringify(catalog), 'json');
  if (!published.ok) throw new Error(JSON.stringify(published.problems));
});

/** Store events as ingest does and apply them as the stream would. */
async function ingest(events: readonly StoredEvent[]): Promise<void> {
  for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
  const response = await processStreamEvent(streamEvent(events.map((e) => streamRecord(e, { sequenceNumber: sequenceNumber(sequence++) }))));
  if (response.batchItemFailures.length > 0) throw new Error('events were not applied');
}

async function decide(userId: string): Promise<{ decisionId: string; issuedAt: number }> {
  const issuedAt = Date.now();
  const result = await decideHandler(
    apiGatewayEvent({ method: 'POST', path: '/v1/decide', headers: { authorization: basicAuth(KEY) }, body: { userId, channel: 'web', placement: 'home_hero' } }),
    lambdaContext(),
  );
  const body = JSON.parse(result.body || '{}') as { decisionId?: string; actions?: { actionId: string }[] };
  expect(result.statusCode).toBe(200);
  expect(body.actions?.map((a) => a.actionId)).toEqual([ACTION]);
  return { decisionId: body.decisionId as string, issuedAt };
}

/** The fields of the admin answers this test reads (the erasure's, the export's). */
interface Answer {
  readonly erasedAt: string;
  readonly events: readonly { readonly messageId: string }[];
  readonly stored: { readonly state: { readonly outcomes: Readonly<Record<string, number>> } };
  readonly profile: { readonly contacts: Readonly<Record<string, unknown>>; readonly stats: { readonly clicks: number } };
}

async function admin(method: string, path: string): Promise<{ status: number; body: Answer }> {
  const result = await adminHandler(apiGatewayEvent({ method, path, headers: { authorization: ADMIN } }), lambdaContext());
  return { status: result.statusCode ?? 0, body: result.body ? JSON.parse(result.body) : {} };
}

const click = (userId: string, messageId: string, decisionId: string, at: number) =>
  storedEvent({ type: 'track', userId, messageId, event: 'Promotion Clicked', timestamp: new Date(at).toISOString(), properties: { decision_id: decisionId }, sourceId: SOURCE });

/** The clicks the outcome statistics hold for the run's action, from `from` on. */
async function storedClicks(from: number): Promise<number> {
  const rows = await readStatistics({ from: from - STATISTICS_BUCKET_MS, to: Date.now() + STATISTICS_BUCKET_MS });
  return rows.filter((row) => row.cell.actionId === ACTION).reduce((n, row) => n + row.counts.clicks, 0);
}

/** Until the wall clock is in the second after `at` (decision ids carry their issue time to the second). */
const nextSecond = async (at: number) => new Promise((resolve) => setTimeout(resolve, 1_000 - (at % 1_000) + 20));

describe('an erased customer who comes back under the same userId', () => {
  it("a click on a decision made before the erasure changes nothing; a decision made after the return counts", async () => {
    const userId = `back-${run}`;
    const start = Date.now();
    await ingest([storedEvent({ type: 'identify', userId, messageId: `${userId}-1`, timestamp: new Date(start - 60_000).toISOString(), traits: { firstName: 'Rosa' }, sourceId: SOURCE })]);
    const old = await decide(userId);

    const erased = await admin('DELETE', `/v1/admin/profiles/${userId}`);
    expect(erased.status).toBe(200);
    const erasedAt = Date.parse(erased.body.erasedAt);
    expect(old.issuedAt).toBeLessThanOrEqual(erasedAt);
    await nextSecond(erasedAt);

    // The customer comes back: a new profile.
    await ingest([storedEvent({ type: 'track', userId, event: 'Product Viewed', messageId: `${userId}-back`, timestamp: new Date().toISOString(), properties: { category: 'shoes' }, sourceId: SOURCE })]);
    const back = await admin('GET', `/v1/admin/profiles/${userId}/export`);
    expect(back.status).toBe(200);

    // The late click on the decision made for the erased customer: applied as an event, counted for nothing.
    await ingest([click(userId, `${userId}-old-click`, old.decisionId, Date.now())]);
    const after = await admin('GET', `/v1/admin/profiles/${userId}/export`);
    expect(after.body.events.map((e) => e.messageId).sort()).toEqual([`${userId}-back`, `${userId}-old-click`]);
    expect(after.body.stored.state.outcomes).toEqual(back.body.stored.state.outcomes);
    expect(after.body.stored.state.outcomes).toEqual({});
    expect(after.body.profile.contacts).toEqual(back.body.profile.contacts);
    expect(after.body.profile.stats.clicks).toBe(back.body.profile.stats.clicks);
    expect(await storedClicks(start)).toBe(0);

    // A decision made for the customer who came back: its click counts, on the profile and in the statistics.
    const fresh = await decide(userId);
    expect(fresh.issuedAt).toBeGreaterThan(erasedAt);
    await ingest([click(userId, `${userId}-new-click`, fresh.decisionId, Date.now())]);
    const counted = await admin('GET', `/v1/admin/profiles/${userId}/export`);
    // The click, and the impression it implies (no impression was reported).
    expect(Object.keys(counted.body.stored.state.outcomes).map((key) => key.split('.')[0]).sort()).toEqual(['c', 'i']);
    expect(counted.body.profile.contacts[ACTION]).toBeDefined();
    expect(await storedClicks(start)).toBe(1);

    // What an off-policy evaluation joins to the decision log: the new decision's click, not the old one's.
    const candidate = loadCatalog(JSON.stringify(catalog), 'json');
    if (!candidate.ok) throw new Error(JSON.stringify(candidate.problems));
    const index = await readOutcomeIndex(candidate.catalog, { from: start - 60_000, to: Date.now() + 60_000 }, DECISION_KEY);
    const oldRef = decisionRef(old.decisionId, DECISION_KEY) as string;
    const freshRef = decisionRef(fresh.decisionId, DECISION_KEY) as string;
    expect(index[freshRef]).toEqual([`click ${ACTION}`]);
    expect(index[oldRef]).toBeUndefined();
  });
});
