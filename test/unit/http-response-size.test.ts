/**
 * The answer-size budget of routes whose pages grow with stored data
 * (shared/http/response-size.ts): a page keeps the longest prefix of its
 * items that fits, counted as Lambda counts a response payload, and always
 * one item so that paging moves on.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bodyPayloadBytes, itemsWithinBudget } from '#http/response-size.ts';

describe('itemsWithinBudget', () => {
  it('keeps the longest prefix whose answer, escaped as Lambda counts it, stays within the budget (at least one item)', () => {
    const item = fc.record({ id: fc.nat(), note: fc.string({ unit: fc.constantFrom('a', '"', '\\', '\n', 'é'), maxLength: 200 }) });
    fc.assert(
      fc.property(fc.array(item, { maxLength: 40 }), fc.integer({ min: 10, max: 20_000 }), (items, budget) => {
        const fixed = bodyPayloadBytes({ profiles: [] });
        const kept = itemsWithinBudget(items, fixed, budget);
        expect(kept).toEqual(items.slice(0, kept.length));
        expect(kept.length).toBe(items.length === 0 ? 0 : Math.max(1, kept.length));
        const size = (n: number) => bodyPayloadBytes({ profiles: items.slice(0, n) });
        // Within the budget, unless it is the one item a page always holds; one more would not be.
        expect(kept.length <= 1 || size(kept.length) <= budget).toBe(true);
        expect(kept.length === items.length || size(kept.length + 1) > budget).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('counts a quote four times: once escaped in the JSON body, again in the body string', () => {
    expect(bodyPayloadBytes('"'.repeat(1000))).toBe(4 * 1000 + 6);
  });
});
