/**
 * The actions report against figures computed here, apart from the code
 * under test: Wilson's bounds as the roots of the score test's quadratic
 * (1 + z²/n)·p² − (2p̂ + z²/n)·p + p̂² = 0, Newcombe's hybrid bounds from
 * those roots, and the χ² tail of 2 degrees of freedom as exp(−x/2).
 */
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { STATISTICS_BUCKET_MS, type StatisticsCell, type StatisticsRow } from '#domain/learning/statistics.ts';
import { SAMPLE_RATIO_ALPHA, buildActionsReport, type ReportRate } from '#domain/reports/actions.ts';

const TOLERANCE = 1e-9;
const Z = 1.959963984540054;

/** Wilson's bounds as the two roots of the score test's quadratic in p. */
function wilsonRoots(successes: number, n: number): [number, number] {
  const p = successes / n;
  const a = 1 + (Z * Z) / n;
  const b = -(2 * p + (Z * Z) / n);
  const c = p * p;
  const root = Math.sqrt(b * b - 4 * a * c);
  return [(-b - root) / (2 * a), (-b + root) / (2 * a)];
}

function newcombe(xa: number, na: number, xb: number, nb: number): [number, number, number] {
  const [pa, pb] = [xa / na, xb / nb];
  const [la, ua] = wilsonRoots(xa, na);
  const [lb, ub] = wilsonRoots(xb, nb);
  const d = pa - pb;
  return [d, d - Math.sqrt((pa - la) ** 2 + (ub - pb) ** 2), d + Math.sqrt((ua - pa) ** 2 + (pb - lb) ** 2)];
}

function expectRate(actual: ReportRate, successes: number, n: number): void {
  const [low, high] = wilsonRoots(successes, n);
  expect(actual.rate).toBe(successes / n);
  expect(Math.abs((actual.low as number) - low)).toBeLessThan(TOLERANCE);
  expect(Math.abs((actual.high as number) - high)).toBeLessThan(TOLERANCE);
}

function catalog(input: CatalogInput): CompiledCatalog {
  const result = loadCatalog(input, 'object', { version: 1 });
  if (!result.ok) throw new Error(`catalog: ${JSON.stringify(result.problems)}`);
  return result.catalog;
}

const banner = (id: string) => ({ id, name: id, content: { web: { title: id } } });

/** Holdout 20%; arm x weight 1, arm y weight 3: shares control 0.2, x 0.2, y 0.6. */
const live = catalog({
  learning: { reward: 'conversion' },
  actions: [banner('offer-x'), banner('offer-y'), banner('plain')],
  experiments: [
    { id: 'x-vs-y', kind: 'actions', holdout: 0.2, arms: [{ id: 'x', action: 'offer-x' }, { id: 'y', action: 'offer-y', weight: 3 }] },
  ],
});

const HOUR = STATISTICS_BUCKET_MS;
const FROM = Date.parse('2026-11-20T00:00:00Z');
const TO = FROM + 48 * HOUR;

const row = (cell: Partial<StatisticsCell>, bucket: number, impressions: number, clicks: number, conversions: number): StatisticsRow => ({
  cell: { actionId: 'plain', context: '-', channel: 'web', ...cell },
  bucket,
  counts: { impressions, clicks, conversions },
});

const control = { actionId: '', experiment: 'x-vs-y', arm: 'control', placement: 'home' } as const;
const armX = { actionId: 'offer-x', experiment: 'x-vs-y', arm: 'x', placement: 'home' } as const;
const armY = { actionId: 'offer-y', experiment: 'x-vs-y', arm: 'y', placement: 'home' } as const;

describe('buildActionsReport', () => {
  it('sums a cell over buckets and shards, with Wilson intervals on both rates, and leaves out what is outside the range', () => {
    const rows = [
      row({ placement: 'home' }, FROM, 100, 12, 3),
      row({ placement: 'home' }, FROM, 50, 8, 1), // the same cell from another shard
      row({ placement: 'home' }, FROM + 5 * HOUR, 113, 20, 4),
      row({ placement: 'home' }, FROM - HOUR, 1_000, 1_000, 1_000), // before the range
      row({ placement: 'home' }, TO, 1_000, 1_000, 1_000), // at its end (exclusive)
    ];
    const report = buildActionsReport(rows, live, { from: FROM, to: TO });
    expect(report).toMatchObject({ from: '2026-11-20T00:00:00.000Z', to: '2026-11-22T00:00:00.000Z', reward: 'conversion' });
    expect(report.rows).toHaveLength(1);
    const [only] = report.rows;
    expect(only).toMatchObject({ actionId: 'plain', context: '-', channel: 'web', placement: 'home', impressions: 263, clicks: 40, conversions: 8 });
    expectRate(only!.clickRate, 40, 263);
    expectRate(only!.conversionRate, 8, 263);
  });

  it('keeps cells apart by variant, context, channel and placement, and filters by channel, placement and experiment', () => {
    const rows = [
      row({ variant: 'a', context: 'bargain-hunter', placement: 'home' }, FROM, 10, 1, 0),
      row({ variant: 'b', context: 'bargain-hunter', placement: 'home' }, FROM, 10, 2, 0),
      row({ variant: 'a', context: '-', placement: 'home' }, FROM, 10, 3, 0),
      row({ variant: 'a', context: '-', channel: 'app', placement: 'home' }, FROM, 10, 4, 0),
      row({ variant: 'a', context: '-', placement: 'sidebar' }, FROM, 10, 5, 0),
      row(armX, FROM, 10, 6, 0),
    ];
    const all = buildActionsReport(rows, live, { from: FROM, to: TO });
    expect(all.rows.map((r) => r.clicks).sort()).toEqual([1, 2, 3, 4, 5, 6]);
    const app = buildActionsReport(rows, live, { from: FROM, to: TO, channel: 'app' });
    expect(app.rows.map((r) => r.clicks)).toEqual([4]);
    expect(app.channel).toBe('app');
    const sidebar = buildActionsReport(rows, live, { from: FROM, to: TO, placement: 'sidebar' });
    expect(sidebar.rows.map((r) => r.clicks)).toEqual([5]);
    const experiment = buildActionsReport(rows, live, { from: FROM, to: TO, experiment: 'x-vs-y' });
    expect(experiment.rows.map((r) => [r.actionId, r.arm, r.clicks])).toEqual([['offer-x', 'x', 6]]);
    expect(experiment.experiments.map((e) => e.id)).toEqual(['x-vs-y']);
  });

  it('decisions: summed per cell and per arm from the decision log counts, 0 where none were counted, a cell with decisions only reported', () => {
    const rows: StatisticsRow[] = [
      { ...row({ placement: 'home' }, FROM, 100, 12, 3), decisions: 300 },
      { ...row({ placement: 'home' }, FROM + HOUR, 0, 0, 0), decisions: 20 }, // another shard, another hour: decisions only
      { ...row({ placement: 'home' }, TO, 0, 0, 0), decisions: 1_000 }, // outside the range
      row({ placement: 'sidebar' }, FROM, 10, 1, 0), // outcomes, no decision counted
      { ...row({ actionId: 'served-only', placement: 'home' }, FROM, 0, 0, 0), decisions: 7 },
      { ...row(control, FROM, 0, 0, 0), decisions: 40 },
      { ...row(armX, FROM, 30, 3, 1), decisions: 50 },
      { ...row(armX, FROM + HOUR, 0, 0, 0), decisions: 5 },
    ];
    const report = buildActionsReport(rows, live, { from: FROM, to: TO });
    const decisions = Object.fromEntries(report.rows.map((r) => [`${r.actionId ?? ''}/${r.arm ?? ''}/${r.placement ?? ''}`, r.decisions]));
    expect(decisions).toEqual({ 'plain//home': 320, 'plain//sidebar': 0, 'served-only//home': 7, '/control/home': 40, 'offer-x/x/home': 55 });
    const arms = report.experiments.find((e) => e.id === 'x-vs-y')?.arms ?? [];
    expect(arms.map((a) => [a.arm, a.decisions])).toEqual([
      ['control', 40],
      ['x', 55],
      ['y', 0],
    ]);
    expect(report.rows.every((r) => Number.isInteger(r.decisions))).toBe(true);
  });

  it('a row without impressions has no rate and no interval', () => {
    const report = buildActionsReport([row({}, FROM, 0, 0, 1)], live, { from: FROM, to: TO });
    expect(report.rows[0]?.clickRate).toEqual({ rate: null, low: null, high: null });
    // A reward without its impression is still counted, but is no proportion of zero trials.
    expect(report.rows[0]?.conversions).toBe(1);
  });

  it('per experiment: arm rates, uplift against control with Newcombe intervals, and the split served on the configured one', () => {
    // 1,000 exposures split exactly as configured: 200 / 200 / 600.
    const rows = [
      row(control, FROM, 120, 0, 4),
      row({ ...control, context: 'loyal' }, FROM + HOUR, 80, 0, 2),
      row(armX, FROM, 200, 30, 14),
      row(armY, FROM, 600, 54, 21),
    ];
    const report = buildActionsReport(rows, live, { from: FROM, to: TO });
    const control1 = report.rows.find((r) => r.arm === 'control' && r.context === '-');
    expect(control1).toBeDefined();
    expect(control1?.actionId).toBeUndefined();
    const [experiment] = report.experiments;
    expect(experiment).toMatchObject({ id: 'x-vs-y', inCatalog: true, kind: 'actions', status: 'running', holdout: 0.2 });
    expect(experiment!.arms.map((a) => [a.arm, a.actionId, a.impressions, a.clicks, a.conversions])).toEqual([
      ['control', undefined, 200, 0, 6],
      ['x', 'offer-x', 200, 30, 14],
      ['y', 'offer-y', 600, 54, 21],
    ]);
    const [ctl, x, y] = experiment!.arms;
    expect(ctl!.uplift).toBeUndefined();
    expectRate(x!.conversionRate, 14, 200);
    expectRate(y!.clickRate, 54, 600);
    for (const [arm, clicks, conversions, n] of [[x!, 30, 14, 200], [y!, 54, 21, 600]] as const) {
      const [dConv, lowConv, highConv] = newcombe(conversions, n, 6, 200);
      expect(Math.abs((arm.uplift!.conversion.difference as number) - dConv)).toBeLessThan(TOLERANCE);
      expect(Math.abs((arm.uplift!.conversion.low as number) - lowConv)).toBeLessThan(TOLERANCE);
      expect(Math.abs((arm.uplift!.conversion.high as number) - highConv)).toBeLessThan(TOLERANCE);
      // Control customers see no action: 0 clicks, whose Wilson lower bound is exactly 0.
      const [dClick, lowClick, highClick] = newcombe(clicks, n, 0, 200);
      expect(Math.abs((arm.uplift!.click.difference as number) - dClick)).toBeLessThan(TOLERANCE);
      expect(Math.abs((arm.uplift!.click.low as number) - lowClick)).toBeLessThan(TOLERANCE);
      expect(Math.abs((arm.uplift!.click.high as number) - highClick)).toBeLessThan(TOLERANCE);
    }
    expect(x!.expectedShare).toBeCloseTo(0.2, 12);
    expect(y!.expectedShare).toBeCloseTo(0.6, 12);
    expect(experiment!.sampleRatio).toMatchObject({ observed: [200, 200, 600], degreesOfFreedom: 2, mismatch: false });
    expect(experiment!.sampleRatio!.chiSquare).toBeLessThan(TOLERANCE);
    expect(Math.abs(experiment!.sampleRatio!.pValue - 1)).toBeLessThan(TOLERANCE);
  });

  it('flags a sample-ratio mismatch below p = 0.001: 250 / 200 / 550 against 0.2 / 0.2 / 0.6', () => {
    const rows = [row(control, FROM, 250, 0, 0), row(armX, FROM, 200, 0, 0), row(armY, FROM, 550, 0, 0)];
    const check = buildActionsReport(rows, live, { from: FROM, to: TO }).experiments[0]!.sampleRatio!;
    // χ² = 50²/200 + 0²/200 + 50²/600; 2 degrees of freedom: P(χ² ≥ x) = exp(−x/2).
    const chiSquare = 2500 / 200 + 2500 / 600;
    expect(Math.abs((check.chiSquare as number) - chiSquare)).toBeLessThan(TOLERANCE);
    expect(Math.abs(check.pValue - Math.exp(-chiSquare / 2))).toBeLessThan(TOLERANCE);
    expect(check.pValue).toBeLessThan(SAMPLE_RATIO_ALPHA);
    expect(check.mismatch).toBe(true);
    // Within chance: 210 / 195 / 595 (χ² ≈ 0.67): no flag.
    const fine = buildActionsReport([row(control, FROM, 210, 0, 0), row(armX, FROM, 195, 0, 0), row(armY, FROM, 595, 0, 0)], live, { from: FROM, to: TO });
    const fineChi = 100 / 200 + 25 / 200 + 25 / 600;
    expect(Math.abs(fine.experiments[0]!.sampleRatio!.pValue - Math.exp(-fineChi / 2))).toBeLessThan(TOLERANCE);
    expect(fine.experiments[0]!.sampleRatio!.mismatch).toBe(false);
  });

  it('exposures in an arm the live catalog no longer has are a mismatch; an experiment gone from the catalog has no split to test', () => {
    const rows = [row(armX, FROM, 100, 0, 0), row(armY, FROM, 300, 0, 0), row({ ...armX, arm: 'z', actionId: 'offer-z' }, FROM, 5, 0, 0)];
    const [experiment] = buildActionsReport(rows, live, { from: FROM, to: TO }).experiments;
    expect(experiment!.arms.map((a) => a.arm)).toEqual(['control', 'x', 'y', 'z']);
    expect(experiment!.arms[3]!.expectedShare).toBeUndefined();
    expect(experiment!.sampleRatio).toMatchObject({ chiSquare: null, pValue: 0, mismatch: true });
    const gone = buildActionsReport([row({ ...armX, experiment: 'old' }, FROM, 10, 1, 0)], live, { from: FROM, to: TO });
    expect(gone.experiments.map((e) => [e.id, e.inCatalog, e.sampleRatio])).toEqual([
      ['x-vs-y', true, expect.objectContaining({ pValue: 1, mismatch: false })],
      ['old', false, undefined],
    ]);
    expect(gone.experiments[1]!.arms.map((a) => [a.arm, a.impressions])).toEqual([['control', 0], ['x', 10]]);
  });

  it('names the catalog reward and reports every catalog experiment even without statistics', () => {
    const clicks = catalog({ actions: [banner('a'), banner('b')], experiments: [{ id: 'ab', kind: 'actions', arms: [{ id: 'a', action: 'a' }, { id: 'b', action: 'b' }] }] });
    const report = buildActionsReport([], clicks, { from: FROM, to: TO });
    expect(report.reward).toBe('click');
    expect(report.rows).toEqual([]);
    expect(report.experiments[0]).toMatchObject({ id: 'ab', holdout: 0, sampleRatio: { observed: [0, 0, 0], pValue: 1, mismatch: false } });
    expect(report.experiments[0]!.arms[1]!.uplift).toEqual({
      click: { difference: null, low: null, high: null },
      conversion: { difference: null, low: null, high: null },
    });
  });
});
