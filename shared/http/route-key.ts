/**
 * One concern of the HTTP chain: which route of the table
 * (shared/http/routes.ts) the request is for, from the route key API Gateway
 * sends (`event.routeKey`, `POST /v1/decide`), never from the path and method
 * again. The route goes to `context.route`.
 *
 * A path whose percent-encoding is malformed (`/v1/admin/profiles/%ff`)
 * names no resource: it is a 400 naming the path parameter it is in (else
 * `path`), whichever route API Gateway picked for it (`$default` included),
 * since API Gateway passes the raw path on.
 */
import type { FunctionName, Route } from './routes.ts';
import { malformedPathSegment, routeOfKey } from './routes.ts';
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
      const route = typeof key === 'string' ? routeOfKey(key) : undefined;
      const rawPath = request.event?.rawPath;
      if (typeof rawPath === 'string') refuseMalformedPath(rawPath, route);
      if (key === '$default' && options.defaultRoute === true) return;
      if (!route || route.function !== fn) throw new ApiError('not_found', `No such route: ${String(key).slice(0, 200)}`);
      request.context.route = route;
    },
  };
}

/** A 400 `validation_failed` when `rawPath` holds a malformed percent-encoding, naming the route's path parameter there (else `path`). */
function refuseMalformedPath(rawPath: string, route: Route | undefined): void {
  const malformed = malformedPathSegment(rawPath);
  if (malformed === undefined) return;
  const pattern = route?.path.split('/')[malformed.index];
  const name = pattern?.startsWith('{') && pattern.endsWith('}') ? pattern.slice(1, -1) : 'path';
  const message = `has a malformed percent-encoding (${JSON.stringify(malformed.segment.slice(0, 100))}): each "%" must start a %XX escape of UTF-8 bytes`;
  throw new ApiError('validation_failed', `The path is not valid: ${name} ${message}`, [{ path: name, message }]);
}
