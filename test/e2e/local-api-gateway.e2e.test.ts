/**
 * The local API Gateway (local/server.ts) over real sockets, with functions
 * of the test's own that echo what they receive: the payload 2.0 event and
 * Lambda context the handlers get, how their results become HTTP responses,
 * the route keys API Gateway sends (the table's, `HEAD <path>` for a HEAD on
 * a GET route, `OPTIONS <path>` for a preflight, `$default` for a request
 * no route matches), and what API
 * Gateway answers itself (413, a stalled body, malformed HTTP, a failing
 * function).
 */
import { connect } from 'node:net';
import fc from 'fast-check';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LocalFunction } from '#local/lambda.ts';
import { API_GATEWAY_MAX_BODY_BYTES, startLocalServer, type LocalServer } from '#local/server.ts';
import { ERROR_STATUS } from '#http/errors.ts';
import type { FunctionName } from '#http/routes.ts';

interface Seen {
  event: APIGatewayProxyEventV2;
  context: { functionName: string; awsRequestId: string; remaining: number; memoryLimitInMB: string; invokedFunctionArn: string };
}

const seen: Seen[] = [];
let behaviour: (event: APIGatewayProxyEventV2) => unknown = () => undefined;

function echo(name: FunctionName, timeoutSeconds = 3): LocalFunction {
  return {
    name,
    timeoutSeconds,
    memorySize: 256,
    handler: async (event: unknown, context: Context) => {
      const e = event as APIGatewayProxyEventV2;
      seen.push({
        event: e,
        context: {
          functionName: context.functionName,
          awsRequestId: context.awsRequestId,
          remaining: context.getRemainingTimeInMillis(),
          memoryLimitInMB: context.memoryLimitInMB,
          invokedFunctionArn: context.invokedFunctionArn,
        },
      });
      const custom = behaviour(e);
      if (custom !== undefined) return custom instanceof Promise ? await custom : custom;
      return { statusCode: 200, headers: { 'content-type': 'application/json', 'x-request-id': e.requestContext.requestId }, body: '{"ok":true}' };
    },
  };
}

let server: LocalServer;

beforeAll(async () => {
  server = await startLocalServer({
    functions: { ingest: echo('ingest'), decide: echo('decide', 1), admin: echo('admin'), health: echo('health') },
    port: 0,
    bodyTimeoutMs: 500,
    onFunctionError: () => undefined,
  });
});

afterAll(async () => {
  await server?.stop();
});

function last(): Seen {
  const s = seen[seen.length - 1];
  if (!s) throw new Error('no function was invoked');
  return s;
}

async function errorOf(response: Response) {
  expect(response.headers.get('x-request-id')).toMatch(/\S/);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await response.json()) as { error: { code: string; message: string } };
  expect(body).toEqual({ error: { code: expect.any(String), message: expect.any(String) } });
  return body.error;
}

/**
 * A raw answer of the server itself: its status, headers and API.md §6 error, checked to carry an x-request-id
 * and one of §6's codes.
 */
function rawError(text: string): { status: number; headers: Record<string, string>; code: string; message: string } {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(lines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
  expect(headers['x-request-id']).toMatch(/\S/);
  expect(headers['content-type']).toMatch(/^application\/json/);
  const { error } = JSON.parse(body) as { error: { code: string; message: string } };
  expect(Object.keys(ERROR_STATUS)).toContain(error.code);
  return { status: Number(statusLine.split(' ')[1]), headers, code: error.code, message: error.message };
}

/** Raw HTTP over a socket, for what fetch cannot send (stalled bodies, broken request lines). */
function raw(request: string, opts: { keepOpen?: boolean; timeoutMs?: number } = {}): Promise<{ text: string; elapsed: number }> {
  return new Promise((resolveRaw, reject) => {
    const started = Date.now();
    const socket = connect(server.port, '127.0.0.1');
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk) => (text += chunk));
    socket.on('error', (error) => (text ? resolveRaw({ text, elapsed: Date.now() - started }) : reject(error)));
    socket.on('close', () => resolveRaw({ text, elapsed: Date.now() - started }));
    socket.write(request);
    if (!opts.keepOpen) socket.end();
    setTimeout(() => socket.destroy(), opts.timeoutMs ?? 5_000).unref();
  });
}

describe('the request a function receives', () => {
  it('is an API Gateway HTTP API payload 2.0 event', async () => {
    seen.length = 0;
    const response = await fetch(`${server.url}/v1/batch?x=1&x=2&y=a%20b&flag`, {
      method: 'POST',
      headers: [
        ['content-type', 'application/json'],
        ['cookie', 'a=1; b=2'],
        ['user-agent', 'kairos-test/1.0'],
      ],
      body: '{"batch":[]}',
    });
    expect(response.status).toBe(200);
    const { event, context } = last();
    expect(event).toMatchObject({
      version: '2.0',
      routeKey: 'POST /v1/batch',
      rawPath: '/v1/batch',
      rawQueryString: 'x=1&x=2&y=a%20b&flag',
      cookies: ['a=1', 'b=2'],
      queryStringParameters: { x: '1,2', y: 'a b', flag: '' },
      body: '{"batch":[]}',
      isBase64Encoded: false,
      requestContext: {
        accountId: expect.stringMatching(/^\d{12}$/),
        apiId: expect.any(String),
        domainName: '127.0.0.1',
        domainPrefix: '127',
        http: { method: 'POST', path: '/v1/batch', protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'kairos-test/1.0' },
        requestId: expect.any(String),
        routeKey: 'POST /v1/batch',
        stage: '$default',
        time: expect.stringMatching(/^\d\d\/[A-Z][a-z]{2}\/\d{4}:\d\d:\d\d:\d\d \+0000$/),
        timeEpoch: expect.any(Number),
      },
    });
    expect(event.headers['content-type']).toBe('application/json');
    expect(event.headers.cookie).toBeUndefined();
    expect(Object.keys(event.headers).every((h) => h === h.toLowerCase())).toBe(true);
    expect(event.pathParameters).toBeUndefined();
    expect(Math.abs((event.requestContext.timeEpoch ?? 0) - Date.now())).toBeLessThan(10_000);
    expect(response.headers.get('apigw-requestid')).toBe(event.requestContext.requestId);
    // A Lambda-like context for the function the manifest names.
    expect(context).toMatchObject({
      functionName: 'kairos-ingest',
      memoryLimitInMB: '256',
      awsRequestId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      invokedFunctionArn: expect.stringMatching(/^arn:aws:lambda:[a-z0-9-]+:\d{12}:function:kairos-ingest$/),
    });
    expect(context.remaining).toBeGreaterThan(0);
    expect(context.remaining).toBeLessThanOrEqual(3_000);
  });

  it('joins repeated headers with commas and lower-cases their names', async () => {
    const response = await raw(
      'GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Multi: one\r\nx-multi: two\r\nCookie: a=1\r\nCookie: b=2\r\nConnection: close\r\n\r\n',
    );
    expect(response.text).toMatch(/^HTTP\/1\.1 200 /);
    const { event } = last();
    expect(event.headers['x-multi']).toBe('one,two');
    expect(event.cookies).toEqual(['a=1', 'b=2']);
  });

  it('carries decoded path parameters and passes the Authorization header through', async () => {
    const response = await fetch(`${server.url}/v1/admin/profiles/u%2042%2Fx`, { headers: { authorization: 'Bearer abc' } });
    expect(response.status).toBe(200);
    const { event, context } = last();
    expect(event.routeKey).toBe('GET /v1/admin/profiles/{userId}');
    expect(event.rawPath).toBe('/v1/admin/profiles/u%2042%2Fx');
    expect(event.pathParameters).toEqual({ userId: 'u 42/x' });
    expect(event.headers.authorization).toBe('Bearer abc');
    expect(event.body).toBeUndefined();
    expect(context.functionName).toBe('kairos-admin');
  });

  it('base64-encodes a body that is not text, and passes text as is', async () => {
    const bytes = Buffer.from([0, 159, 146, 150, 255, 10]);
    await fetch(`${server.url}/v1/track`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    expect(last().event).toMatchObject({ isBase64Encoded: true, body: bytes.toString('base64') });
    await fetch(`${server.url}/v1/admin/catalog`, { method: 'PUT', headers: { 'content-type': 'application/yaml' }, body: 'a: ü\n' });
    expect(last().event).toMatchObject({ isBase64Encoded: false, body: 'a: ü\n' });
  });

  it('passes a CORS preflight to the function of a CORS route, and one on an operator route to $default', async () => {
    const preflight = await fetch(`${server.url}/v1/decide`, {
      method: 'OPTIONS',
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(200);
    expect(last().event).toMatchObject({ routeKey: 'OPTIONS /v1/decide', requestContext: { http: { method: 'OPTIONS' } } });
    expect(last().context.functionName).toBe('kairos-decide');
    await fetch(`${server.url}/v1/admin/catalog`, { method: 'OPTIONS' });
    expect(last().event).toMatchObject({ routeKey: '$default', rawPath: '/v1/admin/catalog', requestContext: { routeKey: '$default', http: { method: 'OPTIONS' } } });
    expect(last().context.functionName).toBe('kairos-health');
  });
});

describe('how a function result becomes the response', () => {
  it('writes status, headers, cookies and a base64 body', async () => {
    behaviour = () => ({
      statusCode: 201,
      headers: { 'X-Custom': 'yes', 'x-number': 7 },
      cookies: ['s=1; Path=/', 't=2'],
      body: Buffer.from('binary\u0000ok').toString('base64'),
      isBase64Encoded: true,
    });
    try {
      const response = await fetch(`${server.url}/v1/health`);
      expect(response.status).toBe(201);
      expect(response.headers.get('x-custom')).toBe('yes');
      expect(response.headers.get('x-number')).toBe('7');
      expect(response.headers.getSetCookie()).toEqual(['s=1; Path=/', 't=2']);
      expect(Buffer.from(await response.arrayBuffer()).toString()).toBe('binary\u0000ok');
    } finally {
      behaviour = () => undefined;
    }
  });

  it('infers 200 JSON for a result without statusCode, as API Gateway does', async () => {
    behaviour = () => ({ hello: 'world' });
    try {
      const response = await fetch(`${server.url}/v1/health`);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await response.json()).toEqual({ hello: 'world' });
    } finally {
      behaviour = () => undefined;
    }
  });

  it('answers 500 internal without detail when the function throws, and 503 when it times out', async () => {
    behaviour = () => {
      throw new Error('secret stack detail');
    };
    try {
      const thrown = await fetch(`${server.url}/v1/health`);
      expect(thrown.status).toBe(500);
      const text = await thrown.clone().text();
      expect(text).not.toContain('secret');
      expect(await errorOf(thrown)).toMatchObject({ code: 'internal' });

      behaviour = () => new Promise(() => undefined); // never settles; decide's timeout is 1 s here
      const started = Date.now();
      const slow = await fetch(`${server.url}/v1/decide`, { method: 'POST', body: '{}' });
      expect(slow.status).toBe(503);
      expect(slow.headers.get('retry-after')).toBe('1');
      expect(await errorOf(slow)).toMatchObject({ code: 'unavailable' });
      expect(Date.now() - started).toBeLessThan(5_000);

      behaviour = () => ({ statusCode: 'nope' });
      const malformed = await fetch(`${server.url}/v1/health`);
      expect(malformed.status).toBe(500);
    } finally {
      behaviour = () => undefined;
    }
  });
});

describe('what the local API Gateway answers itself', () => {
  it('sends a request no route matches (an unknown path, another method) to the $default route\'s function, as API Gateway does', async () => {
    const cases: [string, string][] = [
      ['GET', '/v1/nope'],
      ['GET', '/v1/batch'],
      ['DELETE', '/v1/admin/catalog'],
      ...['/', '/v1', '/v1/batch/', '/v1//batch', '/v1/admin/profiles/', '/v1/admin/profiles/%E0%A4%A'].map((path): [string, string] => ['POST', path]),
    ];
    for (const [method, path] of cases) {
      const before = seen.length;
      const response = await fetch(`${server.url}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
      expect({ path, method, status: response.status, calls: seen.length - before }).toEqual({ path, method, status: 200, calls: 1 });
      const { event, context } = last();
      expect({ routeKey: event.routeKey, contextKey: event.requestContext.routeKey, rawPath: event.rawPath, pathParameters: event.pathParameters, fn: context.functionName }).toEqual({
        routeKey: '$default',
        contextKey: '$default',
        rawPath: path,
        pathParameters: undefined,
        fn: 'kairos-health',
      });
    }
  });

  it('sends a HEAD on a GET route to its function with the route key HEAD <path>, and answers with its status and headers but no body', async () => {
    for (const path of ['/v1/health', '/v1/admin/profiles/u-1']) {
      const response = await raw(`HEAD ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`);
      const { event } = last();
      expect({ path, routeKey: event.routeKey, method: event.requestContext.http.method }).toEqual({ path, routeKey: `HEAD ${path.replace('u-1', '{userId}')}`, method: 'HEAD' });
      const [head, body] = response.text.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 200 /);
      // The length of the body a GET gets ({"ok":true}), and not one byte of it.
      expect(head).toMatch(/\r\ncontent-length: 11\r\n/i);
      expect(body).toBe('');
    }
    // A HEAD where only POST is served is no route: $default (its function answers 405).
    await raw('HEAD /v1/decide HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(last().event.routeKey).toBe('$default');
  });

  it('sends a path parameter whose percent-encoding is malformed to its route\'s function as sent (the function refuses it)', async () => {
    await fetch(`${server.url}/v1/admin/profiles/%ff`, { headers: { authorization: 'Bearer abc' } });
    const { event, context } = last();
    expect({ routeKey: event.routeKey, rawPath: event.rawPath, pathParameters: event.pathParameters, fn: context.functionName }).toEqual({
      routeKey: 'GET /v1/admin/profiles/{userId}',
      rawPath: '/v1/admin/profiles/%ff',
      pathParameters: { userId: '%ff' },
      fn: 'kairos-admin',
    });
  });

  it('413 payload_too_large for a body over 10 MB, declared or streamed, without calling the function', async () => {
    const before = seen.length;
    const declared = await raw(
      `POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${API_GATEWAY_MAX_BODY_BYTES + 1}\r\n\r\n{"batch":`,
      { keepOpen: true },
    );
    expect(declared.text).toMatch(/^HTTP\/1\.1 413 /);
    expect(declared.text).toContain('"payload_too_large"');
    expect(declared.text).toMatch(/x-request-id: \S+/i);
    expect(declared.elapsed).toBeLessThan(2_000);

    // Streamed without a length: counted as it arrives.
    const big = new Uint8Array(API_GATEWAY_MAX_BODY_BYTES + 1024).fill(32);
    const streamed = await fetch(`${server.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < big.length; i += 1 << 20) controller.enqueue(big.subarray(i, i + (1 << 20)));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit).catch((error: unknown) => error as Error);
    // The client reads the 413, or sees the connection closed while it is still sending; the function is never called.
    expect([413, 'connection closed']).toContain(streamed instanceof Response ? streamed.status : 'connection closed');
    expect(seen.length).toBe(before);

    // Under 10 MB, Lambda's own 6 MB invocation limit still applies to the event: 413 without invoking.
    const overLambda = await fetch(`${server.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: new Uint8Array(7 * 1024 * 1024).fill(32),
    });
    expect(overLambda.status).toBe(413);
    expect(seen.length).toBe(before);
    const fits = await fetch(`${server.url}/v1/batch`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: new Uint8Array(5 * 1024 * 1024).fill(32),
    });
    expect(fits.status).toBe(200);
    expect(last().event.body).toHaveLength(5 * 1024 * 1024);
  });

  it('times out a body that never finishes arriving, and keeps serving', async () => {
    const before = seen.length;
    const stalled = await raw(
      'POST /v1/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"batch":',
      { keepOpen: true },
    );
    // A stalled upload is worth a retry (the SDKs retry a 503 with the same messageIds): 503 unavailable, Retry-After.
    expect(rawError(stalled.text)).toMatchObject({ status: 503, code: 'unavailable', headers: { 'retry-after': '1', connection: 'close' } });
    expect(stalled.elapsed).toBeGreaterThanOrEqual(450);
    expect(stalled.elapsed).toBeLessThan(3_000);
    expect(seen.length).toBe(before);
    expect((await fetch(`${server.url}/v1/health`)).status).toBe(200);
  });

  it('answers malformed HTTP in API.md codes, each with an x-request-id, and never crashes', async () => {
    const garbage = await raw('GARBAGE\r\n\r\n');
    expect(garbage.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n/);
    expect(rawError(garbage.text)).toMatchObject({ status: 400, code: 'validation_failed' });
    const badHeader = await raw('GET /v1/health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    expect(rawError(badHeader.text)).toMatchObject({ status: 400, code: 'validation_failed' });
    // The request line and headers over Node's 16 KB (API Gateway's own limit is 10,240 bytes).
    const before = seen.length;
    const hugeHeader = await raw(`POST /v1/decide HTTP/1.1\r\nHost: x\r\nx-big: ${'a'.repeat(60_000)}\r\n\r\n`);
    expect(hugeHeader.text).toMatch(/^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
    expect(rawError(hugeHeader.text)).toMatchObject({ status: 431, code: 'payload_too_large', headers: { connection: 'close' } });
    expect(seen.length).toBe(before);
    const absolute = await raw('GET http://127.0.0.1/v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    expect(absolute.text).toMatch(/^HTTP\/1\.1 200 /);
    expect((await fetch(`${server.url}/v1/health`)).status).toBe(200);
  });

  it('answers any request the HTTP parser refuses with a 4xx or 503 in one of API.md\'s codes, never a 500', async () => {
    const line = fc.array(fc.integer({ min: 0, max: 127 }), { maxLength: 60 }).map((codes) => String.fromCharCode(...codes));
    await fc.assert(
      fc.asyncProperty(fc.array(line, { minLength: 1, maxLength: 4 }), async (lines) => {
        const answer = await raw(`${lines.join('\r\n')}\r\n\r\n`, { timeoutMs: 2_000 });
        if (answer.text === '' || !/^HTTP\/1\.1 [45]/.test(answer.text)) return; // parsed as a request the functions answered, or not yet complete
        const error = rawError(answer.text);
        expect(error.status).not.toBe(500);
        expect(ERROR_STATUS[error.code as keyof typeof ERROR_STATUS]).toBeDefined();
      }),
      { numRuns: 40 },
    );
    expect((await fetch(`${server.url}/v1/health`)).status).toBe(200);
  });
});
