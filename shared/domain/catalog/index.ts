/**
 * The decision catalog: format (schema.ts), compiled form (compiled.ts),
 * loading and validation (load.ts), CEL rules (rules.ts), audience
 * (audience.ts), per-candidate semantics (decision.ts), content (template.ts).
 */
export type * from './compiled.ts';
export * from './schema.ts';
export { loadCatalog, compileDocument, parseCatalogText, windowToMs, MAX_CATALOG_BYTES, MAX_PROBLEMS } from './load.ts';
export {
  compileRule,
  createRuleVariables,
  evaluateRule,
  evaluateNumber,
  takeRuleFailureCount,
  withChannel,
  NEVER,
  EVENT_COUNT_WINDOWS,
  type RuleVariablesInput,
} from './rules.ts';
export { evaluateAudience, evaluateModel } from './audience.ts';
export {
  activeSuppressions,
  canServePlacement,
  consentAllows,
  contentFor,
  countSince,
  fallbacksFor,
  hasConsent,
  isWithinValidity,
  localMinutes,
  matchesTargeting,
  quietHoursFor,
  reachedActionCap,
  reachedChannelCap,
  requiresConsent,
  resolvePlacement,
  suppressingPolicy,
} from './decision.ts';
export {
  TEMPLATE_LIMITS,
  applyFallbacks,
  compileTemplate,
  renderContent,
  renderTemplate,
  takeTemplateFailureCount,
  templateScope,
  type TemplateScope,
} from './template.ts';
export { createCatalogEnricher } from './enricher.ts';
