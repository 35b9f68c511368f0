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
import type { Audience, CompiledCatalog, CompiledModel, CompiledPersona, CompiledSegment, FailureTally, RuleBudget, RuleVariables } from './compiled.ts';
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
 *
 * `enrichedWith`: the catalog stamp of the segments, persona and scores the
 * view carries (stored by the profile function for the profile as it is).
 * When it is this catalog's (`catalog.audienceReuse.stamp`), the static
 * models, segments and personas are taken from the view and only the
 * dynamic ones are evaluated, in the same order and with the same
 * variables: the result is the one of a full evaluation.
 */
export function evaluateAudience(
  catalog: CompiledCatalog,
  view: ProfileView,
  now: Date,
  context?: Readonly<Record<string, unknown>>,
  enrichedWith?: string,
  evaluation: { readonly budget?: RuleBudget; readonly failures?: FailureTally } = {},
): Audience {
  const { budget, failures } = evaluation;
  const reuse = catalog.audienceReuse;
  const stored = reuse?.reusable && enrichedWith !== undefined && enrichedWith === reuse.stamp ? reuse : undefined;
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
    ...(budget ? { budget } : {}),
    ...(failures ? { failures } : {}),
  });

  const storedScores = view.scores;
  catalog.models.forEach((model, i) => {
    const kept = stored && !stored.dynamicModels[i] && Object.hasOwn(storedScores, model.id) ? storedScores[model.id] : undefined;
    scores[model.id] = typeof kept === 'number' && Number.isFinite(kept) ? kept : evaluateModel(model, vars);
  });

  const storedSegments = stored ? new Set(view.segments) : undefined;
  const groupTaken = new Set<string>();
  for (let i = 0; i < catalog.segments.length; i++) {
    const segment = catalog.segments[i] as CompiledSegment;
    if (segment.group !== undefined && groupTaken.has(segment.group)) continue;
    if (storedSegments && !stored?.dynamicSegments[i]) {
      // Static: what the profile function found (exclusion and group included).
      if (!storedSegments.has(segment.id)) continue;
    } else {
      if (!evaluateRule(segment.rule, vars)) continue;
      if (segment.exclude !== undefined && evaluateRule(segment.exclude, vars)) continue;
    }
    segments.push(segment.id);
    segmentSet.add(segment.id);
    if (segment.group !== undefined) groupTaken.add(segment.group);
  }

  // The stored persona is the first that matched: a static persona before it did not, one after it
  // was never tried (unknown), and with none stored no static persona matched.
  const personaIndex = view.persona === undefined ? -1 : catalog.personas.findIndex((p) => p.id === view.persona);
  const storedPersona = stored && (view.persona === undefined || personaIndex !== -1) ? personaIndex : undefined;
  let persona: string | undefined;
  for (let i = 0; i < catalog.personas.length; i++) {
    const p = catalog.personas[i] as CompiledPersona;
    let matches: boolean | undefined;
    if (storedPersona !== undefined && !stored?.dynamicPersonas[i]) {
      if (storedPersona === i) matches = true;
      else if (storedPersona === -1 || storedPersona > i) matches = false;
    }
    if (matches ?? evaluateRule(p.rule, vars)) {
      persona = p.id;
      break;
    }
  }
  return persona === undefined ? { segments, segmentSet, scores } : { segments, segmentSet, scores, persona };
}
