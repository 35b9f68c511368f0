/**
 * A wait's timer whose steps cannot be applied, through the real profile
 * function against DynamoDB Local: the push after the wait writes more
 * than one event's reactions may (MAX_REACTION_BYTES_PER_EVENT; the failure
 * injected by padding the push's entry, as content rendered too large
 * would), or throws. The timer is spent with its event, so the run must not
 * stay at the wait: it ends `exited` with its reason in the profile item
 * and in GET /v1/admin/profiles/{userId}, counted `exited` in the journey
 * report's counters, with a warning in the function's log; the timer fired
 * again changes nothing.
 *
 * Every run uses a journey id of its own, so the counters it reads are its
 * own in the shared Control table.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { EXIT_REASONS, journeyEffectId } from '#domain/journeys/machine.ts';
import { createJourneyStepper } from '#domain/journeys/react.ts';
import { timerEventOfDetail } from '#domain/journeys/timer.ts';
import type { JourneyStepper } from '#domain/profile/reactions.ts';
import { parseProfileState } from '#domain/profile/state.ts';
import { userProfileKey, type StoredEvent } from '#domain/stored-event.ts';
import { MAX_REACTION_BYTES_PER_EVENT } from '#domain/transaction-budget.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'WARN');
const { createProfileHandler } = await import('#functions/profile/handler.ts');
const { handler: adminHandler } = await import('#functions/admin/handler.ts');
const { config } = await import('#shared/config.ts');
const { dynamo } = await import('#store/client.ts');
const { outboxItem } = await import('#store/items.ts');
const { readJourneyCounts } = await import('#store/journey-counts.ts');
const { outboxEntryFromItem } = await import('#store/outbox.ts');

let unique = 0;
const uid = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++unique}`;
// Yesterday 09:00 UTC: the run and its timer on one day, and the outbox items well within their 7-day TTL (DynamoDB
// Local deletes expired items, as DynamoDB does, and did so mid-test with a fixed date months back).
const T = (Math.floor(Date.now() / 86_400_000) - 1) * 86_400_000 + 9 * 3_600_000;
const DUE = T + 1_800_000;
const DAY = Math.floor(T / 86_400_000);

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

/** What the logger wrote (warnings go to stderr). */
let lines: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
});
function captureLogs(): void {
  lines = [];
  const capture = (chunk: string | Uint8Array): boolean => {
    lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
}

function catalogWith(journey: string): CompiledCatalog {
  const result = loadCatalog(
    `
actions:
  - { id: mail, name: Mail, content: { email: { templateId: t, subject: 'Your cart' } } }
  - { id: nudge, name: Nudge, content: { push: { title: Still there?, body: B, deepLink: 'app://cart' } } }
policies: { consentRequired: [] }
journeys:
  - id: ${journey}
    entry: { event: Cart Abandoned }
    steps:
      - { id: email, act: { channel: email } }
      - { id: wait, wait: 30m }
      - { id: push, act: { channel: push } }
`,
    'yaml',
  );
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
}

/** The catalog's stepper, with the push step failing: its entry past one event's byte budget (`large`), or a throw. */
function failingPush(catalog: CompiledCatalog, failure: 'large' | 'throw'): JourneyStepper {
  const inner = createJourneyStepper(() => catalog);
  return {
    bound: inner.bound,
    step: (runs, change) => {
      const stepped = inner.step(runs, change);
      if (!stepped.outbox.some((e) => e.detail.step === 'push')) return stepped;
      if (failure === 'throw') throw new Error('the push could not be rendered');
      return { ...stepped, outbox: stepped.outbox.map((e) => (e.detail.step === 'push' ? { ...e, detail: { ...e.detail, padding: 'x'.repeat(MAX_REACTION_BYTES_PER_EVENT) } } : e)) };
    },
  };
}

async function runsOf(userId: string) {
  const found = await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: { pk: userProfileKey(userId) }, ConsistentRead: true });
  return parseProfileState(found.Item?.state as string).journeys;
}

async function counts(journey: string): Promise<Record<string, number>> {
  const rows = await readJourneyCounts({ from: DAY, to: DAY });
  const out: Record<string, number> = {};
  for (const row of rows) if (row.journey === journey) out[row.milestone] = (out[row.milestone] ?? 0) + row.n;
  return out;
}

async function adminProfile(userId: string): Promise<{ status: number | undefined; body: { journeys: unknown[] } }> {
  const path = `/v1/admin/profiles/${encodeURIComponent(userId)}`;
  const routeKey = 'GET /v1/admin/profiles/{userId}';
  const event = {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    pathParameters: { userId },
    isBase64Encoded: false,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: `req-${Math.random()}`,
      routeKey,
      stage: '$default',
      time: '',
      timeEpoch: 0,
    },
  } as APIGatewayProxyEventV2;
  const response = (await adminHandler(event, { functionName: 'admin', awsRequestId: 'test' } as Context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: JSON.parse(response.body ?? '{}') };
}

describe("a wait's timer whose steps cannot be applied", () => {
  for (const failure of ['large', 'throw'] as const) {
    it(`${failure === 'large' ? 'past the byte budget' : 'an error while moving on'}: the run ends exited with its reason (item and admin profile), counted exited once, with a warning; fired again, nothing changes`, async () => {
      const journey = uid('jf');
      const userId = uid('u');
      const catalog = catalogWith(journey);
      const process = createProfileHandler({ enricher: createCatalogEnricher(() => catalog), journeys: failingPush(catalog, failure), settings: { halfLifeDays: 14 } });
      const cart: StoredEvent = storedEvent({ type: 'track', event: 'Cart Abandoned', sourceId: uid('src'), messageId: 'cart', userId, timestamp: new Date(T).toISOString() });
      expect(await process(streamEvent([streamRecord(cart, { sequenceNumber: sequenceNumber(1) })]))).toEqual({ batchItemFailures: [] });
      expect(await runsOf(userId)).toMatchObject({ [journey]: { run: 1, step: 'wait', waitingUntil: DUE } });

      const timerId = journeyEffectId({ kind: 'timer', journey, run: 1, enteredAt: T, step: 'wait', profileKey: userProfileKey(userId) });
      const found = await dynamo().send('GetItem', { TableName: config.OUTBOX_TABLE, Key: outboxItem.key(timerId), ConsistentRead: true });
      const fired = timerEventOfDetail(outboxEntryFromItem(found.Item)!.detail, DUE, Math.floor(Date.now() / 1000) + 86_400)!;
      await dynamo().send('PutItem', { TableName: config.EVENTS_TABLE, Item: fired });

      captureLogs();
      expect(await process(streamEvent([streamRecord(fired, { sequenceNumber: sequenceNumber(2) })]))).toEqual({ batchItemFailures: [] });
      vi.restoreAllMocks();
      const logged = lines.join('');
      expect(logged).toContain(`the run of journey ${journey} its timer would have moved on exited`);
      expect(logged).toContain('"level":"WARN"');
      expect(logged).not.toContain(userId);

      const run = (await runsOf(userId))[journey]!;
      expect(run.step).toBeUndefined();
      expect(run.waitingUntil).toBeUndefined();
      expect(run.ended).toMatchObject({ how: 'exited', at: DUE });
      const cause = failure === 'throw' ? 'the push could not be rendered' : `their 1 emissions (${run.ended?.reason?.match(/\((\d+) bytes\)/)?.[1]} bytes) pass what is left`;
      expect(run.ended?.reason).toContain(EXIT_REASONS.stepFailed('wait', cause));
      expect(await counts(journey)).toEqual({ entered: 1, 'step:email': 1, 'step:wait': 1, exited: 1 });
      // The push was not written.
      const push = journeyEffectId({ kind: 'act', journey, run: 1, enteredAt: T, step: 'push', profileKey: userProfileKey(userId) });
      expect((await dynamo().send('GetItem', { TableName: config.OUTBOX_TABLE, Key: outboxItem.key(push), ConsistentRead: true })).Item).toBeUndefined();

      const { status, body } = await adminProfile(userId);
      expect(status).toBe(200);
      expect(body.journeys).toEqual([
        {
          journey,
          run: 1,
          enteredAt: new Date(T).toISOString(),
          stepAt: new Date(DUE).toISOString(),
          ended: { how: 'exited', at: new Date(DUE).toISOString(), reason: run.ended?.reason },
        },
      ]);

      // The timer fired again (the stream redelivers it, or the scheduler fires twice): nothing changes.
      expect(await process(streamEvent([streamRecord(fired, { sequenceNumber: sequenceNumber(3) })]))).toEqual({ batchItemFailures: [] });
      expect((await runsOf(userId))[journey]).toEqual(run);
      expect(await counts(journey)).toEqual({ entered: 1, 'step:email': 1, 'step:wait': 1, exited: 1 });
    });
  }
});
