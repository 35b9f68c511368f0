/**
 * The deadline of one invocation: the instant by which a handler gives up on
 * the store and answers (503 with Retry-After, or a degraded decision), so
 * that it never runs into its own function timeout, which API Gateway would
 * turn into a bare 500. `httpDeadline()` sets it on the chain's context.
 */
import type { Context } from 'aws-lambda';
import type { HttpMiddleware } from './handler-adapter.ts';

/** Time kept at the end of an invocation to answer and flush logs and metrics: a tenth of what remains, at most 1 s. */
export const MAX_RESPONSE_RESERVE_MS = 1_000;

/**
 * The invocation's deadline (epoch ms): what Lambda's context says remains,
 * less the response reserve, and no later than `now + budgetMs` when a
 * budget is given (decide's 1 s).
 */
export function invocationDeadline(context: Pick<Context, 'getRemainingTimeInMillis'> | undefined, now = Date.now(), budgetMs?: number): number {
  const remaining = context?.getRemainingTimeInMillis?.();
  const byFunction =
    typeof remaining === 'number' && Number.isFinite(remaining) && remaining > 0
      ? now + remaining - Math.min(MAX_RESPONSE_RESERVE_MS, remaining / 10)
      : Number.POSITIVE_INFINITY;
  const byBudget = budgetMs === undefined ? Number.POSITIVE_INFINITY : now + budgetMs;
  const deadline = Math.min(byFunction, byBudget);
  return Number.isFinite(deadline) ? deadline : now + 10_000;
}

/**
 * The middleware: `context.deadline` (epoch ms) from the Lambda context when
 * the request arrives, no later than `budgetMs` from then when given.
 */
export function httpDeadline(options: { readonly budgetMs?: number } = {}): HttpMiddleware {
  return {
    before: (request) => {
      request.context.deadline = invocationDeadline(request.context, Date.now(), options.budgetMs);
    },
  };
}
