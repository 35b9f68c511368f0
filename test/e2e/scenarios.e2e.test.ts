/**
 * The seed scenarios of CATALOG.md, end to end on the local stack with the
 * demo catalog (catalog/demo.yaml): events in through POST /v1/batch with
 * the write key (Segment message format), the profile read back through the
 * operator's route until it reflects them (polling, no fixed sleeps), and the
 * decision out of POST /v1/decide.
 *
 * Time-relative facts (a last purchase more than a month ago, a three-year
 * tenure, a long silence) come from events with past timestamps, inside the
 * history TTL, or from traits such as createdAt.
 *
 * Each test uses its own customers, so the tests are independent and the
 * requests inside a test run in parallel where their order does not matter.
 *
 * Every decision is asked twice: as a back-end does (the server key, the
 * full answer the scenarios check) and as a page or an app does (the public
 * key, with a user token for a userId). The last test scans every public
 * answer for what a public key must never read (API.md §1, §4).
 */
import { readFile } from 'node:fs/promises';
import { afterAll, assert, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import type { Channel } from '#domain/channels.ts';
import { openStack } from './fixtures/stack.ts';
import {
  actionIds,
  call,
  countOf,
  daysAgo,
  decide as decideWithServerKey,
  decidePublic,
  ensureDemoCatalog,
  getProfile,
  identify,
  isFallback,
  page,
  pastDecisionId,
  sendEvents,
  track,
  uniqueId,
  waitForProfile,
  type Decision,
  type DecideRequest,
  type Message,
  type RunningStack,
  type Who,
} from './fixtures/kairos.ts';

const DEMO_CATALOG = new URL('../../catalog/demo.yaml', import.meta.url);
const CHANNELS = ['web', 'app', 'push', 'email', 'sms', 'call_center'] as const;

let api: RunningStack;
/** Ids of the demo catalog's actions carrying the `promo` tag, and of those carrying `vip`. */
let promoActions: Set<string>;
let vipActions: Set<string>;

interface CatalogDocument {
  segments?: { id: string }[];
  personas?: { id: string }[];
  actions: { id: string; tags?: string[]; variants?: { id: string; content: Record<string, unknown> }[]; content: Record<string, unknown> }[];
  arbitration?: { placements?: { channel: string; placement?: string; learning?: boolean }[] };
  learning?: { enabled?: boolean; exploration?: number; floor?: number };
}

beforeAll(async () => {
  api = await openStack();
  const yaml = await readFile(DEMO_CATALOG, 'utf8');
  await ensureDemoCatalog(api, yaml);
  const document = parseYaml(yaml) as CatalogDocument;
  promoActions = new Set(document.actions.filter((a) => a.tags?.includes('promo')).map((a) => a.id));
  vipActions = new Set(document.actions.filter((a) => a.tags?.includes('vip')).map((a) => a.id));
  catalogIds = [...(document.segments ?? []), ...(document.personas ?? [])].map((x) => x.id);
});

/** The segment and persona ids of the demo catalog. */
let catalogIds: string[] = [];
/** Every public-key answer of the scenarios, with the request it answered. */
const publicAnswers: { request: DecideRequest; status: number; text: string }[] = [];
const PUBLIC_CHANNELS = new Set(['web', 'app', 'push']);

/**
 * A scenario's decision: the server key's answer, which the scenario checks;
 * the same request with the public key (explain left out, a user token for a
 * userId) is kept for the scan.
 */
async function decide(stack: RunningStack, request: DecideRequest): Promise<Decision> {
  const { explain: _explain, ...asPage } = request;
  const [full, asPublic] = await Promise.all([decideWithServerKey(stack, request), decidePublic(stack, asPage)]);
  publicAnswers.push({ request: asPage, status: asPublic.status, text: asPublic.text });
  return full;
}

afterAll(async () => {
  await api?.stop();
});

const user = (prefix: string): Who & { userId: string } => ({ userId: uniqueId(prefix) });
const consent = (who: Who, channel: string, granted: boolean, timestamp?: string): Message =>
  track(who, 'Consent Updated', { channel, granted }, timestamp);
const grantAll = (who: Who, timestamp?: string): Message[] =>
  ['email', 'push', 'sms'].map((channel) => consent(who, channel, true, timestamp));

/** Decide on every channel at once (web and app on the home placement). */
async function decideEverywhere(userId: string): Promise<Record<(typeof CHANNELS)[number], Decision>> {
  const decisions = await Promise.all(
    CHANNELS.map((channel) =>
      decide(api, { userId, channel, ...(channel === 'web' ? { placement: 'home' } : {}), limit: 10, explain: true }),
    ),
  );
  return Object.fromEntries(CHANNELS.map((channel, i) => [channel, decisions[i]])) as Record<(typeof CHANNELS)[number], Decision>;
}

const label = (decision: Decision): string =>
  `${decision.channel}/${decision.placement ?? '-'}: ${JSON.stringify(decision.actions.map((a) => a.actionId))} segments=${JSON.stringify(decision.segments)} persona=${decision.persona}${decision.degraded ? " (degraded)" : ""}`;

/** The first action of the decision is `actionId`, not as a fallback. */
function expectTop(decision: Decision, actionId: string): void {
  assert.strictEqual(decision.actions[0]?.actionId, actionId, label(decision));
  assert.isFalse(isFallback(decision, decision.actions[0]), `${actionId} must be chosen, not a fallback: ${label(decision)}`);
}

describe('seed scenarios (catalog/demo.yaml)', () => {
  it('1. template personalisation: "Estimado Luis" with a first name, "Estimado cliente" without', async () => {
    const luis = user('s1-luis');
    const anonymous = user('s1-noname');
    await sendEvents(api, [
      identify(luis, { firstName: 'Luis', email: 'luis@example.com' }),
      consent(luis, 'email', true),
      identify(anonymous, { email: 'someone@example.com' }),
      consent(anonymous, 'email', true),
    ]);
    await Promise.all([
      waitForProfile(api, luis.userId, (p) => p.traits.firstName === 'Luis' && p.consent.email?.granted === true),
      waitForProfile(api, anonymous.userId, (p) => p.consent.email?.granted === true),
    ]);
    const [forLuis, forSomeone] = await Promise.all([
      decide(api, { userId: luis.userId, channel: 'email' }),
      decide(api, { userId: anonymous.userId, channel: 'email' }),
    ]);
    expect(forLuis.channel).toBe('email');
    expect(forLuis.actions).toHaveLength(1);
    expect(forLuis.actions[0]?.content.greeting).toBe('Estimado Luis');
    expect(forSomeone.actions).toHaveLength(1);
    expect(forSomeone.actions[0]?.actionId).toBe(forLuis.actions[0]?.actionId);
    expect(forSomeone.actions[0]?.content.greeting).toBe('Estimado cliente');
    // The Liquid source never leaks to a customer.
    expect(JSON.stringify([forLuis.actions, forSomeone.actions])).not.toMatch(/\{\{|\{%/);
  });

  it('2. segmentation rule: a VIP whose last purchase is more than a month old gets email 123 on email', async () => {
    const lapsed = user('s2-vip-lapsed');
    const recent = user('s2-vip-recent');
    await sendEvents(api, [
      identify(lapsed, { firstName: 'Ana', tier: 'VIP' }, daysAgo(60)),
      consent(lapsed, 'email', true, daysAgo(60)),
      track(lapsed, 'Order Completed', { order_id: 'o-1', revenue: 180 }, daysAgo(45)),
      identify(recent, { firstName: 'Eva', tier: 'VIP' }, daysAgo(60)),
      consent(recent, 'email', true, daysAgo(60)),
      track(recent, 'Order Completed', { order_id: 'o-2', revenue: 180 }, daysAgo(45)),
      track(recent, 'Order Completed', { order_id: 'o-3', revenue: 90 }, daysAgo(5)),
    ]);
    await Promise.all([
      waitForProfile(api, lapsed.userId, (p) => p.stats.orders === 1 && p.consent.email?.granted === true && p.traits.tier === 'VIP'),
      waitForProfile(api, recent.userId, (p) => p.stats.orders === 2 && p.consent.email?.granted === true && p.traits.tier === 'VIP'),
    ]);
    const [forLapsed, forRecent] = await Promise.all([
      decide(api, { userId: lapsed.userId, channel: 'email' }),
      decide(api, { userId: recent.userId, channel: 'email', limit: 10 }),
    ]);
    expect(forLapsed.channel).toBe('email');
    expectTop(forLapsed, 'vip-winback-email-123');
    expect(forLapsed.actions[0]?.content.templateId).toBe('123');
    expect(forLapsed.actions[0]?.content.greeting).toBe('Estimado Ana');
    // A VIP who bought five days ago is not lapsed.
    expect(actionIds(forRecent)).not.toContain('vip-winback-email-123');
  });

  it('3. behavioural rule: an anonymous visitor with more than 10 visits today gets bannerMegaOferta on web home', async () => {
    const eleven = { anonymousId: uniqueId('s3-anon-11') };
    const ten = { anonymousId: uniqueId('s3-anon-10') };
    await sendEvents(api, [
      ...Array.from({ length: 11 }, () => page(eleven)),
      ...Array.from({ length: 10 }, () => page(ten)),
      // Visits of yesterday do not count today.
      ...Array.from({ length: 5 }, () => page(ten, {}, daysAgo(1.5))),
    ]);
    await Promise.all([
      waitForProfile(api, { anonymousId: eleven.anonymousId }, (p) => p.stats.visitsToday === 11),
      waitForProfile(api, { anonymousId: ten.anonymousId }, (p) => p.stats.visitsTotal === 15),
    ]);
    const [forEleven, forTen] = await Promise.all([
      decide(api, { anonymousId: eleven.anonymousId, channel: 'web', placement: 'home' }),
      decide(api, { anonymousId: ten.anonymousId, channel: 'web', placement: 'home', limit: 10 }),
    ]);
    expectTop(forEleven, 'bannerMegaOferta');
    expect(forEleven.channel).toBe('web');
    expect(typeof forEleven.actions[0]?.content.title).toBe('string');
    expect(actionIds(forTen)).not.toContain('bannerMegaOferta');
    // With nothing eligible, the home slot is filled by the catalog's fallback.
    expect(forTen.actions.length).toBeGreaterThan(0);
    expect(isFallback(forTen, forTen.actions[0])).toBe(true);
  });

  it('4. the segmentation trap: no VIP promotion on any channel while a complaint is open; service recovery instead; back once resolved', async () => {
    const vip = user('s4-vip');
    await sendEvents(api, [
      identify(vip, { firstName: 'Carmen', tier: 'VIP' }, daysAgo(60)),
      ...grantAll(vip, daysAgo(60)),
      track(vip, 'Order Completed', { order_id: 'o-4', revenue: 250 }, daysAgo(40)),
      track(vip, 'Order Refunded', { order_id: 'o-4' }, daysAgo(35)),
      track(vip, 'Complaint Opened', { complaint_id: 'c-1', reason: 'damaged item' }, daysAgo(34)),
    ]);
    await waitForProfile(api, vip.userId, (p) => p.stats.openComplaints === 1 && p.stats.returns === 1 && p.consent.sms?.granted === true);

    const open = await decideEverywhere(vip.userId);
    for (const channel of CHANNELS) {
      const decision = open[channel];
      expect(decision.channel).toBe(channel);
      const promos = actionIds(decision).filter((id) => promoActions.has(id) || vipActions.has(id));
      assert.deepEqual(promos, [], `no promotion while the complaint is open: ${label(decision)}`);
    }
    // Every touchpoint tells the same story: service recovery.
    expectTop(open.call_center, 'service-recovery-call');
    expect(String(open.call_center.actions[0]?.content.script)).toContain('Carmen');
    expectTop(open.email, 'apology-email');
    expect(open.email.actions[0]?.content.greeting).toBe('Estimado Carmen');
    // The VIP offers were candidates, dropped by the policy (not merely outranked).
    const dropped = open.email.explanation?.candidates.find((c) => c.actionId === 'vip-winback-email-123');
    expect(dropped?.eligible).toBe(false);

    await sendEvents(api, [track(vip, 'Complaint Resolved', { complaint_id: 'c-1' }, daysAgo(1))]);
    await waitForProfile(api, vip.userId, (p) => p.stats.openComplaints === 0);
    const resolved = await decideEverywhere(vip.userId);
    expectTop(resolved.email, 'vip-winback-email-123');
    expect(resolved.email.actions[0]?.content.templateId).toBe('123');
    expectTop(resolved.web, 'vip-lounge-banner');
    expect(actionIds(resolved.call_center)).not.toContain('service-recovery-call');
    expect(actionIds(resolved.email)).not.toContain('apology-email');
  });

  it('5. personas: the sporty student gets push and fewer emails; the same profile as a loyal high-end buyer gets another persona and action', async () => {
    const student = user('s5-student');
    const premium = user('s5-premium');
    const studentTraits = { firstName: 'Dani', gender: 'male', age: 19, occupation: 'student' };
    const preferences = { interests: ['sport'], preferred_channel: 'push' };
    await sendEvents(api, [
      identify(student, studentTraits),
      ...grantAll(student),
      track(student, 'Preferences Updated', preferences),
      // The same, and: a customer for more than three years, high-end orders, visits often.
      identify(premium, { ...studentTraits, createdAt: daysAgo(3 * 365 + 30) }),
      ...grantAll(premium),
      track(premium, 'Preferences Updated', preferences),
      track(premium, 'Order Completed', { order_id: 'o-5a', revenue: 900 }, daysAgo(20)),
      track(premium, 'Order Completed', { order_id: 'o-5b', revenue: 650 }, daysAgo(6)),
      ...Array.from({ length: 10 }, (_, i) => page(premium, {}, daysAgo(i + 0.5))),
    ]);
    const [studentProfile, premiumProfile] = await Promise.all([
      waitForProfile(api, student.userId, (p) => p.preferences.interests.includes('sport') && p.consent.push?.granted === true && p.consent.email?.granted === true && p.traits.age === 19),
      waitForProfile(
        api,
        premium.userId,
        (p) => p.stats.orders === 2 && p.stats.visitsTotal === 10 && p.preferences.interests.includes('sport') && p.consent.push?.granted === true && p.consent.email?.granted === true,
      ),
    ]);
    expect(studentProfile.persona).toBe('student-sport');
    expect(premiumProfile.persona).toBe('premium-loyal');

    const [studentPush, studentEmail, premiumPush] = await Promise.all([
      decide(api, { userId: student.userId, channel: 'push' }),
      decide(api, { userId: student.userId, channel: 'email', limit: 10 }),
      decide(api, { userId: premium.userId, channel: 'push' }),
    ]);
    expect(studentPush.persona).toBe('student-sport');
    expectTop(studentPush, 'sport-drop-push');
    const push = studentPush.actions[0]?.content ?? {};
    expect(push.title).toBe('Nuevo drop deportivo, Dani');
    expect(typeof push.body).toBe('string');
    expect(typeof push.deepLink).toBe('string');
    // Fewer emails: no newsletter for the sporty student who prefers push.
    expect(actionIds(studentEmail)).not.toContain('newsletter');

    expect(premiumPush.persona).toBe('premium-loyal');
    expectTop(premiumPush, 'premium-preview');
    expect(premiumPush.actions[0]?.actionId).not.toBe(studentPush.actions[0]?.actionId);
  });

  it('6. channel preference: an 18-year-old who taps pushes is reached by push; a 50-year-old who reads emails, by email', async () => {
    const young = user('s6-young');
    const senior = user('s6-senior');
    // Outcomes of earlier campaigns (old enough not to count against this week's channel caps), each
    // naming the decision the stack made then.
    const outcome = (who: Who & { userId: string }, event: string, days: number, decided: { days: number; channel: Channel; nonce: string }): Message =>
      track(
        who,
        event,
        {
          decision_id: pastDecisionId(api, { channel: decided.channel, issuedAt: new Date(daysAgo(decided.days)), actionIds: ['campaign-spring'], nonce: decided.nonce, customer: who.userId }),
          action_id: 'campaign-spring',
          campaign: 'spring',
        },
        daysAgo(days),
      );
    const history = (who: Who & { userId: string }, received: string, engaged: string | undefined) => {
      const channel: Channel = received.startsWith('Push') ? 'push' : 'email';
      return [12, 14, 16].flatMap((days, n) => {
        const decided = { days, channel, nonce: `${uniqueId('h')}-${n}` };
        return [outcome(who, received, days, decided), ...(engaged ? [outcome(who, engaged, days - 0.01, decided)] : [])];
      });
    };
    await sendEvents(api, [
      identify(young, { firstName: 'Leo', age: 18 }),
      ...grantAll(young),
      ...history(young, 'Push Notification Received', 'Push Notification Tapped'),
      identify(senior, { firstName: 'Marta', age: 50 }),
      ...grantAll(senior),
      ...history(senior, 'Email Opened', 'Email Link Clicked'),
      ...history(senior, 'Push Notification Received', undefined),
    ]);
    await Promise.all([
      waitForProfile(api, young.userId, (p) => (p.engagement.push?.engaged ?? 0) === 3 && p.consent.email?.granted === true && p.consent.push?.granted === true),
      waitForProfile(
        api,
        senior.userId,
        (p) => (p.engagement.email?.engaged ?? 0) === 3 && (p.engagement.push?.delivered ?? 0) === 3 && p.consent.email?.granted === true && p.consent.push?.granted === true,
      ),
    ]);
    const [youngPush, youngEmail, seniorPush, seniorEmail] = await Promise.all([
      decide(api, { userId: young.userId, channel: 'push', limit: 10 }),
      decide(api, { userId: young.userId, channel: 'email', limit: 10 }),
      decide(api, { userId: senior.userId, channel: 'push', limit: 10 }),
      decide(api, { userId: senior.userId, channel: 'email', limit: 10 }),
    ]);
    expectTop(youngPush, 'weekly-picks');
    expect(youngPush.actions[0]?.content.deepLink).toEqual(expect.any(String));
    expect(actionIds(youngEmail)).not.toContain('weekly-picks');
    expectTop(seniorEmail, 'weekly-picks');
    expect(seniorEmail.actions[0]?.content.greeting).toBe('Estimado Marta');
    expect(actionIds(seniorPush)).not.toContain('weekly-picks');
  });

  it('7. context: with rain the rainy-day recipe card wins on the web; season and location drive a rule too', async () => {
    const visitor = { anonymousId: uniqueId('s7-visitor') };
    await sendEvents(api, [page(visitor)]);
    await waitForProfile(api, { anonymousId: visitor.anonymousId }, (p) => p.stats.visitsTotal === 1);
    const ask = (context: Record<string, unknown>) =>
      decide(api, { anonymousId: visitor.anonymousId, channel: 'web', placement: 'home', context });
    const [rain, dry, summer, rainySummer] = await Promise.all([
      ask({ weather: 'rain', city: 'Bilbao', country: 'ES' }),
      ask({ weather: 'sunny', city: 'Bilbao' }),
      ask({ season: 'summer', weather: 'sunny' }),
      ask({ season: 'summer', weather: 'rain' }),
    ]);
    expectTop(rain, 'recipe-rainy-day');
    // The context is rendered into the card.
    expect(String(rain.actions[0]?.content.body)).toContain('Bilbao');
    expect(actionIds(dry)).not.toContain('recipe-rainy-day');
    expectTop(summer, 'summer-ice-cream');
    expectTop(rainySummer, 'recipe-rainy-day');
  });

  it('8. churn: long silence, fewer visits and a return give churnRisk above the threshold and a retention offer', async () => {
    const leaving = user('s8-leaving');
    const active = user('s8-active');
    await sendEvents(api, [
      // Every event of the leaving customer is old: the last one, a return, 70 days ago.
      identify(leaving, { firstName: 'Rosa' }, daysAgo(85)),
      ...grantAll(leaving, daysAgo(85)),
      ...[84, 83, 80].map((d) => page(leaving, {}, daysAgo(d))),
      track(leaving, 'Order Completed', { order_id: 'o-8', revenue: 120 }, daysAgo(80)),
      track(leaving, 'Order Refunded', { order_id: 'o-8' }, daysAgo(70)),
      // The same start, but still visiting and buying.
      identify(active, { firstName: 'Pilar' }, daysAgo(85)),
      ...grantAll(active, daysAgo(85)),
      ...[84, 83, 80].map((d) => page(active, {}, daysAgo(d))),
      track(active, 'Order Completed', { order_id: 'o-9', revenue: 120 }, daysAgo(80)),
      track(active, 'Order Refunded', { order_id: 'o-9' }, daysAgo(70)),
      ...Array.from({ length: 12 }, (_, i) => page(active, {}, daysAgo(i * 2 + 0.2))),
      track(active, 'Order Completed', { order_id: 'o-10', revenue: 80 }, daysAgo(3)),
    ]);
    const [leavingProfile, activeProfile] = await Promise.all([
      waitForProfile(api, leaving.userId, (p) => p.stats.returns === 1 && p.stats.visitsTotal === 3 && p.consent.email?.granted === true),
      waitForProfile(api, active.userId, (p) => p.stats.returns === 1 && p.stats.visitsTotal === 15 && p.stats.orders === 2),
    ]);
    assert.isAbove(leavingProfile.scores.churnRisk ?? -1, 0.6, `scores of the leaving customer: ${JSON.stringify(leavingProfile.scores)}`);
    assert.isBelow(activeProfile.scores.churnRisk ?? 2, 0.6, `scores of the active customer: ${JSON.stringify(activeProfile.scores)}`);
    expect(leavingProfile.segments).toContain('churn-risk');
    expect(activeProfile.segments).not.toContain('churn-risk');

    const [leavingEmail, leavingWeb, activeEmail] = await Promise.all([
      decide(api, { userId: leaving.userId, channel: 'email' }),
      decide(api, { userId: leaving.userId, channel: 'web', placement: 'home' }),
      decide(api, { userId: active.userId, channel: 'email', limit: 10 }),
    ]);
    expectTop(leavingEmail, 'retention-offer');
    expect(leavingEmail.actions[0]?.content.greeting).toBe('Estimado Rosa');
    expectTop(leavingWeb, 'retention-offer');
    expect(actionIds(activeEmail)).not.toContain('retention-offer');
  });

  it('9. zero-party data: after saying they like cycling, not running, the customer gets cycling content from then on', async () => {
    const rider = user('s9-rider');
    await sendEvents(api, [
      identify(rider, { firstName: 'Iker' }),
      // Behaviour says running…
      ...Array.from({ length: 3 }, (_, i) => track(rider, 'Product Viewed', { product_id: `r-${i}`, category: 'running' }, daysAgo(2))),
    ]);
    await waitForProfile(api, rider.userId, (p) => countOf(p, 'Product Viewed') === 3);
    const before = await decide(api, { userId: rider.userId, channel: 'web', placement: 'home' });
    expectTop(before, 'running-content');

    // …the customer says cycling.
    await sendEvents(api, [track(rider, 'Preferences Updated', { interests: ['cycling'] }, daysAgo(1))]);
    await waitForProfile(api, rider.userId, (p) => p.preferences.interests.includes('cycling'));
    const after = await decide(api, { userId: rider.userId, channel: 'web', placement: 'home', limit: 10 });
    expectTop(after, 'cycling-content');
    expect(actionIds(after)).not.toContain('running-content');

    // From then on: more running behaviour does not override what the customer said.
    await sendEvents(api, Array.from({ length: 3 }, (_, i) => track(rider, 'Product Viewed', { product_id: `r2-${i}`, category: 'running' })));
    await waitForProfile(api, rider.userId, (p) => countOf(p, 'Product Viewed') === 6);
    const later = await decide(api, { userId: rider.userId, channel: 'web', placement: 'home', limit: 10 });
    expectTop(later, 'cycling-content');
    expect(actionIds(later)).not.toContain('running-content');
  });

  it('10. consent: after Consent Updated {email, granted: false} no email action is ever returned', async () => {
    const customer = user('s10-consent');
    // A customer with every reason to get emails: VIP, lapsed, a name.
    await sendEvents(api, [
      identify(customer, { firstName: 'Sofía', tier: 'VIP' }, daysAgo(50)),
      consent(customer, 'email', true, daysAgo(50)),
      track(customer, 'Order Completed', { order_id: 'o-11', revenue: 300 }, daysAgo(40)),
    ]);
    await waitForProfile(api, customer.userId, (p) => p.consent.email?.granted === true && p.stats.orders === 1);
    const granted = await decide(api, { userId: customer.userId, channel: 'email', limit: 10 });
    expect(granted.actions.length).toBeGreaterThan(0);

    await sendEvents(api, [consent(customer, 'email', false, daysAgo(1))]);
    await waitForProfile(api, customer.userId, (p) => p.consent.email?.granted === false);
    const withdrawn = await decide(api, { userId: customer.userId, channel: 'email', limit: 10, explain: true });
    expect(withdrawn.actions).toEqual([]);
    // Every email candidate was dropped, none merely outranked.
    for (const candidate of withdrawn.explanation?.candidates ?? []) expect(candidate.eligible).toBe(false);

    // Ever: an older "granted" delivered late, more activity, a complaint opened and resolved — still no email.
    await sendEvents(api, [
      consent(customer, 'email', true, daysAgo(10)),
      page(customer),
      track(customer, 'Complaint Opened', { complaint_id: 'c-10' }, daysAgo(0.5)),
      track(customer, 'Complaint Resolved', { complaint_id: 'c-10' }, daysAgo(0.2)),
    ]);
    await waitForProfile(api, customer.userId, (p) => p.stats.visitsTotal === 1 && countOf(p, 'Complaint Resolved') === 1);
    const [emailLater, simulated, webLater] = await Promise.all([
      decide(api, { userId: customer.userId, channel: 'email', limit: 10 }),
      call<Decision>(api, 'POST', '/v1/admin/simulate', { auth: 'admin', body: { userId: customer.userId, channel: 'email', limit: 10 } }),
      decide(api, { userId: customer.userId, channel: 'web', placement: 'home' }),
    ]);
    expect(emailLater.actions).toEqual([]);
    assert.strictEqual(simulated.status, 200, simulated.text);
    expect(simulated.json.actions).toEqual([]);
    // Other channels are not affected.
    expect(webLater.actions.length).toBeGreaterThan(0);
  });

  it('11. test and learn: the two banner variants and the experiment are valid catalog parts, served on the hero banner', async () => {
    const yaml = await readFile(DEMO_CATALOG, 'utf8');
    const document = parseYaml(yaml) as CatalogDocument;
    const banner = document.actions.find((a) => a.id === 'spring-sale-banner');
    expect(banner?.variants?.map((v) => v.id)).toEqual(['a', 'b']);
    expect(document.learning?.enabled).toBe(true);
    expect(document.learning?.exploration).toBeGreaterThan(0);
    expect(document.learning?.floor).toBeGreaterThan(0);
    const hero = document.arbitration?.placements?.find((p) => p.channel === 'web' && p.placement === 'home_hero');
    expect(hero?.learning).toBe(true);

    // Only the test-and-learn parts, as their own catalog: valid.
    const parts = {
      kind: 'kairos/v1',
      tags: [{ id: 'promo' }],
      actions: [banner],
      arbitration: { placements: [hero] },
      learning: document.learning,
    };
    const [whole, onlyParts] = await Promise.all([
      call(api, 'POST', '/v1/admin/catalog/validate', { auth: 'admin', body: yaml, headers: { 'content-type': 'application/yaml' } }),
      call(api, 'POST', '/v1/admin/catalog/validate', { auth: 'admin', body: parts }),
    ]);
    assert.strictEqual(whole.status, 200, whole.text.slice(0, 500));
    assert.strictEqual(onlyParts.status, 200, onlyParts.text.slice(0, 500));

    // A variant with a dangling experiment reference is refused (the checks are real).
    const broken = { ...parts, experiments: [{ id: 'x', kind: 'variants', action: 'spring-sale-banner', arms: [{ id: 'a', variant: 'a' }, { id: 'z', variant: 'zzz' }] }] };
    const refused = await call(api, 'POST', '/v1/admin/catalog/validate', { auth: 'admin', body: broken });
    assert.strictEqual(refused.status, 400, refused.text.slice(0, 500));

    // The hero banner serves one of the two variants, with its own content.
    const visitors = Array.from({ length: 8 }, () => uniqueId('s11-visitor'));
    const decisions = await Promise.all(visitors.map((anonymousId) => decide(api, { anonymousId, channel: 'web', placement: 'home_hero' })));
    const titles = new Map(banner?.variants?.map((v) => [v.id, (v.content.web as { title: string }).title]));
    for (const decision of decisions) {
      expectTop(decision, 'spring-sale-banner');
      const served = decision.actions[0];
      expect(['a', 'b']).toContain(served?.variant);
      expect(served?.content.title).toBe(titles.get(served?.variant ?? ''));
    }
  });
});

/** The string and number values of traits, nested ones included (address.city). */
function traitValues(traits: unknown): string[] {
  const values: string[] = [];
  const stack: unknown[] = [traits];
  while (stack.length > 0) {
    const value = stack.pop();
    if (typeof value === 'string' || typeof value === 'number') values.push(String(value));
    else if (value && typeof value === 'object') stack.push(...Object.values(value));
  }
  return values;
}

/** `token` as a whole id or word in `text`: not inside a longer id (the segment `vip` is not in `vip-lounge-banner`). */
const containsToken = (text: string, token: string) =>
  new RegExp(`(?<![A-Za-z0-9_-])${token.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z0-9_-])`).test(text);

describe('a public key without a user token decides on the anonymous visitor only', () => {
  it("an identify joining an anonymousId to someone else's userId does not open her profile to that anonymousId", async () => {
    const victim = user('victim');
    const attacker = { anonymousId: uniqueId('attacker-anon') };
    const stranger = { anonymousId: uniqueId('stranger-anon') };
    const home = { channel: 'web' as const, placement: 'home' };
    const hasVip = (decision: Decision) => actionIds(decision).some((id) => vipActions.has(id));
    await sendEvents(api, [identify(victim, { firstName: 'Victoria', tier: 'VIP' })]);
    await waitForProfile(api, victim.userId, (p) => p.traits.tier === 'VIP');
    // Anyone holding the public key can send this: events need no user token (API.md §1).
    await sendEvents(api, [identify({ ...victim, ...attacker }, {})]);
    // A back-end (server key) decides on the profile the anonymousId joined: the victim's, once the join is applied.
    const deadline = Date.now() + 30_000;
    let joined = await decideWithServerKey(api, { ...attacker, ...home });
    while (!hasVip(joined) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      joined = await decideWithServerKey(api, { ...attacker, ...home });
    }
    assert.isTrue(hasVip(joined), `the join was never applied: ${label(joined)}`);

    // The page, with the public key and no token, gets what any new visitor gets: nothing of hers.
    const [asAttacker, asStranger, asVictim] = await Promise.all([
      decidePublic(api, { ...attacker, ...home }),
      decidePublic(api, { ...stranger, ...home }),
      decidePublic(api, { ...victim, ...home }), // her own page, with her user token
    ]);
    expect([asAttacker.status, asStranger.status, asVictim.status]).toEqual([200, 200, 200]);
    expect(actionIds(asAttacker.json)).toEqual(actionIds(asStranger.json));
    expect(hasVip(asAttacker.json)).toBe(false);
    expect(asAttacker.text).not.toContain('Victoria');
    expect(hasVip(asVictim.json)).toBe(true);
    expect(asVictim.text).toContain('Victoria');
  });
});

describe('public-key answers of the seed scenarios', () => {
  it('carry no trait value, segment id or persona id outside the rendered content of web, app and push actions', async () => {
    expect(publicAnswers.length).toBeGreaterThan(40);
    const profiles = new Map<string, Awaited<ReturnType<typeof getProfile>>>();
    for (const { request } of publicAnswers) {
      const id = request.userId ?? request.anonymousId ?? '';
      if (!profiles.has(id)) profiles.set(id, await getProfile(api, request.userId ?? { anonymousId: id }));
    }
    let scanned = 0;
    for (const { request, status, text } of publicAnswers) {
      const where = `${JSON.stringify(request)} → ${status} ${text.slice(0, 400)}`;
      if (!PUBLIC_CHANNELS.has(request.channel)) {
        assert.strictEqual(status, 403, where);
        continue;
      }
      assert.strictEqual(status, 200, where);
      const profile = profiles.get(request.userId ?? request.anonymousId ?? '');
      const secrets = new Set(
        [...catalogIds, ...(profile?.segments ?? []), ...(profile?.persona ? [profile.persona] : []), ...traitValues(profile?.traits)].filter(
          (token) => token.length >= 2,
        ),
      );
      const answer = JSON.parse(text) as { decisionId: string; actions: { content: unknown }[] } & Record<string, unknown>;
      assert.match(answer.decisionId, /^d2\.[A-Za-z0-9_-]+$/, where);
      // The raw text, with the content of each action (what the customer is shown) and the sealed id taken out.
      let outside = text;
      for (const action of answer.actions) outside = outside.replace(JSON.stringify(action.content), '{}');
      outside = outside.replace(answer.decisionId, 'd2.');
      const sealedBytes = Buffer.from(answer.decisionId.slice(3), 'base64url').toString('latin1');
      for (const token of secrets) {
        assert.isFalse(containsToken(outside, token), `"${token}" in a public answer: ${where}`);
        // The sealed id is random-looking text: a long enough token cannot be there by chance.
        if (token.length >= 5) {
          assert.notInclude(answer.decisionId, token, where);
          assert.notInclude(sealedBytes, token, where);
        }
      }
      assert.deepEqual(
        Object.keys(answer).filter((k) => !['decisionId', 'channel', 'placement', 'actions', 'fallback', 'degraded'].includes(k)),
        [],
        where,
      );
      scanned++;
    }
    expect(scanned).toBeGreaterThan(20);
  });
});
