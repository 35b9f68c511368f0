/**
 * Deadlines of store calls. A deadline is an instant (epoch milliseconds) by
 * which a call must have answered or given up; a call past it rejects with
 * a `DeadlineExceeded`: a `timed-out` StoreFault named `TimeoutError`
 * (shared/store/faults.ts), which the edge answers as the store being
 * unavailable (503 with Retry-After, or a degraded decision).
 */
import { StoreFault } from './faults.ts';

/** The store did not answer before the caller's deadline. */
export class DeadlineExceeded extends StoreFault {
  constructor(what: string) {
    super('TimeoutError', `${what} did not answer before the deadline`, 'timed-out');
  }
}

/** Milliseconds left until `deadline` (at least 1, so a client timeout is always valid). */
export const remainingMs = (deadline: number, now = Date.now()): number => Math.max(1, Math.floor(deadline - now));

/**
 * `promise`, or a DeadlineExceeded rejection at `deadline`, whichever comes
 * first. The promise itself goes on (its late rejection is swallowed): give
 * the call its own timeout or abort signal too, so it does not outlive the
 * caller by much.
 */
export function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  promise.catch(() => undefined);
  const left = deadline - Date.now();
  if (left <= 0) return Promise.reject(new DeadlineExceeded(what));
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(what)), left);
  });
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
