/**
 * The actions report's `decisions` (API.md §5) on DynamoDB Local: decisions
 * made by `decideForLog` and logged as the decide function logs them
 * (decisionRecord → decisionRecordLine), their log chunks counted
 * (statistics.ts `countDecisionLogChunk`), then GET /v1/admin/reports/actions
 * through the admin handler: each row's `decisions` is the number of
 * decisions that served its cell (experiment arms and control groups
 * included), and counting a chunk again changes nothing — whatever the
 * redelivery (a property), and after a delivery that failed half-way. The
 * deployed decision counter's batch handling too, with objects read from a
 * map in place of S3 (which no emulator here provides).
 *
 * Its own Control table, so its catalog never reaches other files' decisions.
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { APIGatewayProxyStructuredResultV2, SQSEvent, SQSRecord } from 'aws-lambda';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
  process.env.KAIROS_ADMIN_TOKEN = 'decision-counts-admin-token-0123456789';
  process.env.CONTROL_TABLE = `decision-counts-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { handler } from '#functions/admin/handler.ts';
import { decisionCounter } from '#functions/decision-counter/handler.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { decideForLog, emptyProfile } from '#domain/decide/decide.ts';
import { decisionReference } from '#domain/decide/decision-id.ts';
import { customerPseudonym, decisionRecord, pseudonymKey } from '#domain/decide/decision-log.ts';
import { DECISION_RECORD_VERSION, decisionRecordLine, type LoggedDecisionRecord } from '#domain/evaluation/decision-record.ts';
import { cellKey, STATISTICS_BUCKET_MS, type StatisticsCell } from '#domain/learning/statistics.ts';
import { LocalDecisionCounter } from '#local/decision-counter.ts';
import { decisionLogFiles, LocalDecisionLog } from '#local/decision-log.ts';
import { createTableInput } from '#local/tables.ts';
import { config } from '#shared/config.ts';
import { dynamo } from '#store/client.ts';
import { statisticsItem, statisticsShardOf } from '#store/items.ts';
import { countDecisionLogChunk, DECISION_COUNT_UPDATES_PER_PART, readStatistics } from '#store/statistics.ts';
import { controlTable } from '#store/tables.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';

const ADMIN = { authorization: `Bearer ${process.env.KAIROS_ADMIN_TOKEN}` };
const HOUR = STATISTICS_BUCKET_MS;
const PSEUDONYMS = pseudonymKey('decision-counts-test-secret-0123456789abcdef');

const CATALOG = {
  learning: { enabled: false },
  actions: [
    { id: 'hero', name: 'Hero', priority: 3, content: { web: { title: 'Hero' } }, variants: [{ id: 'a', content: { web: { title: 'A' } } }, { id: 'b', content: { web: { title: 'B' } } }] },
    { id: 'news', name: 'News', priority: 1, content: { web: { title: 'News' } } },
  ],
  experiments: [{ id: 'hero-copy', kind: 'variants', action: 'hero', holdout: 0.25, arms: [{ id: 'a', variant: 'a' }, { id: 'b', variant: 'b' }] }],
};

async function call(path: string, method = 'GET', body?: string) {
  const event = apiGatewayEvent({ method, path, headers: ADMIN, ...(body === undefined ? {} : { body }) });
  const res = (await handler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode ?? 0, body: (res.body ? JSON.parse(res.body) : undefined) as Record<string, unknown> };
}

type Row = { actionId?: string; variant?: string; experiment?: string; arm?: string; context: string; channel: string; placement?: string; decisions: number; impressions: number };

/** A report row's cell, as a cell key. */
const rowKey = (r: Row): string =>
  cellKey({
    actionId: r.actionId ?? '',
    ...(r.variant !== undefined ? { variant: r.variant } : {}),
    ...(r.experiment !== undefined ? { experiment: r.experiment } : {}),
    ...(r.arm !== undefined ? { arm: r.arm } : {}),
    context: r.context,
    channel: r.channel as StatisticsCell['channel'],
    ...(r.placement !== undefined ? { placement: r.placement } : {}),
  });

async function reportOf(from: number, to: number): Promise<{ rows: Row[]; experiments: { id: string; arms: { arm: string; decisions: number }[] }[] }> {
  const res = await call(`/v1/admin/reports/actions?from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`);
  if (res.status !== 200) throw new Error(`the report answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body as never;
}

/** Decisions of the catalog for `customers` at `at`, as the decide function logs them; and what each served, per cell key (the oracle, from the answers). */
function decisionsAt(customers: readonly string[], at: Date): { lines: string[]; served: Map<string, number> } {
  const loaded = loadCatalog(CATALOG, 'object', { version: 1 });
  if (!loaded.ok) throw new Error('catalog');
  const lines: string[] = [];
  const served = new Map<string, number>();
  const add = (cell: StatisticsCell) => served.set(cellKey(cell), (served.get(cellKey(cell)) ?? 0) + 1);
  customers.forEach((userId, i) => {
    const nonce = `n${i}`;
    const request = { userId, channel: 'web' as const, placement: 'home', limit: 2, context: {}, explain: false };
    const profile = emptyProfile({ userId });
    const { decision, log } = decideForLog(loaded.catalog, profile, request, at, { nonce });
    for (const a of decision.actions) {
      add({ actionId: a.actionId, ...(a.variant ? { variant: a.variant } : {}), ...(a.experiment ? { experiment: a.experiment.id, arm: a.experiment.arm } : {}), context: '-', channel: 'web', placement: 'home' });
    }
    for (const experiment of log.holdouts) add({ actionId: '', experiment, arm: 'control', context: '-', channel: 'web', placement: 'home' });
    const record = decisionRecord({
      catalog: loaded.catalog,
      profile,
      context: {},
      decision,
      facts: log,
      decisionRef: decisionReference({ issuedAt: at, nonce }),
      customer: customerPseudonym(PSEUDONYMS, log.customerKey),
    });
    lines.push(decisionRecordLine(record));
  });
  return { lines, served };
}

/** A logged record that served `actions` at `at` (a synthetic decision: any cells, cheaply). */
const syntheticLine = (at: number, nonce: string, actions: readonly string[]): string => {
  const record: LoggedDecisionRecord = {
    v: DECISION_RECORD_VERSION,
    id: `${Math.floor(at / 1000)}.${nonce}`,
    cv: '1',
    ch: 'web',
    pl: 'home',
    c: 'pseudonym',
    e: [],
    s: actions.map((id) => [id, 1, 1] as const),
  };
  return decisionRecordLine(record);
};

beforeAll(async () => {
  const client = new DynamoDBClient({ endpoint: process.env.DYNAMODB_ENDPOINT, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  await client.send(new CreateTableCommand(createTableInput(controlTable, config.CONTROL_TABLE)));
  client.destroy();
  const published = await call('/v1/admin/catalog', 'PUT', JSON.stringify(CATALOG));
  if (published.status !== 200) throw new Error(`publishing the catalog answered ${published.status}: ${JSON.stringify(published.body)}`);
}, 60_000);

describe('decisions in GET /v1/admin/reports/actions', () => {
  it('decisions made → their log chunks counted → each row’s decisions is what was served in its cell; the same chunk counted again changes nothing', async () => {
    const hour = Date.parse('2026-10-05T10:00:00Z');
    const { lines, served } = decisionsAt(
      Array.from({ length: 80 }, (_, i) => `customer-${i}`),
      new Date(hour + 20 * 60_000),
    );
    // Both experiment arms, the control group and the plain action were served.
    expect([...served.keys()].map((k) => k.split('\u001f')[3])).toEqual(expect.arrayContaining(['a', 'b', 'control', '']));
    const first = `${lines.slice(0, 50).join('\n')}\n`;
    const second = `${lines.slice(50).join('\n')}\n`;
    expect(await countDecisionLogChunk('test://decisions/chunk-1', first)).toMatchObject({ counted: 50, uncounted: 0, malformed: 0, parts: 1, added: 1 });
    expect(await countDecisionLogChunk('test://decisions/chunk-2', second)).toMatchObject({ counted: 30, parts: 1, added: 1 });

    const report = await reportOf(hour, hour + HOUR);
    const decisions = new Map(report.rows.map((r) => [rowKey(r), r.decisions]));
    expect(decisions).toEqual(served);
    const arms = report.experiments.find((e) => e.id === 'hero-copy')?.arms ?? [];
    const byArm = (arm: string) => [...served].filter(([key]) => key.split('\u001f')[3] === arm).reduce((sum, [, n]) => sum + n, 0);
    expect(arms.map((a) => [a.arm, a.decisions])).toEqual([
      ['control', byArm('control')],
      ['a', byArm('a')],
      ['b', byArm('b')],
    ]);

    // Delivered again (Firehose, S3 events and SQS are at least once): nothing is added.
    expect(await countDecisionLogChunk('test://decisions/chunk-1', first)).toMatchObject({ counted: 50, parts: 1, added: 0 });
    expect(await reportOf(hour, hour + HOUR)).toEqual(report);
    // The range's next hour has none of them.
    expect((await reportOf(hour + HOUR, hour + 2 * HOUR)).rows).toEqual([]);
  });

  it('a chunk of more cells than one transaction holds is counted in parts; a delivery that failed half-way adds only its missing parts the next time', async () => {
    const hour = Date.parse('2026-10-06T10:00:00Z');
    const actions = Array.from({ length: 2 * DECISION_COUNT_UPDATES_PER_PART + 10 }, (_, i) => `action-${String(i).padStart(3, '0')}`);
    const text = `${actions.map((id, i) => syntheticLine(hour + i * 1000, `p${i}`, [id])).join('\n')}\n`;
    const chunk = 'test://decisions/parts';
    // A real fault of DynamoDB Local: the last part's first cell holds a `decisions` that is not a number, so its ADD fails.
    const last = actions[2 * DECISION_COUNT_UPDATES_PER_PART] as string;
    const blocked = statisticsItem.key(statisticsShardOf(chunk), hour, cellKey({ actionId: last, context: '-', channel: 'web', placement: 'home' }));
    await dynamo().send('PutItem', { TableName: config.CONTROL_TABLE, Item: { ...blocked, decisions: 'not a number' } });
    await expect(countDecisionLogChunk(chunk, text)).rejects.toThrow();
    const halfway = await readStatistics({ from: hour, to: hour + HOUR });
    expect(halfway.reduce((sum, row) => sum + (row.decisions ?? 0), 0)).toBe(2 * DECISION_COUNT_UPDATES_PER_PART);

    await dynamo().send('DeleteItem', { TableName: config.CONTROL_TABLE, Key: blocked });
    expect(await countDecisionLogChunk(chunk, text)).toMatchObject({ parts: 3, added: 1 });
    expect(await countDecisionLogChunk(chunk, text)).toMatchObject({ parts: 3, added: 0 });
    const report = await reportOf(hour, hour + HOUR);
    expect(report.rows.map((r) => [r.actionId, r.decisions])).toEqual(actions.map((id) => [id, 1]));
  });

  it("hostile lines no catalog could have served (an id of another shape, an unknown channel) are not counted: the chunk's other decisions are, each in its own cell", async () => {
    const hour = Date.parse('2026-10-09T10:00:00Z');
    const at = (i: number) => Math.floor((hour + i * 1000) / 1000);
    const line = (i: number, fields: Partial<LoggedDecisionRecord>) =>
      decisionRecordLine({ v: DECISION_RECORD_VERSION, id: `${at(i)}.h${i}`, cv: '1', ch: 'web', pl: 'home', c: 'pseudonym', e: [], s: [['news', 1, 1]], ...fields });
    const hostile = [
      // A key past DynamoDB's 1,024 bytes: the whole chunk was refused, every time (deployed: the object to the failure queue).
      line(1, { ch: 'w'.repeat(1_100) as never }),
      line(2, { s: [['a'.repeat(2_000), 1, 1]] }),
      line(3, { pl: `home${'p'.repeat(1_500)}` }),
      // The cell key's separator inside an id: counted in another cell (the variant `a` of `hero`).
      line(4, { s: [['hero\u001fa', 1, 1]] }),
      line(5, { s: [['news', 1, 1]], h: ['x'.repeat(2_000)] }),
      line(6, { s: [['news', 1, 1]], x: [[0, 'hero-copy', 'a\u001fb']] }),
    ];
    const good = [line(7, {}), line(8, { s: [['hero', 1, 1, 'a']], x: [[0, 'hero-copy', 'a']] })];
    const text = `${[...hostile, ...good].join('\n')}\n`;
    expect(await countDecisionLogChunk('test://decisions/hostile', text)).toMatchObject({ counted: 2, malformed: hostile.length, added: 1 });
    const report = await reportOf(hour, hour + HOUR);
    expect(report.rows.map((r) => [r.actionId, r.variant, r.arm, r.decisions])).toEqual([
      ['hero', 'a', 'a', 1],
      ['news', undefined, undefined, 1],
    ]);
  });

  it('property: each chunk is counted once, whatever the chunks and however often, in whatever order and concurrency, they are delivered', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.array(fc.array(fc.constantFrom('x', 'y', 'z'), { maxLength: 2 }), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat({ max: 20 }), { maxLength: 10 }),
        fc.nat({ max: 3 }),
        async (chunks, extra, concurrency) => {
          run++;
          // Each run in an hour of its own.
          const hour = Date.parse('2026-09-01T00:00:00Z') + run * HOUR;
          const texts = chunks.map((decisions, c) => `${decisions.map((served, d) => syntheticLine(hour + d * 1000, `r${run}c${c}d${d}`, served)).join('\n')}\n`);
          // Every chunk at least once, some again, in a shuffled order, up to `concurrency + 1` at a time.
          const deliveries = [...texts.keys(), ...extra.map((n) => n % texts.length)].sort((a, b) => ((a * 7919 + run) % 13) - ((b * 7919 + run) % 13));
          const width = concurrency + 1;
          for (let i = 0; i < deliveries.length; i += width) {
            await Promise.all(deliveries.slice(i, i + width).map((c) => countDecisionLogChunk(`test://property/${run}/${c}`, texts[c] as string)));
          }
          const expected = new Map<string, number>();
          for (const decisions of chunks) for (const served of decisions) for (const id of served) expected.set(id, (expected.get(id) ?? 0) + 1);
          const rows = await readStatistics({ from: hour, to: hour + HOUR });
          const counted = new Map<string, number>();
          for (const row of rows) counted.set(row.cell.actionId, (counted.get(row.cell.actionId) ?? 0) + (row.decisions ?? 0));
          expect(counted).toEqual(expected);
        },
      ),
      { numRuns: 15 },
    );
  }, 120_000);
});

describe('the local stack\'s decision counting (local/decision-log.ts, local/decision-counter.ts)', () => {
  const folders: string[] = [];
  afterAll(() => {
    for (const dir of folders.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  /** One run of the local stack's log and counter over `folder`: `lines` logged, written, counted, stopped. */
  async function runOnce(folder: string, lines: readonly string[], day: Date): Promise<void> {
    const counter = new LocalDecisionCounter(countDecisionLogChunk, { intervalMs: 60_000 });
    const log = new LocalDecisionLog(folder, { now: () => day, onWrite: counter.add });
    for (const [i, line] of lines.entries()) {
      log.append(line);
      if (i % 3 === 2) log.flush();
    }
    log.close();
    await counter.drain(Date.now() + 20_000);
    expect(counter.pending).toBe(0);
  }

  it('a day file moved away (archived, rotated by a tool) between two runs: the next run starts it again at offset 0, and its decisions are counted too', async () => {
    const hour = Date.parse('2026-10-08T10:00:00Z');
    const folder = mkdtempSync(join(tmpdir(), 'kairos-decision-counts-'));
    folders.push(folder);
    const day = new Date(hour + 30 * 60_000);
    const line = (run: number, i: number) => syntheticLine(hour + i * 1000, `run${run}-${i}`, ['hero']);
    await runOnce(folder, Array.from({ length: 7 }, (_, i) => line(1, i)), day);
    const [file] = decisionLogFiles(folder);
    renameSync(file as string, join(folder, 'archived.jsonl.bak'));
    await runOnce(folder, Array.from({ length: 7 }, (_, i) => line(2, i)), day);
    // The second run wrote the day's file from offset 0 again, in the same writes as the first.
    expect(decisionLogFiles(folder)).toEqual([file]);
    expect(readFileSync(file as string, 'utf8').length).toBe(readFileSync(join(folder, 'archived.jsonl.bak'), 'utf8').length);
    const report = await reportOf(hour, hour + HOUR);
    expect(report.rows.map((r) => [r.actionId, r.decisions])).toEqual([['hero', 14]]);
  });
});

describe('the decision counter (functions/decision-counter/handler.ts)', () => {
  const hour = Date.parse('2026-10-07T10:00:00Z');
  const bucket = 'kairos-decision-log';
  const objects = new Map<string, string>([
    ['decisions/dt=2026-10-07/a-1.gz', `${syntheticLine(hour + 1_000, 'o1', ['hero'])}\n${syntheticLine(hour + 2_000, 'o2', ['hero', 'news'])}\n`],
    ['decisions/dt=2026-10-07/a-2.gz', `${syntheticLine(hour + 3_000, 'o3', ['news'])}\nnot a record\n`],
  ]);
  /** Stands in for S3 GetObject: the object's text, or NoSuchKey. */
  const read = async (b: string, key: string): Promise<string> => {
    const text = b === bucket ? objects.get(key) : undefined;
    if (text === undefined) throw new Error(`NoSuchKey: ${key}`);
    return text;
  };
  /** An SQS message holding an S3 Object Created event as the EventBridge rule puts it on the queue. */
  const message = (messageId: string, key: string): SQSRecord =>
    ({
      messageId,
      body: JSON.stringify({ version: '0', id: messageId, 'detail-type': 'Object Created', source: 'aws.s3', detail: { version: '0', bucket: { name: bucket }, object: { key, size: 1 } } }),
    }) as SQSRecord;
  const batch = (...records: SQSRecord[]): SQSEvent => ({ Records: records });

  it('counts each object a batch names once, returns exactly the messages it could not count, and a redelivered object adds nothing', async () => {
    const count = decisionCounter(read);
    const first = await count(batch(message('m1', 'decisions/dt=2026-10-07/a-1.gz'), message('m2', 'decisions/dt=2026-10-07/missing.gz'), { messageId: 'm3', body: '{"Records":[]}' } as SQSRecord, message('m4', 'decisions/dt=2026-10-07/a-2.gz')));
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: 'm2' }, { itemIdentifier: 'm3' }]);
    // Delivered again (the failed ones by SQS, the others as EventBridge may): nothing counted twice.
    // m7 names a-1 with its key URL-encoded (as S3's notifications encode keys): read under its stored key, counted once.
    const again = await count(
      batch(message('m5', 'decisions/dt=2026-10-07/a-1.gz'), message('m6', 'decisions/dt=2026-10-07/a-2.gz'), message('m7', 'decisions/dt%3D2026-10-07/a-1.gz')),
    );
    expect(again.batchItemFailures).toEqual([]);
    const report = await reportOf(hour, hour + HOUR);
    expect(report.rows.map((r) => [r.actionId, r.decisions])).toEqual([
      ['hero', 2],
      ['news', 2],
    ]);
  });
});
