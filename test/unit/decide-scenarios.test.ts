/**
 * The seed scenarios (catalog/demo.yaml, the README's list) as one table of
 * cases, each run against decide() itself: the customer, the request, and
 * what the decision must serve first, must never serve, or whether it
 * serves nothing. No exploration is drawn (`random` above the catalog's
 * exploration rate), so every case is deterministic.
 *
 * The classic trap is a row per channel and placement: a VIP who returned
 * a product and has an open complaint never gets a promotion, anywhere.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { createFailureTally } from '#domain/catalog/rules.ts';
import { decide } from '#domain/decide/decide.ts';
import type { DecideRequest, Decision } from '#domain/decide/types.ts';
import { CHANNELS, type Channel } from '#domain/channels.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { NOW, daysAgo, makeView, type ViewOverrides } from './catalog-support.ts';

function demo(): CompiledCatalog {
  const result = loadCatalog(readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8'), 'yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.problems, null, 2));
  return result.catalog;
}
const catalog = demo();

const granted = { granted: true, updatedAt: daysAgo(100) };
const customer = (o: ViewOverrides = {}): ProfileView =>
  makeView({ consent: { email: granted, push: granted, sms: granted }, ...o, stats: { lastSeenAt: daysAgo(1), ...o.stats } });

const vipWithComplaint = (openComplaints: number) =>
  customer({
    traits: { tier: 'VIP', firstName: 'Ana' },
    stats: { lastPurchaseAt: daysAgo(40), orders: 3, returns: 1, lastReturnAt: daysAgo(5), openComplaints },
  });
const anonymous = (visitsToday: number) =>
  makeView({ identified: false, userId: undefined, anonymousId: 'a-9', stats: { visitsToday, lastSeenAt: daysAgo(0) } });
const vipLapsed = (days: number) => customer({ traits: { tier: 'VIP' }, stats: { lastPurchaseAt: daysAgo(days), orders: 2 } });
const student = customer({ traits: { gender: 'male', age: 19, firstName: 'Leo' }, preferences: { interests: ['sport'], preferredChannel: 'push' } });
const premium = customer({
  traits: { gender: 'male', age: 19, firstName: 'Leo', createdAt: daysAgo(3 * 365 + 10) },
  preferences: { interests: ['sport'], preferredChannel: 'push' },
  stats: { revenue: 2500, orders: 12, visits30d: 15, lastPurchaseAt: daysAgo(3) },
});
const pushOpener = customer({
  traits: { age: 18 },
  engagement: { push: { delivered: 10, engaged: 7, rate: 0.7 }, email: { delivered: 10, engaged: 0, rate: 0 } },
});
const emailReader = customer({
  traits: { age: 50 },
  engagement: { push: { delivered: 5, engaged: 0, rate: 0 }, email: { delivered: 10, engaged: 6, rate: 0.6 } },
});
const leaving = customer({ stats: { lastSeenAt: daysAgo(70), visits30d: 0, returns: 1, orders: 2 } });
const staying = customer({ stats: { lastSeenAt: daysAgo(1), visits30d: 12, orders: 4 } });
const rider = customer({ preferences: { interests: ['cycling'] }, stats: { categoryInterests: { running: 5 } } });
const consentingVip = customer({ traits: { tier: 'VIP' }, stats: { lastPurchaseAt: daysAgo(60) } });

const PROMOS = catalog.actions.filter((a) => a.tags.includes('promo')).map((a) => a.id);

interface Scenario {
  readonly name: string;
  readonly view: ProfileView;
  readonly channel: Channel;
  readonly placement?: string;
  readonly context?: Record<string, unknown>;
  /** The first action served. */
  readonly first?: string;
  /** Never served. */
  readonly never?: readonly string[];
  /** Nothing served at all (not even a fallback). */
  readonly nothing?: true;
  /** A field of the first action's rendered content. */
  readonly content?: Readonly<Record<string, string>>;
}

const SCENARIOS: readonly Scenario[] = [
  { name: '1. personalisation with a first name', view: customer({ traits: { firstName: 'Luis' } }), channel: 'email', content: { greeting: 'Estimado Luis' } },
  { name: '1. personalisation without a first name', view: customer(), channel: 'email', content: { greeting: 'Estimado cliente' } },
  { name: '1. personalisation with a blank first name', view: customer({ traits: { firstName: '' } }), channel: 'email', content: { greeting: 'Estimado cliente' } },
  { name: '2. lapsed VIP gets email 123', view: vipLapsed(45), channel: 'email', first: 'vip-winback-email-123', content: { templateId: '123' } },
  { name: '2. recent VIP does not', view: vipLapsed(10), channel: 'email', never: ['vip-winback-email-123'] },
  { name: '2. lapsed non-VIP does not', view: customer({ stats: { lastPurchaseAt: daysAgo(45) } }), channel: 'email', never: ['vip-winback-email-123'] },
  { name: '3. 11 visits today: bannerMegaOferta on web home', view: anonymous(11), channel: 'web', placement: 'home', first: 'bannerMegaOferta' },
  { name: '3. 10 visits today: not yet', view: anonymous(10), channel: 'web', placement: 'home', never: ['bannerMegaOferta'] },
  { name: '3. not on the hero banner', view: anonymous(11), channel: 'web', placement: 'home_hero', never: ['bannerMegaOferta'] },
  ...CHANNELS.flatMap((channel) =>
    [undefined, 'home', 'home_hero'].map(
      (placement): Scenario => ({
        name: `4. the trap: VIP, a return, an open complaint, ${channel}${placement ? `/${placement}` : ''}: no promotion`,
        view: vipWithComplaint(1),
        channel,
        ...(placement ? { placement } : {}),
        never: PROMOS,
      }),
    ),
  ),
  { name: '4. the trap: service recovery on the call centre', view: vipWithComplaint(1), channel: 'call_center', first: 'service-recovery-call' },
  { name: '4. the trap: an apology by email', view: vipWithComplaint(1), channel: 'email', first: 'apology-email' },
  { name: '4. complaint resolved: the VIP offer is back by email', view: vipWithComplaint(0), channel: 'email', first: 'vip-winback-email-123' },
  { name: '4. complaint resolved: the VIP lounge banner on web home', view: vipWithComplaint(0), channel: 'web', placement: 'home', first: 'vip-lounge-banner' },
  { name: '4. complaint resolved: nothing for the call centre', view: vipWithComplaint(0), channel: 'call_center', nothing: true },
  { name: '5. sporty student: the sport drop by push', view: student, channel: 'push', first: 'sport-drop-push' },
  { name: '5. sporty student: no email', view: student, channel: 'email', nothing: true },
  { name: '5. premium loyal: the premium preview by push', view: premium, channel: 'push', first: 'premium-preview' },
  { name: '6. push opener: weekly picks by push', view: pushOpener, channel: 'push', first: 'weekly-picks' },
  { name: '6. push opener: no email', view: pushOpener, channel: 'email', nothing: true },
  { name: '6. email reader: weekly picks by email', view: emailReader, channel: 'email', first: 'weekly-picks' },
  { name: '6. email reader: no push', view: emailReader, channel: 'push', nothing: true },
  {
    name: '7. rain in Madrid: the recipe card',
    view: customer(),
    channel: 'web',
    placement: 'home',
    context: { weather: 'rain', city: 'Madrid' },
    first: 'recipe-rainy-day',
    content: { body: 'Receta caliente en 30 minutos para un día gris en Madrid.' },
  },
  { name: '7. sun: no recipe card', view: customer(), channel: 'web', placement: 'home', context: { weather: 'sun' }, never: ['recipe-rainy-day'] },
  { name: '7. summer: the ice cream card', view: customer(), channel: 'web', placement: 'home', context: { season: 'summer' }, first: 'summer-ice-cream' },
  { name: '8. churn risk: the retention offer', view: leaving, channel: 'email', first: 'retention-offer' },
  { name: '8. no churn risk: no retention offer', view: staying, channel: 'email', never: ['retention-offer'] },
  { name: '9. cycling declared: cycling content on web home', view: rider, channel: 'web', placement: 'home', first: 'cycling-content', never: ['running-content'] },
  { name: '10. consent granted: an email', view: consentingVip, channel: 'email', first: 'vip-winback-email-123' },
  {
    name: '10. consent withdrawn: no email at all',
    view: { ...consentingVip, consent: { ...consentingVip.consent, email: { granted: false, updatedAt: daysAgo(0) } } },
    channel: 'email',
    nothing: true,
  },
  { name: '10. consent never given: no email at all', view: { ...consentingVip, consent: {} }, channel: 'email', nothing: true },
  { name: '11. test and learn: the spring sale on the hero banner', view: customer(), channel: 'web', placement: 'home_hero', first: 'spring-sale-banner' },
];

function run(s: Scenario): Decision {
  const request: DecideRequest = {
    ...(s.view.userId !== undefined ? { userId: s.view.userId } : { anonymousId: s.view.anonymousId }),
    channel: s.channel,
    ...(s.placement !== undefined ? { placement: s.placement } : {}),
    limit: 10,
    context: s.context ?? {},
    explain: false,
  };
  const failures = createFailureTally();
  const decision = decide(catalog, s.view, request, NOW, { nonce: 'scenario', random: () => 0.5, failures });
  // The demo's rules never fail on these customers.
  expect(failures).toEqual({ rules: 0, deadline: 0, templates: 0 });
  return decision;
}

describe('seed scenarios against decide()', () => {
  it.each(SCENARIOS.map((s) => [s.name, s] as const))('%s', (_name, s) => {
    const decision = run(s);
    const served = decision.actions.map((a) => a.actionId);
    expect({
      first: s.first === undefined ? undefined : served[0],
      never: served.filter((id) => s.never?.includes(id)),
      nothing: s.nothing === undefined ? undefined : served.length === 0,
      content: s.content === undefined ? undefined : Object.fromEntries(Object.keys(s.content).map((k) => [k, decision.actions[0]?.content[k]])),
    }).toEqual({ first: s.first, never: [], nothing: s.nothing, content: s.content });
  });

  it('the same verdicts with explain, which says why each promotion was dropped in the trap', () => {
    for (const s of SCENARIOS) {
      const explained = decide(catalog, s.view, { channel: s.channel, ...(s.placement ? { placement: s.placement } : {}), limit: 10, context: s.context ?? {}, explain: true, userId: 'u-1' }, NOW, {
        nonce: 'scenario',
        random: () => 0.5,
      });
      const plain = decide(catalog, s.view, { channel: s.channel, ...(s.placement ? { placement: s.placement } : {}), limit: 10, context: s.context ?? {}, explain: false, userId: 'u-1' }, NOW, {
        nonce: 'scenario',
        random: () => 0.5,
      });
      expect({ name: s.name, actions: explained.actions }).toEqual({ name: s.name, actions: plain.actions });
    }
    const trap = decide(catalog, vipWithComplaint(1), { channel: 'web', placement: 'home', limit: 10, context: {}, explain: true, userId: 'u-1' }, NOW, { nonce: 'scenario', random: () => 0.5 });
    const promoReasons = (trap.explanation?.candidates ?? []).filter((c) => PROMOS.includes(c.actionId)).map((c) => c.reason);
    expect(promoReasons.length).toBeGreaterThan(0);
    expect(promoReasons.every((r) => r !== undefined)).toBe(true);
  });
});
