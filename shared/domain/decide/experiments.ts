/**
 * Sticky experiment assignment: a customer's arm is a pure function of
 * (experiment id, customer key), so every decision, on every function
 * instance, puts the same customer in the same arm, with no write.
 */
import { CONTROL_ARM, type CompiledAction, type CompiledExperiment } from '../catalog/compiled.ts';
import type { Drop } from './checks.ts';
import { unitHash } from './random.ts';

export interface ExperimentArms {
  readonly id: string;
  /** Share of customers held out (control), 0..1. */
  readonly holdout: number;
  readonly arms: readonly { readonly id: string; readonly weight: number }[];
}

/**
 * The customer's arm: `control` for the holdout share, else an arm chosen in
 * proportion to its weight. The bucket hash mixes the experiment id so a
 * customer's arms in two experiments are independent.
 */
export function assignArm(experiment: ExperimentArms, customerKey: string): string {
  const bucket = unitHash(`${experiment.id}\u0000${customerKey}`);
  const holdout = Math.min(Math.max(experiment.holdout, 0), 1);
  if (bucket < holdout) return CONTROL_ARM;
  let total = 0;
  for (const arm of experiment.arms) total += arm.weight > 0 ? arm.weight : 0;
  if (total <= 0 || experiment.arms.length === 0) return CONTROL_ARM;
  // Rescale the rest of the bucket to [0, total): arm shares are shares of the treated traffic.
  let point = ((bucket - holdout) / (1 - holdout)) * total;
  for (const arm of experiment.arms) {
    if (arm.weight <= 0) continue;
    if (point < arm.weight) return arm.id;
    point -= arm.weight;
  }
  return (experiment.arms[experiment.arms.length - 1] as { id: string }).id;
}

/** Experiment arms of one customer, computed once per experiment per decision. */
export class Assignments {
  private readonly arms = new Map<string, string>();
  /** The experiments in which the customer is in the control group (met so far). */
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

/** The experiment check of a candidate: dropped (holdout, another arm's action), or the variant and arm it serves. */
export interface ExperimentOutcome {
  readonly drop?: Drop;
  readonly variant?: string;
  readonly experiment?: { readonly id: string; readonly arm: string };
}

/**
 * The last per-candidate check (after checks.ts): the customer's arm in each
 * running experiment the action takes part in. A holdout drops it (and is
 * recorded in `assignments.holdouts`); an `actions` experiment keeps only
 * its arm's action; a `variants` experiment fixes the variant.
 */
export function experimentOf(action: CompiledAction, assignments: Assignments): ExperimentOutcome | undefined {
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
