/**
 * Who the customer is for the catalog: model scores, segments (with
 * exclusions and exclusive groups) and persona. Pure; used by the profile
 * function on each change (stored on the profile) and by decide (fresh for
 * the instant and context of the decision).
 *
 * Order: models first (features read the profile; segment rules may read
 * `profile.scores`), then segments in dependency order (a rule may use
 * `hasSegment`), then personas (first match wins; rules may use segments).
 */
import type { ProfileView } from '../profile/view.ts';
import type { Audience, CompiledCatalog, CompiledModel, RuleVariables } from './compiled.ts';
import { createRuleVariables, evaluateNumber, evaluateRule } from './rules.ts';

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** The model's score (0..1) for the customer of `vars`. Failing features take their default. */
export function evaluateModel(model: CompiledModel, vars: RuleVariables): number {
  let z = model.intercept;
  for (const feature of model.features) z += feature.weight * evaluateNumber(feature.expression, vars, feature.default);
  const score = sigmoid(z);
  return Number.isFinite(score) ? score : 0;
}

/**
 * Evaluate scores, segments and persona. `context` is the decision's context
 * (absent in the profile function: rules reading `context` then see `{}`).
 */
export function evaluateAudience(
  catalog: CompiledCatalog,
  view: ProfileView,
  now: Date,
  context?: Readonly<Record<string, unknown>>,
): Audience {
  // The arrays and set below are filled in place while rules read them, so a
  // segment rule sees the scores and the segments evaluated before it.
  const scores: Record<string, number> = {};
  const segments: string[] = [];
  const segmentSet = new Set<string>();
  const audience: { segments: string[]; segmentSet: Set<string>; scores: Record<string, number>; persona?: string } = {
    segments,
    segmentSet,
    scores,
  };
  const vars = createRuleVariables({
    profile: view,
    audience,
    ...(context ? { context } : {}),
    now,
    catalog,
  });

  for (const model of catalog.models) scores[model.id] = evaluateModel(model, vars);

  const groupTaken = new Set<string>();
  for (const segment of catalog.segments) {
    if (segment.group !== undefined && groupTaken.has(segment.group)) continue;
    if (!evaluateRule(segment.rule, vars)) continue;
    if (segment.exclude !== undefined && evaluateRule(segment.exclude, vars)) continue;
    segments.push(segment.id);
    segmentSet.add(segment.id);
    if (segment.group !== undefined) groupTaken.add(segment.group);
  }

  let persona: string | undefined;
  for (const p of catalog.personas) {
    if (evaluateRule(p.rule, vars)) {
      persona = p.id;
      break;
    }
  }
  return persona === undefined ? { segments, segmentSet, scores } : { segments, segmentSet, scores, persona };
}
