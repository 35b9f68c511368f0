/**
 * The profile function while its live catalog cannot be read (the Control
 * table unreachable from a cold start: here a table that does not exist
 * yet), through the real handler and catalog store on DynamoDB Local. A
 * customer's events still flow (segments are derived data), but a timer —
 * a deferred send's, a journey's wait — has no other effect than what the
 * catalog makes of it: applied now it would be consumed for good (its
 * marker written) with nothing sent and no run moved on. It is held back
 * (reported failed, so the stream delivers it again) until the catalog is
 * read, then decided.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
  process.env.CONTROL_TABLE = `catalog-unknown-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { journeyTimerEvent, sendTimerEvent } from '#domain/journeys/timer.ts';
import { userProfileKey } from '#domain/stored-event.ts';
import { processStreamEvent } from '#functions/profile/handler.ts';
import { createTableInput } from '#local/tables.ts';
import { config } from '#shared/config.ts';
import { publishCatalog } from '#store/catalog.ts';
import { dynamo } from '#store/client.ts';
import { appliedMarkerItem, outboxItem } from '#store/items.ts';
import { outboxEntryFromItem } from '#store/outbox.ts';
import { controlTable } from '#store/tables.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const T = Date.parse('2026-04-02T21:00:00Z');
const DUE = Date.parse('2026-04-03T08:00:00Z');
const userId = `catalog-unknown-${Date.now().toString(36)}`;
const profileKey = userProfileKey(userId);
const send = `cart-mail.src-test#cart-${userId}`;

const CATALOG = `
actions:
  - { id: mail, name: Mail, content: { email: { templateId: t, subject: Your cart } } }
policies: { consentRequired: [] }
triggers:
  - { id: cart-mail, on: { event: Cart Abandoned }, decide: { channel: email } }
`;

const sendTimer = sendTimerEvent(
  {
    send,
    channel: 'email',
    origin: { kind: 'trigger', trigger: 'cart-mail', cause: { kind: 'event', event: 'Cart Abandoned' }, eventId: `cart-${userId}` },
    context: { event: 'Cart Abandoned', type: 'track', messageId: `cart-${userId}`, timestamp: new Date(T).toISOString(), properties: {}, traits: {} },
    profileKey,
    dueAt: DUE,
  },
  DUE,
  Math.floor(Date.now() / 1000) + 86_400,
);
const journeyTimer = journeyTimerEvent({ journey: 'win-back', run: 1, step: 'wait', profileKey, dueAt: DUE }, DUE, Math.floor(Date.now() / 1000) + 86_400);

async function applied(eventPk: string): Promise<boolean> {
  const found = await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: appliedMarkerItem.key(eventPk), ConsistentRead: true });
  return found.Item !== undefined;
}

async function outboxEntry(id: string) {
  const found = await dynamo().send('GetItem', { TableName: config.OUTBOX_TABLE, Key: outboxItem.key(id), ConsistentRead: true });
  return outboxEntryFromItem(found.Item);
}

describe('timers while the live catalog cannot be read', () => {
  it('a due send and a journey wait are held back (delivered again), not consumed; once the catalog is read the send is decided', async () => {
    // The customer's profile, applied while the catalog cannot be read: their events flow.
    const identify = storedEvent({ type: 'identify', userId, messageId: `identify-${userId}`, timestamp: new Date(T).toISOString(), traits: { email: 'ana@example.com' } });
    expect(await processStreamEvent(streamEvent([streamRecord(identify, { sequenceNumber: sequenceNumber(1) })]))).toEqual({ batchItemFailures: [] });
    expect(await applied(identify.pk)).toBe(true);

    const records = [streamRecord(sendTimer, { sequenceNumber: sequenceNumber(2) }), streamRecord(journeyTimer, { sequenceNumber: sequenceNumber(3) })];
    expect(await processStreamEvent(streamEvent(records))).toEqual({ batchItemFailures: [{ itemIdentifier: sequenceNumber(2) }, { itemIdentifier: sequenceNumber(3) }] });
    expect(await applied(sendTimer.pk)).toBe(false);
    expect(await applied(journeyTimer.pk)).toBe(false);
    expect(await outboxEntry(send)).toBeUndefined();

    // The Control table back, with the catalog: the redelivered timer is decided.
    const client = new DynamoDBClient({ endpoint: process.env.DYNAMODB_ENDPOINT, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    await client.send(new CreateTableCommand(createTableInput(controlTable, config.CONTROL_TABLE)));
    client.destroy();
    expect(await publishCatalog(CATALOG, 'yaml')).toMatchObject({ ok: true });
    expect(await processStreamEvent(streamEvent([streamRecord(sendTimer, { sequenceNumber: sequenceNumber(4) })]))).toEqual({ batchItemFailures: [] });
    expect(await applied(sendTimer.pk)).toBe(true);
    expect(await outboxEntry(send)).toMatchObject({ status: 'now', detail: { trigger: 'cart-mail', actionId: 'mail', userId } });
  }, 60_000);
});
