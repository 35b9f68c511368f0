/**
 * The synthesized Kairos stack, built once (with the real esbuild bundling)
 * and checked against the shared definitions it is generated from: the table
 * definitions, the route table and the function manifest.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { SourceMap, type SourceMapPayload } from 'node:module';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type { CfnElement } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import type { IConstruct } from 'constructs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiGatewayEvent } from '../support/apigw.ts';
import { LAZY_MODULES, lazyModuleFolder } from '#infra/bundling.ts';
import { ESM_REQUIRE_BANNER, PROJECT_ROOT } from '#infra/constructs/kairos-function.ts';
import { METRIC_ALARMS } from '#infra/constructs/kairos-monitoring.ts';
import { createKairosApp } from '#infra/kairos-app.ts';
import type { KairosStack } from '#infra/kairos-stack.ts';
import { dispatcherStreamSettings, functionDefinitions, METRICS_NAMESPACE, profileStreamSettings, serviceNameOf, type Access, type FunctionDefinition, type LambdaName } from '#shared/functions.ts';
import { routeKey, routeKeysOf, routes } from '#http/routes.ts';
import { tables as tableTuple, type TableDefinition, type TableName } from '#store/tables.ts';
import { DECISION_LOG_COLUMNS, DECISION_RECORD_MESSAGE } from '#domain/evaluation/decision-record.ts';
import { JOURNEY_TIMER_KEY_PREFIX } from '#domain/journeys/timer.ts';
import { ERASURE_RECORD_PREFIX } from '#store/items.ts';
import {
  DYNAMODB_WRITE_ACTIONS,
  asArray,
  referencedLogicalId,
  referencesIn,
  resourcesOfType,
  roleStatements,
  tableActions,
  type CfnResource,
  type PolicyStatement,
} from './support.ts';

let outdir: string;
let assemblyDir: string;
let stack: KairosStack;
let template: Template;
let resources: Record<string, CfnResource>;

const logicalId = (construct: IConstruct): string =>
  stack.resolve((construct.node.defaultChild as CfnElement).logicalId) as string;
const tableId = (name: TableName): string => stack.tables[name].logicalId;
const functionId = (name: LambdaName): string => logicalId(stack.functions[name]);
const roleId = (name: LambdaName): string => logicalId(stack.functions[name].executionRole);
const queueId = (): string => logicalId(stack.profileStream.failureQueue);
const outboxQueueId = (): string => logicalId(stack.outboxStream.failureQueue);
const timerQueueId = (): string => logicalId(stack.emissions.timerFailureQueue);
/** The event source mapping of a function (one each). */
const mappingOf = (name: LambdaName): CfnResource | undefined =>
  Object.values(resourcesOfType(template, 'AWS::Lambda::EventSourceMapping')).find(
    (m) => (m.Properties?.FunctionName as { Ref?: string } | undefined)?.Ref === functionId(name),
  );

const tables: readonly TableDefinition[] = tableTuple;
const manifest = Object.entries(functionDefinitions) as [LambdaName, (typeof functionDefinitions)[LambdaName]][];
const tableAccess = (fn: LambdaName): Partial<Record<TableName, Access>> => functionDefinitions[fn].tables;
const streamReaders = manifest.filter(([, d]) => (d as { readsStream?: boolean }).readsStream).map(([n]) => n);

beforeAll(() => {
  outdir = mkdtempSync(join(tmpdir(), 'kairos-infra-'));
  // CDK's CloudFormation template validation is checked in validation.infra.test.ts; it is the slow part of synth.
  const built = createKairosApp({ outdir, cloudFormationValidation: false });
  stack = built.stack;
  // Bundles every function with the local esbuild and runs the validation
  // plugins (cdk-nag): a finding without an acknowledgement throws here.
  assemblyDir = built.app.synth().directory;
  template = Template.fromStack(stack); // reuses the assembly above
  resources = template.toJSON().Resources as Record<string, CfnResource>;
});

const execFileAsync = promisify(execFile);

afterAll(() => {
  if (outdir) rmSync(outdir, { recursive: true, force: true });
});

describe('tables, from shared/store/tables.ts', () => {
  const keySchema = (def: TableDefinition) => [
    { AttributeName: def.partitionKey.name, KeyType: 'HASH' },
    ...(def.sortKey ? [{ AttributeName: def.sortKey.name, KeyType: 'RANGE' }] : []),
  ];

  it('creates exactly one table per definition and no other', () => {
    expect(Object.keys(resourcesOfType(template, 'AWS::DynamoDB::GlobalTable')).sort()).toEqual(
      tables.map((t) => tableId(t.id)).sort(),
    );
    expect(resourcesOfType(template, 'AWS::DynamoDB::Table')).toEqual({});
  });

  it.each(tables.map((t) => [t.id, t] as const))(
    '%s: on demand, PITR, TTL, AWS-managed encryption, deletion protection, retained',
    (_id, def) => {
      const single = Template.fromJSON({ Resources: { [tableId(def.id)]: resources[tableId(def.id)] } });
      single.hasResource('AWS::DynamoDB::GlobalTable', {
        DeletionPolicy: 'Retain',
        UpdateReplacePolicy: 'Retain',
        Properties: Match.objectLike({
          KeySchema: keySchema(def),
          BillingMode: 'PAY_PER_REQUEST',
          TimeToLiveSpecification: { AttributeName: def.timeToLiveAttribute, Enabled: true },
          SSESpecification: { SSEEnabled: true, SSEType: 'KMS' },
          Replicas: [
            Match.objectLike({
              PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
              DeletionProtectionEnabled: true,
            }),
          ],
          StreamSpecification: def.stream ? { StreamViewType: def.stream } : Match.absent(),
        }),
      });
      // AWS-managed key: no customer key to manage or to grant.
      expect(JSON.stringify(resources[tableId(def.id)]?.Properties)).not.toContain('KMSMasterKeyId');
    },
  );

  it('Events streams NEW_IMAGE and has the byProfile index with its keys and projection', () => {
    const events = tables.find((t) => t.id === 'Events');
    expect(events?.globalSecondaryIndexes?.length).toBeGreaterThan(0);
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
      GlobalSecondaryIndexes: (events?.globalSecondaryIndexes ?? []).map((index) => ({
        IndexName: index.indexName,
        KeySchema: [
          { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
          ...(index.sortKey ? [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' }] : []),
        ],
        Projection: { ProjectionType: index.projection },
      })),
      AttributeDefinitions: Match.arrayWith([
        { AttributeName: 'profileKey', AttributeType: 'S' },
        { AttributeName: 'sortKey', AttributeType: 'S' },
      ]),
    });
  });
});

describe('Outbox byProfile index', () => {
  it('Outbox streams NEW_IMAGE and has the byProfile index (profileKey, sendAt; keys only) the erasure queries', () => {
    const outbox = tables.find((t) => t.id === 'Outbox');
    expect(outbox?.globalSecondaryIndexes).toEqual([
      { indexName: 'byProfile', partitionKey: { name: 'profileKey', type: 'S' }, sortKey: { name: 'sendAt', type: 'N' }, projection: 'KEYS_ONLY' },
    ]);
    expect(resources[tableId('Outbox')]?.Properties).toMatchObject({
      StreamSpecification: { StreamViewType: 'NEW_IMAGE' },
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byProfile',
          KeySchema: [
            { AttributeName: 'profileKey', KeyType: 'HASH' },
            { AttributeName: 'sendAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
      AttributeDefinitions: expect.arrayContaining([
        { AttributeName: 'profileKey', AttributeType: 'S' },
        { AttributeName: 'sendAt', AttributeType: 'N' },
      ]) as unknown,
    });
  });
});

describe('Profiles byProfile index', () => {
  it('Profiles has the byProfile index (profileKey, mergedAt; keys only) by which the export and the erasure find every identity link', () => {
    const profiles = tables.find((t) => t.id === 'Profiles');
    expect(profiles?.globalSecondaryIndexes).toEqual([
      { indexName: 'byProfile', partitionKey: { name: 'profileKey', type: 'S' }, sortKey: { name: 'mergedAt', type: 'S' }, projection: 'KEYS_ONLY' },
    ]);
    expect(resources[tableId('Profiles')]?.Properties).toMatchObject({
      GlobalSecondaryIndexes: [
        {
          IndexName: 'byProfile',
          KeySchema: [
            { AttributeName: 'profileKey', KeyType: 'HASH' },
            { AttributeName: 'mergedAt', KeyType: 'RANGE' },
          ],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      ],
      AttributeDefinitions: expect.arrayContaining([
        { AttributeName: 'pk', AttributeType: 'S' },
        { AttributeName: 'profileKey', AttributeType: 'S' },
        { AttributeName: 'mergedAt', AttributeType: 'S' },
      ]) as unknown,
    });
  });
});

describe('Events stream → profile function', () => {
  it('has one mapping with partial batch responses, bisect, bounded retries and age, INSERT filter, failure queue', () => {
    // The Events stream's, the Outbox stream's and the decision counts queue's (below).
    template.resourceCountIs('AWS::Lambda::EventSourceMapping', 3);
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId('profile') },
      EventSourceArn: { 'Fn::GetAtt': [tableId('Events'), 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: 100,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: Match.anyValue(),
      MaximumRecordAgeInSeconds: Match.anyValue(),
      ParallelizationFactor: Match.anyValue(),
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT'] }) }] },
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId(), 'Arn'] } } },
    });
    const mapping = mappingOf('profile');
    const p = mapping?.Properties as Record<string, number>;
    // -1 would mean "retry until the record expires": a poison record would block its shard for 24 h.
    expect(p.MaximumRetryAttempts).toBeGreaterThanOrEqual(0);
    expect(p.MaximumRetryAttempts).toBeLessThanOrEqual(10);
    expect(p.MaximumRecordAgeInSeconds).toBeGreaterThanOrEqual(60);
    expect(p.MaximumRecordAgeInSeconds).toBeLessThan(24 * 3600);
    expect(p.MaximumBatchingWindowInSeconds ?? 0).toBeLessThanOrEqual(1);
    // The local stack's poller reads the same settings (shared/functions.ts).
    expect({
      batchSize: p.BatchSize,
      retryAttempts: p.MaximumRetryAttempts,
      maxRecordAgeSeconds: p.MaximumRecordAgeInSeconds,
      parallelizationFactor: p.ParallelizationFactor,
      maxBatchingWindowSeconds: p.MaximumBatchingWindowInSeconds ?? 0,
    }).toEqual({
      batchSize: profileStreamSettings.batchSize,
      retryAttempts: profileStreamSettings.retryAttempts,
      maxRecordAgeSeconds: profileStreamSettings.maxRecordAgeSeconds,
      parallelizationFactor: profileStreamSettings.parallelizationFactor,
      maxBatchingWindowSeconds: profileStreamSettings.maxBatchingWindowSeconds,
    });
    expect(p.ParallelizationFactor).toBeGreaterThanOrEqual(1);
    expect(p.ParallelizationFactor).toBeLessThanOrEqual(10);
  });

  it('sends given-up records to an encrypted, TLS-only queue kept 14 days', () => {
    expect(resources[queueId()]?.Properties).toMatchObject({
      SqsManagedSseEnabled: true,
      MessageRetentionPeriod: 14 * 24 * 3600,
    });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queueId() }],
      PolicyDocument: Match.objectLike({
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      }),
    });
  });

  it('alarms on a non-empty failure queue, on iterator age and on every function error', () => {
    const errorAlarms = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm')).filter(
      (a) => a.Properties?.MetricName === 'Errors',
    );
    expect(errorAlarms.map((a) => referencesIn(a.Properties?.Dimensions)[0]?.id).sort()).toEqual(
      manifest.map(([name]) => functionId(name)).sort(),
    );
    // Without an operator topic the alarms have no action (they still show their state).
    expect(errorAlarms.every((a) => a.Properties?.AlarmActions === undefined)).toBe(true);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId(), 'QueueName'] } }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    // The Outbox stream's failure queue too: an emission given up on by the dispatcher never goes unnoticed.
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [logicalId(stack.outboxStream.failureQueue), 'QueueName'] } }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/Lambda',
      MetricName: 'IteratorAge',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId('profile') } }],
      ComparisonOperator: 'GreaterThanThreshold',
    });
    for (const [name] of manifest) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: 'Errors',
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId(name) } }],
        Threshold: 1,
      });
    }
  });

  it("alarms on the metrics of METRIC_ALARMS, each one a function emits: degraded decisions and ingest's store faults", () => {
    expect(METRIC_ALARMS.map((a) => `${a.function}:${a.metric}`).sort()).toEqual(['decide:DegradedDecisions', 'ingest:StoreFaults']);
    const ownMetricAlarms = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Alarm')).filter((a) => a.Properties?.Namespace === METRICS_NAMESPACE);
    expect(ownMetricAlarms.map((a) => a.Properties?.MetricName).sort()).toEqual(METRIC_ALARMS.map((a) => a.metric).sort());
    for (const definition of METRIC_ALARMS) {
      // The metric the alarm watches is one its function emits, under that name.
      const source = readFileSync(join(PROJECT_ROOT, functionDefinitions[definition.function].entry), 'utf8');
      expect(source).toContain(`metrics.addMetric('${definition.metric}', MetricUnit.Count`);
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: METRICS_NAMESPACE,
        MetricName: definition.metric,
        Dimensions: [{ Name: 'service', Value: serviceNameOf(definition.function) }],
        Statistic: 'Sum',
        Period: 60,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        EvaluationPeriods: 5,
        DatapointsToAlarm: 3,
        TreatMissingData: 'notBreaching',
        AlarmDescription: definition.description,
      });
    }
  });
});

describe('Outbox stream → dispatcher → EventBridge bus and Scheduler', () => {
  const busId = () => logicalId(stack.emissions.bus);
  const schedulerRoleId = () => logicalId(stack.emissions.schedulerRole);

  it('maps the Outbox stream to the dispatcher with partial batch responses, bisect, bounded retries, INSERT and REMOVE filters and its own failure queue', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: functionId('dispatcher') },
      EventSourceArn: { 'Fn::GetAtt': [tableId('Outbox'), 'StreamArn'] },
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: dispatcherStreamSettings.batchSize,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: dispatcherStreamSettings.retryAttempts,
      MaximumRecordAgeInSeconds: dispatcherStreamSettings.maxRecordAgeSeconds,
      // New emissions, and the erasure's removals (an emission erased before it was read has its schedule cancelled).
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ eventName: ['INSERT'] }) }, { Pattern: JSON.stringify({ eventName: ['REMOVE'] }) }] },
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [outboxQueueId(), 'Arn'] } } },
    });
    expect(resources[outboxQueueId()]?.Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
  });

  it('has one bus and one schedule group, and tells the dispatcher their names and the scheduler role', () => {
    template.resourceCountIs('AWS::Events::EventBus', 1);
    template.resourceCountIs('AWS::Scheduler::ScheduleGroup', 1);
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          KAIROS_BUS_ARN: { 'Fn::GetAtt': [busId(), 'Arn'] },
          KAIROS_SCHEDULE_GROUP: Match.anyValue(),
          KAIROS_SCHEDULER_ROLE_ARN: { 'Fn::GetAtt': [schedulerRoleId(), 'Arn'] },
        }),
      },
      Handler: Match.anyValue(),
    });
    const dispatcher = resources[functionId('dispatcher')]?.Properties as { Environment: { Variables: Record<string, unknown> } };
    expect(dispatcher.Environment.Variables.KAIROS_BUS_ARN).toEqual({ 'Fn::GetAtt': [busId(), 'Arn'] });
  });

  it('the evaluation\'s first step reads of the Profiles table only erasure records, by key: no profile, no Query or Scan, no index', () => {
    const statements = roleStatements(template, roleId('evaluationInputs'));
    const { table, index } = tableActions(statements, tables.map((t) => tableId(t.id)));
    expect([...(table.get(tableId('Profiles')) ?? [])].sort()).toEqual(['dynamodb:BatchGetItem', 'dynamodb:GetItem']);
    expect(index.get(tableId('Profiles'))).toBeUndefined();
    const onProfiles = statements.filter((s) => referencesIn(s.Resource).some((r) => r.id === tableId('Profiles')));
    expect(onProfiles).toHaveLength(1);
    expect(onProfiles[0]?.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${ERASURE_RECORD_PREFIX}*`] } });
  });

  it('the dispatcher may put on this bus and create (and delete: an erased emission\'s) schedules in this group, passing only the scheduler role to Scheduler; nothing else', () => {
    const statements = roleStatements(template, roleId('dispatcher'));
    const of = (action: string) => statements.filter((s) => asArray(s.Action).includes(action));
    expect(of('events:PutEvents').flatMap((s) => referencesIn(s.Resource).map((r) => r.id))).toEqual([busId()]);
    const create = of('scheduler:CreateSchedule');
    expect(create).toHaveLength(1);
    expect(asArray(create[0]?.Action)).toEqual(['scheduler:CreateSchedule', 'scheduler:DeleteSchedule']);
    expect(JSON.stringify(create[0]?.Resource)).toContain(`:schedule/${stack.emissions.scheduleGroup.scheduleGroupName}/*`);
    const pass = of('iam:PassRole');
    expect(pass.flatMap((s) => referencesIn(s.Resource).map((r) => r.id))).toEqual([schedulerRoleId()]);
    expect(pass[0]?.Condition).toEqual({ StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } });
    const actions = [...new Set(statements.flatMap((s) => asArray(s.Action)))];
    const own = ['events:PutEvents', 'scheduler:CreateSchedule', 'scheduler:DeleteSchedule', 'iam:PassRole'];
    // Beyond its stream, its failure queue, its logs and X-Ray: only its own three.
    expect(actions.filter((a) => !/^(dynamodb|xray|sqs|logs):/.test(a) && !own.includes(a))).toEqual([]);
    // Of the tables: PutItem on the Events table alone (due journey timers), nothing else…
    const { table } = tableActions(statements, tables.map((t) => tableId(t.id)));
    expect([...table.entries()].map(([id, a]) => [id, [...a]])).toEqual([[tableId('Events'), ['dynamodb:PutItem']]]);
    // …and only of items whose partition key is a journey timer's (kairos#jt-…): no other event can be forged.
    const puts = statements.filter((s) => asArray(s.Action).includes('dynamodb:PutItem'));
    expect(puts).toHaveLength(1);
    expect(referencesIn(puts[0]?.Resource).map((r) => r.id)).toEqual([tableId('Events')]);
    expect(puts[0]?.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${JOURNEY_TIMER_KEY_PREFIX}*`] } });
    const environment = (resources[functionId('dispatcher')]?.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    expect(environment.EVENTS_TABLE).toEqual({ Ref: tableId('Events') });
    // No other function may put on the bus or schedule (the admin function may only cancel, below).
    for (const [name] of manifest.filter(([n]) => n !== 'dispatcher')) {
      const others = roleStatements(template, roleId(name)).flatMap((s) => asArray(s.Action));
      expect(others.filter((a) => a.startsWith('events:') || a.startsWith('scheduler:') || a === 'iam:PassRole')).toEqual(
        name === 'admin' ? ['scheduler:DeleteSchedule'] : [],
      );
    }
  });

  it("the admin function may delete schedules of this group only (the erasure cancels a customer's pending sends), and the Outbox's items, never put them", () => {
    const statements = roleStatements(template, roleId('admin'));
    const remove = statements.filter((s) => asArray(s.Action).includes('scheduler:DeleteSchedule'));
    expect(remove).toHaveLength(1);
    expect(asArray(remove[0]?.Action)).toEqual(['scheduler:DeleteSchedule']);
    expect(JSON.stringify(remove[0]?.Resource)).toContain(`:schedule/${stack.emissions.scheduleGroup.scheduleGroupName}/*`);
    const variables = (name: LambdaName) => (resources[functionId(name)]?.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    // The group the dispatcher schedules in, and nothing to schedule with.
    expect(variables('admin').KAIROS_SCHEDULE_GROUP).toBeDefined();
    expect(variables('admin').KAIROS_SCHEDULE_GROUP).toEqual(variables('dispatcher').KAIROS_SCHEDULE_GROUP);
    expect(variables('admin').KAIROS_BUS_ARN).toBeUndefined();
    expect(variables('admin').KAIROS_SCHEDULER_ROLE_ARN).toBeUndefined();
    const { table, index } = tableActions(statements, tables.map((t) => tableId(t.id)));
    const outbox = [...(table.get(tableId('Outbox')) ?? [])];
    expect(outbox).toEqual(expect.arrayContaining(['dynamodb:Query', 'dynamodb:Scan', 'dynamodb:DeleteItem']));
    for (const action of ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:BatchWriteItem']) expect(outbox).not.toContain(action);
    expect([...(index.get(tableId('Outbox')) ?? [])]).toContain('dynamodb:Query');
  });

  it('the bus says what it carries', () => {
    const bus = resources[busId()]?.Properties as { Description: string };
    for (const what of ['trigger', 'journey actions', 'journey timers', 'source "kairos"']) expect(bus.Description).toContain(what);
  });

  it('a fired timer (a journey wait, a deferred send) comes back to the dispatcher: one rule on their detail-types, on this bus, the only one that may invoke it', () => {
    // The stack's other rule is the decision counts' (below), on the default bus.
    expect(Object.values(resourcesOfType(template, 'AWS::Events::Rule')).filter((r) => r.Properties?.EventBusName !== undefined)).toHaveLength(1);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventBusName: { Ref: busId() },
      EventPattern: { source: ['kairos'], 'detail-type': ['Kairos Journey Timer', 'Kairos Send Timer'] },
      Targets: [
        Match.objectLike({
          Arn: { 'Fn::GetAtt': [functionId('dispatcher'), 'Arn'] },
          DeadLetterConfig: { Arn: { 'Fn::GetAtt': [timerQueueId(), 'Arn'] } },
          RetryPolicy: { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 6 * 3600 },
        }),
      ],
    });
    const permissions = Object.values(resourcesOfType(template, 'AWS::Lambda::Permission')).filter(
      (p) => p.Properties?.Principal === 'events.amazonaws.com',
    );
    expect(permissions.map((p) => [referencesIn(p.Properties?.FunctionName).map((r) => r.id), referencesIn(p.Properties?.SourceArn).map((r) => r.id)])).toEqual([
      [[functionId('dispatcher')], [logicalId(stack.emissions.timerRule)]],
    ]);
  });

  it('a timer is never lost unnoticed: the rule target\'s DLQ and the dispatcher\'s async on-failure destination are one encrypted queue, SSL only, kept 14 days, with an alarm', () => {
    expect(resources[timerQueueId()]?.Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: functionId('dispatcher') },
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 6 * 3600,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [timerQueueId(), 'Arn'] } } },
    });
    template.resourceCountIs('AWS::Lambda::EventInvokeConfig', 1);
    // EventBridge may send to it for this rule only; nothing may reach it without TLS.
    const policies = Object.values(resourcesOfType(template, 'AWS::SQS::QueuePolicy')).filter((p) =>
      referencesIn(p.Properties?.Queues).some((r) => r.id === timerQueueId()),
    );
    const statements = policies.flatMap((p) => (p.Properties?.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement);
    const fromEvents = statements.filter((st) => (st.Principal as { Service?: string } | undefined)?.Service === 'events.amazonaws.com');
    expect(fromEvents).toEqual([
      expect.objectContaining({ Effect: 'Allow', Action: 'sqs:SendMessage', Condition: { ArnEquals: { 'aws:SourceArn': { 'Fn::GetAtt': [logicalId(stack.emissions.timerRule), 'Arn'] } } } }),
    ]);
    expect(statements.some((st) => st.Effect === 'Deny' && JSON.stringify(st.Condition).includes('aws:SecureTransport'))).toBe(true);
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [timerQueueId(), 'QueueName'] } }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
  });

  it('Scheduler\'s role: assumed by Scheduler of this account only, may only put on this bus and dead-letter to the timer failure queue', () => {
    template.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [
          Match.objectLike({
            Effect: 'Allow',
            Action: 'sts:AssumeRole',
            Principal: { Service: 'scheduler.amazonaws.com' },
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          }),
        ],
      },
    });
    const statements = roleStatements(template, schedulerRoleId());
    const put = statements.filter((s) => asArray(s.Action).includes('events:PutEvents'));
    expect(put.flatMap((s) => referencesIn(s.Resource).map((r) => r.id))).toEqual([busId()]);
    // …and send what the bus refused past its retries to the timer failure queue (each schedule's dead-letter queue).
    const send = statements.filter((s) => asArray(s.Action).includes('sqs:SendMessage'));
    expect(send.flatMap((s) => referencesIn(s.Resource).map((r) => r.id))).toEqual([timerQueueId()]);
    expect([...new Set(statements.flatMap((s) => asArray(s.Action)))].sort()).toEqual(['events:PutEvents', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage']);
    const environment = (resources[functionId('dispatcher')]?.Properties as { Environment: { Variables: Record<string, unknown> } }).Environment.Variables;
    expect(environment.KAIROS_SCHEDULE_DLQ_ARN).toEqual({ 'Fn::GetAtt': [timerQueueId(), 'Arn'] });
  });
});

describe('operations dashboard', () => {
  it('shows the API, the functions, the stream lag and the failure queue', () => {
    const dashboards = Object.values(resourcesOfType(template, 'AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    const body = JSON.stringify(dashboards[0]?.Properties?.DashboardBody);
    for (const metric of ['AWS/ApiGateway', 'Latency', 'IteratorAge', 'ApproximateNumberOfMessagesVisible', 'Duration']) {
      expect(body).toContain(metric);
    }
    for (const [name] of manifest) expect(body).toContain(functionId(name));
  });
});

describe('HTTP API, from shared/http/routes.ts', () => {
  const routeResources = () => Object.values(resourcesOfType(template, 'AWS::ApiGatewayV2::Route'));
  const routeByKey = (key: string) => routeResources().find((r) => r.Properties?.RouteKey === key);
  /** The function logical id a route's integration invokes. */
  const targetFunction = (route: CfnResource | undefined): string | undefined => {
    const integrationId = referencesIn(route?.Properties?.Target)[0]?.id;
    const integration = integrationId ? resources[integrationId] : undefined;
    expect(integration?.Type).toBe('AWS::ApiGatewayV2::Integration');
    expect(integration?.Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0' });
    return referencedLogicalId(integration?.Properties?.IntegrationUri);
  };
  const corsPaths = [...new Set(routes.filter((r) => r.cors).map((r) => r.path))];

  it.each(routes.flatMap((r) => routeKeysOf(r).map((key) => [key, r] as const)))('%s exists with its authorization and function (a GET route on HEAD too)', (key, route) => {
    const resource = routeByKey(key);
    expect(resource, `route ${key}`).toBeDefined();
    expect(resource?.Properties?.AuthorizationType).toBe(route.auth === 'iam' ? 'AWS_IAM' : 'NONE');
    expect(resource?.Properties?.AuthorizerId).toBeUndefined();
    expect(targetFunction(resource)).toBe(functionId(route.function as LambdaName));
  });

  it('serves HEAD /v1/health, without authorization, with the health function (uptime monitors probe with HEAD)', () => {
    const head = routeByKey('HEAD /v1/health');
    expect(head ? 'HEAD /v1/health' : 'missing HEAD /v1/health').toBe('HEAD /v1/health');
    expect(head?.Properties?.AuthorizationType).toBe('NONE');
    expect(targetFunction(head)).toBe(functionId('health'));
    // HEAD is served exactly where GET is.
    const keys = routeResources().map((r) => String(r.Properties?.RouteKey));
    const paths = (method: string) => keys.filter((k) => k.startsWith(`${method} `)).map((k) => k.slice(method.length + 1)).sort();
    expect(paths('HEAD')).toEqual(paths('GET'));
  });

  it('answers preflight (OPTIONS, no authorizer) on every CORS path, with the same function, and never on admin paths', () => {
    for (const path of corsPaths) {
      const resource = routeByKey(`OPTIONS ${path}`);
      expect(resource, `OPTIONS ${path}`).toBeDefined();
      expect(resource?.Properties?.AuthorizationType).toBe('NONE');
      const owner = routes.find((r) => r.path === path && r.cors);
      expect(targetFunction(resource)).toBe(functionId(owner?.function as LambdaName));
    }
    const optionsKeys = routeResources()
      .map((r) => String(r.Properties?.RouteKey))
      .filter((k) => k.startsWith('OPTIONS '));
    expect(optionsKeys.sort()).toEqual(corsPaths.map((p) => `OPTIONS ${p}`).sort());
    expect(optionsKeys.some((k) => k.includes('/admin/'))).toBe(false);
  });

  it.each(['b', 't', 'i', 'p', 's', 'a', 'g'])("serves Segment's short route /v1/%s with the ingest function, and its preflight", (short) => {
    for (const key of [`POST /v1/${short}`, `OPTIONS /v1/${short}`]) {
      const resource = routeByKey(key);
      expect(resource ? key : `missing ${key}`).toBe(key);
      expect(resource?.Properties?.AuthorizationType).toBe('NONE');
      expect(targetFunction(resource)).toBe(functionId('ingest'));
    }
  });

  it('has no route beyond the table and its preflights, and no catch-all', () => {
    // + 1: the $default route (404/405 in the API's error shape).
    template.resourceCountIs('AWS::ApiGatewayV2::Route', routes.flatMap(routeKeysOf).length + corsPaths.length + 1);
    const defaults = routeResources().filter((r) => String(r.Properties?.RouteKey) === '$default');
    expect(defaults).toHaveLength(1);
    expect(defaults[0]?.Properties?.AuthorizationType ?? 'NONE').toBe('NONE');
    expect(routeResources().filter((r) => String(r.Properties?.RouteKey).includes('$default'))).toHaveLength(1);
    expect(routeResources().some((r) => String(r.Properties?.RouteKey).startsWith('ANY '))).toBe(false);
  });

  it('only lets this API invoke the functions, each permission scoped to a route path (the $default catch-all to health only)', () => {
    const apiId = logicalId(stack.api.httpApi);
    const all = Object.values(resourcesOfType(template, 'AWS::Lambda::Permission'));
    // Besides this API, only the journey-timer rule invokes a function (the dispatcher; pinned with the bus below).
    const permissions = all.filter((p) => p.Properties?.Principal !== 'events.amazonaws.com');
    expect(all.length - permissions.length).toBe(1);
    expect(permissions.length).toBeGreaterThan(0);
    const catchAll: unknown[] = [];
    for (const permission of permissions) {
      expect(permission.Properties?.Principal).toBe('apigateway.amazonaws.com');
      const sourceArn = JSON.stringify(permission.Properties?.SourceArn);
      expect(referencesIn(permission.Properties?.SourceArn).map((r) => r.id)).toContain(apiId);
      if (/\/\*\/\*\/v1\//.test(sourceArn)) continue;
      catchAll.push(permission.Properties?.FunctionName);
    }
    expect(catchAll).toEqual([{ 'Fn::GetAtt': [functionId('health'), 'Arn'] }]);
  });

  it('logs every request to a log group with retention, and throttles the stage', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      AccessLogSettings: {
        DestinationArn: { 'Fn::GetAtt': [logicalId(stack.api.accessLogGroup), 'Arn'] },
        Format: Match.stringLikeRegexp('\\$context\\.requestId'),
      },
      DefaultRouteSettings: { ThrottlingRateLimit: Match.anyValue(), ThrottlingBurstLimit: Match.anyValue() },
    });
    expect(resources[logicalId(stack.api.accessLogGroup)]?.Properties?.RetentionInDays).toBeGreaterThan(0);
  });

  it("names each request's route in the access log, never its path: a customer's id in a path (DELETE /v1/admin/profiles/{userId}) is not kept after the erasure", () => {
    const stage = Object.values(resourcesOfType(template, 'AWS::ApiGatewayV2::Stage'))[0];
    const format = JSON.parse(String((stage?.Properties?.AccessLogSettings as { Format?: unknown } | undefined)?.Format)) as Record<string, string>;
    expect(format.routeKey).toBe('$context.routeKey');
    // The variables that hold the request's path as it was sent (API Gateway HTTP API access logging variables).
    expect(Object.values(format).filter((v) => /\$context\.(path|requestPath|resourcePath)\b/.test(v))).toEqual([]);
  });

  it('outputs the API URL', () => {
    const output = template.findOutputs('ApiUrl').ApiUrl as { Value: unknown } | undefined;
    expect(output).toBeDefined();
    expect(referencesIn(output?.Value).map((r) => r.id)).toContain(logicalId(stack.api.httpApi));
    expect(JSON.stringify(output?.Value)).toContain('https://');
  });
});

describe('functions, from shared/functions.ts', () => {
  /** The directory the function's code asset was bundled into, via the stack's asset manifest. */
  const bundleDirectory = (name: LambdaName): string => {
    const code = resources[functionId(name)]?.Properties?.Code as { S3Key: string };
    const hash = code.S3Key.replace(/\.zip$/, '');
    const assets = JSON.parse(readFileSync(join(assemblyDir, `${stack.artifactId}.assets.json`), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging?: string } }>;
    };
    const source = assets.files[hash]?.source;
    expect(source?.packaging).toBe('zip');
    return join(assemblyDir, String(source?.path));
  };

  it('creates exactly the manifest functions', () => {
    expect(Object.keys(resourcesOfType(template, 'AWS::Lambda::Function')).sort()).toEqual(
      manifest.map(([name]) => functionId(name)).sort(),
    );
  });

  it.each(manifest)('%s: nodejs24.x, arm64, index.handler, tracing, JSON logs to its own log group', (name, def) => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      FunctionName: Match.absent(),
      Description: def.description,
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: def.memorySize,
      Timeout: def.timeoutSeconds,
      TracingConfig: { Mode: 'Active' },
      Role: { 'Fn::GetAtt': [roleId(name), 'Arn'] },
      LoggingConfig: Match.objectLike({ LogFormat: 'JSON', LogGroup: { Ref: logicalId(stack.functions[name].functionLogGroup) } }),
      Environment: {
        Variables: Match.objectLike({
          // No --enable-source-maps: stack traces are mapped on first need (shared/stack-traces.ts), not at every cold start.
          NODE_OPTIONS: Match.absent(),
          // The one naming rule of shared/functions.ts, as the function's own logger and metrics use it.
          POWERTOOLS_SERVICE_NAME: serviceNameOf(name),
          POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
          KAIROS_VERSION: (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string })
            .version,
        }),
      },
    });
    const logGroup = resources[logicalId(stack.functions[name].functionLogGroup)];
    expect(logGroup?.Type).toBe('AWS::Logs::LogGroup');
    expect(logGroup?.Properties?.RetentionInDays).toBeGreaterThan(0);
  });

  it.each(manifest)('%s: learns the names of exactly the tables it may access', (name) => {
    const variables = (resources[functionId(name)]?.Properties?.Environment as { Variables: Record<string, unknown> })
      .Variables;
    const observed = Object.fromEntries(tables.map((def) => [def.envVar, variables[def.envVar]]));
    const expected = Object.fromEntries(
      tables.map((def) => [def.envVar, tableAccess(name)[def.id] ? { Ref: tableId(def.id) } : undefined]),
    );
    expect(observed).toEqual(expected);
  });

  it.each(manifest)('%s: the manifest entry exports `handler`', (_name, def) => {
    const source = readFileSync(join(PROJECT_ROOT, def.entry), 'utf8');
    expect(source).toMatch(/export\s+(const|async\s+function|function)\s+handler\b/);
  });

  it.each(manifest)('%s: the bundle is minified ESM with the require banner, a source map and, with a table to reach, its one DynamoDB client (aws-lite) inside, no AWS SDK', (name, def) => {
    const bundle = join(bundleDirectory(name), 'index.mjs');
    expect(existsSync(`${bundle}.map`)).toBe(true);
    const code = readFileSync(bundle, 'utf8');
    expect(code.startsWith(ESM_REQUIRE_BANNER)).toBe(true);
    expect(code).toMatch(/\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
    // Nothing left for the runtime to provide: no bare import of the AWS SDK.
    expect(code).not.toMatch(/(from|import\()\s*["']@aws-sdk\//);
    // DynamoDB through aws-lite (shared/store/client.ts), bundled; none of the SDK (its clients, smithy).
    expect({ reachesTables: Object.keys(def.tables).length > 0, hasAwsLite: code.includes('@aws-lite/client') }).toMatchObject(
      Object.keys(def.tables).length > 0 ? { hasAwsLite: true } : {},
    );
    for (const sdk of ['DynamoDBDocumentClient', 'smithy']) expect(code).not.toContain(sdk);
  });

  it.each(manifest)('%s: the lazily loaded packages ship beside the bundle, in its node_modules, and not inside it', (name) => {
    const directory = bundleDirectory(name);
    const code = readFileSync(join(directory, 'index.mjs'), 'utf8');
    for (const module of LAZY_MODULES) {
      for (const file of module.files) {
        expect(readFileSync(join(directory, 'node_modules', module.name, file))).toEqual(readFileSync(join(lazyModuleFolder(module.name), file)));
      }
    }
    // re2js's own code (one of its parser's messages) is not in the bundle.
    expect(readFileSync(join(lazyModuleFolder('re2js'), 'build/index.cjs'), 'utf8')).toContain('invalid nested repetition operator');
    expect(code).not.toContain('invalid nested repetition operator');
  });

  it.each(manifest)('%s: aws-lite\'s XML parser is in the bundle only when the function makes S3 requests (the manifest\'s s3); elsewhere its lazy require (esbuild\'s renamed require) is left as it is', (name, def) => {
    const code = readFileSync(join(bundleDirectory(name), 'index.mjs'), 'utf8');
    // One of the vendored fast-xml-parser's messages; aws-lite's own code is bundled either way.
    expect(readFileSync(join(lazyModuleFolder('@aws-lite/client'), 'src/_vendor/xml.js'), 'utf8')).toContain('External entites are not supported');
    const s3 = (def as FunctionDefinition).s3 === true;
    const awsLite = code.includes('@aws-lite/client');
    expect({ name, parser: code.includes('External entites are not supported'), lazyRequire: /\(["']\.\.\/_vendor\/xml["']\)/.test(code) }).toEqual({
      name,
      parser: s3,
      lazyRequire: awsLite && !s3,
    });
  });

  it.each(manifest)('%s: the bundle is pure ASCII (the afterBundling hook escaped what esbuild leaves in regular expressions)', (name) => {
    const code = readFileSync(join(bundleDirectory(name), 'index.mjs'), 'utf8');
    expect(Buffer.byteLength(code, 'utf8')).toBe(code.length);
  });

  it("decide's source map still names the source of code that follows escaped characters on its line", () => {
    // liquidjs's accent folding: sixteen `.replace(/[…]/g, …)` calls on one bundle line, each escaped;
    // the last call's replacement must map to the last line of removeAccents, not to an earlier call's.
    const directory = bundleDirectory('decide');
    const code = readFileSync(join(directory, 'index.mjs'), 'utf8');
    const at = code.indexOf('/[\\u00de]/g,"TH")');
    expect(at).toBeGreaterThan(0);
    const line = code.slice(0, at).split('\n').length - 1;
    const column = at - (code.lastIndexOf('\n', at) + 1) + '/[\\u00de]/g,'.length;
    const map = new SourceMap(JSON.parse(readFileSync(join(directory, 'index.mjs.map'), 'utf8')) as SourceMapPayload);
    const entry = map.findEntry(line, column) as { originalSource?: string; originalLine?: number };
    const liquid = readFileSync(join(PROJECT_ROOT, 'node_modules/liquidjs/dist/liquid.node.mjs'), 'utf8').split('\n');
    expect(entry.originalSource).toMatch(/node_modules\/liquidjs\/dist\/liquid\.node\.mjs$/);
    expect(liquid[entry.originalLine ?? -1]).toContain(".replace(/[Þ]/g, 'TH')");
  });

  it('from the decide asset, `re2js` (as regex.ts inside the bundle requires it) resolves to the copy shipped beside the bundle, and runs', () => {
    // The decide bundle's own compile path (regex.ts inside it) is exercised end to end by
    // test/infra/lazy-modules.infra.test.ts; here: the asset resolves `re2js` to the copy it ships.
    const directory = bundleDirectory('decide');
    const probe = `
      import { createRequire } from 'node:module';
      const require = createRequire(process.argv[1]);
      const { RE2JS } = require('re2js');
      process.stdout.write(JSON.stringify({ resolved: require.resolve('re2js'), matches: RE2JS.compile('^mob').matcher('mobile').find() }));`;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', probe, pathToFileURL(join(directory, 'index.mjs')).href], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH },
    });
    expect(JSON.parse(stdout)).toEqual({ resolved: join(directory, 'node_modules/re2js/build/index.cjs'), matches: true });
  });

  it.each(manifest)("%s: the handler's first import turns on source-mapped stack traces (so errors at load are mapped too)", (_name, def) => {
    const source = readFileSync(join(PROJECT_ROOT, def.entry), 'utf8');
    expect(/^import .*$/m.exec(source)?.[0]).toBe("import '#shared/source-maps-register.ts';");
  });

  it("a bundle's stack traces name the TypeScript sources, through the map beside it and with no NODE_OPTIONS: a configuration refused at load", () => {
    // decide refuses to load without its decision key (shared/config.ts); Lambda reports the error's stack.
    const bundle = pathToFileURL(join(bundleDirectory('decide'), 'index.mjs')).href;
    const probe = `
      try { await import(process.argv[1]); process.stdout.write('loaded'); }
      catch (error) { process.stdout.write(String(error.stack)); }`;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', probe, bundle], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH, AWS_REGION: 'eu-west-1' },
    });
    const [header, first] = stdout.split('\n    at ');
    expect(header).toBe('Error: Invalid configuration: KAIROS_DECISION_KEY must be set (at least 32 characters)');
    expect(first).toMatch(new RegExp(`^\\S+ \\(${join(PROJECT_ROOT, 'shared/config.ts').replaceAll('/', '\\/')}:\\d+:\\d+\\)$`));
  });

  it('every bundle loads in plain Node as an ES module and exports the `handler` that "index.handler" names', () => {
    // A separate Node process, as Lambda loads it: no test-runner transform, no shared module state.
    const bundles = manifest.map(([name]) => pathToFileURL(join(bundleDirectory(name), 'index.mjs')).href);
    const probe = `
      const out = {};
      for (const url of process.argv.slice(1)) {
        const mod = await import(url);
        out[url] = typeof mod.handler;
      }
      process.stdout.write(JSON.stringify(out));`;
    const stdout = execFileSync(process.execPath, ['--enable-source-maps', '--input-type=module', '-e', probe, ...bundles], {
      encoding: 'utf8',
      timeout: 60_000,
      // KAIROS_DECISION_KEY as the stack gives it to decide, profile and the evaluation, and the evaluation's buckets
      // (their configuration requires them at load).
      env: {
        PATH: process.env.PATH,
        AWS_REGION: 'eu-west-1',
        AWS_LAMBDA_FUNCTION_NAME: 'kairos-bundle-probe',
        KAIROS_DECISION_KEY: 'k'.repeat(64),
        KAIROS_EVALUATION_BUCKET: 'probe-evaluation',
        KAIROS_DECISION_LOG_BUCKET: 'probe-decision-log',
      },
    });
    expect(JSON.parse(stdout)).toEqual(Object.fromEntries(bundles.map((url) => [url, 'function'])));
  });
  it('a bundle signs its DynamoDB requests with the credentials Lambda puts in the environment', async () => {
    // The one DynamoDB client (shared/store/client.ts, aws-lite) takes Lambda's credentials from the
    // environment. The admin function's profile route reads through it: a server standing in for
    // DynamoDB records what the bundled client sends.
    const seen: { target: string; authorization: string; token: string; userAgent: string }[] = [];
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const target = String(req.headers['x-amz-target'] ?? '');
        seen.push({
          target,
          authorization: String(req.headers.authorization ?? ''),
          token: String(req.headers['x-amz-security-token'] ?? ''),
          userAgent: String(req.headers['user-agent'] ?? ''),
        });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
        // DynamoDB's answers when nothing is found.
        const answers: Record<string, string> = { Query: '{"Items":[],"Count":0,"ScannedCount":0}', BatchGetItem: '{"Responses":{},"UnprocessedKeys":{}}' };
        res.end(answers[target.slice(target.lastIndexOf('.') + 1)] ?? '{}');
      });
    });
    await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
    try {
      const { port } = server.address() as AddressInfo;
      const event = apiGatewayEvent({ method: 'GET', path: '/v1/admin/profiles/u-bundle' });
      const deployedEvent = { ...event, requestContext: { ...event.requestContext, authorizer: { iam: { userArn: 'arn:aws:iam::123456789012:user/operator' } } } };
      const probe = `
        const { handler } = await import(process.argv[1]);
        const context = { awsRequestId: 'r-1', functionName: 'kairos-admin', getRemainingTimeInMillis: () => 10000 };
        const result = await handler(JSON.parse(process.argv[2]), context);
        process.stdout.write(JSON.stringify({ statusCode: result.statusCode }));`;
      const { stdout } = await execFileAsync(
        process.execPath,
        ['--input-type=module', '-e', probe, pathToFileURL(join(bundleDirectory('admin'), 'index.mjs')).href, JSON.stringify(deployedEvent)],
        {
          encoding: 'utf8',
          timeout: 60_000,
          env: {
            PATH: process.env.PATH,
            AWS_REGION: 'eu-west-1',
            AWS_LAMBDA_FUNCTION_NAME: 'kairos-admin',
            AWS_ACCESS_KEY_ID: 'AKIAKAIROSBUNDLE',
            AWS_SECRET_ACCESS_KEY: 'bundle-secret',
            AWS_SESSION_TOKEN: 'bundle-session-token',
            // As deployed (no DYNAMODB_ENDPOINT, so no local credentials): aws-lite's own endpoint override.
            AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
            POWERTOOLS_LOG_LEVEL: 'ERROR',
          },
        },
      );
      expect(JSON.parse(stdout)).toEqual({ statusCode: 404 });
      // The route reads what the id names (shared/store/operator-id.ts resolveOperatorId): one BatchGetItem of its
      // items, then a Query for events of a user not applied yet (and of an anonymous visitor, for the 404 to say how to name it).
      expect(seen.map((r) => r.target)).toContain('DynamoDB_20120810.BatchGetItem');
      for (const request of seen) {
        expect(request.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIAKAIROSBUNDLE\/\d{8}\/eu-west-1\/dynamodb\/aws4_request/);
        expect(request.token).toBe('bundle-session-token');
      }
    } finally {
      await new Promise((resolveClose) => server.close(resolveClose));
    }
  });
});

describe('the decision log (subscription filter → Firehose → S3, Glue table)', () => {
  const bucketId = () => logicalId(stack.decisionLog.bucket);
  const streamId = () => logicalId(stack.decisionLog.deliveryStream);

  it("selects decide's decision records with a subscription filter into the delivery stream", () => {
    const filters = Object.values(resourcesOfType(template, 'AWS::Logs::SubscriptionFilter'));
    expect(filters).toHaveLength(1);
    const filter = filters[0]?.Properties ?? {};
    expect(referencedLogicalId(filter.LogGroupName)).toBe(logicalId(stack.functions.decide.functionLogGroup));
    expect(filter.FilterPattern).toBe(`{ $.message = "${DECISION_RECORD_MESSAGE}" }`);
    expect(referencedLogicalId(filter.DestinationArn)).toBe(streamId());
    // CloudWatch Logs may only put records into this one stream.
    const statements = roleStatements(template, referencedLogicalId(filter.RoleArn) as string);
    expect(statements.flatMap((st) => asArray(st.Action)).sort()).toEqual(['firehose:PutRecord', 'firehose:PutRecordBatch']);
    expect(statements.flatMap((st) => asArray(st.Resource)).map(referencedLogicalId)).toEqual([streamId()]);
  });

  it("keeps decide's application log level at INFO: its decision records are INFO lines, which Lambda would drop above it", () => {
    const decide = resources[logicalId(stack.functions.decide)]?.Properties ?? {};
    expect(decide.LoggingConfig).toMatchObject({ LogFormat: 'JSON', ApplicationLogLevel: 'INFO' });
  });

  it('delivers to S3 by UTC day, GZIP, encrypted in the stream, CloudWatch Logs records decompressed and extracted one per line', () => {
    const stream = resources[streamId()]?.Properties ?? {};
    expect(stream.DeliveryStreamEncryptionConfigurationInput).toEqual({ KeyType: 'AWS_OWNED_CMK' });
    const destination = stream.ExtendedS3DestinationConfiguration as Record<string, unknown>;
    expect(referencedLogicalId(destination.BucketARN)).toBe(bucketId());
    expect(destination).toMatchObject({ Prefix: 'decisions/dt=!{timestamp:yyyy-MM-dd}/', CompressionFormat: 'GZIP' });
    const processors = (destination.ProcessingConfiguration as { Enabled: boolean; Processors: { Type: string }[] }).Processors.map((p) => p.Type);
    expect(processors).toEqual(['Decompression', 'CloudWatchLogProcessing', 'AppendDelimiterToRecord']);
    // Firehose's role reaches this bucket only.
    const statements = roleStatements(template, referencedLogicalId(destination.RoleARN) as string);
    const s3Resources = statements.filter((st) => asArray(st.Action).some((a) => String(a).startsWith('s3:'))).flatMap((st) => asArray(st.Resource));
    expect(new Set(s3Resources.flatMap((r) => referencesIn(r).map((ref) => ref.id)))).toEqual(new Set([bucketId()]));
  });

  it('keeps the records in an encrypted, private, TLS-only bucket that expires them and logs its access', () => {
    const bucket = resources[bucketId()]?.Properties ?? {};
    expect(bucket).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: { Rules: [{ ExpirationInDays: 90, Status: 'Enabled' }] },
    });
    expect(referencedLogicalId((bucket.LoggingConfiguration as { DestinationBucketName: unknown }).DestinationBucketName)).toBe(
      logicalId(stack.decisionLog.accessLogs),
    );
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId() },
      PolicyDocument: Match.objectLike({
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]),
      }),
    });
  });

  it('describes the records to Athena: a Glue table with the columns of decision-record.ts, projected by day over the bucket', () => {
    const tables = Object.values(resourcesOfType(template, 'AWS::Glue::Table'));
    expect(tables).toHaveLength(1);
    const input = tables[0]?.Properties?.TableInput as {
      PartitionKeys: unknown;
      Parameters: Record<string, unknown>;
      StorageDescriptor: { Columns: unknown; SerdeInfo: { SerializationLibrary: string } };
    };
    expect(input.StorageDescriptor.Columns).toEqual(DECISION_LOG_COLUMNS.map((c) => ({ Name: c.name, Type: c.type })));
    expect(input.StorageDescriptor.SerdeInfo.SerializationLibrary).toBe('org.openx.data.jsonserde.JsonSerDe');
    expect(input.PartitionKeys).toEqual([{ Name: 'dt', Type: 'string' }]);
    expect(input.Parameters).toMatchObject({ 'projection.enabled': 'true', 'projection.dt.type': 'date', 'projection.dt.format': 'yyyy-MM-dd' });
    expect(referencesIn(input.Parameters['storage.location.template']).map((r) => r.id)).toEqual([bucketId()]);
  });
});

describe('the evaluation (Step Functions Distributed Map over the decision log)', () => {
  const machineId = () => logicalId(stack.evaluation.stateMachine);
  const logBucketId = () => logicalId(stack.decisionLog.bucket);
  const workBucketId = () => logicalId(stack.evaluation.bucket);

  /** The state machine's definition as JSON: each Ref / GetAtt of the Fn::Join written `<logical id>` (`<id.attribute>`). */
  function definition(): { StartAt: string; States: Record<string, Record<string, unknown>> } {
    const join = (resources[machineId()]?.Properties?.DefinitionString as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    const text = join[1]
      .map((part) => {
        if (typeof part === 'string') return part;
        const [ref] = referencesIn(part);
        return ref ? `<${ref.id}${ref.attribute ? `.${ref.attribute}` : ''}>` : '<?>';
      })
      .join(join[0]);
    return JSON.parse(text) as { StartAt: string; States: Record<string, Record<string, unknown>> };
  }
  /** The function a task invokes (payloadResponseOnly: the task's resource is the function's ARN). */
  const invoked = (state: Record<string, unknown>): string | undefined => /^<([^.>]+)\.Arn>$/.exec(String(state.Resource))?.[1];

  it('runs inputs → a Distributed Map of the shuffle function over the decision log objects → a Distributed Map of the map function over the shards → reduce, the maps’ results in the evaluation bucket', () => {
    const { StartAt, States } = definition();
    expect(StartAt).toBe('Inputs');
    const inputs = States.Inputs as Record<string, unknown>;
    expect(inputs).toMatchObject({ Type: 'Task', Next: 'Shuffle' });
    expect(invoked(inputs)).toBe(functionId('evaluationInputs'));
    // The shard count is the inputs function's setting (KAIROS_EVALUATION_SHARDS), not a constant of the definition.
    expect(inputs.Parameters).toEqual({ 'request.$': '$', 'execution.$': '$$.Execution.Name', logPrefix: 'decisions/' });
    // Each Distributed Map writes its children's results to the evaluation bucket, under the execution's results/<execution> (the inputs
    // step's resultsPrefix; a folder per map run): its state output is where they are, not the results.
    const resultWriter = { Resource: expect.stringMatching(/:states:::s3:putObject$/), Parameters: { Bucket: `<${workBucketId()}>`, 'Prefix.$': '$.resultsPrefix' } };
    const shuffle = States.Shuffle as Record<string, unknown>;
    expect(shuffle).toMatchObject({
      Type: 'Map',
      Next: 'Shards',
      ResultPath: '$.shuffled',
      ResultWriter: resultWriter,
      ItemReader: { Resource: expect.stringMatching(/:states:::s3:listObjectsV2$/), Parameters: { Bucket: `<${logBucketId()}>`, 'Prefix.$': '$.listPrefix' } },
      ItemBatcher: { MaxItemsPerBatch: 20, BatchInput: { 'scratchPrefix.$': '$.scratchPrefix', 'shardCount.$': '$.shardCount', 'from.$': '$.from', 'to.$': '$.to' } },
      MaxConcurrency: 10,
    });
    const processor = shuffle.ItemProcessor as { ProcessorConfig: { Mode: string; ExecutionType: string }; StartAt: string; States: Record<string, Record<string, unknown>> };
    expect(processor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(invoked(processor.States[processor.StartAt] as Record<string, unknown>)).toBe(functionId('evaluationShuffle'));
    // Every copy of a decision is in one shard: the map step runs once per shard, after every batch was shuffled.
    const shards = States.Shards as Record<string, unknown>;
    expect(shards).toMatchObject({
      Type: 'Map',
      Next: 'Reduce',
      ItemsPath: '$.shards',
      ItemSelector: { 'shard.$': '$$.Map.Item.Value', 'scratchPrefix.$': '$.scratchPrefix', 'inputsKey.$': '$.inputsKey', 'outcomesPrefix.$': '$.outcomesPrefix', 'from.$': '$.from', 'to.$': '$.to' },
      ResultPath: '$.partitions',
      ResultWriter: resultWriter,
      MaxConcurrency: 10,
    });
    const shardProcessor = shards.ItemProcessor as { ProcessorConfig: { Mode: string }; StartAt: string; States: Record<string, Record<string, unknown>> };
    expect(shardProcessor.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'STANDARD' });
    expect(invoked(shardProcessor.States[shardProcessor.StartAt] as Record<string, unknown>)).toBe(functionId('evaluationMap'));
    const reduce = States.Reduce as Record<string, unknown>;
    expect(reduce).toMatchObject({
      Type: 'Task',
      End: true,
      Parameters: { 'shuffled.$': '$.shuffled.ResultWriterDetails', 'partitions.$': '$.partitions.ResultWriterDetails', 'reward.$': '$.reward', 'minSupport.$': '$.minSupport' },
    });
    expect(invoked(reduce)).toBe(functionId('evaluationReduce'));
  });

  it('is a Standard state machine that logs every event with its data and is traced', () => {
    const machine = resources[machineId()]?.Properties ?? {};
    expect(machine).toMatchObject({ StateMachineType: 'STANDARD', TracingConfiguration: { Enabled: true }, LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true } });
    template.hasOutput('EvaluationStateMachineArn', { Value: { Ref: machineId() } });
  });

  it('least privilege: the state machine invokes only the four steps, lists only the decision log bucket and writes only the maps’ results under results/ of the evaluation bucket', () => {
    const statements = roleStatements(template, referencedLogicalId((resources[machineId()]?.Properties ?? {}).RoleArn) as string);
    const invokes = statements.filter((st) => asArray(st.Action).includes('lambda:InvokeFunction'));
    const targets = new Set(invokes.flatMap((st) => asArray(st.Resource)).flatMap((r) => referencesIn(r).map((ref) => ref.id)));
    expect(targets).toEqual(new Set([functionId('evaluationInputs'), functionId('evaluationShuffle'), functionId('evaluationMap'), functionId('evaluationReduce')]));
    const s3 = statements
      .filter((st) => asArray(st.Action).some((a) => String(a).startsWith('s3:')))
      .map((st) => ({ actions: asArray(st.Action).map(String).sort(), resources: asArray(st.Resource).map((r) => JSON.stringify(r)) }));
    const results = JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [workBucketId(), 'Arn'] }, '/results/*']] });
    expect(s3).toHaveLength(2);
    expect(s3).toEqual(
      expect.arrayContaining([
        { actions: ['s3:ListBucket'], resources: [JSON.stringify({ 'Fn::GetAtt': [logBucketId(), 'Arn'] })] },
        // The ResultWriter's documented actions (multipart uploads of large result files), on results/ only — not CDK's grant on every object of the bucket.
        { actions: ['s3:AbortMultipartUpload', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:PutObject'], resources: [results] },
      ]),
    );
    expect(statements.flatMap((st) => asArray(st.Action)).filter((a) => /^(dynamodb|s3:Delete)/.test(String(a)))).toEqual([]);
  });

  it('least privilege: the inputs step puts its object under evaluations/, the shuffle step gets log objects and puts scratch parts, the map step gets inputs and parts and lists the scratch prefix only, the reduce step gets the maps’ results only', () => {
    const s3Of = (name: LambdaName) =>
      roleStatements(template, roleId(name))
        .filter((st) => asArray(st.Action).some((a) => String(a).startsWith('s3:')))
        .map((st) => ({ actions: asArray(st.Action), resources: asArray(st.Resource).map((r) => JSON.stringify(r)).sort(), ...(st.Condition ? { condition: st.Condition } : {}) }));
    const objects = (bucketId: string, prefix: string) => JSON.stringify({ 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, `/${prefix}`]] });
    expect(s3Of('evaluationInputs')).toEqual([{ actions: ['s3:PutObject'], resources: [objects(workBucketId(), 'evaluations/*')] }]);
    expect(s3Of('evaluationShuffle')).toEqual([
      { actions: ['s3:GetObject'], resources: [objects(logBucketId(), 'decisions/*')] },
      { actions: ['s3:PutObject'], resources: [objects(workBucketId(), 'shuffle/*')] },
    ]);
    expect(s3Of('evaluationMap')).toEqual([
      { actions: ['s3:GetObject'], resources: [objects(workBucketId(), 'evaluations/*'), objects(workBucketId(), 'shuffle/*')].sort() },
      { actions: ['s3:ListBucket'], resources: [JSON.stringify({ 'Fn::GetAtt': [workBucketId(), 'Arn'] })], condition: { StringLike: { 's3:prefix': ['shuffle/*'] } } },
    ]);
    expect(s3Of('evaluationReduce')).toEqual([{ actions: ['s3:GetObject'], resources: [objects(workBucketId(), 'results/*')] }]);
    // Every other function but the decision counter (below): no S3 at all.
    for (const [name] of manifest.filter(([n]) => !n.startsWith('evaluation') && n !== 'decisionCounter')) expect(s3Of(name)).toEqual([]);
    const env = (name: LambdaName) => (resources[functionId(name)]?.Properties?.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env('evaluationInputs').KAIROS_EVALUATION_BUCKET).toEqual({ Ref: workBucketId() });
    expect(env('evaluationShuffle')).toMatchObject({ KAIROS_EVALUATION_BUCKET: { Ref: workBucketId() }, KAIROS_DECISION_LOG_BUCKET: { Ref: logBucketId() } });
    expect(env('evaluationMap').KAIROS_EVALUATION_BUCKET).toEqual({ Ref: workBucketId() });
    expect(env('evaluationMap').KAIROS_DECISION_LOG_BUCKET).toBeUndefined();
  });

  it('keeps the executions’ inputs, the shuffle’s scratch parts and the maps’ results in an encrypted, private, TLS-only bucket that expires them (the parts and results after a day) and logs its access', () => {
    const bucket = resources[workBucketId()]?.Properties ?? {};
    expect(bucket).toMatchObject({
      BucketEncryption: { ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] },
      PublicAccessBlockConfiguration: { BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true },
      LifecycleConfiguration: {
        Rules: [
          { Id: 'Inputs', Prefix: 'evaluations/', ExpirationInDays: 7, Status: 'Enabled' },
          { Id: 'Scratch', Prefix: 'shuffle/', ExpirationInDays: 1, Status: 'Enabled' },
          { Id: 'Results', Prefix: 'results/', ExpirationInDays: 1, Status: 'Enabled' },
        ],
      },
    });
    expect(referencedLogicalId((bucket.LoggingConfiguration as { DestinationBucketName: unknown }).DestinationBucketName)).toBe(logicalId(stack.decisionLog.accessLogs));
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: workBucketId() },
      PolicyDocument: Match.objectLike({ Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) }),
    });
  });
});

describe('the decision counts (decision log objects → EventBridge → SQS → the decision counter)', () => {
  const logBucketId = () => logicalId(stack.decisionLog.bucket);
  const queueOf = () => logicalId(stack.decisionCounts.queue);
  const failuresOf = () => logicalId(stack.decisionCounts.failureQueue);

  it('the log bucket sends its events to EventBridge through its own configuration (no custom resource)', () => {
    expect(resources[logBucketId()]?.Properties?.NotificationConfiguration).toEqual({ EventBridgeConfiguration: { EventBridgeEnabled: true } });
    expect(Object.keys(resourcesOfType(template, 'Custom::S3BucketNotifications'))).toEqual([]);
  });

  it('a rule of the default bus puts each object created under decisions/ of the log bucket on the counter’s queue, with a dead-letter queue', () => {
    const rule = resources[logicalId(stack.decisionCounts.rule)]?.Properties ?? {};
    expect(rule.EventBusName).toBeUndefined();
    expect(rule.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: { bucket: { name: [{ Ref: logBucketId() }] }, object: { key: [{ prefix: 'decisions/' }] } },
    });
    const targets = rule.Targets as { Arn: unknown; DeadLetterConfig?: { Arn: unknown } }[];
    expect(targets).toHaveLength(1);
    expect(referencesIn(targets[0]?.Arn)[0]?.id).toBe(queueOf());
    expect(referencesIn(targets[0]?.DeadLetterConfig?.Arn)[0]?.id).toBe(failuresOf());
  });

  it('the queue feeds only the decision counter, in batches with partial batch responses, and dead-letters after bounded receives', () => {
    const mappings = Object.values(resourcesOfType(template, 'AWS::Lambda::EventSourceMapping')).filter((m) => referencesIn(m.Properties?.EventSourceArn)[0]?.id === queueOf());
    expect(mappings).toHaveLength(1);
    expect(mappings[0]?.Properties).toMatchObject({ FunctionName: { Ref: functionId('decisionCounter') }, BatchSize: 10, FunctionResponseTypes: ['ReportBatchItemFailures'] });
    expect(mappingOf('decisionCounter')).toBe(mappings[0]);
    const queue = resources[queueOf()]?.Properties ?? {};
    expect(queue).toMatchObject({ SqsManagedSseEnabled: true, VisibilityTimeout: 6 * functionDefinitions.decisionCounter.timeoutSeconds, RedrivePolicy: { maxReceiveCount: 5 } });
    expect(referencesIn((queue.RedrivePolicy as { deadLetterTargetArn: unknown }).deadLetterTargetArn)[0]?.id).toBe(failuresOf());
    expect(resources[failuresOf()]?.Properties).toMatchObject({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 14 * 24 * 3600 });
    for (const id of [queueOf(), failuresOf()]) {
      template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: Match.arrayWith([{ Ref: id }]),
        PolicyDocument: Match.objectLike({ Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) }),
      });
    }
  });

  it('only the rule may send to the queue', () => {
    const sends = Object.values(resourcesOfType(template, 'AWS::SQS::QueuePolicy'))
      .filter((p) => asArray(p.Properties?.Queues as unknown[]).some((q) => referencedLogicalId(q) === queueOf()))
      .flatMap((p) => (p.Properties?.PolicyDocument as { Statement: (PolicyStatement & { Principal?: unknown })[] }).Statement)
      .filter((st) => st.Effect === 'Allow');
    expect(sends).toHaveLength(1);
    expect(sends[0]).toMatchObject({ Action: expect.arrayContaining(['sqs:SendMessage']), Principal: { Service: 'events.amazonaws.com' } });
    expect(referencesIn(sends[0]?.Condition)[0]?.id).toBe(logicalId(stack.decisionCounts.rule));
  });

  it('least privilege: the counter may only GetObject under decisions/ of the log bucket (and write the Control table: the manifest)', () => {
    const s3 = roleStatements(template, roleId('decisionCounter')).filter((st) => asArray(st.Action).some((a) => String(a).startsWith('s3:')));
    expect(s3.map((st) => ({ actions: asArray(st.Action), resources: asArray(st.Resource) }))).toEqual([
      { actions: ['s3:GetObject'], resources: [{ 'Fn::Join': ['', [{ 'Fn::GetAtt': [logBucketId(), 'Arn'] }, '/decisions/*']] }] },
    ]);
    expect(functionDefinitions.decisionCounter.tables).toEqual({ Control: 'write' });
  });

  it('alarms on a non-empty failure queue', () => {
    const alarm = resources[logicalId(stack.decisionCounts.failureAlarm)]?.Properties ?? {};
    expect(alarm).toMatchObject({ MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold', TreatMissingData: 'notBreaching' });
    expect(referencesIn(alarm.Dimensions)[0]?.id).toBe(failuresOf());
  });
});

describe('the decision key', () => {
  it('is a generated secret, given only to the functions that seal or open decision ids, by dynamic reference', () => {
    const secretId = logicalId(stack.decisionKey);
    expect(Object.keys(resourcesOfType(template, 'AWS::SecretsManager::Secret'))).toEqual([secretId]);
    expect(resources[secretId]?.Properties).toMatchObject({ GenerateSecretString: { PasswordLength: 64, ExcludePunctuation: true } });
    const given = manifest.map(([name, definition]) => {
      const variables = (resources[functionId(name)]?.Properties as { Environment?: { Variables?: Record<string, unknown> } }).Environment?.Variables ?? {};
      return { name, wanted: (definition as { decisionKey?: boolean }).decisionKey === true, value: variables.KAIROS_DECISION_KEY };
    });
    expect(given.map((g) => ({ name: g.name, has: g.value !== undefined }))).toEqual(given.map((g) => ({ name: g.name, has: g.wanted })));
    for (const { value } of given.filter((g) => g.wanted)) {
      // `{{resolve:secretsmanager:<secret>:SecretString:::}}`: the value never appears in the template.
      expect(JSON.stringify(value)).toContain('{{resolve:secretsmanager:');
      expect(referencesIn(value).map((r) => r.id)).toContain(secretId);
    }
    expect(['decide', 'profile'].every((n) => (functionDefinitions[n as LambdaName] as { decisionKey?: boolean }).decisionKey)).toBe(true);
  });
});

describe('least privilege, from the manifest', () => {
  const tableIds = () => tables.map((t) => tableId(t.id));
  const READ_EVIDENCE = ['dynamodb:GetItem', 'dynamodb:Query'];
  const WRITE_EVIDENCE = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'];

  /** What a set of DynamoDB actions amounts to, in the manifest's terms. */
  const accessClass = (actions: ReadonlySet<string> | undefined): string => {
    const list = [...(actions ?? [])];
    if (list.length === 0) return 'none';
    if (list.length === 1 && list[0] === 'dynamodb:PutItem') return 'put';
    if (list.length === 2 && list.includes('dynamodb:GetItem') && list.includes('dynamodb:BatchGetItem')) return 'get';
    const reads = READ_EVIDENCE.every((a) => list.includes(a));
    const writes = list.filter((a) => (DYNAMODB_WRITE_ACTIONS as readonly string[]).includes(a));
    if (reads && writes.length === 0) return 'read';
    if (reads && writes.length === 1 && writes[0] === 'dynamodb:DeleteItem') return 'readdelete';
    if (reads && WRITE_EVIDENCE.every((a) => writes.includes(a))) return 'readwrite';
    if (!list.some((a) => ['dynamodb:GetItem', 'dynamodb:Query', 'dynamodb:Scan', 'dynamodb:BatchGetItem'].includes(a)) && WRITE_EVIDENCE.every((a) => writes.includes(a))) return 'write';
    return `unexpected: ${list.sort().join(',')}`;
  };

  it.each(manifest)('%s: exactly the declared access on each table and its indexes', (name) => {
    const { table, index } = tableActions(roleStatements(template, roleId(name)), tableIds());
    const observed = Object.fromEntries(
      tables.map((def) => [def.id, { table: accessClass(table.get(tableId(def.id))), index: accessClass(index.get(tableId(def.id))) }]),
    );
    const expected = Object.fromEntries(
      tables.map((def) => {
        const access = tableAccess(name)[def.id] ?? 'none';
        // A put limited to some partition keys (leadingKeys) is of the table's items only, never of an index.
        const keyLimited = (functionDefinitions[name] as { leadingKeys?: Partial<Record<TableName, readonly string[]>> }).leadingKeys?.[def.id] !== undefined;
        return [def.id, { table: access, index: def.globalSecondaryIndexes?.length && !keyLimited && access !== 'get' ? access : 'none' }];
      }),
    );
    expect(observed).toEqual(expected);
  });

  it.each(manifest)('%s: no wildcard action, and Resource "*" only for X-Ray', (name) => {
    const statements = roleStatements(template, roleId(name));
    expect(statements.flatMap((s) => asArray(s.Action)).filter((a) => a.includes('*'))).toEqual([]);
    const onAnyResource = statements
      .filter((s) => asArray(s.Resource as unknown[]).includes('*'))
      .flatMap((s) => asArray(s.Action));
    expect(onAnyResource.filter((a) => !a.startsWith('xray:'))).toEqual([]);
  });

  it('only the stream reader reads the Events stream and writes to its failure queue; only the dispatcher, the Outbox stream and its own; only the decision counter, its queue', () => {
    expect(streamReaders).toEqual(['profile']);
    const observed = Object.fromEntries(
      manifest.map(([name]) => {
        const statements = roleStatements(template, roleId(name));
        const { stream } = tableActions(statements, tableIds());
        const queues = statements
          .filter((s) => asArray(s.Action).some((a) => a.startsWith('sqs:')))
          .flatMap((s) => referencesIn(s.Resource).map((r) => r.id))
          .sort();
        return [name, { streams: [...stream.keys()], streamActions: [...(stream.get(tableId('Events')) ?? [])], queues }];
      }),
    );
    const readerActions = expect.arrayContaining([
      'dynamodb:GetRecords',
      'dynamodb:GetShardIterator',
      'dynamodb:DescribeStream',
    ]) as unknown;
    const expected = Object.fromEntries(
      manifest.map(([name]) =>
        streamReaders.includes(name)
          ? [
              name,
              {
                streams: [tableId('Events')],
                streamActions: readerActions,
                queues: [queueId()],
              },
            ]
          : name === 'dispatcher'
            ? [name, { streams: [tableId('Outbox')], streamActions: [], queues: [outboxQueueId(), timerQueueId()].sort() }]
            : name === 'decisionCounter'
              ? [name, { streams: [], streamActions: [], queues: [logicalId(stack.decisionCounts.queue)] }]
              : [name, { streams: [], streamActions: [], queues: [] }],
      ),
    );
    expect(observed).toEqual(expected);
  });

  it('decide cannot change any table', () => {
    const { table, index } = tableActions(roleStatements(template, roleId('decide')), tableIds());
    const all = [...table.values(), ...index.values()].flatMap((s) => [...s]);
    expect(all.length).toBeGreaterThan(0);
    for (const action of DYNAMODB_WRITE_ACTIONS) expect(all).not.toContain(action);
  });

  it('ingest cannot read or write Profiles; health only reads the Control table (its readiness probe)', () => {
    const ingest = tableActions(roleStatements(template, roleId('ingest')), tableIds());
    expect(ingest.table.get(tableId('Profiles'))).toBeUndefined();
    const health = tableActions(roleStatements(template, roleId('health')), tableIds());
    expect([...health.table.keys()]).toEqual([tableId('Control')]);
    expect([...(health.table.get(tableId('Control')) ?? [])]).toContain('dynamodb:GetItem');
    for (const action of DYNAMODB_WRITE_ACTIONS) expect([...(health.table.get(tableId('Control')) ?? [])]).not.toContain(action);
    expect([...health.index.keys()].filter((id) => id !== tableId('Control'))).toEqual([]);
    expect(health.stream.size).toBe(0);
  });

  it('the reports route is an IAM route of the admin function, which may Query the Control table (the statistics shards) and the live catalog', () => {
    const route = routes.find((r) => routeKey(r) === 'GET /v1/admin/reports/actions');
    expect(route).toMatchObject({ function: 'admin', auth: 'iam', cors: false });
    const admin = tableActions(roleStatements(template, roleId('admin')), tableIds());
    expect([...(admin.table.get(tableId('Control')) ?? [])]).toEqual(expect.arrayContaining(['dynamodb:Query', 'dynamodb:GetItem']));
  });

  it('uses no AWS managed policy on any role', () => {
    for (const role of Object.values(resourcesOfType(template, 'AWS::IAM::Role'))) {
      expect(role.Properties?.ManagedPolicyArns).toBeUndefined();
    }
  });
});
