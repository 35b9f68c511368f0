/**
 * The decision record's log line (evaluation/decision-record.ts
 * `decisionRecordLine`), written key by key with the eligible list's JSON
 * kept per list, is byte for byte the line of one `JSON.stringify` of the
 * record: for any record, first seen or with an eligible list seen before.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DECISION_RECORD_LINE_PREFIX,
  DECISION_RECORD_VERSION,
  decisionRecordLine,
  loggedArm,
  type LoggedArm,
  type LoggedDecisionRecord,
} from '#domain/evaluation/decision-record.ts';

const text = fc.string({ maxLength: 12, unit: 'binary' });
const number = fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1e6, noNaN: true }), fc.constant(0));
const arm: fc.Arbitrary<LoggedArm> = fc
  .tuple(text, fc.option(text, { nil: undefined }), number, number)
  .map(([id, variant, score, probability]) => loggedArm(id, variant, score, probability));

/** A record with its keys in `decisionRecord`'s order, each optional key present or not. */
const record = (eligible: readonly LoggedArm[]): fc.Arbitrary<LoggedDecisionRecord> =>
  fc
    .record({
      id: text,
      cv: text,
      ch: text,
      pl: fc.option(text, { nil: undefined }),
      c: text,
      lc: fc.option(text, { nil: undefined }),
      fb: fc.boolean(),
      dg: fc.boolean(),
      s: fc.array(fc.oneof(fc.nat({ max: 20 }).map((i) => [i] as const), arm), { maxLength: 3 }),
      u: fc.option(fc.nat({ max: 20 }), { nil: undefined }),
      x: fc.option(fc.array(fc.tuple(fc.nat({ max: 2 }), text, text), { minLength: 1, maxLength: 2 }), { nil: undefined }),
      h: fc.option(fc.array(text, { minLength: 1, maxLength: 2 }), { nil: undefined }),
      f: fc.option(
        fc.record({
          sg: fc.array(text, { maxLength: 3 }),
          p: fc.option(text, { nil: undefined }),
          sc: fc.dictionary(text, number, { maxKeys: 3 }),
          fl: fc.dictionary(text, text, { maxKeys: 3 }),
          cx: fc.dictionary(text, text, { maxKeys: 3 }),
        }),
        { nil: undefined },
      ),
    })
    .map((r) => ({
      v: DECISION_RECORD_VERSION,
      id: r.id,
      cv: r.cv,
      ch: r.ch,
      ...(r.pl !== undefined ? { pl: r.pl } : {}),
      c: r.c,
      ...(r.lc !== undefined ? { lc: r.lc } : {}),
      ...(r.fb ? { fb: 1 as const } : {}),
      ...(r.dg ? { dg: 1 as const } : {}),
      e: eligible,
      s: r.s,
      ...(r.u !== undefined ? { u: r.u } : {}),
      ...(r.x !== undefined ? { x: r.x } : {}),
      ...(r.h !== undefined ? { h: r.h } : {}),
      ...(r.f !== undefined
        ? { f: { sg: r.f.sg, ...(r.f.p !== undefined ? { p: r.f.p } : {}), sc: r.f.sc, fl: r.f.fl, cx: r.f.cx } }
        : {}),
    }));

const stringified = (r: LoggedDecisionRecord) => `${DECISION_RECORD_LINE_PREFIX}${JSON.stringify(r).slice(1)}}`;

describe('decisionRecordLine', () => {
  it('is the JSON of the record behind the line prefix, for a new eligible list and for one seen before', () => {
    fc.assert(
      fc.property(
        fc.array(arm, { maxLength: 30 }).chain((eligible) => fc.tuple(record(eligible), record(eligible))),
        ([first, second]) => {
          expect(decisionRecordLine(first)).toBe(stringified(first));
          // The second record shares the first's eligible list (as decisions from one cached bandit policy do).
          expect(second.e).toBe(first.e);
          expect(decisionRecordLine(second)).toBe(stringified(second));
          expect(JSON.parse(decisionRecordLine(second)).decision).toEqual(JSON.parse(JSON.stringify(second)));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('starts with the prefix the local stack recognises and holds no newline', () => {
    const line = decisionRecordLine({ v: DECISION_RECORD_VERSION, id: '1.a\nb', cv: '1', ch: 'web', c: 'x', e: [], s: [] });
    expect(line.startsWith(DECISION_RECORD_LINE_PREFIX)).toBe(true);
    expect(line).not.toContain('\n');
  });
});
