/**
 * An erasure left in progress (it failed, or its operator stopped calling)
 * and requested again much later, on DynamoDB Local through the admin
 * handler's DELETE, the store's erasure (shared/store/erasure.ts) and the
 * real profile function:
 *
 * - a request more than RESUME_WINDOW_MS after the stalled erasure's
 *   `erasedAt` completes it, then erases at its own instant what the
 *   customer did since (`erasedAt` the request's, `previousErasedAt` the
 *   stalled one's): nothing of the customer from before the request is left,
 *   and what happened after it (the returning customer) is kept;
 * - a call that stops part way leaves the new erasure in progress, and the
 *   next call goes on with it (not with the stalled one, not a third);
 * - a request within the window is still a retry: the same erasure, what
 *   came after its `erasedAt` kept.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.KAIROS_ADMIN_TOKEN = 'erasure-stalled-admin-token-0123456789ab';
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler as adminHandler } from '#functions/admin/handler.ts';
import { processStreamEvent } from '#functions/profile/handler.ts';
import { dynamo } from '#store/client.ts';
import { RESUME_WINDOW_MS, eraseProfileKeys, erasureToItem } from '#store/erasure.ts';
import { erasureRecordItem } from '#store/items.ts';
import { config } from '#shared/config.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { documentClient } from '../support/sdk-clients.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const run = `st${Date.now().toString(36)}`;
const ADMIN = `Bearer ${process.env.KAIROS_ADMIN_TOKEN}`;
const SOURCE = `s-${run}`;
const HOUR = 3_600_000;
let sequence = 0;
const at = (time: number) => new Date(time).toISOString();

/** Store events as ingest does and deliver them as the stream would; none may fail. */
async function apply(events: readonly StoredEvent[]): Promise<void> {
  for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
  const response = await processStreamEvent(streamEvent(events.map((e) => streamRecord(e, { sequenceNumber: sequenceNumber(sequence++) }))));
  expect(response.batchItemFailures).toEqual([]);
}

/** An event of the customer, accepted (and happened) at `time`. */
const eventAt = (userId: string, name: string, time: number): StoredEvent => ({
  ...storedEvent({ type: 'track', event: name, userId, messageId: `${userId}-${name}`, timestamp: at(time), sourceId: SOURCE }),
  receivedAt: at(time),
});

async function admin(method: 'GET' | 'DELETE', path: string) {
  const result = await adminHandler(apiGatewayEvent({ method, path, headers: { authorization: ADMIN } }), lambdaContext());
  return { status: result.statusCode ?? 0, body: result.body ? JSON.parse(result.body) : undefined };
}
const exportedEvents = async (userId: string): Promise<string[] | undefined> => {
  const exported = await admin('GET', `/v1/admin/profiles/${userId}/export`);
  return exported.status === 200 ? exported.body.events.map((e: { messageId: string }) => e.messageId) : undefined;
};
const erasureRecord = async (profileKey: string) =>
  (await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: erasureRecordItem.key(profileKey), ConsistentRead: true })).Item;

/**
 * The customer's story: a login three hours ago; an erasure begun at `stalledAt` that stopped right after
 * claiming its record (never called again); the customer back at `stalledAt` + 1 min (applied on a fresh profile).
 */
async function stalledCustomer(userId: string, stalledAt: number): Promise<{ old: StoredEvent; back: StoredEvent }> {
  const old = eventAt(userId, 'Signed In', Date.now() - 3 * HOUR);
  await apply([old]);
  await dynamo().send('PutItem', { TableName: config.PROFILES_TABLE, Item: erasureToItem(`u#${userId}`, stalledAt) });
  const back = eventAt(userId, 'Product Viewed', stalledAt + 60_000);
  await apply([back]);
  expect((await exportedEvents(userId))?.sort()).toEqual([old.messageId, back.messageId].sort());
  return { old, back };
}

describe('an erasure in progress requested again past the retry window', () => {
  it('completes it, then erases up to the request: nothing of the customer from before the request is left', async () => {
    const userId = `u-${run}-late`;
    const stalledAt = Date.now() - 2 * HOUR;
    await stalledCustomer(userId, stalledAt);
    const requested = Date.now();

    const erased = await admin('DELETE', `/v1/admin/profiles/${userId}`);
    expect(erased.status).toBe(200);
    expect(erased.body).toMatchObject({ resumed: false, previousErasedAt: at(stalledAt), customer: { userId }, events: 2 });
    expect(Date.parse(erased.body.erasedAt)).toBeGreaterThanOrEqual(requested);
    // What the customer did between the stalled erasure and the request is gone with the rest.
    expect(await exportedEvents(userId)).toBeUndefined();
    expect(await erasureRecord(`u#${userId}`)).toMatchObject({ erasedAt: erased.body.erasedAt, completedAt: expect.any(String) });
    expect((await erasureRecord(`u#${userId}`))?.erasing).toBeUndefined();
  });

  it("keeps what happened after the request's instant (the returning customer), once; a call stopped part way leaves the new erasure for the next call", async () => {
    const userId = `u-${run}-parts`;
    const stalledAt = Date.now() - 2 * HOUR;
    const { old, back } = await stalledCustomer(userId, stalledAt);
    const requestedAt = Date.now() - 5_000;
    // Stored (not yet applied) before the request runs, but it happened after the request's instant: the return.
    const after = eventAt(userId, 'Cart Viewed', requestedAt + 1_000);
    await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: after }));

    // The deadline has passed: the stalled erasure is completed (its share of events), the new one claimed, and the call stops.
    const first = await eraseProfileKeys([`u#${userId}`], requestedAt, { cancelSchedule: async () => undefined, deadline: Date.now() - 1 });
    expect(first).toMatchObject({ erasedAt: at(requestedAt), resumed: false, previousErasedAt: at(stalledAt), events: 1, complete: false });
    expect(await erasureRecord(`u#${userId}`)).toMatchObject({ erasedAt: at(requestedAt), erasing: true });

    // The operator's next call, seconds later: the same (new) erasure, gone on with.
    const second = await eraseProfileKeys([`u#${userId}`], requestedAt + 3_000, { cancelSchedule: async () => undefined });
    expect(second).toMatchObject({ erasedAt: at(requestedAt), resumed: true, events: 1, complete: true });
    expect(second.previousErasedAt).toBeUndefined();

    await apply([after]);
    const kept = await exportedEvents(userId);
    expect(kept).toEqual([after.messageId]);
    expect(kept).not.toContain(old.messageId);
    expect(kept).not.toContain(back.messageId);
    const exported = await admin('GET', `/v1/admin/profiles/${userId}/export`);
    expect(Object.keys(exported.body.stored.state.events)).toEqual(['Cart Viewed']);
    expect(exported.body.stored.state.events['Cart Viewed'].n).toBe(1);
  });

  it('within the window a request is a retry of the erasure in progress: its erasedAt, what came after it kept', async () => {
    const userId = `u-${run}-retry`;
    const stalledAt = Date.now() - RESUME_WINDOW_MS + 5 * 60_000;
    const { back } = await stalledCustomer(userId, stalledAt);

    const erased = await admin('DELETE', `/v1/admin/profiles/${userId}`);
    expect(erased.status).toBe(200);
    expect(erased.body).toMatchObject({ erasedAt: at(stalledAt), resumed: true, events: 1 });
    expect(erased.body.previousErasedAt).toBeUndefined();
    expect(await exportedEvents(userId)).toEqual([back.messageId]);
  });
});
