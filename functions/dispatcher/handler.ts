/**
 * The dispatcher: publishes the outbox. The Outbox table's stream
 * (NEW_IMAGE; deployed an event source mapping with
 * ReportBatchItemFailures, bisect, bounded retries and an on-failure queue;
 * locally the same poller as the Events stream) brings each emission the
 * profile function committed (shared/store/outbox.ts):
 * - `now`: put on the bus (shared/bus/bus.ts; deployed EventBridge,
 *   locally a JSONL file);
 * - `refused`: nothing (the profile function counted it);
 * - removed by a caller (the erasure; not TTL's expiry, shared/store/
 *   stream-image.ts `isExpiryRemoval`): its schedule cancelled, so one made
 *   here after the erasure looked for it never fires; an insert removed
 *   later in the same batch is neither published, scheduled nor written;
 * - `deferred`: a timer (a journey's wait, `Kairos Journey Timer`; a send
 *   that fell in quiet hours, `Kairos Send Timer`), never put on the bus as
 *   an emission: due, its event is written to the Events table
 *   (shared/bus/journey-timers.ts, a conditional put: a repeat is a no-op),
 *   where the profile function takes it (a deferred send is decided then);
 *   not yet due, a one-time schedule at `sendAt` (deployed EventBridge
 *   Scheduler, locally a persisted emulation). Deployed, the schedule puts
 *   it on the bus, where a rule matching only the timers' detail-types
 *   invokes this function with the EventBridge event, and the handler
 *   writes the timer then (locally the scheduler emulation writes it
 *   itself).
 * A record whose emission could not be put or scheduled is reported in
 * `batchItemFailures` and redelivered: delivery is at least once, and
 * every event carries its stable `emissionId` for consumers to dedupe.
 * Metrics: `EmissionsPublished`, `EmissionsScheduled` (timers scheduled),
 * `EmissionsFailed`, `TimersWritten`, `EmissionsCancelled`.
 */
import '#shared/source-maps-register.ts';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent, EventBridgeEvent } from 'aws-lambda';
import { functionLogger, functionMetrics } from '#shared/observability.ts';
import { busEventOf, type EmissionBus, type EmissionScheduler } from '#shared/bus/bus.ts';
import { eventBridgeBus, eventBridgeScheduler } from '#shared/bus/eventbridge.ts';
import { isTimer, writeTimer as writeTimerEvent } from '#shared/bus/journey-timers.ts';
import { emissionIdOfKey, outboxEntryFromItem } from '#store/outbox.ts';
import { isExpiryRemoval, itemFromImage } from '#store/stream-image.ts';

const logger = functionLogger('dispatcher');
const metrics = functionMetrics('dispatcher');

export interface DispatcherOptions {
  readonly bus: EmissionBus;
  readonly scheduler: EmissionScheduler;
  readonly now?: () => number;
  /**
   * Writes a due timer's event to the Events table (its `detail`, the
   * instant it fired, epoch ms); rejects when it could not.
   * @default shared/bus/journey-timers.ts `writeTimer`
   */
  readonly writeTimer?: (detail: Readonly<Record<string, unknown>>, firedAt: number) => Promise<unknown>;
}

export interface DispatchReport {
  readonly published: number;
  readonly scheduled: number;
  /** Due timers written to the Events table (or found there already). */
  readonly timers: number;
  /** Schedules cancelled for emissions a caller (the erasure) removed. */
  readonly cancelled: number;
  /** Sequence numbers of the records to redeliver. */
  readonly failures: readonly string[];
}

const sequenceOf = (record: DynamoDBRecord): string => record.dynamodb?.SequenceNumber ?? '';

/** Publish or schedule the emissions of a batch of Outbox stream records. */
export async function dispatchRecords(records: readonly DynamoDBRecord[], options: DispatcherOptions): Promise<DispatchReport> {
  const now = (options.now ?? Date.now)();
  const failures = new Set<string>();
  const publish: { sequence: string; id: string; event: ReturnType<typeof busEventOf> }[] = [];
  const writeTimer = options.writeTimer ?? writeTimerEvent;
  let scheduled = 0;
  let timers = 0;
  let cancelled = 0;
  // Emissions a caller removed after their insert in this batch (the erasure): not published, scheduled or written.
  const removedAt = new Map<string, number>();
  records.forEach((record, index) => {
    const id = removalOf(record);
    if (id !== undefined) removedAt.set(id, index);
  });
  for (const [index, record] of records.entries()) {
    const removed = removalOf(record);
    if (removed !== undefined) {
      // The erasure cancels what it finds, then deletes: a schedule made here after it looked is cancelled now.
      try {
        await options.scheduler.cancel(removed);
        cancelled++;
      } catch (error) {
        logger.error('schedule of a removed emission not cancelled', { emissionId: removed, error: error as Error });
        failures.add(sequenceOf(record));
      }
      continue;
    }
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
    if ((removedAt.get(entry.id) ?? -1) > index) continue;
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
    if (isTimer(entry)) {
      try {
        await writeTimer(entry.detail, now);
        timers++;
      } catch (error) {
        logger.error('timer not written', { emissionId: entry.id, error: error as Error });
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
  return { published, scheduled, timers, cancelled, failures: [...failures] };
}

/** The emission id of a record that is a caller's removal of an Outbox item (not TTL's); else undefined. */
function removalOf(record: DynamoDBRecord): string | undefined {
  if (record.eventName !== 'REMOVE' || isExpiryRemoval(record)) return undefined;
  return emissionIdOfKey(record.dynamodb?.Keys?.pk?.S);
}

/** The dispatcher's stream handler, with its bus and scheduler passed in. */
export function createDispatchHandler(options: DispatcherOptions): (event: DynamoDBStreamEvent, context?: Context) => Promise<DynamoDBBatchResponse> {
  return async (event) => {
    const records = event.Records ?? [];
    const report = await dispatchRecords(records, options);
    metrics.addMetric('EmissionsPublished', MetricUnit.Count, report.published);
    metrics.addMetric('EmissionsScheduled', MetricUnit.Count, report.scheduled);
    metrics.addMetric('EmissionsFailed', MetricUnit.Count, report.failures.length);
    metrics.addMetric('TimersWritten', MetricUnit.Count, report.timers);
    metrics.addMetric('EmissionsCancelled', MetricUnit.Count, report.cancelled);
    metrics.publishStoredMetrics();
    const failed = new Set(report.failures);
    // In the batch's order; Lambda checkpoints before the lowest.
    return { batchItemFailures: records.filter((r) => failed.has(sequenceOf(r))).map((r) => ({ itemIdentifier: sequenceOf(r) })) };
  };
}

/**
 * The handler of a fired timer's schedule, as the bus rule delivers it (an
 * EventBridge event of a timer's detail-type, emission.ts
 * TIMER_DETAIL_TYPES): writes its event; rejects when it could not, so that EventBridge
 * retries the invocation (a repeat is a no-op). Any other event is refused.
 */
export function createTimerHandler(
  options: Pick<DispatcherOptions, 'now' | 'writeTimer'> = {},
): (event: EventBridgeEvent<string, Record<string, unknown>>) => Promise<void> {
  const writeTimer = options.writeTimer ?? writeTimerEvent;
  return async (event) => {
    if (!isTimer({ detailType: event['detail-type'] })) throw new Error(`unexpected event: ${event['detail-type']}`);
    await writeTimer(event.detail, (options.now ?? Date.now)());
    metrics.addMetric('TimersWritten', MetricUnit.Count, 1);
    metrics.publishStoredMetrics();
  };
}

let deployed: ReturnType<typeof createDispatchHandler> | undefined;
const timerHandler = createTimerHandler();

const isEventBridgeEvent = (event: object): event is EventBridgeEvent<string, Record<string, unknown>> => 'detail-type' in event;

export const handler = async (
  event: DynamoDBStreamEvent | EventBridgeEvent<string, Record<string, unknown>>,
  context: Context,
): Promise<DynamoDBBatchResponse | undefined> => {
  logger.addContext(context);
  if (isEventBridgeEvent(event)) {
    await timerHandler(event);
    return undefined;
  }
  deployed ??= createDispatchHandler({ bus: eventBridgeBus(), scheduler: eventBridgeScheduler() });
  return deployed(event, context);
};
