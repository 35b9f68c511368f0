/**
 * Outcome attribution (shared/domain/profile/outcomes.ts) as properties: for
 * any outcome event, an id the service did not seal, an action or variant
 * the decision did not serve, or a time outside the windows counts for
 * nothing; a genuine outcome of what was served, inside its window, counts
 * for exactly the action and variant served.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decisionKey, encodeDecisionId, sealDecisionId } from '#domain/decide/decision-id.ts';
import { ATTRIBUTION_WINDOW_MS, CLOCK_SKEW_MS, OUTCOME_EVENTS, attributeOutcome } from '#domain/profile/outcomes.ts';

const KEY = decisionKey('k'.repeat(48));
const OTHER_KEY = decisionKey('o'.repeat(48));
const T0 = Date.parse('2026-11-01T10:00:00Z');
const DAY = 86_400_000;

const id = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
const served = fc.uniqueArray(fc.record({ actionId: id, variant: fc.option(id, { nil: undefined }) }), { minLength: 1, maxLength: 4, selector: (a) => a.actionId });
const eventName = fc.constantFrom(...Object.keys(OUTCOME_EVENTS));

/** A decision that served `actions`, sealed with `key`. */
function issued(actions: readonly { actionId: string; variant?: string }[], key = KEY): string {
  const plain = encodeDecisionId({
    catalogVersion: '3',
    channel: 'web',
    placement: 'home',
    issuedAt: new Date(T0),
    nonce: 'n1',
    fallback: false,
    degraded: false,
    actions: actions.map((a) => ({ actionId: a.actionId, ...(a.variant !== undefined ? { variant: a.variant } : {}), propensity: 0.3 })),
    holdouts: [],
  });
  return sealDecisionId(plain, key);
}

describe('outcome attribution', () => {
  it('a genuine outcome of a served action, inside its window, counts for exactly that action and variant', () => {
    fc.assert(
      fc.property(served, eventName, fc.nat(), fc.integer({ min: -CLOCK_SKEW_MS, max: ATTRIBUTION_WINDOW_MS }), fc.boolean(), (actions, name, pick, offset, alias) => {
        const target = actions[pick % actions.length]!;
        const decision = issued(actions);
        const props = alias
          ? { decisionId: decision, actionId: target.actionId, ...(target.variant !== undefined ? { variant: target.variant } : {}) }
          : { decision_id: decision, action_id: target.actionId, ...(target.variant !== undefined ? { variant: target.variant } : {}) };
        const outcome = attributeOutcome(name, props, T0 + offset, KEY, ATTRIBUTION_WINDOW_MS);
        expect(outcome?.action.actionId).toBe(target.actionId);
        expect(outcome?.action.variant).toBe(target.variant);
        expect(outcome?.kind).toBe(OUTCOME_EVENTS[name]?.kind);
      }),
      { numRuns: 300 },
    );
  });

  it('counts nothing for an id sealed with another key, a plain or mangled id, an action or variant not served, or a time outside the windows', () => {
    const mistake = fc.oneof(
      fc.constant('other key' as const),
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
        let decision = issued(actions);
        let actionId = target.actionId;
        let variant = target.variant;
        let at = T0 + 60_000;
        if (wrong === 'other key') decision = issued(actions, OTHER_KEY);
        else if (wrong === 'plain') decision = decision.replace(/^[^.]*\./, '');
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
        expect(attributeOutcome(name, props, at, KEY, ATTRIBUTION_WINDOW_MS)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('counts a conversion only within the conversion window, while views and clicks keep the attribution window', () => {
    fc.assert(
      fc.property(served, fc.integer({ min: 1, max: 6 * DAY }), fc.integer({ min: 0, max: 7 * DAY }), (actions, window, offset) => {
        const target = actions[0]!;
        const props = { decision_id: issued(actions), action_id: target.actionId, ...(target.variant !== undefined ? { variant: target.variant } : {}) };
        const conversion = attributeOutcome('order completed', props, T0 + offset, KEY, window);
        expect(conversion !== undefined).toBe(offset <= window);
        expect(attributeOutcome('promotion clicked', props, T0 + offset, KEY, window)).toBeDefined();
      }),
      { numRuns: 300 },
    );
  });
});
