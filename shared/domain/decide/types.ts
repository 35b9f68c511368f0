/**
 * The shapes of a decision (API.md §4): the request decide understands, the
 * decision it returns, and the explanation of every candidate.
 */
import type { Channel } from '../channels.ts';

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
  /** Exploration drew this decision (Thompson samples instead of posterior means). */
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

/** Outcome counts of one arm (action, variant, learning context) for Thompson sampling. */
export interface ArmStats {
  /** Impressions (trials). */
  readonly impressions: number;
  /** Clicks or conversions (successes), ≤ impressions. */
  readonly successes: number;
}

/**
 * Learning statistics as decide reads them (from an in-memory cache). The
 * lookup is by action, variant (`undefined` for the base content) and
 * learning context (persona or segment id, `undefined` for all customers).
 */
export interface LearningStats {
  get(actionId: string, variant: string | undefined, context: string | undefined): ArmStats | undefined;
}
