/**
 * The ranges of the numeric settings that both the handlers (shared/config.ts,
 * from the environment) and the CDK app (infra/kairos-app.ts, from context)
 * check: one definition, free of side effects, so that synthesis refuses what
 * a function would refuse at start.
 */

/** A numeric setting: the environment variable the functions read it from, its accepted range and default. */
export interface SettingRange {
  readonly variable: string;
  readonly min: number;
  readonly max: number;
  readonly default: number;
  /** Whole numbers only. */
  readonly integer?: boolean;
}

/** KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS: seconds a user token may live at most; 60 to 604800 (a week), default 86400 (a day). */
export const USER_TOKEN_MAX_LIFETIME_SECONDS: SettingRange = { variable: 'KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS', min: 60, max: 7 * 86_400, default: 86_400 };

/** KAIROS_HISTORY_DAYS: days an ingested event (and a fired journey timer's record) is kept; 30 (the deduplication window) to 3650, default 90. */
export const HISTORY_DAYS: SettingRange = { variable: 'KAIROS_HISTORY_DAYS', min: 30, max: 3650, default: 90 };

/** KAIROS_INTEREST_HALF_LIFE_DAYS: half-life of the behavioural category interest, days; 0.001 to 3650, default 14. */
export const INTEREST_HALF_LIFE_DAYS: SettingRange = { variable: 'KAIROS_INTEREST_HALF_LIFE_DAYS', min: 0.001, max: 3650, default: 14 };

/**
 * KAIROS_DECIDE_DEADLINE_MS: milliseconds within which decide answers, degraded if the store is slow or
 * down; 50 to 25000 (under API Gateway's 30 s), default 1000. Deployed, the CDK app also keeps it at
 * least DECIDE_DEADLINE_HEADROOM_MS under the decide function's timeout.
 */
export const DECIDE_DEADLINE_MS: SettingRange = { variable: 'KAIROS_DECIDE_DEADLINE_MS', min: 50, max: 25_000, default: 1_000 };

/** What a deployed decide keeps between its deadline and its function's timeout, ms: the answer's own time after the deadline. */
export const DECIDE_DEADLINE_HEADROOM_MS = 1_000;

/**
 * KAIROS_STALE_MAX_SECONDS: seconds a cached write key or live catalog may still be served after the
 * store last confirmed it, while the store is unreachable; 0 to 604800, default 3600. It is also how long
 * a key revoked just before an outage may still be accepted while it lasts.
 */
export const STALE_MAX_SECONDS: SettingRange = { variable: 'KAIROS_STALE_MAX_SECONDS', min: 0, max: 7 * 86_400, default: 3_600 };

/**
 * KAIROS_EVALUATION_SHARDS: shards the deployed evaluation sends the decision log's records (and the
 * outcomes of their decisions) to by decision reference, one map invocation each; a whole number from 1
 * to 1000 (a Map state's items travel in the execution's state: 1,000 shard numbers stay far under its
 * 256 KB), default 32. Read by the evaluation's inputs step (functions/evaluation-inputs); each map
 * invocation holds about 1/shards of the range's decision references and outcomes.
 */
export const EVALUATION_SHARDS: SettingRange = { variable: 'KAIROS_EVALUATION_SHARDS', min: 1, max: 1_000, default: 32, integer: true };

/**
 * Why `value` is not a number in `range` (any finite number from `min` to
 * `max`, as text or a number), or undefined when it is.
 */
export function rangeProblem(value: string | number, range: SettingRange): string | undefined {
  const n = typeof value === 'number' ? value : value.trim() === '' ? Number.NaN : Number(value);
  if (Number.isNaN(n)) return 'must be a number';
  if (range.integer && !(Number.isInteger(n) && n >= range.min && n <= range.max)) return `must be a whole number from ${range.min} to ${range.max}`;
  if (!Number.isFinite(n) || n < range.min || n > range.max) return `must be a number from ${range.min} to ${range.max}`;
  return undefined;
}
