/**
 * The learning policy inside decide (decide.ts `banditRanking`): each
 * decision's `probability` is the exact share of the unit interval of draws
 * that serves that action with that variant (swept over the draw), the
 * probabilities of the eligible arms sum to 1 (limit 1) or to the number
 * served (limit > 1), every eligible arm keeps its floor share, the bandit
 * never reaches past the checks that protect the customer, learning off is
 * deterministic with probability 1, an experiment arm's share is part of
 * the probability, and the learning context is the one the decision carries.
 * Content that does not render for the customer: its arms are never served
 * and the others' probabilities (answer and decision record) are still the
 * exact shares of draws that serve them.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { decide, decideForLog, emptyProfile, type DecideOptions } from '#domain/decide/decide.ts';
import { decodeDecisionId } from '#domain/decide/decision-id.ts';
import type { DecideRequest, LearningStats } from '#domain/decide/types.ts';
import { ArmProbabilityCache } from '#domain/learning/policy.ts';
import { NO_CONTEXT } from '#domain/learning/statistics.ts';
import type { ProfileView } from '#domain/profile/view.ts';

const NOW = new Date('2026-01-15T12:00:00Z');

function catalog(input: CatalogInput): CompiledCatalog {
  const result = loadCatalog(input, 'object', { version: 3 });
  if (!result.ok) throw new Error(`catalog: ${JSON.stringify(result.problems)}`);
  return result.catalog;
}

const banner = (id: string, extra: Record<string, unknown> = {}) => ({ id, name: id, content: { web: { title: `${id} title` } }, ...extra });
const twoVariants = [
  { id: 'a', content: { web: { title: 'A' } } },
  { id: 'b', content: { web: { title: 'B' } } },
];

/** Statistics from `{ 'action/variant': [impressions, clicks] }` (`action` alone for the base content), in one context. */
function stats(table: Record<string, [number, number]>, context = NO_CONTEXT, generation = 1): LearningStats {
  return {
    generation,
    get: (actionId, variant, asked) => {
      if (asked !== context) return undefined;
      const entry = table[variant === undefined ? actionId : `${actionId}/${variant}`];
      return entry ? { impressions: entry[0], clicks: entry[1], conversions: 0 } : undefined;
    },
  };
}

const request = (extra: Partial<DecideRequest> = {}): DecideRequest => ({ userId: 'u-1', channel: 'web', limit: 1, context: {}, explain: false, ...extra });
const key = (a: { actionId: string; variant?: string }) => (a.variant === undefined ? a.actionId : `${a.actionId}/${a.variant}`);

const STEPS = 2_000;

/**
 * Decide once per draw u = (i + ½)/STEPS: for each (action, variant) served,
 * the share of draws that served it and the probability its decisions
 * reported (the same every time, or the test fails).
 */
function sweep(c: CompiledCatalog, profile: ProfileView, req: DecideRequest, options: DecideOptions = {}, steps = STEPS): Map<string, { share: number; probability: number }> {
  const policies = options.policies ?? new ArmProbabilityCache();
  const seen = new Map<string, { share: number; probability: number }>();
  for (let i = 0; i < steps; i++) {
    const u = (i + 0.5) / steps;
    const d = decide(c, profile, req, NOW, { nonce: `n${i}`, ...options, policies, random: () => u });
    for (const action of d.actions) {
      const entry = seen.get(key(action)) ?? { share: 0, probability: action.probability };
      expect(action.probability).toBe(entry.probability);
      entry.share += 1 / steps;
      seen.set(key(action), entry);
    }
  }
  return seen;
}

const sum = (values: Iterable<number>) => [...values].reduce((s, v) => s + v, 0);

describe('the bandit inside decide', () => {
  const learning = { enabled: true, exploration: 0.3, floor: 0.05, contextBy: 'none' } as const;
  const c = catalog({
    learning,
    actions: [banner('hero', { variants: twoVariants, value: 2 }), banner('side'), banner('tail', { value: 0.5 }), banner('last', { value: 0.8 })],
  });
  const learnt = stats({ 'hero/a': [500, 40], 'hero/b': [500, 90], side: [400, 60], tail: [300, 30], last: [50, 2] });

  it('limit 1: every eligible arm is served with exactly the probability it reports, and they sum to 1', () => {
    const served = sweep(c, emptyProfile({ userId: 'u-1' }), request(), { learning: learnt });
    expect([...served.keys()].sort()).toEqual(['hero/a', 'hero/b', 'last', 'side', 'tail']);
    for (const { share, probability } of served.values()) {
      expect(Math.abs(share - probability)).toBeLessThan(1 / STEPS + 1e-6);
      expect(probability).toBeGreaterThanOrEqual(learning.floor);
    }
    expect(sum([...served.values()].map((s) => s.probability))).toBeCloseTo(1, 4);
  });

  it('limit > 1: each returned action carries its exact chance of being in the answer; they sum to the number served', () => {
    const served = sweep(c, emptyProfile({ userId: 'u-1' }), request({ limit: 3 }), { learning: learnt });
    for (const { share, probability } of served.values()) expect(Math.abs(share - probability)).toBeLessThan(1 / STEPS + 1e-5);
    expect(sum([...served.values()].map((s) => s.probability))).toBeCloseTo(3, 4);
    // The best action by score (hero with its best variant) is in every answer but in the floor-share draws of its other variant.
    expect(served.get('hero/b')?.probability ?? 0).toBeGreaterThan(0.9);
  });

  it('every eligible arm keeps at least its floor share over many decisions, the best arm the most', () => {
    const policies = new ArmProbabilityCache();
    const counts = new Map<string, number>();
    const n = 4_000;
    for (let i = 0; i < n; i++) {
      const d = decide(c, emptyProfile({ userId: `u${i}` }), request({ userId: `u${i}` }), NOW, { nonce: `n${i}`, learning: learnt, policies });
      const first = d.actions[0];
      if (first) counts.set(key(first), (counts.get(key(first)) ?? 0) + 1);
    }
    const floorSigma = Math.sqrt((learning.floor * (1 - learning.floor)) / n);
    for (const arm of ['hero/a', 'hero/b', 'side', 'tail', 'last']) expect((counts.get(arm) ?? 0) / n).toBeGreaterThan(learning.floor - 4 * floorSigma);
    expect(Math.max(...counts.values())).toBe(counts.get('hero/b'));
    expect(policies.misses).toBe(1);
  });

  it('never serves an action a check drops, however strong its statistics: suppression, frequency cap, consent, quiet hours', () => {
    const strong = stats({ star: [10_000, 9_500], plain: [10_000, 10] });
    const protectedCatalog = (policies: CatalogInput['policies'], star: Record<string, unknown> = {}) =>
      catalog({ learning, tags: ['promo'], policies, actions: [banner('star', { tags: ['promo'], value: 10, ...star }), banner('plain')] });
    const everyDraw = (cat: CompiledCatalog, profile: ProfileView, req = request()) => [...sweep(cat, profile, req, { learning: strong }).keys()];

    const suppressed = protectedCatalog({ suppressions: [{ id: 'no-promo', tags: ['promo'], when: 'true' }] });
    expect(everyDraw(suppressed, emptyProfile({ userId: 'u-1' }))).toEqual(['plain']);

    const recent = [new Date(NOW.getTime() - 3_600_000).toISOString()];
    const capped = protectedCatalog(undefined, { caps: ['1/day'] });
    const seen = { ...emptyProfile({ userId: 'u-1' }), contacts: { star: { impressions: recent, clicks: 0, conversions: 0 } } };
    expect(everyDraw(capped, seen)).toEqual(['plain']);

    const consentBound = protectedCatalog({ consentRequired: ['web'] });
    expect(everyDraw(consentBound, emptyProfile({ userId: 'u-1' }))).toEqual([]);

    const quiet = protectedCatalog({ quietHours: [{ id: 'all-day', channels: ['web'], from: '00:00', to: '23:59' }] });
    expect(everyDraw(quiet, emptyProfile({ userId: 'u-1' }))).toEqual([]);
  });

  it('learning off (for the placement, or for the catalog): deterministic, probability 1', () => {
    const offHere = catalog({
      learning,
      arbitration: { placements: [{ channel: 'web', placement: 'home', learning: false }] },
      actions: [banner('hero', { variants: twoVariants, value: 2 }), banner('side')],
    });
    const offEverywhere = catalog({ learning: { ...learning, enabled: false }, actions: [banner('hero', { variants: twoVariants, value: 2 }), banner('side')] });
    for (const [cat, req] of [
      [offHere, request({ placement: 'home', limit: 2 })],
      [offEverywhere, request({ limit: 2 })],
    ] as const) {
      const served = sweep(cat, emptyProfile({ userId: 'u-1' }), req, { learning: learnt });
      expect([...served.entries()]).toEqual([
        ['hero/a', { share: expect.closeTo(1, 6) as number, probability: 1 }],
        ['side', { share: expect.closeTo(1, 6) as number, probability: 1 }],
      ]);
    }
    // Learning on where exploration is 0: the greedy arm, probability 1, the floor off too.
    const greedy = catalog({ learning: { ...learning, exploration: 0 }, actions: [banner('hero', { variants: twoVariants, value: 2 }), banner('side')] });
    expect([...sweep(greedy, emptyProfile({ userId: 'u-1' }), request(), { learning: learnt }).entries()]).toEqual([
      ['hero/b', { share: expect.closeTo(1, 6) as number, probability: 1 }],
    ]);
  });

  it('explains itself: the greedy arm first is `learning:greedy`, another `learning:explore` (explanation.explored)', () => {
    const at = (u: number) => decide(c, emptyProfile({ userId: 'u-1' }), request({ explain: true }), NOW, { learning: learnt, random: () => u });
    const exploit = at(0.999);
    expect(exploit.actions[0]).toMatchObject({ actionId: 'hero', variant: 'b' });
    expect(exploit.actions[0]?.reasons).toContain('learning:greedy');
    expect(exploit.explanation?.explored).toBe(false);
    const explore = at(0);
    expect(explore.actions[0]?.reasons).toContain('learning:explore');
    expect(explore.actions[0]?.reasons).not.toContain('learning:greedy');
    expect(explore.explanation?.explored).toBe(true);
    // The decision id carries what the answer says.
    const record = decodeDecisionId(explore.decisionId);
    expect(record?.actions[0]?.probability).toBe(explore.actions[0]?.probability);
    expect(record?.context).toBe(NO_CONTEXT);
  });

  it('an experiment arm: its variant is not the bandit\'s choice, and the probability includes the arm\'s share of customers', () => {
    const experiment = {
      id: 'copy',
      kind: 'variants' as const,
      action: 'hero',
      holdout: 0.2,
      arms: [
        { id: 'a', variant: 'a', weight: 1 },
        { id: 'b', variant: 'b', weight: 3 },
      ],
    };
    const withExperiment = (l: CatalogInput['learning']) => catalog({ learning: l, experiments: [experiment], actions: [banner('hero', { variants: twoVariants })] });
    // A customer in arm b and one in arm a (sticky: a hash of the experiment and the customer).
    const armOf = (cat: CompiledCatalog, userId: string) => decide(cat, emptyProfile({ userId }), request({ userId }), NOW, { learning: learnt }).actions[0]?.experiment?.arm;
    const off = withExperiment({ ...learning, enabled: false });
    const users = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const inB = users.find((u) => armOf(off, u) === 'b') as string;
    const inA = users.find((u) => armOf(off, u) === 'a') as string;
    const served = (cat: CompiledCatalog, userId: string) => sweep(cat, emptyProfile({ userId }), request({ userId }), { learning: learnt });
    expect([...served(off, inB).entries()]).toEqual([['hero/b', { share: expect.closeTo(1, 6) as number, probability: 0.6 }]]);
    expect([...served(off, inA).entries()]).toEqual([['hero/a', { share: expect.closeTo(1, 6) as number, probability: 0.2 }]]);
    // Learning on: one arm (the fixed variant) against the other eligible actions.
    const on = catalog({ learning, experiments: [experiment], actions: [banner('hero', { variants: twoVariants }), banner('side')] });
    const shares = served(on, inA);
    expect([...shares.keys()].sort()).toEqual(['hero/a', 'side']);
    expect((shares.get('hero/a')?.probability ?? 0) / (shares.get('hero/a')?.share ?? 1)).toBeCloseTo(0.2, 2);
    expect(shares.get('side')?.probability).toBeCloseTo(shares.get('side')?.share ?? 0, 3);
  });

  it('learns per context: the persona\'s statistics choose, and the decision id carries that context', () => {
    const byPersona = catalog({
      learning: { ...learning, exploration: 0.01, contextBy: 'persona' },
      personas: [{ id: 'student', name: 'Student', rule: 'profile.traits.age < 25.0' }],
      actions: [banner('hero', { variants: twoVariants })],
    });
    const students = stats({ 'hero/a': [1_000, 300], 'hero/b': [1_000, 10] }, 'student');
    const student = { ...emptyProfile({ userId: 'u-1' }), traits: { age: 20 } };
    const d = decide(byPersona, student, request(), NOW, { learning: students, random: () => 0.999 });
    expect(d.actions[0]?.variant).toBe('a');
    expect(decodeDecisionId(d.decisionId)?.context).toBe('student');
    // Someone else (no persona) learns from the "-" context: nothing there, the prior, the first variant.
    const other = decide(byPersona, { ...emptyProfile({ userId: 'u-2' }), traits: { age: 50 } }, request({ userId: 'u-2' }), NOW, { learning: students, random: () => 0.999 });
    expect(other.actions[0]?.variant).toBe('a');
    expect(other.actions[0]?.propensity).toBe(0.5);
    expect(decodeDecisionId(other.decisionId)?.context).toBe(NO_CONTEXT);

    const bySegment = catalog({
      learning: { ...learning, contextBy: 'segment' },
      segments: [
        { id: 'young', rule: 'profile.traits.age < 25.0' },
        { id: 'anyone', rule: 'true' },
      ],
      actions: [banner('hero', { variants: twoVariants })],
    });
    const segmented = decide(bySegment, student, request(), NOW, { random: () => 0.999 });
    expect(segmented.segments).toEqual(expect.arrayContaining(['young', 'anyone']));
    expect(decodeDecisionId(segmented.decisionId)?.context).toBe('young');
  });

  it('caches the probabilities per statistics generation and eligible arms', () => {
    const policies = new ArmProbabilityCache(2);
    const once = (s: LearningStats, extra: Partial<DecideRequest> = {}) => decide(c, emptyProfile({ userId: 'u-1' }), request(extra), NOW, { learning: s, policies });
    once(learnt);
    once(learnt);
    expect({ hits: policies.hits, misses: policies.misses }).toEqual({ hits: 1, misses: 1 });
    once(stats({ 'hero/b': [10, 9] }, NO_CONTEXT, 2));
    expect(policies.misses).toBe(2);
    once(learnt, { placement: 'elsewhere' });
    expect(policies.misses).toBe(3);
    expect(policies.size).toBe(2);
  });
});

describe('the bandit when content does not render for this customer', () => {
  const learning = { enabled: true, exploration: 0.3, floor: 0.05, contextBy: 'none' } as const;
  /** Each arm's title outputs its own trait: a value past TEMPLATE_LIMITS.outputChars makes that arm fail for that customer. */
  const ARMS = ['hero/a', 'hero/b', 'side', 'tail', 'last'] as const;
  const trait = (arm: string) => `t_${arm.replace('/', '_')}`;
  const c = catalog({
    learning,
    actions: [
      banner('hero', {
        value: 2,
        variants: [
          { id: 'a', content: { web: { title: 'A {{ t_hero_a }}' } } },
          { id: 'b', content: { web: { title: 'B {{ t_hero_b }}' } } },
        ],
      }),
      { id: 'side', name: 'side', content: { web: { title: 'S {{ t_side }}' } } },
      { id: 'tail', name: 'tail', value: 0.5, content: { web: { title: 'T {{ t_tail }}' } } },
      { id: 'last', name: 'last', value: 0.8, content: { web: { title: 'L {{ t_last }}' } } },
      { id: 'safety', name: 'safety', eligibility: 'false', fallback: [{ channel: 'web' }], content: { web: { title: 'Hello' } } },
    ],
  });
  const learnt = stats({ 'hero/a': [500, 40], 'hero/b': [500, 90], side: [400, 60], tail: [300, 30], last: [50, 2] });
  const TOO_LONG = 'x'.repeat(60_000);
  /** A customer for whom the arms in `failing` do not render (their trait is too long to output). */
  const customer = (failing: readonly string[]): ProfileView =>
    ({ ...emptyProfile({ userId: 'u-1' }), traits: Object.fromEntries(ARMS.map((arm) => [trait(arm), failing.includes(arm) ? TOO_LONG : 'ok'])) }) as ProfileView;
  const logPolicies = new ArmProbabilityCache();
  /** The decision record's chance of position 1 of each eligible arm, for this customer (the same for every draw). */
  const loggedOf = (profile: ProfileView, req: DecideRequest): Map<string, number> => {
    const probabilities = new Map<string, number>();
    for (const u of [0.01, 0.5, 0.99]) {
      const { log } = decideForLog(c, profile, req, NOW, { nonce: 'log', learning: learnt, policies: logPolicies, random: () => u });
      for (const [actionId, , probability, variant] of log.eligible) {
        const arm = variant === undefined ? actionId : `${actionId}/${variant}`;
        expect(probabilities.get(arm) ?? probability).toBe(probability);
        probabilities.set(arm, probability);
      }
    }
    return probabilities;
  };

  it('limit 1, the greedy arm (the largest chance) failing: never served, every other arm served with exactly the probability the answer and the record give it', () => {
    const everyArm = loggedOf(customer([]), request());
    const greedy = [...everyArm.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
    expect(greedy).toBe('hero/b');
    expect(everyArm.get('hero/b')).toBeGreaterThan(0.5);
    const profile = customer(['hero/b']);
    const served = sweep(c, profile, request(), { learning: learnt });
    const logged = loggedOf(profile, request());
    expect([...served.keys()].sort()).toEqual(['hero/a', 'last', 'side', 'tail']);
    expect(logged.get('hero/b')).toBe(0);
    for (const [arm, { share, probability }] of served) {
      expect(Math.abs(share - probability)).toBeLessThan(1 / STEPS + 1e-6);
      expect(logged.get(arm)).toBeCloseTo(probability, 5);
      // Re-normalised: the arm's chance over the chances of the arms that render.
      expect(probability).toBeCloseTo((everyArm.get(arm) as number) / (1 - (everyArm.get('hero/b') as number)), 5);
    }
    expect(sum([...served.values()].map((s) => s.share))).toBeCloseTo(1, 6);
    expect(sum(logged.values())).toBeCloseTo(1, 5);
  });

  it('limit 3, an action whose best variant fails (its other variant may still be drawn first): each served action with its exact chance of being in the answer', () => {
    const profile = customer(['hero/b', 'side']);
    const served = sweep(c, profile, request({ limit: 3 }), { learning: learnt });
    expect(served.has('hero/b')).toBe(false);
    expect(served.has('side')).toBe(false);
    for (const { share, probability } of served.values()) expect(Math.abs(share - probability)).toBeLessThan(1 / STEPS + 1e-5);
    // The other positions take each action's best variant: hero (best variant b) fills them with nothing, so
    // tail and last are in every answer and hero/a only when it is drawn first.
    expect(served.get('tail')?.probability).toBe(1);
    expect(served.get('last')?.probability).toBe(1);
    expect(sum([...served.values()].map((s) => s.share))).toBeCloseTo(2 + (served.get('hero/a')?.probability ?? 0), 3);
  });

  it('nothing renders: the fallbacks are served, and every eligible arm is logged with chance 0', () => {
    const profile = customer(ARMS);
    const served = sweep(c, profile, request(), { learning: learnt }, 200);
    expect([...served.entries()]).toEqual([['safety', { share: expect.closeTo(1, 6) as number, probability: 1 }]]);
    const logged = loggedOf(profile, request());
    expect(logged.size).toBe(ARMS.length);
    for (const p of logged.values()) expect(p).toBe(0);
  });

  it('property: whichever arms fail, and whatever the limit, the served shares are the answers\u2019 probabilities and the record\u2019s chances of position 1', () => {
    const steps = 400;
    const policies = new ArmProbabilityCache();
    fc.assert(
      fc.property(fc.subarray([...ARMS]), fc.integer({ min: 1, max: 3 }), (failing, limit) => {
        const profile = customer(failing);
        const req = request({ limit });
        const logged = loggedOf(profile, req);
        // Over the draws: each served arm's share of answers (and the probability they give it), and its share of position 1.
        const served = new Map<string, { share: number; probability: number }>();
        const first = new Map<string, number>();
        for (let i = 0; i < steps; i++) {
          const d = decide(c, profile, req, NOW, { nonce: `p${i}`, learning: learnt, policies, random: () => (i + 0.5) / steps });
          for (const action of d.actions) {
            const entry = served.get(key(action)) ?? { share: 0, probability: action.probability };
            expect(action.probability).toBe(entry.probability);
            entry.share += 1 / steps;
            served.set(key(action), entry);
          }
          const top = d.actions[0];
          if (top && d.fallback !== true) first.set(key(top), (first.get(key(top)) ?? 0) + 1 / steps);
        }
        for (const arm of failing) {
          expect(served.has(arm)).toBe(false);
          expect(logged.get(arm)).toBe(0);
        }
        for (const { share, probability } of served.values()) expect(Math.abs(share - probability)).toBeLessThan(1 / steps + 1e-5);
        for (const [arm, p] of logged) expect(Math.abs((first.get(arm) ?? 0) - p)).toBeLessThan(1 / steps + 1e-5);
      }),
      { numRuns: 20, seed: 14 },
    );
  }, 120_000);

  it('learning off, the first-ranked action failing: the record gives the action served first its chance (1), the failing one 0', () => {
    const off = catalog({ learning: { enabled: false }, actions: [{ id: 'top', name: 'top', value: 3, content: { web: { title: '{{ t_side }}' } } }, banner('next')] });
    const { decision, log } = decideForLog(off, customer(['side']), request(), NOW, { nonce: 'off' });
    expect(decision.actions.map((a) => [a.actionId, a.probability])).toEqual([['next', 1]]);
    expect(log.eligible.map(([id, , p]) => [id, p])).toEqual([
      ['top', 0],
      ['next', 1],
    ]);
  });
});
