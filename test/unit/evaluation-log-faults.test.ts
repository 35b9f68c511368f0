/**
 * The decision log as it arrives, not as it was written: the same record
 * delivered twice (Firehose and the log subscription deliver at least
 * once), corrupt and truncated lines, records whose chances no policy could
 * have logged. A decision delivered twice is evaluated once by the map step
 * that reads both deliveries (shared/domain/evaluation/evaluate.ts
 * `PartitionInput.seen`) and counted once by the decision counts of a chunk
 * that holds both (shared/domain/reports/decision-counts.ts); a corrupt
 * record is counted as unreadable, never weighed nor thrown on.
 */
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { decisionRecordsOfText } from '#domain/evaluation/decision-record.ts';
import { evaluatePartition, reduceEvaluation, type OutcomeIndex } from '#domain/evaluation/evaluate.ts';
import { decisionIncrements } from '#domain/reports/decision-counts.ts';

function catalog(input: object): CompiledCatalog {
  const result = loadCatalog(input, 'object', { version: 3 });
  if (!result.ok) throw new Error(`catalog: ${JSON.stringify(result.problems)}`);
  return result.catalog;
}

/** The candidate serves `a` first to everyone. */
const candidate = catalog({
  learning: { enabled: false },
  actions: [
    { id: 'a', name: 'a', value: 2, content: { web: { title: 'A' } } },
    { id: 'b', name: 'b', content: { web: { title: 'B' } } },
  ],
});

const SECOND = Date.parse('2026-11-20T10:00:00Z') / 1000;
const FEATURES = { sg: [], sc: {}, fl: {}, cx: {} };

/** A version 5 log line: `a` and `b` at 0.5 each, `served` (its index in `e`) served, sampled. */
const line = (nonce: string, served: 0 | 1, extra: Record<string, unknown> = {}): string =>
  JSON.stringify({
    level: 'INFO',
    message: 'decision record',
    decision: { v: 5, id: `${SECOND}.${nonce}`, cv: '3', ch: 'web', c: 'pseudonym', e: [['a', 2, 0.5], ['b', 1, 0.5]], s: [[served]], f: FEATURES, ...extra },
  });

/** Clicks on `a` for every decision served `a`. */
const outcomes: OutcomeIndex = { [`${SECOND}.n1`]: ['click a'], [`${SECOND}.n3`]: ['click a'] };

const evaluate = (texts: readonly string[]) => {
  const seen = new Set<string>();
  const parts = texts.map((text) => {
    const { records, malformed } = decisionRecordsOfText(text);
    return evaluatePartition(records, { candidate, outcomes, seen }, malformed);
  });
  return reduceEvaluation(parts, { reward: 'click', minSupport: 0 });
};

describe('a decision delivered twice', () => {
  const log = [line('n1', 0), line('n2', 1), line('n3', 0), line('n4', 1)];

  it('is evaluated once when one map step reads both deliveries, in one partition or two', () => {
    const once = evaluate([log.join('\n')]);
    // n1 three times and n2 once more: in the same object, and in a second object of the same step.
    const twice = evaluate([[...log, log[0], log[1]].join('\n'), [log[0]].join('\n')]);
    expect(once).toMatchObject({ ok: true, records: 4, duplicates: 0, replayed: 4 });
    expect(twice).toMatchObject({ ok: true, records: 7, duplicates: 3, replayed: 4 });
    if (!once.ok || !twice.ok) throw new Error('refused');
    expect(twice.estimate).toEqual(once.estimate);
    // The candidate serves `a` (w = 2 on the two decisions that served it, both clicked): IPS = (2 + 2) / 4.
    expect(once.estimate.ips.estimate).toBe(1);
  });

  it('is counted once in the decision counts of a chunk that holds it twice', () => {
    const { records } = decisionRecordsOfText([...log, log[0], log[0]].join('\n'));
    const counts = decisionIncrements(records);
    expect({ counted: counts.counted, duplicates: counts.duplicates }).toEqual({ counted: 4, duplicates: 2 });
    expect(counts.increments.map((i) => [i.cell.actionId, i.decisions])).toEqual([
      ['a', 2],
      ['b', 2],
    ]);
  });
});

describe('corrupt lines', () => {
  it('a truncated line, a probability above 1 or below 0, eligible chances summing above 1: unreadable, never weighed', () => {
    const good = line('n1', 0);
    const corrupt = [
      good.slice(0, good.length - 7),
      line('n5', 0, { e: [['a', 2, 1.5], ['b', 1, 0.5]] }),
      line('n6', 0, { e: [['a', 2, 0.5], ['b', 1, -0.5]] }),
      line('n7', 0, { e: [['a', 2, 0.7], ['b', 1, 0.7]] }),
      line('n8', 1, { s: [['b', 1, 2]] }),
    ];
    const { records, malformed } = decisionRecordsOfText([good, ...corrupt].join('\n'));
    expect(records.map((r) => r.decisionRef)).toEqual([`${SECOND}.n1`]);
    expect(malformed).toBe(corrupt.length);
  });

  it('a log of nothing but unreadable lines is refused, saying so', () => {
    const good = line('n1', 0);
    const evaluation = evaluate([[good.slice(0, 40), line('n7', 0, { e: [['a', 2, 0.7], ['b', 1, 0.7]] })].join('\n')]);
    expect(evaluation).toMatchObject({ ok: false, malformed: 2, reason: expect.stringMatching(/^no decision to replay \(0 record\(s\) read; .*; 2 line\(s\) unreadable\)$/) });
  });

  it('chances that sum to just above 1 by the log’s rounding to 4 digits are read', () => {
    // Three arms at 1/3 each, logged 0.3333: fine; 0.3334 each (a sum of 1.0002): within the rounding, read.
    const third = line('n9', 0, { e: [['a', 2, 0.3334], ['b', 1, 0.3334], ['c', 1, 0.3334]] });
    expect(decisionRecordsOfText(third).records).toHaveLength(1);
  });

  it('a version 1 record whose features are of the wrong shape is unreadable, never replayed', () => {
    const v1 = {
      decisionId: `${SECOND}.n10`,
      at: '2026-11-20T10:00:00.000Z',
      catalogVersion: '3',
      channel: 'web',
      customer: 'pseudonym',
      fallback: false,
      degraded: false,
      eligible: [{ actionId: 'a', score: 2, probability: 1 }],
      served: [{ actionId: 'a', score: 2, probability: 1 }],
      features: { segments: 'vip', scores: {}, fields: { 'traits.tier': 1 }, context: null },
    };
    const { records, malformed } = decisionRecordsOfText(JSON.stringify(v1));
    expect({ records: records.length, malformed }).toEqual({ records: 0, malformed: 1 });
    expect(() => evaluate([JSON.stringify(v1)])).not.toThrow();
  });
});
