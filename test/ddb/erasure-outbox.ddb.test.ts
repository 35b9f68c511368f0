/**
 * The erasure and the outbox on DynamoDB Local: the real profile function
 * (triggers whose sends fall in quiet hours: their timers, `deferred`), the real
 * dispatcher putting them on the local scheduler (local/outbox.ts
 * `LocalScheduler`), and the admin handler's DELETE with that scheduler:
 *
 * - every outbox item is stored with the profile key of the write that made
 *   it, found by the Outbox table's `byProfile` index;
 * - the erased customer's emissions (made under its anonymous key before the
 *   merge, and under its user key) are deleted and their pending schedules
 *   cancelled; another customer's stay, scheduled;
 * - a schedule that cannot be cancelled stops the erasure before the item
 *   is deleted (503, retry), and calling the erasure again completes it;
 * - an erasure that runs before the dispatcher has read the customer's
 *   emissions: the schedules the dispatcher makes after it are cancelled
 *   when the removals come down the stream.
 */
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
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
import { createTableInput, ensureTables, physicalName } from '#local/tables.ts';
import { outboxTable } from '#store/tables.ts';
import { apiGatewayEvent } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const ADMIN_TOKEN = 'admin-token-for-erasure-outbox-0123';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const { createAdminHandler } = await import('#functions/admin/handler.ts');
const { createProfileHandler } = await import('#functions/profile/handler.ts');
const { dispatchRecords } = await import('#functions/dispatcher/handler.ts');
const { config } = await import('#shared/config.ts');
const { dynamo } = await import('#store/client.ts');
const { outboxKeysOf } = await import('#store/outbox.ts');
const sdk = await import('../support/sdk-clients.ts');

/** Calls (complaints) are quiet from 09:00 to 11:00 UTC: a complaint at 10:00 is sent at 11:00. */
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

/** A day to come, so the deferred sends are still pending when the erasure runs. */
const NOW = Date.parse('2030-01-15T10:00:00Z');
const SEND_AT = Date.parse('2030-01-15T11:00:00Z');
const run = Date.now().toString(36);
let sequence = 0;
const context = { functionName: 'admin', awsRequestId: 'test' } as Context;
const profileHandler = createProfileHandler({
  enricher: createCatalogEnricher(() => catalog),
  reactor: createTriggerReactor(() => catalog),
  settings: { halfLifeDays: 14 },
  now: () => NOW,
});
const scheduler = new LocalScheduler(new LocalBus(), { log: () => undefined, writeTimer: async () => undefined });

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});
afterAll(() => scheduler.stop());

/** Store events as ingest does, apply them as the stream would, and dispatch the outbox items they made (as its stream would). */
async function apply(events: readonly StoredEvent[]): Promise<void> {
  for (const event of events) await dynamo().send('PutItem', { TableName: config.EVENTS_TABLE, Item: event });
  const response = await profileHandler(streamEvent(events.map((e) => streamRecord(e, { sequenceNumber: sequenceNumber(sequence++) }))));
  if (response.batchItemFailures.length > 0) throw new Error('events were not applied');
}

async function dispatchOutboxOf(profileKeys: readonly string[]): Promise<void> {
  const items = [];
  for (const key of profileKeys) {
    for (const { pk } of await outboxKeysOf(key)) {
      items.push((await dynamo().send('GetItem', { TableName: config.OUTBOX_TABLE, Key: { pk }, ConsistentRead: true })).Item as Record<string, unknown>);
    }
  }
  const report = await dispatchRecords(
    items.map((item) => streamRecord(item, { sequenceNumber: sequenceNumber(sequence++) })),
    { bus: new LocalBus(), scheduler, now: () => NOW },
  );
  expect(report.failures).toEqual([]);
}

/** An anonymous complaint (its own profile), then identify (merging it) and a complaint as the user. */
function customerEvents(userId: string, anonymousId: string) {
  const sourceId = `s-${run}`;
  const time = (minute: number) => new Date(NOW - 60 * 60_000 + minute * 60_000).toISOString();
  return [
    [storedEvent({ type: 'track', event: 'Complaint Opened', anonymousId, messageId: `${anonymousId}-c`, timestamp: time(0), sourceId })],
    [
      storedEvent({ type: 'identify', userId, anonymousId, messageId: `${userId}-id`, timestamp: time(1), traits: { firstName: 'Luisa' }, sourceId }),
      storedEvent({ type: 'track', event: 'Complaint Opened', userId, messageId: `${userId}-c`, timestamp: time(2), sourceId }),
    ],
  ];
}

async function erase(id: string, using: EmissionScheduler = scheduler) {
  const event: APIGatewayProxyEventV2 = apiGatewayEvent({ method: 'DELETE', path: `/v1/admin/profiles/${encodeURIComponent(id)}`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const response = (await createAdminHandler({ scheduler: using })(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined };
}

const outboxItemsNaming = async (needle: string) => {
  const found: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send('Scan', { TableName: config.OUTBOX_TABLE, ConsistentRead: true, ...(start ? { ExclusiveStartKey: start } : {}) });
    for (const item of page.Items ?? []) if (JSON.stringify(item).includes(needle)) found.push(item);
    start = page.LastEvaluatedKey;
  } while (start);
  return found;
};

const pendingIds = () => scheduler.pending().map((s) => s.event.id);

describe('DELETE /v1/admin/profiles/{userId} and the outbox', () => {
  it("deletes the customer's emissions and cancels its pending sends; another customer's stay scheduled", async () => {
    const [erased, erasedAnonymous] = [`eo-u-${run}`, `eo-a-${run}`];
    const [other, otherAnonymous] = [`eo-other-u-${run}`, `eo-other-a-${run}`];
    for (const batch of [...customerEvents(erased, erasedAnonymous), ...customerEvents(other, otherAnonymous)]) await apply(batch);
    const keysOf = (userId: string, anonymousId: string) => [`u#${userId}`, `a#${anonymousId}`];
    await dispatchOutboxOf([...keysOf(erased, erasedAnonymous), ...keysOf(other, otherAnonymous)]);

    // Each emission is stored with the profile key of the write that made it: the anonymous complaint under the
    // anonymous key, the user's under the user key; each a send's timer, deferred to the end of the quiet hours, on the scheduler.
    const erasedItems = [...(await outboxItemsNaming(erasedAnonymous)), ...(await outboxItemsNaming(erased))];
    const byKey = new Map(erasedItems.map((item) => [item.pk, item]));
    expect([...byKey.values()].map((item) => [item.profileKey, item.status, item.sendAt, item.detailType]).sort()).toEqual(
      [
        [`a#${erasedAnonymous}`, 'deferred', SEND_AT, 'Kairos Send Timer'],
        [`u#${erased}`, 'deferred', SEND_AT, 'Kairos Send Timer'],
      ].sort(),
    );
    const erasedIds = [...byKey.values()].map((item) => String(item.id));
    const otherIds = [...(await outboxKeysOf(`u#${other}`)), ...(await outboxKeysOf(`a#${otherAnonymous}`))].map((k) => k.id);
    expect(otherIds).toHaveLength(2);
    expect(pendingIds()).toEqual(expect.arrayContaining([...erasedIds, ...otherIds]));

    const response = await erase(erased);
    expect(response.status).toBe(200);
    expect(await outboxItemsNaming(erased)).toEqual([]);
    expect(await outboxItemsNaming(erasedAnonymous)).toEqual([]);
    for (const id of erasedIds) expect(pendingIds()).not.toContain(id);
    // The other customer: its emissions kept, still scheduled.
    expect([...new Set([...(await outboxItemsNaming(other)), ...(await outboxItemsNaming(otherAnonymous))].map((item) => item.id))].sort()).toEqual([...otherIds].sort());
    expect(pendingIds()).toEqual(expect.arrayContaining(otherIds));
  });

  it('a schedule that cannot be cancelled stops the erasure before its item is deleted; the erasure called again completes it', async () => {
    const [userId, anonymousId] = [`eo-retry-u-${run}`, `eo-retry-a-${run}`];
    for (const batch of customerEvents(userId, anonymousId)) await apply(batch);
    await dispatchOutboxOf([`u#${userId}`, `a#${anonymousId}`]);
    const ids = [...(await outboxKeysOf(`u#${userId}`)), ...(await outboxKeysOf(`a#${anonymousId}`))].map((k) => k.id);
    expect(ids).toHaveLength(2);

    // A fault the emulation cannot produce: Scheduler unreachable.
    const down: EmissionScheduler = {
      scheduleAt: async () => undefined,
      cancel: async () => {
        throw new Error('Scheduler unreachable');
      },
    };
    const refused = await erase(userId, down);
    expect(refused.status).toBe(503);
    expect(refused.body.error.code).toBe('unavailable');
    expect((await outboxItemsNaming(userId)).length + (await outboxItemsNaming(anonymousId)).length).toBeGreaterThan(0);
    expect(pendingIds()).toEqual(expect.arrayContaining(ids));

    expect((await erase(userId)).status).toBe(200);
    expect(await outboxItemsNaming(userId)).toEqual([]);
    expect(await outboxItemsNaming(anonymousId)).toEqual([]);
    for (const id of ids) expect(pendingIds()).not.toContain(id);
  });
});

describe('an erasure that runs before the dispatcher has read its emissions', () => {
  it('the schedules the dispatcher makes after it are cancelled when the removals come down the stream: nothing of the customer fires', async () => {
    const [userId, anonymousId] = [`eo-race-u-${run}`, `eo-race-a-${run}`];
    for (const batch of customerEvents(userId, anonymousId)) await apply(batch);
    // The Outbox items the profile function wrote, not yet read by the dispatcher.
    const items = [];
    for (const key of [`u#${userId}`, `a#${anonymousId}`]) {
      for (const { pk } of await outboxKeysOf(key)) {
        items.push((await dynamo().send('GetItem', { TableName: config.OUTBOX_TABLE, Key: { pk }, ConsistentRead: true })).Item as Record<string, unknown>);
      }
    }
    expect(items).toHaveLength(2);
    const ids = items.map((item) => String(item.id));

    // The erasure finds no schedule to cancel and deletes the items.
    expect((await erase(userId)).status).toBe(200);
    expect(await outboxItemsNaming(userId)).toEqual([]);

    // Then the stream: the inserts in one batch (scheduled: the dispatcher cannot know yet), the removals in the next.
    const inserts = await dispatchRecords(
      items.map((item) => streamRecord(item, { sequenceNumber: sequenceNumber(sequence++) })),
      { bus: new LocalBus(), scheduler, now: () => NOW },
    );
    expect(inserts).toMatchObject({ scheduled: 2, failures: [] });
    expect(pendingIds()).toEqual(expect.arrayContaining(ids));
    const removals = await dispatchRecords(
      items.map((item) => streamRecord({ pk: item.pk }, { sequenceNumber: sequenceNumber(sequence++), eventName: 'REMOVE' })),
      { bus: new LocalBus(), scheduler, now: () => NOW },
    );
    expect(removals).toMatchObject({ cancelled: 2, failures: [] });
    for (const id of ids) expect(pendingIds()).not.toContain(id);
    expect(JSON.stringify(scheduler.pending())).not.toContain(userId);
  });
});

describe('the local Outbox table of an earlier version', () => {
  it('gets the byProfile index at the next start', async () => {
    const prefix = `upgrade-${run}-`;
    const name = physicalName(outboxTable, prefix);
    const { globalSecondaryIndexes: _added, ...before } = outboxTable;
    await sdk.dynamo.send(new CreateTableCommand(createTableInput(before, name)));
    expect((await sdk.dynamo.send(new DescribeTableCommand({ TableName: name }))).Table?.GlobalSecondaryIndexes).toBeUndefined();
    await ensureTables(sdk.dynamo, prefix);
    const indexes = (await sdk.dynamo.send(new DescribeTableCommand({ TableName: name }))).Table?.GlobalSecondaryIndexes ?? [];
    expect(indexes.map((index) => [index.IndexName, index.KeySchema, index.Projection?.ProjectionType])).toEqual([
      ['byProfile', [{ AttributeName: 'profileKey', KeyType: 'HASH' }, { AttributeName: 'sendAt', KeyType: 'RANGE' }], 'KEYS_ONLY'],
    ]);
    // Started again: nothing more to add.
    await ensureTables(sdk.dynamo, prefix);
  });
});
