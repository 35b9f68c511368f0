/**
 * Kairos's own timers as events: when a timer is due, the scheduler
 * (deployed EventBridge Scheduler, locally its emulation) writes its event
 * to the Events table, and it comes back to the profile function through
 * the stream like any other event. A timer names one of two things:
 * - a journey's wait (`Journey Timer`: journey, run — its number and entry
 *   time —, step), which moves the run on (machine.ts); a timer whose run
 *   has moved on, or that is of another run (an erased customer's, of the
 *   same number), is stale and does nothing;
 * - a deferred send (`Send Timer`: the send's emission id, its slot, what
 *   set it off and the firing's decision context), a send that fell in quiet
 *   hours: the profile plan decides it when it comes back, on the profile as
 *   it is then (triggers/react.ts `decideDueSend`).
 *
 * Its message id is a function of what it names and of the customer, so
 * the Events table's conditional put accepts it once however often the
 * scheduler fires. Its source id, `kairos`, is one no write key has (key
 * ids are `key_…`): a caller cannot send a timer through ingest. A timer is
 * not activity (profile/apply.ts), and one of a profile that no longer
 * exists (erased while it waited) is dropped (profile/plan.ts).
 */
import { createHash } from 'node:crypto';
import type { TriggerCause } from '../catalog/compiled.ts';
import { isChannel, type Channel } from '../channels.ts';
import { eventPk, eventSortKey } from '../item-keys.ts';
import type { StoredEvent } from '../stored-event.ts';

/** The track event name of a journey timer. */
export const JOURNEY_TIMER_EVENT = 'Journey Timer';

/** The track event name of a deferred send's timer. */
export const SEND_TIMER_EVENT = 'Send Timer';

/** The source id of the events Kairos writes itself. */
export const INTERNAL_SOURCE_ID = 'kairos';

/**
 * What a journey's timer names: the journey, the run (its number and its
 * entry time, ISO-8601: machine.ts `sameRun`) and the wait step it ends.
 * `enteredAt` is absent only from a timer written before runs were named by
 * it.
 */
export interface JourneyTimerRef {
  readonly journey: string;
  readonly run: number;
  readonly enteredAt?: string;
  readonly step: string;
}

/**
 * What set a deferred send off: a trigger's firing, or a journey's `act`
 * step (its run named as a timer names it: `JourneyTimerRef`); `eventId`,
 * the `messageId` of the event that did.
 */
export type SendOrigin =
  | { readonly kind: 'trigger'; readonly trigger: string; readonly cause: TriggerCause; readonly eventId: string }
  | ({ readonly kind: 'journey'; readonly eventId: string } & JourneyTimerRef);

/**
 * What a deferred send's timer names: the send (its emission id, which the
 * send decided when due keeps), its slot, what set it off, and the decision
 * context of the firing (triggers/react.ts `eventContext` of its event: the
 * send is decided with it when due, its `timezone` included).
 */
export interface SendTimerRef {
  readonly send: string;
  readonly channel: Channel;
  readonly placement?: string;
  readonly origin: SendOrigin;
  readonly context: Readonly<Record<string, unknown>>;
}

/** Where and when a timer is: the customer's profile key (`u#…`, `a#…`) and its due time, epoch ms. */
export interface TimerPlace {
  readonly profileKey: string;
  readonly dueAt: number;
}

const isRecord = (value: unknown): value is Readonly<Record<string, unknown>> => value !== null && typeof value === 'object' && !Array.isArray(value);
const isText = (value: unknown): value is string => typeof value === 'string' && value.length > 0;
const isRun = (value: unknown): value is number => typeof value === 'number' && Number.isInteger(value);

function journeyRefOf(fields: Readonly<Record<string, unknown>>): JourneyTimerRef | undefined {
  const { journey, run, enteredAt, step } = fields;
  if (typeof journey !== 'string' || typeof step !== 'string' || !isRun(run)) return undefined;
  if (enteredAt !== undefined && typeof enteredAt !== 'string') return undefined;
  return { journey, run, ...(enteredAt !== undefined ? { enteredAt } : {}), step };
}

function sendOriginOf(value: unknown): SendOrigin | undefined {
  if (!isRecord(value) || !isText(value.eventId)) return undefined;
  if (value.kind === 'trigger' && isText(value.trigger) && isRecord(value.cause) && typeof value.cause.kind === 'string') {
    return { kind: 'trigger', trigger: value.trigger, cause: value.cause as unknown as TriggerCause, eventId: value.eventId };
  }
  const ref = value.kind === 'journey' ? journeyRefOf(value) : undefined;
  return ref ? { kind: 'journey', ...ref, eventId: value.eventId } : undefined;
}

function sendRefOf(fields: Readonly<Record<string, unknown>>): SendTimerRef | undefined {
  const { send, channel, placement, origin, context } = fields;
  const from = sendOriginOf(origin);
  if (!isText(send) || !isChannel(channel) || !from || !isRecord(context)) return undefined;
  if (placement !== undefined && typeof placement !== 'string') return undefined;
  return { send, channel, ...(placement !== undefined ? { placement } : {}), origin: from, context };
}

const isInternalTrack = (event: Pick<StoredEvent, 'sourceId' | 'type' | 'event'>, name: string): boolean =>
  event.sourceId === INTERNAL_SOURCE_ID && event.type === 'track' && event.event === name;

/** The journey timer an event is, if it is one (written by Kairos, with its three properties). */
export function journeyTimerOf(event: Pick<StoredEvent, 'sourceId' | 'type' | 'event' | 'properties'>): JourneyTimerRef | undefined {
  return isInternalTrack(event, JOURNEY_TIMER_EVENT) ? journeyRefOf(event.properties ?? {}) : undefined;
}

/** The deferred send's timer an event is, if it is one (written by Kairos, naming a send). */
export function sendTimerOf(event: Pick<StoredEvent, 'sourceId' | 'type' | 'event' | 'properties'>): SendTimerRef | undefined {
  return isInternalTrack(event, SEND_TIMER_EVENT) ? sendRefOf(event.properties ?? {}) : undefined;
}

/** Whether an event is one of Kairos's timers (a journey's, a deferred send's): not the customer's activity. */
export const isTimerEvent = (event: Pick<StoredEvent, 'sourceId' | 'type' | 'event' | 'properties'>): boolean =>
  journeyTimerOf(event) !== undefined || sendTimerOf(event) !== undefined;

/**
 * When what a timer event names began (epoch ms): a journey timer's run
 * entry (`enteredAt`), a deferred send's firing (its context's
 * `timestamp`, the event that set the send off); undefined for an event
 * that is no timer, or a timer that does not say (a journey timer written
 * before runs were named by their entry time). The profile plan drops a
 * timer whose origin is at or before an erasure of its customer, however
 * late it fires (profile/plan.ts).
 */
export function timerOrigin(event: Pick<StoredEvent, 'sourceId' | 'type' | 'event' | 'properties'>): number | undefined {
  const journey = journeyTimerOf(event);
  const send = journey ? undefined : sendTimerOf(event);
  const at = journey?.enteredAt ?? send?.context.timestamp;
  const time = typeof at === 'string' ? Date.parse(at) : Number.NaN;
  return Number.isFinite(time) ? time : undefined;
}

/** How every timer's message id starts. */
const TIMER_MESSAGE_PREFIX = 'jt-';

/**
 * How the Events table key of every timer starts (`kairos#jt-`): the only
 * keys the dispatcher may put there (shared/functions.ts `leadingKeys`).
 */
export const JOURNEY_TIMER_KEY_PREFIX = eventPk(INTERNAL_SOURCE_ID, TIMER_MESSAGE_PREFIX);

/** `jt-` and 40 hex digits of SHA-256 of what a timer names (within ingest's 100 characters). */
const timerMessageId = (names: readonly unknown[]): string =>
  `${TIMER_MESSAGE_PREFIX}${createHash('sha256').update(JSON.stringify(names)).digest('hex').slice(0, 40)}`;

/**
 * A journey timer's message id: of its journey, run (number and entry
 * time), step and customer — five parts; a timer written before runs were
 * named by their entry time keeps the id it had then (four parts).
 */
export function journeyTimerMessageId(timer: JourneyTimerRef & { readonly profileKey: string }): string {
  const names = [timer.journey, timer.run, timer.step, timer.profileKey];
  return timerMessageId(timer.enteredAt === undefined ? names : [...names, timer.enteredAt]);
}

/** A deferred send timer's message id: of its send and customer (three parts: never a journey timer's four or five). */
export function sendTimerMessageId(timer: Pick<SendTimerRef, 'send'> & { readonly profileKey: string }): string {
  return timerMessageId(['send', timer.send, timer.profileKey]);
}

/** The stored timer event `name` with `properties`, message id `messageId`, due at `place.dueAt`, written at `firedAt`, kept until `expiresAt` (epoch s). */
function timerEvent(name: string, messageId: string, properties: Record<string, unknown>, place: TimerPlace, firedAt: number, expiresAt: number): StoredEvent {
  const timestamp = new Date(place.dueAt).toISOString();
  const id = place.profileKey.slice(2);
  return {
    pk: eventPk(INTERNAL_SOURCE_ID, messageId),
    profileKey: place.profileKey,
    sortKey: eventSortKey(timestamp, messageId),
    sourceId: INTERNAL_SOURCE_ID,
    messageId,
    type: 'track',
    ...(place.profileKey.startsWith('u#') ? { userId: id } : { anonymousId: id }),
    event: name,
    properties,
    timestamp,
    receivedAt: new Date(firedAt).toISOString(),
    expiresAt,
  };
}

/**
 * The stored event of a journey timer due at `dueAt` (epoch ms) for the
 * customer `profileKey` (`u#…` or `a#…`), written at `firedAt`, kept in the
 * history until `expiresAt` (epoch s, the Events table's TTL).
 */
export function journeyTimerEvent(timer: JourneyTimerRef & TimerPlace, firedAt: number, expiresAt: number): StoredEvent {
  const properties = { journey: timer.journey, run: timer.run, ...(timer.enteredAt !== undefined ? { enteredAt: timer.enteredAt } : {}), step: timer.step };
  return timerEvent(JOURNEY_TIMER_EVENT, journeyTimerMessageId(timer), properties, timer, firedAt, expiresAt);
}

/** The stored event of a deferred send's timer (see `journeyTimerEvent`). */
export function sendTimerEvent(timer: SendTimerRef & TimerPlace, firedAt: number, expiresAt: number): StoredEvent {
  const properties = {
    send: timer.send,
    channel: timer.channel,
    ...(timer.placement !== undefined ? { placement: timer.placement } : {}),
    origin: timer.origin,
    context: timer.context,
  };
  return timerEvent(SEND_TIMER_EVENT, sendTimerMessageId(timer), properties, timer, firedAt, expiresAt);
}

function placeOf(detail: Readonly<Record<string, unknown>>): TimerPlace | undefined {
  const { profileKey, dueAt } = detail;
  if (typeof profileKey !== 'string' || !/^[ua]#./.test(profileKey)) return undefined;
  const due = typeof dueAt === 'string' ? Date.parse(dueAt) : Number.NaN;
  return Number.isFinite(due) ? { profileKey, dueAt: due } : undefined;
}

/**
 * The timer an outbox entry's `detail` names (a `Kairos Journey Timer`
 * entry, triggers/emission.ts JourneyTimerDetail), with its due time in
 * epoch ms; undefined when the detail is not a well-formed journey timer.
 */
export function journeyTimerOfDetail(detail: Readonly<Record<string, unknown>>): (JourneyTimerRef & TimerPlace) | undefined {
  const ref = detail.kind === 'journey-timer' ? journeyRefOf(detail) : undefined;
  const place = placeOf(detail);
  return ref && place ? { ...ref, ...place } : undefined;
}

/** The deferred send's timer an outbox entry's `detail` names (a `Kairos Send Timer` entry, triggers/emission.ts SendTimerDetail). */
export function sendTimerOfDetail(detail: Readonly<Record<string, unknown>>): (SendTimerRef & TimerPlace) | undefined {
  const ref = detail.kind === 'send-timer' ? sendRefOf(detail) : undefined;
  const place = placeOf(detail);
  return ref && place ? { ...ref, ...place } : undefined;
}

/**
 * The stored event of the timer an outbox entry's `detail` names (either
 * kind), written at `firedAt` and kept until `expiresAt` (epoch s);
 * undefined when the detail names no timer.
 */
export function timerEventOfDetail(detail: Readonly<Record<string, unknown>>, firedAt: number, expiresAt: number): StoredEvent | undefined {
  const journey = journeyTimerOfDetail(detail);
  if (journey) return journeyTimerEvent(journey, firedAt, expiresAt);
  const send = sendTimerOfDetail(detail);
  return send ? sendTimerEvent(send, firedAt, expiresAt) : undefined;
}
