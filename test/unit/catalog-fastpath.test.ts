/**
 * The CEL fast path gives exactly what cel-js gives: the same value, or a
 * failure where cel-js fails, for any profile and context.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileRule, createRuleVariables } from '../../shared/domain/catalog/rules.ts';
import type { RuleVariables } from '../../shared/domain/catalog/compiled.ts';
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
];

const value = fc.oneof(
  fc.constantFrom('VIP', 'GOLD', 'x', 'k', '', 'rain', '2026-01-01T00:00:00Z', 'not a date'),
  fc.integer({ min: -5, max: 40 }),
  fc.double({ min: -100, max: 100, noNaN: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.constantFrom('x', 'y', 1, true), { maxLength: 3 }),
  fc.dictionary(fc.constantFrom('k', 'j', 'VIP'), fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constant(null), fc.string({ maxLength: 2 })), { maxKeys: 2 }),
);

function outcome(run: (vars: RuleVariables) => unknown, vars: RuleVariables): unknown {
  try {
    return { value: run(vars) };
  } catch {
    return 'error';
  }
}

describe('CEL fast path', () => {
  it('agrees with cel-js on every profile and context', () => {
    const pairs = EXPRESSIONS.map((source) => {
      const fast = compileRule(source, 'x');
      const slow = compileRule(source, 'x', 'bool', { fastPath: false });
      if (!fast.ok || !slow.ok) throw new Error(`${source} does not compile`);
      return { source, fast: fast.rule.run, slow: slow.rule.run };
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
            expect({ source, outcome: outcome(fast, vars) }).toEqual({ source, outcome: outcome(slow, vars) });
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});
