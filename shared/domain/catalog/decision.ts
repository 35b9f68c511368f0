/**
 * The catalog's semantics that a decision applies per candidate: validity,
 * placement, targeting, suppression policies, consent, quiet hours,
 * frequency and channel caps, arbitration weights. Pure and allocation-light:
 * per-decision work (policies) is done once, per-candidate checks are plain
 * lookups.
 */
import type { Channel } from '../channels.ts';
import type { ProfileView } from '../profile/view.ts';
import type {
  Audience,
  CompiledAction,
  CompiledCap,
  CompiledCatalog,
  CompiledChannelCap,
  CompiledContent,
  CompiledQuietHours,
  CompiledSuppression,
  CompiledWeights,
  ResolvedPlacement,
  RuleVariables,
} from './compiled.ts';
import { evaluateRule } from './rules.ts';

export function isWithinValidity(item: { readonly validFrom: number; readonly validTo: number }, nowMs: number): boolean {
  return nowMs >= item.validFrom && nowMs < item.validTo;
}

/** The action has content for the channel, and for the placement when its content is restricted to some. */
export function canServePlacement(action: CompiledAction, channel: Channel, placement: string | undefined): boolean {
  const content = action.content[channel];
  if (!content) return false;
  return !placement || !content.placements || content.placements.has(placement);
}

/** Segment/persona targeting of the action against this decision's audience. */
export function matchesTargeting(action: CompiledAction, audience: Pick<Audience, 'segmentSet' | 'persona'>): boolean {
  const t = action.targeting;
  if (!t) return true;
  if (t.segments && !t.segments.some((s) => audience.segmentSet.has(s))) return false;
  if (t.excludeSegments && t.excludeSegments.some((s) => audience.segmentSet.has(s))) return false;
  if (t.personas && (audience.persona === undefined || !t.personas.includes(audience.persona))) return false;
  return true;
}

/**
 * The suppression policies in force for this customer on `vars.channel`,
 * evaluated once per decision. A policy whose condition fails at run time is
 * not in force (counted like every rule failure).
 */
export function activeSuppressions(catalog: CompiledCatalog, vars: RuleVariables): readonly CompiledSuppression[] {
  const out: CompiledSuppression[] = [];
  // Policies often share a condition (several tags suppressed while a complaint is open): each
  // distinct one once, unless it failed (every rule then counts its own failure).
  const verdicts = catalog.policies.suppressions.length > 1 ? new Map<string, boolean>() : undefined;
  for (const s of catalog.policies.suppressions) {
    if (s.channels && !s.channels.has(vars.channel as Channel)) continue;
    let active = verdicts?.get(s.when.source);
    if (active === undefined) {
      const failures = s.when.failures;
      active = evaluateRule(s.when, vars);
      if (s.when.failures === failures) verdicts?.set(s.when.source, active);
    }
    if (active) out.push(s);
  }
  return out;
}

/** The first active suppression that hits one of the action's tags, if any. */
export function suppressingPolicy(
  action: CompiledAction,
  active: readonly CompiledSuppression[],
): CompiledSuppression | undefined {
  for (const s of active) for (const tag of action.tags) if (s.tags.has(tag)) return s;
  return undefined;
}

/** The channel needs the customer's consent (catalog `policies.consentRequired`). */
export function requiresConsent(catalog: CompiledCatalog, channel: Channel): boolean {
  return catalog.policies.consentRequired.has(channel);
}

/** The customer has granted consent for the channel (absent = not granted). */
export function hasConsent(profile: Pick<ProfileView, 'consent'>, channel: Channel): boolean {
  return profile.consent?.[channel]?.granted === true;
}

/** Consent allows the channel: either not required, or granted. */
export function consentAllows(catalog: CompiledCatalog, profile: Pick<ProfileView, 'consent'>, channel: Channel): boolean {
  return !requiresConsent(catalog, channel) || hasConsent(profile, channel);
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timezone: string): Intl.DateTimeFormat {
  let f = formatters.get(timezone);
  if (!f) {
    try {
      f = new Intl.DateTimeFormat('en-GB', { timeZone: timezone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    } catch {
      f = formatterFor('UTC');
    }
    if (formatters.size > 500) formatters.clear();
    formatters.set(timezone, f);
  }
  return f;
}

/** Minutes after local midnight in an IANA zone (an unknown zone is read as UTC). */
export function localMinutes(now: Date, timezone: string): number {
  let hour = 0;
  let minute = 0;
  for (const part of formatterFor(timezone || 'UTC').formatToParts(now)) {
    if (part.type === 'hour') hour = Number(part.value);
    else if (part.type === 'minute') minute = Number(part.value);
  }
  return hour * 60 + minute;
}

/** The quiet-hours policy holding for the channel now in the customer's zone, if any. */
export function quietHoursFor(
  catalog: CompiledCatalog,
  channel: Channel,
  now: Date,
  profileTimezone: string | undefined,
): CompiledQuietHours | undefined {
  for (const q of catalog.policies.quietHours) {
    if (!q.channels.has(channel)) continue;
    const zone = profileTimezone && profileTimezone !== 'UTC' ? profileTimezone : (q.timezone ?? profileTimezone ?? 'UTC');
    const m = localMinutes(now, zone);
    const inside = q.fromMinute < q.toMinute ? m >= q.fromMinute && m < q.toMinute : m >= q.fromMinute || m < q.toMinute;
    if (inside) return q;
  }
  return undefined;
}

/** How many of these ISO times (newest first) fall within the window before now. */
export function countSince(times: readonly string[] | undefined, nowMs: number, windowMs: number): number {
  if (!times) return 0;
  const since = nowMs - windowMs;
  let n = 0;
  for (const t of times) {
    const ms = Date.parse(t);
    if (Number.isNaN(ms)) continue;
    if (ms > since && ms <= nowMs) n++;
  }
  return n;
}

/** The action's first frequency cap the customer has reached, if any (impressions of the action). */
export function reachedActionCap(action: CompiledAction, profile: Pick<ProfileView, 'contacts'>, nowMs: number): CompiledCap | undefined {
  if (action.caps.length === 0) return undefined;
  const contacts = profile.contacts && Object.hasOwn(profile.contacts, action.id) ? profile.contacts[action.id] : undefined;
  if (!contacts || contacts.impressions.length === 0) return undefined;
  for (const cap of action.caps) if (countSince(contacts.impressions, nowMs, cap.windowMs) >= cap.max) return cap;
  return undefined;
}

/** The channel cap the customer has reached on this channel, if any (every action of the channel is then out). */
export function reachedChannelCap(
  catalog: CompiledCatalog,
  profile: Pick<ProfileView, 'channelContacts'>,
  channel: Channel,
  nowMs: number,
): CompiledChannelCap | undefined {
  const caps = catalog.policies.channelCapsByChannel[channel];
  if (!caps) return undefined;
  const times = profile.channelContacts?.[channel];
  for (const cap of caps) if (countSince(times, nowMs, cap.windowMs) >= cap.max) return cap;
  return undefined;
}

function weightOf(weights: CompiledWeights | undefined, action: CompiledAction): number {
  if (!weights) return 1;
  let w = weights.actions.get(action.id) ?? 1;
  for (const tag of action.tags) w *= weights.tags.get(tag) ?? 1;
  return w;
}

const placementCache = new WeakMap<CompiledCatalog, Map<string, ResolvedPlacement>>();

/**
 * Arbitration settings for a channel/placement: the most specific override
 * (channel + placement, then channel alone) for limit and learning; weights
 * multiply (action × global × channel override × placement override).
 * Cached per catalog and key.
 */
export function resolvePlacement(catalog: CompiledCatalog, channel: Channel, placement = ''): ResolvedPlacement {
  let byKey = placementCache.get(catalog);
  if (!byKey) {
    byKey = new Map();
    placementCache.set(catalog, byKey);
  }
  const key = `${channel}\u0000${placement}`;
  const hit = byKey.get(key);
  if (hit) return hit;
  const channelWide = catalog.arbitration.placements.find((p) => p.channel === channel && p.placement === undefined);
  const specific = placement
    ? catalog.arbitration.placements.find((p) => p.channel === channel && p.placement === placement)
    : undefined;
  const weights = new Float64Array(catalog.actions.length);
  for (const action of catalog.actions) {
    weights[action.index] =
      action.weight *
      weightOf(catalog.arbitration.weights, action) *
      weightOf(channelWide?.weights, action) *
      weightOf(specific?.weights, action);
  }
  const limit = specific?.limit ?? channelWide?.limit;
  const resolved: ResolvedPlacement = {
    channel,
    placement,
    ...(limit === undefined ? {} : { limit }),
    learning: catalog.learning.enabled && (specific?.learning ?? channelWide?.learning ?? true),
    weights,
  };
  if (byKey.size > 1_000) byKey.clear();
  byKey.set(key, resolved);
  return resolved;
}

/** The content to serve on a channel: the variant's when given and known, else the action's. */
export function contentFor(action: CompiledAction, channel: Channel, variantId?: string): CompiledContent | undefined {
  if (variantId !== undefined) {
    const variant = action.variantsById.get(variantId);
    if (variant) return variant.content[channel];
  }
  return action.content[channel];
}

/** Fallback actions for a channel/placement, in catalog order. */
export function fallbacksFor(catalog: CompiledCatalog, channel: Channel, placement = ''): readonly CompiledAction[] {
  return catalog.fallbacksByChannel[channel].filter((a) =>
    a.fallbackRoles.some((r) => r.channel === channel && (r.placement === undefined || r.placement === placement)),
  );
}
