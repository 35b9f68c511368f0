/**
 * A journey's timer coming back: when a `Kairos Journey Timer` emission is
 * due (at once from the dispatcher, or when its schedule fires), its
 * `Journey Timer` event (shared/domain/journeys/timer.ts) is written to the
 * Events table through the store's own conditional put
 * (shared/store/events.ts `storeEvents`), so however often it fires it is
 * stored once; the Events stream brings it to the profile function like any
 * event. A timer is never put on the bus as an emission.
 */
import { config } from '../config.ts';
import { journeyTimerEvent, journeyTimerOfDetail } from '#domain/journeys/timer.ts';
import { DETAIL_TYPES } from '#domain/triggers/emission.ts';
import { storeEvents, type StoreEventsOptions } from '#store/events.ts';
import type { BusEvent } from './bus.ts';

/** Whether a bus event is a journey's timer (written to the Events table, not published). */
export const isJourneyTimer = (event: Pick<BusEvent, 'detailType'>): boolean => event.detailType === DETAIL_TYPES.journeyTimer;

/**
 * Write the `Journey Timer` event of a timer emission's `detail` at
 * `firedAt` (epoch ms), kept for KAIROS_HISTORY_DAYS like ingested events.
 * Resolves `true` when written, `false` when it was already (a repeat);
 * rejects on a detail that names no timer (Error) or a store fault
 * (StoreFault, to be retried).
 */
export async function writeJourneyTimer(
  detail: Readonly<Record<string, unknown>>,
  firedAt: number,
  options: Pick<StoreEventsOptions, 'client' | 'tableName'> = {},
): Promise<boolean> {
  const timer = journeyTimerOfDetail(detail);
  if (!timer) throw new Error(`not a journey timer: ${JSON.stringify(detail).slice(0, 200)}`);
  const expiresAt = Math.floor(firedAt / 1000) + Math.round(config.KAIROS_HISTORY_DAYS * 86_400);
  const { accepted } = await storeEvents([journeyTimerEvent(timer, firedAt, expiresAt)], options);
  return accepted === 1;
}
