/**
 * Journeys end to end on the local stack (docs/catalog.md "Journeys"):
 * events in through /v1/batch, the profile function moving each customer's
 * run, emissions out through the Outbox stream, the dispatcher and the
 * local bus (`<dataDir>/outbox.jsonl`), the operator's outbox, profile and
 * journeys report.
 *
 * - the seed journey (churn-winback, its two-day wait shortened to
 *   WAIT_SECONDS in the test's catalog): returns push the customer into
 *   churn risk → the retention email at once, the wait's timer deferred in
 *   the outbox and on the scheduler; an order then ends the run (exited),
 *   in the profile and the report, and the timer that fires later sends
 *   nothing; with no order, the fired timer comes back as a `Journey Timer`
 *   event through the Events table and the run goes on to its push;
 * - an act step in quiet hours (a window of the test's catalog that ends a
 *   minute or two after the stack starts): deferred, on the scheduler, then
 *   emitted at their end.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startLocalStack, type TestStack } from '../support/stack.ts';
import { call, identify, sendEvents, track, uniqueId, type StackAccess } from './fixtures/kairos.ts';
import type { DeliveredEvent } from '#local/outbox.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'kairos-journeys-'));
let stack: TestStack;
let api: StackAccess;
/** The churn win-back's wait in the test catalog (the seed's is two days). */
const WAIT_SECONDS = 20;
/** When the quiet hours of the test catalog end (epoch ms, a minute boundary). */
let quietUntil: number;

const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

beforeAll(async () => {
  // The demo catalog (its churn-winback journey), with sms quiet hours from this minute to the next minute
  // boundary at least 40 s away (UTC), an sms action and a cart journey whose first step sends it.
  const now = Date.now();
  const minute = Math.floor(now / 60_000) * 60_000;
  quietUntil = minute + (now - minute > 20_000 ? 2 : 1) * 60_000;
  const doc = parseYaml(readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8')) as {
    actions: unknown[];
    policies: { quietHours: unknown[] };
    journeys: { id: string; steps: { id: string; wait?: unknown }[] }[];
  };
  const wait = doc.journeys.find((j) => j.id === 'churn-winback')?.steps.find((step) => step.id === 'two-days');
  if (!wait) throw new Error('the demo catalog has no churn-winback two-days wait');
  wait.wait = `${WAIT_SECONDS}s`;
  doc.policies.quietHours = [{ id: 'sms-test-window', channels: ['sms'], from: hhmm(minute), to: hhmm(quietUntil), timezone: 'UTC' }];
  doc.actions.push({ id: 'cart-reminder-sms', name: 'Cart reminder SMS', tags: ['service'], content: { sms: { text: 'Hola {{ firstName }}, tu carrito te espera' } }, fallbacks: { firstName: 'cliente' } });
  (doc.journeys as unknown[]).push({
    id: 'cart-recovery',
    entry: { event: 'Cart Abandoned' },
    exit: { event: 'Order Completed' },
    steps: [
      { id: 'sms', act: { channel: 'sms' } },
      { id: 'later', wait: '1h' },
      { id: 'push', act: { channel: 'push' } },
    ],
  });
  const catalogFile = join(dataDir, 'catalog.yaml');
  writeFileSync(catalogFile, stringifyYaml(doc));
  stack = await startLocalStack({ inMemory: false, dataDir: join(dataDir, 'data'), catalogFile });
  api = { baseUrl: stack.baseUrl, writeKey: stack.writeKey, serverKey: stack.serverKey, userTokenSecret: stack.userTokenSecret, adminToken: stack.adminToken };
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const detailOf = (e: DeliveredEvent) => e.detail as Record<string, unknown>;

/** The first emission the local bus delivered that matches, within `timeoutMs`. */
async function emission(match: (e: DeliveredEvent) => boolean, timeoutMs: number): Promise<DeliveredEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = stack.emissions().find(match);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no matching emission within ${timeoutMs} ms; delivered: ${JSON.stringify(stack.emissions().map((e) => e.id))}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

type Entry = { id: string; status: string; sendAt: string; detailType?: string; detail: Record<string, unknown> };

/** The outbox entries of `userId` (the operator's route, every page), once `until` holds of them or `timeoutMs` has passed. */
async function outboxOf(userId: string, until: (entries: Entry[]) => boolean, timeoutMs = 15_000): Promise<Entry[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen: Entry[] = [];
    let cursor: string | undefined;
    do {
      const page = await call<{ emissions: Entry[]; next?: string }>(api, 'GET', `/v1/admin/outbox?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { auth: 'admin' });
      expect(page.status).toBe(200);
      seen.push(...page.json.emissions);
      cursor = page.json.next;
    } while (cursor);
    const mine = seen.filter((e) => e.detail.userId === userId || e.detail.profileKey === `u#${userId}`);
    if (until(mine) || Date.now() > deadline) return mine;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Resolves once `condition` holds; rejects past `timeoutMs`. */
async function until(condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

type Run = { journey: string; run: number; step?: string; ended?: { how: string } };
async function runsOf(userId: string, until: (runs: Run[]) => boolean, timeoutMs = 15_000): Promise<Run[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await call<{ journeys: Run[] }>(api, 'GET', `/v1/admin/profiles/${encodeURIComponent(userId)}`, { auth: 'admin' });
    const runs = res.status === 200 ? res.json.journeys : [];
    if (until(runs) || Date.now() > deadline) return runs;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('journeys on the local stack', () => {
  it('the churn win-back seed: entering churn risk sends the retention email now and sets its timer; an order ends the run, and the timer then sends nothing', async () => {
    const userId = uniqueId('leaving');
    const report = async () =>
      (await call<{ journeys: { id: string; totals: { entered: number; exited: number; steps: Record<string, number> } }[] }>(api, 'GET', '/v1/admin/reports/journeys?journey=churn-winback', { auth: 'admin' })).json
        .journeys[0]!.totals;
    const before = await report();
    await sendEvents(api, [identify({ userId }, { firstName: 'Marta' }), track({ userId }, 'Consent Updated', { channel: 'email', granted: true })]);
    await runsOf(userId, () => true, 0);
    // Returns raise churnRisk past its threshold: the customer enters churn-risk.
    await sendEvents(api, Array.from({ length: 5 }, (_, i) => track({ userId }, 'Order Refunded', { order_id: `r${i}` })));
    const entries = await outboxOf(userId, (e) => e.length >= 2);
    const email = entries.find((e) => e.detail.kind === 'journey');
    expect(email).toMatchObject({ status: 'now', detail: { journey: 'churn-winback', run: 1, step: 'retention-email', channel: 'email', actionId: 'retention-offer' } });
    const timer = entries.find((e) => e.detail.kind === 'journey-timer');
    expect(timer).toMatchObject({ status: 'deferred', detail: { journey: 'churn-winback', run: 1, step: 'two-days' } });
    expect(Date.parse(timer!.sendAt) - Date.parse(email!.sendAt)).toBeLessThanOrEqual(WAIT_SECONDS * 1_000);
    await until(() => stack.schedules().some((s) => s.event.id === timer!.id), 15_000);
    const delivered = await emission((e) => e.id === email!.id, 15_000);
    expect(delivered).toMatchObject({ source: 'kairos', 'detail-type': 'Kairos Journey Action' });
    expect(String((detailOf(delivered).content as { subject: string }).subject)).toContain('Marta');
    expect(await runsOf(userId, (runs) => runs.some((r) => r.step === 'two-days'))).toEqual([expect.objectContaining({ journey: 'churn-winback', run: 1, step: 'two-days' })]);

    // An order: the run ends, exited; nothing more is sent.
    await sendEvents(api, [track({ userId }, 'Order Completed', { order_id: 'o1', revenue: 40 })]);
    const ended = await runsOf(userId, (runs) => runs.some((r) => r.ended !== undefined));
    expect(ended).toEqual([expect.objectContaining({ journey: 'churn-winback', run: 1, ended: expect.objectContaining({ how: 'exited' }) })]);
    expect(ended[0]?.step).toBeUndefined();
    const after = await report();
    expect(after.entered - before.entered).toBe(1);
    expect(after.exited - before.exited).toBe(1);
    expect((after.steps['retention-email'] ?? 0) - (before.steps['retention-email'] ?? 0)).toBe(1);
    expect((await outboxOf(userId, () => true, 0)).filter((e) => e.detail.kind === 'journey')).toHaveLength(1);

    // The timer fires after the order: its event reaches a run that has ended, which sends nothing.
    await until(() => !stack.schedules().some((s) => s.event.id === timer!.id), Date.parse(timer!.sendAt) - Date.now() + 15_000);
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    expect((await outboxOf(userId, () => true, 0)).filter((e) => e.detail.kind === 'journey')).toHaveLength(1);
    expect(await runsOf(userId, () => true, 0)).toEqual(ended);
    expect(stack.emissions().filter((e) => e['detail-type'] === 'Kairos Journey Timer')).toEqual([]);
  }, 120_000);

  it('the churn win-back seed with no order: the timer comes back through the Events table after the wait, and the push is sent', async () => {
    const userId = uniqueId('silent');
    await sendEvents(api, [
      identify({ userId }, { firstName: 'Luis' }),
      track({ userId }, 'Consent Updated', { channel: 'email', granted: true }),
      track({ userId }, 'Consent Updated', { channel: 'push', granted: true }),
    ]);
    await runsOf(userId, () => true, 0);
    await sendEvents(api, Array.from({ length: 5 }, (_, i) => track({ userId }, 'Order Refunded', { order_id: `r${i}` })));
    const timer = (await outboxOf(userId, (e) => e.some((x) => x.detail.kind === 'journey-timer'))).find((e) => e.detail.kind === 'journey-timer');
    expect(timer).toMatchObject({ status: 'deferred', detail: { journey: 'churn-winback', run: 1, step: 'two-days' } });
    const dueAt = Date.parse(timer!.sendAt);
    const push = await emission((e) => detailOf(e).journey === 'churn-winback' && detailOf(e).userId === userId && detailOf(e).step === 'retention-push', dueAt - Date.now() + 20_000);
    expect(push).toMatchObject({ source: 'kairos', 'detail-type': 'Kairos Journey Action', detail: { run: 1, channel: 'push', actionId: 'retention-offer' } });
    expect(Date.parse(push.time)).toBeGreaterThanOrEqual(dueAt);
    expect(detailOf(push).content).toMatchObject({ title: 'Te echamos de menos', deepLink: 'kairos-demo://offers/retention' });
    const runs = await runsOf(userId, (r) => r.some((x) => x.ended !== undefined));
    expect(runs).toEqual([expect.objectContaining({ journey: 'churn-winback', run: 1, ended: expect.objectContaining({ how: 'completed' }) })]);
    // The timer itself went to the Events table, never on the bus.
    expect(stack.emissions().filter((e) => e.id === timer!.id || e['detail-type'] === 'Kairos Journey Timer')).toEqual([]);
  }, 120_000);

  it('an act step in quiet hours is deferred to their end, then emitted then', async () => {
    const userId = uniqueId('night');
    await sendEvents(api, [identify({ userId }, { firstName: 'Ana' }), track({ userId }, 'Consent Updated', { channel: 'sms', granted: true })]);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(Date.now()).toBeLessThan(quietUntil);
    await sendEvents(api, [track({ userId }, 'Cart Abandoned', { total: 42 })]);
    const entries = await outboxOf(userId, (e) => e.some((x) => x.detail.step === 'sms'));
    const sms = entries.find((e) => e.detail.step === 'sms');
    expect(sms).toMatchObject({ status: 'deferred', sendAt: new Date(quietUntil).toISOString(), detail: { journey: 'cart-recovery', actionId: 'cart-reminder-sms', channel: 'sms' } });
    expect((sms?.detail.content as { text: string }).text).toBe('Hola Ana, tu carrito te espera');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stack.schedules().map((s) => s.event.id)).toContain(sms?.id);
    expect(stack.emissions().filter((e) => e.id === sms?.id)).toEqual([]);
    const emitted = await emission((e) => e.id === sms?.id, quietUntil - Date.now() + 10_000);
    expect(Date.parse(emitted.time)).toBeGreaterThanOrEqual(quietUntil);
    expect(emitted['detail-type']).toBe('Kairos Journey Action');
  }, 200_000);
});
