/**
 * The text patterns of the catalog format shared by the schema (schema.ts)
 * and the compiler (compile.ts), in a module with no dependency.
 */

/**
 * A time window: `<n><unit>` with unit m (minutes), h (hours), d (days) or
 * w (weeks), e.g. `1d`, `7d`, `12h`; or the words `hour`, `day`, `week`,
 * `month` (30 days).
 */
export const WINDOW_PATTERN = /^(?:(\d{1,4})(m|h|d|w)|hour|day|week|month)$/;

/**
 * A duration (journey waits and re-entry): `<n><unit>` with unit s
 * (seconds), m (minutes), h (hours), d (days) or w (weeks), e.g. `30s`, `2d`.
 */
export const DURATION_PATTERN = /^(\d{1,6})(s|m|h|d|w)$/;

/** A frequency cap written as a string: `"3/week"`, `"1/1d"`. */
export const CAP_STRING_PATTERN = /^\s*(\d{1,6})\s*\/\s*(\S+)\s*$/;

/** Liquid markup: a template without it is literal text. */
export const TEMPLATE_MARKUP = /\{\{|\{%/;

/** Identifiers of actions, segments, personas, tags, groups, experiments, variants, models (and placements). */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
