/**
 * What the admin function's routes are given besides the request: its
 * handles on the rest of the stack, and the shape of a route.
 */
import type { HttpContext, HttpRequest, HttpResponse } from '#http/handler-adapter.ts';
import type { EmissionScheduler } from '#shared/bus/bus.ts';

/**
 * What the routes reach besides the tables: the stack's scheduler (the
 * erasure cancels a customer's pending sends). Deployed, EventBridge
 * Scheduler (handler.ts); on the local stack, the same LocalScheduler the
 * dispatcher schedules on (local/stack.ts).
 */
export interface AdminServices {
  readonly scheduler: EmissionScheduler;
}

/** One admin route: the request, the chain's context and the services in; the answer out. */
export type AdminRoute = (request: HttpRequest, context: HttpContext, services: AdminServices) => Promise<HttpResponse>;
