/**
 * The local-midnight instants a profile view counts its windows from
 * ("today", 7 and 30 days), with the arithmetic of time.ts `localMidnight`
 * and the same results, without its cost on every read: each midnight is a
 * pure function of (zone, local day), kept once computed, and the zone's
 * offset is a pure function of (zone, second), kept for the last second
 * asked (reads of one second, the common case under load, share it).
 * One Intl formatting per zone and second at most, instead of nine per view.
 */
import { DAY_MS, offsetMs } from './time.ts';

const MAX_ENTRIES = 1_000;

/** Per zone: the last second asked and the zone's offset then. */
const lastOffset = new Map<string, { second: number; offset: number }>();
/** `${zone}\u0000${day}` → the instant that local day starts (time.ts `localMidnight`). */
const midnights = new Map<string, number>();

/** time.ts `offsetMs`, remembered for the last second asked per zone. */
function offsetAt(timeZone: string, at: number): number {
  const second = Math.floor(at / 1000);
  const last = lastOffset.get(timeZone);
  if (last !== undefined && last.second === second) return last.offset;
  const offset = offsetMs(timeZone, at);
  if (lastOffset.size >= MAX_ENTRIES) lastOffset.clear();
  lastOffset.set(timeZone, { second, offset });
  return offset;
}

/** The start of a local day (a UTC-midnight day label), as time.ts `localMidnight` computes it. */
function midnightOf(timeZone: string, day: number): number {
  const key = `${timeZone}\u0000${day}`;
  const known = midnights.get(key);
  if (known !== undefined) return known;
  let guess = day - offsetMs(timeZone, day);
  guess = day - offsetMs(timeZone, guess);
  if (midnights.size >= MAX_ENTRIES) midnights.clear();
  midnights.set(key, guess);
  return guess;
}

export interface ViewWindows {
  /** Local midnight today. */
  readonly today: number;
  /** Local midnight 6 days before today (7 local days with today). */
  readonly d7: number;
  /** Local midnight 29 days before today (30 local days with today). */
  readonly d30: number;
}

/** `localMidnight(timeZone, at, k)` for k = 0, 6 and 29: the same instants. */
export function viewWindows(timeZone: string, at: number): ViewWindows {
  const day = Math.floor((at + offsetAt(timeZone, at)) / DAY_MS) * DAY_MS;
  return {
    today: midnightOf(timeZone, day),
    d7: midnightOf(timeZone, day - 6 * DAY_MS),
    d30: midnightOf(timeZone, day - 29 * DAY_MS),
  };
}
