/**
 * Out-of-order and replayed events give the same profile as in-order
 * delivery (API.md §2), and merging profiles is the profile of both
 * histories: fast-check properties over the pure aggregation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  applyEvent,
  applyEvents,
  emptyProfileState,
  mergeProfiles,
  toProfileView,
  type ProfileState,
  type ProfileView,
} from '#domain/profile/profile.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { storedEvent } from '#test/support/stream.ts';
import { firstDifference } from './profile-compare.ts';

const settings = { halfLifeDays: 14 };
const T0 = Date.parse('2026-03-01T00:00:00Z');
const NOW = new Date(T0 + 41 * 86_400_000);

type Draft = Omit<Parameters<typeof storedEvent>[0], 'messageId' | 'userId'>;

// Second-level times over 40 days, with frequent exact ties (LWW tie-breaks must not depend on order).
const time = fc.oneof(
  fc.integer({ min: 0, max: 40 * 24 * 3600 }),
  fc.constantFrom(0, 3600, 86_400, 10 * 86_400),
).map((s) => new Date(T0 + s * 1000).toISOString());
const channel = fc.constantFrom('web', 'app', 'push', 'email', 'sms', 'call_center');
const category = fc.constantFrom('shoes', 'socks', 'yoga', 'tents');
const zone = fc.constantFrom('Europe/Madrid', 'America/New_York', 'Asia/Kolkata', 'UTC');
const outcome = (event: string) =>
  fc.record({
    decision_id: fc.constantFrom('d1', 'd2'),
    action_id: fc.option(fc.constantFrom('a1', 'a2', 'a3'), { nil: undefined }),
    channel: fc.option(channel, { nil: undefined }),
  }).map((properties): Pick<Draft, 'type' | 'event' | 'properties'> => ({ type: 'track', event, properties }));

const draft: fc.Arbitrary<Draft> = fc
  .tuple(
    time,
    fc.oneof(
      fc.record({
        type: fc.constant('identify' as const),
        traits: fc.record(
          {
            tier: fc.constantFrom('gold', 'silver'),
            email: fc.constantFrom('a@x.es', 'b@x.es'),
            first_name: fc.constantFrom('Luis', 'Ana'),
            address: fc.record({ city: fc.constantFrom('Madrid', 'Lyon') }, { requiredKeys: [] }),
            timezone: zone,
          },
          { requiredKeys: [] },
        ),
      }),
      fc.record({
        type: fc.constantFrom('page' as const, 'screen' as const),
        properties: fc.record({ category }, { requiredKeys: [] }),
        context: fc.record({ timezone: zone }, { requiredKeys: [] }),
      }),
      fc.record({ type: fc.constant('track' as const), event: fc.constant('Product Viewed'), properties: fc.record({ category }) }),
      fc.record({
        type: fc.constant('track' as const),
        event: fc.constant('Order Completed'),
        properties: fc.record(
          {
            revenue: fc.double({ min: 0, max: 500, noNaN: true }),
            total: fc.double({ min: 0, max: 500, noNaN: true }),
            products: fc.array(fc.record({ category }), { maxLength: 3 }),
            decision_id: fc.constant('d1'),
            action_id: fc.constantFrom('a1', 'a2'),
          },
          { requiredKeys: [] },
        ),
      }),
      fc.constantFrom('Order Refunded', 'Complaint Opened', 'Complaint Resolved', 'Unsubscribed', 'Video Played', 'Search').map(
        (event): Pick<Draft, 'type' | 'event'> => ({ type: 'track', event }),
      ),
      fc.record({
        type: fc.constant('track' as const),
        event: fc.constant('Consent Updated'),
        properties: fc.record({ channel, granted: fc.boolean() }),
      }),
      fc.record({
        type: fc.constant('track' as const),
        event: fc.constant('Preferences Updated'),
        properties: fc.record(
          { interests: fc.array(category, { maxLength: 3 }), preferred_channel: channel },
          { requiredKeys: [] },
        ),
      }),
      outcome('Promotion Viewed'),
      outcome('Promotion Clicked'),
      outcome('Push Notification Received'),
      outcome('Push Notification Tapped'),
      outcome('Email Opened'),
      outcome('Email Link Clicked'),
    ),
  )
  .map(([timestamp, body]) => ({ timestamp, ...body }) as Draft);

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
