/**
 * The one definition of a failure queue: an SQS queue that is itself a
 * dead-letter or on-failure destination (a stream mapping's, a rule
 * target's, a schedule's, an asynchronous invocation's). SQS-managed
 * encryption, TLS only, 14 days' retention unless told; cdk-nag's
 * AwsSolutions-SQS3 (a queue without a DLQ) acknowledged with what the
 * queue is the destination of, since a failure queue needs no DLQ of its
 * own: it holds what to replay by hand and an alarm watches it
 * (kairos-monitoring.ts). The dead-letter queue of another SQS queue needs
 * no acknowledgement (cdk-nag sees that it is one): `deadLetterOfQueue`.
 */
import { Duration, Validations } from 'aws-cdk-lib';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';

export interface FailureQueueProps {
  /** What the queue is the failure destination of, as a phrase: "the on-failure destination (dead-letter) of the Events stream mapping". */
  readonly destinationOf: string;
  /** @default 14 days */
  readonly retention?: Duration;
  /**
   * The queue is (also) the dead-letter queue of an SQS queue's redrive
   * policy: cdk-nag's SQS3 does not flag it, so nothing is acknowledged.
   * @default false
   */
  readonly deadLetterOfQueue?: boolean;
}

/** A failure queue (see the module) named `id` in `scope`. */
export function failureQueue(scope: Construct, id: string, props: FailureQueueProps): Queue {
  const queue = new Queue(scope, id, {
    encryption: QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: props.retention ?? Duration.days(14),
  });
  if (props.deadLetterOfQueue === true) return queue;
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason: `This queue is itself ${props.destinationOf}; it holds what to replay by hand and is watched by an alarm, so it needs no DLQ of its own.`,
  });
  return queue;
}
