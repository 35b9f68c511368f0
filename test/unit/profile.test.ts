/**
 * What events do to a profile (API.md §2): one test per row of the effects
 * table, the view's time windows in a customer's time zone, and the bounds.
 */
import { describe, expect, it } from 'vitest';
import { applyEvents, mergeProfiles } from '#domain/profile/apply.ts';
import { LIMITS, emptyProfileState, serializeProfileState, type ProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { storedEvent, type EventInput } from '../support/stream.ts';
import { decisionId } from './profile-support.ts';

const settings = { halfLifeDays: 14 };
let n = 0;
const ev = (input: Omit<EventInput, 'messageId' | 'userId'> & { userId?: string }) =>
  storedEvent({ userId: 'u-1', messageId: `m-${++n}`, ...input });
const track = (event: string, timestamp: string, properties?: Record<string, unknown>) =>
  ev({ type: 'track', event, timestamp, ...(properties ? { properties } : {}) });
const apply = (events: ReturnType<typeof ev>[], state: ProfileState = emptyProfileState({ userId: 'u-1' })) =>
  applyEvents(state, events, settings);
const view = (events: ReturnType<typeof ev>[], now: string) => toProfileView(apply(events), new Date(now));

describe('identify', () => {
  it('merges traits, reserved snake_case names under camelCase, nested address per field', () => {
    const v = view(
      [
        ev({ type: 'identify', timestamp: '2026-03-01T10:00:00Z', traits: { first_name: 'Luis', email: 'l@x.es', tier: 'gold', address: { city: 'Madrid' } } }),
        ev({ type: 'identify', timestamp: '2026-03-02T10:00:00Z', traits: { lastName: 'García', age: 31, address: { country: 'ES' }, birthday: '1995-01-02' } }),
      ],
      '2026-03-03T00:00:00Z',
    );
    expect(v.traits).toEqual({
      firstName: 'Luis',
      lastName: 'García',
      email: 'l@x.es',
      tier: 'gold',
      age: 31,
      birthday: '1995-01-02',
      address: { city: 'Madrid', country: 'ES' },
    });
    expect(v.identified).toBe(true);
    expect(v.userId).toBe('u-1');
  });

  it('keeps the trait with the latest event time, whatever the arrival order', () => {
    const newer = ev({ type: 'identify', timestamp: '2026-03-05T10:00:00Z', traits: { email: 'new@x.es', phone: '+34 600' } });
    const older = ev({ type: 'identify', timestamp: '2026-03-01T10:00:00Z', traits: { email: 'old@x.es', gender: 'm' } });
    const v = view([newer, older], '2026-03-06T00:00:00Z');
    expect(v.traits).toEqual({ email: 'new@x.es', phone: '+34 600', gender: 'm' });
  });

  it('ignores prototype keys and oversized values', () => {
    const traits = JSON.parse('{"__proto__": {"polluted": true}, "big": "' + 'x'.repeat(5000) + '", "ok": 1}');
    const v = view([ev({ type: 'identify', timestamp: '2026-03-01T10:00:00Z', traits })], '2026-03-02T00:00:00Z');
    expect(v.traits).toEqual({ ok: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('page and screen', () => {
  it('count visits today, 7 and 30 days, total, with first/last seen and category interest', () => {
    const v = view(
      [
        ev({ type: 'page', timestamp: '2026-03-10T08:00:00Z', properties: { category: 'running' } }),
        ev({ type: 'screen', timestamp: '2026-03-10T09:00:00Z', name: 'Home' }),
        ev({ type: 'page', timestamp: '2026-03-06T09:00:00Z' }),
        ev({ type: 'page', timestamp: '2026-02-20T09:00:00Z' }),
        ev({ type: 'page', timestamp: '2025-12-01T09:00:00Z' }),
      ],
      '2026-03-10T12:00:00Z',
    );
    expect(v.stats).toMatchObject({ visitsToday: 2, visits7d: 3, visits30d: 4, visitsTotal: 5 });
    expect(v.stats.firstSeenAt).toBe('2025-12-01T09:00:00.000Z');
    expect(v.stats.lastSeenAt).toBe('2026-03-10T09:00:00.000Z');
    expect(v.stats.categoryInterests.running).toBeCloseTo(2 ** (-4 / 24 / 14), 12);
  });
});

describe('visits today where local midnight falls inside an hour', () => {
  // Asia/Kolkata is UTC+5:30: its midnight is 18:30 UTC; Asia/Kathmandu (+5:45) at 18:15 UTC.
  it.each([
    ['Asia/Kolkata', '2026-03-10T18:29:00Z', '2026-03-10T18:31:00Z', '2026-03-10T18:59:00Z'],
    ['Asia/Kathmandu', '2026-03-10T18:14:00Z', '2026-03-10T18:16:00Z', '2026-03-10T18:44:00Z'],
    // Newfoundland daylight time (from 8 March 2026): UTC−2:30, midnight at 02:30 UTC.
    ['America/St_Johns', '2026-03-11T02:29:00Z', '2026-03-11T02:31:00Z', '2026-03-11T02:59:00Z'],
  ])('%s: a visit just before midnight is yesterday, two just after are today', (timezone, before, after1, after2) => {
    const events = [
      ev({ type: 'identify', timestamp: '2026-03-01T00:00:00Z', traits: { timezone } }),
      ev({ type: 'page', timestamp: before }),
      ev({ type: 'page', timestamp: after1 }),
      ev({ type: 'screen', timestamp: after2, name: 'Home' }),
    ];
    const now = new Date(Date.parse(after2) + 5 * 3_600_000).toISOString();
    expect(view(events, now).stats.visitsToday).toBe(2);
    // The same when the events come in two deliveries, the newest first.
    const [identify, ...visits] = events;
    const twice = apply([identify!, visits[0]!], apply(visits.slice(1)));
    expect(toProfileView(twice, new Date(now)).stats.visitsToday).toBe(2);
  });
});

describe('category interest', () => {
  it('decays with the configured half-life and adds Product Viewed and Order Completed products', () => {
    const events = [
      track('Product Viewed', '2026-03-01T00:00:00Z', { category: 'shoes' }),
      track('Order Completed', '2026-03-15T00:00:00Z', { products: [{ category: 'shoes' }, { category: 'socks' }, { category: 'socks' }] }),
    ];
    const v = view(events, '2026-03-15T00:00:00Z');
    // The view (weight 1) is one half-life old; the order's weight is 2 per distinct category.
    expect(v.stats.categoryInterests.shoes).toBeCloseTo(0.5 + 2, 12);
    expect(v.stats.categoryInterests.socks).toBeCloseTo(2, 12);
    const later = toProfileView(apply(events), new Date('2026-03-29T00:00:00Z'));
    expect(later.stats.categoryInterests.shoes).toBeCloseTo((0.5 + 2) / 2, 12);
    const slow = toProfileView(applyEvents(emptyProfileState(), events, { halfLifeDays: 28 }), new Date('2026-03-29T00:00:00Z'));
    expect(slow.stats.categoryInterests.socks).toBeCloseTo(2 * 2 ** -0.5, 12);
  });
});

describe('orders, returns, complaints', () => {
  it('Order Completed counts orders, revenue (revenue, else total) and lastPurchaseAt', () => {
    const v = view(
      [
        track('Order Completed', '2026-03-02T10:00:00Z', { revenue: 20.5, total: 99 }),
        track('Order Completed', '2026-03-01T10:00:00Z', { total: '10.25' }),
        track('Order Completed', '2026-02-01T10:00:00Z', { total: 'n/a' }),
      ],
      '2026-03-03T00:00:00Z',
    );
    expect(v.stats).toMatchObject({ orders: 3, revenue: 30.75, lastPurchaseAt: '2026-03-02T10:00:00.000Z' });
    expect(v.contacts).toEqual({});
  });

  it('Order Refunded counts returns with lastReturnAt', () => {
    const v = view([track('Order Refunded', '2026-03-02T10:00:00Z'), track('Order Refunded', '2026-03-01T10:00:00Z')], '2026-03-03T00:00:00Z');
    expect(v.stats).toMatchObject({ returns: 2, lastReturnAt: '2026-03-02T10:00:00.000Z' });
  });

  it('open complaints = opened - resolved, never negative, in any order', () => {
    const opened = (t: string) => track('Complaint Opened', t);
    const resolved = (t: string) => track('Complaint Resolved', t);
    expect(view([opened('2026-03-01T00:00:00Z'), opened('2026-03-02T00:00:00Z'), resolved('2026-03-03T00:00:00Z')], '2026-03-04T00:00:00Z').stats.openComplaints).toBe(1);
    expect(view([resolved('2026-03-01T00:00:00Z'), resolved('2026-03-01T00:00:00Z'), opened('2026-03-02T00:00:00Z')], '2026-03-04T00:00:00Z').stats.openComplaints).toBe(0);
  });
});

describe('consent and preferences', () => {
  it('Consent Updated and Unsubscribed set per-channel consent with its time, the latest statement winning', () => {
    const v = view(
      [
        track('Consent Updated', '2026-03-01T10:00:00Z', { channel: 'email', granted: true }),
        track('Consent Updated', '2026-03-01T10:00:00Z', { channel: 'push', granted: true }),
        track('Unsubscribed', '2026-03-03T10:00:00Z'),
        track('Consent Updated', '2026-03-02T10:00:00Z', { channel: 'email', granted: true }),
        track('Consent Updated', '2026-03-01T10:00:00Z', { channel: 'fax', granted: true }),
        track('Consent Updated', '2026-03-01T10:00:00Z', { channel: 'sms', granted: 'maybe' }),
      ],
      '2026-03-04T00:00:00Z',
    );
    expect(v.consent).toEqual({
      email: { granted: false, updatedAt: '2026-03-03T10:00:00.000Z' },
      push: { granted: true, updatedAt: '2026-03-01T10:00:00.000Z' },
    });
  });

  it('a grant and a withdrawal at the same instant: the withdrawal wins in both orders', () => {
    const grant = track('Consent Updated', '2026-03-01T10:00:00Z', { channel: 'sms', granted: true });
    const withdraw = track('Consent Updated', '2026-03-01T10:00:00Z', { channel: 'sms', granted: false });
    expect(view([grant, withdraw], '2026-03-02T00:00:00Z').consent.sms?.granted).toBe(false);
    expect(view([withdraw, grant], '2026-03-02T00:00:00Z').consent.sms?.granted).toBe(false);
  });

  it('Preferences Updated keeps the latest interests and preferred channel', () => {
    const v = view(
      [
        track('Preferences Updated', '2026-03-02T10:00:00Z', { interests: ['running', 'yoga', 'running', 7] }),
        track('Preferences Updated', '2026-03-01T10:00:00Z', { interests: ['chess'], preferred_channel: 'sms' }),
        track('Preferences Updated', '2026-03-03T10:00:00Z', { preferred_channel: 'push' }),
      ],
      '2026-03-04T00:00:00Z',
    );
    expect(v.preferences).toEqual({ interests: ['running', 'yoga'], preferredChannel: 'push', updatedAt: '2026-03-03T10:00:00.000Z' });
  });
});

describe('decision outcomes', () => {
  it('impressions, clicks and conversions feed contacts, channel engagement and channel contacts', () => {
    // Outcomes are recorded at their decision's time, on its channel (push and email events: theirs).
    const banner = decisionId(new Date('2026-03-01T09:59:00Z'), 'web', 'w1');
    const bannerOnApp = decisionId(new Date('2026-03-02T09:59:00Z'), 'app', 'a1');
    const push = decisionId(new Date('2026-03-03T09:59:00Z'), 'push', 'p1');
    const mail = decisionId(new Date('2026-03-04T09:59:00Z'), 'email', 'e1');
    const v = view(
      [
        track('Promotion Viewed', '2026-03-01T10:00:00Z', { decision_id: banner, action_id: 'a1' }),
        track('Promotion Viewed', '2026-03-02T10:00:00Z', { decision_id: bannerOnApp, action_id: 'a1' }),
        track('Promotion Clicked', '2026-03-02T10:01:00Z', { decision_id: banner, action_id: 'a1' }),
        track('Push Notification Received', '2026-03-03T10:00:00Z', { decision_id: push, action_id: 'a2' }),
        track('Push Notification Tapped', '2026-03-03T10:05:00Z', { decision_id: push, action_id: 'a2' }),
        track('Email Opened', '2026-03-04T10:00:00Z', { decision_id: mail, action_id: 'a2' }),
        track('Email Link Clicked', '2026-03-04T10:02:00Z', { decision_id: mail }),
        track('Order Completed', '2026-03-05T10:00:00Z', { decision_id: banner, action_id: 'a1', revenue: 10 }),
        track('Promotion Viewed', '2026-03-05T11:00:00Z', { action_id: 'a1' }),
      ],
      '2026-03-06T00:00:00Z',
    );
    // The email's link click names no action: it is the decision's first (a1), whose impression no report gave, so
    // the click brings it (a1's email impression, an email delivery and contact).
    expect(v.contacts).toEqual({
      a1: {
        impressions: ['2026-03-04T09:59:00.000Z', '2026-03-02T09:59:00.000Z', '2026-03-01T09:59:00.000Z'],
        clicks: 2,
        conversions: 1,
        lastImpressionAt: '2026-03-04T09:59:00.000Z',
      },
      a2: { impressions: ['2026-03-04T09:59:00.000Z', '2026-03-03T09:59:00.000Z'], clicks: 1, conversions: 0, lastImpressionAt: '2026-03-04T09:59:00.000Z' },
    });
    expect(v.engagement.web).toEqual({ delivered: 1, engaged: 1, rate: 1, lastDeliveredAt: '2026-03-01T09:59:00.000Z', lastEngagedAt: '2026-03-01T09:59:00.000Z' });
    expect(v.engagement.app).toMatchObject({ delivered: 1, engaged: 0, rate: 0 });
    expect(v.engagement.push).toMatchObject({ delivered: 1, engaged: 1, rate: 1 });
    expect(v.engagement.email).toMatchObject({ delivered: 2, engaged: 1 });
    expect(v.channelContacts).toEqual({
      web: ['2026-03-01T09:59:00.000Z'],
      app: ['2026-03-02T09:59:00.000Z'],
      push: ['2026-03-03T09:59:00.000Z'],
      email: ['2026-03-04T09:59:00.000Z', '2026-03-04T09:59:00.000Z'],
    });
  });
});

describe('anything else', () => {
  it('counts track events per name (today, 7 and 30 days, total); alias and group change no stats', () => {
    const v = view(
      [
        track('Video Played', '2026-03-10T09:00:00Z'),
        track('Video Played', '2026-03-08T09:00:00Z'),
        track('Video Played', '2026-02-20T09:00:00Z'),
        track('Video Played', '2025-01-01T09:00:00Z'),
        track('Wishlist Added', '2026-03-10T10:00:00Z'),
        ev({ type: 'alias', timestamp: '2027-01-01T00:00:00Z', previousId: 'a-1' }),
        ev({ type: 'group', timestamp: '2026-03-10T10:00:00Z', traits: { plan: 'x' } }),
      ],
      '2026-03-10T12:00:00Z',
    );
    expect(v.stats.eventCounts).toEqual({
      'Video Played': { today: 1, last7d: 2, last30d: 3, total: 4 },
      'Wishlist Added': { today: 1, last7d: 1, last30d: 1, total: 1 },
    });
    expect(v.traits).toEqual({});
    expect(v.stats.lastSeenAt).toBe('2026-03-10T10:00:00.000Z');
  });
});

describe('time windows in the customer time zone', () => {
  it('"today" starts at local midnight: New York (trait) and Tokyo (context)', () => {
    const events = [
      ev({ type: 'page', timestamp: '2026-03-10T03:30:00Z' }), // 23:30 on Mar 9 in New York (EDT)
      ev({ type: 'page', timestamp: '2026-03-10T04:10:00Z' }), // 00:10 on Mar 10 in New York
      track('Search', '2026-03-10T03:30:00Z'),
      track('Search', '2026-03-10T05:00:00Z'),
    ];
    const now = new Date('2026-03-10T15:00:00Z');
    const ny = toProfileView(apply([...events, ev({ type: 'identify', timestamp: '2026-01-01T00:00:00Z', traits: { timezone: 'America/New_York' } })]), now);
    expect(ny.timezone).toBe('America/New_York');
    expect(ny.stats.visitsToday).toBe(1);
    expect(ny.stats.eventCounts.Search?.today).toBe(1);
    const utc = toProfileView(apply(events), now);
    expect(utc.timezone).toBe('UTC');
    expect(utc.stats.visitsToday).toBe(2);
    // Tokyo (UTC+9) from context: 2026-03-10T15:00Z is 00:00 on Mar 11 there: nothing today yet.
    const tokyo = toProfileView(apply([...events, ev({ type: 'page', timestamp: '2026-03-09T15:30:00Z', context: { timezone: 'Asia/Tokyo' } })]), now);
    expect(tokyo.timezone).toBe('Asia/Tokyo');
    expect(tokyo.stats.visitsToday).toBe(0);
    expect(tokyo.stats.visits7d).toBe(3);
  });

  it('7 and 30 days are counted in local days across a daylight saving change (Madrid, 29 March)', () => {
    const zone = ev({ type: 'identify', timestamp: '2026-01-01T00:00:00Z', traits: { timezone: 'Europe/Madrid' } });
    const events = [
      zone,
      ev({ type: 'page', timestamp: '2026-03-26T23:30:00Z' }), // 00:30 on Mar 27 (CET): inside 7 days of Apr 2
      ev({ type: 'page', timestamp: '2026-03-26T22:30:00Z' }), // 23:30 on Mar 26: outside
      ev({ type: 'page', timestamp: '2026-03-04T23:30:00Z' }), // 00:30 on Mar 5: inside 30 days of Apr 2 (from Mar 4)
      ev({ type: 'page', timestamp: '2026-03-02T22:30:00Z' }), // 23:30 on Mar 2: outside
    ];
    const v = toProfileView(apply(events), new Date('2026-04-02T10:00:00Z'));
    expect(v.stats.visits7d).toBe(1);
    expect(v.stats.visits30d).toBe(3);
    expect(v.stats.visitsTotal).toBe(4);
  });

  it('an unknown zone name falls back to the last valid one, then UTC', () => {
    const v = view(
      [
        ev({ type: 'page', timestamp: '2026-03-01T00:00:00Z', context: { timezone: 'Europe/Paris' } }),
        ev({ type: 'identify', timestamp: '2026-03-02T00:00:00Z', traits: { timezone: 'Mars/Olympus' } }),
        ev({ type: 'page', timestamp: '2026-03-03T00:00:00Z', context: { timezone: 'Nowhere/Land' } }),
      ],
      '2026-03-04T00:00:00Z',
    );
    expect(v.timezone).toBe('Europe/Paris');
    expect(v.timezoneSource).toBe('event context');
  });

  it('the view names where the zone came from: trait, event context, or none', () => {
    const at = '2026-03-04T00:00:00Z';
    const page = (timezone?: string) =>
      ev({ type: 'page', timestamp: '2026-03-01T00:00:00Z', ...(timezone ? { context: { timezone } } : {}) });
    const identify = (timezone: string) => ev({ type: 'identify', timestamp: '2026-03-02T00:00:00Z', traits: { timezone } });
    const pick = (v: ReturnType<typeof view>) => [v.timezone, v.timezoneSource];
    expect(pick(view([page()], at))).toEqual(['UTC', 'none']);
    expect(pick(view([page('Asia/Tokyo')], at))).toEqual(['Asia/Tokyo', 'event context']);
    expect(pick(view([page('Asia/Tokyo'), identify('America/New_York')], at))).toEqual(['America/New_York', 'trait']);
    // A customer whose zone is UTC has a zone: the source tells it from "no zone".
    expect(pick(view([page('UTC')], at))).toEqual(['UTC', 'event context']);
    expect(pick(view([page('Asia/Tokyo'), identify('UTC')], at))).toEqual(['UTC', 'trait']);
    expect(pick(view([identify('Mars/Olympus')], at))).toEqual(['UTC', 'none']);
  });
});

describe('bounds', () => {
  it('100,000 events of every kind keep the profile compact (< 50 KB) and every collection bounded', () => {
    let state = emptyProfileState({ userId: 'u-big' });
    const start = Date.parse('2025-01-01T00:00:00Z');
    const batch: ReturnType<typeof ev>[] = [];
    for (let i = 0; i < 100_000; i++) {
      const timestamp = new Date(start + i * 317_000).toISOString(); // ~1 year, every ~5 minutes
      const k = i % 10;
      if (k === 0) batch.push(ev({ type: 'page', timestamp, properties: { category: `cat-${i % 137}` } }));
      else if (k === 1) batch.push(ev({ type: 'identify', timestamp, traits: { [`trait-${i % 311}`]: i, email: `e${i}@x.es` } }));
      else if (k === 2) batch.push(track('Promotion Viewed', timestamp, { decision_id: decisionId(new Date(timestamp), 'app', `d${i}`, [`act-${i % 173}`]) }));
      else if (k === 3) batch.push(track('Order Completed', timestamp, { decision_id: decisionId(new Date(timestamp), 'web', `d${i}`, [`act-${i % 173}`]), revenue: 3.5, products: [{ category: `cat-${i % 91}` }] }));
      else if (k === 4) batch.push(track('Push Notification Received', timestamp, { decision_id: decisionId(new Date(timestamp), 'push', `d${i}`, [`act-${i % 59}`]) }));
      else batch.push(track(`Custom Event Number ${i % 293}`, timestamp, { x: i }));
      if (batch.length === 10_000) state = applyEvents(state, batch.splice(0), settings);
    }
    const size = Buffer.byteLength(serializeProfileState(state), 'utf8');
    expect(size).toBeLessThan(50_000);
    expect(Object.keys(state.traits).length).toBeLessThanOrEqual(LIMITS.traits);
    expect(Object.keys(state.events)).toHaveLength(LIMITS.eventNames);
    expect(Object.keys(state.actions)).toHaveLength(LIMITS.actions);
    expect(Object.keys(state.interests)).toHaveLength(LIMITS.categories);
    const v = toProfileView(state, new Date(start + 100_000 * 317_000));
    expect(v.stats.visitsTotal).toBe(10_000);
    expect(v.stats.orders).toBe(10_000);
    expect(v.stats.revenue).toBe(35_000);
    expect(v.channelContacts.app).toHaveLength(LIMITS.channelContacts);
    expect(Object.values(v.contacts).every((c) => c.impressions.length <= LIMITS.actionImpressions)).toBe(true);
    // The most recent trait survives the bound.
    expect(v.traits.email).toBe('e99991@x.es');
  }, 120_000);
});

describe('experiment key', () => {
  const at = (who: { userId?: string; anonymousId?: string }, messageId: string, timestamp: string) =>
    storedEvent({ ...who, messageId, type: 'page', timestamp });
  const keyOf = (state: ProfileState) => toProfileView(state, new Date('2026-03-10T00:00:00Z')).experimentKey;

  it('is the first key the customer was known by, kept through a login and a second device joined later', () => {
    const firstDevice = applyEvents(emptyProfileState({ anonymousId: 'a-1' }), [at({ anonymousId: 'a-1' }, 'p1', '2026-03-01T10:00:00Z')], settings);
    expect(keyOf(firstDevice)).toBe('a-1');
    const known = applyEvents(emptyProfileState({ userId: 'u-9' }), [at({ userId: 'u-9', anonymousId: 'a-1' }, 'p2', '2026-03-03T10:00:00Z')], settings);
    const loggedIn = mergeProfiles(known, firstDevice);
    expect(keyOf(loggedIn)).toBe('a-1');
    const secondDevice = applyEvents(emptyProfileState({ anonymousId: 'a-2' }), [at({ anonymousId: 'a-2' }, 'p3', '2026-03-05T10:00:00Z')], settings);
    expect(keyOf(mergeProfiles(loggedIn, secondDevice))).toBe('a-1');
    expect(keyOf(mergeProfiles(secondDevice, loggedIn))).toBe('a-1');
  });

  it('a customer first known by their user id keeps it', () => {
    const state = applyEvents(emptyProfileState({ userId: 'u-9' }), [at({ userId: 'u-9' }, 'p1', '2026-03-01T10:00:00Z'), at({ userId: 'u-9', anonymousId: 'a-7' }, 'p2', '2026-03-02T10:00:00Z')], settings);
    expect(keyOf(state)).toBe('u-9');
  });
});
