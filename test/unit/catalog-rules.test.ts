/**
 * CEL rules and the audience: helpers, runtime failure = no match (counted),
 * exclusive groups, exclusions, persona order, the churn model.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluateAudience, evaluateModel } from '#domain/catalog/audience.ts';
import type { CompiledCatalog, CompiledRule } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import {
  compileRule,
  createRuleVariables,
  evaluateRule,
  createFailureTally,
} from '#domain/catalog/rules.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { NEVER } from '#domain/catalog/helpers.ts';
import { NOW, daysAgo, makeView } from './catalog-support.ts';

function rule(source: string): CompiledRule {
  const r = compileRule(source, 'test');
  if (!r.ok) throw new Error(`${source}: ${r.error.message}`);
  return r.rule;
}

const check = (source: string, view: ProfileView, extra: { context?: Record<string, unknown>; channel?: 'web' | 'push' | 'email' } = {}) =>
  evaluateRule(rule(source), createRuleVariables({ profile: view, now: NOW, ...extra }));

function compile(doc: Record<string, unknown>): CompiledCatalog {
  const r = loadCatalog({ tags: ['promo'], ...doc }, 'object');
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return r.catalog;
}

describe('CEL helpers', () => {
  it('daysSince / hoursSince: ISO strings and timestamps; missing is "never"', () => {
    const view = makeView({ stats: { lastPurchaseAt: daysAgo(31) } });
    expect(check('daysSince(profile.stats.lastPurchaseAt) > 30.0', view)).toBe(true);
    expect(check('daysSince(profile.stats.lastPurchaseAt) > 32.0', view)).toBe(false);
    expect(check('hoursSince(profile.stats.lastPurchaseAt) >= 744.0', view)).toBe(true);
    expect(check('daysSince(now) == 0.0', view)).toBe(true);
    expect(check(`daysSince(profile.stats.lastReturnAt) == ${NEVER}.0`, view)).toBe(true);
    expect(check('daysSince(profile.traits.signupAt) > 30.0', view)).toBe(true);
  });

  it('a timestamp that is not a date fails the rule (no match, counted)', () => {
    const r = rule('daysSince(profile.traits.since) < 10.0');
    const failures = createFailureTally();
    const vars = createRuleVariables({ profile: makeView({ traits: { since: 'yesterday' } }), now: NOW, failures });
    expect(evaluateRule(r, vars)).toBe(false);
    expect(failures.rules).toBe(1);
    expect(failures.lastRule?.message).toContain('not a timestamp');
    expect(failures.lastRule?.path).toBe(r.path);
  });

  it('eventCount per window, 0 when never seen', () => {
    const view = makeView({ stats: { eventCounts: { 'Order Completed': { today: 1, last7d: 3, last30d: 5, total: 9 } } } });
    expect(check('eventCount("Order Completed", "today") == 1.0', view)).toBe(true);
    expect(check('eventCount("Order Completed", "1d") == 1.0', view)).toBe(true);
    expect(check('eventCount("Order Completed", "7d") == 3.0', view)).toBe(true);
    expect(check('eventCount("Order Completed", "30d") == 5.0', view)).toBe(true);
    expect(check('eventCount("Order Completed", "total") == 9.0', view)).toBe(true);
    expect(check('eventCount("Never Happened", "total") == 0.0', view)).toBe(true);
  });

  it('hasSegment, interest, likes, engagementRate, preferredChannel, visitsToday, aboveThreshold', () => {
    const view = makeView({
      segments: ['vip'],
      stats: { visitsToday: 11, categoryInterests: { sport: 2.5 } },
      preferences: { interests: ['cycling'] },
      engagement: {
        push: { delivered: 10, engaged: 8, rate: 0.8 },
        email: { delivered: 10, engaged: 1, rate: 0.1 },
      },
      scores: { churnRisk: 0.7 },
    });
    expect(check('hasSegment("vip") && !inSegment("other")', view)).toBe(true);
    expect(check('interest("sport") > 2.0 && interest("golf") == 0.0', view)).toBe(true);
    expect(check('likes("cycling") && !likes("running")', view)).toBe(true);
    expect(check('engagementRate("push") > engagementRate("email") && engagementRate("sms") == 0.0', view)).toBe(true);
    expect(check('preferredChannel == "push"', view)).toBe(true);
    expect(check('preferredChannel == channel', view, { channel: 'push' })).toBe(true);
    expect(check('visitsToday > 10.0', view)).toBe(true);
    expect(check('profile.persona == ""', view)).toBe(true);
    const vars = (threshold: number) =>
      createRuleVariables({ profile: view, now: NOW, catalog: { thresholds: new Map([['churnRisk', threshold]]) } });
    expect(evaluateRule(rule('aboveThreshold("churnRisk")'), vars(0.6))).toBe(true);
    expect(evaluateRule(rule('aboveThreshold("churnRisk")'), vars(0.75))).toBe(false);
  });

  it('the declared preferred channel beats engagement', () => {
    const view = makeView({
      preferences: { interests: [], preferredChannel: 'email' },
      engagement: { push: { delivered: 3, engaged: 3, rate: 1 } },
    });
    expect(check('preferredChannel == "email"', view)).toBe(true);
  });

  it('context, channel, placement and now', () => {
    const view = makeView();
    expect(check('"weather" in context && context.weather == "rain"', view, { context: { weather: 'rain' } })).toBe(true);
    expect(check('"weather" in context && context.weather == "rain"', view, { context: {} })).toBe(false);
    expect(check('channel == "web" && placement == ""', view, { channel: 'web' })).toBe(true);
    expect(check('now.getMonth() == 10 && now.getFullYear() == 2026', view)).toBe(true);
  });
});

describe('runtime failures are "no match", counted, never thrown', () => {
  it('a missing field, a type mismatch and a non-bool result', () => {
    const missing = rule('profile.traits.tier == "VIP"');
    const mismatch = rule('profile.traits.age > 18.0');
    const view = makeView({ traits: { age: 'old' } });
    const failures = createFailureTally();
    const vars = createRuleVariables({ profile: view, now: NOW, failures });
    expect(evaluateRule(missing, vars)).toBe(false);
    expect(failures).toEqual({ rules: 1, deadline: 0, templates: 0, lastRule: { path: missing.path, message: 'No such key: tier' } });
    expect(evaluateRule(mismatch, vars)).toBe(false);
    expect(failures.rules).toBe(2);
    // Counted per tally: another decision's tally starts from zero, and a compiled rule is never written to.
    expect(createRuleVariables({ profile: view, now: NOW }).$failures.rules).toBe(0);
    expect(Object.isFrozen(missing)).toBe(true);
  });

  it('any trait values: a rule returns a bool and never throws', () => {
    const rules = [
      rule('profile.traits.tier == "VIP" && profile.traits.age >= 16.0'),
      rule('daysSince(profile.traits.createdAt) > 3.0'),
      rule('size(profile.traits.tags) > 1 || "x" in profile.traits.tags'),
      rule('profile.traits.nested.deep.value == 1'),
      rule('likes(profile.traits.tier) || interest(profile.traits.tier) > 0.0'),
    ];
    fc.assert(
      fc.property(fc.dictionary(fc.constantFrom('tier', 'age', 'createdAt', 'tags', 'nested'), fc.jsonValue()), (traits) => {
        const vars = createRuleVariables({ profile: makeView({ traits }), now: NOW });
        for (const r of rules) expect(typeof evaluateRule(r, vars)).toBe('boolean');
      }),
      { numRuns: 300 },
    );
  });
});

describe('audience', () => {
  it('exclusive groups: at most one segment per group, the first that matches in group order', () => {
    const catalog = compile({
      segments: [
        { id: 'low', rule: 'profile.stats.orders >= 1.0' },
        { id: 'high', rule: 'profile.stats.revenue >= 1000.0' },
        { id: 'mid', rule: 'profile.stats.revenue >= 200.0' },
        { id: 'buyer', rule: 'profile.stats.orders >= 1.0' },
      ],
      exclusiveGroups: [{ id: 'tier', segments: ['high', 'mid', 'low'] }],
    });
    const seg = (revenue: number, orders: number) =>
      evaluateAudience(catalog, makeView({ stats: { revenue, orders } }), NOW).segments;
    expect(seg(1500, 3)).toEqual(['high', 'buyer']);
    expect(seg(500, 3)).toEqual(['mid', 'buyer']);
    expect(seg(50, 1)).toEqual(['low', 'buyer']);
    expect(seg(0, 0)).toEqual([]);
  });

  it('exclusions remove a customer from a segment, and a group falls through to the next', () => {
    const catalog = compile({
      segments: [
        { id: 'conflict', rule: 'profile.stats.openComplaints > 0.0' },
        { id: 'vip', rule: 'has(profile.traits.tier) && profile.traits.tier == "VIP"', exclude: 'hasSegment("conflict")' },
        { id: 'regular', rule: 'true' },
      ],
      exclusiveGroups: [{ id: 'g', segments: ['vip', 'regular'] }],
    });
    const vip = makeView({ traits: { tier: 'VIP' } });
    expect(evaluateAudience(catalog, vip, NOW).segments).toEqual(['vip']);
    const inConflict = makeView({ traits: { tier: 'VIP' }, stats: { openComplaints: 1 } });
    expect(evaluateAudience(catalog, inConflict, NOW).segments).toEqual(['conflict', 'regular']);
  });

  it('personas: exclusive and ordered, the first that holds wins', () => {
    const catalog = compile({
      segments: [{ id: 'big', rule: 'profile.stats.revenue >= 1000.0' }],
      personas: [
        { id: 'premium', name: 'Premium', rule: 'hasSegment("big")' },
        { id: 'sporty', name: 'Sporty', rule: 'likes("sport")' },
        { id: 'anyone', name: 'Anyone', rule: 'profile.identified' },
      ],
    });
    const persona = (view: ProfileView) => evaluateAudience(catalog, view, NOW).persona;
    expect(persona(makeView({ preferences: { interests: ['sport'] } }))).toBe('sporty');
    expect(persona(makeView({ preferences: { interests: ['sport'] }, stats: { revenue: 5000 } }))).toBe('premium');
    expect(persona(makeView())).toBe('anyone');
    expect(persona(makeView({ identified: false }))).toBeUndefined();
  });

  it('the logistic model: exact score, failing features take their default, usable in segments', () => {
    const catalog = compile({
      models: [
        {
          id: 'churnRisk',
          kind: 'logistic',
          intercept: -2,
          threshold: 0.5,
          features: [
            { name: 'silence', expression: 'daysSince(profile.stats.lastSeenAt) > 100.0 ? 100.0 : daysSince(profile.stats.lastSeenAt)', weight: 0.05 },
            { name: 'returns', expression: 'profile.stats.returns', weight: 1 },
            { name: 'vip', expression: 'profile.traits.tier == "VIP"', weight: -1, default: 0 },
          ],
        },
      ],
      segments: [{ id: 'at-risk', rule: 'aboveThreshold("churnRisk")' }],
    });
    const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));
    const quiet = makeView({ stats: { lastSeenAt: daysAgo(60), returns: 1 } });
    const a = evaluateAudience(catalog, quiet, NOW);
    expect(a.scores.churnRisk).toBeCloseTo(sigmoid(-2 + 0.05 * 60 + 1), 12);
    expect(a.segments).toEqual(['at-risk']);
    const fresh = makeView({ traits: { tier: 'VIP' }, stats: { lastSeenAt: daysAgo(1) } });
    const b = evaluateAudience(catalog, fresh, NOW);
    expect(b.scores.churnRisk).toBeCloseTo(sigmoid(-2 + 0.05 * 1 - 1), 12);
    expect(b.segments).toEqual([]);
    const model = catalog.modelsById.get('churnRisk');
    if (!model) throw new Error('model missing');
    const vars = createRuleVariables({ profile: makeView({ stats: { lastSeenAt: daysAgo(200) } }), now: NOW });
    expect(evaluateModel(model, vars)).toBeCloseTo(sigmoid(-2 + 5 + 0), 12);
  });

  it('segment rules may read the scores and segments evaluated before them', () => {
    const catalog = compile({
      models: [{ id: 'm', kind: 'logistic', intercept: 10, features: [{ name: 'x', expression: '0.0', weight: 1 }] }],
      segments: [
        { id: 'second', rule: 'hasSegment("first") && profile.scores.m > 0.99' },
        { id: 'first', rule: '"m" in profile.scores' },
      ],
    });
    expect(evaluateAudience(catalog, makeView(), NOW).segments).toEqual(['first', 'second']);
  });
});
