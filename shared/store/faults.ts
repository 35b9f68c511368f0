/**
 * The one classifier of DynamoDB faults. Every call of the store's client
 * (shared/store/client.ts) rejects with a `StoreFault` whose `kind` says
 * what happened:
 *
 * - `throttled`: ThrottlingException, ProvisionedThroughputExceeded…, or a
 *   transaction cancelled because items were throttled;
 * - `unavailable`: a 5xx, a refused or reset connection, a transaction that
 *   kept conflicting with others;
 * - `timed-out`: no answer before the caller's deadline;
 * - `conditional-check-failed`: a conditional write whose condition was false;
 * - `transaction-cancelled`: TransactWriteItems cancelled, with the code of
 *   each item (`reasons`, in the order of the items: `None`,
 *   `ConditionalCheckFailed`, `TransactionConflict`, `ThrottlingError`…);
 * - `invalid`: a request DynamoDB refuses whatever happens (ValidationException,
 *   item collection too large);
 * - `client`: anything else (credentials, a bug).
 *
 * The HTTP edge answers throttling 429 and the rest of the transient faults
 * 503, both with Retry-After (shared/http/errors.ts `storeFaultToApiError`),
 * so a Segment client retries the same messageIds safely; the stream retries
 * its records.
 */

export type StoreFaultKind =
  | 'throttled'
  | 'unavailable'
  | 'timed-out'
  | 'conditional-check-failed'
  | 'transaction-cancelled'
  | 'invalid'
  | 'client';

/** A failed DynamoDB call. `name` is DynamoDB's error name (e.g. `ConditionalCheckFailedException`, `TimeoutError`). */
export class StoreFault extends Error {
  readonly kind: StoreFaultKind;
  /** HTTP status of DynamoDB's answer; absent for a transport failure or a timeout. */
  readonly status?: number;
  /** Network error code (ECONNREFUSED…) of a transport failure. */
  readonly code?: string;
  /** For `transaction-cancelled`: each item's cancellation code, in the order of the items. */
  readonly reasons: readonly string[];
  /** DynamoDB's own cancellation reasons (Code, Message, Item), as sent. */
  readonly CancellationReasons?: readonly { Code?: string; Message?: string }[];

  constructor(
    name: string,
    message: string,
    kind: StoreFaultKind,
    options: { status?: number; code?: string; reasons?: readonly { Code?: string; Message?: string }[]; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = name;
    this.kind = kind;
    if (options.status !== undefined) this.status = options.status;
    if (options.code !== undefined) this.code = options.code;
    this.reasons = (options.reasons ?? []).map((r) => r.Code ?? 'None');
    if (options.reasons) this.CancellationReasons = options.reasons;
  }
}

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
  'TransactionInProgressException',
  'TransactionConflictException',
  'RequestTimeout',
  'RequestTimeoutException',
]);

const INVALID = new Set(['ValidationException', 'ItemCollectionSizeLimitExceededException', 'SerializationException']);

const NETWORK_CODES = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRINFO'];
const NETWORK_CODE = new RegExp(`\\b(${NETWORK_CODES.join('|')})\\b`);

// Reasons a TransactWriteItems is cancelled for, item by item.
const THROTTLED_ITEM = new Set(['ThrottlingError', 'ProvisionedThroughputExceeded', 'RequestLimitExceeded']);
const BUSY_ITEM = new Set(['TransactionConflict']);
const INVALID_ITEM = new Set(['ValidationError', 'ItemCollectionSizeLimitExceeded']);

/** DynamoDB's short error name from `__type` (`com.amazonaws.dynamodb.v20120810#ThrottlingException`) or a name. */
const shortName = (value: unknown): string | undefined => {
  if (typeof value !== 'string' || value === '') return undefined;
  return value.slice(value.lastIndexOf('#') + 1);
};

/** The kind of a DynamoDB error answer (its short name and HTTP status). */
export function kindOfAnswer(name: string, status: number | undefined): StoreFaultKind {
  if (name === 'ConditionalCheckFailedException') return 'conditional-check-failed';
  if (name === 'TransactionCanceledException') return 'transaction-cancelled';
  if (THROTTLING.has(name) || status === 429) return 'throttled';
  if (UNAVAILABLE.has(name) || (status !== undefined && status >= 500)) return 'unavailable';
  if (INVALID.has(name)) return 'invalid';
  return 'client';
}

/**
 * Any error of a DynamoDB call as a StoreFault: an aws-lite error (DynamoDB's
 * answer, with `statusCode` and the error's fields; or a transport failure,
 * which aws-lite reports with its message only), a deadline
 * (`TimeoutError`, shared/store/deadline.ts), or a StoreFault already.
 */
export function toStoreFault(error: unknown): StoreFault {
  if (error instanceof StoreFault) return error;
  if (!(error instanceof Error)) return new StoreFault('Error', String(error), 'client', { cause: error });
  if (error.name === 'TimeoutError' || error.name === 'AbortError') {
    return new StoreFault('TimeoutError', error.message || 'DynamoDB did not answer within the deadline', 'timed-out', { cause: error });
  }
  const fields = error as Error & {
    statusCode?: unknown;
    __type?: unknown;
    code?: unknown;
    rawStack?: unknown;
    CancellationReasons?: { Code?: string; Message?: string }[];
  };
  const status = typeof fields.statusCode === 'number' ? fields.statusCode : undefined;
  if (status !== undefined) {
    const name = shortName(fields.__type) ?? shortName(fields.code) ?? shortName(error.name) ?? `HttpError${status}`;
    const reasons = Array.isArray(fields.CancellationReasons) ? fields.CancellationReasons : undefined;
    const message = error.message.replace(/^@aws-lite\/client: [\w.]+: /, '');
    // A read of an index DynamoDB is still building (added to a table that holds items: after a deploy, hours for a
    // big table) succeeds later: unavailable (503, retry), not a refused request.
    const kind = name === 'ValidationException' && /backfilling/i.test(message) ? 'unavailable' : kindOfAnswer(name, status);
    return new StoreFault(name, message || `DynamoDB answered ${status}`, kind, { status, ...(reasons ? { reasons } : {}), cause: error });
  }
  // A transport failure: aws-lite keeps the socket error's message (and the stack in `rawStack`) only.
  const network = NETWORK_CODE.exec(`${typeof fields.code === 'string' ? fields.code : ''} ${error.message}`);
  if (network || typeof fields.rawStack === 'string') {
    return new StoreFault('NetworkError', `DynamoDB unreachable: ${error.message}`, 'unavailable', {
      code: network?.[1] ?? 'ECONNRESET',
      cause: error,
    });
  }
  return new StoreFault(error.name, error.message, 'client', { cause: error });
}

/** `error` as a StoreFault when it is an error at all (a store call's, or a deadline's). */
const faultOf = (error: unknown): StoreFault | undefined => (error instanceof Error ? toStoreFault(error) : undefined);

/** The cancellation code of each item of a cancelled transaction (empty for any other error). */
export function cancellationCodes(error: unknown): readonly string[] {
  const fault = faultOf(error);
  return fault?.kind === 'transaction-cancelled' ? fault.reasons : [];
}

/** Throttling: of the request, or of items of a cancelled transaction. */
export function isThrottling(error: unknown): boolean {
  const fault = faultOf(error);
  return fault !== undefined && (fault.kind === 'throttled' || cancellationCodes(fault).some((code) => THROTTLED_ITEM.has(code)));
}

/** An unreachable, failing or slow store, or a transaction that only conflicted with concurrent ones: retry later. */
export function isUnavailable(error: unknown): boolean {
  const fault = faultOf(error);
  if (fault === undefined) return false;
  if (fault.kind === 'unavailable' || fault.kind === 'timed-out') return true;
  const codes = cancellationCodes(fault);
  return codes.some((c) => BUSY_ITEM.has(c)) && codes.every((c) => c === 'None' || BUSY_ITEM.has(c));
}

/** Worth sending again as it is: throttling or unavailability (not a timeout: the caller's time is up). */
export function isTransient(error: unknown): boolean {
  return error instanceof StoreFault && (error.kind === 'throttled' || error.kind === 'unavailable');
}

/** A conditional write's condition was false (the item exists, or its version moved). */
export function isConditionFailed(error: unknown): boolean {
  return error instanceof StoreFault && error.kind === 'conditional-check-failed';
}

/** A cancelled transaction whose items were only conditions that failed or conflicts: someone else wrote first. */
export function isContention(error: unknown): boolean {
  if (!(error instanceof StoreFault)) return false;
  if (error.kind === 'transaction-cancelled') {
    return error.reasons.every((c) => c === 'None' || c === 'ConditionalCheckFailed' || BUSY_ITEM.has(c));
  }
  return error.name === 'TransactionConflictException';
}

/** The request itself is refused (size, shape): the same request can never succeed. */
export function isInvalidRequest(error: unknown): boolean {
  if (!(error instanceof StoreFault)) return false;
  return error.kind === 'invalid' || error.reasons.some((c) => INVALID_ITEM.has(c));
}
