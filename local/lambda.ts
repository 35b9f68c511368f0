/**
 * Invoking a handler module the way Lambda does: a JSON event in, a JSON
 * result out (both pass through serialisation, as they do over the Lambda
 * API), a context with the function's name, request id and deadline, the
 * function's timeout enforced, and the 6 MB synchronous payload limits.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { LAMBDA_PAYLOAD_LIMIT_BYTES } from '#http/response-size.ts';

/** What a deployed function is to the local stack. */
export interface LocalFunction {
  /** Manifest name (shared/functions.ts), e.g. `ingest`. */
  readonly name: string;
  readonly handler: LambdaHandler;
  readonly timeoutSeconds: number;
  readonly memorySize: number;
}

export type LambdaHandler = (event: unknown, context: Context) => unknown;

export { LAMBDA_PAYLOAD_LIMIT_BYTES };

export const LOCAL_ACCOUNT_ID = '000000000000';

export type InvokeOutcome =
  | { readonly ok: true; readonly result: unknown; readonly requestId: string }
  | {
      readonly ok: false;
      readonly requestId: string;
      /** Lambda's `FunctionError` kind. */
      readonly functionError: 'Unhandled';
      readonly reason: 'error' | 'timeout' | 'request_too_large' | 'response_too_large';
      readonly error: Error;
    };

export function functionArn(name: string, region: string): string {
  return `arn:aws:lambda:${region}:${LOCAL_ACCOUNT_ID}:function:${physicalFunctionName(name)}`;
}

export const physicalFunctionName = (name: string): string => `kairos-${name}`;

function createContext(fn: LocalFunction, requestId: string, deadline: number, region: string): Context {
  const name = physicalFunctionName(fn.name);
  const day = new Date().toISOString().slice(0, 10).replaceAll('-', '/');
  const unsupported = () => {
    throw new Error('Callback-style completion (context.done/succeed/fail) is not supported: return a promise');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: name,
    functionVersion: '$LATEST',
    invokedFunctionArn: functionArn(fn.name, region),
    memoryLimitInMB: String(fn.memorySize),
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${name}`,
    logStreamName: `${day}/[$LATEST]${randomBytes(16).toString('hex')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: unsupported,
    fail: unsupported,
    succeed: unsupported,
  };
}

/**
 * Invoke `fn` with `event`. Never throws: a thrown error, a rejected
 * promise, a timeout or an oversize payload is an `ok: false` outcome, as
 * Lambda reports a function error. A timed-out invocation keeps running in
 * the background (a process cannot be frozen), but its result is ignored.
 */
export async function invokeFunction(fn: LocalFunction, event: unknown, region: string): Promise<InvokeOutcome> {
  const requestId = randomUUID();
  const payload = JSON.stringify(event);
  if (Buffer.byteLength(payload, 'utf8') > LAMBDA_PAYLOAD_LIMIT_BYTES) {
    return {
      ok: false,
      requestId,
      functionError: 'Unhandled',
      reason: 'request_too_large',
      error: new Error(`Request payload larger than ${LAMBDA_PAYLOAD_LIMIT_BYTES} bytes`),
    };
  }
  const timeoutMs = fn.timeoutSeconds * 1000;
  const deadline = Date.now() + timeoutMs;
  const context = createContext(fn, requestId, deadline, region);
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout('timeout'), timeoutMs);
  });
  try {
    const running = Promise.resolve().then(() => fn.handler(JSON.parse(payload), context));
    // A late rejection after a timeout must not become an unhandled rejection.
    running.catch(() => undefined);
    const settled = await Promise.race([running.then((value) => ({ value })), timedOut]);
    if (settled === 'timeout') {
      return {
        ok: false,
        requestId,
        functionError: 'Unhandled',
        reason: 'timeout',
        error: new Error(`Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`),
      };
    }
    const serialised = settled.value === undefined ? undefined : JSON.stringify(settled.value);
    if (serialised !== undefined && Buffer.byteLength(serialised, 'utf8') > LAMBDA_PAYLOAD_LIMIT_BYTES) {
      return {
        ok: false,
        requestId,
        functionError: 'Unhandled',
        reason: 'response_too_large',
        error: new Error(`Response payload larger than ${LAMBDA_PAYLOAD_LIMIT_BYTES} bytes`),
      };
    }
    return { ok: true, requestId, result: serialised === undefined ? null : JSON.parse(serialised) };
  } catch (error) {
    return {
      ok: false,
      requestId,
      functionError: 'Unhandled',
      reason: 'error',
      error: error instanceof Error ? error : new Error(String(error)),
    };
  } finally {
    clearTimeout(timer);
  }
}
