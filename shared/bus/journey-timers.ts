/**
 * Kairos's timers coming back: when a timer emission is due (a journey's
 * wait, `Kairos Journey Timer`; a deferred send, `Kairos Send Timer`) — at
 * once from the dispatcher, or when its schedule fires — its event
 * (shared/domain/journeys/timer.ts) is written to the Events table through
 * the store's own conditional put (shared/store/events.ts `storeEvents`),
 * so however often it fires it is stored once; the Events stream brings it
 * to the profile function like any event. A timer is never put on the bus
 * as an emission.
 */
import { config } from '../config.ts';
import { timerEventOfDetail } from '#domain/journeys/timer.ts';
import { TIMER_DETAIL_TYPES } from '#domain/triggers/emission.ts';
import { storeEvents, type StoreEventsOptions } from '#store/events.ts';
import type { BusEvent } from './bus.ts';

/** Whether a bus event is one of Kairos's timers (written to the Events table, not published). */
export const isTimer = (event: Pick<BusEvent, 'detailType'>): boolean => TIMER_DETAIL_TYPES.includes(event.detailType);

/**
 * Write the timer event of a timer emission's `detail` at `firedAt` (epoch
 * ms), kept for KAIROS_HISTORY_DAYS like ingested events. Resolves `true`
 * when written, `false` when it was already (a repeat); rejects on a detail
 * that names no timer (Error) or a store fault (StoreFault, to be retried).
 */
export async function writeTimer(
  detail: Readonly<Record<string, unknown>>,
  firedAt: number,
  options: Pick<StoreEventsOptions, 'client' | 'tableName'> = {},
): Promise<boolean> {
  const expiresAt = Math.floor(firedAt / 1000) + Math.round(config.KAIROS_HISTORY_DAYS * 86_400);
  const event = timerEventOfDetail(detail, firedAt, expiresAt);
  // The detail names a customer: never in the message, which is logged.
  if (!event) throw new Error('not a timer: the detail is neither a journey wait nor a deferred send');
  const { accepted } = await storeEvents([event], options);
  return accepted === 1;
}
