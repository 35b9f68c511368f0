import { App, Validations, type AppProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
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
};

export interface KairosAppOptions {
  /** Cloud assembly directory (tests use a temporary one). @default - CDK_OUTDIR or a temporary directory */
  readonly outdir?: string;
  /** Extra context (tests may set it; the CLI passes cdk.json's). */
  readonly context?: Record<string, unknown>;
  readonly stackProps?: KairosStackProps;
}

/**
 * The Kairos CDK app: one environment-agnostic stack, checked by cdk-nag's
 * AWS Solutions pack as a CDK validation plugin (cdk-nag 3): a finding that
 * is not acknowledged with a reason fails synthesis.
 */
export function createKairosApp(options: KairosAppOptions = {}): { app: App; stack: KairosStack } {
  const appProps: AppProps = {
    outdir: options.outdir,
    context: { ...KAIROS_FEATURE_FLAGS, ...options.context },
  };
  const app = new App(appProps);
  const stack = new KairosStack(app, KAIROS_STACK_NAME, options.stackProps);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
