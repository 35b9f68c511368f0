import { CfnOutput, Duration, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { DecisionCounts } from './constructs/decision-counts.ts';
import { DecisionLog } from './constructs/decision-log.ts';
import { Evaluation } from './constructs/evaluation.ts';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IAlarmAction } from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { Topic } from 'aws-cdk-lib/aws-sns';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { dispatcherStreamSettings, functionDefinitions, METRICS_NAMESPACE, serviceNameOf, type Access, type FunctionDefinition, type LambdaName } from '#shared/functions.ts';
import { routes, type FunctionName } from '#http/routes.ts';
import { tables, type TableName } from '#store/tables.ts';
import { KairosFunction } from './constructs/kairos-function.ts';
import { KairosHttpApi } from './constructs/kairos-http-api.ts';
import { KairosMonitoring } from './constructs/kairos-monitoring.ts';
import { KairosTable } from './constructs/kairos-table.ts';
import { EmissionBus } from './constructs/emission-bus.ts';
import { packageVersion } from './package-version.ts';
import { ProfileStream } from './constructs/profile-stream.ts';

export interface KairosStackProps extends StackProps {
  /**
   * Retention of the functions' logs.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;

  /**
   * Where the alarms notify (for example an SNS topic action of the operator's).
   * @default - no action, unless `alarmTopicArn` is set; alarms still show their state
   */
  readonly alarmActions?: readonly IAlarmAction[];

  /**
   * An existing SNS topic (the operator's on-call channel) every alarm notifies,
   * in alarm and back to OK.
   * @default - none
   */
  readonly alarmTopicArn?: string;

  /**
   * Extra environment for every function (e.g. KAIROS_CORS_ORIGINS, KAIROS_HISTORY_DAYS).
   * @default - none
   */
  readonly functionEnvironment?: Record<string, string>;

  /**
   * How long the decision log keeps decision records in S3.
   * @default Duration.days(90)
   */
  readonly decisionLogRetention?: Duration;
}

/**
 * Kairos in one stack: the three tables, one function per manifest entry
 * with exactly the manifest's table access, the HTTP API from the route
 * table, the Events stream → profile mapping with its failure queue, the
 * Outbox stream → dispatcher mapping with its own, the EventBridge bus and
 * Scheduler group emissions go to, alarms and a dashboard. Environment-agnostic: no lookups, no account or region.
 */
export class KairosStack extends Stack {
  public readonly tables: Readonly<Record<TableName, KairosTable>>;
  public readonly functions: Readonly<Record<LambdaName, KairosFunction>>;
  public readonly api: KairosHttpApi;
  public readonly profileStream: ProfileStream;
  /** The Outbox stream → dispatcher mapping, with its failure queue. */
  public readonly outboxStream: ProfileStream;
  /** The EventBridge bus emissions go to, and the Scheduler group of deferred sends. */
  public readonly emissions: EmissionBus;
  /** The secret decision ids are sealed with (KAIROS_DECISION_KEY of decide and the profile function). */
  public readonly decisionKey: Secret;
  public readonly monitoring: KairosMonitoring;
  /** Decide's decision records: subscription filter → Firehose → S3, and a Glue table for Athena. */
  public readonly decisionLog: DecisionLog;
  /** Off-policy evaluation of a candidate catalog on the decision log (Step Functions, Distributed Map). */
  public readonly evaluation: Evaluation;
  /** The actions report's decision counts: each decision log object → EventBridge → SQS → the decision counter. */
  public readonly decisionCounts: DecisionCounts;

  constructor(scope: Construct, id: string, props: KairosStackProps = {}) {
    super(scope, id, {
      description: 'Kairos: real-time next-best-action engine (API, functions, tables, stream)',
      ...props,
    });

    const tableById = {} as Record<TableName, KairosTable>;
    for (const definition of tables) {
      tableById[definition.id] = new KairosTable(this, definition.id, { definition });
    }
    this.tables = tableById;

    // The secret decision ids are sealed with (decide) and opened with (profile): generated once, at the first deploy.
    this.decisionKey = new Secret(this, 'DecisionKey', {
      description: 'Kairos: the secret decision ids are sealed with (AES-256-GCM); decide and the profile function',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
    });
    Validations.of(this.decisionKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotating the decision key would make every decision id already served unattributable (outcomes would count for nothing); it is replaced by hand, deliberately.',
    });

    const functionByName = {} as Record<LambdaName, KairosFunction>;
    for (const [name, definition] of Object.entries(functionDefinitions) as [
      LambdaName,
      (typeof functionDefinitions)[LambdaName],
    ][]) {
      const fn = new KairosFunction(this, capitalize(name), {
        entry: definition.entry,
        description: definition.description,
        memorySize: definition.memorySize,
        timeout: Duration.seconds(definition.timeoutSeconds),
        logRetention: props.logRetention,
        serviceName: serviceNameOf(name),
        metricsNamespace: METRICS_NAMESPACE,
        environment: {
          KAIROS_VERSION: packageVersion(),
          // A CloudFormation dynamic reference: resolved at deploy time, never in the template.
          ...((definition as FunctionDefinition).decisionKey ? { KAIROS_DECISION_KEY: this.decisionKey.secretValue.unsafeUnwrap() } : {}),
          ...props.functionEnvironment,
        },
      });
      for (const [tableId, access] of Object.entries(definition.tables) as [TableName, Access][]) {
        const table = tableById[tableId];
        if (!table) throw new Error(`Function ${name}: unknown table ${tableId} in the manifest`);
        fn.bindTable(table, access, (definition as FunctionDefinition).leadingKeys?.[tableId]);
      }
      functionByName[name] = fn;
    }
    this.functions = functionByName;

    const streamReaders = (Object.keys(functionDefinitions) as LambdaName[]).filter(
      (name) => (functionDefinitions[name] as { readsStream?: boolean }).readsStream,
    );
    if (streamReaders.length !== 1 || !streamReaders[0]) {
      throw new Error(`Exactly one function must read the Events stream; the manifest names ${streamReaders.length}`);
    }
    const streamReader = functionByName[streamReaders[0]];
    this.profileStream = new ProfileStream(this, 'ProfileStream', {
      source: tableById.Events,
      target: streamReader,
    });

    // The outbox: its stream into the dispatcher, which puts on the bus or schedules a deferred send.
    this.outboxStream = new ProfileStream(this, 'OutboxStream', {
      source: tableById.Outbox,
      target: functionByName.dispatcher,
      settings: dispatcherStreamSettings,
      description: 'the Outbox stream mapping (emissions not published)',
    });
    this.emissions = new EmissionBus(this, 'Emissions', { dispatcher: functionByName.dispatcher });
    // The erasure cancels an erased customer's pending sends.
    this.emissions.grantCancelSchedules(functionByName.admin);

    const httpFunctions = {} as Record<FunctionName, KairosFunction>;
    for (const route of routes) {
      const fn = functionByName[route.function as LambdaName];
      if (!fn) throw new Error(`Route ${route.method} ${route.path}: no function "${route.function}" in the manifest`);
      httpFunctions[route.function] = fn;
    }
    this.api = new KairosHttpApi(this, 'Api', { routes, functions: httpFunctions });

    this.decisionLog = new DecisionLog(this, 'DecisionLog', {
      source: functionByName.decide.functionLogGroup,
      ...(props.decisionLogRetention ? { retention: props.decisionLogRetention } : {}),
    });
    this.evaluation = new Evaluation(this, 'Evaluation', {
      logBucket: this.decisionLog.bucket,
      accessLogs: this.decisionLog.accessLogs,
      inputs: functionByName.evaluationInputs,
      shuffle: functionByName.evaluationShuffle,
      map: functionByName.evaluationMap,
      reduce: functionByName.evaluationReduce,
    });

    this.decisionCounts = new DecisionCounts(this, 'DecisionCounts', {
      logBucket: this.decisionLog.bucket,
      counter: functionByName.decisionCounter,
    });

    const alarmActions: IAlarmAction[] = [...(props.alarmActions ?? [])];
    if (props.alarmTopicArn) {
      if (!/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[\w-]+$/.test(props.alarmTopicArn)) {
        throw new Error(`alarmTopicArn is not an SNS topic ARN: "${props.alarmTopicArn}"`);
      }
      alarmActions.push(new SnsAction(Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn)));
    }
    this.emissions.timerFailureAlarm.addAlarmAction(...alarmActions);
    this.emissions.timerFailureAlarm.addOkAction(...alarmActions);
    this.decisionCounts.failureAlarm.addAlarmAction(...alarmActions);
    this.decisionCounts.failureAlarm.addOkAction(...alarmActions);
    this.monitoring = new KairosMonitoring(this, 'Monitoring', {
      functions: functionByName,
      streamConsumer: streamReader,
      failureQueue: this.profileStream.failureQueue,
      outboxFailureQueue: this.outboxStream.failureQueue,
      httpApi: this.api.httpApi,
      alarmActions,
    });

    new CfnOutput(this, 'ApiUrl', {
      description: 'Base URL of the Kairos HTTP API',
      value: this.api.url,
    });
    new CfnOutput(this, 'EvaluationStateMachineArn', {
      description: 'The off-policy evaluation state machine (npm run evaluate -- --deployed --state-machine <this>)',
      value: this.evaluation.stateMachine.stateMachineArn,
    });
    new CfnOutput(this, 'EmissionBusName', {
      description: 'The EventBridge bus Kairos emits on (source "kairos"): route its events to your senders',
      value: this.emissions.bus.eventBusName,
    });
    new CfnOutput(this, 'TimerFailureQueueUrl', {
      description: 'Fired timers (journey waits, deferred sends) not written to the Events table (the timer rule DLQ and the dispatcher async on-failure destination)',
      value: this.emissions.timerFailureQueue.queueUrl,
    });
    new CfnOutput(this, 'StreamFailureQueueUrl', {
      description: 'Events stream records given up on (shard and sequence numbers to replay)',
      value: this.profileStream.failureQueue.queueUrl,
    });
  }
}

/** The version the health route reports: the package being deployed. */
function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
