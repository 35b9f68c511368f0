/**
 * The error shape of API.md §6. Every error a client sees is an ApiError;
 * anything else becomes `500 internal` with no detail.
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

import type { ErrorDetail } from '../domain/issues.ts';
import { isThrottling, isUnavailable } from '../store/errors.ts';

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

/** The API error a store fault is for a client: throttling 429, an unreachable or failing store 503, both with Retry-After; undefined for anything else (a bug: 500). */
export function storeFaultToApiError(error: unknown): ApiError | undefined {
  if (isThrottling(error)) return new ApiError('throttled', 'The store is throttling requests; retry later', undefined, 1);
  if (isUnavailable(error)) return new ApiError('unavailable', 'The store is unavailable; retry later', undefined, 2);
  return undefined;
}
