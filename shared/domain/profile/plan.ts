/**
 * The exactly-once plan of a batch of stream records: where each event goes
 * and what the Profiles table must become, as a pure function of the records
 * and of what was read. The profile function reads what the plan asks for
 * (shared/store/profile-batch.ts), plans, and commits the plan's writes as
 * conditional transactions; a condition that fails (a concurrent writer)
 * makes it read again and plan the same records anew.
 *
 * For each event of the batch (several records of the same event share one
 * outcome):
 * - its identity (identity.ts): a home profile key and the anonymous ids it
 *   links to a user (identify / alias);
 * - dropped when one of its identity keys was erased at or after the event
 *   was received, or at or after the instant the event happened (its
 *   `timestamp`) (erasure records): a redelivery after an erasure, and a
 *   message a client retries or replays after it (its messageId no longer
 *   deduplicated: the erasure deleted the event), leave no trace; only what
 *   happens after the erasure starts a new profile. A message the erasure
 *   deleted is dropped too when it comes back whatever its time (its
 *   erased-message record, read only for the events of an erased key): a
 *   request replayed as it was, its `sentAt` with it, is dated on its new
 *   receipt by the skew correction. A timer (a journey's, a
 *   deferred send's) is dropped too when its profile does not exist (erased
 *   while it waited), so it does not start one, and, whenever it fires,
 *   when what set it off (its journey run's entry, its send's firing event:
 *   journeys/timer.ts `timerOrigin`) was at or before the erasure: it was
 *   the erased customer's, and does nothing to one who came back since;
 * - a duplicate when its "applied" marker exists (a redelivery);
 * - the erased customer's items that an erasure has not deleted yet (its
 *   last step: a profile started, or a tombstone merged, before its key's
 *   erasure; profile-item.ts `erasedCustomersItem`) are absent for the events
 *   applied after that erasure: the returning customer's profile is started
 *   afresh in their place (its `ProfileState.keyErasedAt`, the erasure it
 *   started after; the put conditioned on the version read), nothing of the
 *   erased customer is merged or followed (its runs in progress are counted
 *   `exited` in the journey report by the write that replaces it, as the
 *   erasure counts them; more of them than the write has room for, runs of
 *   journeys of earlier catalog versions that add up past a transaction,
 *   are ended first by writes of the erased item of their own before it in
 *   the chain, 99 counts each: `endingWrites`), and the erasure, which
 *   deletes only the erased customer's items, leaves it. So an event accepted after
 *   an erasure is applied once, on a fresh profile, whether it comes before
 *   or after the erasure's last step;
 * - else applied to its target: the home, or the user a tombstone points to;
 *   an anonymous profile that a user absorbs in this same batch sends its
 *   events to that user too; an anonymousId the target does not own (its
 *   profile was absorbed by another user) is not applied with the event, so
 *   it neither reports outcomes nor becomes the target's experiment key;
 * - an alias whose previousId is a known user's userId (a user profile, or
 *   the userId of an event before it in the batch) links nothing: two known
 *   users are never joined (one userId per profile).
 *
 * Each linked anonymous profile is merged into the first user of the batch
 * that links it, once: it becomes a tombstone in the same write, conditioned
 * on the version read, like the profile itself; a tombstone read means it
 * was merged before (into this user or another); its own journey timer
 * events of the batch that come before the event that links it fire right
 * after that event (`afterTheirLinks`: its wait's timers move its runs,
 * joined); its other events keep their place, so what the linking event's
 * reactions see does not depend on where the batch was cut. Its journey runs join the user's at the event that
 * links it (journeys/machine.ts `joinRuns`), and move on with that event
 * and the ones after it; where the user has a run
 * of a journey, the user's is kept and the anonymous one's in progress ends
 * `exited` at that event (EXIT_REASONS.merged, noted on the user's run), counted once in the
 * write's journey counts — or, when they are more than the write has room
 * for, by writes of the anonymous profile of their own before it in the
 * chain (`endingWrites`). Its pending timers then name a run the customer
 * is no longer in, and do nothing (machine.ts `sameRun`). Every write puts
 * the applied events' markers conditioned on their absence.
 *
 * Each write carries what its applied events and merges add to the outcome
 * statistics (shared/domain/learning/statistics.ts): the outcomes the profile
 * newly counts as its events are applied (told by apply.ts `onCounted`, so the
 * two always agree), less the double counts its merges take back. An outcome of a
 * decision issued at or before the newest erasure of the event's identity
 * keys or of its target (erasure records), or at or before the erasure of
 * the anonymous id it was issued to (its customer tag) among those the
 * customer's profile keeps (`ProfileState.erasedAnonymousIds`: a visitor
 * erased on their own, back and joined to a user), was made for the erased
 * customer: it counts for nothing (not on the profile, its contacts, caps
 * and the views its reactions see, nor in the statistics), and the write
 * counts it in `erasedOutcomes`; the event itself is applied like any other.
 * The store adds them in the write's own transaction, so they are added
 * exactly when the events are applied. The erasures a profile keeps are
 * those of this read: each write of an anonymous profile erased before
 * keeps its own, and a user keeps those of the anonymous ids it absorbs in
 * the batch (read as the ids their events link), from its first write of
 * the batch on; merges join them. So no read beyond the identity keys'
 * erasures is needed, in this batch or any later one.
 *
 * Each write carries the outbox entries its applied events set off
 * (reactions.ts, `options.reactor`: triggers; `options.journeys`: the
 * journeys' steps and timers), each event seen between the view just before
 * it and just after it; the store puts them in the write's own transaction
 * (a transactional outbox), so an event reacts exactly when it is applied:
 * once, whatever the redelivery. An event that names a decision issued at or
 * before its customer's erasure, by the same rules (apply.ts
 * `answersErasedDecision`: the late click on an email sent before it), sets
 * nothing off: no trigger fires, no journey moves, for the customer who came
 * back. Each send decided is a contact of the
 * customer at once (apply.ts `recordSend`): on the state the write stores,
 * and on the views the write's later reactions decide on, so channel and
 * frequency caps hold across them; those views hold the anonymous profiles
 * the write merges from the event that links them on, their sends too. The journeys' runs are folded over the
 * write's events in order and stored with the profile, and the journey
 * report's counts they make ride the same transaction.
 *
 * Writes of one target are a chain (each conditioned on the version the one
 * before writes) of at most 100 items each (DynamoDB's transaction limit,
 * statistics items included); writes of different targets touch disjoint
 * profile items (their statistics items may be the same: the store sums
 * those within a transaction).
 */
import { anonymousProfileKey, userProfileKey, type StoredEvent } from '../stored-event.ts';
import { answersErasedDecision, applyEvents, eventOutcome, eventTime, linkAnonymousId, mergeProfiles, recordErasure, recordSend } from './apply.ts';
import { DEFAULT_OUTCOME_LEARNING, cellKey, countedIncrements, mergeTakeBack, type StatisticsIncrement } from '../learning/statistics.ts';
import { boundEnrichment, type ProfileEnricher } from './enrich.ts';
import type { AppliedChange, JourneyStepper, OutboxEntry, ProfileReactor } from './reactions.ts';
import { journeyIncrements, type JourneyCounterIncrement } from '../journeys/report.ts';
import { isTimerEvent } from '../journeys/timer.ts';
import { EXIT_REASONS, erasedRunCounts, exitFailedTimerRun, inJourney, joinRuns, mergedRunCounts, type JourneyCount, type JourneyRuns, type RunEnd } from '../journeys/machine.ts';
import { happenedAt, nextRunEnding } from './erasure.ts';
import { identityOf, parseProfileKey, type EventIdentity } from './identity.ts';
import { cloneProfileState, emptyProfileState, type ProfileSettings, type ProfileState } from './state.ts';
import { erasedCustomersItem, type ProfileItem } from './profile-item.ts';
import { toProfileView } from './to-view.ts';
import type { ProfileView } from './view.ts';
import type { AttributedOutcome } from './outcomes.ts';
import { MAX_REACTIONS_PER_EVENT, MAX_REACTION_BYTES_PER_EVENT, MAX_TRANSACTION_ITEMS, storedBytes } from '../transaction-budget.ts';

/** A decoded stream record: its id (the sequence number) and its stored event. */
export interface BatchRecord {
  readonly id: string;
  readonly event: StoredEvent;
}

/** What a plan needs read, in the domain's terms (the store maps them to items). */
export interface ReadSet {
  /** Profile keys (`u#…`, `a#…`): the profile or tombstone stored there. */
  readonly profiles: readonly string[];
  /** Event pks: whether the event was applied (its marker exists). */
  readonly markers: readonly string[];
  /** Profile keys: when they were erased, if they were. */
  readonly erasures: readonly string[];
  /** Event pks: whether an erasure deleted that message (its erased-message record exists). */
  readonly erasedMessages: readonly string[];
}

/**
 * What was read. A key a map does not hold was not read; a key read and
 * found missing maps to undefined (profiles, erasures) or false (markers).
 */
export interface ReadState {
  readonly profiles: ReadonlyMap<string, ProfileItem | undefined>;
  readonly applied: ReadonlyMap<string, boolean>;
  /** Erasure instant, epoch ms. */
  readonly erasedAt: ReadonlyMap<string, number | undefined>;
  /** Event pks: whether an erasure deleted the message. */
  readonly erasedMessages: ReadonlyMap<string, boolean>;
}

export const emptyReadState = (): ReadState => ({ profiles: new Map(), applied: new Map(), erasedAt: new Map(), erasedMessages: new Map() });

/** One conditional transaction: the profile put at `readVersion + 1`, tombstones, markers. */
export interface PlannedWrite {
  readonly profile: { readonly key: string; readonly state: ProfileState; readonly readVersion: number };
  /** The user that absorbs the tombstones (undefined for an anonymous profile, which absorbs none). */
  readonly userId: string | undefined;
  /**
   * Anonymous profiles merged by this write, with the version read (0: absent) and the erasure of their key
   * the plan read (epoch ms, 0: none; profile-item.ts `StoredTombstone.keyErasedAt`).
   */
  readonly tombstones: readonly { readonly anonymousId: string; readonly readVersion: number; readonly keyErasedAt: number }[];
  /** Event pks whose markers this write puts. */
  readonly markers: readonly string[];
  /** Record ids applied by this write. */
  readonly records: readonly string[];
  /** What this write adds to the outcome statistics (negative: a merge's take-back). */
  readonly statistics: readonly StatisticsIncrement[];
  /** What its applied events set off (reactions.ts), put in its transaction, each conditioned on its absence. */
  readonly outbox: readonly OutboxEntry[];
  /** What its applied events add to the journey report (journeys/report.ts), summed per counter. */
  readonly journeyCounts: readonly JourneyCounterIncrement[];
  /**
   * Outcomes its applied events report for decisions issued at or before an
   * erasure of their customer (outcomes.ts `attributeOutcome`, `erasedAt`):
   * the erased customer's, counted for nothing.
   */
  readonly erasedOutcomes: number;
}

/**
 * The writes of one profile key, in order: each is valid only once the one
 * before has committed. A write that applies no event (no records) ends an
 * erased customer's runs in progress on its item before the write that
 * replaces that item (`endingWrites`); its profile key may then be an
 * anonymous profile the target's later write tombstones.
 */
export interface TargetPlan {
  readonly key: string;
  readonly writes: readonly PlannedWrite[];
}

export interface BatchPlan {
  readonly targets: readonly TargetPlan[];
  /** Events accepted, or that happened, before one of their identities was erased, and timers of no profile: not applied; their Events items are deleted. */
  readonly dropped: readonly { readonly eventPk: string; readonly records: readonly string[] }[];
  /** Record ids of events already applied (redeliveries). */
  readonly duplicates: readonly string[];
  /** Record ids that cannot be applied (no identity, an event the aggregate refuses), with why. */
  readonly failures: ReadonlyMap<string, Error>;
  /** Anonymous profiles merged by the writes. */
  readonly merges: number;
  /** Things worth a log line that do not hold events back (an enricher that failed). */
  readonly warnings: readonly PlanWarning[];
}

/**
 * A warning of the plan. Its message never holds a customer's key (log lines
 * are kept for months and are not erased): the profile it concerns is given
 * apart, for the caller to log by a pseudonym.
 */
export interface PlanWarning {
  readonly message: string;
  /** The profile key (`u#…`, `a#…`) it concerns, if any: never to be logged as it is. */
  readonly profileKey?: string;
}

export type PlanResult = { readonly kind: 'read'; readonly reads: ReadSet } | { readonly kind: 'plan'; readonly plan: BatchPlan };

export interface PlanOptions {
  /** How events are applied; `settings.learning` holds the catalog's learning settings outcomes are counted with. */
  readonly settings: ProfileSettings;
  /** Segments, persona and scores of a profile, stored with it. */
  readonly enricher: ProfileEnricher;
  /** The instant of the batch, epoch ms: the profiles' `updatedAt`. */
  readonly now: number;
  /** What applied events set off (triggers); absent: nothing. */
  readonly reactor?: ProfileReactor;
  /** The catalog's journeys, moved on by applied events; absent: none. */
  readonly journeys?: JourneyStepper;
}

interface Entry {
  readonly records: string[];
  readonly event: StoredEvent;
  readonly identity: EventIdentity;
}

const identityKeys = (identity: EventIdentity): string[] => [identity.home, ...identity.links.map(anonymousProfileKey)];

/** An alias's previousId when it is a link of its own (not also the event's anonymousId): the id that may be another user's userId. */
const aliasPreviousId = ({ event, identity }: Entry): string | undefined =>
  event.type === 'alias' && event.previousId !== undefined && event.previousId !== event.anonymousId && identity.links.includes(event.previousId)
    ? event.previousId
    : undefined;

/**
 * Plan a batch from what was read. Returns `{kind: 'read'}` with what is
 * still missing (call again with it added to `read`: at most twice, the
 * second time for the users that tombstones point to), else the plan.
 */
export function planBatch(records: readonly BatchRecord[], read: ReadState, options: PlanOptions): PlanResult {
  const failures = new Map<string, Error>();
  const entries: Entry[] = [];
  const byPk = new Map<string, Entry>();
  for (const record of records) {
    const seen = byPk.get(record.event.pk);
    if (seen) {
      seen.records.push(record.id);
      continue;
    }
    let identity: EventIdentity;
    try {
      identity = identityOf(record.event);
    } catch (error) {
      failures.set(record.id, error as Error);
      continue;
    }
    const entry: Entry = { records: [record.id], event: record.event, identity };
    byPk.set(record.event.pk, entry);
    entries.push(entry);
  }

  const missing = { profiles: new Set<string>(), markers: new Set<string>(), erasures: new Set<string>(), erasedMessages: new Set<string>() };
  for (const entry of entries) {
    for (const key of identityKeys(entry.identity)) {
      if (!read.profiles.has(key)) missing.profiles.add(key);
      if (!read.erasedAt.has(key)) missing.erasures.add(key);
    }
    if (!read.applied.has(entry.event.pk)) missing.markers.add(entry.event.pk);
    const previousId = aliasPreviousId(entry);
    if (previousId !== undefined && !read.profiles.has(userProfileKey(previousId))) missing.profiles.add(userProfileKey(previousId));
  }
  if (missing.profiles.size + missing.markers.size + missing.erasures.size > 0) return readMore(missing);

  // What the customer did before an erasure stays erased, however late or often its message comes back: by its time,
  // or, for an erased key's events, by the message itself (a replay's corrected timestamp is after the erasure).
  // A timer by what set it off (timer.ts `timerOrigin`): one of the erased customer's stays erased when it fires after.
  const erasedBefore = (entry: Entry): boolean => {
    const happened = happenedAt(entry.event);
    return identityKeys(entry.identity).some((key) => {
      const at = read.erasedAt.get(key);
      return at !== undefined && happened <= at;
    });
  };
  const ofErasedKey = (entry: Entry): boolean => identityKeys(entry.identity).some((key) => read.erasedAt.get(key) !== undefined);
  // The item at a key as the events to apply see it: an item of the erased customer (started, or merged, before its
  // key's erasure) that the erasure has not deleted yet is absent for them. They start the returning customer's
  // profile afresh in its place (conditioned on the version read), which the erasure then leaves.
  const stored = (key: string): ProfileItem | undefined => {
    const item = read.profiles.get(key);
    return erasedCustomersItem(item, read.erasedAt.get(key)) ? undefined : item;
  };
  // Where each event goes: its home, or the user its home was merged into (tombstones never change back).
  const resolved = (home: string): string => {
    const item = stored(home);
    return item?.kind === 'tombstone' ? userProfileKey(item.mergedInto) : home;
  };
  for (const entry of entries) {
    // An event dropped or already applied is not written: neither its erased-message record nor its target is read.
    if (erasedBefore(entry) || read.applied.get(entry.event.pk) === true) continue;
    if (ofErasedKey(entry) && !read.erasedMessages.has(entry.event.pk)) missing.erasedMessages.add(entry.event.pk);
    // Read with them, the target of an event that may be applied (one read, not two).
    const target = resolved(entry.identity.home);
    if (!read.profiles.has(target)) missing.profiles.add(target);
    // And its erasure: an outcome applied there counts nothing for a decision made before it (`newestErasure`).
    if (!read.erasedAt.has(target)) missing.erasures.add(target);
  }
  if (missing.erasedMessages.size + missing.profiles.size + missing.erasures.size > 0) return readMore(missing);

  const dropped: { eventPk: string; records: string[] }[] = [];
  const duplicates: string[] = [];
  const pending: Entry[] = [];
  for (const entry of entries) {
    if (erasedBefore(entry) || read.erasedMessages.get(entry.event.pk) === true) dropped.push({ eventPk: entry.event.pk, records: entry.records });
    else if (read.applied.get(entry.event.pk) === true) duplicates.push(...entry.records);
    else pending.push(entry);
  }

  // A timer (a journey's wait, a deferred send) acts on its customer's profile. With no profile (the customer was
  // erased while it waited) there is nothing to move on or send to: the timer is dropped, and starts no profile.
  for (let i = pending.length - 1; i >= 0; i--) {
    const entry = pending[i] as Entry;
    if (!isTimerEvent(entry.event) || stored(resolved(entry.identity.home)) !== undefined) continue;
    dropped.push({ eventPk: entry.event.pk, records: entry.records });
    pending.splice(i, 1);
  }

  // An alias never joins two known users (one userId per profile): a previousId that is a user's userId (its
  // profile read, or the userId of an event before it in this batch) links nothing, so two users known as such
  // never list each other. (A previousId that becomes a user only later stays linked: the link came first.)
  const users = new Set<string>();
  for (const [i, entry] of pending.entries()) {
    const previousId = aliasPreviousId(entry);
    if (previousId !== undefined && (stored(userProfileKey(previousId))?.kind === 'profile' || users.has(previousId))) {
      pending[i] = { ...entry, identity: { ...entry.identity, links: entry.identity.links.filter((id) => id !== previousId) } };
    }
    if (entry.identity.userId !== undefined) users.add(entry.identity.userId);
  }

  // The anonymous profiles users absorb in this batch: each by the first user that links it.
  const absorbedBy = new Map<string, string>();
  for (const entry of pending) {
    if (entry.identity.userId === undefined || entry.identity.links.length === 0 || !appliable(entry.event, options.settings)) continue;
    for (const anonymousId of entry.identity.links) {
      const key = anonymousProfileKey(anonymousId);
      if (stored(key)?.kind === 'tombstone' || absorbedBy.has(key)) continue;
      absorbedBy.set(key, entry.identity.home);
    }
  }
  // The profile an anonymous id belongs to once this batch is applied: the user absorbing it, else where its
  // own profile leads (itself, or the user its tombstone names).
  const ownerOf = (anonymousId: string): string => {
    const key = anonymousProfileKey(anonymousId);
    return absorbedBy.get(key) ?? resolved(key);
  };
  const groups = new Map<string, Entry[]>();
  for (const entry of pending) {
    const home = resolved(entry.identity.home);
    const target = absorbedBy.get(home) ?? home;
    const taken = takenBy(entry, target, ownerOf);
    const group = groups.get(target);
    if (group) group.push(taken);
    else groups.set(target, [taken]);
  }
  // An absorbed anonymous profile's own timer events that come before the event that links it fire right after that
  // event, once its journey runs (which its wait's timers move on) have joined the user's: in whichever write of the
  // chain each falls, they find the run. Its other events keep their place in the stream.
  for (const [target, group] of groups) groups.set(target, afterTheirLinks(group, target, absorbedBy));

  // An outcome reported for a decision issued at or before an erasure of its customer (the ids it is reported under,
  // or the profile it is applied to) was the erased customer's: it counts for nothing on one who came back.
  const erasures = new Map<StoredEvent, number>();
  for (const [target, group] of groups) {
    for (const entry of group) {
      const at = newestErasure([...identityKeys(entry.identity), target], read);
      if (at !== undefined) erasures.set(entry.event, at);
    }
  }
  const given = options.settings.erasedAt;
  const settings: ProfileSettings =
    erasures.size === 0 ? options.settings : { ...options.settings, erasedAt: (event) => newest(erasures.get(event), given?.(event)) };
  const planned: PlanOptions = { ...options, settings };

  const warnings: PlanWarning[] = [];
  let merges = 0;
  const targets: TargetPlan[] = [];
  for (const [key, group] of groups) {
    const current = stored(key);
    if (current?.kind === 'tombstone') {
      // Cannot happen (a user key is never a tombstone; a tombstone is followed): refuse rather than guess.
      for (const entry of group) for (const id of entry.records) failures.set(id, new Error('The profile the event is applied to is a tombstone'));
      continue;
    }
    const identity = parseProfileKey(key);
    const userId = 'userId' in identity ? identity.userId : undefined;
    // A profile started now holds nothing from before its key's erasure, if any (read with the events).
    let state: ProfileState = current?.state ?? { ...emptyProfileState(identity), keyErasedAt: read.erasedAt.get(key) ?? 0 };
    // The erasures of the customer's anonymous ids this batch read: the returning visitor's own, and those of the
    // visitors this user joins (read as the ids their events link), kept on the profile from its first write on, so
    // that an event naming a decision issued to one of them before its erasure counts nothing and sets nothing off,
    // whenever it comes and under whichever id of the customer it is reported (the decision's customer tag says whose).
    const erasedIds = customerErasures(key, absorbedBy, read);
    if (erasedIds.length > 0) {
      state = cloneProfileState(state);
      for (const [anonymousId, at] of erasedIds) recordErasure(state, anonymousId, at);
    }
    // Conditioned on the version read, the erased customer's item included (its put replaces it).
    const replaced = read.profiles.get(key);
    let version = replaced?.version ?? 0;
    // The erased customer's runs in progress end with its profile, counted `exited` as the erasure counts them
    // (machine.ts `erasedRunCounts`, at the erasure's instant): by the write that replaces it, once (the erasure then
    // leaves the fresh profile; had it deleted the item first, this write's condition fails and the plan starts over).
    let erasedRuns = current === undefined && replaced?.kind === 'profile' ? erasedCustomersRuns(replaced.state, read.erasedAt.get(key)) : [];
    // The erased customer's items the next write replaces, whose runs `erasedRuns` counts: the target's own, then the
    // anonymous profiles its tombstones replace.
    let replacedItems: RunsEndedFirst[] =
      erasedRuns.length > 0 && replaced?.kind === 'profile' ? [{ key, state: replaced.state, at: read.erasedAt.get(key) as number }] : [];
    const writes: PlannedWrite[] = [];
    const cost = (entry: Entry): number =>
      entryCost(entry, key, absorbedBy, stored, settings, options.reactor, options.journeys) + (entry === group[0] ? erasedRuns.length : 0);
    for (const chunk of chunks(group, cost)) {
      const { state: next, applied, poisoned, counted } = applyWithIsolation(state, chunk, settings);
      for (const { entry, error } of poisoned) for (const id of entry.records) failures.set(id, error);
      if (applied.length === 0) continue;
      const statistics = countedIncrements(state.outcomes, next.outcomes, counted, (settings.learning ?? DEFAULT_OUTCOME_LEARNING).contextBy);
      // Outcomes that would count but for an erasure (of their ids, their target, or the merged id they were issued to).
      const erasedOutcomes = applied.filter(
        (e) => answersErasedDecision(e.event, settings, next) && eventOutcome(e.event, options.settings, withoutErasures(next)) !== undefined,
      ).length;
      const takeBack: StatisticsIncrement[] = [];
      const before = state;
      state = next;
      const tombstones: { anonymousId: string; readVersion: number; keyErasedAt: number }[] = [];
      // What each applied event joins (in the same order as below), for the views its reactions decide on.
      const joins: Join[][] = applied.map(() => []);
      for (const [i, entry] of applied.entries()) {
        for (const anonymousId of entry.identity.links) {
          const anonymousKey = anonymousProfileKey(anonymousId);
          if (absorbedBy.get(anonymousKey) !== key || tombstones.some((t) => t.anonymousId === anonymousId)) continue;
          if (writes.some((w) => w.tombstones.some((t) => t.anonymousId === anonymousId))) continue;
          // The erased customer's anonymous profile is not merged (nor is its tombstone followed): it is absent, its runs
          // in progress counted `exited` by the write whose tombstone replaces it.
          const anonymous = stored(anonymousKey);
          const replacedAnonymous = read.profiles.get(anonymousKey);
          if (anonymous === undefined && replacedAnonymous?.kind === 'profile') {
            const runs = erasedCustomersRuns(replacedAnonymous.state, read.erasedAt.get(anonymousKey));
            erasedRuns = [...erasedRuns, ...runs];
            if (runs.length > 0) replacedItems.push({ key: anonymousKey, state: replacedAnonymous.state, at: read.erasedAt.get(anonymousKey) as number });
          }
          if (anonymous?.kind === 'profile') {
            takeBack.push(...mergeTakeBack(state.outcomes, anonymous.state));
            // A merge shares parts with its inputs, and the write's sends are recorded on its state in place: a copy
            // keeps what was read as it was read (the views of this write's reactions merge it again).
            state = mergeProfiles(state, cloneProfileState(anonymous.state));
          }
          linkAnonymousId(state, anonymousId, read.erasedAt.get(anonymousKey));
          tombstones.push({ anonymousId, readVersion: read.profiles.get(anonymousKey)?.version ?? 0, keyErasedAt: read.erasedAt.get(anonymousKey) ?? 0 });
          joins[i]!.push({ anonymousId, state: anonymous?.kind === 'profile' ? anonymous.state : undefined });
        }
      }
      const enrich = (target: ProfileState): void => {
        try {
          target.enrichment = boundEnrichment(options.enricher(toProfileView(target, options.now), new Date(options.now)));
        } catch (error) {
          // Derived data only: keep the previous enrichment rather than hold the customer's events back.
          warnings.push({ message: `profile enricher failed; previous enrichment kept: ${(error as Error).message}`, profileKey: key });
        }
      };
      enrich(state);
      state.updatedAt = options.now;
      merges += tombstones.length;
      const reacted = reactions(key, before, applied, joins, state, planned, warnings);
      // The sends' contacts are on the state now: what is derived from it follows.
      if (reacted.contacts > 0) enrich(state);
      const outbox = reacted.outbox;
      if (reacted.runs) state.journeys = { ...state.journeys, ...reacted.runs };
      const mergedCounts = reacted.merged.flatMap((m) => m.counts);
      let journeyCounts = journeyIncrements([...reacted.counts, ...mergedCounts, ...erasedRuns]);
      // The erased customer's runs in progress, and the runs of the anonymous profiles merged here that the merge drops,
      // more than this transaction has room for (runs of journeys of earlier catalog versions add up): ended first by
      // writes of their items of their own, each with its share of the counts, in the chain before this one, so this
      // write counts none of them (erasure.ts `nextRunEnding`). A merged profile's runs end as the merge ends them (at
      // its time, with its reason), so the runs this write stores are the same.
      const statisticsItems = new Set(statistics.map(statisticsItemOf)).size;
      const endedFirst: RunsEndedFirst[] = [
        ...replacedItems,
        ...reacted.merged.map((m) => ({ key: anonymousProfileKey(m.anonymousId), state: m.state, at: m.at, end: { reason: EXIT_REASONS.merged(), only: m.journeys } })),
      ];
      if (endedFirst.length > 0 && 1 + applied.length + tombstones.length + outbox.length + journeyCounts.length + statisticsItems > MAX_TRANSACTION_ITEMS) {
        for (const item of endedFirst) {
          const readVersion = (): number => (item.key === key ? version : (tombstones.find((t) => anonymousProfileKey(t.anonymousId) === item.key)?.readVersion ?? 0));
          for (const ending of endingWrites(item, readVersion(), userId)) {
            writes.push(ending);
            if (item.key === key) version += 1;
            else {
              const i = tombstones.findIndex((t) => anonymousProfileKey(t.anonymousId) === item.key);
              tombstones[i] = { ...(tombstones[i] as (typeof tombstones)[number]), readVersion: (tombstones[i]?.readVersion ?? 0) + 1 };
            }
          }
        }
        journeyCounts = journeyIncrements(reacted.counts);
      }
      erasedRuns = [];
      replacedItems = [];
      const room = MAX_TRANSACTION_ITEMS - 1 - applied.length - tombstones.length - outbox.length - journeyCounts.length;
      const { kept, countedLeft, takeBackLeft } = fitStatistics(statistics, takeBack, room);
      if (takeBackLeft > 0) {
        warnings.push({
          message: `outcome statistics: a merge's take-back exceeds a transaction; ${takeBackLeft} of its double counts stay`,
          profileKey: key,
        });
      }
      if (countedLeft > 0) {
        warnings.push({
          message: `outcome statistics: ${countedLeft} control cell counts left out, of a decision held out of more experiments than a transaction holds (a catalog published before MAX_HOLDOUT_EXPERIMENTS)`,
          profileKey: key,
        });
      }
      writes.push({
        profile: { key, state, readVersion: version },
        userId,
        tombstones,
        markers: applied.map((e) => e.event.pk),
        records: applied.flatMap((e) => e.records),
        statistics: kept,
        outbox,
        journeyCounts,
        erasedOutcomes,
      });
      version += 1;
    }
    if (writes.length > 0) targets.push({ key, writes });
  }
  return { kind: 'plan', plan: { targets, dropped, duplicates, failures, merges, warnings } };
}

/**
 * The erasures this batch read of the anonymous ids of the customer at
 * `key`: its own when it is an anonymous profile (a visitor erased who came
 * back), and those of the anonymous profiles it absorbs in this batch (read
 * with the events that link them): [anonymous id, erasure epoch ms].
 */
function customerErasures(key: string, absorbedBy: ReadonlyMap<string, string>, read: ReadState): [string, number][] {
  const ids = [key, ...[...absorbedBy].filter(([, owner]) => owner === key).map(([anonymousKey]) => anonymousKey)];
  return ids.flatMap((profileKey): [string, number][] => {
    const identity = parseProfileKey(profileKey);
    const at = read.erasedAt.get(profileKey);
    return 'anonymousId' in identity && at !== undefined ? [[identity.anonymousId, at]] : [];
  });
}

/**
 * A profile item as read whose runs in progress a write ends before it
 * replaces it: an erased customer's (by the returning customer's profile, or
 * by a tombstone), every run ended at its key's erasure; or an anonymous
 * profile the write merges, the runs the merge drops (`end.only`) ended at
 * the merge with its reason (machine.ts `joinRuns`).
 */
interface RunsEndedFirst {
  readonly key: string;
  readonly state: ProfileState;
  /** When its runs end: its key's erasure, or the merge, epoch ms. */
  readonly at: number;
  /** Which runs end, and why (absent: every run in progress, as erased). */
  readonly end?: RunEnd;
}

/**
 * The writes that end `item`'s runs in progress before the write that
 * replaces it: each puts the item again (conditioned on the version before
 * it, from `readVersion` on) with up to 99 more of its runs ended `exited`
 * (erasure.ts `nextRunEnding`, the erasure's own share), and carries their
 * counts; none applies an event. An erased customer's item stays the erased
 * customer's (its `keyErasedAt` is kept), for the replacing write, or the
 * erasure, to replace or delete with no run left to count; a merged one
 * has none of the runs its merge drops left in progress.
 */
function endingWrites(item: RunsEndedFirst, readVersion: number, userId: string | undefined): PlannedWrite[] {
  const writes: PlannedWrite[] = [];
  let version = readVersion;
  for (let ending = nextRunEnding(item.state, item.at, 0, item.end); ending !== undefined; ending = nextRunEnding(ending.state, item.at, 0, item.end)) {
    writes.push({
      profile: { key: item.key, state: ending.state, readVersion: version++ },
      userId,
      tombstones: [],
      markers: [],
      records: [],
      statistics: [],
      outbox: [],
      journeyCounts: journeyIncrements(ending.counts),
      erasedOutcomes: 0,
    });
  }
  return writes;
}

/** The journey report's counts of the erased customer's profile `state` replaced after its erasure at `erasedAt` (machine.ts `erasedRunCounts`). */
const erasedCustomersRuns = (state: ProfileState, erasedAt: number | undefined): JourneyCount[] =>
  erasedAt === undefined ? [] : erasedRunCounts(state.journeys, erasedAt);

/** The ids of a profile, without the erasures it keeps: what an outcome would count for were none of its ids erased. */
const withoutErasures = ({ userId, anonymousId, anonymousIds, assignmentKey }: ProfileState) => ({ userId, anonymousId, anonymousIds, assignmentKey });

const newest = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined ? b : b === undefined ? a : Math.max(a, b));

/** The newest erasure of `keys` (profile keys) that `read` holds, epoch ms; undefined: none of them was erased. */
function newestErasure(keys: readonly string[], read: ReadState): number | undefined {
  let at: number | undefined;
  for (const key of keys) at = newest(at, read.erasedAt.get(key));
  return at;
}

function readMore(missing: { profiles: Set<string>; markers: Set<string>; erasures: Set<string>; erasedMessages: Set<string> }): PlanResult {
  return {
    kind: 'read',
    reads: { profiles: [...missing.profiles], markers: [...missing.markers], erasures: [...missing.erasures], erasedMessages: [...missing.erasedMessages] },
  };
}

/**
 * The entry as `target` applies it: an event whose anonymousId belongs to
 * another profile (one that another user absorbed, or absorbs in this batch)
 * is applied without it. Ids on an event are not authenticated, so only an
 * id the target owns (profile/apply.ts `customerIds`: an outcome's customer;
 * the experiment key the profile keeps) may speak for it; anyone can send
 * someone else's anonymousId beside a userId of their own.
 */
function takenBy(entry: Entry, target: string, ownerOf: (anonymousId: string) => string): Entry {
  const { anonymousId, ...rest } = entry.event;
  if (anonymousId === undefined || ownerOf(anonymousId) === target) return entry;
  return { ...entry, event: rest };
}

/**
 * `group` (the entries applied to `target`, in order) with the journey
 * timer entries of each anonymous profile `target` absorbs (`absorbedBy`)
 * that come before the first entry linking it moved to right after that
 * entry, in their order; the rest keep theirs.
 */
function afterTheirLinks(group: readonly Entry[], target: string, absorbedBy: ReadonlyMap<string, string>): Entry[] {
  const out: Entry[] = [];
  const waiting = new Map<string, Entry[]>();
  const linked = new Set<string>();
  for (const entry of group) {
    const home = entry.identity.home;
    // Timer events only: any other event of the visitor keeps its place in the stream, so what the login's reactions
    // see (a consent withdrawn just before it, a segment entered) does not depend on where the batch was cut.
    if (isTimerEvent(entry.event) && absorbedBy.get(home) === target && !linked.has(home)) {
      const held = waiting.get(home);
      if (held) held.push(entry);
      else waiting.set(home, [entry]);
      continue;
    }
    out.push(entry);
    for (const anonymousId of entry.identity.links) {
      const key = anonymousProfileKey(anonymousId);
      if (absorbedBy.get(key) !== target || linked.has(key)) continue;
      linked.add(key);
      out.push(...(waiting.get(key) ?? []));
      waiting.delete(key);
    }
  }
  for (const entries of waiting.values()) out.push(...entries);
  return out;
}

/** Whether the aggregate accepts the event at all (a poison event links nothing). */
function appliable(event: StoredEvent, settings: ProfileSettings): boolean {
  try {
    applyEvents(emptyProfileState(), [event], settings);
    return true;
  } catch {
    return false;
  }
}

/**
 * The most items an entry can add to its write: its marker, the tombstones
 * of the anonymous profiles it links here, the statistics cells its outcome
 * may add to, and those the merges may take back from (at most each cell the
 * anonymous profile keeps), and the `exited` counters of the runs the merges
 * may drop (at most each run in progress the anonymous profile has).
 * Bounded so an entry alone always fits; past it `fitStatistics` keeps the
 * write within the limit, and the runs a merge drops past it are ended by
 * writes of their own before it (`endingWrites`).
 */
function entryCost(
  entry: Entry,
  target: string,
  absorbedBy: ReadonlyMap<string, string>,
  stored: (key: string) => ProfileItem | undefined,
  settings: ProfileSettings,
  reactor: ProfileReactor | undefined,
  journeys: JourneyStepper | undefined,
): number {
  let cost = 1 + entry.identity.links.length + reactionBound(reactor, entry.event) + journeyItemBound(journeys, entry.event);
  const outcome = eventOutcome(entry.event, settings, undefined);
  if (outcome) cost += 1 + outcome.decision.holdouts.length;
  for (const anonymousId of entry.identity.links) {
    const anonymousKey = anonymousProfileKey(anonymousId);
    const anonymous = stored(anonymousKey);
    if (absorbedBy.get(anonymousKey) !== target || anonymous?.kind !== 'profile') continue;
    for (const cells of Object.values(anonymous.state.outcomeCells)) cost += cells.length;
    // Each of its runs in progress may be dropped by the merge (machine.ts `joinRuns`): one `exited` counter each.
    const runs = anonymous.state.journeys;
    cost += Object.keys(runs).filter((journey) => inJourney(runs, journey)).length;
  }
  return Math.min(cost, MAX_TRANSACTION_ITEMS - 1);
}

/** The outbox entries an event may add: the reactor's bound, within [0, MAX_REACTIONS_PER_EVENT]. */
function reactionBound(reactor: ProfileReactor | undefined, event: StoredEvent): number {
  if (!reactor) return 0;
  const bound = reactor.bound(event);
  return Number.isFinite(bound) ? Math.min(Math.max(0, Math.floor(bound)), MAX_REACTIONS_PER_EVENT) : MAX_REACTIONS_PER_EVENT;
}


/** The items an event may add through the journeys: the stepper's bound (the catalog keeps it within 60). */
function journeyItemBound(journeys: JourneyStepper | undefined, event: StoredEvent): number {
  if (!journeys) return 0;
  const bound = journeys.bound(event);
  return Number.isFinite(bound) ? Math.max(0, Math.floor(bound)) : MAX_TRANSACTION_ITEMS;
}

/** An anonymous profile a write merges into its user: its id, and what was stored there (undefined: nothing). */
interface Join {
  readonly anonymousId: string;
  readonly state: ProfileState | undefined;
}

/** `state` with `joins` merged into it and linked, as the plan merges them: a copy of its own (a merge shares parts with its inputs). */
function joinedState(state: ProfileState, joins: readonly Join[]): ProfileState {
  let out = cloneProfileState(state);
  for (const join of joins) {
    if (join.state) out = mergeProfiles(out, join.state);
    linkAnonymousId(out, join.anonymousId);
  }
  return cloneProfileState(out);
}

/**
 * The reactions of a write's applied events, in order: each event between
 * the view just before it (the one before the write for the first) and just
 * after it (the write's final state, merges included, for the last), both
 * enriched at the batch instant. The anonymous profiles an event joins
 * (`joins`, per applied event: the id, and its profile if it had one) are
 * in the views from that event on, as they are in the final state, so the
 * contacts of a visitor's sends count toward the caps of what the write
 * decides after the login that joins them. The triggers' entries (`options.reactor`),
 * and the journeys (`options.journeys`) folded from the runs stored before
 * the write: the runs they end with (undefined: no journey moved), their
 * entries and their report counts. A reactor that throws, or returns more
 * than its bound, loses its excess with a warning: derived data never holds
 * the customer's events back; a journey step that throws leaves the runs as
 * they were for that event. What one event's reactions write is held to
 * MAX_REACTION_BYTES_PER_EVENT (their entries' `detail`s, `storedBytes`), so
 * that the event's write fits DynamoDB's 4 MB: the triggers' entries that
 * fit are kept in order and the rest left out, and journeys whose entries
 * do not fit in what is left stay where they were for that event (a run
 * never moves without its sends and timers), each with a warning. Except
 * the run a wait's timer would have moved on (the timer is spent with its
 * event, so it would stay in progress with no timer left): it ends
 * `exited`, with the reason on the run and its count in the report
 * (machine.ts `exitFailedTimerRun`).
 *
 * Each send decided (an entry with a `contact`) counts as a contact at once
 * (apply.ts `recordSend`): on `final` (in place: the write stores it) and on
 * the state every later reaction of the write sees (the journeys of the
 * same event, the next events), so a cap holds across them; `contacts` is
 * how many it added.
 */
function reactions(
  key: string,
  start: ProfileState,
  applied: readonly Entry[],
  joins: readonly (readonly Join[])[],
  final: ProfileState,
  options: PlanOptions,
  warnings: PlanWarning[],
): { outbox: OutboxEntry[]; runs: ProfileState['journeys'] | undefined; counts: JourneyCount[]; merged: MergedRuns[]; contacts: number } {
  const { reactor, journeys } = options;
  const bounds = applied.map((entry) => reactionBound(reactor, entry.event));
  const journeyBounds = applied.map((entry) => journeyItemBound(journeys, entry.event));
  const out: OutboxEntry[] = [];
  const counts: JourneyCount[] = [];
  const merged: MergedRuns[] = [];
  let contacts = 0;
  // The runs of the anonymous profiles event `i` joins, joined into `runs` at that event (machine.ts `joinRuns`): the
  // customer's runs from then on, moved on by it and the events after it (the anonymous profile's own events of the
  // batch come after it: `afterTheirLinks`); an anonymous run in progress of a journey the customer has a run of ends
  // there, at its time.
  const joinAt = (runs: JourneyRuns, i: number): JourneyRuns => {
    let out = runs;
    for (const join of joins[i] ?? []) {
      if (join.state === undefined) continue;
      const at = eventTime((applied[i] as Entry).event);
      const joined = joinRuns(out, join.state.journeys, at);
      out = joined.runs;
      if (joined.dropped.length > 0) merged.push({ anonymousId: join.anonymousId, state: join.state, journeys: joined.dropped, at, counts: mergedRunCounts(joined.dropped, at) });
    }
    return out;
  };
  if (bounds.every((b) => b === 0) && journeyBounds.every((b) => b === 0)) {
    let runs = start.journeys;
    for (let i = 0; i < applied.length; i++) runs = joinAt(runs, i);
    return { outbox: out, runs: runs === start.journeys ? undefined : runs, counts, merged, contacts };
  }
  const enriched = (state: ProfileState): ProfileView => {
    const view = toProfileView(state, options.now);
    try {
      const e = boundEnrichment(options.enricher(view, new Date(options.now)));
      return { ...view, segments: e.segments, scores: e.scores, ...(e.persona !== undefined ? { persona: e.persona } : { persona: undefined }) };
    } catch {
      return view;
    }
  };
  // The write's events so far, applied as the plan applies them (before its merges), with their sends;
  // `state`, that joined with the profiles they link: the customer after the event.
  let applying = start;
  let state = start;
  const joined: Join[] = [];
  let before = enriched(start);
  let runs = start.journeys;
  applied.forEach((entry, i) => {
    const last = i === applied.length - 1;
    joined.push(...(joins[i] ?? []));
    if (!last) {
      applying = applyEvents(applying, [entry.event], options.settings);
      state = joined.length === 0 ? applying : joinedState(applying, joined);
    }
    // The state after this event (a copy this function owns, or the write's own final state), its sends so far included.
    const current = last ? final : state;
    const viewAfter = (): ProfileView => (last ? toProfileView(final, options.now) : enriched(state));
    let change: AppliedChange = { eventPk: entry.event.pk, event: entry.event, profileKey: key, before, after: viewAfter(), now: options.now };
    const count = (entries: readonly OutboxEntry[]): void => {
      let added = 0;
      for (const e of entries) {
        if (!e.contact) continue;
        if (!last && recordSend(final, e.contact)) contacts++;
        if (!last && state !== applying) recordSend(applying, e.contact);
        if (recordSend(current, e.contact)) added++;
      }
      if (last) contacts += added;
      if (added > 0) change = { ...change, after: viewAfter() };
    };
    // An event answering a decision made for an erased customer (the late click on an email sent before the
    // erasure) is applied, and counts nothing; nor does it set anything off for the customer who came back.
    const silenced = (bounds[i] as number) + (journeyBounds[i] as number) > 0 && answersErasedDecision(entry.event, options.settings, final);
    runs = joinAt(runs, i);
    const bound = silenced ? 0 : (bounds[i] as number);
    // The bytes this event's entries write so far, within MAX_REACTION_BYTES_PER_EVENT.
    let bytes = 0;
    if (reactor && bound > 0) {
      try {
        const set = reactor.react(change);
        if (set.length > bound) warnings.push({ message: `reactions of event ${entry.event.pk}: ${set.length - bound} beyond its bound of ${bound} dropped`, profileKey: key });
        const kept = set.slice(0, bound).filter((e) => {
          const size = storedBytes(e.detail);
          if (bytes + size > MAX_REACTION_BYTES_PER_EVENT) return false;
          bytes += size;
          return true;
        });
        const over = Math.min(set.length, bound) - kept.length;
        if (over > 0) {
          warnings.push({
            message: `reactions of event ${entry.event.pk}: ${over} past the ${MAX_REACTION_BYTES_PER_EVENT} bytes one event's reactions may write dropped (their rendered content is too large together)`,
            profileKey: key,
          });
        }
        out.push(...kept);
        count(kept);
      } catch (error) {
        warnings.push({ message: `reactions of event ${entry.event.pk} failed; none written: ${(error as Error).message}`, profileKey: key });
      }
    }
    if (journeys && !silenced && (journeyBounds[i] as number) > 0) {
      try {
        const stepped = journeys.step(runs, change);
        const size = stepped.outbox.reduce((sum, e) => sum + storedBytes(e.detail), 0);
        if (bytes + size > MAX_REACTION_BYTES_PER_EVENT) {
          throw new Error(`their ${stepped.outbox.length} emissions (${size} bytes) pass what is left of the ${MAX_REACTION_BYTES_PER_EVENT} bytes one event's reactions may write`);
        }
        bytes += size;
        runs = stepped.runs;
        out.push(...stepped.outbox);
        counts.push(...stepped.counts);
        count(stepped.outbox);
      } catch (error) {
        // A wait's timer is spent with its event: the run it would have moved on cannot stay waiting with no timer
        // left. It ends exited, with its reason and its count (within the event's bound: the count replaces what
        // the step would have written); the other runs stay where they were.
        const cause = (error as Error).message;
        const exit = exitFailedTimerRun(runs, entry.event, eventTime(entry.event), cause);
        if (exit) {
          runs = exit.runs;
          counts.push(exit.count);
          warnings.push({ message: `journeys of event ${entry.event.pk} failed; the run of journey ${exit.count.journey} its timer would have moved on exited: ${cause}`, profileKey: key });
        } else {
          warnings.push({ message: `journeys of event ${entry.event.pk} failed; they stay where they were: ${cause}`, profileKey: key });
        }
      }
    }
    before = change.after;
  });
  return { outbox: out, runs: runs === start.journeys ? undefined : runs, counts, merged, contacts };
}

/**
 * The runs of an anonymous profile a write's merge drops (machine.ts
 * `joinRuns`: the customer has a run of the same journey on the profile
 * it merges into): the anonymous profile as read, the journeys of the runs
 * dropped, the merge's time (the time of the event that joins it, epoch
 * ms) and their `exited` counts (`mergedRunCounts`).
 */
interface MergedRuns {
  readonly anonymousId: string;
  readonly state: ProfileState;
  readonly journeys: readonly string[];
  readonly at: number;
  readonly counts: readonly JourneyCount[];
}

/** The statistics item an increment falls on within one write (one shard): its bucket and cell. */
const statisticsItemOf = (increment: StatisticsIncrement): string => `${increment.bucket} ${cellKey(increment.cell)}`;

/**
 * The increments of a write that fit `room` statistics items (an increment
 * on an item already kept costs nothing more): the counted ones first, their
 * served actions' cells before their control cells, then as much of a
 * merge's take-back as fits. The counted ones fit (`entryCost` counts them)
 * unless a decision was held out of more experiments than any catalog may
 * now hold (MAX_HOLDOUT_EXPERIMENTS, checked at publish; decisions of a
 * catalog published before it): the control cells that do not fit are left
 * out (`countedLeft`) rather than a transaction DynamoDB refuses, and the
 * take-back that does not fit (`takeBackLeft`). In their given order.
 */
function fitStatistics(
  counted: readonly StatisticsIncrement[],
  takeBack: readonly StatisticsIncrement[],
  room: number,
): { kept: StatisticsIncrement[]; countedLeft: number; takeBackLeft: number } {
  const items = new Set<string>();
  const fits = (increment: StatisticsIncrement): boolean => {
    const item = statisticsItemOf(increment);
    if (items.has(item)) return true;
    if (items.size >= Math.max(room, 0)) return false;
    items.add(item);
    return true;
  };
  const served = counted.filter((increment) => increment.cell.actionId !== '');
  const controls = counted.filter((increment) => increment.cell.actionId === '');
  const left = new Set<StatisticsIncrement>([...served, ...controls, ...takeBack].filter((increment) => !fits(increment)));
  return {
    kept: [...counted, ...takeBack].filter((increment) => !left.has(increment)),
    countedLeft: counted.filter((increment) => left.has(increment)).length,
    takeBackLeft: takeBack.filter((increment) => left.has(increment)).length,
  };
}

/** Split a target's events so each write fits a transaction: profile + markers + tombstones + statistics ≤ 100 items. */
function chunks(group: readonly Entry[], costOf: (entry: Entry) => number): Entry[][] {
  const out: Entry[][] = [];
  let current: Entry[] = [];
  let size = 1;
  for (const entry of group) {
    const cost = costOf(entry);
    if (current.length > 0 && size + cost > MAX_TRANSACTION_ITEMS) {
      out.push(current);
      current = [];
      size = 1;
    }
    current.push(entry);
    size += cost;
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Apply the events (a copy of the state); when one throws, apply them one by one and set the poison aside. */
function applyWithIsolation(
  state: ProfileState,
  entries: readonly Entry[],
  settings: ProfileSettings,
): { state: ProfileState; applied: Entry[]; poisoned: { entry: Entry; error: Error }[]; counted: AttributedOutcome[] } {
  // The outcomes the profile counts as the events are applied (apply.ts `onCounted`): what the statistics add.
  let counted: AttributedOutcome[] = [];
  const counting: ProfileSettings = { ...settings, onCounted: (outcome) => counted.push(outcome) };
  try {
    return { state: applyEvents(state, entries.map((e) => e.event), counting), applied: [...entries], poisoned: [], counted };
  } catch {
    counted = [];
    const applied: Entry[] = [];
    const poisoned: { entry: Entry; error: Error }[] = [];
    let next = state;
    for (const entry of entries) {
      const mark = counted.length;
      try {
        next = applyEvents(next, [entry.event], counting);
        applied.push(entry);
      } catch (error) {
        counted.length = mark;
        poisoned.push({ entry, error: error as Error });
      }
    }
    return { state: next, applied, poisoned, counted };
  }
}
