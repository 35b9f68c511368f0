/**
 * The columnar candidate path (shared/domain/decide/slot.ts: validity,
 * suppressed tags, targeting and score factors read from typed arrays, the
 * action objects only when their own checks apply) is an accelerator of the
 * checks table (shared/domain/decide/checks.ts): it drops exactly the
 * candidates the accelerated checks and a false conjunct of the rule would
 * drop, settles only rules that hold, and a decision without explain
 * selects what the explained one (every check on every candidate) selects.
 *
 * The catalogs have more than 32 tags and segments (bitsets of several
 * words), validity windows around the instant, caps,
 * rules, variants, experiments, ties of score and priority, and learning on
 * and off.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { evaluateAudience } from '#domain/catalog/audience.ts';
import { createRuleVariables, evaluateRule } from '#domain/catalog/rules.ts';
import { CANDIDATE_CHECKS, firstDrop, type DecisionFacts } from '#domain/decide/checks.ts';
import { decide } from '#domain/decide/decide.ts';
import { decisionPolicies } from '#domain/decide/policies.ts';
import { filteredOut, ruleSettled, slotFilter, slotFor } from '#domain/decide/slot.ts';
import type { DecideRequest } from '#domain/decide/types.ts';
import { makeView, NOW } from './catalog-support.ts';

const TAGS = Array.from({ length: 40 }, (_, i) => `t${i}`);
const SEGMENTS = 36;
const PERSONAS = 3;
const hoursFromNow = (h: number) => new Date(NOW.getTime() + h * 3_600_000).toISOString();

const ids = (prefix: string, n: number) => fc.uniqueArray(fc.integer({ min: 0, max: n - 1 }), { minLength: 1, maxLength: 3 }).map((l) => l.map((i) => `${prefix}${i}`));

const action = fc.record(
  {
    tags: fc.uniqueArray(fc.constantFrom(...TAGS), { maxLength: 3 }),
    value: fc.constantFrom(1, 2),
    priority: fc.constantFrom(0, 1),
    segments: ids('s', SEGMENTS),
    excludeSegments: ids('s', SEGMENTS),
    personas: ids('p', PERSONAS),
    validFromHours: fc.integer({ min: -48, max: 48 }),
    validToHours: fc.integer({ min: -48, max: 96 }),
    capped: fc.boolean(),
    eligibility: fc.constantFrom('profile.stats.visitsToday > 2.0', 'context.device == "mobile"', 'profile.traits.tier == "gold" || visitsToday > 4.0', 'profile.traits.age > 30'),
    variants: fc.boolean(),
    weight: fc.constantFrom(1, 2),
  },
  { requiredKeys: ['tags', 'value', 'priority'] },
);

const catalogInput = fc
  .record({
    actions: fc.array(action, { minLength: 1, maxLength: 40 }),
    suppressed: fc.array(fc.uniqueArray(fc.constantFrom(...TAGS), { minLength: 1, maxLength: 4 }), { maxLength: 3 }),
    tagWeights: fc.dictionary(fc.constantFrom(...TAGS), fc.constantFrom(0.5, 2, 3), { maxKeys: 4 }),
    experiment: fc.boolean(),
    learning: fc.boolean(),
  })
  .map(({ actions, suppressed, tagWeights, experiment, learning }): CatalogInput => {
    const experimentAction = experiment ? actions.findIndex((a) => a.variants) : -1;
    return {
      tags: TAGS,
      learning: learning ? { enabled: true, exploration: 0 } : { enabled: false, exploration: 0 },
      segments: Array.from({ length: SEGMENTS }, (_, i) => ({ id: `s${i}`, rule: i % 2 === 0 ? `profile.stats.visitsToday > ${i % 7}.0` : `profile.traits.age > ${20 + i}` })),
      personas: Array.from({ length: PERSONAS }, (_, i) => ({ id: `p${i}`, name: `P${i}`, rule: `profile.traits.age > ${20 + 10 * i}` })),
      policies: {
        suppressions: suppressed.map((tags, i) => ({ id: `sup${i}`, tags, when: i % 2 === 0 ? 'true' : 'profile.traits.age > 40' })),
      },
      arbitration: { weights: { tags: tagWeights } },
      ...(experimentAction >= 0
        ? {
            experiments: [
              {
                id: 'x',
                kind: 'variants' as const,
                action: `a${experimentAction}`,
                holdout: 0.3,
                arms: [
                  { id: 'one', variant: 'v1' },
                  { id: 'two', variant: 'v2' },
                ],
              },
            ],
          }
        : {}),
      actions: actions.map((a, i) => ({
        id: `a${i}`,
        name: `a${i}`,
        tags: a.tags,
        value: a.value,
        priority: a.priority,
        ...(a.weight !== undefined ? { weight: a.weight } : {}),
        ...(a.segments !== undefined || a.excludeSegments !== undefined || a.personas !== undefined
          ? {
              targeting: {
                ...(a.segments !== undefined ? { segments: a.segments } : {}),
                ...(a.excludeSegments !== undefined ? { excludeSegments: a.excludeSegments } : {}),
                ...(a.personas !== undefined ? { personas: a.personas } : {}),
              },
            }
          : {}),
        ...(a.validFromHours !== undefined || a.validToHours !== undefined
          ? {
              validity: {
                ...(a.validFromHours !== undefined ? { from: hoursFromNow(a.validFromHours) } : {}),
                ...(a.validToHours !== undefined ? { to: hoursFromNow(Math.max(a.validToHours, (a.validFromHours ?? -100) + 1)) } : {}),
              },
            }
          : {}),
        ...(a.capped ? { caps: ['1/day'] } : {}),
        ...(a.eligibility !== undefined ? { eligibility: a.eligibility } : {}),
        content: { web: { title: `t${i}` } },
        ...(a.variants
          ? {
              variants: [
                { id: 'v1', content: { web: { title: `t${i} one` } } },
                { id: 'v2', content: { web: { title: `t${i} two` } } },
              ],
            }
          : {}),
      })),
    };
  });

const customer = fc.record({
  age: fc.integer({ min: 15, max: 70 }),
  tier: fc.constantFrom('gold', 'basic'),
  visitsToday: fc.integer({ min: 0, max: 8 }),
  device: fc.constantFrom('mobile', 'desktop'),
  impressions: fc.array(fc.tuple(fc.integer({ min: 0, max: 39 }), fc.integer({ min: 1, max: 48 })), { maxLength: 6 }),
  userId: fc.constantFrom('u-1', 'u-2', 'u-3', 'u-4'),
});

const viewOf = (c: { age: number; tier: string; visitsToday: number; impressions: [number, number][]; userId: string }) => {
  const contacts: Record<string, { impressions: string[]; clicks: number; conversions: number }> = {};
  for (const [a, hoursAgo] of c.impressions) {
    (contacts[`a${a}`] ??= { impressions: [], clicks: 0, conversions: 0 }).impressions.push(hoursFromNow(-hoursAgo));
  }
  return makeView({ userId: c.userId, traits: { age: c.age, tier: c.tier }, contacts, stats: { visitsToday: c.visitsToday } });
};

describe('the columnar candidate path', () => {
  it('drops exactly what the accelerated checks and a false conjunct drop, and settles only rules that hold', () => {
    let dropped = 0;
    let settled = 0;
    fc.assert(
      fc.property(catalogInput, customer, (input, c) => {
        const loaded = loadCatalog(input, 'object', { version: 1 });
        if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems.slice(0, 3)));
        const catalog = loaded.catalog;
        const view = viewOf(c);
        const context = { device: c.device };
        const audience = evaluateAudience(catalog, view, NOW, context);
        const vars = createRuleVariables({ profile: view, audience, context, channel: 'web', now: NOW, catalog });
        const policies = decisionPolicies(catalog, view, 'web', context, vars, NOW);
        const facts: DecisionFacts = { nowMs: NOW.getTime(), profile: view, audience, vars, policies };
        const slot = slotFor(catalog, 'web', undefined);
        const filter = slotFilter(slot, catalog, facts);
        const accelerated = CANDIDATE_CHECKS.filter((check) => check.accelerated);
        slot.list.forEach((action, k) => {
          const byChecks = firstDrop(action, facts, accelerated) !== undefined;
          const ruleFalse = action.eligibility !== undefined && !evaluateRule(action.eligibility, vars);
          const out = filteredOut(slot, k, filter);
          // Dropped exactly when an accelerated check drops it, or else only when its rule is false.
          expect({ out, excess: out && !byChecks && !ruleFalse }).toEqual({ out: out || byChecks, excess: false });
          if (out) dropped++;
          const isSettled = ruleSettled(filter, action.index);
          if (isSettled) settled++;
          // A settled rule holds.
          expect(isSettled && action.eligibility !== undefined && !evaluateRule(action.eligibility, vars)).toBe(false);
        });
      }),
      { numRuns: 300 },
    );
    // The property is not vacuous: the accelerator drops and settles.
    expect(dropped).toBeGreaterThan(0);
    expect(settled).toBeGreaterThan(0);
  }, 120_000);

  it('selects what the explained path selects', () => {
    fc.assert(
      fc.property(catalogInput, customer, fc.integer({ min: 1, max: 10 }), (input, c, limit) => {
        const loaded = loadCatalog(input, 'object', { version: 1 });
        if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems.slice(0, 3)));
        const view = viewOf(c);
        const request: DecideRequest = { userId: c.userId, channel: 'web', limit, context: { device: c.device }, explain: false };
        const plain = decide(loaded.catalog, view, request, NOW, { nonce: 'n' });
        const explained = decide(loaded.catalog, view, { ...request, explain: true }, NOW, { nonce: 'n' });
        expect(plain.actions).toEqual(explained.actions);
        expect(plain.decisionId).toBe(explained.decisionId);
      }),
      { numRuns: 400 },
    );
  }, 120_000);
});
