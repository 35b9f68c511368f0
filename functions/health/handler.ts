import { httpHandler } from '#shared/http/middleware.ts';
import { ApiError } from '#shared/http/errors.ts';
import { matchRoute } from '#shared/http/routes.ts';
import { config } from '#shared/config.ts';
import { storeReadiness } from '#shared/store/readiness.ts';

/** Retry-After of a 503 from health (seconds): about when the next probe runs. */
const RETRY_AFTER_SECONDS = 2;

/**
 * GET /v1/health: no credential; a readiness check. 200
 * `{"ok": true, "version"}` while the store answers, 503
 * `{"ok": false, "version", "error": {"code": "unavailable", …}}` with
 * Retry-After while it does not (shared/store/readiness.ts: one cheap probe
 * at most every 2 s, 1 s deadline).
 * Deployed, it also serves API Gateway's `$default` route: a request no
 * route matches gets 404 not_found, or 405 method_not_allowed with `Allow`
 * when the path exists under another method, in the API's error shape.
 */
export const handler = httpHandler(
  async (request) => {
    if (request.routeKey === '$default') {
      const match = matchRoute(request.method, request.path);
      if (!match.route && match.allowed.length > 0) {
        throw new ApiError('method_not_allowed', `${request.method} is not allowed on ${request.path}`, undefined, undefined, {
          allow: match.allowed.join(', '),
        });
      }
      throw new ApiError('not_found', `No route for ${request.method} ${request.path}`);
    }
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
  { maxBodyBytes: 0, cors: true, body: 'none' },
);
