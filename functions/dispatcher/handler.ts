/**
 * The dispatcher: publishes the outbox. The Outbox table's stream
 * (NEW_IMAGE; deployed an event source mapping with
 * ReportBatchItemFailures, bisect, bounded retries and an on-failure queue;
 * locally the same poller as the Events stream) brings each emission the
 * profile function committed (shared/store/outbox.ts):
 * - `now`, or `deferred` whose time has come: put on the bus
 *   (shared/bus/bus.ts; deployed EventBridge, locally a JSONL file);
 * - `deferred`: a one-time schedule that puts it on the bus at `sendAt`
 *   (deployed EventBridge Scheduler, locally a persisted emulation);
 * - `refused`: nothing (the profile function counted it).
 * A record whose emission could not be put or scheduled is reported in
 * `batchItemFailures` and redelivered: delivery is at least once, and
 * every event carries its stable `emissionId` for consumers to dedupe.
 * Metrics: `EmissionsPublished`, `EmissionsScheduled`, `EmissionsFailed`.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { functionLogger, functionMetrics } from '#shared/observability.ts';
import { busEventOf, type EmissionBus, type EmissionScheduler } from '#shared/bus/bus.ts';
import { eventBridgeBus, eventBridgeScheduler } from '#shared/bus/eventbridge.ts';
import { outboxEntryFromItem } from '#store/outbox.ts';
import { itemFromImage } from '#store/stream-image.ts';

const logger = functionLogger('dispatcher');
const metrics = functionMetrics('dispatcher');

export interface DispatcherOptions {
  readonly bus: EmissionBus;
  readonly scheduler: EmissionScheduler;
  readonly now?: () => number;
}

export interface DispatchReport {
  readonly published: number;
  readonly scheduled: number;
  /** Sequence numbers of the records to redeliver. */
  readonly failures: readonly string[];
}

const sequenceOf = (record: DynamoDBRecord): string => record.dynamodb?.SequenceNumber ?? '';

/** Publish or schedule the emissions of a batch of Outbox stream records. */
export async function dispatchRecords(records: readonly DynamoDBRecord[], options: DispatcherOptions): Promise<DispatchReport> {
  const now = (options.now ?? Date.now)();
  const failures = new Set<string>();
  const publish: { sequence: string; id: string; event: ReturnType<typeof busEventOf> }[] = [];
  let scheduled = 0;
  for (const record of records) {
    if (record.eventName !== 'INSERT' || !record.dynamodb?.NewImage) continue;
    let entry;
    try {
      entry = outboxEntryFromItem(itemFromImage(record.dynamodb.NewImage as Record<string, unknown>));
    } catch (error) {
      logger.error('unreadable outbox record', { sequenceNumber: sequenceOf(record), error: error as Error });
      failures.add(sequenceOf(record));
      continue;
    }
    if (!entry || entry.status === 'refused') continue;
    if (entry.status === 'deferred' && entry.sendAt > now) {
      try {
        await options.scheduler.scheduleAt(busEventOf(entry), entry.sendAt);
        scheduled++;
      } catch (error) {
        logger.error('emission not scheduled', { emissionId: entry.id, error: error as Error });
        failures.add(sequenceOf(record));
      }
      continue;
    }
    publish.push({ sequence: sequenceOf(record), id: entry.id, event: busEventOf(entry) });
  }
  let published = 0;
  if (publish.length > 0) {
    try {
      const refused = new Set(await options.bus.put(publish.map((p) => p.event)));
      for (const p of publish) {
        if (refused.has(p.id)) failures.add(p.sequence);
        else published++;
      }
    } catch (error) {
      logger.error('emissions not published', { count: publish.length, error: error as Error });
      for (const p of publish) failures.add(p.sequence);
    }
  }
  return { published, scheduled, failures: [...failures] };
}

/** The dispatcher's stream handler, with its bus and scheduler passed in. */
export function createDispatchHandler(options: DispatcherOptions): (event: DynamoDBStreamEvent, context?: Context) => Promise<DynamoDBBatchResponse> {
  return async (event) => {
    const records = event.Records ?? [];
    const report = await dispatchRecords(records, options);
    metrics.addMetric('EmissionsPublished', MetricUnit.Count, report.published);
    metrics.addMetric('EmissionsScheduled', MetricUnit.Count, report.scheduled);
    metrics.addMetric('EmissionsFailed', MetricUnit.Count, report.failures.length);
    metrics.publishStoredMetrics();
    const failed = new Set(report.failures);
    // In the batch's order; Lambda checkpoints before the lowest.
    return { batchItemFailures: records.filter((r) => failed.has(sequenceOf(r))).map((r) => ({ itemIdentifier: sequenceOf(r) })) };
  };
}

let deployed: ReturnType<typeof createDispatchHandler> | undefined;

export const handler = async (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> => {
  logger.addContext(context);
  deployed ??= createDispatchHandler({ bus: eventBridgeBus(), scheduler: eventBridgeScheduler() });
  return deployed(event, context);
};
