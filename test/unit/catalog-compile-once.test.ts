/**
 * compileDocument compiles each distinct rule source (of a kind) once per
 * catalog and gives every other place that repeats it a copy with its own
 * path and failure counter (compile.ts). Held equal to compiling every rule
 * on its own with compileRule: same metadata, same conjuncts, same results
 * (values and errors) on the same variables, for catalogs that repeat
 * sources at random. The serve path's compile of a published document
 * (`published`: no second type-check, no time-zone lookup, the stored
 * text's checksum as the hash) compiles the same rules.
 */
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { evaluateAudience } from '#domain/catalog/audience.ts';
import { compileDocument } from '#domain/catalog/compile.ts';
import type { CompiledCatalog, CompiledRule, RuleVariables } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { compileRule, createRuleVariables, evaluateRule } from '#domain/catalog/rules.ts';
import { NOW, daysAgo, makeView } from './catalog-support.ts';

const BOOL_RULES = [
  'profile.stats.visitsToday > 3.0',
  'profile.traits.tier == "gold" && context.device == "mobile"',
  'context.device.matches("^mob(ile)?$") && profile.stats.orders >= 1.0',
  'has(profile.traits.tier) && profile.traits.tier.startsWith("g")',
  'profile.traits.nickname.size() > 2',
  'daysSince(profile.stats.lastPurchaseAt) > 30.0 || profile.identified',
  'true',
  'false',
] as const;
const ACTION_RULES = [...BOOL_RULES, 'hasSegment("s0") && profile.stats.visitsToday > 1.0', 'profile.scores.m0 > 0.5 || hasSegment("s1")'] as const;
const NUMBER_RULES = ['profile.stats.orders', 'profile.stats.visitsToday > 2.0', 'profile.stats.revenue / 100.0'] as const;

function catalogOf(picks: { segments: number[]; features: number[]; actions: number[]; suppressions: number[] }) {
  return {
    tags: ['promo'],
    segments: picks.segments.map((r, i) => ({ id: `s${i}`, rule: BOOL_RULES[r] as string })),
    models: [
      {
        id: 'm0',
        kind: 'logistic' as const,
        intercept: -1,
        threshold: 0.5,
        features: picks.features.map((r, i) => ({ name: `f${i}`, expression: NUMBER_RULES[r] as string, weight: 0.5, default: 0 })),
      },
    ],
    actions: picks.actions.map((r, i) => ({ id: `a${i}`, name: `A${i}`, tags: ['promo'], eligibility: ACTION_RULES[r] as string, content: { web: { title: `T${i}` } } })),
    policies: { suppressions: picks.suppressions.map((r, i) => ({ id: `p${i}`, tags: ['promo'], when: BOOL_RULES[r] as string })) },
  };
}

const views = [
  makeView({ identified: true, traits: { tier: 'gold', nickname: 'Lu' }, stats: { visitsToday: 5, orders: 2, revenue: 350, lastPurchaseAt: daysAgo(40) } }),
  makeView({ traits: { tier: 'silver' }, stats: { visitsToday: 1, orders: 0 } }),
  makeView({ identified: true, traits: { nickname: 'Luisito' }, stats: { visitsToday: 9, orders: 7, lastPurchaseAt: daysAgo(2) } }),
];
const contexts = [{ device: 'mobile' }, { device: 'mob' }, { device: 'desktop' }, {}];

function variablesOf(catalog: CompiledCatalog): RuleVariables[] {
  return views.flatMap((view) =>
    contexts.map((context) =>
      createRuleVariables({ catalog, profile: view, audience: evaluateAudience(catalog, view, NOW, context), context, channel: 'web', now: NOW }),
    ),
  );
}

/** What a run gives: its value, or the error it throws. */
function outcome(run: (vars: RuleVariables) => unknown, vars: RuleVariables): unknown {
  try {
    return { value: run(vars) };
  } catch (error) {
    return { error: (error as Error).message };
  }
}

/** Holds `rule` (from compileDocument) equal to compiling its source on its own. */
function expectSameAsAlone(rule: CompiledRule, vars: readonly RuleVariables[]): void {
  const kind = /\.features\[\d+\]\.expression$/.test(rule.path) ? 'number' : 'bool';
  const alone = compileRule(rule.source, rule.path, kind, { intern: new Map() });
  if (!alone.ok) throw new Error(`${rule.path}: ${alone.error.message}`);
  const meta = (r: CompiledRule) => ({
    source: r.source,
    path: r.path,
    constant: r.constant,
    cost: r.cost,
    reads: r.reads,
    conjunctsComplete: r.conjunctsComplete,
    conjuncts: r.conjuncts?.map((c) => ({ key: c.key, cost: c.cost })),
  });
  expect(meta(rule)).toEqual(meta(alone.rule));
  for (const v of vars) {
    expect(outcome(rule.run, v)).toEqual(outcome(alone.rule.run, v));
    rule.conjuncts?.forEach((c, i) => expect(outcome(c.run, v)).toEqual(outcome((alone.rule.conjuncts?.[i] as typeof c).run, v)));
  }
}

/** The profile fields of every rule, each once, in the order first read: `ruleFields` without skipping the places that repeat a source. */
function fieldsOfEveryRule(catalog: CompiledCatalog): (readonly string[])[] {
  const seen = new Set<string>();
  const fields: (readonly string[])[] = [];
  for (const rule of catalog.rules) {
    for (const keys of rule.reads?.fields ?? []) {
      const key = JSON.stringify(keys);
      if (!seen.has(key)) {
        seen.add(key);
        fields.push(keys);
      }
    }
  }
  return fields;
}

describe('compileDocument compiles a repeated rule source once', () => {
  it('every rule of a catalog that repeats sources equals the rule compiled on its own (property)', () => {
    fc.assert(
      fc.property(
        fc.record({
          segments: fc.array(fc.nat(BOOL_RULES.length - 1), { minLength: 2, maxLength: 4 }),
          features: fc.array(fc.nat(NUMBER_RULES.length - 1), { minLength: 1, maxLength: 4 }),
          actions: fc.array(fc.nat(ACTION_RULES.length - 1), { minLength: 1, maxLength: 25 }),
          suppressions: fc.array(fc.nat(BOOL_RULES.length - 1), { maxLength: 4 }),
        }),
        (picks) => {
          const loaded = loadCatalog(catalogOf(picks), 'object');
          if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems.slice(0, 3)));
          const vars = variablesOf(loaded.catalog);
          expect(loaded.catalog.rules.length).toBe(picks.segments.length + picks.features.length + picks.actions.length + picks.suppressions.length);
          for (const rule of loaded.catalog.rules) expectSameAsAlone(rule, vars);
          // The fields a sampled record keeps: read once per distinct source, the same as reading every rule.
          expect(loaded.catalog.ruleFields.map((f) => f.keys)).toEqual(fieldsOfEveryRule(loaded.catalog));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('places that repeat a source get their own rule: own path, and a failure reported at its own place', () => {
    const loaded = loadCatalog(catalogOf({ segments: [0, 1], features: [0], actions: [4, 4, 4], suppressions: [] }), 'object');
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const [a0, a1, a2] = loaded.catalog.actions.map((a) => a.eligibility as CompiledRule);
    expect(new Set([a0, a1, a2]).size).toBe(3);
    expect([a0?.path, a1?.path, a2?.path]).toEqual(['actions[0].eligibility', 'actions[1].eligibility', 'actions[2].eligibility']);
    // `profile.traits.nickname.size()` fails for a profile without a nickname: counted on the rule evaluated only.
    const [vars] = variablesOf(loaded.catalog).slice(4);
    expect(evaluateRule(a1, vars as RuleVariables)).toBe(false);
    expect((vars as RuleVariables).$failures.lastRule?.path).toBe('actions[1].eligibility');
    expect(Object.isFrozen(a1)).toBe(true);
  });

  it('a repeated invalid source is reported at every place', () => {
    const doc = catalogOf({ segments: [0, 1], features: [0], actions: [0, 0], suppressions: [] });
    doc.actions.forEach((a) => (a.eligibility = 'profile.stats.visitsToday >'));
    const loaded = loadCatalog(doc, 'object');
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.problems.map((p) => p.path)).toEqual(['actions[0].eligibility', 'actions[1].eligibility']);
  });
});

describe('a published document compiled again (the serve path, compileDocument `published`)', () => {
  const published = (source: unknown) => {
    const loaded = loadCatalog(source, 'object', { version: 1 });
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const text = JSON.stringify(loaded.source);
    const again = compileDocument(JSON.parse(text) as typeof loaded.source, {
      version: 1,
      published: true,
      documentSha256: createHash('sha256').update(text).digest('hex'),
    });
    if (!again.ok) throw new Error(JSON.stringify(again.problems));
    return { loaded: loaded.catalog, again: again.catalog };
  };

  it('compiles the same rules, with the same hash as the validating load, for catalogs that repeat sources at random', () => {
    fc.assert(
      fc.property(
        fc.record({
          segments: fc.array(fc.nat({ max: BOOL_RULES.length - 1 }), { minLength: 2, maxLength: 6 }),
          features: fc.array(fc.nat({ max: NUMBER_RULES.length - 1 }), { minLength: 1, maxLength: 3 }),
          actions: fc.array(fc.nat({ max: ACTION_RULES.length - 1 }), { minLength: 1, maxLength: 8 }),
          suppressions: fc.array(fc.nat({ max: BOOL_RULES.length - 1 }), { maxLength: 3 }),
        }),
        (picks) => {
          const { loaded, again } = published(catalogOf(picks));
          expect(again.hash).toBe(loaded.hash);
          expect(again.audienceReuse).toEqual(loaded.audienceReuse);
          expect(again.rules.map((r) => [r.path, r.source, r.reads, r.cost, r.constant, r.conjuncts?.map((c) => c.key)])).toEqual(
            loaded.rules.map((r) => [r.path, r.source, r.reads, r.cost, r.constant, r.conjuncts?.map((c) => c.key)]),
          );
          const vars = variablesOf(again);
          again.rules.forEach((rule, i) => {
            const first = loaded.rules[i] as CompiledRule;
            for (const v of vars) expect(outcome(rule.run, v)).toEqual(outcome(first.run, v));
          });
        },
      ),
      { numRuns: 25 },
    );
  }, 30_000);

  it('does not look up the time zones again (validated at publish); the validating load refuses an unknown one', () => {
    const quiet = (timezone: string) => ({ ...catalogOf({ segments: [0], features: [0], actions: [0], suppressions: [] }), policies: { quietHours: [{ id: 'night', channels: ['push'], from: '21:00', to: '09:00', timezone }] } });
    const { again } = published(quiet('Europe/Madrid'));
    expect(again.policies.quietHours[0]?.timezone).toBe('Europe/Madrid');
    const refused = loadCatalog(quiet('Mars/Olympus_Mons'), 'object');
    expect(refused.ok ? [] : refused.problems.map((p) => p.path)).toEqual(['policies.quietHours[0].timezone']);
  });
});
