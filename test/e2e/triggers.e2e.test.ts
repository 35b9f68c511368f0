/**
 * Triggers end to end on the local stack (docs/catalog.md "Triggers"):
 * events in through /v1/batch, emissions out through the Outbox stream,
 * the dispatcher and the local bus (`<dataDir>/outbox.jsonl`), and the
 * operator's GET /v1/admin/outbox.
 *
 * - the seed scenario: a VIP who opens a complaint → a call-centre emission
 *   at once (the service-recovery call, with the customer's name), and no
 *   VIP promotion on decide, on any channel;
 * - a send that falls in quiet hours (a window of the test's catalog that
 *   ends two or three minutes after the test starts): deferred, on the
 *   scheduler, then emitted at their end;
 * - a send the customer's consent refuses: never emitted, kept as refused.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startLocalStack, type TestStack } from '../support/stack.ts';
import { call, decide, identify, sendEvents, track, uniqueId, type StackAccess } from './fixtures/kairos.ts';
import type { DeliveredEvent } from '#local/outbox.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'kairos-triggers-'));
let stack: TestStack;
let api: StackAccess;
/** When the quiet hours of the test catalog end (epoch ms, a minute boundary). */
let quietUntil: number;

const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16);

beforeAll(async () => {
  // The demo catalog, with sms quiet hours from this minute to the first minute boundary at least 100 s away
  // (UTC: room for the stack to start on a loaded machine), an sms action and a trigger that sends it when a cart
  // is abandoned.
  const now = Date.now();
  const minute = Math.floor(now / 60_000) * 60_000;
  quietUntil = Math.ceil((now + 100_000) / 60_000) * 60_000;
  const doc = parseYaml(readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8')) as {
    actions: unknown[];
    policies: { quietHours: unknown[] };
    triggers: unknown[];
  };
  doc.policies.quietHours = [{ id: 'sms-test-window', channels: ['sms'], from: hhmm(minute), to: hhmm(quietUntil), timezone: 'UTC' }];
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

interface OutboxListing {
  emissions: { id: string; status: string; sendAt: string; detail: Record<string, unknown> }[];
  next?: string;
}

async function outboxEntry(id: string): Promise<OutboxListing['emissions'][number] | undefined> {
  const seen: OutboxListing['emissions'] = [];
  let cursor: string | undefined;
  do {
    const page = await call<OutboxListing>(api, 'GET', `/v1/admin/outbox?limit=1000${cursor ? `&cursor=${cursor}` : ''}`, { auth: 'admin' });
    expect(page.status).toBe(200);
    seen.push(...page.json.emissions);
    cursor = page.json.next;
  } while (cursor);
  return seen.find((e) => e.id === id);
}

const detailOf = (e: DeliveredEvent) => e.detail as Record<string, unknown>;

describe('triggers on the local stack', () => {
  it('a VIP who opens a complaint: the call-centre emission now, in outbox.jsonl and the outbox route; no VIP promotion on decide', async () => {
    const userId = uniqueId('vip');
    await sendEvents(api, [identify({ userId }, { tier: 'VIP', firstName: 'Luis' })]);
    const sent = Date.now();
    await sendEvents(api, [track({ userId }, 'Complaint Opened', { reason: 'late delivery' })]);
    const emitted = await emission((e) => detailOf(e).userId === userId && detailOf(e).trigger === 'vip-complaint-call', 15_000);
    expect(Date.now() - sent).toBeLessThan(15_000);
    expect(emitted).toMatchObject({
      source: 'kairos',
      'detail-type': 'Kairos Trigger Action',
      detail: { kind: 'trigger', channel: 'call_center', actionId: 'service-recovery-call', customerKey: userId, cause: { kind: 'event', event: 'Complaint Opened' } },
    });
    expect(String((detailOf(emitted).content as { script: string }).script)).toContain('Luis');
    expect(emitted.id).toBe(detailOf(emitted).emissionId);
    // The bus's record on disk, and the outbox as the operator reads it.
    const lines = readFileSync(join(dataDir, 'data', 'outbox.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as DeliveredEvent);
    expect(lines.filter((l) => l.id === emitted.id)).toHaveLength(1);
    expect(await outboxEntry(emitted.id)).toMatchObject({ status: 'now', detail: { actionId: 'service-recovery-call' } });
    // Decide tells the same story: no promotion, on any channel.
    for (const channel of ['email', 'call_center'] as const) {
      const decision = await decide(api, { userId, channel });
      expect(decision.actions.map((a) => a.actionId)).not.toContain('vip-winback-email-123');
    }
    // Exactly once: the complaint's event fired one emission, however the stream delivered it.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stack.emissions().filter((e) => detailOf(e).userId === userId && detailOf(e).trigger === 'vip-complaint-call')).toHaveLength(1);
  }, 60_000);

  it('a send without consent is refused: never emitted, kept as refused', async () => {
    const userId = uniqueId('no-consent');
    await sendEvents(api, [identify({ userId }, { firstName: 'Eva' }), track({ userId }, 'Cart Abandoned', { total: 30 })]);
    const emissionId = await (async () => {
      const deadline = Date.now() + 15_000;
      for (;;) {
        const page = await call<OutboxListing>(api, 'GET', '/v1/admin/outbox?status=refused&limit=1000', { auth: 'admin' });
        const found = page.json.emissions.find((e) => e.detail.userId === userId);
        if (found) return found.id;
        if (Date.now() > deadline) throw new Error('no refused emission');
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    expect(await outboxEntry(emissionId)).toMatchObject({ status: 'refused', detail: { refused: 'consent', refusedBy: 'sms', trigger: 'cart-sms' } });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stack.emissions().filter((e) => e.id === emissionId)).toEqual([]);
  }, 60_000);

  it('a send in quiet hours is deferred to their end, then emitted then', async () => {
    const userId = uniqueId('night');
    await sendEvents(api, [
      identify({ userId }, { firstName: 'Ana' }),
      track({ userId }, 'Consent Updated', { channel: 'sms', granted: true }),
    ]);
    // Wait until the consent is on the profile, so the cart's trigger sees it.
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(Date.now()).toBeLessThan(quietUntil);
    await sendEvents(api, [track({ userId }, 'Cart Abandoned', { total: 42 })]);
    const deadline = Date.now() + 15_000;
    let deferred: OutboxListing['emissions'][number] | undefined;
    while (!deferred && Date.now() < deadline) {
      const page = await call<OutboxListing>(api, 'GET', '/v1/admin/outbox?status=deferred&limit=1000', { auth: 'admin' });
      deferred = page.json.emissions.find((e) => e.detail.userId === userId);
      if (!deferred) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(deferred).toMatchObject({ status: 'deferred', sendAt: new Date(quietUntil).toISOString(), detail: { actionId: 'cart-reminder-sms', channel: 'sms' } });
    expect((deferred?.detail.content as { text: string }).text).toBe('Hola Ana, tu carrito te espera: 42 EUR');
    // On the scheduler, not on the bus, until the quiet hours end.
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(stack.schedules().map((s) => s.event.id)).toContain(deferred?.id);
    expect(stack.emissions().filter((e) => e.id === deferred?.id)).toEqual([]);
    const emitted = await emission((e) => e.id === deferred?.id, quietUntil - Date.now() + 10_000);
    expect(Date.parse(emitted.time)).toBeGreaterThanOrEqual(quietUntil);
    expect(Date.parse(emitted.time) - quietUntil).toBeLessThan(5_000);
    expect(stack.schedules().map((s) => s.event.id)).not.toContain(deferred?.id);
  }, 200_000);
});
