/**
 * The profile as every reader sees it (API.md §3): the admin route returns
 * it, CEL rules read it as `profile`, decide ranks on it. It is derived from
 * the stored profile state at a given instant (`toProfileView(state, now)`),
 * because "visits today" depends on when you ask.
 *
 * All timestamps are ISO-8601 strings in UTC.
 */
import type { Channel } from '../channels.ts';

export interface ConsentState {
  readonly granted: boolean;
  /** When the customer gave or withdrew it (event time). */
  readonly updatedAt: string;
}

export interface Preferences {
  /** What the customer told us they like (zero-party data). */
  readonly interests: readonly string[];
  readonly preferredChannel?: Channel;
  readonly updatedAt?: string;
}

export interface EventCount {
  readonly today: number;
  readonly last7d: number;
  readonly last30d: number;
  readonly total: number;
}

export interface ProfileStats {
  readonly visitsToday: number;
  readonly visits7d: number;
  readonly visits30d: number;
  readonly visitsTotal: number;
  readonly firstSeenAt?: string;
  readonly lastSeenAt?: string;
  readonly orders: number;
  readonly revenue: number;
  readonly lastPurchaseAt?: string;
  readonly returns: number;
  readonly lastReturnAt?: string;
  readonly openComplaints: number;
  /** Decayed interest per category at the instant of the view (half-life configurable). */
  readonly categoryInterests: Readonly<Record<string, number>>;
  /** Counts per event name (track events), bounded to the most frequent names. */
  readonly eventCounts: Readonly<Record<string, EventCount>>;
}

/** How the customer engages with a channel, from outcome events. */
export interface ChannelEngagement {
  /** Delivered / shown (impressions). */
  readonly delivered: number;
  /** Opened / tapped / clicked. */
  readonly engaged: number;
  /** engaged / delivered, 0 when nothing was delivered. */
  readonly rate: number;
  readonly lastDeliveredAt?: string;
  readonly lastEngagedAt?: string;
}

/** Contact history for one action: the basis of frequency caps and attribution. */
export interface ActionContacts {
  /** Impression times, newest first, bounded (enough for the longest cap window). */
  readonly impressions: readonly string[];
  readonly clicks: number;
  readonly conversions: number;
  readonly lastImpressionAt?: string;
}

/** Where a profile's time zone came from; `none` means the customer's zone is not known. */
export type TimezoneSource = 'trait' | 'event context' | 'none';

export interface ProfileView {
  /** Known customer id, absent for an anonymous profile. */
  readonly userId?: string;
  /** For an anonymous profile, its anonymousId. */
  readonly anonymousId?: string;
  /** Anonymous ids linked (merged) into this profile. */
  readonly anonymousIds: readonly string[];
  /** The key experiments assign this customer by: the first it was known by, kept through logins and merges. */
  readonly experimentKey?: string;
  readonly identified: boolean;
  readonly traits: Readonly<Record<string, unknown>>;
  /**
   * IANA time zone used for "today": the customer's zone (see
   * `timezoneSource`), else UTC. Quiet hours read the policy's own zone
   * instead when the source is `none`.
   */
  readonly timezone: string;
  /** Where `timezone` came from: the trait `timezone`, the latest event's `context.timezone`, or none (UTC by default). */
  readonly timezoneSource: TimezoneSource;
  readonly consent: Readonly<Partial<Record<Channel, ConsentState>>>;
  readonly preferences: Preferences;
  readonly stats: ProfileStats;
  readonly engagement: Readonly<Partial<Record<Channel, ChannelEngagement>>>;
  /** Per action id. */
  readonly contacts: Readonly<Record<string, ActionContacts>>;
  /** Contact times per channel, newest first, bounded: the basis of channel caps. */
  readonly channelContacts: Readonly<Partial<Record<Channel, readonly string[]>>>;
  /** Segment ids, evaluated by the profile function on each change. */
  readonly segments: readonly string[];
  readonly persona?: string;
  /** Model scores, e.g. churnRisk in 0..1. */
  readonly scores: Readonly<Record<string, number>>;
  readonly updatedAt?: string;
}

/** The profile of a customer with no history: an unknown customer is a new one, not an error. */
export function emptyProfileView(ids: { userId?: string | undefined; anonymousId?: string | undefined } = {}): ProfileView {
  return {
    ...(ids.userId !== undefined ? { userId: ids.userId } : {}),
    ...(ids.userId === undefined && ids.anonymousId !== undefined ? { anonymousId: ids.anonymousId } : {}),
    anonymousIds: ids.userId !== undefined && ids.anonymousId !== undefined ? [ids.anonymousId] : [],
    identified: ids.userId !== undefined,
    traits: {},
    timezone: 'UTC',
    timezoneSource: 'none',
    consent: {},
    preferences: { interests: [] },
    stats: {
      visitsToday: 0,
      visits7d: 0,
      visits30d: 0,
      visitsTotal: 0,
      orders: 0,
      revenue: 0,
      returns: 0,
      openComplaints: 0,
      categoryInterests: {},
      eventCounts: {},
    },
    engagement: {},
    contacts: {},
    channelContacts: {},
    segments: [],
    scores: {},
  };
}

/**
 * A CEL type for a field of type V: scalars exactly; lists and maps by
 * kind; a nested record either a map or a nested schema.
 */
type CelField<V> = [V] extends [string]
  ? 'string'
  : [V] extends [number]
    ? 'double'
    : [V] extends [boolean]
      ? 'bool'
      : [V] extends [readonly unknown[]]
        ? `list<${string}>`
        : `map<string, ${string}>` | CelSchemaOf<V>;

/** The CEL schema of a shape: every field of T (optional ones included), no other. */
export type CelSchemaOf<T> = { readonly [K in keyof T]-?: CelField<NonNullable<T[K]>> };

/**
 * The view as CEL rules read it (the `profile` variable of the rules'
 * checking environment, catalog/rules.ts), typed from the interfaces above:
 * a field added, removed or retyped in ProfileView fails the typecheck here
 * until this schema follows. Numbers are JSON numbers, `double` in CEL.
 */
export const PROFILE_CEL_TYPES = {
  'kairos.Consent': { granted: 'bool', updatedAt: 'string' } satisfies CelSchemaOf<ConsentState>,
  'kairos.EventCount': { today: 'double', last7d: 'double', last30d: 'double', total: 'double' } satisfies CelSchemaOf<EventCount>,
  'kairos.Engagement': {
    delivered: 'double',
    engaged: 'double',
    rate: 'double',
    lastDeliveredAt: 'string',
    lastEngagedAt: 'string',
  } satisfies CelSchemaOf<ChannelEngagement>,
  'kairos.Contacts': {
    impressions: 'list<string>',
    clicks: 'double',
    conversions: 'double',
    lastImpressionAt: 'string',
  } satisfies CelSchemaOf<ActionContacts>,
} as const;

export const PROFILE_CEL_SCHEMA = {
  userId: 'string',
  anonymousId: 'string',
  anonymousIds: 'list<string>',
  experimentKey: 'string',
  identified: 'bool',
  traits: 'map<string, dyn>',
  timezone: 'string',
  timezoneSource: 'string',
  consent: 'map<string, kairos.Consent>',
  preferences: { interests: 'list<string>', preferredChannel: 'string', updatedAt: 'string' },
  stats: {
    visitsToday: 'double',
    visits7d: 'double',
    visits30d: 'double',
    visitsTotal: 'double',
    firstSeenAt: 'string',
    lastSeenAt: 'string',
    orders: 'double',
    revenue: 'double',
    lastPurchaseAt: 'string',
    returns: 'double',
    lastReturnAt: 'string',
    openComplaints: 'double',
    categoryInterests: 'map<string, double>',
    eventCounts: 'map<string, kairos.EventCount>',
  },
  engagement: 'map<string, kairos.Engagement>',
  contacts: 'map<string, kairos.Contacts>',
  channelContacts: 'map<string, list<string>>',
  segments: 'list<string>',
  persona: 'string',
  scores: 'map<string, double>',
  updatedAt: 'string',
} as const satisfies CelSchemaOf<ProfileView>;

/** What a text field of the view holds when it has a format. */
export type ProfileTextFormat = 'instant' | 'timeZone' | 'channel';

type ViewFieldName = keyof ProfileView | keyof ProfileStats | keyof Preferences | keyof ConsentState | keyof ChannelEngagement | keyof ActionContacts;

/**
 * The text fields of the view that have a format, by field name at any
 * depth (a list, or a map of lists, of such a field holds such texts):
 * `instant` an ISO-8601 date-time (the view's are UTC, as `toISOString`
 * writes them), `timeZone` an IANA zone name (profile/time.ts
 * `isValidTimeZone`), `channel` one of CHANNELS. Every other text field is
 * free text. Readers of a profile from outside (simulate's inline profile)
 * check these.
 */
export const PROFILE_TEXT_FORMATS = {
  updatedAt: 'instant',
  firstSeenAt: 'instant',
  lastSeenAt: 'instant',
  lastPurchaseAt: 'instant',
  lastReturnAt: 'instant',
  lastDeliveredAt: 'instant',
  lastEngagedAt: 'instant',
  lastImpressionAt: 'instant',
  impressions: 'instant',
  channelContacts: 'instant',
  timezone: 'timeZone',
  preferredChannel: 'channel',
} as const satisfies Partial<Record<ViewFieldName, ProfileTextFormat>>;
