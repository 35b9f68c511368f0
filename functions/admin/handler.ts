/**
 * The operator function: every `/v1/admin/*` route. IAM (or the local
 * admin token) is checked first; then the route key picks the
 * implementation from the dispatch table (routes.ts).
 */
import { authenticateAdmin } from '#http/auth.ts';
import { ApiError } from '#http/errors.ts';
import { httpHandler } from '#http/middleware.ts';
import { MAX_CATALOG_BODY_BYTES } from './catalog.ts';
import { adminRoutes } from './routes.ts';

/** Catalogs are the largest admin bodies (functions/admin/catalog.ts). */
const MAX_ADMIN_BODY_BYTES = MAX_CATALOG_BODY_BYTES;

export const handler = httpHandler(
  async (request, context) => {
    await authenticateAdmin(request);
    const route = Object.hasOwn(adminRoutes, request.routeKey) ? adminRoutes[request.routeKey] : undefined;
    if (!route) throw new ApiError('not_found', `No such route: ${request.routeKey}`);
    return route(request, context);
  },
  { maxBodyBytes: MAX_ADMIN_BODY_BYTES, cors: false, body: 'json-or-yaml' },
);
