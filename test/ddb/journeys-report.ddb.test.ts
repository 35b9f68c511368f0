/**
 * GET /v1/admin/reports/journeys on DynamoDB Local, through the admin
 * handler: journey counters written as the profile function writes them
 * (journeyCountUpdates in a TransactWriteItems, several shards) come back
 * summed per journey and day over the range, every step of the live
 * catalog's journeys listed; the query is validated (400 with the parameter
 * in details), a journey the live catalog does not have is a 404 naming
 * it and the catalog's, and the route is an operator's only.
 *
 * Its own Control table, so its catalog never reaches other files' decisions.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
  process.env.KAIROS_ADMIN_TOKEN = 'journeys-admin-token-0123456789abcdef';
  process.env.CONTROL_TABLE = `journeys-report-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { handler } from '#functions/admin/handler.ts';
import { createTableInput } from '#local/tables.ts';
import { config } from '#shared/config.ts';
import { dayNumber, type JourneyCounterIncrement } from '#domain/journeys/report.ts';
import { dynamo } from '#store/client.ts';
import { journeyCountUpdates } from '#store/journey-counts.ts';
import { controlTable } from '#store/tables.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';

const ADMIN = { authorization: `Bearer ${process.env.KAIROS_ADMIN_TOKEN}` };

type Json = Record<string, unknown> & { error?: { code: string; details?: { path: string; message: string }[] } };

async function call(path: string, headers: Record<string, string> = ADMIN, method = 'GET', body?: string) {
  const event = apiGatewayEvent({ method, path, headers, ...(body === undefined ? {} : { body }) });
  const res = (await handler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode ?? 0, body: (res.body ? JSON.parse(res.body) : undefined) as Json };
}

const D1 = dayNumber('2026-10-01');
const count = (journey: string, day: number, milestone: string, n = 1): JourneyCounterIncrement => ({ journey, day, milestone, n });

/** Counted milestones, as shard → the increments of one transaction. */
const written: Record<number, JourneyCounterIncrement[]> = {
  0: [count('retention', D1, 'entered', 3), count('retention', D1, 'step:email', 3), count('retention', D1, 'step:wait', 2), count('retention', D1, 'exited')],
  5: [
    count('retention', D1, 'entered'),
    count('retention', D1, 'step:email'),
    // The same counter twice in one write: summed into one update.
    count('retention', D1 + 1, 'step:push'),
    count('retention', D1 + 1, 'step:push'),
    count('retention', D1 + 1, 'completed', 2),
    count('retention', D1 + 2, 'entered', 100), // outside the range asked below
    count('gone', D1, 'entered', 7), // a journey the catalog no longer has
    count('retention', D1, 'step:removed', 4), // a step it no longer has
  ],
};

beforeAll(async () => {
  const client = new DynamoDBClient({
    endpoint: process.env.DYNAMODB_ENDPOINT,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  await client.send(new CreateTableCommand(createTableInput(controlTable, config.CONTROL_TABLE)));
  client.destroy();
  const catalog = {
    segments: [{ id: 'churn-high', rule: 'profile.stats.orders == 0.0' }],
    actions: [
      { id: 'mail', name: 'Mail', content: { email: { templateId: 't', subject: 'S' } } },
      { id: 'nudge', name: 'Nudge', content: { push: { title: 'T', body: 'B', deepLink: 'app://x' } } },
    ],
    journeys: [
      {
        id: 'retention',
        name: 'Retention',
        entry: { entered: 'churn-high' },
        steps: [
          { id: 'email', act: { channel: 'email' } },
          { id: 'wait', wait: '2d' },
          { id: 'push', act: { channel: 'push' } },
        ],
      },
      { id: 'welcome', entry: { event: 'Signed Up' }, steps: [{ id: 'hello', act: { channel: 'email' } }] },
    ],
  };
  const published = await call('/v1/admin/catalog', ADMIN, 'PUT', JSON.stringify(catalog));
  if (published.status !== 200) throw new Error(`publishing the catalog answered ${published.status}: ${JSON.stringify(published.body)}`);
  for (const [shard, increments] of Object.entries(written)) {
    await dynamo().send('TransactWriteItems', { TransactItems: journeyCountUpdates(increments, Number(shard)) });
  }
  // A second profile's transaction on shard 0: the counts add up.
  await dynamo().send('TransactWriteItems', { TransactItems: journeyCountUpdates([count('retention', D1, 'entered')], 0) });
}, 60_000);

describe('GET /v1/admin/reports/journeys', () => {
  it('sums each counter over shards, per day of the range, every step of the catalog listed', async () => {
    const res = await call('/v1/admin/reports/journeys?from=2026-10-01&to=2026-10-02');
    expect(res.status).toBe(200);
    const steps = (email: number, wait: number, push: number) => ({ email, wait, push });
    expect(res.body).toEqual({
      from: '2026-10-01',
      to: '2026-10-02',
      journeys: [
        {
          id: 'retention',
          name: 'Retention',
          totals: { entered: 5, steps: steps(4, 2, 2), completed: 2, exited: 1 },
          days: [
            { day: '2026-10-01', entered: 5, steps: steps(4, 2, 0), completed: 0, exited: 1 },
            { day: '2026-10-02', entered: 0, steps: steps(0, 0, 2), completed: 2, exited: 0 },
          ],
        },
        { id: 'welcome', totals: { entered: 0, steps: { hello: 0 }, completed: 0, exited: 0 }, days: [] },
      ],
    });
  });

  it('one journey; by default the 7 days ending today', async () => {
    const one = await call('/v1/admin/reports/journeys?from=2026-10-01&to=2026-10-03&journey=retention');
    expect((one.body.journeys as { id: string; totals: { entered: number } }[]).map((j) => [j.id, j.totals.entered])).toEqual([['retention', 105]]);
    const recent = await call('/v1/admin/reports/journeys');
    expect(recent.status).toBe(200);
    const today = new Date().toISOString().slice(0, 10);
    expect(recent.body).toMatchObject({ from: new Date(Date.now() - 6 * 86_400_000).toISOString().slice(0, 10), to: today });
  });

  it('a journey the live catalog does not have (a typo, or one since removed) is a 404 naming it and the catalog\'s journeys, not an empty report', async () => {
    const message = 'no journey "retension" in the live catalog; its journeys: "retention", "welcome"';
    const typo = await call('/v1/admin/reports/journeys?from=2026-10-01&to=2026-10-02&journey=retension');
    expect([typo.status, typo.body.error]).toEqual([
      404,
      { code: 'not_found', message: `The report request names ${message}`, details: [{ path: 'journey', message }] },
    ]);
    // Counted once, since removed from the catalog: not reported, so not found either.
    const gone = await call('/v1/admin/reports/journeys?from=2026-10-01&to=2026-10-02&journey=gone');
    expect([gone.status, gone.body.error?.code]).toEqual([404, 'not_found']);
  });

  it('refuses a malformed query with the parameter in details', async () => {
    const cases: [string, string][] = [
      ['from=2026-13-01', 'from'],
      ['to=yesterday', 'to'],
      ['from=2026-10-02&to=2026-10-01', 'from'],
      ['from=2020-01-01&to=2026-10-01', 'from'],
      ['journey=', 'journey'],
      ['channel=email', 'channel'],
    ];
    for (const [query, path] of cases) {
      const res = await call(`/v1/admin/reports/journeys?${query}`);
      expect([query, res.status, res.body.error?.code, res.body.error?.details?.[0]?.path]).toEqual([query, 400, 'validation_failed', path]);
    }
  });

  it('is for operators only', async () => {
    const res = await call('/v1/admin/reports/journeys', { authorization: 'Bearer wrong-token-0123456789abcdef0123' });
    expect(res.status).toBe(401);
  });
});
