/**
 * The learning policy (shared/domain/learning/policy.ts): Thompson
 * probabilities within ±0.01 of values computed by numerical integration,
 * every eligible arm keeping its floor share, probabilities that sum to 1 and
 * do not depend on the instance, and a choice served with its probability.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '#domain/decide/random.ts';
import { armProbabilities, chooseArm, thompsonProbabilities, type ArmPosterior } from '#domain/learning/policy.ts';

/**
 * P(s_a·X_a > s_b·X_b), X ~ Beta, by the trapezoidal rule on a grid of 200,000
 * points: ∫ f_a(x) F_b(s_a·x/s_b) dx, each density normalised numerically, each
 * CDF its cumulative integral. Independent of the code under test.
 */
function pairwiseWin(a: ArmPosterior, b: ArmPosterior): number {
  const n = 200_000;
  const grid = Array.from({ length: n + 1 }, (_, i) => i / n);
  const density = (p: ArmPosterior) => {
    const raw = grid.map((x) => (x === 0 || x === 1 ? 0 : x ** (p.alpha - 1) * (1 - x) ** (p.beta - 1)));
    const total = raw.reduce((s, v, i) => (i === 0 ? 0 : s + ((v + (raw[i - 1] as number)) / 2) / n), 0);
    return raw.map((v) => v / total);
  };
  const fa = density(a);
  const fb = density(b);
  const cdfB: number[] = [0];
  for (let i = 1; i <= n; i++) cdfB.push((cdfB[i - 1] as number) + ((fb[i] as number) + (fb[i - 1] as number)) / 2 / n);
  const cdfAt = (y: number) => (y >= 1 ? 1 : (cdfB[Math.floor(y * n)] as number));
  let p = 0;
  for (let i = 1; i <= n; i++) {
    const x0 = grid[i - 1] as number;
    const x1 = grid[i] as number;
    p += (((fa[i - 1] as number) * cdfAt((a.scale * x0) / b.scale) + (fa[i] as number) * cdfAt((a.scale * x1) / b.scale)) / 2) / n;
  }
  return p;
}

const arm = (id: string, alpha: number, beta: number, scale = 1): ArmPosterior => ({ id, alpha, beta, scale });

describe('Thompson probabilities', () => {
  it.each([
    [arm('a', 30, 70), arm('b', 20, 80)],
    [arm('a', 2, 3), arm('b', 3, 2)],
    [arm('a', 1, 1), arm('b', 1, 1)],
    [arm('a', 12, 400), arm('b', 5, 400, 2)],
  ])('two arms %o, %o: within 0.01 of the integral', (a, b) => {
    const [pa] = thompsonProbabilities([a, b], 10_000, seededRandom(11));
    expect(Math.abs((pa as number) - pairwiseWin(a, b))).toBeLessThan(0.01);
  });

  it('exchangeable arms (the same posterior and scale) each win exactly 1/K: the integral, without a draw', () => {
    fc.assert(
      fc.property(
        fc.record({ alpha: fc.double({ min: 0.5, max: 50, noNaN: true }), beta: fc.double({ min: 0.5, max: 50, noNaN: true }), scale: fc.double({ min: 0.1, max: 10, noNaN: true }) }),
        fc.integer({ min: 2, max: 8 }),
        ({ alpha, beta, scale }, k) => {
          const arms = Array.from({ length: k }, (_, i) => arm(`arm-${i}`, alpha, beta, scale));
          let drawn = 0;
          const counting = () => {
            drawn++;
            return 0.5;
          };
          expect(thompsonProbabilities(arms, 1_000, counting)).toEqual(Array.from({ length: k }, () => 1 / k));
          expect(drawn).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
    // The definition, for two arms: the numerical integral of P(X_a > X_b) is 1/2.
    for (const [alpha, beta] of [[1, 1], [3, 40], [0.7, 2.5]] as const) {
      expect(pairwiseWin(arm('a', alpha, beta, 2), arm('b', alpha, beta, 2))).toBeCloseTo(0.5, 4);
    }
    // An arm that differs in anything keeps the Monte Carlo: within 0.01 of the integral.
    const [pa] = thompsonProbabilities([arm('a', 3, 40), arm('b', 3, 40, 1.2)], 10_000, seededRandom(5));
    expect(Math.abs((pa as number) - pairwiseWin(arm('a', 3, 40), arm('b', 3, 40, 1.2)))).toBeLessThan(0.01);
  });

  it('a single arm always wins', () => {
    expect(thompsonProbabilities([arm('a', 1, 1)], 100, seededRandom(1))).toEqual([1]);
  });

  it.each([
    ['no arms', []],
    ['α = 0', [arm('a', 0, 1)]],
    ['β infinite', [arm('a', 1, Number.POSITIVE_INFINITY)]],
    ['scale 0', [arm('a', 1, 1, 0)]],
  ])('refuses %s', (_name, arms) => {
    expect(() => thompsonProbabilities(arms, 10, seededRandom(1))).toThrow(RangeError);
  });
});

describe('armProbabilities', () => {
  const posterior = fc.record({
    alpha: fc.double({ min: 0.5, max: 500, noNaN: true }),
    beta: fc.double({ min: 0.5, max: 5000, noNaN: true }),
    scale: fc.double({ min: 0.1, max: 10, noNaN: true }),
  });
  const arms = fc.array(posterior, { minLength: 1, maxLength: 6 }).map((list) => list.map((p, i) => ({ id: `arm-${i}`, ...p })));
  const settings = fc.record({ exploration: fc.double({ min: 0, max: 1, noNaN: true }), floor: fc.double({ min: 0, max: 1, noNaN: true }) });

  it('sum to 1, and every eligible arm keeps at least its floor share (at most 1/K)', () => {
    fc.assert(
      fc.property(arms, settings, (list, s) => {
        const { probabilities } = armProbabilities(list, { ...s, draws: 500 });
        expect(Math.abs(probabilities.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-9);
        const floor = Math.min(s.floor, 1 / list.length);
        for (const p of probabilities) expect(p).toBeGreaterThanOrEqual(floor - 1e-12);
      }),
      { numRuns: 200 },
    );
  });

  it('the same statistics give the same probabilities (no instance-local randomness)', () => {
    fc.assert(
      fc.property(arms, settings, (list, s) => {
        expect(armProbabilities(list, { ...s, draws: 300 })).toEqual(armProbabilities(list.map((a) => ({ ...a })), { ...s, draws: 300 }));
      }),
      { numRuns: 50 },
    );
  });

  it('without exploration the best posterior mean (× scale) gets everything but the other arms’ floors', () => {
    const { probabilities } = armProbabilities([arm('weak', 10, 90), arm('strong', 40, 60), arm('scaled', 10, 90, 5)], { exploration: 0, floor: 0.05 });
    // scale × mean: 0.1, 0.4, 0.5 → the scaled arm.
    expect(probabilities[0]).toBeCloseTo(0.05, 12);
    expect(probabilities[1]).toBeCloseTo(0.05, 12);
    expect(probabilities[2]).toBeCloseTo(0.9, 12);
  });

  it('scenario 11: outcomes that favour one variant send it most traffic; the other keeps its floor', () => {
    // 334 clicks on android out of 1,000 views; iphone 40 out of 1,000; prior Beta(1, 1).
    const { probabilities } = armProbabilities([arm('iphone', 41, 961), arm('android', 335, 667)], { exploration: 0.1, floor: 0.05 });
    expect(probabilities[1]).toBeGreaterThan(0.85);
    expect(probabilities[0]).toBeGreaterThanOrEqual(0.05);
    expect(probabilities[0]).toBeLessThan(0.06);
  });

  it('a floor above 1/K is lowered to 1/K: a uniform policy', () => {
    expect(armProbabilities([arm('a', 1, 9), arm('b', 9, 1)], { exploration: 0.3, floor: 0.8 }).probabilities).toEqual([0.5, 0.5]);
  });
});

describe('chooseArm', () => {
  it('serves each arm with its probability (within 4 standard errors over 40,000 draws)', () => {
    const probabilities = armProbabilities([arm('a', 5, 50), arm('b', 8, 40), arm('c', 2, 60)], { exploration: 0.5, floor: 0.1 });
    const random = seededRandom(99);
    const counts = new Map<string, number>();
    const n = 40_000;
    for (let i = 0; i < n; i++) {
      const { id, probability } = chooseArm(probabilities, random());
      expect(probability).toBe(probabilities.probabilities[probabilities.ids.indexOf(id)]);
      counts.set(id, (counts.get(id) ?? 0) + 1);
    }
    probabilities.ids.forEach((id, i) => {
      const p = probabilities.probabilities[i] as number;
      expect(Math.abs((counts.get(id) ?? 0) / n - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
    });
  });

  it('a draw at the top of [0, 1) against rounding still serves an arm', () => {
    expect(chooseArm({ ids: ['a', 'b'], probabilities: [0.3, 0.6999999999], greedy: 1 }, 0.99999999999).id).toBe('b');
  });

  it('greedy last: the greedy arm holds the top of [0, 1), the others keep their order and their chances', () => {
    const probabilities = { ids: ['a', 'b', 'c'], probabilities: [0.2, 0.5, 0.3], greedy: 1 };
    const at = (u: number) => chooseArm(probabilities, u, true);
    expect([0, 0.19, 0.2, 0.49, 0.5, 0.99999].map((u) => at(u).id)).toEqual(['a', 'a', 'c', 'c', 'b', 'b']);
    expect(at(0.7)).toEqual({ id: 'b', probability: 0.5, index: 1 });
    expect(at(0.99999999999).id).toBe('b');
  });
});
