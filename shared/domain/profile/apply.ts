/**
 * What events do to a profile (API.md §2, "What events do to a profile"):
 * `applyEvent(state, event, settings)` folds one stored event into a profile
 * state, `mergeProfiles(target, source)` joins an anonymous profile into a
 * known one. Both are pure and commutative: any order of the same events,
 * and any merge order, give the same state (floats to rounding). One
 * exception: an outcome counts only from its decision's customer as the
 * profile knows them when it is applied (outcomes.ts), so an outcome
 * reported under an id alone that is joined to that customer only later
 * counts for nothing.
 *
 * Exactly-once is not handled here: the store applies an event only if its
 * "applied" marker does not exist (shared/store/profiles.ts).
 */
import { isChannel, type Channel } from '../channels.ts';
import { CONSENT_UPDATED, consentUpdateOf, semanticName } from '../semantic-events.ts';
import type { StoredEvent } from '../stored-event.ts';
import {
  canonical,
  insertNewest,
  isSafeKey,
  log2Add,
  lwwMerge,
  lwwWins,
  maxDefined,
  minDefined,
  newestTimes,
  own,
  windowAdd,
  windowMerge,
  type Lww,
} from './counters.ts';
import {
  LIMITS,
  cloneProfileState,
  type ActionState,
  type ChannelState,
  type NameCounts,
  type ProfileSettings,
  type ProfileState,
} from './state.ts';
import {
  attributeOutcome,
  countOutcomeOnce,
  decisionOfOutcome,
  impliedImpression,
  issuedBeforeErasure,
  mergeCountedOutcomes,
  namedDecision,
  parseOutcomeKey,
  type AttributedOutcome,
} from './outcomes.ts';
import type { SendContact } from './reactions.ts';
import { DEFAULT_OUTCOME_LEARNING, countedCells } from '../learning/statistics.ts';
import { DAY_MS, dayOf, hourOf, isValidTimeZone, quarterOf } from './time.ts';
import { isTimerEvent } from '../journeys/timer.ts';
import { joinRuns } from '../journeys/machine.ts';

/** Separator of a flattened nested trait key (`address` + `city`). */
export const TRAIT_PATH_SEPARATOR = '\u001f';

/** Segment's snake_case reserved traits, stored under their camelCase name. */
const TRAIT_ALIASES: Readonly<Record<string, string>> = {
  first_name: 'firstName',
  last_name: 'lastName',
  created_at: 'createdAt',
};

/** Weight of one observation of a category in the decayed interest. */
const INTEREST_WEIGHT = { view: 1, purchase: 2 } as const;

type Props = Readonly<Record<string, unknown>>;


const text = (value: unknown, maxLength: number): string | undefined => {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed.length > 0 && trimmed.length <= maxLength && isSafeKey(trimmed) ? trimmed : undefined;
};

/** A finite number, from a number or a numeric string (Segment sends both). */
export function amount(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value === 'string' && value.trim() !== '') {
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}


const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** Event time in epoch ms; the stored event schema guarantees an ISO-8601 timestamp. */
export function eventTime(event: Pick<StoredEvent, 'timestamp'>): number {
  const at = Date.parse(event.timestamp);
  if (!Number.isFinite(at)) throw new Error(`Invalid event timestamp: ${event.timestamp}`);
  return at;
}

/** Apply events in order to a copy of the state. */
export function applyEvents(state: ProfileState, events: Iterable<StoredEvent>, settings: ProfileSettings): ProfileState {
  const draft = cloneProfileState(state);
  for (const event of events) applyInPlace(draft, event, settings);
  // The cells of the keys the bound dropped go with them (once per call: the bound drops few).
  for (const key of Object.keys(draft.outcomeCells)) if (!Object.hasOwn(draft.outcomes, key)) delete draft.outcomeCells[key];
  return draft;
}

export function applyEvent(state: ProfileState, event: StoredEvent, settings: ProfileSettings): ProfileState {
  return applyEvents(state, [event], settings);
}

/** Mutates `s`: the one place that knows what each message does. */
export function applyInPlace(s: ProfileState, event: StoredEvent, settings: ProfileSettings): void {
  const at = eventTime(event);
  // An alias only joins identities (done by the store); it is not activity. Nor is a Kairos timer (journeys/timer.ts).
  if (event.type === 'alias' || isTimerEvent(event)) return;
  const customerKey = event.anonymousId ?? event.userId;
  if (customerKey !== undefined) s.assignmentKey = earliest(s.assignmentKey, [customerKey, at]);
  s.firstSeen = minDefined(s.firstSeen, at);
  s.lastSeen = maxDefined(s.lastSeen, at);
  const contextZone = event.context?.timezone;
  if (isValidTimeZone(contextZone)) setLww(s, 'contextTimezone', [contextZone, at]);
  const props: Props = event.properties ?? {};
  switch (event.type) {
    case 'identify':
      if (event.traits) applyTraits(s, event.traits, at);
      return;
    case 'page':
    case 'screen': {
      s.visits = {
        n: s.visits.n + 1,
        h: windowAdd(s.visits.h, hourOf(at), LIMITS.visitHours),
        q: windowAdd(s.visits.q, quarterOf(at), LIMITS.visitQuarters),
      };
      const category = text(props.category, LIMITS.categoryLength);
      if (category) addInterest(s, category, INTEREST_WEIGHT.view, at, settings);
      return;
    }
    case 'track':
      if (event.event) applyTrack(s, event, event.event, props, at, settings);
      return;
    case 'group':
      return;
  }
}

function applyTrack(s: ProfileState, event: StoredEvent, name: string, props: Props, at: number, settings: ProfileSettings): void {
  countEvent(s, name, at);
  const semantic = semanticName(name);
  switch (semantic) {
    case 'product viewed': {
      const category = text(props.category, LIMITS.categoryLength);
      if (category) addInterest(s, category, INTEREST_WEIGHT.view, at, settings);
      return;
    }
    case 'order completed': {
      s.orders += 1;
      s.revenue += amount(props.revenue) ?? amount(props.total) ?? 0;
      s.lastPurchase = maxDefined(s.lastPurchase, at);
      const categories = new Set<string>();
      if (Array.isArray(props.products)) {
        for (const product of props.products.slice(0, 500)) {
          const category = isPlainObject(product) ? text(product.category, LIMITS.categoryLength) : undefined;
          if (category) categories.add(category);
        }
      }
      for (const category of [...categories].sort()) addInterest(s, category, INTEREST_WEIGHT.purchase, at, settings);
      break; // and, with a decision id, a conversion
    }
    case 'order refunded':
      s.returns += 1;
      s.lastReturn = maxDefined(s.lastReturn, at);
      return;
    case 'complaint opened':
      s.complaintsOpened += 1;
      return;
    case 'complaint resolved':
      s.complaintsResolved += 1;
      return;
    case CONSENT_UPDATED: {
      // Ingest refuses a malformed one (consentUpdateIssues); one stored before that check is skipped.
      const change = consentUpdateOf(props);
      if (change) setConsent(s, change.channel, [change.granted, at]);
      return;
    }
    case 'unsubscribed':
      setConsent(s, isChannel(props.channel) ? props.channel : 'email', [false, at]);
      return;
    case 'preferences updated': {
      if (Array.isArray(props.interests)) {
        const interests = [
          ...new Set(
            props.interests
              .map((i) => text(i, LIMITS.preferenceInterestLength))
              .filter((i): i is string => i !== undefined),
          ),
        ].slice(0, LIMITS.preferenceInterests);
        s.preferences.interests = pick(s.preferences.interests, [interests, at]);
      }
      const preferred = props.preferred_channel ?? props.preferredChannel;
      if (isChannel(preferred)) s.preferences.channel = pick(s.preferences.channel, [preferred, at]);
      return;
    }
  }
  // An outcome counts once, only for what its decision served, and only from its customer (outcomes.ts).
  const outcome = eventOutcome(event, settings, s);
  if (!outcome || Object.hasOwn(s.outcomes, outcome.key)) return;
  // A click or a conversion implies its impression: counted first, once, unless one was (outcomes.ts impliedImpression).
  const implied = impliedImpression(outcome);
  if (implied) countOutcome(s, implied, settings);
  countOutcome(s, outcome, settings);
}

/**
 * Count `outcome` on the profile unless it is counted already (outcomes.ts
 * `countOutcomeOnce`): tell `settings.onCounted` (the statistics it adds),
 * keep its cells on an anonymous profile, and record it in the contact
 * history and engagement counters.
 */
function countOutcome(s: ProfileState, outcome: AttributedOutcome, settings: ProfileSettings): void {
  if (!countOutcomeOnce(s.outcomes, outcome)) return;
  settings.onCounted?.(outcome);
  keepCountedCells(s, outcome, settings);
  const actionId = outcome.action.actionId;
  // A send counted its contact when it was decided (recordSend): its impression adds none.
  if (outcome.kind === 'impression') recordImpression(s, outcome.channel, actionId, outcome.decidedAt, !Object.hasOwn(s.sent, decisionOfOutcome(outcome.key)));
  else if (outcome.kind === 'click') recordClick(s, outcome.channel, actionId, outcome.decidedAt);
  else recordConversion(s, actionId, outcome.decidedAt);
}

/** The identities of a profile that an outcome's customer tag is matched against. */
export type ProfileIds = Pick<ProfileState, 'userId' | 'anonymousId' | 'anonymousIds' | 'assignmentKey'>;

/**
 * The ids an outcome event applied to `profile` is reported for
 * (outcomes.ts `CustomerIds`): the event's own, then the profile's user id,
 * anonymous id, experiment key and merged anonymous ids. Lazy: an event
 * that is no outcome reads none. The event's ids are the profile's: the
 * plan (plan.ts `takenBy`) applies an event without an anonymousId that
 * another profile owns, and the experiment key is set from the same ids.
 */
export function* customerIds(profile: ProfileIds, event: Pick<StoredEvent, 'userId' | 'anonymousId'>): Generator<string | undefined> {
  yield event.anonymousId;
  yield event.userId;
  yield profile.userId;
  yield profile.anonymousId;
  yield profile.assignmentKey?.[0];
  yield* profile.anonymousIds;
}

/**
 * The outcome event `event` is (outcomes.ts `attributeOutcome`, with the
 * settings the profile counts with, its erasure `settings.erasedAt`
 * included, and the erased ids `profile` keeps) when applied to `profile`,
 * whether or not it is counted yet. `profile` undefined: whatever its
 * customer (only to bound what the event may count).
 */
export function eventOutcome(
  event: StoredEvent,
  settings: ProfileSettings,
  profile: (ProfileIds & Pick<ProfileState, 'erasedAnonymousIds'>) | undefined,
): AttributedOutcome | undefined {
  if (event.type !== 'track' || !event.event) return undefined;
  const at = Date.parse(event.timestamp);
  if (!Number.isFinite(at)) return undefined;
  const customer = profile ? customerIds(profile, event) : undefined;
  return attributeOutcome(
    semanticName(event.event),
    event.properties ?? {},
    at,
    customer,
    settings.decisionKey,
    settings.learning?.conversionWindowMs,
    settings.erasedAt?.(event),
    profile?.erasedAnonymousIds,
  );
}

/**
 * Whether `event` answers a decision made for an erased customer: its
 * properties name a decision (`decision_id`, alias `decisionId`, opened with
 * `settings.decisionKey`: outcomes.ts `namedDecision`) issued at or before
 * the erasure of its customer — `settings.erasedAt` (the ids the event is
 * reported under, the profile it is applied to), or the erasure of the
 * anonymous id it was issued to that `profile` keeps
 * (`erasedAnonymousIds`, matched by the decision's customer tag). Such an
 * event (the late click on an email sent before the erasure) is kept in the
 * history, but counts no outcome and sets nothing off: no trigger, no
 * journey step (plan.ts). An event that names no decision, or one the
 * service did not issue, does not.
 */
export function answersErasedDecision(event: StoredEvent, settings: ProfileSettings, profile: Pick<ProfileState, 'erasedAnonymousIds'>): boolean {
  const props = event.properties;
  if (!props || (props.decision_id === undefined && props.decisionId === undefined)) return false;
  // No erasure known, nothing to open: the common case costs no decryption.
  const erasedAt = settings.erasedAt?.(event);
  if (erasedAt === undefined && profile.erasedAnonymousIds === undefined) return false;
  const decision = namedDecision(props, settings.decisionKey);
  return decision !== undefined && issuedBeforeErasure(decision, erasedAt, profile.erasedAnonymousIds);
}

/**
 * On an anonymous profile, keep the cells a newly counted outcome added to
 * beside its key: when a user absorbs the profile, the merge takes back
 * from them what both had counted. A user profile is never merged into
 * another, so it keeps none.
 */
function keepCountedCells(s: ProfileState, outcome: AttributedOutcome, settings: ProfileSettings): void {
  if (s.userId !== undefined) return;
  s.outcomeCells[outcome.key] = countedCells(outcome, (settings.learning ?? DEFAULT_OUTCOME_LEARNING).contextBy);
}

/** The earlier of two timed keys; on a tie, the smaller key (any order gives the same). */
const earliest = (a: Lww<string> | undefined, b: Lww<string> | undefined): Lww<string> | undefined => {
  if (!a) return b;
  if (!b) return a;
  return b[1] < a[1] || (b[1] === a[1] && b[0] < a[0]) ? b : a;
};

const pick = <T>(current: Lww<T> | undefined, candidate: Lww<T>): Lww<T> =>
  lwwWins(candidate, current) ? candidate : (current as Lww<T>);

function setLww(s: ProfileState, field: 'contextTimezone', candidate: Lww<string>): void {
  s[field] = pick(s[field], candidate);
}

/** Consent: the latest statement wins; on a tie, the withdrawal (the safe side). */
function consentWins(candidate: Lww<boolean>, current: Lww<boolean> | undefined): boolean {
  if (!current) return true;
  if (candidate[1] !== current[1]) return candidate[1] > current[1];
  return candidate[0] === false && current[0] === true;
}

function setConsent(s: ProfileState, channel: Channel, candidate: Lww<boolean>): void {
  if (consentWins(candidate, s.consent[channel])) s.consent[channel] = candidate;
}

function mergeConsent(a: Lww<boolean> | undefined, b: Lww<boolean> | undefined): Lww<boolean> | undefined {
  if (!a) return b;
  if (!b) return a;
  return consentWins(b, a) ? b : a;
}

// ---- traits ---------------------------------------------------------------

function applyTraits(s: ProfileState, traits: Props, at: number): void {
  for (const [rawKey, value] of Object.entries(traits)) {
    const key = own(TRAIT_ALIASES, rawKey) ?? rawKey;
    if (!isSafeKey(key) || key.length > LIMITS.traitKeyLength || key.includes(TRAIT_PATH_SEPARATOR)) continue;
    if (isPlainObject(value)) {
      // Nested traits (Segment's `address`) merge per field: {city} then {country} keeps both.
      for (const [sub, subValue] of Object.entries(value)) {
        if (!isSafeKey(sub) || sub.length > LIMITS.traitKeyLength || sub.includes(TRAIT_PATH_SEPARATOR)) continue;
        setTrait(s, `${key}${TRAIT_PATH_SEPARATOR}${sub}`, subValue, at);
      }
    } else {
      setTrait(s, key, value, at);
    }
  }
  boundTraits(s);
}

function setTrait(s: ProfileState, key: string, value: unknown, at: number): void {
  if (value === undefined) return;
  if (canonical(value).length > LIMITS.traitValueBytes) return;
  const current = own(s.traits, key);
  const candidate: Lww<unknown> = [value, at];
  if (lwwWins(candidate, current)) s.traits[key] = candidate;
}

/** Past the bound, the traits written longest ago go first (then by key, for determinism). */
function boundTraits(s: ProfileState): void {
  evictWhileOver(s.traits, LIMITS.traits, undefined, (a, b) => s.traits[a]![1] - s.traits[b]![1]);
}

/**
 * Delete entries while the record holds more than `limit`, the smallest by
 * `compare` (then by key) first, never `keep`. A linear scan per victim:
 * usually one entry is over.
 */
function evictWhileOver<T>(
  record: Record<string, T>,
  limit: number,
  keep: string | undefined,
  compare: (a: string, b: string) => number,
): void {
  let keys = Object.keys(record);
  while (keys.length > limit) {
    let victim: string | undefined;
    for (const key of keys) {
      if (key === keep) continue;
      if (victim === undefined) {
        victim = key;
        continue;
      }
      const order = compare(key, victim);
      if (order < 0 || (order === 0 && key < victim)) victim = key;
    }
    if (victim === undefined) return;
    delete record[victim];
    keys = keys.filter((k) => k !== victim);
  }
}

// ---- interests ------------------------------------------------------------

function addInterest(s: ProfileState, category: string, weight: number, at: number, settings: ProfileSettings): void {
  s.halfLifeDays = settings.halfLifeDays;
  const value = Math.log2(weight) + at / DAY_MS / settings.halfLifeDays;
  s.interests[category] = log2Add(own(s.interests, category), value)!;
  boundInterests(s, category);
}

/** Evict the weakest interest; decay is uniform, so the weakest now is the weakest at any time. */
function boundInterests(s: ProfileState, keep?: string): void {
  evictWhileOver(s.interests, LIMITS.categories, keep, (a, b) => s.interests[a]! - s.interests[b]!);
}

// ---- event counts ---------------------------------------------------------

function countEvent(s: ProfileState, name: string, at: number): void {
  if (!isSafeKey(name) || name.length > LIMITS.eventNameLength) return;
  const current = own(s.events, name);
  s.events[name] = {
    n: (current?.n ?? 0) + 1,
    h: windowAdd(current?.h, hourOf(at), LIMITS.eventHours),
    d: windowAdd(current?.d, dayOf(at), LIMITS.eventDays),
    l: Math.max(current?.l ?? at, at),
  };
  boundEvents(s, name);
}

/** Evict the least used names (fewest, then least recent), never the one just counted. */
function boundEvents(s: ProfileState, keep?: string): void {
  evictWhileOver(s.events, LIMITS.eventNames, keep, (a, b) => s.events[a]!.n - s.events[b]!.n || s.events[a]!.l - s.events[b]!.l);
}

// ---- outcomes -------------------------------------------------------------

function channelState(s: ProfileState, channel: Channel): ChannelState {
  let state = s.channels[channel];
  if (!state) {
    state = { delivered: 0, engaged: 0, contacts: [] };
    s.channels[channel] = state;
  }
  return state;
}

function actionState(s: ProfileState, actionId: string, at: number): ActionState {
  let state = own(s.actions, actionId);
  if (!state) {
    state = { i: [], n: 0, clicks: 0, conversions: 0, l: at };
    s.actions[actionId] = state;
  }
  state.l = Math.max(state.l, at);
  return state;
}

function recordImpression(s: ProfileState, channel: Channel, actionId: string | undefined, at: number, contact: boolean): void {
  const c = channelState(s, channel);
  c.delivered += 1;
  c.lastDelivered = maxDefined(c.lastDelivered, at);
  if (contact) c.contacts = insertNewest(c.contacts, at, LIMITS.channelContacts);
  if (actionId) {
    const a = actionState(s, actionId, at);
    a.n += 1;
    if (contact) a.i = insertNewest(a.i, at, LIMITS.actionImpressions);
    boundActions(s, actionId);
  }
}

/**
 * Count a decided send (a trigger's or a journey's, `now` or `deferred`) as
 * a contact of the customer, in place: its time joins the channel's contact
 * times and the action's impression times, the bases of channel and
 * frequency caps, and its decision joins `sent`. Once per decision: a send
 * already counted, or whose impression was already counted (it carries the
 * same decision), adds nothing. Engagement counters (delivered, impressions
 * all time) stay the reported outcomes'. True when it added the contact.
 */
export function recordSend(s: ProfileState, contact: SendContact): boolean {
  if (Object.hasOwn(s.sent, contact.decision)) return false;
  s.sent[contact.decision] = contact.at;
  evictWhileOver(s.sent, LIMITS.sends, contact.decision, (a, b) => s.sent[a]! - s.sent[b]!);
  const reported = Object.keys(s.outcomes).some((key) => {
    const parts = parseOutcomeKey(key);
    return parts.kind === 'impression' && parts.decision === contact.decision;
  });
  if (reported) return false;
  const c = channelState(s, contact.channel);
  c.contacts = insertNewest(c.contacts, contact.at, LIMITS.channelContacts);
  const a = actionState(s, contact.actionId, contact.at);
  a.i = insertNewest(a.i, contact.at, LIMITS.actionImpressions);
  boundActions(s, contact.actionId);
  return true;
}

function recordClick(s: ProfileState, channel: Channel, actionId: string | undefined, at: number): void {
  const c = channelState(s, channel);
  c.engaged += 1;
  c.lastEngaged = maxDefined(c.lastEngaged, at);
  if (actionId) {
    actionState(s, actionId, at).clicks += 1;
    boundActions(s, actionId);
  }
}

function recordConversion(s: ProfileState, actionId: string, at: number): void {
  actionState(s, actionId, at).conversions += 1;
  boundActions(s, actionId);
}

/** Keep the actions with the most recent outcomes. */
function boundActions(s: ProfileState, keep?: string): void {
  evictWhileOver(s.actions, LIMITS.actions, keep, (a, b) => s.actions[a]!.l - s.actions[b]!.l);
}

// ---- merge ----------------------------------------------------------------

function mergeRecords<T>(
  a: Readonly<Record<string, T>>,
  b: Readonly<Record<string, T>>,
  merge: (x: T, y: T) => T,
): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of Object.entries(a)) out[k] = v;
  for (const [k, v] of Object.entries(b)) {
    const existing = own(out, k);
    out[k] = existing === undefined ? v : merge(existing, v);
  }
  return out;
}

function mergeNameCounts(x: NameCounts, y: NameCounts): NameCounts {
  return {
    n: x.n + y.n,
    h: windowMerge(x.h, y.h, LIMITS.eventHours),
    d: windowMerge(x.d, y.d, LIMITS.eventDays),
    l: Math.max(x.l, y.l),
  };
}

function mergeActions(x: ActionState, y: ActionState): ActionState {
  return {
    i: newestTimes([...x.i, ...y.i], LIMITS.actionImpressions),
    n: x.n + y.n,
    clicks: x.clicks + y.clicks,
    conversions: x.conversions + y.conversions,
    l: Math.max(x.l, y.l),
  };
}

function mergeChannels(x: ChannelState, y: ChannelState): ChannelState {
  const lastDelivered = maxDefined(x.lastDelivered, y.lastDelivered);
  const lastEngaged = maxDefined(x.lastEngaged, y.lastEngaged);
  return {
    delivered: x.delivered + y.delivered,
    engaged: x.engaged + y.engaged,
    ...(lastDelivered !== undefined ? { lastDelivered } : {}),
    ...(lastEngaged !== undefined ? { lastEngaged } : {}),
    contacts: newestTimes([...x.contacts, ...y.contacts], LIMITS.channelContacts),
  };
}

const defined = <T extends object>(value: T): T =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;

/**
 * Join `source` (an anonymous profile) into `target`: the result is the
 * profile of both histories. The identity (userId) is the target's; the
 * source's anonymous id and links are recorded in `anonymousIds`.
 */
export function mergeProfiles(target: ProfileState, source: ProfileState): ProfileState {
  const linked = [...target.anonymousIds];
  for (const id of [...source.anonymousIds, ...(source.anonymousId !== undefined ? [source.anonymousId] : [])]) {
    if (!linked.includes(id) && id !== target.anonymousId) linked.push(id);
  }
  const outcomes = mergeCountedOutcomes(target.outcomes, source.outcomes);
  const merged: ProfileState = defined({
    sv: target.sv,
    userId: target.userId ?? source.userId,
    anonymousId: target.userId !== undefined ? undefined : target.anonymousId,
    anonymousIds: linked.slice(-LIMITS.anonymousIds),
    erasedAnonymousIds: mergeErasedIds(target.erasedAnonymousIds, source.erasedAnonymousIds),
    // The profile started where it is stored: the merged anonymous profile's history does not restart it.
    keyErasedAt: target.keyErasedAt,
    assignmentKey: earliest(target.assignmentKey, source.assignmentKey),
    traits: mergeRecords(target.traits, source.traits, (x, y) => lwwMerge(x, y)!),
    contextTimezone: lwwMerge(target.contextTimezone, source.contextTimezone),
    firstSeen: minDefined(target.firstSeen, source.firstSeen),
    lastSeen: maxDefined(target.lastSeen, source.lastSeen),
    visits: defined({
      n: target.visits.n + source.visits.n,
      h: windowMerge(target.visits.h, source.visits.h, LIMITS.visitHours),
      q: windowMerge(target.visits.q, source.visits.q, LIMITS.visitQuarters),
    }),
    orders: target.orders + source.orders,
    revenue: target.revenue + source.revenue,
    lastPurchase: maxDefined(target.lastPurchase, source.lastPurchase),
    returns: target.returns + source.returns,
    lastReturn: maxDefined(target.lastReturn, source.lastReturn),
    complaintsOpened: target.complaintsOpened + source.complaintsOpened,
    complaintsResolved: target.complaintsResolved + source.complaintsResolved,
    interests: mergeRecords(target.interests, source.interests, (x, y) => log2Add(x, y)!),
    halfLifeDays: target.halfLifeDays ?? source.halfLifeDays,
    consent: defined(
      Object.fromEntries(
        [...new Set([...Object.keys(target.consent), ...Object.keys(source.consent)])].map((c) => [
          c,
          mergeConsent(target.consent[c as Channel], source.consent[c as Channel]),
        ]),
      ),
    ),
    preferences: defined({
      interests: lwwMerge(target.preferences.interests, source.preferences.interests),
      channel: lwwMerge(target.preferences.channel, source.preferences.channel),
    }),
    events: mergeRecords(target.events, source.events, mergeNameCounts),
    actions: mergeRecords(target.actions, source.actions, mergeActions),
    channels: mergeRecords(
      target.channels as Record<string, ChannelState>,
      source.channels as Record<string, ChannelState>,
      mergeChannels,
    ),
    outcomes: outcomes.counted,
    outcomeCells:
      (target.userId ?? source.userId) !== undefined
        ? {}
        : Object.fromEntries(
            Object.keys(outcomes.counted).flatMap((key) => {
              const cells = own(source.outcomeCells, key) ?? own(target.outcomeCells, key);
              return cells ? [[key, [...cells]]] : [];
            }),
          ),
    sent: newestRecord({ ...source.sent, ...target.sent }, LIMITS.sends),
    // The customer's journeys go on where the identified profile is; the anonymous one's runs join only where it has
    // none, one in progress elsewhere ends (journeys/machine.ts `joinRuns`: the profile plan counts it, at the merge).
    journeys: joinRuns(target.journeys, source.journeys).runs,
    enrichment: target.enrichment,
    updatedAt: maxDefined(target.updatedAt, source.updatedAt),
  });
  for (const key of outcomes.countedTwice) takeBackCount(merged, key);
  takeBackSentTwice(merged, target, source);
  takeBackSentTwice(merged, source, target);
  boundTraits(merged);
  boundInterests(merged);
  boundEvents(merged);
  boundActions(merged);
  return merged;
}

/** The `limit` newest entries of a key → time record. */
function newestRecord(record: Readonly<Record<string, number>>, limit: number): Record<string, number> {
  const out = { ...record };
  evictWhileOver(out, limit, undefined, (a, b) => out[a]! - out[b]!);
  return out;
}

/**
 * Undo one of the two counts of an outcome both merged profiles had counted
 * (each counted it before they were joined): its counters less one, and one
 * of its two equal times (the decision's) out of the contact lists.
 */
function takeBackCount(s: ProfileState, key: string): void {
  const { kind, channel, actionId } = parseOutcomeKey(key);
  const decidedAt = s.outcomes[key];
  const dropOne = (times: readonly number[]): number[] => {
    const at = times.indexOf(decidedAt as number);
    return at === -1 ? [...times] : [...times.slice(0, at), ...times.slice(at + 1)];
  };
  const action = own(s.actions, actionId);
  if (action) {
    s.actions[actionId] =
      kind === 'impression'
        ? { ...action, n: Math.max(0, action.n - 1), i: dropOne(action.i) }
        : kind === 'click'
          ? { ...action, clicks: Math.max(0, action.clicks - 1) }
          : { ...action, conversions: Math.max(0, action.conversions - 1) };
  }
  const state = s.channels[channel];
  if (state && kind === 'impression') s.channels[channel] = { ...state, delivered: Math.max(0, state.delivered - 1), contacts: dropOne(state.contacts) };
  if (state && kind === 'click') s.channels[channel] = { ...state, engaged: Math.max(0, state.engaged - 1) };
}

/**
 * A send counted on `sender` (recordSend) whose impression `reporter`
 * counted as a contact before the two were joined: the contact was counted
 * twice, so one of its two equal times (the decision's) leaves the contact
 * lists of the merged profile `s`.
 */
function takeBackSentTwice(s: ProfileState, sender: ProfileState, reporter: ProfileState): void {
  for (const key of Object.keys(reporter.outcomes)) {
    const { kind, channel, decision, actionId } = parseOutcomeKey(key);
    if (kind !== 'impression' || !Object.hasOwn(sender.sent, decision) || Object.hasOwn(reporter.sent, decision) || Object.hasOwn(sender.outcomes, key)) continue;
    const at = reporter.outcomes[key] as number;
    const dropOne = (times: readonly number[]): number[] => {
      const i = times.indexOf(at);
      return i === -1 ? [...times] : [...times.slice(0, i), ...times.slice(i + 1)];
    };
    const action = own(s.actions, actionId);
    if (action) s.actions[actionId] = { ...action, i: dropOne(action.i) };
    const state = s.channels[channel];
    if (state) s.channels[channel] = { ...state, contacts: dropOne(state.contacts) };
  }
}

/**
 * Record an anonymous id as linked to this profile (bounded, oldest links
 * dropped first), with its erasure (`erasedAt`, epoch ms; undefined: it was
 * not erased) when it was erased on its own before (`recordErasure`).
 */
export function linkAnonymousId(state: ProfileState, anonymousId: string, erasedAt?: number): void {
  recordErasure(state, anonymousId, erasedAt);
  if (state.anonymousIds.includes(anonymousId) || anonymousId === state.anonymousId) return;
  state.anonymousIds = [...state.anonymousIds, anonymousId].slice(-LIMITS.anonymousIds);
}

/**
 * Record on `state` (in place) that the customer's anonymous id
 * `anonymousId` was erased at `erasedAt` (epoch ms; undefined: nothing to
 * record): `ProfileState.erasedAnonymousIds`, the newest erasure of an id
 * kept, LIMITS.anonymousIds ids at most (the newest erasures).
 */
export function recordErasure(state: ProfileState, anonymousId: string, erasedAt: number | undefined): void {
  if (erasedAt === undefined || (state.erasedAnonymousIds?.[anonymousId] ?? -Infinity) >= erasedAt) return;
  state.erasedAnonymousIds = mergeErasedIds(state.erasedAnonymousIds, { [anonymousId]: erasedAt });
}

/** Two records of erased ids joined: the newest erasure of each id, the LIMITS.anonymousIds newest kept; undefined when both are. */
function mergeErasedIds(a: Readonly<Record<string, number>> | undefined, b: Readonly<Record<string, number>> | undefined): Record<string, number> | undefined {
  if (a === undefined && b === undefined) return undefined;
  const out: Record<string, number> = Object.create(null);
  for (const record of [a, b]) {
    for (const [id, at] of Object.entries(record ?? {})) if (!(Object.hasOwn(out, id) && (out[id] as number) >= at)) out[id] = at;
  }
  return newestRecord(out, LIMITS.anonymousIds);
}
