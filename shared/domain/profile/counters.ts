/**
 * The commutative building blocks of the profile state. Each one gives the
 * same result whatever order its inputs arrive in (up to float rounding), so
 * out-of-order and merged histories give the same profile as in-order
 * delivery (API.md §2). Plain data, no classes: the state is stored as JSON.
 */
import { HOUR_MS, QUARTER_MS } from './time.ts';

/**
 * A last-writer-wins register: the value with the latest event time wins;
 * on a tie, the larger canonical JSON wins, so the winner never depends on
 * arrival order.
 */
export type Lww<T> = [value: T, at: number];

export function lwwWins<T>(candidate: Lww<T>, current: Lww<T> | undefined): boolean {
  if (!current) return true;
  if (candidate[1] !== current[1]) return candidate[1] > current[1];
  return canonical(candidate[0]) > canonical(current[0]);
}

export function lwwMerge<T>(a: Lww<T> | undefined, b: Lww<T> | undefined): Lww<T> | undefined {
  if (!a) return b;
  if (!b) return a;
  return lwwWins(b, a) ? b : a;
}

/** JSON with object keys sorted: equal values give equal strings. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      const sorted: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k];
      return sorted;
    }
    return v;
  }) ?? 'undefined';
}

/**
 * Counts in a sliding window of `length` units (hours or days) ending at the
 * newest unit seen (the anchor). Counts are newest first and trailing zeros
 * are trimmed, so equal histories have equal encodings. A unit older than
 * the window is dropped; it would have left the window anyway, which keeps
 * the result independent of arrival order.
 */
export interface WindowCounter {
  /** The newest unit seen (hour or day number since the epoch). */
  a: number;
  /** c[i] = count in unit a - i. */
  c: number[];
}

export function windowAdd(counter: WindowCounter | undefined, unit: number, length: number, amount = 1): WindowCounter {
  if (!counter) return { a: unit, c: [amount] };
  if (unit > counter.a) {
    const shift = unit - counter.a;
    const c = shift >= length ? [amount] : [amount, ...new Array<number>(shift - 1).fill(0), ...counter.c].slice(0, length);
    return { a: unit, c: trimZeros(c) };
  }
  const index = counter.a - unit;
  if (index >= length) return counter;
  const c = counter.c.slice();
  while (c.length <= index) c.push(0);
  c[index] = (c[index] ?? 0) + amount;
  return { a: counter.a, c: trimZeros(c) };
}

export function windowMerge(
  x: WindowCounter | undefined,
  y: WindowCounter | undefined,
  length: number,
): WindowCounter | undefined {
  if (!x) return y;
  if (!y) return x;
  const a = Math.max(x.a, y.a);
  const c = new Array<number>(length).fill(0);
  for (const w of [x, y]) {
    w.c.forEach((count, i) => {
      const index = a - (w.a - i);
      if (index < length) c[index] = (c[index] ?? 0) + count;
    });
  }
  return { a, c: trimZeros(c) };
}

/** Sum of the counts for units in [from, to]. */
export function windowSum(counter: WindowCounter | undefined, from: number, to: number): number {
  if (!counter) return 0;
  let sum = 0;
  counter.c.forEach((count, i) => {
    const unit = counter.a - i;
    if (unit >= from && unit <= to) sum += count;
  });
  return sum;
}

/** The oldest unit a counter still holds exactly. */
export const windowStart = (counter: WindowCounter, length: number): number => counter.a - length + 1;

function trimZeros(c: number[]): number[] {
  let end = c.length;
  while (end > 0 && c[end - 1] === 0) end--;
  return end === c.length ? c : c.slice(0, end);
}

/** The newest `limit` times of a multiset of times, newest first: top-k is order independent. */
export function newestTimes(times: readonly number[], limit: number): number[] {
  return times
    .slice()
    .sort((a, b) => b - a)
    .slice(0, limit);
}

export function insertNewest(times: readonly number[], at: number, limit: number): number[] {
  if (times.length >= limit && at <= (times[times.length - 1] ?? -Infinity)) return times as number[];
  const out = times.slice();
  let i = 0;
  while (i < out.length && (out[i] ?? 0) >= at) i++;
  out.splice(i, 0, at);
  if (out.length > limit) out.length = limit;
  return out;
}

/**
 * log2(2^x + 2^y) without overflow. Decayed sums are stored as
 * log2(Σ w·2^(t/h)): adding an observation is this operation, which is
 * commutative, so the decayed interest does not depend on arrival order.
 */
export function log2Add(x: number | undefined, y: number | undefined): number | undefined {
  if (x === undefined) return y;
  if (y === undefined) return x;
  const hi = Math.max(x, y);
  const lo = Math.min(x, y);
  return hi + Math.log2(1 + 2 ** (lo - hi));
}

export const minDefined = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.min(a, b);
export const maxDefined = (a: number | undefined, b: number | undefined): number | undefined =>
  a === undefined ? b : b === undefined ? a : Math.max(a, b);

/** Own property lookup: a key such as `toString` must never read the prototype. */
export function own<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}

/** Keys the state refuses: they would touch the prototype when assigned. */
export const isSafeKey = (key: string): boolean => key !== '__proto__' && key.length > 0;

/**
 * Visits from `sinceMs` to now, exact in any time zone: whole hours from the
 * hourly window, and the part of an hour before the first whole one (local
 * midnight at :15, :30 or :45 UTC) from the quarter-hour window when it
 * reaches back that far (otherwise that part is not counted, as before the
 * quarter-hour window existed).
 */
export function visitsSince(
  visits: { readonly h?: WindowCounter; readonly q?: WindowCounter },
  sinceMs: number,
  nowHour: number,
  quarterLength: number,
): number {
  const firstHour = Math.ceil(sinceMs / HOUR_MS);
  let count = windowSum(visits.h, firstHour, nowHour);
  const fromQuarter = Math.ceil(sinceMs / QUARTER_MS);
  const toQuarter = firstHour * 4 - 1;
  if (visits.q && fromQuarter <= toQuarter && windowStart(visits.q, quarterLength) <= fromQuarter) {
    count += windowSum(visits.q, fromQuarter, toQuarter);
  }
  return count;
}
