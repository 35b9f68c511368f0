/**
 * The seed triggers and journeys end to end on the local stack, with the
 * demo catalog as `npm start` loads it (catalog/demo.yaml, unchanged):
 * events in through /v1/batch, the profile function reacting and moving
 * each customer's run, emissions out through the Outbox stream, the
 * dispatcher, the scheduler emulation and the local bus
 * (`<dataDir>/outbox.jsonl`), read back from it and from the operator's
 * outbox, profile and journeys report.
 *
 * Time is driven (test/support/clock.ts): the stack runs in this process,
 * so ingest, the profile function, the dispatcher and the scheduler
 * emulation read the clock the test moves. The day D starts at 12:30 UTC
 * (13:30 in Madrid, 21:30 in Tokyo).
 *
 * - the VIP who opens a complaint (trigger vip-complaint-call): the
 *   call-centre task at once, and no VIP promotion on decide;
 * - the churn win-back (journey churn-winback), two customers entering
 *   churn risk at D 12:30: Aiko lives in Tokyo, where it is night: the
 *   retention email is not decided yet, its timer waits on the scheduler for
 *   the end of the demo's quiet hours (09:00 in Tokyo, D+1 00:00 UTC), and
 *   when the clock gets there the email is decided and delivered; two days
 *   after her entry the wait's timer comes back through the Events table,
 *   she has not ordered, and the push (night in Tokyo again) waits the same
 *   way and is decided and delivered at the next 09:00. Luis (no
 *   zone of his own: Madrid's, daytime) gets the email at once, orders,
 *   and his run ends, exited: his timer, when it fires, sends nothing.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeliveredEvent } from '#local/outbox.ts';
import { advanceClock, middayToday, setClock } from '../support/clock.ts';
import { detailOf, emission, journeyTotals, outbox, outboxOf, runsOf, until, type OutboxEntry } from '../support/emissions.ts';
import { startLocalStack, type TestStack } from '../support/stack.ts';
import { decide, identify, sendEvents, track, uniqueId, waitForProfile, type StackAccess } from './fixtures/kairos.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** D 12:30 UTC: when the day's events are sent. */
const D = middayToday() + HOUR / 2;

const dataDir = mkdtempSync(join(tmpdir(), 'kairos-journeys-'));
let stack: TestStack;
let api: StackAccess;

beforeAll(async () => {
  setClock(D);
  stack = await startLocalStack({ inMemory: false, dataDir: join(dataDir, 'data') });
  api = { baseUrl: stack.baseUrl, writeKey: stack.writeKey, serverKey: stack.serverKey, userTokenSecret: stack.userTokenSecret, adminToken: stack.adminToken };
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** What the bus wrote to outbox.jsonl. */
const outboxFile = (): DeliveredEvent[] =>
  readFileSync(join(dataDir, 'data', 'outbox.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as DeliveredEvent);

const journeyActions = (entries: readonly OutboxEntry[]) => entries.filter((e) => e.detail.kind === 'journey');
/** The timers of the journey's sends that quiet hours hold (decided when due). */
const sendTimers = (entries: readonly OutboxEntry[]) => entries.filter((e) => e.detail.kind === 'send-timer');
const timerOf = (entries: readonly OutboxEntry[]) => entries.find((e) => e.detail.kind === 'journey-timer');

describe('the seed triggers and journeys on the demo catalog', () => {
  it('a VIP who opens a complaint: the call-centre task now, in outbox.jsonl and the outbox; no VIP promotion on decide', async () => {
    const userId = uniqueId('vip');
    await sendEvents(api, [identify({ userId }, { tier: 'VIP', firstName: 'Luis' }), track({ userId }, 'Consent Updated', { channel: 'email', granted: true })]);
    await waitForProfile(api, userId, (p) => p.traits.tier === 'VIP' && p.consent.email?.granted === true);
    await sendEvents(api, [track({ userId }, 'Complaint Opened', { reason: 'late delivery' })]);
    const emitted = await emission(stack, (e) => detailOf(e).userId === userId && detailOf(e).trigger === 'vip-complaint-call', 15_000);
    expect(emitted).toMatchObject({
      source: 'kairos',
      'detail-type': 'Kairos Trigger Action',
      detail: { kind: 'trigger', channel: 'call_center', actionId: 'service-recovery-call', customerKey: userId, cause: { kind: 'event', event: 'Complaint Opened' } },
    });
    expect(String((detailOf(emitted).content as { script: string }).script)).toContain('Luis');
    expect(emitted.id).toBe(detailOf(emitted).emissionId);
    expect(Date.parse(emitted.time) - D).toBeLessThan(60_000);
    expect(outboxFile().filter((l) => l.id === emitted.id)).toHaveLength(1);
    expect((await outbox(api)).find((e) => e.id === emitted.id)).toMatchObject({ status: 'now', detail: { actionId: 'service-recovery-call' } });
    // Decide tells the same story: no promotion, on any channel; the apology instead on email.
    for (const channel of ['email', 'web', 'call_center'] as const) {
      const decision = await decide(api, { userId, channel, ...(channel === 'web' ? { placement: 'home' } : {}), limit: 10 });
      expect(decision.actions.map((a) => a.actionId)).not.toContain('vip-winback-email-123');
      expect(decision.actions.map((a) => a.actionId)).not.toContain('vip-lounge-banner');
    }
    expect((await decide(api, { userId, channel: 'email' })).actions[0]?.actionId).toBe('apology-email');
    // Exactly once: the complaint fired one emission, however the stream delivered it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stack.emissions().filter((e) => detailOf(e).userId === userId && detailOf(e).trigger === 'vip-complaint-call')).toHaveLength(1);
  }, 60_000);

  it('churn win-back: the email decided at the end of the night in the customer’s zone, the push two days later with no order; an order ends the other run', async () => {
    const aiko = uniqueId('aiko');
    const luis = uniqueId('luis');
    const before = await journeyTotals(api, 'churn-winback');
    const consents = (userId: string) => ['email', 'push'].map((channel) => track({ userId }, 'Consent Updated', { channel, granted: true }));
    await sendEvents(api, [
      identify({ userId: aiko }, { firstName: 'Aiko', timezone: 'Asia/Tokyo' }),
      ...consents(aiko),
      identify({ userId: luis }, { firstName: 'Luis' }),
      ...consents(luis),
    ]);
    for (const userId of [aiko, luis]) await waitForProfile(api, userId, (p) => p.consent.email?.granted === true && p.consent.push?.granted === true);

    // Returns raise churnRisk past its threshold: both enter churn-risk, and the journey, now.
    await sendEvents(api, [aiko, luis].flatMap((userId) => Array.from({ length: 5 }, (_, i) => track({ userId }, 'Order Refunded', { order_id: `r${i}` }))));
    const hasEmailAndTimer = (entries: OutboxEntry[]) => journeyActions(entries).length + sendTimers(entries).length === 1 && timerOf(entries) !== undefined;
    const aikoEntries = await outboxOf(api, aiko, hasEmailAndTimer);
    const luisEntries = await outboxOf(api, luis, hasEmailAndTimer);

    // Aiko: 21:30 in Tokyo, night. The email is not decided now: its timer waits on the scheduler for 09:00 there (D+1 00:00 UTC).
    expect(journeyActions(aikoEntries)).toEqual([]);
    const aikoEmailTimer = sendTimers(aikoEntries)[0]!;
    const morningInTokyo = middayToday() + 12 * HOUR;
    expect(aikoEmailTimer).toMatchObject({
      status: 'deferred',
      sendAt: new Date(morningInTokyo).toISOString(),
      detailType: 'Kairos Send Timer',
      detail: { channel: 'email', origin: { kind: 'journey', journey: 'churn-winback', run: 1, step: 'retention-email' } },
    });
    expect(aikoEmailTimer.detail).not.toHaveProperty('content');
    await until(() => stack.schedules().some((s) => s.event.id === aikoEmailTimer.id), 15_000, 'the email timer on the scheduler');
    const aikoTimer = timerOf(aikoEntries)!;
    expect(aikoTimer).toMatchObject({ status: 'deferred', detail: { journey: 'churn-winback', run: 1, step: 'two-days' } });
    expect(Date.parse(aikoTimer.sendAt) - D).toBeGreaterThanOrEqual(2 * DAY);
    expect(Date.parse(aikoTimer.sendAt) - D).toBeLessThan(2 * DAY + 60_000);

    // Luis: no zone of his own, so Madrid's, 13:30: the email now, delivered.
    const luisEmail = journeyActions(luisEntries)[0]!;
    expect(luisEmail).toMatchObject({ status: 'now', detail: { step: 'retention-email', channel: 'email', actionId: 'retention-offer' } });
    const delivered = await emission(stack, (e) => e.id === luisEmail.id, 15_000);
    expect(delivered).toMatchObject({ source: 'kairos', 'detail-type': 'Kairos Journey Action' });
    expect(String((detailOf(delivered).content as { subject: string }).subject)).toBe('Luis, un 15% para volver');

    // Luis orders: his run ends, exited.
    await sendEvents(api, [track({ userId: luis }, 'Order Completed', { order_id: 'o1', revenue: 40 })]);
    const luisEnded = await runsOf(api, luis, (runs) => runs.some((r) => r.ended !== undefined));
    expect(luisEnded).toEqual([expect.objectContaining({ journey: 'churn-winback', run: 1, ended: expect.objectContaining({ how: 'exited' }) })]);
    expect(luisEnded[0]?.step).toBeUndefined();

    // The night ends in Tokyo: the timer comes back, the email is decided then (she is still in the run) and delivered, not before.
    expect(stack.emissions().filter((e) => e.id === aikoEmailTimer.detail.send)).toEqual([]);
    advanceClock(morningInTokyo - Date.now() + 2_000);
    const aikoDelivered = await emission(stack, (e) => e.id === aikoEmailTimer.detail.send, 15_000);
    expect(aikoDelivered).toMatchObject({ 'detail-type': 'Kairos Journey Action', detail: { run: 1, step: 'retention-email', channel: 'email', actionId: 'retention-offer' } });
    expect(String((detailOf(aikoDelivered).content as { subject: string }).subject)).toBe('Aiko, un 15% para volver');
    expect(Date.parse(aikoDelivered.time)).toBeGreaterThanOrEqual(morningInTokyo);
    expect(outboxFile().filter((l) => l.id === aikoEmailTimer.detail.send)).toHaveLength(1);
    expect(await runsOf(api, aiko, () => true, 0)).toEqual([expect.objectContaining({ journey: 'churn-winback', run: 1, step: 'two-days' })]);

    // Two days after the entries: both timers come back through the Events table. Aiko has not ordered: the push,
    // at 21:30 in Tokyo again, waits as a timer for the next 09:00 there; Luis's run has ended: nothing.
    const timersDue = Math.max(...[aikoEntries, luisEntries].map((entries) => Date.parse(timerOf(entries)!.sendAt)));
    advanceClock(timersDue - Date.now() + 2_000);
    await until(() => !stack.schedules().some((s) => s.event.id === aikoTimer.id || s.event.id === timerOf(luisEntries)!.id), 15_000, 'both timers fired');
    const isPushTimer = (e: OutboxEntry) => (e.detail.origin as { step?: string } | undefined)?.step === 'retention-push';
    const withPush = await outboxOf(api, aiko, (entries) => sendTimers(entries).some(isPushTimer));
    const pushTimer = sendTimers(withPush).find(isPushTimer)!;
    const nextMorningInTokyo = morningInTokyo + 2 * DAY;
    expect(pushTimer).toMatchObject({ status: 'deferred', sendAt: new Date(nextMorningInTokyo).toISOString(), detail: { channel: 'push', origin: { run: 1 } } });
    // The run completed past the push step meanwhile: its send is still decided when due.
    advanceClock(nextMorningInTokyo - Date.now() + 2_000);
    const pushDelivered = await emission(stack, (e) => e.id === pushTimer.detail.send, 15_000);
    const push = { id: pushDelivered.id };
    expect(pushDelivered).toMatchObject({
      source: 'kairos',
      'detail-type': 'Kairos Journey Action',
      detail: { run: 1, channel: 'push', actionId: 'retention-offer', content: { title: 'Te echamos de menos', deepLink: 'kairos-demo://offers/retention' } },
    });
    expect(Date.parse(pushDelivered.time)).toBeGreaterThanOrEqual(nextMorningInTokyo);
    expect(await runsOf(api, aiko, (runs) => runs.some((r) => r.ended !== undefined))).toEqual([
      expect.objectContaining({ journey: 'churn-winback', run: 1, ended: expect.objectContaining({ how: 'completed' }) }),
    ]);

    // Luis: his one email, nothing more; his run as the order left it.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(journeyActions(await outboxOf(api, luis, () => true, 0))).toHaveLength(1);
    expect(await runsOf(api, luis, () => true, 0)).toEqual(luisEnded);
    // Timers go to the Events table, never on the bus; each send was delivered once.
    expect(stack.emissions().filter((e) => e['detail-type'] === 'Kairos Journey Timer' || e['detail-type'] === 'Kairos Send Timer')).toEqual([]);
    for (const id of [aikoEmailTimer.detail.send, push.id, luisEmail.id]) expect(outboxFile().filter((l) => l.id === id)).toHaveLength(1);
    const after = await journeyTotals(api, 'churn-winback');
    expect(after.entered - before.entered).toBe(2);
    expect(after.exited - before.exited).toBe(1);
    expect(after.completed - before.completed).toBe(1);
    expect((after.steps['retention-push'] ?? 0) - (before.steps['retention-push'] ?? 0)).toBe(1);
  }, 180_000);
});
