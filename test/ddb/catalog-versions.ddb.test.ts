/**
 * Catalog versions and rollback (API.md §5) on DynamoDB Local, through the
 * admin handler: the version list pages through every complete version
 * exactly once, newest first, for any page size; one version's source; a
 * rollback publishes an earlier version's source as a new live version, and
 * refuses (changing nothing) a version that is missing or no longer valid.
 *
 * Its own Control table, so its catalogs never reach other files' decisions.
 */
import { randomBytes } from 'node:crypto';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
  process.env.KAIROS_ADMIN_TOKEN = 'catalog-versions-admin-token-0123456789';
  process.env.CONTROL_TABLE = `catalog-versions-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
});

import { handler } from '#functions/admin/handler.ts';
import { createTableInput } from '#local/tables.ts';
import { config } from '#shared/config.ts';
import { controlTable } from '#store/tables.ts';
import { documentClient } from '../support/sdk-clients.ts';
import { getLiveCatalog, resetCatalogCache, storeCatalogVersion } from '#store/catalog.ts';
import { catalogCounterItem } from '#store/items.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';

const ADMIN = { authorization: `Bearer ${process.env.KAIROS_ADMIN_TOKEN}` };

const catalogText = (title: string) =>
  JSON.stringify({ tags: ['promo'], actions: [{ id: 'banner', name: 'Banner', tags: ['promo'], content: { web: { title } } }] });

type Json = Record<string, unknown> & { error?: { code: string; message: string; details?: { path: string; message: string }[] } };

async function call(method: string, path: string, body?: unknown) {
  const event = apiGatewayEvent({ method, path, headers: ADMIN, ...(body === undefined ? {} : { body }) });
  const res = (await handler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2;
  return { status: res.statusCode ?? 0, body: (res.body ? JSON.parse(res.body) : undefined) as Json };
}

async function counter(): Promise<number> {
  const { Item } = await documentClient.send(
    new GetCommand({ TableName: config.CONTROL_TABLE, Key: catalogCounterItem.key(), ConsistentRead: true }),
  );
  return typeof Item?.next === 'number' ? Item.next : 0;
}

const published: { version: number; title: string }[] = [];

beforeAll(async () => {
  const client = new DynamoDBClient({
    endpoint: process.env.DYNAMODB_ENDPOINT,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  await client.send(new CreateTableCommand(createTableInput(controlTable, config.CONTROL_TABLE)));
  client.destroy();
  for (let i = 1; i <= 7; i++) {
    const title = `title ${i} ${randomBytes(3).toString('hex')}`;
    const res = await call('PUT', '/v1/admin/catalog', catalogText(title));
    if (res.status !== 200) throw new Error(`publishing version ${i} answered ${res.status}`);
    published.push({ version: res.body.version as number, title });
    if (i === 4) {
      // A version number allocated by a publication that never completed (no META item): never listed.
      await documentClient.send(
        new UpdateCommand({
          TableName: config.CONTROL_TABLE,
          Key: catalogCounterItem.key(),
          UpdateExpression: 'ADD #next :one',
          ExpressionAttributeNames: { '#next': 'next' },
          ExpressionAttributeValues: { ':one': 1 },
        }),
      );
    }
  }
});

describe('GET /v1/admin/catalog/versions', () => {
  it('pages through every complete version exactly once, newest first, for any page size', async () => {
    const expected = published.map((p) => p.version).sort((a, b) => b - a);
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 10 }), async (limit) => {
        const seen: number[] = [];
        let before: number | undefined;
        for (let pages = 0; pages < 20; pages++) {
          const res = await call('GET', `/v1/admin/catalog/versions?limit=${limit}${before !== undefined ? `&before=${before}` : ''}`);
          expect(res.status).toBe(200);
          const versions = res.body.versions as { version: number }[];
          expect(versions.length).toBeLessThanOrEqual(limit);
          seen.push(...versions.map((v) => v.version));
          before = res.body.next as number | undefined;
          if (before === undefined) break;
        }
        expect(seen).toEqual(expected);
      }),
      { numRuns: 12 },
    );
  });

  it('shows time, size, hash, who published it and which one is live', async () => {
    const res = await call('GET', '/v1/admin/catalog/versions?limit=2');
    const last = published.at(-1) as { version: number; title: string };
    expect(res.body.liveVersion).toBe(last.version);
    expect((res.body.versions as unknown[])[0]).toEqual({
      version: last.version,
      createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      format: 'json',
      bytes: Buffer.byteLength(catalogText(last.title)),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      principal: 'local-admin',
      actions: 1,
      live: true,
    });
    expect((res.body.versions as { live: boolean }[])[1]?.live).toBe(false);
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=101', 'limit'],
    ['limit=abc', 'limit'],
    ['before=-1', 'before'],
    ['before=1.5', 'before'],
    ['page=2', 'page'],
  ])('refuses ?%s with a 400 naming %s', async (query, path) => {
    const res = await call('GET', `/v1/admin/catalog/versions?${query}`);
    expect(res.status).toBe(400);
    expect(res.body.error?.details?.[0]?.path).toBe(path);
  });
});

describe('GET /v1/admin/catalog/versions/{version}', () => {
  it('returns that version’s source and document', async () => {
    const first = published[0] as { version: number; title: string };
    const res = await call('GET', `/v1/admin/catalog/versions/${first.version}`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: first.version, live: false, source: catalogText(first.title), format: 'json' });
    expect(JSON.stringify(res.body.catalog)).toContain(first.title);
  });

  it('404 for a version that was never completed or never allocated; 400 for a malformed one', async () => {
    expect((await call('GET', '/v1/admin/catalog/versions/5')).status).toBe(404);
    expect((await call('GET', '/v1/admin/catalog/versions/999999')).status).toBe(404);
    expect((await call('GET', '/v1/admin/catalog/versions/0')).status).toBe(400);
    expect((await call('GET', '/v1/admin/catalog/versions/x')).status).toBe(400);
  });

  it('GET /v1/admin/catalog?version=1 is refused rather than answered with the live version', async () => {
    const res = await call('GET', '/v1/admin/catalog?version=1');
    expect(res.status).toBe(400);
    expect(res.body.error?.details?.[0]?.path).toBe('version');
  });
});

describe('POST /v1/admin/catalog/rollback', () => {
  it('publishes the earlier version’s source as a new live version', async () => {
    const target = published[1] as { version: number; title: string };
    const before = await counter();
    const res = await call('POST', '/v1/admin/catalog/rollback', { version: target.version });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ version: before + 1, rolledBackFrom: target.version, live: true, actions: 1 });
    const live = await call('GET', '/v1/admin/catalog');
    expect(live.body).toMatchObject({ version: before + 1, live: true, rolledBackFrom: target.version, source: catalogText(target.title) });
    resetCatalogCache();
    const compiled = await getLiveCatalog();
    expect(compiled?.version).toBe(before + 1);
    expect(JSON.stringify(compiled?.actionsById.get('banner')?.content)).toContain(target.title);
  });

  it('a missing version is a 404 and a malformed request a 400; nothing is published', async () => {
    const before = await counter();
    expect((await call('POST', '/v1/admin/catalog/rollback', { version: 5 })).status).toBe(404);
    expect((await call('POST', '/v1/admin/catalog/rollback', { version: 999 })).status).toBe(404);
    for (const body of [{}, { version: 0 }, { version: 1.5 }, { version: '1' }, { version: 1, extra: true }, []]) {
      const res = await call('POST', '/v1/admin/catalog/rollback', body);
      expect({ body, status: res.status, code: res.body.error?.code }).toEqual({ body, status: 400, code: 'validation_failed' });
    }
    expect(await counter()).toBe(before);
  });

  it('a version that no longer passes validation is refused with its problems, and nothing changes', async () => {
    // Stored as if published under older, looser checks: the document bypasses today's validation.
    const stale = JSON.stringify({ actions: [{ id: 'old', name: 'Old', content: { web: { title: 'x' } }, eligibility: 'profile.nope(' }] });
    const { version } = await storeCatalogVersion(stale, 'json', { document: JSON.parse(catalogText('placeholder')) });
    const liveBefore = (await call('GET', '/v1/admin/catalog')).body.version;
    const before = await counter();
    const res = await call('POST', '/v1/admin/catalog/rollback', { version });
    expect(res.status).toBe(400);
    expect(res.body.error?.message).toMatch(new RegExp(`version ${version} no longer passes validation`));
    expect(res.body.error?.details?.some((d) => d.path.includes('eligibility'))).toBe(true);
    expect(await counter()).toBe(before);
    expect((await call('GET', '/v1/admin/catalog')).body.version).toBe(liveBefore);
  });
});
