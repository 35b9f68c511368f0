/**
 * One concern of the HTTP chain: who is calling an operator route, resolved
 * once per request (shared/http/auth.ts `authenticateAdmin`: IAM deployed,
 * the admin token locally; 401 without, 403 for a write key) and put on
 * `context.principal`, where the admin routes read it (e.g. as the author of
 * a catalog version).
 */
import { authenticateAdmin } from './auth.ts';
import type { HttpMiddleware } from './handler-adapter.ts';

/** The middleware. Use it before the body middlewares: an unauthenticated caller gets 401, not a body error. */
export function httpAdminPrincipal(): HttpMiddleware {
  return {
    before: async (request) => {
      request.context.principal = (await authenticateAdmin(request.event)).principal;
    },
  };
}
