/**
 * The profile function: applies the Events stream (NEW_IMAGE) to the
 * Profiles table. Powertools batch with ReportBatchItemFailures: a record
 * that cannot be applied (not a stored event, or its application fails) is
 * reported by sequence number while the rest of the batch is applied;
 * a store fault fails its records, so the stream redelivers them and the
 * "applied" markers make the redelivery of the others a no-op.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { config, requiredDecisionSecret } from '#shared/config.ts';
import { decisionKey } from '#domain/decide/decision-id.ts';
import { getProfileEnricher, prepareProfileEnricher } from '#domain/profile/enrich.ts';
import { storedEventSchema } from '#domain/stored-event.ts';
import { applyStoredEvents, type ApplyInput } from './apply.ts';
import './enrichment.ts';

const logger = new Logger({ serviceName: 'kairos-profile' });
const metrics = new Metrics({ namespace: 'Kairos', serviceName: 'profile' });

export class PoisonRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoisonRecordError';
  }
}

/** Outcomes are attributed only to decision ids this service sealed (decide). */
const DECISION_KEY = decisionKey(requiredDecisionSecret());

const sequenceOf = (record: DynamoDBRecord): string => record.dynamodb?.SequenceNumber ?? '';

/** Decode a record: an INSERT's NEW_IMAGE must be a stored event; other kinds are ignored. */
function decode(record: DynamoDBRecord): { kind: 'event'; input: ApplyInput } | { kind: 'ignore' } | { kind: 'poison'; error: Error } {
  // MODIFY never happens to an event; REMOVE is the TTL expiring the history.
  if (record.eventName !== 'INSERT') return { kind: 'ignore' };
  const image = record.dynamodb?.NewImage;
  if (!image) return { kind: 'poison', error: new PoisonRecordError('INSERT record without NEW_IMAGE') };
  let raw: unknown;
  try {
    // Lambda's stream record types and the SDK's describe the same DynamoDB JSON.
    raw = unmarshall(image as Record<string, AttributeValue>);
  } catch (error) {
    return { kind: 'poison', error: new PoisonRecordError(`Unreadable NEW_IMAGE: ${(error as Error).message}`) };
  }
  const parsed = storedEventSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { kind: 'poison', error: new PoisonRecordError(`Not a stored event: ${problems.join('; ')}`) };
  }
  return { kind: 'event', input: { id: sequenceOf(record), event: parsed.data } };
}

export async function processStreamEvent(event: DynamoDBStreamEvent, context?: Context): Promise<DynamoDBBatchResponse> {
  const records = event.Records ?? [];
  const outcomes = new Map<string, Error>();
  const inputs: ApplyInput[] = [];
  for (const record of records) {
    const decoded = decode(record);
    if (decoded.kind === 'event') inputs.push(decoded.input);
    else if (decoded.kind === 'poison') outcomes.set(sequenceOf(record), decoded.error);
  }

  if (inputs.length > 0) {
    try {
      await prepareProfileEnricher();
    } catch (error) {
      // Segments are derived data: a catalog that cannot be read now must not hold the customer's events back.
      logger.warn('profile enricher not prepared; enriching with what is cached', { error: error as Error });
    }
  }
  const report = await applyStoredEvents(inputs, {
    settings: { halfLifeDays: config.KAIROS_INTEREST_HALF_LIFE_DAYS, decisionKey: DECISION_KEY },
    enricher: getProfileEnricher(),
    onWarning: (message, details) => logger.warn(message, details),
  });
  for (const [id, error] of report.failures) outcomes.set(id, error);

  metrics.addMetric('EventsApplied', MetricUnit.Count, report.applied);
  metrics.addMetric('EventsAlreadyApplied', MetricUnit.Count, report.duplicates);
  metrics.addMetric('ProfilesMerged', MetricUnit.Count, report.merges);
  metrics.addMetric('EventsDroppedByErasure', MetricUnit.Count, report.erased);
  metrics.addMetric('RecordsFailed', MetricUnit.Count, outcomes.size);
  metrics.publishStoredMetrics();
  for (const [sequenceNumber, error] of outcomes) {
    logger.error('stream record not applied', { sequenceNumber, error });
  }

  // Powertools shapes the partial response: each failed record by its SequenceNumber.
  const processor = new BatchProcessor(EventType.DynamoDBStreams);
  const recordHandler = async (record: DynamoDBRecord): Promise<void> => {
    const error = outcomes.get(sequenceOf(record));
    if (error) throw error;
  };
  return processPartialResponse(event, recordHandler, processor, {
    ...(context ? { context } : {}),
    throwOnFullBatchFailure: false,
  });
}

export const handler = async (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> => {
  logger.addContext(context);
  return processStreamEvent(event, context);
};
