/** The profile view as computed before its windows were cached: the reference of profile-view-equivalence.test.ts. */
import type { Channel } from '#domain/channels.ts';
import { own, visitsSince, windowStart, windowSum, type Lww, type WindowCounter } from '#domain/profile/counters.ts';
import { TRAIT_PATH_SEPARATOR } from '#domain/profile/apply.ts';
import { LIMITS, type NameCounts, type ProfileState } from '#domain/profile/state.ts';
import { DAY_MS, HOUR_MS, dayOf, hourOf, isValidTimeZone, localMidnight } from '#domain/profile/time.ts';
import type {
  ActionContacts,
  ChannelEngagement,
  ConsentState,
  EventCount,
  Preferences,
  ProfileView,
} from '#domain/profile/view.ts';

/** Used when a state has interests but no recorded half-life (never written by this version). */
const DEFAULT_HALF_LIFE_DAYS = 14;

const iso = (ms: number): string => new Date(ms).toISOString();
const isoIf = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : iso(ms));

/** The profile's time zone and its source: the trait `timezone`, else the latest context.timezone, else UTC (none). */
function profileTimeZone(state: ProfileState): [string, ProfileView['timezoneSource']] {
  const trait = own(state.traits, 'timezone')?.[0];
  if (isValidTimeZone(trait)) return [trait, 'trait'];
  const context = state.contextTimezone?.[0];
  if (isValidTimeZone(context)) return [context, 'event context'];
  return ['UTC', 'none'];
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

function eventCount(counts: NameCounts, now: number, since: { today: number; d7: number; d30: number }): EventCount {
  const nowHour = hourOf(now);
  const nowDay = dayOf(now);
  // Days count from the first UTC day whose midpoint is inside the window:
  // the far edge of 7/30-day windows is exact to the day, "today" to the hour.
  const fromDay = (sinceMs: number) => Math.ceil((sinceMs - DAY_MS / 2) / DAY_MS);
  const inWindow = (sinceMs: number) => {
    const fromHour = Math.ceil(sinceMs / HOUR_MS);
    if (counts.h && windowStart(counts.h, LIMITS.eventHours) <= fromHour) return windowSum(counts.h, fromHour, nowHour);
    return windowSum(counts.d, fromDay(sinceMs), nowDay);
  };
  return {
    today: inWindow(since.today),
    last7d: windowSum(counts.d, fromDay(since.d7), nowDay),
    last30d: windowSum(counts.d, fromDay(since.d30), nowDay),
    total: counts.n,
  };
}

const hourWindow = (counter: WindowCounter | undefined, sinceMs: number, now: number): number =>
  windowSum(counter, Math.ceil(sinceMs / HOUR_MS), hourOf(now));

export function referenceProfileView(state: ProfileState, now: Date | number = Date.now()): ProfileView {
  const at = typeof now === 'number' ? now : now.getTime();
  const [timezone, timezoneSource] = profileTimeZone(state);
  const since = {
    today: localMidnight(timezone, at),
    d7: localMidnight(timezone, at, 6),
    d30: localMidnight(timezone, at, 29),
  };

  const halfLife = state.halfLifeDays ?? DEFAULT_HALF_LIFE_DAYS;
  const nowDays = at / DAY_MS / halfLife;
  const categoryInterests: Record<string, number> = {};
  for (const [category, log] of Object.entries(state.interests).sort((a, b) => b[1] - a[1])) {
    categoryInterests[category] = 2 ** (log - nowDays);
  }

  const eventCounts: Record<string, EventCount> = {};
  for (const name of Object.keys(state.events).sort()) eventCounts[name] = eventCount(state.events[name]!, at, since);

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
      ...(c.lastDelivered !== undefined ? { lastDeliveredAt: iso(c.lastDelivered) } : {}),
      ...(c.lastEngaged !== undefined ? { lastEngagedAt: iso(c.lastEngaged) } : {}),
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
      ...(a.i[0] !== undefined ? { lastImpressionAt: iso(a.i[0]) } : {}),
    };
  }

  const enrichment = state.enrichment;
  return {
    ...(state.userId !== undefined ? { userId: state.userId } : {}),
    ...(state.anonymousId !== undefined ? { anonymousId: state.anonymousId } : {}),
    anonymousIds: [...state.anonymousIds],
    ...(state.assignmentKey ? { experimentKey: state.assignmentKey[0] } : {}),
    identified: state.userId !== undefined,
    traits: traitsView(state.traits),
    timezone,
    timezoneSource,
    consent,
    preferences,
    stats: {
      visitsToday: visitsSince(state.visits, since.today, hourOf(at), LIMITS.visitQuarters),
      visits7d: hourWindow(state.visits.h, since.d7, at),
      visits30d: hourWindow(state.visits.h, since.d30, at),
      visitsTotal: state.visits.n,
      ...(state.firstSeen !== undefined ? { firstSeenAt: iso(state.firstSeen) } : {}),
      ...(state.lastSeen !== undefined ? { lastSeenAt: iso(state.lastSeen) } : {}),
      orders: state.orders,
      revenue: state.revenue,
      ...(state.lastPurchase !== undefined ? { lastPurchaseAt: iso(state.lastPurchase) } : {}),
      returns: state.returns,
      ...(state.lastReturn !== undefined ? { lastReturnAt: iso(state.lastReturn) } : {}),
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
    ...(isoIf(state.updatedAt) !== undefined ? { updatedAt: isoIf(state.updatedAt) } : {}),
  };
}
