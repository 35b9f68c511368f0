/**
 * An erasure requested again while it is in progress, and the returning
 * customer's emissions, on DynamoDB Local: the real profile function (a
 * trigger whose sends fall in quiet hours: timers, `deferred`), the real
 * dispatcher and the local scheduler, the admin handler's DELETE and the
 * store's erasure (shared/store/erasure.ts).
 *
 * - A request for a customer whose erasure is in progress (the first one
 *   stopped by a 503, or still running) is the same erasure: the same
 *   `erasedAt`, `resumed: true`, and what the customer sent after `erasedAt`
 *   (they came back) is kept. Once it has completed, a request is a new
 *   erasure (`resumed: false`, a later `erasedAt`) that erases the return too.
 * - The erasure deletes the erased customer's emissions only: a send the
 *   returning customer's event set off while the erasure runs (on the fresh
 *   profile, stamped with the erasure it was started after) is kept, still
 *   scheduled.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { createTriggerReactor } from '#domain/triggers/react.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import type { EmissionScheduler } from '#shared/bus/bus.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { LocalBus, LocalScheduler } from '#local/outbox.ts';
import type { DynamoClient } from '#store/client.ts';
import { apiGatewayEvent } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const ADMIN_TOKEN = 'admin-token-for-erasure-in-progress-0123';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const { createAdminHandler } = await import('#functions/admin/handler.ts');
const { createProfileHandler } = await import('#functions/profile/handler.ts');
const { dispatchRecords } = await import('#functions/dispatcher/handler.ts');
const { config } = await import('#shared/config.ts');
const { dynamo } = await import('#store/client.ts');
const { outboxKeysOf } = await import('#store/outbox.ts');
const { eraseProfileKeys } = await import('#store/erasure.ts');
const { erasureRecordItem } = await import('#store/items.ts');

/** Calls (complaints) are quiet from 09:00 to 11:00 UTC: a complaint decided at 10:00 is sent at 11:00. */
const catalog: CompiledCatalog = (() => {
  const result = loadCatalog(
    `
kind: kairos/v1
tags: [service]
policies:
  quietHours: [{ id: night-calls, channels: [call_center], from: '09:00', to: '11:00', timezone: UTC }]
actions:
  - { id: call, name: Call, tags: [service], content: { call_center: { script: 'Hola {{ firstName }}' } }, fallbacks: { firstName: cliente } }
triggers:
  - { id: complaint, on: { event: Complaint Opened }, decide: { channel: call_center } }
`,
    'yaml',
  );
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
})();

/** The profile function's clock: a day to come, so the deferred sends are still pending when the erasure runs. */
const NOW = Date.parse('2030-01-15T10:00:00Z');
const run = Date.now().toString(36);
const SOURCE = `s-${run}`;
let sequence = 0;
const context = { functionName: 'admin', awsRequestId: 'test' } as Context;
const profileHandler = createProfileHandler({
  enricher: createCatalogEnricher(() => catalog),
  reactor: createTriggerReactor(() => catalog),
  settings: { halfLifeDays: 14 },
  now: () => NOW,
});
const scheduler = new LocalScheduler(new LocalBus(), { log: () => undefined, writeTimer: async () => undefined });
const at = (time: number) => new Date(time).toISOString();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});
afterAll(() => scheduler.stop());

/** Store events as ingest does, apply them as the stream would; none may fail. */
async function apply(events: readonly StoredEvent[]): Promise<void> {
  for (const event of events) await dynamo().send('PutItem', { TableName: config.EVENTS_TABLE, Item: event });
  const response = await profileHandler(streamEvent(events.map((e) => streamRecord(e, { sequenceNumber: sequenceNumber(sequence++) }))));
  expect(response.batchItemFailures).toEqual([]);
}

/** The Outbox items of a profile key, read consistently. */
async function outboxItemsOf(profileKey: string): Promise<Record<string, unknown>[]> {
  const items = [];
  for (const { pk } of await outboxKeysOf(profileKey)) {
    const { Item } = await dynamo().send('GetItem', { TableName: config.OUTBOX_TABLE, Key: { pk }, ConsistentRead: true });
    if (Item) items.push(Item);
  }
  return items;
}

/** Dispatch Outbox items as its stream would: the deferred sends scheduled. */
async function dispatch(items: readonly Record<string, unknown>[]): Promise<void> {
  const report = await dispatchRecords(
    items.map((item) => streamRecord(item, { sequenceNumber: sequenceNumber(sequence++) })),
    { bus: new LocalBus(), scheduler, now: () => NOW },
  );
  expect(report.failures).toEqual([]);
}

const pendingIds = () => scheduler.pending().map((s) => s.event.id);

async function erase(id: string, using: EmissionScheduler = scheduler) {
  const event: APIGatewayProxyEventV2 = apiGatewayEvent({ method: 'DELETE', path: `/v1/admin/profiles/${encodeURIComponent(id)}`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const response = (await createAdminHandler({ scheduler: using })(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined };
}

async function exported(id: string) {
  const event = apiGatewayEvent({ method: 'GET', path: `/v1/admin/profiles/${encodeURIComponent(id)}/export`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const response = (await createAdminHandler({ scheduler })(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined };
}

const erasureRecord = async (profileKey: string) =>
  (await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: erasureRecordItem.key(profileKey), ConsistentRead: true })).Item;

/** The customer: a login and a complaint (its call deferred to the end of the quiet hours), two minutes ago. */
async function customer(userId: string): Promise<void> {
  const before = Date.now() - 120_000;
  await apply([
    storedEvent({ type: 'identify', userId, messageId: `${userId}-login`, timestamp: at(before), traits: { firstName: 'Luisa' }, sourceId: SOURCE }),
    storedEvent({ type: 'track', event: 'Complaint Opened', userId, messageId: `${userId}-complaint`, timestamp: at(before + 1_000), sourceId: SOURCE }),
  ]);
}

/** An event of the customer who came back, accepted (and happened) at `time`. */
function returning(userId: string, name: string, time: number): StoredEvent {
  return { ...storedEvent({ type: 'track', event: name, userId, messageId: `${userId}-back-${name}`, timestamp: at(time), sourceId: SOURCE }), receivedAt: at(time) };
}

/** The store's client, running `race` once just before the first request `when` matches. */
function racingClient(when: (operation: string, input: { TableName?: string }) => boolean, race: () => Promise<void>): DynamoClient {
  const client = dynamo();
  let raced = false;
  const send = (async (operation: string, input: { TableName?: string }, options?: object) => {
    if (!raced && when(operation, input)) {
      raced = true;
      await race();
    }
    return (client.send as (o: string, i: object, c?: object) => Promise<unknown>)(operation, input, options);
  }) as DynamoClient['send'];
  return Object.assign(Object.create(client) as DynamoClient, { send });
}

describe('DELETE /v1/admin/profiles/{userId} while its erasure is in progress', () => {
  it('is the same erasure (its erasedAt, resumed): what the returning customer sent since is kept; after it completed, a request is a new erasure', async () => {
    const userId = `ip-u-${run}`;
    await customer(userId);
    // The first request stops part way: the scheduler cannot cancel the pending call (503).
    const down: EmissionScheduler = {
      scheduleAt: async () => undefined,
      cancel: async () => {
        throw new Error('Scheduler unreachable');
      },
    };
    const first = await erase(userId, down);
    expect(first.status).toBe(503);
    const record = await erasureRecord(`u#${userId}`);
    expect(record).toMatchObject({ kind: 'erasure', erasing: true });
    const erasedAt = Date.parse(String(record?.erasedAt));

    // The customer comes back between the two requests: an event accepted after erasedAt, applied on a fresh profile.
    const back = returning(userId, 'Product Viewed', erasedAt + 1);
    await sleep(20);
    await apply([back]);

    // The operator's retry: the same erasure, which leaves the returning customer's event and profile.
    const retry = await erase(userId);
    expect(retry.status).toBe(200);
    expect(retry.body).toMatchObject({ erasedAt: at(erasedAt), resumed: true, customer: { userId } });
    const kept = await exported(userId);
    expect(kept.status).toBe(200);
    expect(kept.body.events.map((e: { messageId: string }) => e.messageId)).toEqual([back.messageId]);
    expect(kept.body.stored.state.traits).toEqual({});
    expect(await outboxItemsOf(`u#${userId}`)).toEqual([]);
    const completed = await erasureRecord(`u#${userId}`);
    expect(completed?.erasing).toBeUndefined();
    expect(completed).toMatchObject({ erasedAt: at(erasedAt), completedAt: expect.any(String) });

    // The erasure has completed: a request now is a new erasure, at its own instant, and erases the return too.
    const again = await erase(userId);
    expect(again.status).toBe(200);
    expect(again.body).toMatchObject({ resumed: false, customer: { userId }, events: 1 });
    expect(Date.parse(again.body.erasedAt)).toBeGreaterThan(erasedAt);
    expect((await exported(userId)).status).toBe(404);
    // And once that one has completed with nothing left, a request erases nobody: 404.
    expect((await erase(userId)).status).toBe(404);
  });

  it('a request that comes while the erasure runs goes on with it at its erasedAt; neither deletes what came after', async () => {
    const userId = `ip-twice-${run}`;
    await customer(userId);
    const erasedAt = Date.now() - 10_000;
    // Accepted after erasedAt, stored while the erasure runs; the stream applies it afterwards.
    const back = returning(userId, 'Product Viewed', erasedAt + 1_000);
    await dynamo().send('PutItem', { TableName: config.EVENTS_TABLE, Item: back });
    let second: Awaited<ReturnType<typeof eraseProfileKeys>> | undefined;
    // A double click: the second request runs whole while the first lists the customer's events.
    const first = await eraseProfileKeys([`u#${userId}`], erasedAt, {
      cancelSchedule: (id) => scheduler.cancel(id),
      client: racingClient(
        (operation, input) => operation === 'Query' && input.TableName === config.EVENTS_TABLE,
        async () => {
          second = await eraseProfileKeys([`u#${userId}`], Date.now(), { cancelSchedule: (id) => scheduler.cancel(id) });
        },
      ),
    });
    expect(second).toMatchObject({ erasedAt: at(erasedAt), resumed: true, events: 2 });
    expect(first).toMatchObject({ erasedAt: at(erasedAt), resumed: false, events: 0 });
    await apply([back]);
    const kept = await exported(userId);
    expect(kept.status).toBe(200);
    expect(kept.body.events.map((e: { messageId: string }) => e.messageId)).toEqual([back.messageId]);
  });
});

describe("the erasure and the returning customer's emissions", () => {
  it("a send the returning customer's event set off while the erasure runs is kept, still scheduled; the erased customer's is deleted and cancelled", async () => {
    const userId = `ip-send-${run}`;
    await customer(userId);
    const old = await outboxItemsOf(`u#${userId}`);
    expect(old.map((item) => [item.status, item.keyErasedAt])).toEqual([['deferred', 0]]);
    await dispatch(old);
    expect(pendingIds()).toContain(old[0]?.id);

    const erasedAt = Date.now();
    let kept: Record<string, unknown>[] = [];
    const report = await eraseProfileKeys([`u#${userId}`], erasedAt, {
      cancelSchedule: (id) => scheduler.cancel(id),
      // The stream applies a complaint of the returning customer, and the dispatcher schedules its call, just before the
      // erasure lists the customer's emissions.
      client: racingClient(
        (operation, input) => operation === 'Query' && input.TableName === config.OUTBOX_TABLE,
        async () => {
          await apply([returning(userId, 'Complaint Opened', erasedAt + 1_000)]);
          kept = (await outboxItemsOf(`u#${userId}`)).filter((item) => item.id !== old[0]?.id);
          await dispatch(kept);
        },
      ),
    });
    expect(kept.map((item) => [item.status, item.keyErasedAt])).toEqual([['deferred', erasedAt]]);
    expect(report).toMatchObject({ emissions: 1, cancelled: 1 });
    // The returning customer's call: its Outbox item and its schedule stay; the erased customer's are gone.
    expect((await outboxItemsOf(`u#${userId}`)).map((item) => item.id)).toEqual(kept.map((item) => item.id));
    expect(pendingIds()).toContain(kept[0]?.id);
    expect(pendingIds()).not.toContain(old[0]?.id);
  });
});
