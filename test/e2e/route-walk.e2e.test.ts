/**
 * A walk over EVERY route of the route table (shared/http/routes.ts) on the
 * local stack: credentials missing, of the wrong kind or unknown; malformed
 * JSON; wrong types; oversize bodies; hostile strings (fast-check). Each
 * answer is a 4xx with the API.md error shape and an x-request-id, never a
 * 500 and never a hang; a GET route answers HEAD as GET, without a body. A
 * route added to the table is walked automatically.
 */
import { brotliCompressSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { routes, type Route } from '#http/routes.ts';
import { useLocalStack, type TestStack } from '../support/stack.ts';
import { basicAuth, call, countOf, sendEvents, track, uniqueId, waitForProfile, type CallResult, type StackAccess } from './fixtures/kairos.ts';

let stack: TestStack;
let api: StackAccess;
useLocalStack((started, access) => {
  stack = started;
  api = access;
});

/** The route's path with every parameter (`{userId}`, `{keyId}`) set to `value`, percent-encoded. */
const concrete = (route: Route, value = 'route-walk-param'): string => route.path.replace(/\{[A-Za-z]+\}/g, encodeSegment(value));
const label = (route: Route) => `${route.method} ${route.path}`;
const takesBody = (route: Route) => route.method === 'POST' || route.method === 'PUT';
const credentialOf = (route: Route) => (route.auth === 'iam' ? 'admin' : route.auth === 'writeKey' ? 'write' : 'none');

const protectedRoutes = routes.filter((r) => r.auth !== 'none');
const bodyRoutes = routes.filter(takesBody);
const eventRoutes = routes.filter((r) => r.function === 'ingest');

const ERROR_SHAPE = { error: { code: expect.any(String), message: expect.any(String) } };

/** What the walk checks of one answer, with `what` in the diff when it fails. */
const answerOf = (result: CallResult, what: string) => ({
  what,
  statusClass: Math.floor(result.status / 100),
  requestId: result.headers.get('x-request-id'),
  body: result.json,
});

/** A 4xx in the error shape, with an x-request-id. */
function expectClientError(result: CallResult, what: string): void {
  expect(answerOf(result, `${what} → ${result.status} ${result.text.slice(0, 300)}`)).toMatchObject({
    statusClass: 4,
    requestId: expect.stringMatching(/\S/),
    body: ERROR_SHAPE,
  });
}

/** Anything but a 5xx; an error answer in the error shape; always an x-request-id. */
function expectNoServerError(result: CallResult, what: string): void {
  const answer = answerOf(result, `${what} → ${result.status} ${result.text.slice(0, 300)}`);
  expect(answer).toMatchObject({
    statusClass: answer.statusClass === 2 ? 2 : 4,
    requestId: expect.stringMatching(/\S/),
    body: answer.statusClass === 2 ? expect.anything() : ERROR_SHAPE,
  });
}

/** Percent-encode every UTF-8 byte: any string, lone surrogates included (as U+FFFD), becomes a path segment. */
const encodeSegment = (value: string): string =>
  [...Buffer.from(value, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');

const each = (list: readonly Route[]) => list.map((r) => [label(r), r] as const);

describe.each(each(routes))('%s', (_name, route) => {
  it('without a credential: 401 unauthorized (health: 200)', async () => {
    const result = await call(api, route.method, concrete(route), takesBody(route) ? { body: {} } : {});
    expect(result.headers.get('x-request-id')).toMatch(/\S/);
    expect(result.status).toBe(route.auth === 'none' ? 200 : 401);
    const expected = route.auth === 'none' ? { ok: true } : { error: { code: 'unauthorized' } };
    expect(result.json).toMatchObject(expected);
  });

  it('with a method the route table does not have: 405 method_not_allowed', async () => {
    const others = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH'].filter((m) => !routes.some((r) => r.method === m && concrete(r) === concrete(route)));
    for (const method of others) {
      const result = await call(api, method, concrete(route), { auth: credentialOf(route) });
      expectClientError(result, `${method} ${label(route)}`);
      expect(result.status).toBe(405);
      expect(result.json).toMatchObject({ error: { code: 'method_not_allowed' } });
    }
  });
});

const getRoutes = routes.filter((r) => r.method === 'GET');

describe.each(each(getRoutes))('%s', (_name, route) => {
  it('answers HEAD as GET, without a credential and with one: the same status, type and length, no body; 405 names GET, HEAD', async () => {
    for (const auth of ['none', credentialOf(route)] as const) {
      const get = await call(api, 'GET', concrete(route), { auth });
      const head = await call(api, 'HEAD', concrete(route), { auth });
      // The length of the GET answer where it is the same answer (a 401, health's); pages and reports move with the data.
      const sameAnswer = get.status === 401 || route.auth === 'none';
      const shape = (r: CallResult, length: string | null) => ({
        status: r.status,
        type: r.headers.get('content-type'),
        requestId: /\S/.test(r.headers.get('x-request-id') ?? ''),
        length: sameAnswer ? length : 'varies',
      });
      expect({ auth, ...shape(head, head.headers.get('content-length')) }).toEqual({ auth, ...shape(get, String(Buffer.byteLength(get.text))) });
      expect(head.text).toBe('');
    }
    const refused = await call(api, 'PATCH', concrete(route), { auth: credentialOf(route) });
    expect([refused.status, refused.headers.get('allow')?.split(', ').includes('HEAD')]).toEqual([405, true]);
  });
});

describe.each(each(protectedRoutes))('%s', (_name, route) => {
  it('with an unknown or malformed credential: 401', async () => {
    const wrong = [
      'Basic !!!not-base64',
      basicAuth('wk_unknown_key_0000'),
      'Bearer not-the-admin-token-000000',
      `Bearer ${stack.adminToken}x`,
      'Basic ',
      'Negotiate abc',
      `Basic ${Buffer.from(':').toString('base64')}`,
      `Bearer ${'a'.repeat(5000)}`,
    ];
    const statuses: Record<string, number> = {};
    for (const authorization of wrong) {
      const result = await call(api, route.method, concrete(route), { auth: { authorization }, ...(takesBody(route) ? { body: {} } : {}) });
      expectClientError(result, `${label(route)} with ${authorization.slice(0, 40)}`);
      statuses[authorization.slice(0, 40)] = result.status;
    }
    expect(statuses).toEqual(Object.fromEntries(wrong.map((a) => [a.slice(0, 40), 401])));
  });

  it('with the wrong kind of credential: a write key on operator routes is 403, the admin token on source routes 401', async () => {
    const result =
      route.auth === 'iam'
        ? await call(api, route.method, concrete(route), { auth: 'write', ...(takesBody(route) ? { body: {} } : {}) })
        : await call(api, route.method, concrete(route), { auth: 'admin', body: {} });
    expectClientError(result, label(route));
    expect(result.status).toBe(route.auth === 'iam' ? 403 : 401);
  });

});

describe.each(each(bodyRoutes))('%s', (_name, route) => {
  it('with malformed JSON, wrong types or a non-JSON body: 4xx, never 500', async () => {
    const auth = credentialOf(route);
    const malformed = await call(api, route.method, concrete(route), { auth, body: '{"batch": [', headers: { 'content-type': 'application/json' } });
    expectClientError(malformed, `${label(route)} malformed`);
    expect(malformed.status).toBe(400);
    expect(malformed.json).toMatchObject({ error: { code: 'invalid_json' } });

    const wrongTypes: unknown[] = [[], 'text', 42, null, true, { batch: 'x' }, { batch: [42] }, { userId: { $ne: 1 }, anonymousId: ['x'], channel: 42 }, { a: { b: { c: { d: { e: { f: { g: { h: { i: { j: { k: { l: 1 } } } } } } } } } } } }];
    // On a batch route a message of the wrong type is refused in rejected[] (200), the envelope kept.
    const isBatch = route.function === 'ingest' && ['/v1/batch', '/v1/b'].includes(route.path);
    for (const body of wrongTypes) {
      const result = await call(api, route.method, concrete(route), { auth, body: JSON.stringify(body) });
      const perMessage = isBatch && JSON.stringify(body) === '{"batch":[42]}';
      const json = (result.json ?? {}) as { accepted?: number; rejected?: { code?: string }[]; error?: { code?: unknown; message?: unknown } };
      const errorShape = typeof json.error?.code === 'string' && typeof json.error.message === 'string';
      expect({
        body: JSON.stringify(body).slice(0, 60),
        statusClass: Math.floor(result.status / 100),
        accepted: json.accepted ?? null,
        rejectedCode: json.rejected?.[0]?.code ?? null,
        errorShape,
        requestId: Boolean(result.headers.get('x-request-id')),
      }).toEqual({
        body: JSON.stringify(body).slice(0, 60),
        statusClass: perMessage ? 2 : 4,
        accepted: perMessage ? 0 : null,
        rejectedCode: perMessage ? 'validation_failed' : null,
        errorShape: !perMessage,
        requestId: true,
      });
    }
    const notJson = await call(api, route.method, concrete(route), {
      auth,
      body: '<xml/>',
      headers: { 'content-type': 'application/xml' },
    });
    expectClientError(notJson, `${label(route)} xml`);
    expect(notJson.status).toBe(415);
  });

  it('with invalid UTF-8 (as JSON, as text/plain, gzipped): 400 invalid_json, never read with U+FFFD in its place', async () => {
    const auth = credentialOf(route);
    // {"userId":"M<0xE1>laga"}: Latin-1 bytes in a body declared (or defaulting to) UTF-8.
    const bytes = Buffer.concat([Buffer.from('{"userId":"M'), Buffer.from([0xe1]), Buffer.from('laga","channel":"web"}')]);
    const variants: [string, Uint8Array, Record<string, string>][] = [
      ['application/json', bytes, { 'content-type': 'application/json' }],
      ['text/plain;charset=UTF-8', bytes, { 'content-type': 'text/plain;charset=UTF-8' }],
      ['gzip', gzipSync(bytes), { 'content-type': 'application/json', 'content-encoding': 'gzip' }],
    ];
    for (const [what, body, headers] of variants) {
      const result = await call(api, route.method, concrete(route), { auth, body, headers });
      expectClientError(result, `${label(route)} invalid UTF-8 ${what}`);
      expect({ what, status: result.status, code: (result.json as { error?: { code?: string } }).error?.code }).toEqual({ what, status: 400, code: 'invalid_json' });
    }
  });

  it('with a compressed body: read through gzip, deflate and br; a decompression bomb is a 413', async () => {
    const auth = credentialOf(route);
    const plain = await call(api, route.method, concrete(route), { auth, body: '{"batch": [', headers: { 'content-type': 'application/json' } });
    for (const [coding, compress] of [
      ['gzip', gzipSync],
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
    ] as const) {
      // The same malformed JSON, compressed: the same 400 once decompressed.
      const result = await call(api, route.method, concrete(route), {
        auth,
        body: compress(Buffer.from('{"batch": [')),
        headers: { 'content-type': 'application/json', 'content-encoding': coding },
      });
      expect({ coding, status: result.status, json: result.json }).toEqual({ coding, status: plain.status, json: plain.json });
    }
    // 64 MB of spaces in ~64 KB: over every route's limit once decompressed.
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    const result = await call(api, route.method, concrete(route), { auth, body: bomb, headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' } });
    expectClientError(result, `${label(route)} gzip bomb`);
    expect(result.status).toBe(413);
    expect(result.json).toMatchObject({ error: { code: 'payload_too_large' } });
  });

  it('with a body over API Gateway\'s 10 MB: 413 payload_too_large', async () => {
    const big = `{"pad":"${'x'.repeat(10 * 1024 * 1024)}"}`;
    const result = await call(api, route.method, concrete(route), { auth: credentialOf(route), body: big });
    expectClientError(result, label(route));
    expect(result.status).toBe(413);
    expect(result.json).toMatchObject({ error: { code: 'payload_too_large' } });
  });
});

/**
 * Request headers real trackers and page agents add to a page's cross-origin
 * calls (as their browser SDKs document and send them), which the preflight
 * must allow or the browser drops the call.
 */
const AGENT_HEADERS: Readonly<Record<string, readonly string[]>> = {
  'Segment analytics-next (retry)': ['authorization', 'x-retry-count'],
  'RudderStack JS SDK': ['authorization', 'content-type', 'anonymousid'],
  'Kairos user token': ['authorization', 'content-type', 'x-kairos-user-token'],
  'OpenTelemetry web (fetch/XHR instrumentation)': ['traceparent', 'tracestate', 'baggage'],
  'Datadog RUM (datadog + tracecontext propagators)': ['x-datadog-origin', 'x-datadog-parent-id', 'x-datadog-sampling-priority', 'x-datadog-trace-id', 'traceparent', 'tracestate'],
  'Sentry browser tracing': ['sentry-trace', 'baggage'],
  'New Relic browser agent': ['newrelic', 'traceparent', 'tracestate'],
  'Elastic APM RUM': ['traceparent', 'tracestate', 'elastic-apm-traceparent'],
  'Azure Application Insights JS': ['request-id', 'request-context', 'traceparent'],
  'AWS X-Ray (CloudWatch RUM)': ['x-amzn-trace-id'],
  'Zipkin B3': ['b3', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-sampled'],
};

describe.each(each(routes.filter((r) => r.cors)))('%s preflight', (_name, route) => {
  it.each(Object.entries(AGENT_HEADERS))('allows the headers of %s', async (_agent, headers) => {
    const result = await call(api, 'OPTIONS', concrete(route), {
      headers: { origin: 'https://shop.example', 'access-control-request-method': route.method, 'access-control-request-headers': headers.join(',') },
    });
    expect(result.status).toBe(204);
    expect(result.headers.get('access-control-allow-origin')).toBe('*');
    const allowed = (result.headers.get('access-control-allow-headers') ?? '').split(',').map((h) => h.trim().toLowerCase());
    expect(allowed).toEqual(expect.arrayContaining([...headers]));
    expect(result.headers.get('access-control-allow-methods')).toContain(route.method);
  });
});

describe('limits of the event routes', () => {
  it.each(each(eventRoutes))('%s refuses a body over 500 KB with 413', async (_name, route) => {
    const big = { batch: [{ type: 'track', userId: 'u', event: 'Big', properties: { pad: 'x'.repeat(600 * 1024) } }], userId: 'u', event: 'Big' };
    const result = await call(api, route.method, concrete(route), { auth: 'write', body: big });
    expectClientError(result, label(route));
    expect(result.status).toBe(413);
  });

  it('POST /v1/batch refuses a body writeKey that is the admin token', async () => {
    const result = await call(api, 'POST', '/v1/batch', { body: { writeKey: stack.adminToken, batch: [{ type: 'track', userId: 'u', event: 'X' }] } });
    expectClientError(result, 'batch with the admin token as writeKey');
    expect(result.status).toBe(401);
  });
});

describe('unknown paths', () => {
  it.each(['/', '/v1', '/v2/batch', '/v1/batch/extra', '/v1/admin', '/v1/admin/reports', '/v1/admin/profiles/a/b/c', '/v1/%25ZZ', '/.env'])(
    '%s: 404 not_found',
    async (path) => {
      const result = await call(api, 'GET', path, { auth: 'admin' });
      expectClientError(result, path);
      expect(result.status).toBe(404);
      expect(result.json).toMatchObject({ error: { code: 'not_found' } });
    },
  );
});

describe('a malformed percent-encoding in the path', () => {
  it.each([
    ['GET', '/v1/admin/profiles/%ff', 'userId'],
    ['GET', '/v1/admin/profiles/%E0%A4%A/export', 'userId'],
    ['DELETE', '/v1/admin/keys/key%', 'keyId'],
    ['GET', '/v1/%ZZ', 'path'],
    ['POST', '/v1/decide%C0', 'path'],
  ])('%s %s: 400 validation_failed naming %s', async (method, path, name) => {
    const result = await call(api, method, path, { auth: 'admin', ...(method === 'POST' ? { body: {} } : {}) });
    expectClientError(result, `${method} ${path}`);
    expect(result.status).toBe(400);
    expect(result.json).toMatchObject({
      error: { code: 'validation_failed', details: [{ path: name, message: expect.stringContaining('malformed percent-encoding') }] },
    });
  });
});

const hostileString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 200 }),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.constantFrom(
    '__proto__',
    'constructor',
    'prototype',
    '\u0000',
    '\ud800',
    '\u202e',
    '${7*7}',
    '{{7*7}}',
    "'; DROP TABLE events; --",
    '<script>alert(1)</script>',
    '../../etc/passwd',
    '%00',
    'u#x',
    'a#y',
    '#',
    'KEY#abc',
    ' ',
    'x'.repeat(5_000),
  ),
);

/** A body of the route's own shape, with hostile values where strings go. */
function hostileBody(route: Route) {
  const props = fc.dictionary(hostileString, fc.oneof(hostileString, fc.double(), fc.boolean(), fc.constant(null)), { maxKeys: 4 });
  const message = fc.record(
    {
      type: fc.oneof(fc.constantFrom('track', 'identify', 'page', 'screen', 'alias', 'group'), hostileString),
      messageId: hostileString,
      userId: hostileString,
      anonymousId: hostileString,
      previousId: hostileString,
      event: hostileString,
      name: hostileString,
      timestamp: fc.oneof(hostileString, fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
      properties: props,
      traits: props,
      context: props,
    },
    { requiredKeys: [] },
  );
  if (route.function === 'ingest') {
    return route.path === '/v1/batch'
      ? fc.record({ batch: fc.array(message, { maxLength: 5 }), sentAt: hostileString, context: props }, { requiredKeys: ['batch'] })
      : message;
  }
  if (route.function === 'decide' || route.path.endsWith('/simulate')) {
    return fc.record(
      {
        userId: hostileString,
        anonymousId: hostileString,
        channel: fc.oneof(fc.constantFrom('web', 'app', 'push', 'email', 'sms', 'call_center'), hostileString),
        placement: hostileString,
        limit: fc.oneof(fc.integer({ min: -5, max: 20 }), fc.double()),
        context: props,
        explain: fc.boolean(),
        profile: props,
      },
      { requiredKeys: [] },
    );
  }
  return fc.dictionary(hostileString, fc.oneof(hostileString, props, fc.array(props, { maxLength: 3 })), { maxKeys: 6 });
}

describe('hostile input (fast-check)', () => {
  it.each(each(bodyRoutes))('%s never answers 5xx', async (_name, route) => {
    await fc.assert(
      fc.asyncProperty(hostileBody(route), async (body) => {
        const result = await call(api, route.method, concrete(route), { auth: credentialOf(route), body });
        expectNoServerError(result, `${label(route)} ${JSON.stringify(body).slice(0, 200)}`);
      }),
      { numRuns: 25 },
    );
  });

  it.each(each(routes.filter((r) => r.path.includes('{'))))(
    '%s never answers 5xx, whatever the path parameter',
    async (_name, route) => {
      await fc.assert(
        fc.asyncProperty(hostileString.filter((s) => s.length > 0), async (value) => {
          const result = await call(api, route.method, concrete(route, value), { auth: credentialOf(route) });
          expectNoServerError(result, `${label(route)} ${JSON.stringify(value).slice(0, 80)}`);
        }),
        { numRuns: 40 },
      );
      // Escapes that are not UTF-8 at all, as a raw client can send them.
      for (const raw of ['%ED%A0%80', '%FF', '%C0%AF', '%00', '%2F..%2F..', '%25', '%', '%E0%A4%A']) {
        const result = await call(api, route.method, route.path.replace(/\{[A-Za-z]+\}/g, raw), { auth: credentialOf(route) });
        expectNoServerError(result, `${label(route)} ${raw}`);
      }
    },
  );

  it('every event the API accepted above was applied by the profile function (none poisoned the stream)', async () => {
    const userId = uniqueId('walk-sentinel');
    await sendEvents(api, [track({ userId }, 'Walk Finished')]);
    await waitForProfile(api, userId, (p) => countOf(p, 'Walk Finished') === 1);
    // Records are applied in order: whatever was accepted before the sentinel has been through the function.
    expect(stack.streamStats().failedInvocations).toBe(0);
    expect(stack.failures()).toEqual([]);
  });
});
