/**
 * The profile view is computed with cached local midnights and fewer
 * intermediate objects; it must stay the very same view as the plain
 * computation (profile-view-reference.ts) for any state, zone and instant.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyEvents } from '#domain/profile/apply.ts';
import { emptyProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { storedEvent } from '../support/stream.ts';
import { draft } from './profile-support.ts';
import { referenceProfileView } from './profile-view-reference.ts';

const T0 = Date.parse('2026-03-01T00:00:00Z');
const ZONES = ['UTC', 'Europe/Madrid', 'America/Santiago', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'not/a-zone'];

describe('profile view equivalence', () => {
  it('is the reference view for any history, time zone and reading instant (also several reads in one second)', () => {
    fc.assert(
      fc.property(
        fc.array(draft, { minLength: 1, maxLength: 30 }),
        fc.constantFrom(...ZONES),
        fc.integer({ min: 0, max: 60 * 86_400_000 }),
        fc.array(fc.integer({ min: 0, max: 2_000 }), { minLength: 1, maxLength: 3 }),
        (drafts, zone, offset, jitters) => {
          const events = drafts.map((d, i) => storedEvent({ ...d, userId: 'u-1', messageId: `m-${i}` }));
          const state = applyEvents(emptyProfileState({ userId: 'u-1' }), events, { halfLifeDays: 14 });
          state.traits.timezone = [zone, T0 + 90 * 86_400_000];
          for (const jitter of jitters) {
            const at = T0 + offset + jitter;
            const actual = toProfileView(state, at);
            expect(actual).toStrictEqual(referenceProfileView(state, at));
            expect(JSON.stringify(actual)).toBe(JSON.stringify(referenceProfileView(state, new Date(at))));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
