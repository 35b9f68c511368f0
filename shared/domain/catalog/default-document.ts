/**
 * The catalog document of `{}`: every default of defaults.ts applied, as
 * the schema applies them (`catalogSchema.parse({})`, held equal by
 * test/unit/catalog-load.test.ts). The empty catalog
 * (decide/empty-catalog.ts) compiles it. No zod here.
 */
import { defaultArbitration, defaultDecisionLog, defaultLearning, defaultPolicies } from './defaults.ts';
import type { CatalogDocument } from './schema.ts';

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
    policies: defaultPolicies(),
    arbitration: defaultArbitration(),
    learning: defaultLearning(),
    experiments: [],
    decisionLog: defaultDecisionLog(),
    triggers: [],
    journeys: [],
  };
}
