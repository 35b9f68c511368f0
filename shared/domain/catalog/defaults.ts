/**
 * What a catalog document holds where its author wrote nothing, declared
 * once: the schema (schema.ts) takes its defaults from here, and so does the
 * document of `{}` (default-document.ts), which the empty catalog
 * (decide/empty-catalog.ts) compiles through the one compile path. No zod
 * here, so decide's bundle can build the empty catalog without the
 * validator; nothing of the schema either (schema.ts imports this module).
 */

/**
 * Learning settings by default: on, 10% exploration, floor 0.01, Beta(1, 1)
 * prior, keyed by persona, rewarded by clicks, over the last 7 days of
 * decisions, a conversion counted up to 7 days after its decision.
 */
export const LEARNING_DEFAULTS = Object.freeze({
  enabled: true,
  exploration: 0.1,
  floor: 0.01,
  prior: Object.freeze({ alpha: 1, beta: 1 }),
  contextBy: 'persona',
  reward: 'click',
  window: '7d',
  conversionWindow: '7d',
} as const);

/**
 * Decision log settings by default: the features a decision's rules read are
 * kept for one decision in ten (chosen by the decision id), enough to
 * replay tens of thousands of decisions a day through a candidate catalog at
 * modest traffic, while nine records in ten stay small (ingestion is priced
 * per byte).
 */
export const DECISION_LOG_DEFAULTS = Object.freeze({ sample: 0.1 } as const);

/** Channels that need the customer's granted consent unless the catalog says otherwise. */
export const CONSENT_REQUIRED_DEFAULT = Object.freeze(['email', 'sms', 'push'] as const);

/** The policies of a catalog that declares none: no suppression, cap or quiet hours; consent as CONSENT_REQUIRED_DEFAULT. A fresh copy each call. */
export const defaultPolicies = () => ({ suppressions: [], channelCaps: [], quietHours: [], consentRequired: [...CONSENT_REQUIRED_DEFAULT] });

/** The arbitration of a catalog that declares none: no placement overrides. A fresh copy each call. */
export const defaultArbitration = () => ({ placements: [] });

/** The learning settings of a catalog that declares none (LEARNING_DEFAULTS). A fresh copy each call. */
export const defaultLearning = () => ({ ...LEARNING_DEFAULTS, prior: { ...LEARNING_DEFAULTS.prior } });

/** The decision log settings of a catalog that declares none (DECISION_LOG_DEFAULTS). A fresh copy each call. */
export const defaultDecisionLog = () => ({ ...DECISION_LOG_DEFAULTS });
