/**
 * When quiet hours end (shared/domain/decide/policies.ts `quietHoursEnd`,
 * the due time of a send deferred by them): the first minute at which no
 * quiet-hours policy of the channel holds, in the customer's zone — across
 * midnight, in zones 30 or 45 minutes off the hour, and on the nights the
 * clocks change (a night an hour shorter or longer, or an end that falls in
 * the skipped hour).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { emptyCatalog } from '#domain/decide/empty-catalog.ts';
import { quietHoursEnd, quietHoursFor } from '#domain/decide/policies.ts';

const MINUTE = 60_000;
const ZONES = ['UTC', 'Europe/Madrid', 'America/New_York', 'America/Santiago', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Asia/Kolkata', 'Pacific/Chatham', 'America/St_Johns'];

const catalogWith = (windows: readonly { from: number; to: number; timezone?: string }[]): CompiledCatalog => {
  const base = emptyCatalog();
  return {
    ...base,
    policies: {
      ...base.policies,
      quietHours: windows.map((w, i) => ({ id: `q${i}`, channels: new Set(['email'] as const), fromMinute: w.from, toMinute: w.to, ...(w.timezone ? { timezone: w.timezone } : {}) })),
    },
  };
};

const hhmm = (at: number, zone: string) =>
  new Intl.DateTimeFormat('en-GB', { timeZone: zone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(new Date(at));

describe('quietHoursEnd', () => {
  it('22:00–08:00 in Madrid on the nights the clocks change: 08:00 local, not an hour early or late', () => {
    const catalog = catalogWith([{ from: 22 * 60, to: 8 * 60 }]);
    // Spring forward (29 March 2026, 02:00 → 03:00): the night is 9 hours long.
    const spring = quietHoursEnd(catalog, 'email', new Date('2026-03-28T21:00:00Z'), 'Europe/Madrid');
    expect(spring?.toISOString()).toBe('2026-03-29T06:00:00.000Z');
    // Fall back (25 October 2026, 03:00 → 02:00): 11 hours long.
    const fall = quietHoursEnd(catalog, 'email', new Date('2026-10-24T20:00:00Z'), 'Europe/Madrid');
    expect(fall?.toISOString()).toBe('2026-10-25T07:00:00.000Z');
  });

  it('an end in the hour the clocks skip (01:00–02:30 in Madrid, 29 March): the first minute after the jump, 03:00', () => {
    const catalog = catalogWith([{ from: 60, to: 150 }]);
    const end = quietHoursEnd(catalog, 'email', new Date('2026-03-29T00:10:00Z'), 'Europe/Madrid');
    expect(end?.toISOString()).toBe('2026-03-29T01:00:00.000Z');
    expect(hhmm(end!.getTime(), 'Europe/Madrid')).toBe('03:00');
  });

  it('property: quiet at every minute from now until the end, and not at the end', () => {
    const minuteOfDay = fc.integer({ min: 0, max: 1439 });
    const window = fc.record({ from: minuteOfDay, to: minuteOfDay }).filter((w) => w.from !== w.to);
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.array(window, { minLength: 1, maxLength: 2 }),
        // 2026, DST changes of both hemispheres included; whole minutes and odd seconds.
        fc.integer({ min: Date.parse('2026-01-01T00:00:00Z'), max: Date.parse('2026-12-31T00:00:00Z') }),
        (zone, windows, nowMs) => {
          const catalog = catalogWith(windows);
          const now = new Date(nowMs);
          const end = quietHoursEnd(catalog, 'email', now, zone);
          if (quietHoursFor(catalog, 'email', now, zone) === undefined) return end === undefined;
          if (end === undefined) return true; // the windows cover the whole day
          expect(end.getTime()).toBeGreaterThan(nowMs);
          expect(end.getTime() % MINUTE).toBe(0);
          expect(quietHoursFor(catalog, 'email', end, zone), `${zone} ${JSON.stringify(windows)} ${now.toISOString()} → ${end.toISOString()}`).toBeUndefined();
          for (let t = Math.floor(nowMs / MINUTE) * MINUTE + MINUTE; t < end.getTime(); t += MINUTE) {
            if (quietHoursFor(catalog, 'email', new Date(t), zone) === undefined) {
              throw new Error(`${zone} ${JSON.stringify(windows)} from ${now.toISOString()}: not quiet at ${new Date(t).toISOString()}, yet the end is ${end.toISOString()}`);
            }
          }
          return true;
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: on the nights the clocks change, the end is the first minute not quiet', () => {
    const changes = ['2026-03-29T01:00:00Z', '2026-10-25T01:00:00Z', '2026-03-08T07:00:00Z', '2026-11-01T06:00:00Z', '2026-04-05T03:00:00Z', '2026-09-06T04:00:00Z'].map(Date.parse);
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.record({ from: fc.integer({ min: 0, max: 1439 }), to: fc.integer({ min: 0, max: 1439 }) }).filter((w) => w.from !== w.to),
        fc.constantFrom(...changes),
        fc.integer({ min: -20 * 60, max: 4 * 60 }),
        (zone, w, change, minutes) => {
          const catalog = catalogWith([w]);
          const now = new Date(change + minutes * MINUTE);
          const end = quietHoursEnd(catalog, 'email', now, zone);
          if (end === undefined) return quietHoursFor(catalog, 'email', now, zone) === undefined;
          expect(quietHoursFor(catalog, 'email', end, zone)).toBeUndefined();
          for (let t = Math.floor(now.getTime() / MINUTE) * MINUTE + MINUTE; t < end.getTime(); t += MINUTE) {
            if (quietHoursFor(catalog, 'email', new Date(t), zone) === undefined) {
              throw new Error(`${zone} ${JSON.stringify(w)} from ${now.toISOString()}: not quiet at ${new Date(t).toISOString()}, yet the end is ${end.toISOString()}`);
            }
          }
          return true;
        },
      ),
      { numRuns: 400 },
    );
  });
});
