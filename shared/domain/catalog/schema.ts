/**
 * The decision catalog as authors write it (YAML or JSON): the zod schema of
 * its shape and the TypeScript types inferred from it. docs/catalog.md is the
 * guide for authors; this file is the contract.
 *
 * The schema checks the *shape* (types, ranges, formats). Cross-references
 * (unknown segment/persona/action/tag/variant ids, duplicates), CEL
 * compilation and Liquid parsing are checked by `loadCatalog` (load.ts),
 * which turns a valid document into a `CompiledCatalog` (compiled.ts).
 *
 * Every expression (`rule`, `exclude`, `eligibility`, `when`, model feature
 * `expression`) is CEL; see rules.ts for the variables and helpers it sees.
 * Every content text field is a Liquid template (template.ts), HTML or plain
 * text as content-fields.ts declares.
 */
import * as z from 'zod';
import { CHANNELS } from '../channels.ts';
import { CONTENT_FIELDS, type ContentFieldSpec } from './content-fields.ts';
import {
  CONSENT_REQUIRED_DEFAULT,
  DECISION_LOG_DEFAULTS,
  LEARNING_DEFAULTS,
  defaultArbitration,
  defaultDecisionLog,
  defaultLearning,
  defaultPolicies,
} from './defaults.ts';
import { CAP_STRING_PATTERN, DURATION_PATTERN, ID_PATTERN, WINDOW_PATTERN } from './patterns.ts';
import { TIME_ZONE_MESSAGE, isValidTimeZone } from '../profile/time.ts';

export { CAP_STRING_PATTERN, DURATION_PATTERN, ID_PATTERN, WINDOW_PATTERN } from './patterns.ts';
export const idSchema = z
  .string()
  .regex(ID_PATTERN, 'must be 1-128 characters: letters, digits, "_", "-", ".", ":" (starting with a letter or digit)');

/** A CEL expression: compiled and type-checked at load. */
export const celSchema = z.string().max(4_000).refine((s) => s.trim().length > 0, 'must be a non-empty CEL expression');

/** A Liquid template (content field). */
const templateSchema = z.string().max(20_000);

export const channelSchema = z.enum(CHANNELS);

/**
 * A time window: `<n><unit>` with unit m (minutes), h (hours), d (days) or
 * w (weeks), e.g. `1d`, `7d`, `12h`; or the words `hour`, `day`, `week`,
 * `month` (30 days).
 */
export const windowSchema = z.string().regex(WINDOW_PATTERN, 'must be a window such as "1d", "7d", "12h", "day" or "week"');

/**
 * A frequency cap: at most `max` contacts per rolling `per` window. Written
 * as an object `{max: 3, per: 7d}` or as a string `"3/week"`, `"1/1d"`.
 */
export const capSchema = z.union([
  z.object({ max: z.number().int().min(1).max(1_000_000), per: windowSchema }).strict(),
  // One message per mistake: the first check that fails says what is expected.
  z.string().superRefine((s, ctx) => {
    const m = CAP_STRING_PATTERN.exec(s);
    const message = !m
      ? 'must be "<max>/<window>", e.g. "1/day" or "3/7d"'
      : !WINDOW_PATTERN.test(m[2] ?? '')
        ? 'the window must be such as "1d", "7d", "day" or "week"'
        : Number(m[1]) < 1
          ? 'the maximum must be at least 1'
          : undefined;
    if (message) ctx.addIssue({ code: 'custom', message });
  }),
]);

const isoInstant = z.iso.datetime({ offset: true, message: 'must be an ISO-8601 date-time with a zone, e.g. 2026-01-01T00:00:00Z' });
/** `HH:MM`, 24-hour clock. */
export const clockSchema = z.string().regex(/^(?:[01]\d|2[0-3]):[0-5]\d$/, 'must be a time "HH:MM" (24-hour clock)');

/** Validity window: the action is offered from `from` (inclusive) to `to` (exclusive). */
export const validitySchema = z
  .object({ from: isoInstant.optional(), to: isoInstant.optional() })
  .strict()
  .refine((v) => !v.from || !v.to || Date.parse(v.from) < Date.parse(v.to), {
    message: '"from" must be before "to"',
    path: ['to'],
  });

// ---------------------------------------------------------------------------
// Content, per channel: the fields and how each is shown are declared once,
// in content-fields.ts (`html` fields are HTML-escaped, `text` fields are
// plain text); every field but a `literal` is a Liquid template rendered
// with the profile and the request context.

type ContentShape<F extends Readonly<Record<string, ContentFieldSpec>>> = {
  -readonly [K in keyof F]: F[K] extends { list: true }
    ? z.ZodDefault<z.ZodArray<z.ZodString>>
    : F[K]['required'] extends true
      ? z.ZodString
      : z.ZodOptional<z.ZodString>;
};

function contentShape<F extends Readonly<Record<string, ContentFieldSpec>>>(fields: F): ContentShape<F> {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, spec] of Object.entries(fields)) {
    const one = spec.kind === 'literal' ? z.string().min(1).max(200) : templateSchema;
    shape[name] = spec.list ? z.array(one).max(50).default([]) : spec.required ? one : one.optional();
  }
  return shape as ContentShape<F>;
}

/** Web and app banners / cards. */
export const bannerContentSchema = z
  .object({
    ...contentShape(CONTENT_FIELDS.web),
    /** Placements this content can fill (e.g. `home_hero`); absent = any placement of the channel. */
    placements: z.array(idSchema).min(1).max(50).optional(),
  })
  .strict();

export const pushContentSchema = z.object(contentShape(CONTENT_FIELDS.push)).strict();
export const emailContentSchema = z.object(contentShape(CONTENT_FIELDS.email)).strict();
export const smsContentSchema = z.object(contentShape(CONTENT_FIELDS.sms)).strict();
export const callCenterContentSchema = z.object(contentShape(CONTENT_FIELDS.call_center)).strict();

/** Content of an action, per channel; the channels present are the channels the action can use. */
export const contentSchema = z
  .object({
    web: bannerContentSchema.optional(),
    app: bannerContentSchema.optional(),
    push: pushContentSchema.optional(),
    email: emailContentSchema.optional(),
    sms: smsContentSchema.optional(),
    call_center: callCenterContentSchema.optional(),
  })
  .strict();

/** Where an action serves as the fallback when nothing else is eligible. */
export const fallbackRoleSchema = z
  .object({ channel: channelSchema, placement: idSchema.optional() })
  .strict();

/** A content variant of an action (test-and-learn): replaces the content of the channels it lists. */
export const variantSchema = z
  .object({
    id: idSchema,
    name: z.string().max(200).optional(),
    content: contentSchema,
  })
  .strict();

export const targetingSchema = z
  .object({
    /** The customer must be in at least one of these segments. */
    segments: z.array(idSchema).min(1).optional(),
    /** The customer must be in none of these segments. */
    excludeSegments: z.array(idSchema).min(1).optional(),
    /** The customer's persona must be one of these. */
    personas: z.array(idSchema).min(1).optional(),
  })
  .strict();

export const actionSchema = z
  .object({
    id: idSchema,
    name: z.string().min(1).max(200),
    description: z.string().max(2_000).optional(),
    /** Declared tags (see `tags`), used by policies and arbitration weights. */
    tags: z.array(idSchema).max(50).default([]),
    /** Business value of a success (revenue, margin or points); score = propensity x value x weight. */
    value: z.number().min(0).max(1e12).default(1),
    /** Tie-break: the higher wins when scores are equal. */
    priority: z.number().int().min(-1_000_000).max(1_000_000).default(0),
    /** Static multiplier of the score (default 1). */
    weight: z.number().min(0).max(1_000).default(1),
    validity: validitySchema.optional(),
    /** CEL; absent = always eligible. */
    eligibility: celSchema.optional(),
    targeting: targetingSchema.optional(),
    content: contentSchema,
    /**
     * Fallback values of template variables when the profile lacks them, keyed
     * by variable path (`firstName`, `profile.traits.firstName`, `context.city`).
     */
    fallbacks: z.record(z.string().min(1).max(200), z.string().max(2_000)).optional(),
    /** Per-customer frequency caps, all applied. */
    caps: z.array(capSchema).max(10).default([]),
    /** `true`: fallback on every channel/placement the content covers; or a list of roles. */
    fallback: z.union([z.boolean(), z.array(fallbackRoleSchema).min(1)]).default(false),
    /** Content variants for test-and-learn or experiments. */
    variants: z.array(variantSchema).max(20).optional(),
    /** Use this model's score (0..1) as the propensity instead of learning. */
    propensityModel: idSchema.optional(),
  })
  .strict();

// ---------------------------------------------------------------------------

export const segmentSchema = z
  .object({
    id: idSchema,
    name: z.string().max(200).optional(),
    description: z.string().max(2_000).optional(),
    /** CEL: the customer is in the segment when it holds… */
    rule: celSchema,
    /** …and this CEL (the anti-segment) does not. */
    exclude: celSchema.optional(),
  })
  .strict();

/** Ordered segments of which a customer is in at most one: the first that matches. */
export const exclusiveGroupSchema = z
  .object({
    id: idSchema,
    description: z.string().max(2_000).optional(),
    segments: z.array(idSchema).min(2).max(100),
  })
  .strict();

export const personaSchema = z
  .object({
    id: idSchema,
    name: z.string().min(1).max(200),
    description: z.string().max(4_000).optional(),
    /** Descriptive attributes for people; not evaluated. */
    ageBand: z.string().max(50).optional(),
    interests: z.array(z.string().max(100)).max(50).optional(),
    preferredChannel: channelSchema.optional(),
    valueTier: z.string().max(50).optional(),
    tenure: z.string().max(50).optional(),
    attributes: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
    /** CEL: personas are tried in order; the first that holds is the customer's persona. */
    rule: celSchema,
  })
  .strict();

// ---------------------------------------------------------------------------

export const suppressionSchema = z
  .object({
    id: idSchema,
    description: z.string().max(2_000).optional(),
    /** Actions carrying any of these tags are suppressed… */
    tags: z.array(idSchema).min(1),
    /** …while this CEL holds for the customer… */
    when: celSchema,
    /** …on these channels (absent = every channel). */
    channels: z.array(channelSchema).min(1).optional(),
  })
  .strict();

export const channelCapSchema = z
  .object({
    id: idSchema.optional(),
    channel: channelSchema,
    max: z.number().int().min(1).max(1_000_000),
    per: windowSchema,
  })
  .strict();

export const quietHoursSchema = z
  .object({
    id: idSchema.optional(),
    channels: z.array(channelSchema).min(1),
    /** Start of the quiet period, customer's local time. */
    from: clockSchema,
    /** End (exclusive); may be past midnight (`21:00` → `09:00`). */
    to: clockSchema,
    /** IANA zone used when the profile has none (default: the profile's zone, else UTC). */
    timezone: z.string().max(64).refine(isValidTimeZone, TIME_ZONE_MESSAGE).optional(),
  })
  .strict()
  .refine((q) => q.from !== q.to, { message: '"from" and "to" must differ', path: ['to'] });

export const policiesSchema = z
  .object({
    suppressions: z.array(suppressionSchema).max(500).default([]),
    channelCaps: z.array(channelCapSchema).max(100).default([]),
    quietHours: z.array(quietHoursSchema).max(50).default([]),
    /** Channels on which an action is returned only with the customer's granted consent. */
    consentRequired: z.array(channelSchema).default(() => [...CONSENT_REQUIRED_DEFAULT]),
  })
  .strict();

// ---------------------------------------------------------------------------

export const weightsSchema = z
  .object({
    /** Multiplier per tag (an action's tag multipliers are multiplied). */
    tags: z.record(idSchema, z.number().min(0).max(1_000)).optional(),
    /** Multiplier per action id. */
    actions: z.record(idSchema, z.number().min(0).max(1_000)).optional(),
  })
  .strict();

export const placementOverrideSchema = z
  .object({
    channel: channelSchema,
    /** Absent = every placement of the channel. */
    placement: idSchema.optional(),
    weights: weightsSchema.optional(),
    /** Maximum actions returned here (caps the request's `limit`). */
    limit: z.number().int().min(1).max(10).optional(),
    /** Learning on/off here (off: propensity = prior mean, no exploration). */
    learning: z.boolean().optional(),
  })
  .strict();

export const arbitrationSchema = z
  .object({
    weights: weightsSchema.optional(),
    placements: z.array(placementOverrideSchema).max(200).default([]),
  })
  .strict();

export const decisionLogSchema = z
  .object({
    /**
     * Share of decisions (0..1) whose decision record also keeps the features
     * the catalog's rules read (segments, persona, scores, the profile fields
     * referenced, the request context), chosen by the decision id.
     */
    sample: z.number().min(0).max(1).default(DECISION_LOG_DEFAULTS.sample),
  })
  .strict();

export const learningSchema = z
  .object({
    enabled: z.boolean().default(LEARNING_DEFAULTS.enabled),
    /** Share of decisions that explore (Thompson sample) instead of exploiting the posterior mean. */
    exploration: z.number().min(0).max(1).default(LEARNING_DEFAULTS.exploration),
    /** Minimum share of a placement's traffic each eligible arm keeps (lowered to 1/K with K arms), so none starves. */
    floor: z.number().min(0).max(1).default(LEARNING_DEFAULTS.floor),
    /** Beta prior of each arm. */
    prior: z
      .object({
        alpha: z.number().positive().max(1e6).default(LEARNING_DEFAULTS.prior.alpha),
        beta: z.number().positive().max(1e6).default(LEARNING_DEFAULTS.prior.beta),
      })
      .strict()
      .default(() => ({ ...LEARNING_DEFAULTS.prior })),
    /** What the learning context is keyed by besides action and variant. */
    contextBy: z.enum(['none', 'segment', 'persona']).default(LEARNING_DEFAULTS.contextBy),
    /** What the bandit optimises: clicks, or conversions (Order Completed) attributed to the decision. */
    reward: z.enum(['click', 'conversion']).default(LEARNING_DEFAULTS.reward),
    /** Evidence kept: decisions made within this window before now count (old evidence ages out). */
    window: windowSchema.default(LEARNING_DEFAULTS.window),
    /** How long after its decision a conversion is attributed to it. */
    conversionWindow: windowSchema.default(LEARNING_DEFAULTS.conversionWindow),
  })
  .strict();

export const experimentArmSchema = z
  .object({
    id: idSchema,
    /** Arm of an `actions` experiment: the action this arm offers. */
    action: idSchema.optional(),
    /** Arm of a `variants` experiment: the variant of `experiment.action`. */
    variant: idSchema.optional(),
    /** Relative share of the non-holdout traffic (default 1). */
    weight: z.number().positive().max(1_000).default(1),
  })
  .strict();

export const experimentSchema = z
  .object({
    id: idSchema,
    description: z.string().max(2_000).optional(),
    /** `actions`: arms are different actions; `variants`: arms are content variants of one action. */
    kind: z.enum(['actions', 'variants']),
    /** The action whose variants are tested (kind `variants`). */
    action: idSchema.optional(),
    arms: z.array(experimentArmSchema).min(2).max(20),
    /** Share of customers in the control group (no experiment action), 0..0.9. */
    holdout: z.number().min(0).max(0.9).default(0),
    status: z.enum(['running', 'paused']).default('running'),
    validity: validitySchema.optional(),
  })
  .strict();

export const modelFeatureSchema = z
  .object({
    name: idSchema,
    /** CEL returning a number (or a bool: 1/0). */
    expression: celSchema,
    weight: z.number().min(-1e6).max(1e6),
    /** Used when the expression fails on a profile (default 0). */
    default: z.number().min(-1e9).max(1e9).default(0),
  })
  .strict();

export const modelSchema = z
  .object({
    /** The score name on the profile: `profile.scores.<id>`. */
    id: idSchema,
    description: z.string().max(2_000).optional(),
    kind: z.literal('logistic'),
    intercept: z.number().min(-1e6).max(1e6),
    features: z.array(modelFeatureSchema).min(1).max(100),
    /** Above (>=) this score the customer is "at risk": `aboveThreshold("churnRisk")`. */
    threshold: z.number().min(0).max(1).optional(),
    /** Provenance of the weights (training command, data, date). */
    trainedAt: z.string().max(100).optional(),
    trainedOn: z.string().max(500).optional(),
  })
  .strict();

// ---------------------------------------------------------------------------
// Triggers: real-time outbound (docs/catalog.md "Triggers").

/**
 * What sets a trigger off, exactly one of:
 * - `event`: an event of this name is applied to the profile (a `track`
 *   event's name; `identify`, `page`, `screen`, `group`, `alias` for the
 *   other kinds);
 * - `entered` / `left`: the customer enters / leaves this segment;
 * - `persona`: the customer's persona changes to this one (`"*"`: to any
 *   other, none included);
 * - `score`: the model's score crosses `above` (upwards, from below it to at
 *   least it) or `below` (downwards, from at least it to below it); neither
 *   given: upwards past the model's `threshold`.
 * Then `when` (CEL, optional) must hold, evaluated on the profile after the
 * event with `context` = the event (`context.event`, `context.type`,
 * `context.properties`, `context.traits`, `context.timestamp`).
 */
export const triggerOnSchema = z
  .object({
    event: z.string().min(1).max(200).optional(),
    entered: idSchema.optional(),
    left: idSchema.optional(),
    persona: z.union([idSchema, z.literal('*')]).optional(),
    score: z
      .object({
        model: idSchema,
        above: z.number().min(0).max(1).optional(),
        below: z.number().min(0).max(1).optional(),
      })
      .strict()
      .refine((s) => s.above === undefined || s.below === undefined, { message: 'give "above" or "below", not both', path: ['below'] })
      .optional(),
    when: celSchema.optional(),
  })
  .strict()
  .refine((o) => [o.event, o.entered, o.left, o.persona, o.score].filter((x) => x !== undefined).length === 1, {
    message: 'must name exactly one of "event", "entered", "left", "persona", "score"',
  });

/** Where a trigger's action goes: decided for this channel (and placement) with every policy. */
export const triggerDecideSchema = z
  .object({
    channel: channelSchema,
    placement: idSchema.optional(),
  })
  .strict();

export const triggerSchema = z
  .object({
    id: idSchema,
    description: z.string().max(2_000).optional(),
    on: triggerOnSchema,
    decide: triggerDecideSchema,
    /** Off: the trigger is kept but never fires. */
    enabled: z.boolean().default(true),
  })
  .strict();

// ---------------------------------------------------------------------------
// Journeys: an entry trigger, then steps, per customer (shared/domain/journeys/machine.ts).

/** A duration: `<n><unit>`, unit s, m, h, d or w (`30s`, `2d`). */
export const durationSchema = z
  .string()
  .regex(DURATION_PATTERN, 'must be a duration such as "30s", "15m", "12h", "2d" or "1w"')
  .refine((s) => Number.parseInt(s, 10) >= 1, 'a duration must be at least 1 unit');

/** A track event name, as sent (matched by its semantic name: case, spaces and underscores aside). */
const eventNameSchema = z.string().min(1).max(200);

/** A wait: a duration, or until an event (with an optional CEL) with a timeout. */
export const journeyWaitSchema = z.union([
  durationSchema,
  z.object({ for: durationSchema }).strict(),
  z
    .object({
      event: eventNameSchema,
      /** CEL on the profile after the awaited event: the wait ends only when it holds. */
      when: celSchema.optional(),
      timeout: durationSchema,
      /** The step the timeout leads to (default: the next step, like the event). */
      onTimeout: idSchema.optional(),
    })
    .strict(),
]);

export const journeyStepSchema = z
  .object({
    id: idSchema,
    /** Decide for this channel (and placement) with every policy, and emit the action like a trigger's. */
    act: z.object({ channel: channelSchema, placement: idSchema.optional() }).strict().optional(),
    wait: journeyWaitSchema.optional(),
    /** Go to `then` when the CEL holds on the profile, else to `else` (default: the next step). */
    branch: z.object({ when: celSchema, then: idSchema, else: idSchema.optional() }).strict().optional(),
    /** End the run here (completed). */
    exit: z.literal(true).optional(),
    /** The step after this one (default: the next in the list); only forward. */
    next: idSchema.optional(),
  })
  .strict()
  .superRefine((step, ctx) => {
    const kinds = (['act', 'wait', 'branch', 'exit'] as const).filter((k) => step[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({ code: 'custom', message: `a step is exactly one of act, wait, branch or exit (this one has ${kinds.length === 0 ? 'none' : kinds.join(', ')})` });
    } else if (step.next !== undefined && (kinds[0] === 'branch' || kinds[0] === 'exit')) {
      ctx.addIssue({ code: 'custom', message: `${kinds[0] === 'exit' ? 'an' : 'a'} ${kinds[0]} step has no "next"`, path: ['next'] });
    }
  });

export const journeySchema = z
  .object({
    id: idSchema,
    name: z.string().max(200).optional(),
    description: z.string().max(2_000).optional(),
    /** What starts a run: a trigger's `on` (an event, a segment entered or left, a persona change, a score crossing, and `when`). */
    entry: triggerOnSchema,
    /** `once` (default), or again once this long has passed since the last run ended. */
    reentry: z.union([z.literal('once'), z.object({ after: durationSchema }).strict()]).default('once'),
    /** The run ends (exited) on this event (and/or when this CEL holds on the profile after an event). */
    exit: z
      .object({ event: eventNameSchema.optional(), when: celSchema.optional() })
      .strict()
      .refine((e) => e.event !== undefined || e.when !== undefined, 'an exit names an event, a "when" condition, or both')
      .optional(),
    steps: z.array(journeyStepSchema).min(1).max(50),
  })
  .strict();

export const tagSchema = z.union([
  idSchema,
  z.object({ id: idSchema, description: z.string().max(2_000).optional() }).strict(),
]);

export const catalogSchema = z
  .object({
    /** Format marker, always `kairos/v1`. */
    kind: z.literal('kairos/v1').default('kairos/v1'),
    name: z.string().max(200).optional(),
    description: z.string().max(4_000).optional(),
    /** Every tag an action or policy may use. */
    tags: z.array(tagSchema).max(500).default([]),
    segments: z.array(segmentSchema).max(1_000).default([]),
    exclusiveGroups: z.array(exclusiveGroupSchema).max(100).default([]),
    personas: z.array(personaSchema).max(200).default([]),
    models: z.array(modelSchema).max(50).default([]),
    actions: z.array(actionSchema).max(10_000).default([]),
    policies: policiesSchema.default(defaultPolicies),
    arbitration: arbitrationSchema.default(defaultArbitration),
    learning: learningSchema.default(defaultLearning),
    experiments: z.array(experimentSchema).max(200).default([]),
    decisionLog: decisionLogSchema.default(defaultDecisionLog),
    /** Real-time outbound: when something happens to a customer, decide for a channel and emit. */
    triggers: z.array(triggerSchema).max(200).default([]),
    /** Multi-step, per customer: an entry trigger, then act / wait / branch / exit steps. */
    journeys: z.array(journeySchema).max(100).default([]),
  })
  .strict();

/** The catalog as written (input of the schema: defaults not yet applied). */
export type CatalogInput = z.input<typeof catalogSchema>;
/** The catalog after the schema (defaults applied). */
export type CatalogDocument = z.output<typeof catalogSchema>;
export type ActionDocument = z.output<typeof actionSchema>;
export type ContentDocument = z.output<typeof contentSchema>;
export type SegmentDocument = z.output<typeof segmentSchema>;
export type PersonaDocument = z.output<typeof personaSchema>;
export type ModelDocument = z.output<typeof modelSchema>;
export type ExperimentDocument = z.output<typeof experimentSchema>;
export type PoliciesDocument = z.output<typeof policiesSchema>;
export type CapDocument = z.output<typeof capSchema>;
export type TriggerDocument = z.output<typeof triggerSchema>;
export type JourneyDocument = z.output<typeof journeySchema>;
