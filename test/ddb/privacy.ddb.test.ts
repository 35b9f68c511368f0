/**
 * Right of access and right to erasure on DynamoDB Local, through the admin
 * handler and the profile function:
 * - the export pages through every event of the customer exactly once,
 *   whatever the page size;
 * - erasure leaves no item naming the customer in any table, later reads
 *   find nothing, an event accepted before the erasure that is applied after
 *   it is dropped (and deleted), and an event accepted after it starts a new
 *   profile.
 */
import fc from 'fast-check';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { StoredEvent } from '#domain/stored-event.ts';
import { apiGatewayEvent } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { anonymousProfileKey, userProfileKey } from '#domain/stored-event.ts';
import { erasureRecordItem } from '#store/items.ts';
import { planIngest } from '#domain/ingest/normalise.ts';

const ADMIN_TOKEN = 'admin-token-for-privacy-tests-01234';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const { handler } = await import('#functions/admin/handler.ts');
const { processStreamEvent } = await import('#functions/profile/handler.ts');
const { documentClient } = await import('../support/sdk-clients.ts');
const { config } = await import('#shared/config.ts');

const context = { functionName: 'admin', awsRequestId: 'test' } as Context;
const run = Date.now().toString(36);
let sequence = 0;

async function call(method: string, path: string, query = '') {
  const event: APIGatewayProxyEventV2 = apiGatewayEvent({ method, path: `${path}${query}`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const response = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined };
}

/** Store events as ingest does and apply them as the stream would. */
async function ingest(events: readonly StoredEvent[]): Promise<void> {
  for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
  const response = await processStreamEvent(streamEvent(events.map((e) => streamRecord(e, { sequenceNumber: sequenceNumber(sequence++) }))));
  if (response.batchItemFailures.length > 0) throw new Error('events were not applied');
}

const at = (minute: number) => new Date(Date.parse('2026-04-01T00:00:00Z') + minute * 60_000).toISOString();

/** 12 anonymous page views, identify (merging them), 25 orders: 38 events. */
function customerEvents(userId: string, anonymousId: string): StoredEvent[] {
  const sourceId = `s-${run}`;
  return [
    ...Array.from({ length: 12 }, (_, i) => storedEvent({ type: 'page', anonymousId, messageId: `${userId}-p${i}`, timestamp: at(i), sourceId })),
    storedEvent({ type: 'identify', userId, anonymousId, messageId: `${userId}-id`, timestamp: at(12), traits: { firstName: 'Luis', email: `${userId}@example.com` }, sourceId }),
    ...Array.from({ length: 25 }, (_, i) =>
      storedEvent({ type: 'track', userId, event: 'Order Completed', messageId: `${userId}-o${i}`, timestamp: at(13 + i), properties: { revenue: 3 }, sourceId }),
    ),
  ];
}

const scanFor = async (table: string, needle: string) => {
  const found: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documentClient.send(new ScanCommand({ TableName: table, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) }));
    for (const item of page.Items ?? []) if (JSON.stringify(item).includes(needle)) found.push(item);
    start = page.LastEvaluatedKey;
  } while (start);
  return found;
};

const exportPath = (id: string) => `/v1/admin/profiles/${encodeURIComponent(id)}/export`;
const profilePath = (id: string) => `/v1/admin/profiles/${encodeURIComponent(id)}`;

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

describe('GET /v1/admin/profiles/{userId}/export', () => {
  const userId = `export-u-${run}`;
  const anonymousId = `export-a-${run}`;
  const events = customerEvents(userId, anonymousId);

  beforeAll(async () => {
    await ingest(events);
  });

  it('everything held: the customer, the profile, the stored state and every event, by the user or a merged anonymous id', async () => {
    const response = await call('GET', exportPath(userId), '?limit=1000');
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      customer: { userId, anonymousIds: [anonymousId] },
      profile: { userId, traits: { firstName: 'Luis' }, stats: { orders: 25, visitsTotal: 12 } },
      stored: { version: expect.any(Number), state: { userId, anonymousIds: [anonymousId] } },
    });
    expect(response.body.next).toBeUndefined();
    expect(response.body.events.map((e: { messageId: string }) => e.messageId).sort()).toEqual(events.map((e) => e.messageId).sort());
    expect(response.body.events[0]).not.toHaveProperty('pk');
    // The anonymous id, named as one, finds the customer it was merged into; named as a userId, nobody (the 404 says how to name it).
    expect((await call('GET', exportPath(anonymousId), '?kind=anonymous&limit=1000')).body.customer.userId).toBe(userId);
    expect(await call('GET', exportPath(anonymousId), '?limit=1000')).toMatchObject({
      status: 404,
      body: { error: { code: 'not_found', message: "No profile for this id as a userId: it is an anonymous visitor's id, named with ?kind=anonymous" } },
    });
  });

  it('pages through every event exactly once, whatever the page size', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 40 }), async (limit) => {
        const seen: string[] = [];
        let cursor: string | undefined;
        for (let pages = 0; pages < 100; pages++) {
          const response = await call('GET', exportPath(userId), `?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
          expect(response.status).toBe(200);
          expect(response.body.events.length).toBeLessThanOrEqual(limit);
          seen.push(...response.body.events.map((e: { messageId: string }) => e.messageId));
          cursor = response.body.next;
          if (!cursor) break;
        }
        expect(seen.sort()).toEqual(events.map((e) => e.messageId).sort());
      }),
      { numRuns: 8 },
    );
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=1001', 'limit'],
    ['limit=ten', 'limit'],
    ['cursor=not-a-cursor', 'cursor'],
    [`cursor=${Buffer.from(JSON.stringify({ key: 9 })).toString('base64url')}`, 'cursor'],
    [`cursor=${Buffer.from(JSON.stringify({ key: `u#${userId}`, start: { pk: 'x', profileKey: 'u#someone-else', sortKey: 'y' } })).toString('base64url')}`, 'cursor'],
    [`cursor=${Buffer.from(JSON.stringify({ key: 'u#someone-else', start: { pk: 'x', profileKey: 'u#someone-else', sortKey: 'y' } })).toString('base64url')}`, 'cursor'],
    [`cursor=${Buffer.from(JSON.stringify({ key: `u#${userId}`, start: { pk: { S: 'x' }, profileKey: `u#${userId}`, sortKey: 'y' } })).toString('base64url')}`, 'cursor'],
    [`cursor=${Buffer.from(JSON.stringify({ key: `u#${userId}`, start: { pk: '', profileKey: `u#${userId}`, sortKey: '' } })).toString('base64url')}`, 'cursor'],
  ])('400 for %s', async (query, path) => {
    const response = await call('GET', exportPath(userId), `?${query}`);
    expect(response.status).toBe(400);
    expect(response.body.error).toMatchObject({ code: 'validation_failed', details: [{ path }] });
  });

  it('404 for an unknown customer', async () => {
    expect((await call('GET', exportPath(`nobody-${run}`))).status).toBe(404);
  });
});

describe('DELETE /v1/admin/profiles/{userId}', () => {
  it('erases every trace: no item in any table names the customer, and later reads find nothing', async () => {
    const userId = `erase-u-${run}`;
    const anonymousId = `erase-a-${run}`;
    const events = customerEvents(userId, anonymousId);
    await ingest(events);
    expect((await scanFor(config.PROFILES_TABLE, userId)).length).toBeGreaterThan(0);

    const response = await call('DELETE', profilePath(userId));
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ customer: { userId, anonymousIds: [anonymousId] }, events: events.length, erasedAt: expect.any(String) });

    for (const needle of [userId, anonymousId]) {
      expect(await scanFor(config.PROFILES_TABLE, needle)).toEqual([]);
      expect(await scanFor(config.EVENTS_TABLE, needle)).toEqual([]);
    }
    for (const path of [profilePath(userId), profilePath(anonymousId), exportPath(userId)]) {
      expect((await call('GET', path)).status).toBe(404);
      expect((await call('GET', path, '?kind=anonymous')).status).toBe(404);
    }
    // Erasing again: nothing is held any more.
    expect((await call('DELETE', profilePath(userId))).status).toBe(404);
  });

  it('an event accepted before the erasure and applied after it is dropped and deleted; one accepted after it starts a new profile', async () => {
    const userId = `late-u-${run}`;
    await ingest([storedEvent({ type: 'identify', userId, messageId: `${userId}-1`, timestamp: at(1), traits: { tier: 'gold' }, sourceId: `s-${run}` })]);
    // In flight: accepted (received) before the erasure, stored, its stream record not yet applied.
    const inFlight = storedEvent({ type: 'track', userId, event: 'Order Completed', messageId: `${userId}-late`, timestamp: at(2), sourceId: `s-${run}` });
    expect((await call('DELETE', profilePath(userId))).status).toBe(200);
    await ingest([inFlight]);
    expect((await call('GET', profilePath(userId))).status).toBe(404);
    expect(await scanFor(config.EVENTS_TABLE, userId)).toEqual([]);

    // The customer comes back after the erasure: a new profile, with only what came after.
    const now = new Date(Date.now() + 1_000).toISOString();
    await ingest([storedEvent({ type: 'track', userId, event: 'Product Viewed', messageId: `${userId}-back`, timestamp: now, sourceId: `s-${run}` })]);
    const back = await call('GET', profilePath(userId));
    expect(back.status).toBe(200);
    expect(back.body.profile.traits).toEqual({});
    expect(back.body.events.map((e: { messageId: string }) => e.messageId)).toEqual([`${userId}-back`]);
  });

  it('a message from before the erasure that comes back after it (a client retry, a replay) restores nothing and leaves nothing', async () => {
    const userId = `replay-u-${run}`;
    const identify = storedEvent({ type: 'identify', userId, messageId: `${userId}-1`, timestamp: at(1), traits: { firstName: 'Luis', tier: 'gold' }, sourceId: `s-${run}` });
    await ingest([identify]);
    expect((await call('DELETE', profilePath(userId))).status).toBe(200);
    // The same message again: the erasure deleted its event, so its messageId is new to the Events table.
    await ingest([{ ...identify, receivedAt: new Date().toISOString() }]);
    expect((await call('GET', profilePath(userId))).status).toBe(404);
    expect(await scanFor(config.EVENTS_TABLE, userId)).toEqual([]);
    expect(await scanFor(config.PROFILES_TABLE, userId)).toEqual([]);
  });

  it('a message from before the erasure sent again as it was, its sentAt with it (skew correction dates it on its new receipt), restores nothing and leaves nothing', async () => {
    const userId = `replay-sent-${run}`;
    const sentAt = Date.now() - 60_000;
    const message = {
      type: 'identify',
      userId,
      messageId: `${userId}-1`,
      traits: { firstName: 'Luis', tier: 'gold' },
      timestamp: new Date(sentAt - 5).toISOString(),
      sentAt: new Date(sentAt).toISOString(),
    };
    /** The message as ingest stores it when it receives it at `receivedAt`. */
    const received = (receivedAt: number, fields: Partial<typeof message> = {}): StoredEvent => {
      const plan = planIngest({ ...message, ...fields }, { route: 'identify', sourceId: `s-${run}`, receivedAt, historyDays: 30, newMessageId: () => 'unused' });
      if (!plan.ok || plan.events.length !== 1) throw new Error('the message was not accepted');
      return plan.events[0] as StoredEvent;
    };
    await ingest([received(sentAt + 100)]);
    expect((await call('DELETE', profilePath(userId))).status).toBe(200);
    // A replay of the same request: its timestamp, corrected by its sentAt, is after the erasure.
    await new Promise((resolve) => setTimeout(resolve, 50));
    await ingest([received(Date.now())]);
    expect((await call('GET', profilePath(userId))).status).toBe(404);
    expect(await scanFor(config.EVENTS_TABLE, userId)).toEqual([]);
    expect(await scanFor(config.PROFILES_TABLE, userId)).toEqual([]);
    // A new message of the same customer, after the erasure, starts a new profile.
    const now = new Date().toISOString();
    await ingest([received(Date.now(), { messageId: `${userId}-2`, timestamp: now, sentAt: now })]);
    expect((await call('GET', profilePath(userId))).status).toBe(200);
  });

  it('erases the events of an id whose profile is not written yet', async () => {
    const userId = `pending-u-${run}`;
    const event = storedEvent({ type: 'track', userId, event: 'Signed Up', messageId: `${userId}-1`, timestamp: at(1), sourceId: `s-${run}` });
    await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
    const response = await call('DELETE', profilePath(userId));
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ customer: { userId }, events: 1 });
    const left = await documentClient.send(
      new QueryCommand({
        TableName: config.EVENTS_TABLE,
        IndexName: 'byProfile',
        KeyConditionExpression: 'profileKey = :k',
        ExpressionAttributeValues: { ':k': `u#${userId}` },
      }),
    );
    expect(left.Items).toEqual([]);
  });

  it('an anonymous visitor whose events are not applied yet, named as a userId: a 404 that says to name it with ?kind=anonymous, and nothing erased', async () => {
    const anonymousId = `pending-a-${run}`;
    const event = storedEvent({ type: 'page', anonymousId, messageId: `${anonymousId}-p`, timestamp: at(1), sourceId: `s-${run}` });
    await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
    const hint = "as a userId: it is an anonymous visitor's id, named with ?kind=anonymous";
    expect(await call('GET', profilePath(anonymousId))).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: `No profile for this id ${hint}` } } });
    expect(await call('GET', exportPath(anonymousId))).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: `No profile for this id ${hint}` } } });
    expect(await call('DELETE', profilePath(anonymousId))).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: `No profile and no events for this id ${hint}` } } });
    // Named as what it is, its events are erased.
    expect(await call('DELETE', profilePath(anonymousId), '?kind=anonymous')).toMatchObject({ status: 200, body: { customer: { anonymousId }, events: 1 } });
    // A userId with nothing held under either key: still the plain 404.
    expect(await call('DELETE', profilePath(anonymousId))).toMatchObject({ status: 404, body: { error: { message: 'No profile and no events for this id' } } });
  });

  /** Erase `erased` twice (as an operator completes an erasure); `other`, whose profile was `before`, must be untouched. */
  async function eraseTwiceSparing(erased: string, other: string): Promise<void> {
    const before = await call('GET', profilePath(other));
    expect(before.status).toBe(200);
    const first = await call('DELETE', profilePath(erased));
    expect(first.status).toBe(200);
    expect(first.body.customer.userId).toBe(erased);
    for (const path of [profilePath(erased), exportPath(erased)]) expect((await call('GET', path)).status).toBe(404);
    // Called again: that user only, and nothing is left of it.
    const again = await call('DELETE', profilePath(erased));
    expect(again.status).toBe(404);
    expect(again.body.customer).toBeUndefined();
    for (const path of [profilePath(erased), exportPath(erased)]) expect((await call('GET', path)).status).toBe(404);
    const after = await call('GET', profilePath(other));
    expect(after.status).toBe(200);
    expect(after.body.profile).toEqual(before.body.profile);
    expect(after.body.events).toEqual(before.body.events);
    expect((await call('GET', exportPath(other))).body.customer.userId).toBe(other);
  }

  it('two users aliased to each other: neither alias joins them; erasing one, then again, never reaches the other', async () => {
    const a = `cyc-a-${run}`;
    const b = `cyc-b-${run}`;
    const sourceId = `s-${run}`;
    await ingest([storedEvent({ type: 'identify', userId: a, messageId: `${a}-id`, timestamp: at(1), traits: { firstName: 'Ana' }, sourceId })]);
    await ingest([storedEvent({ type: 'identify', userId: b, messageId: `${b}-id`, timestamp: at(2), traits: { firstName: 'Bo' }, sourceId })]);
    await ingest([storedEvent({ type: 'alias', userId: a, previousId: b, messageId: `${a}-alias`, timestamp: at(3), sourceId })]);
    await ingest([storedEvent({ type: 'alias', userId: b, previousId: a, messageId: `${b}-alias`, timestamp: at(4), sourceId })]);
    for (const id of [a, b]) expect((await call('GET', profilePath(id))).body.profile.anonymousIds).toEqual([]);
    await eraseTwiceSparing(b, a);
  });

  it('an alias whose previousId became a user afterwards: erasing that user, then again, never reaches the user it was aliased to', async () => {
    const a = `ali-a-${run}`;
    const b = `ali-b-${run}`;
    const sourceId = `s-${run}`;
    await ingest([storedEvent({ type: 'identify', userId: a, messageId: `${a}-id`, timestamp: at(1), traits: { firstName: 'Ana' }, sourceId })]);
    await ingest([storedEvent({ type: 'alias', userId: a, previousId: b, messageId: `${a}-alias`, timestamp: at(2), sourceId })]);
    await ingest([storedEvent({ type: 'identify', userId: b, messageId: `${b}-id`, timestamp: at(3), traits: { firstName: 'Bo' }, sourceId })]);
    // b's id is also an id linked to a: the id names the user b all the same.
    expect((await call('GET', profilePath(a))).body.profile.anonymousIds).toEqual([b]);
    expect((await call('GET', profilePath(b))).body.profile).toMatchObject({ userId: b, traits: { firstName: 'Bo' } });
    await eraseTwiceSparing(b, a);
    // Days later, once DynamoDB's TTL has deleted every erasure record that expires: b still names the user
    // b (its record does not expire), so neither a read nor a third erasure follows b's link to a.
    const before = await call('GET', profilePath(a));
    const records = [];
    for (const key of [userProfileKey(b), anonymousProfileKey(b)]) {
      const { Item } = await documentClient.send(new GetCommand({ TableName: config.PROFILES_TABLE, Key: erasureRecordItem.key(key), ConsistentRead: true }));
      if (Item) records.push(Item);
    }
    for (const item of records.filter((r) => r.expiresAt !== undefined)) {
      await documentClient.send(new DeleteCommand({ TableName: config.PROFILES_TABLE, Key: { pk: item.pk } }));
    }
    for (const path of [profilePath(b), exportPath(b)]) expect((await call('GET', path)).status).toBe(404);
    expect((await call('DELETE', profilePath(b))).status).toBe(404);
    const after = await call('GET', profilePath(a));
    expect(after.status).toBe(200);
    expect(after.body.profile).toEqual(before.body.profile);
    expect(after.body.events).toEqual(before.body.events);
    // The user's record is what was kept.
    expect(records.map((item) => [item.pk, item.expiresAt])).toEqual([[erasureRecordItem.key(userProfileKey(b)).pk, undefined]]);
  });

  it('404 for an id nothing is held about; 400 for a malformed id or kind', async () => {
    expect((await call('DELETE', profilePath(`nobody-${run}`))).status).toBe(404);
    expect((await call('DELETE', profilePath(`nobody-${run}`), '?kind=anonymous')).status).toBe(404);
    expect((await call('DELETE', profilePath('bad\u0000id'))).status).toBe(400);
    for (const method of ['GET', 'DELETE']) {
      expect(await call(method, profilePath(`nobody-${run}`), '?kind=cookie')).toMatchObject({
        status: 400,
        body: { error: { code: 'validation_failed', details: [{ path: 'kind' }] } },
      });
    }
  });

  it('an anonymous visitor is erased by its anonymousId named as one; named as a userId it is not reached', async () => {
    const anonymousId = `visitor-${run}`;
    const sourceId = `s-${run}`;
    await ingest([storedEvent({ type: 'page', anonymousId, messageId: `${anonymousId}-p`, timestamp: at(1), sourceId })]);
    // As a userId: nobody, and nothing erased; the 404 says how to name it.
    expect(await call('DELETE', profilePath(anonymousId))).toMatchObject({
      status: 404,
      body: { error: { message: "No profile and no events for this id as a userId: it is an anonymous visitor's id, named with ?kind=anonymous" } },
    });
    expect((await call('GET', profilePath(anonymousId), '?kind=anonymous')).body.profile).toMatchObject({ identified: false });
    const erased = await call('DELETE', profilePath(anonymousId), '?kind=anonymous');
    expect(erased).toMatchObject({ status: 200, body: { customer: { anonymousId }, events: 1 } });
    expect(await scanFor(config.PROFILES_TABLE, anonymousId)).toEqual([]);
    expect(await scanFor(config.EVENTS_TABLE, anonymousId)).toEqual([]);
    expect((await call('GET', profilePath(anonymousId), '?kind=anonymous')).status).toBe(404);
  });
});
