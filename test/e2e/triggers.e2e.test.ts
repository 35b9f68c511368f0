/**
 * Triggers end to end on the local stack beyond the seed (the seed, a VIP
 * who opens a complaint, runs on the demo catalog as it is in
 * journeys.e2e.test.ts): the demo catalog plus an SMS action and a trigger
 * that sends it when a cart is abandoned, with SMS quiet hours from 12:00
 * to 13:00 UTC. Events in through /v1/batch, emissions out through the
 * Outbox stream, the dispatcher and the local bus
 * (`<dataDir>/outbox.jsonl`), and the operator's GET /v1/admin/outbox.
 * Time is driven (test/support/clock.ts): the day starts at 12:30 UTC.
 *
 * - a send the customer's consent refuses: never emitted, kept as refused;
 * - a send that falls in quiet hours: not decided, its timer `deferred` on
 *   the scheduler; at their end (13:00), when the clock gets there, the
 *   timer comes back through the Events table and the send is decided on
 *   the profile as it is then: emitted with its content and a sealed
 *   decision id when nothing changed (one contact); refused, never
 *   emitted, for a VIP who returned a product and opened a complaint
 *   meanwhile (the VIP promotion on SMS, an `entered: vip` trigger);
 * - a deferred send of a customer erased before it goes out: its timer
 *   cancelled (off the scheduler and its folder, nothing emitted) and
 *   gone from the outbox.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { advanceClock, middayToday, setClock } from '../support/clock.ts';
import { emission, outbox, until, type OutboxEntry } from '../support/emissions.ts';
import { startLocalStack, type TestStack } from '../support/stack.ts';
import { call, getProfile, identify, sendEvents, track, uniqueId, waitForProfile, type StackAccess } from './fixtures/kairos.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'kairos-triggers-'));
let stack: TestStack;
let api: StackAccess;
/** When the SMS quiet hours of the test catalog end: 13:00 UTC today. */
const quietUntil = middayToday() + 3_600_000;

beforeAll(async () => {
  setClock(middayToday() + 1_800_000);
  const doc = parseYaml(readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8')) as {
    actions: unknown[];
    policies: { quietHours: unknown[] };
    triggers: unknown[];
  };
  doc.policies.quietHours = [{ id: 'sms-test-window', channels: ['sms'], from: '12:00', to: '13:00', timezone: 'UTC' }];
  doc.actions.push({
    id: 'cart-reminder-sms',
    name: 'Cart reminder SMS',
    tags: ['service'],
    // Only for the cart's own event: decided when quiet hours end, it reads the context of the firing.
    eligibility: 'context.event == "Cart Abandoned"',
    content: { sms: { text: 'Hola {{ firstName }}, tu carrito te espera: {{ context.properties.total }} EUR' } },
    fallbacks: { firstName: 'cliente' },
  });
  doc.actions.push({
    id: 'vip-promo-sms',
    name: 'VIP promotion SMS',
    tags: ['promo', 'vip'],
    targeting: { segments: ['vip'] },
    content: { sms: { text: 'Hola {{ firstName }}: 20% solo para VIP' } },
    fallbacks: { firstName: 'cliente' },
  });
  doc.triggers.push({ id: 'cart-sms', on: { event: 'Cart Abandoned' }, decide: { channel: 'sms' } });
  doc.triggers.push({ id: 'vip-promo-sms', on: { entered: 'vip' }, decide: { channel: 'sms' } });
  const catalogFile = join(dataDir, 'catalog.yaml');
  writeFileSync(catalogFile, stringifyYaml(doc));
  stack = await startLocalStack({ inMemory: false, dataDir: join(dataDir, 'data'), catalogFile });
  api = { baseUrl: stack.baseUrl, writeKey: stack.writeKey, serverKey: stack.serverKey, userTokenSecret: stack.userTokenSecret, adminToken: stack.adminToken };
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** The first outbox entry of `status` that `match` picks, within 15 s. */
async function outboxEntry(status: string, match: (e: OutboxEntry) => boolean): Promise<OutboxEntry> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    const found = (await outbox(api, status)).find(match);
    if (found) return found;
    if (performance.now() > deadline) throw new Error(`no ${status} outbox entry`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('triggers on the local stack', () => {
  it('a send without consent is refused: never emitted, kept as refused', async () => {
    const userId = uniqueId('no-consent');
    await sendEvents(api, [identify({ userId }, { firstName: 'Eva' }), track({ userId }, 'Cart Abandoned', { total: 30 })]);
    const refused = await outboxEntry('refused', (e) => e.detail.userId === userId);
    expect(refused).toMatchObject({ status: 'refused', detail: { refused: 'consent', refusedBy: 'sms', trigger: 'cart-sms' } });
    expect((await outbox(api)).filter((e) => e.id === refused.id)).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stack.emissions().filter((e) => e.id === refused.id)).toEqual([]);
  }, 60_000);

  it('a deferred send of a customer erased before its time is cancelled, and the outbox keeps nothing of the customer', async () => {
    const userId = uniqueId('erased-night');
    await sendEvents(api, [identify({ userId }, { firstName: 'Olga' }), track({ userId }, 'Consent Updated', { channel: 'sms', granted: true })]);
    await waitForProfile(api, userId, (p) => p.consent.sms?.granted === true);
    expect(Date.now()).toBeLessThan(quietUntil);
    await sendEvents(api, [track({ userId }, 'Cart Abandoned', { total: 17 })]);
    const deferred = await outboxEntry('deferred', (e) => e.detail.profileKey === `u#${userId}`);
    expect(deferred).toMatchObject({ detailType: 'Kairos Send Timer', detail: { kind: 'send-timer', origin: { trigger: 'cart-sms' } } });
    await until(() => stack.schedules().some((s) => s.event.id === deferred.id), 15_000, 'the deferred send on the scheduler');
    const schedulesFolder = join(dataDir, 'data', 'schedules');
    const onDisk = () => readdirSync(schedulesFolder).map((name) => readFileSync(join(schedulesFolder, name), 'utf8')).join('\n');
    expect(onDisk()).toContain(deferred.id);

    const erased = await call(api, 'DELETE', `/v1/admin/profiles/${encodeURIComponent(userId)}`, { auth: 'admin' });
    expect(erased.status).toBe(200);
    expect(stack.schedules().map((s) => s.event.id)).not.toContain(deferred.id);
    expect(onDisk()).not.toContain(deferred.id);
    expect(onDisk()).not.toContain(userId);
    expect((await outbox(api)).filter((e) => JSON.stringify(e).includes(userId) || e.id === deferred.id)).toEqual([]);
    expect(stack.emissions().filter((e) => e.id === deferred.id || e.id === deferred.detail.send)).toEqual([]);
  }, 120_000);

  it('a send in quiet hours is decided at their end, on the profile as it is then: sent when nothing changed; refused for a VIP who returned a product and opened a complaint meanwhile', async () => {
    const [ana, vera] = [uniqueId('night'), uniqueId('vip-night')];
    await sendEvents(api, [
      identify({ userId: ana }, { firstName: 'Ana' }),
      track({ userId: ana }, 'Consent Updated', { channel: 'sms', granted: true }),
      identify({ userId: vera }, { firstName: 'Vera' }),
      track({ userId: vera }, 'Consent Updated', { channel: 'sms', granted: true }),
    ]);
    // The consents on the profiles first, so the triggers see them.
    for (const userId of [ana, vera]) await waitForProfile(api, userId, (p) => p.consent.sms?.granted === true);
    expect(Date.now()).toBeLessThan(quietUntil);
    // 12:30: Ana abandons her cart, Vera becomes a VIP; both sends fall in the SMS quiet hours.
    await sendEvents(api, [track({ userId: ana }, 'Cart Abandoned', { total: 42 }), identify({ userId: vera }, { tier: 'VIP' })]);
    const anaTimer = await outboxEntry('deferred', (e) => e.detail.profileKey === `u#${ana}`);
    const veraTimer = await outboxEntry('deferred', (e) => e.detail.profileKey === `u#${vera}`);
    for (const [timer, trigger] of [
      [anaTimer, 'cart-sms'],
      [veraTimer, 'vip-promo-sms'],
    ] as const) {
      expect(timer).toMatchObject({
        status: 'deferred',
        sendAt: new Date(quietUntil).toISOString(),
        detailType: 'Kairos Send Timer',
        detail: { kind: 'send-timer', channel: 'sms', origin: { kind: 'trigger', trigger } },
      });
      // Nothing is decided yet: no content, no decision.
      expect(timer.detail).not.toHaveProperty('content');
      expect(timer.detail).not.toHaveProperty('decisionId');
    }
    // On the scheduler, nothing on the bus, until the quiet hours end.
    await until(() => [anaTimer, veraTimer].every((t) => stack.schedules().some((s) => s.event.id === t.id)), 15_000, 'the timers on the scheduler');
    // 12:30+: Vera returns a product and opens a complaint (the call centre calls her back now: another trigger).
    await sendEvents(api, [track({ userId: vera }, 'Order Refunded', { orderId: 'o-1' }), track({ userId: vera }, 'Complaint Opened', { orderId: 'o-1' })]);
    await waitForProfile(api, vera, (p) => p.segments.includes('in-conflict') && p.segments.includes('vip'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stack.emissions().filter((e) => [anaTimer.detail.send, veraTimer.detail.send].includes(e.id))).toEqual([]);

    advanceClock(quietUntil - Date.now() + 2_000);
    // Ana: nothing changed, the send goes out at the end with its content and a sealed decision id…
    const emitted = await emission(stack, (e) => e.id === anaTimer.detail.send, 15_000);
    expect(emitted['detail-type']).toBe('Kairos Trigger Action');
    expect(emitted.detail).toMatchObject({ trigger: 'cart-sms', actionId: 'cart-reminder-sms', channel: 'sms', content: { text: 'Hola Ana, tu carrito te espera: 42 EUR' } });
    expect(String(emitted.detail.decisionId)).toMatch(/^d2\./);
    expect(Date.parse(emitted.time)).toBeGreaterThanOrEqual(quietUntil);
    expect(Date.parse(emitted.time) - quietUntil).toBeLessThan(10_000);
    // …counted once as a contact on her profile.
    const anaProfile = (await getProfile(api, ana)) as unknown as { channelContacts: Record<string, string[]> };
    expect(anaProfile.channelContacts.sms).toHaveLength(1);
    // Vera: the VIP promotion is refused at the end (suppressed: in conflict), never emitted on any channel.
    const refused = await outboxEntry('refused', (e) => e.id === veraTimer.detail.send);
    expect(refused.detail).toMatchObject({ trigger: 'vip-promo-sms', refused: 'suppressed', refusedBy: 'no-promo-in-conflict' });
    expect(refused.detail).not.toHaveProperty('content');
    await new Promise((resolve) => setTimeout(resolve, 500));
    const veraEmissions = stack.emissions().filter((e) => e.detail.userId === vera);
    expect(veraEmissions.map((e) => e.detail.actionId)).not.toContain('vip-promo-sms');
    expect(veraEmissions.every((e) => !(e.detail.content && JSON.stringify(e.detail.content).includes('VIP')))).toBe(true);
    // The timers fired once, off the scheduler, never on the bus.
    expect(stack.schedules().map((s) => s.event.id)).not.toContain(anaTimer.id);
    expect(stack.schedules().map((s) => s.event.id)).not.toContain(veraTimer.id);
    expect(stack.emissions().filter((e) => e.id === anaTimer.id || e.id === veraTimer.id)).toEqual([]);
  }, 120_000);
});
