import '#shared/source-maps-register.ts';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { httpBodyDecoder } from '#http/body-decoder.ts';
import { httpCors } from '#http/cors.ts';
import { ApiError, httpErrorResponse } from '#http/errors.ts';
import { httpRequestHandler, type HttpContext, type HttpMiddleware } from '#http/handler-adapter.ts';
import { httpResponseHeaders } from '#http/response-headers.ts';
import { httpRouteKey } from '#http/route-key.ts';
import { matchRoute } from '#http/routes.ts';
import { config } from '#shared/config.ts';
import { functionLogger } from '#shared/observability.ts';
import { storeReadiness } from '#store/readiness.ts';

/** Retry-After of a 503 from health (seconds): about when the next probe runs. */
const RETRY_AFTER_SECONDS = 2;

/**
 * GET /v1/health (and HEAD, its own route key `HEAD /v1/health`: the same
 * answer, whose body the HTTP server does not send): no credential; a
 * readiness check. 200
 * `{"ok": true, "version"}` while the store answers, 503
 * `{"ok": false, "version", "error": {"code": "unavailable", …}}` with
 * Retry-After while it does not (shared/store/readiness.ts: one cheap probe
 * at most every 2 s, 1 s deadline).
 * Deployed, it also serves API Gateway's `$default` route: a request no
 * route matches gets 404 not_found, or 405 method_not_allowed with `Allow`
 * when the path exists under another method, in the API's error shape
 * (only here, where API Gateway matched no route, is the path matched
 * against the table: to name the methods it allows).
 */
const logger = functionLogger('health');

/**
 * `$default` (no route matched): a 404 for an unknown path, a 405 with
 * Allow for a known path under another method, whatever the request's body
 * — so before the body check, which would call a body on `POST /v1/decide/`
 * too large for health.
 */
const unmatchedRoute: HttpMiddleware = {
  before: (request) => {
    if (request.context.route !== undefined) return;
    const method = request.event.requestContext.http.method;
    const path = request.event.rawPath;
    const match = matchRoute(method, path);
    if (!match.route && match.allowed.length > 0) {
      throw new ApiError('method_not_allowed', `${method} is not allowed on ${path}`, undefined, undefined, { allow: match.allowed.join(', ') });
    }
    throw new ApiError('not_found', `No route for ${method} ${path}`);
  },
};

const health = httpRequestHandler(
  async () => {
    const readiness = await storeReadiness();
    if (!readiness.ok) {
      return {
        status: 503,
        headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
        body: {
          ok: false,
          version: config.KAIROS_VERSION,
          error: { code: 'unavailable', message: `The store is unreachable (${readiness.reason ?? 'no answer'}); retry later` },
        },
      };
    }
    return { status: 200, body: { ok: true, version: config.KAIROS_VERSION } };
  },
);

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>()
  .use(injectLambdaContext(logger))
  .use(httpResponseHeaders())
  .use(httpCors())
  .use(httpErrorResponse({ logger }))
  .use(httpRouteKey('health', { defaultRoute: true }))
  .use(unmatchedRoute)
  // Health reads no body: any is too large.
  .use(httpBodyDecoder({ maxBodyBytes: 0 }))
  .handler(health);
