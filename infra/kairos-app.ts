import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import {
  DECIDE_DEADLINE_HEADROOM_MS,
  DECIDE_DEADLINE_MS,
  EVALUATION_SHARDS,
  HISTORY_DAYS,
  INTEREST_HALF_LIFE_DAYS,
  STALE_MAX_SECONDS,
  USER_TOKEN_MAX_LIFETIME_SECONDS,
  rangeProblem,
  type SettingRange,
} from '#shared/config-ranges.ts';
import { functionDefinitions } from '#shared/functions.ts';
import { KairosStack, type KairosStackProps } from './kairos-stack.ts';

/** The stack's name in CloudFormation (and the cloud assembly). */
export const KAIROS_STACK_NAME = 'Kairos';

/**
 * Feature flags, set here rather than in cdk.json so that `cdk synth` and
 * the infra tests build exactly the same template.
 */
export const KAIROS_FEATURE_FLAGS: Record<string, unknown> = {
  // One statement per action set instead of one per grant: smaller, readable policies.
  '@aws-cdk/aws-iam:minimizePolicies': true,
  // A template CloudFormation would reject fails `cdk synth`, not the deployment.
  '@aws-cdk/core:validateAgainstDefaultRules': true,
  // Distributed Maps write their results with ResultWriterV2 (infra/constructs/evaluation.ts).
  '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': true,
};

/**
 * Deployment settings an operator passes with `-c key=value` (or in cdk.json
 * "context"); plain values, never lookups.
 */
export const CONTEXT_KEYS = {
  /** SNS topic ARN the alarms notify. */
  alarmTopicArn: 'kairos:alarmTopicArn',
  /** Comma-separated origins allowed on source routes (KAIROS_CORS_ORIGINS); `*` by default. */
  corsOrigins: 'kairos:corsOrigins',
  /** Comma-separated request headers a preflight allows besides the built-in list (KAIROS_CORS_ALLOW_HEADERS). */
  corsAllowHeaders: 'kairos:corsAllowHeaders',
  /** Seconds a user token may live at most (KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS, 60 to 604800); a day by default. */
  userTokenMaxLifetimeSeconds: 'kairos:userTokenMaxLifetimeSeconds',
  /** Milliseconds within which decide answers (KAIROS_DECIDE_DEADLINE_MS, 50 to its function's timeout less 1 s); 1000 by default. */
  decideDeadlineMs: 'kairos:decideDeadlineMs',
  /** Seconds a cached write key or catalog is still served while the store is unreachable (KAIROS_STALE_MAX_SECONDS, 0 to 604800); 3600 by default. */
  staleMaxSeconds: 'kairos:staleMaxSeconds',
  /** Days ingested events are kept (KAIROS_HISTORY_DAYS, 30 to 3650); 90 by default. */
  historyDays: 'kairos:historyDays',
  /** Half-life of the behavioural category interest, days (KAIROS_INTEREST_HALF_LIFE_DAYS, 0.001 to 3650); 14 by default. */
  interestHalfLifeDays: 'kairos:interestHalfLifeDays',
  /** Shards of the deployed evaluation, one map invocation each (KAIROS_EVALUATION_SHARDS, a whole number from 1 to 1000); 32 by default. */
  evaluationShards: 'kairos:evaluationShards',
} as const;

/**
 * The numeric settings a context key sets: the environment variable the
 * functions read and its range (shared/config-ranges.ts, the range the
 * functions check at start). Decide's deadline must also leave
 * DECIDE_DEADLINE_HEADROOM_MS under the decide function's timeout.
 */
const NUMERIC_SETTINGS: readonly { readonly key: string; readonly range: SettingRange; readonly why?: string }[] = [
  { key: CONTEXT_KEYS.userTokenMaxLifetimeSeconds, range: USER_TOKEN_MAX_LIFETIME_SECONDS },
  {
    key: CONTEXT_KEYS.decideDeadlineMs,
    range: { ...DECIDE_DEADLINE_MS, max: Math.min(DECIDE_DEADLINE_MS.max, functionDefinitions.decide.timeoutSeconds * 1_000 - DECIDE_DEADLINE_HEADROOM_MS) },
    why: `the decide function times out after ${functionDefinitions.decide.timeoutSeconds} s; its deadline keeps ${DECIDE_DEADLINE_HEADROOM_MS} ms under that`,
  },
  { key: CONTEXT_KEYS.staleMaxSeconds, range: STALE_MAX_SECONDS },
  { key: CONTEXT_KEYS.historyDays, range: HISTORY_DAYS },
  { key: CONTEXT_KEYS.interestHalfLifeDays, range: INTEREST_HALF_LIFE_DAYS },
  { key: CONTEXT_KEYS.evaluationShards, range: EVALUATION_SHARDS },
];

export interface KairosAppOptions {
  /** Cloud assembly directory (tests use a temporary one). @default - CDK_OUTDIR or a temporary directory */
  readonly outdir?: string;
  /** Extra context (tests may set it; the CLI passes cdk.json's). */
  readonly context?: Record<string, unknown>;
  readonly stackProps?: KairosStackProps;
  /**
   * CDK's built-in CloudFormation template validation (schemas and rules),
   * besides cdk-nag. Tests that already check it elsewhere may turn it off:
   * it is the slowest part of synthesis.
   * @default true
   */
  readonly cloudFormationValidation?: boolean;
}

/**
 * An App with the Kairos feature flags and validation: cdk-nag's AWS
 * Solutions pack as a CDK validation plugin (cdk-nag 3) — a finding that is
 * not acknowledged with a reason fails synthesis — and CDK's CloudFormation
 * template validation, with its findings as errors.
 */
export function newValidatedApp(options: Omit<KairosAppOptions, 'stackProps'> = {}): App {
  const appProps: AppProps = {
    outdir: options.outdir,
    builtinCloudFormationValidation: options.cloudFormationValidation ?? true,
    context: { ...KAIROS_FEATURE_FLAGS, ...options.context },
  };
  const app = new App(appProps);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return app;
}

/** The Kairos CDK app: one environment-agnostic stack in a validated app. */
export function createKairosApp(options: KairosAppOptions = {}): { app: App; stack: KairosStack } {
  const app = newValidatedApp(options);
  const alarmTopicArn = contextString(app, CONTEXT_KEYS.alarmTopicArn);
  const corsOrigins = contextString(app, CONTEXT_KEYS.corsOrigins);
  const corsAllowHeaders = contextString(app, CONTEXT_KEYS.corsAllowHeaders);
  const numeric: Record<string, string> = {};
  for (const setting of NUMERIC_SETTINGS) {
    const value = contextNumber(app, setting.key, setting.range, setting.why);
    if (value !== undefined) numeric[setting.range.variable] = value;
  }
  const stack = new KairosStack(app, KAIROS_STACK_NAME, {
    ...options.stackProps,
    alarmTopicArn: options.stackProps?.alarmTopicArn ?? alarmTopicArn,
    functionEnvironment: {
      ...(corsOrigins ? { KAIROS_CORS_ORIGINS: corsOrigins } : {}),
      ...(corsAllowHeaders ? { KAIROS_CORS_ALLOW_HEADERS: corsAllowHeaders } : {}),
      ...numeric,
      ...options.stackProps?.functionEnvironment,
    },
  });
  return { app, stack };
}

function contextString(app: App, key: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw new Error(`Context ${key} must be a string, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * A numeric context value (a number in cdk.json, text with `-c`) as the
 * environment variable's text, or undefined when unset; a value outside
 * `range` fails synthesis, as the functions would fail at start (`why`,
 * when given, says what narrows the range beyond the functions' own).
 */
function contextNumber(app: App, key: string, range: SettingRange, why?: string): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return undefined;
  const problem = typeof value === 'number' || typeof value === 'string' ? rangeProblem(value, range) : 'must be a number';
  if (problem !== undefined) throw new Error(`Context ${key} ${problem}, got ${JSON.stringify(value)}${why && problem !== 'must be a number' ? ` (${why})` : ''}`);
  return String(Number(value));
}
