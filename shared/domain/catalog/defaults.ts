/**
 * What a catalog document holds where its author wrote nothing, declared
 * once: the schema (schema.ts) takes its defaults from here, and the empty
 * catalog (decide/empty-catalog.ts) is this document through the one compile
 * path. No zod here, so decide's bundle can build the empty catalog without
 * the validator.
 */
import type { CatalogDocument } from './schema.ts';

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

/** The document of `{}` with every default applied (`catalogSchema.parse({})`), a fresh copy each call. */
export function defaultCatalogDocument(): CatalogDocument {
  return {
    kind: 'kairos/v1',
    tags: [],
    segments: [],
    exclusiveGroups: [],
    personas: [],
    models: [],
    actions: [],
    policies: { suppressions: [], channelCaps: [], quietHours: [], consentRequired: [...CONSENT_REQUIRED_DEFAULT] },
    arbitration: { placements: [] },
    learning: { ...LEARNING_DEFAULTS, prior: { ...LEARNING_DEFAULTS.prior } },
    experiments: [],
    decisionLog: { ...DECISION_LOG_DEFAULTS },
    triggers: [],
    journeys: [],
  };
}
