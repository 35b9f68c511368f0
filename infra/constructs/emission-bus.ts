import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { Alarm, ComparisonOperator, Stats, TreatMissingData } from 'aws-cdk-lib/aws-cloudwatch';
import { EventBus, Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { ScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { EMISSION_SOURCE, TIMER_DETAIL_TYPES } from '#domain/triggers/emission.ts';
import { failureQueue } from './failure-queue.ts';
import type { KairosFunction } from './kairos-function.ts';

export interface EmissionBusProps {
  /** The function that publishes the outbox (the dispatcher): may put on the bus and create schedules in the group. */
  readonly dispatcher: KairosFunction;

  /**
   * How often EventBridge retries delivering a fired timer to the
   * dispatcher (throttled, unavailable) before it goes to the timer failure
   * queue.
   * @default 10
   */
  readonly timerRetryAttempts?: number;

  /**
   * How long a fired timer may wait for delivery, and a failing invocation
   * of the dispatcher be retried, before it goes to the failure queue.
   * @default Duration.hours(6) (as the stream mappings' record age)
   */
  readonly timerMaxAge?: Duration;

  /**
   * How long the timer failure queue keeps what it receives.
   * @default Duration.days(14) (SQS maximum)
   */
  readonly failureRetention?: Duration;
}

/**
 * Where Kairos emits (docs/catalog.md "Triggers"): the stack's EventBridge bus (a
 * rule of the team's routes `source: kairos` events to SES, SNS, an API
 * destination…), and the EventBridge Scheduler group of deferred sends
 * (one-time schedules that put the event on the bus when quiet hours end).
 *
 * Least privilege:
 * - the dispatcher may `events:PutEvents` on this bus, and
 *   `scheduler:CreateSchedule` and `scheduler:DeleteSchedule` (an emission
 *   the erasure removed before the dispatcher read it) on schedules of this
 *   group only, passing only the scheduler role, only to Scheduler;
 * - Scheduler's role may only `events:PutEvents` on this bus, and only
 *   Scheduler of this account may assume it.
 * - the admin function (`grantCancelSchedules`) may only
 *   `scheduler:DeleteSchedule` on schedules of this group (the erasure
 *   cancels a customer's pending sends).
 * The dispatcher learns them through KAIROS_BUS_ARN, KAIROS_SCHEDULE_GROUP
 * and KAIROS_SCHEDULER_ROLE_ARN (shared/bus/eventbridge.ts).
 *
 * A timer (a journey's wait; a send deferred by quiet hours, decided only
 * when due) comes back through the same path: its schedule puts it on the
 * bus, and a rule matching only the timers' detail-types (source `kairos`,
 * `Kairos Journey Timer` and `Kairos Send Timer`) invokes the dispatcher,
 * which writes its event to the Events table (functions/dispatcher/handler.ts);
 * only that rule may invoke it. A timer is never lost unnoticed: the rule's
 * target retries (`timerRetryAttempts`, `timerMaxAge`) and then sends the
 * event to the timer failure queue (its DLQ); the dispatcher's asynchronous
 * invocations are retried twice by Lambda and then recorded in the same
 * queue (on-failure destination); an alarm fires on its first message. A
 * timer replayed from it is written once (a conditional put on its key).
 * Every schedule (deferred sends and timers alike) has the same queue as
 * its dead-letter queue, after Scheduler's retries (shared/bus/bus.ts
 * SCHEDULE_RETRY_POLICY): Scheduler's role may send to it.
 */
export class EmissionBus extends Construct {
  public readonly bus: EventBus;
  public readonly scheduleGroup: ScheduleGroup;
  /** The role EventBridge Scheduler assumes to put a deferred send on the bus. */
  public readonly schedulerRole: Role;
  /** The rule that brings a fired timer (a journey's, a deferred send's) back to the dispatcher. */
  public readonly timerRule: Rule;
  /**
   * Fired timers not delivered to the dispatcher, its invocations that failed after retries, and schedules (deferred
   * sends, timers) the bus refused past Scheduler's retries (encrypted, SSL only).
   */
  public readonly timerFailureQueue: Queue;
  /** In alarm while the timer failure queue holds a message (no action: the stack adds its own). */
  public readonly timerFailureAlarm: Alarm;

  constructor(scope: Construct, id: string, props: EmissionBusProps) {
    super(scope, id);
    const { account } = Stack.of(this);
    this.bus = new EventBus(this, 'Bus', {
      description: 'Kairos (source "kairos"): trigger and journey actions for your senders, and fired journey timers and deferred send timers back to Kairos',
    });
    this.scheduleGroup = new ScheduleGroup(this, 'Schedules', {});

    this.schedulerRole = new Role(this, 'SchedulerRole', {
      description: 'EventBridge Scheduler: puts deferred Kairos emissions on the bus',
      assumedBy: new ServicePrincipal('scheduler.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': account } } }),
    });
    this.bus.grantPutEventsTo(this.schedulerRole);

    const dispatcher = props.dispatcher;
    this.bus.grantPutEventsTo(dispatcher);
    dispatcher.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        // Delete: the schedule of an emission the erasure removed before this function read it (its REMOVE record).
        actions: ['scheduler:CreateSchedule', 'scheduler:DeleteSchedule'],
        resources: [Stack.of(this).formatArn({ service: 'scheduler', resource: 'schedule', resourceName: `${this.scheduleGroup.scheduleGroupName}/*` })],
      }),
    );
    Validations.of(dispatcher.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${this.scheduleGroup.scheduleGroupName}/*]`,
      reason:
        'CreateSchedule of one-time schedules named after each deferred emission (unknown in advance), and DeleteSchedule of an erased emission\'s, in the Kairos schedule group only; no other action, no other group.',
    });
    dispatcher.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['iam:PassRole'],
        resources: [this.schedulerRole.roleArn],
        conditions: { StringEquals: { 'iam:PassedToService': 'scheduler.amazonaws.com' } },
      }),
    );
    dispatcher.addEnvironment('KAIROS_BUS_ARN', this.bus.eventBusArn);
    dispatcher.addEnvironment('KAIROS_SCHEDULE_GROUP', this.scheduleGroup.scheduleGroupName);
    dispatcher.addEnvironment('KAIROS_SCHEDULER_ROLE_ARN', this.schedulerRole.roleArn);

    this.timerFailureQueue = failureQueue(this, 'TimerFailureQueue', {
      destinationOf:
        "the dead-letter queue of the journey-timer rule's target and of every schedule, and the on-failure destination of the dispatcher's asynchronous invocations",
      ...(props.failureRetention ? { retention: props.failureRetention } : {}),
    });
    const maxAge = props.timerMaxAge ?? Duration.hours(6);
    const retryAttempts = props.timerRetryAttempts ?? 10;
    if (retryAttempts < 0 || retryAttempts > 185) throw new Error(`EmissionBus: timerRetryAttempts must be 0..185 (EventBridge), got ${retryAttempts}`);
    this.timerRule = new Rule(this, 'JourneyTimers', {
      description: 'Fired timers (journey waits, deferred sends) back to the dispatcher, which writes them to the Events table',
      eventBus: this.bus,
      eventPattern: { source: [EMISSION_SOURCE], detailType: [...TIMER_DETAIL_TYPES] },
      targets: [new LambdaFunction(dispatcher, { deadLetterQueue: this.timerFailureQueue, retryAttempts, maxEventAge: maxAge })],
    });
    dispatcher.configureAsyncInvoke({ retryAttempts: 2, maxEventAge: maxAge, onFailure: new SqsDestination(this.timerFailureQueue) });
    // A schedule (a deferred send, a timer) whose put on the bus fails past Scheduler's retries lands there too.
    this.timerFailureQueue.grantSendMessages(this.schedulerRole);
    dispatcher.addEnvironment('KAIROS_SCHEDULE_DLQ_ARN', this.timerFailureQueue.queueArn);

    this.timerFailureAlarm = new Alarm(this, 'TimerFailureQueueNotEmpty', {
      alarmDescription:
        'A deferred send or a journey timer was given up on (the bus refused a schedule, a fired timer was not delivered to the dispatcher, or its invocation failed after retries): a send was not made or a customer is stuck at a wait. Inspect the timer failure queue and replay.',
      metric: this.timerFailureQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: Stats.MAXIMUM }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    });
  }

  /**
   * Let `fn` cancel deferred sends (the admin function's erasure,
   * shared/bus/eventbridge.ts `cancel`): `scheduler:DeleteSchedule` on
   * schedules of this group only, and KAIROS_SCHEDULE_GROUP. No other
   * Scheduler action, no bus right, no role to pass.
   */
  public grantCancelSchedules(fn: KairosFunction): void {
    fn.addToRolePolicy(
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['scheduler:DeleteSchedule'],
        resources: [Stack.of(this).formatArn({ service: 'scheduler', resource: 'schedule', resourceName: `${this.scheduleGroup.scheduleGroupName}/*` })],
      }),
    );
    Validations.of(fn.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${this.scheduleGroup.scheduleGroupName}/*]`,
      reason:
        'DeleteSchedule of the one-time schedules of an erased customer (named after each deferred emission, unknown in advance), in the Kairos schedule group only; no other action, no other group.',
    });
    fn.addEnvironment('KAIROS_SCHEDULE_GROUP', this.scheduleGroup.scheduleGroupName);
  }
}
