/**
 * Off-policy estimators (shared/domain/evaluation/estimators.ts): hand-worked
 * values on a small log, the support check, and their statistical promise on
 * a synthetic population with known reward rates — decisions logged by a
 * uniform-random policy, a different deterministic candidate evaluated, the
 * truth inside the 95% intervals, in at least 90 of 100 seeded repetitions.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom, type Random } from '#domain/decide/random.ts';
import fc from 'fast-check';
import { MIN_INTERVAL_DECISIONS, UnsupportedCandidate, estimateOffPolicy, type LoggedDecision, type RateInterval } from '#domain/evaluation/estimators.ts';

describe('on a small log, by hand', () => {
  // Two actions logged at 0.5 each; the candidate plays A with 0.8, B with 0.2.
  const candidate = { A: 0.8, B: 0.2 };
  const log: LoggedDecision[] = [
    { served: 'A', loggingProbability: 0.5, reward: 1, candidateProbabilities: candidate, loggedSupport: ['A', 'B'], directEstimates: { A: 0.5, B: 0.1 } },
    { served: 'B', loggingProbability: 0.5, reward: 0, candidateProbabilities: candidate, loggedSupport: ['A', 'B'], directEstimates: { A: 0.5, B: 0.1 } },
    { served: 'A', loggingProbability: 0.5, reward: 0, candidateProbabilities: candidate, loggedSupport: ['A', 'B'], directEstimates: { A: 0.5, B: 0.1 } },
  ];
  // w = 1.6, 0.4, 1.6; w·r = 1.6, 0, 0; IPS = 1.6/3; SNIPS = 1.6/3.6.
  // Direct part Σ π_e q̂ = 0.8·0.5 + 0.2·0.1 = 0.42; DR terms 0.42 + 1.6·0.5, 0.42 + 0.4·(−0.1), 0.42 + 1.6·(−0.5) = 1.22, 0.38, −0.38.
  const estimate = estimateOffPolicy(log);

  it('IPS, SNIPS and DR', () => {
    expect(estimate.ips.estimate).toBeCloseTo(1.6 / 3, 12);
    expect(estimate.snips.estimate).toBeCloseTo(1.6 / 3.6, 12);
    expect(estimate.dr.estimate).toBeCloseTo((1.22 + 0.38 - 0.38) / 3, 12);
  });

  it('the IPS interval is the mean ± z·s/√n of its terms (the log ten times over: 30 decisions)', () => {
    const tenfold = estimateOffPolicy(Array.from({ length: 10 }, () => log).flat());
    const mean = 1.6 / 3;
    const s2 = (10 * ((1.6 - mean) ** 2 + 2 * mean ** 2)) / 29;
    expect(tenfold.ips.estimate).toBeCloseTo(mean, 12);
    expect((tenfold.ips.high ?? Number.NaN) - tenfold.ips.estimate).toBeCloseTo(1.959963984540054 * Math.sqrt(s2 / 30), 12);
  });

  it('on fewer than MIN_INTERVAL_DECISIONS evaluated decisions, no interval, and the reason', () => {
    expect(MIN_INTERVAL_DECISIONS).toBe(30);
    for (const name of ['ips', 'snips', 'dr'] as const) {
      expect(estimate[name]).toEqual({ estimate: estimate[name].estimate, low: null, high: null, noInterval: expect.stringMatching(/^no interval: 3 evaluated decision\(s\), fewer than the 30 /) as unknown });
    }
    const one = estimateOffPolicy(log.slice(0, 1));
    expect([one.ips.low, one.snips.low, one.dr.low, one.ips.high]).toEqual([null, null, null, null]);
  });

  it('effective sample size, shares and the logged rate', () => {
    expect(estimate.effectiveSampleSize).toBeCloseTo(3.6 ** 2 / (1.6 ** 2 * 2 + 0.4 ** 2), 12);
    expect(estimate).toMatchObject({ decisions: 3, evaluated: 3, evaluatedShare: 1 });
    expect(estimate.loggedRate).toBeCloseTo(1 / 3, 12);
  });

  it('equal weights give an effective sample size of n', () => {
    const uniform = estimateOffPolicy(log.map((d) => ({ ...d, candidateProbabilities: { A: 0.5, B: 0.5 } })));
    expect(uniform.effectiveSampleSize).toBeCloseTo(3, 12);
  });
});

describe('no interval where it would overstate certainty', () => {
  const decision = (served: 'A' | 'B', reward: number, loggingProbability = 0.5): LoggedDecision => ({
    served,
    loggingProbability,
    reward,
    candidateProbabilities: { A: 1 },
    loggedSupport: ['A', 'B'],
    directEstimates: { A: 0.5, B: 0.5 },
  });

  it('every decision alike (40 served A at 0.5, all clicked): SNIPS 1 and IPS 2 with no interval, not [1, 1] and [2, 2]', () => {
    const estimate = estimateOffPolicy(Array.from({ length: 40 }, () => decision('A', 1)));
    expect(estimate.snips).toEqual({ estimate: 1, low: null, high: null, noInterval: expect.stringMatching(/^no interval: the estimated spread is 0/) as unknown });
    expect(estimate.ips).toMatchObject({ estimate: 2, low: null, high: null });
    expect(estimate.dr).toMatchObject({ estimate: 1.5, low: null, high: null });
  });

  it('SNIPS whose every served-as-the-candidate decision was clicked has no interval though IPS, spread by the misses, has one', () => {
    const log = [...Array.from({ length: 20 }, () => decision('A', 1, 0.3)), ...Array.from({ length: 20 }, () => decision('B', 0, 0.7))];
    const estimate = estimateOffPolicy(log);
    expect(estimate.snips).toMatchObject({ low: null, high: null });
    expect(estimate.snips.estimate).toBeCloseTo(1, 12);
    expect(estimate.ips.low).toBeLessThan(estimate.ips.estimate);
  });

  it('property: an interval is given exactly when there are at least 30 evaluated decisions and the terms differ; it then has width > 0 and holds the estimate', () => {
    const arbitraryDecision = fc.record({
      served: fc.constantFrom('A' as const, 'B' as const),
      reward: fc.constantFrom(0, 1),
      loggingProbability: fc.constantFrom(0.25, 0.5, 0.75, 1 / 3),
    });
    fc.assert(
      fc.property(fc.array(arbitraryDecision, { minLength: 1, maxLength: 80 }), (draws) => {
        const log = draws.map((d) => decision(d.served, d.reward, d.loggingProbability));
        const estimate = estimateOffPolicy(log);
        const ipsTerms = new Set(log.map((d) => ((d.served === 'A' ? 1 : 0) / d.loggingProbability) * d.reward));
        const check = (r: RateInterval, termsDiffer: boolean) => {
          const given = log.length >= MIN_INTERVAL_DECISIONS && termsDiffer;
          expect({
            given: r.low !== null,
            around: r.low === null || (r.low < r.estimate && r.high > r.estimate),
            reason: r.low !== null || /^no interval: /.test(r.noInterval),
          }).toEqual({ given, around: true, reason: true });
        };
        check(estimate.ips, ipsTerms.size > 1);
        // SNIPS's terms w(r − SNIPS) differ from 0 only where the candidate's choice was served: its rewards there differ.
        const servedA = log.filter((d) => d.served === 'A');
        check(estimate.snips, new Set(servedA.map((d) => d.reward)).size > 1);
      }),
    );
  });
});

describe('support', () => {
  const decision = (candidate: Record<string, number>): LoggedDecision => ({ served: 'A', loggingProbability: 1, reward: 1, candidateProbabilities: candidate, loggedSupport: ['A'] });

  it('refuses, with the reason, a candidate whose choices the logging policy never served', () => {
    expect(() => estimateOffPolicy([decision({ B: 1 }), decision({ B: 1 })])).toThrow(UnsupportedCandidate);
    expect(() => estimateOffPolicy([decision({ B: 1 })])).toThrow(/never served what the candidate would choose/);
    expect(() => estimateOffPolicy([])).toThrow(UnsupportedCandidate);
  });

  it('leaves out the decisions it cannot evaluate and says how many it could', () => {
    const estimate = estimateOffPolicy([decision({ A: 1 }), decision({ B: 1 }), decision({ A: 0.5, B: 0.5 }), decision({ A: 1 })]);
    expect(estimate).toMatchObject({ decisions: 4, evaluated: 2, evaluatedShare: 0.5 });
    expect(estimate.ips.estimate).toBe(1);
  });

  it.each([
    ['a logging probability of 0', { loggingProbability: 0 }],
    ['a logging probability above 1', { loggingProbability: 1.5 }],
    ['a reward that is not finite', { reward: Number.NaN }],
    ['a candidate probability above 1', { candidateProbabilities: { A: 2 } }],
  ])('refuses %s', (_name, change) => {
    expect(() => estimateOffPolicy([{ ...decision({ A: 1 }), ...change }])).toThrow(RangeError);
  });
});

describe('on a synthetic population with known reward rates', () => {
  const ACTIONS = ['a0', 'a1', 'a2', 'a3'];
  const PERSONAS = [
    { id: 'student', share: 0.5, rates: [0.02, 0.1, 0.05, 0.2] },
    { id: 'family', share: 0.3, rates: [0.15, 0.03, 0.08, 0.01] },
    { id: 'premium', share: 0.2, rates: [0.05, 0.3, 0.12, 0.04] },
  ];
  // The candidate: a deterministic catalog that is neither the logger nor the oracle.
  const CANDIDATE: Record<string, string> = { student: 'a1', family: 'a0', premium: 'a2' };
  const TRUE_RATE = PERSONAS.reduce((sum, p) => sum + p.share * (p.rates[ACTIONS.indexOf(CANDIDATE[p.id] as string)] as number), 0);

  /** Decisions of a uniform-random logging policy, with a reward model off by +0.05 (DR must stay unbiased). */
  function logged(n: number, random: Random): LoggedDecision[] {
    const out: LoggedDecision[] = [];
    for (let i = 0; i < n; i++) {
      let u = random();
      const persona = PERSONAS.find((p) => (u -= p.share) < 0) ?? (PERSONAS[PERSONAS.length - 1] as (typeof PERSONAS)[number]);
      const k = Math.floor(random() * ACTIONS.length);
      const reward = random() < (persona.rates[k] as number) ? 1 : 0;
      out.push({
        served: ACTIONS[k] as string,
        loggingProbability: 1 / ACTIONS.length,
        reward,
        candidateProbabilities: { [CANDIDATE[persona.id] as string]: 1 },
        loggedSupport: ACTIONS,
        directEstimates: Object.fromEntries(ACTIONS.map((a, j) => [a, (persona.rates[j] as number) + 0.05])),
      });
    }
    return out;
  }

  it('each estimate’s 95% interval holds the candidate’s true rate, far from the logging policy’s', () => {
    const estimate = estimateOffPolicy(logged(40_000, seededRandom(7)));
    for (const name of ['ips', 'snips', 'dr'] as const) {
      expect({ name, holdsTruth: (estimate[name].low ?? Infinity) <= TRUE_RATE && TRUE_RATE <= (estimate[name].high ?? -Infinity) }).toEqual({ name, holdsTruth: true });
      expect({ name, narrow: (estimate[name].high ?? Infinity) - (estimate[name].low ?? -Infinity) < 0.03 }).toEqual({ name, narrow: true });
    }
    const loggingRate = PERSONAS.reduce((sum, p) => sum + (p.share * p.rates.reduce((a, b) => a + b, 0)) / ACTIONS.length, 0);
    expect(Math.abs(estimate.loggedRate - loggingRate)).toBeLessThan(0.01);
    expect(Math.abs(TRUE_RATE - loggingRate)).toBeGreaterThan(0.02);
    expect(estimate.effectiveSampleSize).toBeCloseTo(40_000 / 4, -3);
  });

  it('the intervals hold the truth in at least 90 of 100 seeded repetitions', () => {
    const covered = { ips: 0, snips: 0, dr: 0 };
    for (let seed = 1; seed <= 100; seed++) {
      const estimate = estimateOffPolicy(logged(3_000, seededRandom(1_000 + seed)));
      for (const name of ['ips', 'snips', 'dr'] as const) if ((estimate[name].low ?? Infinity) <= TRUE_RATE && TRUE_RATE <= (estimate[name].high ?? -Infinity)) covered[name]++;
    }
    expect(covered.ips).toBeGreaterThanOrEqual(90);
    expect(covered.snips).toBeGreaterThanOrEqual(90);
    expect(covered.dr).toBeGreaterThanOrEqual(90);
    // 900,000 simulated decisions: a generous deadline on a loaded machine (not a timing assertion).
  }, 120_000);
});
