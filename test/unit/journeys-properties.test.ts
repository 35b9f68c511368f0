/**
 * Journeys move exactly once, whatever the stream and the scheduler do
 * (fast-check, in the style of the triggers' properties): the pure plan
 * (shared/domain/profile/plan.ts with the journeys' stepper) against a
 * Profiles + Outbox table and the journey report's counters in memory,
 * checking what the transactions check — the profile's version, each
 * applied marker's absence, each outbox item's absence — and committing a
 * write whole or not at all. A scheduler in memory turns each timer the
 * outbox receives into its `Journey Timer` event, delivered later in the
 * stream at any point (late: after the customer moved on), once or twice.
 *
 * For any delivery — any order, batches cut anywhere, a record twice,
 * redelivery of a batch after a store fault, timers firing twice or late —
 * - no outbox item is ever put twice (the markers alone refuse a
 *   redelivered event's reactions);
 * - the runs, emissions and counts are exactly those of applying each
 *   distinct event once, in the order the store applied them;
 * - and they are consistent on their own: a journey's `entered` count is
 *   its last run number, every run entered has ended or is in progress,
 *   each act step reached is one emission and each wait one timer, a
 *   step's emission belongs to a run the customer had.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { JOURNEY_TIMER_KEY_PREFIX, journeyTimerEvent, journeyTimerMessageId } from '#domain/journeys/timer.ts';
import { journeyEffectId } from '#domain/journeys/machine.ts';
import { MAX_EMISSION_ID_LENGTH } from '#domain/triggers/emission.ts';
import { ID_PATTERN } from '#domain/catalog/schema.ts';
import { functionDefinitions } from '#shared/functions.ts';
import type { JourneyCount, JourneyRuns } from '#domain/journeys/machine.ts';
import { createJourneyStepper, reactJourneys } from '#domain/journeys/react.ts';
import { journeyIncrements, milestoneKey } from '#domain/journeys/report.ts';
import { applyEvents } from '#domain/profile/apply.ts';
import { boundEnrichment } from '#domain/profile/enrich.ts';
import type { PlanOptions } from '#domain/profile/plan.ts';
import type { OutboxEntry } from '#domain/profile/reactions.ts';
import { emptyProfileState, parseProfileState, type ProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { storedEvent } from '../support/stream.ts';
import { MemoryStore, journeyCounterKey, planOn } from './reactions-support.ts';

const CATALOG = `
kind: kairos/v1
segments:
  - { id: risk, rule: 'has(profile.traits.risk) && profile.traits.risk == "high"' }
actions:
  - { id: mail, name: Mail, content: { email: { templateId: t, subject: S } } }
  - { id: nudge, name: Nudge, content: { push: { title: T, body: B, deepLink: 'app://x' } } }
policies: { consentRequired: [] }
journeys:
  - id: retention
    entry: { entered: risk }
    reentry: { after: 1d }
    exit: { event: Order Completed }
    steps:
      - { id: email, act: { channel: email } }
      - { id: wait, wait: 1h }
      - { id: silent, branch: { when: 'profile.stats.visitsTotal == 0.0', then: push, else: done } }
      - { id: push, act: { channel: push } }
      - { id: done, exit: true }
  - id: cart
    entry: { event: Cart Abandoned }
    reentry: { after: 2h }
    steps:
      - { id: watch, wait: { event: Order Completed, timeout: 30m, onTimeout: remind } }
      - { id: thanks, act: { channel: email }, next: end }
      - { id: remind, act: { channel: push } }
      - { id: later, wait: 45m }
      - { id: again, act: { channel: email } }
      - { id: end, exit: true }
`;
const catalog: CompiledCatalog = (() => {
  const result = loadCatalog(CATALOG, 'yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
})();

const NOW = Date.parse('2026-04-11T00:00:00Z');
const T0 = Date.parse('2026-04-01T00:00:00Z');
const CUSTOMER = 'u#u-1';
const options: PlanOptions = {
  settings: { halfLifeDays: 14 },
  enricher: createCatalogEnricher(() => catalog),
  journeys: createJourneyStepper(() => catalog),
  now: NOW,
};

/** The customer's journey runs as `store` holds them. */
const runsOf = (store: MemoryStore): JourneyRuns => {
  const item = store.profiles.get(CUSTOMER);
  return item ? parseProfileState(item.state).journeys : {};
};

/** The scheduler's choices for each timer, in the order timers reach the outbox: where it is delivered, and whether twice. */
type TimerChoice = readonly [delay: number, twice: boolean, secondDelay: number];

/**
 * Deliver the queue in batches of the given sizes; a faulty commit
 * redelivers its batch (like a stream). Each timer the outbox receives is
 * fired by the scheduler: its event is put into the queue `delay` records
 * after the batch (late: after whatever comes between), twice when chosen.
 */
function deliver(initial: readonly StoredEvent[], cuts: readonly number[], faults: readonly boolean[], timers: readonly TimerChoice[]): { store: MemoryStore; fired: number } {
  const store = new MemoryStore();
  const queue = [...initial];
  let f = 0;
  let t = 0;
  let seq = 0;
  let fired = 0;
  for (let i = 0, c = 0; i < queue.length; c++) {
    if (c > 10_000) throw new Error('the queue never ends');
    const size = cuts[c % cuts.length]!;
    const records = queue.slice(i, i + size).map((event) => ({ id: String(seq++), event }));
    i += records.length;
    let added: OutboxEntry[] | undefined;
    for (let attempt = 0; added === undefined; attempt++) {
      // One writer: after the faults, a write whose condition fails (or whose outbox item exists) is a defect.
      if (attempt > 4) throw new Error(`a write was refused with no fault (outbox refusals: ${store.outboxRefusals})`);
      const fault = attempt < 4 && (faults[f++ % Math.max(1, faults.length)] ?? false);
      added = store.commit(planOn(store, records, options), fault);
    }
    for (const entry of added) {
      if (entry.detail.kind !== 'journey-timer') continue;
      const detail = entry.detail as { journey: string; run: number; step: string; profileKey: string };
      const event = journeyTimerEvent({ ...detail, dueAt: entry.sendAt }, entry.sendAt, 1);
      const [delay, twice, secondDelay] = timers[t++ % Math.max(1, timers.length)] ?? [0, false, 0];
      fired++;
      queue.splice(Math.min(queue.length, i + delay), 0, event);
      if (twice) queue.splice(Math.min(queue.length, i + delay + 1 + secondDelay), 0, event);
    }
  }
  return { store, fired };
}

const enriched = (state: ProfileState): ProfileView => {
  const view = toProfileView(state, NOW);
  const e = boundEnrichment(options.enricher(view, new Date(NOW)));
  return { ...view, segments: e.segments, scores: e.scores };
};

/** The runs, outbox ids and counts of applying each event once, one at a time, in this order. */
function reference(list: readonly StoredEvent[]): { runs: JourneyRuns; outbox: string[]; counts: Map<string, number> } {
  let state = emptyProfileState({ userId: 'u-1' });
  let before = enriched(state);
  let runs: JourneyRuns = {};
  const outbox: string[] = [];
  const counts: JourneyCount[] = [];
  for (const event of list) {
    state = applyEvents(state, [event], options.settings);
    const after = enriched(state);
    const reaction = reactJourneys(catalog, runs, { eventPk: event.pk, event, profileKey: CUSTOMER, before, after, now: NOW });
    runs = reaction.runs;
    outbox.push(...reaction.outbox.map((e) => e.id));
    counts.push(...reaction.counts);
    before = after;
  }
  const totals = new Map<string, number>();
  for (const c of journeyIncrements(counts)) totals.set(journeyCounterKey(c), (totals.get(journeyCounterKey(c)) ?? 0) + c.n);
  return { runs, outbox, counts: totals };
}

const kind = fc.constantFrom('risk', 'calm', 'cart', 'order', 'visit');
const events = fc.array(fc.tuple(kind, fc.integer({ min: 0, max: 2 * 86_400 })), { minLength: 1, maxLength: 20 }).map((drafts) =>
  drafts.map(([k, s], i): StoredEvent => {
    const timestamp = new Date(T0 + s * 1000).toISOString();
    const base = { userId: 'u-1', messageId: `m-${i}`, timestamp };
    if (k === 'risk' || k === 'calm') return storedEvent({ ...base, type: 'identify', traits: { risk: k === 'risk' ? 'high' : 'low' } });
    if (k === 'visit') return storedEvent({ ...base, type: 'page', name: 'Home' });
    return storedEvent({ ...base, type: 'track', event: k === 'cart' ? 'Cart Abandoned' : 'Order Completed' });
  }),
);

/** Any order, duplicates anywhere after their first delivery, batches cut anywhere, faults, the scheduler's choices. */
const delivery = (list: StoredEvent[]) =>
  fc
    .tuple(
      fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }),
      fc.array(fc.tuple(fc.nat(list.length - 1), fc.nat()), { maxLength: 8 }),
      fc.array(fc.integer({ min: 1, max: 6 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.boolean(), { maxLength: 8 }),
      fc.array(fc.tuple(fc.nat(12), fc.boolean(), fc.nat(6)), { minLength: 1, maxLength: 12 }),
    )
    .map(([order, duplicates, cuts, faults, timers]) => {
      const sequence = [...order];
      for (const [index, at] of duplicates) {
        const first = sequence.indexOf(list[index]!);
        sequence.splice(first + 1 + (at % (sequence.length - first)), 0, list[index]!);
      }
      return { sequence, cuts, faults, timers };
    });

describe('journeys move exactly once', () => {
  it('any order, duplicates, cuts, redelivery, timers twice or late: one application of each event in the applied order, and consistent', () => {
    fc.assert(
      fc.property(
        events.chain((list) => delivery(list).map((d) => ({ list, ...d }))),
        ({ sequence, cuts, faults, timers }) => {
          const { store, fired } = deliver(sequence, cuts, faults, timers);
          expect(store.outboxRefusals).toBe(0);
          expect(store.outbox.length).toBe(store.outboxIds.size);

          // Exactly once: what applying each distinct event once, in the order the store applied them, gives.
          const byPk = new Map<string, StoredEvent>();
          for (const e of sequence) byPk.set(e.pk, e);
          for (const e of store.outbox) {
            if (e.detail.kind !== 'journey-timer') continue;
            const d = e.detail as { journey: string; run: number; step: string; profileKey: string };
            const timer = journeyTimerEvent({ ...d, dueAt: e.sendAt }, e.sendAt, 1);
            byPk.set(timer.pk, timer);
          }
          expect(new Set(store.applied).size).toBe(store.applied.length);
          const expected = reference(store.applied.map((pk) => byPk.get(pk)!));
          expect(runsOf(store)).toEqual(expected.runs);
          expect(store.outbox.map((e) => e.id)).toEqual(expected.outbox);
          expect(new Map([...store.counters].filter(([, n]) => n !== 0))).toEqual(expected.counts);
          // Every timer the scheduler fired reached the store once (twice fired, once applied).
          expect(store.applied.filter((pk) => pk.startsWith('kairos#')).length).toBe(fired);

          // Consistent on its own.
          const runs = runsOf(store);
          const total = (journey: string, milestone: string) =>
            [...store.counters].filter(([k]) => k.startsWith(`${journey} `) && k.endsWith(` ${milestone}`)).reduce((n, [, v]) => n + v, 0);
          for (const journey of catalog.journeys) {
            const run = runs[journey.id];
            expect(total(journey.id, 'entered')).toBe(run?.run ?? 0);
            expect(total(journey.id, 'completed') + total(journey.id, 'exited')).toBe((run?.run ?? 0) - (run?.step !== undefined ? 1 : 0));
            for (const step of journey.steps) {
              const reached = total(journey.id, milestoneKey({ kind: 'step', step: step.id }));
              const emitted = store.outbox.filter((e) => e.detail.journey === journey.id && e.detail.step === step.id);
              // An act or a wait step writes one entry each time it is reached; a branch or an exit none.
              expect(emitted.length).toBe(step.kind === 'act' || step.kind === 'wait' ? reached : 0);
              for (const e of emitted) expect(e.detail.run as number).toBeLessThanOrEqual(run?.run ?? 0);
            }
          }
          // A step reached by a timer is a later step of the timer's own journey and run (a stale timer moves nothing).
          const timerOf = new Map<string, { journey: string; run: number; step: string }>();
          for (const e of store.outbox) {
            if (e.detail.kind !== 'journey-timer') continue;
            const d = e.detail as { journey: string; run: number; step: string; profileKey: string };
            timerOf.set(journeyTimerMessageId(d), d);
          }
          for (const e of store.outbox) {
            const timer = e.detail.kind === 'journey' ? timerOf.get(e.detail.eventId as string) : undefined;
            if (!timer || timer.journey !== e.detail.journey) continue;
            const journey = catalog.journeys.find((j) => j.id === timer.journey)!;
            expect(e.detail.run).toBe(timer.run);
            expect(journey.stepIndex.get(e.detail.step as string)!).toBeGreaterThan(journey.stepIndex.get(timer.step)!);
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('a timer fired twice is applied once; a late one, after the run moved on, changes nothing', () => {
    const at = (s: number) => new Date(T0 + s * 1000).toISOString();
    const cart = storedEvent({ userId: 'u-1', messageId: 'c', timestamp: at(0), type: 'track', event: 'Cart Abandoned' });
    const order = storedEvent({ userId: 'u-1', messageId: 'o', timestamp: at(60), type: 'track', event: 'Order Completed' });
    // The cart's timer fires twice, both times after the order: the run had moved on (thanks → end).
    const { store, fired } = deliver([cart, order], [1], [], [[1, true, 0]]);
    expect(fired).toBe(1);
    const timers = store.outbox.filter((e) => e.detail.kind === 'journey-timer');
    expect(timers.map((e) => e.detail.step)).toEqual(['watch']);
    expect(store.outbox.filter((e) => e.detail.kind === 'journey').map((e) => e.detail.step)).toEqual(['thanks']);
    expect(store.applied.filter((pk) => pk.startsWith('kairos#'))).toHaveLength(1);
    expect(runsOf(store).cart).toMatchObject({ run: 1, ended: { how: 'completed' } });
  });
});

describe('journey ids are bounded and stable', () => {
  const catalogId = fc.stringMatching(ID_PATTERN);
  const profileKey = fc.tuple(fc.constantFrom('u#', 'a#'), fc.string({ minLength: 1, maxLength: 200 })).map(([kind, id]) => `${kind}${id}`);
  const enteredAt = fc.integer({ min: 0, max: 4_000_000_000_000 });
  const effect = fc.record({
    kind: fc.constantFrom('act' as const, 'timer' as const),
    journey: catalogId,
    run: fc.integer({ min: 1, max: 10_000 }),
    enteredAt,
    step: catalogId,
    profileKey,
  });
  /** Two effects that often differ in one part only (the entry time of a run of the same number, above all). */
  type Effect = Parameters<typeof journeyEffectId>[0];
  const pair = fc
    .tuple(effect, fc.constantFrom('kind', 'journey', 'run', 'enteredAt', 'step', 'profileKey', 'any'), effect)
    .map(([a, part, b]): [Effect, Effect] => (part === 'any' ? [a, b] : [a, { ...a, [part]: b[part as keyof Effect] }]));

  it('an act or a timer: at most 200 characters; the same effect always gives the same id, two different ones (a run of the same number entered at another time included) never the same', () => {
    fc.assert(
      fc.property(pair, ([a, b]) => {
        const id = journeyEffectId(a);
        expect(id.length).toBeLessThanOrEqual(MAX_EMISSION_ID_LENGTH);
        expect(journeyEffectId({ ...a })).toBe(id);
        const same = a.kind === b.kind && a.journey === b.journey && a.run === b.run && a.enteredAt === b.enteredAt && a.step === b.step && a.profileKey === b.profileKey;
        expect(journeyEffectId(b) === id).toBe(same);
      }),
      { numRuns: 2_000 },
    );
    const longest = { kind: 'timer' as const, journey: `j${'x'.repeat(127)}`, run: 12, enteredAt: 0, step: `s${'y'.repeat(127)}`, profileKey: 'u#u-1' };
    expect(journeyEffectId(longest)).toMatch(/^jh-[0-9a-f]{40}$/);
    expect(journeyEffectId({ ...longest, run: 13 })).not.toBe(journeyEffectId(longest));
    expect(journeyEffectId({ ...longest, enteredAt: 1 })).not.toBe(journeyEffectId(longest));
  });

  it("a timer's Events key starts with the prefix the dispatcher may put (shared/functions.ts leadingKeys), and its message id fits ingest's 100 characters", () => {
    const allowed = functionDefinitions.dispatcher.leadingKeys.Events;
    expect(allowed).toEqual([`${JOURNEY_TIMER_KEY_PREFIX}*`]);
    fc.assert(
      fc.property(effect, fc.integer({ min: 0, max: 4_000_000_000_000 }), fc.boolean(), ({ enteredAt: entry, ...timer }, dueAt, named) => {
        // A timer names its run's entry time (ISO-8601); one written before runs were named by it does not.
        const event = journeyTimerEvent({ ...timer, ...(named ? { enteredAt: new Date(entry).toISOString() } : {}), dueAt }, dueAt, 1);
        expect(event.pk.startsWith(JOURNEY_TIMER_KEY_PREFIX)).toBe(true);
        expect(event.messageId.length).toBeLessThanOrEqual(100);
      }),
      { numRuns: 500 },
    );
  });
});
