/**
 * Out-of-order and replayed events give the same profile as in-order
 * delivery (API.md §2), and merging profiles is the profile of both
 * histories: fast-check properties over the pure aggregation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyEvent, applyEvents, mergeProfiles } from '#domain/profile/apply.ts';
import { emptyProfileState, type ProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { type ProfileView } from '#domain/profile/view.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { storedEvent } from '../support/stream.ts';
import { draft, firstDifference } from './profile-support.ts';

const settings = { halfLifeDays: 14 };
const T0 = Date.parse('2026-03-01T00:00:00Z');
const NOW = new Date(T0 + 41 * 86_400_000);

const events = fc
  .array(draft, { minLength: 1, maxLength: 40 })
  .map((drafts) => drafts.map((d, i) => storedEvent({ ...d, userId: 'u-1', messageId: `m-${i}` })));

/** A shard's delivery: any order, any event any number of times, cut into batches anywhere. */
const delivery = (list: StoredEvent[]) =>
  fc
    .tuple(
      fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }),
      fc.array(fc.tuple(fc.nat(list.length - 1), fc.nat()), { maxLength: 20 }),
      fc.array(fc.integer({ min: 1, max: 10 }), { minLength: 1, maxLength: 10 }),
    )
    .map(([order, duplicates, cuts]) => {
      const sequence = [...order];
      for (const [index, at] of duplicates) sequence.splice(at % (sequence.length + 1), 0, list[index]!);
      const batches: StoredEvent[][] = [];
      for (let i = 0, c = 0; i < sequence.length; c++) {
        const size = cuts[c % cuts.length]!;
        batches.push(sequence.slice(i, i + size));
        i += size;
      }
      return batches;
    });

/** The store's exactly-once rule, modelled: an event is applied only if its marker is absent. */
function applyWithMarkers(state: ProfileState, batches: StoredEvent[][]): ProfileState {
  const markers = new Set<string>();
  let current = state;
  for (const batch of batches) {
    const fresh = batch.filter((e) => !markers.has(e.pk) && (markers.add(e.pk), true));
    current = applyEvents(current, fresh, settings);
  }
  return current;
}

const view = (state: ProfileState): ProfileView => toProfileView(state, NOW);
const withoutLinks = (v: ProfileView) => ({ ...v, anonymousIds: [] });

describe('order and replay insensitivity', () => {
  it('any order, duplicates and batch cuts give the in-order profile', () => {
    fc.assert(
      fc.property(
        events.chain((list) => fc.tuple(fc.constant(list), delivery(list))),
        ([list, batches]) => {
          const inOrder = list.reduce((s, e) => applyEvent(s, e, settings), emptyProfileState({ userId: 'u-1' }));
          const delivered = applyWithMarkers(emptyProfileState({ userId: 'u-1' }), batches);
          expect(firstDifference(view(delivered), view(inOrder))).toBeUndefined();
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('merge', () => {
  it('merging an anonymous profile gives the profile of both histories', () => {
    fc.assert(
      fc.property(events, fc.array(fc.boolean(), { minLength: 40, maxLength: 40 }), (list, sides) => {
        const anonymous = list.filter((_, i) => sides[i]);
        const known = list.filter((_, i) => !sides[i]);
        const merged = mergeProfiles(
          applyEvents(emptyProfileState({ userId: 'u-1' }), known, settings),
          applyEvents(emptyProfileState({ anonymousId: 'a-1' }), anonymous, settings),
        );
        const all = applyEvents(emptyProfileState({ userId: 'u-1' }), list, settings);
        expect(merged.anonymousIds).toEqual(['a-1']);
        expect(firstDifference(withoutLinks(view(merged)), view(all))).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('is commutative and associative, and the empty profile is neutral', () => {
    fc.assert(
      fc.property(events, events, events, (x, y, z) => {
        const [a, b, c] = [x, y, z].map((l) => applyEvents(emptyProfileState(), l, settings)) as [ProfileState, ProfileState, ProfileState];
        expect(firstDifference(view(mergeProfiles(a, b)), view(mergeProfiles(b, a)))).toBeUndefined();
        expect(
          firstDifference(view(mergeProfiles(mergeProfiles(a, b), c)), view(mergeProfiles(a, mergeProfiles(b, c)))),
        ).toBeUndefined();
        expect(firstDifference(view(mergeProfiles(a, emptyProfileState())), view(a))).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  });

  it('merging the same anonymous profile twice would double its counts: the store merges once (tombstone)', () => {
    const list = [storedEvent({ type: 'page', anonymousId: 'a-1', messageId: 'p1', timestamp: '2026-03-02T00:00:00Z' })];
    const anonymous = applyEvents(emptyProfileState({ anonymousId: 'a-1' }), list, settings);
    const once = mergeProfiles(emptyProfileState({ userId: 'u-1' }), anonymous);
    expect(view(once).stats.visitsTotal).toBe(1);
    expect(view(mergeProfiles(once, anonymous)).anonymousIds).toEqual(['a-1']);
  });
});
