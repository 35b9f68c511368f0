/**
 * GET /v1/health is a readiness check: 200 while DynamoDB answers, 503 with
 * Retry-After while it cannot be reached, one probe at most every couple of
 * seconds however often it is asked; HEAD gets the same answer (uptime
 * monitors probe with HEAD).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler } from '#functions/health/handler.ts';
import { dynamo } from '#store/client.ts';
import { PROBE_CACHE_MS, resetReadiness } from '#store/readiness.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';
import { refusingEndpoint } from '../support/store-faults.ts';

const call = async (init: Parameters<typeof apiGatewayEvent>[0]) => {
  const res = await handler(apiGatewayEvent(init), lambdaContext());
  return { status: res.statusCode, headers: (res.headers ?? {}) as Record<string, string>, body: JSON.parse(String(res.body)) };
};

beforeEach(() => resetReadiness());
afterEach(() => {
  dynamo().useEndpoint(undefined);
  vi.useRealTimers();
});

describe('health function', () => {
  it('answers GET /v1/health with ok and the version while the store answers, without a credential', async () => {
    const res = await call({ method: 'GET', path: '/v1/health' });
    expect(res.body).toEqual({ ok: true, version: expect.any(String) });
    expect(res.status).toBe(200);
  });

  it('answers 503 with ok false and Retry-After while the store cannot be reached', async () => {
    dynamo().useEndpoint(await refusingEndpoint());
    const res = await call({ method: 'GET', path: '/v1/health' });
    expect(res.status).toBe(503);
    expect(res.body).toEqual({ ok: false, version: expect.any(String), error: { code: 'unavailable', message: expect.any(String) } });
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('probes the store at most once per interval, however often it is asked, and sees it recover', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const client = dynamo();
    client.resetCounts();
    const answers = await Promise.all(Array.from({ length: 20 }, () => call({ method: 'GET', path: '/v1/health' })));
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 20 }, () => 200));
    expect(client.requests).toBe(1);

    client.useEndpoint(await refusingEndpoint());
    expect((await call({ method: 'GET', path: '/v1/health' })).status).toBe(200); // the cached answer
    vi.setSystemTime(Date.now() + PROBE_CACHE_MS);
    expect((await call({ method: 'GET', path: '/v1/health' })).status).toBe(503);
    client.useEndpoint(undefined);
    vi.setSystemTime(Date.now() + PROBE_CACHE_MS);
    expect((await call({ method: 'GET', path: '/v1/health' })).status).toBe(200);
  });

  it('answers HEAD /v1/health (its own API Gateway route) as GET, 200 and 503 with the same headers; the HTTP server sends no body', async () => {
    const head = await call({ method: 'HEAD', path: '/v1/health' });
    expect(head.status).toBe(200);
    expect(head.body).toEqual({ ok: true, version: expect.any(String) });
    expect(head.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-request-id': expect.any(String) });
    // Monitors probe from anywhere: the CORS headers of the GET route.
    expect((await call({ method: 'HEAD', path: '/v1/health', headers: { origin: 'https://status.example' } })).headers['access-control-allow-origin']).toBe('*');
    dynamo().useEndpoint(await refusingEndpoint());
    resetReadiness();
    const down = await call({ method: 'HEAD', path: '/v1/health' });
    expect(down.status).toBe(503);
    expect(Number(down.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('answers a method the health route does not take with 405 and Allow: GET, HEAD', async () => {
    const res = await call({ method: 'POST', path: '/v1/health', routeKey: '$default' });
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
    // HEAD where only POST is served: 405 naming POST.
    const head = await call({ method: 'HEAD', path: '/v1/decide', routeKey: '$default' });
    expect([head.status, head.headers.allow]).toEqual([405, 'POST']);
  });

  it('answers the deployed $default route with 404 not_found for an unknown path', async () => {
    const res = await call({ method: 'GET', path: '/v1/nowhere', routeKey: '$default' });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('answers $default with 404 or 405 whatever the body: a decide posted to /v1/decide/ is no route, not a body too large', async () => {
    const body = { userId: 'u-1', channel: 'web' };
    const trailing = await call({ method: 'POST', path: '/v1/decide/', routeKey: '$default', body });
    expect({ status: trailing.status, body: trailing.body }).toEqual({
      status: 404,
      body: { error: { code: 'not_found', message: 'No route for POST /v1/decide/' } },
    });
    const put = await call({ method: 'PUT', path: '/v1/batch', routeKey: '$default', body: { batch: [] } });
    expect(put.status).toBe(405);
    expect(put.headers.allow).toBe('POST');
    // The health route itself reads no body: one is too large for it.
    expect((await call({ method: 'GET', path: '/v1/health', body })).status).toBe(413);
  });

  it('answers the deployed $default route with 405 and Allow for a known path under another method', async () => {
    const res = await call({ method: 'DELETE', path: '/v1/batch', routeKey: '$default' });
    expect(res.status).toBe(405);
    expect(res.body.error.code).toBe('method_not_allowed');
    expect(res.headers.allow).toBe('POST');
  });
});
