/**
 * A journey's timer as an event: when a wait is due, the scheduler
 * (deployed EventBridge Scheduler, locally its emulation) writes this
 * `Journey Timer` track event to the Events table, and it comes back to the
 * profile function through the stream like any other event (machine.ts).
 *
 * Its message id is a function of the timer (journey, run, step, customer),
 * so the Events table's conditional put accepts it once however often the
 * scheduler fires; a timer whose run has moved on is stale and does nothing.
 * Its source id, `kairos`, is one no write key has (key ids are `key_…`):
 * a caller cannot send a timer through ingest.
 */
import { createHash } from 'node:crypto';
import { eventPk, eventSortKey } from '../item-keys.ts';
import type { StoredEvent } from '../stored-event.ts';

/** The track event name of a journey timer. */
export const JOURNEY_TIMER_EVENT = 'Journey Timer';

/** The source id of the events Kairos writes itself. */
export const INTERNAL_SOURCE_ID = 'kairos';

/** What a timer names: the journey, the run and the wait step it ends. */
export interface JourneyTimerRef {
  readonly journey: string;
  readonly run: number;
  readonly step: string;
}

/** The timer an event is, if it is one (written by Kairos, with its three properties). */
export function journeyTimerOf(event: Pick<StoredEvent, 'sourceId' | 'type' | 'event' | 'properties'>): JourneyTimerRef | undefined {
  if (event.sourceId !== INTERNAL_SOURCE_ID || event.type !== 'track' || event.event !== JOURNEY_TIMER_EVENT) return undefined;
  const { journey, run, step } = event.properties ?? {};
  if (typeof journey !== 'string' || typeof step !== 'string' || typeof run !== 'number' || !Number.isInteger(run)) return undefined;
  return { journey, run, step };
}

/** How every timer's message id starts. */
const TIMER_MESSAGE_PREFIX = 'jt-';

/**
 * How the Events table key of every timer starts (`kairos#jt-`): the only
 * keys the dispatcher may put there (shared/functions.ts `leadingKeys`).
 */
export const JOURNEY_TIMER_KEY_PREFIX = eventPk(INTERNAL_SOURCE_ID, TIMER_MESSAGE_PREFIX);

/** A timer's message id: `jt-` and 40 hex digits of SHA-256 of what it names (within ingest's 100 characters). */
export function journeyTimerMessageId(timer: JourneyTimerRef & { readonly profileKey: string }): string {
  const digest = createHash('sha256').update(JSON.stringify([timer.journey, timer.run, timer.step, timer.profileKey])).digest('hex');
  return `${TIMER_MESSAGE_PREFIX}${digest.slice(0, 40)}`;
}

/**
 * The stored event of a timer due at `dueAt` (epoch ms) for the customer
 * `profileKey` (`u#…` or `a#…`), written at `firedAt`, kept in the history
 * until `expiresAt` (epoch s, the Events table's TTL).
 */
export function journeyTimerEvent(
  timer: JourneyTimerRef & { readonly profileKey: string; readonly dueAt: number },
  firedAt: number,
  expiresAt: number,
): StoredEvent {
  const messageId = journeyTimerMessageId(timer);
  const timestamp = new Date(timer.dueAt).toISOString();
  const id = timer.profileKey.slice(2);
  return {
    pk: eventPk(INTERNAL_SOURCE_ID, messageId),
    profileKey: timer.profileKey,
    sortKey: eventSortKey(timestamp, messageId),
    sourceId: INTERNAL_SOURCE_ID,
    messageId,
    type: 'track',
    ...(timer.profileKey.startsWith('u#') ? { userId: id } : { anonymousId: id }),
    event: JOURNEY_TIMER_EVENT,
    properties: { journey: timer.journey, run: timer.run, step: timer.step },
    timestamp,
    receivedAt: new Date(firedAt).toISOString(),
    expiresAt,
  };
}

/**
 * The timer an outbox entry's `detail` names (a `Kairos Journey Timer`
 * entry, triggers/emission.ts JourneyTimerDetail), with its due time in
 * epoch ms; undefined when the detail is not a well-formed timer.
 */
export function journeyTimerOfDetail(
  detail: Readonly<Record<string, unknown>>,
): (JourneyTimerRef & { readonly profileKey: string; readonly dueAt: number }) | undefined {
  const { kind, journey, run, step, profileKey, dueAt } = detail;
  if (kind !== 'journey-timer' || typeof journey !== 'string' || typeof step !== 'string') return undefined;
  if (typeof run !== 'number' || !Number.isInteger(run)) return undefined;
  if (typeof profileKey !== 'string' || !/^[ua]#./.test(profileKey)) return undefined;
  const due = typeof dueAt === 'string' ? Date.parse(dueAt) : Number.NaN;
  if (!Number.isFinite(due)) return undefined;
  return { journey, run, step, profileKey, dueAt: due };
}
