/**
 * Configuration, read once at module load from the environment with
 * Powertools' environment helpers: a missing or malformed variable fails
 * fast with its name and what is wrong. (No schema library here: this module
 * is in every bundle, and decide's has no other use for one.)
 */
import { getStringFromEnv } from '@aws-lambda-powertools/commons/utils/env';
import {
  DECIDE_DEADLINE_MS,
  EVALUATION_SHARDS,
  HISTORY_DAYS,
  INTEREST_HALF_LIFE_DAYS,
  STALE_MAX_SECONDS,
  USER_TOKEN_MAX_LIFETIME_SECONDS,
  rangeProblem,
  type SettingRange,
} from './config-ranges.ts';

export interface Config {
  readonly EVENTS_TABLE: string;
  readonly PROFILES_TABLE: string;
  readonly CONTROL_TABLE: string;
  readonly OUTBOX_TABLE: string;
  /** Set only on the local stack: DynamoDB Local's URL. */
  readonly DYNAMODB_ENDPOINT?: string;
  /** Set only on the local stack: the operator's bearer token. Deployed, admin routes use IAM. */
  readonly KAIROS_ADMIN_TOKEN?: string;
  /**
   * The secret decision ids are sealed with (≥ 32 characters), the same for
   * decide (which seals) and the profile function (which opens). Required by
   * those two functions (`requiredDecisionSecret`); deployed, a Secrets
   * Manager secret; locally, generated and kept in the data folder.
   */
  readonly KAIROS_DECISION_KEY?: string;
  /** Days an event is kept; at least the 30-day deduplication window. */
  readonly KAIROS_HISTORY_DAYS: number;
  /** Comma-separated origins allowed on source routes; `*` by default. */
  readonly KAIROS_CORS_ORIGINS: string;
  /** Comma-separated request headers a preflight allows besides the built-in list (shared/http/cors.ts); none by default. */
  readonly KAIROS_CORS_ALLOW_HEADERS: string;
  /** Half-life of category interest, in days. */
  readonly KAIROS_INTEREST_HALF_LIFE_DAYS: number;
  /**
   * The version `GET /v1/health` answers: package.json's, set by the CDK stack and the local stack
   * (infra/package-version.ts); `unknown` in a process neither started.
   */
  readonly KAIROS_VERSION: string;
  readonly AWS_REGION: string;
  /**
   * Milliseconds within which decide answers, degraded if the store is slow
   * or down (default 1000; at most 25000, under API Gateway's 30 s and the
   * decide function's timeout, whichever is shorter wins).
   */
  readonly KAIROS_DECIDE_DEADLINE_MS: number;
  /**
   * Seconds a cached write key or live catalog may still be served after its
   * last successful read, while the store is unreachable (default 3600).
   * Past it, a key is not accepted (503) and the catalog is not used.
   */
  readonly KAIROS_STALE_MAX_SECONDS: number;
  /**
   * Seconds a user token (X-Kairos-User-Token) may live at most: its `exp`
   * minus its `iat`, or minus this server's clock when it has no `iat`
   * (default 86400, a day; 60 to 604800). A longer-lived token is refused
   * (401), so a token that leaks stops working within this time.
   */
  readonly KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS: number;
  /**
   * Shards of the deployed evaluation (the decision log's records and their
   * outcomes sent to shards by decision reference, one map invocation
   * each; read by its inputs step): a whole number from 1 to 1000, default
   * 32 (config-ranges.ts EVALUATION_SHARDS).
   */
  readonly KAIROS_EVALUATION_SHARDS: number;
}

const invalid = (key: string, problem: string) => new Error(`Invalid configuration: ${key} ${problem}`);

function text(key: string, defaultValue: string, minLength = 0): string {
  const value = getStringFromEnv({ key, defaultValue });
  if (value.length < minLength) throw invalid(key, minLength === 1 ? 'must not be empty' : `must be at least ${minLength} characters`);
  return value;
}

function optionalText(key: string, minLength: number): string | undefined {
  return process.env[key] === undefined ? undefined : text(key, '', minLength);
}

function ranged(range: SettingRange): number {
  const raw = getStringFromEnv({ key: range.variable, defaultValue: String(range.default) });
  const problem = rangeProblem(raw, range);
  if (problem !== undefined) throw invalid(range.variable, problem);
  return Number(raw);
}

function optionalUrl(key: string): string | undefined {
  const value = optionalText(key, 1);
  if (value === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw invalid(key, 'must be a URL (http://host:port)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(key, 'must be an http or https URL');
  return value;
}

export function loadConfig(): Config {
  const endpoint = optionalUrl('DYNAMODB_ENDPOINT');
  const adminToken = optionalText('KAIROS_ADMIN_TOKEN', 16);
  const decisionSecret = optionalText('KAIROS_DECISION_KEY', 32);
  return {
    EVENTS_TABLE: text('EVENTS_TABLE', 'kairos-events', 1),
    PROFILES_TABLE: text('PROFILES_TABLE', 'kairos-profiles', 1),
    CONTROL_TABLE: text('CONTROL_TABLE', 'kairos-control', 1),
    OUTBOX_TABLE: text('OUTBOX_TABLE', 'kairos-outbox', 1),
    ...(endpoint !== undefined ? { DYNAMODB_ENDPOINT: endpoint } : {}),
    ...(adminToken !== undefined ? { KAIROS_ADMIN_TOKEN: adminToken } : {}),
    ...(decisionSecret !== undefined ? { KAIROS_DECISION_KEY: decisionSecret } : {}),
    KAIROS_HISTORY_DAYS: ranged(HISTORY_DAYS),
    KAIROS_CORS_ORIGINS: text('KAIROS_CORS_ORIGINS', '*'),
    KAIROS_CORS_ALLOW_HEADERS: text('KAIROS_CORS_ALLOW_HEADERS', ''),
    KAIROS_INTEREST_HALF_LIFE_DAYS: ranged(INTEREST_HALF_LIFE_DAYS),
    KAIROS_VERSION: text('KAIROS_VERSION', 'unknown'),
    AWS_REGION: text('AWS_REGION', 'us-east-1'),
    KAIROS_DECIDE_DEADLINE_MS: ranged(DECIDE_DEADLINE_MS),
    KAIROS_STALE_MAX_SECONDS: ranged(STALE_MAX_SECONDS),
    KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS: ranged(USER_TOKEN_MAX_LIFETIME_SECONDS),
    KAIROS_EVALUATION_SHARDS: ranged(EVALUATION_SHARDS),
  };
}

export const config: Config = loadConfig();

/** KAIROS_DECISION_KEY, for the functions that seal or open decision ids; throws with its name when it is not set. */
export function requiredDecisionSecret(): string {
  if (config.KAIROS_DECISION_KEY === undefined) throw invalid('KAIROS_DECISION_KEY', 'must be set (at least 32 characters)');
  return config.KAIROS_DECISION_KEY;
}
