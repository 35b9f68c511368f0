/**
 * The exactly-once plan of a stream batch (domain/profile/plan.ts), without
 * DynamoDB: a Profiles table in memory that checks the same conditions the
 * transactions carry (the profile's and each tombstone's version, each
 * marker's absence) and commits a write whole or not at all, like
 * TransactWriteItems. For any delivery a stream can make — shards running
 * side by side (a customer's events spread over them), batches cut anywhere,
 * a record twice in a batch, redelivery from a failed sequence number or of
 * an earlier suffix, a write that loses a race and is planned again, a store
 * fault on part of a batch — with identify / alias merges and an erasure in
 * flight, the profiles equal one in-order application; so do the outcome
 * statistics the writes carry, which equal what the final profiles counted.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyEvents } from '#domain/profile/apply.ts';
import { happenedAt } from '#domain/profile/erasure.ts';
import { MAX_TRANSACTION_ITEMS } from '#domain/transaction-budget.ts';
import { emptyProfileState, type ProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { boundEnrichment, type ProfileEnricher } from '#domain/profile/enrich.ts';
import {
  emptyReadState,
  planBatch,
  type BatchPlan,
  type BatchRecord,
  type PlannedWrite,
  type PlanOptions,
  type ReadSet,
  type ReadState,
} from '#domain/profile/plan.ts';
import { parseProfileState, serializeProfileState } from '#domain/profile/state.ts';
import { erasedCustomersItem, type ProfileItem } from '#domain/profile/profile-item.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import type { JourneyStepper, OutboxEntry, ProfileReactor } from '#domain/profile/reactions.ts';
import { parseOutcomeKey } from '#domain/profile/outcomes.ts';
import { customerTag, encodeDecisionId } from '#domain/decide/decision-id.ts';
import { MAX_HOLDOUT_EXPERIMENTS, MAX_REACTION_BYTES_PER_EVENT, MAX_TRANSACTION_BYTES, storedBytes } from '#domain/transaction-budget.ts';
import { journeyTimerEvent, sendTimerEvent } from '#domain/journeys/timer.ts';
import { EXIT_REASONS, erasedRunCounts } from '#domain/journeys/machine.ts';
import { journeyIncrements, type JourneyCounterIncrement } from '#domain/journeys/report.ts';
import { storedEvent } from '../support/stream.ts';
import { cellKey, NO_CONTEXT, type StatisticsIncrement } from '#domain/learning/statistics.ts';
import { decisionId, draft, expectedStatistics, firstDifference, forCustomer, statisticsTotals, type Draft } from './profile-support.ts';

const settings = { halfLifeDays: 14 };
const NOW = Date.parse('2026-04-11T00:00:00Z');
const DAY = 86_400_000;
const RECEIVED = Date.parse('2026-04-10T00:00:00Z');
const enricher: ProfileEnricher = (view) => ({
  segments: view.stats.visitsTotal >= 2 ? ['frequent'] : ['new'],
  scores: { orders: view.stats.orders },
});
const options = { settings, enricher, now: NOW };

/** The Profiles table (and the Events table's keys) in memory, with the transactions' conditions. */
class MemoryStore {
  /** What the committed writes added to the outcome statistics. */
  readonly statistics: StatisticsIncrement[] = [];
  /** The outbox entries the committed writes put (what their events set off). */
  readonly outbox: OutboxEntry[] = [];
  /** The outcomes the committed writes counted for nothing after an erasure (their `erasedOutcomes`). */
  erasedOutcomes = 0;
  /** The journey report's counts the committed writes, and the erasures' deletes, added. */
  readonly journeyCounts: JourneyCounterIncrement[] = [];
  constructor(readonly planOptions: PlanOptions = options) {}
  readonly profiles = new Map<string, { kind: 'profile'; version: number; state: string } | { kind: 'tombstone'; version: number; mergedInto: string; keyErasedAt: number }>();
  readonly markers = new Set<string>();
  readonly erasures = new Map<string, number>();
  /** Event pks an erasure deleted (its erased-message records). */
  readonly erasedMessages = new Set<string>();
  readonly events = new Set<string>();

  read(reads: ReadSet, read: ReadState): ReadState {
    const profiles = new Map(read.profiles);
    const applied = new Map(read.applied);
    const erasedAt = new Map(read.erasedAt);
    const erasedMessages = new Map(read.erasedMessages);
    for (const key of reads.profiles) profiles.set(key, this.item(key));
    for (const pk of reads.markers) applied.set(pk, this.markers.has(pk));
    for (const key of reads.erasures) erasedAt.set(key, this.erasures.get(key));
    for (const pk of reads.erasedMessages) erasedMessages.set(pk, this.erasedMessages.has(pk));
    return { profiles, applied, erasedAt, erasedMessages };
  }

  item(key: string): ProfileItem | undefined {
    const item = this.profiles.get(key);
    if (!item) return undefined;
    return item.kind === 'profile'
      ? { kind: 'profile', key, version: item.version, state: parseProfileState(item.state) }
      : { kind: 'tombstone', key, version: item.version, mergedInto: item.mergedInto, keyErasedAt: item.keyErasedAt };
  }

  /** One transaction: every condition holds and everything is written, or nothing is. */
  commit(write: PlannedWrite): boolean {
    const versionHolds = (key: string, readVersion: number) => {
      const item = this.profiles.get(key);
      return readVersion === 0 ? item === undefined : item?.version === readVersion;
    };
    if (!versionHolds(write.profile.key, write.profile.readVersion)) return false;
    if (!write.tombstones.every((t) => versionHolds(`a#${t.anonymousId}`, t.readVersion))) return false;
    if (write.markers.some((pk) => this.markers.has(pk))) return false;
    if (write.tombstones.length > 0 && write.userId === undefined) throw new Error('a tombstone needs a user');
    this.profiles.set(write.profile.key, {
      kind: 'profile',
      version: write.profile.readVersion + 1,
      state: serializeProfileState(write.profile.state),
    });
    for (const t of write.tombstones) {
      this.profiles.set(`a#${t.anonymousId}`, { kind: 'tombstone', version: t.readVersion + 1, mergedInto: write.userId!, keyErasedAt: t.keyErasedAt });
    }
    for (const pk of write.markers) this.markers.add(pk);
    this.statistics.push(...write.statistics);
    this.outbox.push(...write.outbox);
    this.erasedOutcomes += write.erasedOutcomes;
    this.journeyCounts.push(...write.journeyCounts);
    return true;
  }

  /** What the admin's erasure does (shared/store/erasure.ts): records first, then events, markers, profiles. */
  erase(keys: readonly string[], at: number, events: readonly StoredEvent[]): void {
    this.beginErasure(keys, at, events);
    this.endErasure(keys, at);
  }

  /** The erasure's first steps: its records, then the events stored so far that happened at or before it, and their markers. */
  beginErasure(keys: readonly string[], at: number, events: readonly StoredEvent[]): void {
    for (const key of keys) this.erasures.set(key, at);
    for (const event of events) {
      if (!keys.includes(event.profileKey) || !this.events.has(event.pk) || happenedAt(event) > at) continue;
      this.erasedMessages.add(event.pk);
      this.events.delete(event.pk);
      this.markers.delete(event.pk);
    }
  }

  /** Its last step: each profile item of the erased customer (started, or merged, before `at`) deleted as read. */
  endErasure(keys: readonly string[], at: number): void {
    for (const key of keys) {
      const item = this.item(key);
      if (!erasedCustomersItem(item, at)) continue;
      // The runs in progress end with the profile, counted exited (as shared/store/erasure.ts counts them).
      if (item?.kind === 'profile') this.journeyCounts.push(...journeyIncrements(erasedRunCounts(item.state.journeys, at)));
      this.profiles.delete(key);
    }
  }
}

/** Plan against the store as it is now, reading what the plan asks for. */
function planOn(store: MemoryStore, records: readonly BatchRecord[], planOptions: PlanOptions = store.planOptions): BatchPlan {
  let read = emptyReadState();
  for (let reads = 0; reads < 3; reads++) {
    const result = planBatch(records, read, planOptions);
    if (result.kind === 'plan') return result.plan;
    read = store.read(result.reads, read);
  }
  throw new Error('the plan kept asking for reads');
}

/**
 * Commit a plan as the handler does: dropped events deleted, each target's
 * chain in order, stopping at a failed condition or an injected fault.
 * Returns the records to plan again (lost a race) and the failed ones.
 */
function commit(store: MemoryStore, plan: BatchPlan, faulty: (key: string) => boolean = () => false): { again: string[]; failed: string[] } {
  for (const dropped of plan.dropped) store.events.delete(dropped.eventPk);
  const again: string[] = [];
  const failed = [...plan.failures.keys()];
  for (const target of plan.targets) {
    for (let at = 0; at < target.writes.length; at++) {
      const rest = target.writes.slice(at).flatMap((w) => w.records);
      if (faulty(target.key)) {
        failed.push(...rest);
        break;
      }
      if (!store.commit(target.writes[at]!)) {
        again.push(...rest);
        break;
      }
    }
  }
  return { again, failed };
}

/** The handler's loop on one batch: plan, commit, plan again what lost a race. Returns the failed record ids. */
function deliver(store: MemoryStore, records: readonly BatchRecord[], faulty?: (key: string) => boolean): string[] {
  let pending = records;
  const failed: string[] = [];
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > 10) throw new Error('contention that never ends with one writer');
    const outcome = commit(store, planOn(store, pending), faulty);
    failed.push(...outcome.failed);
    pending = pending.filter((r) => outcome.again.includes(r.id));
  }
  return failed;
}

/** Every profile and tombstone of the store, as readers see them (views at NOW, without the write instant). */
function snapshot(store: MemoryStore): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of [...store.profiles.keys()].sort()) {
    const item = store.item(key)!;
    out[key] = item.kind === 'tombstone' ? { mergedInto: item.mergedInto } : { ...toProfileView(item.state, NOW), updatedAt: undefined };
  }
  return out;
}

const comparableState = (state: ProfileState) => ({ ...toProfileView(state, NOW), updatedAt: undefined });

// ---- scenarios ----------------------------------------------------------------------------------

/** Who an event names: two customers, each a user and a browser's anonymous id. */
type Who = 'anonymous' | 'user' | 'both' | 'alias';
const who = fc.constantFrom<Who>('anonymous', 'user', 'both', 'alias');

interface Scenario {
  readonly events: StoredEvent[];
  /** Shard of each event (in receipt order within a shard). */
  readonly shards: number[];
  /** Erasure of customer 0 ({u#, a#}) once events [0, erasedAfter) were received. */
  readonly erasedAfter: number | undefined;
  /**
   * Steps of the stream's delivery between the erasure's first steps and its last (the profile items
   * deleted): the batches delivered meanwhile race it. 0 or absent: none.
   */
  readonly erasureSteps?: number;
}

/** When customer 0 was erased (epoch ms): half a second before event `erasedAfter` was received. */
const erasedAt = (s: Pick<Scenario, 'erasedAfter'>) => RECEIVED + (s.erasedAfter ?? 0) * 1000 - 500;

const eventOf = (d: Draft, customer: number, w: Who, i: number): StoredEvent => {
  const userId = `u${customer}`;
  const anonymousId = `a${customer}`;
  // Its decisions made for an id it carries: its outcomes count in any order of delivery.
  const base = { ...forCustomer(d, w === 'user' ? userId : anonymousId), messageId: `m${i}`, sourceId: 'src' };
  const event =
    w === 'anonymous'
      ? storedEvent({ ...base, anonymousId })
      : w === 'user'
        ? storedEvent({ ...base, userId })
        : w === 'both'
          ? storedEvent({ ...base, userId, anonymousId })
          : storedEvent({ type: 'alias', messageId: `m${i}`, sourceId: 'src', timestamp: d.timestamp, userId, previousId: anonymousId });
  return { ...event, receivedAt: new Date(RECEIVED + i * 1000).toISOString() };
};

const scenario: fc.Arbitrary<Scenario> = fc
  .record({
    drafts: fc.array(fc.tuple(draft, fc.nat(1), who, fc.nat(2), fc.boolean()), { minLength: 1, maxLength: 24 }),
    erasure: fc.option(fc.nat(), { nil: undefined }),
    erasureSteps: fc.nat(3),
  })
  .map(({ drafts, erasure, erasureSteps }) => {
    const erasedAfter = erasure === undefined ? undefined : erasure % (drafts.length + 1);
    return {
      // An event received after the erasure either happened after it (`fresh`: its timestamp is when it was
      // received) or is a message from before it that came back (a client's retry or replay, its timestamp kept).
      events: drafts.map(([d, customer, w, , fresh], i) =>
        eventOf(erasedAfter !== undefined && i >= erasedAfter && fresh ? { ...d, timestamp: new Date(RECEIVED + i * 1000).toISOString() } : d, customer, w, i),
      ),
      shards: drafts.map(([, , , shard]) => shard),
      erasedAfter,
      erasureSteps,
    };
  });

/**
 * Outcomes of a few decisions (two on the web, whose customer is in the
 * holdout of exp-h; one push), reported under either identity of the two
 * customers, often more than once, with identify and alias links: the
 * statistics' de-duplication and merges' take-backs are exercised often.
 */
const DECIDED = [Date.parse('2026-04-01T09:30:00Z'), Date.parse('2026-04-01T09:45:00Z'), Date.parse('2026-04-02T12:00:00Z')];
const DECISIONS = [decisionId(new Date(DECIDED[0]!), 'web', 'w1'), decisionId(new Date(DECIDED[1]!), 'push', 'p1'), decisionId(new Date(DECIDED[2]!), 'web', 'w2')];
const outcomeDraft: fc.Arbitrary<Draft> = fc
  .record({
    event: fc.constantFrom('Promotion Viewed', 'Promotion Viewed', 'Promotion Viewed', 'Promotion Clicked', 'Push Notification Received', 'Email Opened', 'Order Completed', 'Search'),
    decision: fc.constantFrom(0, 0, 0, 1, 2),
    action: fc.constantFrom(undefined, 'a1', 'a2', 'a2', 'a3'),
    variant: fc.constantFrom(undefined, undefined, undefined, 'x', 'y'),
    lagHours: fc.constantFrom(0, 0, 0, 1, 30, 200),
  })
  .map(({ event, decision, action, variant, lagHours }) => ({
    type: 'track' as const,
    event,
    timestamp: new Date(DECIDED[decision]! + lagHours * 3_600_000).toISOString(),
    properties: { decision_id: DECISIONS[decision], ...(action ? { action_id: action } : {}), ...(variant ? { variant } : {}) },
  }));
// Outcomes under either identity first, then the links, then more outcomes: both identities often
// count an outcome before they are joined.
const linkDraft: Draft = { type: 'identify', timestamp: '2026-04-02T00:00:00.000Z', traits: { tier: 'gold' } };
const outcomeScenario: fc.Arbitrary<Scenario> = fc
  .record({
    before: fc.array(fc.tuple(outcomeDraft, fc.nat(1), fc.constantFrom<Who>('anonymous', 'user'), fc.nat(2)), { minLength: 2, maxLength: 16 }),
    links: fc.array(fc.tuple(fc.constant(linkDraft), fc.nat(1), fc.constantFrom<Who>('both', 'alias'), fc.nat(2)), { minLength: 1, maxLength: 2 }),
    after: fc.array(fc.tuple(outcomeDraft, fc.nat(1), who, fc.nat(2)), { maxLength: 8 }),
  })
  .map(({ before, links, after }) => [...before, ...links, ...after])
  .map((drafts) => ({
    events: drafts.map(([d, customer, w], i) => eventOf(d, customer, w, i)),
    shards: drafts.map(([, , , shard]) => shard),
    erasedAfter: undefined,
  }));

interface Move {
  readonly size: number;
  readonly duplicate: number | undefined;
  readonly failAt: number | undefined;
  readonly rewind: number | undefined;
  readonly fault: string | undefined;
  readonly planTogether: boolean;
}

/** Per step of the delivery, per shard: how many records, where it fails, how far back it rewinds. */
const moves: fc.Arbitrary<Move[]> = fc.array(
  fc.record({
    size: fc.integer({ min: 1, max: 8 }),
    duplicate: fc.option(fc.nat(7), { nil: undefined }),
    failAt: fc.option(fc.nat(7), { nil: undefined }),
    rewind: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
    fault: fc.option(fc.constantFrom('u0', 'u1', 'a0', 'a1'), { nil: undefined }),
    planTogether: fc.boolean(),
  }),
  { minLength: 1, maxLength: 12 },
);

const erasedKeys = ['u#u0', 'a#a0'];
const record = (event: StoredEvent, index: number): BatchRecord => ({ id: `seq-${String(index).padStart(4, '0')}`, event });

/** One in-order application: each event alone, in receipt order; the erasure at its moment. */
function inOrder(s: Scenario, planOptions: PlanOptions = options): MemoryStore {
  const store = new MemoryStore(planOptions);
  s.events.forEach((event, i) => {
    if (s.erasedAfter === i) store.erase(erasedKeys, erasedAt(s), s.events);
    store.events.add(event.pk);
    expect(deliver(store, [record(event, i)])).toEqual([]);
  });
  if (s.erasedAfter === s.events.length) store.erase(erasedKeys, erasedAt(s), s.events);
  return store;
}

/**
 * The stream's delivery: shards side by side, each from its checkpoint, a
 * batch cut at `size`, a record twice, a reported failure (redelivery from
 * there), a rewind (an earlier suffix again), a store fault on a profile (its
 * records reported failed), and either each shard planned and committed in
 * turn or every shard planned on the same read and committed after (a race).
 */
function streamed(s: Scenario, plan: readonly Move[], planOptions: PlanOptions = options, store = new MemoryStore(planOptions)): MemoryStore {
  const received = (i: number) => s.erasedAfter === undefined || i < s.erasedAfter;
  let erased = s.erasedAfter === undefined;
  // The step at which the erasure's last step (the profile items) runs, once its first steps have.
  let erasureEnds: number | undefined;
  const endErasure = (step: number): void => {
    if (erasureEnds === undefined || step < erasureEnds) return;
    store.endErasure(erasedKeys, erasedAt(s));
    erasureEnds = undefined;
  };
  for (let i = 0; i < s.events.length && received(i); i++) store.events.add(s.events[i]!.pk);
  const shards = [0, 1, 2].map((n) => s.events.map((e, i) => ({ i, record: record(e, i) })).filter(({ i }) => s.shards[i] === n));
  const checkpoints = [0, 0, 0];
  for (let step = 0; shards.some((records, n) => checkpoints[n]! < records.length); step++) {
    const last = step >= plan.length;
    const batches = shards.map((records, n) => {
      const move = plan[(step + n) % plan.length]!;
      const batch = records.slice(checkpoints[n]!, checkpoints[n]! + move.size);
      if (!last && move.duplicate !== undefined && move.duplicate < batch.length) batch.splice(move.duplicate, 0, batch[move.duplicate]!);
      return { n, move, batch };
    });
    // An event received after the erasure cannot be delivered before it.
    if (!erased && batches.some(({ batch }) => batch.some(({ i }) => !received(i)))) {
      // The events accepted after it may be stored before the erasure lists the customer's.
      for (let i = 0; i < s.events.length; i++) if (!received(i)) store.events.add(s.events[i]!.pk);
      store.beginErasure(erasedKeys, erasedAt(s), s.events);
      erasureEnds = step + (s.erasureSteps ?? 0);
      erased = true;
    }
    const faulty = (move: Move) => (key: string) => !last && move.fault !== undefined && key.endsWith(`#${move.fault}`);
    const failedBy = new Map<number, string[]>();
    const together = !last && batches[0]!.move.planTogether;
    // Its last step before this step's deliveries, or (shards planning together) between their plans and their commits.
    if (!together) endErasure(step);
    if (together) {
      // Every shard plans on the same read, then commits: the later commits lose their races and plan again.
      const plans = batches.map(({ batch }) => planOn(store, batch.map((b) => b.record)));
      endErasure(step);
      batches.forEach(({ n, move, batch }, k) => {
        const outcome = commit(store, plans[k]!, faulty(move));
        const retried = batch.filter((b) => outcome.again.includes(b.record.id)).map((b) => b.record);
        failedBy.set(n, [...outcome.failed, ...deliver(store, retried, faulty(move))]);
      });
    } else {
      for (const { n, move, batch } of batches) failedBy.set(n, deliver(store, batch.map((b) => b.record), faulty(move)));
    }
    for (const { n, move, batch } of batches) {
      if (batch.length === 0) continue;
      const failed = failedBy.get(n)!;
      // The stream checkpoints before the lowest reported failure; a crash (failAt) redelivers from inside the batch.
      const firstFailed = batch.findIndex((b) => failed.includes(b.record.id));
      const unique = batch.filter((b, k) => batch.findIndex((x) => x.i === b.i) === k);
      let next = checkpoints[n]! + unique.length;
      if (firstFailed !== -1) next = checkpoints[n]! + unique.findIndex((b) => b.i === batch[firstFailed]!.i);
      else if (!last && move.failAt !== undefined && move.failAt < unique.length) next = checkpoints[n]! + move.failAt;
      if (!last && move.rewind !== undefined) next = Math.max(0, next - move.rewind);
      checkpoints[n] = next;
    }
  }
  if (!erased) store.erase(erasedKeys, erasedAt(s), s.events);
  endErasure(Number.POSITIVE_INFINITY);
  return store;
}

/** The profiles the customers end with and the events each holds, from the events alone (no plan); and the merged anonymous ids. */
function finalProfiles(s: Scenario): { profiles: Map<string, StoredEvent[]>; merged: Map<string, string> } {
  const profiles = new Map<string, StoredEvent[]>();
  const merged = new Map<string, string>();
  for (const customer of [0, 1]) {
    const userId = `u${customer}`;
    const anonymousId = `a${customer}`;
    const survivors = s.events.filter(
      // Customer 0's events from before the erasure (received, or happened, before it) are gone for good.
      (e, i) =>
        (e.userId === userId || e.anonymousId === anonymousId) &&
        (customer !== 0 || s.erasedAfter === undefined || (i >= s.erasedAfter && Date.parse(e.timestamp) > erasedAt(s))),
    );
    const linked = survivors.some((e) => e.userId !== undefined && (e.anonymousId !== undefined || e.previousId !== undefined));
    if (linked) {
      profiles.set(`u#${userId}`, survivors);
      merged.set(anonymousId, userId);
    } else {
      const known = survivors.filter((e) => e.userId !== undefined);
      const unknown = survivors.filter((e) => e.userId === undefined);
      if (known.length > 0) profiles.set(`u#${userId}`, known);
      if (unknown.length > 0) profiles.set(`a#${anonymousId}`, unknown);
    }
  }
  return { profiles, merged };
}

/** The profiles of the customers, from the events alone (no plan): what one in-order application must give. */
function expectedProfiles(s: Scenario): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const { profiles, merged } = finalProfiles(s);
  for (const [key, events] of profiles) {
    const identity = key.startsWith('u#') ? { userId: key.slice(2) } : { anonymousId: key.slice(2) };
    // Customer 0 came back after the erasure: an outcome of a decision made before it counts for nothing.
    const erased = s.erasedAfter !== undefined && (key === 'u#u0' || key === 'a#a0');
    const state = applyEvents(emptyProfileState(identity), events, erased ? { ...settings, erasedAt: () => erasedAt(s) } : settings);
    const linked = [...merged].filter(([, userId]) => `u#${userId}` === key).map(([anonymousId]) => anonymousId);
    if (linked.length > 0) state.anonymousIds = linked;
    state.enrichment = boundEnrichment(enricher(toProfileView(state, NOW), new Date(NOW)));
    out[key] = comparableState(state);
  }
  for (const [anonymousId, userId] of merged) out[`a#${anonymousId}`] = { mergedInto: userId };
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}

describe('the exactly-once plan of a stream batch', () => {
  it('one in-order application gives the profiles the events make (identify and alias merges, an erasure)', () => {
    fc.assert(
      fc.property(scenario, (s) => {
        expect(firstDifference(snapshot(inOrder(s)), expectedProfiles(s))).toBeUndefined();
      }),
      { numRuns: 100 },
    );
  }, 120_000);

  it('any delivery a stream can make gives the profiles of one in-order application', () => {
    fc.assert(
      fc.property(scenario, moves, (s, plan) => {
        const reference = inOrder(s);
        const store = streamed(s, plan);
        expect(firstDifference(snapshot(store), snapshot(reference))).toBeUndefined();
        // Nothing applied twice or lost: the same events are marked applied.
        expect([...store.markers].sort()).toEqual([...reference.markers].sort());
        // An event dropped after the erasure leaves no item behind.
        expect([...store.events].sort()).toEqual([...reference.events].sort());
      }),
      { numRuns: 150 },
    );
  }, 120_000);

  it('an erasure in flight and events accepted after it: each is applied once, on a fresh profile, and nothing from before the erasure survives', () => {
    // Customer 0 is erased with events still in flight, and comes back at once: its events accepted after the erasure
    // are delivered (on any shard, in any order, racing one another) before the erasure's last step deletes the profile
    // items, and between a plan and its commit.
    const inFlight = scenario
      .filter((s) => s.erasedAfter !== undefined && s.events.some((e, i) => i >= s.erasedAfter! && e.profileKey.endsWith('0') && Date.parse(e.timestamp) > erasedAt(s)))
      .chain((s) => fc.integer({ min: 1, max: 4 }).map((erasureSteps) => ({ ...s, erasureSteps })));
    let raced = 0;
    fc.assert(
      fc.property(inFlight, moves, (s, plan) => {
        const store = streamed(s, plan);
        // The profiles the events make: the returning customer's hold exactly its events after the erasure.
        expect(firstDifference(snapshot(store), expectedProfiles(s))).toBeUndefined();
        const { profiles } = finalProfiles(s);
        const returned = [...profiles].filter(([key]) => key.endsWith('0')).flatMap(([, events]) => events);
        // Each of them applied (its marker kept), none of the erased customer's left behind.
        for (const event of returned) expect(store.markers.has(event.pk)).toBe(true);
        const erasedCustomers = s.events.filter((event, i) => i < s.erasedAfter! && event.profileKey.endsWith('0'));
        expect(erasedCustomers.filter((event) => store.markers.has(event.pk))).toEqual([]);
        if (returned.length > 0) raced += 1;
      }),
      { numRuns: 150 },
    );
    expect(raced).toBeGreaterThan(50);
  }, 120_000);

  it('any delivery adds the outcome statistics of one in-order application, which are what the final profiles counted, never more clicks or conversions than impressions', () => {
    const learning: PlanOptions = { ...options, settings: { ...settings, learning: { contextBy: 'persona', conversionWindowMs: DAY } } };
    let counted = 0;
    let takenBack = 0;
    fc.assert(
      fc.property(
        fc.oneof(outcomeScenario, scenario.map((s) => ({ ...s, erasedAfter: undefined }))),
        moves,
        (s, plan) => {
          const reference = inOrder(s, learning);
          const store = streamed(s, plan, learning);
          const expected = expectedStatistics([...finalProfiles(s).profiles.values()], learning.settings);
          expect(statisticsTotals(reference.statistics)).toEqual(expected);
          expect(statisticsTotals(store.statistics)).toEqual(expected);
          // A click or a conversion brings its impression: no cell has more of either than impressions (a Beta needs it).
          for (const totals of Object.values(statisticsTotals(store.statistics))) {
            const [impressions, clicks, conversions] = totals.split('/').map(Number) as [number, number, number];
            expect(clicks).toBeLessThanOrEqual(impressions);
            expect(conversions).toBeLessThanOrEqual(impressions);
          }
          if (Object.keys(expected).length > 0) counted += 1;
          if (reference.statistics.some((i) => i.counts.impressions + i.counts.clicks + i.counts.conversions < 0)) takenBack += 1;
        },
      ),
      // About one scenario in twenty has a merge take a double count back: 300 runs make more than 2 of them
      // all but certain (mean about 15), where 150 runs missed it about once in thirty.
      { numRuns: 300 },
    );
    // The scenarios do count outcomes, and merges do take double counts back (the property is not about empty statistics).
    expect(counted).toBeGreaterThan(100);
    expect(takenBack).toBeGreaterThan(2);
  }, 120_000);

  it('an anonymousId another user owns, sent beside a userId of one\'s own, speaks for nobody: no outcome counts, no experiment key, whatever the delivery', () => {
    const learning: PlanOptions = { ...options, settings: { ...settings, learning: { contextBy: 'persona', conversionWindowMs: DAY } } };
    fc.assert(
      fc.property(fc.array(fc.tuple(outcomeDraft, fc.nat(2), fc.nat(2)), { minLength: 1, maxLength: 16 }), moves, (drafts, plan) => {
        // Customer 0 logs in on the browser a0: a0 is u0's.
        const login = eventOf(linkDraft, 0, 'both', 0);
        const store = new MemoryStore(learning);
        store.events.add(login.pk);
        expect(deliver(store, [record(login, 0)])).toEqual([]);
        const owner = store.item('u#u0');
        // Three other users report a0's decisions, each under a0 beside their own userId.
        const events = drafts.map(([d, sybil], i) => ({
          ...storedEvent({ ...forCustomer(d, 'a0'), messageId: `f${i}`, sourceId: 'src', userId: `s${sybil}`, anonymousId: 'a0' }),
          receivedAt: new Date(RECEIVED + (i + 1) * 1000).toISOString(),
        }));
        streamed({ events, shards: drafts.map(([, , shard]) => shard), erasedAfter: undefined }, plan, learning, store);
        expect(statisticsTotals(store.statistics)).toEqual({});
        expect(store.item('u#u0')).toEqual(owner);
        expect(store.item('a#a0')).toEqual({ kind: 'tombstone', key: 'a#a0', version: 1, mergedInto: 'u0', keyErasedAt: 0 });
        // Each other user's profile is its events applied without a0: its own experiment key, no outcome.
        for (const sybil of new Set(events.map((e) => e.userId!))) {
          const own = events.filter((e) => e.userId === sybil).map(({ anonymousId: _, ...rest }) => rest);
          const expected = applyEvents(emptyProfileState({ userId: sybil }), own, learning.settings);
          const item = store.item(`u#${sybil}`);
          expect(item?.kind).toBe('profile');
          const state = (item as Extract<ProfileItem, { kind: 'profile' }>).state;
          expect(state.assignmentKey?.[0]).toBe(sybil);
          expect(state.outcomes).toEqual({});
          expect(comparableState({ ...state, enrichment: expected.enrichment })).toEqual(comparableState(expected));
        }
      }),
      { numRuns: 100 },
    );
  }, 120_000);

  it('a visitor erased on their own, back and joined to a user never erased: whatever the delivery, nothing reported for a decision issued to the visitor at or before the erasure counts or sets anything off, under whichever id; decisions issued after it, and the user\'s own, count and react', () => {
    const learning: PlanOptions = { ...options, settings: { ...settings, learning: { contextBy: 'persona', conversionWindowMs: DAY } } };
    const ERASED = Date.parse('2026-04-05T00:00:00Z');
    const at = (ms: number) => new Date(ms).toISOString();
    const clicked = (event: StoredEvent) => event.event === 'Promotion Clicked';
    // What reacts: a trigger on every click, and a journey that every click moves.
    const reactor: ProfileReactor = {
      bound: (event) => (clicked(event) ? 1 : 0),
      react: (change) => [{ id: `trigger ${change.eventPk}`, status: 'refused', sendAt: change.now, detailType: 'Test Trigger', detail: {} }],
    };
    const journeys: JourneyStepper = {
      bound: (event) => (clicked(event) ? 1 : 0),
      step: (runs, change) => ({ runs, outbox: [{ id: `journey ${change.eventPk}`, status: 'refused', sendAt: change.now, detailType: 'Test Journey', detail: {} }], counts: [] }),
    };
    const reported = fc.record({
      event: fc.constantFrom('Promotion Viewed', 'Promotion Clicked'),
      // The customer the decision was issued to (its customer tag): the visitor, or the user.
      to: fc.constantFrom('a0', 'u0'),
      // Issued an hour before the erasure, at its very second, or after it (the visitor back).
      issued: fc.constantFrom(ERASED - 3_600_000, ERASED, ERASED + 1_000, ERASED + 5_000),
      under: fc.constantFrom<Who>('user', 'user', 'both', 'anonymous'),
    });
    fc.assert(
      fc.property(fc.array(reported, { minLength: 1, maxLength: 12 }), moves, (reports, plan) => {
        const store = new MemoryStore({ ...learning, reactor, journeys });
        // The visitor a0 alone was erased (an anonymous key's erasure: neither u0 nor anyone joined to a0 then).
        store.erase(['a#a0'], ERASED, []);
        const received = (i: number) => ({ receivedAt: at(ERASED + 1_000 + i * 1_000) });
        const back = { ...storedEvent({ type: 'page', anonymousId: 'a0', messageId: 'back', sourceId: 'src', timestamp: at(ERASED + 1_000) }), ...received(0) };
        const login = { ...storedEvent({ type: 'identify', userId: 'u0', anonymousId: 'a0', messageId: 'login', sourceId: 'src', timestamp: at(ERASED + 2_000) }), ...received(1) };
        const outcomes = reports.map(({ event, to, issued, under }, i) => {
          const properties = { decision_id: decisionId(new Date(issued), 'web', `o${i}`, ['a1'], to) };
          const ids = under === 'user' ? { userId: 'u0' } : under === 'both' ? { userId: 'u0', anonymousId: 'a0' } : { anonymousId: 'a0' };
          const timestamp = at(ERASED + 10_000 + i * 1_000);
          return { ...storedEvent({ type: 'track', event, ...ids, messageId: `o${i}`, sourceId: 'src', timestamp, properties }), ...received(i + 2) };
        });
        // One shard: the visitor back, their login, then the reports, in that order, cut, repeated, failed and rewound anyhow.
        const events = [back, login, ...outcomes];
        streamed({ events, shards: events.map(() => 0), erasedAfter: undefined }, plan, learning, store);

        // The visitor's decisions issued at or before the erasure were the erased visitor's; so is anything reported under
        // the visitor's id for a decision issued at or before it (that id's erasure). The rest counts, and reacts.
        const erased = reports.map(({ to, issued, under }) => issued <= ERASED && (to === 'a0' || under !== 'user'));
        const user = store.item('u#u0');
        expect(user?.kind).toBe('profile');
        const state = (user as Extract<ProfileItem, { kind: 'profile' }>).state;
        const counted = new Set(Object.keys(state.outcomes).map((key) => parseOutcomeKey(key).decision.split('.')[1]));
        expect([...counted].sort()).toEqual(reports.flatMap((_, i) => (erased[i] ? [] : [`o${i}`])).sort());
        expect(state.erasedAnonymousIds).toEqual({ a0: ERASED });
        // The statistics hold what the profile counted, once each (a click with the impression it implies); the erased
        // visitor's reports are counted apart.
        const totals = store.statistics.filter((i) => i.cell.actionId === 'a1').reduce((n, i) => n + i.counts.impressions + i.counts.clicks, 0);
        expect(totals).toBe(Object.keys(state.outcomes).length);
        const clicks = reports.filter((r, i) => r.event === 'Promotion Clicked' && !erased[i]).length;
        expect(totals).toBe(counted.size + clicks);
        expect(store.erasedOutcomes).toBe(erased.filter(Boolean).length);
        // No trigger fires, no journey moves, for a click on the erased visitor's decision; every other click does both.
        const reacting = outcomes.flatMap((e, i) => (clicked(e) && !erased[i] ? [`trigger ${e.pk}`, `journey ${e.pk}`] : []));
        expect(store.outbox.map((e) => e.id).sort()).toEqual(reacting.sort());
      }),
      { numRuns: 200 },
    );
  }, 120_000);

  describe('outcome statistics of a write', () => {
    const at = '2026-04-01T10:00:00.000Z';
    // Decided for u1.
    const web = decisionId(new Date('2026-04-01T09:30:00Z'), 'web', 'w1', ['a1', 'a2'], 'u1');
    const learning: PlanOptions = { ...options, settings: { ...settings, learning: { contextBy: 'persona', conversionWindowMs: DAY } } };
    const outcome = (messageId: string, who: { userId?: string; anonymousId?: string }, event: string, properties: Record<string, unknown>, timestamp = at) =>
      storedEvent({ type: 'track', ...who, messageId, event, timestamp, properties });
    const statisticsOf = (store: MemoryStore, events: readonly StoredEvent[]) => {
      expect(deliver(store, events.map((e, i) => record(e, i)))).toEqual([]);
      return statisticsTotals(store.statistics);
    };
    const hour = Date.parse('2026-04-01T09:00:00Z');
    const a1 = `${hour} a1\u001fx\u001f\u001f\u001fp-web\u001fweb\u001fhome`;
    const a2 = `${hour} a2\u001f\u001fexp-a\u001fb\u001fp-web\u001fweb\u001fhome`;
    const control = `${hour} \u001f\u001fexp-h\u001fcontrol\u001fp-web\u001fweb\u001fhome`;

    it('counts the served action\'s cell (variant, experiment arm) and, once per decision and kind, the holdout\'s control cell', () => {
      const store = new MemoryStore(learning);
      const totals = statisticsOf(store, [
        outcome('v1', { userId: 'u1' }, 'Promotion Viewed', { decision_id: web, action_id: 'a1', variant: 'x' }),
        outcome('v2', { userId: 'u1' }, 'Promotion Viewed', { decision_id: web, action_id: 'a2' }),
        outcome('v3', { userId: 'u1' }, 'Promotion Viewed', { decision_id: web, action_id: 'a2' }),
        outcome('c1', { userId: 'u1' }, 'Promotion Clicked', { decision_id: web, action_id: 'a1' }),
        outcome('o1', { userId: 'u1' }, 'Order Completed', { decision_id: web, action_id: 'a2' }),
      ]);
      expect(totals).toEqual({ [a1]: '1/1/0', [a2]: '1/0/1', [control]: '1/1/1' });
    });

    it('a click or a conversion reported without its impression brings the impression, once: a later report of it, the click again, add nothing', () => {
      const store = new MemoryStore(learning);
      // The click first, alone: its impression counts with it (and the holdout's control cell is exposed once).
      const first = statisticsOf(store, [outcome('c1', { userId: 'u1' }, 'Promotion Clicked', { decision_id: web, action_id: 'a1' })]);
      expect(first).toEqual({ [a1]: '1/1/0', [control]: '1/1/0' });
      // The impression reported late, the click reported again, a conversion of another action served, without its impression.
      const after = statisticsOf(store, [
        outcome('v1', { userId: 'u1' }, 'Promotion Viewed', { decision_id: web, action_id: 'a1' }),
        outcome('c2', { userId: 'u1' }, 'Promotion Clicked', { decision_id: web, action_id: 'a1' }),
        outcome('o1', { userId: 'u1' }, 'Order Completed', { decision_id: web, action_id: 'a2' }),
      ]);
      expect(after).toEqual({ [a1]: '1/1/0', [a2]: '1/0/1', [control]: '1/1/1' });
      // The profile's contact history and engagement: one impression of each action, the click and the conversion.
      const item = store.item('u#u1');
      if (item?.kind !== 'profile') throw new Error('no profile');
      expect(item.state.actions.a1).toMatchObject({ n: 1, clicks: 1 });
      expect(item.state.actions.a2).toMatchObject({ n: 1, conversions: 1 });
      expect(item.state.channels.web).toMatchObject({ delivered: 2, engaged: 1 });
    });

    it('forged ids, actions and variants the decision did not serve, and conversions past the conversion window count nothing', () => {
      const store = new MemoryStore(learning);
      const forged = `${web.slice(0, -2)}zz`;
      const late = new Date(Date.parse('2026-04-01T09:30:00Z') + DAY + 60_000).toISOString();
      const totals = statisticsOf(store, [
        outcome('f1', { userId: 'u1' }, 'Promotion Viewed', { decision_id: forged, action_id: 'a1' }),
        outcome('f2', { userId: 'u1' }, 'Promotion Viewed', { decision_id: 'd1' }),
        outcome('f3', { userId: 'u1' }, 'Promotion Viewed', { decision_id: web, action_id: 'a3' }),
        outcome('f4', { userId: 'u1' }, 'Promotion Clicked', { decision_id: web, action_id: 'a1', variant: 'y' }),
        outcome('f5', { userId: 'u1' }, 'Order Completed', { decision_id: web, action_id: 'a1' }, late),
        outcome('f6', { userId: 'u1' }, 'Promotion Viewed', { decision_id: web, action_id: 'a1' }, new Date(Date.parse(at) + 8 * DAY).toISOString()),
      ]);
      expect(totals).toEqual({});
      // The same late conversion counts where the conversion window is longer, with the impression it implies.
      expect(statisticsOf(new MemoryStore(options), [outcome('f5', { userId: 'u1' }, 'Order Completed', { decision_id: web, action_id: 'a1' }, late)])).toEqual({ [a1]: '1/0/1', [control]: '1/0/1' });
    });

    it('a merge takes back what the anonymous profile and the user had both counted', () => {
      const store = new MemoryStore(learning);
      // Decided while anonymous (a1): the user's report under u1 alone, before u1 and a1 are joined, is not its customer's.
      const anonymousWeb = decisionId(new Date('2026-04-01T09:30:00Z'), 'web', 'w1', ['a1', 'a2'], 'a1');
      const totals = statisticsOf(store, [
        outcome('n1', { anonymousId: 'a1' }, 'Promotion Viewed', { decision_id: anonymousWeb, action_id: 'a1' }),
        outcome('n2', { anonymousId: 'a1' }, 'Promotion Viewed', { decision_id: anonymousWeb, action_id: 'a2' }),
        outcome('k0', { userId: 'u1' }, 'Promotion Viewed', { decision_id: anonymousWeb, action_id: 'a1' }),
      ]);
      expect(totals).toEqual({ [a1]: '1/0/0', [a2]: '1/0/0', [control]: '1/0/0' });
      // The login's report carries both ids: the user counts it, then absorbs a1, which had counted it too.
      const merged = statisticsOf(store, [outcome('k1', { userId: 'u1', anonymousId: 'a1' }, 'Promotion Viewed', { decision_id: anonymousWeb, action_id: 'a1' })]);
      expect(merged).toEqual({ [a1]: '1/0/0', [a2]: '1/0/0', [control]: '1/0/0' });
      expect(store.statistics.filter((i) => i.counts.impressions < 0)).toHaveLength(2);
    });

    it('splits a profile\'s outcomes into writes of at most 100 items, statistics items included', () => {
      const store = new MemoryStore(learning);
      const events = Array.from({ length: 150 }, (_, i) =>
        outcome(`m${i}`, { userId: 'u1' }, 'Promotion Viewed', { decision_id: decisionId(new Date(Date.parse(at) - i * 3_600_000), 'web', `d${i}`, ['a1', 'a2'], 'u1') }),
      );
      const plan = planOn(store, events.map((e, i) => record(e, i)));
      const writes = plan.targets.flatMap((t) => t.writes);
      const items = (w: PlannedWrite) => new Set(w.statistics.map((i) => `${i.bucket} ${JSON.stringify(i.cell)}`)).size;
      for (const write of writes) expect(1 + write.markers.length + write.tombstones.length + items(write)).toBeLessThanOrEqual(100);
      expect(writes.reduce((n, w) => n + items(w), 0)).toBe(300);
      expect(commit(store, plan)).toEqual({ again: [], failed: [] });
    });
  });

  it('asks for what it needs: identities, markers and erasures first, then the users tombstones point to (and, of an erased key, whether its message was erased)', () => {
    const event = { ...storedEvent({ type: 'page', anonymousId: 'a1', messageId: 'm1', timestamp: '2026-04-01T00:00:00Z' }) };
    const first = planBatch([{ id: '1', event }], emptyReadState(), options);
    expect(first).toEqual({ kind: 'read', reads: { profiles: ['a#a1'], markers: [event.pk], erasures: ['a#a1'], erasedMessages: [] } });
    const tombstone: ProfileItem = { kind: 'tombstone', key: 'a#a1', version: 1, mergedInto: 'u1', keyErasedAt: 0 };
    const read: ReadState = { profiles: new Map([['a#a1', tombstone]]), applied: new Map([[event.pk, false]]), erasedAt: new Map([['a#a1', undefined]]), erasedMessages: new Map() };
    // The user's erasure with it: an outcome applied there counts nothing for a decision made before it.
    expect(planBatch([{ id: '1', event }], read, options)).toEqual({ kind: 'read', reads: { profiles: ['u#u1'], markers: [], erasures: ['u#u1'], erasedMessages: [] } });
    const plan = planBatch([{ id: '1', event }], { ...read, profiles: new Map([...read.profiles, ['u#u1', undefined]]), erasedAt: new Map([...read.erasedAt, ['u#u1', undefined]]) }, options);
    expect(plan.kind === 'plan' && plan.plan.targets.map((t) => t.key)).toEqual(['u#u1']);
    // A key erased before the event happened (and merged after it): whether the erasure deleted this very message is read with the target.
    const erasure = Date.parse('2026-03-01T00:00:00Z');
    const erased: ReadState = { ...read, profiles: new Map([['a#a1', { ...tombstone, keyErasedAt: erasure }]]), erasedAt: new Map([['a#a1', erasure]]) };
    expect(planBatch([{ id: '1', event }], erased, options)).toEqual({ kind: 'read', reads: { profiles: ['u#u1'], markers: [], erasures: ['u#u1'], erasedMessages: [event.pk] } });
    const known = { ...erased, profiles: new Map([...erased.profiles, ['u#u1', undefined]]), erasedAt: new Map([...erased.erasedAt, ['u#u1', undefined]]) };
    // It did (the same message came back, dated after the erasure): dropped; it did not: applied.
    const replayed = planBatch([{ id: '1', event }], { ...known, erasedMessages: new Map([[event.pk, true]]) }, options);
    expect(replayed.kind === 'plan' && replayed.plan).toMatchObject({ targets: [], dropped: [{ eventPk: event.pk, records: ['1'] }] });
    const fresh = planBatch([{ id: '1', event }], { ...known, erasedMessages: new Map([[event.pk, false]]) }, options);
    expect(fresh.kind === 'plan' && fresh.plan.targets.map((t) => t.key)).toEqual(['u#u1']);
    // A redelivery (its marker found) is planned without a second read: neither its target nor its erased-message record.
    const redelivered = planBatch([{ id: '1', event }], { ...erased, applied: new Map([[event.pk, true]]) }, options);
    expect(redelivered.kind === 'plan' && redelivered.plan).toMatchObject({ targets: [], duplicates: ['1'] });
  });

  it("an event after an erasure, planned before the erasure's last step, replaces the erased customer's profile: a fresh one in its place, its runs in progress counted exited once", () => {
    const erasure = Date.parse('2026-04-05T10:00:00Z');
    const run = { run: 1, step: 'wait', enteredAt: erasure - DAY, stepAt: erasure - DAY, waitingUntil: erasure + DAY, named: true as const };
    const erasedState: ProfileState = { ...applyEvents(emptyProfileState({ userId: 'u1' }), [storedEvent({ type: 'identify', userId: 'u1', messageId: 'old', timestamp: new Date(erasure - DAY).toISOString(), traits: { firstName: 'Rosa' } })], settings), journeys: { j1: run } };
    const at = new Date(erasure + 1_000).toISOString();
    const event = { ...storedEvent({ type: 'track', userId: 'u1', event: 'Product Viewed', messageId: 'back', timestamp: at }), receivedAt: at };
    const planWith = (keyErasedAt: number): BatchPlan => {
      const read: ReadState = {
        profiles: new Map([['u#u1', { kind: 'profile', key: 'u#u1', version: 7, state: { ...erasedState, keyErasedAt } } satisfies ProfileItem]]),
        applied: new Map([[event.pk, false]]),
        erasedAt: new Map([['u#u1', erasure]]),
        erasedMessages: new Map([[event.pk, false]]),
      };
      const result = planBatch([{ id: '1', event }], read, options);
      if (result.kind !== 'plan') throw new Error('the plan asked for more reads');
      return result.plan;
    };
    // Started before the erasure: the erased customer's. Replaced at the version read, by a profile of the event alone.
    const replacing = planWith(0).targets[0]!.writes[0]!;
    expect(replacing.profile.readVersion).toBe(7);
    expect(replacing.profile.state).toMatchObject({ keyErasedAt: erasure, traits: {}, journeys: {} });
    expect(toProfileView(replacing.profile.state, NOW).stats).toEqual(toProfileView(applyEvents(emptyProfileState({ userId: 'u1' }), [event], settings), NOW).stats);
    expect(replacing.journeyCounts).toEqual(journeyIncrements(erasedRunCounts({ j1: run }, erasure)));
    expect(replacing.journeyCounts).toMatchObject([{ journey: 'j1', n: 1 }]);
    // Started at the erasure (the returning customer's): applied on top, nothing counted.
    const onTop = planWith(erasure).targets[0]!.writes[0]!;
    expect(onTop.profile.state).toMatchObject({ keyErasedAt: erasure, journeys: { j1: run } });
    expect(onTop.profile.state.traits).toHaveProperty('firstName');
    expect(onTop.journeyCounts).toEqual([]);
  });

  it('an alias whose previousId is a known user joins nobody (its profile, or a user earlier in the batch); one that is not yet a user links it', () => {
    const at = (minute: number) => new Date(Date.parse('2026-04-01T00:00:00Z') + minute * 60_000).toISOString();
    const identify = (userId: string, i: number) => storedEvent({ type: 'identify', userId, messageId: `i${i}`, timestamp: at(i), traits: { firstName: userId } });
    const alias = (userId: string, previousId: string, i: number) => storedEvent({ type: 'alias', userId, previousId, messageId: `al${i}`, timestamp: at(i) });
    const linksOf = (store: MemoryStore) =>
      Object.fromEntries(
        Object.entries(snapshot(store)).map(([key, item]) => [key, (item as { anonymousIds?: string[]; mergedInto?: string }).anonymousIds ?? (item as { mergedInto: string }).mergedInto]),
      );
    // Both users known first, then aliased to each other: one batch each, then all in one batch.
    const cycle = [identify('ua', 1), identify('ub', 2), alias('ua', 'ub', 3), alias('ub', 'ua', 4)];
    const apart = new MemoryStore();
    cycle.forEach((event, i) => expect(deliver(apart, [record(event, i)])).toEqual([]));
    const together = new MemoryStore();
    expect(deliver(together, cycle.map(record))).toEqual([]);
    for (const store of [apart, together]) expect(linksOf(store)).toEqual({ 'u#ua': [], 'u#ub': [] });
    // A previousId nobody identified as yet is linked; the alias back, whose previousId is then a user, is not.
    const before = new MemoryStore();
    [alias('ua', 'ub', 1), identify('ub', 2), alias('ub', 'ua', 3)].forEach((event, i) => expect(deliver(before, [record(event, i)])).toEqual([]));
    expect(linksOf(before)).toEqual({ 'a#ub': 'ua', 'u#ua': ['ub'], 'u#ub': [] });
  });

  it('splits a profile\'s events into writes of at most 100 items, each conditioned on the version the one before writes', () => {
    const store = new MemoryStore();
    const events = Array.from({ length: 150 }, (_, i) =>
      storedEvent({ type: 'track', userId: 'u1', anonymousId: `a${i % 3}`, messageId: `m${i}`, event: 'Search', timestamp: '2026-04-01T00:00:00Z' }),
    );
    const plan = planOn(store, events.map((event, i) => record(event, i)));
    const writes = plan.targets.flatMap((t) => t.writes);
    expect(writes.length).toBeGreaterThan(1);
    for (const write of writes) expect(1 + write.markers.length + write.tombstones.length).toBeLessThanOrEqual(100);
    expect(writes.map((w) => w.profile.readVersion)).toEqual(writes.map((_, i) => i));
    expect(writes.flatMap((w) => w.tombstones.map((t) => t.anonymousId)).sort()).toEqual(['a0', 'a1', 'a2']);
    expect(commit(store, plan)).toEqual({ again: [], failed: [] });
    expect(toProfileView(store.item('u#u1')!.kind === 'profile' ? (store.item('u#u1') as { state: ProfileState }).state : emptyProfileState(), NOW).stats.eventCounts.Search?.total).toBe(150);
  });

  it('a journey timer of a customer erased while the run waited is dropped and starts no profile; with the profile there it is applied', () => {
    const identify = storedEvent({ type: 'identify', userId: 'u-j1', messageId: 'i1', timestamp: '2026-04-10T00:00:00Z', traits: { firstName: 'Juan' } });
    const timer = (run: number, firedAt: number) =>
      journeyTimerEvent({ journey: 'quick', run, step: 'pause', profileKey: 'u#u-j1', dueAt: firedAt }, firedAt, Math.floor(firedAt / 1000) + 86_400);
    const store = new MemoryStore();
    expect(deliver(store, [record(identify, 1)])).toEqual([]);
    const live = planOn(store, [record(timer(1, RECEIVED + 1_000), 2)]);
    expect(live.dropped).toEqual([]);
    expect(live.targets.map((t) => t.key)).toEqual(['u#u-j1']);

    store.erase(['u#u-j1'], RECEIVED + 2_000, [identify]);
    const late = timer(2, RECEIVED + 3_000);
    const plan = planOn(store, [record(late, 3)]);
    expect(plan.dropped).toEqual([{ eventPk: late.pk, records: [record(late, 3).id] }]);
    expect(plan.targets).toEqual([]);
    expect(commit(store, plan)).toEqual({ again: [], failed: [] });
    expect(store.profiles.has('u#u-j1')).toBe(false);
    // The customer coming back (an event of their own) starts a profile as before.
    expect(deliver(store, [record(storedEvent({ type: 'page', userId: 'u-j1', messageId: 'p1', timestamp: '2026-04-10T01:00:00Z' }), 4)])).toEqual([]);
    expect(store.profiles.has('u#u-j1')).toBe(true);
  });

  it("a deferred send's timer of a customer erased while it waited is dropped and starts no profile (the rule of a journey's timer)", () => {
    const identify = storedEvent({ type: 'identify', userId: 'u-s1', messageId: 'i1', timestamp: '2026-04-10T00:00:00Z', traits: { firstName: 'Sara' } });
    const timer = (firedAt: number) =>
      sendTimerEvent(
        {
          send: 'vip-in.src-test#i1',
          channel: 'sms',
          origin: { kind: 'trigger', trigger: 'vip-in', cause: { kind: 'entered', segment: 'vip' }, eventId: 'i1' },
          context: { event: 'identify', type: 'identify', messageId: 'i1', timestamp: '2026-04-10T00:00:00Z', properties: {}, traits: {} },
          profileKey: 'u#u-s1',
          dueAt: firedAt,
        },
        firedAt,
        Math.floor(firedAt / 1000) + 86_400,
      );
    const store = new MemoryStore();
    expect(deliver(store, [record(identify, 1)])).toEqual([]);
    expect(planOn(store, [record(timer(RECEIVED + 1_000), 2)]).dropped).toEqual([]);
    store.erase(['u#u-s1'], RECEIVED + 2_000, [identify]);
    const late = timer(RECEIVED + 3_000);
    const plan = planOn(store, [record(late, 3)]);
    expect(plan.dropped).toEqual([{ eventPk: late.pk, records: [record(late, 3).id] }]);
    expect(plan.targets).toEqual([]);
    expect(commit(store, plan)).toEqual({ again: [], failed: [] });
    expect(store.profiles.has('u#u-s1')).toBe(false);
  });

  it("a timer of the erased customer that fires after they came back is dropped (set off before the erasure); the returning customer's own timers are applied", () => {
    const identifyAt = (messageId: string, timestamp: string) => storedEvent({ type: 'identify', userId: 'u-r1', messageId, timestamp, traits: { firstName: 'Rosa' } });
    const sendTimer = (eventId: string, firedAt: string, dueAt: number) =>
      sendTimerEvent(
        {
          send: `vip-in.src-test#${eventId}`,
          channel: 'sms',
          origin: { kind: 'trigger', trigger: 'vip-in', cause: { kind: 'entered', segment: 'vip' }, eventId },
          context: { event: 'identify', type: 'identify', messageId: eventId, timestamp: firedAt, properties: {}, traits: {} },
          profileKey: 'u#u-r1',
          dueAt,
        },
        dueAt,
        Math.floor(dueAt / 1000) + 86_400,
      );
    const journeyTimer = (enteredAt: string | undefined, dueAt: number) =>
      journeyTimerEvent({ journey: 'quick', run: 1, ...(enteredAt !== undefined ? { enteredAt } : {}), step: 'pause', profileKey: 'u#u-r1', dueAt }, dueAt, Math.floor(dueAt / 1000) + 86_400);
    const first = identifyAt('i1', '2026-04-10T00:00:00Z');
    const store = new MemoryStore();
    expect(deliver(store, [record(first, 1)])).toEqual([]);
    const erasedAt = RECEIVED + 2_000;
    store.erase(['u#u-r1'], erasedAt, [first]);
    const back = identifyAt('i2', new Date(erasedAt + 1_000).toISOString());
    expect(deliver(store, [record(back, 2)])).toEqual([]);
    expect(store.profiles.has('u#u-r1')).toBe(true);

    // Due after the erasure, fired after the return: the erased customer's (set off before the erasure) are dropped.
    const due = erasedAt + 60_000;
    const erasedSend = sendTimer('i1', first.timestamp, due);
    const erasedWait = journeyTimer(new Date(erasedAt - 60_000).toISOString(), due);
    const plan = planOn(store, [record(erasedSend, 3), record(erasedWait, 4)]);
    expect(plan.dropped.map((d) => d.eventPk).sort()).toEqual([erasedSend.pk, erasedWait.pk].sort());
    expect(plan.targets).toEqual([]);
    // The returning customer's own (set off after it) are applied; so is a journey timer that does not say when its run began.
    const ownSend = sendTimer('i2', back.timestamp, due);
    const ownWait = journeyTimer(new Date(erasedAt + 1_000).toISOString(), due);
    const unnamed = journeyTimer(undefined, due);
    const applied = planOn(store, [record(ownSend, 5), record(ownWait, 6), record(unnamed, 7)]);
    expect(applied.dropped).toEqual([]);
    expect(applied.targets.flatMap((t) => t.writes.flatMap((w) => w.markers)).sort()).toEqual([ownSend.pk, ownWait.pk, unnamed.pk].sort());
  });

  describe('an outcome of a decision issued before the customer was erased, reported after they came back', () => {
    const MINUTE = 60_000;
    const learning: PlanOptions = { ...options, settings: { ...settings, learning: { contextBy: 'persona', conversionWindowMs: 7 * DAY } } };
    const iso = (ms: number) => new Date(ms).toISOString();
    const click = (messageId: string, who: { userId?: string; anonymousId?: string }, decision: string, at: number) =>
      storedEvent({ type: 'track', ...who, messageId, event: 'Email Link Clicked', timestamp: iso(at), properties: { decision_id: decision } });
    /** u-r came, was decided for, was erased at `erasedAt` and came back (a new profile) a second later. */
    const returned = (erasedAt: number): MemoryStore => {
      const store = new MemoryStore(learning);
      const first = storedEvent({ type: 'identify', userId: 'u-r', messageId: 'i1', timestamp: iso(erasedAt - DAY), traits: { firstName: 'Rosa' } });
      expect(deliver(store, [record(first, 1)])).toEqual([]);
      store.erase(['u#u-r'], erasedAt, [first]);
      const back = storedEvent({ type: 'identify', userId: 'u-r', messageId: 'i2', timestamp: iso(erasedAt + 1_000), traits: { firstName: 'Rosa' } });
      expect(deliver(store, [record(back, 2)])).toEqual([]);
      return store;
    };
    const view = (store: MemoryStore, key = 'u#u-r') => {
      const item = store.item(key);
      if (item?.kind !== 'profile') throw new Error(`no profile at ${key}`);
      return { outcomes: Object.keys(item.state.outcomes), contacts: toProfileView(item.state, NOW).contacts };
    };
    const erasedOutcomes = (plan: BatchPlan) => plan.targets.flatMap((t) => t.writes).reduce((n, w) => n + w.erasedOutcomes, 0);

    it('counts for nothing (profile, contacts, statistics) and is counted as dropped; a decision made after the return still counts', () => {
      const erasedAt = Date.parse('2026-04-08T12:00:00.400Z');
      const store = returned(erasedAt);
      const before = view(store);
      // Last week's email, decided for u-r before the erasure; one decided after the return.
      const old = decisionId(new Date(erasedAt - 2 * DAY), 'email', 'old', ['a1'], 'u-r');
      const fresh = decisionId(new Date(erasedAt + 2_000), 'email', 'new', ['a1'], 'u-r');
      const late = click('c-old', { userId: 'u-r' }, old, erasedAt + 10 * MINUTE);
      const plan = planOn(store, [record(late, 3)]);
      expect(plan.dropped).toEqual([]);
      expect(plan.targets.flatMap((t) => t.writes.flatMap((w) => w.markers))).toEqual([late.pk]);
      expect(plan.targets.flatMap((t) => t.writes.flatMap((w) => w.statistics))).toEqual([]);
      expect(erasedOutcomes(plan)).toBe(1);
      expect(commit(store, plan)).toEqual({ again: [], failed: [] });
      expect(view(store)).toEqual(before);
      expect(store.statistics).toEqual([]);
      // The returning customer's own decision counts as ever.
      const own = click('c-new', { userId: 'u-r' }, fresh, erasedAt + 20 * MINUTE);
      const counted = planOn(store, [record(own, 4)]);
      expect(erasedOutcomes(counted)).toBe(0);
      expect(commit(store, counted)).toEqual({ again: [], failed: [] });
      // The click, and the impression it implies.
      expect(view(store).outcomes.sort()).toEqual([`c.email.${Math.floor((erasedAt + 2_000) / 1000)}.new.a1`, `i.email.${Math.floor((erasedAt + 2_000) / 1000)}.new.a1`]);
      expect(view(store).contacts.a1).toBeDefined();
      expect(Object.values(statisticsTotals(store.statistics))).toEqual(['1/1/0']);
    });

    it('holds when the outcome is reported under a new browser merged into the returning user (the erasure of its target)', () => {
      const erasedAt = Date.parse('2026-04-08T12:00:00Z');
      const store = returned(erasedAt);
      const login = storedEvent({ type: 'identify', userId: 'u-r', anonymousId: 'b-new', messageId: 'i3', timestamp: iso(erasedAt + MINUTE) });
      expect(deliver(store, [record(login, 3)])).toEqual([]);
      expect(store.item('a#b-new')?.kind).toBe('tombstone');
      // Decided for the user before the erasure; the click comes from the new browser alone (its tag matches the profile's user id).
      const old = decisionId(new Date(erasedAt - DAY), 'email', 'old', ['a1'], 'u-r');
      const plan = planOn(store, [record(click('c-old', { anonymousId: 'b-new' }, old, erasedAt + 10 * MINUTE), 4)]);
      expect(plan.targets.map((t) => t.key)).toEqual(['u#u-r']);
      expect(erasedOutcomes(plan)).toBe(1);
      expect(commit(store, plan)).toEqual({ again: [], failed: [] });
      expect(view(store).outcomes).toEqual([]);
      expect(store.statistics).toEqual([]);
    });

    it('whatever the times: an outcome counts exactly when its decision was issued after the erasure (to the second it carries)', () => {
      fc.assert(
        fc.property(
          fc.integer({ min: 0, max: 999 }),
          fc.integer({ min: -3 * 86_400, max: 3 * 86_400 }),
          fc.integer({ min: 2, max: 3_600 }),
          (erasedMs, decidedS, clickS) => {
            const erasedAt = Date.parse('2026-04-08T12:00:00Z') + erasedMs;
            const store = returned(erasedAt);
            const decidedAt = Date.parse('2026-04-08T12:00:00Z') + decidedS * 1000;
            const at = Math.max(decidedAt, erasedAt) + clickS * 1000;
            const plan = planOn(store, [record(click('c', { userId: 'u-r' }, decisionId(new Date(decidedAt), 'email', 'n', ['a1'], 'u-r'), at), 3)]);
            const counts = decidedAt > erasedAt;
            expect(erasedOutcomes(plan)).toBe(counts ? 0 : 1);
            expect(plan.targets.flatMap((t) => t.writes.flatMap((w) => w.statistics)).length > 0).toBe(counts);
          },
        ),
        { numRuns: 60 },
      );
    });
  });

  it('sets aside an event the aggregate refuses and an event without identity; the rest of the batch is planned', () => {
    const good = storedEvent({ type: 'page', userId: 'u1', messageId: 'good', timestamp: '2026-04-01T00:00:00Z' });
    const badTime = { ...storedEvent({ type: 'page', userId: 'u1', messageId: 'bad', timestamp: '2026-04-01T00:00:00Z' }), timestamp: 'not a time' };
    const nobody = { ...storedEvent({ type: 'page', userId: 'u1', messageId: 'nobody', timestamp: '2026-04-01T00:00:00Z' }), userId: undefined };
    const plan = planOn(new MemoryStore(), [record(good, 1), record(badTime, 2), record(nobody as StoredEvent, 3)]);
    expect([...plan.failures.keys()].sort()).toEqual([record(badTime, 2).id, record(nobody as StoredEvent, 3).id]);
    expect(plan.targets.flatMap((t) => t.writes.flatMap((w) => w.records))).toEqual([record(good, 1).id]);
  });

  it("warns of a merge's take-back past a transaction with the profile apart, never in the message (it is logged)", () => {
    // The user and the anonymous profile it absorbs both counted the same 120 outcomes, each in a cell of its own:
    // the take-back of the anonymous one's counts is 120 statistics items, more than one transaction holds.
    const outcomes: Record<string, number> = {};
    const outcomeCells: Record<string, string[]> = {};
    const decidedAt = Date.parse('2026-03-30T00:00:00Z');
    for (let i = 0; i < 120; i++) {
      const key = `c.web.${Math.floor(decidedAt / 1000)}.n${i}.a${i}`;
      outcomes[key] = decidedAt;
      outcomeCells[key] = [cellKey({ actionId: `a${i}`, context: NO_CONTEXT, channel: 'web' })];
    }
    const user = { ...emptyProfileState({ userId: 'u-5e1f' }), outcomes: { ...outcomes } };
    const anonymous = { ...emptyProfileState({ anonymousId: 'a-77c3' }), outcomes: { ...outcomes }, outcomeCells };
    const event = storedEvent({ type: 'identify', userId: 'u-5e1f', anonymousId: 'a-77c3', messageId: 'join', timestamp: '2026-04-01T00:00:00Z' });
    const read: ReadState = {
      profiles: new Map<string, ProfileItem | undefined>([
        ['u#u-5e1f', { kind: 'profile', key: 'u#u-5e1f', version: 1, state: user }],
        ['a#a-77c3', { kind: 'profile', key: 'a#a-77c3', version: 1, state: anonymous }],
      ]),
      applied: new Map([[event.pk, false]]),
      erasedAt: new Map([['u#u-5e1f', undefined], ['a#a-77c3', undefined]]),
      erasedMessages: new Map(),
    };
    const result = planBatch([{ id: '1', event }], read, options);
    expect(result.kind).toBe('plan');
    const warnings = result.kind === 'plan' ? result.plan.warnings : [];
    expect(warnings).toEqual([{ message: expect.stringContaining("a merge's take-back exceeds a transaction"), profileKey: 'u#u-5e1f' }]);
    for (const { message } of warnings) expect(message).not.toMatch(/u-5e1f|a-77c3/);
  });

  it('keeps the events flowing when the enricher throws, with a warning', () => {
    const event = storedEvent({ type: 'page', userId: 'u1', messageId: 'm1', timestamp: '2026-04-01T00:00:00Z' });
    const throwing = { ...options, enricher: () => { throw new Error('enricher bug'); } };
    const plan = planOn(new MemoryStore(), [record(event, 1)], throwing);
    expect(plan.warnings).toEqual([expect.objectContaining({ message: expect.stringContaining('enricher bug') })]);
    expect(plan.targets).toHaveLength(1);
  });
});

describe("one event's reactions: what they write within DynamoDB's 4 MB per transaction", () => {
  const at = '2026-04-01T10:00:00.000Z';
  /** An emission of `bytes` of rendered content (a send's `detail`, as a trigger or a journey writes it). */
  const emission = (id: string, bytes: number, detailType: string): OutboxEntry => ({
    id,
    status: 'now',
    sendAt: NOW,
    detailType,
    detail: { emissionId: id, channel: 'call_center', content: { script: 'x'.repeat(bytes) } },
  });
  /** Triggers whose sends render `sizes` bytes of content each. */
  const sending = (sizes: readonly number[]): ProfileReactor => ({
    bound: () => sizes.length,
    react: (change) => sizes.map((bytes, i) => emission(`t${i}.${change.eventPk}`, bytes, 'Kairos Trigger Action')),
  });
  /** Journeys that send `sizes` bytes of content each for the event and move their run `j` on. */
  const moving = (sizes: readonly number[]): JourneyStepper => ({
    bound: () => sizes.length,
    step: (runs, change) => ({
      runs: { ...runs, j: { run: 1, step: 0, startedAt: NOW, enteredAt: NOW } } as unknown as typeof runs,
      outbox: sizes.map((bytes, i) => emission(`j${i}.${change.eventPk}`, bytes, 'Kairos Journey Action')),
      counts: [],
    }),
  });
  const bytesOf = (entries: readonly OutboxEntry[]): number => entries.reduce((sum, e) => sum + storedBytes(e.detail), 0);
  const click = storedEvent({ type: 'track', userId: 'u1', messageId: 'click', event: 'Complaint Opened', timestamp: at });

  it('49 sends of 95 KB (20 triggers, a journey of 29 acts: 4.6 MB): the triggers\' sends are written, the journey stays where it was, with a warning each; the write fits', () => {
    const store = new MemoryStore({ ...options, reactor: sending(Array(20).fill(95_000)), journeys: moving(Array(29).fill(95_000)) });
    const plan = planOn(store, [record(click, 0)]);
    const writes = plan.targets.flatMap((t) => t.writes);
    expect(writes).toHaveLength(1);
    const write = writes[0]!;
    expect(write.outbox.map((e) => e.id)).toEqual(Array.from({ length: 20 }, (_, i) => `t${i}.${click.pk}`));
    expect(write.profile.state.journeys).toEqual({});
    expect(bytesOf(write.outbox)).toBeLessThanOrEqual(MAX_REACTION_BYTES_PER_EVENT);
    expect(plan.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/^journeys of event .* failed; they stay where they were: their 29 emissions/)]);
    expect(plan.warnings.every((w) => !w.message.includes('u1') && w.profileKey === 'u#u1')).toBe(true);
    expect(commit(store, plan)).toEqual({ again: [], failed: [] });
  });

  it('property: whatever the sends\' sizes, an event\'s reactions write at most MAX_REACTION_BYTES_PER_EVENT: the triggers\' sends that fit, in order, and the journeys whole or not at all; a warning exactly when something was left out', () => {
    // Sizes that add up past the budget about half the time (a trigger's up to an outbox item's share of 400 KB, any reactor).
    const size = (max: number) => fc.oneof({ arbitrary: fc.integer({ min: 0, max }), weight: 1 }, { arbitrary: fc.integer({ min: max - 30_000, max }), weight: 3 });
    const cases = { within: 0, past: 0 };
    fc.assert(
      fc.property(fc.array(size(200_000), { maxLength: 20, size: 'max' }), fc.array(size(100_000), { minLength: 5, maxLength: 29, size: 'max' }), (triggerSizes, journeySizes) => {
        const store = new MemoryStore({ ...options, reactor: sending(triggerSizes), journeys: moving(journeySizes) });
        const plan = planOn(store, [record(click, 0)]);
        const write = plan.targets.flatMap((t) => t.writes)[0]!;
        expect(bytesOf(write.outbox)).toBeLessThanOrEqual(MAX_REACTION_BYTES_PER_EVENT);
        // The profile item and every other item's overhead fit beside it.
        expect(bytesOf(write.outbox) + 400 * 1024 + 99 * 2 * 1024).toBeLessThanOrEqual(MAX_TRANSACTION_BYTES);
        // The triggers' sends, greedily in order: each kept when it fits in what is left.
        const triggers = triggerSizes.map((bytes, i) => emission(`t${i}.${click.pk}`, bytes, 'Kairos Trigger Action'));
        let left = MAX_REACTION_BYTES_PER_EVENT;
        const kept = triggers.filter((e) => {
          const b = storedBytes(e.detail);
          if (b > left) return false;
          left -= b;
          return true;
        });
        const journeysFit = bytesOf(journeySizes.map((bytes, i) => emission(`j${i}.${click.pk}`, bytes, 'Kairos Journey Action'))) <= left;
        const journeyIds = journeysFit ? journeySizes.map((_, i) => `j${i}.${click.pk}`) : [];
        expect(write.outbox.map((e) => e.id)).toEqual([...kept.map((e) => e.id), ...journeyIds]);
        expect(Object.keys(write.profile.state.journeys)).toEqual(journeysFit && journeySizes.length > 0 ? ['j'] : []);
        expect(plan.warnings.length).toBe((kept.length < triggers.length ? 1 : 0) + (journeysFit ? 0 : 1));
        expect(commit(store, plan)).toEqual({ again: [], failed: [] });
        cases[plan.warnings.length > 0 ? 'past' : 'within'] += 1;
      }),
      { numRuns: 100 },
    );
    // Both sides of the budget were tried.
    expect(cases.within).toBeGreaterThan(5);
    expect(cases.past).toBeGreaterThan(5);
  });
});

describe("a visitor's runs a merge drops, more than a transaction holds", () => {
  const LOGIN = Date.parse('2026-04-05T10:00:00Z');
  /** `n` runs in progress (journeys `<prefix>0…`), entered at `enteredAt`, waiting. */
  const runsInProgress = (prefix: string, n: number, enteredAt: number): ProfileState['journeys'] =>
    Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`${prefix}${i}`, { run: 1, step: 'wait', enteredAt, stepAt: enteredAt, waitingUntil: LOGIN + 30 * DAY, named: true as const }]),
    );
  const transactionItems = (w: PlannedWrite): number =>
    1 + w.tombstones.length + w.markers.length + w.outbox.length + w.journeyCounts.length + new Set(w.statistics.map((i) => `${i.bucket} ${cellKey(i.cell)}`)).size;
  /** User u1 in `shared` + `own` runs, visitor a1 in the same `shared` journeys and `visitorOnly` more; the login: identify u1 from a1. */
  const inRuns = (shared: number, own: number, visitorOnly: number) => {
    const store = new MemoryStore();
    const profile = (state: ProfileState, runs: ProfileState['journeys'], version: number) => ({ kind: 'profile' as const, version, state: serializeProfileState({ ...state, journeys: runs }) });
    store.profiles.set('u#u1', profile(emptyProfileState({ userId: 'u1' }), { ...runsInProgress('shared-', shared, LOGIN - 2 * DAY), ...runsInProgress('own-', own, LOGIN - 2 * DAY) }, 7));
    store.profiles.set('a#a1', profile(emptyProfileState({ anonymousId: 'a1' }), { ...runsInProgress('shared-', shared, LOGIN - DAY), ...runsInProgress('visitor-', visitorOnly, LOGIN - DAY) }, 3));
    const event = storedEvent({ type: 'identify', userId: 'u1', anonymousId: 'a1', messageId: 'login', timestamp: new Date(LOGIN).toISOString() });
    store.events.add(event.pk);
    return { store, event };
  };
  const exited = (store: MemoryStore): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const c of store.journeyCounts) if (c.milestone === 'exited') out[c.journey] = (out[c.journey] ?? 0) + c.n;
    return out;
  };

  it("150 runs in progress on both: the visitor's are ended first by writes of its own, 99 then 51, then the login's write merges it, every transaction within 100 items", () => {
    const { store, event } = inRuns(150, 0, 0);
    const writes = planOn(store, [record(event, 1)]).targets.flatMap((t) => t.writes);
    for (const w of writes) expect(transactionItems(w)).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
    expect(writes.map((w) => [w.profile.key, w.profile.readVersion, w.records.length, w.journeyCounts.length, w.tombstones.map((t) => t.readVersion)])).toEqual([
      ['a#a1', 3, 0, 99, []],
      ['a#a1', 4, 0, 51, []],
      ['u#u1', 7, 1, 0, [5]],
    ]);
    const ended = writes[1]!.profile.state.journeys['shared-0'];
    expect(ended?.ended).toEqual({ how: 'exited', at: LOGIN, reason: EXIT_REASONS.merged() });
  });

  it("property: whatever the runs of each, each visitor run the merge drops is counted exited once, the user's run going on with it noted; the visitor's other runs go on on the user's profile; every transaction within 100 items; a redelivery changes nothing", () => {
    fc.assert(
      fc.property(fc.nat(260), fc.nat(40), fc.nat(40), (shared, own, visitorOnly) => {
        const { store, event } = inRuns(shared, own, visitorOnly);
        const writes = planOn(store, [record(event, 1)]).targets.flatMap((t) => t.writes);
        for (const w of writes) expect(transactionItems(w)).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
        expect(deliver(store, [record(event, 1)])).toEqual([]);
        expect(exited(store)).toEqual(Object.fromEntries(Array.from({ length: shared }, (_, i) => [`shared-${i}`, 1])));
        const user = store.item('u#u1');
        const runs = user?.kind === 'profile' ? user.state.journeys : {};
        expect(Object.keys(runs).length).toBe(shared + own + visitorOnly);
        for (const [journey, run] of Object.entries(runs)) {
          expect(run.step).toBe('wait');
          const fromVisitor = journey.startsWith('visitor-');
          expect(run.enteredAt).toBe(fromVisitor ? LOGIN - DAY : LOGIN - 2 * DAY);
          expect(run.merged).toEqual(journey.startsWith('shared-') ? { run: 1, enteredAt: LOGIN - DAY, ended: { how: 'exited', at: LOGIN, reason: EXIT_REASONS.merged() } } : undefined);
        }
        expect(store.item('a#a1')?.kind).toBe('tombstone');
        const counted = [...store.journeyCounts];
        expect(deliver(store, [record(event, 1)])).toEqual([]);
        expect(store.journeyCounts).toEqual(counted);
      }),
      { numRuns: 60 },
    );
  });
});

describe("the erased customer's runs in progress, more than a transaction holds", () => {
  const ERASURE = Date.parse('2026-04-05T10:00:00Z');
  const BACK = ERASURE + 60_000;
  /** `n` runs in progress (journeys `<prefix>0…`), each waiting since the day before the erasure. */
  const runsInProgress = (prefix: string, n: number): ProfileState['journeys'] =>
    Object.fromEntries(
      Array.from({ length: n }, (_, i) => [`${prefix}${i}`, { run: 1, step: 'wait', enteredAt: ERASURE - DAY, stepAt: ERASURE - DAY, waitingUntil: ERASURE + 30 * DAY, named: true as const }]),
    );
  /** The items a write's transaction holds: its profile, tombstones, markers, outbox entries, journey counters and statistics items. */
  const transactionItems = (w: PlannedWrite): number =>
    1 + w.tombstones.length + w.markers.length + w.outbox.length + w.journeyCounts.length + new Set(w.statistics.map((i) => `${i.bucket} ${cellKey(i.cell)}`)).size;
  /**
   * A store where user u1 (`own` runs in progress) and visitor a1 (`anonymous` runs) were erased at ERASURE and the
   * erasure has not deleted their profiles yet (its last step), and the customer back: identify u1 from a1.
   */
  const erasedInRuns = (own: number, anonymous: number) => {
    const store = new MemoryStore();
    const erased = (state: ProfileState, runs: ProfileState['journeys'], version: number) => ({ kind: 'profile' as const, version, state: serializeProfileState({ ...state, journeys: runs }) });
    store.profiles.set('u#u1', erased(emptyProfileState({ userId: 'u1' }), runsInProgress('own-', own), 7));
    store.profiles.set('a#a1', erased(emptyProfileState({ anonymousId: 'a1' }), runsInProgress('anonymous-', anonymous), 3));
    store.erasures.set('u#u1', ERASURE).set('a#a1', ERASURE);
    const at = new Date(BACK).toISOString();
    const event = { ...storedEvent({ type: 'identify', userId: 'u1', anonymousId: 'a1', messageId: 'back', timestamp: at, traits: { firstName: 'Rosa' } }), receivedAt: at };
    store.events.add(event.pk);
    return { store, event };
  };
  /** The exited counts the store holds, per journey. */
  const exited = (store: MemoryStore): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const c of store.journeyCounts) if (c.milestone === 'exited') out[c.journey] = (out[c.journey] ?? 0) + c.n;
    return out;
  };
  const expectedExited = (own: number, anonymous: number) =>
    Object.fromEntries([...Object.keys(runsInProgress('own-', own)), ...Object.keys(runsInProgress('anonymous-', anonymous))].map((j) => [j, 1]));

  it('150 runs of the erased user: the write that replaces its profile is preceded by writes that end them, every transaction within 100 items', () => {
    const { store, event } = erasedInRuns(150, 0);
    const plan = planOn(store, [record(event, 1)]);
    const writes = plan.targets.flatMap((t) => t.writes);
    for (const w of writes) expect(transactionItems(w)).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
    // Two writes of the erased item (99 runs ended, then the 51 left), then the fresh profile in its place.
    expect(writes.map((w) => [w.profile.key, w.profile.readVersion, w.records.length, w.journeyCounts.length])).toEqual([
      ['u#u1', 7, 0, 99],
      ['u#u1', 8, 0, 51],
      ['u#u1', 9, 1, 0],
    ]);
    expect(writes[0]!.profile.state.keyErasedAt).toBe(0);
    expect(deliver(store, [record(event, 1)])).toEqual([]);
    expect(exited(store)).toEqual(expectedExited(150, 0));
    const back = store.item('u#u1');
    expect(back?.kind === 'profile' && back.state).toMatchObject({ keyErasedAt: ERASURE, journeys: {} });
        expect(back?.kind === 'profile' && toProfileView(back.state, NOW).traits).toEqual({ firstName: 'Rosa' });
    // The erasure's last step then leaves the returning customer's profile, and counts nothing more.
    store.endErasure(['u#u1', 'a#a1'], ERASURE);
    expect(exited(store)).toEqual(expectedExited(150, 0));
  });

  it('property: whatever the runs of the erased user and visitor, and wherever the erasure deletes their profiles in the chain, each run is counted exited once and every transaction holds at most 100 items', () => {
    fc.assert(
      fc.property(fc.nat(260), fc.nat(260), fc.nat(8), (own, anonymous, endsAfter) => {
        const { store, event } = erasedInRuns(own, anonymous);
        let committed = 0;
        let ended = false;
        const endErasure = () => {
          if (!ended) store.endErasure(['u#u1', 'a#a1'], ERASURE);
          ended = true;
        };
        // The handler's loop, the erasure's last step racing it after `endsAfter` committed writes.
        let pending = [record(event, 1)];
        for (let attempt = 0; pending.length > 0; attempt++) {
          if (attempt > 10) throw new Error('contention that never ends');
          const plan = planOn(store, pending);
          const again: string[] = [];
          for (const target of plan.targets) {
            for (const [at, write] of target.writes.entries()) {
              expect(transactionItems(write)).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
              if (committed === endsAfter) endErasure();
              if (!store.commit(write)) {
                again.push(...target.writes.slice(at).flatMap((w) => w.records));
                break;
              }
              committed++;
            }
          }
          expect([...plan.failures.keys()]).toEqual([]);
          pending = pending.filter((r) => again.includes(r.id));
        }
        endErasure();
        expect(store.markers.has(event.pk)).toBe(true);
        expect(exited(store)).toEqual(expectedExited(own, anonymous));
        const back = store.item('u#u1');
        expect(back?.kind === 'profile' && back.state).toMatchObject({ keyErasedAt: ERASURE, journeys: {} });
        expect(back?.kind === 'profile' && toProfileView(back.state, NOW).traits).toEqual({ firstName: 'Rosa' });
      }),
      { numRuns: 60 },
    );
  });
});

describe('one event that sets off all a catalog allows: its write within 100 items', () => {
  const learning: PlanOptions = { ...options, settings: { ...settings, learning: { contextBy: 'persona', conversionWindowMs: DAY } } };
  const at = '2026-04-01T10:00:00.000Z';
  /** A web decision for u1 held out of `holdouts` experiments (the decision id carries at most 50). */
  const heldOut = (holdouts: number) =>
    encodeDecisionId({
      catalogVersion: '1',
      channel: 'web',
      placement: 'home',
      persona: 'p-web',
      issuedAt: new Date('2026-04-01T09:30:00Z'),
      nonce: `h${holdouts}`,
      fallback: false,
      degraded: false,
      actions: [{ actionId: 'a1', propensity: 0.5 }],
      holdouts: Array.from({ length: holdouts }, (_, i) => `exp-${i}`),
      customer: customerTag('u1'),
    });
  /** Triggers that send `n` times for the event. */
  const sending = (n: number): ProfileReactor => ({
    bound: () => n,
    react: (change) => Array.from({ length: n }, (_, i) => ({ id: `t${i}.${change.eventPk}`, status: 'now' as const, sendAt: NOW, detailType: 'Kairos Trigger Action', detail: {} })),
  });
  /** Journeys that add `n` items for the event: emissions and report counters, half each. */
  const moving = (n: number): JourneyStepper => ({
    bound: () => n,
    step: (runs, change) => ({
      runs,
      outbox: Array.from({ length: Math.ceil(n / 2) }, (_, i) => ({ id: `j${i}.${change.eventPk}`, status: 'now' as const, sendAt: NOW, detailType: 'Kairos Journey Action', detail: {} })),
      counts: Array.from({ length: Math.floor(n / 2) }, (_, i) => ({ journey: `j${i}`, day: Math.floor(NOW / DAY), milestone: { kind: 'entered' as const } })),
    }),
  });
  const items = (w: PlannedWrite): number =>
    1 + w.tombstones.length + w.markers.length + w.outbox.length + w.journeyCounts.length + new Set(w.statistics.map((i) => `${i.bucket} ${cellKey(i.cell)}`)).size;
  const controlCells = (w: PlannedWrite): number => new Set(w.statistics.filter((i) => i.cell.actionId === '').map((i) => cellKey(i.cell))).size;

  it('an outcome of a decision held out of 50 experiments, with 20 sends and 61 journey items: within 100 items, the served cell counted, the control cells that do not fit left out with a warning', () => {
    const store = new MemoryStore({ ...learning, reactor: sending(20), journeys: moving(61) });
    const click = storedEvent({ type: 'track', userId: 'u1', messageId: 'click', event: 'Promotion Clicked', timestamp: at, properties: { decision_id: heldOut(50), action_id: 'a1' } });
    const plan = planOn(store, [record(click, 0)]);
    const writes = plan.targets.flatMap((t) => t.writes);
    expect(writes).toHaveLength(1);
    expect(items(writes[0]!)).toBe(MAX_TRANSACTION_ITEMS);
    expect(writes[0]!.statistics.some((i) => i.cell.actionId === 'a1')).toBe(true);
    expect(plan.warnings.map((w) => w.message)).toEqual([expect.stringMatching(/^outcome statistics: \d+ control cell counts left out/)]);
    expect(commit(store, plan)).toEqual({ again: [], failed: [] });
  });

  it('property: whatever the catalog lets one event set off and however many experiments the decision was held out of, every write holds at most 100 items; within MAX_HOLDOUT_EXPERIMENTS every control cell counts', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 50 }),
        fc.integer({ min: 0, max: 20 }),
        fc.integer({ min: 0, max: 61 }),
        fc.constantFrom('Promotion Viewed', 'Promotion Clicked', 'Order Completed'),
        fc.boolean(),
        (holdouts, sends, journeyItems, name, linking) => {
          const store = new MemoryStore({ ...learning, reactor: sending(sends), journeys: moving(journeyItems) });
          const visit = storedEvent({ type: 'page', anonymousId: 'v1', messageId: 'visit', timestamp: '2026-04-01T09:00:00.000Z' });
          expect(linking ? commit(store, planOn(store, [record(visit, 0)])) : { again: [], failed: [] }).toEqual({ again: [], failed: [] });
          const outcome = storedEvent({
            type: 'track',
            userId: 'u1',
            ...(linking ? { anonymousId: 'v1' } : {}),
            messageId: 'outcome',
            event: name,
            timestamp: at,
            properties: { decision_id: heldOut(holdouts), action_id: 'a1' },
          });
          const plan = planOn(store, [record(outcome, 1)]);
          const writes = plan.targets.flatMap((t) => t.writes);
          for (const write of writes) expect(items(write)).toBeLessThanOrEqual(MAX_TRANSACTION_ITEMS);
          const controls = writes.reduce((n, w) => n + controlCells(w), 0);
          // Within the bound every control cell counts, with no warning; past it, at most those (what fits).
          const within = holdouts <= MAX_HOLDOUT_EXPERIMENTS;
          expect({ controls, warnings: plan.warnings.length }).toEqual(within ? { controls: holdouts, warnings: 0 } : { controls: Math.min(controls, holdouts), warnings: plan.warnings.length });
          expect(commit(store, plan)).toEqual({ again: [], failed: [] });
          // Applied once: the outcome's marker is there, a redelivery plans nothing.
          expect(planOn(store, [record(outcome, 2)]).targets).toEqual([]);
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe("what a login's reactions see does not depend on where the batch was cut", () => {
  const T1 = Date.parse('2026-04-05T10:00:00Z');
  const at = (ms: number) => new Date(ms).toISOString();
  // A welcome trigger on identify: records the email consent its decision sees.
  const reactor: ProfileReactor = {
    bound: (event) => (event.type === 'identify' ? 1 : 0),
    react: (change) => [{ id: `welcome ${change.eventPk}`, status: 'refused', sendAt: change.now, detailType: 'Test Trigger', detail: { email: change.after.consent.email?.granted ?? 'unset' } }],
  };
  it("a visitor's unsubscribe just before their login is seen by the login's trigger, in one batch as in two", () => {
    const unsubscribe = storedEvent({ type: 'track', event: 'Unsubscribed', anonymousId: 'a1', messageId: 'unsub', sourceId: 'src', timestamp: at(T1), properties: { channel: 'email' } });
    const login = storedEvent({ type: 'identify', userId: 'u1', anonymousId: 'a1', messageId: 'login', sourceId: 'src', timestamp: at(T1 + 60_000) });
    const one = new MemoryStore({ ...options, reactor });
    const two = new MemoryStore({ ...options, reactor });
    for (const store of [one, two]) for (const e of [unsubscribe, login]) store.events.add(e.pk);
    expect(deliver(one, [record(unsubscribe, 1), record(login, 2)])).toEqual([]);
    expect(deliver(two, [record(unsubscribe, 1)])).toEqual([]);
    expect(deliver(two, [record(login, 2)])).toEqual([]);
    expect(one.outbox.map((e) => e.detail)).toEqual([{ email: false }]);
    expect(two.outbox.map((e) => e.detail)).toEqual([{ email: false }]);
  });
});
