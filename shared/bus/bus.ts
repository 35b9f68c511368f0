/**
 * Where emissions go: the stack's event bus and its scheduler, as the
 * dispatcher (functions/dispatcher/handler.ts) sees them; the erasure
 * (functions/admin/profiles.ts) cancels a customer's pending schedules. Deployed,
 * Amazon EventBridge and EventBridge Scheduler (eventbridge.ts); on the
 * local stack, a JSONL file and a persisted timer list (local/outbox.ts).
 *
 * A bus event is `source` EMISSION_SOURCE (shared/domain/triggers/emission.ts),
 * `detail-type` and `detail`; `id` is the stable emission id (also in the
 * detail as `emissionId`): delivery is at least once, consumers dedupe on it.
 */
import type { OutboxEntry } from '#domain/profile/reactions.ts';

export interface BusEvent {
  /** Stable id of the emission (at most 200 characters): the dedupe key. */
  readonly id: string;
  readonly detailType: string;
  readonly detail: Readonly<Record<string, unknown>>;
}

export interface EmissionBus {
  /**
   * Put the events on the bus now. Resolves with the ids of those the bus
   * refused (to be retried); rejects when the call itself failed (all are
   * retried).
   */
  put(events: readonly BusEvent[]): Promise<readonly string[]>;
}

export interface EmissionScheduler {
  /**
   * Have `event` put on the bus at `at` (epoch ms): a one-time schedule
   * named after the event's id, so scheduling the same event again is a
   * no-op (success). Rejects when it could not be scheduled.
   */
  scheduleAt(event: BusEvent, at: number): Promise<void>;
  /**
   * Cancel the schedule of the event whose id is `eventId` (the erasure of
   * its customer): once it resolves, the event is not put on the bus. A
   * schedule that does not exist (never made, fired, cancelled before) is
   * success. Rejects when it could not be cancelled.
   */
  cancel(eventId: string): Promise<void>;
}

/**
 * How hard a schedule's delivery is tried before it is given up on: deployed,
 * EventBridge Scheduler's retries of its put on the bus before the timer
 * failure queue (eventbridge.ts `scheduleRequest`, as the timer rule's);
 * locally, the local scheduler's retries before the schedule is set aside
 * (local/outbox.ts).
 */
export const SCHEDULE_RETRY_POLICY = { MaximumRetryAttempts: 10, MaximumEventAgeInSeconds: 6 * 3600 } as const;

/** The bus event of an outbox entry. */
export const busEventOf = (entry: Pick<OutboxEntry, 'id' | 'detailType' | 'detail'>): BusEvent => ({
  id: entry.id,
  detailType: entry.detailType,
  detail: entry.detail,
});
