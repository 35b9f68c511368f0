/**
 * Catalog storage and the admin catalog routes on DynamoDB Local: versioned,
 * chunked and gzip'd storage, each version stored once (a 2,000-action
 * catalog round-trips; a version stored before, twice, is still read), a live
 * pointer that only moves forward under concurrent PUTs, the process cache,
 * and the routes' auth and refusals (nothing goes live on a bad catalog).
 *
 * This file uses its own Control table, so the catalogs it publishes never
 * reach the decisions other test files make at the same time.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import fc from 'fast-check';
import { beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

const run = `c${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
await vi.hoisted(async () => {
  // Before any import reads the environment (hoisted): the guard every ddb file runs.
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
  process.env.KAIROS_ADMIN_TOKEN = 'catalog-test-admin-token-0123456789';
  process.env.CONTROL_TABLE = `catalog-test-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { handler } from '#functions/admin/handler.ts';
import { createTableInput } from '#local/tables.ts';
import { config } from '#shared/config.ts';
import { controlTable } from '#store/tables.ts';
import { documentClient } from '../support/sdk-clients.ts';
import { putWriteKey } from '#store/write-keys.ts';
import { catalogChunkItem, catalogCounterItem, catalogDocumentChunkItem, catalogLiveItem, catalogMetaItem, catalogVersionPk } from '#store/items.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { MAX_HOLDOUT_EXPERIMENTS } from '#domain/transaction-budget.ts';
import {
  DEMO_CATALOG_PATH,
  REFRESH_INTERVAL_MS,
  ensureCatalogLoaded,
  getLiveCatalog,
  peekLiveCatalog,
  publishCatalog,
  readCatalogVersion,
  readLiveVersion,
  resetCatalogCache,
  storeCatalogVersion,
} from '#store/catalog.ts';
import { apiGatewayEvent, basicAuth, lambdaContext } from '../support/apigw.ts';
import type { ErrorDetail } from '#domain/issues.ts';

const ADMIN = { authorization: `Bearer ${process.env.KAIROS_ADMIN_TOKEN}` };
const WRITE_KEY = `wk_catalog_test_${run}`;

const smallCatalog = (title: string) => ({
  tags: ['promo'],
  actions: [{ id: 'a1', name: 'A1', tags: ['promo'], content: { web: { title } } }],
});

/** A catalog of n actions with incompressible text, so its gzip is well past one 400 KB item. */
function largeCatalog(n: number) {
  return {
    tags: ['promo', 'service'],
    segments: [{ id: 'vip', rule: 'has(profile.traits.tier) && profile.traits.tier == "VIP"' }],
    actions: Array.from({ length: n }, (_, i) => ({
      id: `action-${i}`,
      name: `Action ${i}`,
      description: randomBytes(240).toString('base64'),
      tags: [i % 2 ? 'promo' : 'service'],
      value: i,
      eligibility: `profile.stats.orders >= ${i % 7}.0 && hasSegment("vip")`,
      content: { web: { title: `Hola {{ firstName | default: "cliente" }} ${i}`, url: `https://example.com/${i}` } },
    })),
  };
}

interface Answer {
  error: { code: string; message: string; details?: ErrorDetail[] };
  warnings?: ErrorDetail[];
  version?: number;
  live?: boolean;
  actions?: number;
  catalog: { actions: { id: string }[] };
  [key: string]: unknown;
}

async function call(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const event = apiGatewayEvent({ method, path, headers, ...(body === undefined ? {} : { body }) });
  const res = (await handler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode ?? 0, body: res.body ? (JSON.parse(res.body) as Answer) : undefined };
}

async function counter(): Promise<number> {
  const { Item } = await documentClient.send(
    new GetCommand({ TableName: config.CONTROL_TABLE, Key: catalogCounterItem.key(), ConsistentRead: true }),
  );
  return typeof Item?.next === 'number' ? Item.next : 0;
}

/**
 * A version as stored before each version was stored once: the source text in CHUNK# chunks, and with
 * `document` its normalised document alone in DOC# chunks (documentFormat 1); without it, as stored before
 * versions kept their document. Made live.
 */
async function storeVersionAsBefore(text: string, document: boolean): Promise<{ version: number; hash: string }> {
  const checked = loadCatalog(text, 'json');
  if (!checked.ok) throw new Error('does not load');
  const version = (await counter()) + 1;
  await documentClient.send(
    new UpdateCommand({
      TableName: config.CONTROL_TABLE,
      Key: catalogCounterItem.key(),
      UpdateExpression: 'SET #n = :v',
      ExpressionAttributeNames: { '#n': 'next' },
      ExpressionAttributeValues: { ':v': version },
    }),
  );
  const documentJson = JSON.stringify(checked.source);
  const digest = (t: string) => createHash('sha256').update(t, 'utf8').digest('hex');
  const items: Record<string, unknown>[] = [
    { ...catalogChunkItem.key(version, 0), data: new Uint8Array(gzipSync(text)) },
    {
      ...catalogMetaItem.key(version),
      version,
      chunks: 1,
      bytes: Buffer.byteLength(text),
      sha256: digest(text),
      format: 'json',
      createdAt: new Date().toISOString(),
      ...(document ? { documentFormat: 1, documentChunks: 1, documentSha256: digest(documentJson) } : {}),
    },
  ];
  if (document) items.push({ ...catalogDocumentChunkItem.key(version, 0), data: new Uint8Array(gzipSync(documentJson)) });
  for (const item of items) await documentClient.send(new PutCommand({ TableName: config.CONTROL_TABLE, Item: item }));
  await documentClient.send(
    new UpdateCommand({
      TableName: config.CONTROL_TABLE,
      Key: catalogLiveItem.key(),
      UpdateExpression: 'SET #v = :v',
      ExpressionAttributeNames: { '#v': 'version' },
      ExpressionAttributeValues: { ':v': version },
    }),
  );
  return { version, hash: checked.catalog.hash };
}

beforeAll(async () => {
  const client = new DynamoDBClient({
    endpoint: process.env.DYNAMODB_ENDPOINT,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  await client.send(new CreateTableCommand(createTableInput(controlTable, config.CONTROL_TABLE)));
  client.destroy();
  await putWriteKey(WRITE_KEY, { keyId: `src-${run}`, name: 'catalog test', createdAt: new Date().toISOString() });
});

beforeEach(() => resetCatalogCache());

describe('versioned storage', () => {
  it('a catalog file that cannot be read stops the load with its path and what to give, and stores nothing', async () => {
    const missing = join(tmpdir(), `kairos-no-such-catalog-${run}.yaml`);
    await expect(ensureCatalogLoaded(missing)).rejects.toThrow(
      `catalog file ${missing} cannot be read: there is no such file; give the path of a YAML or JSON catalog`,
    );
    await expect(ensureCatalogLoaded(tmpdir())).rejects.toThrow(`catalog file ${tmpdir()} cannot be read: it is a folder`);
    expect(await readLiveVersion()).toBeUndefined();
  });

  it('starts empty, then loads the demo catalog once (ensureCatalogLoaded)', async () => {
    expect(await readLiveVersion()).toBeUndefined();
    expect(await getLiveCatalog()).toBeUndefined();
    const first = await ensureCatalogLoaded(DEMO_CATALOG_PATH);
    expect(first).toMatchObject({ status: 'loaded', version: 1 });
    expect(first.actions).toBeGreaterThan(10);
    const again = await ensureCatalogLoaded(DEMO_CATALOG_PATH);
    expect(again).toMatchObject({ status: 'kept', version: 1 });
    const stored = await readCatalogVersion(1);
    expect(stored?.text).toBe(readFileSync(DEMO_CATALOG_PATH, 'utf8'));
    expect(stored?.format).toBe('yaml');
  });

  it('round-trips a 2,000-action catalog through gzipped chunks', async () => {
    const text = JSON.stringify(largeCatalog(2_000));
    expect(Buffer.byteLength(text)).toBeGreaterThan(1_000_000);
    const published = await publishCatalog(text, 'json', { principal: 'test' });
    if (!published.ok) throw new Error(JSON.stringify(published.problems.slice(0, 3)));
    expect(published.live).toBe(true);

    const Items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await documentClient.send(
        new QueryCommand({
          TableName: config.CONTROL_TABLE,
          KeyConditionExpression: 'pk = :pk',
          ExpressionAttributeValues: { ':pk': catalogVersionPk(published.version) },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      Items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    const meta = Items.find((i) => i.sk === catalogMetaItem.key(published.version).sk);
    // Stored once: the normalised document the live cache compiles, then the source text, in DOC# chunks.
    const sizes = (prefix: string) =>
      Items.filter((i) => String(i.sk).startsWith(prefix) && i.data instanceof Uint8Array).map((i) => (i.data as Uint8Array).byteLength);
    expect(meta?.documentFormat).toBe(2);
    expect(sizes('CHUNK#')).toHaveLength(0);
    expect(sizes('DOC#')).toHaveLength(meta?.documentChunks as number);
    expect(meta?.documentChunks).toBeGreaterThanOrEqual(2);
    for (const size of sizes('DOC#')) expect(size).toBeLessThan(400 * 1024);
    // The document's gzip member ends inside the chunks; the source text's follows it.
    expect(meta?.documentZippedBytes).toBeGreaterThan(0);
    expect(meta?.documentZippedBytes).toBeLessThan(sizes('DOC#').reduce((a, b) => a + b, 0));

    resetCatalogCache();
    const stored = await readCatalogVersion(published.version);
    expect(stored?.text).toBe(text);
    expect(stored?.chunks).toBe(meta?.documentChunks);
    const live = await getLiveCatalog();
    expect(live?.version).toBe(published.version);
    expect(live?.hash).toBe(published.catalog.hash);
    expect(live?.actions).toHaveLength(2_000);
    expect(live?.actionsById.get('action-1999')?.value).toBe(1999);
  });

  it('a version stored before the one copy (source in CHUNK#, the document alone in DOC#) is still read and served', async () => {
    const text = JSON.stringify(smallCatalog('stored twice'));
    const { version, hash } = await storeVersionAsBefore(text, true);
    expect((await readCatalogVersion(version))?.text).toBe(text);
    resetCatalogCache();
    const live = await getLiveCatalog();
    expect(live?.version).toBe(version);
    expect(live?.hash).toBe(hash);
    // Kept as it is: a readable document is not stored again.
    expect(await ensureCatalogLoaded(DEMO_CATALOG_PATH)).toMatchObject({ status: 'kept', version });
  });

  it('concurrent PUTs: unique versions, and the highest is live', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) => publishCatalog(JSON.stringify(smallCatalog(`concurrent ${i}`)), 'json')),
    );
    const versions = results.map((r) => (r.ok ? r.version : -1));
    expect(new Set(versions).size).toBe(6);
    const highest = Math.max(...versions);
    expect(await readLiveVersion()).toBe(highest);
    const superseded = results.filter((r) => r.ok && !r.live);
    expect(superseded.every((r) => r.ok && r.liveVersion > r.version)).toBe(true);
    resetCatalogCache();
    const live = await getLiveCatalog();
    const winner = results.find((r) => r.ok && r.version === highest);
    expect(live?.hash).toBe(winner?.ok ? winner.catalog.hash : 'none');
  });

  it('the pointer moves forward only; onlyIfNone never replaces a live catalog', async () => {
    const live = (await readLiveVersion()) ?? 0;
    const older = await storeCatalogVersion(JSON.stringify(smallCatalog('late')), 'json');
    expect(older.version).toBeGreaterThan(live);
    expect(older.live).toBe(true);
    const { Item } = await documentClient.send(
      new GetCommand({ TableName: config.CONTROL_TABLE, Key: catalogLiveItem.key(), ConsistentRead: true }),
    );
    expect(Item?.version).toBe(older.version);
    const onlyIfNone = await storeCatalogVersion(JSON.stringify(smallCatalog('first only')), 'json', { onlyIfNone: true });
    expect(onlyIfNone.live).toBe(false);
    expect(await readLiveVersion()).toBe(older.version);
  });

  it('an invalid catalog stores nothing', async () => {
    const before = { counter: await counter(), live: await readLiveVersion() };
    const result = await publishCatalog(JSON.stringify({ actions: [{ id: 'x', name: 'x', content: {}, eligibility: '1 +' }] }), 'json');
    expect(result.ok).toBe(false);
    expect({ counter: await counter(), live: await readLiveVersion() }).toEqual(before);
  });
});

describe('the stored normalised document', () => {
  it('a live version stored without it is refused by the cache, then stored again by ensureCatalogLoaded', async () => {
    const old = await storeVersionAsBefore(JSON.stringify(smallCatalog('before documents')), false);
    resetCatalogCache();
    await expect(getLiveCatalog()).rejects.toThrow(/without its normalised document/);
    const upgraded = await ensureCatalogLoaded(DEMO_CATALOG_PATH);
    expect(upgraded).toMatchObject({ status: 'kept', version: old.version + 1 });
    resetCatalogCache();
    const live = await getLiveCatalog();
    expect(live?.version).toBe(old.version + 1);
    expect(live?.hash).toBe(old.hash);
    expect((await readCatalogVersion(old.version + 1))?.text).toBe(JSON.stringify(smallCatalog('before documents')));
  });
});

describe('the process cache', () => {
  it('stale-while-revalidate: a warm read never waits; a new version is served after the next check', async () => {
    const t0 = Date.now();
    const first = await getLiveCatalog(t0);
    expect(first).toBeDefined();
    // Another process publishes (this process's cache is not primed).
    const other = await storeCatalogVersion(JSON.stringify(smallCatalog('from elsewhere')), 'json');
    expect(await getLiveCatalog(t0 + 1_000)).toBe(first);
    // Past the interval: the cached version is returned at once, the check runs behind.
    const during = await getLiveCatalog(t0 + REFRESH_INTERVAL_MS + 1);
    expect(during).toBe(first);
    await vi.waitFor(() => expect(peekLiveCatalog()?.version).toBe(other.version));
    expect((await getLiveCatalog(t0 + REFRESH_INTERVAL_MS + 2))?.version).toBe(other.version);
  });
});

describe('admin routes', () => {
  const yaml = readFileSync(DEMO_CATALOG_PATH, 'utf8');

  it('401 without credentials, 403 with a write key', async () => {
    for (const [method, path] of [
      ['GET', '/v1/admin/catalog'],
      ['PUT', '/v1/admin/catalog'],
      ['POST', '/v1/admin/catalog/validate'],
    ] as const) {
      const none = await call(method, path, {}, smallCatalog('x'));
      expect(none.status).toBe(401);
      expect(none.body?.error.code).toBe('unauthorized');
      const writeKey = await call(method, path, { authorization: basicAuth(WRITE_KEY) }, smallCatalog('x'));
      expect(writeKey.status).toBe(403);
      expect(writeKey.body?.error.code).toBe('forbidden');
    }
  });

  it('PUT YAML makes a new version live; GET returns it with its source', async () => {
    const before = (await readLiveVersion()) ?? 0;
    const put = await call('PUT', '/v1/admin/catalog', { ...ADMIN, 'content-type': 'application/yaml' }, yaml);
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ version: before + 1, live: true });
    expect(put.body?.actions).toBeGreaterThan(10);
    const get = await call('GET', '/v1/admin/catalog', ADMIN);
    expect(get.status).toBe(200);
    expect(get.body).toMatchObject({ version: before + 1, format: 'yaml', source: yaml });
    expect(get.body?.catalog.actions.map((a) => a.id)).toContain('vip-winback-email-123');
    // A GET body's catalog can be PUT back as JSON.
    const back = await call('PUT', '/v1/admin/catalog', ADMIN, get.body?.catalog);
    expect(back.status).toBe(200);
    expect(back.body?.version).toBe(before + 2);
  });

  it(`a catalog with more than ${MAX_HOLDOUT_EXPERIMENTS} experiments holding customers out: 400 naming experiments, nothing goes live`, async () => {
    const live = await readLiveVersion();
    const n = MAX_HOLDOUT_EXPERIMENTS + 1;
    const catalog = {
      actions: Array.from({ length: 2 * n }, (_, i) => ({ id: `h${i}`, name: `H${i}`, content: { web: { title: `H${i}` } } })),
      experiments: Array.from({ length: n }, (_, i) => ({
        id: `holdout-${i}`,
        kind: 'actions',
        holdout: 0.05,
        arms: [
          { id: 'one', action: `h${2 * i}` },
          { id: 'two', action: `h${2 * i + 1}` },
        ],
      })),
    };
    const res = await call('PUT', '/v1/admin/catalog', ADMIN, catalog);
    expect(res.status).toBe(400);
    expect(res.body?.error.code).toBe('validation_failed');
    expect(res.body?.error.details?.map((d) => d.path)).toEqual(['experiments']);
    expect(await readLiveVersion()).toBe(live);
  });

  it('a bad catalog: 400 with every problem (path and CEL position), nothing goes live', async () => {
    const live = await readLiveVersion();
    const bad = {
      tags: ['promo'],
      segments: [{ id: 'vip', rule: 'profile.traits.tier == ' }],
      actions: [
        { id: 'a', name: 'A', tags: ['nope'], content: { web: { title: 'x' } }, targeting: { segments: ['ghost'] } },
        { id: 'a', name: 'A again', content: { web: { title: 'x' } }, caps: ['often'] },
      ],
    };
    for (const path of ['/v1/admin/catalog', '/v1/admin/catalog/validate']) {
      const res = await call(path.endsWith('validate') ? 'POST' : 'PUT', path, ADMIN, bad);
      expect(res.status).toBe(400);
      expect(res.body?.error.code).toBe('validation_failed');
      expect(res.body?.error.details?.map((d) => d.path)).toEqual(expect.arrayContaining(['actions[1].caps[0]']));
    }
    const shapeOk = { ...bad, actions: bad.actions.map((a) => ({ ...a, caps: [] })) };
    const res = await call('PUT', '/v1/admin/catalog', ADMIN, shapeOk);
    expect(res.status).toBe(400);
    const details = res.body?.error.details ?? [];
    expect(details.map((d) => d.path).sort()).toEqual(
      ['actions[1].id', 'segments[0].rule', 'actions[0].tags[0]', 'actions[0].targeting.segments[0]'].sort(),
    );
    expect(details.find((d) => d.path === 'segments[0].rule')?.position).toBe(23);
    expect(await readLiveVersion()).toBe(live);
  });

  it('validate: {valid: true} and nothing stored', async () => {
    const before = await counter();
    const res = await call('POST', '/v1/admin/catalog/validate', { ...ADMIN, 'content-type': 'application/yaml' }, yaml);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ valid: true });
    expect(await counter()).toBe(before);
  });

  it('validate and publish count what the catalog holds, its triggers and journeys included', async () => {
    const demo = readFileSync(DEMO_CATALOG_PATH, 'utf8');
    const counts = { actions: 17, segments: 10, personas: 3, policies: 4, experiments: 1, models: 1, triggers: 1, journeys: 1 };
    const validated = await call('POST', '/v1/admin/catalog/validate', { ...ADMIN, 'content-type': 'application/yaml' }, demo);
    expect(validated.body).toEqual({ valid: true, ...counts, warnings: [] });
    const published = await call('PUT', '/v1/admin/catalog', { ...ADMIN, 'content-type': 'application/yaml' }, demo);
    expect(published.body).toMatchObject({ live: true, ...counts });
  });

  it('YAML under every YAML media type (text/x-yaml included); another type is a 415 that names JSON and YAML', async () => {
    for (const type of ['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml; charset=utf-8']) {
      const res = await call('POST', '/v1/admin/catalog/validate', { ...ADMIN, 'content-type': type }, yaml);
      expect({ type, status: res.status, body: res.body }).toMatchObject({ type, status: 200, body: { valid: true } });
    }
    // What curl --data-binary sends without -H: a catalog route says which types it takes.
    const form = await call('POST', '/v1/admin/catalog/validate', { ...ADMIN, 'content-type': 'application/x-www-form-urlencoded' }, yaml);
    expect(form.status).toBe(415);
    expect(form.body?.error).toEqual({
      code: 'unsupported_media_type',
      message: 'The body must be JSON (application/json) or, for a catalog, YAML (application/yaml)',
    });
  });

  it('validate and PUT: every mistake once, with its line and column in the text and a hint; warnings beside a valid catalog', async () => {
    const live = await readLiveVersion();
    const text = [
      'tags: [promo]',
      'segments:',
      '  - id: vip',
      '    rule: profile.stats.openComplaints + 1 > 1.0',
      'actions:',
      '  - id: welcome',
      '    name: Welcome',
      '    eligibilty: profile.stats.orders == 0.0',
      '    content:',
      '      email: {templateId: t1, subject: "Hola {{ firstName | upcse }}"}',
      '  - id: winback',
      '    name: Win back',
      '    targeting: {segments: [vips]}',
      '    content: {push: {title: T, body: B, deepLink: "x://"}}',
      '',
    ].join('\n');
    for (const [method, path] of [['POST', '/v1/admin/catalog/validate'], ['PUT', '/v1/admin/catalog']] as const) {
      const res = await call(method, path, { ...ADMIN, 'content-type': 'application/yaml' }, text);
      expect(res.status).toBe(400);
      expect(res.body?.error.message).toBe('The catalog is not valid (4 problems)');
      expect(res.body?.error.details?.map((d) => [d.path, d.line, d.column, d.hint])).toEqual([
        ['segments[0].rule', 4, 42, expect.stringMatching(/^write 1\.0 instead of 1/)],
        ['actions[0].eligibilty', 8, 5, 'did you mean "eligibility"?'],
        ['actions[0].content.email.subject', 10, 61, 'did you mean "upcase"?'],
        ['actions[1].targeting.segments[0]', 13, 28, 'did you mean "vip"?'],
      ]);
      expect(res.body?.error.details?.[1]).toMatchObject({
        message: 'unknown field "eligibilty"; did you mean "eligibility"? (line 8, column 5)',
        excerpt: '    eligibilty: profile.stats.orders == 0.0',
      });
    }
    // JSON with a trailing comma: where, and what to do.
    const json = '{\n  "tags": ["promo"],\n  "actions": [],\n}';
    const comma = await call('POST', '/v1/admin/catalog/validate', { ...ADMIN, 'content-type': 'application/json' }, json);
    expect(comma.status).toBe(400);
    expect(comma.body?.error).toMatchObject({
      code: 'invalid_json',
      details: [{ path: '(root)', line: 4, column: 1, excerpt: '}', hint: 'remove the comma before "}": JSON allows no comma after the last item' }],
    });
    expect(await readLiveVersion()).toBe(live);
    // A rule comparing channel with a name that is no channel: valid, with a warning.
    const warned = { tags: ['promo'], actions: [{ id: 'a1', name: 'A1', eligibility: 'channel == "whatsapp"', content: { web: { title: 'x' } } }] };
    for (const [method, path] of [['POST', '/v1/admin/catalog/validate'], ['PUT', '/v1/admin/catalog']] as const) {
      const res = await call(method, path, ADMIN, warned);
      expect(res.status).toBe(200);
      expect(res.body?.warnings).toEqual([
        {
          path: 'actions[0].eligibility',
          message: expect.stringMatching(/^channel is never "whatsapp": "whatsapp" is not a channel .* \(line 1, column \d+\)$/),
          position: 11,
          line: 1,
          column: expect.any(Number),
          excerpt: expect.any(String),
        },
      ]);
    }
  });

  it('malformed JSON or YAML, an empty body, a wrong media type, an oversized body: 4xx, nothing stored', async () => {
    const before = await counter();
    const cases: [Record<string, string>, string, number, string][] = [
      [{ 'content-type': 'application/json' }, '{"actions": [', 400, 'invalid_json'],
      [{ 'content-type': 'application/yaml' }, 'actions: [\n  - {id: a', 400, 'validation_failed'],
      [{ 'content-type': 'application/yaml' }, '', 400, 'validation_failed'],
      [{ 'content-type': 'application/yaml' }, '[[[[[[[[', 400, 'validation_failed'],
      [{ 'content-type': 'text/html' }, '<html></html>', 415, 'unsupported_media_type'],
      [{ 'content-type': 'application/yaml' }, `x: "${'a'.repeat(5 * 1024 * 1024)}"`, 413, 'payload_too_large'],
    ];
    for (const [headers, body, status, code] of cases) {
      const res = await call('PUT', '/v1/admin/catalog', { ...ADMIN, ...headers }, body);
      expect({ status: res.status, code: res.body?.error.code }).toEqual({ status, code });
    }
    expect(await counter()).toBe(before);
  });

  it('an empty body (curl given a file it cannot read) is a 400 that says the body is empty and how to send the file', async () => {
    for (const path of ['/v1/admin/catalog/validate', '/v1/admin/catalog']) {
      const res = await call(path.endsWith('validate') ? 'POST' : 'PUT', path, { ...ADMIN, 'content-type': 'application/yaml' }, ' \n');
      expect(res.status).toBe(400);
      expect(res.body?.error.details).toEqual([
        {
          path: '(root)',
          message: 'the body is empty: send the catalog (YAML or JSON) as the body',
          hint: 'with curl, --data-binary @<file>, its path relative to where curl runs: curl sends an empty body when it cannot read the file (silently under -s)',
        },
      ]);
    }
  });

  it('hostile bodies get a 4xx, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.string({ maxLength: 200 }), fc.json({ maxDepth: 4 })),
        fc.constantFrom('application/json', 'application/yaml'),
        async (body, type) => {
          const res = await call('POST', '/v1/admin/catalog/validate', { ...ADMIN, 'content-type': type }, body);
          expect(res.status === 200 || (res.status >= 400 && res.status < 500)).toBe(true);
        },
      ),
      { numRuns: 60 },
    );
  });
});
