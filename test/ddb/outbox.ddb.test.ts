/**
 * The transactional outbox against DynamoDB Local: the real profile
 * function (its plan, commitTargets' TransactWriteItems) with the triggers'
 * reactor writes each firing to the Outbox table in the profile's own
 * transaction.
 *
 * - a firing is stored with its status, send time, detail and TTL, next to
 *   the profile and the event's "applied" marker;
 * - a redelivered batch (the same records, again and again, and cut
 *   differently) writes no second item;
 * - a write that cannot commit writes no outbox item either (all or
 *   nothing): an outbox item whose id is already taken makes the whole
 *   transaction fail, profile and marker included;
 * - GET /v1/admin/outbox's listing reads the items back, in pages that
 *   fit in a Lambda answer whatever the emissions' rendered content;
 * - a send counts toward caps when decided: under a cap of 1 push a day the
 *   next trigger's send, in a later batch, is refused by the cap, and the
 *   impression reported for the send adds no second contact.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { createTriggerReactor } from '#domain/triggers/react.ts';
import { parseProfileState } from '#domain/profile/state.ts';
import { config } from '#shared/config.ts';
import { dynamo } from '#store/client.ts';
import { appliedMarkerItem, outboxItem, userProfileItem } from '#store/items.ts';
import { listOutbox, outboxEntryFromItem, outboxPuts, OUTBOX_RETENTION_DAYS } from '#store/outbox.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
const { createProfileHandler } = await import('#functions/profile/handler.ts');

const catalog: CompiledCatalog = (() => {
  const result = loadCatalog(
    `
kind: kairos/v1
tags: [service]
segments:
  - { id: vip, rule: 'has(profile.traits.tier) && profile.traits.tier == "VIP"' }
actions:
  - { id: call, name: Call, tags: [service], content: { call_center: { script: 'Hola {{ firstName }}' } }, fallbacks: { firstName: cliente } }
triggers:
  - { id: complaint, on: { event: Complaint Opened }, decide: { channel: call_center } }
  - { id: vip-in, on: { entered: vip }, decide: { channel: call_center } }
`,
    'yaml',
  );
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
})();

const NOW = Date.parse('2026-11-30T10:00:00Z');
let unique = 0;
const uid = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++unique}`;
const handlerOf = () =>
  createProfileHandler({
    enricher: createCatalogEnricher(() => catalog),
    reactor: createTriggerReactor(() => catalog),
    settings: { halfLifeDays: 14 },
    now: () => NOW,
  });

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

const getItem = async (table: string, key: Record<string, unknown>) => (await dynamo().send('GetItem', { TableName: table, Key: key, ConsistentRead: true })).Item;

describe('the transactional outbox', () => {
  it('writes each firing once with the profile and its marker, whatever the redelivery', async () => {
    const userId = uid('u');
    const sourceId = uid('src');
    const events = [
      storedEvent({ type: 'identify', userId, sourceId, messageId: 'm1', timestamp: '2026-11-30T09:00:00.000Z', traits: { tier: 'VIP', firstName: 'Ana' } }),
      storedEvent({ type: 'track', event: 'Complaint Opened', userId, sourceId, messageId: 'm2', timestamp: '2026-11-30T09:01:00.000Z' }),
      storedEvent({ type: 'track', event: 'Visit', userId, sourceId, messageId: 'm3', timestamp: '2026-11-30T09:02:00.000Z' }),
    ];
    const records = events.map((e, i) => streamRecord(e, { sequenceNumber: sequenceNumber(i) }));
    const handler = handlerOf();
    expect(await handler(streamEvent(records))).toEqual({ batchItemFailures: [] });
    // Redelivered whole, in parts, and reversed: nothing more.
    expect(await handler(streamEvent(records))).toEqual({ batchItemFailures: [] });
    expect(await handler(streamEvent([records[2]!, records[1]!]))).toEqual({ batchItemFailures: [] });
    expect(await handler(streamEvent([...records].reverse()))).toEqual({ batchItemFailures: [] });

    const ids = [`vip-in.${events[0]!.pk}`, `complaint.${events[1]!.pk}`];
    const stored = await Promise.all(ids.map((id) => getItem(config.OUTBOX_TABLE, outboxItem.key(id))));
    const entries = stored.map((item) => outboxEntryFromItem(item));
    expect(entries.map((e) => [e?.id, e?.status, e?.sendAt, e?.detailType])).toEqual(ids.map((id) => [id, 'now', NOW, 'Kairos Trigger Action']));
    expect(entries[1]?.detail).toMatchObject({ trigger: 'complaint', userId, channel: 'call_center', actionId: 'call', content: { script: 'Hola Ana' } });
    expect(stored[0]?.expiresAt).toBe(NOW / 1000 + OUTBOX_RETENTION_DAYS * 86_400);
    // Exactly these two: no firing for the visit, none twice.
    const mine = (await scanAll()).filter((e) => (e.detail as { userId?: string }).userId === userId);
    expect(mine.map((e) => e.id).sort()).toEqual([...ids].sort());
    // In the same commit as the profile and the markers.
    expect(await getItem(config.PROFILES_TABLE, userProfileItem.key(userId))).toMatchObject({ version: 1 });
    for (const e of events) expect(await getItem(config.PROFILES_TABLE, appliedMarkerItem.key(e.pk))).toBeDefined();
  });

  it('all or nothing: a firing whose item exists fails the whole transaction, and the record is left to the stream', async () => {
    const userId = uid('u');
    const sourceId = uid('src');
    const event = storedEvent({ type: 'track', event: 'Complaint Opened', userId, sourceId, messageId: 'm1', timestamp: '2026-11-30T09:00:00.000Z' });
    // An item under the firing's id already (it cannot happen without the marker; made by hand here).
    const taken = outboxPuts([{ id: `complaint.${event.pk}`, status: 'refused', sendAt: NOW, detailType: 'x', detail: { userId: 'someone-else' } }], 'u#someone-else', 0, NOW)[0]!;
    await dynamo().send('PutItem', 'Put' in taken ? { TableName: taken.Put.TableName, Item: taken.Put.Item } : ({} as never));
    const handler = createProfileHandler({
      enricher: createCatalogEnricher(() => catalog),
      reactor: createTriggerReactor(() => catalog),
      settings: { halfLifeDays: 14 },
      now: () => NOW,
      maxAttempts: 2,
    });
    const record = streamRecord(event, { sequenceNumber: sequenceNumber(1) });
    expect(await handler(streamEvent([record]))).toEqual({ batchItemFailures: [{ itemIdentifier: record.dynamodb!.SequenceNumber }] });
    expect(await getItem(config.PROFILES_TABLE, userProfileItem.key(userId))).toBeUndefined();
    expect(await getItem(config.PROFILES_TABLE, appliedMarkerItem.key(event.pk))).toBeUndefined();
    expect(outboxEntryFromItem(await getItem(config.OUTBOX_TABLE, outboxItem.key(`complaint.${event.pk}`)))?.detail).toEqual({ userId: 'someone-else' });
  });
});

describe('a send counts toward caps when decided', () => {
  const capped: CompiledCatalog = (() => {
    const result = loadCatalog(
      `
kind: kairos/v1
actions:
  - { id: nudge, name: Nudge, content: { push: { title: T, body: B, deepLink: 'app://x' } } }
policies: { consentRequired: [], channelCaps: [{ channel: push, max: 1, per: 1d }] }
triggers:
  - { id: cart, on: { event: Cart Abandoned }, decide: { channel: push } }
  - { id: browse, on: { event: Product Viewed }, decide: { channel: push } }
`,
      'yaml',
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    return result.catalog;
  })();

  it('two triggers in two batches under a cap of 1 push a day: one send, one refusal; its impression adds no second contact', async () => {
    const userId = uid('u');
    const sourceId = uid('src');
    const handler = createProfileHandler({
      enricher: createCatalogEnricher(() => capped),
      reactor: createTriggerReactor(() => capped),
      settings: { halfLifeDays: 14 },
      now: () => NOW,
    });
    const track = (messageId: string, event: string, properties: Record<string, unknown> = {}) =>
      storedEvent({ type: 'track', event, userId, sourceId, messageId, timestamp: '2026-11-30T09:00:00.000Z', properties });
    const cart = track('m1', 'Cart Abandoned');
    const browse = track('m2', 'Product Viewed');
    expect(await handler(streamEvent([streamRecord(cart, { sequenceNumber: sequenceNumber(1) })]))).toEqual({ batchItemFailures: [] });
    expect(await handler(streamEvent([streamRecord(browse, { sequenceNumber: sequenceNumber(2) })]))).toEqual({ batchItemFailures: [] });
    const [sent, refused] = await Promise.all(
      [`cart.${cart.pk}`, `browse.${browse.pk}`].map(async (id) => outboxEntryFromItem(await getItem(config.OUTBOX_TABLE, outboxItem.key(id)))),
    );
    expect(sent?.status).toBe('now');
    expect(refused).toMatchObject({ status: 'refused', detail: { refused: 'channel_cap', refusedBy: capped.policies.channelCapsByChannel.push?.[0]?.id } });
    const contacts = async () => {
      const state = parseProfileState((await getItem(config.PROFILES_TABLE, userProfileItem.key(userId)))?.state as string);
      return { contacts: state.channels.push?.contacts, delivered: state.channels.push?.delivered ?? 0 };
    };
    const second = Math.floor(NOW / 1000) * 1000;
    expect(await contacts()).toEqual({ contacts: [second], delivered: 0 });
    // The sender reports the impression (twice): it counts as delivered once, and is no second contact.
    const impression = (messageId: string) =>
      track(messageId, 'Push Notification Received', { decision_id: sent?.detail.decisionId, action_id: sent?.detail.actionId });
    const reports = [impression('m3'), impression('m4')].map((e, i) => streamRecord({ ...e, timestamp: '2026-11-30T10:01:00.000Z' }, { sequenceNumber: sequenceNumber(3 + i) }));
    expect(await handler(streamEvent(reports))).toEqual({ batchItemFailures: [] });
    expect(await contacts()).toEqual({ contacts: [second], delivered: 1 });
  });
});

async function scanAll() {
  const out = [];
  let cursor: string | undefined;
  do {
    const page = await listOutbox({ limit: 1000, ...(cursor ? { cursor } : {}) });
    out.push(...page.entries);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

describe("GET /v1/admin/outbox's pages", () => {
  it('hold what fits in one Lambda answer, and together every emission once, however large their rendered content', async () => {
    const { listOutboxRoute } = await import('#functions/admin/outbox.ts');
    const { RESPONSE_BODY_BUDGET_BYTES, bodyPayloadBytes } = await import('#http/response-size.ts');
    // Content a trigger may render from an event (a control character is 1 byte stored, 7 in a Lambda answer):
    // 40 emissions of 45,000 of them are 12.6 MB of answer; a Scan page (1 MB read) holds some 22, 6.9 MB.
    const ids = Array.from({ length: 40 }, () => uid('big-emission'));
    for (const id of ids) {
      const put = outboxPuts([{ id, status: 'now', sendAt: NOW, detailType: 'Kairos Trigger Action', detail: { content: { title: '\u0001'.repeat(45_000) } } }], 'u#large', 0, NOW)[0]!;
      await dynamo().send('PutItem', 'Put' in put ? { TableName: put.Put.TableName, Item: put.Put.Item } : ({} as never));
    }
    const seen: string[] = [];
    let next: string | undefined;
    let pages = 0;
    do {
      const query: Record<string, string> = { limit: '1000', ...(next !== undefined ? { cursor: next } : {}) };
      const answer = await listOutboxRoute({ query } as unknown as Parameters<typeof listOutboxRoute>[0]);
      const body = answer.body as { emissions: { id: string }[]; next?: string };
      expect(bodyPayloadBytes(body)).toBeLessThanOrEqual(RESPONSE_BODY_BUDGET_BYTES);
      seen.push(...body.emissions.map((e) => e.id));
      next = body.next;
      pages++;
    } while (next !== undefined && pages < 100);
    expect(ids.filter((id) => !seen.includes(id))).toEqual([]);
    expect(new Set(seen).size).toBe(seen.length);
  }, 120_000);
});
