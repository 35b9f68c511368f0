import { Duration } from 'aws-cdk-lib';
import { FilterCriteria, FilterRule, StartingPosition, type IFunction } from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import type { Queue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { failureQueue } from './failure-queue.ts';
import type { KairosTable } from './kairos-table.ts';
import { profileStreamSettings, type StreamEventName } from '#shared/functions.ts';

/** A stream mapping's settings (shared/functions.ts `profileStreamSettings`, `dispatcherStreamSettings`). */
export type StreamSettings = {
  readonly [K in keyof typeof profileStreamSettings]: K extends 'eventNames'
    ? readonly StreamEventName[]
    : (typeof profileStreamSettings)[K] extends boolean
      ? boolean
      : number;
};

export interface ProfileStreamProps {
  /** The table whose stream is read (Events, stream NEW_IMAGE). */
  readonly source: KairosTable;

  /** The function that applies each record (the profile function). */
  readonly target: IFunction;

  /**
   * The mapping's settings, which the local stack's poller reads too (the
   * Outbox table → dispatcher mapping passes `dispatcherStreamSettings`).
   * The props below override them one by one.
   * @default profileStreamSettings
   */
  readonly settings?: StreamSettings;

  /**
   * What the failure queue is the dead-letter of (for the acknowledgement of its own DLQ).
   * @default 'the Events stream mapping'
   */
  readonly description?: string;

  /**
   * Records per invocation.
   * @default profileStreamSettings.batchSize (100)
   */
  readonly batchSize?: number;

  /**
   * How long Lambda may wait to fill a batch. None by default: an accepted
   * event should reach the profile well within a second.
   * @default profileStreamSettings.maxBatchingWindowSeconds (0)
   */
  readonly maxBatchingWindow?: Duration;

  /**
   * Retries of a failing batch (after bisecting) before its records go to the failure queue.
   * @default profileStreamSettings.retryAttempts (3)
   */
  readonly retryAttempts?: number;

  /**
   * Records older than this go to the failure queue instead of being retried
   * (a stream record lives 24 h; a poison record must never block its shard that long).
   * @default profileStreamSettings.maxRecordAgeSeconds (6 h)
   */
  readonly maxRecordAge?: Duration;

  /**
   * Concurrent batches per shard. Lambda keeps the order of records with the
   * same partition key; events of one customer have different keys anyway, so
   * the profile function must (and does) tolerate concurrent updates.
   * @default profileStreamSettings.parallelizationFactor (2)
   */
  readonly parallelizationFactor?: number;

  /**
   * How long a failed record's metadata is kept in the failure queue.
   * @default Duration.days(14) (SQS maximum)
   */
  readonly failureRetention?: Duration;
}

/**
 * The Events stream → profile function event source mapping, with the
 * failure handling that keeps "nothing accepted is lost" honest: partial batch
 * responses (only failed records are retried, from the first failed sequence
 * number), bisect on error, bounded retries and record age, and an encrypted
 * on-failure queue that receives the coordinates of every record given up on.
 * Only INSERT records reach the function: an event item is written once and
 * never modified; REMOVE records (TTL expiry, erasure) must not touch profiles.
 */
export class ProfileStream extends Construct {
  /** Receives the shard, sequence numbers and batch info of records given up on (not the records themselves). */
  public readonly failureQueue: Queue;
  public readonly eventSource: DynamoEventSource;

  constructor(scope: Construct, id: string, props: ProfileStreamProps) {
    super(scope, id);
    if (!props.source.definition.stream) {
      throw new Error(`ProfileStream: table ${props.source.definition.id} declares no stream`);
    }
    const settings = props.settings ?? profileStreamSettings;
    const retryAttempts = props.retryAttempts ?? settings.retryAttempts;
    if (retryAttempts < 0 || retryAttempts > 100) {
      throw new Error(`ProfileStream: retryAttempts must be bounded (0..100), got ${retryAttempts}`);
    }

    this.failureQueue = failureQueue(this, 'FailureQueue', {
      destinationOf: `the on-failure destination (dead-letter) of ${props.description ?? 'the Events stream mapping'}`,
      ...(props.failureRetention ? { retention: props.failureRetention } : {}),
    });

    this.eventSource = new DynamoEventSource(props.source.table, {
      startingPosition: StartingPosition.TRIM_HORIZON,
      batchSize: props.batchSize ?? settings.batchSize,
      maxBatchingWindow: props.maxBatchingWindow ?? Duration.seconds(settings.maxBatchingWindowSeconds),
      reportBatchItemFailures: true,
      bisectBatchOnError: settings.bisectOnError,
      retryAttempts,
      maxRecordAge: props.maxRecordAge ?? Duration.seconds(settings.maxRecordAgeSeconds),
      parallelizationFactor: props.parallelizationFactor ?? settings.parallelizationFactor,
      // One filter per kind of record the function takes (any of them passes).
      filters: settings.eventNames.map((name) => FilterCriteria.filter({ eventName: FilterRule.isEqual(name) })),
      onFailure: new SqsDlq(this.failureQueue),
    });
    props.target.addEventSource(this.eventSource);
  }
}
