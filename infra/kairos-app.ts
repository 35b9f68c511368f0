import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { USER_TOKEN_MAX_LIFETIME_SECONDS, rangeProblem, type SettingRange } from '#shared/config-ranges.ts';
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
} as const;

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
  const userTokenMaxLifetime = contextNumber(app, CONTEXT_KEYS.userTokenMaxLifetimeSeconds, USER_TOKEN_MAX_LIFETIME_SECONDS);
  const stack = new KairosStack(app, KAIROS_STACK_NAME, {
    ...options.stackProps,
    alarmTopicArn: options.stackProps?.alarmTopicArn ?? alarmTopicArn,
    functionEnvironment: {
      ...(corsOrigins ? { KAIROS_CORS_ORIGINS: corsOrigins } : {}),
      ...(corsAllowHeaders ? { KAIROS_CORS_ALLOW_HEADERS: corsAllowHeaders } : {}),
      ...(userTokenMaxLifetime !== undefined ? { KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS: userTokenMaxLifetime } : {}),
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
 * `range` fails synthesis, as the functions would fail at start.
 */
function contextNumber(app: App, key: string, range: SettingRange): string | undefined {
  const value: unknown = app.node.tryGetContext(key);
  if (value === undefined || value === null || value === '') return undefined;
  const problem = typeof value === 'number' || typeof value === 'string' ? rangeProblem(value, range) : 'must be a number';
  if (problem !== undefined) throw new Error(`Context ${key} ${problem}, got ${JSON.stringify(value)}`);
  return String(Number(value));
}
