/**
 * The per-candidate checks of a decision, each defined once, in the order
 * a candidate meets them: the first that fails is why it is dropped
 * (`<reason>:<detail>` in an explanation). decide runs this table for every
 * candidate; experiments (holdout, another arm) come after it
 * (experiments.ts `experimentOf`), because they record the customer's arms.
 *
 * - `protects`: the customer's protection, which fallbacks respect too
 *   (fallbacks skip targeting, rules and frequency caps).
 * - `decisionWide`: the same verdict for every candidate (a policy of the
 *   channel): without `explain`, a decision where one fails looks at no
 *   candidate at all.
 * - `accelerated`: settled for a whole slot from its columns when the
 *   decision is not explained (slot.ts `filteredOut`, held equal to these
 *   checks by test/unit/decide-slot.test.ts); the table still defines them.
 */
import type { Audience, CompiledAction, CompiledCap, RuleVariables } from '../catalog/compiled.ts';
import { evaluateRule } from '../catalog/rules.ts';
import type { ProfileView } from '../profile/view.ts';
import { countSince, type DecisionPolicies } from './policies.ts';
import type { DropReason } from './types.ts';

/** What the checks read: the decision's instant, customer, audience, rule variables and policies. */
export interface DecisionFacts {
  readonly nowMs: number;
  readonly profile: ProfileView;
  readonly audience: Audience;
  readonly vars: RuleVariables;
  readonly policies: DecisionPolicies;
  /**
   * An accelerator of the rule check (slot.ts `ruleSettled`): true when the
   * action's rule is known to hold without running it (every conjunct
   * true). Absent: run the rule.
   */
  readonly ruleSettled?: (actionIndex: number) => boolean;
}

export interface CandidateCheck {
  readonly reason: DropReason;
  readonly protects: boolean;
  readonly decisionWide: boolean;
  readonly accelerated: boolean;
  /** undefined: the action passes; else the detail of why not ('' for none). */
  readonly check: (action: CompiledAction, facts: DecisionFacts) => string | undefined;
}

/** A dropped candidate: the failed check and its detail. */
export interface Drop {
  readonly reason: DropReason;
  readonly detail?: string;
}

/** The action's validity window holds now. */
export function isWithinValidity(item: { readonly validFrom: number; readonly validTo: number }, nowMs: number): boolean {
  return nowMs >= item.validFrom && nowMs < item.validTo;
}

/** The first active suppression policy that hits one of the action's tags: its id. */
function suppressedBy(action: CompiledAction, facts: DecisionFacts): string | undefined {
  const active = facts.policies.suppressions;
  for (const s of active) for (const tag of action.tags) if (s.tags.has(tag)) return s.id;
  return undefined;
}

/** The action's first frequency cap the customer has reached (impressions of the action), if any. */
export function reachedActionCap(action: CompiledAction, profile: Pick<ProfileView, 'contacts'>, nowMs: number): CompiledCap | undefined {
  if (action.caps.length === 0) return undefined;
  const contacts = profile.contacts && Object.hasOwn(profile.contacts, action.id) ? profile.contacts[action.id] : undefined;
  if (!contacts || contacts.impressions.length === 0) return undefined;
  for (const cap of action.caps) if (countSince(contacts.impressions, nowMs, cap.windowMs) >= cap.max) return cap;
  return undefined;
}

/** The eligibility rule: a rule that failed at run time says why (counted in the decision's FailureTally). */
function ruleFails(action: CompiledAction, facts: DecisionFacts): string | undefined {
  const rule = action.eligibility;
  if (!rule || facts.ruleSettled?.(action.index)) return undefined;
  const tally = facts.vars.$failures;
  const before = tally.rules;
  if (evaluateRule(rule, facts.vars)) return undefined;
  return tally.rules > before && tally.lastRule ? `error ${tally.lastRule.message}` : 'not eligible';
}

/** Segment/persona targeting against the decision's audience: one of `segments`, none of `excludeSegments`, one of `personas`. */
function targetingFails(action: CompiledAction, facts: DecisionFacts): string | undefined {
  const targeting = action.targeting;
  if (!targeting) return undefined;
  const { segmentSet, persona } = facts.audience;
  if (targeting.segments && !targeting.segments.some((s) => segmentSet.has(s))) return `segments ${targeting.segments.join('|')}`;
  if (targeting.excludeSegments) {
    const excluded = targeting.excludeSegments.find((s) => segmentSet.has(s));
    if (excluded !== undefined) return `excluded segment ${excluded}`;
  }
  if (targeting.personas && (persona === undefined || !targeting.personas.includes(persona))) return `personas ${targeting.personas.join('|')}`;
  return undefined;
}

/** Every per-candidate check, in the order of DROP_REASONS (experiment and content come after). */
export const CANDIDATE_CHECKS: readonly CandidateCheck[] = Object.freeze([
  { reason: 'validity', protects: true, decisionWide: false, accelerated: true, check: (a, f) => (isWithinValidity(a, f.nowMs) ? undefined : '') },
  { reason: 'consent', protects: true, decisionWide: true, accelerated: false, check: (_a, f) => f.policies.consent },
  { reason: 'suppressed', protects: true, decisionWide: false, accelerated: true, check: suppressedBy },
  { reason: 'quiet_hours', protects: true, decisionWide: true, accelerated: false, check: (_a, f) => f.policies.quietHours },
  { reason: 'channel_cap', protects: true, decisionWide: true, accelerated: false, check: (_a, f) => f.policies.channelCap },
  { reason: 'frequency_cap', protects: false, decisionWide: false, accelerated: false, check: (a, f) => reachedActionCap(a, f.profile, f.nowMs)?.label },
  { reason: 'rule', protects: false, decisionWide: false, accelerated: false, check: ruleFails },
  { reason: 'targeting', protects: false, decisionWide: false, accelerated: true, check: targetingFails },
] satisfies CandidateCheck[]);

/** The checks a fallback meets: the customer's protection only. */
export const FALLBACK_CHECKS: readonly CandidateCheck[] = CANDIDATE_CHECKS.filter((c) => c.protects);
/**
 * The checks left to run on the candidates a slot's columns kept (slot.ts
 * `filteredOut`) in a decision no decision-wide check failed: frequency
 * caps and the eligibility rule.
 */
export const REMAINING_CHECKS: readonly CandidateCheck[] = CANDIDATE_CHECKS.filter((c) => !c.accelerated && !c.decisionWide);

/** The first of `checks` the action fails, with its detail; undefined when it passes them all. */
export function firstDrop(action: CompiledAction, facts: DecisionFacts, checks: readonly CandidateCheck[] = CANDIDATE_CHECKS): Drop | undefined {
  for (const c of checks) {
    const detail = c.check(action, facts);
    if (detail !== undefined) return detail === '' ? { reason: c.reason } : { reason: c.reason, detail };
  }
  return undefined;
}
