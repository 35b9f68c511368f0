/**
 * The demo catalog (catalog/demo.yaml) encodes every seed scenario. These
 * tests read it through the catalog API the way a decision does (audience,
 * policies, consent, targeting, eligibility, then value × weight with
 * learning off where the demo turns it off) and check each scenario's
 * outcome; the HTTP scenarios end to end are the decide tests' job.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { evaluateAudience } from '#domain/catalog/audience.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { createFailureTally, createRuleVariables } from '#domain/catalog/rules.ts';
import { renderContent, templateScope } from '#domain/catalog/template.ts';
import { decide } from '#domain/decide/decide.ts';
import { contentFor, isFallbackHere, quietHoursFor, resolvePlacement } from '#domain/decide/policies.ts';
import type { Channel } from '#domain/channels.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { reactJourneys } from '#domain/journeys/react.ts';
import { timerEventOfDetail } from '#domain/journeys/timer.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { NOW, daysAgo, makeView, type ViewOverrides } from './catalog-support.ts';

const DEMO = new URL('../../catalog/demo.yaml', import.meta.url);

function demo(): CompiledCatalog {
  const result = loadCatalog(readFileSync(DEMO, 'utf8'), 'yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.problems, null, 2));
  return result.catalog;
}
const catalog = demo();

const granted = { granted: true, updatedAt: daysAgo(100) };
const allConsent = { email: granted, push: granted, sms: granted };

/** Rule failures of every decision of this file. */
const failures = createFailureTally();

/** The eligible actions for a channel/placement, best first, as decide() explains them (no exploration drawn). */
function eligible(
  view: ProfileView,
  channel: Channel,
  placement = '',
  context: Record<string, unknown> = {},
): string[] {
  const request = { channel, ...(placement ? { placement } : {}), limit: 10, context, explain: true };
  const decision = decide(catalog, view, request, NOW, { nonce: 'demo', random: () => 0.5, failures });
  return (decision.explanation?.candidates ?? []).filter((c) => c.eligible).map((c) => c.actionId);
}

const best = (view: ProfileView, channel: Channel, placement = '', context: Record<string, unknown> = {}) =>
  eligible(view, channel, placement, context)[0];

const customer = (o: ViewOverrides = {}) => makeView({ consent: allConsent, ...o, stats: { lastSeenAt: daysAgo(1), ...o.stats } });

describe('the demo catalog', () => {
  it('is valid, and its rules do not fail on an empty or an anonymous profile', () => {
    expect(catalog.actions.length).toBeGreaterThanOrEqual(15);
    const before = failures.rules;
    for (const view of [makeView(), makeView({ identified: false, userId: undefined, anonymousId: 'a-1' })]) {
      for (const channel of ['web', 'app', 'push', 'email', 'sms', 'call_center'] as const) eligible(view, channel, 'home');
    }
    expect({ failed: failures.rules - before, last: failures.lastRule }).toEqual({ failed: 0, last: undefined });
  });

  it('1. template personalisation: "Estimado Luis", or "Estimado cliente" without a first name', () => {
    const render = (view: ProfileView) => {
      const id = best(view, 'email');
      const action = catalog.actionsById.get(id ?? '');
      const content = action && contentFor(action, 'email');
      if (!action || !content) throw new Error(`no email action for ${JSON.stringify(view.traits)}`);
      const vars = createRuleVariables({ catalog, profile: view, channel: 'email', now: NOW });
      return renderContent(content, templateScope(vars), action.fallbacks).greeting;
    };
    expect(render(customer({ traits: { firstName: 'Luis' } }))).toBe('Estimado Luis');
    expect(render(customer())).toBe('Estimado cliente');
    expect(render(customer({ traits: { firstName: '' } }))).toBe('Estimado cliente');
  });

  it('2. a VIP whose last purchase is more than a month old gets email 123', () => {
    const vip = (days: number) => customer({ traits: { tier: 'VIP' }, stats: { lastPurchaseAt: daysAgo(days), orders: 2 } });
    expect(best(vip(45), 'email')).toBe('vip-winback-email-123');
    expect(contentFor(catalog.actionsById.get('vip-winback-email-123')!, 'email')?.literals.templateId).toBe('123');
    expect(eligible(vip(10), 'email')).not.toContain('vip-winback-email-123');
    expect(eligible(customer({ stats: { lastPurchaseAt: daysAgo(45) } }), 'email')).not.toContain('vip-winback-email-123');
  });

  it('3. an anonymous visitor with more than 10 visits today gets bannerMegaOferta on web home', () => {
    const anonymous = (visitsToday: number) =>
      makeView({ identified: false, userId: undefined, anonymousId: 'a-9', stats: { visitsToday, lastSeenAt: daysAgo(0) } });
    expect(best(anonymous(11), 'web', 'home')).toBe('bannerMegaOferta');
    expect(eligible(anonymous(10), 'web', 'home')).not.toContain('bannerMegaOferta');
    expect(eligible(anonymous(11), 'web', 'home_hero')).not.toContain('bannerMegaOferta');
    expect(catalog.fallbacksByChannel.web.filter((a) => isFallbackHere(a, 'web', 'home')).map((a) => a.id)).toEqual(['home-default-banner']);
  });

  it('4. the trap: a VIP with an open complaint gets no VIP promotion anywhere, service recovery instead; resolved, the offer is back', () => {
    const vip = (openComplaints: number) =>
      customer({
        traits: { tier: 'VIP', firstName: 'Ana' },
        stats: { lastPurchaseAt: daysAgo(40), orders: 3, returns: 1, lastReturnAt: daysAgo(5), openComplaints },
      });
    const promos = new Set(catalog.actions.filter((a) => a.tags.includes('promo')).map((a) => a.id));
    for (const channel of ['web', 'app', 'push', 'email', 'sms', 'call_center'] as const) {
      for (const placement of ['', 'home', 'home_hero']) {
        expect(eligible(vip(1), channel, placement).filter((id) => promos.has(id))).toEqual([]);
      }
    }
    expect(best(vip(1), 'call_center')).toBe('service-recovery-call');
    expect(best(vip(1), 'email')).toBe('apology-email');
    expect(best(vip(0), 'email')).toBe('vip-winback-email-123');
    expect(best(vip(0), 'web', 'home')).toBe('vip-lounge-banner');
    expect(eligible(vip(0), 'call_center')).toEqual([]);
  });

  it('5. personas: the sporty student gets push and fewer emails; the premium loyal customer another persona and action', () => {
    const student = customer({
      traits: { gender: 'male', age: 19, firstName: 'Leo' },
      preferences: { interests: ['sport'], preferredChannel: 'push' },
    });
    expect(evaluateAudience(catalog, student, NOW).persona).toBe('student-sport');
    expect(best(student, 'push')).toBe('sport-drop-push');
    expect(eligible(student, 'email')).toEqual([]);
    const premium = customer({
      traits: { gender: 'male', age: 19, firstName: 'Leo', createdAt: daysAgo(3 * 365 + 10) },
      preferences: { interests: ['sport'], preferredChannel: 'push' },
      stats: { revenue: 2500, orders: 12, visits30d: 15, lastPurchaseAt: daysAgo(3) },
    });
    expect(evaluateAudience(catalog, premium, NOW).persona).toBe('premium-loyal');
    expect(best(premium, 'push')).toBe('premium-preview');
  });

  it('6. channel preference by engagement: push for the push opener, email for the email reader', () => {
    const young = customer({
      traits: { age: 18 },
      engagement: { push: { delivered: 10, engaged: 7, rate: 0.7 }, email: { delivered: 10, engaged: 0, rate: 0 } },
    });
    const older = customer({
      traits: { age: 50 },
      engagement: { push: { delivered: 5, engaged: 0, rate: 0 }, email: { delivered: 10, engaged: 6, rate: 0.6 } },
    });
    expect(best(young, 'push')).toBe('weekly-picks');
    expect(eligible(young, 'email')).toEqual([]);
    expect(best(older, 'email')).toBe('weekly-picks');
    expect(eligible(older, 'push')).toEqual([]);
  });

  it('7. context: rain makes the recipe card win on the web; season and country drive another card', () => {
    const visitor = customer();
    expect(best(visitor, 'web', 'home', { weather: 'rain', city: 'Madrid' })).toBe('recipe-rainy-day');
    expect(eligible(visitor, 'web', 'home', { weather: 'sun' })).not.toContain('recipe-rainy-day');
    expect(best(visitor, 'web', 'home', { season: 'summer' })).toBe('summer-ice-cream');
    const card = catalog.actionsById.get('recipe-rainy-day')!;
    const vars = createRuleVariables({ catalog, profile: visitor, context: { weather: 'rain', city: 'Madrid' }, channel: 'web', now: NOW });
    expect(renderContent(contentFor(card, 'web')!, templateScope(vars)).body).toBe('Receta caliente en 30 minutos para un día gris en Madrid.');
  });

  it('8. churn: long silence, fewer visits and a return raise churnRisk above the threshold and bring a retention offer', () => {
    const leaving = customer({ stats: { lastSeenAt: daysAgo(70), visits30d: 0, returns: 1, orders: 2 } });
    const staying = customer({ stats: { lastSeenAt: daysAgo(1), visits30d: 12, orders: 4 } });
    const risk = (v: ProfileView) => evaluateAudience(catalog, v, NOW).scores.churnRisk ?? -1;
    expect(risk(leaving)).toBeGreaterThan(catalog.thresholds.get('churnRisk') ?? 1);
    expect(risk(staying)).toBeLessThan(0.1);
    expect(risk(customer({ stats: { lastSeenAt: undefined } }))).toBeLessThan(0.1);
    expect(best(leaving, 'email')).toBe('retention-offer');
    expect(eligible(staying, 'email')).not.toContain('retention-offer');
  });

  it('churn win-back journey: entering churn risk sends the retention email now, two days later the push; an order ends it', () => {
    const staying = customer({ stats: { lastSeenAt: daysAgo(1), visits30d: 12, orders: 4 } });
    const leaving = customer({ stats: { lastSeenAt: daysAgo(70), visits30d: 0, returns: 1, orders: 2 } });
    const enrich = (v: ProfileView): ProfileView => {
      const audience = evaluateAudience(catalog, v, NOW);
      return { ...v, segments: audience.segments, scores: audience.scores };
    };
    const at = NOW.getTime();
    const event = (name: string, time: number, extra: Partial<StoredEvent> = {}): StoredEvent => ({
      pk: `key_1#${name}-${time}`,
      profileKey: 'u#u-1',
      sortKey: `${new Date(time).toISOString()}#${name}`,
      sourceId: 'key_1',
      messageId: `${name}-${time}`,
      type: 'track',
      userId: 'u-1',
      event: name,
      timestamp: new Date(time).toISOString(),
      receivedAt: new Date(time).toISOString(),
      expiresAt: 1,
      ...extra,
    });
    const change = (e: StoredEvent, before: ProfileView, after: ProfileView, now = at) => ({ eventPk: e.pk, event: e, profileKey: 'u#u-1', before, after, now });
    const entered = reactJourneys(catalog, {}, change(event('Return', at), enrich(staying), enrich(leaving)));
    expect(entered.outbox.map((e) => [e.detailType, e.status, e.detail.step, e.detail.actionId])).toEqual([
      ['Kairos Journey Action', 'now', 'retention-email', 'retention-offer'],
      ['Kairos Journey Timer', 'deferred', 'two-days', undefined],
    ]);
    const timer = entered.outbox[1]!;
    expect(timer.sendAt).toBe(at + 2 * 86_400_000);
    // The timer's event as the dispatcher writes it when due (its run named by number and entry time).
    const due = timerEventOfDetail(timer.detail, timer.sendAt, 1)!;
    const later = reactJourneys(catalog, entered.runs, change(due, enrich(leaving), enrich(leaving), timer.sendAt));
    expect(later.outbox.map((e) => [e.status, e.detail.step, e.detail.channel, e.detail.actionId])).toEqual([['now', 'retention-push', 'push', 'retention-offer']]);
    expect(later.runs['churn-winback']).toMatchObject({ ended: { how: 'completed' } });
    // An order before the timer: the run is over, and the timer (late) does nothing.
    const ordered = reactJourneys(catalog, entered.runs, change(event('Order Completed', at + 3_600_000), enrich(leaving), enrich(leaving)));
    expect(ordered.runs['churn-winback']).toMatchObject({ ended: { how: 'exited' } });
    expect(reactJourneys(catalog, ordered.runs, change(due, enrich(leaving), enrich(leaving), timer.sendAt)).outbox).toEqual([]);
  });

  it('9. zero-party data: cycling declared, not running, gives cycling content', () => {
    const rider = customer({
      preferences: { interests: ['cycling'] },
      stats: { categoryInterests: { running: 5 } },
    });
    expect(best(rider, 'web', 'home')).toBe('cycling-content');
    expect(eligible(rider, 'web', 'home')).not.toContain('running-content');
    expect(eligible(rider, 'push')).toContain('cycling-content');
    const undeclared = customer({ stats: { categoryInterests: { running: 5 } } });
    expect(eligible(undeclared, 'web', 'home')).toContain('running-content');
  });

  it('10. consent: without email consent no email action; withdrawn consent counts as absent', () => {
    const vip = customer({ traits: { tier: 'VIP' }, stats: { lastPurchaseAt: daysAgo(60) } });
    expect(eligible(vip, 'email').length).toBeGreaterThan(0);
    const withdrawn = { ...vip, consent: { ...vip.consent, email: { granted: false, updatedAt: daysAgo(0) } } };
    expect(eligible(withdrawn, 'email')).toEqual([]);
    expect(eligible({ ...vip, consent: {} }, 'email')).toEqual([]);
    expect([...catalog.policies.consentRequired].sort()).toEqual(['email', 'push', 'sms']);
  });

  it('11. test and learn: two banner variants where learning is on; an A/B experiment with a holdout', () => {
    const banner = catalog.actionsById.get('spring-sale-banner')!;
    expect(banner.variants.map((v) => v.id)).toEqual(['a', 'b']);
    expect(resolvePlacement(catalog, 'web', 'home_hero').learning).toBe(true);
    expect(resolvePlacement(catalog, 'web', 'home').learning).toBe(false);
    expect(best(customer(), 'web', 'home_hero')).toBe('spring-sale-banner');
    expect(catalog.learning).toMatchObject({ enabled: true, exploration: 0.1, floor: 0.02 });
    const experiment = catalog.experimentsById.get('onboarding-copy');
    expect(experiment).toMatchObject({ kind: 'variants', action: 'app-onboarding-card', holdout: 0.1, running: true });
    expect(experiment?.arms.map((a) => [a.variant, a.upTo])).toEqual([
      ['short', 0.5],
      ['long', 1],
    ]);
    expect(catalog.actionsById.get('app-onboarding-card')?.experiments.map((e) => e.id)).toEqual(['onboarding-copy']);
  });

  it("policies: push 1/day and email 2/week channel caps; email, push and SMS quiet at night in the customer's zone, else Madrid's", () => {
    expect(catalog.policies.channelCapsByChannel.push?.map((c) => c.label)).toEqual(['1/1d']);
    expect(catalog.policies.channelCapsByChannel.email?.map((c) => c.label)).toEqual(['2/7d']);
    const night = new Date('2026-11-23T22:30:00Z'); // 23:30 in Madrid
    const morning = new Date('2026-11-23T09:30:00Z'); // 10:30 in Madrid
    for (const channel of ['email', 'push', 'sms'] as const) {
      expect(quietHoursFor(catalog, channel, night, undefined)?.id).toBe('marketing-night');
      expect(quietHoursFor(catalog, channel, morning, undefined)).toBeUndefined();
      // 04:30 in New York: the customer's own night.
      expect(quietHoursFor(catalog, channel, morning, 'America/New_York')?.id).toBe('marketing-night');
    }
    // Inbound and service channels are never quiet.
    for (const channel of ['web', 'app', 'call_center'] as const) expect(quietHoursFor(catalog, channel, night, undefined)).toBeUndefined();
    // 20:30 UTC is 21:30 in Madrid: night in the policy's zone, not for a customer whose zone is UTC.
    const utcEvening = new Date('2026-11-23T20:30:00Z');
    expect(quietHoursFor(catalog, 'email', utcEvening, undefined)?.id).toBe('marketing-night');
    expect(quietHoursFor(catalog, 'email', utcEvening, 'UTC')).toBeUndefined();
  });
});
