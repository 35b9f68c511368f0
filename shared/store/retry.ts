/**
 * The store's one retry helper: full-jitter exponential backoff
 * (a pause drawn uniformly from 0 to min(cap, base × 2^attempt)), a bounded
 * number of attempts, and never a pause that would end past the caller's
 * deadline. The client (shared/store/client.ts) retries throttled and
 * unavailable requests with it; batch-write.ts its unprocessed items;
 * events.ts and keys.ts transactions that only conflicted.
 */
import { StoreFault } from './faults.ts';

export interface RetryPolicy {
  /** Attempts in all, the first included (≥ 1). */
  readonly attempts: number;
  /** First pause's upper bound (ms). @default 20 */
  readonly baseMs?: number;
  /** Largest pause's upper bound (ms). @default 1000 */
  readonly capMs?: number;
  /** Instant (epoch ms) after which no attempt starts: the last error is thrown instead. */
  readonly deadline?: number;
}

/** The pause before attempt `attempt` (1 = the first retry), in ms: uniform in [0, min(cap, base × 2^attempt)). */
export function jitteredPause(attempt: number, baseMs = 20, capMs = 1_000): number {
  return Math.random() * Math.min(capMs, baseMs * 2 ** attempt);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `attempt()` until it resolves, `retryable(error)` is false, the attempts
 * are spent or the deadline would pass during the pause; then its last error.
 * `attempt` receives the attempt's number (0 for the first).
 */
export async function retrying<T>(attempt: (n: number) => Promise<T>, retryable: (error: unknown) => boolean, policy: RetryPolicy): Promise<T> {
  for (let n = 0; ; n++) {
    try {
      return await attempt(n);
    } catch (error) {
      if (n + 1 >= policy.attempts || !retryable(error)) throw error;
      const pause = jitteredPause(n + 1, policy.baseMs, policy.capMs);
      if (policy.deadline !== undefined && Date.now() + pause >= policy.deadline) throw error;
      await sleep(pause);
    }
  }
}

/**
 * Send `initial` with `send` until nothing comes back unprocessed (BatchWriteItem's
 * UnprocessedItems, BatchGetItem's UnprocessedKeys), pausing as `retrying`
 * does. Throws a `throttled` StoreFault when items stay unprocessed after
 * `policy.attempts` sends or at the deadline.
 */
export async function untilProcessed<T>(
  initial: readonly T[],
  send: (pending: readonly T[]) => Promise<readonly T[]>,
  policy: RetryPolicy = { attempts: 9 },
): Promise<void> {
  let pending = initial;
  for (let n = 0; pending.length > 0; n++) {
    if (n > 0) {
      const pause = jitteredPause(n, policy.baseMs, policy.capMs);
      if (n >= policy.attempts || (policy.deadline !== undefined && Date.now() + pause >= policy.deadline)) {
        throw new StoreFault('ThrottlingException', `DynamoDB left ${pending.length} items unprocessed after ${n} attempts`, 'throttled');
      }
      await sleep(pause);
    }
    pending = await send(pending);
  }
}
