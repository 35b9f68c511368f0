/**
 * The catalog's CEL helpers, one table: name, arguments, result type, cost
 * and implementation of each. It feeds both evaluators of a rule:
 * - cel-js's environment (rules.ts `registerHelpers`: one macro per helper,
 *   its arguments checked at load as declared here, evaluated with `run`);
 * - the fast path (fastpath.ts: the same `run`, on arguments compiled to
 *   closures), which stays an accelerator held equal to cel-js by
 *   test/unit/catalog-fastpath.test.ts for every helper of this table.
 * The cost estimate (cost.ts), the audience reuse (rules.ts `readsOf`) and
 * the catalog's references check (segments, models) read it too.
 *
 * Helpers are macros: they read the decision's instant, segments and model
 * thresholds from the rule variables (`$nowMs`, `$segments`, `$thresholds`),
 * which no CEL identifier can name.
 */
import type { RuleProfile, RuleVariables } from './compiled.ts';

/** What `daysSince`/`hoursSince` return for a missing timestamp ("never"). */
export const NEVER = 1e9;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

export const EVENT_COUNT_WINDOWS = ['today', '1d', '7d', '30d', 'total'] as const;
type EventCountWindow = (typeof EVENT_COUNT_WINDOWS)[number];
const WINDOW_FIELD: Readonly<Record<EventCountWindow, 'today' | 'last7d' | 'last30d' | 'total'>> = {
  today: 'today',
  '1d': 'today',
  '7d': 'last7d',
  '30d': 'last30d',
  total: 'total',
};

/**
 * How an argument is given and what `run` receives for it:
 * - `time`: any expression giving an ISO string or a timestamp; `run` gets
 *   epoch ms, or undefined when it is missing or null ("never"); a value
 *   that is not a date is a runtime error;
 * - `string`: any expression giving a string (`what` names it in errors);
 * - `segment`, `model`: a string literal naming a catalog segment or model
 *   (checked against the catalog at load);
 * - `window`: a string literal among EVENT_COUNT_WINDOWS.
 */
export type HelperArgument =
  | { readonly kind: 'time' }
  | { readonly kind: 'string'; readonly what: string }
  | { readonly kind: 'segment' | 'model' | 'window' };

/** What a helper reads besides its arguments. */
export type HelperScope = Pick<RuleVariables, 'profile' | '$nowMs' | '$segments' | '$thresholds'>;

export interface RuleHelper {
  readonly name: string;
  readonly args: readonly HelperArgument[];
  readonly returns: 'double' | 'bool';
  /** Estimated cost units of one call, its arguments apart (cost.ts). */
  readonly cost: number;
  /**
   * Its value depends on the instant (the clock, windowed or decayed
   * stats), given its literal arguments: a rule calling it is dynamic for
   * the audience reuse (rules.ts `readsOf`).
   */
  readonly dynamic: (literals: readonly (string | undefined)[]) => boolean;
  /**
   * The profile fields it reads itself (besides its arguments), as key
   * paths from the profile, given its literal arguments (a key that is not
   * a literal ends the path there): what the decision log keeps of a
   * sampled decision (rules.ts `readsOf`). Segments and scores are logged
   * apart, so a helper reading only those reads no field.
   */
  readonly profileReads: (literals: readonly (string | undefined)[]) => readonly (readonly string[])[];
  /** The value, from the converted arguments in order (see HelperArgument; at most two). */
  readonly run: (scope: HelperScope, first: unknown, second: unknown) => number | boolean;
}

function own<T>(obj: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return obj && Object.hasOwn(obj, key) ? obj[key] : undefined;
}

const since = (name: string, unitMs: number): RuleHelper => ({
  name,
  args: [{ kind: 'time' }],
  returns: 'double',
  cost: 1,
  dynamic: () => true,
  profileReads: () => [],
  run: (scope, t) => (t === undefined ? NEVER : (scope.$nowMs - (t as number)) / unitMs),
});

const segmentTest = (name: string): RuleHelper => ({
  name,
  args: [{ kind: 'segment' }],
  returns: 'bool',
  cost: 1,
  dynamic: () => false,
  profileReads: () => [],
  run: (scope, id) => scope.$segments.has(id as string),
});

const profileOf = (scope: HelperScope): RuleProfile => scope.profile;

/** Every helper a rule may call. */
export const RULE_HELPERS: readonly RuleHelper[] = Object.freeze([
  /** `daysSince(ts)`: days from ts to now; NEVER (1e9) when ts is missing or null. */
  since('daysSince', DAY_MS),
  /** `hoursSince(ts)`: hours from ts to now; NEVER when ts is missing or null. */
  since('hoursSince', HOUR_MS),
  /** `eventCount("Name", "7d")`: track events of that name in the window; 0 when never seen. */
  {
    name: 'eventCount',
    args: [{ kind: 'string', what: 'an event name' }, { kind: 'window' }],
    returns: 'double',
    cost: 1,
    dynamic: ([, window]) => window !== 'total',
    profileReads: ([eventName]) => [eventName === undefined ? ['stats', 'eventCounts'] : ['stats', 'eventCounts', eventName]],
    run: (scope, eventName, window) => {
      const entry = own(profileOf(scope).stats?.eventCounts, eventName as string);
      return entry ? Number(entry[WINDOW_FIELD[window as EventCountWindow]] ?? 0) : 0;
    },
  },
  /** `hasSegment("id")`: the customer is in the catalog segment. */
  segmentTest('hasSegment'),
  /** `inSegment("id")`: the same as hasSegment. */
  segmentTest('inSegment'),
  /** `aboveThreshold("model")`: the model's score is at or above its threshold. */
  {
    name: 'aboveThreshold',
    args: [{ kind: 'model' }],
    returns: 'bool',
    cost: 1,
    dynamic: () => false,
    profileReads: () => [],
    run: (scope, id) => {
      const threshold = scope.$thresholds.get(id as string);
      const score = own(profileOf(scope).scores, id as string);
      return threshold !== undefined && typeof score === 'number' && score >= threshold;
    },
  },
  /** `interest("category")`: decayed behavioural interest, 0 when none. */
  {
    name: 'interest',
    args: [{ kind: 'string', what: 'a category' }],
    returns: 'double',
    cost: 1,
    dynamic: () => true,
    profileReads: ([category]) => [category === undefined ? ['stats', 'categoryInterests'] : ['stats', 'categoryInterests', category]],
    run: (scope, category) => {
      const value = own(profileOf(scope).stats?.categoryInterests, category as string);
      return typeof value === 'number' ? value : 0;
    },
  },
  /** `likes("interest")`: the customer declared it (zero-party preferences). */
  {
    name: 'likes',
    args: [{ kind: 'string', what: 'an interest' }],
    returns: 'bool',
    cost: 1,
    dynamic: () => false,
    profileReads: () => [['preferences', 'interests']],
    run: (scope, interest) => {
      const declared = profileOf(scope).preferences?.interests;
      return Array.isArray(declared) && declared.includes(interest as string);
    },
  },
  /** `engagementRate("push")`: engaged / delivered on that channel, 0 when none. */
  {
    name: 'engagementRate',
    args: [{ kind: 'string', what: 'a channel' }],
    returns: 'double',
    cost: 1,
    dynamic: () => false,
    profileReads: ([channel]) => [channel === undefined ? ['engagement'] : ['engagement', channel]],
    run: (scope, channel) => {
      const rate = own(profileOf(scope).engagement as Readonly<Record<string, { rate?: number }>> | undefined, channel as string)?.rate;
      return typeof rate === 'number' && Number.isFinite(rate) ? rate : 0;
    },
  },
] satisfies RuleHelper[]);

/** The helpers by name. */
export const RULE_HELPERS_BY_NAME: ReadonlyMap<string, RuleHelper> = new Map(RULE_HELPERS.map((h) => [h.name, h]));

/** The argument kinds that are string literals (checked at load). */
export const LITERAL_KINDS: ReadonlySet<HelperArgument['kind']> = new Set(['segment', 'model', 'window']);

/** A `time` argument's value as epoch ms; undefined for missing/null; INVALID for anything that is not a date. */
export const INVALID_TIME: unique symbol = Symbol('not a timestamp');
export function timeValue(value: unknown): number | undefined | typeof INVALID_TIME {
  if (value === null || value === undefined) return undefined;
  const t = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : Number.NaN;
  return Number.isNaN(t) ? INVALID_TIME : t;
}
