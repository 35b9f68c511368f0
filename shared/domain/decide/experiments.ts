/**
 * Sticky experiment assignment: a customer's arm is a pure function of
 * (experiment id, customer key), so every decision, on every function
 * instance, puts the same customer in the same arm, with no write.
 */
import { unitHash } from './random.ts';

export interface ExperimentArms {
  readonly id: string;
  /** Share of customers held out (control), 0..1. */
  readonly holdout: number;
  readonly arms: readonly { readonly id: string; readonly weight: number }[];
}

/** The control group's arm name. */
export const CONTROL_ARM = 'control';

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
