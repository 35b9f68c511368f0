/**
 * An anonymous visitor and a user both in a run of the same journey, joined
 * by the login that names them both, through the real profile function
 * against DynamoDB Local: the user's run goes on, the visitor's ends
 * `exited` at the login, counted once in the journey report
 * (GET /v1/admin/reports/journeys) and noted, with its reason, on the
 * user's run (GET /v1/admin/profiles/{userId}, `merged`); the visitor's
 * wait timer, fired later, changes nothing; the user's own timer then moves
 * the user's run on, and the report adds up: entered = completed + exited.
 *
 * Its own Control table (the catalog published there, the counters it
 * reads), so nothing of it reaches other files.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
  process.env.KAIROS_ADMIN_TOKEN = 'journey-merge-admin-token-0123456789';
  process.env.CONTROL_TABLE = `journey-merge-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { handler as adminHandler } from '#functions/admin/handler.ts';
import { createProfileHandler } from '#functions/profile/handler.ts';
import { createTableInput } from '#local/tables.ts';
import { config } from '#shared/config.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { EXIT_REASONS, journeyEffectId } from '#domain/journeys/machine.ts';
import { createJourneyStepper } from '#domain/journeys/react.ts';
import { timerEventOfDetail } from '#domain/journeys/timer.ts';
import { anonymousProfileKey, userProfileKey, type StoredEvent } from '#domain/stored-event.ts';
import { dynamo } from '#store/client.ts';
import { outboxItem } from '#store/items.ts';
import { outboxEntryFromItem } from '#store/outbox.ts';
import { controlTable } from '#store/tables.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const ADMIN = { authorization: `Bearer ${process.env.KAIROS_ADMIN_TOKEN}` };
const JOURNEY = 'cart';
const CATALOG = {
  actions: [
    { id: 'mail', name: 'Mail', content: { email: { templateId: 't', subject: 'Your cart' } } },
    { id: 'nudge', name: 'Nudge', content: { push: { title: 'Still there?', body: 'B', deepLink: 'app://cart' } } },
  ],
  policies: { consentRequired: [] },
  journeys: [
    {
      id: JOURNEY,
      entry: { event: 'Cart Abandoned' },
      steps: [
        { id: 'email', act: { channel: 'email' } },
        { id: 'wait', wait: '30m' },
        { id: 'push', act: { channel: 'push' } },
      ],
    },
  ],
};
const catalog = (() => {
  const result = loadCatalog(JSON.stringify(CATALOG), 'yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
})();

// An hour ago, to the minute: an Outbox item is kept 7 days after its send time (its TTL), and DynamoDB Local deletes
// one past it at any moment.
const T = Math.floor(Date.now() / 60_000) * 60_000 - 3_600_000;
const DAY_MS = 86_400_000;
const iso = (at: number) => new Date(at).toISOString();
const WAIT = 30 * 60_000;

async function call(path: string, method = 'GET', body?: string) {
  const event = apiGatewayEvent({ method, path, headers: ADMIN, ...(body === undefined ? {} : { body }) });
  const res = (await adminHandler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode ?? 0, body: (res.body ? JSON.parse(res.body) : undefined) as Record<string, unknown> };
}

beforeAll(async () => {
  const client = new DynamoDBClient({
    endpoint: process.env.DYNAMODB_ENDPOINT,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  await client.send(new CreateTableCommand(createTableInput(controlTable, config.CONTROL_TABLE)));
  client.destroy();
  const published = await call('/v1/admin/catalog', 'PUT', JSON.stringify(CATALOG));
  if (published.status !== 200) throw new Error(`publishing the catalog answered ${published.status}: ${JSON.stringify(published.body)}`);
}, 60_000);

/** The report's totals of the journey over the days of the test. */
async function totals(): Promise<unknown> {
  // The days of the events and timers (after T, within a day).
  const res = await call(`/v1/admin/reports/journeys?from=${iso(T).slice(0, 10)}&to=${iso(T + DAY_MS).slice(0, 10)}&journey=${JOURNEY}`);
  expect(res.status).toBe(200);
  return (res.body.journeys as { totals: unknown }[])[0]?.totals;
}

/** The timer event of the wait of run 1 entered at `enteredAt` by `profileKey`, as the dispatcher writes it when due. */
async function firedTimer(profileKey: string, enteredAt: number): Promise<StoredEvent> {
  const id = journeyEffectId({ kind: 'timer', journey: JOURNEY, run: 1, enteredAt, step: 'wait', profileKey });
  const found = await dynamo().send('GetItem', { TableName: config.OUTBOX_TABLE, Key: outboxItem.key(id), ConsistentRead: true });
  expect(found.Item).toBeDefined();
  const fired = timerEventOfDetail(outboxEntryFromItem(found.Item)!.detail, enteredAt + WAIT, Math.floor(Date.now() / 1000) + 86_400)!;
  await dynamo().send('PutItem', { TableName: config.EVENTS_TABLE, Item: fired });
  return fired;
}

describe('a visitor in a run logs in as a user in a run of the same journey', () => {
  it("the user's run goes on; the visitor's is counted exited once, its reason on the user's run; its timer then changes nothing", async () => {
    const run = Date.now().toString(36);
    const userId = `u-merge-${run}`;
    const anonymousId = `v-merge-${run}`;
    const sourceId = `src-merge-${run}`;
    const process = createProfileHandler({
      enricher: createCatalogEnricher(() => catalog),
      journeys: createJourneyStepper(() => catalog),
      settings: { halfLifeDays: 14 },
    });
    let seq = 0;
    const apply = async (event: StoredEvent) =>
      expect(await process(streamEvent([streamRecord(event, { sequenceNumber: sequenceNumber(++seq) })]))).toEqual({ batchItemFailures: [] });

    await apply(storedEvent({ sourceId, messageId: 'visitor-cart', anonymousId, type: 'track', event: 'Cart Abandoned', timestamp: iso(T) }));
    await apply(storedEvent({ sourceId, messageId: 'user-cart', userId, type: 'track', event: 'Cart Abandoned', timestamp: iso(T + 60_000) }));
    const login = storedEvent({ sourceId, messageId: 'login', userId, anonymousId, type: 'identify', timestamp: iso(T + 120_000) });
    await apply(login);

    const merged = { run: 1, enteredAt: iso(T), ended: { how: 'exited', at: iso(T + 120_000), reason: EXIT_REASONS.merged() } };
    const profile = await call(`/v1/admin/profiles/${userId}`);
    expect(profile.status).toBe(200);
    expect(profile.body.journeys).toEqual([
      { journey: JOURNEY, run: 1, step: 'wait', enteredAt: iso(T + 60_000), stepAt: iso(T + 60_000), waitingUntil: iso(T + 60_000 + WAIT), merged },
    ]);
    const steps = (email: number, wait: number, push: number) => ({ email, wait, push });
    expect(await totals()).toEqual({ entered: 2, steps: steps(2, 2, 0), completed: 0, exited: 1 });

    // The login delivered again (the stream redelivers it): counted once.
    await apply(login);
    expect(await totals()).toEqual({ entered: 2, steps: steps(2, 2, 0), completed: 0, exited: 1 });

    // The visitor's wait timer fires (its schedule was not cancelled): it names a run the customer is no longer in.
    await apply(await firedTimer(anonymousProfileKey(anonymousId), T));
    expect((await call(`/v1/admin/profiles/${userId}`)).body.journeys).toEqual(profile.body.journeys);
    expect(await totals()).toEqual({ entered: 2, steps: steps(2, 2, 0), completed: 0, exited: 1 });
    // Nor did it move the user's run on: its push is not sent.
    const push = journeyEffectId({ kind: 'act', journey: JOURNEY, run: 1, enteredAt: T + 60_000, step: 'push', profileKey: userProfileKey(userId) });
    const pushItem = async () => (await dynamo().send('GetItem', { TableName: config.OUTBOX_TABLE, Key: outboxItem.key(push), ConsistentRead: true })).Item;
    expect(await pushItem()).toBeUndefined();

    // The user's own timer moves the user's run on: every run entered has ended, once.
    await apply(await firedTimer(userProfileKey(userId), T + 60_000));
    expect(await totals()).toEqual({ entered: 2, steps: steps(2, 2, 1), completed: 1, exited: 1 });
    expect(await pushItem()).toBeDefined();
    expect((await call(`/v1/admin/profiles/${userId}`)).body.journeys).toEqual([
      { journey: JOURNEY, run: 1, enteredAt: iso(T + 60_000), stepAt: iso(T + 60_000 + WAIT), ended: { how: 'completed', at: iso(T + 60_000 + WAIT) }, merged },
    ]);
  });
});
