/**
 * Decide keeps each action's bandit arms per catalog, statistics, slot and
 * learning context (decide.ts `ActionArmsCache`), and each bandit policy's
 * logged candidates with its arm probabilities (`loggedArmsOf`, kept with
 * the ArmProbabilityCache's entries). Both are accelerators: any sequence of
 * decisions with both caches kept (shared across slots, contexts,
 * statistics generations, instants on either side of an experiment's end,
 * customers in and out of experiments, model scores near 1) gives exactly
 * the decisions and the decision log facts that the same decisions give with
 * nothing kept.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { ActionArmsCache, decideForLog, emptyProfile } from '#domain/decide/decide.ts';
import type { DecideRequest, LearningStats } from '#domain/decide/types.ts';
import { ArmProbabilityCache } from '#domain/learning/policy.ts';
import { makeView } from './catalog-support.ts';

const NOW = new Date('2026-01-15T12:00:00Z');

const INPUT: CatalogInput = {
  learning: { enabled: true, exploration: 0.2, floor: 0.02, contextBy: 'segment' },
  models: [{ id: 'buy', kind: 'logistic', intercept: -0.5, features: [{ name: 'v', expression: 'profile.stats.visitsToday', weight: 1 }] }],
  segments: [
    { id: 'gold', rule: 'profile.traits.tier == "gold"' },
    { id: 'silver', rule: 'profile.traits.tier == "silver"' },
  ],
  experiments: [
    {
      id: 'copy',
      kind: 'variants',
      action: 'hero',
      holdout: 0.1,
      arms: [
        { id: 'a', variant: 'a', weight: 1 },
        { id: 'b', variant: 'b', weight: 2 },
      ],
    },
    {
      id: 'pick',
      kind: 'actions',
      holdout: 0.2,
      // Ends between the two instants the steps decide at: the same customer is in it, then not.
      validity: { to: new Date(NOW.getTime() + 3_600_000).toISOString() },
      arms: [
        { id: 'p', action: 'plain', weight: 1 },
        { id: 'q', action: 'gold-only', weight: 3 },
      ],
    },
  ],
  actions: [
    {
      id: 'hero',
      name: 'hero',
      content: { web: { title: 'hero' } },
      variants: [
        { id: 'a', content: { web: { title: 'A', placements: ['home'] } } },
        { id: 'b', content: { web: { title: 'B' } } },
      ],
    },
    {
      id: 'banner',
      name: 'banner',
      content: { web: { title: 'banner' }, email: { templateId: 't-banner', subject: 'banner' } },
      variants: [
        { id: 'x', content: { web: { title: 'X', placements: ['side'] }, email: { templateId: 't-x', subject: 'X' } } },
        { id: 'y', content: { web: { title: 'Y', placements: ['home', 'side'] } } },
      ],
    },
    { id: 'plain', name: 'plain', value: 3, content: { web: { title: 'plain' }, email: { templateId: 't-plain', subject: 'plain' } } },
    { id: 'gold-only', name: 'gold only', eligibility: 'hasSegment("gold")', content: { web: { title: 'g' }, email: { templateId: 't-g', subject: 'g' } } },
    { id: 'side-only', name: 'side only', content: { web: { title: 's', placements: ['side'] } } },
    { id: 'modelled', name: 'modelled', value: 10, propensityModel: 'buy', content: { web: { title: 'm' }, email: { templateId: 't-m', subject: 'm' } } },
  ],
};

function compile(): CompiledCatalog {
  const result = loadCatalog(INPUT, 'object', { version: 5 });
  if (!result.ok) throw new Error(JSON.stringify(result.problems.slice(0, 3)));
  return result.catalog;
}

/** Statistics of one generation: counts per arm key (`action` or `action/variant`) in any context but `silver`, where they are halved. */
function statsOf(generation: number, table: Record<string, readonly [number, number]>): LearningStats {
  return {
    generation,
    get: (actionId, variant, context) => {
      const entry = table[variant === undefined ? actionId : `${actionId}/${variant}`];
      if (!entry) return undefined;
      const factor = context === 'silver' ? 0.5 : 1;
      return { impressions: Math.round(entry[0] * factor), clicks: Math.round(entry[1] * factor), conversions: 0 };
    },
  };
}

const ARM_KEYS = ['hero', 'hero/a', 'hero/b', 'banner', 'banner/x', 'banner/y', 'plain', 'gold-only', 'side-only'];
const counts = fc.dictionary(
  fc.constantFrom(...ARM_KEYS),
  fc.tuple(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 100 })).map(([n, k]) => [n, Math.min(n, k)] as const),
);

// Small domains, so that a sequence often repeats a decision's inputs but for one of them (the instant, the
// statistics, the model score, the slot), where a cache keyed too coarsely would answer from the other.
const step = fc.record({
  user: fc.integer({ min: 0, max: 3 }),
  tier: fc.constantFrom('gold', 'silver', 'basic'),
  channel: fc.constantFrom('web' as const, 'web' as const, 'email' as const),
  placement: fc.constantFrom('home', 'side', undefined),
  limit: fc.integer({ min: 1, max: 2 }),
  stats: fc.integer({ min: 0, max: 2 }),
  later: fc.boolean(),
  // The model's score (sigmoid of visits − 0.5): 0.38, 0.92, and two past its posterior's clamped mean
  // (1 − 1e-4) that still differ at 4 significant digits of the score (0.99993 and 1).
  visits: fc.constantFrom(0, 3, 10, 40),
});

describe('kept bandit arms and logged candidates', () => {
  it('any sequence of decisions on one catalog equals the same decisions on a fresh copy with nothing kept', () => {
    fc.assert(
      fc.property(fc.array(counts, { minLength: 2, maxLength: 2 }), fc.array(step, { minLength: 1, maxLength: 40 }), (tables, steps) => {
        const warm = compile();
        const warmPolicies = new ArmProbabilityCache();
        const warmArms = new ActionArmsCache();
        // Two statistics objects (two generations) and none (learning's prior): the kept arms of one must never serve another.
        const statistics = [statsOf(1, tables[0] ?? {}), statsOf(2, tables[1] ?? {}), undefined];
        steps.forEach((s, i) => {
          const userId = `user-${s.user}`;
          const profile =
            s.tier === 'basic' && s.visits === 0
              ? emptyProfile({ userId })
              : makeView({ userId, traits: { tier: s.tier }, stats: { visitsToday: s.visits } });
          const now = s.later ? new Date(NOW.getTime() + 2 * 3_600_000) : NOW;
          const request: DecideRequest = {
            userId,
            channel: s.channel,
            ...(s.placement !== undefined && s.channel === 'web' ? { placement: s.placement } : {}),
            limit: s.limit,
            context: {},
            explain: false,
          };
          const learning = statistics[s.stats];
          const options = { nonce: `n${i}`, ...(learning ? { learning } : {}) };
          const kept = decideForLog(warm, profile, request, now, { ...options, policies: warmPolicies, arms: warmArms });
          const fresh = decideForLog(compile(), profile, request, now, { ...options, policies: new ArmProbabilityCache() });
          expect(kept.decision).toEqual(fresh.decision);
          expect(kept.log.eligible).toEqual(fresh.log.eligible);
          expect(kept.log.learningContext).toBe(fresh.log.learningContext);
        });
      }),
      { numRuns: 150 },
    );
  }, 120_000);

  it('keeps deciding the same past the bound on kept slots (made-up placements evict the first kept)', () => {
    const warm = compile();
    const learning = statsOf(1, { plain: [100, 30], 'banner/y': [50, 20] });
    const profile = makeView({ userId: 'u-1', traits: { tier: 'gold' } });
    const arms = new ActionArmsCache();
    const decideAt = (c: CompiledCatalog, placement: string, policies: ArmProbabilityCache, kept?: ActionArmsCache) =>
      decideForLog(c, profile, { userId: 'u-1', channel: 'web', placement, limit: 2, context: {}, explain: false }, NOW, {
        nonce: 'n',
        learning,
        policies,
        ...(kept ? { arms: kept } : {}),
      });
    const policies = new ArmProbabilityCache();
    const first = decideAt(warm, 'home', policies, arms);
    for (let i = 0; i < 300; i++) {
      decideAt(warm, `made-up-${i}`, policies, arms);
      expect(arms.size).toBeLessThanOrEqual(arms.maxSlots);
    }
    expect(arms.size).toBe(arms.maxSlots);
    const again = decideAt(warm, 'home', policies, arms);
    const fresh = decideAt(compile(), 'home', new ArmProbabilityCache());
    expect(again.decision).toEqual(fresh.decision);
    expect(again.log.eligible).toEqual(fresh.log.eligible);
    expect(first.decision).toEqual(fresh.decision);
  });
});
