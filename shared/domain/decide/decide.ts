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
 *    break ties.
 * 5. Render the best ones, top-k; a template that fails makes that content
 *    unservable. No winner: the channel/placement's fallback actions, which
 *    still pass the checks that protect the customer (checks.ts
 *    `FALLBACK_CHECKS`: validity, consent, suppression, quiet hours,
 *    channel caps).
 *
 * Randomness (Thompson sampling when exploring) comes from `options.random`
 * or a generator seeded by the decision's nonce and customer: with
 * exploration off the same inputs give the same decision.
 */
import type { Channel } from '../channels.ts';
import { emptyProfileView, type ProfileView } from '../profile/view.ts';
import type { Audience, CompiledAction, CompiledCatalog, FailureTally, ResolvedPlacement } from '../catalog/compiled.ts';
// Straight from the modules (no barrel): the decide bundle must not pull the loader (YAML, zod).
import { evaluateAudience } from '../catalog/audience.ts';
import { createFailureTally, createRuleBudget, createRuleVariables } from '../catalog/rules.ts';
import { renderContent, templateScope, type TemplateScope } from '../catalog/template.ts';
import { CANDIDATE_CHECKS, FALLBACK_CHECKS, REMAINING_CHECKS, firstDrop, type DecisionFacts, type Drop } from './checks.ts';
import { encodeDecisionId, type DecidedAction } from './decision-id.ts';
import { Assignments, experimentOf, type ExperimentOutcome } from './experiments.ts';
import { canServePlacement, contentFor, decisionPolicies, fillsPlacement, isFallbackHere, resolvePlacement } from './policies.ts';
import { hash32, sampleBeta, seededRandom, type Random } from './random.ts';
import { F_OWN_CHECKS, F_PLAIN, F_RULE, filteredOut, ruleSettled, slotFilter, slotFor, type Slot } from './slot.ts';
import type { CandidateExplanation, Decision, DecideRequest, Explanation, LearningStats, ReturnedAction } from './types.ts';

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
 * The key experiments hash and learning seeds on: the profile's experiment
 * key (the first key the customer was known by, kept through logins and
 * merges), else the known id, else the anonymous one.
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

/**
 * Variant to serve when no experiment fixed it: the best learnt variant whose
 * content on the channel fills the placement (policies.ts `fillsPlacement`).
 */
function chooseVariant(
  catalog: CompiledCatalog,
  action: CompiledAction,
  channel: Channel,
  placement: string | undefined,
  audience: Audience,
  learner: Learner,
  stats: LearningStats | undefined,
): { variant?: string; propensity: number } {
  let best: { variant?: string; propensity: number } | undefined;
  for (const variant of action.variants) {
    if (!fillsPlacement(variant.content[channel], placement)) continue;
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
  const explored = where.learning && catalog.learning.exploration > 0 && random() < catalog.learning.exploration;
  const contextBy = catalog.learning.contextBy;
  const learner: Learner = {
    on: where.learning,
    explore: explored,
    context: contextBy === 'persona' ? audience.persona : contextBy === 'segment' ? audience.segments[0] : undefined,
    random,
  };
  const assignments = new Assignments(key, nowMs);
  const weightOf = (action: CompiledAction) => where.weights[action.index] ?? action.weight;
  // Nothing learnt (no stats) and no exploration: every action without variants or a model has the prior's propensity.
  const prior = catalog.learning.prior.alpha / (catalog.learning.prior.alpha + catalog.learning.prior.beta);
  const plainPropensity =
    options.learning !== undefined || learner.explore ? undefined : learner.on ? Math.max(catalog.learning.floor, Math.min(1, prior)) : prior;
  const rankedOf = (action: CompiledAction, outcome: ExperimentOutcome | undefined): Ranked => {
    const chosen =
      outcome?.variant !== undefined
        ? { variant: outcome.variant, propensity: propensityOf(catalog, action, outcome.variant, audience, learner, options.learning) }
        : chooseVariant(catalog, action, channel, placement, audience, learner, options.learning);
    return {
      action,
      ...(chosen.variant !== undefined ? { variant: chosen.variant } : {}),
      ...(outcome?.experiment ? { experiment: outcome.experiment } : {}),
      propensity: chosen.propensity,
      score: chosen.propensity * action.value * weightOf(action),
    };
  };

  // 3. Candidates: one pass over the slot; reasons recorded only when explaining.
  const trace: CandidateExplanation[] | undefined = explain ? [] : undefined;
  const eligible: Ranked[] = [];
  let ranking: Iterable<Ranked> = eligible;
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
    ranking = trace ? rankAll(eligible, slot, pool, plainPropensity ?? 0) : inRankOrder(eligible, slot, pool, plainPropensity ?? 0);
  }

  // 5. Render the best ones; else the fallbacks.
  const scope = templateScope(vars);
  const actions: ReturnedAction[] = [];
  const unservable = new Set<string>();
  for (const ranked of ranking) {
    if (actions.length >= limit) break;
    const content = render(ranked.action, channel, ranked.variant, scope, failures);
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
