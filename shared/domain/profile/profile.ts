/**
 * The profile aggregate in one import: state, events, merge, view, enrichment.
 */
export * from './state.ts';
export * from './apply.ts';
export * from './identity.ts';
export * from './to-view.ts';
export * from './enrich.ts';
export { isValidTimeZone, localMidnight } from './time.ts';
export type * from './view.ts';
