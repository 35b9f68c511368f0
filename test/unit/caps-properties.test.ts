/**
 * A trigger's or a journey's send counts toward caps the moment it is
 * decided, exactly once (fast-check, with the profile plan against the
 * Profiles + Outbox table in memory of reactions-support.ts):
 * - under any redelivery, reordering and batch cuts, each `now` send is one
 *   contact on the profile (its channel's contact times, its action's
 *   impression times), and a push cap of 1 a day holds between every two
 *   sends; a send that falls in quiet hours is a timer, no contact, until
 *   it is due: its `Send Timer` event, fired any number of times in any
 *   order and cuts, decides its send once (`now` or `refused`), and the cap
 *   holds across those too;
 * - the impressions the sender reports later for those sends, however
 *   often and in whatever order, add no contact, but count as impressions
 *   (engagement, the learning statistics) once each;
 * - a send and its impression counted on two profiles joined later (a
 *   login) are one contact;
 * - a send decided for an anonymous visitor, its impressions and taps
 *   reported under the visitor's id, the user's or both, before, with or
 *   after the login (identify, alias) that merges the visitor into the
 *   user, in any delivery: one contact per send, each outcome counted once;
 * - a send the user's profile decides once the login is applied, in the
 *   very write that merges the visitor too, sees the visitor's sends and
 *   the write's earlier ones, each once: a cap of 1 a day holds across
 *   them, a cap of 2 lets two through;
 * - with a cap of 1 a day, two sends set off in one batch or in two, by two
 *   events or by one, by two triggers or a trigger and a journey step, or
 *   both deferred to the same end of quiet hours: one is sent, the other
 *   refused by the cap.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { countSince } from '#domain/decide/policies.ts';
import { createJourneyStepper } from '#domain/journeys/react.ts';
import { timerEventOfDetail } from '#domain/journeys/timer.ts';
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
/** The sends decided (a timer is none yet). */
const sends = (store: MemoryStore): OutboxEntry[] => store.outbox.filter((e) => e.status === 'now');
/** The timers of sends that fell in quiet hours, not decided yet. */
const timers = (store: MemoryStore): OutboxEntry[] => store.outbox.filter((e) => e.detail.kind === 'send-timer');
/** The `Send Timer` event of a timer entry, written when due. */
const dueEvent = (timer: OutboxEntry): StoredEvent => timerEventOfDetail(timer.detail, timer.sendAt, 1)!;
/**
 * Fire the pending timers of `store` in one batch, at their latest due time or `after`, outside quiet hours
 * (08:00–22:00 UTC); returns that instant.
 */
const fireDue = (store: MemoryStore, after: number, of: CompiledCatalog = catalog): number => {
  let at = Math.max(after, ...timers(store).map((e) => e.sendAt));
  const hour = new Date(at).getUTCHours();
  if (hour < 8 || hour >= 22) at = Date.UTC(new Date(at).getUTCFullYear(), new Date(at).getUTCMonth(), new Date(at).getUTCDate() + (hour >= 22 ? 1 : 0), 8);
  deliver([timers(store).map(dueEvent)].filter((b) => b.length > 0), [], () => optionsAt(of, at), store);
  return at;
};
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

/**
 * `list` in any order (by `keys`), a record twice (`twice`: index, then how far after its first), cut in
 * batches of `cuts`: the deliveries `delivery` makes, for a list known only once the sends are decided.
 */
const arrange = (list: readonly StoredEvent[], keys: readonly number[], twice: readonly [number, number][], cuts: readonly number[]): StoredEvent[][] => {
  if (list.length === 0) return [];
  const sequence = list.map((e, i) => ({ e, k: keys[i % keys.length] as number, i })).sort((a, b) => a.k - b.k || a.i - b.i).map(({ e }) => e);
  for (const [index, at] of twice) {
    const event = list[index % list.length] as StoredEvent;
    const first = sequence.indexOf(event);
    sequence.splice(first + 1 + (at % (sequence.length - first)), 0, event);
  }
  const batches: StoredEvent[][] = [];
  for (let i = 0, c = 0; i < sequence.length; c++) {
    const size = cuts[c % cuts.length] as number;
    batches.push(sequence.slice(i, i + size));
    i += size;
  }
  return batches;
};

/** How a list known only once some sends are decided is delivered (see `arrange`). */
const arrangement = fc.record({
  keys: fc.array(fc.nat(100), { minLength: 1, maxLength: 16 }),
  twice: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 4 }),
  cuts: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 }),
  faults: fc.array(fc.boolean(), { maxLength: 8 }),
});

describe('a send counts toward caps once, when decided', () => {
  it('any order, duplicates, batch cuts, redelivery and batch instants (quiet hours too), then the timers of the sends quiet hours deferred fired any number of times in any order and cuts: each send decided once, one contact per send, the cap holds, reported impressions add no contact', () => {
    fc.assert(
      fc.property(
        events.chain((list) => delivery(list, false).map((d) => ({ list, ...d }))),
        // Each batch's instant: hours apart, so some fall in quiet hours and some a day past the last send.
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 10 }),
        fc.array(fc.nat(2), { maxLength: 30 }),
        arrangement,
        ({ batches, faults }, steps, repeats, firing) => {
          const instants: number[] = [];
          batches.forEach((_, b) => instants.push((instants[b - 1] ?? START) + (steps[b % steps.length] as number) * 3_600_000));
          const store = deliver(batches, faults, (b) => optionsAt(catalog, instants[b] as number));
          // A timer is no contact: only the sends decided so far are.
          const early = sends(store).map((e) => e.contact!.at);
          expect(sortedNumbers(finalState(store).channels.push?.contacts ?? [])).toEqual(sortedNumbers(early));
          // The timers come back when due (some twice, in any order and cuts, after a fault), each decided once.
          const pending = timers(store);
          const firstDue = Math.max(instants.at(-1) as number, ...pending.map((e) => e.sendAt));
          deliver(arrange(pending.map(dueEvent), firing.keys, firing.twice, firing.cuts), firing.faults, (b) => optionsAt(catalog, firstDue + b * 60_000), store);
          expect(store.outboxRefusals).toBe(0);
          const decidedLate = new Set(pending.map((t) => t.detail.send));
          for (const send of decidedLate) expect(store.outbox.filter((e) => e.id === send).map((e) => e.status)).toEqual([expect.stringMatching(/^(now|refused)$/)]);
          const sent = sends(store);
          expect(sent.length + refusals(store).length).toBeGreaterThan(0);
          // Each send is one contact: its time on the channel and the action, its decision in `sent`.
          const state = finalState(store);
          const times = sortedNumbers(sent.map((e) => e.contact!.at));
          expect(sortedNumbers(state.channels.push?.contacts ?? [])).toEqual(times);
          expect(sortedNumbers(state.actions.nudge?.i ?? [])).toEqual(times);
          expect(Object.keys(state.sent).sort()).toEqual(sent.map((e) => e.contact!.decision).sort());
          for (const e of sent) expect(e.contact!.at).toBe(Math.floor(e.sendAt / 1000) * 1000);
          // A cap of 1 a day: every two sends a day apart, deferred ones at their send time.
          times.slice(1).forEach((t, i) => expect(t - (times[i] as number)).toBeGreaterThanOrEqual(DAY));
          // Refused by the cap; a timer's send decided when quiet hours had come again, by them.
          for (const e of refusals(store)) expect(e.detail.refused).toBe(decidedLate.has(e.id) && e.detail.refused === 'quiet_hours' ? 'quiet_hours' : 'channel_cap');
          expect(sent.length + refusals(store).length + pending.length).toBe(store.outbox.length);

          // The impressions reported for the sends (each up to three times, any order, any cuts): no contact, one impression each.
          const reports = sent.flatMap((e, i) => Array.from({ length: 1 + ((repeats[i] ?? 0) % 3) }, (_, n) => impressionOf(e, n)));
          const later = firstDue + DAY;
          const shuffled = [...reports].sort((a, b) => (a.messageId < b.messageId ? 1 : -1));
          deliver([shuffled.slice(0, 3), shuffled.slice(3)].filter((b) => b.length > 0), faults, () => optionsAt(catalog, later), store);
          const reported = finalState(store);
          expect(sortedNumbers(reported.channels.push?.contacts ?? [])).toEqual(times);
          expect(sortedNumbers(reported.actions.nudge?.i ?? [])).toEqual(times);
          expect(reported.channels.push?.delivered ?? 0).toBe(sent.length);
          expect(reported.actions.nudge?.n ?? 0).toBe(sent.length);
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

  it('two sends deferred past quiet hours are no contact while they wait; at their end both come back: the first decided is sent, the second refused by the cap', () => {
    const night = Date.parse('2026-04-11T23:00:00Z');
    const store = deliver([[track('a', 'Cart Abandoned', T0)], [track('b', 'Product Viewed', T0 + 1000)]], [], (b) => optionsAt(catalog, night + b * 60_000));
    const pending = timers(store);
    expect(pending.map((e) => [e.status, e.detailType, new Date(e.sendAt).toISOString(), e.detail.send])).toEqual([
      ['deferred', 'Kairos Send Timer', '2026-04-12T08:00:00.000Z', 'cart.src-test#a'],
      ['deferred', 'Kairos Send Timer', '2026-04-12T08:00:00.000Z', 'browse.src-test#b'],
    ]);
    expect(sends(store)).toEqual([]);
    expect(finalState(store).channels.push?.contacts ?? []).toEqual([]);
    const end = pending[0]!.sendAt;
    deliver([pending.map(dueEvent)], [], () => optionsAt(catalog, end), store);
    expect(sends(store).map((e) => [e.id, e.detail.trigger, e.sendAt])).toEqual([['cart.src-test#a', 'cart', end]]);
    expect(refusals(store).map((e) => [e.id, e.detail.refused])).toEqual([['browse.src-test#b', 'channel_cap']]);
    expect(finalState(store).channels.push?.contacts).toEqual([end]);
  });
});

describe('a pending deferred send', () => {
  it("is no contact until it is decided: a send of the same action on another channel meanwhile is sent, and the action's frequency cap refuses the deferred one when it is due", () => {
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
    expect(timers(store).map((e) => [e.detail.channel, e.status, new Date(e.sendAt).toISOString()])).toEqual([['push', 'deferred', '2026-04-12T08:00:00.000Z']]);
    expect(sends(store).map((e) => [e.detail.channel, e.status])).toEqual([['sms', 'now']]);
    deliver([timers(store).map(dueEvent)], [], () => optionsAt(split, Date.parse('2026-04-12T08:00:00Z')), store);
    expect(refusals(store).map((e) => [e.id, e.detail.channel, e.detail.refused])).toEqual([['cart.src-test#a', 'push', 'no_eligible_action']]);
    expect(finalState(store).actions.nudge?.i).toEqual([night + 60_000]);
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

describe("an anonymous visitor's send, its impression reported after they log in", () => {
  const NOON = Date.parse('2026-04-11T12:00:00Z');
  const ANON = 'anon-1';
  type Ids = { readonly userId?: string; readonly anonymousId?: string };
  const BOTH: Ids = { userId: 'u-1', anonymousId: ANON };
  const anonymous = (messageId: string, event: string, at = T0): StoredEvent =>
    storedEvent({ type: 'track', anonymousId: ANON, messageId, event, timestamp: new Date(at).toISOString() });
  const identify = (messageId: string, ids: Ids = BOTH): StoredEvent =>
    storedEvent({ type: 'identify', ...ids, messageId, timestamp: new Date(T0 + 1000).toISOString() });
  const alias = (messageId: string): StoredEvent =>
    storedEvent({ type: 'alias', userId: 'u-1', previousId: ANON, messageId, timestamp: new Date(T0 + 1000).toISOString() });
  /** The impression a sender reports for a send, under `ids`. */
  const reported = (entry: OutboxEntry, messageId: string, ids: Ids, event = 'Push Notification Received'): StoredEvent =>
    storedEvent({ ...impressionOf(entry, 0), userId: undefined, anonymousId: undefined, ...ids, messageId, event });

  /** The anonymous visitor's one send, decided at NOON on a#anon-1. */
  const sentToVisitor = (): { store: MemoryStore; send: OutboxEntry } => {
    const store = deliver([[anonymous('cart', 'Cart Abandoned')]], [], () => optionsAt(catalog, NOON));
    const [send] = sends(store);
    expect(send?.contact).toBeDefined();
    expect(Object.keys(parseProfileState(store.profiles.get(`a#${ANON}`)!.state).sent)).toEqual([send!.contact!.decision]);
    return { store, send: send! };
  };

  /** One contact for the send on the customer's profile, the visitor's merged; `delivered` impressions counted. */
  const expectOneContact = (store: MemoryStore, send: OutboxEntry, delivered: number): void => {
    expect(store.tombstones.get(`a#${ANON}`)?.mergedInto).toBe('u-1');
    const state = finalState(store);
    expect(state.channels.push?.contacts).toEqual([send.contact!.at]);
    expect(state.actions.nudge?.i).toEqual([send.contact!.at]);
    expect(Object.keys(state.sent)).toEqual([send.contact!.decision]);
    expect(state.channels.push?.delivered ?? 0).toBe(delivered);
    expect(state.actions.nudge?.n ?? 0).toBe(delivered);
    expect(store.impressions).toBe(delivered);
  };

  const later = (b: number) => optionsAt(catalog, NOON + (b + 1) * 60_000);

  it('under both ids, alone or after an identify in the same batch: the merge adds no second contact', () => {
    for (const join of [[], [identify('login')], [alias('login')]]) {
      const { store, send } = sentToVisitor();
      deliver([[...join, reported(send, 'imp', BOTH)]], [], later, store);
      expectOneContact(store, send, 1);
    }
  });

  it('under both ids, in the batch after the login; under the user id alone, in the batch after the login', () => {
    for (const ids of [BOTH, { userId: 'u-1' }, { anonymousId: ANON }]) {
      const { store, send } = sentToVisitor();
      deliver([[identify('login')], [reported(send, 'imp', ids)]], [], later, store);
      expectOneContact(store, send, 1);
    }
  });

  it('counted on the visitor before the login, then again under both ids as they log in: one contact, one impression, one tap', () => {
    const { store, send } = sentToVisitor();
    const tap = 'Push Notification Tapped';
    deliver(
      [
        [reported(send, 'imp-a', { anonymousId: ANON }), reported(send, 'tap-a', { anonymousId: ANON }, tap)],
        [reported(send, 'imp-both', BOTH), reported(send, 'tap-both', BOTH, tap)],
        [reported(send, 'imp-u', { userId: 'u-1' }), reported(send, 'tap-u', { userId: 'u-1' }, tap)],
      ],
      [],
      later,
      store,
    );
    expectOneContact(store, send, 1);
    expect(finalState(store).channels.push?.engaged).toBe(1);
    expect(finalState(store).actions.nudge?.clicks).toBe(1);
    expect(store.clicks).toBe(1);
  });

  it('under the user id alone, in the same batch after the login: one contact; the impression counts after an identify, not after an alias', () => {
    // Applied on u#u-1 before the visitor's profile is merged into it (plan.ts): the identify carries the visitor's
    // id, the customer's experiment key since, so the impression is the send's customer's; an alias carries none.
    for (const [join, delivered] of [[identify('login'), 1], [alias('login'), 0]] as const) {
      const { store, send } = sentToVisitor();
      deliver([[join, reported(send, 'imp', { userId: 'u-1' })]], [], later, store);
      expectOneContact(store, send, delivered);
    }
  });

  it('a send decided after the login, in the batch that merges the visitor, sees the visitor\'s send: the cap of 1 a day refuses it', () => {
    const user = (messageId: string, event: string): StoredEvent =>
      storedEvent({ type: 'track', userId: 'u-1', messageId, event, timestamp: new Date(T0 + 2000).toISOString() });
    for (const batch of [
      [identify('login'), user('cart-u', 'Cart Abandoned')],
      [identify('login'), user('cart-u', 'Cart Abandoned'), user('visit', 'Visit')],
      [alias('login'), user('visit', 'Visit'), user('cart-u', 'Cart Abandoned'), user('visit-2', 'Visit')],
      [storedEvent({ type: 'track', ...BOTH, messageId: 'cart-u', event: 'Cart Abandoned', timestamp: new Date(T0 + 2000).toISOString() }), user('visit', 'Visit')],
    ]) {
      const { store, send } = sentToVisitor();
      deliver([batch], [], later, store);
      expect(sends(store).map((e) => e.id)).toEqual([send.id]);
      expect(refusals(store).map((e) => e.detail.refused)).toEqual(['channel_cap']);
      expectOneContact(store, send, 0);
    }
  });

  it("two visitors' sends on two days, joined one after the other in the write that decides a third: it sees both, refused by the cap", () => {
    const DAY_2 = NOON + DAY;
    const store = deliver([[anonymous('cart', 'Cart Abandoned')]], [], () => optionsAt(catalog, NOON));
    const other = (messageId: string, event: string): StoredEvent =>
      storedEvent({ type: 'track', anonymousId: 'anon-2', messageId, event, timestamp: new Date(T0).toISOString() });
    deliver([[other('cart-2', 'Cart Abandoned')]], [], () => optionsAt(catalog, DAY_2), store);
    const visitors = sends(store);
    expect(visitors.map((e) => e.contact!.at)).toEqual([NOON, DAY_2]);
    const user = (messageId: string, event: string): StoredEvent =>
      storedEvent({ type: 'track', userId: 'u-1', messageId, event, timestamp: new Date(T0 + 2000).toISOString() });
    // An hour after the second visitor's send: only it is within the day, and the first visitor is joined after it.
    deliver([[identify('login-2', { userId: 'u-1', anonymousId: 'anon-2' }), user('visit', 'Visit'), identify('login'), user('cart-u', 'Cart Abandoned'), user('visit-2', 'Visit')]], [], () => optionsAt(catalog, DAY_2 + 3_600_000), store);
    expect(sends(store)).toEqual(visitors);
    expect(refusals(store).map((e) => e.detail.refused)).toEqual(['channel_cap']);
    expect(sortedNumbers(finalState(store).channels.push?.contacts ?? [])).toEqual([NOON, DAY_2]);
  });

  it('two sends decided after the login in the write that merges the visitor, whose send is a day old: the first is sent, the second refused', () => {
    const { store, send } = sentToVisitor();
    const user = (messageId: string, event: string): StoredEvent =>
      storedEvent({ type: 'track', userId: 'u-1', messageId, event, timestamp: new Date(T0 + 2000).toISOString() });
    deliver([[identify('login'), user('cart-u', 'Cart Abandoned'), user('viewed', 'Product Viewed'), user('visit', 'Visit')]], [], () => optionsAt(catalog, NOON + DAY + 3_600_000), store);
    const [, second] = sends(store);
    expect(sends(store).map((e) => e.detail.trigger)).toEqual(['cart', 'cart']);
    expect(refusals(store).map((e) => [e.detail.trigger, e.detail.refused])).toEqual([['browse', 'channel_cap']]);
    expect(sortedNumbers(finalState(store).channels.push?.contacts ?? [])).toEqual([send.contact!.at, second!.contact!.at]);
  });

  it('with a cap of 2 a day, the two sends decided after the login in the write that merges the visitor (a day old) are both sent', () => {
    const twice = compile(`
kind: kairos/v1
actions:
  - { id: nudge, name: Nudge, content: { push: { title: T, body: B, deepLink: 'app://x' } } }
policies: { consentRequired: [], channelCaps: [{ channel: push, max: 2, per: 1d }] }
triggers:
  - { id: cart, on: { event: Cart Abandoned }, decide: { channel: push } }
  - { id: browse, on: { event: Product Viewed }, decide: { channel: push } }
`);
    const store = deliver([[anonymous('cart', 'Cart Abandoned')]], [], () => optionsAt(twice, NOON));
    const user = (messageId: string, event: string): StoredEvent =>
      storedEvent({ type: 'track', userId: 'u-1', messageId, event, timestamp: new Date(T0 + 2000).toISOString() });
    deliver([[identify('login'), user('cart-u', 'Cart Abandoned'), user('viewed', 'Product Viewed'), user('visit', 'Visit')]], [], () => optionsAt(twice, NOON + DAY + 3_600_000), store);
    expect(sends(store).map((e) => e.detail.trigger)).toEqual(['cart', 'cart', 'browse']);
    expect(refusals(store)).toEqual([]);
    expect(finalState(store).channels.push?.contacts).toHaveLength(3);
  });

  /** Which ids an impression is reported under. */
  const idsOf = [{ anonymousId: ANON }, BOTH, { userId: 'u-1' }] as const;
  const visitorEvents = fc
    .array(fc.tuple(fc.constantFrom('Cart Abandoned', 'Product Viewed', 'Visit'), fc.integer({ min: 0, max: 5 * 86_400 })), { minLength: 1, maxLength: 12 })
    .map((drafts) => drafts.map(([name, s], i) => anonymous(`v-${i}`, i === 0 ? 'Cart Abandoned' : name, T0 + s * 1000)));

  it("any delivery of the visitor's sends, then of the login (identify, alias or both) among their impressions and taps under any ids: one contact per send, each outcome counted once", () => {
    const property = fc.property(
        visitorEvents.chain((list) => delivery(list, false)),
        fc.array(fc.integer({ min: 1, max: 20 }), { minLength: 1, maxLength: 10 }),
        fc.constantFrom<'identify' | 'alias' | 'both'>('identify', 'alias', 'both'),
        // Per report: which send, under which ids (idsOf), an impression or a tap.
        fc.array(fc.tuple(fc.nat(20), fc.nat(2), fc.constantFrom('Push Notification Received', 'Push Notification Received', 'Push Notification Tapped')), { minLength: 1, maxLength: 12 }),
        fc.record({
          keys: fc.array(fc.nat(100), { minLength: 1, maxLength: 16 }),
          twice: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 4 }),
          cuts: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 }),
          faults: fc.array(fc.boolean(), { maxLength: 8 }),
        }),
        ({ batches, faults }, steps, login, reports, second) => {
          const instants: number[] = [];
          batches.forEach((_, b) => instants.push((instants[b - 1] ?? START) + (steps[b % steps.length] as number) * 3_600_000));
          const store = deliver(batches, faults, (b) => optionsAt(catalog, instants[b] as number));
          // The sends quiet hours deferred, decided when due.
          const last = fireDue(store, instants.at(-1) as number);
          const sent = sends(store);
          expect(sent.length).toBeGreaterThan(0);
          const times = sortedNumbers(sent.map((e) => e.contact!.at));

          // The impressions reported for the sends (some not at all, some several times, under any ids), and the login among them.
          const outcomes = reports.map(([which, ids, event], r) => reported(sent[which % sent.length]!, `report-${r}`, idsOf[ids]!, event));
          const joins = login === 'identify' ? [identify('login')] : login === 'alias' ? [alias('login')] : [identify('login'), alias('alias')];
          deliver(arrange([...joins, ...outcomes], second.keys, second.twice, second.cuts), second.faults, (b) => optionsAt(catalog, last + (b + 1) * 3_600_000), store);

          const state = finalState(store);
          expect(store.tombstones.get(`a#${ANON}`)?.mergedInto).toBe('u-1');
          expect(sortedNumbers(state.channels.push?.contacts ?? [])).toEqual(times);
          expect(sortedNumbers(state.actions.nudge?.i ?? [])).toEqual(times);
          expect(Object.keys(state.sent).sort()).toEqual(sent.map((e) => e.contact!.decision).sort());
          // Each send's impression (tap) counts once at most, and surely when one of its reports carries the visitor's id;
          // a tap implies the impression.
          const decisionsOf = (events: readonly string[], carried: boolean): number =>
            new Set(outcomes.filter((e) => events.includes(e.event ?? '') && (!carried || e.anonymousId === ANON)).map((e) => e.properties!.decision_id)).size;
          const delivered = state.channels.push?.delivered ?? 0;
          expect(delivered).toBeGreaterThanOrEqual(decisionsOf(['Push Notification Received', 'Push Notification Tapped'], true));
          expect(delivered).toBeLessThanOrEqual(decisionsOf(['Push Notification Received', 'Push Notification Tapped'], false));
          expect(state.actions.nudge?.n ?? 0).toBe(delivered);
          expect(store.impressions).toBe(delivered);
          const engaged = state.channels.push?.engaged ?? 0;
          expect(engaged).toBeGreaterThanOrEqual(decisionsOf(['Push Notification Tapped'], true));
          expect(engaged).toBeLessThanOrEqual(decisionsOf(['Push Notification Tapped'], false));
          expect(engaged).toBeLessThanOrEqual(delivered);
          expect(state.actions.nudge?.clicks ?? 0).toBe(engaged);
          expect(store.clicks).toBe(engaged);
        },
    );
    fc.assert(property, { numRuns: 100 });
    // A run that found an impression the profile counted and the statistics did not (reported under the user's id
    // alone, in the batch whose alias joins the visitor): replayed, so it holds for good.
    fc.assert(property, {
      seed: -2032025412,
      path: '59:60:1:1:2:5:0:5:0:4:2:0:0:0:0:1:6:5:8:14:16:16:19:20:25:24:22:27:25:30:28:29:31:22:22:24:22:22:22:22:28:28:28:30:28:28:28:30:22:24:22:22:22:28:28:30:28:28:30:22:24:22:22:28:28:30:28:33:25:25:26:25:25:30:22:24:22:28:28:30:28:30:22:24:28:30:31:25:29:22:28:32:34',
      endOnFailure: true,
    });
  });

  it("the customer's sends decided once the login joins the visitor, in any delivery: a day from each other and from the visitor's", () => {
    const userEvents = fc.array(fc.tuple(fc.constantFrom('Cart Abandoned', 'Product Viewed', 'Visit'), fc.integer({ min: 0, max: 86_400 })), { minLength: 1, maxLength: 10 });
    fc.assert(
      fc.property(
        visitorEvents.chain((list) => delivery(list, false)),
        userEvents,
        fc.constantFrom<'identify' | 'alias' | 'cart'>('identify', 'alias', 'cart'),
        fc.nat(12),
        fc.record({
          keys: fc.array(fc.nat(100), { minLength: 1, maxLength: 16 }),
          twice: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 4 }),
          cuts: fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 }),
          faults: fc.array(fc.boolean(), { maxLength: 8 }),
        }),
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 6 }),
        // Days between the visitor's last batch and the customer's first: the visitor's sends within a cap's day or past it.
        fc.nat(2),
        ({ batches, faults }, drafts, login, loginAt, second, steps, days) => {
          const store = deliver(batches, faults, (b) => optionsAt(catalog, START + b * 3_600_000));
          const visitor = sends(store);
          // The customer's events, the login among them; batches hours apart, some within a day of the visitor's sends.
          const events = drafts.map(([name, s], i) => storedEvent({ type: 'track', userId: 'u-1', messageId: `u-${i}`, event: name, timestamp: new Date(T0 + s * 1000).toISOString() }));
          const join =
            login === 'identify' ? identify('login') : login === 'alias' ? alias('login') : storedEvent({ type: 'track', ...BOTH, messageId: 'login', event: 'Cart Abandoned', timestamp: new Date(T0 + 500).toISOString() });
          events.splice(loginAt % (events.length + 1), 0, join);
          const instants: number[] = [];
          const cut = arrange(events, second.keys, second.twice, second.cuts);
          cut.forEach((_, b) => instants.push((instants[b - 1] ?? START + batches.length * 3_600_000 + days * DAY) + (steps[b % steps.length] as number) * 3_600_000));
          deliver(cut, second.faults, (b) => optionsAt(catalog, instants[b] as number), store);

          expect(store.tombstones.get(`a#${ANON}`)?.mergedInto).toBe('u-1');
          // The sends the customer's profile decided once the login was applied (the login's own included) saw the visitor's.
          const appliedAt = (messageId: unknown): number => store.applied.indexOf(`src-test#${String(messageId)}`);
          const customer = sends(store).filter((e) => !visitor.includes(e));
          const joined = customer.filter((e) => appliedAt(e.detail.eventId) >= appliedAt('login'));
          const times = sortedNumbers([...visitor, ...joined].map((e) => e.contact!.at));
          times.slice(1).forEach((t, i) => expect(t - (times[i] as number)).toBeGreaterThanOrEqual(DAY));
          // And every send is one contact on the customer's profile.
          const state = finalState(store);
          expect(sortedNumbers(state.channels.push?.contacts ?? [])).toEqual(sortedNumbers(sends(store).map((e) => e.contact!.at)));
        },
      ),
      { numRuns: 150 },
    );
  });
});
