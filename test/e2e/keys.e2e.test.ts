/**
 * Write keys through the operator API on the local stack (API.md §1, §5):
 * created with the secret shown once, listed without it, revoked so that
 * every source route refuses it; a write key can do none of this. Public
 * and server keys on decide: user tokens, channels, explain, the answer.
 */
import { describe, expect, it } from 'vitest';
import { useLocalStack, type TestStack } from '../support/stack.ts';
import { basicAuth, call, identify, sendEvents, track, uniqueId, userToken, waitForProfile, type StackAccess } from './fixtures/kairos.ts';

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
  kind: 'public' | 'server';
  createdAt: string;
  userTokenSecretSetAt?: string;
  hashPrefix: string;
  writeKey: string;
}

interface ListedKey {
  keyId: string;
  name: string;
  kind: 'public' | 'server';
  createdAt: string;
  userTokenSecretSetAt?: string;
  hashPrefix: string;
  revokedAt?: string;
}

const createKey = async (name: string, fields: { kind?: string; userTokenSecret?: string } = {}) => {
  const result = await call<CreatedKey>(api, 'POST', '/v1/admin/keys', { auth: 'admin', body: { name, ...fields } });
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
      kind: 'public',
      createdAt: expect.any(String),
      hashPrefix: expect.stringMatching(/^[0-9a-f]{8}$/),
      writeKey: expect.stringMatching(/^wk_[A-Za-z0-9_-]{32}$/),
    });
    expect(await sendWith(created.writeKey)).toBe(200);

    const listed = (await listKeys()).find((k) => k.keyId === created.keyId);
    expect(listed).toEqual({ keyId: created.keyId, name: 'website', kind: 'public', createdAt: created.createdAt, hashPrefix: created.hashPrefix });
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

  it("lists the local stack's own keys: one public (with a user-token secret), one server", async () => {
    expect(await sendWith(stack.writeKey)).toBe(200);
    expect(await sendWith(stack.serverKey)).toBe(200);
    const keys = await listKeys();
    expect(keys.find((k) => k.name === 'local stack key' && k.revokedAt === undefined)).toMatchObject({
      kind: 'public',
      userTokenSecretSetAt: expect.any(String),
    });
    expect(keys.find((k) => k.name === 'local stack server key' && k.revokedAt === undefined)).toMatchObject({ kind: 'server' });
  });
});

const SECRET_A = `uts_a_${'a'.repeat(40)}`;
const SECRET_B = `uts_b_${'b'.repeat(40)}`;

describe('key kinds and user-token secrets', () => {
  it('a server key is created and listed with its kind; a user-token secret is set, rotated and never shown', async () => {
    const server = await createKey('back-end', { kind: 'server' });
    expect(server).toMatchObject({ kind: 'server', writeKey: expect.stringMatching(/^sk_/) });
    expect(server.userTokenSecretSetAt).toBeUndefined();

    const site = await createKey('site', { userTokenSecret: SECRET_A });
    expect(site).toMatchObject({ kind: 'public', userTokenSecretSetAt: expect.any(String) });
    const rotated = await call<ListedKey>(api, 'PUT', `/v1/admin/keys/${site.keyId}/user-token-secret`, {
      auth: 'admin',
      body: { userTokenSecret: SECRET_B },
    });
    expectStatus(rotated, 200);
    expect(rotated.json).toMatchObject({ keyId: site.keyId, kind: 'public', userTokenSecretSetAt: expect.any(String) });

    const text = (await call(api, 'GET', '/v1/admin/keys', { auth: 'admin' })).text;
    for (const secret of [SECRET_A, SECRET_B, site.writeKey, server.writeKey]) expect(text).not.toContain(secret);
    const listed = await listKeys();
    expect(listed.find((k) => k.keyId === server.keyId)?.kind).toBe('server');
    expect(listed.find((k) => k.keyId === site.keyId)?.kind).toBe('public');

    // The key was never used before the rotation (nothing cached): only the new secret's tokens are valid.
    const userId = uniqueId('rotated');
    const decideAs = async (secret: string) =>
      call(api, 'POST', '/v1/decide', {
        auth: { authorization: basicAuth(site.writeKey) },
        headers: { 'x-kairos-user-token': await userToken(api, userId, { secret }) },
        body: { userId, channel: 'web' },
      });
    expectStatus(await decideAs(SECRET_B), 200);
    expectStatus(await decideAs(SECRET_A), 401);
  });

  it.each([
    ['an unknown kind', { name: 'web', kind: 'admin' }, 'kind'],
    ['a short user-token secret', { name: 'web', userTokenSecret: 'short' }, 'userTokenSecret'],
    ['a user-token secret with spaces', { name: 'web', userTokenSecret: `${'x'.repeat(20)} ${'y'.repeat(20)}` }, 'userTokenSecret'],
    ['a user-token secret on a server key', { name: 'web', kind: 'server', userTokenSecret: SECRET_A }, 'userTokenSecret'],
  ])('refuses %s with 400 and creates nothing', async (_what, body, path) => {
    const before = (await listKeys()).length;
    const result = await call<{ error: { code: string; details: { path: string }[] } }>(api, 'POST', '/v1/admin/keys', { auth: 'admin', body });
    expectStatus(result, 400);
    expect(result.json.error.details.map((d) => d.path)).toContain(path);
    expect((await listKeys()).length).toBe(before);
  });

  it('setting a user-token secret: 400 for a server or revoked key or a bad secret, 404 for no key, 403 for a write key', async () => {
    const server = await createKey('server-2', { kind: 'server' });
    const revoked = await createKey('gone');
    await call(api, 'DELETE', `/v1/admin/keys/${revoked.keyId}`, { auth: 'admin' });
    const site = await createKey('site-2');
    const put = (keyId: string, body: unknown, auth: 'admin' | 'write' = 'admin') =>
      call(api, 'PUT', `/v1/admin/keys/${encodeURIComponent(keyId)}/user-token-secret`, { auth, body });
    expectStatus(await put(server.keyId, { userTokenSecret: SECRET_A }), 400);
    expectStatus(await put(revoked.keyId, { userTokenSecret: SECRET_A }), 400);
    expectStatus(await put(site.keyId, { userTokenSecret: 'short' }), 400);
    expectStatus(await put(site.keyId, { secret: SECRET_A }), 400);
    expectStatus(await put('key_0000000000000000', { userTokenSecret: SECRET_A }), 404);
    expectStatus(await put(site.keyId, { userTokenSecret: SECRET_A }, 'write'), 403);
    expect((await listKeys()).find((k) => k.keyId === site.keyId)?.userTokenSecretSetAt).toBeUndefined();
  });
});

describe('decide with a public key and with a server key', () => {
  const decideWith = (auth: 'write' | 'server', body: Record<string, unknown>, token?: string) =>
    call<Record<string, unknown>>(api, 'POST', '/v1/decide', {
      auth,
      body,
      ...(token !== undefined ? { headers: { 'x-kairos-user-token': token } } : {}),
    });

  it('a userId needs a valid token for that user: none, another user\'s, expired, or another secret → 401; valid → 200 without what is not the client\'s', async () => {
    const userId = uniqueId('token-user');
    await sendEvents(api, [identify({ userId }, { firstName: 'Zoraida', tier: 'VIP' })]);
    await waitForProfile(api, userId, (p) => p.traits.firstName === 'Zoraida');
    const body = { userId, channel: 'web', placement: 'home' };
    const refused = [
      await decideWith('write', body),
      await decideWith('write', body, await userToken(api, `${userId}-other`)),
      // Expired 10 minutes ago: further back than the 5 minutes of clock skew allowed (key-rights.ts USER_TOKEN_CLOCK_SKEW_SECONDS).
      await decideWith('write', body, await userToken(api, userId, { expiresAt: new Date(Date.now() - 600_000) })),
      await decideWith('write', body, await userToken(api, userId, { secret: `${api.userTokenSecret}-not-this-one` })),
    ];
    for (const result of refused) {
      expectStatus(result, 401);
      expect(result.json).toMatchObject({ error: { code: 'unauthorized' } });
    }
    const valid = await decideWith('write', body, await userToken(api, userId));
    expectStatus(valid, 200);
    for (const field of ['segments', 'persona', 'scores', 'explanation', 'userId', 'consent']) expect(valid.json).not.toHaveProperty(field);
    for (const action of valid.json.actions as Record<string, unknown>[]) {
      expect(Object.keys(action).every((k) => ['actionId', 'variant', 'content', 'experiment'].includes(k))).toBe(true);
    }
    expect(valid.text).not.toMatch(/"(score|propensity|probability|reasons)"/);
    // The VIP's own banner (their segment at work), and nothing that names the segment outside its content.
    expect(valid.json.actions).toMatchObject([{ actionId: 'vip-lounge-banner' }]);
    expect(valid.text).not.toMatch(/"vip"|segment:|"segments"/);
  });

  it('a public key: explain, email, sms and call_center → 403; a server key gets the full answer on each', async () => {
    const userId = uniqueId('server-user');
    const token = await userToken(api, userId);
    expectStatus(await decideWith('write', { anonymousId: uniqueId('a'), channel: 'web', explain: true }), 403);
    expectStatus(await decideWith('write', { userId, channel: 'web', explain: true }, token), 403);
    for (const channel of ['email', 'sms', 'call_center']) {
      const refused = await decideWith('write', { userId, channel }, token);
      expectStatus(refused, 403);
      expect(refused.json).toMatchObject({ error: { code: 'forbidden' } });
      const full = await decideWith('server', { userId, channel, explain: true });
      expectStatus(full, 200);
      expect(full.json).toMatchObject({ userId, channel, segments: expect.any(Array), explanation: { candidates: expect.any(Array) } });
    }
  });

  it('the CORS preflight allows X-Kairos-User-Token', async () => {
    const preflight = await fetch(`${api.baseUrl}/v1/decide`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type,x-kairos-user-token' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')?.split(',')).toContain('x-kairos-user-token');
  });
});
