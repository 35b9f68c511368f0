/**
 * What the triggers and journeys e2e tests read of a local stack: what its
 * bus delivered (`<dataDir>/outbox.jsonl`, `stack.emissions()`), the
 * operator's outbox (GET /v1/admin/outbox, every page), a customer's
 * journey runs (GET /v1/admin/profiles/{userId}) and the journeys report —
 * each polled until what the test waits for holds, since the stream, the
 * dispatcher and the scheduler emulation are asynchronous.
 */
import { expect } from 'vitest';
import type { DeliveredEvent } from '#local/outbox.ts';
import { call, type StackAccess } from '../e2e/fixtures/kairos.ts';
import type { TestStack } from './stack.ts';

/** An emission's `detail`, as a record. */
export const detailOf = (e: DeliveredEvent): Record<string, unknown> => e.detail as Record<string, unknown>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `condition` holds; rejects past `timeoutMs` (real time). */
export async function until(condition: () => boolean, timeoutMs: number, what = 'the condition'): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`${what} did not hold within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** The first event the stack's bus delivered that matches, within `timeoutMs` (real time). */
export async function emission(stack: Pick<TestStack, 'emissions'>, match: (e: DeliveredEvent) => boolean, timeoutMs: number): Promise<DeliveredEvent> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const found = stack.emissions().find(match);
    if (found) return found;
    if (performance.now() > deadline) throw new Error(`no matching emission within ${timeoutMs} ms; delivered: ${JSON.stringify(stack.emissions().map((e) => e.id))}`);
    await sleep(50);
  }
}

/** One entry of GET /v1/admin/outbox. */
export interface OutboxEntry {
  readonly id: string;
  readonly status: string;
  readonly sendAt: string;
  readonly detailType?: string;
  readonly detail: Record<string, unknown>;
}

/** Every entry of the operator's outbox (all pages), optionally only those of one `status`. */
export async function outbox(api: StackAccess, status?: string): Promise<OutboxEntry[]> {
  const seen: OutboxEntry[] = [];
  let cursor: string | undefined;
  do {
    const query = `limit=1000${status ? `&status=${status}` : ''}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`;
    const page = await call<{ emissions: OutboxEntry[]; next?: string }>(api, 'GET', `/v1/admin/outbox?${query}`, { auth: 'admin' });
    expect(page.status).toBe(200);
    seen.push(...page.json.emissions);
    cursor = page.json.next;
  } while (cursor);
  return seen;
}

/**
 * The outbox entries of `userId` (its emissions, and its timers — a
 * journey's, a deferred send's — by profile key), once `ready` holds of
 * them or `timeoutMs` has passed.
 */
export async function outboxOf(api: StackAccess, userId: string, ready: (entries: OutboxEntry[]) => boolean, timeoutMs = 15_000): Promise<OutboxEntry[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const mine = (await outbox(api)).filter((e) => e.detail.userId === userId || e.detail.profileKey === `u#${userId}`);
    if (ready(mine) || performance.now() > deadline) return mine;
    await sleep(100);
  }
}

/** A customer's run of a journey, as their profile lists it. */
export interface JourneyRun {
  readonly journey: string;
  readonly run: number;
  readonly step?: string;
  readonly waitingUntil?: string;
  readonly ended?: { readonly how: string };
}

/** The journey runs on `userId`'s profile, once `ready` holds of them or `timeoutMs` has passed. */
export async function runsOf(api: StackAccess, userId: string, ready: (runs: JourneyRun[]) => boolean, timeoutMs = 15_000): Promise<JourneyRun[]> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const res = await call<{ journeys: JourneyRun[] }>(api, 'GET', `/v1/admin/profiles/${encodeURIComponent(userId)}`, { auth: 'admin' });
    const runs = res.status === 200 ? res.json.journeys : [];
    if (ready(runs) || performance.now() > deadline) return runs;
    await sleep(100);
  }
}

/** The journeys report's totals of `journey` over its default range. */
export async function journeyTotals(
  api: StackAccess,
  journey: string,
  range = '',
): Promise<{ entered: number; completed: number; exited: number; steps: Record<string, number> }> {
  const res = await call<{ journeys: { id: string; totals: { entered: number; completed: number; exited: number; steps: Record<string, number> } }[] }>(
    api,
    'GET',
    `/v1/admin/reports/journeys?journey=${encodeURIComponent(journey)}${range}`,
    { auth: 'admin' },
  );
  expect(res.status).toBe(200);
  const found = res.json.journeys.find((j) => j.id === journey);
  if (!found) throw new Error(`the journeys report has no ${journey}`);
  return found.totals;
}
