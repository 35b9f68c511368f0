/**
 * The handler's side of the HTTP chain: what a function's handler sees of an
 * API Gateway HTTP API (payload 2.0) request once the middlewares before it
 * have run, and what it answers. `httpRequestHandler` adapts such a handler
 * to middy's `(event, context)`; the middlewares around it (each in its own
 * module, one concern each) add headers, map errors and read the body.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import type { MiddlewareObj } from '@middy/core';
import type { Route } from './routes.ts';

/** The event once the body middlewares (body-decoder.ts) have run. */
export interface DecodedBodyEvent extends APIGatewayProxyEventV2 {
  /** The JSON value of the body (httpJsonBody); undefined without a body, or for a YAML body where YAML is allowed. */
  parsedBody?: unknown;
}

export interface HttpRequest {
  /** API Gateway's request id, answered as `x-request-id`. */
  readonly requestId: string;
  readonly method: string;
  /** API Gateway's route key (`POST /v1/decide`), or `$default` when no route matched. */
  readonly routeKey: string;
  readonly path: string;
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly pathParameters: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  /** Body text (decoded by the body middleware); '' without a body. */
  readonly rawBody: string;
  /** Parsed JSON body when the chain parses JSON, else undefined. */
  readonly body: unknown;
  readonly contentType: string;
  readonly event: APIGatewayProxyEventV2;
}

export interface HttpResponse {
  /** HTTP status code. */
  readonly status: number;
  /** Sent as JSON; undefined sends an empty body. */
  readonly body?: unknown;
  /** Lower-case names; these win over the chain's defaults (CORS excepted). */
  readonly headers?: Record<string, string>;
}

/**
 * The Lambda context as the chain's middlewares leave it. Each field is set
 * by one middleware, and is there only when the function's chain uses it.
 */
export interface HttpContext extends Context {
  /** response-headers.ts: API Gateway's request id (a fresh UUID when the event has none). */
  requestId?: string;
  /** route-key.ts: the route of shared/http/routes.ts the event's routeKey names; undefined on `$default`. */
  route?: Route;
  /** deadline.ts: epoch ms by which the handler answers. */
  deadline?: number;
  /** admin-principal.ts: who is calling an operator route (an IAM ARN or access key, or `local-admin`). */
  principal?: string;
}

/** A middleware of the HTTP chain. */
export type HttpMiddleware = MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>;

/** A function's handler: the request in, the answer out; anything it throws goes to the chain's error mapping. */
export type HttpRequestHandler = (request: HttpRequest, context: HttpContext) => Promise<HttpResponse>;

/** The chain's value of a context field its middleware sets; throws (a 500: a chain without that middleware is a bug) when absent. */
export function fromChain<K extends 'requestId' | 'route' | 'deadline' | 'principal'>(context: HttpContext, field: K): NonNullable<HttpContext[K]> {
  const value = context[field];
  if (value === undefined || value === null) throw new Error(`The HTTP chain sets no context.${field}: its middleware is missing`);
  return value as NonNullable<HttpContext[K]>;
}

function lowerHeaders(headers: APIGatewayProxyEventV2['headers'] | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(headers ?? {})) if (typeof v === 'string') out[k.toLowerCase()] = v;
  return out;
}

/** The handler's view of the event (after the body middleware, if the chain has one). */
export function toHttpRequest(event: DecodedBodyEvent, context: HttpContext): HttpRequest {
  const headers = lowerHeaders(event.headers);
  const query: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) if (typeof v === 'string') query[k] = v;
  return {
    requestId: context.requestId ?? event.requestContext?.requestId ?? '',
    method: event.requestContext?.http?.method ?? 'GET',
    routeKey: event.routeKey,
    path: event.rawPath,
    headers,
    pathParameters: { ...(event.pathParameters ?? {}) } as Record<string, string>,
    query,
    rawBody: typeof event.body === 'string' && !event.isBase64Encoded ? event.body : '',
    body: event.parsedBody,
    contentType: headers['content-type'] ?? '',
    event,
  };
}

/** Adapt a handler to middy: builds the HttpRequest, turns its HttpResponse into API Gateway's result (JSON body). */
export function httpRequestHandler(handler: HttpRequestHandler) {
  return async (event: APIGatewayProxyEventV2, context: HttpContext): Promise<APIGatewayProxyStructuredResultV2> => {
    const response = await handler(toHttpRequest(event, context), context);
    return {
      statusCode: response.status,
      headers: { ...(response.headers ?? {}) },
      body: response.body === undefined ? '' : JSON.stringify(response.body),
    };
  };
}
