/**
 * A trigger's or a journey's send counts toward caps the moment it is
 * decided, exactly once (fast-check, with the profile plan against the
 * Profiles + Outbox table in memory of reactions-support.ts):
 * - under any redelivery, reordering and batch cuts, each `now` or
 *   `deferred` send is one contact on the profile (its channel's contact
 *   times, its action's impression times), and a push cap of 1 a day holds
 *   between every two sends, deferred ones (quiet hours) included;
 * - the impressions the sender reports later for those sends, however
 *   often and in whatever order, add no contact, but count as impressions
 *   (engagement, the learning statistics) once each;
 * - a send and its impression counted on two profiles joined later (a
 *   login) are one contact;
 * - with a cap of 1 a day, two sends set off in one batch or in two, by two
 *   events or by one, by two triggers or a trigger and a journey step: one
 *   is sent, the other refused by the cap.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { countSince } from '#domain/decide/policies.ts';
import { createJourneyStepper } from '#domain/journeys/react.ts';
import type { PlanOptions } from '#domain/profile/plan.ts';
import type { OutboxEntry } from '#domain/profile/reactions.ts';
import { parseProfileState, type ProfileState } from '#domain/profile/state.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { createTriggerReactor } from '#domain/triggers/react.ts';
import { storedEvent } from '../support/stream.ts';
import { deliver, delivery, type MemoryStore } from './reactions-support.ts';

const DAY = 86_400_000;

const compile = (yaml: string): CompiledCatalog => {
  const result = loadCatalog(yaml, 'yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
};

/** Two triggers on push under a cap of 1 a day, quiet hours 22:00–08:00 UTC on push. */
const catalog = compile(`
kind: kairos/v1
actions:
  - { id: nudge, name: Nudge, content: { push: { title: T, body: B, deepLink: 'app://x' } } }
policies:
  consentRequired: []
  channelCaps: [{ channel: push, max: 1, per: 1d }]
  quietHours: [{ channels: [push], from: '22:00', to: '08:00', timezone: UTC }]
triggers:
  - { id: cart, on: { event: Cart Abandoned }, decide: { channel: push } }
  - { id: browse, on: { event: Product Viewed }, decide: { channel: push } }
`);

const START = Date.parse('2026-04-11T00:00:00Z');
const T0 = Date.parse('2026-04-01T00:00:00Z');
const CUSTOMER = 'u#u-1';

/** The plan's options for the catalog, at `now`. */
const optionsAt = (of: CompiledCatalog, now: number, journeys = false): PlanOptions => ({
  settings: { halfLifeDays: 14 },
  enricher: createCatalogEnricher(() => of),
  reactor: createTriggerReactor(() => of),
  ...(journeys ? { journeys: createJourneyStepper(() => of) } : {}),
  now,
});

const track = (messageId: string, event: string, at: number, properties: Record<string, unknown> = {}): StoredEvent =>
  storedEvent({ type: 'track', userId: 'u-1', messageId, event, timestamp: new Date(at).toISOString(), properties });

const finalState = (store: MemoryStore): ProfileState => parseProfileState(store.profiles.get(CUSTOMER)!.state);
const sends = (store: MemoryStore): OutboxEntry[] => store.outbox.filter((e) => e.status !== 'refused');
const refusals = (store: MemoryStore): OutboxEntry[] => store.outbox.filter((e) => e.status === 'refused');
const sortedNumbers = (list: readonly number[]): number[] => [...list].sort((a, b) => a - b);

/** The impression a sender reports for a send (the emission's decision id and action). */
const impressionOf = (entry: OutboxEntry, n: number): StoredEvent =>
  track(`imp-${entry.id}-${n}`, 'Push Notification Received', entry.sendAt + 60_000, {
    decision_id: entry.detail.decisionId,
    action_id: entry.detail.actionId,
  });

const events = fc
  .array(fc.tuple(fc.constantFrom('Cart Abandoned', 'Product Viewed', 'Visit'), fc.integer({ min: 0, max: 5 * 86_400 })), { minLength: 1, maxLength: 20 })
  // The first always sets a trigger off: there is a send.
  .map((drafts) => drafts.map(([name, s], i) => track(`m-${i}`, i === 0 ? 'Cart Abandoned' : name, T0 + s * 1000)));

describe('a send counts toward caps once, when decided', () => {
  it('any order, duplicates, batch cuts, redelivery and batch instants (quiet hours too): one contact per send, the cap holds, reported impressions add no contact', () => {
    fc.assert(
      fc.property(
        events.chain((list) => delivery(list, false).map((d) => ({ list, ...d }))),
        // Each batch's instant: hours apart, so some fall in quiet hours and some a day past the last send.
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(2), { maxLength: 30 }),
        ({ batches, faults }, steps, repeats) => {
          const instants: number[] = [];
          batches.forEach((_, b) => instants.push((instants[b - 1] ?? START) + (steps[b % steps.length] as number) * 3_600_000));
          const store = deliver(batches, faults, (b) => optionsAt(catalog, instants[b] as number));
          expect(store.outboxRefusals).toBe(0);
          const sent = sends(store);
          expect(sent.length).toBeGreaterThan(0);
          // Each send is one contact: its time on the channel and the action, its decision in `sent`.
          const state = finalState(store);
          const times = sortedNumbers(sent.map((e) => e.contact!.at));
          expect(sortedNumbers(state.channels.push?.contacts ?? [])).toEqual(times);
          expect(sortedNumbers(state.actions.nudge?.i ?? [])).toEqual(times);
          expect(Object.keys(state.sent).sort()).toEqual(sent.map((e) => e.contact!.decision).sort());
          for (const e of sent) expect(e.contact!.at).toBe(Math.floor(e.sendAt / 1000) * 1000);
          // A cap of 1 a day: every two sends a day apart, deferred ones at their send time.
          times.slice(1).forEach((t, i) => expect(t - (times[i] as number)).toBeGreaterThanOrEqual(DAY));
          for (const e of refusals(store)) expect(e.detail).toMatchObject({ refused: 'channel_cap' });
          expect(sent.length + refusals(store).length).toBe(store.outbox.length);

          // The impressions reported for the sends (each up to three times, any order, any cuts): no contact, one impression each.
          const reports = sent.flatMap((e, i) => Array.from({ length: 1 + ((repeats[i] ?? 0) % 3) }, (_, n) => impressionOf(e, n)));
          const later = (instants.at(-1) as number) + 3_600_000;
          const shuffled = [...reports].sort((a, b) => (a.messageId < b.messageId ? 1 : -1));
          deliver([shuffled.slice(0, 3), shuffled.slice(3)].filter((b) => b.length > 0), faults, () => optionsAt(catalog, later), store);
          const reported = finalState(store);
          expect(sortedNumbers(reported.channels.push?.contacts ?? [])).toEqual(times);
          expect(sortedNumbers(reported.actions.nudge?.i ?? [])).toEqual(times);
          expect(reported.channels.push?.delivered).toBe(sent.length);
          expect(reported.actions.nudge?.n).toBe(sent.length);
          expect(store.impressions).toBe(reports.length > 0 ? sent.length : 0);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('a cap of 1 push a day: one send, one refusal', () => {
  const NOON = Date.parse('2026-04-11T12:00:00Z');
  const capId = catalog.policies.channelCapsByChannel.push?.[0]?.id;
  const expectOneSendOneRefusal = (store: MemoryStore): void => {
    expect(sends(store).map((e) => e.status)).toEqual(['now']);
    expect(refusals(store).map((e) => e.detail)).toEqual([expect.objectContaining({ refused: 'channel_cap', refusedBy: capId })]);
    expect(finalState(store).channels.push?.contacts).toEqual([Math.floor(NOON / 1000) * 1000]);
  };

  it('two triggers on two events in one batch', () => {
    const store = deliver([[track('a', 'Cart Abandoned', T0), track('b', 'Product Viewed', T0 + 1000)]], [], () => optionsAt(catalog, NOON));
    expectOneSendOneRefusal(store);
  });

  it('two triggers on two events in two batches', () => {
    const store = deliver([[track('a', 'Cart Abandoned', T0)], [track('b', 'Product Viewed', T0 + 1000)]], [], () => optionsAt(catalog, NOON));
    expectOneSendOneRefusal(store);
  });

  it('two triggers on one event', () => {
    const twice = compile(`
kind: kairos/v1
actions:
  - { id: nudge, name: Nudge, content: { push: { title: T, body: B, deepLink: 'app://x' } } }
policies: { consentRequired: [], channelCaps: [{ channel: push, max: 1, per: 1d }] }
triggers:
  - { id: first, on: { event: Cart Abandoned }, decide: { channel: push } }
  - { id: second, on: { event: Cart Abandoned }, decide: { channel: push } }
`);
    const store = deliver([[track('a', 'Cart Abandoned', T0)]], [], () => optionsAt(twice, NOON));
    expect(sends(store).map((e) => e.detail.trigger)).toEqual(['first']);
    expect(refusals(store).map((e) => [e.detail.trigger, e.detail.refused])).toEqual([['second', 'channel_cap']]);
  });

  it('a trigger and a journey step on one event, and on two', () => {
    const both = compile(`
kind: kairos/v1
actions:
  - { id: nudge, name: Nudge, content: { push: { title: T, body: B, deepLink: 'app://x' } } }
policies: { consentRequired: [], channelCaps: [{ channel: push, max: 1, per: 1d }] }
triggers:
  - { id: cart, on: { event: Cart Abandoned }, decide: { channel: push } }
journeys:
  - id: browse
    entry: { event: Product Viewed }
    steps:
      - { id: remind, act: { channel: push } }
`);
    for (const batches of [[[track('a', 'Cart Abandoned', T0), track('b', 'Product Viewed', T0 + 1000)]], [[track('b', 'Product Viewed', T0)], [track('a', 'Cart Abandoned', T0 + 1000)]]]) {
      const store = deliver(batches, [], () => optionsAt(both, NOON, true));
      const first = batches[0]![0]!.event === 'Cart Abandoned' ? 'Kairos Trigger Action' : 'Kairos Journey Action';
      expect(sends(store).map((e) => e.detailType)).toEqual([first]);
      expect(refusals(store).map((e) => e.detail.refused)).toEqual(['channel_cap']);
      expect(finalState(store).channels.push?.contacts).toHaveLength(1);
    }
  });

  it('a send deferred past quiet hours counts at its send time; a second one in the same night is refused at it', () => {
    const night = Date.parse('2026-04-11T23:00:00Z');
    const store = deliver([[track('a', 'Cart Abandoned', T0)], [track('b', 'Product Viewed', T0 + 1000)]], [], (b) => optionsAt(catalog, night + b * 60_000));
    const [deferred] = sends(store);
    expect(deferred?.status).toBe('deferred');
    expect(new Date(deferred!.sendAt).toISOString()).toBe('2026-04-12T08:00:00.000Z');
    expect(finalState(store).channels.push?.contacts).toEqual([deferred!.sendAt]);
    expect(refusals(store).map((e) => e.detail.refused)).toEqual(['channel_cap']);
  });
});

describe('a pending deferred send', () => {
  it("counts toward the action's frequency cap on a decision before its send time (another channel, not quiet)", () => {
    const split = compile(`
kind: kairos/v1
actions:
  - { id: nudge, name: Nudge, caps: ['1/day'], content: { push: { title: T, body: B, deepLink: 'app://x' }, sms: { text: Hola } } }
policies:
  consentRequired: []
  quietHours: [{ channels: [push], from: '22:00', to: '08:00', timezone: UTC }]
triggers:
  - { id: cart, on: { event: Cart Abandoned }, decide: { channel: push } }
  - { id: browse, on: { event: Product Viewed }, decide: { channel: sms } }
`);
    const night = Date.parse('2026-04-11T23:00:00Z');
    const store = deliver([[track('a', 'Cart Abandoned', T0)], [track('b', 'Product Viewed', T0 + 1000)]], [], (b) => optionsAt(split, night + b * 60_000));
    expect(sends(store).map((e) => [e.detail.channel, e.status, new Date(e.sendAt).toISOString()])).toEqual([['push', 'deferred', '2026-04-12T08:00:00.000Z']]);
    expect(refusals(store).map((e) => [e.detail.channel, e.detail.refused])).toEqual([['sms', 'no_eligible_action']]);
  });
});

describe('a send and its impression on two profiles merged later', () => {
  const NOON = Date.parse('2026-04-11T12:00:00Z');
  const anonymous = (messageId: string, event: string) =>
    storedEvent({ type: 'track', anonymousId: 'anon-1', messageId, event, timestamp: new Date(T0).toISOString() });
  const login = storedEvent({ type: 'identify', userId: 'u-1', anonymousId: 'anon-1', messageId: 'login', timestamp: new Date(T0 + 1000).toISOString() });

  it('count one contact, whichever profile the send and the impression were counted on', () => {
    // The send on the anonymous profile, its impression reported with the user id alone, then the login joins
    // them: the impression is not the send's customer's when applied, so it counts for nothing; one contact.
    const alone = deliver([[anonymous('a', 'Cart Abandoned')]], [], () => optionsAt(catalog, NOON));
    const [aloneSend] = sends(alone);
    deliver([[impressionOf(aloneSend!, 0)], [login]], [], () => optionsAt(catalog, NOON + 60_000), alone);
    expect(finalState(alone).channels.push?.contacts).toEqual([aloneSend!.contact!.at]);
    expect(finalState(alone).actions.nudge?.i).toEqual([aloneSend!.contact!.at]);
    expect(finalState(alone).channels.push?.delivered ?? 0).toBe(0);

    // The other way round: the send on the user's profile, its impression reported on the anonymous one.
    const other = deliver([[track('b', 'Cart Abandoned', T0)]], [], () => optionsAt(catalog, NOON));
    const [userSend] = sends(other);
    // Reported under anon-1 alone before the login, it is not the send's customer's: no delivery, one contact.
    const report = storedEvent({ ...impressionOf(userSend!, 1), userId: undefined, anonymousId: 'anon-1' });
    deliver([[report], [login]], [], () => optionsAt(catalog, NOON + 60_000), other);
    expect(finalState(other).channels.push?.contacts).toEqual([userSend!.contact!.at]);
    expect(finalState(other).channels.push?.delivered ?? 0).toBe(0);
  });
});

describe('countSince', () => {
  const iso = (ms: number) => new Date(ms).toISOString();
  it('counts the times within the window before now and those pending less than a window ahead', () => {
    const now = START;
    const times = [now + DAY, now + DAY - 1, now + 1, now, now - DAY + 1, now - DAY].map(iso);
    expect(countSince(times, now, DAY)).toBe(4);
    expect(countSince(times, now + 2 * DAY - 1, DAY)).toBe(1);
    expect(countSince(times, now + 2 * DAY, DAY)).toBe(0);
    expect(countSince(undefined, now, DAY)).toBe(0);
  });
});
