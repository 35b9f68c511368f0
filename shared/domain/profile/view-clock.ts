/**
 * The local-midnight instants a profile view counts its windows from
 * ("today", 7 and 30 days): time.ts `localMidnight(zone, at, k)` for
 * k = 0, 6 and 29, the same arithmetic and the same instants, without its
 * cost on every read. A midnight is a pure function of (zone, local day),
 * kept once computed; the zone's offset is a pure function of (zone,
 * second), kept for the last second asked (reads within one second, the
 * common case under load, share it). At most one Intl formatting per read
 * instead of nine.
 */
import { DAY_MS, offsetMs } from './time.ts';

/** `${zone}\u0000${day}` → the instant that local day starts; `${zone}` → [second, offset]. */
const known = new Map<string, number | [number, number]>();

function midnightOf(zone: string, day: number): number {
  const key = `${zone}\u0000${day}`;
  let guess = known.get(key) as number | undefined;
  if (guess === undefined) {
    guess = day - offsetMs(zone, day);
    guess = day - offsetMs(zone, guess);
    if (known.size > 999) known.clear();
    known.set(key, guess);
  }
  return guess;
}

export function viewWindows(zone: string, at: number): { today: number; d7: number; d30: number } {
  const second = Math.floor(at / 1000);
  let last = known.get(zone) as [number, number] | undefined;
  if (last?.[0] !== second) known.set(zone, (last = [second, offsetMs(zone, at)]));
  const day = Math.floor((at + last[1]) / DAY_MS) * DAY_MS;
  return { today: midnightOf(zone, day), d7: midnightOf(zone, day - 6 * DAY_MS), d30: midnightOf(zone, day - 29 * DAY_MS) };
}
