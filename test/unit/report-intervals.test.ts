/**
 * The reports' interval estimates against values computed by hand, outside
 * this code: each expected value below was computed at 30 significant digits
 * with mpmath (z = √2·erfinv(0.95); Wilson's and Newcombe's closed forms; the
 * χ² upper tail as erfc(√(x/2)) for 1 degree of freedom, exp(−x/2) for 2 and
 * the regularised upper incomplete gamma Q(df/2, x/2) otherwise), and checked
 * to 1e-9. The published 4-decimal values of Newcombe (1998) are checked too.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newcombeDifference, sampleRatioMismatch, wilsonInterval } from '#domain/reports/intervals.ts';

const TOLERANCE = 1e-9;

describe('wilsonInterval', () => {
  it.each([
    [81, 263, 0.2552885198782742, 0.36620957698280004],
    [0, 10, 0, 0.27753279986288926],
    [10, 10, 0.7224672001371107, 1],
    [1, 29, 0.00611321429276266, 0.17175521879320288],
    [56, 70, 0.6918335550374693, 0.8769526075163705],
    [48, 80, 0.49045465005160394, 0.7003817240412906],
  ])('%i of %i: [%f, %f]', (successes, trials, low, high) => {
    const estimate = wilsonInterval(successes, trials);
    expect(estimate.rate).toBe(successes / trials);
    expect(estimate.low).toBeCloseTo(low, 9);
    expect(Math.abs((estimate.low as number) - low)).toBeLessThan(TOLERANCE);
    expect(Math.abs((estimate.high as number) - high)).toBeLessThan(TOLERANCE);
  });

  it("matches Newcombe (1998)'s published single-proportion example, 81/263 → 0.2553 to 0.3662", () => {
    const { low, high } = wilsonInterval(81, 263);
    expect((low as number).toFixed(4)).toBe('0.2553');
    expect((high as number).toFixed(4)).toBe('0.3662');
  });

  it('has no rate and no interval without trials', () => {
    expect(wilsonInterval(0, 0)).toEqual({ successes: 0, trials: 0, rate: undefined, low: undefined, high: undefined });
  });

  it.each([
    [-1, 10],
    [11, 10],
    [1.5, 10],
    [1, Number.NaN],
  ])('refuses %s of %s', (successes, trials) => {
    expect(() => wilsonInterval(successes, trials)).toThrow(RangeError);
  });

  it('always holds the rate inside [low, high] ⊆ [0, 1]', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000_000 }), fc.double({ min: 0, max: 1, noNaN: true }), (trials, share) => {
        const successes = Math.floor(share * trials);
        const { rate, low, high } = wilsonInterval(successes, trials);
        expect(low as number).toBeGreaterThanOrEqual(0);
        expect(high as number).toBeLessThanOrEqual(1);
        expect(low as number).toBeLessThanOrEqual(rate as number);
        expect(high as number).toBeGreaterThanOrEqual(rate as number);
      }),
    );
  });
});

describe('newcombeDifference (hybrid score, method 10)', () => {
  it.each([
    [56, 70, 48, 80, 0.05243147240236488, 0.33387265403690597],
    [9, 10, 3, 10, 0.17052272393450288, 0.809017973535488],
    [6, 7, 2, 7, 0.0582279274823122, 0.8062496375242277],
    [5, 56, 0, 29, -0.0381371479035369, 0.19256001385511162],
    [0, 10, 0, 20, -0.16112515805281938, 0.27753279986288926],
    [10, 10, 0, 20, 0.6790860371419146, 1],
  ])('%i/%i − %i/%i: [%f, %f]', (xa, na, xb, nb, low, high) => {
    const estimate = newcombeDifference(wilsonInterval(xa, na), wilsonInterval(xb, nb));
    expect(estimate.difference).toBeCloseTo(xa / na - xb / nb, 15);
    expect(Math.abs((estimate.low as number) - low)).toBeLessThan(TOLERANCE);
    expect(Math.abs((estimate.high as number) - high)).toBeLessThan(TOLERANCE);
  });

  it("matches Newcombe (1998)'s published examples for method 10 to 4 decimals", () => {
    const interval = (xa: number, na: number, xb: number, nb: number) => {
      const { low, high } = newcombeDifference(wilsonInterval(xa, na), wilsonInterval(xb, nb));
      return [(low as number).toFixed(4), (high as number).toFixed(4)];
    };
    expect(interval(56, 70, 48, 80)).toEqual(['0.0524', '0.3339']);
    expect(interval(9, 10, 3, 10)).toEqual(['0.1705', '0.8090']);
    expect(interval(5, 56, 0, 29)).toEqual(['-0.0381', '0.1926']);
  });

  it('has no difference when either side has no trials', () => {
    expect(newcombeDifference(wilsonInterval(3, 10), wilsonInterval(0, 0))).toEqual({ difference: undefined, low: undefined, high: undefined });
  });

  it('is antisymmetric: swapping the sides negates and swaps the bounds', () => {
    const counts = fc.integer({ min: 1, max: 1_000_000 }).chain((n) => fc.tuple(fc.integer({ min: 0, max: n }), fc.constant(n)));
    fc.assert(
      fc.property(counts, counts, ([xa, na], [xb, nb]) => {
        const ab = newcombeDifference(wilsonInterval(xa, na), wilsonInterval(xb, nb));
        const ba = newcombeDifference(wilsonInterval(xb, nb), wilsonInterval(xa, na));
        expect(Math.abs((ab.low as number) + (ba.high as number))).toBeLessThan(1e-12);
        expect(Math.abs((ab.high as number) + (ba.low as number))).toBeLessThan(1e-12);
        expect(ab.low as number).toBeLessThanOrEqual(ab.difference as number);
        expect(ab.high as number).toBeGreaterThanOrEqual(ab.difference as number);
      }),
    );
  });
});

describe('sampleRatioMismatch (Pearson χ² against the configured split)', () => {
  it.each([
    ['50/50 split, 50,500 vs 49,500', [50_500, 49_500], [1, 1], 10, 1, 0.0015654022580025497],
    ['three equal arms', [1000, 1100, 900], [1, 1, 1], 20, 2, 4.5399929762484854e-05],
    ['10% holdout, two arms of 45%', [1050, 4600, 4350], [0.1, 0.45, 0.45], 9.722222222222221, 2, 0.0077418770248466285],
    ['four equal arms, within chance', [260, 240, 250, 250], [0.25, 0.25, 0.25, 0.25], 0.8, 3, 0.8494670333918255],
  ])('%s', (_name, observed, shares, chiSquare, degreesOfFreedom, pValue) => {
    const check = sampleRatioMismatch(observed, shares);
    expect(Math.abs(check.chiSquare - chiSquare)).toBeLessThan(TOLERANCE);
    expect(check.degreesOfFreedom).toBe(degreesOfFreedom);
    expect(Math.abs(check.pValue - pValue)).toBeLessThan(TOLERANCE);
  });

  it('a cell with no share and no counts is no degree of freedom', () => {
    expect(sampleRatioMismatch([500, 500, 0], [1, 1, 0])).toEqual({ chiSquare: 0, degreesOfFreedom: 1, pValue: 1 });
  });

  it('no traffic is no evidence of a mismatch', () => {
    expect(sampleRatioMismatch([0, 0], [0.5, 0.5])).toEqual({ chiSquare: 0, degreesOfFreedom: 1, pValue: 1 });
  });

  it.each([
    ['lengths differ', [1, 2], [1]],
    ['a negative count', [-1, 2], [1, 1]],
    ['a fractional count', [1.5, 2], [1, 1]],
    ['a negative share', [1, 2], [-1, 2]],
    ['one cell', [10], [1]],
    ['counts where the split gives none', [10, 10, 1], [1, 1, 0]],
  ])('refuses %s', (_name, observed, shares) => {
    expect(() => sampleRatioMismatch(observed, shares)).toThrow(RangeError);
  });

  it('p-values lie in [0, 1] and the exact split has p = 1', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1000 }), { minLength: 2, maxLength: 20 }), fc.integer({ min: 1, max: 1000 }), (weights, scale) => {
        const exact = sampleRatioMismatch(weights.map((w) => w * scale), weights);
        expect(exact.chiSquare).toBeLessThan(1e-9);
        expect(exact.pValue).toBeGreaterThan(1 - 1e-9);
        const skewed = sampleRatioMismatch(weights.map((w, i) => w * scale + (i === 0 ? scale : 0)), weights);
        expect(skewed.pValue).toBeGreaterThanOrEqual(0);
        expect(skewed.pValue).toBeLessThanOrEqual(1);
      }),
    );
  });
});
