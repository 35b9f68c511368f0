/**
 * Fuzz tests of the HTTP chain's middlewares, one `describe` per middleware
 * (middy's index.fuzz.js habit): arbitrary API Gateway events — headers,
 * route keys, methods, bodies, missing request contexts — and handlers that
 * answer or throw anything. A middleware never throws anything but a 4xx
 * ApiError of its own, never lets a handler's error through changed, and
 * never hangs; what it adds to an answer is what it promises.
 * The body decoder's own fuzz test is http-body-decoder.fuzz.test.ts; the
 * admin principal's (it reads the store) is test/ddb/http-admin-principal.fuzz.ddb.test.ts.
 */
import { StoreFault } from '#store/faults.ts';
import middy from '@middy/core';
import fc from 'fast-check';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { httpBodyDecoder, httpJsonBody, MAX_JSON_NESTING } from '#http/body-decoder.ts';
import type { DecodedBodyEvent } from '#http/handler-adapter.ts';
import { corsHeaders, httpCors } from '#http/cors.ts';
import { httpDeadline } from '#http/invocation-deadline.ts';
import { ApiError, ERROR_STATUS, httpErrorResponse, type ErrorCode } from '#http/errors.ts';
import type { HttpContext, HttpMiddleware } from '#http/handler-adapter.ts';
import { RESPONSE_HEADERS, httpResponseHeaders } from '#http/response-headers.ts';
import { httpRouteKey } from '#http/route-key.ts';
import { routeKey, routeOfKey, routes, type FunctionName } from '#http/routes.ts';
import { lambdaContext } from '../support/apigw.ts';

/** A promise that takes longer than this hangs. */
const HANG_MS = 2_000;

const headerName = fc.oneof(
  fc.constantFrom('origin', 'Origin', 'content-type', 'Content-Type', 'content-encoding', 'Content-Encoding', 'authorization', 'x-kairos-user-token'),
  fc.string({ maxLength: 20 }),
);
const headerValue = fc.oneof(
  fc.constantFrom(
    'https://shop.example',
    'null',
    'application/json',
    'application/json; charset=utf-8',
    'text/plain; charset=latin1',
    'text/plain; charset=utf-16',
    'application/yaml',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'gzip',
    'br',
    'deflate, gzip',
    'compress',
    'Bearer 0123456789abcdef0123',
    'Basic Zm9vOg==',
  ),
  fc.string({ maxLength: 80 }),
);
const headers = fc.dictionary(headerName, headerValue, { maxKeys: 8 });
const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'HEAD', '');
const tableKeys = routes.map(routeKey);
const routeKeyArb = fc.oneof(
  fc.constantFrom(...tableKeys, '$default', 'OPTIONS /v1/decide', 'OPTIONS /v1/batch', 'OPTIONS /v1/admin/catalog', 'post /v1/decide', 'POST  /v1/decide'),
  fc.string({ maxLength: 40 }),
);
const deep = fc.nat(3 * MAX_JSON_NESTING).map((n) => `${'['.repeat(n)}1${']'.repeat(n)}`);
const bodyArb = fc.oneof(
  fc.constant(undefined),
  fc.string({ maxLength: 300 }),
  fc.json({ maxDepth: 6 }),
  deep,
  fc.uint8Array({ maxLength: 300 }).map((bytes) => ({ base64: Buffer.from(bytes).toString('base64') })),
);

const eventArb: fc.Arbitrary<APIGatewayProxyEventV2> = fc
  .record({
    routeKey: routeKeyArb,
    rawPath: fc.oneof(
      fc.constantFrom('/v1/decide', '/v1/batch', '/v1/admin/catalog', '/', '/v1/admin/profiles/%ff', '/v1/%ZZ', '/v1/admin/profiles/%25', '/v1/admin/profiles/%E2%82%AC', '/v1/admin/keys/%/user-token-secret'),
      fc.string({ maxLength: 40 }),
    ),
    headers,
    body: bodyArb,
    method,
    requestId: fc.option(fc.string({ maxLength: 40 }), { nil: undefined }),
    withContext: fc.boolean(),
    query: fc.option(fc.dictionary(fc.string({ maxLength: 10 }), fc.string({ maxLength: 20 }), { maxKeys: 3 }), { nil: undefined }),
  })
  .map(({ routeKey: key, rawPath, headers: h, body, method: m, requestId, withContext, query }) => {
    const event = {
      version: '2.0',
      routeKey: key,
      rawPath,
      rawQueryString: '',
      headers: h,
      ...(query ? { queryStringParameters: query } : {}),
      ...(typeof body === 'object' ? { body: body.base64, isBase64Encoded: true } : body === undefined ? { isBase64Encoded: false } : { body, isBase64Encoded: false }),
      ...(withContext
        ? {
            requestContext: {
              ...(requestId !== undefined ? { requestId } : {}),
              routeKey: key,
              http: { method: m, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: '' },
            },
          }
        : {}),
    };
    return event as unknown as APIGatewayProxyEventV2;
  });

/** What a handler does: answer, or throw something. */
type Behaviour = { answer: APIGatewayProxyStructuredResultV2 } | { throws: unknown };

const apiErrorArb = fc
  .tuple(fc.constantFrom(...(Object.keys(ERROR_STATUS) as ErrorCode[])), fc.string({ maxLength: 40 }), fc.option(fc.nat(60), { nil: undefined }))
  .map(([code, message, retryAfter]) => new ApiError(code, message, undefined, retryAfter));
// What the store throws (shared/store/faults.ts): a typed fault, classified once.
const FAULT_KINDS = { ThrottlingException: 'throttled', ProvisionedThroughputExceededException: 'throttled', ServiceUnavailable: 'unavailable', TimeoutError: 'timed-out' } as const;
const storeFaultArb = fc
  .constantFrom(...(Object.keys(FAULT_KINDS) as (keyof typeof FAULT_KINDS)[]))
  .map((name) => new StoreFault(name, 'store fault', FAULT_KINDS[name]));
const thrownArb = fc.oneof(apiErrorArb, storeFaultArb, fc.string().map((m) => new Error(m)), fc.anything());
const behaviourArb: fc.Arbitrary<Behaviour> = fc.oneof(
  fc
    .record({ status: fc.integer({ min: 200, max: 599 }), headers: fc.dictionary(fc.constantFrom('retry-after', 'allow', 'x-custom', 'content-type'), fc.string({ maxLength: 20 })) })
    .map(({ status, headers: h }) => ({ answer: { statusCode: status, headers: h, body: '{}' } })),
  thrownArb.map((thrown) => ({ throws: thrown })),
);

type Outcome = { response: APIGatewayProxyStructuredResultV2 } | { error: unknown } | { hung: true };

/** Run one middleware around a handler that behaves as told; its outcome within HANG_MS. */
async function run(middleware: HttpMiddleware, event: APIGatewayProxyEventV2, behaviour: Behaviour, context = lambdaContext() as HttpContext): Promise<Outcome> {
  const chain = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>()
    .use(middleware)
    .handler(async () => {
      if ('throws' in behaviour) throw behaviour.throws;
      return structuredClone(behaviour.answer);
    });
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<Outcome>((resolve) => {
    timer = setTimeout(() => resolve({ hung: true }), HANG_MS);
  });
  try {
    return await Promise.race([chain(event, context).then((response) => ({ response }), (error: unknown) => ({ error })), hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** A thrown value as text for the failure message; fuzzed values may not convert (`{ toString: [] }`). */
function shown(error: unknown): string {
  try {
    return String(error).slice(0, 200);
  } catch {
    return Object.prototype.toString.call(error);
  }
}

/**
 * The property every middleware holds: it answers, or the handler's own error
 * comes through untouched, or it refuses with a 4xx ApiError of its own; it
 * never hangs. Returns the outcome for further checks.
 */
async function holds(middleware: HttpMiddleware, event: APIGatewayProxyEventV2, behaviour: Behaviour, context?: HttpContext): Promise<Outcome> {
  const outcome = await run(middleware, event, behaviour, context);
  const error = 'error' in outcome ? outcome.error : undefined;
  const own = 'error' in outcome && 'throws' in behaviour && Object.is(error, behaviour.throws);
  const refusal = error instanceof ApiError && error.status >= 400 && error.status < 500;
  const response = 'response' in outcome ? outcome.response : undefined;
  const wellFormed =
    response === undefined || (Number.isInteger(response.statusCode) && Object.values(response.headers ?? {}).every((v) => typeof v === 'string'));
  expect({ hung: 'hung' in outcome, acceptable: !('error' in outcome) || own || refusal, wellFormed, error: shown(error) }).toMatchObject({
    hung: false,
    acceptable: true,
    wellFormed: true,
  });
  return outcome;
}

const RUNS = { numRuns: 300 };

describe('httpResponseHeaders fuzz', () => {
  it('sets a request id before, and every answer leaves with the security headers, the handler\'s own winning', async () => {
    await fc.assert(
      fc.asyncProperty(eventArb, behaviourArb, async (event, behaviour) => {
        const context = lambdaContext() as HttpContext;
        const outcome = await holds(httpResponseHeaders(), event, behaviour, context);
        expect(context.requestId).toMatch(/./);
        const own = 'answer' in behaviour ? (behaviour.answer.headers ?? {}) : {};
        const expected = 'response' in outcome ? { ...RESPONSE_HEADERS, 'x-request-id': context.requestId, ...own } : {};
        expect('response' in outcome ? outcome.response.headers : {}).toMatchObject(expected);
      }),
      RUNS,
    );
  });
});

describe('httpCors fuzz', () => {
  it('answers a preflight (the OPTIONS route key of a CORS path) with 204, adds the CORS headers of the origin to the answers of CORS routes only', async () => {
    const corsPaths = new Set(routes.filter((r) => r.cors).map((r) => r.path));
    await fc.assert(
      fc.asyncProperty(eventArb, behaviourArb, async (event, behaviour) => {
        const outcome = await holds(httpCors(), event, behaviour);
        const origin = Object.entries(event.headers ?? {}).find(([name]) => name.toLowerCase() === 'origin')?.[1];
        const preflight = event.requestContext?.http?.method === 'OPTIONS' && event.routeKey.startsWith('OPTIONS ') && corsPaths.has(event.routeKey.slice(8));
        const corsRoute = routeOfKey(event.routeKey)?.cors === true;
        expect(preflight ? outcome : { response: { statusCode: 204 } }).toMatchObject({ response: { statusCode: 204 } });
        const sent = 'response' in outcome ? (outcome.response.headers ?? {}) : {};
        const expected = 'response' in outcome && (preflight || corsRoute) ? corsHeaders(origin) : {};
        expect(sent).toMatchObject(expected);
        // No CORS header where there is no CORS route.
        expect(Object.keys(expected).length > 0 || !Object.keys(sent).some((name) => name.startsWith('access-control-'))).toBe(true);
      }),
      RUNS,
    );
  });
});

describe('httpErrorResponse fuzz', () => {
  it('turns anything thrown into the API.md §6 answer: the ApiError\'s status, 429/503 for store faults, 500 internal for the rest', async () => {
    await fc.assert(
      fc.asyncProperty(eventArb, thrownArb, async (event, thrown) => {
        const outcome = await holds(httpErrorResponse(), event, { throws: thrown });
        const { statusCode, body, headers: sent } = 'response' in outcome ? outcome.response : { statusCode: -1, body: '{}', headers: {} };
        const parsed = JSON.parse(String(body)) as { error?: { code: string; message: string } };
        const name = thrown instanceof Error ? thrown.name : '';
        const retry = sent?.['retry-after'];
        const expected =
          thrown instanceof ApiError
            ? { statusCode: thrown.status, code: thrown.code, message: thrown.message, retry: thrown.retryAfter === undefined ? undefined : String(thrown.retryAfter) }
            : name.includes('Throughput') || name === 'ThrottlingException'
              ? { statusCode: 429, code: 'throttled', message: parsed.error?.message, retry: '1' }
              : name === 'ServiceUnavailable' || name === 'TimeoutError'
                ? { statusCode: 503, code: 'unavailable', message: parsed.error?.message, retry: '2' }
                : // Nothing of what was thrown reaches the client.
                  { statusCode: 500, code: 'internal', message: 'Internal error', retry: undefined };
        expect({ statusCode, code: parsed.error?.code, message: parsed.error?.message, retry }).toEqual(expected);
      }),
      RUNS,
    );
  });

  it('leaves an answer alone', async () => {
    await fc.assert(
      fc.asyncProperty(eventArb, behaviourArb, async (event, behaviour) => {
        const outcome = await holds(httpErrorResponse(), event, behaviour);
        expect('answer' in behaviour ? outcome : 'thrown').toEqual('answer' in behaviour ? { response: behaviour.answer } : 'thrown');
      }),
      RUNS,
    );
  });
});

describe('httpRouteKey fuzz', () => {
  const functions: FunctionName[] = ['ingest', 'decide', 'admin', 'health'];
  /** A segment of the raw path that decodeURIComponent refuses (a malformed %XX or bytes that are not UTF-8). */
  const malformed = (rawPath: string) =>
    rawPath.split('/').some((segment) => {
      try {
        decodeURIComponent(segment);
        return false;
      } catch {
        return true;
      }
    });
  it('puts the table\'s route on the context for its own route keys, refuses any other with 404 not_found, and a malformed percent-encoding in the path with 400', async () => {
    await fc.assert(
      fc.asyncProperty(eventArb, fc.constantFrom(...functions), fc.boolean(), async (event, fn, defaultRoute) => {
        const context = lambdaContext() as HttpContext;
        const outcome = await holds(httpRouteKey(fn, { defaultRoute }), event, { answer: { statusCode: 200 } }, context);
        const route = routeOfKey(event.routeKey);
        const refused = malformed(event.rawPath);
        const served = !refused && (route?.function === fn || (event.routeKey === '$default' && defaultRoute));
        expect({ served: 'response' in outcome, route: context.route }).toEqual({ served, route: served && route?.function === fn ? route : undefined });
        const expected = refused ? { status: 400, code: 'validation_failed' } : { status: 404, code: 'not_found' };
        expect(served ? { error: expected } : outcome).toMatchObject({ error: expected });
      }),
      RUNS,
    );
  });

  it.each([
    ['GET /v1/admin/profiles/{userId}', '/v1/admin/profiles/%ff', 'userId', '"%ff"'],
    ['DELETE /v1/admin/keys/{keyId}', '/v1/admin/keys/k%', 'keyId', '"k%"'],
    ['$default', '/v1/%ZZ', 'path', '"%ZZ"'],
    ['GET /v1/admin/profiles/{userId}', '/v1/admin%C0/profiles/u', 'path', '"admin%C0"'],
  ])('%s on %s: 400 naming %s', async (key, rawPath, name, shown) => {
    const event = { version: '2.0', routeKey: key, rawPath, rawQueryString: '', headers: {}, isBase64Encoded: false } as unknown as APIGatewayProxyEventV2;
    const outcome = await run(httpRouteKey(key === '$default' ? 'health' : 'admin', { defaultRoute: true }), event, { answer: { statusCode: 200 } });
    expect(outcome).toMatchObject({ error: { status: 400, code: 'validation_failed', details: [{ path: name, message: expect.stringContaining(shown) }] } });
  });

  it('a well-formed encoding passes, a literal "%" included as %25', async () => {
    for (const rawPath of ['/v1/admin/profiles/%25', '/v1/admin/profiles/%E2%82%AC', '/v1/admin/profiles/u-1']) {
      const event = { version: '2.0', routeKey: 'GET /v1/admin/profiles/{userId}', rawPath, rawQueryString: '', headers: {}, isBase64Encoded: false } as unknown as APIGatewayProxyEventV2;
      expect(await run(httpRouteKey('admin'), event, { answer: { statusCode: 200 } })).toEqual({ response: { statusCode: 200 } });
    }
  });
});

describe('httpDeadline fuzz', () => {
  it('sets a finite deadline no later than the budget or the function\'s remaining time, whatever the context says', async () => {
    await fc.assert(
      fc.asyncProperty(
        eventArb,
        fc.option(fc.integer({ min: 1, max: 30_000 }), { nil: undefined }),
        fc.oneof(fc.integer({ min: -1_000, max: 900_000 }), fc.constant(undefined)),
        async (event, budgetMs, remaining) => {
          const context = lambdaContext(remaining === undefined ? {} : { getRemainingTimeInMillis: () => remaining }) as HttpContext;
          const before = Date.now();
          await holds(httpDeadline(budgetMs === undefined ? {} : { budgetMs }), event, { answer: { statusCode: 200 } }, context);
          const after = Date.now();
          const deadline = context.deadline ?? Number.NaN;
          const byFunction = typeof remaining === 'number' && Number.isFinite(remaining) && remaining > 0 ? after + remaining : Number.POSITIVE_INFINITY;
          const byBudget = budgetMs === undefined ? Number.POSITIVE_INFINITY : after + budgetMs;
          // Neither says: 10 s from now.
          const latest = Number.isFinite(Math.min(byFunction, byBudget)) ? Math.min(byFunction, byBudget) : after + 10_000;
          expect({ finite: Number.isFinite(deadline), notBefore: deadline >= before, inTime: deadline <= latest }).toEqual({ finite: true, notBefore: true, inTime: true });
        },
      ),
      RUNS,
    );
  });
});

describe('body middlewares fuzz (httpBodyDecoder → httpJsonBody)', () => {
  const LIMIT = 2048;
  const chain = (options: Parameters<typeof httpJsonBody>[0]): HttpMiddleware => {
    const decoder = httpBodyDecoder({ maxBodyBytes: LIMIT }) as HttpMiddleware;
    const parser = httpJsonBody(options) as HttpMiddleware;
    return {
      before: async (request) => {
        await decoder.before?.(request);
        await parser.before?.(request);
      },
    };
  };

  it('any body under any headers: parsed JSON within the depth limit, or a 400/413/415, never a 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(eventArb, fc.boolean(), fc.boolean(), async (event, yaml, trackerContentTypes) => {
        const outcome = await holds(chain({ yaml, trackerContentTypes }), event, { answer: { statusCode: 200 } });
        const decoded = event as DecodedBodyEvent;
        const status = 'error' in outcome ? (outcome.error as ApiError).status : 200;
        expect([200, 400, 413, 415]).toContain(status);
        // What it parsed is the JSON of the decoded text.
        const parsed = 'response' in outcome && decoded.parsedBody !== undefined;
        expect(parsed ? JSON.parse(String(decoded.body)) : 'unparsed').toEqual(parsed ? decoded.parsedBody : 'unparsed');
      }),
      RUNS,
    );
  });

  it('JSON nested past the limit is a 400 validation_failed, at the limit it is read', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 3 * MAX_JSON_NESTING }), fc.constantFrom('[', '{"a":'), async (depth, open) => {
        const close = open === '[' ? ']' : '}';
        const text = `${open.repeat(depth)}1${close.repeat(depth)}`;
        const event = { routeKey: 'POST /v1/batch', rawPath: '/v1/batch', headers: { 'content-type': 'application/json' }, body: text, isBase64Encoded: false, requestContext: { http: { method: 'POST' } } } as unknown as APIGatewayProxyEventV2;
        const outcome = await holds(chain({}), event, { answer: { statusCode: 200 } });
        const error = 'error' in outcome ? (outcome.error as ApiError) : undefined;
        expect({ status: error?.status, code: error?.code }).toEqual(depth > MAX_JSON_NESTING ? { status: 400, code: 'validation_failed' } : { status: undefined, code: undefined });
      }),
      { numRuns: 100 },
    );
  });
});
