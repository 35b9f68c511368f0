/**
 * A customer merged with more anonymous ids than the profile keeps
 * (LIMITS.anonymousIds, 50), on DynamoDB Local through the profile function
 * (which writes the identity links) and the admin handler:
 * - the export lists every linked anonymous id and every event sent under
 *   each of them, page after page, whatever the page size (fast-check);
 * - the erasure, called again after each 503 until the 200, leaves no
 *   identity link (tombstone) and no event under any of them, and counts
 *   each event once; two erasures at once count, together, the events there
 *   were; a DELETE after it completed finds nothing (404) and writes nothing.
 * Before, both found the customer's anonymous ids in the profile's list
 * only: the 10 oldest links and their events were neither exported nor
 * erased.
 * - Links written before links carried the user's profile key (not in the
 *   index) are found while the profile names them (its 50 newest), and every
 *   one once `indexIdentityLinks` (the upgrade's migration) has run.
 */
import fc from 'fast-check';
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { StoredEvent } from '#domain/stored-event.ts';
import { anonymousProfileKey, userProfileKey } from '#domain/stored-event.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { createTableInput, ensureTables, indexesActive, physicalName } from '#local/tables.ts';
import { profilesTable } from '#store/tables.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const ADMIN_TOKEN = 'admin-token-for-erasure-many-links';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const { handler } = await import('#functions/admin/handler.ts');
const { ERASURE_FINISH_MS } = await import('#functions/admin/profiles.ts');
const { processStreamEvent } = await import('#functions/profile/handler.ts');
const { documentClient, dynamo: sdkDynamo } = await import('../support/sdk-clients.ts');
const { config } = await import('#shared/config.ts');
const { getItems, indexIdentityLinks, linkedAnonymousKeys, profileFromItem, profileToItem, tombstoneToItem } = await import('#store/profiles.ts');
const { LIMITS, emptyProfileState } = await import('#domain/profile/state.ts');
const { resolveOperatorId, withIdentityLinks } = await import('#store/operator-id.ts');
const { pageAllEvents } = await import('#store/history.ts');
const { erasureRecordItem } = await import('#store/items.ts');

const run = Date.now().toString(36);
let sequence = 0;
/** More than the profile keeps. */
const LINKS = LIMITS.anonymousIds + 10;

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

/** Store events as ingest does and apply them as the stream would. */
async function ingest(events: readonly StoredEvent[]): Promise<void> {
  for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
  const response = await processStreamEvent(streamEvent(events.map((e) => streamRecord(e, { sequenceNumber: sequenceNumber(sequence++) }))));
  if (response.batchItemFailures.length > 0) throw new Error('events were not applied');
}

const at = (minute: number) => new Date(Date.parse('2026-04-01T00:00:00Z') + minute * 60_000).toISOString();

/**
 * A customer who logged in from LINKS devices: on each, a page viewed
 * anonymously, then an identify merging that anonymous id. Returns the
 * anonymous ids (oldest first) and every event's messageId.
 */
async function customerOfManyDevices(userId: string): Promise<{ anonymousIds: string[]; messageIds: string[] }> {
  const sourceId = `s-${run}`;
  const anonymousIds = Array.from({ length: LINKS }, (_, i) => `${userId}-device-${String(i).padStart(2, '0')}`);
  const messageIds: string[] = [];
  for (const [i, anonymousId] of anonymousIds.entries()) {
    const events = [
      storedEvent({ type: 'page', anonymousId, messageId: `${anonymousId}-page`, timestamp: at(2 * i), sourceId }),
      storedEvent({ type: 'identify', userId, anonymousId, messageId: `${anonymousId}-login`, timestamp: at(2 * i + 1), sourceId }),
    ];
    await ingest(events);
    messageIds.push(...events.map((e) => e.messageId));
  }
  return { anonymousIds, messageIds };
}

/** Every page of the export of `userId`, `limit` events a page. */
async function exportAll(userId: string, limit: number) {
  const linked = new Set<string>();
  const messageIds: string[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await call('GET', `/v1/admin/profiles/${userId}/export?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
    expect(page.status).toBe(200);
    for (const id of page.body.linkedAnonymousIds as string[]) linked.add(id);
    for (const event of page.body.events as { messageId: string }[]) messageIds.push(event.messageId);
    cursor = page.body.next;
    pages += 1;
  } while (cursor !== undefined && pages < 1_000);
  return { linked, messageIds, pages };
}

const eventsUnder = async (profileKey: string): Promise<number> =>
  (
    await documentClient.send(
      new QueryCommand({ TableName: config.EVENTS_TABLE, IndexName: 'byProfile', KeyConditionExpression: 'profileKey = :key', ExpressionAttributeValues: { ':key': profileKey }, Select: 'COUNT' }),
    )
  ).Count ?? 0;

/** Profile items (profiles, tombstones) still naming `userId`, whatever their key. */
async function itemsNaming(userId: string): Promise<number> {
  let count = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await documentClient.send(
      new ScanCommand({
        TableName: config.PROFILES_TABLE,
        FilterExpression: 'mergedInto = :u OR userId = :u',
        ExpressionAttributeValues: { ':u': userId },
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    count += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return count;
}

/** The counts a 503 names. */
function progressOf(message: string): { events: number; identityLinks: number } {
  const match = /this call erased (\d+) events, \d+ emissions and (\d+) identity links of this customer/.exec(message);
  if (!match) throw new Error(`not a 503 of an erasure in progress: ${message}`);
  return { events: Number(match[1]), identityLinks: Number(match[2]) };
}

describe('a customer merged with more anonymous ids than the profile keeps', () => {
  it('the export lists every linked anonymous id and every event under each; the erasure, resumed call after call, leaves none and counts each once', async () => {
    const userId = `many-links-${run}`;
    const { anonymousIds, messageIds } = await customerOfManyDevices(userId);
    const linkedKeys = anonymousIds.map(anonymousProfileKey);
    // The profile keeps the newest 50; every device's id is linked (a tombstone naming the user).
    const stored = profileFromItem((await getItems([userProfileKey(userId)], { consistent: true })).get(userProfileKey(userId)));
    expect(stored?.kind === 'profile' ? stored.state.anonymousIds.length : undefined).toBe(LIMITS.anonymousIds);
    const links = await getItems(linkedKeys, { consistent: true });
    expect([...links.values()].every((item) => item.kind === 'tombstone' && item.mergedInto === userId)).toBe(true);
    expect(links.size).toBe(LINKS);

    // Whatever the page size, the pages list every linked anonymous id, and every event once.
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 2 * LINKS }), async (limit) => {
        const exported = await exportAll(userId, limit);
        expect([...exported.linked].sort()).toEqual([...anonymousIds].sort());
        expect([...exported.messageIds].sort()).toEqual([...messageIds].sort());
      }),
      { numRuns: 8 },
    );
    // A page reads at most `maxKeys` keys: the next goes on from the key after.
    const keys = await withIdentityLinks((await resolveOperatorId(userId, 'user')).keys);
    expect(keys.length).toBe(1 + LINKS);
    const firstKeys = await pageAllEvents(keys, 1_000, undefined, { maxKeys: 7 });
    expect(firstKeys.next).toEqual({ key: 7 });
    expect(new Set(firstKeys.events.map((event) => event.profileKey))).toEqual(new Set(keys.slice(0, 7)));
    // One page, the default limit: the same.
    const whole = await exportAll(userId, 1_000);
    expect(whole.pages).toBe(1);
    expect([...whole.linked].sort()).toEqual([...anonymousIds].sort());
    expect(whole.messageIds.length).toBe(messageIds.length);

    // Each call starts past its deadline: one share of work, then a 503; called again until the 200.
    const path = `/v1/admin/profiles/${userId}`;
    const linksLeft = async () => (await getItems(linkedKeys, { consistent: true })).size;
    let events = 0;
    let answer: Awaited<ReturnType<typeof call>> | undefined;
    for (let calls = 0; calls < 20 * LINKS; calls++) {
      const before = await linksLeft();
      answer = await call('DELETE', path, ERASURE_FINISH_MS - 1_000);
      if (answer.status === 200) break;
      expect(answer).toMatchObject({ status: 503, headers: { 'retry-after': '1' } });
      const progress = progressOf(answer.body.error.message);
      // The 503 names the links this call deleted.
      expect(progress.identityLinks).toBe(before - (await linksLeft()));
      events += progress.events;
    }
    expect(answer).toMatchObject({ status: 200, body: { resumed: true, customer: { userId } } });
    // Each linked key's record says its history was erased: a later call of the erasure did not read it again.
    const records = await getItems(linkedKeys.map((key) => erasureRecordItem.key(key).pk), { consistent: true });
    expect([...records.values()].filter((record) => record.historyErased === true).length).toBe(LINKS);
    // Every event deleted once, by one call or another.
    expect(events + (answer?.body.events as number)).toBe(messageIds.length);
    for (const key of [userProfileKey(userId), ...linkedKeys]) expect(await eventsUnder(key)).toBe(0);
    expect((await getItems([userProfileKey(userId), ...linkedKeys], { consistent: true })).size).toBe(0);
    expect(await itemsNaming(userId)).toBe(0);

    // Erased: a DELETE again finds nobody and writes nothing; nobody is found by any of the ids.
    expect((await call('DELETE', path)).status).toBe(404);
    expect((await call('GET', `${path}/export`)).status).toBe(404);
    expect((await call('GET', `/v1/admin/profiles/${anonymousIds[0]}?kind=anonymous`)).status).toBe(404);
  }, 180_000);

  it('an export whose customer logs in from a new device between its pages still lists every link and every event it started with', async () => {
    const userId = `paged-${run}`;
    const { anonymousIds, messageIds } = await customerOfManyDevices(userId);
    const linked = new Set<string>();
    const seen = new Set<string>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await call('GET', `/v1/admin/profiles/${userId}/export?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      for (const id of page.body.linkedAnonymousIds as string[]) linked.add(id);
      for (const event of page.body.events as { messageId: string }[]) seen.add(event.messageId);
      cursor = page.body.next;
      pages += 1;
      // Every few pages, a new device: the profile's list of its 50 newest ids moves, and the index gains a link.
      if (pages % 7 === 0 && pages <= 70) {
        const anonymousId = `${userId}-new-${String(pages).padStart(3, '0')}`;
        await ingest([
          storedEvent({ type: 'page', anonymousId, messageId: `${anonymousId}-page`, timestamp: at(1_000 + pages), sourceId: `s-${run}` }),
          storedEvent({ type: 'identify', userId, anonymousId, messageId: `${anonymousId}-login`, timestamp: at(1_001 + pages), sourceId: `s-${run}` }),
        ]);
      }
    } while (cursor !== undefined && pages < 1_000);
    expect(anonymousIds.filter((id) => !linked.has(id))).toEqual([]);
    expect(messageIds.filter((id) => !seen.has(id))).toEqual([]);
  });

  it('two erasures at once delete every link and every event and count, together, the events there were', async () => {
    const userId = `many-links-twice-${run}`;
    const { anonymousIds, messageIds } = await customerOfManyDevices(userId);
    const path = `/v1/admin/profiles/${userId}`;
    const [a, b] = await Promise.all([call('DELETE', path), call('DELETE', path)]);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect((a.body.events as number) + (b.body.events as number)).toBe(messageIds.length);
    for (const key of [userProfileKey(userId), ...anonymousIds.map(anonymousProfileKey)]) expect(await eventsUnder(key)).toBe(0);
    expect(await itemsNaming(userId)).toBe(0);
  }, 180_000);

  /** A customer of LINKS links written before links carried the user's profile key, the profile naming the 50 newest; one event under each. */
  async function legacyCustomer(userId: string): Promise<{ anonymousIds: string[] }> {
    const anonymousIds = Array.from({ length: LINKS }, (_, i) => `${userId}-a${String(i).padStart(2, '0')}`);
    const now = Date.now();
    const named = anonymousIds.slice(-LIMITS.anonymousIds);
    await documentClient.send(
      new PutCommand({ TableName: config.PROFILES_TABLE, Item: profileToItem(userProfileKey(userId), { ...emptyProfileState({ userId }), anonymousIds: named, updatedAt: now - 60_000 }, 2) }),
    );
    for (const [i, anonymousId] of anonymousIds.entries()) {
      const { profileKey: _profileKey, ...legacy } = tombstoneToItem(anonymousId, userId, 1, now - 60_000);
      await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: legacy }));
      await documentClient.send(
        new PutCommand({ TableName: config.EVENTS_TABLE, Item: storedEvent({ type: 'page', anonymousId, messageId: `${anonymousId}-page`, timestamp: at(i), sourceId: `s-${run}` }) }),
      );
    }
    return { anonymousIds };
  }

  it('links written before links carried the user profile key: found among the profile\'s 50 newest only, until indexIdentityLinks gives them the key; then every one, those an erasure before left included', async () => {
    // Not indexed: the export and the erasure find the 50 the profile names; the 10 oldest links and their events stay.
    const before = `legacy-links-${run}`;
    const old = await legacyCustomer(before);
    const exportedBefore = await exportAll(before, 1_000);
    expect([...exportedBefore.linked].sort()).toEqual(old.anonymousIds.slice(-LIMITS.anonymousIds));
    expect((await call('DELETE', `/v1/admin/profiles/${before}`)).status).toBe(200);
    const left = await getItems(old.anonymousIds.map(anonymousProfileKey), { consistent: true });
    expect([...left.keys()].sort()).toEqual(old.anonymousIds.slice(0, LINKS - LIMITS.anonymousIds).map(anonymousProfileKey));
    for (const [i, anonymousId] of old.anonymousIds.entries()) expect(await eventsUnder(anonymousProfileKey(anonymousId))).toBe(i < LINKS - LIMITS.anonymousIds ? 1 : 0);

    // Indexed: every link found (those left of the customer erased before included), and every one erased.
    const userId = `indexed-links-${run}`;
    const { anonymousIds } = await legacyCustomer(userId);
    const { indexed } = await indexIdentityLinks();
    expect(indexed).toBeGreaterThanOrEqual(LINKS + (LINKS - LIMITS.anonymousIds));
    expect((await indexIdentityLinks()).indexed).toBe(0);
    const exported = await exportAll(userId, 1_000);
    expect([...exported.linked].sort()).toEqual(anonymousIds);
    expect(exported.messageIds.length).toBe(LINKS);
    expect(await call('DELETE', `/v1/admin/profiles/${userId}`)).toMatchObject({ status: 200, body: { events: LINKS } });
    expect(await itemsNaming(userId)).toBe(0);
    for (const anonymousId of anonymousIds) expect(await eventsUnder(anonymousProfileKey(anonymousId))).toBe(0);

    // The customer erased before the links were indexed: erased again, what the first erasure left goes.
    expect(await call('DELETE', `/v1/admin/profiles/${before}`)).toMatchObject({ status: 200, body: { resumed: false, events: LINKS - LIMITS.anonymousIds } });
    expect(await itemsNaming(before)).toBe(0);
    for (const anonymousId of old.anonymousIds) expect(await eventsUnder(anonymousProfileKey(anonymousId))).toBe(0);
    expect((await call('DELETE', `/v1/admin/profiles/${before}`)).status).toBe(404);
  }, 180_000);

  it('a Profiles table kept from before the index: ensureTables adds the index and says so', async () => {
    const prefix = `links-upgrade-${run}-`;
    const name = physicalName(profilesTable, prefix);
    const { globalSecondaryIndexes: _added, ...before } = profilesTable;
    await documentClient.send(new CreateTableCommand(createTableInput(before, name)));
    const kept: string[] = [];
    await ensureTables(sdkDynamo, prefix, (table, indexes) => kept.push(`${table}:${indexes.join(',')}`));
    // The other tables of the prefix were created afresh.
    expect(kept).toEqual(['Profiles:byProfile']);
    const { Table } = await sdkDynamo.send(new DescribeTableCommand({ TableName: name }));
    expect(Table?.GlobalSecondaryIndexes?.map((index) => index.IndexName)).toEqual(['byProfile']);
  });

  it('a kept Profiles table: indexIdentityLinks gives the links written before the index their user\'s profile key, once', async () => {
    const prefix = `links-kept-${run}-`;
    const name = physicalName(profilesTable, prefix);
    await ensureTables(sdkDynamo, prefix);
    const { profileKey: _profileKey, ...legacy } = tombstoneToItem(`kept-${run}-a`, `kept-${run}`, 1, Date.now());
    await documentClient.send(new PutCommand({ TableName: name, Item: legacy }));
    const kept: string[] = [];
    await ensureTables(sdkDynamo, prefix, (table, indexes) => kept.push(`${table}:${indexes.join(',')}`));
    expect(kept.sort()).toEqual(['Control:', 'Events:', 'Outbox:', 'Profiles:']);
    expect(await indexesActive(sdkDynamo, name, 10_000)).toBe(true);
    expect(await linkedAnonymousKeys(userProfileKey(`kept-${run}`), { tableName: name })).toEqual([]);
    expect(await indexIdentityLinks({ tableName: name })).toEqual({ indexed: 1 });
    // The link carries its user's profile key, its version unchanged, and the index finds it.
    const { Item } = await documentClient.send(new GetCommand({ TableName: name, Key: { pk: anonymousProfileKey(`kept-${run}-a`) }, ConsistentRead: true }));
    expect(Item).toMatchObject({ kind: 'tombstone', mergedInto: `kept-${run}`, profileKey: userProfileKey(`kept-${run}`), version: 1 });
    expect(await linkedAnonymousKeys(userProfileKey(`kept-${run}`), { tableName: name })).toEqual([anonymousProfileKey(`kept-${run}-a`)]);
    expect(await indexIdentityLinks({ tableName: name })).toEqual({ indexed: 0 });
  });
});
