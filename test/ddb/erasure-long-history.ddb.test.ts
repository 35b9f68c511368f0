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
 *
 * The same holds for the erasure's last step: a customer in more journey runs
 * than one transaction ends (runs of journeys of earlier catalog versions add
 * up) has them ended 99 at a time, each call as many as it has time for,
 * instead of running into the function's timeout (a bare 500 from API
 * Gateway).
 */
import { GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { JourneyRuns } from '#domain/journeys/machine.ts';
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
const { readJourneyCounts } = await import('#store/journey-counts.ts');
const { profileToItem } = await import('#store/profiles.ts');
const { emptyProfileState } = await import('#domain/profile/state.ts');

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
      body: { error: { code: 'unavailable', message: expect.stringMatching(/^The erasure is not finished: this call erased 25 events, .* call DELETE again to go on where it stopped$/) } },
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

const DAY_MS = 86_400_000;

/** `count` runs in progress, each waiting in its own journey (`<prefix>-0000`…), entered a day before `at`. */
function runsInProgress(prefix: string, count: number, at: number): JourneyRuns {
  const runs: JourneyRuns = {};
  for (let i = 0; i < count; i++) {
    runs[`${prefix}-${String(i).padStart(4, '0')}`] = { run: 1, step: 'wait', enteredAt: at - DAY_MS, stepAt: at - DAY_MS, waitingUntil: at + 60 * DAY_MS, named: true };
  }
  return runs;
}

/** The exited counts of the journeys named `<prefix>-…` on the day of `at`, by journey. */
async function exitedCounts(prefix: string, at: number): Promise<Record<string, number>> {
  const day = Math.floor(at / DAY_MS);
  const out: Record<string, number> = {};
  for (const row of await readJourneyCounts({ from: day, to: day })) {
    if (row.journey.startsWith(`${prefix}-`) && row.milestone === 'exited') out[row.journey] = (out[row.journey] ?? 0) + row.n;
  }
  return out;
}

describe('DELETE /v1/admin/profiles/{userId}, a customer in more journey runs than one call ends', () => {
  it('ends the runs it has time for, 99 a write, answers 503 with how far it got, and the next calls go on to the same 200 as a short erasure, each run counted once', async () => {
    const RUNS = 250;
    const userId = `many-runs-${run}`;
    const prefix = `j-${run}`;
    const stored = Date.now();
    const state = { ...emptyProfileState({ userId }), journeys: runsInProgress(prefix, RUNS, stored), updatedAt: stored - DAY_MS };
    await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: profileToItem(userProfileKey(userId), state, 3) }));
    const events = Array.from({ length: 3 }, (_, i) =>
      storedEvent({ type: 'track', userId, event: 'Page Scrolled', messageId: `${userId}-${i}`, timestamp: new Date(stored - (3 - i) * 1000).toISOString(), sourceId: `s-${run}` }),
    );
    for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));

    // Each call starts past its deadline: it does one share of work, then stops.
    const short = ERASURE_FINISH_MS - 1_000;
    const path = `/v1/admin/profiles/${userId}`;
    const requestedAt = Date.now();
    const first = await call('DELETE', path, short);
    expect(first).toMatchObject({ status: 503, headers: { 'retry-after': '1' }, body: { error: { code: 'unavailable', message: expect.stringMatching(/this call erased 3 events, 0 emissions and 0 identity links of this customer and ended 0 of its journey runs/) } } });
    const second = await call('DELETE', path, short);
    expect(second).toMatchObject({ status: 503, headers: { 'retry-after': '1' }, body: { error: { message: expect.stringMatching(/erased 0 events, 0 emissions and 0 identity links of this customer and ended 99 of its journey runs, and more remain/) } } });
    // Not erased yet: the customer is still found, its runs ended so far ended.
    const between = await call('GET', path);
    expect(between.status).toBe(200);
    expect(between.body.journeys.filter((j: { step?: string }) => j.step === undefined)).toHaveLength(99);
    // 99 more ended, then the 52 left with the profile's delete, in its transaction.
    const last = await call('DELETE', path, short);
    expect(last).toMatchObject({ status: 200, body: { resumed: true, customer: { userId, anonymousIds: [] } } });
    expect(Object.keys(last.body).sort()).toEqual(['customer', 'erasedAt', 'events', 'resumed']);
    const erasedAt = Date.parse(last.body.erasedAt);
    expect(erasedAt).toBeGreaterThanOrEqual(requestedAt);
    expect(erasedAt).toBeLessThanOrEqual(Date.now());
    expect((await documentClient.send(new GetCommand({ TableName: config.PROFILES_TABLE, Key: { pk: userProfileKey(userId) }, ConsistentRead: true }))).Item).toBeUndefined();
    expect(await storedEvents(userId)).toBe(0);
    expect((await call('GET', path)).status).toBe(404);
    // Every run counted exited once, however the calls shared them.
    const exited = await exitedCounts(prefix, erasedAt);
    expect(Object.keys(exited)).toHaveLength(RUNS);
    expect(Object.values(exited).every((n) => n === 1)).toBe(true);
    // Called again, it counts nothing more (nothing is held: 404).
    expect((await call('DELETE', path, short)).status).toBe(404);
    expect(Object.values(await exitedCounts(prefix, erasedAt)).every((n) => n === 1)).toBe(true);
  });
});
