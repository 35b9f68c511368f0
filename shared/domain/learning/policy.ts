/**
 * The learning policy of one placement: how likely each eligible arm (an
 * action, or a variant of one) is to be served, and which one is.
 *
 * Each arm has a Beta(α, β) posterior of its reward rate (the catalog's prior
 * plus its windowed impressions and rewards) and a `scale` (value × weight)
 * its draw is multiplied by. With K eligible arms, `floor` f and
 * `exploration` ε (CATALOG.md "Learning"):
 *
 *   π(a) = f + (1 − K·f) · [ (1 − ε) · 1{a = argmax_b scale_b · mean_b} + ε · P_TS(a) ]
 *
 * where P_TS(a) = P(scale_a · X_a ≥ scale_b · X_b for every b), X ~ Beta, the
 * probability that Thompson sampling (Thompson 1933; Chapelle & Li 2011)
 * picks a. So every eligible arm keeps at least the share f of the
 * placement's traffic (f is lowered to 1/K when K·f > 1), a share ε of
 * decisions explore by Thompson sampling, and the rest exploit the best
 * posterior mean. P_TS is estimated by Monte Carlo over `draws` joint draws
 * (a standard error of at most 0.5/√draws: ±0.01 at 95% with 10,000), with a
 * generator seeded from the posteriors, so the same statistics give the same
 * probabilities on every instance; it is not drawn when nothing depends on it
 * (ε = 0, or K·f ≥ 1: every arm has exactly 1/K), nor when the arms are
 * exchangeable (the same α, β and scale: P_TS is exactly 1/K each, which the
 * Monte Carlo only estimates). The Monte Carlo costs K × draws Beta samples
 * (about 1 ms per arm warm, 40–60 ms of CPU for two arms in a fresh process,
 * on code not yet optimised), so the caller caches the result
 * (`ArmProbabilityCache`) per statistics refresh. Ties go to the arm listed
 * first.
 */
import { sampleBeta, seededRandom, hash32, type Random } from '../decide/random.ts';

export interface ArmPosterior {
  readonly id: string;
  readonly alpha: number;
  readonly beta: number;
  /** Value × weight the arm's draw is scaled by (> 0). */
  readonly scale: number;
}

export interface LearningSettings {
  /** Share of decisions that explore by Thompson sampling, [0, 1]. */
  readonly exploration: number;
  /** Minimum share of the placement's traffic each eligible arm keeps, [0, 1]. */
  readonly floor: number;
  /** Monte Carlo draws for P_TS. @default 10_000 */
  readonly draws?: number;
}

/** Each arm's probability of being served, in the arms' order; sums to 1. */
export interface ArmProbabilities {
  readonly ids: readonly string[];
  readonly probabilities: readonly number[];
  /** Index of the greedy arm (the best posterior mean × scale, the first on a tie). */
  readonly greedy: number;
}

/** Monte Carlo draws by default: ±0.01 (95%) on each Thompson probability. */
export const DEFAULT_THOMPSON_DRAWS = 10_000;

const checkArm = (arm: ArmPosterior): void => {
  if (!(arm.alpha > 0 && arm.beta > 0 && Number.isFinite(arm.alpha) && Number.isFinite(arm.beta))) {
    throw new RangeError(`arm ${arm.id}: a Beta posterior needs finite α, β > 0 (got ${arm.alpha}, ${arm.beta})`);
  }
  if (!(arm.scale > 0 && Number.isFinite(arm.scale))) throw new RangeError(`arm ${arm.id}: scale must be finite and > 0 (got ${arm.scale})`);
};

/** Index of the largest value, the first on a tie. */
const argmax = (values: readonly number[]): number => {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
};

/** The arms have the same posterior and scale: each is as likely as any other to draw the largest value. */
const exchangeable = (arms: readonly ArmPosterior[]): boolean => {
  const first = arms[0] as ArmPosterior;
  return arms.every((a) => a.alpha === first.alpha && a.beta === first.beta && a.scale === first.scale);
};

/**
 * P_TS of each arm: by Monte Carlo over `draws` joint draws from `random`;
 * exactly 1/K for exchangeable arms (no draw made), as in a fresh process
 * whose statistics have not loaded yet, where every arm has the prior and
 * the variants of one action share a scale.
 * @throws RangeError for an empty list or an invalid posterior.
 */
export function thompsonProbabilities(arms: readonly ArmPosterior[], draws: number, random: Random): number[] {
  if (arms.length === 0) throw new RangeError('no arms');
  arms.forEach(checkArm);
  if (arms.length === 1) return [1];
  if (exchangeable(arms)) return arms.map(() => 1 / arms.length);
  const wins = new Array<number>(arms.length).fill(0);
  const sample = new Array<number>(arms.length);
  for (let d = 0; d < draws; d++) {
    for (let i = 0; i < arms.length; i++) {
      const arm = arms[i] as ArmPosterior;
      sample[i] = arm.scale * sampleBeta(arm.alpha, arm.beta, random);
    }
    const winner = argmax(sample);
    wins[winner] = (wins[winner] as number) + 1;
  }
  return wins.map((w) => w / draws);
}

/** The seed of the Monte Carlo generator: a function of the posteriors only. */
const posteriorSeed = (arms: readonly ArmPosterior[]): number =>
  hash32(arms.map((a) => `${a.id}\u0000${a.alpha}\u0000${a.beta}\u0000${a.scale}`).join('\u0001'));

/**
 * Each arm's probability of being served by the policy above.
 * @throws RangeError for no arms, an invalid posterior, or settings outside [0, 1].
 */
export function armProbabilities(arms: readonly ArmPosterior[], settings: LearningSettings): ArmProbabilities {
  const { exploration } = settings;
  if (!(exploration >= 0 && exploration <= 1)) throw new RangeError(`exploration must be in [0, 1] (got ${exploration})`);
  if (!(settings.floor >= 0 && settings.floor <= 1)) throw new RangeError(`floor must be in [0, 1] (got ${settings.floor})`);
  if (arms.length === 0) throw new RangeError('no arms');
  arms.forEach(checkArm);
  const k = arms.length;
  const floor = Math.min(settings.floor, 1 / k);
  const greedy = argmax(arms.map((a) => (a.scale * a.alpha) / (a.alpha + a.beta)));
  const rest = 1 - k * floor;
  const thompson =
    exploration > 0 && rest > 0 ? thompsonProbabilities(arms, settings.draws ?? DEFAULT_THOMPSON_DRAWS, seededRandom(posteriorSeed(arms))) : undefined;
  const probabilities = arms.map((_, i) => floor + rest * ((1 - exploration) * (i === greedy ? 1 : 0) + exploration * (thompson?.[i] ?? 0)));
  return { ids: arms.map((a) => a.id), probabilities, greedy };
}

/**
 * The arm served for a uniform draw `u` in [0, 1): the first whose
 * cumulative probability exceeds u (the last one against rounding). With
 * `greedyLast`, the arms are taken in their order but the greedy one last,
 * so the greedy arm holds the top of the interval (decide: a draw above the
 * exploring share always exploits); the chances are the same.
 */
export function chooseArm(
  probabilities: ArmProbabilities,
  u: number,
  greedyLast = false,
): { readonly id: string; readonly probability: number; readonly index: number } {
  const { ids, probabilities: pi, greedy } = probabilities;
  const last = greedyLast ? greedy : ids.length - 1;
  let cumulative = 0;
  for (let i = 0; i < ids.length; i++) {
    if (greedyLast && i === greedy) continue;
    cumulative += pi[i] as number;
    if (u < cumulative) return { id: ids[i] as string, probability: pi[i] as number, index: i };
  }
  return { id: ids[last] as string, probability: pi[last] as number, index: last };
}

/**
 * A bounded least-recently-used cache of arm probabilities, held by the
 * caller for as long as its process lives (the decide function keeps one),
 * keyed by whatever determines the probabilities (decide.ts builds the key:
 * catalog, statistics generation, slot, context and the eligible arms). A
 * Map keeps insertion order: a hit is moved to the end, the first entry is
 * the least recently used.
 */
export class ArmProbabilityCache {
  private readonly entries = new Map<string, ArmProbabilities>();
  /** Lookups answered from the cache, and computed. */
  hits = 0;
  misses = 0;

  /** @param maxEntries how many sets of probabilities are kept (≥ 1). @default 1000 */
  constructor(readonly maxEntries = 1_000) {
    if (!(maxEntries >= 1)) throw new RangeError(`maxEntries must be ≥ 1 (got ${maxEntries})`);
  }

  /** The cached probabilities under `key`, else `compute()`'s, kept. */
  get(key: string, compute: () => ArmProbabilities): ArmProbabilities {
    const hit = this.entries.get(key);
    if (hit) {
      this.hits++;
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    this.misses++;
    const value = compute();
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(key, value);
    return value;
  }

  get size(): number {
    return this.entries.size;
  }
}
