/**
 * Hostile rules: nested comprehensions, huge literals, catastrophic regular
 * expressions on long strings, string concatenation and join blow-ups. Each
 * is refused when the catalog is loaded (with its path and position) or is
 * evaluated within the decision's budget: the decision completes, and a rule
 * the budget leaves no time for is not run, counted, and explained as
 * `rule:error`. No wall-clock assertion: the budget's clock is injected.
 */
import fc from 'fast-check';
import { assert, describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { CLOCK_EVERY, DEFAULT_RULE_BUDGET_MS, createFailureTally } from '#domain/catalog/rules.ts';
import { MAX_RULE_COST } from '#domain/catalog/cost.ts';
import { decide, emptyProfile } from '#domain/decide/decide.ts';
import type { DecideRequest, Decision } from '#domain/decide/types.ts';
import type { ProfileView } from '#domain/profile/view.ts';

const NOW = new Date('2026-01-15T12:00:00Z');
const banner = (id: string, extra: Record<string, unknown> = {}) => ({ id, name: id, content: { web: { title: `${id} title` } }, ...extra });

function load(eligibility: string) {
  const input: CatalogInput = {
    learning: { enabled: false, exploration: 0 },
    actions: [banner('hostile', { eligibility, value: 10 }), banner('safe', { value: 1 })],
  } as CatalogInput;
  return loadCatalog(input, 'object');
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);
const LISTS = ['context.l', 'profile.traits.tags', 'context.s.split("")', `[${range(500).join(',')}]`, '[1, 2, 3]', 'context.m'];
const PATTERNS = ['^(a+)+$', '(a|aa)+$', '^(a*)*b$', '(x+x+)+y', '^([a-z]+ ?)*$', '(.*a){12}', '^(a|a?)+$'];
const TEXTS = ['context.s', 'profile.traits.bio', 'context.s + context.s', 'context.l.map(x, context.s).join()'];

/** `L.exists(x0, L.exists(x1, … x0 == x(d-1)))`, or the same with map/filter/all at each level. */
const nestedComprehension = fc
  .tuple(fc.integer({ min: 2, max: 5 }), fc.array(fc.constantFrom(...LISTS), { minLength: 5, maxLength: 5 }), fc.constantFrom('exists', 'all', 'exists_one', 'map'))
  .map(([depth, lists, macro]) => {
    let body = `x0 == x${depth - 1}`;
    for (let i = depth - 1; i >= 0; i--) {
      body = macro === 'map' ? `size(${lists[i]}.map(x${i}, ${body})) >= 0` : `${lists[i]}.${macro}(x${i}, ${body})`;
    }
    return body;
  });

const catastrophicRegex = fc
  .tuple(fc.constantFrom(...PATTERNS), fc.constantFrom(...TEXTS))
  .map(([pattern, text]) => `${text}.matches("${pattern}")`);

const hugeLiteral = fc.oneof(
  fc.integer({ min: 100, max: 4_100 }).map((n) => `context.s.contains("${'a'.repeat(n)}")`),
  fc.integer({ min: 10, max: 600 }).map((n) => `[${range(n).join(',')}].exists(x, x == context.n)`),
  fc.integer({ min: 10, max: 600 }).map((n) => `context.l.exists(y, [${range(n).join(',')}].exists(x, x == y))`),
);

const blowUp = fc.oneof(
  fc.integer({ min: 2, max: 60 }).map((k) => `size(${Array.from({ length: k }, () => 'context.s').join(' + ')}) > 0`),
  fc.integer({ min: 1, max: 4 }).map((k) => `size(${'context.l.map(x, context.s)'.repeat(1)}${' + context.l.map(x, context.s)'.repeat(k - 1)}.join("")) > 0`),
  fc.constantFrom(
    'context.l.map(x, context.s + context.s).join("").matches("^(a+)+$")',
    `[${range(400).join(',')}].map(x, context.s).join("").size() > 0`,
    'context.s.split("").map(c, context.s).join(context.s).size() > 0',
    'profile.traits.tags.all(t, t + t + t + t == context.s)',
  ),
);

const hostile = fc.oneof(nestedComprehension, catastrophicRegex, hugeLiteral, blowUp);

/** A context as large as decide accepts (4 KB of JSON), and a profile with a long bio and many tags. */
const context = fc
  .tuple(fc.integer({ min: 0, max: 2_000 }), fc.integer({ min: 0, max: 900 }), fc.constantFrom('!', 'b', 'a', ' '))
  .map(([n, items, tail]) => ({ s: `${'a'.repeat(n)}${tail}`, l: range(items).map((i) => i % 10), n: 1, m: { a: 1, b: 2 } }));
const view = (bio: string, tags: number): ProfileView => {
  const base = emptyProfile({ userId: 'u-1' });
  return { ...base, traits: { bio, tags: range(tags).map((i) => `tag${i}`) } };
};
const profile = fc.tuple(fc.integer({ min: 0, max: 30_000 }), fc.integer({ min: 0, max: 2_000 })).map(([n, tags]) => view(`${'a'.repeat(n)}!`, tags));

const request = (ctx: Record<string, unknown>, explain: boolean): DecideRequest => ({ userId: 'u-1', channel: 'web', limit: 2, context: ctx, explain });
const ids = (d: Decision) => d.actions.map((a) => a.actionId);
const whyOf = (d: Decision, id: string) => d.explanation?.candidates.find((c) => c.actionId === id)?.why;

/** A clock whose first reading (the decision's start) is 0 and every later one far past any budget. */
function expiredClock(): () => number {
  let readings = 0;
  return () => (readings++ === 0 ? 0 : 1e12);
}

describe('hostile rules', () => {
  it('are refused at load with their path and position, or evaluated within the decision budget', () => {
    let refused = 0;
    let accepted = 0;
    let skipped = 0;
    fc.assert(
      fc.property(hostile, context, profile, fc.boolean(), (expression, ctx, customer, explain) => {
        const loaded = load(expression);
        if (!loaded.ok) {
          refused++;
          const problem = loaded.problems.find((p) => p.path === 'actions[0].eligibility');
          assert.isDefined(problem, JSON.stringify(loaded.problems.slice(0, 2)));
          // CEL problems carry their position; an expression over the schema's length limit is refused whole.
          assert.isTrue(typeof problem?.position === 'number' || /4000 characters/.test(problem?.message ?? ''), problem?.message);
          return;
        }
        accepted++;
        const catalog: CompiledCatalog = loaded.catalog;
        const rule = catalog.actionsById.get('hostile')?.eligibility;
        expect(rule?.cost ?? 0).toBeLessThanOrEqual(MAX_RULE_COST);

        // The default budget on the real clock: the decision answers.
        const onTime = decide(catalog, customer, request(ctx, explain), NOW, { nonce: 'n', ruleBudgetMs: DEFAULT_RULE_BUDGET_MS });
        expect(ids(onTime)).toContain('safe');

        // A budget already spent: the decision still answers, and a costly rule is not run but counted.
        const failures = createFailureTally();
        const late = decide(catalog, customer, request(ctx, true), NOW, { nonce: 'n', ruleClock: expiredClock(), failures });
        expect(ids(late)).toContain('safe');
        const costly = (rule?.cost ?? 0) >= CLOCK_EVERY;
        if (costly) skipped++;
        // A costly rule is not run past the deadline: rule:error, one skip counted, and a failure.
        expect({
          why: costly ? /^rule:error not evaluated: the decision's rule budget \(50 ms\) had run out/.test(whyOf(late, 'hostile') ?? '') : true,
          skips: failures.deadline,
          failures: failures.rules >= (costly ? 1 : 0),
        }).toEqual({ why: true, skips: costly ? 1 : 0, failures: true });
      }),
      { numRuns: 150 },
    );
    // Both outcomes occur: the limit refuses the blow-ups and admits the bounded ones.
    expect(refused).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0);
    expect(skipped).toBeGreaterThan(0);
  }, 300_000);

  it('refuses nested comprehensions over request lists, naming the path and the position', () => {
    const loaded = load('profile.traits.tier == "x" || context.l.exists(x, context.l.exists(y, x == y))');
    expect(loaded.ok).toBe(false);
    if (loaded.ok) return;
    expect(loaded.problems[0]).toMatchObject({ path: 'actions[0].eligibility', position: 30 });
    expect(loaded.problems[0]?.message).toMatch(/estimated worst case \d+ units, limit 100000/);
  });

  it('counts a literal pattern by its RE2 program: a counted repetition is short to write and long to run', () => {
    // `X.{1000}X.{1000}Z$` is 18 characters and 2,006 instructions; on a 4 KB context string one call took 0.5 s,
    // and thirty of them in one rule, each under the limit as its length counts, held a decide for 5–7 s.
    const refused = load('context.s.matches("X.{1000}X.{1000}Z$")');
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.problems[0]).toMatchObject({ path: 'actions[0].eligibility' });
    expect(refused.problems[0]?.message).toMatch(/estimated worst case \d+ units, limit 100000/);
    // Ordinary patterns cost what their length says, as before; a short repetition is within the limit.
    for (const rule of ['context.s.matches("^(a+)+$")', 'profile.traits.bio.matches("^[a-z]+@[a-z]+\\\\.[a-z]{2,6}$")', 'context.s.matches("X.{40}Z")']) {
      expect({ rule, ok: load(rule).ok }).toEqual({ rule, ok: true });
    }
  });

  it('evaluates a catastrophic regular expression on a long context string in linear time (RE2)', () => {
    const loaded = load('context.s.matches("^(a+)+$")');
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const ctx = { s: `${'a'.repeat(4_000)}!` };
    const failures = createFailureTally();
    const decision = decide(loaded.catalog, view('', 0), request(ctx, true), NOW, { nonce: 'n', failures });
    expect(ids(decision)).toEqual(['safe']);
    expect(whyOf(decision, 'hostile')).toBe('rule:not eligible');
    expect(failures.rules).toBe(0);
  });

  it('a budget that runs out skips every rule after it, segments and eligibility alike, and the decision answers', () => {
    const input = {
      learning: { enabled: false, exploration: 0 },
      segments: [{ id: 'heavy', rule: 'context.l.exists(x, x == 2) && context.s.matches("(a|aa)+b$")' }],
      actions: [
        banner('needs-heavy', { targeting: { segments: ['heavy'] }, value: 10 }),
        banner('costly', { eligibility: 'context.l.exists(t, string(t).startsWith("1"))', value: 5 }),
        banner('safe', { value: 1 }),
      ],
    } as CatalogInput;
    const loaded = loadCatalog(input, 'object');
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const failures = createFailureTally();
    const decision = decide(loaded.catalog, view('', 0), request({ s: 'ab', l: [1, 2] }, true), NOW, { nonce: 'n', ruleClock: expiredClock(), failures });
    expect(ids(decision)).toEqual(['safe']);
    expect(decision.segments).toEqual([]);
    expect(whyOf(decision, 'costly')).toMatch(/^rule:error not evaluated/);
    expect(failures.deadline).toBe(2);
    expect(failures.rules).toBeGreaterThanOrEqual(2);
    // With time left, the same decision evaluates both rules.
    const onTimeFailures = createFailureTally();
    const onTime = decide(loaded.catalog, view('', 0), request({ s: 'ab', l: [1, 2] }, true), NOW, { nonce: 'n', failures: onTimeFailures });
    expect(onTime.segments).toEqual(['heavy']);
    expect(ids(onTime)).toEqual(['needs-heavy', 'costly']);
    expect(onTimeFailures.deadline).toBe(0);
  });
});
