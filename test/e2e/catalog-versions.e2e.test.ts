/**
 * Catalog rollback on the local stack (API.md §5): publish v1, then v2, and
 * decisions follow; roll back to v1 and decisions change back, while the
 * version list shows the whole history.
 */
import { describe, expect, it } from 'vitest';
import { useLocalStack } from '#test/support/stack.ts';
import { call, decide, uniqueId, type StackAccess } from './fixtures/kairos.ts';

let api: StackAccess;
useLocalStack((_started, access) => {
  api = access;
});

const catalog = (title: string) => `kind: kairos/v1
tags: [promo]
actions:
  - id: home-banner
    name: Home banner
    tags: [promo]
    content:
      web: { title: "${title}", url: "https://example.com/" }
`;

async function publish(title: string): Promise<number> {
  const result = await call<{ version: number; live: boolean }>(api, 'PUT', '/v1/admin/catalog', {
    auth: 'admin',
    body: catalog(title),
    headers: { 'content-type': 'application/yaml' },
  });
  expect({ status: result.status, live: result.json.live }).toEqual({ status: 200, live: true });
  return result.json.version;
}

const titleServed = async (anonymousId: string) =>
  (await decide(api, { anonymousId, channel: 'web' })).actions.map((a) => a.content.title);

describe('catalog rollback', () => {
  it('publishes v1 and v2, rolls back to v1, and decisions change back', async () => {
    const visitor = uniqueId('rollback');
    const v1 = await publish('Version one');
    expect(await titleServed(visitor)).toEqual(['Version one']);
    const v2 = await publish('Version two');
    expect(v2).toBeGreaterThan(v1);
    expect(await titleServed(visitor)).toEqual(['Version two']);

    const rollback = await call<{ version: number; rolledBackFrom: number; live: boolean }>(api, 'POST', '/v1/admin/catalog/rollback', {
      auth: 'admin',
      body: { version: v1 },
    });
    expect(rollback.status).toBe(200);
    expect(rollback.json).toMatchObject({ rolledBackFrom: v1, live: true });
    expect(rollback.json.version).toBeGreaterThan(v2);
    expect(await titleServed(visitor)).toEqual(['Version one']);

    const list = await call<{ liveVersion: number; versions: { version: number; live: boolean; rolledBackFrom?: number }[] }>(
      api,
      'GET',
      '/v1/admin/catalog/versions',
      { auth: 'admin' },
    );
    expect(list.json.liveVersion).toBe(rollback.json.version);
    expect(list.json.versions.slice(0, 3)).toEqual([
      expect.objectContaining({ version: rollback.json.version, live: true, rolledBackFrom: v1 }),
      expect.objectContaining({ version: v2, live: false }),
      expect.objectContaining({ version: v1, live: false }),
    ]);
  });

  it('a write key cannot list, read or roll back versions', async () => {
    for (const [method, path] of [
      ['GET', '/v1/admin/catalog/versions'],
      ['GET', '/v1/admin/catalog/versions/1'],
      ['POST', '/v1/admin/catalog/rollback'],
    ] as const) {
      const result = await call(api, method, path, { auth: 'write', ...(method === 'POST' ? { body: { version: 1 } } : {}) });
      expect({ path, status: result.status }).toEqual({ path, status: 403 });
    }
  });
});
