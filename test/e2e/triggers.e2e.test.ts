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
 * - a send that falls in quiet hours: deferred, on the scheduler, then
 *   emitted at their end (13:00) when the clock gets there;
 * - a deferred send of a customer erased before it goes out: cancelled
 *   (off the scheduler and schedules.json, not emitted) and gone from the
 *   outbox.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { advanceClock, middayToday, setClock } from '../support/clock.ts';
import { emission, outbox, until, type OutboxEntry } from '../support/emissions.ts';
import { startLocalStack, type TestStack } from '../support/stack.ts';
import { call, identify, sendEvents, track, uniqueId, waitForProfile, type StackAccess } from './fixtures/kairos.ts';

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
    content: { sms: { text: 'Hola {{ firstName }}, tu carrito te espera: {{ context.properties.total }} EUR' } },
    fallbacks: { firstName: 'cliente' },
  });
  doc.triggers.push({ id: 'cart-sms', on: { event: 'Cart Abandoned' }, decide: { channel: 'sms' } });
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
    const deferred = await outboxEntry('deferred', (e) => e.detail.userId === userId);
    expect((deferred.detail.content as { text: string }).text).toContain('Olga');
    await until(() => stack.schedules().some((s) => s.event.id === deferred.id), 15_000, 'the deferred send on the scheduler');
    const schedulesFile = join(dataDir, 'data', 'schedules.json');
    expect(readFileSync(schedulesFile, 'utf8')).toContain(deferred.id);

    const erased = await call(api, 'DELETE', `/v1/admin/profiles/${encodeURIComponent(userId)}`, { auth: 'admin' });
    expect(erased.status).toBe(200);
    expect(stack.schedules().map((s) => s.event.id)).not.toContain(deferred.id);
    expect(readFileSync(schedulesFile, 'utf8')).not.toContain(deferred.id);
    expect((await outbox(api)).filter((e) => JSON.stringify(e).includes(userId) || e.id === deferred.id)).toEqual([]);
    expect(stack.emissions().filter((e) => e.id === deferred.id)).toEqual([]);
  }, 120_000);

  it('a send in quiet hours is deferred to their end, then emitted then', async () => {
    const userId = uniqueId('night');
    await sendEvents(api, [identify({ userId }, { firstName: 'Ana' }), track({ userId }, 'Consent Updated', { channel: 'sms', granted: true })]);
    // The consent on the profile first, so the cart's trigger sees it.
    await waitForProfile(api, userId, (p) => p.consent.sms?.granted === true);
    expect(Date.now()).toBeLessThan(quietUntil);
    await sendEvents(api, [track({ userId }, 'Cart Abandoned', { total: 42 })]);
    const deferred = await outboxEntry('deferred', (e) => e.detail.userId === userId);
    expect(deferred).toMatchObject({ status: 'deferred', sendAt: new Date(quietUntil).toISOString(), detail: { actionId: 'cart-reminder-sms', channel: 'sms' } });
    expect((deferred.detail.content as { text: string }).text).toBe('Hola Ana, tu carrito te espera: 42 EUR');
    // On the scheduler, not on the bus, until the quiet hours end.
    await until(() => stack.schedules().some((s) => s.event.id === deferred.id), 15_000, 'the deferred send on the scheduler');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stack.emissions().filter((e) => e.id === deferred.id)).toEqual([]);
    advanceClock(quietUntil - Date.now() + 2_000);
    const emitted = await emission(stack, (e) => e.id === deferred.id, 15_000);
    expect(Date.parse(emitted.time)).toBeGreaterThanOrEqual(quietUntil);
    expect(Date.parse(emitted.time) - quietUntil).toBeLessThan(10_000);
    expect(stack.schedules().map((s) => s.event.id)).not.toContain(deferred.id);
  }, 120_000);
});
