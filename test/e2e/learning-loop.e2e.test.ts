/**
 * Seed scenario 11 end to end on the local stack, the whole loop: decide
 * serves the hero banner, the page reports what it showed and what was
 * clicked as Segment events (`Promotion Viewed` / `Promotion Clicked` with
 * the decision id, action and variant) through /v1/batch, some of them
 * twice; the profile function counts each outcome once into the outcome
 * statistics (read back through the actions report); and within seconds
 * decide serves the variant that is clicked more to most visitors while the
 * other keeps at least its floor share. A decision's id reported by 50
 * other visitors counts nothing for it: only its own visitor's outcomes do.
 */
import { describe, expect, it } from 'vitest';
import { useLocalStack } from '../support/stack.ts';
import { call, decide, sendEvents, track, uniqueId, waitForProfile, type Message, type StackAccess } from './fixtures/kairos.ts';

let api: StackAccess;
useLocalStack((_started, access) => {
  api = access;
});

/** The demo catalog's floor (catalog/demo.yaml `learning.floor`). */
const FLOOR = 0.02;
const ACTION = 'spring-sale-banner';

interface Served {
  readonly anonymousId: string;
  readonly decisionId: string;
  readonly variant: string;
  readonly probability: number;
}

/** A first-time visitor's decision on the hero banner (a degraded answer, the store slow on a loaded machine, is asked again). */
async function heroDecision(): Promise<Served> {
  for (let attempt = 0; ; attempt++) {
    const anonymousId = uniqueId('loop');
    const d = await decide(api, { anonymousId, channel: 'web', placement: 'home_hero' });
    if (d.degraded && attempt < 5) continue;
    const top = d.actions[0];
    expect(top?.actionId).toBe(ACTION);
    return { anonymousId, decisionId: d.decisionId, variant: top?.variant ?? '', probability: top?.probability ?? Number.NaN };
  }
}

async function heroDecisions(n: number): Promise<Served[]> {
  const served: Served[] = [];
  for (let i = 0; i < n; i += 5) served.push(...(await Promise.all(Array.from({ length: Math.min(5, n - i) }, heroDecision))));
  return served;
}

const share = (served: readonly Served[], variant: string) => served.filter((s) => s.variant === variant).length / served.length;

interface ReportRow {
  readonly actionId?: string;
  readonly variant?: string;
  readonly placement?: string;
  readonly impressions: number;
  readonly clicks: number;
}

/** The hero banner's impressions and clicks per variant, from the actions report. */
async function reported(): Promise<Record<string, { impressions: number; clicks: number }>> {
  const report = await call<{ rows: ReportRow[] }>(api, 'GET', '/v1/admin/reports/actions?channel=web&placement=home_hero', { auth: 'admin' });
  expect(report.status).toBe(200);
  const byVariant: Record<string, { impressions: number; clicks: number }> = {};
  for (const row of report.json.rows) {
    if (row.actionId !== ACTION || row.variant === undefined) continue;
    const sum = (byVariant[row.variant] ??= { impressions: 0, clicks: 0 });
    sum.impressions += row.impressions;
    sum.clicks += row.clicks;
  }
  return byVariant;
}

describe('11. test and learn, end to end: outcomes sent as events → statistics exactly once → decide', () => {
  it('counts each reported view and click once, and then serves the variant clicked more, the other keeping its floor share', async () => {
    // Round 1: the prior decides (mostly variant a, the first). Every visitor's view is reported, twice for
    // every third one (a resend with another messageId); b is clicked by every second visitor who saw it, a by none.
    const first = await heroDecisions(120);
    const expected: Record<string, { impressions: number; clicks: number }> = {};
    const messages: Message[] = [];
    first.forEach((s, i) => {
      const properties = { decision_id: s.decisionId, action_id: ACTION, variant: s.variant };
      const count = (expected[s.variant] ??= { impressions: 0, clicks: 0 });
      messages.push(track({ anonymousId: s.anonymousId }, 'Promotion Viewed', properties));
      if (i % 3 === 0) messages.push(track({ anonymousId: s.anonymousId }, 'Promotion Viewed', properties));
      count.impressions++;
      if (s.variant === 'b' && count.impressions % 2 === 1) {
        messages.push(track({ anonymousId: s.anonymousId }, 'Promotion Clicked', properties));
        count.clicks++;
      }
    });
    // Enough b to learn from: the exploration share serves it to a few of 120 (none: p ≈ 0.0002).
    expect(expected.b?.impressions ?? 0).toBeGreaterThan(0);
    for (let i = 0; i < messages.length; i += 100) expect((await sendEvents(api, messages.slice(i, i + 100))).accepted).toBe(Math.min(100, messages.length - i));

    // Exactly once: the report (the statistics) holds each view and click once, duplicates or not.
    await expect.poll(reported, { timeout: 60_000, interval: 500 }).toEqual(expected);

    // Within seconds decide serves b to most visitors (the statistics cache refreshes at most every 5 s).
    const counted = Date.now();
    await expect
      .poll(async () => share(await heroDecisions(20), 'b'), { timeout: 20_000, interval: 500 })
      .toBeGreaterThan(0.7);
    expect(Date.now() - counted).toBeLessThan(20_000);

    const after = await heroDecisions(300);
    const a = after.filter((s) => s.variant === 'a');
    const b = after.filter((s) => s.variant === 'b');
    expect(share(after, 'b')).toBeGreaterThan(0.8);
    // a keeps at least its floor share: the probability every answer reports for it, and some visitors still get it.
    expect(a.length).toBeGreaterThan(0);
    for (const s of a) expect(s.probability).toBeGreaterThanOrEqual(FLOOR);
    for (const s of b) expect(s.probability).toBeLessThanOrEqual(1 - FLOOR);
  });

  it('one decision reported by 50 other visitors: the actions report counts its own visitor\'s view and click, once each, and none of theirs', async () => {
    const before = await reported();
    const harvested = await heroDecision();
    const properties = { decision_id: harvested.decisionId, action_id: ACTION, variant: harvested.variant };
    const sybils = Array.from({ length: 50 }, (_, i) => `${harvested.anonymousId}-sybil-${i}`);
    const batch = [
      track({ anonymousId: harvested.anonymousId }, 'Promotion Viewed', properties),
      ...sybils.map((anonymousId) => track({ anonymousId }, 'Promotion Clicked', properties)),
      track({ anonymousId: harvested.anonymousId }, 'Promotion Clicked', properties),
    ];
    expect((await sendEvents(api, batch)).accepted).toBe(52);
    // Every report applied (each in its own visitor's history), before the report is read.
    for (const anonymousId of [harvested.anonymousId, ...sybils]) await waitForProfile(api, { anonymousId }, (p) => (p.stats.eventCounts['Promotion Clicked']?.total ?? 0) === 1);
    const was = before[harvested.variant] ?? { impressions: 0, clicks: 0 };
    await expect
      .poll(async () => (await reported())[harvested.variant], { timeout: 30_000, interval: 500 })
      .toEqual({ impressions: was.impressions + 1, clicks: was.clicks + 1 });
  });
});

