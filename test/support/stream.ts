/**
 * DynamoDB stream record and event factories (the shape Lambda's event
 * source mapping delivers), for the profile function's tests.
 */
import type { AttributeValue, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import type { StoredEvent } from '#domain/stored-event.ts';

/** Plain value → DynamoDB JSON, as the Events table stores it. */
export function toAttributeValue(value: unknown): AttributeValue {
  if (value === null) return { NULL: true };
  if (typeof value === 'string') return { S: value };
  if (typeof value === 'number') return { N: String(value) };
  if (typeof value === 'boolean') return { BOOL: value };
  if (Array.isArray(value)) return { L: value.map(toAttributeValue) };
  if (typeof value === 'object') return { M: toImage(value as Record<string, unknown>) };
  throw new Error(`Cannot store ${typeof value} in DynamoDB`);
}

export function toImage(item: Record<string, unknown>): Record<string, AttributeValue> {
  const out: Record<string, AttributeValue> = {};
  for (const [key, value] of Object.entries(item)) if (value !== undefined) out[key] = toAttributeValue(value);
  return out;
}

const STREAM_ARN =
  'arn:aws:dynamodb:us-east-1:123456789012:table/kairos-events/stream/2026-11-23T00:00:00.000';

export interface StreamRecordOptions {
  readonly sequenceNumber: string;
  readonly eventName?: 'INSERT' | 'MODIFY' | 'REMOVE';
}

/** A stream record whose NEW_IMAGE is the stored event (or any item, to build poison records). */
export function streamRecord(item: StoredEvent | Record<string, unknown>, options: StreamRecordOptions): DynamoDBRecord {
  const eventName = options.eventName ?? 'INSERT';
  const image = toImage(item as Record<string, unknown>);
  const pk = (item as { pk?: unknown }).pk;
  return {
    eventID: `evt-${options.sequenceNumber}`,
    eventName,
    eventVersion: '1.1',
    eventSource: 'aws:dynamodb',
    awsRegion: 'us-east-1',
    dynamodb: {
      ApproximateCreationDateTime: Math.floor(Date.now() / 1000),
      Keys: { pk: { S: typeof pk === 'string' ? pk : 'unknown' } },
      ...(eventName === 'REMOVE' ? { OldImage: image } : { NewImage: image }),
      SequenceNumber: options.sequenceNumber,
      SizeBytes: JSON.stringify(image).length,
      StreamViewType: 'NEW_IMAGE',
    },
    eventSourceARN: STREAM_ARN,
  };
}

export function streamEvent(records: readonly DynamoDBRecord[]): DynamoDBStreamEvent {
  return { Records: [...records] };
}

/** Sequence numbers as a shard issues them: increasing, same width. */
export const sequenceNumber = (n: number): string => `1${String(n).padStart(20, '0')}`;

export interface EventInput {
  readonly type: StoredEvent['type'];
  readonly messageId: string;
  readonly timestamp: string;
  readonly userId?: string;
  readonly anonymousId?: string;
  readonly previousId?: string;
  readonly event?: string;
  readonly name?: string;
  readonly properties?: Record<string, unknown>;
  readonly traits?: Record<string, unknown>;
  readonly context?: Record<string, unknown>;
  readonly sourceId?: string;
}

/** A stored event as ingest writes it (keys derived the same way). */
export function storedEvent(input: EventInput): StoredEvent {
  const sourceId = input.sourceId ?? 'src-test';
  const profileKey = input.userId !== undefined ? `u#${input.userId}` : `a#${input.anonymousId ?? ''}`;
  return {
    pk: `${sourceId}#${input.messageId}`,
    profileKey,
    sortKey: `${input.timestamp}#${input.messageId}`,
    sourceId,
    messageId: input.messageId,
    type: input.type,
    ...(input.userId !== undefined ? { userId: input.userId } : {}),
    ...(input.anonymousId !== undefined ? { anonymousId: input.anonymousId } : {}),
    ...(input.previousId !== undefined ? { previousId: input.previousId } : {}),
    ...(input.event !== undefined ? { event: input.event } : {}),
    ...(input.name !== undefined ? { name: input.name } : {}),
    ...(input.properties !== undefined ? { properties: input.properties } : {}),
    ...(input.traits !== undefined ? { traits: input.traits } : {}),
    ...(input.context !== undefined ? { context: input.context } : {}),
    timestamp: input.timestamp,
    receivedAt: input.timestamp,
    // Ingest keeps an event 90 days from when it stores it: from now, not from the event's own timestamp. Test
    // events carry fixed past timestamps, and an item already past its TTL is one DynamoDB (and DynamoDB Local,
    // whose deletion job runs every few seconds) deletes at any moment: a test that stores it would then depend
    // on when that job runs.
    expiresAt: Math.floor(Date.now() / 1000) + 90 * 86_400,
  };
}
