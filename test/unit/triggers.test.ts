/**
 * Triggers (shared/domain/triggers/react.ts, catalog `triggers:`): the
 * catalog's validation (with line and column), what sets each kind off,
 * the decision of a firing with every policy (a send now, one deferred to
 * the end of quiet hours, a refusal by consent, suppression choosing the
 * service action), and the profile plan writing each firing with the
 * event that caused it, between the views just before and just after it.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { customerTag, decisionKey, openDecisionId, readDecisionId } from '#domain/decide/decision-id.ts';
import { eventOutcome } from '#domain/profile/apply.ts';
import { emptyProfileState, parseProfileState } from '#domain/profile/state.ts';
import { emptyReadState, planBatch, type BatchPlan, type BatchRecord, type PlanOptions, type ReadState } from '#domain/profile/plan.ts';
import type { AppliedChange } from '#domain/profile/reactions.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { DETAIL_TYPES, sendTimerId, type TriggerEmissionDetail } from '#domain/triggers/emission.ts';
import { createTriggerReactor, decideDueSend, eventContext, fireTrigger, triggersFiring } from '#domain/triggers/react.ts';
import { sendTimerEvent, sendTimerOfDetail, timerEventOfDetail } from '#domain/journeys/timer.ts';
import { deliver, type MemoryStore } from './reactions-support.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { storedEvent } from '../support/stream.ts';
import { NOW, daysAgo, makeView, type ViewOverrides } from './catalog-support.ts';

function demo(): CompiledCatalog {
  const result = loadCatalog(readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8'), 'yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.problems, null, 2));
  return result.catalog;
}
const catalog = demo();

const granted = { granted: true, updatedAt: daysAgo(100) };
const customer = (o: ViewOverrides = {}): ProfileView =>
  makeView({ consent: { email: granted, push: granted, sms: granted }, ...o, stats: { lastSeenAt: daysAgo(1), ...o.stats } });

const event = (name: string, extra: Partial<Parameters<typeof storedEvent>[0]> = {}): StoredEvent =>
  storedEvent({ type: 'track', event: name, userId: 'u-1', messageId: `m-${name}`, timestamp: NOW.toISOString(), ...extra });

const change = (before: ProfileView, after: ProfileView, e: StoredEvent = event('Something Happened')): AppliedChange => ({
  eventPk: e.pk,
  event: e,
  profileKey: 'u#u-1',
  before,
  after,
  now: NOW.getTime(),
});

/** A small catalog with one trigger of each kind, quiet hours on sms and consent on email. */
const TRIGGERS_YAML = `
kind: kairos/v1
tags: [service, promo]
models:
  - id: risk
    kind: logistic
    intercept: 0
    threshold: 0.7
    features: [{ name: returns, expression: 'profile.stats.returns', weight: 1 }]
segments:
  - { id: vip, rule: 'has(profile.traits.tier) && profile.traits.tier == "VIP"' }
  - { id: in-conflict, rule: 'profile.stats.openComplaints > 0.0' }
personas:
  - { id: saver, name: Saver, rule: 'profile.stats.orders < 2.0' }
  - { id: spender, name: Spender, rule: 'profile.stats.orders >= 2.0' }
actions:
  - id: call-back
    name: Call back
    tags: [service]
    content: { call_center: { script: 'Hola {{ firstName }}' } }
    fallbacks: { firstName: cliente }
  - id: promo-sms
    name: Promo SMS
    tags: [promo]
    content: { sms: { text: 'Oferta para {{ firstName }}' } }
    fallbacks: { firstName: cliente }
  - id: promo-email
    name: Promo email
    tags: [promo]
    content: { email: { templateId: t1, subject: Hola } }
policies:
  suppressions:
    - { id: no-promo-in-conflict, tags: [promo], when: 'hasSegment("in-conflict")' }
  quietHours:
    - { id: sms-night, channels: [sms], from: '21:00', to: '09:00', timezone: UTC }
  consentRequired: [email, sms]
triggers:
  - id: complaint-call
    on: { event: Complaint Opened, when: 'hasSegment("vip") && context.properties.severity == "high"' }
    decide: { channel: call_center }
  - id: vip-in
    on: { entered: vip }
    decide: { channel: sms }
  - id: vip-out
    on: { left: vip }
    decide: { channel: email }
  - id: spender
    on: { persona: spender }
    decide: { channel: sms }
  - id: any-persona
    on: { persona: '*' }
    decide: { channel: email }
  - id: risky
    on: { score: { model: risk } }
    decide: { channel: email }
  - id: calmer
    on: { score: { model: risk, below: 0.5 } }
    decide: { channel: email }
  - id: off
    enabled: false
    on: { event: Complaint Opened }
    decide: { channel: call_center }
`;
const small = (() => {
  const result = loadCatalog(TRIGGERS_YAML, 'yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.problems, null, 2));
  return result.catalog;
})();
const ids = (c: AppliedChange) => triggersFiring(small, c).map((t) => t.id);

describe('catalog triggers', () => {
  it('compiles each kind of cause; a disabled trigger is left out', () => {
    expect(small.triggers.map((t) => [t.id, t.on])).toEqual([
      ['complaint-call', { kind: 'event', event: 'Complaint Opened' }],
      ['vip-in', { kind: 'entered', segment: 'vip' }],
      ['vip-out', { kind: 'left', segment: 'vip' }],
      ['spender', { kind: 'persona', persona: 'spender' }],
      ['any-persona', { kind: 'persona', persona: '*' }],
      ['risky', { kind: 'score', model: 'risk', direction: 'above', threshold: 0.7 }],
      ['calmer', { kind: 'score', model: 'risk', direction: 'below', threshold: 0.5 }],
    ]);
  });

  it('refuses unknown references, two causes, a bad rule and a duplicate id, each at its line and column', () => {
    const text = `kind: kairos/v1
segments:
  - { id: vip, rule: 'true' }
triggers:
  - id: a
    on: { entered: vipp }
    decide: { channel: email }
  - id: b
    on: { event: X, left: vip }
    decide: { channel: email }
  - id: c
    on: { persona: nobody, when: 'profile.nope == 1' }
    decide: { channel: fax }
  - id: a
    on: { score: { model: risk } }
    decide: { channel: push }
`;
    const result = loadCatalog(text, 'yaml');
    expect(result.ok).toBe(false);
    const problems = result.ok ? [] : result.problems.map((p) => [p.path, p.line, p.message.split(';')[0]]);
    expect(problems).toEqual(
      expect.arrayContaining([
        ['triggers[0].on.entered', 6, 'unknown segment "vipp"'],
        ['triggers[1].on', 9, 'must name exactly one of "event", "entered", "left", "persona", "score"'],
        ['triggers[2].decide.channel', 13, expect.stringContaining('')],
      ]),
    );
    // The entries whose shape passed are checked deeper: the duplicate id and the unknown model.
    const paths = result.ok ? [] : result.problems.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['triggers[3].id', 'triggers[3].on.score.model']));
    expect(result.ok ? [] : result.problems.every((p) => typeof p.line === 'number' && typeof p.column === 'number')).toBe(true);
  });

  it('the demo catalog declares its triggers', () => {
    // Entering churn risk is the churn-winback journey's entry (its first step is the retention email).
    expect(catalog.triggers.map((t) => [t.id, t.on.kind, t.channel])).toEqual([['vip-complaint-call', 'event', 'call_center']]);
    expect(catalog.journeys.map((j) => [j.id, j.entry.on.kind])).toEqual([['churn-winback', 'entered']]);
  });
});

describe('what sets a trigger off (triggersFiring)', () => {
  const plain = customer({ segments: [], persona: 'saver', scores: { risk: 0.2 } });

  it('an event of its name (as the profile reads names) whose rule holds, with the event as context', () => {
    const vip = { ...plain, segments: ['vip'] };
    expect(ids(change(vip, vip, event('Complaint Opened', { properties: { severity: 'high' } })))).toEqual(['complaint-call']);
    expect(ids(change(vip, vip, event('complaint_opened', { properties: { severity: 'high' } })))).toEqual(['complaint-call']);
    expect(ids(change(vip, vip, event('Complaint Opened', { properties: { severity: 'low' } })))).toEqual([]);
    expect(ids(change(plain, plain, event('Complaint Opened', { properties: { severity: 'high' } })))).toEqual([]);
    expect(ids(change(vip, vip, event('Complaint Resolved', { properties: { severity: 'high' } })))).toEqual([]);
  });

  it('entering and leaving a segment, once each way', () => {
    const vip = { ...plain, segments: ['vip'] };
    expect(ids(change(plain, vip))).toEqual(['vip-in']);
    expect(ids(change(vip, plain))).toEqual(['vip-out']);
    expect(ids(change(vip, vip))).toEqual([]);
  });

  it('a persona change: to the trigger\'s persona, or any change for "*"', () => {
    const spender = { ...plain, persona: 'spender' };
    const none = { ...plain, persona: undefined };
    expect(ids(change(plain, spender))).toEqual(['spender', 'any-persona']);
    expect(ids(change(spender, plain))).toEqual(['any-persona']);
    expect(ids(change(plain, none))).toEqual(['any-persona']);
    expect(ids(change(spender, spender))).toEqual([]);
  });

  it('a score crossing its threshold: upwards (from none too) and downwards, not staying on a side', () => {
    const at = (risk: number | undefined): ProfileView => ({ ...plain, scores: risk === undefined ? {} : { risk } });
    expect(ids(change(at(0.69), at(0.7)))).toEqual(['risky']);
    expect(ids(change(at(undefined), at(0.9)))).toEqual(['risky']);
    expect(ids(change(at(0.8), at(0.9)))).toEqual([]);
    expect(ids(change(at(0.5), at(0.49)))).toEqual(['calmer']);
    expect(ids(change(at(0.9), at(0.1)))).toEqual(['calmer']);
    expect(ids(change(at(0.4), at(0.1)))).toEqual([]);
    expect(ids(change(at(0.9), at(undefined)))).toEqual([]);
  });

  it('the event is the context: name, type, properties, traits, and the device zone', () => {
    const e = event('Cart Abandoned', { properties: { total: 30 }, context: { timezone: 'Europe/Madrid' } });
    expect(eventContext(e)).toEqual({
      event: 'Cart Abandoned',
      type: 'track',
      messageId: 'm-Cart Abandoned',
      timestamp: NOW.toISOString(),
      properties: { total: 30 },
      traits: {},
      timezone: 'Europe/Madrid',
    });
  });
});

describe('the decision of a firing (fireTrigger)', () => {
  const trigger = (id: string) => small.triggers.find((t) => t.id === id)!;
  const key = decisionKey('k'.repeat(40));

  it('a send now: the rendered action, its sealed decision id, the customer, a stable emission id', () => {
    const vip = customer({ segments: ['vip'], traits: { tier: 'VIP', firstName: 'Ana' } });
    const e = event('Complaint Opened', { properties: { severity: 'high' } });
    const entry = fireTrigger(small, trigger('complaint-call'), change(vip, vip, e), { decisionKey: key });
    const detail = entry.detail as unknown as TriggerEmissionDetail;
    expect(entry).toMatchObject({ id: `complaint-call.${e.pk}`, status: 'now', sendAt: NOW.getTime(), detailType: DETAIL_TYPES.trigger });
    expect(detail).toMatchObject({
      emissionId: entry.id,
      kind: 'trigger',
      trigger: 'complaint-call',
      cause: { kind: 'event', event: 'Complaint Opened' },
      eventId: e.messageId,
      customerKey: 'u-1',
      userId: 'u-1',
      channel: 'call_center',
      actionId: 'call-back',
      content: { script: 'Hola Ana' },
      decidedAt: NOW.toISOString(),
      sendAt: NOW.toISOString(),
    });
    expect(readDecisionId(detail.decisionId, key)).toMatchObject({ channel: 'call_center', actions: [expect.objectContaining({ actionId: 'call-back' })] });
    // Bound to the customer it was decided for: the sender's report counts on their profile, on nobody else's.
    expect(readDecisionId(detail.decisionId, key)?.customer).toBe(customerTag(detail.customerKey));
    const reported = (userId: string) =>
      eventOutcome(event('Promotion Clicked', { userId, messageId: `click-${userId}`, properties: { decision_id: detail.decisionId } }), { halfLifeDays: 14, decisionKey: key }, emptyProfileState({ userId }));
    expect(reported('u-1')?.action.actionId).toBe('call-back');
    expect(reported('u-2')).toBeUndefined();
    // Planned again (a lost race), the same firing decides the same way.
    const again = fireTrigger(small, trigger('complaint-call'), change(vip, vip, e), { decisionKey: key });
    expect({ ...again.detail, decisionId: undefined }).toEqual({ ...entry.detail, decisionId: undefined });
    expect(openDecisionId((again.detail as unknown as TriggerEmissionDetail).decisionId, key)).toBe(openDecisionId(detail.decisionId, key));
  });

  it('an action whose content would not fit in an outbox item (DynamoDB\'s 400 KB) is not sent: the next one is', () => {
    const notes = loadCatalog(
      `kind: kairos/v1
actions:
  - id: read-back
    name: Read the note back
    priority: 10
    content: { call_center: { script: Nota, talkingPoints: ${JSON.stringify(Array.from({ length: 9 }, () => '{{ context.properties.note }}'))} } }
  - id: call-back
    name: Call back
    content: { call_center: { script: 'Hola {{ firstName }}' } }
    fallbacks: { firstName: cliente }
triggers:
  - { id: note-call, on: { event: Note Left }, decide: { channel: call_center } }
`,
      'yaml',
    );
    if (!notes.ok) throw new Error(JSON.stringify(notes.problems));
    const fire = (note: string) => {
      const e = event('Note Left', { properties: { note } });
      return fireTrigger(notes.catalog, notes.catalog.triggers[0]!, change(customer(), customer(), e), { decisionKey: key });
    };
    // Any write key can send this event (18 KB of JSON): each point escapes its 9,000 quotes to 45,000 characters (&#34;),
    // within its own bound of 50,000; the nine, 405 KB, would make the profile's transaction fail on every retry.
    const entry = fire('"'.repeat(9_000));
    expect({ status: entry.status, actionId: entry.detail.actionId }).toEqual({ status: 'now', actionId: 'call-back' });
    expect(JSON.stringify(entry).length).toBeLessThan(10_000);
    expect(fire('a short note').detail.actionId).toBe('read-back');
  });

  it("in quiet hours: not decided, its timer deferred to their end in the customer's zone, with no content, decision or contact", () => {
    const night = new Date('2026-11-23T22:30:00Z');
    const vip = customer({ segments: ['vip'], traits: { tier: 'VIP', firstName: 'Ana' } });
    const entry = fireTrigger(small, trigger('vip-in'), { ...change(customer(), vip), now: night.getTime() });
    expect(entry).toMatchObject({ id: sendTimerId('vip-in.src-test#m-Something Happened'), status: 'deferred', detailType: 'Kairos Send Timer' });
    expect(new Date(entry.sendAt).toISOString()).toBe('2026-11-24T09:00:00.000Z');
    expect(entry.detail).toEqual({
      emissionId: entry.id,
      kind: 'send-timer',
      send: 'vip-in.src-test#m-Something Happened',
      channel: 'sms',
      origin: { kind: 'trigger', trigger: 'vip-in', cause: { kind: 'entered', segment: 'vip' }, eventId: 'm-Something Happened' },
      context: eventContext(event('Something Happened')),
      profileKey: 'u#u-1',
      dueAt: '2026-11-24T09:00:00.000Z',
    });
    expect(entry.contact).toBeUndefined();
    // The device's zone (the event's context) moves the end: 09:00 in New York is 14:00 UTC.
    const e = event('Visit', { context: { timezone: 'America/New_York' } });
    const ny = fireTrigger(small, trigger('vip-in'), { ...change(customer(), vip, e), now: Date.parse('2026-11-24T03:30:00Z') });
    expect(new Date(ny.sendAt).toISOString()).toBe('2026-11-24T14:00:00.000Z');
    expect(ny.detail.context).toMatchObject({ timezone: 'America/New_York' });
  });

  describe('a send deferred by quiet hours, decided when its timer is due (decideDueSend) on the profile as it is then', () => {
    const night = Date.parse('2026-11-23T22:30:00Z');
    const end = Date.parse('2026-11-24T09:00:00Z');
    const vip = customer({ segments: ['vip'], traits: { tier: 'VIP', firstName: 'Ana' } });
    const timer = sendTimerOfDetail(fireTrigger(small, trigger('vip-in'), { ...change(customer(), vip), now: night }, { decisionKey: key }).detail)!;
    const dueChange = (after: ProfileView, now = end): AppliedChange => {
      const fired = sendTimerEvent(timer, now, 1);
      return { eventPk: fired.pk, event: fired, profileKey: 'u#u-1', before: after, after, now };
    };

    it('nothing changed: sent at the end of quiet hours, with its content, a sealed decision id and its contact, under the send\'s own id', () => {
      const entry = decideDueSend(small, timer, dueChange(vip), { decisionKey: key })!;
      expect(entry).toMatchObject({ id: 'vip-in.src-test#m-Something Happened', status: 'now', sendAt: end, detailType: 'Kairos Trigger Action' });
      expect(entry.detail).toMatchObject({
        emissionId: entry.id,
        kind: 'trigger',
        trigger: 'vip-in',
        cause: { kind: 'entered', segment: 'vip' },
        eventId: 'm-Something Happened',
        channel: 'sms',
        actionId: 'promo-sms',
        content: { text: 'Oferta para Ana' },
        decidedAt: '2026-11-24T09:00:00.000Z',
        sendAt: '2026-11-24T09:00:00.000Z',
      });
      expect(openDecisionId(entry.detail.decisionId as string, key)).toBeDefined();
      expect(entry.contact).toMatchObject({ channel: 'sms', actionId: 'promo-sms', at: end });
      // The same timer decides the same way when its batch is planned again (the seal itself is fresh each time).
      const again = decideDueSend(small, timer, dueChange(vip), { decisionKey: key })!;
      expect(openDecisionId(again.detail.decisionId as string, key)).toEqual(openDecisionId(entry.detail.decisionId as string, key));
      expect({ ...again, detail: { ...again.detail, decisionId: 0 } }).toEqual({ ...entry, detail: { ...entry.detail, decisionId: 0 } });
    });

    it('the VIP trap: a return and a complaint opened in the night leave the promotion refused at the end, never sent', () => {
      const inConflict = customer({ segments: ['vip', 'in-conflict'], traits: { tier: 'VIP', firstName: 'Ana' }, stats: { openComplaints: 1, returns: 1 } });
      const entry = decideDueSend(small, timer, dueChange(inConflict), { decisionKey: key })!;
      expect(entry).toMatchObject({ id: 'vip-in.src-test#m-Something Happened', status: 'refused', detail: { refused: 'suppressed', refusedBy: 'no-promo-in-conflict' } });
      expect(entry.detail).not.toHaveProperty('content');
      expect(entry.contact).toBeUndefined();
      // Consent withdrawn meanwhile: refused by it.
      expect(decideDueSend(small, timer, dueChange(customer({ consent: {}, segments: ['vip'] })))!).toMatchObject({ status: 'refused', detail: { refused: 'consent' } });
    });

    it("the trigger changed in the catalog meanwhile: decided for its channel as it is when due; removed or disabled, nothing", () => {
      const edited = (decide: string, enabled = true) => {
        const result = loadCatalog(TRIGGERS_YAML.replace("  - id: vip-in\n    on: { entered: vip }\n    decide: { channel: sms }", `  - id: vip-in\n    enabled: ${enabled}\n    on: { entered: vip }\n    decide: ${decide}`), 'yaml');
        if (!result.ok) throw new Error(JSON.stringify(result.problems, null, 2));
        return result.catalog;
      };
      // The operator moved it from SMS to email during the night: the promotion goes out by email, under the send's own id.
      const email = decideDueSend(edited('{ channel: email }'), timer, dueChange(vip), { decisionKey: key })!;
      expect(email).toMatchObject({ id: timer.send, status: 'now', detail: { channel: 'email', actionId: 'promo-email' }, contact: { channel: 'email', actionId: 'promo-email' } });
      // And the new channel's policies hold: consent for email withdrawn, it is refused by that.
      expect(decideDueSend(edited('{ channel: email }'), timer, dueChange(customer({ consent: { sms: granted }, segments: ['vip'], traits: { tier: 'VIP', firstName: 'Ana' } })))).toMatchObject({ status: 'refused', detail: { channel: 'email', refused: 'consent' } });
      // Disabled, or removed: not decided at all.
      expect(decideDueSend(edited('{ channel: sms }', false), timer, dueChange(vip))).toBeUndefined();
      const removed = loadCatalog(TRIGGERS_YAML.replace("  - id: vip-in\n    on: { entered: vip }\n    decide: { channel: sms }\n", ''), 'yaml');
      if (!removed.ok) throw new Error(JSON.stringify(removed.problems));
      expect(decideDueSend(removed.catalog, timer, dueChange(vip))).toBeUndefined();
      // Through the reactor, the same.
      expect(createTriggerReactor(() => edited('{ channel: email }')).react(dueChange(vip))).toMatchObject([{ id: timer.send, detail: { channel: 'email' } }]);
      expect(createTriggerReactor(() => removed.catalog).react(dueChange(vip))).toEqual([]);
    });

    it('quiet hours holding again when it comes back: refused by them, never deferred a second time', () => {
      const entry = decideDueSend(small, timer, dueChange(vip, Date.parse('2026-11-24T23:00:00Z')))!;
      expect(entry).toMatchObject({ id: timer.send, status: 'refused', detail: { refused: 'quiet_hours', refusedBy: 'sms-night' } });
    });
  });

  it('refused by consent, by suppression (nothing else eligible), and past quiet hours by what holds then', () => {
    const noConsent = customer({ consent: {}, segments: ['vip'] });
    const refused = fireTrigger(small, trigger('vip-in'), change(customer(), noConsent));
    expect(refused).toMatchObject({ status: 'refused', detail: { refused: 'consent', refusedBy: 'sms' } });
    expect(refused.detail).not.toHaveProperty('content');
    const conflict = customer({ segments: ['vip', 'in-conflict'], stats: { openComplaints: 1 } });
    expect(fireTrigger(small, trigger('vip-in'), change(customer(), conflict))).toMatchObject({
      status: 'refused',
      detail: { refused: 'suppressed', refusedBy: 'no-promo-in-conflict' },
    });
    const night = Date.parse('2026-11-23T22:30:00Z');
    expect(fireTrigger(small, trigger('vip-in'), { ...change(customer(), noConsent), now: night })).toMatchObject({
      status: 'refused',
      detail: { refused: 'consent' },
    });
  });

  it('the seed scenario: a VIP who opens a complaint gets the call-centre service call, never a promotion', () => {
    const before = customer({ traits: { tier: 'VIP', firstName: 'Luis' }, segments: ['vip'], stats: { openComplaints: 0 } });
    const after = customer({ traits: { tier: 'VIP', firstName: 'Luis' }, segments: ['vip', 'in-conflict'], stats: { openComplaints: 1, returns: 1 } });
    const e = event('Complaint Opened');
    const fired = triggersFiring(catalog, change(before, after, e));
    expect(fired.map((t) => t.id)).toEqual(['vip-complaint-call']);
    const entry = fireTrigger(catalog, fired[0]!, change(before, after, e));
    expect(entry).toMatchObject({ status: 'now', detail: { channel: 'call_center', actionId: 'service-recovery-call' } });
    expect(String((entry.detail as { content: { script: string } }).content.script)).toContain('Luis');
  });
});

describe('the profile plan writes each firing with the event that caused it', () => {
  const enricher = createCatalogEnricher(() => small);
  const reactor = createTriggerReactor(() => small);
  const options = { settings: { halfLifeDays: 14 }, enricher, reactor, now: NOW.getTime() };
  const plan = (records: BatchRecord[], read: ReadState = emptyReadState(), planOptions: PlanOptions = options): BatchPlan => {
    let state = read;
    for (;;) {
      const result = planBatch(records, state, planOptions);
      if (result.kind === 'plan') return result.plan;
      const profiles = new Map(state.profiles);
      const applied = new Map(state.applied);
      const erasedAt = new Map(state.erasedAt);
      for (const k of result.reads.profiles) profiles.set(k, undefined);
      for (const k of result.reads.markers) applied.set(k, false);
      for (const k of result.reads.erasures) erasedAt.set(k, undefined);
      const erasedMessages = new Map(state.erasedMessages);
      for (const k of result.reads.erasedMessages) erasedMessages.set(k, false);
      state = { profiles, applied, erasedAt, erasedMessages };
    }
  };
  const at = (minutes: number) => new Date(NOW.getTime() - 60 * 60_000 + minutes * 60_000).toISOString();

  it('entering then leaving a segment in one batch: two firings, each keyed by its own event, in the profile\'s write', () => {
    const records: BatchRecord[] = [
      { id: '1', event: storedEvent({ type: 'identify', userId: 'u-1', messageId: 'm1', timestamp: at(1), traits: { tier: 'VIP' } }) },
      { id: '2', event: storedEvent({ type: 'track', event: 'Visit', userId: 'u-1', messageId: 'm2', timestamp: at(2) }) },
      { id: '3', event: storedEvent({ type: 'identify', userId: 'u-1', messageId: 'm3', timestamp: at(3), traits: { tier: 'gold' } }) },
    ];
    const result = plan(records);
    expect(result.targets).toHaveLength(1);
    const write = result.targets[0]!.writes[0]!;
    expect(write.outbox.map((e) => e.id)).toEqual(['vip-in.src-test#m1', 'vip-out.src-test#m3']);
    expect(write.markers).toEqual(['src-test#m1', 'src-test#m2', 'src-test#m3']);
  });

  it('a redelivered event (its marker read) sets nothing off', () => {
    const record: BatchRecord = { id: '1', event: storedEvent({ type: 'identify', userId: 'u-1', messageId: 'm1', timestamp: at(1), traits: { tier: 'VIP' } }) };
    const fresh = plan([record]);
    expect(fresh.targets[0]!.writes[0]!.outbox.map((e) => e.id)).toEqual(['vip-in.src-test#m1']);
    const read: ReadState = { profiles: new Map([['u#u-1', undefined]]), applied: new Map([['src-test#m1', true]]), erasedAt: new Map([['u#u-1', undefined]]), erasedMessages: new Map() };
    const again = plan([record], read);
    expect(again.targets).toEqual([]);
    expect(again.duplicates).toEqual(['1']);
  });

  it('a reactor that throws keeps the events flowing, with a warning', () => {
    const failing = {
      bound: () => 1,
      react: () => {
        throw new Error('boom');
      },
    };
    const records: BatchRecord[] = [{ id: '1', event: storedEvent({ type: 'track', event: 'Visit', userId: 'u-1', messageId: 'm1', timestamp: at(1) }) }];
    const result = plan(records, emptyReadState(), { ...options, reactor: failing });
    expect(result.targets[0]!.writes[0]!.outbox).toEqual([]);
    expect(result.targets[0]!.writes[0]!.markers).toEqual(['src-test#m1']);
    expect(result.warnings).toEqual([expect.objectContaining({ message: expect.stringContaining('boom') })]);
  });
});

describe('the VIP trap through the profile plan: a send deferred by quiet hours is decided on the profile as it is when due', () => {
  const NIGHT = Date.parse('2026-11-23T22:30:00Z');
  const END = Date.parse('2026-11-24T09:00:00Z');
  const key = decisionKey('k'.repeat(40));
  const optionsAt = (now: number): PlanOptions => ({
    settings: { halfLifeDays: 14 },
    enricher: createCatalogEnricher(() => small),
    reactor: createTriggerReactor(() => small, { decisionKey: key }),
    now,
  });
  const track = (messageId: string, name: string, at: number, properties: Record<string, unknown> = {}): StoredEvent =>
    storedEvent({ type: 'track', userId: 'u-1', messageId, event: name, timestamp: new Date(at).toISOString(), properties });
  /** At 22:30 the customer consents to sms and becomes a VIP: the promotion's send falls in quiet hours. */
  const evening = (): MemoryStore => {
    const store = deliver(
      [[track('consent', 'Consent Updated', NIGHT - 60_000, { channel: 'sms', granted: true }), storedEvent({ type: 'identify', userId: 'u-1', messageId: 'vip', timestamp: new Date(NIGHT).toISOString(), traits: { tier: 'VIP', firstName: 'Ana' } })]],
      [],
      () => optionsAt(NIGHT),
    );
    expect(store.outbox.map((e) => [e.detailType, e.status, e.sendAt])).toEqual([['Kairos Send Timer', 'deferred', END]]);
    return store;
  };
  const contacts = (store: MemoryStore) => parseProfileState(store.profiles.get('u#u-1')!.state).channels.sms?.contacts ?? [];
  const fire = (store: MemoryStore, times = 1): void => {
    const due = timerEventOfDetail(store.outbox[0]!.detail, END, 1)!;
    deliver(Array.from({ length: times }, () => [due]), [], (b) => optionsAt(END + b * 1000), store);
  };

  it('a return and a complaint at 02:00: at 09:00 the promotion is refused (suppressed), no contact, nothing with content', () => {
    const store = evening();
    deliver([[track('refund', 'Order Refunded', NIGHT + 3.5 * 3_600_000), track('complaint', 'Complaint Opened', NIGHT + 3.5 * 3_600_000)]], [], () => optionsAt(NIGHT + 3.5 * 3_600_000), store);
    fire(store);
    // (The return also sets off the risk trigger on email, refused: no consent there.)
    const decided = store.outbox.filter((e) => e.detail.trigger === 'vip-in');
    expect(decided.map((e) => [e.id, e.status, e.detail.refused, e.detail.refusedBy])).toEqual([['vip-in.src-test#vip', 'refused', 'suppressed', 'no-promo-in-conflict']]);
    expect(store.outbox.filter((e) => e.status !== 'refused').map((e) => e.detailType)).toEqual(['Kairos Send Timer']);
    expect(contacts(store)).toEqual([]);
  });

  it('nothing changed: at 09:00 the promotion is sent with its content and a sealed decision id, one contact however often the timer comes back', () => {
    const store = evening();
    fire(store, 3);
    const decided = store.outbox.filter((e) => e.detailType === 'Kairos Trigger Action');
    expect(decided.map((e) => [e.id, e.status, e.sendAt, e.detail.actionId, e.detail.content])).toEqual([['vip-in.src-test#vip', 'now', END, 'promo-sms', { text: 'Oferta para Ana' }]]);
    expect(openDecisionId(decided[0]!.detail.decisionId as string, key)).toBeDefined();
    expect(contacts(store)).toEqual([END]);
    expect(store.outboxRefusals).toBe(0);
  });
});
