import { httpHandler } from '#shared/http/middleware.ts';
import { ApiError } from '#shared/http/errors.ts';
import { matchRoute } from '#shared/http/routes.ts';
import { config } from '#shared/config.ts';

/**
 * GET /v1/health: no credential; 200 once the function can serve.
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
    return { status: 200, body: { ok: true, version: config.KAIROS_VERSION } };
  },
  { maxBodyBytes: 0, cors: true, body: 'none' },
);
