/**
 * The one route table of the public HTTP API. The CDK stack creates an API
 * Gateway route per entry; the local stack dispatches with it; the functions
 * read the route key API Gateway sends (`event.routeKey`) against it
 * (route-key.ts); tests walk it.
 */
import { EVENT_ROUTES, type EventRoute } from '#domain/ingest/event-routes.ts';

export type FunctionName = 'ingest' | 'decide' | 'admin' | 'health';
/** The methods a route of the table is declared with. */
export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';
/** The methods a route is served on: its own, and HEAD for a GET route (`methodsOf`). */
export type ServedMethod = HttpMethod | 'HEAD';

/**
 * - `writeKey`: a source's write key, checked in the function (Basic auth or
 *   the body `writeKey` that Segment clients send, which an API Gateway
 *   authorizer cannot read).
 * - `iam`: SigV4 on the API Gateway route when deployed; the admin bearer
 *   token on the local stack.
 * - `none`: public (health only).
 */
export type RouteAuth = 'writeKey' | 'iam' | 'none';

export interface Route {
  readonly method: HttpMethod;
  /** API Gateway path syntax, `{name}` for a path parameter. */
  readonly path: string;
  readonly function: FunctionName;
  readonly auth: RouteAuth;
  /** Browsers call it: answer preflight and send CORS headers. */
  readonly cors: boolean;
}

const source = (method: HttpMethod, path: string, fn: FunctionName): Route => ({
  method,
  path,
  function: fn,
  auth: 'writeKey',
  cors: true,
});
const admin = (method: HttpMethod, path: string): Route => ({
  method,
  path,
  function: 'admin',
  auth: 'iam',
  cors: false,
});

export { EVENT_ROUTES, type EventRoute };

/**
 * Segment's short forms of the event routes, which its browser client
 * (analytics.js 2.0, `@segment/analytics-next`) posts to: `/v1/t` is
 * `/v1/track`, `/v1/b` is `/v1/batch`, and so on.
 */
export const SHORT_EVENT_ROUTES: Readonly<Record<string, EventRoute>> = {
  b: 'batch',
  t: 'track',
  i: 'identify',
  p: 'page',
  s: 'screen',
  a: 'alias',
  g: 'group',
};

/** The event route an ingest path names (long or short form), or undefined. */
export function eventRouteOfPath(path: string): EventRoute | undefined {
  const match = /^\/v1\/([a-z]+)$/.exec(path);
  const name = match?.[1];
  if (name === undefined) return undefined;
  if ((EVENT_ROUTES as readonly string[]).includes(name)) return name as EventRoute;
  return Object.hasOwn(SHORT_EVENT_ROUTES, name) ? SHORT_EVENT_ROUTES[name] : undefined;
}

export const routes: readonly Route[] = [
  ...EVENT_ROUTES.map((name) => source('POST', `/v1/${name}`, 'ingest')),
  ...Object.keys(SHORT_EVENT_ROUTES).map((short) => source('POST', `/v1/${short}`, 'ingest')),
  source('POST', '/v1/decide', 'decide'),
  { method: 'GET', path: '/v1/health', function: 'health', auth: 'none', cors: true },
  admin('GET', '/v1/admin/profiles'),
  admin('GET', '/v1/admin/profiles/{userId}'),
  admin('GET', '/v1/admin/profiles/{userId}/export'),
  admin('DELETE', '/v1/admin/profiles/{userId}'),
  admin('GET', '/v1/admin/catalog'),
  admin('PUT', '/v1/admin/catalog'),
  admin('POST', '/v1/admin/catalog/validate'),
  admin('GET', '/v1/admin/catalog/versions'),
  admin('GET', '/v1/admin/catalog/versions/{version}'),
  admin('POST', '/v1/admin/catalog/rollback'),
  admin('POST', '/v1/admin/simulate'),
  admin('POST', '/v1/admin/keys'),
  admin('GET', '/v1/admin/keys'),
  admin('PUT', '/v1/admin/keys/{keyId}/user-token-secret'),
  admin('DELETE', '/v1/admin/keys/{keyId}'),
  admin('GET', '/v1/admin/reports/actions'),
  admin('GET', '/v1/admin/outbox'),
  admin('GET', '/v1/admin/reports/journeys'),
];

/**
 * The function of API Gateway's `$default` route: every request no route
 * matches (it answers 404 not_found, or 405 method_not_allowed with Allow).
 */
export const DEFAULT_ROUTE_FUNCTION: FunctionName = 'health';

/** API Gateway's route key: `POST /v1/batch`. */
export const routeKey = (route: { readonly method: ServedMethod; readonly path: string }): string => `${route.method} ${route.path}`;

/**
 * The methods a route is served on: its own, and for a GET route HEAD too
 * (RFC 9110 §9.3.2: HEAD wherever GET is served; uptime monitors probe with
 * it). A HEAD request is the GET route's request (same function, auth and
 * answer); the HTTP server sends the answer's status and headers without
 * its body (Node's http server on the local stack, API Gateway deployed).
 */
export const methodsOf = (route: Pick<Route, 'method'>): readonly ServedMethod[] => (route.method === 'GET' ? ['GET', 'HEAD'] : [route.method]);

/** Every route key the API serves for a route of the table (`GET /v1/health`, `HEAD /v1/health`). */
export const routeKeysOf = (route: Pick<Route, 'method' | 'path'>): string[] => methodsOf(route).map((method) => routeKey({ method, path: route.path }));

const routesByKey: ReadonlyMap<string, Route> = new Map(routes.flatMap((route) => routeKeysOf(route).map((key) => [key, route] as const)));

/** The route of the table an API Gateway route key names (`POST /v1/decide`; `HEAD /v1/health` names the GET route), or undefined. */
export const routeOfKey = (key: string): Route | undefined => routesByKey.get(key);

/** A raw path segment decoded (percent-encoded UTF-8), or undefined when its encoding is malformed (`%ZZ`, `%ff`, a lone `%`). */
export function decodePathSegment(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/**
 * Where a raw path's percent-encoding is malformed: the first such segment,
 * its 0-based index among the path's `/`-separated segments (index 0 is the
 * empty text before the leading `/`), or undefined when every segment
 * decodes.
 */
export function malformedPathSegment(rawPath: string): { readonly segment: string; readonly index: number } | undefined {
  if (!rawPath.includes('%')) return undefined;
  const segments = rawPath.split('/');
  const index = segments.findIndex((segment) => decodePathSegment(segment) === undefined);
  return index === -1 ? undefined : { segment: segments[index] as string, index };
}

/**
 * Match a concrete method and path against the table; returns the route,
 * the route key API Gateway sends for it (`HEAD /v1/health` for a HEAD on a
 * GET route) and its path parameters (decoded; a parameter whose encoding
 * is malformed is passed as sent, and refused by the function's route-key
 * middleware), or, when no route matches, the methods the path is served
 * on (for a 405's Allow). API Gateway does this deployed (and local/server.ts on the
 * local stack); a function reads the route key instead (route-key.ts).
 */
export function matchRoute(
  method: string,
  path: string,
): { route: Route; key: string; pathParameters: Record<string, string> } | { route: undefined; allowed: ServedMethod[] } {
  const allowed: ServedMethod[] = [];
  for (const route of routes) {
    const params = matchPath(route.path, path);
    if (!params) continue;
    const methods = methodsOf(route);
    if ((methods as readonly string[]).includes(method)) return { route, key: routeKey({ method: method as ServedMethod, path: route.path }), pathParameters: params };
    allowed.push(...methods);
  }
  return { route: undefined, allowed };
}

function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const want = pattern.split('/');
  const got = path.split('/');
  if (want.length !== got.length) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < want.length; i++) {
    const w = want[i] ?? '';
    const g = got[i] ?? '';
    if (w.startsWith('{') && w.endsWith('}')) {
      if (g === '') return undefined;
      params[w.slice(1, -1)] = decodePathSegment(g) ?? g;
    } else if (w !== g) {
      return undefined;
    }
  }
  return params;
}
