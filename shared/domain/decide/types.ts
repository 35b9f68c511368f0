/**
 * The shapes of a decision (API.md §4): the request decide understands, the
 * decision it returns, and the explanation of every candidate.
 */
import type { Channel } from '../channels.ts';
import type { Audience } from '../catalog/compiled.ts';
import type { LoggedArm } from '../evaluation/decision-record.ts';
import type { OutcomeCounts } from '../learning/statistics.ts';

export interface DecideRequest {
  readonly userId?: string;
  readonly anonymousId?: string;
  readonly channel: Channel;
  /** Slot on the channel (`home_hero`); absent = any placement. */
  readonly placement?: string;
  /** 1..10. */
  readonly limit: number;
  readonly context: Readonly<Record<string, unknown>>;
  readonly explain: boolean;
}

export interface ReturnedAction {
  readonly actionId: string;
  readonly variant?: string;
  /** Rendered content; for push a ready payload `{title, body, deepLink, imageUrl?}`. */
  readonly content: Readonly<Record<string, string | string[]>>;
  readonly score: number;
  readonly propensity: number;
  /**
   * The chance (0..1) that the policy served this action, with this variant,
   * in this decision (decide.ts: the bandit, the ranking and the experiment
   * arm's share); 1 when the choice was deterministic.
   */
  readonly probability: number;
  readonly experiment?: { readonly id: string; readonly arm: string };
  readonly reasons: readonly string[];
  /** Served as the channel/placement's fallback (nothing else was eligible). */
  readonly fallback?: true;
}

/**
 * Why a candidate was dropped: the first failed check, in this order.
 * The explanation's `why` is `<code>` or `<code>:<detail>` (policy id, cap, segment…).
 */
export const DROP_REASONS = [
  'validity',
  'consent',
  'suppressed',
  'quiet_hours',
  'channel_cap',
  'frequency_cap',
  'rule',
  'targeting',
  'experiment',
  'content',
] as const;
export type DropReason = (typeof DROP_REASONS)[number];

export interface CandidateExplanation {
  readonly actionId: string;
  readonly eligible: boolean;
  /** The first reason it was dropped (`suppressed:no-promo-in-conflict`), or `eligible`. */
  readonly why: string;
  readonly reason?: DropReason;
  readonly score?: number;
  readonly propensity?: number;
  readonly variant?: string;
  readonly experiment?: { readonly id: string; readonly arm: string };
  /** Returned in the response (top-k). */
  readonly selected?: boolean;
}

export interface Explanation {
  readonly catalogVersion: number;
  readonly candidates: readonly CandidateExplanation[];
  /** Decision-wide facts: quiet hours in force, channel cap reached, consent missing, suppressed tags. */
  readonly policies: readonly string[];
  /** The bandit served an arm other than the greedy one (the best posterior mean × value × weight) first. */
  readonly explored: boolean;
  /** Experiments in which the customer is in the control group. */
  readonly holdouts: readonly string[];
}

export interface Decision {
  readonly decisionId: string;
  readonly userId?: string;
  readonly anonymousId?: string;
  readonly channel: Channel;
  readonly placement?: string;
  readonly actions: readonly ReturnedAction[];
  readonly segments: readonly string[];
  readonly persona?: string;
  /** Nothing was eligible: the actions are the catalog's fallbacks (or none). */
  readonly fallback?: true;
  /** The profile could not be read: a decision from the catalog's fallbacks only. */
  readonly degraded?: true;
  readonly explanation?: Explanation;
}

/**
 * What the decision log needs of a decision beyond its answer
 * (decide.ts `decideForLog`; `decide` does none of this work).
 */
export interface DecisionLogFacts {
  /** The key experiments and learning seed on (decide.ts `customerKey`); pseudonymise it before it leaves the process. */
  readonly customerKey: string;
  /** The catalog version decided with ("0" for the empty catalog of a degraded decision). */
  readonly catalogVersion: string;
  /** The learning context decided in (decide.ts `learningContextOf`; statistics.ts NO_CONTEXT for none). */
  readonly learningContext: string;
  /**
   * Every candidate that passed every check, best first (with the bandit,
   * one entry per arm: each variant the action may serve), with its score
   * (propensity × value × weight, 6 decimals) and the probability (6
   * decimals) that the policy serves it at position 1 for this customer:
   * where the bandit decides, π(arm) re-normalised over the arms whose
   * content renders (0 for one that does not) × the experiment arm's
   * assignment share; else that share for the first that renders and 0 for
   * the others. Their sum is at most 1 (within the rounding); 0 each when
   * none renders; empty when nothing passed, or degraded.
   */
  readonly eligible: readonly LoggedArm[];
  /** The experiments whose control group (holdout) the customer was in: none of their actions was served. */
  readonly holdouts: readonly string[];
  /** Segments, persona and scores of this decision. */
  readonly audience: Audience;
}

/**
 * Learning statistics as decide reads them (from an in-memory cache,
 * shared/store/statistics-cache.ts): an arm's windowed outcome counts in one
 * slot and learning context.
 */
export interface LearningStats {
  /**
   * Changes whenever any count does (a refresh that read new counts): decide
   * keys its cached arm probabilities by it.
   */
  readonly generation: number;
  /**
   * The counts of (action, variant — `undefined` for the base content —,
   * learning context — statistics.ts NO_CONTEXT for none —, channel,
   * placement — `undefined` for a request without one), summed over
   * experiment arms; undefined when nothing was counted.
   */
  get(actionId: string, variant: string | undefined, context: string, channel: Channel, placement: string | undefined): OutcomeCounts | undefined;
}
