/**
 * The decision core (shared/domain/decide): every drop reason in its order,
 * arbitration, caps windows, quiet hours across zones, consent, suppression,
 * experiments, templating, push payloads, fallbacks, determinism, learning.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { decide, emptyProfile, type DecideOptions } from '#domain/decide/decide.ts';
import { decodeDecisionId } from '#domain/decide/decision-id.ts';
import type { DecideRequest, Decision, LearningStats } from '#domain/decide/types.ts';
import { ArmProbabilityCache } from '#domain/learning/policy.ts';
import { NO_CONTEXT } from '#domain/learning/statistics.ts';
import { applyEvents, mergeProfiles } from '#domain/profile/apply.ts';
import { emptyProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { storedEvent } from '../support/stream.ts';
import type { Channel } from '#domain/channels.ts';

const NOW = new Date('2026-01-15T12:00:00Z');
const granted = { granted: true, updatedAt: '2026-01-01T00:00:00Z' };

function catalog(input: CatalogInput, version = 7): CompiledCatalog {
  const result = loadCatalog(input, 'object', { version });
  if (!result.ok) throw new Error(`catalog: ${JSON.stringify(result.problems)}`);
  return result.catalog;
}

/** Learning off unless a test turns it on: decisions are then deterministic. */
const noLearning = { enabled: false, exploration: 0 } as const;

function profile(overrides: Partial<ProfileView> = {}, stats: Partial<ProfileView['stats']> = {}): ProfileView {
  const base = emptyProfile({ userId: 'u-1' });
  return { ...base, ...overrides, stats: { ...base.stats, ...stats } };
}

function request(channel: Channel, extra: Partial<DecideRequest> = {}): DecideRequest {
  return { userId: 'u-1', channel, limit: 1, context: {}, explain: true, ...extra };
}

const run = (c: CompiledCatalog, p: ProfileView, r: DecideRequest, options: DecideOptions = {}, now = NOW): Decision =>
  decide(c, p, r, now, { nonce: 'n1', ...options });

const ids = (d: Decision) => d.actions.map((a) => a.actionId);
const whyOf = (d: Decision, actionId: string) => d.explanation?.candidates.find((c) => c.actionId === actionId)?.why;

const banner = (id: string, extra: Record<string, unknown> = {}) => ({
  id,
  name: id,
  content: { web: { title: `${id} title` } },
  ...extra,
});

describe('drop reasons', () => {
  it('each check drops with its reason code, and the first failing check is the one reported', () => {
    const c = catalog({
      learning: noLearning,
      tags: ['promo'],
      segments: [{ id: 'vip', rule: 'profile.traits.tier == "VIP"' }],
      policies: {
        suppressions: [{ id: 'no-promo-in-conflict', tags: ['promo'], when: 'profile.stats.openComplaints > 0.0' }],
      },
      actions: [
        banner('expired', { validity: { to: '2026-01-01T00:00:00Z' } }),
        banner('not-yet', { validity: { from: '2026-02-01T00:00:00Z' } }),
        // Expired AND suppressed: validity comes first.
        banner('expired-promo', { tags: ['promo'], validity: { to: '2026-01-01T00:00:00Z' } }),
        banner('promo', { tags: ['promo'] }),
        banner('capped', { caps: ['1/day'] }),
        banner('ruled-out', { eligibility: 'profile.stats.visitsToday > 10.0' }),
        // Capped AND ruled out: the cap comes first.
        banner('capped-and-ruled-out', { caps: ['1/day'], eligibility: 'false' }),
        banner('targeted', { targeting: { segments: ['vip'] } }),
        banner('persona-only', { targeting: { personas: ['student'] } }),
        banner('ok'),
      ],
      personas: [{ id: 'student', name: 'Student', rule: 'profile.traits.age < 25.0' }],
    });
    const recent = [new Date(NOW.getTime() - 3_600_000).toISOString()];
    const p = profile(
      {
        contacts: {
          capped: { impressions: recent, clicks: 0, conversions: 0 },
          'capped-and-ruled-out': { impressions: recent, clicks: 0, conversions: 0 },
        },
      },
      { openComplaints: 1, visitsToday: 2 },
    );
    const d = run(c, p, request('web'));
    expect(ids(d)).toEqual(['ok']);
    expect(whyOf(d, 'expired')).toBe('validity');
    expect(whyOf(d, 'not-yet')).toBe('validity');
    expect(whyOf(d, 'expired-promo')).toBe('validity');
    expect(whyOf(d, 'promo')).toBe('suppressed:no-promo-in-conflict');
    expect(whyOf(d, 'capped')).toBe('frequency_cap:1/day');
    expect(whyOf(d, 'ruled-out')).toBe('rule:not eligible');
    expect(whyOf(d, 'capped-and-ruled-out')).toBe('frequency_cap:1/day');
    expect(whyOf(d, 'targeted')).toMatch(/^targeting:segments vip/);
    expect(whyOf(d, 'persona-only')).toMatch(/^targeting:personas student/);
    expect(d.explanation?.candidates.find((x) => x.actionId === 'ok')).toMatchObject({ eligible: true, selected: true });
    expect(d.explanation?.policies).toContain('suppressed:no-promo-in-conflict (promo)');
  });

  it('the verdict without explain is the same as with it (cheap checks first changes nothing)', () => {
    const c = catalog({
      learning: noLearning,
      segments: [{ id: 'vip', rule: 'profile.traits.tier == "VIP"' }],
      actions: [
        banner('a', { targeting: { segments: ['vip'] }, eligibility: 'profile.stats.visitsToday > 3.0', value: 5 }),
        banner('b', { eligibility: 'profile.stats.visitsToday > 5.0', value: 3 }),
        banner('c', { caps: ['2/7d'], value: 2 }),
        banner('d', { value: 1 }),
      ],
    });
    fc.assert(
      fc.property(
        fc.constantFrom('VIP', 'basic'),
        fc.integer({ min: 0, max: 10 }),
        fc.array(fc.integer({ min: 0, max: 10 * 24 }), { maxLength: 3 }),
        (tier, visits, hoursAgo) => {
          const impressions = hoursAgo.sort((x, y) => x - y).map((h) => new Date(NOW.getTime() - h * 3_600_000).toISOString());
          const p = profile({ traits: { tier }, contacts: { c: { impressions, clicks: 0, conversions: 0 } } }, { visitsToday: visits });
          const explained = run(c, p, request('web', { limit: 4 }));
          const plain = run(c, p, request('web', { limit: 4, explain: false }));
          expect(plain.actions).toEqual(explained.actions);
          expect(plain.explanation).toBeUndefined();
        },
      ),
      { numRuns: 200 },
    );
  });

  it('an eligibility rule that fails at run time is "not eligible", explained, and never fails the decision', () => {
    const c = catalog({
      learning: noLearning,
      actions: [banner('needs-city', { eligibility: 'context.city == "Madrid"' }), banner('other')],
    });
    const d = run(c, profile(), request('web'));
    expect(ids(d)).toEqual(['other']);
    expect(whyOf(d, 'needs-city')).toMatch(/^rule:error /);
    const madrid = run(c, profile(), request('web', { context: { city: 'Madrid' } }));
    expect(ids(madrid)).toEqual(['needs-city']);
  });

  it('rules see the request context, evaluated at decision time', () => {
    const c = catalog({
      learning: noLearning,
      actions: [
        banner('rainy-recipe', { eligibility: 'has(context.weather) && context.weather == "rain"', value: 2 }),
        banner('sunny'),
      ],
    });
    expect(ids(run(c, profile(), request('web', { context: { weather: 'rain' } })))).toEqual(['rainy-recipe']);
    expect(ids(run(c, profile(), request('web', { context: { weather: 'sun' } })))).toEqual(['sunny']);
  });
});

describe('consent', () => {
  const c = catalog({
    learning: noLearning,
    actions: [
      { id: 'push-offer', name: 'p', content: { push: { title: 't', body: 'b', deepLink: 'app://x' } } },
      { id: 'web-offer', name: 'w', content: { web: { title: 't' } } },
      { id: 'sms-fallback', name: 's', content: { sms: { text: 'hi' } }, fallback: true },
    ],
  });

  it('email, sms and push need granted consent by default; web does not', () => {
    expect(ids(run(c, profile(), request('push')))).toEqual([]);
    expect(whyOf(run(c, profile(), request('push')), 'push-offer')).toBe('consent:push');
    expect(ids(run(c, profile({ consent: { push: { granted: false, updatedAt: NOW.toISOString() } } }), request('push')))).toEqual([]);
    expect(ids(run(c, profile({ consent: { push: granted } }), request('push')))).toEqual(['push-offer']);
    expect(ids(run(c, profile(), request('web')))).toEqual(['web-offer']);
  });

  it('a fallback never bypasses consent', () => {
    const d = run(c, profile(), request('sms'));
    expect(d.actions).toEqual([]);
    expect(d.fallback).toBeUndefined();
    expect(ids(run(c, profile({ consent: { sms: granted } }), request('sms')))).toEqual(['sms-fallback']);
  });

  it('a catalog can require consent on other channels, or none', () => {
    const strict = catalog({ learning: noLearning, policies: { consentRequired: ['web'] }, actions: [banner('w')] });
    expect(ids(run(strict, profile(), request('web')))).toEqual([]);
    expect(ids(run(strict, profile({ consent: { web: granted } }), request('web')))).toEqual(['w']);
  });
});

describe('suppression policies', () => {
  const c = catalog({
    learning: noLearning,
    tags: ['promo', 'vip', 'service'],
    segments: [{ id: 'vip', rule: 'profile.traits.tier == "VIP" && daysSince(profile.stats.lastPurchaseAt) > 30.0' }],
    policies: {
      suppressions: [
        {
          id: 'customer-in-conflict',
          tags: ['promo'],
          when: 'profile.stats.openComplaints > 0.0 || daysSince(profile.stats.lastReturnAt) < 14.0',
        },
      ],
    },
    actions: [
      {
        id: 'email-123',
        name: 'VIP offer',
        tags: ['promo', 'vip'],
        value: 10,
        targeting: { segments: ['vip'] },
        content: { email: { templateId: '123', subject: 'Para ti' } },
      },
      {
        id: 'apology-email',
        name: 'Apology',
        tags: ['service'],
        eligibility: 'profile.stats.openComplaints > 0.0',
        content: { email: { templateId: 'sorry', subject: 'Lo sentimos' } },
      },
    ],
  });
  const vip = (openComplaints: number, lastReturnAt?: string) =>
    profile(
      { traits: { tier: 'VIP' }, consent: { email: granted } },
      { openComplaints, lastPurchaseAt: '2025-11-01T00:00:00Z', ...(lastReturnAt ? { lastReturnAt } : {}) },
    );

  it('a tag is suppressed while the condition holds, and comes back once it does not', () => {
    expect(ids(run(c, vip(0), request('email')))).toEqual(['email-123']);
    const conflict = run(c, vip(1, '2026-01-10T00:00:00Z'), request('email'));
    expect(ids(conflict)).toEqual(['apology-email']);
    expect(whyOf(conflict, 'email-123')).toBe('suppressed:customer-in-conflict');
    // Complaint resolved, the return is old: the VIP offer is back.
    expect(ids(run(c, vip(0, '2025-12-01T00:00:00Z'), request('email')))).toEqual(['email-123']);
  });

  it('a suppression limited to some channels leaves the others alone', () => {
    const scoped = catalog({
      learning: noLearning,
      tags: ['promo'],
      policies: { suppressions: [{ id: 'no-web-promo', tags: ['promo'], when: 'true', channels: ['web'] }] },
      actions: [{ id: 'promo', name: 'p', tags: ['promo'], content: { web: { title: 'x' }, app: { title: 'y' } } }],
    });
    expect(ids(run(scoped, profile(), request('web')))).toEqual([]);
    expect(ids(run(scoped, profile(), request('app')))).toEqual(['promo']);
  });
});

describe('quiet hours in the customer time zone', () => {
  const c = catalog({
    learning: noLearning,
    policies: { quietHours: [{ id: 'night', channels: ['push', 'sms'], from: '21:00', to: '09:00' }] },
    actions: [{ id: 'push-offer', name: 'p', content: { push: { title: 't', body: 'b', deepLink: 'app://x' } } }],
  });
  const at = (iso: string, timezone: string, context: Record<string, unknown> = {}) =>
    run(c, profile({ timezone, timezoneSource: 'trait', consent: { push: granted } }), request('push', { context }), {}, new Date(iso));

  it('the same instant is quiet in Madrid and not in New York', () => {
    const instant = '2026-01-15T22:30:00Z'; // 23:30 Madrid, 17:30 New York
    expect(ids(at(instant, 'Europe/Madrid'))).toEqual([]);
    expect(whyOf(at(instant, 'Europe/Madrid'), 'push-offer')).toBe('quiet_hours:night');
    expect(ids(at(instant, 'America/New_York'))).toEqual(['push-offer']);
  });

  it('the window spans midnight and its end is exclusive', () => {
    expect(ids(at('2026-01-15T08:59:00Z', 'UTC'))).toEqual([]);
    expect(ids(at('2026-01-15T09:00:00Z', 'UTC'))).toEqual(['push-offer']);
    expect(ids(at('2026-01-15T20:59:00Z', 'UTC'))).toEqual(['push-offer']);
    expect(ids(at('2026-01-15T21:00:00Z', 'UTC'))).toEqual([]);
    expect(ids(at('2026-01-16T02:00:00Z', 'UTC'))).toEqual([]);
  });

  it('the zone the device sends (context.timezone) wins over the stored one', () => {
    expect(ids(at('2026-01-15T22:30:00Z', 'Europe/Madrid', { timezone: 'America/New_York' }))).toEqual(['push-offer']);
  });

  it('a device zone that is no time zone (a typo, an offset text) is ignored: the stored zone holds, never UTC instead', () => {
    const instant = '2026-01-15T22:30:00Z'; // 23:30 Madrid, 22:30 UTC: quiet in both; 17:30 New York
    for (const timezone of ['Mars/Olympus', 'GMT+1 (CET)', 'europe madrid', ' ']) {
      expect({ timezone, why: whyOf(at(instant, 'Europe/Madrid', { timezone }), 'push-offer') }).toEqual({ timezone, why: 'quiet_hours:night' });
      // A customer in New York is not woken up, nor held back, by a device's bad zone read as UTC.
      expect({ timezone, ids: ids(at(instant, 'America/New_York', { timezone })) }).toEqual({ timezone, ids: ['push-offer'] });
      // Nor woken up at 04:30 in New York (09:30 UTC, not quiet in UTC).
      expect({ timezone, why: whyOf(at('2026-01-15T09:30:00Z', 'America/New_York', { timezone }), 'push-offer') }).toEqual({ timezone, why: 'quiet_hours:night' });
    }
  });

  it('a customer whose zone is UTC is read in UTC; one with no zone in the policy zone', () => {
    const madrid = catalog({
      learning: noLearning,
      policies: { quietHours: [{ id: 'night', channels: ['push'], from: '21:00', to: '09:00', timezone: 'Europe/Madrid' }] },
      actions: c.document.actions,
    });
    const instant = new Date('2026-01-15T20:30:00Z'); // 21:30 in Madrid, 20:30 in UTC
    const inZone = (timezone: string, timezoneSource: ProfileView['timezoneSource']) =>
      run(madrid, profile({ timezone, timezoneSource, consent: { push: granted } }), request('push'), {}, instant);
    expect(ids(inZone('UTC', 'trait'))).toEqual(['push-offer']);
    expect(ids(inZone('UTC', 'event context'))).toEqual(['push-offer']);
    expect(whyOf(inZone('UTC', 'none'), 'push-offer')).toBe('quiet_hours:night');
    expect(whyOf(inZone('Asia/Tokyo', 'event context'), 'push-offer')).toBe('quiet_hours:night'); // 05:30 in Tokyo
    expect(ids(inZone('America/New_York', 'trait'))).toEqual(['push-offer']);
  });

  it('a channel without quiet hours is never quiet', () => {
    const web = catalog({ learning: noLearning, policies: c.document.policies, actions: [banner('w')] });
    expect(ids(run(web, profile({ timezone: 'Europe/Madrid' }), request('web'), {}, new Date('2026-01-15T23:00:00Z')))).toEqual(['w']);
  });
});

describe('caps', () => {
  const hoursAgo = (h: number) => new Date(NOW.getTime() - h * 3_600_000).toISOString();

  it('frequency caps count the action impressions in a rolling window', () => {
    const c = catalog({ learning: noLearning, actions: [banner('a', { caps: ['1/day', { max: 3, per: '7d' }] }), banner('b', { value: 0.5 })] });
    const withImpressions = (...hours: number[]) =>
      profile({ contacts: { a: { impressions: hours.map(hoursAgo), clicks: 0, conversions: 0 } } });
    expect(ids(run(c, withImpressions(23), request('web')))).toEqual(['b']);
    expect(ids(run(c, withImpressions(25), request('web')))).toEqual(['a']);
    expect(ids(run(c, withImpressions(25, 50, 100), request('web')))).toEqual(['b']);
    expect(whyOf(run(c, withImpressions(25, 50, 100), request('web')), 'a')).toBe('frequency_cap:3/7d');
    expect(ids(run(c, withImpressions(25, 50, 24 * 7 + 1), request('web')))).toEqual(['a']);
  });

  it('a channel cap counts every contact on the channel, whatever the action', () => {
    const c = catalog({
      learning: noLearning,
      policies: { channelCaps: [{ id: 'push-daily', channel: 'push', max: 1, per: '1d' }] },
      actions: [{ id: 'p', name: 'p', content: { push: { title: 't', body: 'b', deepLink: 'x://y' } } }],
    });
    const contacted = (h: number) => profile({ consent: { push: granted }, channelContacts: { push: [hoursAgo(h)] } });
    expect(ids(run(c, contacted(2), request('push')))).toEqual([]);
    expect(whyOf(run(c, contacted(2), request('push')), 'p')).toBe('channel_cap:push-daily 1/1d');
    expect(ids(run(c, contacted(30), request('push')))).toEqual(['p']);
  });
});

describe('arbitration', () => {
  it('score = propensity x value x weight (action, tag and placement weights), top-k in order', () => {
    const c = catalog({
      learning: noLearning, // propensity = prior mean 0.5
      tags: ['promo', 'content'],
      arbitration: {
        weights: { tags: { promo: 2 } },
        placements: [{ channel: 'web', placement: 'sidebar', weights: { actions: { article: 10 } } }],
      },
      actions: [
        banner('article', { tags: ['content'], value: 1 }),
        banner('offer', { tags: ['promo'], value: 3 }),
        banner('heavy', { value: 2, weight: 2 }),
      ],
    });
    const d = run(c, profile(), request('web', { limit: 3 }));
    expect(d.actions.map((a) => [a.actionId, a.score])).toEqual([
      ['offer', 3], // 0.5 × 3 × 2
      ['heavy', 2], // 0.5 × 2 × 2
      ['article', 0.5],
    ]);
    const sidebar = run(c, profile(), request('web', { limit: 3, placement: 'sidebar' }));
    expect(sidebar.actions.map((a) => [a.actionId, a.score])).toEqual([
      ['article', 5],
      ['offer', 3],
      ['heavy', 2],
    ]);
  });

  it('equal scores: higher priority wins, then catalog order', () => {
    const c = catalog({
      learning: noLearning,
      actions: [banner('first'), banner('second'), banner('urgent', { priority: 5 })],
    });
    expect(ids(run(c, profile(), request('web', { limit: 3 })))).toEqual(['urgent', 'first', 'second']);
  });

  it('the limit is capped by the placement, and only actions for the placement compete', () => {
    const c = catalog({
      learning: noLearning,
      arbitration: { placements: [{ channel: 'web', placement: 'home_hero', limit: 1 }] },
      actions: [
        { id: 'hero', name: 'h', value: 1, content: { web: { title: 'h', placements: ['home_hero'] } } },
        { id: 'side', name: 's', value: 5, content: { web: { title: 's', placements: ['sidebar'] } } },
        { id: 'any', name: 'a', value: 2, content: { web: { title: 'a' } } },
      ],
    });
    expect(ids(run(c, profile(), request('web', { placement: 'home_hero', limit: 10 })))).toEqual(['any']);
    expect(ids(run(c, profile(), request('web', { placement: 'sidebar', limit: 10 })))).toEqual(['side', 'any']);
    // Without a placement, only content not restricted to placements.
    expect(ids(run(c, profile(), request('web', { limit: 10 })))).toEqual(['any']);
    expect(ids(run(c, profile(), request('web', { limit: 10, explain: false })))).toEqual(['any']);
  });

  it('explains a placement no content names (a misspelling): which placements the channel\'s content names', () => {
    const c = catalog({
      learning: noLearning,
      actions: [
        { id: 'hero', name: 'h', value: 1, content: { web: { title: 'h', placements: ['home_hero'] } } },
        { id: 'side', name: 's', value: 5, content: { web: { title: 's', placements: ['sidebar'] } }, variants: [{ id: 'v', content: { web: { title: 'v', placements: ['footer'] } } }] },
        { id: 'any', name: 'a', value: 2, content: { web: { title: 'a' } } },
      ],
    });
    const facts = (placement: string | undefined) => run(c, profile(), request('web', { ...(placement !== undefined ? { placement } : {}), limit: 10, explain: true })).explanation?.policies ?? [];
    const misspelt = run(c, profile(), request('web', { placement: 'homehero', limit: 10, explain: true }));
    expect(ids(misspelt)).toEqual(['any']);
    expect(facts('homehero')).toEqual(['placement:homehero is named by no web content (its placements: footer, home_hero, sidebar); only content without placements fills it']);
    for (const known of ['home_hero', 'footer', undefined]) expect(facts(known)).toEqual([]);
  });

  it('a propensity model score replaces learning', () => {
    const c = catalog({
      learning: noLearning,
      models: [{ id: 'buy', kind: 'logistic', intercept: 0, features: [{ name: 'v', expression: 'profile.stats.visitsToday', weight: 1 }] }],
      actions: [banner('modelled', { propensityModel: 'buy' }), banner('flat')],
    });
    const d = run(c, profile({}, { visitsToday: 3 }), request('web', { limit: 2 }));
    expect(d.actions[0]?.actionId).toBe('modelled');
    expect(d.actions[0]?.propensity).toBeCloseTo(1 / (1 + Math.exp(-3)), 5);
    expect(d.actions[0]?.reasons).toContain('model:buy');
  });
});

describe('segments, personas and reasons', () => {
  it('returns the audience and the reasons of each action', () => {
    const c = catalog({
      learning: noLearning,
      segments: [{ id: 'anonymous-frequent', rule: '!profile.identified && profile.stats.visitsToday > 10.0' }],
      personas: [{ id: 'student-sport', name: 'Student', rule: 'likes("sport")' }],
      actions: [
        {
          id: 'bannerMegaOferta',
          name: 'Mega',
          targeting: { segments: ['anonymous-frequent'] },
          eligibility: 'channel == "web"',
          content: { web: { title: 'Mega', placements: ['home'] } },
        },
      ],
    });
    const visitor = (visitsToday: number): ProfileView => ({
      ...emptyProfile({ anonymousId: 'a-9' }),
      preferences: { interests: ['sport'] },
      stats: { ...emptyProfile({}).stats, visitsToday },
    });
    const req = { anonymousId: 'a-9', channel: 'web' as const, placement: 'home', limit: 1, context: {}, explain: false };
    const d = run(c, visitor(11), req);
    expect(d).toMatchObject({ anonymousId: 'a-9', segments: ['anonymous-frequent'], persona: 'student-sport' });
    expect(d.userId).toBeUndefined();
    expect(d.actions[0]?.reasons).toEqual(['segment:anonymous-frequent', 'rule:eligible']);
    expect(ids(run(c, visitor(10), req))).toEqual([]);
  });

  it('an unknown customer is a new anonymous one: the empty profile decides', () => {
    const c = catalog({ learning: noLearning, actions: [banner('welcome', { eligibility: '!profile.identified' })] });
    const d = run(c, emptyProfile({ anonymousId: 'new-visitor' }), { ...request('web'), userId: undefined, anonymousId: 'new-visitor' });
    expect(ids(d)).toEqual(['welcome']);
  });
});

describe('content', () => {
  const c = catalog({
    learning: noLearning,
    actions: [
      {
        id: 'email-123',
        name: 'Greeting',
        content: { email: { templateId: '123', subject: 'Hola', greeting: 'Estimado {{ firstName }}' } },
        fallbacks: { firstName: 'cliente' },
      },
      {
        id: 'push-1',
        name: 'Push',
        content: {
          push: {
            title: 'Hola {{ firstName | default: "amig@" }}',
            body: 'Llueve en {{ context.city }}',
            deepLink: 'app://offers/{{ context.city | downcase }}',
          },
        },
      },
      {
        id: 'push-img',
        name: 'Push with image',
        priority: -1,
        content: { push: { title: 't', body: 'b', deepLink: 'app://x', imageUrl: 'https://img/{{ context.city }}.png' } },
      },
    ],
  });
  const withConsent = (traits: Record<string, unknown>) => profile({ traits, consent: { email: granted, push: granted } });

  it('renders the template from the profile, with the declared fallback when the field is unknown', () => {
    expect(run(c, withConsent({ firstName: 'Luis' }), request('email')).actions[0]?.content).toEqual({
      templateId: '123',
      subject: 'Hola',
      greeting: 'Estimado Luis',
    });
    expect(run(c, withConsent({}), request('email')).actions[0]?.content.greeting).toBe('Estimado cliente');
    expect(run(c, withConsent({ firstName: '' }), request('email')).actions[0]?.content.greeting).toBe('Estimado cliente');
    // Blank as Liquid's `default` reads it: whitespace only, false, an empty list.
    for (const firstName of ['   ', '\t\n', false, []]) {
      expect({ firstName, greeting: run(c, withConsent({ firstName }), request('email')).actions[0]?.content.greeting }).toEqual({
        firstName,
        greeting: 'Estimado cliente',
      });
    }
    expect(run(c, withConsent({ firstName: ' Ana ' }), request('email')).actions[0]?.content.greeting).toBe('Estimado  Ana ');
  });

  it('push content is a ready payload: title, body, deepLink and an optional imageUrl', () => {
    const d = run(c, withConsent({ firstName: 'Ana' }), request('push', { limit: 2, context: { city: 'Madrid' } }));
    expect(d.actions[0]?.content).toEqual({ title: 'Hola Ana', body: 'Llueve en Madrid', deepLink: 'app://offers/madrid' });
    expect(d.actions[1]?.content).toEqual({ title: 't', body: 'b', deepLink: 'app://x', imageUrl: 'https://img/Madrid.png' });
  });

  it('context values are data, never templates', () => {
    const d = run(c, withConsent({ firstName: '{{ 7 * 7 }}' }), request('push', { context: { city: '{% raw %}{{ 7 | plus: 42 }}' } }));
    expect(JSON.stringify(d.actions)).not.toContain('49');
    expect(d.actions[0]?.content.body).toBe('Llueve en {% raw %}{{ 7 | plus: 42 }}');
  });
});

describe('fallbacks and degraded decisions', () => {
  const c = catalog({
    learning: noLearning,
    actions: [
      banner('vip-only', { eligibility: 'profile.traits.tier == "VIP"' }),
      { id: 'default-hero', name: 'd', content: { web: { title: 'Bienvenido' } }, fallback: [{ channel: 'web', placement: 'home_hero' }] },
      { id: 'push-generic', name: 'g', content: { push: { title: 't', body: 'b', deepLink: 'x://y' } }, fallback: true },
    ],
  });

  it('no eligible action: the fallback of the channel/placement, flagged', () => {
    const d = run(c, profile(), request('web', { placement: 'home_hero' }));
    expect(d.fallback).toBe(true);
    expect(d.actions).toMatchObject([{ actionId: 'default-hero', fallback: true, reasons: ['fallback'] }]);
    expect(decodeDecisionId(d.decisionId)?.fallback).toBe(true);
  });

  it('a fallback only serves its role and only when nothing else is eligible', () => {
    // Outside its role it is an ordinary candidate.
    const sidebar = run(c, profile(), request('web', { placement: 'sidebar' }));
    expect(sidebar.actions).toMatchObject([{ actionId: 'default-hero', reasons: [] }]);
    expect(sidebar.fallback).toBeUndefined();
    expect(sidebar.actions[0]?.fallback).toBeUndefined();
    const vip = run(c, profile({ traits: { tier: 'VIP' } }), request('web', { placement: 'home_hero' }));
    expect(ids(vip)).toEqual(['vip-only']);
    expect(vip.fallback).toBeUndefined();
  });

  it('degraded: the fallbacks only, never a consent-bound channel', () => {
    const vip = profile({ traits: { tier: 'VIP' } });
    const d = run(c, vip, request('web', { placement: 'home_hero' }), { degraded: true });
    expect(d).toMatchObject({ degraded: true, fallback: true, actions: [{ actionId: 'default-hero' }] });
    expect(decodeDecisionId(d.decisionId)?.degraded).toBe(true);
    const push = run(c, emptyProfile({ userId: 'u-1' }), request('push'), { degraded: true });
    expect(push.actions).toEqual([]);
  });
});

describe('experiments', () => {
  const c = catalog({
    learning: noLearning,
    actions: [
      banner('copy-test', {
        content: { web: { title: 'base' } },
        variants: [
          { id: 'a', content: { web: { title: 'A' } } },
          { id: 'b', content: { web: { title: 'B' } } },
        ],
      }),
      banner('arm-x', { value: 2 }),
      banner('arm-y', { value: 2 }),
    ],
    experiments: [
      { id: 'banner-copy', kind: 'variants', action: 'copy-test', arms: [{ id: 'a', variant: 'a' }, { id: 'b', variant: 'b' }], holdout: 0.2 },
      { id: 'x-vs-y', kind: 'actions', arms: [{ id: 'x', action: 'arm-x' }, { id: 'y', action: 'arm-y' }] },
    ],
  });

  it('a customer always gets the same arm, and only that arm', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 30 }), (userId) => {
        const p = emptyProfile({ userId });
        const req = { ...request('web', { limit: 3 }), userId };
        const first = run(c, p, req, { nonce: 'a' });
        const again = run(c, p, req, { nonce: 'b' });
        expect(again.actions).toEqual(first.actions);
        const armActions = ids(first).filter((id) => id === 'arm-x' || id === 'arm-y');
        expect(armActions).toHaveLength(1);
        const served = first.actions.find((a) => a.actionId === armActions[0]);
        expect(served?.experiment).toEqual({ id: 'x-vs-y', arm: armActions[0] === 'arm-x' ? 'x' : 'y' });
        const copy = first.actions.find((a) => a.actionId === 'copy-test');
        // Either in an arm (the variant of the arm, its content) or in the holdout (dropped, recorded in the id).
        const observed = copy
          ? { variant: copy.variant, title: copy.content.title, why: undefined, holdouts: decodeDecisionId(first.decisionId)?.holdouts }
          : { variant: undefined, title: undefined, why: whyOf(first, 'copy-test'), holdouts: decodeDecisionId(first.decisionId)?.holdouts };
        const expected = copy
          ? { variant: copy.experiment?.arm, title: copy.experiment?.arm === 'a' ? 'A' : 'B', why: undefined, holdouts: [] }
          : { variant: undefined, title: undefined, why: 'experiment:banner-copy holdout', holdouts: ['banner-copy'] };
        expect(observed).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('a variant an experiment fixed is served only where its content fills the placement; else dropped with the reason', () => {
    const restricted = catalog({
      learning: noLearning,
      actions: [
        banner('copy-test', {
          variants: [
            { id: 'a', content: { web: { title: 'A', placements: ['home_hero'] } } },
            { id: 'b', content: { web: { title: 'B' } } },
          ],
        }),
      ],
      experiments: [{ id: 'banner-copy', kind: 'variants', action: 'copy-test', arms: [{ id: 'a', variant: 'a' }, { id: 'b', variant: 'b' }] }],
    });
    const seen = { a: 0, b: 0 };
    for (let i = 0; i < 40; i++) {
      const userId = `u-${i}`;
      const hero = run(restricted, emptyProfile({ userId }), { ...request('web', { placement: 'home_hero' }), userId });
      const arm = hero.actions[0]?.experiment?.arm as 'a' | 'b';
      seen[arm]++;
      expect(hero.actions[0]?.variant).toBe(arm);
      const none = run(restricted, emptyProfile({ userId }), { ...request('web'), userId });
      const quick = run(restricted, emptyProfile({ userId }), { ...request('web', { explain: false }), userId });
      const expected =
        arm === 'b'
          ? { variants: ['b'], why: 'eligible' }
          : { variants: [], why: 'content:variant a does not fill a request without a placement' };
      expect({ variants: none.actions.map((a) => a.variant), why: whyOf(none, 'copy-test') }).toEqual(expected);
      expect(quick.actions.map((a) => a.variant)).toEqual(expected.variants);
    }
    expect(seen.a).toBeGreaterThan(0);
    expect(seen.b).toBeGreaterThan(0);
  });

  it('sticky per customer: a visitor keeps the arm of the first key it was known by through logins, second devices and merges in any order', () => {
    const armOf = (profile: ProfileView, req: DecideRequest) => {
      const d = run(c, profile, req);
      return [ids(d).find((id) => id === 'arm-x' || id === 'arm-y'), d.actions.find((a) => a.actionId === 'copy-test')?.variant ?? 'holdout'];
    };
    const device = fc.record({ anonymousId: fc.constantFrom('a-1', 'a-2', 'a-3', 'a-4'), minutes: fc.integer({ min: 0, max: 100_000 }) });
    fc.assert(
      fc.property(fc.uniqueArray(device, { minLength: 1, maxLength: 4, selector: (d) => d.anonymousId }), fc.stringMatching(/^u-[a-z0-9]{1,10}$/), (devices, userId) => {
        const visit = (anonymousId: string, minutes: number, i: number) =>
          storedEvent({ anonymousId, messageId: `v-${anonymousId}-${i}`, type: 'page', timestamp: new Date(Date.parse('2026-03-01T00:00:00Z') + minutes * 60_000).toISOString() });
        const anonymous = devices.map((d, i) => applyEvents(emptyProfileState({ anonymousId: d.anonymousId }), [visit(d.anonymousId, d.minutes, i)], { halfLifeDays: 14 }));
        const first = devices.reduce((a, b) => (b.minutes < a.minutes || (b.minutes === a.minutes && b.anonymousId < a.anonymousId) ? b : a));
        const { userId: _known, ...anonymousRequest } = request('web', { limit: 3 });
        const before = armOf(emptyProfile({ anonymousId: first.anonymousId }), { ...anonymousRequest, anonymousId: first.anonymousId });
        // The customer logs in on each device in turn (identify merges that device's profile), in the order given.
        let known = emptyProfileState({ userId });
        const armsOnceFirstKnown: unknown[] = [];
        for (const profile of anonymous) {
          known = mergeProfiles(known, profile);
          const view = toProfileView(known, new Date('2026-06-01T00:00:00Z'));
          if (view.experimentKey === first.anonymousId) armsOnceFirstKnown.push(armOf(view, { ...request('web', { limit: 3 }), userId }));
        }
        expect(armsOnceFirstKnown.every((arms) => JSON.stringify(arms) === JSON.stringify(before))).toBe(true);
        const view = toProfileView(known, new Date('2026-06-01T00:00:00Z'));
        expect(view.experimentKey).toBe(first.anonymousId);
        expect(armOf(view, { ...request('web', { limit: 3 }), userId })).toEqual(before);
      }),
      { numRuns: 200 },
    );
  });

  it('holdout and arm shares match the configuration within tolerance', () => {
    const n = 4_000;
    const counts = { holdout: 0, a: 0, b: 0, x: 0, y: 0 };
    for (let i = 0; i < n; i++) {
      const userId = `customer-${i}`;
      const d = run(c, emptyProfile({ userId }), { ...request('web', { limit: 3 }), userId });
      const copy = d.actions.find((a) => a.actionId === 'copy-test');
      if (!copy) counts.holdout++;
      else counts[copy.variant as 'a' | 'b']++;
      if (ids(d).includes('arm-x')) counts.x++;
      else counts.y++;
    }
    const share = (k: number) => k / n;
    // 4,000 draws: 4 standard deviations of a share near 0.2..0.5 is under 0.04.
    expect(share(counts.holdout)).toBeCloseTo(0.2, 1);
    expect(Math.abs(share(counts.a) - 0.4)).toBeLessThan(0.04);
    expect(Math.abs(share(counts.b) - 0.4)).toBeLessThan(0.04);
    expect(Math.abs(share(counts.x) - 0.5)).toBeLessThan(0.04);
  });
});

describe('learning', () => {
  const stats = (table: Record<string, [number, number]>): LearningStats => ({
    generation: 1,
    get: (actionId, variant, context) => {
      if (context !== NO_CONTEXT) return undefined;
      const entry = table[variant === undefined ? actionId : `${actionId}/${variant}`];
      return entry ? { impressions: entry[0], clicks: entry[1], conversions: 0 } : undefined;
    },
  });
  const testAndLearn = (exploration: number) =>
    catalog({
      learning: { enabled: true, exploration, floor: 0.01, contextBy: 'none' },
      actions: [
        banner('hero', {
          variants: [
            { id: 'a', content: { web: { title: 'A' } } },
            { id: 'b', content: { web: { title: 'B' } } },
          ],
        }),
      ],
    });
  const outcomes = stats({ 'hero/a': [1_000, 20], 'hero/b': [1_000, 150] });

  it('exploration off: the posterior mean decides, the same way every time', () => {
    const c = testAndLearn(0);
    for (let i = 0; i < 20; i++) {
      const d = run(c, emptyProfile({ userId: `u${i}` }), request('web'), { learning: outcomes, nonce: `n${i}` });
      expect(d.actions[0]?.variant).toBe('b');
      expect(d.actions[0]?.propensity).toBeCloseTo(151 / 1002, 5);
      expect(d.explanation?.explored).toBe(false);
    }
  });

  it('a learnt variant restricted to placements serves only there, never without a placement', () => {
    const c = catalog({
      learning: { enabled: true, exploration: 0, floor: 0.01, contextBy: 'none' },
      actions: [
        banner('hero', {
          variants: [
            { id: 'a', content: { web: { title: 'A', placements: ['home_hero'] } } },
            { id: 'b', content: { web: { title: 'B' } } },
          ],
        }),
      ],
    });
    const learnt = stats({ 'hero/a': [1_000, 300], 'hero/b': [1_000, 20] });
    const served = (extra: Partial<DecideRequest>) =>
      run(c, profile(), request('web', extra), { learning: learnt }).actions.map((a) => [a.actionId, a.variant, a.content.title]);
    expect(served({ placement: 'home_hero' })).toEqual([['hero', 'a', 'A']]);
    expect(served({})).toEqual([['hero', 'b', 'B']]);
    expect(served({ explain: false })).toEqual([['hero', 'b', 'B']]);
    expect(served({ placement: 'sidebar' })).toEqual([['hero', 'b', 'B']]);
  });

  it('exploration on: the better variant gets most traffic, the other keeps a share', () => {
    const c = testAndLearn(1);
    const close = stats({ 'hero/a': [40, 8], 'hero/b': [40, 12] });
    const policies = new ArmProbabilityCache();
    let b = 0;
    const n = 1_000;
    for (let i = 0; i < n; i++) {
      const d = run(c, emptyProfile({ userId: `u${i}` }), request('web', { explain: false }), { learning: close, nonce: `n${i}`, policies });
      if (d.actions[0]?.variant === 'b') b++;
    }
    expect(b / n).toBeGreaterThan(0.6);
    expect(b / n).toBeLessThan(0.98);
  });

  it('without statistics the Beta prior gives the propensity; with them the posterior mean, however low (the floor is a traffic share)', () => {
    const c = testAndLearn(0);
    expect(run(c, profile(), request('web')).actions[0]?.propensity).toBe(0.5);
    const low = run(c, profile(), request('web'), { learning: stats({ 'hero/a': [1e6, 0], 'hero/b': [1e6, 0] }) });
    expect(low.actions[0]?.propensity).toBe(Math.round((1 / (1e6 + 2)) * 1e6) / 1e6);
    expect(low.actions[0]?.probability).toBe(1);
  });
});

describe('determinism', () => {
  const c = catalog({
    learning: { enabled: true, exploration: 0 },
    segments: [{ id: 'frequent', rule: 'profile.stats.visitsToday > 3.0' }],
    actions: [
      banner('a', { targeting: { segments: ['frequent'] }, value: 2 }),
      banner('b', { eligibility: 'has(context.page) && context.page == "/cart"' }),
      banner('c', { value: 0.5 }),
    ],
  });

  it('exploration off: the same profile, context and catalog give the same answer', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 20 }),
        fc.integer({ min: 0, max: 20 }),
        fc.constantFrom('/cart', '/home'),
        fc.integer({ min: 1, max: 3 }),
        (userId, visitsToday, page, limit) => {
          const p = profile({ ...(userId ? { userId } : {}) }, { visitsToday });
          const req = request('web', { limit, context: { page } });
          const first = decide(c, p, req, NOW);
          const second = decide(c, p, req, NOW);
          expect(second).toEqual(first);
          // A different nonce changes the id, not the answer.
          expect(decide(c, p, req, NOW, { nonce: 'other' }).actions).toEqual(first.actions);
        },
      ),
      { numRuns: 100 },
    );
  });
});
