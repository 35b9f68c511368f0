/**
 * What a late answer to an erased customer's decision still does, on
 * DynamoDB Local through the real functions (decide, admin erasure, the
 * profile function with the live catalog's trigger and journey):
 *
 * - a customer erased who comes back under the same userId: the late click
 *   on a decision issued before the erasure fires no trigger and moves no
 *   journey (it counts nothing either: erasure-outcomes.ddb.test.ts); the
 *   click on a decision issued after the return does both;
 * - an anonymous visitor erased on their own, who comes back and is joined
 *   to a user never erased: the late click on a decision issued to the
 *   visitor before the erasure, reported under the user's id alone, counts
 *   for nothing (not on the profile, not in the outcome statistics), fires
 *   no trigger and moves no journey, exactly as if the user had been
 *   erased; a decision issued to the user after the join counts and reacts.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  // Its own Control table (createOwnControlTable): the catalog this file publishes is live for it alone.
  process.env.CONTROL_TABLE = `erasure-late-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.KAIROS_ADMIN_TOKEN = 'erasure-late-answers-admin-token-0123456789';
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler as decideHandler } from '#functions/decide/handler.ts';
import { handler as adminHandler } from '#functions/admin/handler.ts';
import { processStreamEvent } from '#functions/profile/handler.ts';
import { publishCatalog } from '#store/catalog.ts';
import { putWriteKey } from '#store/write-keys.ts';
import { readStatistics } from '#store/statistics.ts';
import { outboxKeysOf } from '#store/outbox.ts';
import { config } from '#shared/config.ts';
import { STATISTICS_BUCKET_MS } from '#domain/learning/statistics.ts';
import type { JourneyRuns } from '#domain/journeys/machine.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { createOwnControlTable, documentClient } from '../support/sdk-clients.ts';
import { apiGatewayEvent, basicAuth, lambdaContext } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const run = `r${Date.now().toString(36)}`;
const KEY = `wk_erasure_late_${run}`;
const ADMIN = `Bearer ${process.env.KAIROS_ADMIN_TOKEN}`;
const BANNER = `banner-${run}`;
const TRIGGER = `thanks-${run}`;
const JOURNEY = `answer-${run}`;
const SOURCE = `s-${run}`;
let sequence = 0;

// A click sets off a trigger (an email), and moves the journey a viewed product entered (waiting for a click).
const catalog = {
  learning: { enabled: false, exploration: 0 },
  policies: { consentRequired: [] },
  actions: [
    { id: BANNER, name: 'Banner', content: { web: { title: 'Hola', placements: ['home_hero'] } } },
    { id: `mail-${run}`, name: 'Mail', content: { email: { templateId: 't', subject: 'Gracias' } } },
  ],
  triggers: [{ id: TRIGGER, on: { event: 'Promotion Clicked' }, decide: { channel: 'email' } }],
  journeys: [
    {
      id: JOURNEY,
      entry: { event: 'Product Viewed' },
      steps: [
        { id: 'answer', wait: { event: 'Promotion Clicked', timeout: '7d' } },
        { id: 'thanks', act: { channel: 'email' } },
      ],
    },
  ],
};

beforeAll(async () => {
  await createOwnControlTable();
  await putWriteKey(KEY, { keyId: SOURCE, name: 'erasure late answer tests', kind: 'server', createdAt: new Date().toISOString() });
  const published = await publishCatalog(JSON.stringify(catalog), 'json');
  if (!published.ok) throw new Error(JSON.stringify(published.problems));
});

/** Store events as ingest does and apply them as the stream would. */
async function ingest(events: readonly StoredEvent[]): Promise<void> {
  for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
  const response = await processStreamEvent(streamEvent(events.map((e) => streamRecord(e, { sequenceNumber: sequenceNumber(sequence++) }))));
  if (response.batchItemFailures.length > 0) throw new Error('events were not applied');
}

async function decide(who: { userId: string } | { anonymousId: string }): Promise<{ decisionId: string; issuedAt: number }> {
  const issuedAt = Date.now();
  const result = await decideHandler(
    apiGatewayEvent({ method: 'POST', path: '/v1/decide', headers: { authorization: basicAuth(KEY) }, body: { ...who, channel: 'web', placement: 'home_hero' } }),
    lambdaContext(),
  );
  const body = JSON.parse(result.body || '{}') as { decisionId?: string; actions?: { actionId: string }[] };
  expect(result.statusCode).toBe(200);
  expect(body.actions?.map((a) => a.actionId)).toEqual([BANNER]);
  return { decisionId: body.decisionId as string, issuedAt };
}

/** The fields of the admin answers this test reads (the erasure's, the export's). */
interface Answer {
  readonly erasedAt: string;
  readonly stored: { readonly state: { readonly outcomes: Readonly<Record<string, number>>; readonly journeys: JourneyRuns } };
}

async function admin(method: string, path: string): Promise<{ status: number; body: Answer }> {
  const result = await adminHandler(apiGatewayEvent({ method, path, headers: { authorization: ADMIN } }), lambdaContext());
  return { status: result.statusCode ?? 0, body: result.body ? JSON.parse(result.body) : {} };
}

/**
 * Erase the customer `id` names, a userId or (`kind` anonymous) an anonymousId; the erasure instant, once the wall
 * clock is in the second after it (decision ids carry their issue time to the second).
 */
async function erase(id: string, kind: 'user' | 'anonymous' = 'user'): Promise<number> {
  const erased = await admin('DELETE', `/v1/admin/profiles/${id}${kind === 'anonymous' ? '?kind=anonymous' : ''}`);
  expect(erased.status).toBe(200);
  const at = Date.parse(erased.body.erasedAt);
  await new Promise((resolve) => setTimeout(resolve, 1_000 - (at % 1_000) + 20));
  return at;
}

const event = (messageId: string, who: { userId?: string; anonymousId?: string }, fields: Partial<Parameters<typeof storedEvent>[0]>) =>
  storedEvent({ type: 'track', ...who, messageId, timestamp: new Date().toISOString(), sourceId: SOURCE, ...fields });
const click = (messageId: string, who: { userId: string }, decisionId: string) =>
  event(messageId, who, { event: 'Promotion Clicked', properties: { decision_id: decisionId } });
const viewed = (messageId: string, who: { userId?: string; anonymousId?: string }) => event(messageId, who, { event: 'Product Viewed', properties: { category: 'shoes' } });

/** The clicks the outcome statistics hold for the run's banner. */
async function storedClicks(from: number): Promise<number> {
  const rows = await readStatistics({ from: from - STATISTICS_BUCKET_MS, to: Date.now() + STATISTICS_BUCKET_MS });
  return rows.filter((row) => row.cell.actionId === BANNER).reduce((n, row) => n + row.counts.clicks, 0);
}

/** Whether the trigger fired for the event `messageId` (its emission is in the outbox, under the customer's profile). */
async function triggered(userId: string, messageId: string): Promise<boolean> {
  const keys = await outboxKeysOf(`u#${userId}`);
  return keys.some((key) => key.id === `${TRIGGER}.${SOURCE}#${messageId}`);
}

const journeyOf = async (userId: string) => (await admin('GET', `/v1/admin/profiles/${userId}/export`)).body.stored.state.journeys[JOURNEY];

describe('a late answer to a decision issued before the erasure', () => {
  it('from a customer back under the same userId: no trigger fires, no journey moves; the answer to a decision issued after the return does both', async () => {
    const userId = `back-${run}`;
    await ingest([event(`${userId}-1`, { userId }, { type: 'identify', traits: { firstName: 'Rosa' } })]);
    const old = await decide({ userId });
    const erasedAt = await erase(userId);
    expect(old.issuedAt).toBeLessThanOrEqual(erasedAt);

    // Back: a viewed product enters the journey, which waits for a click.
    await ingest([viewed(`${userId}-back`, { userId })]);
    expect((await journeyOf(userId))?.step).toBe('answer');

    await ingest([click(`${userId}-old-click`, { userId }, old.decisionId)]);
    expect(await triggered(userId, `${userId}-old-click`)).toBe(false);
    expect((await journeyOf(userId))?.step).toBe('answer');

    const fresh = await decide({ userId });
    await ingest([click(`${userId}-new-click`, { userId }, fresh.decisionId)]);
    expect(await triggered(userId, `${userId}-new-click`)).toBe(true);
    const moved = await journeyOf(userId);
    expect(moved?.step).toBeUndefined();
    expect(moved?.ended?.how).toBe('completed');
  });

  it("from a visitor erased on their own, back and joined to a user never erased, reported under the user's id alone: counts for nothing, no trigger fires, no journey moves; a decision issued to the user after the join counts and reacts", async () => {
    const anonymousId = `visitor-${run}`;
    const userId = `joined-${run}`;
    const start = Date.now();
    const clicksBefore = await storedClicks(start);
    await ingest([event(`${anonymousId}-1`, { anonymousId }, { type: 'page', properties: { path: '/' } })]);
    const old = await decide({ anonymousId });
    const erasedAt = await erase(anonymousId, 'anonymous');
    expect(old.issuedAt).toBeLessThanOrEqual(erasedAt);

    // The visitor comes back (a viewed product enters the journey), then logs in as a user who was never erased.
    await ingest([viewed(`${anonymousId}-back`, { anonymousId })]);
    await ingest([event(`${userId}-login`, { userId, anonymousId }, { type: 'identify', traits: { firstName: 'Ana' } })]);
    const joined = await admin('GET', `/v1/admin/profiles/${userId}/export`);
    expect(joined.status).toBe(200);
    expect(joined.body.stored.state.journeys[JOURNEY]?.step).toBe('answer');

    // The late click on the visitor's decision from before the erasure, under the user's id alone.
    await ingest([click(`${userId}-old-click`, { userId }, old.decisionId)]);
    const after = await admin('GET', `/v1/admin/profiles/${userId}/export`);
    expect(after.body.stored.state.outcomes).toEqual({});
    expect(await storedClicks(start)).toBe(clicksBefore);
    expect(await triggered(userId, `${userId}-old-click`)).toBe(false);
    expect(after.body.stored.state.journeys[JOURNEY]?.step).toBe('answer');

    // A decision issued to the customer now: its click counts, fires the trigger and moves the journey.
    const fresh = await decide({ userId });
    expect(fresh.issuedAt).toBeGreaterThan(erasedAt);
    await ingest([click(`${userId}-new-click`, { userId }, fresh.decisionId)]);
    const counted = await admin('GET', `/v1/admin/profiles/${userId}/export`);
    // The click, and the impression it implies (no impression was reported).
    expect(Object.keys(counted.body.stored.state.outcomes).map((key) => key.split('.')[0]).sort()).toEqual(['c', 'i']);
    expect(await storedClicks(start)).toBe(clicksBefore + 1);
    expect(await triggered(userId, `${userId}-new-click`)).toBe(true);
    expect(counted.body.stored.state.journeys[JOURNEY]?.ended?.how).toBe('completed');
  });
});
