/**
 * The admin function's dispatch table, keyed by API Gateway route key
 * (`GET /v1/admin/profiles/{userId}`, as in shared/http/routes.ts). Each
 * route's implementation lives in its own module; a route of the table
 * that has no implementation here answers 404 not_found. The chain has
 * resolved the route (`context.route`) and the caller (`context.principal`);
 * `services` are the function's handles on the rest of the stack
 * (services.ts).
 */
import type { AdminRoute } from './services.ts';
import { catalogRoutes } from './catalog.ts';
import { keyRoutes } from './keys.ts';
import { listOutboxRoute } from './outbox.ts';
import { reportRoutes } from './reports.ts';
import { eraseProfileRoute, exportProfileRoute, getProfileRoute, listProfilesRoute } from './profiles.ts';
import { simulateRoute } from './simulate.ts';

export const adminRoutes: Readonly<Record<string, AdminRoute>> = {
  'GET /v1/admin/profiles': listProfilesRoute,
  'GET /v1/admin/profiles/{userId}': getProfileRoute,
  'GET /v1/admin/profiles/{userId}/export': exportProfileRoute,
  'DELETE /v1/admin/profiles/{userId}': eraseProfileRoute,
  'POST /v1/admin/simulate': simulateRoute,
  'GET /v1/admin/outbox': listOutboxRoute,
  ...catalogRoutes,
  ...keyRoutes,
  ...reportRoutes,
};
