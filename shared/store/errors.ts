/**
 * Store faults as the client should see them: throttling is 429, an
 * unreachable or failing store is 503, both with Retry-After, so a Segment
 * client retries the same messageIds safely.
 */
import { ApiError } from '../http/errors.ts';

const THROTTLING = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

const UNAVAILABLE = new Set([
  'InternalServerError',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'AbortError',
  'TransactionInProgressException',
]);

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

export function isThrottling(error: unknown): boolean {
  return error instanceof Error && THROTTLING.has(error.name);
}

export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (UNAVAILABLE.has(error.name)) return true;
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return typeof status === 'number' && status >= 500;
}

/** Map a store error to the API error a client should get, or undefined if it is a bug. */
export function storeFaultToApiError(error: unknown): ApiError | undefined {
  if (isThrottling(error)) return new ApiError('throttled', 'The store is throttling requests; retry later', undefined, 1);
  if (isUnavailable(error)) return new ApiError('unavailable', 'The store is unavailable; retry later', undefined, 2);
  return undefined;
}
