/**
 * How large an answer a function can give. Lambda refuses a response
 * payload over 6 MB (the function fails, and API Gateway answers 500); the
 * payload is the handler's result, in which the JSON body is a string, so
 * each body byte that JSON escapes (`"`, `\`, a newline) counts again.
 * Routes whose answers grow with stored data (a customer's events, a
 * catalog's text, a listing) keep their pages under `RESPONSE_BODY_BUDGET_BYTES`
 * as `bodyPayloadBytes` counts them.
 */

/** Lambda's limit on a synchronous request or response payload, bytes. */
export const LAMBDA_PAYLOAD_LIMIT_BYTES = 6 * 1024 * 1024;

/** What an answer's body may take of the payload: the limit less 64 KiB for the status, the headers and the envelope. */
export const RESPONSE_BODY_BUDGET_BYTES = LAMBDA_PAYLOAD_LIMIT_BYTES - 64 * 1024;

/** Bytes `value` takes in a Lambda response payload as a JSON body: its JSON text, escaped again as a string. */
export function bodyPayloadBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(JSON.stringify(value)), 'utf8');
}

/**
 * The longest prefix of `items` whose bytes (`bodyPayloadBytes` of each,
 * plus a comma between them), added to `fixedBytes` (the rest of the
 * answer), stay within `budget`; always at least one item when there is
 * one, so a page moves on.
 */
export function itemsWithinBudget<T>(items: readonly T[], fixedBytes: number, budget: number = RESPONSE_BODY_BUDGET_BYTES): T[] {
  let used = fixedBytes;
  const kept: T[] = [];
  for (const item of items) {
    // The item's own quotes are not in the array's text: the outer string's two are counted once, in fixedBytes.
    used += bodyPayloadBytes(item) - 2 + (kept.length > 0 ? 1 : 0);
    if (used > budget && kept.length > 0) break;
    kept.push(item);
  }
  return kept;
}
