import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { localMidnight, offsetMs, zoneOffsetMs } from '#domain/profile/time.ts';
import { viewWindows } from '#domain/profile/view-clock.ts';

const ZONES = ['UTC', 'Europe/Madrid', 'America/Santiago', 'America/Havana', 'Australia/Lord_Howe', 'Asia/Kathmandu', 'Pacific/Apia', 'America/St_Johns'];
const reference = (zone: string, at: number) => ({
  today: localMidnight(zone, at),
  d7: localMidnight(zone, at, 6),
  d30: localMidnight(zone, at, 29),
});

describe('view windows', () => {
  it('are the local midnights of time.ts, also for instants of one second and near DST changes', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        // 1900..2100, and bursts of instants within one second.
        fc.integer({ min: -2_208_988_800_000, max: 4_102_444_800_000 }),
        fc.array(fc.integer({ min: -1_500, max: 1_500 }), { minLength: 1, maxLength: 4 }),
        (zone, base, deltas) => {
          for (const delta of deltas) expect(viewWindows(zone, base + delta)).toEqual(reference(zone, base + delta));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('are exact around the transitions of a zone whose clocks change at midnight', () => {
    // Santiago: DST changes at local midnight; sweep a few days around them in 20-minute steps.
    for (const iso of ['2024-04-07T02:00:00Z', '2024-09-08T03:00:00Z', '2023-11-05T05:00:00Z']) {
      const start = Date.parse(iso) - 2 * 86_400_000;
      for (let at = start; at < start + 4 * 86_400_000; at += 1_200_000) {
        for (const zone of ['America/Santiago', 'America/Havana', 'Europe/Madrid']) expect(viewWindows(zone, at)).toEqual(reference(zone, at));
      }
    }
  });
});

describe('the zone offset', () => {
  it('is the Intl definition, UTC (answered without Intl) included, for instants of the years 200 to 9999', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.integer({ min: -55_000_000_000_000, max: 253_402_300_799_999 }), (zone, at) => {
        expect(offsetMs(zone, at)).toBe(zoneOffsetMs(zone, at));
      }),
      { numRuns: 2_000 },
    );
    expect(zoneOffsetMs('UTC', Date.parse('2024-03-31T01:30:00.250Z'))).toBe(0);
  });

  it('refuses a zone the platform does not know', () => {
    expect(() => offsetMs('Mars/Olympus_Mons', 0)).toThrow(RangeError);
  });
});
