/**
 * The stored profile state: what the profile function keeps per customer so
 * that any ProfileView can be derived at any instant (`toProfileView`).
 *
 * Every field is a commutative aggregate (see counters.ts): sums, min/max,
 * last-writer-wins registers ordered by event time, top-k of times, sliding
 * window counters anchored at the newest event, and decayed sums kept in
 * log space. Applying a set of events in any order, or merging two profiles,
 * gives the same state (floats to rounding). Every collection is bounded
 * (LIMITS), so a profile stays a few tens of KB whatever its history; only
 * evictions past those bounds can depend on arrival order. The one exception
 * is `journeys`, a state machine per journey that the profile plan advances
 * event by event in the order they are applied.
 *
 * Times are epoch milliseconds; the view turns them into ISO-8601.
 */
import type { Channel } from '../channels.ts';
import type { Lww, WindowCounter } from './counters.ts';
import type { DecisionKey } from '../decide/decision-id.ts';
import type { OutcomeLearning } from '../learning/statistics.ts';
import type { JourneyRuns } from '../journeys/machine.ts';
import type { StoredEvent } from '../stored-event.ts';
import type { AttributedOutcome } from './outcomes.ts';

export const STATE_VERSION = 1;

export const LIMITS = {
  /** Traits kept (flattened keys); past it the oldest-written are dropped. */
  traits: 100,
  /** Serialized size of one trait value; larger values are not kept in the profile. */
  traitValueBytes: 1_024,
  traitKeyLength: 128,
  /** Distinct track event names counted; past it the least used is evicted. */
  eventNames: 100,
  eventNameLength: 200,
  /** Hourly buckets per event name (exact "today" in any zone). */
  eventHours: 48,
  /** Daily (UTC) buckets per event name (7 and 30 days). */
  eventDays: 35,
  /** Hourly buckets of visits: 32 days, so 30 local days are covered in any zone. */
  visitHours: 32 * 24,
  /**
   * Quarter-hour buckets of visits over the last 26 hours: "visits today" is
   * exact where local midnight falls inside an hour (+5:30, +5:45, −3:30…).
   */
  visitQuarters: 26 * 4,
  categories: 50,
  categoryLength: 100,
  actions: 50,
  actionIdLength: 128,
  /** Impression times kept per action (the basis of frequency caps). */
  actionImpressions: 20,
  /** Contact times kept per channel. */
  channelContacts: 32,
  /** Sends counted as contacts when decided (`ProfileState.sent`); past it the oldest are dropped. */
  sends: 100,
  anonymousIds: 50,
  preferenceInterests: 50,
  preferenceInterestLength: 100,
  segments: 100,
  scores: 50,
} as const;

/** Counts of one track event name. */
export interface NameCounts {
  /** All-time count. */
  n: number;
  /** Hourly window (LIMITS.eventHours). */
  h?: WindowCounter;
  /** Daily UTC window (LIMITS.eventDays). */
  d?: WindowCounter;
  /** Last time seen. */
  l: number;
}

/** Contact history of one action (from outcome events carrying decision_id/action_id). */
export interface ActionState {
  /** Impression times, newest first, bounded. */
  i: number[];
  /** Impressions, all time. */
  n: number;
  clicks: number;
  conversions: number;
  /** Latest outcome of any kind (eviction order). */
  l: number;
}

export interface ChannelState {
  delivered: number;
  engaged: number;
  lastDelivered?: number;
  lastEngaged?: number;
  /** Delivery (contact) times, newest first, bounded. */
  contacts: number[];
}

export interface Enrichment {
  segments: string[];
  persona?: string;
  scores: Record<string, number>;
  /** The catalog the enricher used (`<version>:<hash prefix>`): decide reuses the static part. */
  catalog?: string;
  /** When it was evaluated (epoch ms); equal to `updatedAt` when it describes the stored profile. */
  at?: number;
}

export interface ProfileState {
  /** Format version of this structure. */
  sv: typeof STATE_VERSION;
  userId?: string;
  /** Set on an anonymous profile. */
  anonymousId?: string;
  /** Anonymous ids merged into this profile, in merge order, bounded. */
  anonymousIds: string[];
  /**
   * The anonymous ids of this customer that were erased on their own (an
   * anonymous visitor erased, who came back): id → when it was erased
   * (epoch ms), bounded (LIMITS.anonymousIds, the newest erasures kept).
   * Recorded by the profile plan from the erasure records it reads when it
   * merges the id into a user, or applies events to the returning visitor's
   * own profile (plan.ts); joined by merges. An outcome, or any event, naming
   * a decision issued to one of them (its customer tag) at or before its
   * erasure was the erased visitor's: it counts for nothing and sets nothing
   * off (outcomes.ts `issuedBeforeErasure`). Absent: none.
   */
  erasedAnonymousIds?: Record<string, number>;
  /**
   * The erasure of this profile's own key (its erasure record's `erasedAt`,
   * epoch ms) that the profile plan had read when it started the profile;
   * 0: its key had no erasure record then. The profile holds nothing from
   * before that erasure. A profile item whose value is older than its key's
   * erasure was the erased customer's (profile-item.ts `erasedCustomersItem`):
   * the plan starts the returning customer's profile afresh in its place,
   * and the erasure deletes it; one started at or after the erasure holds
   * only the returning customer's events, and the erasure leaves it.
   * A state stored before the field existed reads as started at its
   * `updatedAt` (`parseProfileState`).
   */
  keyErasedAt: number;
  /**
   * The customer key experiments first assigned this customer under, with
   * the time of its earliest event: an event's anonymousId, else its userId;
   * the earliest wins, here and through merges, so a login or a second
   * device joined later keeps the customer's arm.
   */
  assignmentKey?: Lww<string>;
  /** Flattened trait key (`address\u001fcity` for a nested one) → LWW value. */
  traits: Record<string, Lww<unknown>>;
  /** Latest `context.timezone` seen (LWW); the trait `timezone` wins over it. */
  contextTimezone?: Lww<string>;
  firstSeen?: number;
  lastSeen?: number;
  /** Visits: all-time count, hourly window (LIMITS.visitHours), quarter-hour window (LIMITS.visitQuarters). */
  visits: { n: number; h?: WindowCounter; q?: WindowCounter };
  orders: number;
  revenue: number;
  lastPurchase?: number;
  returns: number;
  lastReturn?: number;
  complaintsOpened: number;
  complaintsResolved: number;
  /** Category → log2(Σ weight·2^(t/halfLife)), t in days since the epoch. */
  interests: Record<string, number>;
  /** The half-life (days) the interests were accumulated with; the view decays with it. */
  halfLifeDays?: number;
  consent: Partial<Record<Channel, Lww<boolean>>>;
  preferences: { interests?: Lww<string[]>; channel?: Lww<Channel> };
  events: Record<string, NameCounts>;
  actions: Record<string, ActionState>;
  channels: Partial<Record<Channel, ChannelState>>;
  /**
   * Outcomes already counted: `<decision>.<action>.<kind>` key → decision
   * time (epoch ms), bounded (shared/domain/profile/outcomes.ts).
   */
  outcomes: Record<string, number>;
  /**
   * On an anonymous profile, counted outcome key → the statistics cells its
   * count added to (shared/domain/learning/statistics.ts `countedCells`: its
   * action's cell, then its decision's control cells), for keys still in
   * `outcomes`: when a user absorbs the profile, the merge takes back from
   * the statistics what both had counted. Empty on a user profile.
   */
  outcomeCells: Record<string, string[]>;
  /**
   * Sends (trigger and journey emissions, `now` or `deferred`) counted as
   * contacts when the profile plan decided them: decision (`<issued s>.<nonce>`,
   * outcomes.ts `decisionOfOutcome`) → contact time (epoch ms), bounded
   * (LIMITS.sends, oldest dropped). The impression the sender later reports
   * for the same decision adds no second contact (apply.ts `recordSend`).
   */
  sent: Record<string, number>;
  /**
   * The customer's run in each journey they entered (journey id → run,
   * step, entered at, waiting until; shared/domain/journeys/machine.ts),
   * advanced by the profile plan with each applied event. Not an aggregate:
   * the order events are applied in is the order the journey saw them.
   */
  journeys: JourneyRuns;
  /** Derived by the enricher after each change (segments, persona, scores). */
  enrichment?: Enrichment;
  /** Processing time of the last change. */
  updatedAt?: number;
}

export interface ProfileSettings {
  /** Half-life of category interest, in days (config.KAIROS_INTEREST_HALF_LIFE_DAYS). */
  readonly halfLifeDays: number;
  /**
   * The key decision ids are sealed with (config.KAIROS_DECISION_KEY): an
   * outcome's `decision_id` is attributed only if it opens with it. Absent
   * (pure tests and tools), ids are read plain.
   */
  readonly decisionKey?: DecisionKey;
  /**
   * The catalog's learning settings outcomes are counted with (the
   * conversion window, the learning context of the statistics cells).
   * Absent: statistics.ts DEFAULT_OUTCOME_LEARNING.
   */
  readonly learning?: OutcomeLearning;
  /**
   * The newest erasure (epoch ms) of the ids an event is reported under and
   * of the profile it is applied to, or undefined when none is known: an
   * outcome of a decision issued at or before it counts for nothing
   * (outcomes.ts `attributeOutcome`), nor sets anything off (apply.ts
   * `answersErasedDecision`). The profile plan sets it from the erasure
   * records it read (plan.ts); absent: no erasure is known. The erasures of
   * the customer's merged anonymous ids are on the profile
   * (`ProfileState.erasedAnonymousIds`).
   */
  readonly erasedAt?: (event: StoredEvent) => number | undefined;
  /**
   * Told of each outcome as the profile counts it (apply.ts, once per key):
   * the profile plan adds exactly these to the statistics, so the two agree
   * whatever the profile knew of the customer when each event was applied.
   */
  readonly onCounted?: (outcome: AttributedOutcome) => void;
}

export function emptyProfileState(identity: { userId?: string; anonymousId?: string } = {}): ProfileState {
  return {
    sv: STATE_VERSION,
    ...(identity.userId !== undefined ? { userId: identity.userId } : {}),
    ...(identity.anonymousId !== undefined ? { anonymousId: identity.anonymousId } : {}),
    anonymousIds: [],
    keyErasedAt: 0,
    traits: {},
    visits: { n: 0 },
    orders: 0,
    revenue: 0,
    returns: 0,
    complaintsOpened: 0,
    complaintsResolved: 0,
    interests: {},
    consent: {},
    preferences: {},
    events: {},
    actions: {},
    channels: {},
    outcomes: {},
    outcomeCells: {},
    sent: {},
    journeys: {},
  };
}

/** Serialize for storage. */
export const serializeProfileState = (state: ProfileState): string => JSON.stringify(state);

/**
 * Parse a stored state. The state is written only by the profile function,
 * so this checks the format version and fills fields a newer writer may
 * have added defaults for, rather than validating every field.
 */
export function parseProfileState(text: string): ProfileState {
  const raw = JSON.parse(text) as Partial<ProfileState> | null;
  if (!raw || typeof raw !== 'object' || raw.sv !== STATE_VERSION) {
    throw new Error(`Unsupported profile state version: ${String((raw as { sv?: unknown } | null)?.sv)}`);
  }
  // Stored before the profile kept its key's erasure: taken as started at its last write. One written after its key's
  // erasure is the returning customer's (that erasure had deleted the erased customer's); one written before it, the erased one's.
  if (!Object.hasOwn(raw, 'keyErasedAt')) raw.keyErasedAt = typeof raw.updatedAt === 'number' ? raw.updatedAt : 0;
  // Filled in place, and only when a field is missing (a state written before the field existed):
  // the parsed object is the caller's, and a decision should not copy it.
  for (const key of DEFAULTED_KEYS) {
    if (!Object.hasOwn(raw, key)) {
      const empty = emptyProfileState() as unknown as Record<string, unknown>;
      for (const k of DEFAULTED_KEYS) if (!Object.hasOwn(raw, k)) (raw as Record<string, unknown>)[k] = empty[k];
      break;
    }
  }
  return raw as ProfileState;
}

/** The fields every state has (emptyProfileState's, without the identity). */
const DEFAULTED_KEYS: readonly string[] = Object.keys(emptyProfileState());

/** A deep copy that the apply functions may mutate. */
export const cloneProfileState = (state: ProfileState): ProfileState => structuredClone(state);
