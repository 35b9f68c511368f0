/**
 * Record factories for API Gateway HTTP API (payload 2.0) events and the
 * Lambda context, shaped like what API Gateway and Lambda really send, so a
 * handler under test sees the same input as when deployed.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyEventV2, Context } from 'aws-lambda';
import { matchRoute } from '#http/routes.ts';

export interface ApiGatewayEventInput {
  readonly method: string;
  /** The raw path, e.g. `/v1/batch`; a query string after `?` is split off. */
  readonly path: string;
  readonly headers?: Record<string, string>;
  /**
   * A string is sent as is; a Buffer as binary (base64-encoded, as API Gateway
   * passes compressed or non-UTF-8 bodies); anything else is JSON-encoded
   * (with content-type application/json unless given).
   */
  readonly body?: unknown;
  /** Base64-encode the body as API Gateway does for binary payloads. */
  readonly isBase64Encoded?: boolean;
  readonly pathParameters?: Record<string, string>;
  /** Defaults to the matching route of shared/http/routes.ts (`POST /v1/batch`), else `$default`. */
  readonly routeKey?: string;
  readonly sourceIp?: string;
}

/** `Authorization` header value for a write key, as Segment's SDKs send it. */
export function basicAuth(writeKey: string): string {
  return `Basic ${Buffer.from(`${writeKey}:`, 'utf8').toString('base64')}`;
}

export function apiGatewayEvent(input: ApiGatewayEventInput): APIGatewayProxyEventV2 {
  const method = input.method.toUpperCase();
  const [rawPath = '/', rawQueryString = ''] = input.path.split('?', 2);
  const headers: Record<string, string> = {
    host: 'abc123.execute-api.us-east-1.amazonaws.com',
    'user-agent': 'kairos-test',
    'x-forwarded-for': input.sourceIp ?? '127.0.0.1',
    'x-forwarded-proto': 'https',
  };
  let text: string | undefined;
  const binary = Buffer.isBuffer(input.body) ? input.body : undefined;
  if (binary) text = binary.toString('base64');
  else if (typeof input.body === 'string') text = input.body;
  else if (input.body !== undefined) {
    text = JSON.stringify(input.body);
    headers['content-type'] = 'application/json';
  }
  // API Gateway lower-cases header names in payload 2.0.
  for (const [name, value] of Object.entries(input.headers ?? {})) headers[name.toLowerCase()] = value;
  if (text !== undefined) headers['content-length'] = String(binary ? binary.length : Buffer.byteLength(text, 'utf8'));

  const matched = matchRoute(method, rawPath);
  const routeKey = input.routeKey ?? (matched.route ? matched.key : '$default');
  const pathParameters = input.pathParameters ?? (matched.route && Object.keys(matched.pathParameters).length > 0 ? matched.pathParameters : undefined);
  const queryStringParameters = rawQueryString
    ? Object.fromEntries(new URLSearchParams(rawQueryString).entries())
    : undefined;
  const now = new Date();
  return {
    version: '2.0',
    routeKey,
    rawPath,
    rawQueryString,
    headers,
    ...(queryStringParameters ? { queryStringParameters } : {}),
    ...(pathParameters ? { pathParameters } : {}),
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      domainName: 'abc123.execute-api.us-east-1.amazonaws.com',
      domainPrefix: 'abc123',
      http: {
        method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: input.sourceIp ?? '127.0.0.1',
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: randomUUID(),
      routeKey,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(text !== undefined
      ? {
          body: input.isBase64Encoded && !binary ? Buffer.from(text, 'utf8').toString('base64') : text,
          isBase64Encoded: binary !== undefined || (input.isBase64Encoded ?? false),
        }
      : { isBase64Encoded: false }),
  };
}

export function lambdaContext(overrides: Partial<Context> = {}): Context {
  const started = Date.now();
  const timeoutMs = 10_000;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName: 'kairos-test',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:kairos-test',
    memoryLimitInMB: '1024',
    awsRequestId: randomUUID(),
    logGroupName: '/aws/lambda/kairos-test',
    logStreamName: '2026/11/23/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => Math.max(0, timeoutMs - (Date.now() - started)),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
    ...overrides,
  };
}
