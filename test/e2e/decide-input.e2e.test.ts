/**
 * The edges of decide and of the operator's catalog routes, over HTTP on the
 * local stack: bad input gets a 4xx with the error shape of API.md §6 and
 * changes nothing, never a 500; credentials give exactly their rights; a
 * browser on another origin may call decide.
 */
import { afterAll, assert, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import fc from 'fast-check';
import { openStack } from './fixtures/stack.ts';
import {
  basicAuth,
  call,
  countOf,
  ensureDemoCatalog,
  identify,
  sendEvents,
  track,
  uniqueId,
  userToken,
  waitForProfile,
  type CallResult,
  type StackAccess,
} from './fixtures/kairos.ts';

type Stack = Awaited<ReturnType<typeof openStack>>;
let stack: Stack;
let api: StackAccess;

beforeAll(async () => {
  stack = await openStack();
  api = stack;
  // The catalog routes are checked against a live catalog: the demo one.
  await ensureDemoCatalog(api, await readFile(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8'));
});

afterAll(async () => {
  await stack?.stop();
});

const ERROR_CODES = [
  'invalid_json',
  'validation_failed',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'payload_too_large',
  'unsupported_media_type',
  'throttled',
  'unavailable',
];

/** A 4xx with `{error: {code, message, details?}}` and a request id. */
function expectClientError(result: CallResult, status: number | number[], code?: string): void {
  const statuses = Array.isArray(status) ? status : [status];
  assert.include(statuses, result.status, `status ${result.status}: ${result.text.slice(0, 300)}`);
  expect(result.headers.get('x-request-id')).toBeTruthy();
  const body = result.json as { error?: { code?: unknown; message?: unknown; details?: unknown } };
  assert.isObject(body?.error, result.text.slice(0, 300));
  expect(ERROR_CODES).toContain(body.error?.code);
  if (code) expect(body.error?.code).toBe(code);
  expect(typeof body.error?.message).toBe('string');
  if (body.error?.details !== undefined) {
    expect(Array.isArray(body.error.details)).toBe(true);
    for (const detail of body.error.details as unknown[]) {
      expect(detail).toMatchObject({ path: expect.any(String), message: expect.any(String) });
    }
  }
  // no stack trace or internal detail leaks
  expect(result.text).not.toMatch(/\bat .+\.(?:ts|js):\d+/);
}

const detailPaths = (result: CallResult): string[] =>
  ((result.json as { error?: { details?: { path: string }[] } })?.error?.details ?? []).map((d) => d.path);

/** One of the details names `path` (or a path below it). */
function expectDetailPath(result: CallResult, path: string | undefined, label: string): void {
  if (path === undefined) return;
  assert.include(detailPaths(result).join(' '), path, `${label}: ${result.text.slice(0, 300)}`);
}

/** Whatever the input: a 200 decision or a 4xx with the error shape, never a 5xx. */
function expectNoServerError(result: CallResult, label: string): void {
  assert.isBelow(result.status, 500, `${label} → ${result.text.slice(0, 200)}`);
  if (result.status >= 400) {
    expectClientError(result, [400, 413]);
    return;
  }
  assert.strictEqual(result.status, 200, label);
  assert.isArray((result.json as { actions?: unknown }).actions, label);
}

const validDecide = { userId: 'u-input', channel: 'web', placement: 'home_hero', limit: 1 };

describe('POST /v1/decide refuses bad input with a 4xx', () => {
  it('malformed JSON, a non-JSON body and an empty body', async () => {
    const [malformed, truncated, html, empty] = await Promise.all([
      call(api, 'POST', '/v1/decide', { auth: 'server', body: '{"channel": "web",' }),
      call(api, 'POST', '/v1/decide', { auth: 'server', body: '{"channel": "web"} trailing' }),
      call(api, 'POST', '/v1/decide', {
        auth: 'write',
        body: '<decide channel="web"/>',
        headers: { 'content-type': 'application/xml' },
      }),
      call(api, 'POST', '/v1/decide', { auth: 'server', body: '' }),
    ]);
    expectClientError(malformed, 400, 'invalid_json');
    expectClientError(truncated, 400, 'invalid_json');
    expectClientError(html, 415, 'unsupported_media_type');
    expectClientError(empty, 400);
  });

  it('wrong types and out-of-range values, each named by its path', async () => {
    const cases: { body: unknown; path: string }[] = [
      { body: { ...validDecide, channel: 'fax' }, path: 'channel' },
      { body: { ...validDecide, channel: 7 }, path: 'channel' },
      { body: { userId: 'u-1' }, path: 'channel' },
      { body: { ...validDecide, limit: 0 }, path: 'limit' },
      { body: { ...validDecide, limit: 11 }, path: 'limit' },
      { body: { ...validDecide, limit: 'one' }, path: 'limit' },
      { body: { ...validDecide, limit: 1.5 }, path: 'limit' },
      { body: { ...validDecide, context: ['rain'] }, path: 'context' },
      { body: { ...validDecide, userId: { $ne: null } }, path: 'userId' },
      { body: { ...validDecide, userId: 'x'.repeat(10_000) }, path: 'userId' },
      { body: { ...validDecide, explain: 'yes' }, path: 'explain' },
      { body: { ...validDecide, placement: ['home_hero'] }, path: 'placement' },
    ];
    const results = await Promise.all(cases.map((c) => call(api, 'POST', '/v1/decide', { auth: 'server', body: c.body })));
    results.forEach((result, i) => {
      expectClientError(result, 400, 'validation_failed');
      expectDetailPath(result, cases[i]?.path, JSON.stringify(cases[i]?.body).slice(0, 100));
    });
  });

  it('what the event routes refuse in ids and context, a blank id, and a body writeKey: 400, each named by its path', async () => {
    // As raw JSON text: escapes, `__proto__` as an own key and 1e400 reach the server as a client sends them.
    const cases: { body: string; path: string; auth?: 'none' }[] = [
      { body: '{"userId":"a\\u0007","channel":"web"}', path: 'userId' },
      { body: '{"userId":"a\\ud800","channel":"web"}', path: 'userId' },
      { body: '{"anonymousId":"a\\u0007","channel":"web"}', path: 'anonymousId' },
      { body: '{"userId":"   ","channel":"web"}', path: 'userId' },
      { body: '{"userId":"u-input","channel":"web","context":{"__proto__":{"admin":true}}}', path: 'context.__proto__' },
      { body: '{"userId":"u-input","channel":"web","context":{"constructor":{"prototype":{}}}}', path: 'context.constructor' },
      { body: '{"userId":"u-input","channel":"web","context":{"x":1e400}}', path: 'context.x' },
      { body: `{"userId":"u-input","channel":"web","writeKey":${JSON.stringify(api.serverKey)}}`, path: 'writeKey' },
      { body: `{"userId":"u-input","channel":"web","writeKey":"${'w'.repeat(300)}"}`, path: 'writeKey' },
      // The key in the body only, where Segment's browser clients put it on the event routes.
      { body: `{"anonymousId":"a-input","channel":"web","writeKey":${JSON.stringify(api.writeKey)}}`, path: 'writeKey', auth: 'none' },
    ];
    const results = await Promise.all(
      cases.map((c) => call(api, 'POST', '/v1/decide', { auth: c.auth ?? 'server', body: c.body, headers: { 'content-type': 'application/json' } })),
    );
    results.forEach((result, i) => {
      expectClientError(result, 400, 'validation_failed');
      expectDetailPath(result, cases[i]?.path, cases[i]?.body.slice(0, 100) ?? '');
    });
  });

  it('a body that is not an object', async () => {
    const bodies = ['[]', '"decide"', '42', 'null', 'true', '[{"channel":"web"}]'];
    const results = await Promise.all(bodies.map((body) => call(api, 'POST', '/v1/decide', { auth: 'server', body })));
    for (const result of results) expectClientError(result, 400);
  });

  it('an oversize body gets 413', async () => {
    const context = { blob: 'x'.repeat(2 * 1024 * 1024) };
    const result = await call(api, 'POST', '/v1/decide', { auth: 'server', body: { ...validDecide, context } });
    expectClientError(result, 413, 'payload_too_large');
  });

  it('hostile strings and keys are data, never code: a 200 or a 4xx, never a 500', async () => {
    const hostile = [
      '<script>alert(1)</script>',
      "' OR 1=1 --",
      '{{ 7 * 7 }}{% raw %}',
      '${process.exit(1)}',
      '../../etc/passwd',
      '\u202e\u0000\u0007\ud800',
      '__proto__',
      'constructor',
      'profile.traits.firstName',
      '💥'.repeat(100),
    ];
    const bodies = hostile.flatMap((s) => [
      { ...validDecide, userId: s },
      { ...validDecide, anonymousId: s, userId: undefined },
      { ...validDecide, placement: s },
      { ...validDecide, context: { [s]: s, weather: s, nested: { deeper: [s] } } },
    ]);
    bodies.push(JSON.parse('{"channel":"web","userId":"u-proto","__proto__":{"admin":true},"context":{"__proto__":{"polluted":1},"constructor":{"prototype":{"x":1}}}}'));
    const results = await Promise.all(bodies.map((body) => call(api, 'POST', '/v1/decide', { auth: 'server', body })));
    results.forEach((result, i) => expectNoServerError(result, JSON.stringify(bodies[i]).slice(0, 120)));
    // The stack still serves.
    const after = await call(api, 'POST', '/v1/decide', { auth: 'server', body: validDecide });
    expect(after.status).toBe(200);
  });

  it('any JSON value as a body: a 200 or a 4xx with the error shape, never a 500', async () => {
    const field = fc.oneof(
      fc.constantFrom('web', 'app', 'push', 'email', 'sms', 'call_center', 'home_hero'),
      fc.string({ maxLength: 40 }),
      fc.integer(),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }),
      fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }),
    );
    const body = fc.oneof(
      fc.record(
        { userId: field, anonymousId: field, channel: field, placement: field, limit: field, context: field, explain: field },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(body, async (value) => {
        const text = JSON.stringify(value);
        const result = await call(api, 'POST', '/v1/decide', { auth: 'server', body: text });
        expectNoServerError(result, text.slice(0, 200));
      }),
      { numRuns: 60 },
    );
  });
});

describe('credentials', () => {
  it('decide refuses no key and an unknown key with 401', async () => {
    const [none, unknown, garbage] = await Promise.all([
      call(api, 'POST', '/v1/decide', { body: validDecide }),
      call(api, 'POST', '/v1/decide', { auth: { authorization: basicAuth('wk_not-a-real-key') }, body: validDecide }),
      call(api, 'POST', '/v1/decide', { auth: { authorization: 'Basic !!!not-base64' }, body: validDecide }),
    ]);
    expectClientError(none, 401, 'unauthorized');
    expectClientError(unknown, 401, 'unauthorized');
    expectClientError(garbage, 401, 'unauthorized');
  });

  it('a write key cannot read the catalog or a profile, nor use any operator route (403)', async () => {
    const userId = uniqueId('wk-read');
    const results = await Promise.all([
      call(api, 'GET', '/v1/admin/catalog', { auth: 'write' }),
      call(api, 'GET', `/v1/admin/profiles/${userId}`, { auth: 'write' }),
      call(api, 'PUT', '/v1/admin/catalog', { auth: 'write', body: { actions: [] } }),
      call(api, 'POST', '/v1/admin/catalog/validate', { auth: 'write', body: { actions: [] } }),
      call(api, 'POST', '/v1/admin/simulate', { auth: 'write', body: { userId, channel: 'web' } }),
    ]);
    for (const result of results) expectClientError(result, 403, 'forbidden');
  });

  it('operator routes refuse a request without the admin credential (401)', async () => {
    const wrongToken = { authorization: `Bearer ${'x'.repeat(40)}` };
    const requests: [string, string, unknown?][] = [
      ['GET', '/v1/admin/catalog'],
      ['PUT', '/v1/admin/catalog', { actions: [] }],
      ['POST', '/v1/admin/catalog/validate', { actions: [] }],
      ['POST', '/v1/admin/simulate', { userId: 'u-1', channel: 'web' }],
      ['GET', '/v1/admin/profiles/u-1'],
    ];
    const results = await Promise.all(
      requests.flatMap(([method, path, body]) => [
        call(api, method, path, { body }),
        call(api, method, path, { body, auth: wrongToken }),
        call(api, method, path, { body, auth: { authorization: `Basic ${stack.adminToken}` } }),
      ]),
    );
    for (const result of results) expectClientError(result, 401, 'unauthorized');
  });
});

describe('the catalog routes refuse bad input and change nothing', () => {
  async function liveVersion(): Promise<unknown> {
    const result = await call<{ version?: unknown }>(api, 'GET', '/v1/admin/catalog', { auth: 'admin' });
    expect(result.status).toBe(200);
    expect(result.json.version).toBeDefined();
    return result.json.version;
  }

  const badCatalogs: { name: string; body: string; contentType?: string; status: number; code?: string; path?: string }[] = [
    { name: 'malformed JSON', body: '{"actions": [', status: 400, code: 'invalid_json' },
    { name: 'malformed YAML', body: 'actions:\n  - id: [unclosed\n    name: x', contentType: 'application/yaml', status: 400 },
    { name: 'a JSON array', body: '[]', status: 400 },
    { name: 'actions of the wrong type', body: '{"actions": "all of them"}', status: 400, code: 'validation_failed', path: 'actions' },
    {
      name: 'an action without content and a negative value',
      body: JSON.stringify({ actions: [{ id: 'a1', name: 'A', value: -5 }] }),
      status: 400,
      code: 'validation_failed',
      path: 'actions[0]',
    },
    {
      name: 'a CEL rule that does not compile',
      body: JSON.stringify({
        segments: [{ id: 'broken', rule: 'profile.traits.tier == "VIP" &&' }],
        actions: [{ id: 'a1', name: 'A', content: { web: { title: 'Hi' } } }],
      }),
      status: 400,
      code: 'validation_failed',
      path: 'segments[0].rule',
    },
    {
      name: 'a CEL rule on a field the profile does not have',
      body: JSON.stringify({
        actions: [{ id: 'a1', name: 'A', eligibility: 'profile.stat.visitsToday > 10', content: { web: { title: 'Hi' } } }],
      }),
      status: 400,
      code: 'validation_failed',
      path: 'actions[0].eligibility',
    },
    {
      name: 'hostile keys and strings',
      body: '{"__proto__": {"polluted": true}, "actions": [{"id": "<script>", "name": "x", "content": {"web": {"title": "{% include \'/etc/passwd\' %}"}}}]}',
      status: 400,
      code: 'validation_failed',
    },
    {
      name: 'an oversize document',
      body: JSON.stringify({ description: 'x'.repeat(12 * 1024 * 1024) }),
      status: 413,
      code: 'payload_too_large',
    },
    { name: 'a body that is neither JSON nor YAML', body: 'actions=1', contentType: 'application/x-www-form-urlencoded', status: 415 },
  ];

  it.each([
    ['PUT', '/v1/admin/catalog'],
    ['POST', '/v1/admin/catalog/validate'],
  ] as const)('%s %s: 4xx naming the problem, nothing stored, the live version unchanged', async (method, path) => {
    const before = await liveVersion();
    const results = await Promise.all(
      badCatalogs.map((c) =>
        call(api, method, path, {
          auth: 'admin',
          body: c.body,
          headers: { 'content-type': c.contentType ?? 'application/json' },
        }),
      ),
    );
    results.forEach((result, i) => {
      const c = badCatalogs[i];
      if (!c) return;
      expectClientError(result, c.status, c.code);
      expectDetailPath(result, c.path, c.name);
    });
    expect(await liveVersion()).toEqual(before);
  });

  it('a CEL error carries its position', async () => {
    const result = await call(api, 'POST', '/v1/admin/catalog/validate', {
      auth: 'admin',
      body: { segments: [{ id: 's', rule: 'profile.stats.visitsToday >' }], actions: [{ id: 'a', name: 'A', content: { web: { title: 't' } } }] },
    });
    expectClientError(result, 400, 'validation_failed');
    const details = (result.json as { error: { details: { path: string; message: string }[] } }).error.details;
    const cel = details.find((d) => d.path.startsWith('segments[0].rule'));
    assert.isDefined(cel, JSON.stringify(details));
    // "position", "column", "line" or a caret excerpt: the author can find it.
    expect(`${cel?.path} ${cel?.message}`).toMatch(/position|column|line|col|\^|:\d+/i);
  });

  it('validate accepts the live catalog without storing a new version', async () => {
    const before = await liveVersion();
    const live = await call<{ catalog?: unknown }>(api, 'GET', '/v1/admin/catalog', { auth: 'admin' });
    const document = live.json.catalog ?? live.json;
    const result = await call(api, 'POST', '/v1/admin/catalog/validate', { auth: 'admin', body: document });
    assert.strictEqual(result.status, 200, result.text.slice(0, 500));
    expect(await liveVersion()).toEqual(before);
  });

  it('POST /v1/admin/simulate refuses bad input with a 4xx', async () => {
    const bodies: unknown[] = [
      '{"userId": ',
      '[]',
      { channel: 'web' },
      { userId: 'u-1', channel: 'fax' },
      { userId: 'u-1', channel: 'web', limit: 99 },
      { userId: 42, channel: 'web' },
      { profile: 'not a profile', channel: 'web' },
      { profile: { stats: { visitsToday: 'many' } }, channel: 'web' },
      { userId: 'u-1', channel: 'web', context: 'rain' },
      { userId: 'u-1', profile: { traits: { firstName: 'Ana' } }, channel: 'web' },
    ];
    const results = await Promise.all(bodies.map((body) => call(api, 'POST', '/v1/admin/simulate', { auth: 'admin', body })));
    results.forEach((result, i) => {
      assert.strictEqual(result.status, 400, `${JSON.stringify(bodies[i])} → ${result.text.slice(0, 200)}`);
      expectClientError(result, 400);
    });
    const oversize = await call(api, 'POST', '/v1/admin/simulate', {
      auth: 'admin',
      body: { userId: 'u-1', channel: 'web', context: { blob: 'x'.repeat(12 * 1024 * 1024) } },
    });
    expectClientError(oversize, 413, 'payload_too_large');
  });

  it('POST /v1/admin/simulate refuses an inline profile with a __proto__ key anywhere in it, and takes a stored profile with a `constructor` event count whole', async () => {
    // Raw JSON: JSON.parse keeps "__proto__" as an own key, which a key-by-key copy turns into the copy's prototype,
    // deciding for a profile without what was sent.
    const bodies: [string, string][] = [
      ['{"channel":"web","profile":{"__proto__":{"traits":{"tier":"VIP"}}}}', 'profile.__proto__'],
      ['{"channel":"email","profile":{"traits":{"__proto__":{"tier":"VIP"}}}}', 'profile.traits.__proto__'],
      ['{"channel":"web","profile":{"traits":{"address":{"__proto__":{"city":"Madrid"}}}}}', 'profile.traits.address.__proto__'],
    ];
    for (const [body, path] of bodies) {
      const result = await call<{ error?: { details?: { path: string; message: string }[] } }>(api, 'POST', '/v1/admin/simulate', { auth: 'admin', body });
      expectClientError(result, 400, 'validation_failed');
      expect({ body, details: result.json.error?.details }).toEqual({ body, details: expect.arrayContaining([{ path, message: 'forbidden key "__proto__"' }]) });
    }
    // What a stored profile may hold is taken: events named like Object's members, a trait nested as deep as an event sets it.
    const userId = uniqueId('sim-proto');
    const deepTrait = JSON.parse(`${'{"a":'.repeat(8)}1${'}'.repeat(8)}`) as Record<string, unknown>;
    await sendEvents(api, [identify({ userId }, { tier: 'VIP', deep: deepTrait }), track({ userId }, 'constructor'), track({ userId }, 'prototype')]);
    const stored = await waitForProfile(api, userId, (p) => countOf(p, 'constructor') === 1 && countOf(p, 'prototype') === 1);
    const pasted = await call<{ segments?: string[] }>(api, 'POST', '/v1/admin/simulate', { auth: 'admin', body: { profile: stored, channel: 'web' } });
    assert.strictEqual(pasted.status, 200, pasted.text.slice(0, 300));
    expect(pasted.json.segments).toContain('vip');
  });

  it('POST /v1/admin/simulate answers a valid request with the decision and its explanation', async () => {
    const result = await call<{ actions?: unknown[]; explanation?: { candidates?: unknown[] } }>(api, 'POST', '/v1/admin/simulate', {
      auth: 'admin',
      body: { userId: uniqueId('sim'), channel: 'web', placement: 'home_hero', context: { weather: 'rain' } },
    });
    assert.strictEqual(result.status, 200, result.text.slice(0, 300));
    expect(Array.isArray(result.json.actions)).toBe(true);
    expect(Array.isArray(result.json.explanation?.candidates)).toBe(true);
  });
});

describe('CORS', () => {
  const origin = 'https://shop.example.com';

  it('decide answers a preflight from another origin, and its answer carries Access-Control-Allow-Origin', async () => {
    const preflight = await fetch(`${api.baseUrl}/v1/decide`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,x-kairos-user-token',
      },
    });
    expect(preflight.status).toBeGreaterThanOrEqual(200);
    expect(preflight.status).toBeLessThan(300);
    expect(['*', origin]).toContain(preflight.headers.get('access-control-allow-origin'));
    expect(preflight.headers.get('access-control-allow-methods') ?? '').toMatch(/POST/i);
    expect(preflight.headers.get('access-control-allow-headers') ?? '').toMatch(/authorization/i);
    expect(preflight.headers.get('access-control-allow-headers') ?? '').toMatch(/content-type/i);
    expect(preflight.headers.get('access-control-allow-headers') ?? '').toMatch(/x-kairos-user-token/i);

    // What a page sends: the public key, and the user token its back-end minted.
    const token = await userToken(api, validDecide.userId);
    const actual = await call(api, 'POST', '/v1/decide', { auth: 'write', body: validDecide, headers: { origin, 'x-kairos-user-token': token } });
    expect(actual.status).toBe(200);
    expect(['*', origin]).toContain(actual.headers.get('access-control-allow-origin'));
    // An error on a source route is readable by the page too.
    const refused = await call(api, 'POST', '/v1/decide', { body: validDecide, headers: { origin } });
    expect(refused.status).toBe(401);
    expect(['*', origin]).toContain(refused.headers.get('access-control-allow-origin'));
  });

  it('operator routes do not allow browsers from other origins', async () => {
    const [read, preflight] = await Promise.all([
      call(api, 'GET', `/v1/admin/profiles/${uniqueId('cors')}`, { auth: 'admin', headers: { origin } }),
      fetch(`${api.baseUrl}/v1/admin/profiles/u-1`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
      }),
    ]);
    expect(read.status).toBe(404);
    expect(read.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
  });
});
