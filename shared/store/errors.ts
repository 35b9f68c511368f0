/**
 * Which store faults are transient: throttling, and an unreachable or
 * failing store. The HTTP edge answers them 429 and 503 with Retry-After
 * (shared/http/errors.ts `storeFaultToApiError`), so a Segment client
 * retries the same messageIds safely; the stream retries its records.
 */

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

// Reasons a TransactWriteItems is cancelled for, item by item.
const THROTTLED_ITEM = new Set(['ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);
const BUSY_ITEM = new Set(['TransactionConflict']);

function cancellationCodes(error: Error): string[] {
  if (error.name !== 'TransactionCanceledException') return [];
  const reasons = (error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? [];
  return reasons.map((r) => r.Code ?? 'None');
}

export function isThrottling(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return THROTTLING.has(error.name) || cancellationCodes(error).some((code) => THROTTLED_ITEM.has(code));
}

export function isUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (UNAVAILABLE.has(error.name)) return true;
  // A transaction that kept conflicting with concurrent writes to the same items: retryable.
  const codes = cancellationCodes(error);
  if (codes.length > 0 && codes.some((c) => BUSY_ITEM.has(c)) && codes.every((c) => c === 'None' || BUSY_ITEM.has(c))) {
    return true;
  }
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && NETWORK_CODES.has(code)) return true;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  return typeof status === 'number' && status >= 500;
}
