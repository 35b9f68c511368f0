/**
 * The profile as readers see it at an instant: windows such as "visits
 * today" are counted in the customer's time zone at `now`, and interests are
 * decayed to `now`.
 */
import type { Channel } from '../channels.ts';
import { own, windowStart, windowSum, type Lww } from './counters.ts';
import { TRAIT_PATH_SEPARATOR } from './apply.ts';
import { LIMITS, type ProfileState } from './state.ts';
import { DAY_MS, HOUR_MS, dayOf, hourOf, isValidTimeZone } from './time.ts';
import { viewWindows } from './view-clock.ts';
import type {
  ActionContacts,
  ChannelEngagement,
  ConsentState,
  EventCount,
  Preferences,
  ProfileView,
} from './view.ts';

/** Used when a state has interests but no recorded half-life (never written by this version). */
const DEFAULT_HALF_LIFE_DAYS = 14;

const iso = (ms: number): string => new Date(ms).toISOString();
/** `{ [key]: ISO time }`, or nothing for an absent time (spread into a view object). */
const isoField = <K extends string>(key: K, ms: number | undefined) => (ms === undefined ? {} : { [key]: iso(ms) }) as { [P in K]?: string };

/** The profile's time zone: the trait `timezone`, else the latest context.timezone, else UTC. */
export function profileTimeZone(state: ProfileState): string {
  const trait = own(state.traits, 'timezone')?.[0];
  if (isValidTimeZone(trait)) return trait;
  const context = state.contextTimezone?.[0];
  if (isValidTimeZone(context)) return context;
  return 'UTC';
}

function traitsView(traits: Readonly<Record<string, Lww<unknown>>>): Record<string, unknown> {
  const plain = new Map<string, Lww<unknown>>();
  const nested = new Map<string, { fields: Record<string, unknown>; at: number }>();
  for (const [key, entry] of Object.entries(traits)) {
    const cut = key.indexOf(TRAIT_PATH_SEPARATOR);
    if (cut === -1) {
      plain.set(key, entry);
      continue;
    }
    const parent = key.slice(0, cut);
    const group = nested.get(parent) ?? { fields: {}, at: -Infinity };
    group.fields[key.slice(cut + 1)] = entry[0];
    group.at = Math.max(group.at, entry[1]);
    nested.set(parent, group);
  }
  const out: Record<string, unknown> = {};
  for (const key of [...new Set([...plain.keys(), ...nested.keys()])].sort()) {
    const p = plain.get(key);
    const n = nested.get(key);
    // A trait sent both as a value and as an object: the shape written last wins.
    out[key] = p && (!n || p[1] > n.at) ? p[0] : n?.fields;
  }
  return out;
}

export function toProfileView(state: ProfileState, now: Date | number = Date.now()): ProfileView {
  const at = typeof now === 'number' ? now : now.getTime();
  const timezone = profileTimeZone(state);
  const since = viewWindows(timezone, at);

  const halfLife = state.halfLifeDays ?? DEFAULT_HALF_LIFE_DAYS;
  const nowDays = at / DAY_MS / halfLife;
  const categoryInterests: Record<string, number> = {};
  for (const [category, log] of Object.entries(state.interests).sort((a, b) => b[1] - a[1])) {
    categoryInterests[category] = 2 ** (log - nowDays);
  }

  // Days count from the first UTC day whose midpoint is inside the window:
  // the far edge of 7/30-day windows is exact to the day, "today" to the hour
  // (from the daily counts when the hourly ones do not reach back to local midnight).
  const nowHour = hourOf(at);
  const nowDay = dayOf(at);
  const fromDay = (sinceMs: number) => Math.ceil((sinceMs - DAY_MS / 2) / DAY_MS);
  const todayHour = Math.ceil(since.today / HOUR_MS);
  const todayDay = fromDay(since.today);
  const d7Day = fromDay(since.d7);
  const d30Day = fromDay(since.d30);
  const eventCounts: Record<string, EventCount> = {};
  for (const name of Object.keys(state.events).sort()) {
    const counts = state.events[name]!;
    eventCounts[name] = {
      today:
        counts.h && windowStart(counts.h, LIMITS.eventHours) <= todayHour
          ? windowSum(counts.h, todayHour, nowHour)
          : windowSum(counts.d, todayDay, nowDay),
      last7d: windowSum(counts.d, d7Day, nowDay),
      last30d: windowSum(counts.d, d30Day, nowDay),
      total: counts.n,
    };
  }

  const consent: Partial<Record<Channel, ConsentState>> = {};
  for (const [channel, entry] of Object.entries(state.consent) as [Channel, Lww<boolean>][]) {
    consent[channel] = { granted: entry[0], updatedAt: iso(entry[1]) };
  }

  const prefs = state.preferences;
  const prefsAt = Math.max(prefs.interests?.[1] ?? -Infinity, prefs.channel?.[1] ?? -Infinity);
  const preferences: Preferences = {
    interests: prefs.interests?.[0] ?? [],
    ...(prefs.channel ? { preferredChannel: prefs.channel[0] } : {}),
    ...(Number.isFinite(prefsAt) ? { updatedAt: iso(prefsAt) } : {}),
  };

  const engagement: Partial<Record<Channel, ChannelEngagement>> = {};
  const channelContacts: Partial<Record<Channel, readonly string[]>> = {};
  for (const [channel, c] of Object.entries(state.channels) as [Channel, NonNullable<ProfileState['channels'][Channel]>][]) {
    engagement[channel] = {
      delivered: c.delivered,
      engaged: c.engaged,
      rate: c.delivered > 0 ? Math.min(1, c.engaged / c.delivered) : 0,
      ...isoField('lastDeliveredAt', c.lastDelivered),
      ...isoField('lastEngagedAt', c.lastEngaged),
    };
    if (c.contacts.length > 0) channelContacts[channel] = c.contacts.map(iso);
  }

  const contacts: Record<string, ActionContacts> = {};
  for (const actionId of Object.keys(state.actions).sort()) {
    const a = state.actions[actionId]!;
    contacts[actionId] = {
      impressions: a.i.map(iso),
      clicks: a.clicks,
      conversions: a.conversions,
      ...isoField('lastImpressionAt', a.i[0]),
    };
  }

  const enrichment = state.enrichment;
  return {
    ...(state.userId !== undefined ? { userId: state.userId } : {}),
    ...(state.anonymousId !== undefined ? { anonymousId: state.anonymousId } : {}),
    anonymousIds: [...state.anonymousIds],
    identified: state.userId !== undefined,
    traits: traitsView(state.traits),
    timezone,
    consent,
    preferences,
    stats: {
      visitsToday: windowSum(state.visits.h, todayHour, nowHour),
      visits7d: windowSum(state.visits.h, Math.ceil(since.d7 / HOUR_MS), nowHour),
      visits30d: windowSum(state.visits.h, Math.ceil(since.d30 / HOUR_MS), nowHour),
      visitsTotal: state.visits.n,
      ...isoField('firstSeenAt', state.firstSeen),
      ...isoField('lastSeenAt', state.lastSeen),
      orders: state.orders,
      revenue: state.revenue,
      ...isoField('lastPurchaseAt', state.lastPurchase),
      returns: state.returns,
      ...isoField('lastReturnAt', state.lastReturn),
      openComplaints: Math.max(0, state.complaintsOpened - state.complaintsResolved),
      categoryInterests,
      eventCounts,
    },
    engagement,
    contacts,
    channelContacts,
    segments: enrichment?.segments ?? [],
    ...(enrichment?.persona !== undefined ? { persona: enrichment.persona } : {}),
    scores: enrichment?.scores ?? {},
    ...isoField('updatedAt', state.updatedAt),
  };
}
