/**
 * Erasing a customer whose history is longer than one invocation of the
 * admin function can erase (anyone with a public key can send thousands of
 * events under any userId), on DynamoDB Local through the admin handler:
 * each DELETE erases the events it has time for, 25 at a time, and answers
 * 503 with Retry-After and how far it got; the next call goes on from there,
 * and the last one deletes the profile and answers 200. Before, each call
 * wrote the erased-message records of the whole history before deleting any
 * event, ran into its function timeout and answered "The store is
 * unavailable" with nothing of the customer erased for good.
 */
import { PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { StoredEvent } from '#domain/stored-event.ts';
import { userProfileKey } from '#domain/stored-event.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const ADMIN_TOKEN = 'admin-token-for-erasure-history-tests';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const { handler } = await import('#functions/admin/handler.ts');
const { processStreamEvent } = await import('#functions/profile/handler.ts');
const { documentClient } = await import('../support/sdk-clients.ts');
const { config } = await import('#shared/config.ts');
const { ERASURE_FINISH_MS } = await import('#functions/admin/profiles.ts');

const run = Date.now().toString(36);
const EVENTS = 60;

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

/** The admin handler in an invocation with `remainingMs` left: less than the erasure keeps for its end, so it erases one share of events per call. */
async function call(method: string, path: string, remainingMs = 60_000) {
  const event = apiGatewayEvent({ method, path, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const started = Date.now();
  const context = lambdaContext({ getRemainingTimeInMillis: () => Math.max(0, remainingMs - (Date.now() - started)) });
  const response = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, headers: response.headers ?? {}, body: response.body ? JSON.parse(response.body) : undefined };
}

/** The customer's events in the Events table (its `byProfile` index). */
async function storedEvents(userId: string): Promise<number> {
  const page = await documentClient.send(
    new QueryCommand({
      TableName: config.EVENTS_TABLE,
      IndexName: 'byProfile',
      KeyConditionExpression: 'profileKey = :key',
      ExpressionAttributeValues: { ':key': userProfileKey(userId) },
      Select: 'COUNT',
    }),
  );
  return page.Count ?? 0;
}

describe('DELETE /v1/admin/profiles/{userId}, a history longer than one invocation erases', () => {
  it('erases what it has time for, answers 503 with Retry-After and how far it got, and the next call goes on until the profile is gone', async () => {
    const userId = `long-history-${run}`;
    const events: StoredEvent[] = Array.from({ length: EVENTS }, (_, i) =>
      storedEvent({ type: 'track', userId, event: 'Page Scrolled', messageId: `${userId}-${i}`, timestamp: new Date(Date.now() - (EVENTS - i) * 1000).toISOString(), sourceId: `s-${run}` }),
    );
    for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
    const applied = await processStreamEvent(streamEvent(events.map((e, i) => streamRecord(e, { sequenceNumber: sequenceNumber(i) }))));
    expect(applied.batchItemFailures).toEqual([]);
    expect(await storedEvents(userId)).toBe(EVENTS);

    // An invocation with less time left than the erasure keeps for its end: one share of 25 events per call.
    const short = ERASURE_FINISH_MS - 1_000;
    const path = `/v1/admin/profiles/${userId}`;
    const first = await call('DELETE', path, short);
    expect(first).toMatchObject({
      status: 503,
      headers: { 'retry-after': '1' },
      body: { error: { code: 'unavailable', message: expect.stringMatching(/^The erasure is not finished: this call erased 25 events .* call DELETE again to go on where it stopped$/) } },
    });
    expect(await storedEvents(userId)).toBe(EVENTS - 25);
    // Not erased yet: the customer is still found, by the next call too.
    expect((await call('GET', path)).status).toBe(200);

    const second = await call('DELETE', path, short);
    expect(second.status).toBe(503);
    expect(await storedEvents(userId)).toBe(EVENTS - 50);

    const last = await call('DELETE', path, short);
    expect(last).toMatchObject({ status: 200, body: { customer: { userId }, events: EVENTS - 50 } });
    expect(await storedEvents(userId)).toBe(0);
    expect((await call('GET', path)).status).toBe(404);
    expect((await call('GET', `${path}/export`)).status).toBe(404);
  });

  it('with time enough, one call erases the whole history', async () => {
    const userId = `short-history-${run}`;
    const events = Array.from({ length: 30 }, (_, i) =>
      storedEvent({ type: 'track', userId, event: 'Page Scrolled', messageId: `${userId}-${i}`, timestamp: new Date(Date.now() - (30 - i) * 1000).toISOString(), sourceId: `s-${run}` }),
    );
    for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
    const applied = await processStreamEvent(streamEvent(events.map((e, i) => streamRecord(e, { sequenceNumber: sequenceNumber(100 + i) }))));
    expect(applied.batchItemFailures).toEqual([]);
    expect(await call('DELETE', `/v1/admin/profiles/${userId}`)).toMatchObject({ status: 200, body: { events: 30 } });
    expect(await storedEvents(userId)).toBe(0);
  });
});
