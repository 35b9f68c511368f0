/**
 * ISO-8601 date-times as Segment clients send them, and Segment's clock-skew
 * correction. Parsed by hand so the accepted syntax does not depend on the
 * engine's lenient Date.parse.
 */

// 2024-05-01T10:20:30.123Z, 2024-05-01T10:20:30+02:00, 2024-05-01 10:20:30.123456+0200,
// 2024-05-01T10:20Z. No zone means UTC.
const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(?:([Zz])|([+-])(\d{2})(?::?(\d{2}))?)?$/;

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysIn(year: number, month: number): number {
  if (month === 2 && ((year % 4 === 0 && year % 100 !== 0) || year % 400 === 0)) return 29;
  return DAYS_IN_MONTH[month - 1] ?? 0;
}

/** Epoch milliseconds of an ISO-8601 date-time, or undefined when it is not one. */
export function parseIsoDateTime(text: string): number | undefined {
  if (text.length > 40) return undefined;
  const m = ISO_DATE_TIME.exec(text);
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  // A leap second (:60) is read as the last millisecond of that minute.
  const rawSecond = m[6] === undefined ? 0 : Number(m[6]);
  const leap = rawSecond === 60;
  const second = leap ? 59 : rawSecond;
  const millis = leap ? 999 : m[7] === undefined ? 0 : Number(m[7].slice(0, 3).padEnd(3, '0'));
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  if (hour > 23 || minute > 59 || rawSecond > 60) return undefined;
  let offsetMinutes = 0;
  if (m[9] !== undefined) {
    const offHours = Number(m[10]);
    const offMinutes = m[11] === undefined ? 0 : Number(m[11]);
    if (offHours > 23 || offMinutes > 59) return undefined;
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (offHours * 60 + offMinutes);
  }
  const utc = new Date(0);
  utc.setUTCFullYear(year, month - 1, day);
  utc.setUTCHours(hour, minute, second, millis);
  return utc.getTime() - offsetMinutes * 60_000;
}

export function isIsoDateTime(text: string): boolean {
  return parseIsoDateTime(text) !== undefined;
}

/** Latest instant whose toISOString() still has a four-digit year. */
export const MAX_TIMESTAMP_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999);

/**
 * Segment's skew correction: the client's clock may be wrong, but the gap
 * between the event and the moment the client sent it is right, so the event
 * happened `sentAt - timestamp` before the server received it.
 * Without a timestamp the event happened on receipt.
 */
export function correctTimestamp(
  timestampMs: number | undefined,
  sentAtMs: number | undefined,
  receivedAtMs: number,
): number {
  if (timestampMs === undefined) return receivedAtMs;
  if (sentAtMs === undefined) return timestampMs;
  return timestampMs - sentAtMs + receivedAtMs;
}
