/**
 * The next best action: a pure function of (catalog, profile, request, now).
 *
 * 1. Audience: segments, persona and scores re-evaluated for this instant
 *    and context (the stored ones may be seconds old).
 * 2. Decision-wide policies, once: consent, suppressed tags, quiet hours,
 *    channel caps.
 * 3. Candidates: the actions with content for the channel and placement,
 *    each dropped at the first failed check, in this order — validity,
 *    consent, suppression, quiet hours, channel cap, frequency cap,
 *    eligibility rule, targeting, experiment (holdout or another arm).
 *    Without `explain` the cheap checks run before the CEL rule: the set of
 *    eligible actions is the same, only the first reason would differ.
 * 4. Arbitration: score = propensity × value × weight, priority then
 *    catalog order break ties, top-k per placement.
 * 5. Content of the winners only, rendered from compiled templates.
 * 6. No winner: the channel/placement's fallback actions, which still
 *    respect consent, suppression, quiet hours, channel caps and validity.
 *
 * Randomness (Thompson sampling when exploring) comes from `options.random`
 * or a generator seeded by the decision's nonce and customer: with
 * exploration off the same inputs give the same decision.
 */
import type { Channel } from '../channels.ts';
import { emptyProfileView, type ProfileView } from '../profile/view.ts';
import type {
  Audience,
  CompiledAction,
  CompiledCatalog,
  CompiledExperiment,
  CompiledRule,
  CompiledSuppression,
  EligibilityIndex,
  ResolvedPlacement,
  RuleVariables,
} from '../catalog/compiled.ts';
// Straight from the modules (not the catalog index): the decide bundle must not pull the loader (YAML, zod).
import { evaluateAudience } from '../catalog/audience.ts';
import {
  activeSuppressions,
  canServePlacement,
  contentFor,
  hasConsent,
  isWithinValidity,
  quietHoursFor,
  reachedActionCap,
  reachedChannelCap,
  requiresConsent,
  resolvePlacement,
  suppressingPolicy,
} from '../catalog/decision.ts';
import { budgetAllows, createRuleBudget, createRuleVariables, evaluateRule } from '../catalog/rules.ts';
import {
  F_CAPS,
  F_EXPERIMENTS,
  F_PLAIN,
  F_RULE,
  F_TAGS,
  F_TARGETING,
  audienceBits,
  isFallbackHere,
  isSuppressed,
  matchesTargetingBits,
  slotFor,
  suppressedTagMask,
  type Slot,
} from './slot.ts';
import { renderContent, templateScope, type TemplateScope } from '../catalog/template.ts';
import { encodeDecisionId, type DecidedAction } from './decision-id.ts';
import { CONTROL_ARM, assignArm } from './experiments.ts';
import { hash32, sampleBeta, seededRandom, type Random } from './random.ts';
import type {
  CandidateExplanation,
  Decision,
  DecideRequest,
  DropReason,
  Explanation,
  LearningStats,
  ReturnedAction,
} from './types.ts';

export interface DecideOptions {
  /** Outcome statistics for learning; absent = the catalog's Beta prior. */
  readonly learning?: LearningStats;
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
   * run and counts as a runtime failure (`rule:error`, takeRuleDeadlineCount).
   * Absent (and no `ruleClock`): no deadline, the decision depends on its
   * inputs only.
   */
  readonly ruleBudgetMs?: number;
  /** The clock of the rule budget (ms, monotonic); default performance.now. With it alone, the budget is DEFAULT_RULE_BUDGET_MS. */
  readonly ruleClock?: () => number;
}

/** An empty profile: an unknown customer is a new anonymous one, not an error. */
export const emptyProfile = emptyProfileView;

/** The key experiments hash and learning seeds on: the known id, else the anonymous one. */
export function customerKey(profile: ProfileView, request: Pick<DecideRequest, 'userId' | 'anonymousId'>): string {
  return profile.userId ?? request.userId ?? profile.anonymousId ?? request.anonymousId ?? '';
}

interface Drop {
  readonly reason: DropReason;
  readonly detail?: string;
}

interface Ranked {
  readonly action: CompiledAction;
  readonly variant?: string;
  readonly experiment?: { readonly id: string; readonly arm: string };
  readonly propensity: number;
  readonly score: number;
}

const isZoneLike = (zone: unknown): zone is string => typeof zone === 'string' && zone.length > 0 && zone.length <= 64;

/** Decision-wide policy facts, evaluated once. */
interface ChannelPolicy {
  readonly consent?: Drop;
  readonly quietHours?: Drop;
  readonly channelCap?: Drop;
  readonly suppressions: readonly CompiledSuppression[];
}

function channelPolicy(
  catalog: CompiledCatalog,
  profile: ProfileView,
  channel: Channel,
  context: Readonly<Record<string, unknown>>,
  vars: RuleVariables,
  now: Date,
): ChannelPolicy {
  const consent: Drop | undefined =
    requiresConsent(catalog, channel) && !hasConsent(profile, channel) ? { reason: 'consent', detail: channel } : undefined;
  // The device's zone (context.timezone) is the freshest; then the profile's; then the policy's default.
  const zone = isZoneLike(context.timezone) ? context.timezone : profile.timezone;
  const quiet = catalog.policies.quietHours.length > 0 ? quietHoursFor(catalog, channel, now, zone) : undefined;
  const cap = reachedChannelCap(catalog, profile, channel, now.getTime());
  return {
    ...(consent ? { consent } : {}),
    ...(quiet ? { quietHours: { reason: 'quiet_hours', detail: quiet.id } } : {}),
    ...(cap ? { channelCap: { reason: 'channel_cap', detail: `${cap.id} ${cap.label}` } } : {}),
    suppressions: catalog.policies.suppressions.length > 0 ? activeSuppressions(catalog, vars) : [],
  };
}

function suppressionOf(action: CompiledAction, active: readonly CompiledSuppression[]): Drop | undefined {
  if (active.length === 0) return undefined;
  const policy = suppressingPolicy(action, active);
  return policy ? { reason: 'suppressed', detail: policy.id } : undefined;
}

function frequencyCapOf(action: CompiledAction, profile: ProfileView, nowMs: number): Drop | undefined {
  if (action.caps.length === 0) return undefined;
  const cap = reachedActionCap(action, profile, nowMs);
  return cap ? { reason: 'frequency_cap', detail: cap.label } : undefined;
}

function targetingOf(action: CompiledAction, audience: Audience): Drop | undefined {
  const targeting = action.targeting;
  if (!targeting) return undefined;
  if (targeting.segments && !targeting.segments.some((s) => audience.segmentSet.has(s))) {
    return { reason: 'targeting', detail: `segments ${targeting.segments.join('|')}` };
  }
  if (targeting.excludeSegments) {
    const excluded = targeting.excludeSegments.find((s) => audience.segmentSet.has(s));
    if (excluded !== undefined) return { reason: 'targeting', detail: `excluded segment ${excluded}` };
  }
  if (targeting.personas && (audience.persona === undefined || !targeting.personas.includes(audience.persona))) {
    return { reason: 'targeting', detail: `personas ${targeting.personas.join('|')}` };
  }
  return undefined;
}

/** Experiment arms of this customer, computed once per experiment per decision. */
class Assignments {
  private readonly arms = new Map<string, string>();
  readonly holdouts = new Set<string>();
  constructor(
    private readonly key: string,
    private readonly nowMs: number,
  ) {}

  armOf(experiment: CompiledExperiment): string | undefined {
    if (!experiment.running || this.nowMs < experiment.validFrom || this.nowMs >= experiment.validTo) return undefined;
    let arm = this.arms.get(experiment.id);
    if (arm === undefined) {
      arm = assignArm(experiment, this.key);
      this.arms.set(experiment.id, arm);
    }
    return arm;
  }
}

interface ExperimentOutcome {
  readonly drop?: Drop;
  readonly variant?: string;
  readonly experiment?: { readonly id: string; readonly arm: string };
}

function experimentOf(action: CompiledAction, assignments: Assignments): ExperimentOutcome | undefined {
  if (action.experiments.length === 0) return undefined;
  let variant: string | undefined;
  let tagged: { id: string; arm: string } | undefined;
  for (const experiment of action.experiments) {
    const arm = assignments.armOf(experiment);
    if (arm === undefined) continue;
    if (arm === CONTROL_ARM) {
      assignments.holdouts.add(experiment.id);
      return { drop: { reason: 'experiment', detail: `${experiment.id} holdout` } };
    }
    const chosen = experiment.arms.find((a) => a.id === arm);
    if (experiment.kind === 'actions') {
      if (chosen?.action !== action.id) return { drop: { reason: 'experiment', detail: `${experiment.id} arm ${arm}` } };
      tagged ??= { id: experiment.id, arm };
    } else if (experiment.action === action.id && chosen?.variant !== undefined && variant === undefined) {
      variant = chosen.variant;
      tagged ??= { id: experiment.id, arm };
    }
  }
  if (!tagged) return undefined;
  return { ...(variant !== undefined ? { variant } : {}), experiment: tagged };
}

interface Learner {
  readonly on: boolean;
  readonly explore: boolean;
  readonly context: string | undefined;
  readonly random: Random;
}

function propensityOf(
  catalog: CompiledCatalog,
  action: CompiledAction,
  variant: string | undefined,
  audience: Audience,
  learner: Learner,
  stats: LearningStats | undefined,
): number {
  const { prior, floor } = catalog.learning;
  if (action.propensityModel !== undefined) {
    const score = audience.scores[action.propensityModel];
    if (typeof score === 'number' && Number.isFinite(score)) return Math.min(1, Math.max(floor, score));
  }
  if (!learner.on) return prior.alpha / (prior.alpha + prior.beta);
  const arm =
    (learner.context !== undefined ? stats?.get(action.id, variant, learner.context) : undefined) ??
    stats?.get(action.id, variant, undefined);
  const trials = arm ? Math.max(0, arm.impressions) : 0;
  const successes = arm ? Math.min(Math.max(0, arm.successes), trials) : 0;
  const alpha = prior.alpha + successes;
  const beta = prior.beta + (trials - successes);
  const p = learner.explore ? sampleBeta(alpha, beta, learner.random) : alpha / (alpha + beta);
  return Math.max(floor, Math.min(1, p));
}

/** Variant to serve when no experiment fixed it: the best learnt variant with content on the channel. */
function chooseVariant(
  catalog: CompiledCatalog,
  action: CompiledAction,
  channel: Channel,
  audience: Audience,
  learner: Learner,
  stats: LearningStats | undefined,
): { variant?: string; propensity: number } {
  let best: { variant?: string; propensity: number } | undefined;
  for (const variant of action.variants) {
    if (!variant.content[channel]) continue;
    const propensity = propensityOf(catalog, action, variant.id, audience, learner, stats);
    if (!best || propensity > best.propensity) best = { variant: variant.id, propensity };
  }
  return best ?? { propensity: propensityOf(catalog, action, undefined, audience, learner, stats) };
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

function reasonsFor(action: CompiledAction, audience: Audience, ranked: Ranked, explored: boolean): string[] {
  const reasons: string[] = [];
  const targeting = action.targeting;
  if (targeting?.segments) for (const s of targeting.segments) if (audience.segmentSet.has(s)) reasons.push(`segment:${s}`);
  if (targeting?.personas && audience.persona !== undefined) reasons.push(`persona:${audience.persona}`);
  if (action.eligibility) reasons.push('rule:eligible');
  if (ranked.experiment) reasons.push(`experiment:${ranked.experiment.id}:${ranked.experiment.arm}`);
  if (action.propensityModel !== undefined) reasons.push(`model:${action.propensityModel}`);
  else if (explored) reasons.push('learning:explore');
  return reasons;
}

/** Push content as a ready payload: exactly `{title, body, deepLink, imageUrl?}`. */
export function pushPayload(content: Readonly<Record<string, string | string[]>>): Record<string, string> {
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
): Record<string, string | string[]> | undefined {
  const content = contentFor(action, channel, variant);
  if (!content) return undefined;
  try {
    const rendered = renderContent(content, scope, action.fallbacks);
    return channel === 'push' ? pushPayload(rendered) : rendered;
  } catch {
    return undefined;
  }
}

export function decide(
  catalog: CompiledCatalog,
  profile: ProfileView,
  request: DecideRequest,
  now: Date,
  options: DecideOptions = {},
): Decision {
  const nowMs = now.getTime();
  const { channel, placement, explain } = request;
  const key = customerKey(profile, request);
  const nonce = options.nonce ?? hash32(`${key}\u0000${nowMs}`).toString(36);
  const random = options.random ?? seededRandom(hash32(`${nonce}\u0000${key}`));

  const budget =
    options.ruleBudgetMs === undefined && options.ruleClock === undefined ? undefined : createRuleBudget(options.ruleBudgetMs, options.ruleClock);
  const audience = evaluateAudience(catalog, profile, now, request.context, options.enrichedWith, budget);
  const vars = createRuleVariables({
    profile,
    audience,
    context: request.context,
    channel,
    ...(placement !== undefined ? { placement } : {}),
    now,
    catalog,
    ...(budget ? { budget } : {}),
  });
  const where: ResolvedPlacement = resolvePlacement(catalog, channel, placement);
  const limit = Math.max(1, Math.min(request.limit, where.limit ?? 10, 10));
  const policy = channelPolicy(catalog, profile, channel, request.context, vars, now);
  const channelDrop = policy.consent ?? policy.quietHours ?? policy.channelCap;

  const explored = where.learning && catalog.learning.exploration > 0 && random() < catalog.learning.exploration;
  const contextBy = catalog.learning.contextBy;
  const learner: Learner = {
    on: where.learning,
    explore: explored,
    context: contextBy === 'persona' ? audience.persona : contextBy === 'segment' ? audience.segments[0] : undefined,
    random,
  };
  const assignments = new Assignments(key, nowMs);
  const explanations: CandidateExplanation[] | undefined = explain ? [] : undefined;
  const eligible: Ranked[] = [];
  const weightOf = (action: CompiledAction) => where.weights[action.index] ?? action.weight;
  // Nothing learnt (no stats) and no exploration: every action without variants or a model has the prior's propensity.
  const prior = catalog.learning.prior.alpha / (catalog.learning.prior.alpha + catalog.learning.prior.beta);
  const plainPropensity =
    options.learning !== undefined || learner.explore ? undefined : learner.on ? Math.max(catalog.learning.floor, Math.min(1, prior)) : prior;

  // What chooseVariant gives an action without variants or model when nothing is learnt or explored.
  const plainRanked = (action: CompiledAction, propensity: number): Ranked => ({
    action,
    propensity,
    score: propensity * action.value * weightOf(action),
  });
  const chosenRanked = (action: CompiledAction, outcome: ExperimentOutcome | undefined): Ranked => {
    const chosen =
      outcome?.variant !== undefined
        ? {
            variant: outcome.variant,
            propensity: propensityOf(catalog, action, outcome.variant, audience, learner, options.learning),
          }
        : chooseVariant(catalog, action, channel, audience, learner, options.learning);
    return {
      action,
      ...(chosen.variant !== undefined ? { variant: chosen.variant } : {}),
      ...(outcome?.experiment ? { experiment: outcome.experiment } : {}),
      propensity: chosen.propensity,
      score: chosen.propensity * action.value * weightOf(action),
    };
  };

  let ranking: Iterable<Ranked> = eligible;
  if (!options.degraded && (explain || channelDrop === undefined)) {
    const slot = slotFor(catalog, channel, placement);
    const n = slot.list.length;
    if (explanations) {
      for (let k = 0; k < n; k++) {
        const action = slot.list[k] as CompiledAction;
        let drop: Drop | undefined = !isWithinValidity(action, nowMs)
          ? { reason: 'validity' }
          : (policy.consent ?? suppressionOf(action, policy.suppressions) ?? policy.quietHours ?? policy.channelCap);
        drop ??= frequencyCapOf(action, profile, nowMs) ?? ruleDrop(action, vars) ?? targetingOf(action, audience);
        let outcome: ExperimentOutcome | undefined;
        if (!drop) {
          outcome = experimentOf(action, assignments);
          drop = outcome?.drop;
        }
        if (drop) {
          explanations.push({ actionId: action.id, eligible: false, why: why(drop), reason: drop.reason });
          continue;
        }
        const plain = outcome === undefined && plainPropensity !== undefined && action.variants.length === 0 && action.propensityModel === undefined;
        eligible.push(plain ? plainRanked(action, plainPropensity) : chosenRanked(action, outcome));
      }
      // The explanation lists every eligible action in rank order.
      eligible.sort(compareRanked);
    } else if (n > 0) {
      // Same verdicts as the explained path without building reasons, from the slot's columns
      // (see slot.ts): cheapest checks first, an action object read only when its own check
      // applies. Every distinct conjunct of the eligibility rules is evaluated once, and the
      // actions one of them rules out are skipped (same eligible set, see EligibilityIndex).
      // The channel-wide checks passed: the loop would not run otherwise.
      const verdicts = conjunctVerdicts(catalog.eligibilityIndex, vars);
      const suppressed = suppressedTagMask(slot, policy.suppressions);
      const bits = audienceBits(slot, audience);
      const contacts = profile.contacts;
      let anyContacts = false;
      for (const _ in contacts) {
        anyContacts = true;
        break;
      }
      const pool = plainPool(n);
      for (let k = 0; k < n; k++) {
        let ruleHolds = false;
        if (verdicts) {
          const i = slot.indices[k] as number;
          const word = i >>> 5;
          const bit = 1 << (i & 31);
          if (((verdicts.out[word] as number) & bit) !== 0) continue;
          ruleHolds = ((verdicts.allTrue[word] as number) & bit) !== 0;
        }
        if (!(nowMs >= (slot.validFrom[k] as number) && nowMs < (slot.validTo[k] as number))) continue;
        const flags = slot.flags[k] as number;
        if (suppressed && (flags & F_TAGS) !== 0 && isSuppressed(slot, k, suppressed)) continue;
        if ((flags & F_TARGETING) !== 0 && !matchesTargetingBits(slot, k, flags, bits)) continue;
        if (anyContacts && (flags & F_CAPS) !== 0 && reachedActionCap(slot.list[k] as CompiledAction, profile, nowMs)) continue;
        if ((flags & F_RULE) !== 0 && !ruleHolds && !evaluateRule((slot.list[k] as CompiledAction).eligibility as CompiledRule, vars)) continue;
        let outcome: ExperimentOutcome | undefined;
        if ((flags & F_EXPERIMENTS) !== 0) {
          outcome = experimentOf(slot.list[k] as CompiledAction, assignments);
          if (outcome?.drop) continue;
        }
        if (outcome === undefined && plainPropensity !== undefined && (flags & F_PLAIN) !== 0) {
          pool.add(k, plainPropensity * (slot.value[k] as number) * (slot.weight[k] as number));
          continue;
        }
        eligible.push(chosenRanked(slot.list[k] as CompiledAction, outcome));
      }
      // A decision needs only the first few that render: selected one at a time, in the sort's order.
      ranking = inRankOrder(eligible, slot, pool, plainPropensity ?? 0);
    }
  }

  const scope = templateScope(vars);
  const actions: ReturnedAction[] = [];
  const unservable = new Set<string>();
  for (const ranked of ranking) {
    if (actions.length >= limit) break;
    const content = render(ranked.action, channel, ranked.variant, scope);
    if (!content) {
      unservable.add(ranked.action.id);
      continue;
    }
    actions.push({
      actionId: ranked.action.id,
      ...(ranked.variant !== undefined ? { variant: ranked.variant } : {}),
      content,
      score: round(ranked.score),
      propensity: round(ranked.propensity),
      ...(ranked.experiment ? { experiment: ranked.experiment } : {}),
      reasons: reasonsFor(ranked.action, audience, ranked, explored),
    });
  }

  const fallback = actions.length === 0;
  if (fallback && channelDrop === undefined) {
    // Fallbacks ignore targeting, rules and frequency caps, never the customer's protection:
    // validity, consent, suppression, quiet hours and channel caps (checked above) still hold.
    for (const action of catalog.fallbacksByChannel[channel]) {
      if (actions.length >= limit) break;
      if (!isFallbackHere(action, channel, placement)) continue;
      if (!canServePlacement(action, channel, placement) || !isWithinValidity(action, nowMs)) continue;
      if (suppressionOf(action, policy.suppressions)) continue;
      const content = render(action, channel, undefined, scope);
      if (!content) continue;
      actions.push({
        actionId: action.id,
        content,
        score: round(prior * action.value * weightOf(action)),
        propensity: round(prior),
        reasons: ['fallback'],
        fallback: true,
      });
    }
  }
  const servedFallback = fallback && actions.length > 0;
  const holdouts = [...assignments.holdouts];

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
      }),
    ),
    holdouts,
  });

  let explanation: Explanation | undefined;
  if (explanations) {
    const selected = new Set(servedFallback ? [] : actions.map((a) => a.actionId));
    for (const r of eligible) {
      const id = r.action.id;
      explanations.push({
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
    const policies: string[] = [];
    if (options.degraded) policies.push('degraded:the profile could not be read');
    if (policy.consent) policies.push(why(policy.consent));
    if (policy.quietHours) policies.push(why(policy.quietHours));
    if (policy.channelCap) policies.push(why(policy.channelCap));
    for (const s of policy.suppressions) policies.push(`suppressed:${s.id} (${[...s.tags].join(', ')})`);
    explanation = { catalogVersion: catalog.version, candidates: explanations, policies, explored, holdouts };
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

interface ConjunctVerdicts {
  /** Actions whose eligibility rule has a false conjunct: not eligible. */
  readonly out: Uint32Array;
  /** Actions whose rule is only indexed conjuncts, all true: eligible by their rule. */
  readonly allTrue: Uint32Array;
}

/**
 * Every distinct conjunct of the catalog's eligibility rules, once. A
 * conjunct that is false rules its actions out (CEL's `&&` is false when
 * one side is, errors included); one that is true is a step towards "all
 * true"; anything else (a missing field, a value only cel-js handles)
 * leaves the verdict to the rule itself, evaluated as usual. Conjuncts are
 * pure: evaluating one a rule would have short-circuited changes nothing.
 */
function conjunctVerdicts(index: EligibilityIndex | undefined, vars: RuleVariables): ConjunctVerdicts | undefined {
  if (!index) return undefined;
  const out = new Uint32Array(index.words);
  const unsure = new Uint32Array(index.words);
  for (let c = 0; c < index.conjuncts.length; c++) {
    let value: unknown;
    // Past the deadline a conjunct decides nothing: its rules meet the deadline themselves (evaluateRule).
    if (!budgetAllows(vars, index.costs?.[c])) value = undefined;
    else {
      try {
        value = (index.conjuncts[c] as (vars: RuleVariables) => unknown)(vars);
      } catch {
        value = undefined;
      }
    }
    if (value === true) continue;
    const target = value === false ? out : unsure;
    const actions = index.actionsOf[c] as Uint32Array;
    for (let w = 0; w < index.words; w++) target[w] = (target[w] as number) | (actions[w] as number);
  }
  const allTrue = new Uint32Array(index.words);
  for (let w = 0; w < index.words; w++) {
    allTrue[w] = (index.complete[w] as number) & ~(out[w] as number) & ~(unsure[w] as number);
  }
  return { out, allTrue };
}


/** The eligibility verdict with its explanation: a rule that failed on this profile says why. */
function ruleDrop(action: CompiledAction, vars: RuleVariables): Drop | undefined {
  const rule = action.eligibility;
  if (!rule) return undefined;
  const failuresBefore = rule.failures;
  if (evaluateRule(rule, vars)) return undefined;
  const failed = rule.failures > failuresBefore && rule.lastError !== undefined;
  return { reason: 'rule', detail: failed ? `error ${rule.lastError}` : 'not eligible' };
}
