/**
 * The profile as readers see it at an instant: windows such as "visits
 * today" are counted in the customer's time zone at `now`, and interests are
 * decayed to `now`.
 */
import type { Channel } from '../channels.ts';
import { insertNewest, own, visitsSince, windowStart, windowSum, type Lww } from './counters.ts';
import type { SendContact } from './reactions.ts';
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
  TimezoneSource,
} from './view.ts';

/** Used when a state has interests but no recorded half-life (never written by this version). */
const DEFAULT_HALF_LIFE_DAYS = 14;

const iso = (ms: number): string => new Date(ms).toISOString();
/** Set `key` to the ISO time, or nothing for an absent time (assigned in place: no object per field). */
function setIso(target: Record<string, unknown>, key: string, ms: number | undefined): void {
  if (ms !== undefined) target[key] = iso(ms);
}

/**
 * The profile's time zone and where it came from: the trait `timezone`, else
 * the latest context.timezone of its events, else UTC with source `none`.
 */
export function profileTimeZone(state: ProfileState): { timezone: string; source: TimezoneSource } {
  const trait = own(state.traits, 'timezone')?.[0];
  if (isValidTimeZone(trait)) return { timezone: trait, source: 'trait' };
  const context = state.contextTimezone?.[0];
  if (isValidTimeZone(context)) return { timezone: context, source: 'event context' };
  return { timezone: 'UTC', source: 'none' };
}


function traitsView(traits: Readonly<Record<string, Lww<unknown>>>): Record<string, unknown> {
  const keys = Object.keys(traits);
  if (!keys.some((key) => key.includes(TRAIT_PATH_SEPARATOR))) {
    // No nested traits (the common case): the values, by key.
    const out: Record<string, unknown> = {};
    for (const key of keys.sort()) out[key] = (traits[key] as Lww<unknown>)[0];
    return out;
  }
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
  const { timezone, source: timezoneSource } = profileTimeZone(state);
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
    const entry: ChannelEngagement = {
      delivered: c.delivered,
      engaged: c.engaged,
      rate: c.delivered > 0 ? Math.min(1, c.engaged / c.delivered) : 0,
    };
    setIso(entry as unknown as Record<string, unknown>, 'lastDeliveredAt', c.lastDelivered);
    setIso(entry as unknown as Record<string, unknown>, 'lastEngagedAt', c.lastEngaged);
    engagement[channel] = entry;
    if (c.contacts.length > 0) channelContacts[channel] = c.contacts.map(iso);
  }

  const contacts: Record<string, ActionContacts> = {};
  for (const actionId of Object.keys(state.actions).sort()) {
    const a = state.actions[actionId]!;
    const entry: ActionContacts = { impressions: a.i.map(iso), clicks: a.clicks, conversions: a.conversions };
    setIso(entry as unknown as Record<string, unknown>, 'lastImpressionAt', a.i[0]);
    contacts[actionId] = entry;
  }

  const stats: Record<string, unknown> = {
    visitsToday: visitsSince(state.visits, since.today, nowHour, LIMITS.visitQuarters),
    visits7d: windowSum(state.visits.h, Math.ceil(since.d7 / HOUR_MS), nowHour),
    visits30d: windowSum(state.visits.h, Math.ceil(since.d30 / HOUR_MS), nowHour),
    visitsTotal: state.visits.n,
  };
  setIso(stats, 'firstSeenAt', state.firstSeen);
  setIso(stats, 'lastSeenAt', state.lastSeen);
  stats.orders = state.orders;
  stats.revenue = state.revenue;
  setIso(stats, 'lastPurchaseAt', state.lastPurchase);
  stats.returns = state.returns;
  setIso(stats, 'lastReturnAt', state.lastReturn);
  stats.openComplaints = Math.max(0, state.complaintsOpened - state.complaintsResolved);
  stats.categoryInterests = categoryInterests;
  stats.eventCounts = eventCounts;

  const enrichment = state.enrichment;
  const view: Record<string, unknown> = {};
  if (state.userId !== undefined) view.userId = state.userId;
  if (state.anonymousId !== undefined) view.anonymousId = state.anonymousId;
  view.anonymousIds = [...state.anonymousIds];
  if (state.assignmentKey) view.experimentKey = state.assignmentKey[0];
  view.identified = state.userId !== undefined;
  view.traits = traitsView(state.traits);
  view.timezone = timezone;
  view.timezoneSource = timezoneSource;
  view.consent = consent;
  view.preferences = preferences;
  view.stats = stats;
  view.engagement = engagement;
  view.contacts = contacts;
  view.channelContacts = channelContacts;
  view.segments = enrichment?.segments ?? [];
  if (enrichment?.persona !== undefined) view.persona = enrichment.persona;
  view.scores = enrichment?.scores ?? {};
  setIso(view, 'updatedAt', state.updatedAt);
  return view as unknown as ProfileView;
}

/**
 * `view` with a send's contact counted (as apply.ts `recordSend` counts it
 * on the state): its time among the channel's contact times and the
 * action's impression times, newest first. For the sends one applied event
 * sets off one after another (several triggers, several journeys), each
 * decided on the view with the ones before.
 */
export function viewWithContact(view: ProfileView, contact: SendContact): ProfileView {
  const times = (list: readonly string[] | undefined): string[] =>
    insertNewest((list ?? []).map((t) => Date.parse(t)), contact.at, LIMITS.channelContacts).map(iso);
  const action = own(view.contacts, contact.actionId);
  const impressions = insertNewest((action?.impressions ?? []).map((t) => Date.parse(t)), contact.at, LIMITS.actionImpressions).map(iso);
  return {
    ...view,
    channelContacts: { ...view.channelContacts, [contact.channel]: times(view.channelContacts[contact.channel]) },
    contacts: {
      ...view.contacts,
      [contact.actionId]: { clicks: 0, conversions: 0, ...action, impressions, ...(impressions[0] !== undefined ? { lastImpressionAt: impressions[0] } : {}) },
    },
  };
}
