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
 * the delta method, SNIPS ± z·√(Σ w_i²(r_i − SNIPS)²) / Σ w_i.
 * Effective sample size (Kish): (Σ w_i)² / Σ w_i².
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

/** An estimate of the candidate's reward rate with its 95% interval. */
export interface RateInterval {
  readonly estimate: number;
  readonly low: number;
  readonly high: number;
}

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

const meanInterval = (terms: readonly number[], z: number): RateInterval => {
  const n = terms.length;
  const mean = terms.reduce((sum, t) => sum + t, 0) / n;
  const variance = n > 1 ? terms.reduce((sum, t) => sum + (t - mean) * (t - mean), 0) / (n - 1) : 0;
  const half = z * Math.sqrt(variance / n);
  return { estimate: mean, low: mean - half, high: mean + half };
};

/**
 * IPS, SNIPS and DR estimates of the candidate's reward rate on `log`.
 * A decision counts only when every action the candidate may choose there is
 * in the logging policy's support; the others are left out and reported
 * through `evaluatedShare`.
 * @throws UnsupportedCandidate when no logged decision can be evaluated (the
 *   logging policy never explored what the candidate would do).
 * @throws RangeError on a logging probability outside (0, 1] or a
 *   non-finite reward or probability.
 */
export function estimateOffPolicy(log: readonly LoggedDecision[], options: { readonly directDefault?: number; readonly z?: number } = {}): OffPolicyEstimate {
  const z = options.z ?? Z_95;
  const directDefault = options.directDefault ?? 0;
  const ipsTerms: number[] = [];
  const drTerms: number[] = [];
  const weights: number[] = [];
  const rewards: number[] = [];
  for (const d of log) {
    if (!(d.loggingProbability > 0 && d.loggingProbability <= 1)) throw new RangeError(`a logging probability must be in (0, 1] (got ${d.loggingProbability})`);
    if (!Number.isFinite(d.reward)) throw new RangeError(`a reward must be finite (got ${d.reward})`);
    const support = new Set(d.loggedSupport);
    let outside = 0;
    for (const [action, p] of Object.entries(d.candidateProbabilities)) {
      if (!(p >= 0 && p <= 1)) throw new RangeError(`a candidate probability must be in [0, 1] (got ${p} for ${action})`);
      if (p > 0 && !support.has(action)) outside += p;
    }
    if (outside > SUPPORT_TOLERANCE) continue;
    const w = (d.candidateProbabilities[d.served] ?? 0) / d.loggingProbability;
    const q = (action: string) => d.directEstimates?.[action] ?? directDefault;
    let direct = 0;
    for (const [action, p] of Object.entries(d.candidateProbabilities)) direct += p * q(action);
    weights.push(w);
    rewards.push(d.reward);
    ipsTerms.push(w * d.reward);
    drTerms.push(direct + w * (d.reward - q(d.served)));
  }
  const evaluated = weights.length;
  if (evaluated === 0) {
    throw new UnsupportedCandidate(
      log.length === 0 ? 'no logged decisions to evaluate' : 'the logging policy never served what the candidate would choose on any logged decision (no support)',
    );
  }
  const weightSum = weights.reduce((sum, w) => sum + w, 0);
  const weightSquares = weights.reduce((sum, w) => sum + w * w, 0);
  const ips = meanInterval(ipsTerms, z);
  let snips: RateInterval;
  if (weightSum > 0) {
    const value = ipsTerms.reduce((sum, t) => sum + t, 0) / weightSum;
    const spread = weights.reduce((sum, w, i) => sum + w * w * ((rewards[i] as number) - value) ** 2, 0);
    const half = (z * Math.sqrt(spread)) / weightSum;
    snips = { estimate: value, low: value - half, high: value + half };
  } else {
    // The candidate never agrees with what was served: SNIPS is undefined; IPS's zero is the honest answer.
    snips = { estimate: 0, low: 0, high: 0 };
  }
  return {
    decisions: log.length,
    evaluated,
    evaluatedShare: evaluated / log.length,
    effectiveSampleSize: weightSquares > 0 ? (weightSum * weightSum) / weightSquares : 0,
    loggedRate: rewards.reduce((sum, r) => sum + r, 0) / evaluated,
    ips,
    snips,
    dr: meanInterval(drTerms, z),
  };
}
