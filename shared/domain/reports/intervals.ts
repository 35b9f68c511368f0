/**
 * The interval estimates and tests the reports route prints: a rate with its
 * 95% Wilson score interval, the difference of two rates (an arm's uplift
 * against control) with Newcombe's hybrid score interval, and a
 * sample-ratio-mismatch check (Pearson's χ² goodness of fit against the
 * configured split).
 */
import chiSquareCdf from '@stdlib/stats-base-dists-chisquare-cdf';

/** z for a two-sided 95% interval: Φ⁻¹(0.975). */
export const Z_95 = 1.959963984540054;

/** A proportion with its interval; every field in [0, 1], `undefined` without trials. */
export interface RateEstimate {
  readonly successes: number;
  readonly trials: number;
  readonly rate: number | undefined;
  readonly low: number | undefined;
  readonly high: number | undefined;
}

/** A difference of two proportions (a − b) with its interval, in [−1, 1]. */
export interface DifferenceEstimate {
  readonly difference: number | undefined;
  readonly low: number | undefined;
  readonly high: number | undefined;
}

/** Sample-ratio-mismatch check: Pearson's χ², its degrees of freedom and its p-value. */
export interface SampleRatioCheck {
  readonly chiSquare: number;
  readonly degreesOfFreedom: number;
  /** P(χ²_df ≥ chiSquare): a small value (say < 0.001) means the split is not the configured one. */
  readonly pValue: number;
}

const checkCounts = (successes: number, trials: number): void => {
  if (!Number.isInteger(successes) || !Number.isInteger(trials) || successes < 0 || trials < 0 || successes > trials) {
    throw new RangeError(`counts must be integers with 0 ≤ successes ≤ trials (got ${successes}/${trials})`);
  }
};

const clamp01 = (value: number): number => Math.min(1, Math.max(0, value));

/**
 * The Wilson score interval of `successes` in `trials`.
 * Source: E. B. Wilson (1927), "Probable inference, the law of succession, and
 * statistical inference", JASA 22:209–212; as method 3 of R. G. Newcombe (1998),
 * "Two-sided confidence intervals for the single proportion", Stat Med 17:857–872.
 *   centre = (p + z²/2n) / (1 + z²/n),  half = z / (1 + z²/n) · √(p(1−p)/n + z²/4n²)
 * @throws RangeError when the counts are not integers with 0 ≤ successes ≤ trials.
 */
export function wilsonInterval(successes: number, trials: number, z: number = Z_95): RateEstimate {
  checkCounts(successes, trials);
  if (trials === 0) return { successes, trials, rate: undefined, low: undefined, high: undefined };
  const p = successes / trials;
  const z2n = (z * z) / trials;
  const denominator = 1 + z2n;
  const centre = (p + z2n / 2) / denominator;
  const half = (z / denominator) * Math.sqrt((p * (1 - p)) / trials + (z * z) / (4 * trials * trials));
  return {
    successes,
    trials,
    rate: p,
    // At 0 or n successes the bound is exactly 0 or 1; the formula gives it up to rounding.
    low: successes === 0 ? 0 : clamp01(centre - half),
    high: successes === trials ? 1 : clamp01(centre + half),
  };
}

/**
 * The difference of two independent proportions a − b with Newcombe's hybrid
 * score interval (method 10 of R. G. Newcombe (1998), "Interval estimation for
 * the difference between independent proportions: comparison of eleven
 * methods", Stat Med 17:873–890), built from each proportion's Wilson interval:
 *   low  = d − √((p_a − l_a)² + (u_b − p_b)²),  high = d + √((u_a − p_a)² + (p_b − l_b)²)
 * `undefined` fields when either side has no trials.
 */
export function newcombeDifference(a: RateEstimate, b: RateEstimate): DifferenceEstimate {
  if (a.rate === undefined || b.rate === undefined) return { difference: undefined, low: undefined, high: undefined };
  const [pa, la, ua] = [a.rate, a.low as number, a.high as number];
  const [pb, lb, ub] = [b.rate, b.low as number, b.high as number];
  const difference = pa - pb;
  return {
    difference,
    low: Math.max(-1, difference - Math.hypot(pa - la, ub - pb)),
    high: Math.min(1, difference + Math.hypot(ua - pa, pb - lb)),
  };
}

/**
 * Pearson's χ² goodness-of-fit test of `observed` counts against the
 * `expectedShares` of the configured split (shares are normalised to sum 1;
 * cells with a zero share must have zero counts, and do not count as a degree
 * of freedom). p-value from the χ² distribution's CDF (stdlib).
 * @throws RangeError on lengths that differ, negative or non-integer counts,
 *   negative shares, fewer than two cells with a positive share, or a count in
 *   a cell whose share is zero.
 */
export function sampleRatioMismatch(observed: readonly number[], expectedShares: readonly number[]): SampleRatioCheck {
  if (observed.length !== expectedShares.length) throw new RangeError('observed counts and expected shares differ in length');
  const shareTotal = expectedShares.reduce((sum, share) => {
    if (!(share >= 0) || !Number.isFinite(share)) throw new RangeError(`a share must be a finite number ≥ 0 (got ${share})`);
    return sum + share;
  }, 0);
  const total = observed.reduce((sum, count) => {
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`a count must be an integer ≥ 0 (got ${count})`);
    return sum + count;
  }, 0);
  let cells = 0;
  let chiSquare = 0;
  for (let i = 0; i < observed.length; i++) {
    const share = (expectedShares[i] as number) / shareTotal;
    const count = observed[i] as number;
    if (share === 0) {
      if (count > 0) throw new RangeError(`cell ${i} has ${count} counts but an expected share of 0`);
      continue;
    }
    cells++;
    const expected = total * share;
    chiSquare += ((count - expected) * (count - expected)) / expected;
  }
  if (cells < 2) throw new RangeError('a split needs at least two cells with a positive share');
  const degreesOfFreedom = cells - 1;
  if (total === 0) return { chiSquare: 0, degreesOfFreedom, pValue: 1 };
  return { chiSquare, degreesOfFreedom, pValue: 1 - chiSquareCdf(chiSquare, degreesOfFreedom) };
}
