/**
 * The next best action: a pure function of (catalog, profile, request, now),
 * one pass that records why each candidate was or was not chosen only when
 * the request asks to `explain`:
 *
 * 1. Audience: segments, persona and scores re-evaluated for this instant
 *    and context (the stored ones may be seconds old).
 * 2. Policies, once per decision (policies.ts `decisionPolicies`): consent,
 *    quiet hours, channel caps, the suppression policies in force.
 * 3. Candidates: the slot's actions (content for the channel that fills
 *    the placement, policies.ts `fillsPlacement`; not a fallback there),
 *    each dropped at the first failed check of checks.ts
 *    `CANDIDATE_CHECKS` — validity, consent, suppression, quiet hours,
 *    channel cap, frequency cap, eligibility rule, targeting — then the
 *    experiment check (holdout or another arm; a fixed variant whose
 *    content does not fill the placement is dropped as `content`).
 *    Without `explain`, the slot's columns (slot.ts) settle the validity,
 *    suppression and targeting checks and the rules with a false conjunct
 *    first: the same candidates survive, only the first reason would differ.
 * 4. Rank: score = propensity × value × weight, priority then catalog order
 *    break ties. An action's propensity is its model's score, or the mean
 *    of its Beta posterior: the catalog's prior plus the windowed outcome
 *    counts of (action, variant, learning context, channel, placement)
 *    (`options.learning`); an action with variants serves its best one.
 *    Where learning is on and `exploration` > 0, the contextual bandit
 *    decides (`banditRanking`): its arms are every eligible (action,
 *    variant) pair — the variants that fill the placement, or the one an
 *    experiment fixed (that variant is not the bandit's choice) — each with
 *    its posterior and scale = value × weight (a model's score counts as a
 *    Beta of that mean and MODEL_EVIDENCE trials). Position 1 is drawn from
 *    learning/policy.ts `armProbabilities` (each arm keeps the `floor`
 *    share, an `exploration` share by Thompson sampling, the rest to the
 *    best posterior mean × scale, ties to the higher priority, then catalog
 *    order); positions 2..limit are the other actions in score order. The
 *    bandit only sees candidates that passed every check (consent,
 *    suppression, quiet hours, caps, eligibility, targeting, experiments):
 *    exploration never crosses them. Learning off (the catalog's
 *    `learning.enabled`, or the placement's) or `exploration` 0 (the floor
 *    is then off too): the ranking is deterministic.
 * 5. Render the best ones, top-k; a template that fails makes that content
 *    unservable and the next ranked action is served in its place. Where
 *    the bandit decides, every arm is known to render or not before the
 *    draw, and the arms that fail are left out of it (below): content
 *    without Liquid markup is the same for every customer (settled once per
 *    catalog), plain text templates whose values are short enough surely
 *    render (template.ts `rendersSurely`), the rest is rendered. No winner: the channel/placement's fallback actions, which
 *    still pass the checks that protect the customer (checks.ts
 *    `FALLBACK_CHECKS`: validity, consent, suppression, quiet hours,
 *    channel caps).
 *
 * `probability` of each returned action: the chance that this policy serves
 * that action with that variant in this answer (among the first `limit`),
 * for this customer at this moment — exact for the policy above given the
 * arm probabilities (whose Thompson part is a Monte Carlo estimate within
 * ±0.01): π(arm) when served first, plus, for an action's best variant, the
 * chance that the draw leaves it among the others' first limit − 1. 1 where
 * the ranking is deterministic, and for fallbacks. Times the share of
 * customers the action's experiment arm is assigned to ((1 − holdout) × the
 * arm's weight over the arms' total), since assignment is the other random
 * choice an off-policy evaluation must weigh. It is the chance of what
 * is served, content that fails to render for this customer (a counted
 * runtime failure) included: the bandit draws position 1 among the arms
 * that render, each with π(arm) / Σ π over those arms (`withoutFailed`;
 * the draw of the policy conditioned on an arm that can be shown), an arm
 * that fails has chance 0, and the other positions take the other actions
 * whose best variant renders (arms A and B at 0.5 each, A's template
 * failing for this customer: B is served every time and says 1). The
 * deterministic ranking serves the first action that renders, which the
 * render of the ranking in order finds. The decision record's candidates
 * (`decideForLog`) carry the same chances of position 1, so off-policy
 * evaluation weighs each decision by what it showed
 * (evaluation/evaluate.ts). Carried per action
 * in the decision id (4 decimals) with the decision's learning context
 * (`learningContextOf`), so outcomes count under the context decided in.
 *
 * Cost: the arm probabilities are a function of (catalog, statistics
 * generation, channel, placement, learning context, the eligible arms in
 * order, and a model arm's score); computing them costs K × 10,000 Beta
 * draws when exploring (none when K·f ≥ 1), so the caller keeps a bounded
 * LRU of them (`options.policies`, learning/policy.ts
 * `ArmProbabilityCache`, one per process in the decide function) keyed by
 * exactly those — the arms folded into two independent 32-bit hashes, so a
 * warm decision builds no string of its arms and no posterior objects; it
 * pays for one Ranked entry per eligible candidate, the sort, the key and
 * one draw. The statistics generation moves only when the counts do
 * (shared/store/statistics-cache.ts), so a refresh that read nothing new
 * keeps the cache warm.
 *
 * Randomness (the bandit's draw) comes from `options.random` or a generator
 * seeded by the decision's nonce and customer: with exploration off the same
 * inputs give the same decision.
 */
import type { Channel } from '../channels.ts';
import { emptyProfileView, type ProfileView } from '../profile/view.ts';
import type { Audience, CompiledAction, CompiledCatalog, CompiledContent, CompiledTemplate, FailureTally, ResolvedPlacement } from '../catalog/compiled.ts';
// Straight from the modules (no barrel): the decide bundle must not pull the loader (YAML, zod).
import { evaluateAudience } from '../catalog/audience.ts';
import { namedPlacements } from '../catalog/placements.ts';
import { createFailureTally, createRuleBudget, createRuleVariables } from '../catalog/rules.ts';
import { renderContent, rendersSurely, templateScope, type TemplateScope } from '../catalog/template.ts';
import { CANDIDATE_CHECKS, FALLBACK_CHECKS, REMAINING_CHECKS, firstDrop, type DecisionFacts, type Drop } from './checks.ts';
import { customerTag, encodeDecisionId, type DecidedAction } from './decision-id.ts';
import { Assignments, experimentOf, type ExperimentOutcome } from './experiments.ts';
import { canServePlacement, contentFor, decisionPolicies, fillsPlacement, isFallbackHere, resolvePlacement } from './policies.ts';
import { hash32, seededRandom, type Random } from './random.ts';
import { armProbabilities, chooseArm, type ArmPosterior, type ArmProbabilities, type ArmProbabilityCache } from '../learning/policy.ts';
import { NO_CONTEXT, posterior } from '../learning/statistics.ts';
import { F_OWN_CHECKS, F_PLAIN, F_RULE, filteredOut, ruleSettled, slotFilter, slotFor, type Slot } from './slot.ts';
import { loggedArm, type LoggedArm } from '../evaluation/decision-record.ts';
import type { CandidateExplanation, Decision, DecideRequest, DecisionLogFacts, Explanation, LearningStats, ReturnedAction } from './types.ts';

export interface DecideOptions {
  /** Outcome statistics for learning; absent = the catalog's Beta prior. */
  readonly learning?: LearningStats;
  /**
   * Where the bandit's arm probabilities are cached (the decide function
   * keeps one per process): absent, they are computed for every decision
   * (Monte Carlo, about 1 ms per arm when exploring).
   */
  readonly policies?: ArmProbabilityCache;
  /** Where each action's bandit arms are kept (`ActionArmsCache`; the decide function keeps one per process): absent, computed for every decision. */
  readonly arms?: ActionArmsCache;
  /** Makes the decision id unique; the handler passes random bytes. Default: derived from customer and time. */
  readonly nonce?: string;
  /** Uniform [0,1) source for exploration; default seeded from nonce and customer. */
  readonly random?: Random;
  /**
   * The profile could not be read: decide from the fallbacks only, with the
   * empty profile (so consent-bound channels get nothing).
   */
  readonly degraded?: boolean;
  /**
   * The catalog stamp of the profile's stored segments, persona and scores
   * (the profile function's enrichment of this very profile): with this
   * catalog's stamp, only the dynamic audience rules are evaluated.
   */
  readonly enrichedWith?: string;
  /**
   * How long the decision's rules may run, in ms (the decide function passes
   * DEFAULT_RULE_BUDGET_MS): a rule the deadline leaves no time for is not
   * run and counts as a runtime failure (`rule:error`, `failures.deadline`).
   * Absent (and no `ruleClock`): no deadline, the decision depends on its
   * inputs only.
   */
  readonly ruleBudgetMs?: number;
  /** The clock of the rule budget (ms, monotonic); default performance.now. With it alone, the budget is DEFAULT_RULE_BUDGET_MS. */
  readonly ruleClock?: () => number;
  /**
   * Where the decision counts its runtime failures (rules.ts
   * `createFailureTally`): rules that failed or were skipped past the
   * deadline, templates that failed to render. The caller reads it for its
   * metrics; absent, they are counted in a tally nobody reads.
   */
  readonly failures?: FailureTally;
}

/** An empty profile: an unknown customer is a new anonymous one, not an error. */
export const emptyProfile = emptyProfileView;

/**
 * The key experiments hash and learning seeds on, and the customer a
 * decision id is bound to (decision-id.ts `customerTag`): the profile's
 * experiment key (the first key the customer was known by, kept through
 * logins and merges), else the known id, else the anonymous one.
 */
export function customerKey(profile: ProfileView, request: Pick<DecideRequest, 'userId' | 'anonymousId'>): string {
  return profile.experimentKey ?? profile.userId ?? request.userId ?? profile.anonymousId ?? request.anonymousId ?? '';
}


interface Ranked {
  readonly action: CompiledAction;
  readonly variant?: string;
  readonly experiment?: { readonly id: string; readonly arm: string };
  readonly propensity: number;
  readonly score: number;
  /** Set by the bandit: the chance this action, with this variant, is served (before the experiment's share). */
  readonly probability?: number;
  /** The bandit's arms of this action (one per variant it may serve); only when the bandit decides. */
  readonly arms?: readonly RankedArm[];
  /** The reason the bandit gives the action it put first. */
  readonly learning?: 'learning:greedy' | 'learning:explore';
}

interface RankedArm {
  readonly variant: string | undefined;
  /** The variant's position in the action's variants (-1: the base content): what the bandit's cache key folds. */
  readonly variantIndex: number;
  readonly alpha: number;
  readonly beta: number;
  readonly propensity: number;
}

interface Learner {
  readonly on: boolean;
  /** The learning context (learningContextOf). */
  readonly context: string;
  readonly channel: Channel;
  readonly placement: string | undefined;
  readonly stats: LearningStats | undefined;
}

/** Evidence a model's score counts as: its arm's Beta has mean = the score and α + β = this. */
export const MODEL_EVIDENCE = 10_000;

/**
 * The learning context of a decision (catalog `learning.contextBy`): the
 * persona; or the customer's first segment in catalog order (the order of
 * `segments` in the catalog document); else (contextBy `none`, no persona, no
 * segment) NO_CONTEXT. Carried in the decision id, so its outcomes are
 * counted under exactly this context.
 */
export function learningContextOf(catalog: CompiledCatalog, audience: Audience): string {
  const contextBy = catalog.learning.contextBy;
  if (contextBy === 'persona') return audience.persona ?? NO_CONTEXT;
  if (contextBy === 'segment' && audience.segments.length > 0) {
    for (const segment of catalog.document.segments ?? []) if (audience.segmentSet.has(segment.id)) return segment.id;
  }
  return NO_CONTEXT;
}

/**
 * An arm's Beta posterior and propensity (its mean): a model's score (at
 * least `learning.floor`) with MODEL_EVIDENCE; learning off, the prior;
 * else the prior plus the arm's windowed counts in this slot and context
 * (statistics.ts `posterior`, rewards per `learning.reward`).
 */
function armOf(catalog: CompiledCatalog, action: CompiledAction, variant: string | undefined, audience: Audience, learner: Learner): RankedArm {
  const { prior, floor } = catalog.learning;
  const variantIndex = variant === undefined ? -1 : action.variants.findIndex((v) => v.id === variant);
  if (action.propensityModel !== undefined) {
    const score = audience.scores[action.propensityModel];
    if (typeof score === 'number' && Number.isFinite(score)) {
      const p = Math.min(1, Math.max(floor, score));
      const mean = Math.min(1 - 1 / MODEL_EVIDENCE, Math.max(1 / MODEL_EVIDENCE, p));
      return { variant, variantIndex, alpha: mean * MODEL_EVIDENCE, beta: (1 - mean) * MODEL_EVIDENCE, propensity: p };
    }
  }
  const counts = learner.on ? learner.stats?.get(action.id, variant, learner.context, learner.channel, learner.placement) : undefined;
  const { alpha, beta } = posterior(counts, prior, catalog.learning.reward);
  return { variant, variantIndex, alpha, beta, propensity: alpha / (alpha + beta) };
}

/**
 * The arms of an eligible action: the variant an experiment fixed, else
 * every variant whose content on the channel fills the placement
 * (policies.ts `fillsPlacement`), else the base content. The first with the
 * best propensity is the one the ranking serves (ties: catalog order).
 */
function armsOf(
  catalog: CompiledCatalog,
  action: CompiledAction,
  fixed: string | undefined,
  audience: Audience,
  learner: Learner,
): ActionArms {
  if (fixed !== undefined || action.variants.length === 0) {
    const arm = armOf(catalog, action, fixed, audience, learner);
    return { arms: [arm], best: arm };
  }
  const arms: RankedArm[] = [];
  {
    for (const variant of action.variants) {
      if (fillsPlacement(variant.content[learner.channel], learner.placement)) arms.push(armOf(catalog, action, variant.id, audience, learner));
    }
    if (arms.length === 0) arms.push(armOf(catalog, action, undefined, audience, learner));
  }
  let best = arms[0] as RankedArm;
  for (const arm of arms) if (arm.propensity > best.propensity) best = arm;
  return { arms, best };
}

/** No eligible candidate (a degraded decision, or nothing passed). */
const NONE_LOGGED: readonly LoggedArm[] = [];

/** A candidate as the decision log keeps it (`loggedArm`), from its score and probability rounded as the answer rounds them. */
const loggedOf = (actionId: string, variant: string | undefined, score: number, probability: number): LoggedArm =>
  loggedArm(actionId, variant, round(score), round(probability));

/**
 * The logged candidates of a bandit decision, kept with the arm
 * probabilities they were made from: the probabilities' cache key covers
 * everything they depend on (the arms in rank order, their posteriors
 * through the statistics generation, the catalog's values and weights
 * through its hash and the slot, each experiment arm's share, each model
 * arm's score).
 */
const loggedArmsOf = new WeakMap<ArmProbabilities, readonly LoggedArm[]>();

/** What armsOf gives. */
interface ActionArms {
  readonly arms: readonly RankedArm[];
  readonly best: RankedArm;
}

/** The statistics a decision without statistics (learning off, or none read yet) is kept under. */
const NO_STATS: object = {};

/**
 * Where decide keeps armsOf's results (the decide function keeps one per
 * process, beside its ArmProbabilityCache): for every action without a
 * propensity model and without a variant fixed by an experiment, its arms
 * depend on nothing but the catalog, the statistics, the slot (channel,
 * placement) and the learning context, so they are computed once per
 * those. Only the catalog and statistics last decided with are kept (a new
 * live catalog, or a refresh that read new counts, starts afresh); within
 * them at most `maxSlots` slot-and-context lists, least recently used
 * first out (a request names its placement: made-up placements must not
 * grow it). The entries are armsOf's results, never changed:
 * test/unit/decide-shared-arms.test.ts holds decisions equal with and
 * without it.
 */
export class ActionArmsCache {
  private catalog: CompiledCatalog | undefined;
  private stats: object | undefined;
  private readonly lists = new Map<string, (ActionArms | undefined)[]>();

  /** @param maxSlots slot-and-context lists kept (≥ 1). @default 256 */
  constructor(readonly maxSlots = 256) {
    if (!(maxSlots >= 1)) throw new RangeError(`maxSlots must be ≥ 1 (got ${maxSlots})`);
  }

  /** Slot-and-context lists kept now. */
  get size(): number {
    return this.lists.size;
  }

  /** The kept results of this catalog, statistics, slot and context, by action index (see the class). */
  listFor(catalog: CompiledCatalog, learner: Learner): (ActionArms | undefined)[] {
    const stats = learner.stats ?? NO_STATS;
    if (catalog !== this.catalog || stats !== this.stats) {
      this.lists.clear();
      this.catalog = catalog;
      this.stats = stats;
    }
    const key = `${learner.on ? 1 : 0}\u0001${learner.channel}\u0001${learner.placement ?? ''}\u0001${learner.context}`;
    let list = this.lists.get(key);
    if (list) {
      this.lists.delete(key);
    } else {
      if (this.lists.size >= this.maxSlots) this.lists.delete(this.lists.keys().next().value as string);
      list = new Array<ActionArms | undefined>(catalog.actions.length);
    }
    this.lists.set(key, list);
    return list;
  }
}

/**
 * The share of customers an experiment arm is assigned to: (1 − holdout) ×
 * the arm's weight over the arms' total (experiments.ts `assignArm`); 1
 * outside an experiment.
 */
function assignmentShare(catalog: CompiledCatalog, experiment: { readonly id: string; readonly arm: string } | undefined): number {
  if (!experiment) return 1;
  const compiled = catalog.experimentsById.get(experiment.id);
  if (!compiled) return 1;
  let total = 0;
  let weight = 0;
  for (const arm of compiled.arms) {
    if (arm.weight <= 0) continue;
    total += arm.weight;
    if (arm.id === experiment.arm) weight = arm.weight;
  }
  return total > 0 ? (1 - Math.min(Math.max(compiled.holdout, 0), 1)) * (weight / total) : 1;
}

/**
 * The bandit's ranking of the eligible actions: the arm served first drawn
 * with `u` from the policy (learning/policy.ts `armProbabilities` over every
 * arm of every eligible action, scale = value × weight; the greedy arm takes
 * the top of [0, 1), so a draw above the exploring share exploits), then the
 * other actions in score order, each with its best variant; every entry
 * with the exact chance that the policy serves it, with its variant, among
 * the first `limit`. `eligible` is sorted in place (compareRanked). The
 * policy is computed at the call (the ranking is drawn lazily); with
 * `logged`, every arm is pushed there with its chance of position 1.
 */
function banditRanking(
  catalog: CompiledCatalog,
  eligible: Ranked[],
  weightOf: (action: CompiledAction) => number,
  learner: Learner,
  limit: number,
  u: number,
  cache: ArmProbabilityCache | undefined,
  logged: LogSink | undefined,
  renders: (action: CompiledAction, variant: string | undefined) => boolean,
): Generator<Ranked> {
  eligible.sort(compareRanked);
  /** Index of each rank's first arm. */
  const start = new Int32Array(eligible.length + 1);
  // The key: what the probabilities (and the logged candidates kept with them) depend on beyond the catalog
  // and statistics generation — the slot, the context, and the arms in order (action index, variant position,
  // experiment share; a model arm's posterior and score, which depend on the customer's score), folded into
  // two independent 32-bit hashes rather than a string of every id.
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  const fold = (n: number) => {
    h1 = Math.imul(h1 ^ n, 0x01000193);
    h2 = Math.imul(h2 ^ n, 0x5bd1e995) ^ (h2 >>> 15);
  };
  let arms = 0;
  for (let r = 0; r < eligible.length; r++) {
    start[r] = arms;
    const ranked = eligible[r] as Ranked;
    const model = ranked.action.propensityModel !== undefined;
    // The logged probabilities (loggedArmsOf) also depend on the experiment arm's share of customers, which
    // changes as experiments start and end.
    fold(ranked.experiment ? Math.round(assignmentShare(catalog, ranked.experiment) * 1e9) : -1);
    for (const arm of ranked.arms ?? []) {
      fold(ranked.action.index);
      fold(arm.variantIndex);
      // A model arm's posterior and its score (the logged one: the posterior's mean is clamped, the score is not).
      if (model) {
        fold(Math.round(arm.alpha * 1e6));
        fold(Math.round(arm.propensity * 1e9));
      }
      arms++;
    }
  }
  start[eligible.length] = arms;
  const key = `${catalog.hash}\u0001${learner.stats?.generation ?? -1}\u0001${learner.channel}\u0001${learner.placement ?? ''}\u0001${learner.context}\u0001${arms}\u0001${h1 >>> 0}\u0001${h2 >>> 0}`;
  const compute = (): ArmProbabilities => {
    const posteriors: ArmPosterior[] = [];
    for (const ranked of eligible) {
      const value = ranked.action.value * weightOf(ranked.action);
      const scale = value > 0 && Number.isFinite(value) ? value : Number.MIN_VALUE;
      for (const arm of ranked.arms ?? []) {
        const id = arm.variant === undefined ? ranked.action.id : `${ranked.action.id}\u0000${arm.variant}`;
        posteriors.push({ id, alpha: arm.alpha, beta: arm.beta, scale });
      }
    }
    return armProbabilities(posteriors, { exploration: catalog.learning.exploration, floor: catalog.learning.floor });
  };
  const drawn = cache ? cache.get(key, compute) : compute();
  // Which arms render for this customer (every arm the draw may pick: each has a chance above 0).
  let failed: Uint8Array | undefined;
  for (let r = 0; r < eligible.length; r++) {
    const ranked = eligible[r] as Ranked;
    const arms = ranked.arms ?? [];
    for (let i = 0; i < arms.length; i++) {
      if (!renders(ranked.action, (arms[i] as RankedArm).variant)) {
        failed ??= new Uint8Array(start[eligible.length] as number);
        failed[(start[r] as number) + i] = 1;
      }
    }
  }
  const policy = failed ? withoutFailed(drawn, failed) : drawn;
  const pi = policy.probabilities;
  if (logged) {
    let tuples = failed ? undefined : loggedArmsOf.get(policy);
    if (!tuples) {
      const made: LoggedArm[] = [];
      for (let r = 0; r < eligible.length; r++) {
        const ranked = eligible[r] as Ranked;
        const value = ranked.action.value * weightOf(ranked.action);
        const share = assignmentShare(catalog, ranked.experiment);
        const arms = ranked.arms ?? [];
        for (let i = 0; i < arms.length; i++) {
          const arm = arms[i] as RankedArm;
          made.push(loggedOf(ranked.action.id, arm.variant, arm.propensity * value, (pi[(start[r] as number) + i] as number) * share));
        }
      }
      tuples = made;
      // Only the policy of every arm rendering is shared by other decisions.
      if (!failed) loggedArmsOf.set(policy, made);
    }
    logged.eligible = tuples;
  }
  return drawRanking(eligible, weightOf, limit, u, policy, start, failed);
}

/**
 * The policy served from when some arms do not render for this customer
 * (`failed[i]` = 1): their chance is 0 and the others' are re-normalised,
 * π(a) / Σ π(b) over the arms b that render — the draw of the policy
 * conditioned on an arm that can be shown (drawing again until one renders
 * serves exactly this). The greedy arm: the policy's if it renders, else the
 * arm that renders with the largest chance (the first on a tie). Every
 * chance 0 when nothing renders.
 */
function withoutFailed(policy: ArmProbabilities, failed: Uint8Array): ArmProbabilities {
  const pi = policy.probabilities;
  let total = 0;
  for (let i = 0; i < pi.length; i++) if (failed[i] === 0) total += pi[i] as number;
  const probabilities = pi.map((p, i) => (failed[i] === 0 && total > 0 ? p / total : 0));
  let greedy = policy.greedy;
  if (failed[greedy] === 1) {
    greedy = -1;
    for (let i = 0; i < probabilities.length; i++) {
      if (failed[i] === 0 && (greedy === -1 || (probabilities[i] as number) > (probabilities[greedy] as number))) greedy = i;
    }
  }
  return { ids: policy.ids, probabilities, greedy };
}

/** The bandit's ranking drawn from its policy (banditRanking). */
function* drawRanking(
  eligible: readonly Ranked[],
  weightOf: (action: CompiledAction) => number,
  limit: number,
  u: number,
  policy: ArmProbabilities,
  start: Int32Array,
  failed: Uint8Array | undefined,
): Generator<Ranked> {
  const pi = policy.probabilities;
  const bestArm = (r: number): number => {
    const ranked = eligible[r] as Ranked;
    const arms = ranked.arms ?? [];
    let best = 0;
    for (let i = 1; i < arms.length; i++) if ((arms[i] as RankedArm).propensity > (arms[best] as RankedArm).propensity) best = i;
    return (start[r] as number) + best;
  };
  // Nothing renders: no arm to serve (the fallbacks are).
  if (failed && pi.every((p) => p === 0)) {
    for (const ranked of eligible) yield { ...ranked, probability: 0 };
    return;
  }
  const picked = chooseArm(policy, u, true).index;
  let pickedRank = 0;
  while ((start[pickedRank + 1] as number) <= picked) pickedRank++;
  // The chance that the arm served first is one of rank r's.
  const first = (r: number): number => {
    let sum = 0;
    for (let i = start[r] as number; i < (start[r + 1] as number); i++) sum += pi[i] as number;
    return sum;
  };
  // The other positions: the other actions in order, each with its best variant, those whose best variant
  // does not render left out. Rank r's place among the actions left in (-1: left out).
  const place = new Int32Array(eligible.length);
  let places = 0;
  for (let r = 0; r < eligible.length; r++) place[r] = failed && failed[bestArm(r)] === 1 ? -1 : places++;
  // Rank r is among the first limit − 1 of the others when the first served is not r's and r's place is
  // below limit − 1, or its place is limit − 1 and the first served is an action left in above it.
  const inRest = (r: number): number => {
    const at = place[r] as number;
    if (at === -1) return 0;
    if (at < limit - 1) return 1 - first(r);
    if (at !== limit - 1) return 0;
    let above = 0;
    for (let i = 0; i < r; i++) if ((place[i] as number) !== -1) above += first(i);
    return above;
  };
  const top = eligible[pickedRank] as Ranked;
  const topArm = (top.arms ?? [])[picked - (start[pickedRank] as number)] as RankedArm;
  yield {
    ...top,
    ...(topArm.variant !== undefined ? { variant: topArm.variant } : {}),
    propensity: topArm.propensity,
    score: topArm.propensity * top.action.value * weightOf(top.action),
    probability: (pi[picked] as number) + (picked === bestArm(pickedRank) ? inRest(pickedRank) : 0),
    learning: picked === policy.greedy ? 'learning:greedy' : 'learning:explore',
  };
  for (let r = 0; r < eligible.length; r++) {
    if (r === pickedRank) continue;
    const ranked = eligible[r] as Ranked;
    yield { ...ranked, probability: (pi[bestArm(r)] as number) + inRest(r) };
  }
}

/**
 * The eligible actions best first (compareRanked's order), selected one at a
 * time: the ranked objects, and the plain candidates of the slot's pool,
 * whose object is made only when it is selected.
 */
function* inRankOrder(ranked: Ranked[], slot: Slot, pool: PlainPool, plainPropensity: number): Generator<Ranked> {
  let rankedEnd = ranked.length;
  let poolEnd = pool.size;
  while (rankedEnd + poolEnd > 0) {
    let bestRanked = -1;
    for (let i = 0; i < rankedEnd; i++) {
      if (bestRanked === -1 || compareRanked(ranked[i] as Ranked, ranked[bestRanked] as Ranked) < 0) bestRanked = i;
    }
    let bestPlain = -1;
    for (let i = 0; i < poolEnd; i++) {
      if (bestPlain === -1 || comparePlain(slot, pool, i, bestPlain) < 0) bestPlain = i;
    }
    let plainFirst = bestPlain !== -1;
    if (plainFirst && bestRanked !== -1) {
      const r = ranked[bestRanked] as Ranked;
      const k = pool.k[bestPlain] as number;
      const score = pool.score[bestPlain] as number;
      plainFirst =
        score !== r.score
          ? score > r.score
          : slot.priority[k] !== r.action.priority
            ? (slot.priority[k] as number) > r.action.priority
            : (slot.indices[k] as number) < r.action.index;
    }
    if (plainFirst) {
      const k = pool.k[bestPlain] as number;
      const score = pool.score[bestPlain] as number;
      poolEnd--;
      pool.k[bestPlain] = pool.k[poolEnd] as number;
      pool.score[bestPlain] = pool.score[poolEnd] as number;
      yield { action: slot.list[k] as CompiledAction, propensity: plainPropensity, score };
    } else {
      const chosen = ranked[bestRanked] as Ranked;
      rankedEnd--;
      ranked[bestRanked] = ranked[rankedEnd] as Ranked;
      ranked[rankedEnd] = chosen;
      yield chosen;
    }
  }
}

/** Every eligible candidate, best first (compareRanked's order). */
function rankAll(ranked: Ranked[], slot: Slot, pool: PlainPool, plainPropensity: number): Ranked[] {
  const all = ranked.slice();
  for (let i = 0; i < pool.size; i++) {
    const k = pool.k[i] as number;
    all.push({ action: slot.list[k] as CompiledAction, propensity: plainPropensity, score: pool.score[i] as number });
  }
  return all.sort(compareRanked);
}

/** compareRanked for two entries of the plain pool. */
function comparePlain(slot: Slot, pool: PlainPool, a: number, b: number): number {
  const sa = pool.score[a] as number;
  const sb = pool.score[b] as number;
  if (sa !== sb) return sb - sa;
  const ka = pool.k[a] as number;
  const kb = pool.k[b] as number;
  const pa = slot.priority[ka] as number;
  const pb = slot.priority[kb] as number;
  if (pa !== pb) return pb - pa;
  return (slot.indices[ka] as number) - (slot.indices[kb] as number);
}

/** The eligible candidates with the plain propensity: slot positions and scores, no object each. */
interface PlainPool {
  readonly k: Int32Array;
  readonly score: Float64Array;
  size: number;
  add(k: number, score: number): void;
}

let poolK = new Int32Array(64);
let poolScore = new Float64Array(64);

/**
 * The pool of one decision. Its arrays are reused from one decision to the
 * next (a decision runs to its end synchronously, and its ranking is consumed
 * before it returns).
 */
function plainPool(capacity: number): PlainPool {
  if (poolK.length < capacity) {
    poolK = new Int32Array(capacity);
    poolScore = new Float64Array(capacity);
  }
  const k = poolK;
  const score = poolScore;
  return {
    k,
    score,
    size: 0,
    add(position, value) {
      k[this.size] = position;
      score[this.size] = value;
      this.size++;
    },
  };
}

function compareRanked(a: Ranked, b: Ranked): number {
  if (a.score !== b.score) return b.score - a.score;
  if (a.action.priority !== b.action.priority) return b.action.priority - a.action.priority;
  return a.action.index - b.action.index;
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

function why(drop: Drop): string {
  return drop.detail !== undefined ? `${drop.reason}:${drop.detail}` : drop.reason;
}

function reasonsFor(action: CompiledAction, audience: Audience, ranked: Ranked): string[] {
  const reasons: string[] = [];
  const targeting = action.targeting;
  if (targeting?.segments) for (const s of targeting.segments) if (audience.segmentSet.has(s)) reasons.push(`segment:${s}`);
  if (targeting?.personas && audience.persona !== undefined) reasons.push(`persona:${audience.persona}`);
  if (action.eligibility) reasons.push('rule:eligible');
  if (ranked.experiment) reasons.push(`experiment:${ranked.experiment.id}:${ranked.experiment.arm}`);
  if (action.propensityModel !== undefined) reasons.push(`model:${action.propensityModel}`);
  if (ranked.learning) reasons.push(ranked.learning);
  return reasons;
}

/** Push content as a ready payload: exactly `{title, body, deepLink, imageUrl?}`. */
function pushPayload(content: Readonly<Record<string, string | string[]>>): Record<string, string> {
  const text = (v: string | string[] | undefined) => (typeof v === 'string' ? v : Array.isArray(v) ? v.join(' ') : '');
  const payload: Record<string, string> = {
    title: text(content.title),
    body: text(content.body),
    deepLink: text(content.deepLink),
  };
  const image = text(content.imageUrl);
  if (image !== '') payload.imageUrl = image;
  return payload;
}

/**
 * Render the winner's content; a template that fails to render (limits,
 * hostile input) makes this content unservable, never the decision.
 */
function render(
  action: CompiledAction,
  channel: Channel,
  variant: string | undefined,
  scope: TemplateScope,
  failures: FailureTally,
): Record<string, string | string[]> | undefined {
  const content = contentFor(action, channel, variant);
  if (!content) return undefined;
  try {
    const rendered = renderContent(content, scope, action.fallbacks);
    return channel === 'push' ? pushPayload(rendered) : rendered;
  } catch {
    failures.templates++;
    return undefined;
  }
}


/**
 * Whether content renders that is the same for every customer (isLiteral),
 * kept per compiled content: 1 it renders, 2 it does not; 0 the content has
 * templates (rendered per decision).
 */
const literalRenders = new WeakMap<CompiledContent, 0 | 1 | 2>();

/** Every field and list item is literal text (no Liquid markup): the content renders the same for every customer. */
function isLiteral(content: CompiledContent): boolean {
  for (const name in content.fields) if ((content.fields[name] as CompiledTemplate).literal === undefined) return false;
  for (const name in content.lists) for (const item of content.lists[name] as readonly CompiledTemplate[]) if (item.literal === undefined) return false;
  return true;
}

/** The decision (see the module's docstring). */
export function decide(
  catalog: CompiledCatalog,
  profile: ProfileView,
  request: DecideRequest,
  now: Date,
  options: DecideOptions = {},
): Decision {
  return decideOnce(catalog, profile, request, now, options, undefined);
}

/**
 * The same decision, and what the decision log needs of it beyond the
 * answer (types.ts `DecisionLogFacts`): every eligible candidate with its
 * score and its chance of position 1, the learning context, the catalog
 * version, the audience and the customer key. The same inputs (and
 * randomness) give the same answer as `decide`; the extra cost is one entry
 * per eligible candidate (the deterministic ranking then sorts them all at
 * once, as `explain` does, instead of selecting the first few).
 */
export function decideForLog(
  catalog: CompiledCatalog,
  profile: ProfileView,
  request: DecideRequest,
  now: Date,
  options: DecideOptions = {},
): { readonly decision: Decision; readonly log: DecisionLogFacts } {
  const sink: LogSink = { eligible: NONE_LOGGED };
  const decision = decideOnce(catalog, profile, request, now, options, sink);
  return {
    decision,
    log: {
      customerKey: sink.customerKey ?? '',
      catalogVersion: String(catalog.version),
      learningContext: sink.learningContext ?? NO_CONTEXT,
      eligible: sink.eligible,
      holdouts: sink.holdouts ?? [],
      audience: sink.audience ?? { segments: [], segmentSet: new Set(), scores: {} },
    },
  };
}

/** What decideOnce leaves for decideForLog. */
interface LogSink {
  eligible: readonly LoggedArm[];
  customerKey?: string;
  learningContext?: string;
  holdouts?: readonly string[];
  audience?: Audience;
}

function decideOnce(
  catalog: CompiledCatalog,
  profile: ProfileView,
  request: DecideRequest,
  now: Date,
  options: DecideOptions,
  log: LogSink | undefined,
): Decision {
  const nowMs = now.getTime();
  const { channel, placement, explain } = request;
  const key = customerKey(profile, request);
  const nonce = options.nonce ?? hash32(`${key}\u0000${nowMs}`).toString(36);
  const random = options.random ?? seededRandom(hash32(`${nonce}\u0000${key}`));
  const failures = options.failures ?? createFailureTally();

  // 1. Audience.
  const budget =
    options.ruleBudgetMs === undefined && options.ruleClock === undefined ? undefined : createRuleBudget(options.ruleBudgetMs, options.ruleClock);
  const audience = evaluateAudience(catalog, profile, now, request.context, options.enrichedWith, { ...(budget ? { budget } : {}), failures });
  const vars = createRuleVariables({
    profile,
    audience,
    context: request.context,
    channel,
    ...(placement !== undefined ? { placement } : {}),
    now,
    catalog,
    ...(budget ? { budget } : {}),
    failures,
  });

  // 2. Policies.
  const policies = decisionPolicies(catalog, profile, channel, request.context, vars, now);
  const channelWide = policies.consent !== undefined || policies.quietHours !== undefined || policies.channelCap !== undefined;
  const facts: DecisionFacts = { nowMs, profile, audience, vars, policies };

  const where: ResolvedPlacement = resolvePlacement(catalog, channel, placement);
  const limit = Math.max(1, Math.min(request.limit, where.limit ?? 10, 10));
  // The bandit decides where learning is on and exploring (with exploration 0 the floor is off too: the
  // same inputs give the same answer, API.md §4).
  const bandit = where.learning && catalog.learning.exploration > 0;
  const learner: Learner = {
    on: where.learning,
    context: learningContextOf(catalog, audience),
    channel,
    placement,
    stats: options.learning,
  };
  if (log) {
    log.customerKey = key;
    log.learningContext = learner.context;
    log.audience = audience;
  }
  const assignments = new Assignments(key, nowMs);
  const weightOf = (action: CompiledAction) => where.weights[action.index] ?? action.weight;
  // Nothing learnt (no stats) and no bandit: every action without variants or a model has the prior's propensity.
  const prior = catalog.learning.prior.alpha / (catalog.learning.prior.alpha + catalog.learning.prior.beta);
  const plainPropensity = (options.learning !== undefined && where.learning) || bandit ? undefined : prior;
  let sharedArmsList: (ActionArms | undefined)[] | undefined;
  const rankedOf = (action: CompiledAction, outcome: ExperimentOutcome | undefined): Ranked => {
    let shared: ActionArms | undefined;
    if (options.arms && outcome?.variant === undefined && action.propensityModel === undefined) {
      sharedArmsList ??= options.arms.listFor(catalog, learner);
      shared = sharedArmsList[action.index] ??= armsOf(catalog, action, undefined, audience, learner);
    }
    const { arms, best } = shared ?? armsOf(catalog, action, outcome?.variant, audience, learner);
    // One literal, no spreads: a decision makes one of these per eligible candidate.
    return {
      action,
      variant: best.variant,
      experiment: outcome?.experiment,
      propensity: best.propensity,
      score: best.propensity * action.value * weightOf(action),
      arms: bandit ? arms : undefined,
    };
  };

  // Each arm's content rendered at most once per decision: undefined until asked, null when it failed.
  const scope = templateScope(vars);
  const rendered = new Map<string, Record<string, string | string[]> | null>();
  const renderArm = (action: CompiledAction, variant: string | undefined): Record<string, string | string[]> | undefined => {
    const id = variant === undefined ? action.id : `${action.id}\u0000${variant}`;
    let content = rendered.get(id);
    if (content === undefined) rendered.set(id, (content = render(action, channel, variant, scope, failures) ?? null));
    return content ?? undefined;
  };
  const renders = (action: CompiledAction, variant: string | undefined): boolean => {
    const content = contentFor(action, channel, variant);
    if (!content) return false;
    let known = literalRenders.get(content);
    if (known === undefined) literalRenders.set(content, (known = isLiteral(content) ? (renderArm(action, variant) !== undefined ? 1 : 2) : 0));
    if (known !== 0) return known === 1;
    // Content whose values are short enough to render surely is not rendered until it is served.
    return rendersSurely(content, scope, action.fallbacks) || renderArm(action, variant) !== undefined;
  };

  // 3. Candidates: one pass over the slot; reasons recorded only when explaining.
  const trace: CandidateExplanation[] | undefined = explain ? [] : undefined;
  const eligible: Ranked[] = [];
  let ranking: Iterable<Ranked> = eligible;
  /** The deterministic ranking, whole, when it is explained or logged. */
  let deterministic: Ranked[] | undefined;
  // Without explain, a channel-wide policy drops every candidate: nothing to look at.
  if (!options.degraded && (explain || !channelWide)) {
    const slot = slotFor(catalog, channel, placement);
    // The accelerator (slot.ts) only when no reason is asked for: it settles the accelerated checks.
    const filter = explain ? undefined : slotFilter(slot, catalog, facts);
    const checks = filter ? REMAINING_CHECKS : CANDIDATE_CHECKS;
    const checked: DecisionFacts = filter ? { ...facts, ruleSettled: (index) => ruleSettled(filter, index) } : facts;
    const pool = plainPool(slot.list.length);
    for (let k = 0; k < slot.list.length; k++) {
      let flags = slot.flags[k] as number;
      let drop: Drop | undefined;
      let outcome: ExperimentOutcome | undefined;
      if (filter) {
        if (filteredOut(slot, k, filter)) continue;
        if ((flags & F_RULE) !== 0 && ruleSettled(filter, slot.indices[k] as number)) flags &= ~F_RULE;
      }
      // Without caps, a rule to run or experiments, a candidate the columns kept passes the remaining checks unread.
      if (!filter || (flags & F_OWN_CHECKS) !== 0) {
        const action = slot.list[k] as CompiledAction;
        drop = firstDrop(action, checked, checks);
        if (!drop) {
          outcome = experimentOf(action, assignments);
          drop = outcome?.drop;
          // A variant an experiment fixed is served only where its content fills the placement.
          if (!drop && outcome?.variant !== undefined && !canServePlacement(action, channel, placement, outcome.variant)) {
            drop = { reason: 'content', detail: `variant ${outcome.variant} does not fill ${placement ? `placement ${placement}` : 'a request without a placement'}` };
          }
        }
        if (drop) {
          trace?.push({ actionId: action.id, eligible: false, why: why(drop), reason: drop.reason });
          continue;
        }
      }
      // 4. Rank (the score): a plain candidate is two numbers in the pool, no object.
      if (outcome === undefined && plainPropensity !== undefined && (flags & F_PLAIN) !== 0) {
        pool.add(k, plainPropensity * (slot.value[k] as number) * (slot.weight[k] as number));
      } else {
        eligible.push(rankedOf(slot.list[k] as CompiledAction, outcome));
      }
    }
    // An explanation lists every eligible candidate in rank order; a decision needs only the
    // first few that render: selected one at a time, best first.
    if (bandit && eligible.length > 0) {
      const drawn = banditRanking(catalog, eligible, weightOf, learner, limit, random(), options.policies, log, renders);
      ranking = trace ? [...drawn] : drawn;
    } else if (trace || log) {
      ranking = deterministic = rankAll(eligible, slot, pool, plainPropensity ?? 0);
    } else {
      ranking = inRankOrder(eligible, slot, pool, plainPropensity ?? 0);
    }
  }

  // 5. Render the best ones (the bandit's arms are rendered already); else the fallbacks.
  const actions: ReturnedAction[] = [];
  const unservable = new Set<string>();
  let explored = false;
  /** The index in the deterministic ranking of the first action served. */
  let firstServed = -1;
  let position = -1;
  for (const ranked of ranking) {
    position++;
    if (actions.length >= limit) break;
    const content = renderArm(ranked.action, ranked.variant);
    if (!content) {
      unservable.add(ranked.action.id);
      continue;
    }
    if (actions.length === 0) firstServed = position;
    actions.push({
      actionId: ranked.action.id,
      ...(ranked.variant !== undefined ? { variant: ranked.variant } : {}),
      content,
      score: round(ranked.score),
      propensity: round(ranked.propensity),
      probability: round((ranked.probability ?? 1) * assignmentShare(catalog, ranked.experiment)),
      ...(ranked.experiment ? { experiment: ranked.experiment } : {}),
      reasons: reasonsFor(ranked.action, audience, ranked),
    });
    if (ranked.learning === 'learning:explore') explored = true;
  }

  // Deterministic: the first action that renders is served first (its experiment arm's share of customers),
  // the others never; the render loop rendered every one ranked above it, so this is known exactly.
  if (log && deterministic) {
    const ranked = deterministic;
    log.eligible = ranked.map((r, i) => loggedOf(r.action.id, r.variant, r.score, i === firstServed ? assignmentShare(catalog, r.experiment) : 0));
  }

  const fallback = actions.length === 0;
  if (fallback && !channelWide) {
    for (const action of catalog.fallbacksByChannel[channel]) {
      if (actions.length >= limit) break;
      if (!isFallbackHere(action, channel, placement) || !canServePlacement(action, channel, placement)) continue;
      if (firstDrop(action, facts, FALLBACK_CHECKS)) continue;
      const content = render(action, channel, undefined, scope, failures);
      if (!content) continue;
      actions.push({
        actionId: action.id,
        content,
        score: round(prior * action.value * weightOf(action)),
        propensity: round(prior),
        probability: 1,
        reasons: ['fallback'],
        fallback: true,
      });
    }
  }
  const servedFallback = fallback && actions.length > 0;
  const holdouts = [...assignments.holdouts];
  if (log) log.holdouts = holdouts;

  const decisionId = encodeDecisionId({
    catalogVersion: String(catalog.version),
    channel,
    ...(placement !== undefined ? { placement } : {}),
    issuedAt: now,
    nonce,
    fallback: servedFallback,
    degraded: options.degraded === true,
    ...(audience.persona !== undefined ? { persona: audience.persona } : {}),
    actions: actions.map(
      (a): DecidedAction => ({
        actionId: a.actionId,
        ...(a.variant !== undefined ? { variant: a.variant } : {}),
        ...(a.experiment ? { experiment: a.experiment } : {}),
        propensity: a.propensity,
        probability: a.probability,
      }),
    ),
    holdouts,
    context: learner.context,
    customer: customerTag(key),
  });

  let explanation: Explanation | undefined;
  if (trace) {
    const selected = new Set(servedFallback ? [] : actions.map((a) => a.actionId));
    for (const r of ranking) {
      const id = r.action.id;
      trace.push({
        actionId: id,
        eligible: !unservable.has(id),
        why: unservable.has(id) ? 'content:the template could not be rendered' : 'eligible',
        ...(unservable.has(id) ? { reason: 'content' as const } : {}),
        score: round(r.score),
        propensity: round(r.propensity),
        ...(r.variant !== undefined ? { variant: r.variant } : {}),
        ...(r.experiment ? { experiment: r.experiment } : {}),
        ...(selected.has(id) ? { selected: true } : {}),
      });
    }
    const policyFacts: string[] = [];
    if (options.degraded) policyFacts.push('degraded:the profile could not be read');
    if (policies.consent !== undefined) policyFacts.push(`consent:${policies.consent}`);
    if (policies.quietHours !== undefined) policyFacts.push(`quiet_hours:${policies.quietHours}`);
    if (policies.channelCap !== undefined) policyFacts.push(`channel_cap:${policies.channelCap}`);
    for (const s of policies.suppressions) policyFacts.push(`suppressed:${s.id} (${[...s.tags].join(', ')})`);
    if (placement !== undefined) {
      const named = namedPlacements(catalog.actions, channel);
      if (named.length > 0 && !named.includes(placement)) {
        policyFacts.push(`placement:${placement} is named by no ${channel} content (its placements: ${named.join(', ')}); only content without placements fills it`);
      }
    }
    explanation = { catalogVersion: catalog.version, candidates: trace, policies: policyFacts, explored, holdouts };
  }

  const userId = profile.userId ?? request.userId;
  const anonymousId = userId === undefined ? (profile.anonymousId ?? request.anonymousId) : undefined;
  return {
    decisionId,
    ...(userId !== undefined ? { userId } : {}),
    ...(anonymousId !== undefined ? { anonymousId } : {}),
    channel,
    ...(placement !== undefined ? { placement } : {}),
    actions,
    segments: audience.segments,
    ...(audience.persona !== undefined ? { persona: audience.persona } : {}),
    ...(servedFallback ? { fallback: true as const } : {}),
    ...(options.degraded ? { degraded: true as const } : {}),
    ...(explanation ? { explanation } : {}),
  };
}
