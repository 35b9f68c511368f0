/**
 * An erasure racing the customer's return, on DynamoDB Local through the
 * real erasure (shared/store/erasure.ts) and the real profile function: the
 * customer's events accepted after `erasedAt` are applied by the stream
 * while the erasure still runs, before its last step deletes the profile
 * items. Each is applied once, on a fresh profile (the user's, and the
 * anonymous visitor's that the erased customer had merged), which the
 * erasure leaves; nothing of the erased customer survives, and a
 * redelivery changes nothing.
 *
 * The race is made exact, not hoped for: the erasure's own DynamoDB client
 * applies the returning customer's events through the profile function just
 * before the erasure's first read of a profile item (its last step). And an
 * event accepted after `erasedAt` that is stored before the erasure lists
 * the customer's events is the returning customer's: the erasure leaves it.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.KAIROS_ADMIN_TOKEN = 'erasure-returning-admin-token-0123456789';
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler as adminHandler } from '#functions/admin/handler.ts';
import { processStreamEvent } from '#functions/profile/handler.ts';
import { dynamo, type DynamoClient } from '#store/client.ts';
import { eraseProfileKeys } from '#store/erasure.ts';
import { appliedMarkerItem } from '#store/items.ts';
import { config } from '#shared/config.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { documentClient } from '../support/sdk-clients.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const run = `r${Date.now().toString(36)}`;
const ADMIN = `Bearer ${process.env.KAIROS_ADMIN_TOKEN}`;
const SOURCE = `s-${run}`;
let sequence = 0;

/** Store events as ingest does (with the `receivedAt` they carry). */
async function store(events: readonly StoredEvent[]): Promise<void> {
  for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
}
/** Deliver events as the stream would; none may fail. */
async function deliver(events: readonly StoredEvent[]): Promise<void> {
  const response = await processStreamEvent(streamEvent(events.map((e) => streamRecord(e, { sequenceNumber: sequenceNumber(sequence++) }))));
  expect(response.batchItemFailures).toEqual([]);
}

interface Export {
  readonly customer: { readonly userId?: string; readonly anonymousId?: string; readonly anonymousIds: readonly string[] };
  readonly events: readonly { readonly messageId: string }[];
  readonly stored: {
    readonly state: {
      readonly traits: Readonly<Record<string, unknown>>;
      readonly events: Readonly<Record<string, { readonly n: number }>>;
      readonly anonymousIds: readonly string[];
      readonly visits: { readonly n: number };
      readonly orders: number;
    };
  };
}

/** The admin export of a userId, or of an anonymousId (`kind: 'anonymous'`, the route's ?kind=anonymous). */
async function exported(id: string, kind: 'user' | 'anonymous' = 'user'): Promise<{ status: number; body: Export }> {
  const query = kind === 'anonymous' ? '?kind=anonymous' : '';
  const result = await adminHandler(apiGatewayEvent({ method: 'GET', path: `/v1/admin/profiles/${id}/export${query}`, headers: { authorization: ADMIN } }), lambdaContext());
  return { status: result.statusCode ?? 0, body: result.body ? (JSON.parse(result.body) as Export) : ({} as Export) };
}

const marked = async (eventPk: string): Promise<boolean> =>
  (await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: appliedMarkerItem.key(eventPk), ConsistentRead: true })).Item !== undefined;

/** The store's client, running `race` once just before the first read of a Profiles item (the erasure's last step). */
function racingClient(race: () => Promise<void>): DynamoClient {
  const client = dynamo();
  let raced = false;
  const send = (async (operation: string, input: { TableName?: string }, options?: object) => {
    if (!raced && operation === 'GetItem' && input.TableName === config.PROFILES_TABLE) {
      raced = true;
      await race();
    }
    return (client.send as (o: string, i: object, c?: object) => Promise<unknown>)(operation, input, options);
  }) as DynamoClient['send'];
  return Object.assign(Object.create(client) as DynamoClient, { send });
}

describe('an erasure racing the customer who comes back', () => {
  it("events accepted after erasedAt, applied before the erasure's last step, are kept once on fresh profiles; nothing of the erased customer is", async () => {
    const userId = `u-${run}`;
    const anonymousId = `a-${run}`;
    const before = Date.now() - 60_000;
    const at = (time: number) => new Date(time).toISOString();
    // The erased customer: a visit as an anonymous visitor, then a login (the visitor merged into the user), a purchase.
    const old = [
      storedEvent({ type: 'page', anonymousId, messageId: `${run}-old-page`, timestamp: at(before), sourceId: SOURCE }),
      storedEvent({ type: 'identify', userId, anonymousId, messageId: `${run}-old-login`, timestamp: at(before + 1_000), traits: { firstName: 'Rosa' }, sourceId: SOURCE }),
      storedEvent({ type: 'track', userId, event: 'Order Completed', messageId: `${run}-old-order`, timestamp: at(before + 2_000), properties: { revenue: 30 }, sourceId: SOURCE }),
    ];
    for (const event of old) {
      await store([event]);
      await deliver([event]);
    }
    expect((await exported(userId)).body.customer.anonymousIds).toEqual([anonymousId]);

    const erasedAt = Date.now();
    // Accepted (and happened) after erasedAt: the user's own track, and the anonymous visitor's page (not logged in).
    const backAt = at(erasedAt + 1_000);
    const back = { ...storedEvent({ type: 'track', userId, event: 'Product Viewed', messageId: `${run}-back-view`, timestamp: backAt, properties: { category: 'shoes' }, sourceId: SOURCE }), receivedAt: backAt };
    const visit = { ...storedEvent({ type: 'page', anonymousId, messageId: `${run}-back-visit`, timestamp: backAt, sourceId: SOURCE }), receivedAt: backAt };
    const report = await eraseProfileKeys([`u#${userId}`, `a#${anonymousId}`], erasedAt, {
      cancelSchedule: async () => undefined,
      // The stream applies them while the erasure runs: after its records, events and emissions, before the profile items.
      client: racingClient(async () => {
        await store([back, visit]);
        await deliver([back, visit]);
      }),
    });
    expect(report.events).toBe(3);

    // The returning user: a fresh profile holding its own event once, nothing of the erased customer's.
    const user = await exported(userId);
    expect(user.status).toBe(200);
    expect(user.body.events.map((e) => e.messageId)).toEqual([back.messageId]);
    expect(user.body.stored.state.traits).toEqual({});
    expect(user.body.stored.state.orders).toBe(0);
    expect(user.body.stored.state.anonymousIds).toEqual([]);
    expect(Object.fromEntries(Object.entries(user.body.stored.state.events).map(([name, counts]) => [name, counts.n]))).toEqual({ 'Product Viewed': 1 });
    // The returning visitor: a profile of its own (the erased customer's link to the user is gone), its visit once.
    const visitor = await exported(anonymousId, 'anonymous');
    expect(visitor.status).toBe(200);
    expect(visitor.body.customer).toEqual({ anonymousId, anonymousIds: [] });
    expect(visitor.body.events.map((e) => e.messageId)).toEqual([visit.messageId]);
    expect(visitor.body.stored.state.visits.n).toBe(1);
    expect(visitor.body.stored.state.traits).toEqual({});
    expect(await marked(back.pk)).toBe(true);
    expect(await marked(visit.pk)).toBe(true);

    // A redelivery of everything (the stream's at-least-once) changes nothing: the erased customer's events are dropped,
    // the returning customer's are duplicates.
    await deliver([...old, back, visit]);
    for (const [id, kind, was] of [[userId, 'user', user], [anonymousId, 'anonymous', visitor]] as const) {
      const again = await exported(id, kind);
      expect(again.body.stored).toEqual(was.body.stored);
      expect(again.body.events).toEqual(was.body.events);
    }
  });

  it("an event accepted after erasedAt that is already stored when the erasure lists the customer's events is kept, and applied once", async () => {
    const userId = `v-${run}`;
    const at = (time: number) => new Date(time).toISOString();
    const old = storedEvent({ type: 'identify', userId, messageId: `${run}-v-old`, timestamp: at(Date.now() - 60_000), traits: { firstName: 'Rosa' }, sourceId: SOURCE });
    await store([old]);
    await deliver([old]);

    const erasedAt = Date.now() - 5_000;
    // Accepted a second after the erasure began, stored under the customer's key before the erasure lists its events.
    const backAt = at(erasedAt + 1_000);
    const back = { ...storedEvent({ type: 'track', userId, event: 'Product Viewed', messageId: `${run}-v-back`, timestamp: backAt, properties: { category: 'bags' }, sourceId: SOURCE }), receivedAt: backAt };
    // And one of the erased customer's, accepted before the erasure with its time after it: it goes with the customer.
    const late = { ...storedEvent({ type: 'track', userId, event: 'Search', messageId: `${run}-v-late`, timestamp: backAt, sourceId: SOURCE }), receivedAt: at(erasedAt - 1_000) };
    await store([back, late]);
    const report = await eraseProfileKeys([`u#${userId}`], erasedAt, { cancelSchedule: async () => undefined });
    expect(report.events).toBe(2);
    expect((await exported(userId)).status).toBe(404);

    await deliver([back, late]);
    const user = await exported(userId);
    expect(user.status).toBe(200);
    expect(user.body.events.map((e) => e.messageId)).toEqual([back.messageId]);
    expect(user.body.stored.state.traits).toEqual({});
    expect(Object.fromEntries(Object.entries(user.body.stored.state.events).map(([name, counts]) => [name, counts.n]))).toEqual({ 'Product Viewed': 1 });
    await deliver([back, late]);
    expect((await exported(userId)).body.stored).toEqual(user.body.stored);
  });
});
