/**
 * One concern of the HTTP chain: which route of the table
 * (shared/http/routes.ts) the request is for, from the route key API Gateway
 * sends (`event.routeKey`, `POST /v1/decide`), never from the path and method
 * again. The route goes to `context.route`.
 */
import type { FunctionName } from './routes.ts';
import { routeOfKey } from './routes.ts';
import { ApiError } from './errors.ts';
import type { HttpMiddleware } from './handler-adapter.ts';

export interface RouteKeyOptions {
  /** Also accept API Gateway's `$default` route (no route matched; `context.route` stays undefined). @default false */
  readonly defaultRoute?: boolean;
}

/**
 * The middleware for the function `fn`: a route key that names no route of
 * the table served by `fn` is a 404 `not_found` (API Gateway sends none such;
 * a misrouted or hand-made event does).
 */
export function httpRouteKey(fn: FunctionName, options: RouteKeyOptions = {}): HttpMiddleware {
  return {
    before: (request) => {
      const key = request.event?.routeKey;
      if (key === '$default' && options.defaultRoute === true) return;
      const route = typeof key === 'string' ? routeOfKey(key) : undefined;
      if (!route || route.function !== fn) throw new ApiError('not_found', `No such route: ${String(key).slice(0, 200)}`);
      request.context.route = route;
    },
  };
}
