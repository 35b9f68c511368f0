/**
 * Calendar arithmetic in a customer's IANA time zone, with the platform's
 * Intl data (no dependency). "Today" starts at local midnight, which moves
 * with daylight saving time.
 */

const HOUR_MS = 3_600_000;
const QUARTER_MS = 900_000;
const DAY_MS = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
const MAX_FORMATTERS = 200;

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    if (formatters.size >= MAX_FORMATTERS) formatters.clear();
    formatters.set(timeZone, f);
  }
  return f;
}

/** What a refusal of a time zone says (isValidTimeZone). */
export const TIME_ZONE_MESSAGE = 'must be an IANA time zone, e.g. "Europe/Madrid"';

/** True for a time zone name the platform knows (IANA, e.g. `Europe/Madrid`), at most 64 characters. */
export function isValidTimeZone(value: unknown): value is string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) return false;
  // UTC, every zone-less customer's, without loading Intl's zone data (offsetMs).
  if (value === 'UTC') return true;
  try {
    formatter(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * The zone's offset from UTC at an instant, in ms (Madrid in summer:
 * +7,200,000): the Intl definition, which `offsetMs` accelerates for UTC.
 */
export function zoneOffsetMs(timeZone: string, at: number): number {
  const parts = formatter(timeZone).formatToParts(new Date(at));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return asUtc - Math.floor(at / 1000) * 1000;
}

/**
 * The zone's offset from UTC at an instant, in ms (Madrid in summer:
 * +7,200,000); throws a RangeError for a zone the platform does not know.
 * `UTC`, the zone of every customer without one, is 0 without asking Intl:
 * a process's first Intl formatting loads ICU's time-zone data (about 30 ms
 * of CPU, paid by decide's first request), which UTC never needs.
 * test/unit/profile-view-clock.test.ts holds it equal to `zoneOffsetMs`.
 */
export function offsetMs(timeZone: string, at: number): number {
  return timeZone === 'UTC' ? 0 : zoneOffsetMs(timeZone, at);
}

/**
 * Minutes after local midnight at an instant (ms since the epoch) in an IANA
 * zone, 0..1439 (Madrid at 08:30 UTC in summer: 630). A zone the platform
 * does not know is read as UTC, as quiet hours read it.
 */
export function localMinuteOfDay(timeZone: string, at: number): number {
  let offset = 0;
  try {
    offset = offsetMs(timeZone || 'UTC', at);
  } catch {
    offset = 0;
  }
  const local = at + offset;
  return Math.floor((((local % DAY_MS) + DAY_MS) % DAY_MS) / 60_000);
}

/** The local calendar date of an instant, as a UTC midnight timestamp (a day label). */
function localDay(timeZone: string, at: number): number {
  const local = at + offsetMs(timeZone, at);
  return Math.floor(local / DAY_MS) * DAY_MS;
}

/** The instant of local midnight starting the local day `daysBack` days before the day of `at`. */
export function localMidnight(timeZone: string, at: number, daysBack = 0): number {
  const day = localDay(timeZone, at) - daysBack * DAY_MS;
  // Local midnight = day - offset(at midnight); the offset can differ from the
  // offset at `day`, so refine once more (a DST change near midnight).
  let guess = day - offsetMs(timeZone, day);
  guess = day - offsetMs(timeZone, guess);
  return guess;
}

export const hourOf = (at: number): number => Math.floor(at / HOUR_MS);
/** Quarter-hours: every time zone's offset is a whole number of them. */
export const quarterOf = (at: number): number => Math.floor(at / QUARTER_MS);
export const dayOf = (at: number): number => Math.floor(at / DAY_MS);
export const hourStart = (hour: number): number => hour * HOUR_MS;
export const dayStart = (day: number): number => day * DAY_MS;
export { HOUR_MS, QUARTER_MS, DAY_MS };
