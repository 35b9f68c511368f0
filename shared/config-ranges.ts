/**
 * The ranges of the numeric settings that both the handlers (shared/config.ts,
 * from the environment) and the CDK app (infra/kairos-app.ts, from context)
 * check: one definition, free of side effects, so that synthesis refuses what
 * a function would refuse at start.
 */

/** A numeric setting's accepted range and default. */
export interface SettingRange {
  readonly min: number;
  readonly max: number;
  readonly default: number;
}

/** KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS: seconds a user token may live at most; 60 to 604800 (a week), default 86400 (a day). */
export const USER_TOKEN_MAX_LIFETIME_SECONDS: SettingRange = { min: 60, max: 7 * 86_400, default: 86_400 };

/**
 * Why `value` is not a number in `range` (any finite number from `min` to
 * `max`, as text or a number), or undefined when it is.
 */
export function rangeProblem(value: string | number, range: SettingRange): string | undefined {
  const n = typeof value === 'number' ? value : value.trim() === '' ? Number.NaN : Number(value);
  if (Number.isNaN(n)) return 'must be a number';
  if (!Number.isFinite(n) || n < range.min || n > range.max) return `must be a number from ${range.min} to ${range.max}`;
  return undefined;
}
