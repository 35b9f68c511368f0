/**
 * Outcome statistics (shared/domain/learning/statistics.ts): increments keyed
 * by the decision's hour, windowed sums that any order gives alike, and the
 * Beta posterior.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { customerTag, encodeDecisionId } from '#domain/decide/decision-id.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import {
  DEFAULT_OUTCOME_LEARNING,
  STATISTICS_BUCKET_MS,
  cellKey,
  countedCells,
  learningContext,
  outcomeIncrement,
  parseCellKey,
  posterior,
  windowedCounts,
  type StatisticsRow,
} from '#domain/learning/statistics.ts';
import { ATTRIBUTION_WINDOW_MS, attributeOutcome } from '#domain/profile/outcomes.ts';

const DECIDED = Date.parse('2026-03-02T10:20:00Z');
const decision = encodeDecisionId({
  catalogVersion: '1',
  channel: 'web',
  placement: 'home_hero',
  issuedAt: new Date(DECIDED),
  nonce: 'n1',
  fallback: false,
  degraded: false,
  persona: 'student-sport',
  actions: [{ actionId: 'banner', variant: 'android', propensity: 0.6 }],
  holdouts: [],
  customer: customerTag('u-1'),
});
/** The customer the decisions were made for, as its outcomes report it. */
const CUSTOMER = ['u-1'];
const outcome = (event: string, at: number) => {
  const attributed = attributeOutcome(event, { decision_id: decision }, at, CUSTOMER, undefined);
  if (!attributed) throw new Error('not attributed');
  return attributed;
};

describe('outcomeIncrement', () => {
  it('adds the outcome to its cell, in the hour of its decision', () => {
    const click = outcomeIncrement(outcome('promotion clicked', DECIDED + 3 * STATISTICS_BUCKET_MS), 'persona');
    expect(click).toEqual({
      cell: { actionId: 'banner', variant: 'android', context: 'student-sport', channel: 'web', placement: 'home_hero' },
      bucket: Date.parse('2026-03-02T10:00:00Z'),
      counts: { impressions: 0, clicks: 1, conversions: 0 },
    });
  });

  it('a decision that carries its learning context is counted under exactly that context, whatever contextBy says now', () => {
    const withContext = encodeDecisionId({
      catalogVersion: '2',
      channel: 'web',
      placement: 'home_hero',
      issuedAt: new Date(DECIDED),
      nonce: 'n2',
      fallback: false,
      degraded: false,
      persona: 'student-sport',
      actions: [{ actionId: 'banner', variant: 'android', propensity: 0.6, probability: 0.9 }],
      holdouts: [],
      context: 'seg-runners',
      customer: customerTag('u-1'),
    });
    const attributed = attributeOutcome('promotion viewed', { decision_id: withContext }, DECIDED, CUSTOMER, undefined);
    expect(attributed).toBeDefined();
    for (const contextBy of ['none', 'persona', 'segment'] as const) {
      expect(outcomeIncrement(attributed!, contextBy).cell.context).toBe('seg-runners');
    }
    expect(learningContext('persona', { persona: 'p', context: '-' })).toBe('-');
  });

  it('without a persona context, the context is "-"', () => {
    expect(outcomeIncrement(outcome('promotion viewed', DECIDED), 'none').cell.context).toBe('-');
    expect(outcomeIncrement(outcome('promotion viewed', DECIDED), 'segment').cell.context).toBe('-');
  });
});

describe('the cells of a counted outcome', () => {
  const experimental = encodeDecisionId({
    catalogVersion: '1',
    channel: 'push',
    issuedAt: new Date(DECIDED),
    nonce: 'n2',
    fallback: false,
    degraded: false,
    persona: 'student-sport',
    actions: [{ actionId: 'onboarding', variant: 'short', experiment: { id: 'copy', arm: 'short' }, propensity: 0.5 }],
    holdouts: ['winback', 'vip'],
    customer: customerTag('u-1'),
  });
  const tapped = attributeOutcome('push notification tapped', { decision_id: experimental }, DECIDED, CUSTOMER, undefined)!;

  it('the served action\'s cell names the experiment arm it was served under', () => {
    expect(outcomeIncrement(tapped, 'persona').cell).toEqual({
      actionId: 'onboarding',
      variant: 'short',
      experiment: 'copy',
      arm: 'short',
      context: 'student-sport',
      channel: 'push',
    });
  });

  it('then one control cell per holdout experiment: no action, arm control, the decision\'s context and channel', () => {
    const [action, ...controls] = countedCells(tapped, 'persona').map(parseCellKey);
    expect(action).toEqual(outcomeIncrement(tapped, 'persona').cell);
    expect(controls).toEqual([
      { actionId: '', experiment: 'winback', arm: 'control', context: 'student-sport', channel: 'push' },
      { actionId: '', experiment: 'vip', arm: 'control', context: 'student-sport', channel: 'push' },
    ]);
    expect(countedCells(tapped, 'none').map(parseCellKey).every((cell) => cell.context === '-')).toBe(true);
  });

  it('a conversion counts within the conversion window, an impression or a click within the attribution window', () => {
    const hours = (n: number) => DECIDED + n * STATISTICS_BUCKET_MS;
    expect(attributeOutcome('order completed', { decision_id: decision }, hours(23), CUSTOMER, undefined, 24 * STATISTICS_BUCKET_MS)).toBeDefined();
    expect(attributeOutcome('order completed', { decision_id: decision }, hours(25), CUSTOMER, undefined, 24 * STATISTICS_BUCKET_MS)).toBeUndefined();
    expect(attributeOutcome('promotion clicked', { decision_id: decision }, hours(25), CUSTOMER, undefined, 24 * STATISTICS_BUCKET_MS)).toBeDefined();
    expect(attributeOutcome('order completed', { decision_id: decision }, hours(24 * 20), CUSTOMER, undefined, 30 * 24 * STATISTICS_BUCKET_MS)).toBeDefined();
    expect(attributeOutcome('promotion clicked', { decision_id: decision }, DECIDED + ATTRIBUTION_WINDOW_MS + 1, CUSTOMER, undefined, 30 * 24 * STATISTICS_BUCKET_MS)).toBeUndefined();
  });

  it('the learning settings used without a catalog are the catalog\'s defaults', () => {
    const loaded = loadCatalog({ kind: 'kairos/v1', name: 'defaults' }, 'object');
    if (!loaded.ok) throw new Error('the empty catalog loads');
    expect(DEFAULT_OUTCOME_LEARNING).toEqual({ contextBy: loaded.catalog.learning.contextBy, conversionWindowMs: loaded.catalog.learning.conversionWindowMs });
  });
});

describe('windowedCounts', () => {
  const cell = { actionId: 'banner', variant: 'android', context: '-', channel: 'web' as const };
  const row = (hour: number, impressions: number, clicks: number): StatisticsRow => ({
    cell,
    bucket: hour * STATISTICS_BUCKET_MS,
    counts: { impressions, clicks, conversions: 0 },
  });

  it('sums the buckets inside the window and leaves out older ones', () => {
    const now = 100 * STATISTICS_BUCKET_MS + 1;
    const totals = windowedCounts([row(99, 10, 2), row(90, 5, 1), row(80, 100, 50)], now, 12 * STATISTICS_BUCKET_MS);
    expect(totals.get(cellKey(cell))).toEqual({ impressions: 15, clicks: 3, conversions: 0 });
  });

  it('gives the same totals for any order of the rows', () => {
    const rows = fc.array(fc.tuple(fc.integer({ min: 0, max: 200 }), fc.nat(50), fc.nat(50)).map(([h, i, c]) => row(h, i, c)), { maxLength: 50 });
    fc.assert(
      fc.property(rows, fc.integer({ min: 1, max: 300 }), (list, windowHours) => {
        const now = 200 * STATISTICS_BUCKET_MS;
        const forward = windowedCounts(list, now, windowHours * STATISTICS_BUCKET_MS);
        const backward = windowedCounts([...list].reverse(), now, windowHours * STATISTICS_BUCKET_MS);
        expect([...backward.entries()]).toEqual([...forward.entries()]);
      }),
    );
  });
});

describe('posterior', () => {
  it('adds rewards to α and non-rewarded trials to β', () => {
    expect(posterior({ impressions: 1000, clicks: 334, conversions: 12 }, { alpha: 1, beta: 1 }, 'click')).toEqual({ alpha: 335, beta: 667 });
    expect(posterior({ impressions: 1000, clicks: 334, conversions: 12 }, { alpha: 2, beta: 8 }, 'conversion')).toEqual({ alpha: 14, beta: 996 });
  });

  it('never lowers β below the prior when rewards outnumber reported impressions', () => {
    expect(posterior({ impressions: 1, clicks: 3, conversions: 0 }, { alpha: 1, beta: 1 }, 'click')).toEqual({ alpha: 4, beta: 1 });
  });

  it('is the prior without statistics', () => {
    expect(posterior(undefined, { alpha: 1, beta: 1 }, 'click')).toEqual({ alpha: 1, beta: 1 });
  });
});
