/**
 * Compiling a catalog document that passed the schema (schema.ts): every
 * reference checked, every CEL expression and Liquid template compiled, the
 * indexes built. Nothing partial is ever returned.
 *
 * This module imports neither the YAML parser nor zod: the decide function
 * compiles the live catalog from the normalised document the store keeps
 * with each version (validated when it was published, shared/store/catalog.ts),
 * and its bundle and cold start must not carry the validator. Parsing and
 * validating text is load.ts.
 */
import { createHash } from 'node:crypto';
import { CHANNELS, type Channel } from '../channels.ts';
import type {
  CatalogProblem,
  CompiledAction,
  CompiledCap,
  CompiledCatalog,
  CompiledChannelCap,
  CompiledContent,
  CompiledExperiment,
  CompiledExperimentArm,
  CompiledModel,
  CompiledPersona,
  CompiledPlacementOverride,
  CompiledQuietHours,
  CompiledRule,
  CompiledSegment,
  CompiledSuppression,
  CompiledTrigger,
  CompiledTemplate,
  CompiledVariant,
  TemplateKind,
  CompiledWeights,
  AudienceReuse,
  EligibilityIndex,
  FallbackRole,
  LoadResult,
  RuleField,
  RuleReads,
  RuleVariables,
  TriggerCause,
} from './compiled.ts';
import { CAP_STRING_PATTERN, WINDOW_PATTERN } from './patterns.ts';
import { compileRule, type RuleKind, type RuleReference } from './rules.ts';
import type { ActionDocument, CapDocument, CatalogDocument, ContentDocument, TriggerDocument } from './schema.ts';
import { DECISION_LOG_DEFAULTS } from './defaults.ts';
import { TEMPLATE_MARKUP } from './patterns.ts';
import { CONTENT_FIELDS, type ContentFieldSpec, unsafeLinkProblem } from './content-fields.ts';
import { didYouMean } from './suggest.ts';
import { compileJourneys } from './compile-journeys.ts';
import { MAX_HOLDOUT_EXPERIMENTS } from '../transaction-budget.ts';
import { namedPlacements } from './placements.ts';

/** At most this many problems are reported (the first ones, in document order). */
export const MAX_PROBLEMS = 200;

const MINUTE = 60_000;
const UNIT_MS = { m: MINUTE, h: 60 * MINUTE, d: 24 * 60 * MINUTE, w: 7 * 24 * 60 * MINUTE } as const;
const WORD_MS = { hour: UNIT_MS.h, day: UNIT_MS.d, week: UNIT_MS.w, month: 30 * UNIT_MS.d } as const;

/** `7d` → ms; `day` → ms. Throws on a malformed window (the schema refuses those first). */
export function windowToMs(window: string): number {
  const m = WINDOW_PATTERN.exec(window);
  if (!m) throw new Error(`invalid window ${window}`);
  if (m[1] !== undefined && m[2] !== undefined) {
    const n = Number(m[1]);
    if (n < 1) throw new Error('a window must be at least 1 unit');
    return n * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  }
  return WORD_MS[window as keyof typeof WORD_MS];
}

function capOf(cap: CapDocument): CompiledCap {
  if (typeof cap === 'string') {
    const m = CAP_STRING_PATTERN.exec(cap) as RegExpExecArray;
    return { max: Number(m[1]), windowMs: windowToMs(m[2] as string), label: `${m[1]}/${m[2]}` };
  }
  return { max: cap.max, windowMs: windowToMs(cap.per), label: `${cap.max}/${cap.per}` };
}

class Problems {
  readonly list: CatalogProblem[] = [];
  /** `hint` (what to write instead) is also appended to the message. */
  add(path: string, message: string, position?: number, hint?: string): void {
    if (this.list.length >= MAX_PROBLEMS) return;
    this.list.push({
      path,
      message: hint ? `${message}; ${hint}` : message,
      ...(position === undefined ? {} : { position }),
      ...(hint ? { hint } : {}),
    });
  }
}

function duplicates<T>(items: readonly T[], key: (t: T) => string, path: string, what: string, problems: Problems): void {
  const seen = new Map<string, number>();
  items.forEach((item, i) => {
    const k = key(item);
    const first = seen.get(k);
    if (first !== undefined) problems.add(`${path}[${i}].id`, `duplicate ${what} id "${k}" (first at ${path}[${first}])`);
    else seen.set(k, i);
  });
}

/** Parses a Liquid template (template.ts `compileTemplate`) of a content field of this kind: errors are catalog problems. */
export type TemplateCompiler = (
  source: string,
  path: string,
  kind: TemplateKind,
) =>
  | { ok: true; template: CompiledTemplate; warnings?: readonly { message: string; position?: number; hint?: string }[] }
  | { ok: false; error: { message: string; position?: number; hint?: string } };

/**
 * Without a template compiler: a template of a validated document (the
 * stored normalised one), kept as text and parsed by template.ts on its
 * first render; literal text is known here. So the profile function, which
 * renders nothing, does not carry the Liquid engine.
 */
const deferTemplate: TemplateCompiler = (source, path, kind) => ({
  ok: true,
  template: TEMPLATE_MARKUP.test(source) ? { source, path, kind } : { source, path, kind, literal: source },
});

function compileContent(
  content: ContentDocument,
  path: string,
  problems: Problems,
  compileTemplate: TemplateCompiler,
  warnings: Problems,
  /** Refuse a link written with an unsafe scheme (not for a published document: its actions would be dropped as they render). */
  checkLinks: boolean,
): Partial<Record<Channel, CompiledContent>> {
  const out: Partial<Record<Channel, CompiledContent>> = {};
  for (const channel of CHANNELS) {
    const doc = content[channel] as Record<string, unknown> | undefined;
    if (!doc) continue;
    const fields: Record<string, CompiledTemplate> = {};
    const lists: Record<string, CompiledTemplate[]> = {};
    const literals: Record<string, string> = {};
    const compile = (source: string, at: string, kind: TemplateKind): CompiledTemplate | undefined => {
      const r = compileTemplate(source, at, kind);
      if (r.ok) {
        for (const w of r.warnings ?? []) warnings.add(at, `template: ${w.message}`, w.position, w.hint);
        return r.template;
      }
      problems.add(at, `template error: ${r.error.message}`, r.error.position, r.error.hint);
      return undefined;
    };
    const specs: Readonly<Record<string, ContentFieldSpec>> = CONTENT_FIELDS[channel];
    for (const name in specs) {
      const spec = specs[name] as ContentFieldSpec;
      const value = doc[name];
      if (spec.kind === 'literal') {
        if (typeof value === 'string') literals[name] = value;
      } else if (spec.list) {
        if (!Array.isArray(value)) continue;
        const kind = spec.kind;
        lists[name] = value.flatMap((item, i) => {
          const t = compile(String(item), `${path}.${channel}.${name}[${i}]`, kind);
          return t ? [t] : [];
        });
      } else if (typeof value === 'string') {
        const at = `${path}.${channel}.${name}`;
        const t = compile(value, at, spec.kind);
        // A link written as such (no template) is known now; one rendered from a value is checked as it renders (template.ts).
        const unsafe = checkLinks && spec.link === true && t?.literal !== undefined ? unsafeLinkProblem(t.literal) : undefined;
        if (unsafe !== undefined) problems.add(at, unsafe);
        else if (t) fields[name] = t;
      }
    }
    const placements = Array.isArray(doc.placements) ? new Set(doc.placements as string[]) : undefined;
    out[channel] = { channel, fields, lists, literals, ...(placements ? { placements } : {}) };
  }
  return out;
}

function weightsOf(doc: { tags?: Record<string, number>; actions?: Record<string, number> } | undefined): CompiledWeights | undefined {
  if (!doc) return undefined;
  return { tags: new Map(Object.entries(doc.tags ?? {})), actions: new Map(Object.entries(doc.actions ?? {})) };
}

const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const clockMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
const instant = (iso: string | undefined, fallback: number) => (iso ? Date.parse(iso) : fallback);

export interface LoadOptions {
  /** Store version to stamp on the compiled catalog (default 0: not stored). */
  readonly version?: number;
  /**
   * Parse every template now, its errors reported as problems (load.ts, the
   * validating path). Absent: templates are parsed on first render (the
   * document was validated when it was published).
   */
  readonly compileTemplate?: TemplateCompiler;
  /**
   * The document passed these checks when it was published (the store's
   * normalised document, shared/store/catalog-live.ts): the checks that only
   * refuse, and cost, are not run again — every rule's type-check (a second
   * cel-js parse each, rules.ts `compileRule`) and the quiet hours' time
   * zone names (the first `Intl.DateTimeFormat` of a process loads ICU's
   * data, about 40 ms of CPU). What is compiled is the same. @default false
   */
  readonly published?: boolean;
  /**
   * The instant (epoch ms) the document is validated to be published at
   * (the publish, validate and rollback routes pass the request's time): the
   * experiments that can no longer hold a customer out at or after it —
   * ended (`validity.to` at or before it) or `paused` (neither assigns
   * while this version is live: decide/experiments.ts `Assignments`) — do
   * not count toward MAX_HOLDOUT_EXPERIMENTS (`liveHoldoutExperiments`).
   * Absent: every experiment with a holdout counts.
   */
  readonly at?: number;
  /**
   * SHA-256 (hex) of `JSON.stringify(doc)`, when the caller has it (the
   * store checks the stored document's text against it); computed when
   * absent. The compiled catalog's `hash`.
   */
  readonly documentSha256?: string;
  /**
   * Ids of entries left out because their own shape failed (load.ts): a
   * reference to one is not reported as unknown. For reporting only: a
   * catalog with such entries is refused.
   */
  readonly unchecked?: {
    readonly tags?: ReadonlySet<string>;
    readonly segments?: ReadonlySet<string>;
    readonly personas?: ReadonlySet<string>;
    readonly models?: ReadonlySet<string>;
    readonly actions?: ReadonlySet<string>;
  };
}

/**
 * The experiments that can hold a customer out at `at` (epoch ms) or later:
 * a holdout above 0, running, and not ended by then (`validTo` after `at`;
 * one that starts later counts). Decide assigns an arm, the control group
 * included, only in a running experiment within its validity
 * (decide/experiments.ts `Assignments.armOf`), so a decision made at `at` or
 * later is held out of these at most. `at` absent: every experiment with a
 * holdout.
 */
export function liveHoldoutExperiments<E extends Pick<CompiledExperiment, 'holdout' | 'running' | 'validTo'>>(experiments: readonly E[], at: number | undefined): E[] {
  return experiments.filter((e) => e.holdout > 0 && (at === undefined || (e.running && e.validTo > at)));
}

/** Index the actions' eligibility rules by their distinct conjuncts (see EligibilityIndex). */
export function eligibilityIndexOf(actions: readonly CompiledAction[]): EligibilityIndex | undefined {
  const words = Math.ceil(actions.length / 32);
  const byKey = new Map<string, number>();
  const conjuncts: ((vars: RuleVariables) => unknown)[] = [];
  const costs: number[] = [];
  const actionsOf: Uint32Array[] = [];
  const complete = new Uint32Array(words);
  for (const action of actions) {
    const rule = action.eligibility;
    if (!rule?.conjuncts || rule.constant !== undefined) continue;
    const word = action.index >>> 5;
    const bit = 1 << (action.index & 31);
    for (const c of rule.conjuncts) {
      let id = byKey.get(c.key);
      if (id === undefined) {
        id = conjuncts.length;
        byKey.set(c.key, id);
        conjuncts.push(c.run);
        costs.push(c.cost);
        actionsOf.push(new Uint32Array(words));
      }
      const set = actionsOf[id] as Uint32Array;
      set[word] = (set[word] as number) | bit;
    }
    if (rule.conjunctsComplete) complete[word] = (complete[word] as number) | bit;
  }
  return conjuncts.length > 0 ? { conjuncts, costs, actionsOf, complete, words } : undefined;
}

/** The profile's bounds on what it stores (shared/domain/profile/enrich.ts `boundEnrichment`). */
const STORED_SEGMENTS = 100;
const STORED_SCORES = 50;
const STORED_NAME = 100;

/**
 * Which models, segments and personas are static (read only what changes
 * with the customer's events) and which are dynamic (see AudienceReuse):
 * a rule is dynamic when it reads the request or the clock, or depends on
 * a dynamic model or segment; a segment also when one ranked before it in
 * its exclusive group is.
 */
export function audienceReuseOf(
  stamp: string,
  models: readonly CompiledModel[],
  segments: readonly CompiledSegment[],
  personas: readonly CompiledPersona[],
): AudienceReuse {
  const dynamicModel = new Map(models.map((m) => [m.id, false]));
  const dynamicSegment = new Map(segments.map((s) => [s.id, false]));
  const dependsOnDynamic = (rule: CompiledRule | undefined): boolean => {
    if (!rule) return false;
    const reads = rule.reads;
    if (!reads || reads.dynamic) return true;
    for (const id of reads.models) {
      if (id === '*' ? [...dynamicModel.values()].some(Boolean) : dynamicModel.get(id) !== false) return true;
    }
    for (const id of reads.segments) {
      if (id === '*' ? [...dynamicSegment.values()].some(Boolean) : dynamicSegment.get(id) !== false) return true;
    }
    return false;
  };
  for (let changed = true; changed; ) {
    changed = false;
    for (const m of models) {
      if (!dynamicModel.get(m.id) && m.features.some((f) => dependsOnDynamic(f.expression))) {
        dynamicModel.set(m.id, true);
        changed = true;
      }
    }
    const groupDynamic = new Set<string>();
    for (const s of segments) {
      const dynamic =
        dynamicSegment.get(s.id) === true ||
        (s.group !== undefined && groupDynamic.has(s.group)) ||
        dependsOnDynamic(s.rule) ||
        dependsOnDynamic(s.exclude);
      if (dynamic && !dynamicSegment.get(s.id)) {
        dynamicSegment.set(s.id, true);
        changed = true;
      }
      if (dynamic && s.group !== undefined) groupDynamic.add(s.group);
    }
  }
  const short = (id: string) => id.length > 0 && id.length <= STORED_NAME && id !== '__proto__';
  return {
    stamp,
    dynamicModels: models.map((m) => dynamicModel.get(m.id) === true),
    dynamicSegments: segments.map((s) => dynamicSegment.get(s.id) === true),
    dynamicPersonas: personas.map((p) => dependsOnDynamic(p.rule)),
    reusable:
      segments.length <= STORED_SEGMENTS &&
      models.length <= STORED_SCORES &&
      [...models, ...segments, ...personas].every((x) => short(x.id)),
  };
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Every profile field the rules read, once, in the order first read, with its path as text. */
function ruleFieldsOf(rules: readonly CompiledRule[]): RuleField[] {
  const fields = new Map<string, RuleField>();
  // The places that repeat a source share its first compile's `reads` (compileDocument, compileOnce):
  // a thousand actions of a few distinct rules are read once each.
  const seen = new Set<RuleReads>();
  for (const rule of rules) {
    const reads = rule.reads;
    if (reads === undefined || seen.has(reads)) continue;
    seen.add(reads);
    for (const keys of reads.fields) {
      const path = keys.map((k, i) => (IDENTIFIER.test(k) ? (i === 0 ? k : `.${k}`) : `[${JSON.stringify(k)}]`)).join('');
      if (!fields.has(path)) fields.set(path, { path, keys });
    }
  }
  return [...fields.values()];
}

/** Compile a document that already passed the schema: references, CEL, Liquid, indexes. */
export function compileDocument(doc: CatalogDocument, options: LoadOptions = {}): LoadResult {
  const problems = new Problems();
  // What is allowed but can never be true (a channel that does not exist): reported, not refused.
  const warnings = new Problems();
  const unchecked = options.unchecked ?? {};
  const isUnchecked = (kind: keyof NonNullable<LoadOptions['unchecked']>, id: string) => unchecked[kind]?.has(id) === true;
  const rules: CompiledRule[] = [];
  const compileTemplate = options.compileTemplate ?? deferTemplate;

  // --- ids and tags
  const tagIds = doc.tags.map((t) => (typeof t === 'string' ? t : t.id));
  duplicates(tagIds, (t) => t, 'tags', 'tag', problems);
  const tags = new Set(tagIds);
  duplicates(doc.segments, (s) => s.id, 'segments', 'segment', problems);
  duplicates(doc.exclusiveGroups, (g) => g.id, 'exclusiveGroups', 'exclusive group', problems);
  duplicates(doc.personas, (p) => p.id, 'personas', 'persona', problems);
  duplicates(doc.models, (m) => m.id, 'models', 'model', problems);
  duplicates(doc.actions, (a) => a.id, 'actions', 'action', problems);
  duplicates(doc.experiments, (e) => e.id, 'experiments', 'experiment', problems);

  const segmentIds = new Set(doc.segments.map((s) => s.id));
  const personaIds = new Set(doc.personas.map((p) => p.id));
  const modelIds = new Set(doc.models.map((m) => m.id));
  const thresholds = new Map<string, number>();
  for (const m of doc.models) if (m.threshold !== undefined) thresholds.set(m.id, m.threshold);
  const actionDocs = new Map<string, ActionDocument>();
  for (const a of doc.actions) if (!actionDocs.has(a.id)) actionDocs.set(a.id, a);

  const channelNames: readonly string[] = CHANNELS;
  const checkReferences = (refs: readonly RuleReference[], path: string, allowSegments: boolean) => {
    for (const ref of refs) {
      const at = ref.position;
      if (ref.kind === 'segment') {
        if (!allowSegments) problems.add(path, `segments are not known yet here (models are evaluated before segments): hasSegment("${ref.id}")`, at);
        else if (!segmentIds.has(ref.id) && !isUnchecked('segments', ref.id)) problems.add(path, `unknown segment "${ref.id}"`, at, didYouMean(ref.id, segmentIds));
      } else if (ref.kind === 'channel') {
        if (!channelNames.includes(ref.id)) {
          const what = ref.via === 'engagementRate' ? `engagementRate("${ref.id}") is always 0` : `${ref.via} is never "${ref.id}"`;
          warnings.add(path, `${what}: "${ref.id}" is not a channel (${CHANNELS.join(', ')})`, at, didYouMean(ref.id, CHANNELS));
        }
      } else if (isUnchecked('models', ref.id)) continue;
      else if (!modelIds.has(ref.id)) {
        const message = ref.kind === 'score' ? `profile.scores.${ref.id}: unknown model "${ref.id}" (the scores are the catalog's models)` : `unknown model "${ref.id}"`;
        problems.add(path, message, at, didYouMean(ref.id, modelIds));
      } else if (ref.kind === 'model' && !thresholds.has(ref.id)) problems.add(path, `model "${ref.id}" has no threshold`, at);
    }
  };
  // One closure per distinct sub-expression of the whole catalog (fastpath.ts, FastHelpers.intern).
  const intern = new Map<string, ((vars: RuleVariables) => unknown) | undefined>();
  // Each distinct (kind, source) is compiled once per catalog: compileRule is a function of the
  // source, the kind and `intern`, and a rule's path is its own, so a repeated source gets a
  // (frozen) copy of the first compile with its own path.
  const compiled = new Map<string, ReturnType<typeof compileRule>>();
  const compileOnce = (source: string, path: string, kind: RuleKind): ReturnType<typeof compileRule> => {
    const key = `${kind}\u0000${source}`;
    const first = compiled.get(key);
    if (first === undefined) {
      const r = compileRule(source, path, kind, { intern, typeCheck: options.published !== true });
      compiled.set(key, r);
      return r;
    }
    return first.ok ? { ok: true, rule: Object.freeze({ ...first.rule, path }), references: first.references } : first;
  };
  const rule = (source: string, path: string, kind: RuleKind = 'bool', allowSegments = true): { rule: CompiledRule; references: RuleReference[] } | undefined => {
    const r = compileOnce(source, path, kind);
    if (!r.ok) {
      problems.add(path, `CEL error: ${r.error.message}`, r.error.position, r.error.hint);
      return undefined;
    }
    checkReferences(r.references, path, allowSegments);
    rules.push(r.rule);
    return r;
  };

  // --- models
  const models: CompiledModel[] = doc.models.map((m, i) => {
    duplicates(m.features.map((f) => ({ id: f.name })), (f) => f.id, `models[${i}].features`, 'feature', problems);
    const features = m.features.map((f, j) => {
      const compiled = rule(f.expression, `models[${i}].features[${j}].expression`, 'number', false);
      return { name: f.name, expression: compiled?.rule as CompiledRule, weight: f.weight, default: f.default };
    });
    return {
      id: m.id,
      ...(m.description ? { description: m.description } : {}),
      kind: 'logistic' as const,
      intercept: m.intercept,
      features,
      ...(m.threshold === undefined ? {} : { threshold: m.threshold }),
    };
  });

  // --- segments and exclusive groups
  const groupOf = new Map<string, { group: string; rank: number }>();
  doc.exclusiveGroups.forEach((g, i) => {
    const inGroup = new Set<string>();
    g.segments.forEach((s, j) => {
      const at = `exclusiveGroups[${i}].segments[${j}]`;
      if (!segmentIds.has(s)) {
        if (!isUnchecked('segments', s)) problems.add(at, `unknown segment "${s}"`, undefined, didYouMean(s, segmentIds));
      }
      else if (inGroup.has(s)) problems.add(at, `segment "${s}" is listed twice in the group`);
      else if (groupOf.has(s)) problems.add(at, `segment "${s}" is already in exclusive group "${groupOf.get(s)?.group}"`);
      else groupOf.set(s, { group: g.id, rank: j });
      inGroup.add(s);
    });
  });
  const segmentDeps = new Map<string, Set<string>>();
  const compiledSegments = new Map<string, CompiledSegment>();
  doc.segments.forEach((s, i) => {
    const deps = new Set<string>();
    const r = rule(s.rule, `segments[${i}].rule`);
    const x = s.exclude ? rule(s.exclude, `segments[${i}].exclude`) : undefined;
    for (const ref of [...(r?.references ?? []), ...(x?.references ?? [])]) if (ref.kind === 'segment') deps.add(ref.id);
    if (deps.has(s.id)) problems.add(`segments[${i}].rule`, `segment "${s.id}" refers to itself`);
    const g = groupOf.get(s.id);
    if (!compiledSegments.has(s.id)) {
      segmentDeps.set(s.id, deps);
      compiledSegments.set(s.id, {
        id: s.id,
        ...(s.name ? { name: s.name } : {}),
        ...(s.description ? { description: s.description } : {}),
        rule: r?.rule as CompiledRule,
        ...(x ? { exclude: x.rule } : {}),
        ...(g ? { group: g.group, groupRank: g.rank } : {}),
      });
    }
  });
  // Within an exclusive group, a segment is evaluated after the ones ranked before it.
  for (const g of doc.exclusiveGroups) {
    for (let j = 1; j < g.segments.length; j++) {
      const deps = segmentDeps.get(g.segments[j] as string);
      const before = g.segments[j - 1] as string;
      if (deps && segmentIds.has(before)) deps.add(before);
    }
  }
  const order: CompiledSegment[] = [];
  {
    const state = new Map<string, 'visiting' | 'done'>();
    const indexOf = new Map(doc.segments.map((s, i) => [s.id, i] as const));
    const visit = (id: string, trail: string[]): void => {
      const st = state.get(id);
      if (st === 'done') return;
      if (st === 'visiting') {
        const cycle = [...trail.slice(trail.indexOf(id)), id].join(' → ');
        problems.add(`segments[${indexOf.get(id)}].rule`, `segments depend on each other in a cycle: ${cycle}`);
        return;
      }
      state.set(id, 'visiting');
      for (const dep of segmentDeps.get(id) ?? []) if (segmentDeps.has(dep) && dep !== id) visit(dep, [...trail, id]);
      state.set(id, 'done');
      const seg = compiledSegments.get(id);
      if (seg) order.push(seg);
    };
    for (const s of doc.segments) visit(s.id, []);
  }

  // --- personas
  const personas: CompiledPersona[] = doc.personas.map((p, i) => {
    const r = rule(p.rule, `personas[${i}].rule`);
    const { rule: _source, ...rest } = p;
    return { ...rest, rule: r?.rule as CompiledRule };
  });

  // --- actions
  const actions: CompiledAction[] = doc.actions.map((a, i) => compileAction(a, i));
  function compileAction(a: ActionDocument, i: number): CompiledAction {
    const at = `actions[${i}]`;
    a.tags.forEach((t, j) => {
      if (!tags.has(t) && !isUnchecked('tags', t)) problems.add(`${at}.tags[${j}]`, `unknown tag "${t}" (declare it under tags)`, undefined, didYouMean(t, tags));
    });
    const eligibility = a.eligibility ? rule(a.eligibility, `${at}.eligibility`)?.rule : undefined;
    const t = a.targeting;
    const segment = (s: string, path: string) => {
      if (!segmentIds.has(s) && !isUnchecked('segments', s)) problems.add(path, `unknown segment "${s}"`, undefined, didYouMean(s, segmentIds));
    };
    t?.segments?.forEach((s, j) => segment(s, `${at}.targeting.segments[${j}]`));
    t?.excludeSegments?.forEach((s, j) => segment(s, `${at}.targeting.excludeSegments[${j}]`));
    t?.personas?.forEach((p, j) => {
      if (!personaIds.has(p) && !isUnchecked('personas', p)) problems.add(`${at}.targeting.personas[${j}]`, `unknown persona "${p}"`, undefined, didYouMean(p, personaIds));
    });
    if (a.propensityModel && !modelIds.has(a.propensityModel) && !isUnchecked('models', a.propensityModel)) {
      problems.add(`${at}.propensityModel`, `unknown model "${a.propensityModel}"`, undefined, didYouMean(a.propensityModel, modelIds));
    }
    const content = compileContent(a.content, `${at}.content`, problems, compileTemplate, warnings, options.published !== true);
    const channels = new Set(Object.keys(content) as Channel[]);
    if (channels.size === 0) problems.add(`${at}.content`, 'an action needs content for at least one channel');
    for (const key of Object.keys(a.fallbacks ?? {})) {
      if (key.split('.').some((part) => UNSAFE_KEYS.has(part) || part === '')) {
        problems.add(`${at}.fallbacks`, `invalid fallback variable "${key}"`);
      }
    }
    let fallbackRoles: FallbackRole[] = [];
    if (a.fallback === true) {
      fallbackRoles = [...channels].map((channel) => ({ channel }));
    } else if (Array.isArray(a.fallback)) {
      fallbackRoles = a.fallback.map((r, j) => {
        const c = content[r.channel];
        if (!c) problems.add(`${at}.fallback[${j}].channel`, `the action has no ${r.channel} content`);
        else if (r.placement && c.placements && !c.placements.has(r.placement)) {
          problems.add(`${at}.fallback[${j}].placement`, `the ${r.channel} content does not fill placement "${r.placement}"`);
        }
        return r.placement ? { channel: r.channel, placement: r.placement } : { channel: r.channel };
      });
    }
    duplicates(a.variants ?? [], (v) => v.id, `${at}.variants`, 'variant', problems);
    const variants: CompiledVariant[] = (a.variants ?? []).map((v, j) => {
      const own = compileContent(v.content, `${at}.variants[${j}].content`, problems, compileTemplate, warnings, options.published !== true);
      for (const channel of Object.keys(own) as Channel[]) {
        if (!channels.has(channel)) problems.add(`${at}.variants[${j}].content.${channel}`, `the action has no ${channel} content to vary`);
      }
      if (Object.keys(own).length === 0) problems.add(`${at}.variants[${j}].content`, 'a variant needs content for at least one channel');
      return { id: v.id, ...(v.name ? { name: v.name } : {}), content: { ...content, ...own } };
    });
    return {
      index: i,
      id: a.id,
      name: a.name,
      ...(a.description ? { description: a.description } : {}),
      tags: a.tags,
      tagSet: new Set(a.tags),
      value: a.value,
      priority: a.priority,
      weight: a.weight,
      validFrom: instant(a.validity?.from, Number.NEGATIVE_INFINITY),
      validTo: instant(a.validity?.to, Number.POSITIVE_INFINITY),
      ...(eligibility ? { eligibility } : {}),
      ...(t ? { targeting: t } : {}),
      channels,
      content,
      fallbacks: a.fallbacks ?? {},
      caps: a.caps.map(capOf),
      fallbackRoles,
      variants,
      variantsById: new Map(variants.map((v) => [v.id, v])),
      ...(a.propensityModel ? { propensityModel: a.propensityModel } : {}),
      experiments: [],
    };
  }

  // --- policies
  const p = doc.policies;
  const suppressions: CompiledSuppression[] = p.suppressions.map((s, i) => {
    s.tags.forEach((t, j) => {
      if (!tags.has(t) && !isUnchecked('tags', t)) {
        problems.add(`policies.suppressions[${i}].tags[${j}]`, `unknown tag "${t}" (declare it under tags)`, undefined, didYouMean(t, tags));
      }
    });
    const when = rule(s.when, `policies.suppressions[${i}].when`)?.rule as CompiledRule;
    return {
      id: s.id,
      ...(s.description ? { description: s.description } : {}),
      tags: new Set(s.tags),
      when,
      ...(s.channels ? { channels: new Set(s.channels) } : {}),
    };
  });
  duplicates(p.suppressions, (s) => s.id, 'policies.suppressions', 'policy', problems);
  const channelCaps: CompiledChannelCap[] = p.channelCaps.map((c, i) => ({
    id: c.id ?? `channel-cap-${i}`,
    channel: c.channel,
    max: c.max,
    windowMs: windowToMs(c.per),
    label: `${c.max}/${c.per}`,
  }));
  const channelCapsByChannel: Partial<Record<Channel, CompiledChannelCap[]>> = {};
  for (const c of channelCaps) (channelCapsByChannel[c.channel] ??= []).push(c);
  const quietHours: CompiledQuietHours[] = p.quietHours.map((q, i) => ({
    id: q.id ?? `quiet-hours-${i}`,
    channels: new Set(q.channels),
    fromMinute: clockMinutes(q.from),
    toMinute: clockMinutes(q.to),
    ...(q.timezone ? { timezone: q.timezone } : {}),
  }));

  // --- arbitration
  const checkWeights = (w: { tags?: Record<string, number>; actions?: Record<string, number> } | undefined, at: string) => {
    for (const t of Object.keys(w?.tags ?? {})) if (!tags.has(t) && !isUnchecked('tags', t)) problems.add(`${at}.tags.${t}`, `unknown tag "${t}"`, undefined, didYouMean(t, tags));
    for (const a of Object.keys(w?.actions ?? {})) {
      if (!actionDocs.has(a) && !isUnchecked('actions', a)) problems.add(`${at}.actions.${a}`, `unknown action "${a}"`, undefined, didYouMean(a, actionDocs.keys()));
    }
  };
  checkWeights(doc.arbitration.weights, 'arbitration.weights');
  const placementKeys = new Map<string, number>();
  const placements: CompiledPlacementOverride[] = doc.arbitration.placements.map((o, i) => {
    checkWeights(o.weights, `arbitration.placements[${i}].weights`);
    const key = `${o.channel}/${o.placement ?? '*'}`;
    const first = placementKeys.get(key);
    if (first !== undefined) problems.add(`arbitration.placements[${i}]`, `duplicate override for ${key} (first at arbitration.placements[${first}])`);
    else placementKeys.set(key, i);
    const weights = weightsOf(o.weights);
    return {
      channel: o.channel,
      ...(o.placement ? { placement: o.placement } : {}),
      ...(weights ? { weights } : {}),
      ...(o.limit === undefined ? {} : { limit: o.limit }),
      ...(o.learning === undefined ? {} : { learning: o.learning }),
    };
  });

  // --- experiments
  const experimentOfAction = new Map<string, string>();
  const experiments: CompiledExperiment[] = doc.experiments.map((e, i) => {
    const at = `experiments[${i}]`;
    duplicates(e.arms, (a) => a.id, `${at}.arms`, 'arm', problems);
    const involved = new Set<string>();
    if (e.kind === 'variants') {
      const target = e.action ? actionDocs.get(e.action) : undefined;
      if (!e.action) problems.add(`${at}.action`, 'a variants experiment names the action whose variants it tests');
      else if (!target) {
        if (!isUnchecked('actions', e.action)) problems.add(`${at}.action`, `unknown action "${e.action}"`, undefined, didYouMean(e.action, actionDocs.keys()));
      }
      else involved.add(e.action);
      const variantIds = new Set((target?.variants ?? []).map((v) => v.id));
      e.arms.forEach((arm, j) => {
        if (arm.action) problems.add(`${at}.arms[${j}].action`, 'arms of a variants experiment name a variant, not an action');
        if (!arm.variant) problems.add(`${at}.arms[${j}].variant`, 'required for a variants experiment');
        else if (target && !variantIds.has(arm.variant)) problems.add(`${at}.arms[${j}].variant`, `unknown variant "${arm.variant}" of action "${e.action}"`);
      });
    } else {
      if (e.action) problems.add(`${at}.action`, 'only a variants experiment names an action; arms name theirs');
      e.arms.forEach((arm, j) => {
        if (arm.variant) problems.add(`${at}.arms[${j}].variant`, 'arms of an actions experiment name an action, not a variant');
        if (!arm.action) problems.add(`${at}.arms[${j}].action`, 'required for an actions experiment');
        else if (!actionDocs.has(arm.action)) {
          if (!isUnchecked('actions', arm.action)) problems.add(`${at}.arms[${j}].action`, `unknown action "${arm.action}"`, undefined, didYouMean(arm.action, actionDocs.keys()));
        }
        else if (involved.has(arm.action)) problems.add(`${at}.arms[${j}].action`, `action "${arm.action}" is in two arms`);
        else involved.add(arm.action);
      });
    }
    for (const actionId of involved) {
      const other = experimentOfAction.get(actionId);
      if (other !== undefined) problems.add(at, `action "${actionId}" is already in experiment "${other}" (one experiment per action)`);
      else experimentOfAction.set(actionId, e.id);
    }
    const total = e.arms.reduce((s, a) => s + a.weight, 0);
    let cumulative = 0;
    const arms: CompiledExperimentArm[] = e.arms.map((a) => {
      cumulative += a.weight;
      return {
        id: a.id,
        ...(a.action ? { action: a.action } : {}),
        ...(a.variant ? { variant: a.variant } : {}),
        weight: a.weight,
        upTo: cumulative / total,
      };
    });
    return {
      id: e.id,
      ...(e.description ? { description: e.description } : {}),
      kind: e.kind,
      ...(e.action ? { action: e.action } : {}),
      arms,
      holdout: e.holdout,
      running: e.status === 'running',
      validFrom: instant(e.validity?.from, Number.NEGATIVE_INFINITY),
      validTo: instant(e.validity?.to, Number.POSITIVE_INFINITY),
    };
  });
  // An outcome counts a control cell per experiment its decision was held out of, in its event's one transaction
  // (transaction-budget.ts): a catalog holding customers out of more experiments than that room is refused at
  // validate and publish. A document published before the bound still loads (the profile plan counts the control
  // cells that fit, plan.ts `fitStatistics`), rather than leave every function without its live catalog.
  // Only the experiments that can still hold a customer out count: an ended or paused one assigns nothing while this
  // version is live, so no decision is held out of it.
  const holdoutExperiments = liveHoldoutExperiments(experiments, options.at).length;
  if (options.published !== true && holdoutExperiments > MAX_HOLDOUT_EXPERIMENTS) {
    problems.add(
      'experiments',
      `${holdoutExperiments} experiments can hold customers out (holdout above 0, running, and not ended${options.at === undefined ? '' : ` at ${new Date(options.at).toISOString()}`}), more than ${MAX_HOLDOUT_EXPERIMENTS}: an outcome of a decision held out of all of them counts a control cell for each in one transaction beside what its event sets off, which DynamoDB's 100 items would not hold; fewer experiments with a holdout${options.at === undefined ? '' : ' (one ended or paused by then does not count)'}`,
    );
  }

  // --- triggers and journeys: the cause that sets one off (one definition for both)
  const causeOf = (on: TriggerDocument['on'], at: string): TriggerCause | undefined => {
    if (on.event !== undefined) return { kind: 'event', event: on.event };
    if (on.entered !== undefined || on.left !== undefined) {
      const kind = on.entered !== undefined ? 'entered' : 'left';
      const segment = (on.entered ?? on.left) as string;
      if (!segmentIds.has(segment) && !isUnchecked('segments', segment)) {
        problems.add(`${at}.${kind}`, `unknown segment "${segment}"`, undefined, didYouMean(segment, segmentIds));
      }
      return { kind, segment };
    }
    if (on.persona !== undefined) {
      if (on.persona !== '*' && !personaIds.has(on.persona) && !isUnchecked('personas', on.persona)) {
        problems.add(`${at}.persona`, `unknown persona "${on.persona}" (or "*" for any change)`, undefined, didYouMean(on.persona, personaIds));
      }
      return { kind: 'persona', persona: on.persona };
    }
    if (on.score !== undefined) {
      const { model, above, below } = on.score;
      if (!modelIds.has(model) && !isUnchecked('models', model)) problems.add(`${at}.score.model`, `unknown model "${model}"`, undefined, didYouMean(model, modelIds));
      const threshold = above ?? below ?? thresholds.get(model);
      if (threshold === undefined && modelIds.has(model)) {
        problems.add(`${at}.score`, `give "above" or "below": model "${model}" has no threshold`);
      }
      return { kind: 'score', model, direction: below !== undefined ? 'below' : 'above', threshold: threshold ?? 0 };
    }
    return undefined;
  };

  // --- triggers
  duplicates(doc.triggers, (t) => t.id, 'triggers', 'trigger', problems);
  const triggers: CompiledTrigger[] = [];
  doc.triggers.forEach((t, i) => {
    const at = `triggers[${i}]`;
    const cause = causeOf(t.on, `${at}.on`);
    const when = t.on.when ? rule(t.on.when, `${at}.on.when`) : undefined;
    if (!t.decide.placement && (t.decide.channel === 'web' || t.decide.channel === 'app')) {
      warnings.add(`${at}.decide`, `a ${t.decide.channel} trigger without a placement decides among every ${t.decide.channel} action`);
    }
    if (cause && t.enabled) {
      triggers.push({
        id: t.id,
        on: cause,
        ...(when ? { when: when.rule } : {}),
        channel: t.decide.channel,
        ...(t.decide.placement ? { placement: t.decide.placement } : {}),
      });
    }
  });

  // --- journeys
  const journeys = compileJourneys(doc.journeys, {
    problem: (path, message, hint) => problems.add(path, message, undefined, hint),
    rule: (source, path) => rule(source, path)?.rule,
    cause: causeOf,
  });

  // A trigger or an act step whose placement no content of its channel names: decide fills it only with content without placements.
  const unnamedPlacement = (channel: Channel, placement: string | undefined, path: string) => {
    if (placement === undefined) return;
    const named = namedPlacements(actions, channel);
    if (named.includes(placement)) return;
    warnings.add(
      path,
      `placement "${placement}" is named by no ${channel} content (${named.length > 0 ? `its placements: ${named.join(', ')}` : 'none names a placement'}); only ${channel} content without placements fills it`,
      undefined,
      didYouMean(placement, named),
    );
  };
  // Warned at validate and publish: a published document's load (every function's, at its cold start) skips it.
  if (options.published !== true) {
    doc.triggers.forEach((t, i) => unnamedPlacement(t.decide.channel, t.decide.placement, `triggers[${i}].decide.placement`));
    doc.journeys.forEach((journey, i) =>
      journey.steps.forEach((step, j) => {
        if (step.act) unnamedPlacement(step.act.channel, step.act.placement, `journeys[${i}].steps[${j}].act.placement`);
      }),
    );
  }

  if (problems.list.length > 0) return { ok: false, problems: problems.list, warnings: warnings.list };

  // --- indexes (only for a valid catalog)
  const experimentsById = new Map(experiments.map((e) => [e.id, e]));
  const linked = actions.map((a) => {
    const id = experimentOfAction.get(a.id);
    const e = id === undefined ? undefined : experimentsById.get(id);
    return e ? { ...a, experiments: [e] } : a;
  });
  const actionsByChannel = Object.fromEntries(CHANNELS.map((c) => [c, linked.filter((a) => a.channels.has(c))])) as Record<
    Channel,
    CompiledAction[]
  >;
  const fallbacksByChannel = Object.fromEntries(
    CHANNELS.map((c) => [c, linked.filter((a) => a.fallbackRoles.some((r) => r.channel === c))]),
  ) as Record<Channel, CompiledAction[]>;

  const version = options.version ?? 0;
  const hash = options.documentSha256 ?? createHash('sha256').update(JSON.stringify(doc)).digest('hex');
  const catalog: CompiledCatalog = {
    version,
    hash,
    document: doc,
    tags,
    actions: linked,
    actionsById: new Map(linked.map((a) => [a.id, a])),
    actionsByChannel,
    fallbacksByChannel,
    segments: order,
    segmentsById: new Map(order.map((s) => [s.id, s])),
    exclusiveGroups: doc.exclusiveGroups.map((g) => ({ id: g.id, ...(g.description ? { description: g.description } : {}), segments: g.segments })),
    personas,
    personasById: new Map(personas.map((x) => [x.id, x])),
    models,
    modelsById: new Map(models.map((m) => [m.id, m])),
    thresholds,
    policies: {
      suppressions,
      channelCaps,
      channelCapsByChannel,
      quietHours,
      consentRequired: new Set(p.consentRequired),
    },
    arbitration: {
      weights: weightsOf(doc.arbitration.weights) ?? { tags: new Map(), actions: new Map() },
      placements,
    },
    learning: {
      enabled: doc.learning.enabled,
      exploration: doc.learning.exploration,
      floor: doc.learning.floor,
      prior: { alpha: doc.learning.prior.alpha, beta: doc.learning.prior.beta },
      contextBy: doc.learning.contextBy,
      reward: doc.learning.reward,
      windowMs: windowToMs(doc.learning.window),
      conversionWindowMs: windowToMs(doc.learning.conversionWindow),
    },
    experiments,
    experimentsById,
    triggers,
    journeys,
    rules,
    ruleFields: ruleFieldsOf(rules),
    // A document stored before `decisionLog` existed has none: the default.
    decisionLog: { sample: (doc.decisionLog as CatalogDocument['decisionLog'] | undefined)?.sample ?? DECISION_LOG_DEFAULTS.sample },
    eligibilityIndex: eligibilityIndexOf(linked),
    audienceReuse: audienceReuseOf(`${version}:${hash.slice(0, 16)}`, models, order, personas),
  };
  return { ok: true, catalog, source: doc, warnings: warnings.list };
}
