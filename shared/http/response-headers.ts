/**
 * One concern of the HTTP chain: the headers every answer carries, errors
 * included. The request id (API Gateway's, so a client's report can be found
 * in the logs), JSON as the content type, no caching, and the security
 * headers an API that serves only JSON to programs should send (OWASP's
 * REST cheat sheet): no sniffing, no framing, no referrer, HTTPS only.
 * A header the handler sets wins over these defaults.
 *
 * Use it first in the chain: its `after` and `onError` then run last and see
 * the final answer.
 */
import { randomUUID } from 'node:crypto';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { HttpMiddleware } from './handler-adapter.ts';

/** Every answer's headers besides the request id (lower-case names). */
export const RESPONSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
};

/** The middleware: sets `context.requestId` before, adds the headers to whatever answer comes back. */
export function httpResponseHeaders(): HttpMiddleware {
  const apply = (request: { response?: APIGatewayProxyStructuredResultV2 | null | undefined; context: { requestId?: string } }) => {
    const response = request.response;
    if (response === undefined || response === null || typeof response !== 'object') return;
    response.headers = { ...RESPONSE_HEADERS, 'x-request-id': request.context.requestId ?? '', ...(response.headers ?? {}) };
  };
  return {
    before: (request) => {
      request.context.requestId = request.event?.requestContext?.requestId || randomUUID();
    },
    after: apply,
    onError: apply,
  };
}
