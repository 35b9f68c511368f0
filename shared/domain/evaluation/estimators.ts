/**
 * Off-policy estimators of a candidate policy's reward rate from decisions
 * logged by another policy: inverse propensity scoring (IPS), self-normalised
 * IPS (SNIPS) and doubly robust (DR), each with a 95% interval, plus the
 * effective sample size and the support check.
 *
 * Definitions as in Open Bandit Pipeline (Saito et al. 2021, obp.ope):
 *   w_i  = π_e(a_i | x_i) / π_b(a_i | x_i)                  (importance weight)
 *   IPS  = (1/n) Σ w_i r_i                                   (Horvitz & Thompson 1952)
 *   SNIPS = Σ w_i r_i / Σ w_i                                (Swaminathan & Joachims 2015)
 *   DR   = (1/n) Σ [ Σ_a π_e(a|x_i) q̂(x_i,a) + w_i (r_i − q̂(x_i,a_i)) ]   (Dudík et al. 2011)
 * Intervals: IPS and DR are means of i.i.d. terms, so mean ± z·s/√n; SNIPS by
 * the delta method, SNIPS ± z·√(Σ w_i²(r_i − SNIPS)²) / Σ w_i — none given on
 * fewer than MIN_INTERVAL_DECISIONS evaluated decisions or a zero spread
 * (`RateInterval`, `intervalWithheld`).
 * Effective sample size (Kish): (Σ w_i)² / Σ w_i².
 * Every estimate is a function of a few sums over the decisions
 * (`OffPolicySums`), so a log split into partitions is summed per partition
 * (a map step) and estimated once from the merged sums (a reduce step).
 */
import { Z_95 } from '../reports/intervals.ts';

/** One logged decision, replayed through the candidate policy. */
export interface LoggedDecision {
  /** The action the logging policy served. */
  readonly served: string;
  /** The probability with which the logging policy chose `served`, (0, 1]. */
  readonly loggingProbability: number;
  /** The reward observed (0/1 for a click or a conversion; any finite number is accepted). */
  readonly reward: number;
  /** The candidate policy's probability of each action on this decision (absent actions: 0); sums to at most 1. */
  readonly candidateProbabilities: Readonly<Record<string, number>>;
  /**
   * Actions the logging policy could have served here (probability > 0). The
   * candidate's mass on any other action cannot be evaluated from this log.
   */
  readonly loggedSupport: readonly string[];
  /** The direct method's reward model q̂(x, a) for this decision (DR); absent actions: `directDefault`. */
  readonly directEstimates?: Readonly<Record<string, number>>;
}

/**
 * An estimate of the candidate's reward rate with its 95% interval, or with
 * none (`low` and `high` null) and `noInterval`, the reason, when the
 * interval would not mean what it says (`intervalWithheld`).
 */
export type RateInterval =
  | { readonly estimate: number; readonly low: number; readonly high: number }
  | { readonly estimate: number; readonly low: null; readonly high: null; readonly noInterval: string };

/**
 * The fewest evaluated decisions an interval is given on: 30.
 *
 * Every interval here is a normal approximation (mean ± z·s/√n, or the delta
 * method for SNIPS), valid as n grows; 30 is the customary smallest sample for
 * it (the textbook rule of thumb for the central limit theorem). Below
 * it, or when the estimated spread is 0 (a single term, or every term alike:
 * all clicked, none clicked), the interval collapses or nearly so while the
 * uncertainty does not: the Wald interval's known failure, whose coverage
 * falls far below its nominal level for small n and is zero-width at a rate
 * of 0 or 1 (L. D. Brown, T. T. Cai & A. DasGupta (2001), "Interval
 * Estimation for a Binomial Proportion", Statistical Science 16:101–133).
 * A score (Wilson) or exact (Clopper–Pearson) interval would repair that for
 * a plain rate, but these estimates are weighted means whose terms are not
 * 0/1 (an IPS term is w·r, w up to 1/π_b) and which may leave [0, 1], so no
 * such bound applies to them: the interval is withheld, with the reason,
 * rather than replaced.
 */
export const MIN_INTERVAL_DECISIONS = 30;

/** A spread below this share of its scale is rounding of a zero spread (sums of squares minus a square). */
const ZERO_SPREAD = 1e-9;

/**
 * Why an estimate on `evaluated` decisions with the estimated spread `spread`
 * (a variance or the SNIPS delta-method sum, ≥ 0) gets no interval, or
 * undefined when it gets one. A spread at most 1e-9 of `scale` (the same
 * sum without the centring, ≥ 0) counts as 0: it is the rounding of one
 * computed from sums. See MIN_INTERVAL_DECISIONS.
 */
export function intervalWithheld(evaluated: number, spread: number, scale: number): string | undefined {
  if (evaluated < MIN_INTERVAL_DECISIONS) {
    return `no interval: ${evaluated} evaluated decision(s), fewer than the ${MIN_INTERVAL_DECISIONS} a normal-approximation interval needs`;
  }
  if (!(spread > ZERO_SPREAD * scale)) return 'no interval: the estimated spread is 0 (every decision weighs in alike), which does not make the estimate certain';
  return undefined;
}

/** `estimate` ± `half`, or no interval when `intervalWithheld` says so. */
const withInterval = (estimate: number, half: number, evaluated: number, spread: number, scale: number): RateInterval => {
  const noInterval = intervalWithheld(evaluated, spread, scale);
  return noInterval === undefined ? { estimate, low: estimate - half, high: estimate + half } : { estimate, low: null, high: null, noInterval };
};

export interface OffPolicyEstimate {
  /** Logged decisions given. */
  readonly decisions: number;
  /** Decisions whose candidate choice lies in the logging policy's support (the ones estimated from). */
  readonly evaluated: number;
  /** evaluated / decisions. */
  readonly evaluatedShare: number;
  /** Kish's effective sample size of the importance weights. */
  readonly effectiveSampleSize: number;
  /** The logging policy's observed reward rate on the evaluated decisions. */
  readonly loggedRate: number;
  readonly ips: RateInterval;
  readonly snips: RateInterval;
  readonly dr: RateInterval;
}

/** Why an estimate cannot be made. */
export class UnsupportedCandidate extends Error {
  override readonly name = 'UnsupportedCandidate';
}

const SUPPORT_TOLERANCE = 1e-9;

/**
 * What the estimates are computed from: sums over the logged decisions,
 * added one decision at a time (`addDecision`) and merged across partitions
 * (`mergeSums`) in any order, so a partition's sums are a map step's result
 * and the estimates a reduce of them (`estimateFromSums`). Plain numbers:
 * JSON carries them between a map and a reduce.
 *
 * With w the importance weight, r the reward, t = w·r the IPS term and d the
 * DR term of an evaluated decision: n = decisions given, m = evaluated, and
 * the sums Σw, Σw², Σr, Σt, Σt², Σw²r, Σd, Σd² over the evaluated ones
 * (Σw²r² = Σt²).
 */
export interface OffPolicySums {
  readonly decisions: number;
  readonly evaluated: number;
  readonly weight: number;
  readonly weightSquared: number;
  readonly reward: number;
  readonly ips: number;
  readonly ipsSquared: number;
  readonly weightSquaredReward: number;
  readonly dr: number;
  readonly drSquared: number;
}

/** Sums of no decision. */
export const EMPTY_SUMS: OffPolicySums = Object.freeze({
  decisions: 0,
  evaluated: 0,
  weight: 0,
  weightSquared: 0,
  reward: 0,
  ips: 0,
  ipsSquared: 0,
  weightSquaredReward: 0,
  dr: 0,
  drSquared: 0,
});

/** Two partitions' sums together (commutative, associative). */
export function mergeSums(a: OffPolicySums, b: OffPolicySums): OffPolicySums {
  return {
    decisions: a.decisions + b.decisions,
    evaluated: a.evaluated + b.evaluated,
    weight: a.weight + b.weight,
    weightSquared: a.weightSquared + b.weightSquared,
    reward: a.reward + b.reward,
    ips: a.ips + b.ips,
    ipsSquared: a.ipsSquared + b.ipsSquared,
    weightSquaredReward: a.weightSquaredReward + b.weightSquaredReward,
    dr: a.dr + b.dr,
    drSquared: a.drSquared + b.drSquared,
  };
}

/**
 * `sums` with one more logged decision. A decision counts as evaluated only
 * when every action the candidate may choose there is in the logging
 * policy's support; otherwise it adds to `decisions` only.
 * @throws RangeError on a logging probability outside (0, 1] or a
 *   non-finite reward or a candidate probability outside [0, 1].
 */
export function addDecision(sums: OffPolicySums, d: LoggedDecision, options: { readonly directDefault?: number } = {}): OffPolicySums {
  const directDefault = options.directDefault ?? 0;
  if (!(d.loggingProbability > 0 && d.loggingProbability <= 1)) throw new RangeError(`a logging probability must be in (0, 1] (got ${d.loggingProbability})`);
  if (!Number.isFinite(d.reward)) throw new RangeError(`a reward must be finite (got ${d.reward})`);
  if (!inSupport(d)) return { ...sums, decisions: sums.decisions + 1 };
  const w = (d.candidateProbabilities[d.served] ?? 0) / d.loggingProbability;
  const q = (action: string) => d.directEstimates?.[action] ?? directDefault;
  let direct = 0;
  for (const [action, p] of Object.entries(d.candidateProbabilities)) direct += p * q(action);
  const t = w * d.reward;
  const dr = direct + w * (d.reward - q(d.served));
  return {
    decisions: sums.decisions + 1,
    evaluated: sums.evaluated + 1,
    weight: sums.weight + w,
    weightSquared: sums.weightSquared + w * w,
    reward: sums.reward + d.reward,
    ips: sums.ips + t,
    ipsSquared: sums.ipsSquared + t * t,
    weightSquaredReward: sums.weightSquaredReward + w * w * d.reward,
    dr: sums.dr + dr,
    drSquared: sums.drSquared + dr * dr,
  };
}

/**
 * Whether every action the candidate may choose on `d` (probability > 0) is
 * one the logging policy could have served there.
 * @throws RangeError on a candidate probability outside [0, 1].
 */
export function inSupport(d: Pick<LoggedDecision, 'candidateProbabilities' | 'loggedSupport'>): boolean {
  const support = new Set(d.loggedSupport);
  let outside = 0;
  for (const [action, p] of Object.entries(d.candidateProbabilities)) {
    if (!(p >= 0 && p <= 1)) throw new RangeError(`a candidate probability must be in [0, 1] (got ${p} for ${action})`);
    if (p > 0 && !support.has(action)) outside += p;
  }
  return outside <= SUPPORT_TOLERANCE;
}

/**
 * Mean ± z·s/√n of m terms from their sum and sum of squares (s: the sample
 * standard deviation); no interval under MIN_INTERVAL_DECISIONS terms or
 * with s = 0.
 */
const meanInterval = (m: number, sum: number, sumSquares: number, z: number): RateInterval => {
  const mean = sum / m;
  const variance = m > 1 ? Math.max(0, (sumSquares - m * mean * mean) / (m - 1)) : 0;
  return withInterval(mean, z * Math.sqrt(variance / m), m, variance, m > 1 ? sumSquares / (m - 1) : 0);
};

/**
 * IPS, SNIPS and DR estimates from the sums of the logged decisions, each
 * with its 95% interval or, on fewer than MIN_INTERVAL_DECISIONS evaluated
 * decisions or a zero spread, none and the reason (`RateInterval`).
 * @throws UnsupportedCandidate when no logged decision can be evaluated (the
 *   logging policy never explored what the candidate would do).
 */
export function estimateFromSums(sums: OffPolicySums, options: { readonly z?: number } = {}): OffPolicyEstimate {
  const z = options.z ?? Z_95;
  const m = sums.evaluated;
  if (m === 0) {
    throw new UnsupportedCandidate(
      sums.decisions === 0 ? 'no logged decisions to evaluate' : 'the logging policy never served what the candidate would choose on any logged decision (no support)',
    );
  }
  let snips: RateInterval;
  if (sums.weight > 0) {
    const value = sums.ips / sums.weight;
    // Σ w²(r − v)² = Σw²r² − 2v·Σw²r + v²·Σw².
    const spread = Math.max(0, sums.ipsSquared - 2 * value * sums.weightSquaredReward + value * value * sums.weightSquared);
    snips = withInterval(value, (z * Math.sqrt(spread)) / sums.weight, m, spread, sums.ipsSquared + value * value * sums.weightSquared);
  } else {
    // The candidate never agrees with what was served: SNIPS is undefined; IPS's zero is the honest answer.
    snips = { estimate: 0, low: null, high: null, noInterval: 'no interval: the candidate never chose what the logging policy served, so SNIPS is undefined (0 stands in)' };
  }
  return {
    decisions: sums.decisions,
    evaluated: m,
    evaluatedShare: m / sums.decisions,
    effectiveSampleSize: sums.weightSquared > 0 ? (sums.weight * sums.weight) / sums.weightSquared : 0,
    loggedRate: sums.reward / m,
    ips: meanInterval(m, sums.ips, sums.ipsSquared, z),
    snips,
    dr: meanInterval(m, sums.dr, sums.drSquared, z),
  };
}

/**
 * IPS, SNIPS and DR estimates of the candidate's reward rate on `log`: the
 * sums of every decision (`addDecision`), then `estimateFromSums`. A
 * decision counts only when every action the candidate may choose there is
 * in the logging policy's support; the others are left out and reported
 * through `evaluatedShare`.
 * @throws UnsupportedCandidate when no logged decision can be evaluated (the
 *   logging policy never explored what the candidate would do).
 * @throws RangeError on a logging probability outside (0, 1] or a
 *   non-finite reward or probability.
 */
export function estimateOffPolicy(log: readonly LoggedDecision[], options: { readonly directDefault?: number; readonly z?: number } = {}): OffPolicyEstimate {
  let sums = EMPTY_SUMS;
  for (const d of log) sums = addDecision(sums, d, options);
  return estimateFromSums(sums, options);
}
