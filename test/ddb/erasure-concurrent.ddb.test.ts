/**
 * Two erasures of the same customer at once (a double click, a client's
 * retry while the first request still runs), on DynamoDB Local: the second
 * goes on with the first's erasure, both read the same events and emissions
 * and both delete them, but each counts only what its own deletes removed
 * (conditional DeleteItems), so the two answers' counts add up to what there
 * was. Before, each counted every event and emission it had listed, and the
 * two answers said, together, that more was deleted than existed.
 */
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { OutboxEntry } from '#domain/profile/reactions.ts';
import { userProfileKey } from '#domain/stored-event.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';
import { storedEvent } from '../support/stream.ts';

const ADMIN_TOKEN = 'admin-token-for-erasure-concurrent';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const { handler } = await import('#functions/admin/handler.ts');
const { documentClient } = await import('../support/sdk-clients.ts');
const { config } = await import('#shared/config.ts');
const { dynamo } = await import('#store/client.ts');
const { eraseProfileKeys } = await import('#store/erasure.ts');
const { outboxKeysOf, outboxPuts } = await import('#store/outbox.ts');
const { profileToItem } = await import('#store/profiles.ts');
const { emptyProfileState } = await import('#domain/profile/state.ts');

const run = Date.now().toString(36);
const DAY_MS = 86_400_000;

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

async function call(method: string, path: string) {
  const event = apiGatewayEvent({ method, path, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const response = (await handler(event, lambdaContext({ getRemainingTimeInMillis: () => 60_000 }))) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined };
}

async function eventsUnder(profileKey: string): Promise<number> {
  const page = await documentClient.send(
    new QueryCommand({ TableName: config.EVENTS_TABLE, IndexName: 'byProfile', KeyConditionExpression: 'profileKey = :key', ExpressionAttributeValues: { ':key': profileKey }, Select: 'COUNT' }),
  );
  return page.Count ?? 0;
}

/** The customer `userId`: its profile, `events` events and the given emissions, all from before now. */
async function storeCustomer(userId: string, events: number, emissions: readonly OutboxEntry[] = []): Promise<void> {
  const key = userProfileKey(userId);
  const now = Date.now();
  await dynamo().send('PutItem', { TableName: config.PROFILES_TABLE, Item: profileToItem(key, { ...emptyProfileState({ userId }), updatedAt: now - DAY_MS }, 2) });
  for (let i = 0; i < events; i++) {
    const event = storedEvent({ type: 'track', userId, event: 'Page Scrolled', messageId: `${userId}-${i}`, timestamp: new Date(now - 60_000 + i).toISOString(), sourceId: `s-${run}` });
    await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
  }
  for (const put of outboxPuts(emissions, key, 0, now - 60_000)) {
    if ('Put' in put && put.Put) await dynamo().send('PutItem', { TableName: put.Put.TableName, Item: put.Put.Item });
  }
}

const entry = (id: string, sendAt: number): OutboxEntry => ({ id, status: sendAt > Date.now() ? 'deferred' : 'now', sendAt, detailType: 'kairos.test', detail: { n: id } });

describe('two erasures of the same customer at once', () => {
  it('DELETE twice at once: the same erasure, and the two answers\' `events` add up to the events there were', async () => {
    const EVENTS = 200;
    const userId = `concurrent-${run}`;
    await storeCustomer(userId, EVENTS);
    expect(await eventsUnder(userProfileKey(userId))).toBe(EVENTS);

    const path = `/v1/admin/profiles/${userId}`;
    const [a, b] = await Promise.all([call('DELETE', path), call('DELETE', path)]);
    expect(a.status).toBe(200);
    expect(b.status).toBe(200);
    expect(a.body.erasedAt).toBe(b.body.erasedAt);
    expect([a.body.resumed, b.body.resumed].sort()).toEqual([false, true]);
    expect(a.body.events + b.body.events).toBe(EVENTS);
    expect(await eventsUnder(userProfileKey(userId))).toBe(0);
    expect((await call('GET', path)).status).toBe(404);
  });

  it('the store\'s erasure twice at once: events, emissions and cancelled schedules each counted by one of the two', async () => {
    const EVENTS = 100;
    const userId = `concurrent-store-${run}`;
    const key = userProfileKey(userId);
    const now = Date.now();
    const sent = Array.from({ length: 40 }, (_, i) => entry(`${userId}.sent.${i}`, now - 60_000));
    const pending = Array.from({ length: 20 }, (_, i) => entry(`${userId}.pending.${i}`, now + 3_600_000));
    await storeCustomer(userId, EVENTS, [...sent, ...pending]);
    expect(await outboxKeysOf(key)).toHaveLength(60);

    const erase = () => eraseProfileKeys([key], Date.now(), { cancelSchedule: async () => undefined });
    const [a, b] = await Promise.all([erase(), erase()]);
    expect(a.complete && b.complete).toBe(true);
    expect(a.erasedAt).toBe(b.erasedAt);
    expect(a.events + b.events).toBe(EVENTS);
    expect(a.emissions + b.emissions).toBe(sent.length + pending.length);
    expect(a.cancelled + b.cancelled).toBe(pending.length);
    expect(await eventsUnder(key)).toBe(0);
    expect(await outboxKeysOf(key)).toHaveLength(0);
  });
});
