import { describe, expect, it } from 'vitest';
import { handler } from '../../functions/health/handler.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';

const call = async (init: Parameters<typeof apiGatewayEvent>[0]) => {
  const res = await handler(apiGatewayEvent(init), lambdaContext());
  return { status: res.statusCode, headers: res.headers ?? {}, body: JSON.parse(String(res.body)) };
};

describe('health function', () => {
  it('answers GET /v1/health with ok and the version, without a credential', async () => {
    const res = await call({ method: 'GET', path: '/v1/health' });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ok: true, version: expect.any(String) });
  });

  it('answers the deployed $default route with 404 not_found for an unknown path', async () => {
    const res = await call({ method: 'GET', path: '/v1/nowhere', routeKey: '$default' });
    expect(res.status).toBe(404);
    expect(res.body.error.code).toBe('not_found');
    expect(res.headers['x-request-id']).toBeTruthy();
  });

  it('answers the deployed $default route with 405 and Allow for a known path under another method', async () => {
    const res = await call({ method: 'DELETE', path: '/v1/batch', routeKey: '$default' });
    expect(res.status).toBe(405);
    expect(res.body.error.code).toBe('method_not_allowed');
    expect(res.headers.allow).toBe('POST');
  });
});
