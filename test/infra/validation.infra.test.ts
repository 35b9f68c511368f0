/**
 * Synth-time validation: cdk-nag (AWS Solutions pack, as a CDK validation
 * plugin in cdk-nag 3) and the constructs' own checks. Bundling is skipped
 * here (context aws:cdk:bundling-stacks = []): the rules read the templates
 * and the construct tree, not the function code; kairos-stack.infra.test.ts
 * covers the bundles.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { AttributeType, Table } from 'aws-cdk-lib/aws-dynamodb';
import { CfnQueue } from 'aws-cdk-lib/aws-sqs';
import { Function as LambdaFunction, Code, Runtime } from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KairosFunction } from '#infra/constructs/kairos-function.ts';
import { KairosHttpApi, routeConstructId } from '#infra/constructs/kairos-http-api.ts';
import { KairosTable } from '#infra/constructs/kairos-table.ts';
import { ProfileStream } from '#infra/constructs/profile-stream.ts';
import { CONTEXT_KEYS, createKairosApp, newValidatedApp } from '#infra/kairos-app.ts';
import type { KairosStack } from '#infra/kairos-stack.ts';
import { methodsOf, routes, type Route } from '#http/routes.ts';
import { eventsTable, profilesTable } from '#store/tables.ts';

const SKIP_BUNDLING = { 'aws:cdk:bundling-stacks': [] };
const ALARM_TOPIC = 'arn:aws:sns:eu-west-1:123456789012:kairos-on-call';
const CORS_ORIGINS = 'https://shop.example,https://m.shop.example';
const CORS_ALLOW_HEADERS = 'x-shop-session';
const USER_TOKEN_MAX_LIFETIME = '3600';
// The other numeric settings an operator sets by context, as cdk.json holds them (numbers) or `-c` passes them (text).
const NUMERIC_CONTEXT = {
  [CONTEXT_KEYS.decideDeadlineMs]: 800,
  [CONTEXT_KEYS.staleMaxSeconds]: '60',
  [CONTEXT_KEYS.historyDays]: 365,
  [CONTEXT_KEYS.interestHalfLifeDays]: '7.5',
  [CONTEXT_KEYS.evaluationShards]: '1000',
};

interface ReportViolation {
  ruleName: string;
  severity?: string;
  violatingConstructs?: { constructPath: string }[];
}
interface ValidationReport {
  pluginReports: { pluginName: string; violations: ReportViolation[] }[];
}

/** The validation report CDK writes into the cloud assembly (cdk-nag 3 findings land here, not in annotations). */
function readValidationReport(assemblyDir: string): ValidationReport {
  return JSON.parse(readFileSync(join(assemblyDir, 'validation-report.json'), 'utf8')) as ValidationReport;
}
const awsSolutionsViolations = (report: ValidationReport): ReportViolation[] =>
  report.pluginReports.filter((r) => r.pluginName === 'AwsSolutions').flatMap((r) => r.violations);

/** Every acknowledgement recorded with Validations.of(...).acknowledge, by construct path. */
function acknowledgements(root: IConstruct): { path: string; id: string; reason: string }[] {
  const found: { path: string; id: string; reason: string }[] = [];
  for (const construct of root.node.findAll()) {
    for (const entry of construct.node.metadata) {
      if (entry.type !== Validations.ACKNOWLEDGED_RULES_METADATA_KEY) continue;
      for (const [id, reason] of Object.entries(entry.data as Record<string, string>)) {
        found.push({ path: construct.node.path, id: id.replace(/^annotation::/i, ''), reason });
      }
    }
  }
  return found;
}

/**
 * What the AWS Solutions pack finds when acknowledgements are ignored: the
 * raw findings every acknowledgement must answer. (Overrides cdk-nag's
 * acknowledgement lookup on one instance; if cdk-nag renames it, the
 * "every acknowledgement is used" test below fails loudly.)
 */
function rawFindings(root: IConstruct): { ruleId: string; path: string }[] {
  const pack = new AwsSolutionsChecks();
  (pack as unknown as { isAcknowledged: () => boolean }).isAcknowledged = () => false;
  return pack
    .validateScope(root)
    .violations.flatMap((v) => v.violatingResources.map((r) => ({ ruleId: v.ruleName, path: String(r.constructPath) })));
}

const coversPath = (ackPath: string, resourcePath: string) =>
  resourcePath === ackPath || resourcePath.startsWith(`${ackPath}/`);

describe('cdk-nag on the Kairos stack, as an operator configures it', () => {
  let outdir: string;
  let app: App;
  let stack: KairosStack;
  let assemblyDir: string;

  beforeAll(() => {
    outdir = mkdtempSync(join(tmpdir(), 'kairos-nag-'));
    ({ app, stack } = createKairosApp({
      outdir,
      context: {
        ...SKIP_BUNDLING,
        [CONTEXT_KEYS.alarmTopicArn]: ALARM_TOPIC,
        [CONTEXT_KEYS.corsOrigins]: CORS_ORIGINS,
        [CONTEXT_KEYS.corsAllowHeaders]: CORS_ALLOW_HEADERS,
        [CONTEXT_KEYS.userTokenMaxLifetimeSeconds]: USER_TOKEN_MAX_LIFETIME,
        ...NUMERIC_CONTEXT,
      },
    }));
    // In a test (NODE_ENV=test) CDK throws with the whole report if a plugin fails.
    assemblyDir = app.synth().directory;
  });

  afterAll(() => {
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });

  it('reports no unacknowledged AwsSolutions finding, error or warning, and nothing from CDK\'s CloudFormation validation', () => {
    const report = readValidationReport(assemblyDir);
    expect(awsSolutionsViolations(report)).toEqual([]);
    expect(report.pluginReports.flatMap((r) => r.violations.map((v) => `${r.pluginName}: ${v.ruleName}`))).toEqual([]);
    // cdk-nag 2.x reported through annotations; 3.x must not (and nothing else may either).
    expect(Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
  });

  it('acknowledges every raw finding on its resource or an owning construct, with a specific reason', () => {
    const acks = acknowledgements(app);
    const findings = rawFindings(app);
    expect(findings.length).toBeGreaterThan(0);
    for (const finding of findings) {
      const ack = acks.find((a) => a.id === finding.ruleId && coversPath(a.path, finding.path));
      expect(ack, `${finding.ruleId} at ${finding.path}`).toBeDefined();
      expect(ack?.reason.length ?? 0).toBeGreaterThanOrEqual(60);
    }
  });

  it('has no stale acknowledgement and acknowledges only the reviewed rule kinds', () => {
    const findings = rawFindings(app);
    const acks = acknowledgements(app).filter((a) => a.id.startsWith('AwsSolutions-'));
    for (const ack of acks) {
      const used = findings.some((f) => f.ruleId === ack.id && coversPath(ack.path, f.path));
      expect(used, `${ack.id} acknowledged at ${ack.path} matches no finding`).toBe(true);
    }
    // Adding a new kind of exception is a decision: it must be reviewed here.
    const kinds = new Set(acks.map((a) => a.id.replace(/<[^>]+>/g, '<ref>')));
    expect([...kinds].sort()).toEqual(
      [
        'AwsSolutions-APIG4',
        'AwsSolutions-IAM5[Resource::*]',
        'AwsSolutions-IAM5[Resource::<ref>/index/*]',
        // The decision log's Firehose role: CDK's S3 destination grant, on the one bucket.
        'AwsSolutions-IAM5[Action::s3:Abort*]',
        'AwsSolutions-IAM5[Action::s3:DeleteObject*]',
        'AwsSolutions-IAM5[Action::s3:GetBucket*]',
        'AwsSolutions-IAM5[Action::s3:GetObject*]',
        'AwsSolutions-IAM5[Action::s3:List*]',
        'AwsSolutions-IAM5[Resource::<ref>/*]',
        // The evaluation's functions: reads of decisions/ in the decision log bucket, their execution's inputs under evaluations/,
        // the shuffle's scratch parts under shuffle/ (written by the shuffle step, read by the map step).
        'AwsSolutions-IAM5[Resource::<ref>/decisions/*]',
        'AwsSolutions-IAM5[Resource::<ref>/evaluations/*]',
        'AwsSolutions-IAM5[Resource::<ref>/shuffle/*]',
        // The evaluation's Distributed Maps' results under results/ (written by the state machine's ResultWriter, read by the reduce step).
        'AwsSolutions-IAM5[Resource::<ref>/results/*]',
        // The evaluation state machine: its four functions' versions, and its Distributed Map's own child executions.
        'AwsSolutions-IAM5[Resource::<ref>:*]',
        'AwsSolutions-IAM5[Resource::arn:<ref>:states:<ref>:<ref>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"EvaluationStateMachineC0098225"}]}]}:*]',
        'AwsSolutions-IAM5[Resource::arn:<ref>:states:<ref>:<ref>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"EvaluationStateMachineC0098225"}]}]}/*:*]',
        // The dispatcher creates one-time schedules named after each deferred emission, in the Kairos group only.
        'AwsSolutions-IAM5[Resource::arn:<ref>:scheduler:<ref>:<ref>:schedule/Kairos-Emissions-Schedules-4C4F3CAC/*]',
        'AwsSolutions-SQS3',
        'AwsSolutions-SMG4',
      ].sort(),
    );
  });

  it('leaves only write-key, public, preflight and the $default (404/405) routes without a gateway authorizer', () => {
    const apig4 = acknowledgements(app).filter((a) => a.id === 'AwsSolutions-APIG4');
    const unauthorized = new Set(apig4.map((a) => a.path.split('/').pop()));
    const expected = new Set([
      ...routes.filter((r) => r.auth !== 'iam').flatMap((r) => methodsOf(r).map((method) => routeConstructId({ method, path: r.path }))),
      ...routes.filter((r) => r.cors).map((r) => routeConstructId({ method: 'OPTIONS', path: r.path })),
      'DefaultRoute',
    ]);
    expect(unauthorized).toEqual(expected);
    for (const route of routes.filter((r) => r.auth === 'iam')) {
      for (const method of methodsOf(route)) expect(unauthorized.has(routeConstructId({ method, path: route.path }))).toBe(false);
    }
  });

  it('takes the alarm topic, CORS and user token settings from context: every alarm notifies, every function knows the origins, extra headers and user tokens\' longest lifetime', () => {
    const template = Template.fromStack(stack);
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms.length).toBeGreaterThanOrEqual(3);
    for (const alarm of alarms) {
      expect(alarm.Properties).toMatchObject({ AlarmActions: [ALARM_TOPIC], OKActions: [ALARM_TOPIC] });
    }
    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(functions.length).toBeGreaterThan(0);
    for (const fn of functions) {
      expect(fn.Properties.Environment.Variables.KAIROS_CORS_ORIGINS).toBe(CORS_ORIGINS);
      expect(fn.Properties.Environment.Variables.KAIROS_CORS_ALLOW_HEADERS).toBe(CORS_ALLOW_HEADERS);
      expect(fn.Properties.Environment.Variables.KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS).toBe(USER_TOKEN_MAX_LIFETIME);
      expect(fn.Properties.Environment.Variables).toMatchObject({
        KAIROS_DECIDE_DEADLINE_MS: '800',
        KAIROS_STALE_MAX_SECONDS: '60',
        KAIROS_HISTORY_DAYS: '365',
        KAIROS_INTEREST_HALF_LIFE_DAYS: '7.5',
        KAIROS_EVALUATION_SHARDS: '1000',
      });
    }
  });

  it('the write-key exception says why a gateway authorizer cannot do the job', () => {
    const writeKeyRoutes = routes.filter((r) => r.auth === 'writeKey').map((r) => routeConstructId(r));
    const acks = acknowledgements(app).filter(
      (a) => a.id === 'AwsSolutions-APIG4' && writeKeyRoutes.includes(a.path.split('/').pop() ?? ''),
    );
    expect(acks).toHaveLength(writeKeyRoutes.length);
    for (const ack of acks) expect(ack.reason).toMatch(/body.*writeKey.*authorizer cannot read/i);
  });
});

describe('the validation wiring itself (negative control)', () => {
  it('fails synthesis and names the rule when a resource breaks a cdk-nag rule or the CloudFormation schema', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'kairos-nag-control-'));
    try {
      const app = newValidatedApp({ outdir });
      const stack = new Stack(app, 'Control');
      // No point-in-time recovery: AwsSolutions-DDB3.
      new Table(stack, 'Unprotected', {
        partitionKey: { name: 'pk', type: AttributeType.STRING },
        removalPolicy: RemovalPolicy.DESTROY,
      });
      // A property CloudFormation does not know: schema error F3002.
      const queue = new CfnQueue(stack, 'Malformed', {});
      queue.addPropertyOverride('RetentionDays', 14);
      Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS3', reason: 'negative control: only schema errors matter here' });
      Validations.of(queue).acknowledge({ id: 'AwsSolutions-SQS4', reason: 'negative control: only schema errors matter here' });

      expect(() => app.synth()).toThrow(/AwsSolutions-DDB3|Point-in-time Recovery/);
      const report = readValidationReport(outdir);
      const violations = awsSolutionsViolations(report);
      expect(violations.map((v) => v.ruleName)).toContain('AwsSolutions-DDB3');
      expect(violations.find((v) => v.ruleName === 'AwsSolutions-DDB3')?.violatingConstructs?.[0]?.constructPath).toBe(
        'Control/Unprotected/Resource',
      );
      const schema = report.pluginReports.find((r) => r.pluginName === 'CloudFormation Validate');
      expect(schema?.violations).toEqual(
        expect.arrayContaining([expect.objectContaining({ ruleName: 'F3002', severity: 'error' })]),
      );
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('synth-time checks of the constructs', () => {
  // An App without an outdir makes a temporary directory of its own and never removes it: give them one.
  let outdir: string;
  beforeAll(() => {
    outdir = mkdtempSync(join(tmpdir(), 'kairos-checks-'));
  });
  afterAll(() => {
    if (outdir) rmSync(outdir, { recursive: true, force: true });
  });
  const newStack = () => new Stack(new App({ context: SKIP_BUNDLING, outdir }), 'Checks');
  const dummyFunction = (stack: Stack, id: string) =>
    new LambdaFunction(stack, id, { runtime: Runtime.NODEJS_24_X, handler: 'index.handler', code: Code.fromInline('export const handler = async () => ({});') });

  it('refuses a duplicate route and a CORS admin route', () => {
    const stack = newStack();
    const fns = { ingest: dummyFunction(stack, 'I'), decide: dummyFunction(stack, 'D'), admin: dummyFunction(stack, 'A'), health: dummyFunction(stack, 'H') };
    const batch = routes.find((r) => r.path === '/v1/batch') as Route;
    expect(() => new KairosHttpApi(stack, 'Dup', { routes: [batch, batch], functions: fns })).toThrow(/duplicate route POST \/v1\/batch/);
    const corsAdmin: Route = { method: 'GET', path: '/v1/admin/catalog', function: 'admin', auth: 'iam', cors: true };
    expect(() => new KairosHttpApi(stack, 'Cors', { routes: [corsAdmin], functions: fns })).toThrow(/IAM routes never answer CORS/);
  });

  it('refuses a second binding of the same table and unbounded stream retries', () => {
    const stack = newStack();
    const profiles = new KairosTable(stack, 'Profiles', { definition: profilesTable });
    const events = new KairosTable(stack, 'Events', { definition: eventsTable });
    const fn = new KairosFunction(stack, 'Fn', { entry: 'functions/health/handler.ts', description: 'check' });
    fn.bindTable(profiles, 'read');
    expect(() => fn.bindTable(profiles, 'readwrite')).toThrow(/already bound/);
    expect(() => new ProfileStream(stack, 'Stream', { source: events, target: fn, retryAttempts: -1 })).toThrow(/bounded/);
    expect(() => new ProfileStream(stack, 'NoStream', { source: profiles, target: fn })).toThrow(/declares no stream/);
  });

  it('refuses an alarm topic that is not an SNS topic ARN', () => {
    expect(() => createKairosApp({ outdir, context: { ...SKIP_BUNDLING, [CONTEXT_KEYS.alarmTopicArn]: 'ops@example.com' } })).toThrow(
      /not an SNS topic ARN/,
    );
  });

  it('refuses a user token lifetime the functions would refuse (not a number, or outside 60 to 604800 seconds)', () => {
    for (const value of ['a day', '59', 604_801, true]) {
      expect(() => createKairosApp({ outdir, context: { ...SKIP_BUNDLING, [CONTEXT_KEYS.userTokenMaxLifetimeSeconds]: value } })).toThrow(
        /^Context kairos:userTokenMaxLifetimeSeconds must be a number/,
      );
    }
  });

  it.each([
    [CONTEXT_KEYS.decideDeadlineMs, [49, '25000', 4_001], /must be a number from 50 to 4000, got .* \(the decide function times out after 5 s; its deadline keeps 1000 ms under that\)$/],
    [CONTEXT_KEYS.staleMaxSeconds, [-1, '604801'], /must be a number from 0 to 604800, got /],
    [CONTEXT_KEYS.historyDays, [29, '3651'], /must be a number from 30 to 3650, got /],
    [CONTEXT_KEYS.interestHalfLifeDays, [0, '3651'], /must be a number from 0\.001 to 3650, got /],
    [CONTEXT_KEYS.evaluationShards, [0, '1001', 2.5, '-1'], /must be a whole number from 1 to 1000, got /],
  ])('refuses %s outside what the functions accept', (key, values, message) => {
    for (const value of values) {
      expect(() => createKairosApp({ outdir, context: { ...SKIP_BUNDLING, [key]: value } })).toThrow(message);
      expect(() => createKairosApp({ outdir, context: { ...SKIP_BUNDLING, [key]: value } })).toThrow(new RegExp(`^Context ${key} `));
    }
    for (const value of ['soon', true]) {
      expect(() => createKairosApp({ outdir, context: { ...SKIP_BUNDLING, [key]: value } })).toThrow(new RegExp(`^Context ${key} must be a number, got .*[^)]$`));
    }
    // Empty is unset: the functions' default.
    expect(() => createKairosApp({ outdir, context: { ...SKIP_BUNDLING, [key]: '' } })).not.toThrow();
  });

  it('refuses an entry that is not a TypeScript module', () => {
    const stack = newStack();
    expect(() => new KairosFunction(stack, 'Js', { entry: 'functions/health/handler.js', description: 'x' })).toThrow(
      /must be a TypeScript module/,
    );
  });
});
