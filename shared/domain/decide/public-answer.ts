/**
 * The answer a public write key gets (API.md §1, §4): the decision id
 * (sealed, opaque), channel, placement, the fallback/degraded flags and, per
 * action, its id, variant, content and experiment. Built by naming what is
 * kept, so a field added to `Decision` later stays server-only until it is
 * named here: never segments, persona, scores, propensities, probabilities,
 * reasons or the explanation.
 */
import type { Decision, ReturnedAction } from './types.ts';

export interface PublicAction {
  readonly actionId: string;
  readonly variant?: string;
  readonly content: ReturnedAction['content'];
  readonly experiment?: { readonly id: string; readonly arm: string };
}

export interface PublicDecision {
  readonly decisionId: string;
  readonly channel: Decision['channel'];
  readonly placement?: string;
  readonly actions: readonly PublicAction[];
  readonly fallback?: true;
  readonly degraded?: true;
}

export function publicDecision(decision: Decision): PublicDecision {
  return {
    decisionId: decision.decisionId,
    channel: decision.channel,
    ...(decision.placement !== undefined ? { placement: decision.placement } : {}),
    actions: decision.actions.map(
      (action): PublicAction => ({
        actionId: action.actionId,
        ...(action.variant !== undefined ? { variant: action.variant } : {}),
        content: action.content,
        ...(action.experiment ? { experiment: { id: action.experiment.id, arm: action.experiment.arm } } : {}),
      }),
    ),
    ...(decision.fallback ? { fallback: true as const } : {}),
    ...(decision.degraded ? { degraded: true as const } : {}),
  };
}
