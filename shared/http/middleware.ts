/**
 * The handler chain every HTTP function shares (middy): request id, CORS,
 * body decoding (body-decoder.ts: compression, charset, size limits) and
 * parsing, and error mapping to API.md §6.
 * A handler only sees a parsed HttpRequest and returns an HttpResponse.
 */
import { randomUUID } from 'node:crypto';
import middy, { type MiddlewareObj } from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { httpBodyDecoder } from './body-decoder.ts';
import { corsHeaders } from './cors.ts';
import { ApiError, storeFaultToApiError } from './errors.ts';

export const logger = new Logger({ serviceName: 'kairos' });

export interface HttpRequest {
  readonly requestId: string;
  readonly method: string;
  readonly routeKey: string;
  readonly path: string;
  /** Lower-cased header names. */
  readonly headers: Readonly<Record<string, string>>;
  readonly pathParameters: Readonly<Record<string, string>>;
  readonly query: Readonly<Record<string, string>>;
  /** Raw body text (decoded from base64 when needed). */
  readonly rawBody: string;
  /** Parsed JSON body when the route parses JSON, else undefined. */
  readonly body: unknown;
  readonly contentType: string;
  readonly event: APIGatewayProxyEventV2;
}

export interface HttpResponse {
  readonly status: number;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
}

export interface HttpOptions {
  /** Maximum body size in bytes; larger gives 413. */
  readonly maxBodyBytes: number;
  /** Send CORS headers (source routes). */
  readonly cors: boolean;
  /**
   * How the body is read: `json` requires JSON (415 otherwise), `json-or-yaml`
   * leaves a YAML body unparsed for the handler, `none` ignores it.
   */
  readonly body: 'json' | 'json-or-yaml' | 'none';
  /**
   * Also read RudderStack's `application/x-www-form-urlencoded` as JSON (its
   * node SDK posts gzipped JSON with that type). Source routes only.
   * @default false
   */
  readonly trackerContentTypes?: boolean;
  /**
   * Middlewares that run first, before the body is decoded (so that they also
   * see the requests the decoder refuses).
   */
  readonly first?: readonly MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, Context>[];
}

function lowerHeaders(headers: APIGatewayProxyEventV2['headers'] | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(headers ?? {})) if (typeof v === 'string') out[k.toLowerCase()] = v;
  return out;
}

/** The body text; httpBodyDecoder has already turned any base64 or compressed body into text. */
function bodyText(event: APIGatewayProxyEventV2): string {
  if (event.body === undefined || event.body === null) return '';
  return event.isBase64Encoded ? new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(event.body, 'base64')) : event.body;
}

/**
 * Deepest nesting of arrays and objects a JSON body may have. Far above
 * what any route accepts (an event's properties nest at most 10 levels
 * below the message, a catalog a few), and low enough that no code walking
 * a body can run out of stack.
 */
export const MAX_JSON_NESTING = 64;

/** Whether valid JSON text nests deeper than `max` (one pass over the text, no recursion). */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/** JSON, `text/plain` (any charset: Segment's browser client, sendBeacon) and, for trackers, form-urlencoded. */
function isJsonType(contentType: string, trackerContentTypes: boolean): boolean {
  const base = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (trackerContentTypes && base === 'application/x-www-form-urlencoded') return true;
  return base === 'application/json' || base === 'text/plain' || base.endsWith('+json');
}

function isYamlType(contentType: string): boolean {
  const base = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return base === 'application/yaml' || base === 'application/x-yaml' || base === 'text/yaml';
}

export function parseRequest(
  event: APIGatewayProxyEventV2,
  options: HttpOptions,
  headers: Record<string, string> = lowerHeaders(event.headers),
): HttpRequest {
  const requestId = event.requestContext?.requestId || randomUUID();
  const contentType = headers['content-type'] ?? '';
  const byteLength = event.body
    ? event.isBase64Encoded
      ? Math.floor((event.body.length * 3) / 4)
      : Buffer.byteLength(event.body, 'utf8')
    : 0;
  if (byteLength > options.maxBodyBytes) {
    throw new ApiError('payload_too_large', `The body is larger than ${options.maxBodyBytes} bytes`);
  }
  let rawBody = '';
  if (options.body !== 'none') {
    try {
      rawBody = bodyText(event);
    } catch {
      throw new ApiError('invalid_json', 'The body is not valid UTF-8 text');
    }
  }
  let body: unknown;
  if (options.body !== 'none' && rawBody.length > 0) {
    if (options.body === 'json-or-yaml' && isYamlType(contentType)) {
      body = undefined;
    } else {
      // Segment's SDKs and browsers' sendBeacon send text/plain; no content type is read as JSON.
      if (contentType !== '' && !isJsonType(contentType, options.trackerContentTypes === true)) {
        throw new ApiError('unsupported_media_type', 'The body must be JSON (application/json)');
      }
      try {
        body = JSON.parse(rawBody);
      } catch {
        throw new ApiError('invalid_json', 'The body is not valid JSON');
      }
      if (nestsDeeperThan(rawBody, MAX_JSON_NESTING)) {
        throw new ApiError('validation_failed', `The body nests deeper than ${MAX_JSON_NESTING} levels`, [
          { path: '(root)', message: `must nest at most ${MAX_JSON_NESTING} levels of arrays and objects` },
        ]);
      }
    }
  }
  const query: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(event.queryStringParameters ?? {})) if (typeof v === 'string') query[k] = v;
  return {
    requestId,
    method: event.requestContext?.http?.method ?? 'GET',
    routeKey: event.routeKey,
    path: event.rawPath,
    headers,
    pathParameters: { ...(event.pathParameters ?? {}) } as Record<string, string>,
    query,
    rawBody,
    body,
    contentType,
    event,
  };
}

function respond(
  status: number,
  body: unknown,
  requestId: string,
  extra: Record<string, string>,
): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: status,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'x-request-id': requestId,
      'cache-control': 'no-store',
      ...extra,
    },
    body: body === undefined ? '' : JSON.stringify(body),
  };
}

export function errorResponse(error: unknown, requestId: string, cors: Record<string, string>): APIGatewayProxyStructuredResultV2 {
  const apiError = error instanceof ApiError ? error : storeFaultToApiError(error);
  if (apiError) {
    const extra: Record<string, string> = { ...cors, ...(apiError.headers ?? {}) };
    if (apiError.retryAfter !== undefined) extra['retry-after'] = String(apiError.retryAfter);
    if (apiError.status >= 500) logger.warn('request failed', { code: apiError.code, error: error as Error });
    return respond(apiError.status, apiError.toBody(), requestId, extra);
  }
  logger.error('unhandled error', { error: error as Error });
  return respond(500, { error: { code: 'internal', message: 'Internal error' } }, requestId, cors);
}

type Handler = (request: HttpRequest, context: Context) => Promise<HttpResponse>;

/**
 * The error mapping of the chain as a middleware: whatever a middleware before
 * the handler throws (the body decoder's 413/415/400) becomes the API.md §6
 * answer, with the CORS headers a browser needs to read it.
 */
function httpErrorResponse(options: HttpOptions): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, Context> {
  return {
    onError: (request) => {
      if (request.response !== undefined) return;
      const headers = lowerHeaders(request.event.headers);
      const cors = options.cors ? corsHeaders(headers.origin) : {};
      request.response = errorResponse(request.error, request.event.requestContext?.requestId || randomUUID(), cors);
    },
  };
}

/** Build a Lambda handler for API Gateway HTTP API (payload 2.0) events. */
export function httpHandler(handler: Handler, options: HttpOptions) {
  const core = async (event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyStructuredResultV2> => {
    const headers = lowerHeaders(event.headers);
    const cors = options.cors ? corsHeaders(headers.origin) : {};
    const requestId = event.requestContext?.requestId || randomUUID();
    if (event.requestContext?.http?.method === 'OPTIONS') {
      return { statusCode: 204, headers: { ...cors, 'x-request-id': requestId }, body: '' };
    }
    try {
      const request = parseRequest(event, options, headers);
      const result = await handler(request, context);
      return respond(result.status, result.body, request.requestId, { ...cors, ...(result.headers ?? {}) });
    } catch (error) {
      return errorResponse(error, requestId, cors);
    }
  };
  // No handler appends temporary log keys, so there is no per-invocation state to clear.
  const chain = middy(core).use(injectLambdaContext(logger)).use(httpErrorResponse(options));
  for (const middleware of options.first ?? []) chain.use(middleware);
  if (options.body !== 'none') chain.use(httpBodyDecoder({ maxBodyBytes: options.maxBodyBytes }));
  return chain;
}
