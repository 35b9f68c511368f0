import { Stack, Validations } from 'aws-cdk-lib';
import { EventBus, Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { ScheduleGroup } from 'aws-cdk-lib/aws-scheduler';
import { Construct } from 'constructs';
import { DETAIL_TYPES, EMISSION_SOURCE } from '#domain/triggers/emission.ts';
import type { KairosFunction } from './kairos-function.ts';

export interface EmissionBusProps {
  /** The function that publishes the outbox (the dispatcher): may put on the bus and create schedules in the group. */
  readonly dispatcher: KairosFunction;
}

/**
 * Where Kairos emits (docs/triggers.md): the stack's EventBridge bus (a
 * rule of the team's routes `source: kairos` events to SES, SNS, an API
 * destination…), and the EventBridge Scheduler group of deferred sends
 * (one-time schedules that put the event on the bus when quiet hours end).
 *
 * Least privilege:
 * - the dispatcher may `events:PutEvents` on this bus, and
 *   `scheduler:CreateSchedule` on schedules of this group only, passing only
 *   the scheduler role, only to Scheduler;
 * - Scheduler's role may only `events:PutEvents` on this bus, and only
 *   Scheduler of this account may assume it.
 * The dispatcher learns them through KAIROS_BUS_ARN, KAIROS_SCHEDULE_GROUP
 * and KAIROS_SCHEDULER_ROLE_ARN (shared/bus/eventbridge.ts).
 *
 * A journey's timer comes back through the same path: its schedule puts it
 * on the bus, and a rule matching only its detail-type (source `kairos`,
 * `Kairos Journey Timer`) invokes the dispatcher, which writes its
 * `Journey Timer` event to the Events table (functions/dispatcher/handler.ts);
 * only that rule may invoke it.
 */
export class EmissionBus extends Construct {
  public readonly bus: EventBus;
  public readonly scheduleGroup: ScheduleGroup;
  /** The role EventBridge Scheduler assumes to put a deferred send on the bus. */
  public readonly schedulerRole: Role;
  /** The rule that brings a fired journey timer back to the dispatcher. */
  public readonly timerRule: Rule;

  constructor(scope: Construct, id: string, props: EmissionBusProps) {
    super(scope, id);
    const { account } = Stack.of(this);
    this.bus = new EventBus(this, 'Bus', { description: 'Kairos emissions: triggers (source "kairos")' });
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
        actions: ['scheduler:CreateSchedule'],
        resources: [Stack.of(this).formatArn({ service: 'scheduler', resource: 'schedule', resourceName: `${this.scheduleGroup.scheduleGroupName}/*` })],
      }),
    );
    Validations.of(dispatcher.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:scheduler:<AWS::Region>:<AWS::AccountId>:schedule/${this.scheduleGroup.scheduleGroupName}/*]`,
      reason:
        'CreateSchedule of one-time schedules named after each deferred emission (unknown in advance), in the Kairos schedule group only; no other action, no other group.',
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

    this.timerRule = new Rule(this, 'JourneyTimers', {
      description: 'Fired journey timers back to the dispatcher, which writes them to the Events table',
      eventBus: this.bus,
      eventPattern: { source: [EMISSION_SOURCE], detailType: [DETAIL_TYPES.journeyTimer] },
      targets: [new LambdaFunction(dispatcher)],
    });
  }
}
