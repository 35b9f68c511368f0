/**
 * Outcome attribution (shared/domain/profile/outcomes.ts): an outcome counts
 * once per (decision, action, kind), only for a decision the service issued
 * and for what that decision served, within the attribution window, from
 * the customer it was made for; every report stays in the history.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { customerTag, decisionKey, encodeDecisionId, sealDecisionId } from '#domain/decide/decision-id.ts';
import { answersErasedDecision, applyEvents, mergeProfiles } from '#domain/profile/apply.ts';
import { emptyProfileState, type ProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { ATTRIBUTION_WINDOW_MS, CLOCK_SKEW_MS, COUNTED_OUTCOMES_LIMIT, countOutcomeOnce } from '#domain/profile/outcomes.ts';
import { storedEvent } from '../support/stream.ts';
import { firstDifference } from './profile-support.ts';

const settings = { halfLifeDays: 14 };
const DECIDED = '2026-03-02T10:00:00.000Z';
/** A decision (plain id) made for `customer` (decide's customer key). */
const idOf = (nonce = 'n1', channel: 'web' | 'push' | 'email' = 'web', issuedAt = DECIDED, customer = 'u-1') =>
  encodeDecisionId({
    catalogVersion: '3',
    channel,
    issuedAt,
    nonce,
    fallback: false,
    degraded: false,
    actions: [
      { actionId: 'banner', variant: 'blue', propensity: 0.7 },
      { actionId: 'recipes', propensity: 0.3 },
    ],
    holdouts: [],
    customer: customerTag(customer),
  });

let n = 0;
const report = (event: string, properties: Record<string, unknown>, timestamp = '2026-03-02T10:01:00.000Z', who: { userId?: string; anonymousId?: string } = { userId: 'u-1' }) =>
  storedEvent({ ...who, messageId: `m-${++n}`, type: 'track', event, timestamp, properties });
const apply = (events: ReturnType<typeof report>[], state: ProfileState = emptyProfileState({ userId: 'u-1' }), s: Parameters<typeof applyEvents>[2] = settings) =>
  applyEvents(state, events, s);
const contacts = (state: ProfileState) => toProfileView(state, new Date('2026-03-20T00:00:00Z')).contacts;
const engagement = (state: ProfileState) => toProfileView(state, new Date('2026-03-20T00:00:00Z')).engagement;

describe('what counts', () => {
  it('an impression, a click and a conversion of a served action count, at the decision time, on the decision channel', () => {
    const id = idOf();
    const state = apply([
      report('Promotion Viewed', { decision_id: id, action_id: 'banner', channel: 'app' }),
      report('Promotion Clicked', { decision_id: id, action_id: 'banner' }),
      report('Order Completed', { decision_id: id, action_id: 'banner', revenue: 12 }, '2026-03-05T10:00:00.000Z'),
    ]);
    expect(contacts(state)).toEqual({ banner: { impressions: [DECIDED], clicks: 1, conversions: 1, lastImpressionAt: DECIDED } });
    expect(engagement(state).web).toMatchObject({ delivered: 1, engaged: 1 });
    expect(engagement(state).app).toBeUndefined();
  });

  it('a decision reported on other channels than its own (push, email and SMS events of a web decision) counts once, on its own channel', () => {
    const id = idOf();
    const state = apply([
      report('Push Notification Received', { decision_id: id, action_id: 'banner' }),
      report('Email Opened', { decision_id: id, action_id: 'banner' }),
      report('SMS Delivered', { decision_id: id, action_id: 'banner' }),
      report('Email Link Clicked', { decision_id: id, action_id: 'banner' }),
      report('Promotion Viewed', { decision_id: id, action_id: 'banner' }),
    ]);
    expect(contacts(state)).toEqual({ banner: { impressions: [DECIDED], clicks: 0, conversions: 0, lastImpressionAt: DECIDED } });
    expect(Object.keys(engagement(state))).toEqual(['web']);
    expect(Object.keys(toProfileView(state, new Date('2026-03-20T00:00:00Z')).channelContacts)).toEqual(['web']);
    expect(Object.keys(state.outcomes)).toHaveLength(1);
  });

  it('decisionId and actionId are aliases of decision_id and action_id', () => {
    const state = apply([report('Promotion Viewed', { decisionId: idOf(), actionId: 'recipes' })]);
    expect(Object.keys(contacts(state))).toEqual(['recipes']);
  });

  it('without an action id, the outcome is the decision’s first action’s', () => {
    const state = apply([report('Promotion Clicked', { decision_id: idOf() })]);
    expect(contacts(state).banner?.clicks).toBe(1);
  });

  it.each([
    ['a made-up decision id', { decision_id: 'd-123', action_id: 'banner' }],
    ['a mangled decision id', { decision_id: `${idOf().slice(0, -3)}abc`, action_id: 'banner' }],
    ['an action the decision did not serve', { decision_id: idOf(), action_id: 'vip-offer' }],
    ['a variant the decision did not serve', { decision_id: idOf(), action_id: 'banner', variant: 'red' }],
    ['a variant of an action served without variants', { decision_id: idOf(), action_id: 'recipes', variant: 'blue' }],
    ['an action id that is not a string', { decision_id: idOf(), action_id: 7 }],
    ['an action id without a decision id', { action_id: 'banner' }],
  ])('%s counts for nothing, and stays in the history', (_name, properties) => {
    const state = apply([report('Promotion Viewed', properties)]);
    expect(contacts(state)).toEqual({});
    expect(engagement(state)).toEqual({});
    expect(state.events['Promotion Viewed']?.n).toBe(1);
  });

  it('the served variant, named, counts', () => {
    expect(contacts(apply([report('Promotion Viewed', { decision_id: idOf(), action_id: 'banner', variant: 'blue' })])).banner?.impressions).toEqual([DECIDED]);
  });

  it.each([
    ['before the decision, past the clock skew', Date.parse(DECIDED) - CLOCK_SKEW_MS - 1000, false],
    ['just before the decision, within the clock skew', Date.parse(DECIDED) - CLOCK_SKEW_MS, true],
    ['at the end of the attribution window', Date.parse(DECIDED) + ATTRIBUTION_WINDOW_MS, true],
    ['past the attribution window', Date.parse(DECIDED) + ATTRIBUTION_WINDOW_MS + 1000, false],
  ])('an outcome %s: counted %s', (_name, at, counted) => {
    const state = apply([report('Order Completed', { decision_id: idOf(), revenue: 5 }, new Date(at).toISOString())]);
    expect(contacts(state).banner?.conversions ?? 0).toBe(counted ? 1 : 0);
    expect(state.orders).toBe(1);
  });
});

describe("an anonymous id of the customer erased on its own (ProfileState.erasedAnonymousIds)", () => {
  const ERASED = Date.parse(DECIDED);
  // User u-1 absorbed the visitor a-9, whom an erasure by anonymousId had erased at DECIDED before they came back.
  const joined = (): ProfileState => {
    const visitor = emptyProfileState({ anonymousId: 'a-9' });
    visitor.erasedAnonymousIds = { 'a-9': ERASED };
    return mergeProfiles(emptyProfileState({ userId: 'u-1' }), visitor);
  };
  const at = (ms: number) => new Date(ms).toISOString();

  it.each([
    ["issued to the visitor before the erasure, reported under the user's id", 'a-9', ERASED - 60_000, false],
    ['issued to the visitor in the second of the erasure', 'a-9', ERASED, false],
    ['issued to the visitor after the erasure (back)', 'a-9', ERASED + 1_000, true],
    ['issued to the user before the erasure of the visitor', 'u-1', ERASED - 60_000, true],
  ])('a click on a decision %s: counted %s', (_name, customer, issued, counted) => {
    const event = report('Promotion Clicked', { decision_id: idOf('n1', 'web', at(issued), customer) }, at(ERASED + 120_000));
    const state = apply([event], joined());
    expect(state.erasedAnonymousIds).toEqual({ 'a-9': ERASED });
    expect(contacts(state).banner?.clicks ?? 0).toBe(counted ? 1 : 0);
    expect(answersErasedDecision(event, settings, state)).toBe(!counted);
  });

  it('merges keep the newest erasure of each id, whatever their order', () => {
    const a: ProfileState = { ...emptyProfileState({ userId: 'u-1' }), erasedAnonymousIds: { x: 1, y: 5 } };
    const b: ProfileState = { ...emptyProfileState({ anonymousId: 'y' }), erasedAnonymousIds: { y: 7, z: 2 } };
    expect(mergeProfiles(a, b).erasedAnonymousIds).toEqual({ x: 1, y: 7, z: 2 });
    expect(mergeProfiles(b, a).erasedAnonymousIds).toEqual(mergeProfiles(a, b).erasedAnonymousIds);
    expect(mergeProfiles(emptyProfileState({ userId: 'u-1' }), emptyProfileState({ anonymousId: 'y' })).erasedAnonymousIds).toBeUndefined();
  });

  it('an event naming no decision, or one the service did not issue, answers no erased decision', () => {
    expect(answersErasedDecision(report('Promotion Clicked', {}), settings, joined())).toBe(false);
    expect(answersErasedDecision(report('Promotion Clicked', { decision_id: 'd-123' }), settings, joined())).toBe(false);
  });
});

describe('once per decision, action and kind', () => {
  it('reporting an impression twice, or Email Delivered then Email Opened, counts one impression', () => {
    const web = idOf('n1');
    const email = idOf('n2', 'email');
    const state = apply([
      report('Promotion Viewed', { decision_id: web }),
      report('Promotion Viewed', { decision_id: web }, '2026-03-02T10:07:00.000Z'),
      report('Email Delivered', { decision_id: email, action_id: 'recipes' }),
      report('Email Opened', { decision_id: email, action_id: 'recipes' }, '2026-03-02T12:00:00.000Z'),
      report('Email Link Clicked', { decision_id: email, action_id: 'recipes' }, '2026-03-02T12:01:00.000Z'),
      report('Email Link Clicked', { decision_id: email, action_id: 'recipes' }, '2026-03-02T12:02:00.000Z'),
    ]);
    expect(contacts(state)).toEqual({
      banner: { impressions: [DECIDED], clicks: 0, conversions: 0, lastImpressionAt: DECIDED },
      recipes: { impressions: [DECIDED], clicks: 1, conversions: 0, lastImpressionAt: DECIDED },
    });
    expect(engagement(state).email).toMatchObject({ delivered: 1, engaged: 1 });
    expect(state.events['Promotion Viewed']?.n).toBe(2);
  });

  it('the same outcome under two identities before they are joined counts once after the merge', () => {
    // Decided while anonymous; the known profile's reports come after the login, under both ids (as trackers send them).
    const id = idOf('n1', 'web', DECIDED, 'a-1');
    const both = { userId: 'u-1', anonymousId: 'a-1' };
    const known = apply([report('Promotion Viewed', { decision_id: id }, undefined, both), report('Promotion Clicked', { decision_id: id }, undefined, both)]);
    const anonymous = apply(
      [report('Promotion Viewed', { decision_id: id }, undefined, { anonymousId: 'a-1' }), report('Promotion Clicked', { decision_id: id }, undefined, { anonymousId: 'a-1' })],
      emptyProfileState({ anonymousId: 'a-1' }),
    );
    const merged = mergeProfiles(known, anonymous);
    expect(contacts(merged)).toEqual({ banner: { impressions: [DECIDED], clicks: 1, conversions: 0, lastImpressionAt: DECIDED } });
    expect(engagement(merged).web).toMatchObject({ delivered: 1, engaged: 1 });
  });

  it('a decision counts only on the profile of the customer it was made for: 50 other customers reporting it count nothing', () => {
    const id = idOf('n1', 'web', DECIDED, 'harvest-1');
    const click = (anonymousId: string) => report('Promotion Clicked', { decision_id: id, action_id: 'banner' }, undefined, { anonymousId });
    for (let i = 0; i < 50; i++) {
      const sybil = apply([click(`sybil-${i}`)], emptyProfileState({ anonymousId: `sybil-${i}` }));
      expect(contacts(sybil)).toEqual({});
      expect(sybil.outcomes).toEqual({});
      expect(sybil.events['Promotion Clicked']?.n).toBe(1);
    }
    expect(contacts(apply([click('harvest-1')], emptyProfileState({ anonymousId: 'harvest-1' }))).banner?.clicks).toBe(1);
  });

  it('a decision made for an anonymous customer counts on the user it was merged into, under the user id alone', () => {
    const id = idOf('n1', 'web', DECIDED, 'a-1');
    const user = mergeProfiles(emptyProfileState({ userId: 'u-1' }), emptyProfileState({ anonymousId: 'a-1' }));
    expect(contacts(apply([report('Promotion Clicked', { decision_id: id, action_id: 'banner' })], user)).banner?.clicks).toBe(1);
    // Not on another user's profile.
    expect(contacts(apply([report('Promotion Clicked', { decision_id: id, action_id: 'banner' }, undefined, { userId: 'u-2' })], emptyProfileState({ userId: 'u-2' })))).toEqual({});
  });

  it('a decision id sealed with the service’s key counts; one sealed with another key, or sent plain, does not', () => {
    const key = decisionKey('k'.repeat(40));
    const sealed = sealDecisionId(idOf(), key);
    const keyed = { ...settings, decisionKey: key };
    expect(contacts(apply([report('Promotion Viewed', { decision_id: sealed })], undefined, keyed)).banner?.impressions).toEqual([DECIDED]);
    expect(contacts(apply([report('Promotion Viewed', { decision_id: sealDecisionId(idOf(), decisionKey('x'.repeat(40))) })], undefined, keyed))).toEqual({});
    expect(contacts(apply([report('Promotion Viewed', { decision_id: idOf() })], undefined, keyed))).toEqual({});
  });

  it('any order, any repetition and any split between two identities merged gives the in-order profile, each outcome once', () => {
    // Decisions made while the customer was anonymous a-1; reports after the login carry both ids.
    const ids = ['n1', 'n2', 'n3'].flatMap((nonce) => [idOf(nonce, 'web', DECIDED, 'a-1'), idOf(nonce, 'push', DECIDED, 'a-1')]);
    const one = fc.record({
      event: fc.constantFrom('Promotion Viewed', 'Promotion Clicked', 'Push Notification Received', 'Order Completed', 'Email Opened'),
      id: fc.constantFrom(...ids),
      action: fc.option(fc.constantFrom('banner', 'recipes', 'other'), { nil: undefined }),
      minutes: fc.integer({ min: -10, max: 8 * 24 * 60 }),
      anonymous: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(one, { minLength: 1, maxLength: 30 }), (drafts) => {
        const events = drafts.map((d) =>
          report(
            d.event,
            { decision_id: d.id, ...(d.action ? { action_id: d.action } : {}) },
            new Date(Date.parse(DECIDED) + d.minutes * 60_000).toISOString(),
            d.anonymous ? { anonymousId: 'a-1' } : { userId: 'u-1', anonymousId: 'a-1' },
          ),
        );
        const inOrder = apply([...events].sort((a, b) => a.timestamp.localeCompare(b.timestamp)));
        const known = apply(events.filter((e) => e.userId !== undefined).reverse());
        const anonymous = apply(events.filter((e) => e.userId === undefined), emptyProfileState({ anonymousId: 'a-1' }));
        const merged = mergeProfiles(known, anonymous);
        const view = (s: ProfileState) => {
          const { anonymousIds: _a, ...rest } = toProfileView(s, new Date('2026-03-20T00:00:00Z'));
          return rest;
        };
        expect(firstDifference(view(merged), view(inOrder))).toBeUndefined();
        const total = Object.values(contacts(inOrder)).reduce((sum, c) => sum + c.impressions.length + c.clicks + c.conversions, 0);
        expect(total).toBe(Object.keys(inOrder.outcomes).length);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the bound of counted outcomes', () => {
  it('never counts an outcome twice, and keeps at most the bound, for any order of reports past it', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: COUNTED_OUTCOMES_LIMIT * 2 }), { minLength: 1, maxLength: COUNTED_OUTCOMES_LIMIT * 4 }), (decisions) => {
        const counted: Record<string, number> = {};
        const times = new Map<number, number>();
        for (const d of decisions) if (countOutcomeOnce(counted, { key: `k${d}`, decidedAt: d * 1000 })) times.set(d, (times.get(d) ?? 0) + 1);
        expect(Math.max(...times.values(), 0)).toBeLessThanOrEqual(1);
        expect(Object.keys(counted).length).toBeLessThanOrEqual(COUNTED_OUTCOMES_LIMIT);
      }),
      { numRuns: 100 },
    );
  });
});
