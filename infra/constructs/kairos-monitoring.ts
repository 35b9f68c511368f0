import { Duration } from 'aws-cdk-lib';
import type { HttpApi } from 'aws-cdk-lib/aws-apigatewayv2';
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IAlarmAction,
  Metric,
  SingleValueWidget,
  Stats,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import type { Function as LambdaFunction } from 'aws-cdk-lib/aws-lambda';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE, serviceNameOf, type LambdaName } from '#shared/functions.ts';

/** An alarm on a metric a function emits (Powertools EMF: namespace METRICS_NAMESPACE, dimension `service`). */
export interface MetricAlarmDefinition {
  /** The function that emits the metric. */
  readonly function: LambdaName;
  /** The metric's name, as the function's `metrics.addMetric` names it. */
  readonly metric: string;
  /** What the alarm means and what to do: the alarm's description. */
  readonly description: string;
}

/**
 * The alarms on Kairos' own metrics, one entry each. Each fires when its
 * metric counts at least one in 3 of 5 minutes: a store outage that lasts,
 * not one slow read. Only metrics that mean something is failing are here.
 * Those that count the product doing its job (`EventsDroppedByErasure` and
 * `OutcomesDroppedByErasure`: an erased customer's late events and
 * outcomes, dropped as docs/integration.md §6 says; `EmissionsRefused`), or
 * whose failures another alarm already watches (`RecordsFailed` and
 * `EmissionsFailed` are retried, and given up on into a failure queue; the
 * `…ServedStale` metrics go with `DegradedDecisions`), are on the
 * dashboard or in the console, not paged on.
 */
export const METRIC_ALARMS: readonly MetricAlarmDefinition[] = [
  {
    function: 'decide',
    metric: 'DegradedDecisions',
    description:
      "decide has been answering degraded (the catalog's fallbacks, no profile) for 3 of the last 5 minutes: its store is slow or unreachable, or the live catalog cannot be read. Check DynamoDB (throttling, errors) and the decide function's logs.",
  },
  {
    function: 'ingest',
    metric: 'StoreFaults',
    description:
      "ingest has been refusing events with 429/503 (the store throttling, failing or too slow) for 3 of the last 5 minutes: trackers retry the same messageIds, but their backlogs grow. Check DynamoDB (throttling, errors) and the ingest function's logs.",
  },
];

export interface KairosMonitoringProps {
  /** Every function, by manifest name. */
  readonly functions: Readonly<Record<string, LambdaFunction>>;

  /** The function reading the Events stream. */
  readonly streamConsumer: LambdaFunction;

  /** The stream's on-failure queue. */
  readonly failureQueue: IQueue;

  /** The Outbox stream's on-failure queue (the dispatcher's stream records given up on). */
  readonly outboxFailureQueue: IQueue;

  readonly httpApi: HttpApi;

  /**
   * Alarm when the stream consumer lags this far behind (age of the newest
   * record in the last batch). Stream records live 24 h.
   * @default Duration.minutes(5)
   */
  readonly iteratorAgeThreshold?: Duration;

  /**
   * Where alarms notify (for example an SNS topic action). Alarms exist and
   * show state in the console either way.
   * @default - no action
   */
  readonly alarmActions?: readonly IAlarmAction[];

  /**
   * Create the operations dashboard.
   * @default true
   */
  readonly dashboard?: boolean;
}

/**
 * Alarms for what must never go unnoticed — a record given up on, a stream
 * falling behind, a function failing — and one dashboard of the hot paths.
 */
export class KairosMonitoring extends Construct {
  public readonly failureQueueAlarm: Alarm;
  public readonly outboxFailureQueueAlarm: Alarm;
  public readonly iteratorAgeAlarm: Alarm;
  public readonly functionErrorAlarms: Readonly<Record<string, Alarm>>;
  /** The alarms of METRIC_ALARMS, by metric name. */
  public readonly metricAlarms: Readonly<Record<string, Alarm>>;
  public readonly dashboard?: Dashboard;

  constructor(scope: Construct, id: string, props: KairosMonitoringProps) {
    super(scope, id);
    const actions = props.alarmActions ?? [];
    const withActions = (alarm: Alarm): Alarm => {
      alarm.addAlarmAction(...actions);
      alarm.addOkAction(...actions);
      return alarm;
    };

    /** An alarm on the first message in a failure queue: a record given up on after bounded retries. */
    const queueNotEmpty = (id: string, queue: IQueue, alarmDescription: string): Alarm =>
      withActions(
        new Alarm(this, id, {
          alarmDescription,
          metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: Stats.MAXIMUM }),
          threshold: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    this.failureQueueAlarm = queueNotEmpty(
      'StreamFailureQueueNotEmpty',
      props.failureQueue,
      'Events stream records were given up on after bounded retries: some accepted events are not in any profile. Inspect the failure queue and replay.',
    );
    this.outboxFailureQueueAlarm = queueNotEmpty(
      'OutboxFailureQueueNotEmpty',
      props.outboxFailureQueue,
      'Outbox stream records were given up on after bounded retries: some trigger or journey emissions (or timers) were neither published on the bus nor scheduled. Inspect the Outbox failure queue and replay.',
    );

    const iteratorAgeThreshold = props.iteratorAgeThreshold ?? Duration.minutes(5);
    this.iteratorAgeAlarm = withActions(
      new Alarm(this, 'StreamIteratorAge', {
        alarmDescription: `The profile function is more than ${iteratorAgeThreshold.toHumanString()} behind the Events stream: profiles are stale and records near 24 h are lost.`,
        metric: props.streamConsumer.metric('IteratorAge', { period: Duration.minutes(1), statistic: Stats.MAXIMUM }),
        threshold: iteratorAgeThreshold.toMilliseconds(),
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      }),
    );

    const errorAlarms: Record<string, Alarm> = {};
    for (const [name, fn] of Object.entries(props.functions)) {
      errorAlarms[name] = withActions(
        new Alarm(this, `${name}Errors`, {
          alarmDescription: `The ${name} function failed (unhandled error, timeout or out of memory). HTTP handlers map every expected error to a response, so any Lambda error is a defect or an outage.`,
          metric: fn.metricErrors({ period: Duration.minutes(5), statistic: Stats.SUM }),
          threshold: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    this.functionErrorAlarms = errorAlarms;

    /** A metric a function emits, summed per minute. */
    const functionMetric = (fn: LambdaName, metricName: string, label?: string) =>
      new Metric({
        namespace: METRICS_NAMESPACE,
        metricName,
        dimensionsMap: { service: serviceNameOf(fn) },
        statistic: Stats.SUM,
        period: Duration.minutes(1),
        ...(label !== undefined ? { label } : {}),
      });
    const metricAlarms: Record<string, Alarm> = {};
    for (const definition of METRIC_ALARMS) {
      metricAlarms[definition.metric] = withActions(
        new Alarm(this, `${definition.metric}Alarm`, {
          alarmDescription: definition.description,
          metric: functionMetric(definition.function, definition.metric),
          threshold: 1,
          comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 5,
          datapointsToAlarm: 3,
          treatMissingData: TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    this.metricAlarms = metricAlarms;

    if (props.dashboard ?? true) {
      const api = props.httpApi;
      const fns = Object.entries(props.functions);
      const apiMetric = (metricName: string, statistic: string) =>
        new Metric({
          namespace: 'AWS/ApiGateway',
          metricName,
          dimensionsMap: { ApiId: api.apiId },
          statistic,
          period: Duration.minutes(1),
        });
      this.dashboard = new Dashboard(this, 'Dashboard', { defaultInterval: Duration.hours(3) });
      this.dashboard.addWidgets(
        new TextWidget({ markdown: '# Kairos\nAPI, functions and the Events → Profiles stream', width: 24, height: 2 }),
      );
      this.dashboard.addWidgets(
        new GraphWidget({
          title: 'API requests and errors',
          left: [apiMetric('Count', Stats.SUM)],
          right: [apiMetric('4xx', Stats.SUM), apiMetric('5xx', Stats.SUM)],
          width: 12,
        }),
        new GraphWidget({
          title: 'API latency (p50, p99)',
          left: [apiMetric('Latency', Stats.p(50)), apiMetric('Latency', Stats.p(99))],
          width: 12,
        }),
      );
      this.dashboard.addWidgets(
        new GraphWidget({
          title: 'Function duration p99',
          left: fns.map(([name, fn]) =>
            fn.metricDuration({ statistic: Stats.p(99), period: Duration.minutes(1), label: name }),
          ),
          width: 12,
        }),
        new GraphWidget({
          title: 'Function errors and throttles',
          left: fns.map(([name, fn]) => fn.metricErrors({ period: Duration.minutes(1), label: `${name} errors` })),
          right: fns.map(([name, fn]) =>
            fn.metricThrottles({ period: Duration.minutes(1), label: `${name} throttles` }),
          ),
          width: 12,
        }),
      );
      this.dashboard.addWidgets(
        new GraphWidget({
          title: 'Events stream iterator age (ms)',
          left: [this.iteratorAgeAlarm.metric],
          leftAnnotations: [this.iteratorAgeAlarm.toAnnotation()],
          width: 12,
        }),
        new SingleValueWidget({
          title: 'Stream failure queue (records given up on)',
          metrics: [this.failureQueueAlarm.metric],
          width: 12,
        }),
      );
      this.dashboard.addWidgets(
        new GraphWidget({
          title: 'Metrics with an alarm (METRIC_ALARMS)',
          left: Object.values(this.metricAlarms).map((alarm) => alarm.metric),
          leftAnnotations: Object.values(this.metricAlarms).map((alarm) => alarm.toAnnotation()),
          width: 12,
        }),
        new GraphWidget({
          title: 'Dropped by erasure (late events and outcomes of erased customers)',
          left: [
            functionMetric('profile', 'EventsDroppedByErasure', 'events'),
            functionMetric('profile', 'OutcomesDroppedByErasure', 'outcomes'),
          ],
          width: 12,
        }),
      );
    }
  }
}
