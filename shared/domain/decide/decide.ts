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
  matchesTargeting,
  quietHoursFor,
  reachedActionCap,
  reachedChannelCap,
  requiresConsent,
  resolvePlacement,
  suppressingPolicy,
} from '../catalog/decision.ts';
import { createRuleVariables, evaluateRule } from '../catalog/rules.ts';
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

/** The ranked actions best first (compareRanked's order), each found when asked for: O(n) per action taken. */
function* inRankOrder(ranked: Ranked[]): Generator<Ranked> {
  for (let end = ranked.length; end > 0; end--) {
    let best = 0;
    for (let i = 1; i < end; i++) if (compareRanked(ranked[i] as Ranked, ranked[best] as Ranked) < 0) best = i;
    const chosen = ranked[best] as Ranked;
    ranked[best] = ranked[end - 1] as Ranked;
    ranked[end - 1] = chosen;
    yield chosen;
  }
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

  const audience = evaluateAudience(catalog, profile, now, request.context, options.enrichedWith);
  const vars = createRuleVariables({
    profile,
    audience,
    context: request.context,
    channel,
    ...(placement !== undefined ? { placement } : {}),
    now,
    catalog,
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

  const hasSuppressions = policy.suppressions.length > 0;
  if (!options.degraded && (explain || channelDrop === undefined)) {
    const slot = candidatesFor(catalog, channel, placement);
    // Without explain: every distinct conjunct of the eligibility rules once, and the actions
    // one of them rules out are skipped without being read (same eligible set, see EligibilityIndex).
    const verdicts = explanations || slot.list.length === 0 ? undefined : conjunctVerdicts(catalog.eligibilityIndex, vars);
    for (let k = 0; k < slot.list.length; k++) {
      let ruleHolds = false;
      if (verdicts) {
        const i = slot.indices[k] as number;
        const word = i >>> 5;
        const bit = 1 << (i & 31);
        if (((verdicts.out[word] as number) & bit) !== 0) continue;
        ruleHolds = ((verdicts.allTrue[word] as number) & bit) !== 0;
      }
      const action = slot.list[k] as CompiledAction;
      let outcome: ExperimentOutcome | undefined;
      if (explanations) {
        let drop: Drop | undefined = !isWithinValidity(action, nowMs)
          ? { reason: 'validity' }
          : (policy.consent ?? suppressionOf(action, policy.suppressions) ?? policy.quietHours ?? policy.channelCap);
        drop ??= frequencyCapOf(action, profile, nowMs) ?? ruleDrop(action, vars) ?? targetingOf(action, audience);
        if (!drop) {
          outcome = experimentOf(action, assignments);
          drop = outcome?.drop;
        }
        if (drop) {
          explanations.push({ actionId: action.id, eligible: false, why: why(drop), reason: drop.reason });
          continue;
        }
      } else {
        // Same verdict without building reasons (no allocation per dropped candidate), cheapest
        // checks first, the CEL rule last. The channel-wide checks passed: the loop would not run.
        if (!isWithinValidity(action, nowMs)) continue;
        if (hasSuppressions && suppressingPolicy(action, policy.suppressions)) continue;
        if (action.targeting && !matchesTargeting(action, audience)) continue;
        if (action.caps.length > 0 && reachedActionCap(action, profile, nowMs)) continue;
        if (action.eligibility && !ruleHolds && !evaluateRule(action.eligibility, vars)) continue;
        if (action.experiments.length > 0) {
          outcome = experimentOf(action, assignments);
          if (outcome?.drop) continue;
        }
      }
      if (outcome === undefined && plainPropensity !== undefined && action.variants.length === 0 && action.propensityModel === undefined) {
        // What chooseVariant gives an action without variants or model when nothing is learnt or explored.
        eligible.push({ action, propensity: plainPropensity, score: plainPropensity * action.value * weightOf(action) });
        continue;
      }
      const chosen =
        outcome?.variant !== undefined
          ? {
              variant: outcome.variant,
              propensity: propensityOf(catalog, action, outcome.variant, audience, learner, options.learning),
            }
          : chooseVariant(catalog, action, channel, audience, learner, options.learning);
      eligible.push({
        action,
        ...(chosen.variant !== undefined ? { variant: chosen.variant } : {}),
        ...(outcome?.experiment ? { experiment: outcome.experiment } : {}),
        propensity: chosen.propensity,
        score: chosen.propensity * action.value * weightOf(action),
      });
    }
  }
  // The explanation lists every eligible action in rank order; a decision needs only the first
  // few that render (selected one at a time, same order as the sort).
  if (explanations) eligible.sort(compareRanked);
  const ranking = explanations ? eligible.values() : inRankOrder(eligible);

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
    issuedAt: now.toISOString(),
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

/** The candidates of a slot, with their action indexes (the eligibility bitsets are by index). */
interface Slot {
  readonly list: readonly CompiledAction[];
  readonly indices: Int32Array;
}

const candidateCache = new WeakMap<CompiledCatalog, Map<string, Slot>>();

/**
 * The actions that compete on a channel/placement: content for it, and not
 * in the fallback role there (a fallback serves only when nothing else
 * does). Computed once per catalog version and slot.
 */
function candidatesFor(catalog: CompiledCatalog, channel: Channel, placement: string | undefined): Slot {
  let bySlot = candidateCache.get(catalog);
  if (!bySlot) {
    bySlot = new Map();
    candidateCache.set(catalog, bySlot);
  }
  const key = `${channel}\u0000${placement ?? ''}`;
  let slot = bySlot.get(key);
  if (!slot) {
    const list = catalog.actionsByChannel[channel].filter(
      (action) => canServePlacement(action, channel, placement) && !(action.fallbackRoles.length > 0 && isFallbackHere(action, channel, placement)),
    );
    slot = { list, indices: Int32Array.from(list, (a) => a.index) };
    // Placements are free text from callers: bound the cache.
    if (bySlot.size >= 1_000) bySlot.clear();
    bySlot.set(key, slot);
  }
  return slot;
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
    try {
      value = (index.conjuncts[c] as (vars: RuleVariables) => unknown)(vars);
    } catch {
      value = undefined;
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

function isFallbackHere(action: CompiledAction, channel: Channel, placement: string | undefined): boolean {
  return action.fallbackRoles.some((r) => r.channel === channel && (r.placement === undefined || r.placement === placement));
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
