import { Duration, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Stats, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { Rule } from 'aws-cdk-lib/aws-events';
import { SqsQueue } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { Bucket, CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { decisionCountSettings } from '#shared/functions.ts';
import { DECISION_LOG_PREFIX } from './decision-log.ts';
import { failureQueue } from './failure-queue.ts';
import type { KairosFunction } from './kairos-function.ts';

export interface DecisionCountsProps {
  /** The decision log's bucket (infra/constructs/decision-log.ts): each object Firehose writes under `decisions/` is counted. */
  readonly logBucket: Bucket;
  /** The decision counter (shared/functions.ts `decisionCounter`). */
  readonly counter: KairosFunction;
  /**
   * Messages per invocation of the counter.
   * @default 10
   */
  readonly batchSize?: number;
  /**
   * Deliveries of a message before it goes to the failure queue.
   * @default decisionCountSettings.maxReceiveCount (5)
   */
  readonly maxReceiveCount?: number;
}

/**
 * The actions report's decision counts, deployed (API.md §5 `decisions`):
 * the decision log bucket sends its events to EventBridge (the bucket's own
 * notification configuration, no custom resource), a rule on the default
 * bus matches the objects created under `decisions/` and puts each event
 * on an SQS queue, and the queue feeds the decision counter
 * (functions/decision-counter/handler.ts) in batches with partial batch
 * responses; a message that fails `maxReceiveCount` times, or an event the
 * rule cannot deliver, goes to the failure queue, which an alarm watches.
 * The counter may only GetObject under `decisions/` of the log bucket and
 * write the Control table (the manifest's grant). Each object is counted
 * once, whatever the redelivery (shared/store/statistics.ts
 * `countDecisionChunk`). The counts lag the decisions by Firehose's
 * buffering (up to its interval, 5 minutes) and this delivery.
 */
export class DecisionCounts extends Construct {
  public readonly queue: Queue;
  public readonly failureQueue: Queue;
  public readonly rule: Rule;
  /** A message or event given up on: some decisions are not in the report's counts. */
  public readonly failureAlarm: Alarm;

  constructor(scope: Construct, id: string, props: DecisionCountsProps) {
    super(scope, id);
    const bucket = props.logBucket;

    // EventBridge notifications through the bucket's own NotificationConfiguration (CDK's `eventBridgeEnabled`
    // would add a custom resource and its function for the same setting).
    (bucket.node.defaultChild as CfnBucket).addPropertyOverride('NotificationConfiguration.EventBridgeConfiguration.EventBridgeEnabled', true);

    this.failureQueue = failureQueue(this, 'FailureQueue', {
      destinationOf: "the dead-letter queue of the decision counter's queue and of the rule that feeds it",
      deadLetterOfQueue: true,
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      // AWS's advice for a Lambda event source: at least six times the function's timeout.
      visibilityTimeout: Duration.seconds(6 * (props.counter.timeout ?? Duration.seconds(3)).toSeconds()),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.failureQueue, maxReceiveCount: props.maxReceiveCount ?? decisionCountSettings.maxReceiveCount },
    });

    this.rule = new Rule(this, 'ObjectCreated', {
      description: 'Kairos: each decision log object Firehose writes, to the decision counter',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: { bucket: { name: [bucket.bucketName] }, object: { key: [{ prefix: DECISION_LOG_PREFIX }] } },
      },
      targets: [new SqsQueue(this.queue, { deadLetterQueue: this.failureQueue })],
    });

    props.counter.addEventSource(new SqsEventSource(this.queue, { batchSize: props.batchSize ?? 10, reportBatchItemFailures: true }));
    const objects = bucket.arnForObjects(`${DECISION_LOG_PREFIX}*`);
    props.counter.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [objects] }));
    const stack = Stack.of(this);
    Validations.of(props.counter.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${stack.getLogicalId(bucket.node.defaultChild as CfnElement)}.Arn>/${DECISION_LOG_PREFIX}*]`,
      reason: "The decision counter may only GetObject the decision log's objects under decisions/ (Firehose names them by day and time, known at run time), nothing else of the bucket.",
    });

    this.failureAlarm = new Alarm(this, 'FailureQueueNotEmpty', {
      alarmDescription:
        "Decision log objects were given up on after bounded retries (or their events could not reach the counter's queue): their decisions are missing from the actions report's counts. Inspect the decision counts failure queue and redrive it.",
      metric: this.failureQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: Stats.MAXIMUM }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }
}
