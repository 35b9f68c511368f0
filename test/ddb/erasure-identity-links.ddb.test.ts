/**
 * Erasing a customer with many anonymous ids merged into it, on DynamoDB
 * Local through the admin handler, each call starting past its deadline:
 * the erasure records of the linked keys are written 25 a call, and each
 * linked key's item (its tombstone) is deleted as a share of work of its
 * own, so a call stops between two of them, answers 503 naming how many it
 * deleted, and the next goes on. Before, the first call wrote every linked
 * key's record in one go, and the call that reached the last step deleted
 * every linked item with no deadline check between them (past the
 * function's timeout, API Gateway answers a bare 500).
 */
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { anonymousProfileKey, userProfileKey } from '#domain/stored-event.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';
import { storedEvent } from '../support/stream.ts';

const ADMIN_TOKEN = 'admin-token-for-erasure-identity-links';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const { handler } = await import('#functions/admin/handler.ts');
const { documentClient } = await import('../support/sdk-clients.ts');
const { config } = await import('#shared/config.ts');
const { ERASURE_FINISH_MS } = await import('#functions/admin/profiles.ts');
const { getItems, profileToItem, tombstoneToItem } = await import('#store/profiles.ts');
const { erasureRecordItem } = await import('#store/items.ts');
const { emptyProfileState } = await import('#domain/profile/state.ts');

const run = Date.now().toString(36);
const DAY_MS = 86_400_000;

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

/** The admin handler in an invocation with `remainingMs` left. */
async function call(method: string, path: string, remainingMs = 60_000) {
  const event = apiGatewayEvent({ method, path, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const started = Date.now();
  const context = lambdaContext({ getRemainingTimeInMillis: () => Math.max(0, remainingMs - (Date.now() - started)) });
  const response = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, headers: response.headers ?? {}, body: response.body ? JSON.parse(response.body) : undefined };
}

const item = async (pk: string) => (await documentClient.send(new GetCommand({ TableName: config.PROFILES_TABLE, Key: { pk }, ConsistentRead: true }))).Item;

/** How many of `keys` still hold a profile item (a tombstone here). */
async function itemsLeft(keys: readonly string[]): Promise<number> {
  return (await getItems(keys, { consistent: true })).size;
}

/** How many of `keys` have an erasure record. */
async function recordsWritten(keys: readonly string[]): Promise<number> {
  return (await getItems(keys.map((key) => erasureRecordItem.key(key).pk), { consistent: true })).size;
}

async function eventsUnder(profileKey: string): Promise<number> {
  const page = await documentClient.send(
    new QueryCommand({ TableName: config.EVENTS_TABLE, IndexName: 'byProfile', KeyConditionExpression: 'profileKey = :key', ExpressionAttributeValues: { ':key': profileKey }, Select: 'COUNT' }),
  );
  return page.Count ?? 0;
}

/** The counts a 503 names: `this call erased E events, M emissions and L identity links of this customer and ended R of its journey runs`. */
function progressOf(message: string): { events: number; emissions: number; identityLinks: number; journeyRuns: number } {
  const match = /this call erased (\d+) events, (\d+) emissions and (\d+) identity links of this customer and ended (\d+) of its journey runs, and more remain/.exec(message);
  if (!match) throw new Error(`not a 503 of an erasure in progress: ${message}`);
  const [, events, emissions, identityLinks, journeyRuns] = match.map(Number) as number[];
  return { events: events as number, emissions: emissions as number, identityLinks: identityLinks as number, journeyRuns: journeyRuns as number };
}

describe('DELETE /v1/admin/profiles/{userId}, a customer with many merged anonymous ids', () => {
  it('writes their erasure records 25 a call and deletes one identity link per call past the deadline, each 503 naming what it deleted, until the 200', async () => {
    // More than one share of erasure records (25), fewer than a profile keeps (LIMITS.anonymousIds, 50).
    const LINKS = 30;
    const userId = `linked-${run}`;
    const userKey = userProfileKey(userId);
    const anonymousIds = Array.from({ length: LINKS }, (_, i) => `linked-${run}-a${i}`);
    const linkedKeys = anonymousIds.map(anonymousProfileKey);
    const now = Date.now();
    const state = { ...emptyProfileState({ userId }), anonymousIds, updatedAt: now - DAY_MS };
    await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: profileToItem(userKey, state, 3) }));
    for (const anonymousId of anonymousIds) {
      await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: tombstoneToItem(anonymousId, userId, 1, now - DAY_MS) }));
    }
    // A few events under the user's key and under three of the anonymous keys (before the merge).
    const events = [
      ...[0, 1].map((i) => storedEvent({ type: 'track', userId, event: 'Page Scrolled', messageId: `${userId}-u${i}`, timestamp: new Date(now - 60_000 + i).toISOString(), sourceId: `s-${run}` })),
      ...[0, 1, 2].flatMap((a) =>
        [0, 1].map((i) =>
          storedEvent({ type: 'track', anonymousId: anonymousIds[a] as string, event: 'Page Scrolled', messageId: `${userId}-a${a}-${i}`, timestamp: new Date(now - 120_000 + i).toISOString(), sourceId: `s-${run}` }),
        ),
      ),
    ];
    for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));

    // Each call starts past its deadline: one share of work, then it stops.
    const short = ERASURE_FINISH_MS - 1_000;
    const path = `/v1/admin/profiles/${userId}`;

    // The first call writes one share of the linked keys' erasure records, and nothing else.
    const first = await call('DELETE', path, short);
    expect(await recordsWritten(linkedKeys)).toBe(25);
    expect(await itemsLeft(linkedKeys)).toBe(LINKS);
    expect(first).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
    expect(progressOf(first.body.error.message)).toEqual({ events: 0, emissions: 0, identityLinks: 0, journeyRuns: 0 });

    let eventsDeleted = 0;
    let last: Awaited<ReturnType<typeof call>> | undefined;
    let calls = 1;
    let linkDeletingCalls = 0;
    for (; calls < 4 * LINKS; calls++) {
      const before = await itemsLeft(linkedKeys);
      const answer = await call('DELETE', path, short);
      const after = await itemsLeft(linkedKeys);
      // Never more than one identity link per call past its deadline.
      expect(before - after).toBeLessThanOrEqual(1);
      if (before > after) linkDeletingCalls++;
      if (answer.status === 200) {
        last = answer;
        break;
      }
      expect(answer).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
      const progress = progressOf(answer.body.error.message);
      // The 503 names what the call deleted.
      expect(progress.identityLinks).toBe(before - after);
      eventsDeleted += progress.events;
    }
    expect(last).toMatchObject({ status: 200, body: { resumed: true, customer: { userId, anonymousIds } } });
    expect(linkDeletingCalls).toBe(LINKS);
    // Every event deleted once, by one call or another.
    expect(eventsDeleted + (last?.body.events as number)).toBe(events.length);
    expect(await eventsUnder(userKey)).toBe(0);
    for (const key of linkedKeys) expect(await eventsUnder(key)).toBe(0);
    expect(await itemsLeft([userKey, ...linkedKeys])).toBe(0);
    // Every linked key's erasure record is there, of this erasure, and completed (with its item's delete).
    const erasedAt = last?.body.erasedAt as string;
    for (const key of [userKey, ...linkedKeys]) {
      const record = await item(erasureRecordItem.key(key).pk);
      expect(record).toMatchObject({ kind: 'erasure', erasedAt, completedAt: expect.any(String) });
      expect(record?.erasing).toBeUndefined();
    }
    expect((await call('GET', path)).status).toBe(404);
    expect((await call('GET', `/v1/admin/profiles/${anonymousIds[0]}?kind=anonymous`)).status).toBe(404);
  }, 120_000);

  it('with time enough, one call erases the customer and every identity link', async () => {
    const userId = `linked-quick-${run}`;
    const anonymousIds = Array.from({ length: 30 }, (_, i) => `linked-quick-${run}-a${i}`);
    const now = Date.now();
    await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: profileToItem(userProfileKey(userId), { ...emptyProfileState({ userId }), anonymousIds, updatedAt: now - DAY_MS }, 2) }));
    for (const anonymousId of anonymousIds) {
      await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: tombstoneToItem(anonymousId, userId, 1, now - DAY_MS) }));
    }
    const answer = await call('DELETE', `/v1/admin/profiles/${userId}`);
    expect(answer).toMatchObject({ status: 200, body: { resumed: false, customer: { userId, anonymousIds }, events: 0 } });
    expect(await itemsLeft([userProfileKey(userId), ...anonymousIds.map(anonymousProfileKey)])).toBe(0);
    expect(await recordsWritten(anonymousIds.map(anonymousProfileKey))).toBe(anonymousIds.length);
  });
});
