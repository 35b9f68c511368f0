/**
 * The deployed bus and scheduler (bus.ts): Amazon EventBridge `PutEvents`
 * on the stack's bus and EventBridge Scheduler `CreateSchedule` in the
 * stack's schedule group, through aws-lite's plain client (no plugin: two
 * JSON calls, signed with SigV4 like every other request of the product).
 *
 * Configuration (set by the CDK stack on the dispatcher; read on first use,
 * a missing one fails with its name): KAIROS_BUS_ARN (the bus),
 * KAIROS_SCHEDULE_GROUP (the schedule group), KAIROS_SCHEDULER_ROLE_ARN
 * (the role Scheduler assumes to put on the bus), KAIROS_SCHEDULE_DLQ_ARN
 * (where Scheduler sends what the bus refused past its retries).
 *
 * - `put`: at most 10 entries per PutEvents (its limit); an entry the bus
 *   refuses (`FailedEntryCount`) is returned by id for a retry.
 * - `scheduleAt`: a one-time schedule `at(<UTC instant>)`, flexible window
 *   off, deleted after it ran, targeting the bus with the event's
 *   `detail-type` and `source`; its name is a hash of the event id (the
 *   names allow 64 characters of [0-9A-Za-z._-]), so scheduling the same
 *   event twice is a conflict, taken as done; Scheduler retries a put the
 *   bus refuses (SCHEDULE_RETRY_POLICY) and then sends the event to the
 *   timer failure queue (`scheduleRequest`).
 * - `cancel`: DeleteSchedule of the event's schedule in the group (only
 *   KAIROS_SCHEDULE_GROUP needed: the admin function's erasure); a
 *   schedule not found (fired and deleted, never made) is success.
 */
import { createHash } from 'node:crypto';
import awsLite from '@aws-lite/client';
import { getStringFromEnv } from '@aws-lambda-powertools/commons/utils/env';
import { config } from '../config.ts';
import { EMISSION_SOURCE } from '#domain/triggers/emission.ts';
import { environmentCredentials } from '#store/client.ts';
import { SCHEDULE_RETRY_POLICY, type BusEvent, type EmissionBus, type EmissionScheduler } from './bus.ts';

type AwsLite = (request: Record<string, unknown>) => Promise<{ statusCode: number; payload: unknown }>;

let client: Promise<AwsLite> | undefined;

function aws(): Promise<AwsLite> {
  client ??= (awsLite({
    region: config.AWS_REGION,
    ...environmentCredentials(false),
    autoloadPlugins: false,
    awsConfigFile: false,
    keepAlive: true,
    retries: 2,
  }) as unknown as Promise<AwsLite>).catch((error: unknown) => {
    client = undefined;
    throw error;
  });
  return client;
}

const required = (key: string): string => {
  const value = getStringFromEnv({ key, defaultValue: '' });
  if (value === '') throw new Error(`Invalid configuration: ${key} must be set`);
  return value;
};

/** PutEvents' most entries per call. */
const PUT_EVENTS_MAX = 10;

/** The schedule name of an event: `kairos-` and 40 hex digits of its id's SHA-256. */
export const scheduleNameOf = (eventId: string): string => `kairos-${createHash('sha256').update(eventId, 'utf8').digest('hex').slice(0, 40)}`;

/** `at(...)` wants `yyyy-mm-ddThh:mm:ss` (no zone: ScheduleExpressionTimezone says UTC); a second later rather than early. */
const atExpression = (at: number): string => `at(${new Date(Math.ceil(at / 1000) * 1000).toISOString().slice(0, 19)})`;

export function eventBridgeBus(busArn: string = required('KAIROS_BUS_ARN')): EmissionBus {
  return {
    async put(events) {
      const failed: string[] = [];
      for (let i = 0; i < events.length; i += PUT_EVENTS_MAX) {
        const chunk = events.slice(i, i + PUT_EVENTS_MAX);
        const call = await aws();
        const { payload } = await call({
          service: 'events',
          method: 'POST',
          path: '/',
          awsjson: false,
          headers: { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AWSEvents.PutEvents' },
          payload: {
            Entries: chunk.map((event) => ({
              EventBusName: busArn,
              Source: EMISSION_SOURCE,
              DetailType: event.detailType,
              Detail: JSON.stringify(event.detail),
            })),
          },
        });
        const entries = (payload as { Entries?: { ErrorCode?: string }[] }).Entries ?? [];
        chunk.forEach((event, j) => {
          if (entries[j]?.ErrorCode) failed.push(event.id);
        });
      }
      return failed;
    },
  };
}

/** Where Scheduler sends what it could not put on the bus, and how hard it tries first. */
export interface ScheduleTarget {
  readonly busArn: string;
  readonly group: string;
  readonly roleArn: string;
  /** The failure queue (SQS ARN) a schedule's event goes to when the bus refuses it past the retries. */
  readonly deadLetterArn: string;
}


/** The CreateSchedule request of `event` at `at` (epoch ms): path and JSON body. */
export function scheduleRequest(event: BusEvent, at: number, target: ScheduleTarget): { path: string; payload: Record<string, unknown> } {
  return {
    path: `/schedules/${scheduleNameOf(event.id)}`,
    payload: {
      GroupName: target.group,
      ScheduleExpression: atExpression(at),
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      ActionAfterCompletion: 'DELETE',
      Description: `Kairos deferred emission ${event.id}`.slice(0, 512),
      Target: {
        Arn: target.busArn,
        RoleArn: target.roleArn,
        EventBridgeParameters: { Source: EMISSION_SOURCE, DetailType: event.detailType },
        Input: JSON.stringify(event.detail),
        RetryPolicy: SCHEDULE_RETRY_POLICY,
        DeadLetterConfig: { Arn: target.deadLetterArn },
      },
    },
  };
}

/** The DeleteSchedule request of the schedule of the event whose id is `eventId`, in `group`: path and query. */
export function cancelScheduleRequest(eventId: string, group: string): { path: string; query: Record<string, string> } {
  return { path: `/schedules/${scheduleNameOf(eventId)}`, query: { groupName: group } };
}

export function eventBridgeScheduler(options: Partial<ScheduleTarget> = {}): EmissionScheduler {
  return {
    async cancel(eventId: string) {
      const call = await aws();
      const { path, query } = cancelScheduleRequest(eventId, options.group ?? required('KAIROS_SCHEDULE_GROUP'));
      try {
        await call({ service: 'scheduler', method: 'DELETE', path, query });
      } catch (error) {
        // No such schedule (fired and deleted after completion, never made, cancelled before): nothing will send it.
        if ((error as { statusCode?: number }).statusCode === 404) return;
        throw error;
      }
    },
    async scheduleAt(event: BusEvent, at: number) {
      const call = await aws();
      const { path, payload } = scheduleRequest(event, at, {
        busArn: options.busArn ?? required('KAIROS_BUS_ARN'),
        group: options.group ?? required('KAIROS_SCHEDULE_GROUP'),
        roleArn: options.roleArn ?? required('KAIROS_SCHEDULER_ROLE_ARN'),
        deadLetterArn: options.deadLetterArn ?? required('KAIROS_SCHEDULE_DLQ_ARN'),
      });
      try {
        await call({ service: 'scheduler', method: 'POST', path, headers: { 'content-type': 'application/json' }, payload });
      } catch (error) {
        // The same event scheduled before (a redelivered record): done.
        if ((error as { statusCode?: number }).statusCode === 409) return;
        throw error;
      }
    },
  };
}
