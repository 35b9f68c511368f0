/**
 * The error shape of API.md §6. Every error a client sees is an ApiError;
 * anything else becomes `500 internal` with no detail. `httpErrorResponse()`
 * is this concern in the HTTP chain.
 */

export const ERROR_STATUS = {
  invalid_json: 400,
  validation_failed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  unsupported_media_type: 415,
  throttled: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

import type { Logger } from '@aws-lambda-powertools/logger';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { ErrorDetail } from '#domain/issues.ts';
import { isContention, isThrottling, isUnavailable } from '#store/faults.ts';
import type { HttpMiddleware } from './handler-adapter.ts';

export type { ErrorDetail };

export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: ErrorDetail[] };
}

export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetail[],
    /** Seconds, for 429/503. */
    readonly retryAfter?: number,
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
    this.status = ERROR_STATUS[code];
  }

  toBody(): ErrorBody {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details && this.details.length > 0 ? { details: this.details } : {}),
      },
    };
  }
}

/**
 * The API error a store fault is for a client: throttling 429, an
 * unreachable or failing store 503, both with Retry-After; contention that
 * outlasted the caller's own retries (faults.ts `isContention`: the items
 * changed under a conditioned write, as a customer's events do under their
 * erasure) 503 with Retry-After, since the same request succeeds later;
 * undefined for anything else (a bug: 500).
 */
export function storeFaultToApiError(error: unknown): ApiError | undefined {
  if (isThrottling(error)) return new ApiError('throttled', 'The store is throttling requests; retry later', undefined, 1);
  if (isUnavailable(error)) return new ApiError('unavailable', 'The store is unavailable; retry later', undefined, 2);
  if (isContention(error)) return new ApiError('unavailable', 'What this request writes kept changing while it was written; retry later', undefined, 1);
  return undefined;
}

/**
 * The answer for an error: an ApiError's status and body (with its headers
 * and `retry-after`), a store fault's 429/503, anything else 500 `internal`
 * without detail. 5xx answers are logged (`warn` for an ApiError or store
 * fault, `error` for anything else).
 */
export function errorResult(error: unknown, logger?: Pick<Logger, 'warn' | 'error'>): APIGatewayProxyStructuredResultV2 {
  const apiError = error instanceof ApiError ? error : storeFaultToApiError(error);
  if (apiError) {
    const headers: Record<string, string> = { ...(apiError.headers ?? {}) };
    if (apiError.retryAfter !== undefined) headers['retry-after'] = String(apiError.retryAfter);
    if (apiError.status >= 500) logger?.warn('request failed', { code: apiError.code, error: error as Error });
    return { statusCode: apiError.status, headers, body: JSON.stringify(apiError.toBody()) };
  }
  logger?.error('unhandled error', { error: error as Error });
  const internal: ErrorBody = { error: { code: 'internal', message: 'Internal error' } };
  return { statusCode: 500, headers: {}, body: JSON.stringify(internal) };
}

/**
 * The middleware: whatever the handler or a middleware before it throws
 * becomes the API.md §6 answer (the headers and CORS middlewares, used
 * before it, then add theirs). Use it after httpResponseHeaders and httpCors.
 */
export function httpErrorResponse(options: { readonly logger?: Pick<Logger, 'warn' | 'error'> } = {}): HttpMiddleware {
  return {
    onError: (request) => {
      if (request.response !== undefined) return;
      request.response = errorResult(request.error, options.logger);
    },
  };
}
