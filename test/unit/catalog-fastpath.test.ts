/**
 * The CEL fast path gives exactly what cel-js gives: the same value, or a
 * failure where cel-js fails, for any profile and context.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileRule, createRuleVariables, evaluateRule } from '#domain/catalog/rules.ts';
import { MissingKey } from '#domain/catalog/fastpath.ts';
import { EVENT_COUNT_WINDOWS, RULE_HELPERS, type HelperArgument } from '#domain/catalog/helpers.ts';
import type { RuleVariables } from '#domain/catalog/compiled.ts';
import { NOW, makeView } from './catalog-support.ts';

const EXPRESSIONS = [
  'profile.traits.tier == "VIP"',
  'has(profile.traits.tier) && profile.traits.tier == "VIP"',
  'profile.traits.age >= 16.0 && profile.traits.age <= 24',
  'profile.traits.age > 18 || profile.traits.tier != "VIP"',
  '!(profile.traits.flag) || profile.traits.age < 3',
  'profile.traits.tier in ["VIP", "GOLD", 1]',
  '"x" in profile.traits.tags',
  '"k" in profile.traits.nested',
  'profile.traits.nested["k"] == null',
  'profile.traits.nested.k == profile.traits.age',
  'profile.traits.flag ? profile.traits.age > 1.5 : false',
  'daysSince(profile.traits.since) > 30.0',
  'hoursSince(profile.traits.since) < 1000.0 && has(profile.traits.since)',
  'interest(profile.traits.tier) > 0.5 || likes(profile.traits.tier)',
  'eventCount(profile.traits.tier, "7d") >= 1.0',
  'engagementRate(profile.traits.tier) > 0.1',
  'context.weather == "rain" && "weather" in context',
  'context[profile.traits.tier] == 1',
  'hasSegment("vip") && !inSegment("other")',
  'visitsToday > 3.0 && preferredChannel == channel',
  'profile.stats.visitsToday > profile.traits.age',
  'profile.traits.tags == profile.traits.tags',
  'profile.scores.churnRisk > 0.5 || !(profile.traits.absent == 1)',
  '!(profile.traits.missing > 1.0 && profile.traits.age > 100)',
  'profile.traits.tier.matches("^V")',
  'context.weather.matches("ra+in") || profile.traits.tier.matches("(?i)gold")',
  'profile.traits.tier.matches("^(a+)+$") && context.x.matches("^(?P<first>[a-z])")',
  'profile.traits.since.matches("^\\\\d{4}-") == has(profile.traits.since)',
  'profile.traits.tier.matches(profile.traits.flag == true ? "^V" : "(")',
  '["x", "^V"].exists(p, profile.traits.tier.matches(p))',
];

const value = fc.oneof(
  fc.constantFrom('VIP', 'GOLD', 'gOlD', 'x', 'k', '', 'rain', 'raaain', 'aaaa', 'aaab', '2026-01-01T00:00:00Z', 'not a date', '(', 'V.*'),
  fc.integer({ min: -5, max: 40 }),
  fc.double({ min: -100, max: 100, noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.constantFrom('x', 'y', 1, true), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('k', 'j', 'VIP'), fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(null), fc.string({ maxLength: 2 })), { maxKeys: 2 }),
);

/** A value, or 'error' where cel-js throws (the fast path returns a missing key as a MissingKey instead). */
function outcome(run: (vars: RuleVariables) => unknown, vars: RuleVariables): unknown {
  try {
    const value = run(vars);
    return value instanceof MissingKey ? 'error' : { value };
  } catch {
    return 'error';
  }
}

/** Argument sources per kind: well-typed, wrong-typed, missing and literal values. */
const ARGUMENTS: Record<HelperArgument['kind'], readonly string[]> = {
  time: ['profile.traits.since', 'profile.traits.tier', 'profile.traits.absent', 'profile.stats.lastPurchaseAt'],
  string: ['profile.traits.tier', '"VIP"', 'profile.traits.age', 'profile.traits.absent'],
  segment: ['"vip"', '"other"'],
  model: ['"churnRisk"', '"none"'],
  window: EVENT_COUNT_WINDOWS.map((w) => `"${w}"`),
};

/** Every call of every helper of the table with every combination of argument sources, as a condition. */
const HELPER_EXPRESSIONS = RULE_HELPERS.flatMap((helper) => {
  const calls = helper.args.reduce<string[][]>((acc, arg) => acc.flatMap((prefix) => ARGUMENTS[arg.kind].map((a) => [...prefix, a])), [[]]);
  return calls.map((args) => {
    return { helper: helper.name, source: `${helper.name}(${args.join(', ')})`, kind: helper.returns === 'bool' ? ('bool' as const) : ('number' as const) };
  });
});

describe('CEL fast path', () => {
  it('agrees with cel-js on every helper of the table, for any profile', () => {
    const pairs = HELPER_EXPRESSIONS.map(({ helper, source, kind }) => {
      const fast = compileRule(source, 'x', kind);
      const slow = compileRule(source, 'x', kind, { fastPath: false });
      if (!fast.ok || !slow.ok) throw new Error(`${source} does not compile`);
      return { helper, source, fast: fast.rule, slow: slow.rule };
    });
    // Every helper is covered, and its calls take the fast path (not cel-js under another name).
    expect(new Set(pairs.map((p) => p.helper))).toEqual(new Set(RULE_HELPERS.map((h) => h.name)));
    expect(pairs.filter((p) => p.fast.run === p.slow.run).map((p) => p.source)).toEqual([]);
    const thresholds = new Map([['churnRisk', 0.5]]);
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('tier', 'age', 'since'), value, { maxKeys: 3 }),
        fc.option(fc.double({ min: 0, max: 1, noNaN: true }), { nil: undefined }),
        fc.integer({ min: 0, max: 20 }),
        fc.option(fc.constantFrom('2026-01-01T00:00:00Z', '2025-06-30T12:00:00Z'), { nil: undefined }),
        (traits, churnRisk, n, lastPurchaseAt) => {
          const view = makeView({
            traits,
            segments: n % 2 ? ['vip'] : [],
            scores: churnRisk === undefined ? {} : { churnRisk },
            stats: {
              ...(lastPurchaseAt ? { lastPurchaseAt } : {}),
              categoryInterests: n % 3 ? { VIP: n / 20 } : {},
              eventCounts: n % 4 ? { VIP: { today: n % 2, last7d: n % 5, last30d: n, total: n + 1 } } : {},
            },
            preferences: { interests: n % 2 ? ['VIP'] : [] },
            engagement: n % 3 ? { VIP: { delivered: 2, engaged: 1, rate: n / 20 } } : {},
          } as Parameters<typeof makeView>[0]);
          const vars = createRuleVariables({ profile: view, channel: 'push', now: NOW, catalog: { thresholds } });
          // The helper's value itself (a number or a bool), or a failure where cel-js fails.
          for (const { source, fast, slow } of pairs) {
            expect({ source, outcome: outcome(fast.run, vars) }).toEqual({ source, outcome: outcome(slow.run, vars) });
          }
        },
      ),
      { numRuns: 200 },
    );
  }, 120_000);

  it('agrees with cel-js on every profile and context', () => {
    const pairs = EXPRESSIONS.map((source) => {
      const fast = compileRule(source, 'x');
      const slow = compileRule(source, 'x', 'bool', { fastPath: false });
      if (!fast.ok || !slow.ok) throw new Error(`${source} does not compile`);
      return { source, fast: fast.rule, slow: slow.rule };
    });
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('tier', 'age', 'flag', 'tags', 'nested', 'since'), value, { maxKeys: 6 }),
        fc.dictionary(fc.constantFrom('weather', 'VIP', 'x'), value, { maxKeys: 3 }),
        fc.integer({ min: 0, max: 20 }),
        (traits, context, visitsToday) => {
          const view = makeView({
            traits,
            segments: visitsToday % 2 ? ['vip'] : [],
            stats: { visitsToday, categoryInterests: { VIP: 0.7 }, eventCounts: { VIP: { today: 1, last7d: 2, last30d: 3, total: 4 } } },
            preferences: { interests: ['GOLD'], preferredChannel: visitsToday % 3 ? 'push' : 'email' },
            engagement: { push: { delivered: 2, engaged: 1, rate: 0.5 } },
          });
          const vars = createRuleVariables({ profile: view, context, channel: 'push', now: NOW });
          for (const { source, fast, slow } of pairs) {
            expect({ source, outcome: outcome(fast.run, vars) }).toEqual({ source, outcome: outcome(slow.run, vars) });
            expect({ source, match: evaluateRule(fast, vars) }).toEqual({ source, match: evaluateRule(slow, vars) });
          }
        },
      ),
      { numRuns: 400 },
    );
  }, 120_000);

  it('matches() is RE2 on both paths: RE2-only syntax works, a catastrophic pattern on a long string completes', () => {
    const text = `${'a'.repeat(4_000)}b`;
    for (const fastPath of [true, false]) {
      const named = compileRule('context.s.matches("^(?P<run>a+)b$")', 'x', 'bool', { fastPath });
      const catastrophic = compileRule('context.s.matches("^(a+)+$")', 'x', 'bool', { fastPath });
      if (!named.ok || !catastrophic.ok) throw new Error('does not compile');
      const vars = createRuleVariables({ profile: makeView({}), context: { s: text }, now: NOW });
      expect(evaluateRule(named.rule, vars)).toBe(true);
      expect(evaluateRule(catastrophic.rule, vars)).toBe(false);
      expect(vars.$failures.rules).toBe(0);
    }
  });

  it('a literal pattern RE2 refuses is refused at load, with its position', () => {
    const refused = compileRule('profile.traits.tier == "x" || profile.traits.tier.matches("(?=x)")', 'x');
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.error.message).toMatch(/invalid regular expression \(RE2\)/);
    expect(refused.error.position).toBe(30);
  });

  it('a field the profile lacks is a no-match, returned as a value and not thrown', () => {
    const compiled = compileRule('profile.scores.churnRisk > 0.5', 'x');
    if (!compiled.ok) throw new Error('does not compile');
    const vars = createRuleVariables({ profile: makeView({}), now: NOW });
    const value = compiled.rule.run(vars);
    expect(value).toBeInstanceOf(MissingKey);
    expect((value as MissingKey).message).toBe('No such key: churnRisk');
    expect(evaluateRule(compiled.rule, vars)).toBe(false);
    expect(vars.$failures.rules).toBe(1);
    expect(vars.$failures.lastRule).toEqual({ path: 'x', message: 'No such key: churnRisk' });
  });
});
