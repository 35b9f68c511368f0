/**
 * How the erasure reads the customer's emissions, on DynamoDB Local through
 * the real erasure (shared/store/erasure.ts) and a client of the store's own
 * that counts its requests: the stamps that tell the erased customer's
 * emissions from the returning customer's (`keyErasedAt`) are read with one
 * consistent BatchGetItem per share of 25, never one GetItem per emission;
 * the erased customer's are deleted, the pending ones' schedules cancelled
 * first, and the returning customer's left. A call that starts past its
 * deadline still erases one share (before, with no events left, such a call
 * stopped before the first emission, and so did every call after it).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { OutboxEntry } from '#domain/profile/reactions.ts';
import { emptyProfileState } from '#domain/profile/state.ts';
import { userProfileKey } from '#domain/stored-event.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { config } from '#shared/config.ts';
import { DynamoClient, dynamo } from '#store/client.ts';
import { eraseProfileKeys } from '#store/erasure.ts';
import { outboxKeysOf, outboxPuts } from '#store/outbox.ts';
import { profileToItem } from '#store/profiles.ts';

const run = Date.now().toString(36);

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

const entry = (id: string, sendAt: number): OutboxEntry => ({ id, status: sendAt > Date.now() ? 'deferred' : 'now', sendAt, detailType: 'kairos.test', detail: { n: id } });

describe('the erasure reads the emissions it may delete in batches', () => {
  it('one consistent BatchGetItem per 25 emissions, no GetItem: the erased customer\'s deleted (pending ones cancelled first), the returning customer\'s left', async () => {
    const userId = `emissions-${run}`;
    const key = userProfileKey(userId);
    const now = Date.now();
    await dynamo().send('PutItem', { TableName: config.PROFILES_TABLE, Item: profileToItem(key, { ...emptyProfileState({ userId }), updatedAt: now - 60_000 }, 2) });
    // 40 of the erased customer (10 still pending), 20 of the customer back after the erasure (stamped with it).
    const erasedAt = now + 1_000;
    const sent = Array.from({ length: 30 }, (_, i) => entry(`${userId}.sent.${i}`, now - 60_000));
    const pending = Array.from({ length: 10 }, (_, i) => entry(`${userId}.pending.${i}`, now + 3_600_000));
    const returning = Array.from({ length: 20 }, (_, i) => entry(`${userId}.back.${i}`, now + 3_600_000));
    const puts = [...outboxPuts([...sent, ...pending], key, 0, now - 60_000), ...outboxPuts(returning, key, erasedAt, erasedAt + 500)];
    for (const put of puts) if ('Put' in put) await dynamo().send('PutItem', { TableName: put.Put.TableName, Item: put.Put.Item });
    expect(await outboxKeysOf(key)).toHaveLength(60);

    const client = new DynamoClient();
    const cancelled: string[] = [];
    const report = await eraseProfileKeys([key], erasedAt, { client, cancelSchedule: async (id) => void cancelled.push(id) });
    expect(report).toMatchObject({ complete: true, emissions: 40, cancelled: 10 });
    expect(cancelled.sort()).toEqual(pending.map((e) => e.id).sort());
    expect((await outboxKeysOf(key)).map((k) => k.id).sort()).toEqual(returning.map((e) => e.id).sort());
    expect(client.counts.get(`GetItem ${config.OUTBOX_TABLE}`) ?? 0).toBe(0);
    expect(client.counts.get(`BatchGetItem ${config.OUTBOX_TABLE}`)).toBe(Math.ceil(60 / 25));
  });

  it('calls that each start past their deadline erase a share of 25 emissions each, and get to the end', async () => {
    const userId = `emissions-late-${run}`;
    const key = userProfileKey(userId);
    const now = Date.now();
    await dynamo().send('PutItem', { TableName: config.PROFILES_TABLE, Item: profileToItem(key, { ...emptyProfileState({ userId }), updatedAt: now - 60_000 }, 2) });
    const sent = Array.from({ length: 30 }, (_, i) => entry(`${userId}.sent.${i}`, now - 60_000));
    for (const put of outboxPuts(sent, key, 0, now - 60_000)) if ('Put' in put) await dynamo().send('PutItem', { TableName: put.Put.TableName, Item: put.Put.Item });
    const erasedAt = now + 1_000;
    const late = () => eraseProfileKeys([key], erasedAt, { cancelSchedule: async () => undefined, deadline: Date.now() - 1 });
    expect(await late()).toMatchObject({ complete: false, emissions: 25 });
    expect(await outboxKeysOf(key)).toHaveLength(5);
    expect(await late()).toMatchObject({ complete: true, resumed: true, emissions: 5 });
    expect(await outboxKeysOf(key)).toHaveLength(0);
    expect((await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: { pk: key }, ConsistentRead: true })).Item).toBeUndefined();
  });
  it("calls that each start past their deadline get to the end when the returning customer's emissions come first (a share that keeps them all is no progress)", async () => {
    const userId = `emissions-kept-first-${run}`;
    const key = userProfileKey(userId);
    const now = Date.now();
    await dynamo().send('PutItem', { TableName: config.PROFILES_TABLE, Item: profileToItem(key, { ...emptyProfileState({ userId }), updatedAt: now - 60_000 }, 2) });
    const erasedAt = now + 1_000;
    // The erased customer's journey sends, days ahead; the returning customer's, stamped with the erasure, due
    // sooner: the listing (by send time) gives these 25 first, a whole share of emissions to keep.
    const pending = Array.from({ length: 5 }, (_, i) => entry(`${userId}.pending.${i}`, now + 7 * 86_400_000));
    const returning = Array.from({ length: 25 }, (_, i) => entry(`${userId}.back.${i}`, erasedAt + 2_000));
    const puts = [...outboxPuts(pending, key, 0, now - 60_000), ...outboxPuts(returning, key, erasedAt, erasedAt + 500)];
    for (const put of puts) if ('Put' in put) await dynamo().send('PutItem', { TableName: put.Put.TableName, Item: put.Put.Item });
    const cancelled: string[] = [];
    const late = () => eraseProfileKeys([key], erasedAt, { cancelSchedule: async (id) => void cancelled.push(id), deadline: Date.now() - 1 });
    const reports = [];
    for (let call = 0; call < 4 && reports.at(-1)?.complete !== true; call++) reports.push(await late());
    expect(reports.at(-1)).toMatchObject({ complete: true });
    expect(reports.reduce((sum, r) => sum + r.emissions, 0)).toBe(5);
    expect(cancelled.sort()).toEqual(pending.map((e) => e.id).sort());
    expect((await outboxKeysOf(key)).map((k) => k.id).sort()).toEqual(returning.map((e) => e.id).sort());
  });
});
