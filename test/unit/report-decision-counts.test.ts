/**
 * The decisions a chunk of the decision log adds to the statistics cells
 * (shared/domain/reports/decision-counts.ts): each served action in its
 * cell (variant, experiment arm, learning context, channel, placement), each
 * control group the customer was in once per decision, in the hour of the
 * decision; the same records in any order give the same increments, and
 * records older than version 4 are refused, not counted in a wrong arm.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DECISION_RECORD_VERSION, readDecisionRecord, type DecisionLogRecord, type LoggedCandidate } from '#domain/evaluation/decision-record.ts';
import { cellKey, STATISTICS_BUCKET_MS } from '#domain/learning/statistics.ts';
import { decisionCells, decisionIncrements } from '#domain/reports/decision-counts.ts';

const HOUR = STATISTICS_BUCKET_MS;
const T0 = Date.parse('2026-11-30T10:00:00Z');

const served = (actionId: string, extra: Partial<LoggedCandidate> = {}): LoggedCandidate => ({ actionId, score: 1, probability: 1, ...extra });

let nonce = 0;
const record = (at: number, served: LoggedCandidate[], extra: Partial<DecisionLogRecord> = {}): DecisionLogRecord => ({
  decisionId: `${Math.floor(at / 1000)}.n${nonce++}`,
  at: new Date(at).toISOString(),
  catalogVersion: '1',
  channel: 'web',
  placement: 'home',
  customer: 'c',
  learningContext: 'fan',
  fallback: false,
  degraded: false,
  eligible: [],
  served,
  holdouts: [],
  ...extra,
});

describe('decisionCells', () => {
  it('one cell per served action (variant, experiment arm), and a control cell per holdout', () => {
    const cells = decisionCells(
      record(T0, [served('hero', { variant: 'b', experiment: { id: 'copy', arm: 'b' } }), served('news')], { holdouts: ['x-vs-y'] }),
    );
    expect(cells).toEqual([
      { actionId: 'hero', variant: 'b', experiment: 'copy', arm: 'b', context: 'fan', channel: 'web', placement: 'home' },
      { actionId: 'news', context: 'fan', channel: 'web', placement: 'home' },
      { actionId: '', experiment: 'x-vs-y', arm: 'control', context: 'fan', channel: 'web', placement: 'home' },
    ]);
    // No placement, no learning context: the cell has none either (NO_CONTEXT).
    const { placement: _p, learningContext: _l, ...bare } = record(T0, [served('hero')]);
    expect(decisionCells(bare)).toEqual([{ actionId: 'hero', context: '-', channel: 'web' }]);
  });
});

describe('decisionIncrements', () => {
  it('sums per (hour, cell); records before version 4 (no holdouts) are refused and counted apart', () => {
    const { holdouts: _h, ...v3 } = record(T0, [served('hero')]);
    const { increments, counted, uncounted } = decisionIncrements([
      record(T0 + 5, [served('hero')]),
      record(T0 + HOUR - 1, [served('hero')]),
      record(T0 + HOUR, [served('hero')]),
      record(T0 + 10, [], { holdouts: ['copy'] }),
      record(T0 + 20, []),
      v3,
    ]);
    expect({ counted, uncounted }).toEqual({ counted: 5, uncounted: 1 });
    expect(increments.map((i) => [i.bucket - T0, i.cell.actionId, i.cell.arm, i.decisions])).toEqual([
      [0, '', 'control', 1],
      [0, 'hero', undefined, 2],
      [HOUR, 'hero', undefined, 1],
    ]);
  });

  it('a version 5 record whose first-ranked arm was not rendered counts what was served in its place, not that arm', () => {
    const record = readDecisionRecord({ v: DECISION_RECORD_VERSION, id: `${T0 / 1000}.n`, cv: '1', ch: 'web', c: 'c', e: [['wish', 1, 0.3333], ['sale', 1, 0.3333], ['news', 1, 0.3333]], s: [[1]], u: 0 });
    expect(record?.unrendered?.actionId).toBe('wish');
    const { increments, counted, uncounted } = decisionIncrements(record ? [record] : []);
    expect({ counted, uncounted }).toEqual({ counted: 1, uncounted: 0 });
    expect(increments.map((i) => [i.cell.actionId, i.decisions])).toEqual([['sale', 1]]);
  });

  const candidate = fc.record({
    actionId: fc.constantFrom('a', 'b', 'c'),
    variant: fc.option(fc.constantFrom('v1', 'v2'), { nil: undefined }),
    experiment: fc.option(fc.record({ id: fc.constantFrom('e1', 'e2'), arm: fc.constantFrom('x', 'y') }), { nil: undefined }),
  });
  const records = fc.array(
    fc.record({
      offset: fc.integer({ min: 0, max: 3 * HOUR }),
      served: fc.array(candidate, { maxLength: 3 }),
      holdouts: fc.uniqueArray(fc.constantFrom('e1', 'e2'), { maxLength: 2 }),
      context: fc.constantFrom('-', 'fan'),
      placement: fc.option(fc.constantFrom('home', 'cart'), { nil: undefined }),
    }),
    { maxLength: 40 },
  );
  const toRecord = (r: { offset: number; served: { actionId: string; variant?: string | undefined; experiment?: { id: string; arm: string } | undefined }[]; holdouts: string[]; context: string; placement?: string | undefined }): DecisionLogRecord => {
    const { placement: _p, ...base } = record(T0 + r.offset, [], { holdouts: r.holdouts, learningContext: r.context });
    return {
      ...base,
      ...(r.placement !== undefined ? { placement: r.placement } : {}),
      served: r.served.map((s) => served(s.actionId, { ...(s.variant !== undefined ? { variant: s.variant } : {}), ...(s.experiment ? { experiment: s.experiment } : {}) })),
    };
  };

  it('any order of the same records gives the same increments, whose sum is every served action and holdout', () => {
    fc.assert(
      fc.property(records, (generated) => {
        const list = generated.map(toRecord);
        const shuffled = [...list].reverse();
        const a = decisionIncrements(list);
        expect(decisionIncrements(shuffled)).toEqual(a);
        const total = a.increments.reduce((sum, i) => sum + i.decisions, 0);
        expect(total).toBe(list.reduce((sum, r) => sum + r.served.length + (r.holdouts?.length ?? 0), 0));
        // Each (bucket, cell) once, each bucket an hour start.
        const ids = a.increments.map((i) => `${i.bucket} ${cellKey(i.cell)}`);
        expect(new Set(ids).size).toBe(ids.length);
        for (const i of a.increments) expect(i.bucket % HOUR).toBe(0);
      }),
      { numRuns: 300 },
    );
  });
});
