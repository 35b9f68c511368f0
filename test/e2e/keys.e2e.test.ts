/**
 * Write keys through the operator API on the local stack (API.md §1, §5):
 * created with the secret shown once, listed without it, revoked so that
 * every source route refuses it; a write key can do none of this.
 */
import { describe, expect, it } from 'vitest';
import { useLocalStack, type TestStack } from '#test/support/stack.ts';
import { call, track, uniqueId, type StackAccess } from './fixtures/kairos.ts';

let stack: TestStack;
let api: StackAccess;
useLocalStack((started, access) => {
  stack = started;
  api = access;
});

/** The status, with the body in the diff when it is not the one expected. */
const expectStatus = (result: { status: number; text: string }, status: number) =>
  expect({ status: result.status, body: result.text }).toEqual({ status, body: expect.any(String) });

interface CreatedKey {
  keyId: string;
  name: string;
  createdAt: string;
  hashPrefix: string;
  writeKey: string;
}

interface ListedKey {
  keyId: string;
  name: string;
  createdAt: string;
  hashPrefix: string;
  revokedAt?: string;
}

const createKey = async (name: string) => {
  const result = await call<CreatedKey>(api, 'POST', '/v1/admin/keys', { auth: 'admin', body: { name } });
  expectStatus(result, 201);
  return result.json;
};

const listKeys = async () => {
  const result = await call<{ keys: ListedKey[] }>(api, 'GET', '/v1/admin/keys', { auth: 'admin' });
  expectStatus(result, 200);
  return result.json.keys;
};

/** One track event sent with `key`; the HTTP status. */
const sendWith = async (key: string) =>
  (await call(api, 'POST', '/v1/track', { auth: { authorization: `Basic ${Buffer.from(`${key}:`).toString('base64')}` }, body: track({ userId: uniqueId('k') }, 'Key Used') }))
    .status;

describe('write keys', () => {
  it('a created key works at once, is listed without its secret, and is refused once revoked', async () => {
    const created = await createKey('website');
    expect(created).toEqual({
      keyId: expect.stringMatching(/^key_[0-9a-f]{16}$/),
      name: 'website',
      createdAt: expect.any(String),
      hashPrefix: expect.stringMatching(/^[0-9a-f]{8}$/),
      writeKey: expect.stringMatching(/^wk_[A-Za-z0-9_-]{32}$/),
    });
    expect(await sendWith(created.writeKey)).toBe(200);

    const listed = (await listKeys()).find((k) => k.keyId === created.keyId);
    expect(listed).toEqual({ keyId: created.keyId, name: 'website', createdAt: created.createdAt, hashPrefix: created.hashPrefix });
    // The list carries no secret and no hash of one, for any key.
    const text = (await call(api, 'GET', '/v1/admin/keys', { auth: 'admin' })).text;
    expect(text).not.toContain(created.writeKey);
    expect(text).not.toMatch(/keyHash"|KEY#|wk_/);

    const revoked = await call<ListedKey>(api, 'DELETE', `/v1/admin/keys/${created.keyId}`, { auth: 'admin' });
    expectStatus(revoked, 200);
    expect(revoked.json).toEqual({ ...listed, revokedAt: expect.any(String) });
    expect((await listKeys()).find((k) => k.keyId === created.keyId)?.revokedAt).toBe(revoked.json.revokedAt);

    // Revoking again changes nothing.
    const again = await call<ListedKey>(api, 'DELETE', `/v1/admin/keys/${created.keyId}`, { auth: 'admin' });
    expect(again.status).toBe(200);
    expect(again.json.revokedAt).toBe(revoked.json.revokedAt);
  });

  it('a revoked key is refused by every source route (a key never used, so no lookup is cached)', async () => {
    const created = await createKey('app');
    expect((await call(api, 'DELETE', `/v1/admin/keys/${created.keyId}`, { auth: 'admin' })).status).toBe(200);
    const auth = { authorization: `Basic ${Buffer.from(`${created.writeKey}:`).toString('base64')}` };
    const track_ = await call(api, 'POST', '/v1/track', { auth, body: track({ userId: uniqueId('k') }, 'Refused') });
    const batch = await call(api, 'POST', '/v1/batch', { body: { writeKey: created.writeKey, batch: [track({ userId: uniqueId('k') }, 'Refused')] } });
    const decide = await call(api, 'POST', '/v1/decide', { auth, body: { userId: 'u', channel: 'web' } });
    for (const result of [track_, batch, decide]) {
      expectStatus(result, 401);
      expect(result.json).toMatchObject({ error: { code: 'unauthorized' } });
    }
  });

  it('a write key cannot create, list or revoke keys', async () => {
    const created = await createKey('victim');
    for (const [method, path] of [
      ['POST', '/v1/admin/keys'],
      ['GET', '/v1/admin/keys'],
      ['DELETE', `/v1/admin/keys/${created.keyId}`],
    ] as const) {
      const result = await call(api, method, path, { auth: 'write', body: method === 'POST' ? { name: 'mine' } : undefined });
      expectStatus(result, 403);
    }
    expect((await listKeys()).find((k) => k.keyId === created.keyId)?.revokedAt).toBeUndefined();
  });

  it.each([
    ['no name', {}, 'name'],
    ['an empty name', { name: '' }, 'name'],
    ['a number', { name: 5 }, 'name'],
    ['control characters', { name: 'a\u0000b' }, 'name'],
    ['padding', { name: ' web ' }, 'name'],
    ['a long name', { name: 'x'.repeat(101) }, 'name'],
    ['an unknown field', { name: 'web', writeKey: 'wk_chosen_by_caller' }, '(root)'],
    ['a list', [{ name: 'web' }], '(root)'],
    ['a lone surrogate', { name: 'web \ud800' }, 'name'],
  ])('refuses %s with 400 and creates nothing', async (_what, body, path) => {
    const before = (await listKeys()).length;
    const result = await call<{ error: { code: string; details: { path: string }[] } }>(api, 'POST', '/v1/admin/keys', { auth: 'admin', body });
    expectStatus(result, 400);
    expect(result.json.error.code).toBe('validation_failed');
    expect(result.json.error.details.map((d) => d.path)).toContain(path);
    expect((await listKeys()).length).toBe(before);
  });

  it('refuses malformed JSON and YAML bodies, and creates nothing', async () => {
    const before = (await listKeys()).length;
    const malformed = await call(api, 'POST', '/v1/admin/keys', { auth: 'admin', body: '{"name": "web"' });
    expect(malformed.status).toBe(400);
    expect(malformed.json).toMatchObject({ error: { code: 'invalid_json' } });
    const yaml = await call(api, 'POST', '/v1/admin/keys', { auth: 'admin', body: 'name: web', headers: { 'content-type': 'application/yaml' } });
    expect(yaml.status).toBe(415);
    expect((await listKeys()).length).toBe(before);
  });

  it.each(['key_0000000000000000', 'no such key', '__proto__', 'KEY#abc', 'x'.repeat(65)])('revoking %j, which names no key, is 404', async (keyId) => {
    const result = await call(api, 'DELETE', `/v1/admin/keys/${encodeURIComponent(keyId)}`, { auth: 'admin' });
    expectStatus(result, 404);
    expect(result.json).toMatchObject({ error: { code: 'not_found' } });
  });

  it("lists the local stack's own key", async () => {
    expect(await sendWith(stack.writeKey)).toBe(200);
    expect((await listKeys()).some((k) => k.name === 'local stack key' && k.revokedAt === undefined)).toBe(true);
  });
});
