/**
 * What Kairos emits on the bus, and how it is named (docs/catalog.md "Triggers"):
 * the `source` and `detail-type` of each kind of emission, the stable
 * emission id consumers dedupe on, and the detail of a trigger's action.
 *
 * Deployed, each `now` outbox entry becomes one EventBridge event
 * (`source` EMISSION_SOURCE, `detail-type` the entry's, `detail` the
 * entry's). A `deferred` entry is a timer (a journey's wait, or a send
 * that fell in quiet hours), an EventBridge Scheduler one-time schedule
 * that, due, writes its event to the Events table (journeys/timer.ts): a
 * deferred send is decided when it is due, not before. Delivery is at
 * least once: consumers dedupe on `detail.emissionId`.
 */
import { createHash } from 'node:crypto';
import type { Channel } from '../channels.ts';
import type { TriggerCause } from '../catalog/compiled.ts';
import type { SendTimerRef } from '../journeys/timer.ts';

/** The `source` of every Kairos event on the bus. */
export const EMISSION_SOURCE = 'kairos';

/** `detail-type` per kind of emission: a rule routes on it (and on `detail.channel`). */
export const DETAIL_TYPES = {
  /** A trigger's decided action (shared/domain/triggers/react.ts). */
  trigger: 'Kairos Trigger Action',
  /** A journey step's decided action (shared/domain/journeys/react.ts). */
  journey: 'Kairos Journey Action',
  /**
   * A journey's timer: written to the Events table when due (shared/domain/journeys/timer.ts,
   * shared/bus/journey-timers.ts); on the bus only as its fired schedule, which a rule on this
   * detail-type brings back to the dispatcher, never published as an emission.
   */
  journeyTimer: 'Kairos Journey Timer',
  /**
   * A deferred send's timer (a trigger's or a journey step's send that fell in quiet hours): written to
   * the Events table when due, like a journey's timer, and decided then by the profile function.
   */
  sendTimer: 'Kairos Send Timer',
} as const;

/** The detail types of Kairos's timers: written to the Events table when due, never published as emissions. */
export const TIMER_DETAIL_TYPES: readonly string[] = [DETAIL_TYPES.journeyTimer, DETAIL_TYPES.sendTimer];

/** Why a send was not emitted (consent, caps, suppression, nothing eligible…). */
export type RefusalReason = 'consent' | 'quiet_hours' | 'channel_cap' | 'suppressed' | 'no_eligible_action';

/** The longest emission id (characters): the outbox's key, the dedupe key of every consumer. */
export const MAX_EMISSION_ID_LENGTH = 200;

/** 40 hex digits of SHA-256: how an id part too long to be kept as it is goes in an id. */
export const idDigest = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 40);

/**
 * The stable id of what `source` (a trigger, of at most 128 characters) set
 * off for the event `eventPk` (`<sourceId>#<messageId>`):
 * `<source>.<eventPk>`, or, when that would pass MAX_EMISSION_ID_LENGTH,
 * `<source>.h-<digest of eventPk>` (an event key always has a `#`, a
 * digest never: the two forms never meet). The same occurrence always gets
 * the same id, two different ones never do.
 */
export function emissionId(source: string, eventPk: string): string {
  const readable = `${source}.${eventPk}`;
  return readable.length <= MAX_EMISSION_ID_LENGTH ? readable : `${source}.h-${idDigest(eventPk)}`;
}

/**
 * What every decided emission's `detail` carries (a trigger's, a journey
 * step's): the customer, the slot, when it was decided and is to be sent,
 * and the action sent or why none was.
 */
export interface DecidedSendDetail {
  /** The customer: the key experiments and learning use (decide.ts `customerKey`), and its ids. */
  readonly customerKey: string;
  readonly userId?: string;
  readonly anonymousId?: string;
  readonly channel: Channel;
  readonly placement?: string;
  /** When it was decided, and when it is to be sent (ISO-8601). */
  readonly decidedAt: string;
  readonly sendAt: string;
  /** A send: the decision (sealed like decide's, so outcomes reported with it are attributed) and its rendered action. */
  readonly decisionId?: string;
  readonly actionId?: string;
  readonly variant?: string;
  readonly content?: Readonly<Record<string, string | string[]>>;
  /** A refusal: why, and what held it (the policy's id or channel). */
  readonly refused?: RefusalReason;
  readonly refusedBy?: string;
}

/** The `detail` of a trigger's emission: JSON, as the bus carries it. */
export interface TriggerEmissionDetail extends DecidedSendDetail {
  readonly emissionId: string;
  readonly kind: 'trigger';
  readonly trigger: string;
  /** What set it off. */
  readonly cause: TriggerCause;
  /** The `messageId` of the event that set it off. */
  readonly eventId: string;
}

/** The `detail` of a journey `act` step's emission (shared/domain/journeys/react.ts). */
export interface JourneyEmissionDetail extends DecidedSendDetail {
  readonly emissionId: string;
  readonly kind: 'journey';
  readonly journey: string;
  /**
   * The customer's run of the journey (1 for the first), and when it was
   * entered (ISO-8601): the two name the run (`enteredAt` is absent only
   * from a send deferred before runs were named by it, decided since).
   */
  readonly run: number;
  readonly enteredAt?: string;
  readonly step: string;
  /** The `messageId` of the event that reached the step (a timer's, after a wait). */
  readonly eventId: string;
}

/**
 * The `detail` of a journey's timer (an outbox entry `deferred` to its due
 * time): the `Journey Timer` event the scheduler writes to the Events table
 * then (shared/domain/journeys/timer.ts), which comes back to the profile
 * function like any event.
 */
export interface JourneyTimerDetail {
  readonly emissionId: string;
  readonly kind: 'journey-timer';
  readonly journey: string;
  /** The run: its number and when it was entered (ISO-8601; absent from a timer written before runs were named by it). */
  readonly run: number;
  readonly enteredAt?: string;
  readonly step: string;
  /** The customer's profile key (`u#…`, `a#…`). */
  readonly profileKey: string;
  /** When it is due (ISO-8601). */
  readonly dueAt: string;
}

/**
 * The `detail` of a deferred send's timer (an outbox entry `deferred` to
 * the end of quiet hours, its id `sendTimerId` of the send's): the `Send
 * Timer` event the scheduler writes to the Events table then
 * (shared/domain/journeys/timer.ts), which the profile function decides on
 * the profile as it is then: the send (`send`, its emission id) is written
 * to the outbox `now` or `refused`. No content, no decision, no contact
 * until then.
 */
export interface SendTimerDetail extends SendTimerRef {
  /** The timer's own id (its outbox entry's, its schedule's name). */
  readonly emissionId: string;
  readonly kind: 'send-timer';
  /** The customer's profile key (`u#…`, `a#…`). */
  readonly profileKey: string;
  /** When it is due: the end of quiet hours (ISO-8601). */
  readonly dueAt: string;
}

/**
 * The id of a deferred send's timer: `st-` and 40 hex digits of SHA-256 of
 * the send's emission id. No dot, so never a trigger's or a journey's
 * readable id, and never a `jh-` one.
 */
export const sendTimerId = (send: string): string => `st-${idDigest(send)}`;
