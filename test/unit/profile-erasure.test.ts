/**
 * The erasure's rules in the domain (shared/domain/profile/erasure.ts): the
 * one definition of the writes that end an erased customer's journey runs
 * in shares (`nextRunEnding`), which both the profile plan (plan.ts
 * `endingWrites`) and the erasure's last step (shared/store/erasure.ts)
 * write, and `happenedAt`, which both the plan and the erasure date events
 * by.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JourneyRuns } from '#domain/journeys/machine.ts';
import { inJourney } from '#domain/journeys/machine.ts';
import { happenedAt, nextRunEnding, RUNS_PER_ENDING_WRITE } from '#domain/profile/erasure.ts';
import { emptyProfileState } from '#domain/profile/state.ts';
import { MAX_TRANSACTION_ITEMS } from '#domain/transaction-budget.ts';
import { storedEvent } from '../support/stream.ts';

const T = Date.parse('2026-05-01T09:00:00Z');
const DAY_MS = 86_400_000;

/** `inProgress` runs waiting, and `ended` runs already over, each in its own journey. */
function runs(inProgress: number, ended: number): JourneyRuns {
  const out: JourneyRuns = {};
  for (let i = 0; i < inProgress; i++) out[`j-${String(i).padStart(4, '0')}`] = { run: 1, step: 'wait', enteredAt: T - DAY_MS, stepAt: T - DAY_MS, waitingUntil: T + DAY_MS, named: true };
  for (let i = 0; i < ended; i++) out[`k-${String(i).padStart(4, '0')}`] = { run: 1, enteredAt: T - DAY_MS, stepAt: T - DAY_MS, ended: { how: 'completed', at: T - 1 }, named: true };
  return out;
}

describe('nextRunEnding: the erased customer\'s runs ended in shares', () => {
  it('property: applied until it gives nothing, each run in progress is ended and counted exactly once, at most 99 a write (the item beside them within 100), and at most `keep` are left for the write that deletes or replaces the item', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 450 }), fc.integer({ min: 0, max: 5 }), fc.constantFrom(0, 1, RUNS_PER_ENDING_WRITE), (inProgress, ended, keep) => {
        const erasedAt = T + 3_600_000;
        const start = { ...emptyProfileState({ userId: 'u-1' }), keyErasedAt: 7, journeys: runs(inProgress, ended) };
        const counted: string[] = [];
        let state = start;
        for (let ending = nextRunEnding(state, erasedAt, keep); ending !== undefined; ending = nextRunEnding(state, erasedAt, keep)) {
          expect(ending.counts.length).toBeGreaterThan(0);
          expect(1 + ending.counts.length).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
          expect(ending.counts.every((c) => c.milestone.kind === 'exited')).toBe(true);
          for (const { journey } of ending.counts) expect(inJourney(ending.state.journeys, journey)).toBe(false);
          counted.push(...ending.counts.map((c) => c.journey));
          expect(ending.state.keyErasedAt).toBe(7);
          state = ending.state as typeof state;
        }
        const left = Object.keys(state.journeys).filter((journey) => inJourney(state.journeys, journey));
        expect(new Set(counted).size).toBe(counted.length);
        expect(left.length).toBe(inProgress - counted.length);
        expect(left.length).toBeLessThanOrEqual(keep);
        // No more writes than needed: each full but the last.
        const writes = inProgress <= keep ? 0 : Math.ceil((inProgress - keep) / RUNS_PER_ENDING_WRITE);
        expect(left.length).toBe(Math.max(0, inProgress - writes * RUNS_PER_ENDING_WRITE));
        expect(Object.keys(state.journeys)).toHaveLength(inProgress + ended);
        // The state it started from is left as it was.
        expect(Object.keys(start.journeys).filter((journey) => inJourney(start.journeys, journey))).toHaveLength(inProgress);
      }),
      { numRuns: 200 },
    );
  });
});

describe('happenedAt: when an event happened, for an erasure', () => {
  it('the earlier of its receipt and its time', () => {
    const event = storedEvent({ type: 'track', userId: 'u-1', event: 'Viewed', messageId: 'm-1', timestamp: '2026-05-01T09:00:00.000Z' });
    expect(happenedAt({ ...event, receivedAt: '2026-05-01T10:00:00.000Z' })).toBe(T);
    expect(happenedAt({ ...event, receivedAt: '2026-05-01T08:00:00.000Z' })).toBe(T - 3_600_000);
  });
});
