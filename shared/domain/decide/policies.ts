/**
 * The decision-wide policies of a catalog, evaluated once per decision
 * (decide's "policies" step): consent, quiet hours, channel caps, the
 * suppression policies in force, the placement's arbitration settings; and
 * what a candidate is made of (content for the placement, fallback role).
 * The per-candidate checks that read them are in checks.ts. Pure.
 */
import type { Channel } from '../channels.ts';
import type { ProfileView } from '../profile/view.ts';
import type {
  CompiledAction,
  CompiledCatalog,
  CompiledChannelCap,
  CompiledContent,
  CompiledQuietHours,
  CompiledSuppression,
  CompiledWeights,
  ResolvedPlacement,
  RuleVariables,
} from '../catalog/compiled.ts';
import { evaluateRule } from '../catalog/rules.ts';
import { isValidTimeZone, localMinuteOfDay } from '../profile/time.ts';

/**
 * The content fills the request's placement: content not restricted to
 * placements fills any (and a request without one); content restricted to
 * some (`placements`) fills only those, never a request without a placement.
 */
export function fillsPlacement(content: CompiledContent | undefined, placement: string | undefined): boolean {
  if (!content) return false;
  return !content.placements || (!!placement && content.placements.has(placement));
}

/** The action (or its variant) has content for the channel that fills the placement (`fillsPlacement`). */
export function canServePlacement(action: CompiledAction, channel: Channel, placement: string | undefined, variantId?: string): boolean {
  return fillsPlacement(contentFor(action, channel, variantId), placement);
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
      const failures = vars.$failures.rules;
      active = evaluateRule(s.when, vars);
      if (vars.$failures.rules === failures) verdicts?.set(s.when.source, active);
    }
    if (active) out.push(s);
  }
  return out;
}

/** The channel needs the customer's consent (catalog `policies.consentRequired`). */
function requiresConsent(catalog: CompiledCatalog, channel: Channel): boolean {
  return catalog.policies.consentRequired.has(channel);
}

/** The customer has granted consent for the channel (absent = not granted). */
function hasConsent(profile: Pick<ProfileView, 'consent'>, channel: Channel): boolean {
  return profile.consent?.[channel]?.granted === true;
}

/** Minutes after local midnight in an IANA zone (an unknown zone is read as UTC): profile/time.ts's one definition. */
const localMinutes = (now: Date, timezone: string): number => localMinuteOfDay(timezone, now.getTime());

/**
 * The quiet-hours policy holding for the channel now, if any: read in the
 * customer's zone when known (`customerTimezone`, UTC included), else in the
 * policy's own `timezone`, else in UTC.
 */
export function quietHoursFor(
  catalog: CompiledCatalog,
  channel: Channel,
  now: Date,
  customerTimezone: string | undefined,
): CompiledQuietHours | undefined {
  for (const q of catalog.policies.quietHours) {
    if (!q.channels.has(channel)) continue;
    if (holdsAt(q, localMinutes(now, customerTimezone || (q.timezone ?? 'UTC')))) return q;
  }
  return undefined;
}

/** Whether quiet hours `q` hold at a local minute of the day (`from` included, `to` not; across midnight when `to` < `from`). */
const holdsAt = (q: CompiledQuietHours, minute: number): boolean =>
  q.fromMinute < q.toMinute ? minute >= q.fromMinute && minute < q.toMinute : minute >= q.fromMinute || minute < q.toMinute;

/**
 * How many of these ISO times (newest first) share a window of `windowMs`
 * with a contact now: those within it before now, and those ahead of now by
 * less than it, so a cap is never exceeded in the window of a contact
 * recorded ahead of now (profiles keep the send times of sends deferred
 * past quiet hours by earlier versions, which counted them when decided;
 * a send deferred now is decided, and counted, only at the end of quiet
 * hours: triggers/react.ts).
 */
export function countSince(times: readonly string[] | undefined, nowMs: number, windowMs: number): number {
  if (!times) return 0;
  const since = nowMs - windowMs;
  const until = nowMs + windowMs;
  let n = 0;
  for (const t of times) {
    const ms = Date.parse(t);
    if (Number.isNaN(ms)) continue;
    if (ms > since && ms < until) n++;
  }
  return n;
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

/** The action is a fallback of this channel/placement (it serves only when nothing else does). */
export function isFallbackHere(action: CompiledAction, channel: Channel, placement: string | undefined): boolean {
  return action.fallbackRoles.some((r) => r.channel === channel && (r.placement === undefined || r.placement === placement));
}

/** The decision-wide policy facts every candidate check reads, evaluated once (decide's policies step). */
export interface DecisionPolicies {
  /** Consent required and not granted: the channel (the drop's detail). */
  readonly consent?: string;
  /** The quiet-hours policy in force on the channel: its id. */
  readonly quietHours?: string;
  /** The channel cap reached: `<id> <label>`. */
  readonly channelCap?: string;
  /** The suppression policies in force for this customer on the channel. */
  readonly suppressions: readonly CompiledSuppression[];
}

/**
 * The zone quiet hours are read in for this customer: the device's
 * (`context.timezone`) when it is an IANA zone the platform knows (any
 * other text is ignored, as the profile ignores it), else the profile's
 * when it has one
 * (`timezoneSource` not `none`, UTC included), else undefined (each
 * policy's own, else UTC).
 */
export function customerZone(profile: ProfileView, context: Readonly<Record<string, unknown>>): string | undefined {
  if (isValidTimeZone(context.timezone)) return context.timezone;
  return profile.timezoneSource !== 'none' ? profile.timezone : undefined;
}

/**
 * When the quiet hours in force on the channel at `now` end: the first
 * minute at which no quiet-hours policy of the channel holds (policies that
 * follow one another are crossed), or undefined when none holds at `now`
 * (or they never end within a few days: a catalog whose quiet hours cover
 * the whole day).
 */
export function quietHoursEnd(catalog: CompiledCatalog, channel: Channel, now: Date, zone: string | undefined): Date | undefined {
  let quiet = quietHoursFor(catalog, channel, now, zone);
  if (!quiet) return undefined;
  let at = now;
  for (let step = 0; step < 8; step++) {
    at = windowEnd(quiet, at, zone || (quiet.timezone ?? 'UTC'));
    quiet = quietHoursFor(catalog, channel, at, zone);
    if (!quiet) return at;
  }
  return undefined;
}

const MINUTE_MS = 60_000;
/** The largest change of a zone's offset in one night, in ms (Lord Howe's is 30 minutes, most are an hour). */
const MAX_CLOCK_CHANGE_MS = 2 * 3_600_000;

/** The zone's offset at an instant, as minutes mod 1440 (equal offsets: no clock change between two instants a day apart). */
const clockShift = (at: number, zone: string): number => (localMinutes(new Date(at), zone) - (Math.floor(at / MINUTE_MS) % 1440) + 1440) % 1440;

/**
 * The first whole minute after `at` at which quiet hours `q`, holding at
 * `at`, no longer hold in `zone`: `to` on the wall clock, that many minutes
 * on; on a night the clocks change (shorter or longer by the change, or a
 * `to` in the hour they skip, or a jump back out of the window), found
 * minute by minute.
 */
function windowEnd(q: CompiledQuietHours, at: Date, zone: string): Date {
  const start = Math.floor(at.getTime() / MINUTE_MS) * MINUTE_MS;
  const ahead = (q.toMinute - localMinutes(at, zone) + 1440) % 1440 || 1440;
  const wall = start + ahead * MINUTE_MS;
  if (clockShift(start, zone) === clockShift(wall, zone)) return new Date(wall);
  for (let t = start + MINUTE_MS; t <= wall + MAX_CLOCK_CHANGE_MS; t += MINUTE_MS) {
    if (!holdsAt(q, localMinutes(new Date(t), zone))) return new Date(t);
  }
  return new Date(wall);
}

/**
 * Consent, quiet hours (in the device's zone `context.timezone`, else the
 * profile's when it has one — `timezoneSource` not `none`, UTC included —
 * else the policy's), channel caps and suppressions, for one decision on
 * `vars.channel`.
 */
export function decisionPolicies(
  catalog: CompiledCatalog,
  profile: ProfileView,
  channel: Channel,
  context: Readonly<Record<string, unknown>>,
  vars: RuleVariables,
  now: Date,
): DecisionPolicies {
  const consent = requiresConsent(catalog, channel) && !hasConsent(profile, channel) ? channel : undefined;
  const quiet = catalog.policies.quietHours.length > 0 ? quietHoursFor(catalog, channel, now, customerZone(profile, context)) : undefined;
  const cap = reachedChannelCap(catalog, profile, channel, now.getTime());
  return {
    ...(consent !== undefined ? { consent } : {}),
    ...(quiet ? { quietHours: quiet.id } : {}),
    ...(cap ? { channelCap: `${cap.id} ${cap.label}` } : {}),
    suppressions: catalog.policies.suppressions.length > 0 ? activeSuppressions(catalog, vars) : [],
  };
}
