/**
 * One concern of the HTTP chain: CORS for the source routes (API.md §1): the
 * origins the operator allows (`KAIROS_CORS_ORIGINS`, `*` by default) and the
 * request headers a preflight may ask for — those trackers and page agents
 * send, plus any the operator adds (`KAIROS_CORS_ALLOW_HEADERS`).
 * `httpCors()` answers a preflight and adds the headers to every answer,
 * errors included, so that a browser can read them.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { config } from '#shared/config.ts';
import type { HttpMiddleware } from './handler-adapter.ts';
import { routeOfKey, routes } from './routes.ts';

/**
 * Request headers every preflight allows, lower-case. The trackers'
 * (Segment's browser client sends `authorization` and, on a retry,
 * `x-retry-count`; RudderStack's `anonymousid`), Kairos' own
 * (`x-kairos-user-token`), and the trace and correlation headers that
 * monitoring agents add to a page's cross-origin calls: W3C Trace Context and
 * Baggage (OpenTelemetry, Dynatrace, Azure Application Insights), Datadog RUM,
 * Sentry, Zipkin B3, AWS X-Ray, New Relic, Elastic APM, Google Cloud Trace,
 * Application Insights' legacy headers.
 */
export const DEFAULT_CORS_ALLOW_HEADERS: readonly string[] = [
  'authorization',
  'content-type',
  'content-encoding',
  'x-kairos-user-token',
  'x-request-id',
  'x-retry-count',
  'anonymousid',
  'traceparent',
  'tracestate',
  'baggage',
  'x-datadog-trace-id',
  'x-datadog-parent-id',
  'x-datadog-origin',
  'x-datadog-sampling-priority',
  'x-datadog-tags',
  'sentry-trace',
  'b3',
  'x-b3-traceid',
  'x-b3-spanid',
  'x-b3-parentspanid',
  'x-b3-sampled',
  'x-b3-flags',
  'x-amzn-trace-id',
  'newrelic',
  'elastic-apm-traceparent',
  'x-cloud-trace-context',
  'request-id',
  'request-context',
];

const CORS_FIXED_HEADERS = {
  'access-control-allow-methods': 'GET,HEAD,POST,PUT,DELETE,OPTIONS',
  'access-control-max-age': '600',
  'access-control-expose-headers': 'x-request-id,retry-after',
};

const splitList = (text: string): string[] => text.split(',').map((item) => item.trim()).filter(Boolean);

/** The allowed request headers: the defaults and the operator's extra ones, lower-case, each once. */
export function corsAllowHeaders(extra: string): string[] {
  return [...new Set([...DEFAULT_CORS_ALLOW_HEADERS, ...splitList(extra).map((h) => h.toLowerCase())])];
}

let cached:
  | { readonly origins: string; readonly extra: string; readonly allowed: ReadonlySet<string>; readonly headers: Record<string, string> }
  | undefined;

/** The CORS response headers for a request from `origin` (none when that origin is not allowed). */
export function corsHeaders(origin: string | undefined): Record<string, string> {
  const origins = config.KAIROS_CORS_ORIGINS;
  const extra = config.KAIROS_CORS_ALLOW_HEADERS;
  if (cached?.origins !== origins || cached.extra !== extra) {
    cached = {
      origins,
      extra,
      allowed: new Set(splitList(origins)),
      headers: { ...CORS_FIXED_HEADERS, 'access-control-allow-headers': corsAllowHeaders(extra).join(',') },
    };
  }
  if (cached.allowed.has('*')) return { 'access-control-allow-origin': '*', ...cached.headers };
  if (origin && cached.allowed.has(origin)) {
    return { 'access-control-allow-origin': origin, vary: 'Origin', ...cached.headers };
  }
  return {};
}

function originOf(event: APIGatewayProxyEventV2): string | undefined {
  for (const [name, value] of Object.entries(event?.headers ?? {})) if (name.toLowerCase() === 'origin' && typeof value === 'string') return value;
  return undefined;
}

const corsPaths: ReadonlySet<string> = new Set(routes.filter((route) => route.cors).map((route) => route.path));

/**
 * Whether the event is a CORS preflight: API Gateway routes an `OPTIONS`
 * request on a CORS path to its function with the route key `OPTIONS <path>`
 * (infra/constructs/kairos-http-api.ts, local/server.ts).
 */
export function isPreflight(event: APIGatewayProxyEventV2): boolean {
  const key = event?.routeKey;
  return event?.requestContext?.http?.method === 'OPTIONS' && typeof key === 'string' && key.startsWith('OPTIONS ') && corsPaths.has(key.slice('OPTIONS '.length));
}

/** Whether the route key names a route browsers call (`cors` in the route table); `$default` and operator routes do not. */
export const isCorsRouteKey = (key: unknown): boolean => typeof key === 'string' && routeOfKey(key)?.cors === true;

/**
 * The middleware: answers a preflight at once (204 with the CORS headers and
 * the request id; nothing after it runs), and adds the CORS headers for the
 * request's origin to any other answer on a CORS route (none on `$default`:
 * a browser cannot read what no route answers). Use it after
 * httpResponseHeaders.
 */
export function httpCors(): HttpMiddleware {
  const apply = (request: { event: APIGatewayProxyEventV2; response?: APIGatewayProxyStructuredResultV2 | null | undefined }) => {
    const response = request.response;
    if (response === undefined || response === null || typeof response !== 'object' || !isCorsRouteKey(request.event?.routeKey)) return;
    response.headers = { ...(response.headers ?? {}), ...corsHeaders(originOf(request.event)) };
  };
  return {
    before: (request) => {
      if (!isPreflight(request.event)) return undefined;
      return { statusCode: 204, headers: { ...corsHeaders(originOf(request.event)), 'x-request-id': request.context.requestId ?? '' }, body: '' };
    },
    after: apply,
    onError: apply,
  };
}
