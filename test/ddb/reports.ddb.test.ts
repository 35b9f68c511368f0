/**
 * GET /v1/admin/reports/actions (API.md §5) on DynamoDB Local, through the
 * admin handler: outcome statistics written as the profile function writes
 * them (statisticsUpdates in a TransactWriteItems, several shards) come back
 * summed per cell over the range, with the live catalog's experiment split
 * behind the sample-ratio check; the query is validated (400 with the
 * parameter in details) and the route is an operator's only.
 *
 * Its own Control table, so its catalog never reaches other files' decisions.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
  process.env.KAIROS_ADMIN_TOKEN = 'reports-admin-token-0123456789abcdef';
  process.env.CONTROL_TABLE = `reports-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { handler } from '#functions/admin/handler.ts';
import { actionsReportQuerySchema, actionsReportRoute } from '#functions/admin/reports.ts';
import { ApiError } from '#http/errors.ts';
import type { HttpRequest } from '#http/handler-adapter.ts';
import { RESPONSE_BODY_BUDGET_BYTES, bodyPayloadBytes } from '#http/response-size.ts';
import { createTableInput } from '#local/tables.ts';
import { config } from '#shared/config.ts';
import { STATISTICS_BUCKET_MS, type StatisticsCell, type StatisticsIncrement } from '#domain/learning/statistics.ts';
import { wilsonInterval } from '#domain/reports/intervals.ts';
import { dynamo } from '#store/client.ts';
import { statisticsUpdates } from '#store/statistics.ts';
import { controlTable } from '#store/tables.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';

const ADMIN = { authorization: `Bearer ${process.env.KAIROS_ADMIN_TOKEN}` };

type Json = Record<string, unknown> & { error?: { code: string; details?: { path: string; message: string }[] } };

async function call(path: string, headers: Record<string, string> = ADMIN, method = 'GET', body?: string) {
  const event = apiGatewayEvent({ method, path, headers, ...(body === undefined ? {} : { body }) });
  const res = (await handler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode ?? 0, body: (res.body ? JSON.parse(res.body) : undefined) as Json };
}

const HOUR = STATISTICS_BUCKET_MS;
const hourOf = (ms: number) => Math.floor(ms / HOUR) * HOUR;
const NOW_HOUR = hourOf(Date.now());
const DAY1 = Date.parse('2026-10-01T00:00:00Z');

const increment = (cell: Partial<StatisticsCell>, bucket: number, impressions: number, clicks = 0, conversions = 0): StatisticsIncrement => ({
  cell: { actionId: 'hero', context: '-', channel: 'web', placement: 'home', ...cell },
  bucket,
  counts: { impressions, clicks, conversions },
});

const control = { actionId: '', experiment: 'hero-copy', arm: 'control' };
const armA = { variant: 'a', experiment: 'hero-copy', arm: 'a' };
const armB = { variant: 'b', experiment: 'hero-copy', arm: 'b' };

/** Counted outcomes, as shard → the increments of one transaction. */
const written: Record<number, StatisticsIncrement[]> = {
  0: [
    increment(control, DAY1, 60, 0, 3),
    increment(armA, DAY1, 150, 20, 9),
    increment(armA, DAY1 + HOUR, 100, 10, 4),
    increment(armB, DAY1, 240, 30, 12),
    increment({ actionId: 'other', channel: 'app' }, DAY1, 40, 8, 0),
  ],
  7: [
    increment(control, DAY1 + 2 * HOUR, 40, 0, 2),
    increment(armA, DAY1, 50, 5, 1),
    increment(armB, DAY1 + 23 * HOUR, 160, 10, 8),
    increment(armB, DAY1 + 24 * HOUR, 1_000, 1_000, 1_000), // the next day: outside the range asked below
  ],
  11: [increment({ actionId: 'recent' }, NOW_HOUR - HOUR, 30, 3, 0), increment({ actionId: 'old' }, NOW_HOUR - 8 * 24 * HOUR, 30, 3, 0)],
  // An experiment the live catalog no longer has, counted a month before DAY1 (a range of its own).
  12: [increment({ variant: 'a', experiment: 'spring-copy', arm: 'a' }, DAY1 - 30 * 24 * HOUR, 20, 2, 1)],
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
    learning: { reward: 'conversion' },
    actions: [
      { id: 'hero', name: 'Hero', content: { web: { title: 'Hero' } }, variants: [{ id: 'a', content: { web: { title: 'A' } } }, { id: 'b', content: { web: { title: 'B' } } }] },
      { id: 'other', name: 'Other', content: { app: { title: 'Other' } } },
    ],
    // control 0.1; a 0.9 · 1/3 = 0.3; b 0.9 · 2/3 = 0.6.
    experiments: [{ id: 'hero-copy', kind: 'variants', action: 'hero', holdout: 0.1, arms: [{ id: 'a', variant: 'a' }, { id: 'b', variant: 'b', weight: 2 }] }],
  };
  const published = await call('/v1/admin/catalog', ADMIN, 'PUT', JSON.stringify(catalog));
  if (published.status !== 200) throw new Error(`publishing the catalog answered ${published.status}: ${JSON.stringify(published.body)}`);
  for (const [shard, increments] of Object.entries(written)) {
    await dynamo().send('TransactWriteItems', { TransactItems: statisticsUpdates(increments, Number(shard)) });
  }
  // The same outcomes again on shard 0 (a second profile's transaction): the counts add up.
  await dynamo().send('TransactWriteItems', { TransactItems: statisticsUpdates([increment(armA, DAY1, 100, 15, 5)], 0) });
}, 60_000);

type Row = { actionId?: string; arm?: string; variant?: string; channel: string; impressions: number; clicks: number; conversions: number; conversionRate: unknown };
type Arm = { arm: string; impressions: number; conversions: number; expectedShare: number; uplift?: { conversion: { difference: number } } };

describe('GET /v1/admin/reports/actions', () => {
  it('sums each cell over shards and the hours of the range, with its rates, and the experiment arms against control', async () => {
    const res = await call('/v1/admin/reports/actions?from=2026-10-01&to=2026-10-02T00:00:00Z');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ from: '2026-10-01T00:00:00.000Z', to: '2026-10-02T00:00:00.000Z', reward: 'conversion' });
    const rows = res.body.rows as Row[];
    const figures = rows.map((r) => [r.actionId, r.arm, r.channel, r.impressions, r.clicks, r.conversions]);
    expect(figures).toEqual([
      [undefined, 'control', 'web', 100, 0, 5],
      ['hero', 'a', 'web', 400, 50, 19],
      ['hero', 'b', 'web', 400, 40, 20],
      ['other', undefined, 'app', 40, 8, 0],
    ]);
    const { rate, low, high } = wilsonInterval(19, 400);
    expect(rows[1]?.conversionRate).toEqual({ rate, low, high });

    const [experiment] = res.body.experiments as { id: string; arms: Arm[]; sampleRatio: Record<string, unknown> }[];
    expect(experiment?.id).toBe('hero-copy');
    expect(experiment?.arms.map((a) => [a.arm, a.impressions, a.conversions])).toEqual([
      ['control', 100, 5],
      ['a', 400, 19],
      ['b', 400, 20],
    ]);
    expect(experiment?.arms[1]?.uplift?.conversion.difference).toBeCloseTo(19 / 400 - 5 / 100, 12);
    // 100 / 400 / 400 against 0.1 / 0.3 / 0.6 of 900: expected 90 / 270 / 540.
    const chiSquare = 10 ** 2 / 90 + 130 ** 2 / 270 + 140 ** 2 / 540;
    expect(experiment?.sampleRatio).toMatchObject({ observed: [100, 400, 400], degreesOfFreedom: 2, mismatch: true });
    expect(Math.abs((experiment?.sampleRatio.chiSquare as number) - chiSquare)).toBeLessThan(1e-9);
    expect(Math.abs((experiment?.sampleRatio.pValue as number) - Math.exp(-chiSquare / 2))).toBeLessThan(1e-12);
  });

  it('filters by channel, placement and experiment', async () => {
    const range = 'from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z';
    const app = await call(`/v1/admin/reports/actions?${range}&channel=app`);
    expect((app.body.rows as Row[]).map((r) => [r.actionId, r.impressions])).toEqual([['other', 40]]);
    const experiment = await call(`/v1/admin/reports/actions?${range}&experiment=hero-copy&placement=home`);
    expect((experiment.body.rows as Row[]).map((r) => r.arm)).toEqual(['control', 'a', 'b']);
    const elsewhere = await call(`/v1/admin/reports/actions?${range}&placement=sidebar`);
    expect(elsewhere.body.rows).toEqual([]);
  });

  it('an experiment neither the live catalog has nor the range\'s statistics name is a 404 naming the catalog\'s, not an empty report', async () => {
    const range = 'from=2026-10-01T00:00:00Z&to=2026-10-02T00:00:00Z';
    const typo = await call(`/v1/admin/reports/actions?${range}&experiment=hero-cpy`);
    expect(typo.status).toBe(404);
    expect(typo.body.error?.code).toBe('not_found');
    expect(typo.body.error?.details).toEqual([
      { path: 'experiment', message: 'no experiment "hero-cpy" in the live catalog; its experiments: "hero-copy"; nor do the statistics of the range name it' },
    ]);
    // The catalog's experiment is reported with no statistics in the range, zero counts.
    const quiet = await call('/v1/admin/reports/actions?from=2026-09-01&to=2026-09-02&experiment=hero-copy');
    expect(quiet.status).toBe(200);
    expect((quiet.body.experiments as { id: string }[]).map((e) => e.id)).toEqual(['hero-copy']);
    // One since removed from the catalog is reported over a range whose statistics name it, with any channel filter…
    const removedRange = 'from=2026-09-01&to=2026-09-02';
    const removed = await call(`/v1/admin/reports/actions?${removedRange}&experiment=spring-copy&channel=app`);
    expect(removed.status).toBe(200);
    expect(removed.body.rows).toEqual([]);
    const counted = await call(`/v1/admin/reports/actions?${removedRange}&experiment=spring-copy`);
    expect((counted.body.experiments as { id: string; inCatalog: boolean }[]).map((e) => [e.id, e.inCatalog])).toEqual([['spring-copy', false]]);
    // …and is unknown over a range whose statistics do not.
    expect((await call(`/v1/admin/reports/actions?${range}&experiment=spring-copy`)).status).toBe(404);
  });

  it('reads the last 7 days by default', async () => {
    const res = await call('/v1/admin/reports/actions');
    expect(res.status).toBe(200);
    expect((res.body.rows as Row[]).map((r) => r.actionId)).toEqual(['recent']);
    expect(Date.parse(res.body.to as string) - Date.parse(res.body.from as string)).toBe(7 * 24 * HOUR);
  });

  it.each([
    ['from=yesterday', 'from'],
    ['to=2026-13-01', 'to'],
    ['from=2026-10-02&to=2026-10-01', 'from'],
    ['from=2025-01-01&to=2026-10-01', 'from'],
    ['channel=fax', 'channel'],
    ['placement=', 'placement'],
    ['limit=10', 'limit'],
  ])('refuses %s with 400 naming %s', async (query, path) => {
    const res = await call(`/v1/admin/reports/actions?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe('validation_failed');
    expect(res.body.error?.details?.map((d) => d.path)).toContain(path);
  });

  it('reads a +hh:mm offset written unescaped in from/to (it arrives as a space) as the offset, the same as %2B', async () => {
    const escaped = await call('/v1/admin/reports/actions?from=2026-10-01T01:00:00%2B01:00&to=2026-10-02T01:00:00%2B01:00');
    const unescaped = await call('/v1/admin/reports/actions?from=2026-10-01T01:00:00+01:00&to=2026-10-02T01:00:00+01:00');
    expect(escaped.status).toBe(200);
    expect(unescaped).toEqual(escaped);
    expect(unescaped.body).toMatchObject({ from: '2026-10-01T00:00:00.000Z', to: '2026-10-02T00:00:00.000Z' });
    // Anything else with a space is refused, saying how to write the +.
    const res = await call('/v1/admin/reports/actions?from=2026-10-01T01:00:00+1:00');
    expect(res.status).toBe(400);
    expect(res.body.error?.details).toEqual([{ path: 'from', message: expect.stringContaining('write an offset such as +01:00 as %2B01:00') }]);
  });

  it('an instant with a + offset means the same written unescaped (a space) or escaped', () => {
    fc.assert(
      fc.property(
        fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2099-12-31T00:00:00Z'), noInvalidDate: true }),
        fc.integer({ min: 0, max: 14 }),
        fc.constantFrom(0, 30, 45),
        (date, hours, minutes) => {
          const local = date.toISOString().slice(0, 19);
          const offset = `${String(hours).padStart(2, '0')}:${String(minutes).padStart(2, '0')}`;
          const spaced = actionsReportQuerySchema.safeParse({ from: `${local} ${offset}` });
          const plus = actionsReportQuerySchema.safeParse({ from: `${local}+${offset}` });
          expect(spaced.success).toBe(true);
          expect(spaced.data).toEqual(plus.data);
          expect(Date.parse(spaced.data?.from ?? '')).toBe(Date.parse(`${local}Z`) - (hours * 60 + minutes) * 60_000);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('refuses a report larger than one answer holds with 400 naming a filter that narrows it, instead of a 500', async () => {
    const request = (query: Record<string, string>): HttpRequest => ({
      event: apiGatewayEvent({ method: 'GET', path: '/v1/admin/reports/actions' }),
      requestId: 'r',
      method: 'GET',
      routeKey: 'GET /v1/admin/reports/actions',
      path: '/v1/admin/reports/actions',
      headers: {},
      pathParameters: {},
      query,
      rawBody: '',
      body: undefined,
      contentType: '',
    });
    const range = { from: '2026-10-01T00:00:00Z', to: '2026-10-02T00:00:00Z' };
    const whole = await actionsReportRoute(request(range));
    const bytes = bodyPayloadBytes(whole.body);
    expect((await actionsReportRoute(request(range), Date.now(), bytes)).status).toBe(200);
    const refused = await actionsReportRoute(request(range), Date.now(), bytes - 1).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(ApiError);
    expect((refused as ApiError).code).toBe('validation_failed');
    expect((refused as ApiError).details).toEqual([
      { path: 'channel', message: expect.stringContaining('ask for less: a channel, a placement, an experiment, a shorter range') },
    ]);
    // Narrowed by channel, it fits.
    expect((await actionsReportRoute(request({ ...range, channel: 'app' }), Date.now(), bytes - 1)).status).toBe(200);
    // The same bound holds through the handler at Lambda's own limit: this report is far below it.
    expect(bytes).toBeLessThan(RESPONSE_BODY_BUDGET_BYTES);
  });

  it('answers any query string with 200, 400 or (an unknown experiment) 404, never a 5xx', async () => {
    const value = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.date({ min: new Date('1969-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
      fc.constantFrom('2026-10-01', '2026-10-01T00:00:00+02:00', 'web', 'app', 'home', 'hero-copy', '%', '\u0000', '-1', '1e400'),
    );
    const parameter = fc.constantFrom('from', 'to', 'channel', 'placement', 'experiment', 'limit', '__proto__', 'constructor');
    await fc.assert(
      fc.asyncProperty(fc.dictionary(parameter, value, { maxKeys: 4 }), async (query) => {
        const res = await call(`/v1/admin/reports/actions?${new URLSearchParams(query).toString()}`);
        expect([200, 400, 404]).toContain(res.status);
        // A 404 is an unknown experiment's only.
        expect(res.status !== 404 || (query.experiment !== undefined && res.body.error?.details?.[0]?.path === 'experiment')).toBe(true);
        // A 4xx names what is wrong; a 200 has no error.
        expect(res.status >= 400 ? (res.body.error?.details?.length ?? 0) > 0 : res.body.error === undefined).toBe(true);
      }),
      { numRuns: 60 },
    );
  }, 60_000);

  it('is an operator route: no admin credential, 401', async () => {
    const res = await call('/v1/admin/reports/actions', {});
    expect(res.status).toBe(401);
  });
});
