/**
 * Outcome attribution (shared/domain/profile/outcomes.ts) as properties: for
 * any outcome event, an id the service did not seal, a decision of another
 * channel than the event's (push, email, sms), an action or variant the
 * decision did not serve, or a time outside the windows counts for
 * nothing; a genuine outcome of what was served, inside its window, counts
 * for exactly the action and variant served, and only when it comes from
 * the customer the decision was made for (the customer tag).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CHANNELS, type Channel } from '#domain/channels.ts';
import { customerTag, decisionKey, encodeDecisionId, sealDecisionId } from '#domain/decide/decision-id.ts';
import { hash32 } from '#domain/decide/random.ts';
import { customerIds } from '#domain/profile/apply.ts';
import { emptyProfileState, type ProfileState } from '#domain/profile/state.ts';
import { ATTRIBUTION_WINDOW_MS, CLOCK_SKEW_MS, OUTCOME_EVENTS, attributeOutcome } from '#domain/profile/outcomes.ts';

const KEY = decisionKey('k'.repeat(48));
const OTHER_KEY = decisionKey('o'.repeat(48));
const T0 = Date.parse('2026-11-01T10:00:00Z');
const DAY = 86_400_000;

const id = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
const served = fc.uniqueArray(fc.record({ actionId: id, variant: fc.option(id, { nil: undefined }) }), { minLength: 1, maxLength: 4, selector: (a) => a.actionId });
const eventName = fc.constantFrom(...Object.keys(OUTCOME_EVENTS));

/** The customer the decisions below were made for, and the ids an outcome of theirs is reported under. */
const CUSTOMER = 'u-1';
const FROM_CUSTOMER = [CUSTOMER];

/** The channel of the decisions an outcome event reports on: its own, or web for those of any channel. */
const channelOf = (name: string): Channel => OUTCOME_EVENTS[name]?.channel ?? 'web';

/** A decision that served `actions` to `customer` on `channel`, sealed with `key`. */
function issued(actions: readonly { actionId: string; variant?: string }[], key = KEY, customer = CUSTOMER, channel: Channel = 'web'): string {
  const plain = encodeDecisionId({
    catalogVersion: '3',
    channel,
    placement: 'home',
    issuedAt: new Date(T0),
    nonce: 'n1',
    fallback: false,
    degraded: false,
    actions: actions.map((a) => ({ actionId: a.actionId, ...(a.variant !== undefined ? { variant: a.variant } : {}), propensity: 0.3 })),
    holdouts: [],
    customer: customerTag(customer),
  });
  return sealDecisionId(plain, key);
}

describe('outcome attribution', () => {
  it('a genuine outcome of a served action, inside its window, counts for exactly that action and variant', () => {
    fc.assert(
      fc.property(served, eventName, fc.nat(), fc.integer({ min: -CLOCK_SKEW_MS, max: ATTRIBUTION_WINDOW_MS }), fc.boolean(), (actions, name, pick, offset, alias) => {
        const target = actions[pick % actions.length]!;
        const decision = issued(actions, KEY, CUSTOMER, channelOf(name));
        const props = alias
          ? { decisionId: decision, actionId: target.actionId, ...(target.variant !== undefined ? { variant: target.variant } : {}) }
          : { decision_id: decision, action_id: target.actionId, ...(target.variant !== undefined ? { variant: target.variant } : {}) };
        const outcome = attributeOutcome(name, props, T0 + offset, FROM_CUSTOMER, KEY, ATTRIBUTION_WINDOW_MS);
        expect(outcome?.action.actionId).toBe(target.actionId);
        expect(outcome?.action.variant).toBe(target.variant);
        expect(outcome?.kind).toBe(OUTCOME_EVENTS[name]?.kind);
        expect(outcome?.channel).toBe(channelOf(name));
      }),
      { numRuns: 300 },
    );
  });

  it('counts nothing for an id sealed with another key, a plain or mangled id, another customer\'s decision, another channel\'s decision, an action or variant not served, or a time outside the windows', () => {
    const mistake = fc.oneof(
      fc.constant('other key' as const),
      fc.record({ channel: fc.constantFrom(...CHANNELS) }),
      fc.record({ customer: fc.string({ maxLength: 20 }) }),
      fc.constant('plain' as const),
      fc.record({ mangle: fc.nat() }),
      fc.record({ action: id }),
      fc.record({ variant: id }),
      fc.record({ early: fc.integer({ min: CLOCK_SKEW_MS + 1, max: 30 * DAY }) }),
      fc.record({ late: fc.integer({ min: ATTRIBUTION_WINDOW_MS + 1, max: 60 * DAY }) }),
    );
    fc.assert(
      fc.property(served, eventName, fc.nat(), mistake, (actions, name, pick, wrong) => {
        const target = actions[pick % actions.length]!;
        let decision = issued(actions, KEY, CUSTOMER, channelOf(name));
        let actionId = target.actionId;
        let variant = target.variant;
        let at = T0 + 60_000;
        if (wrong === 'other key') decision = issued(actions, OTHER_KEY, CUSTOMER, channelOf(name));
        else if (typeof wrong === 'object' && 'customer' in wrong) {
          if (wrong.customer === CUSTOMER) return;
          decision = issued(actions, KEY, wrong.customer, channelOf(name));
        } else if (typeof wrong === 'object' && 'channel' in wrong) {
          // Only an event of a channel (push, email, sms) names one; Promotion Viewed and Order Completed report on any.
          if (OUTCOME_EVENTS[name]?.channel === undefined || wrong.channel === OUTCOME_EVENTS[name]?.channel) return;
          decision = issued(actions, KEY, CUSTOMER, wrong.channel);
        } else if (wrong === 'plain') decision = decision.replace(/^[^.]*\./, '');
        else if ('mangle' in wrong) {
          const i = wrong.mangle % decision.length;
          const c = decision[i] === 'A' ? 'B' : 'A';
          decision = decision.slice(0, i) + c + decision.slice(i + 1);
        } else if ('action' in wrong) {
          if (actions.some((a) => a.actionId === wrong.action)) return;
          actionId = wrong.action;
        } else if ('variant' in wrong) {
          if (wrong.variant === target.variant) return;
          variant = wrong.variant;
        } else if ('early' in wrong) at = T0 - wrong.early;
        else at = T0 + wrong.late;
        const props = { decision_id: decision, action_id: actionId, ...(variant !== undefined ? { variant } : {}) };
        expect(attributeOutcome(name, props, at, FROM_CUSTOMER, KEY, ATTRIBUTION_WINDOW_MS)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('counts a conversion only within the conversion window, while views and clicks keep the attribution window', () => {
    fc.assert(
      fc.property(served, fc.integer({ min: 1, max: 6 * DAY }), fc.integer({ min: 0, max: 7 * DAY }), (actions, window, offset) => {
        const target = actions[0]!;
        const props = { decision_id: issued(actions), action_id: target.actionId, ...(target.variant !== undefined ? { variant: target.variant } : {}) };
        const conversion = attributeOutcome('order completed', props, T0 + offset, FROM_CUSTOMER, KEY, window);
        expect(conversion !== undefined).toBe(offset <= window);
        expect(attributeOutcome('promotion clicked', props, T0 + offset, FROM_CUSTOMER, KEY, window)).toBeDefined();
      }),
      { numRuns: 300 },
    );
  });

  describe('the customer a decision was made for', () => {
    const actions = [{ actionId: 'offer' }];
    const click = (decision: string) => ({ decision_id: decision, action_id: 'offer' });
    const at = T0 + 60_000;
    const outcomeFrom = (decision: string, profile: ProfileState, event: { userId?: string; anonymousId?: string }) =>
      attributeOutcome('promotion clicked', click(decision), at, customerIds(profile, event), KEY, ATTRIBUTION_WINDOW_MS);

    it('counts for that customer, and for nobody else: 50 other anonymous customers reporting its id count nothing', () => {
      const decision = issued(actions, KEY, 'harvest-1');
      expect(outcomeFrom(decision, emptyProfileState({ anonymousId: 'harvest-1' }), { anonymousId: 'harvest-1' })?.action.actionId).toBe('offer');
      for (let i = 0; i < 50; i++) {
        expect(outcomeFrom(decision, emptyProfileState({ anonymousId: `sybil-${i}` }), { anonymousId: `sybil-${i}` })).toBeUndefined();
      }
      // Nor a known customer, nor another customer's id on the event of a profile that is not harvest-1's.
      expect(outcomeFrom(decision, emptyProfileState({ userId: 'mallory' }), { userId: 'mallory', anonymousId: 'sybil-0' })).toBeUndefined();
    });

    it('still counts after the anonymous customer logs in and is merged into a user, whichever id the event carries', () => {
      const decision = issued(actions, KEY, 'anon-a');
      const merged: ProfileState = { ...emptyProfileState({ userId: 'user-u' }), anonymousIds: ['anon-b', 'anon-a'] };
      expect(outcomeFrom(decision, merged, { userId: 'user-u' })).toBeDefined();
      expect(outcomeFrom(decision, merged, { userId: 'user-u', anonymousId: 'anon-b' })).toBeDefined();
      // A decision for the user counts from any of its devices.
      expect(outcomeFrom(issued(actions, KEY, 'user-u'), merged, { anonymousId: 'anon-b' })).toBeDefined();
      // The experiment key (the customer's first id) binds too, when the bounded list of merged ids no longer holds it.
      const keyed: ProfileState = { ...emptyProfileState({ userId: 'user-u' }), assignmentKey: ['anon-first', T0] };
      expect(outcomeFrom(issued(actions, KEY, 'anon-first'), keyed, { userId: 'user-u' })).toBeDefined();
      expect(outcomeFrom(decision, keyed, { userId: 'user-u' })).toBeUndefined();
    });

    it('a v2 id (issued before the customer tag) is unbound: it counts from any customer, within its window', () => {
      const v2 = [2, '3', 'web', 'home', Math.floor(T0 / 1000), 'n1', 0, '', [['offer', '', '', '', 0.3, 1]], [], '-'];
      const payload = Buffer.from(JSON.stringify(v2)).toString('base64url');
      const decision = sealDecisionId(`${payload}.${hash32(payload).toString(36)}`, KEY);
      expect(outcomeFrom(decision, emptyProfileState({ anonymousId: 'harvest-1' }), { anonymousId: 'harvest-1' })).toBeDefined();
      expect(outcomeFrom(decision, emptyProfileState({ anonymousId: 'sybil-0' }), { anonymousId: 'sybil-0' })).toBeDefined();
      const late = attributeOutcome('promotion clicked', click(decision), T0 + ATTRIBUTION_WINDOW_MS + 1, ['sybil-0'], KEY, ATTRIBUTION_WINDOW_MS);
      expect(late).toBeUndefined();
    });
  });
});
