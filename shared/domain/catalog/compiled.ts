/**
 * The compiled catalog: what decide (and the profile function) consume.
 *
 * `loadCatalog(text | object, format)` (load.ts) validates an authored
 * catalog (schema.ts) as a whole and, only when every check passes, builds a
 * `CompiledCatalog`: every CEL expression parsed and type-checked once, every
 * Liquid template parsed once, every reference resolved, every window turned
 * into milliseconds, and indexes built for the hot path. A compiled catalog is
 * immutable and shared by every decision of a version.
 *
 * decide() (shared/domain/decide/decide.ts) is the one reader of a
 * compiled catalog on the hot path: audience (catalog/audience.ts), the
 * decision-wide policies (decide/policies.ts), the per-candidate checks
 * (decide/checks.ts), ranking and content (catalog/template.ts).
 *
 * A rule that throws at run time (missing field, type mismatch) is "no
 * match": `evaluateRule` returns false, counts it in the decision's
 * FailureTally (`vars.$failures`, read by the caller for its metrics), and
 * never throws. Compiled rules are frozen: nothing of a catalog changes
 * after compile.
 */
import type { Channel } from '../channels.ts';
import type { ProfileView } from '../profile/view.ts';
import type { CatalogDocument } from './schema.ts';

// ---------------------------------------------------------------------------
// Rules (CEL)

/**
 * The activation of every rule of one decision, built once per decision by
 * `createRuleVariables` (rules.ts) and shared by all rules it evaluates.
 *
 * CEL sees `profile`, `context`, `channel`, `placement`, `now`. The `$`-keys
 * are internal (no CEL identifier can name them) and feed the helpers
 * `hasSegment`, `daysSince`, `aboveThreshold`, ….
 */
export interface RuleVariables {
  /** The profile with this decision's segments, persona and scores. */
  readonly profile: RuleProfile;
  /** What the caller sent (decide's `context`), `{}` when none. */
  readonly context: Readonly<Record<string, unknown>>;
  /** The requested channel, `''` when evaluating outside a decision (profile enrichment). */
  readonly channel: string;
  /** The requested placement, `''` when none. */
  readonly placement: string;
  /** The decision instant, a CEL timestamp. */
  readonly now: Date;
  /** `profile.stats.visitsToday`, as a shorthand. */
  readonly visitsToday: number;
  /** Declared preferred channel, else the best engaged of push/email/sms/app, else "". */
  readonly preferredChannel: string;
  /** Internal: `now` in epoch ms. */
  readonly $nowMs: number;
  /** Internal: the customer's segments (membership tests). */
  readonly $segments: ReadonlySet<string>;
  /** Internal: model thresholds by model id. */
  readonly $thresholds: ReadonlyMap<string, number>;
  /** Internal: the decision's evaluation deadline (rules.ts `createRuleBudget`); absent: none. */
  readonly $budget?: RuleBudget;
  /** Internal: where this decision's runtime failures are counted (rules.ts `createFailureTally`). */
  readonly $failures: FailureTally;
}

/**
 * The runtime failures of one decision (or one enrichment), counted as they
 * happen and read by whoever made the tally (the decide function logs them,
 * simulate and tests assert them). Nothing is counted module-wide.
 */
export interface FailureTally {
  /** Rules that failed at run time (missing field, type mismatch, not a bool), deadline skips included. */
  rules: number;
  /** Rules not run because the decision's rule budget had run out (also counted in `rules`). */
  deadline: number;
  /** Templates that failed to render (a bound reached, a filter error): that content was not served. */
  templates: number;
  /** The last rule failure: where the rule is in the catalog, and why (explanations, logs). */
  lastRule?: { readonly path: string; readonly message: string };
}

/**
 * The evaluation budget of one decision, shared by every rule it evaluates
 * (segments, personas, models, policies, eligibility). Once `deadline`
 * (performance.now() ms) has passed, no further rule runs: each one it
 * skips is a runtime failure (`rule:error`, counted in the decision's
 * FailureTally, `deadline` and `rules`), and the decision still answers.
 */
export interface RuleBudget {
  /** The instant (on `clock`) after which no rule runs. */
  readonly deadline: number;
  /** The budget in ms (for messages). */
  readonly budgetMs: number;
  /** The clock the deadline is read on (ms, monotonic). */
  readonly clock: () => number;
  /** Estimated cost run since the clock was last read. */
  spent: number;
  /** The deadline has passed. */
  expired: boolean;
}

/** The profile as rules see it: the view, with the audience of this decision. */
export type RuleProfile = Omit<ProfileView, 'segments' | 'persona' | 'scores'> & {
  readonly segments: readonly string[];
  /** "" when the customer has no persona. */
  readonly persona: string;
  readonly scores: Readonly<Record<string, number>>;
};

/** A compiled CEL expression. */
export interface CompiledRule {
  /** The expression as written. */
  readonly source: string;
  /** Where it is in the catalog, e.g. `actions[3].eligibility`. */
  readonly path: string;
  /** Raw evaluation; may throw. Use `evaluateRule` / `evaluateNumber` instead. */
  readonly run: (vars: RuleVariables) => unknown;
  /** Known at load: `true`/`false` literals skip evaluation entirely. */
  readonly constant?: boolean;
  /**
   * Top-level conjuncts in the fast subset (fastpath.ts `compileConjuncts`):
   * the rule is false when one is false, true when all are true and
   * `conjunctsComplete`. Absent without the fast path.
   */
  readonly conjuncts?: readonly RuleConjunct[];
  readonly conjunctsComplete?: boolean;
  /** What it reads (rules.ts `readsOf`): static or dynamic, segments and models it depends on. */
  readonly reads?: RuleReads;
  /** Worst-case cost estimate (cost.ts), at most MAX_RULE_COST; absent: negligible. */
  readonly cost?: number;
}

// ---------------------------------------------------------------------------
// Content (Liquid)

/** How a template's output is shown (content-fields.ts): `html` escapes every output, `text` does not. */
export type TemplateKind = 'html' | 'text';

/** A parsed Liquid template. `literal` is set when the text has no Liquid markup (rendering is a copy). */
export interface CompiledTemplate {
  readonly source: string;
  readonly path: string;
  readonly kind: TemplateKind;
  readonly literal?: string;
  /** Parsed liquidjs templates (opaque; render with `renderContent`). */
  readonly parsed?: unknown;
}

/** One channel's content of an action or variant. */
export interface CompiledContent {
  readonly channel: Channel;
  /** Text fields (title, body, subject, greeting, text, script, url, imageUrl, deepLink…), templates. */
  readonly fields: Readonly<Record<string, CompiledTemplate>>;
  /** List fields (call_center `talkingPoints`), each item a template. */
  readonly lists: Readonly<Record<string, readonly CompiledTemplate[]>>;
  /** Fields copied as-is (email `templateId`). */
  readonly literals: Readonly<Record<string, string>>;
  /** Placements this content fills; undefined = any placement of the channel. */
  readonly placements?: ReadonlySet<string>;
}

/** Rendered content: `{title, body, imageUrl, url}`, `{title, body, deepLink}`, `{templateId, subject, greeting}`, `{text}`, `{script, talkingPoints}`. */
export type RenderedContent = Record<string, string | string[]>;

// ---------------------------------------------------------------------------
// Actions

export interface CompiledCap {
  readonly max: number;
  readonly windowMs: number;
  /** As written, for explanations (`3/7d`). */
  readonly label: string;
}

export interface CompiledVariant {
  readonly id: string;
  readonly name?: string;
  /** Full content per channel: the action's content with this variant's channels replaced. */
  readonly content: Readonly<Partial<Record<Channel, CompiledContent>>>;
}

export interface FallbackRole {
  readonly channel: Channel;
  /** Undefined: every placement of the channel. */
  readonly placement?: string;
}

export interface CompiledAction {
  /** Position in the catalog (stable order for deterministic tie-breaks). */
  readonly index: number;
  readonly id: string;
  readonly name: string;
  readonly description?: string;
  readonly tags: readonly string[];
  readonly tagSet: ReadonlySet<string>;
  readonly value: number;
  readonly priority: number;
  /** Static score multiplier from the action itself (arbitration weights come on top). */
  readonly weight: number;
  /** Epoch ms; -Infinity when open. */
  readonly validFrom: number;
  /** Epoch ms, exclusive; +Infinity when open. */
  readonly validTo: number;
  /** Undefined: always eligible. */
  readonly eligibility?: CompiledRule;
  readonly targeting?: {
    readonly segments?: readonly string[];
    readonly excludeSegments?: readonly string[];
    readonly personas?: readonly string[];
  };
  /** Channels the action has content for. */
  readonly channels: ReadonlySet<Channel>;
  /** Base content per channel. */
  readonly content: Readonly<Partial<Record<Channel, CompiledContent>>>;
  /** Template variable fallbacks (`firstName` → `cliente`). */
  readonly fallbacks: Readonly<Record<string, string>>;
  readonly caps: readonly CompiledCap[];
  readonly fallbackRoles: readonly FallbackRole[];
  /** Content variants; empty when the action has none. */
  readonly variants: readonly CompiledVariant[];
  readonly variantsById: ReadonlyMap<string, CompiledVariant>;
  /** Model whose score is this action's propensity (instead of learning). */
  readonly propensityModel?: string;
  /** Running experiments this action takes part in (as an arm, or whose variants are tested). */
  readonly experiments: readonly CompiledExperiment[];
}

// ---------------------------------------------------------------------------
// Audience

export interface CompiledSegment {
  readonly id: string;
  readonly name?: string;
  readonly description?: string;
  readonly rule: CompiledRule;
  readonly exclude?: CompiledRule;
  /** The exclusive group it belongs to, if any. */
  readonly group?: string;
  /** Position in its group (0 = first tried). */
  readonly groupRank?: number;
}

export interface CompiledExclusiveGroup {
  readonly id: string;
  readonly description?: string;
  /** In priority order. */
  readonly segments: readonly string[];
}

export interface CompiledPersona {
  readonly id: string;
  readonly name: string;
  readonly description?: string;
  readonly ageBand?: string;
  readonly interests?: readonly string[];
  readonly preferredChannel?: Channel;
  readonly valueTier?: string;
  readonly tenure?: string;
  readonly attributes?: Readonly<Record<string, string | number | boolean>>;
  readonly rule: CompiledRule;
}

export interface CompiledModelFeature {
  readonly name: string;
  readonly expression: CompiledRule;
  readonly weight: number;
  /** Value used when the expression fails at run time. */
  readonly default: number;
}

/** Logistic model: score = 1 / (1 + e^-(intercept + Σ weight·feature)). */
export interface CompiledModel {
  readonly id: string;
  readonly description?: string;
  readonly kind: 'logistic';
  readonly intercept: number;
  readonly features: readonly CompiledModelFeature[];
  readonly threshold?: number;
}

/** What the profile function stores on the profile and decide re-evaluates: segments, persona, scores. */
export interface Audience {
  /** Segment ids in catalog evaluation order. */
  readonly segments: readonly string[];
  readonly segmentSet: ReadonlySet<string>;
  readonly persona?: string;
  readonly scores: Readonly<Record<string, number>>;
}

// ---------------------------------------------------------------------------
// Policies, arbitration, learning, experiments

export interface CompiledSuppression {
  readonly id: string;
  readonly description?: string;
  readonly tags: ReadonlySet<string>;
  readonly when: CompiledRule;
  /** Undefined: every channel. */
  readonly channels?: ReadonlySet<Channel>;
}

export interface CompiledChannelCap {
  readonly id: string;
  readonly channel: Channel;
  readonly max: number;
  readonly windowMs: number;
  readonly label: string;
}

export interface CompiledQuietHours {
  readonly id: string;
  readonly channels: ReadonlySet<Channel>;
  /** Minutes after local midnight. */
  readonly fromMinute: number;
  /** Minutes after local midnight (exclusive); may be < fromMinute (spans midnight). */
  readonly toMinute: number;
  /** Zone when the profile has none. */
  readonly timezone?: string;
}

export interface CompiledPolicies {
  readonly suppressions: readonly CompiledSuppression[];
  readonly channelCaps: readonly CompiledChannelCap[];
  readonly channelCapsByChannel: Readonly<Partial<Record<Channel, readonly CompiledChannelCap[]>>>;
  readonly quietHours: readonly CompiledQuietHours[];
  readonly consentRequired: ReadonlySet<Channel>;
}

export interface CompiledWeights {
  readonly tags: ReadonlyMap<string, number>;
  readonly actions: ReadonlyMap<string, number>;
}

export interface CompiledPlacementOverride {
  readonly channel: Channel;
  readonly placement?: string;
  readonly weights?: CompiledWeights;
  readonly limit?: number;
  readonly learning?: boolean;
}

/** Arbitration settings resolved for one channel/placement (cached; see `resolvePlacement`). */
export interface ResolvedPlacement {
  readonly channel: Channel;
  readonly placement: string;
  /** Maximum actions here, if the catalog caps it. */
  readonly limit?: number;
  /** Learning (and exploration) on here. */
  readonly learning: boolean;
  /**
   * Total score multiplier of an action here: action.weight × global tag and
   * action weights × placement tag and action weights. Indexed by action.index.
   */
  readonly weights: Float64Array;
}

export interface CompiledArbitration {
  readonly weights: CompiledWeights;
  readonly placements: readonly CompiledPlacementOverride[];
}

export interface CompiledLearning {
  readonly enabled: boolean;
  readonly exploration: number;
  readonly floor: number;
  readonly prior: { readonly alpha: number; readonly beta: number };
  readonly contextBy: 'none' | 'segment' | 'persona';
  readonly reward: 'click' | 'conversion';
  /** `window`, ms. */
  readonly windowMs: number;
  /** `conversionWindow`, ms. */
  readonly conversionWindowMs: number;
}

/** The catalog's `decisionLog` settings. */
export interface CompiledDecisionLog {
  /** Share of decisions (0..1) whose record keeps the features the rules read, chosen by the decision id. */
  readonly sample: number;
}

/** A profile field a rule reads. */
export interface RuleField {
  /** Its path as a rule would write it after `profile.`: `traits.tier`, `stats.eventCounts["Cart Abandoned"]`. */
  readonly path: string;
  /** The keys from the profile down to it. */
  readonly keys: readonly string[];
}

export interface CompiledExperimentArm {
  readonly id: string;
  /** kind `actions`: the action of the arm. */
  readonly action?: string;
  /** kind `variants`: the variant of `experiment.action`. */
  readonly variant?: string;
  readonly weight: number;
  /** Upper bound of this arm in [0,1) of the non-holdout traffic (cumulative shares). */
  readonly upTo: number;
}

/** The arm of the customers an experiment holds out (its `holdout` share): the control group. */
export const CONTROL_ARM = 'control';

export interface CompiledExperiment {
  readonly id: string;
  readonly description?: string;
  readonly kind: 'actions' | 'variants';
  /** kind `variants`: the action whose variants are tested. */
  readonly action?: string;
  readonly arms: readonly CompiledExperimentArm[];
  /** Share of customers in the control group. */
  readonly holdout: number;
  readonly running: boolean;
  readonly validFrom: number;
  readonly validTo: number;
}

// ---------------------------------------------------------------------------
// Journeys (shared/domain/journeys/machine.ts runs them)

/** A journey's entry (a trigger's `on`): its cause, then its CEL condition on the profile after the event. */
export interface CompiledJourneyEntry {
  readonly on: TriggerCause;
  readonly when?: CompiledRule;
}

/**
 * A step; `next`, `then`, `else` and `timeout` are indexes into the
 * journey's steps, always after the step's own (past the last: the run is
 * completed).
 */
export type CompiledJourneyStep =
  | { readonly kind: 'act'; readonly id: string; readonly channel: Channel; readonly placement?: string; readonly next: number }
  | { readonly kind: 'branch'; readonly id: string; readonly when: CompiledRule; readonly then: number; readonly else: number }
  | {
      readonly kind: 'wait';
      readonly id: string;
      /** How long: the duration, or the timeout of a wait for an event, ms. */
      readonly forMs: number;
      /** A wait for an event (semantic name), with an optional CEL on the profile after it. */
      readonly until?: { readonly event: string; readonly when?: CompiledRule };
      /** Where the awaited event leads. */
      readonly next: number;
      /** Where the timer leads (a duration's: `next`). */
      readonly timeout: number;
    }
  | { readonly kind: 'exit'; readonly id: string };

export interface CompiledJourney {
  readonly id: string;
  readonly name?: string;
  readonly entry: CompiledJourneyEntry;
  readonly reentry: { readonly kind: 'once' } | { readonly kind: 'after'; readonly afterMs: number };
  readonly exit?: { readonly event?: string; readonly when?: CompiledRule };
  readonly steps: readonly CompiledJourneyStep[];
  /** Step id → its index in `steps`. */
  readonly stepIndex: ReadonlyMap<string, number>;
}

// ---------------------------------------------------------------------------

/**
 * What sets a trigger off (schema.ts `triggerOnSchema`): an applied event of
 * a name; entering or leaving a segment; a persona change (to `persona`, or
 * to any other with `*`); a score crossing `threshold` upwards (`above`) or
 * downwards (`below`).
 */
export type TriggerCause =
  | { readonly kind: 'event'; readonly event: string }
  | { readonly kind: 'entered' | 'left'; readonly segment: string }
  | { readonly kind: 'persona'; readonly persona: string }
  | { readonly kind: 'score'; readonly model: string; readonly direction: 'above' | 'below'; readonly threshold: number };

/** A trigger: its cause, its CEL condition (context = the event), and the slot decided for. */
export interface CompiledTrigger {
  readonly id: string;
  readonly on: TriggerCause;
  readonly when?: CompiledRule;
  readonly channel: Channel;
  readonly placement?: string;
}

export interface CompiledCatalog {
  /** Store version (monotonic); 0 for a catalog not stored (validate, tests). */
  readonly version: number;
  /** SHA-256 of the canonical JSON of `document` (cache keys, learning stats scope). */
  readonly hash: string;
  /** The validated document (defaults applied), as served by GET /v1/admin/catalog. */
  readonly document: CatalogDocument;
  readonly tags: ReadonlySet<string>;

  readonly actions: readonly CompiledAction[];
  readonly actionsById: ReadonlyMap<string, CompiledAction>;
  /** Per channel, the actions that have content for it, in catalog order (the candidates). */
  readonly actionsByChannel: Readonly<Record<Channel, readonly CompiledAction[]>>;
  /** Per channel, the actions with a fallback role on it, in catalog order. */
  readonly fallbacksByChannel: Readonly<Record<Channel, readonly CompiledAction[]>>;

  /** In evaluation order (dependencies of `hasSegment` first). */
  readonly segments: readonly CompiledSegment[];
  readonly segmentsById: ReadonlyMap<string, CompiledSegment>;
  readonly exclusiveGroups: readonly CompiledExclusiveGroup[];
  /** In priority order: the first that matches is the persona. */
  readonly personas: readonly CompiledPersona[];
  readonly personasById: ReadonlyMap<string, CompiledPersona>;
  /** In catalog order; evaluated before segments (segment rules may read scores). */
  readonly models: readonly CompiledModel[];
  readonly modelsById: ReadonlyMap<string, CompiledModel>;
  readonly thresholds: ReadonlyMap<string, number>;

  readonly policies: CompiledPolicies;
  readonly arbitration: CompiledArbitration;
  readonly learning: CompiledLearning;
  readonly experiments: readonly CompiledExperiment[];
  readonly experimentsById: ReadonlyMap<string, CompiledExperiment>;
  /** In catalog order. */
  readonly journeys: readonly CompiledJourney[];

  /** Enabled triggers, in catalog order (shared/domain/triggers/). */
  readonly triggers: readonly CompiledTrigger[];

  /** Every compiled rule (tools and tests that inspect a catalog's rules). */
  readonly rules: readonly CompiledRule[];
  /**
   * The profile fields the catalog's rules read (every rule's
   * `reads.fields`, once each, in the order first read): what a sampled
   * decision record keeps of the profile, so the decision can be replayed.
   */
  readonly ruleFields: readonly RuleField[];
  readonly decisionLog: CompiledDecisionLog;
  /** The actions' eligibility rules by their distinct conjuncts (absent: evaluate every rule). */
  readonly eligibilityIndex?: EligibilityIndex;
  /** Which audience rules can be taken from a profile enriched with this catalog (absent: none). */
  readonly audienceReuse?: AudienceReuse;
}

/**
 * The eligibility rules of all actions, by their distinct top-level
 * conjuncts. Catalog rules share most of their clauses
 * (`profile.traits.tier == "gold"`, `context.device == "mobile"`, …): a
 * decision evaluates each distinct conjunct once, and every action whose
 * rule has a false conjunct is out without reading the action or its rule
 * (CEL's `&&` is false as soon as one side is false, errors included).
 * Bitsets hold 32 actions per word, by `action.index`.
 */
export interface EligibilityIndex {
  /** The distinct conjuncts (fast-path closures; may return a MissingKey or throw for cel-js). */
  readonly conjuncts: readonly ((vars: RuleVariables) => unknown)[];
  /** Per conjunct, its worst-case cost estimate (cost.ts), for the decision's budget. */
  readonly costs?: readonly number[];
  /** Per conjunct, the actions whose eligibility rule has it. */
  readonly actionsOf: readonly Uint32Array[];
  /** The actions whose rule is made only of indexed conjuncts (true when they all are). */
  readonly complete: Uint32Array;
  /** Words of every bitset: ceil(actions / 32). */
  readonly words: number;
}

/**
 * Which of the audience's rules read only what changes with the customer's
 * events (static) and which read the request or the clock (dynamic:
 * `context`, `channel`, `placement`, `now`, `visitsToday`, time helpers,
 * windowed or decayed stats, or a dynamic segment/model). The profile
 * function stores segments, persona and scores evaluated with a catalog;
 * decide reuses the static ones of a profile enriched with the same catalog
 * and evaluates only the dynamic ones (audience.ts).
 */
export interface AudienceReuse {
  /** The catalog identity the enricher stamps on the profile (`<version>:<hash prefix>`). */
  readonly stamp: string;
  /** By model, in `models` order. */
  readonly dynamicModels: readonly boolean[];
  /** By segment, in `segments` (evaluation) order. */
  readonly dynamicSegments: readonly boolean[];
  /** By persona, in `personas` order. */
  readonly dynamicPersonas: readonly boolean[];
  /** Ids too long to be kept by the profile's bounds: nothing can be reused. */
  readonly reusable: boolean;
}

/** A problem found while loading a catalog. */
export interface CatalogProblem {
  /** Where, e.g. `actions[3].eligibility` or `(root)`. */
  readonly path: string;
  readonly message: string;
  /** For CEL and Liquid errors: 0-based character offset in the expression/template; for a syntax error, in the text. */
  readonly position?: number;
  /** 1-based line and column in the catalog text (YAML or JSON) of the mistake: the offending token when known, else the field's value. */
  readonly line?: number;
  readonly column?: number;
  /** The text of that line (at most 120 characters). */
  readonly excerpt?: string;
  /** For a common slip, what to write instead (`did you mean "eligibility"?`, `write 1.0 instead of 1`). */
  readonly hint?: string;
}

/**
 * A catalog loaded, or every problem that refuses it. `warnings`: what is
 * allowed but can never be true (a rule comparing `channel` with a name
 * that is no channel); they do not refuse the catalog.
 */
export type LoadResult =
  | { readonly ok: true; readonly catalog: CompiledCatalog; readonly source: CatalogDocument; readonly warnings?: readonly CatalogProblem[] }
  | { readonly ok: false; readonly problems: readonly CatalogProblem[]; readonly warnings?: readonly CatalogProblem[] };

export type CatalogFormat = 'json' | 'yaml' | 'object';

/**
 * One top-level conjunct of a rule (`a && b && c` has three), compiled on
 * its own. Conjuncts with the same key are the same expression: a catalog
 * evaluates each distinct one once per decision (compile.ts, EligibilityIndex).
 */
export interface RuleConjunct {
  /** Canonical form of the conjunct's AST (equal keys, equal expressions). */
  readonly key: string;
  /** The conjunct's value, or a MissingKey; throws UNSUPPORTED where only cel-js can tell. */
  readonly run: (vars: RuleVariables) => unknown;
  /** Its worst-case cost estimate (cost.ts). */
  readonly cost: number;
}

/**
 * What a rule reads, for reusing stored audience results (AudienceReuse):
 * `dynamic` when it reads the request (`context`, `channel`, `placement`)
 * or the clock (`now`, `visitsToday`, `daysSince`, `hoursSince`,
 * `interest`, `eventCount` over a window, the windowed and decayed stats,
 * `updatedAt`), or the profile as a whole; the segments and models it
 * depends on (`*`: all of them).
 */
export interface RuleReads {
  readonly dynamic: boolean;
  readonly segments: readonly string[];
  readonly models: readonly string[];
  /**
   * The profile fields it reads, as key paths from the profile
   * (`['traits', 'tier']`; a key that is not a literal ends the path, so
   * `profile.traits[context.k]` reads `['traits']`), through `profile.…`,
   * the shorthand variables (`visitsToday`, `preferredChannel`) and the
   * helpers (helpers.ts `profileReads`). Segments, persona and scores are
   * the audience, not fields.
   */
  readonly fields: readonly (readonly string[])[];
}
