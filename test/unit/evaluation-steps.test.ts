/**
 * The deployed evaluation's steps (shared/evaluation-steps.ts): the
 * ListObjectsV2 prefix of a range's days, which decision log objects the
 * map step reads, and the reduce function on partial sums.
 */
import { describe, expect, it } from 'vitest';
import { keyInRange, listPrefixOf } from '#shared/evaluation-steps.ts';
import { evaluationReduce } from '#functions/evaluation-reduce/handler.ts';
import { EMPTY_PARTITION } from '#domain/evaluation/evaluate.ts';
import { addDecision, EMPTY_SUMS } from '#domain/evaluation/estimators.ts';

const at = (iso: string) => Date.parse(iso);

describe('the objects of a range', () => {
  it('lists under the longest common prefix of the range’s dt= folders', () => {
    expect(listPrefixOf('decisions/', at('2026-11-20T06:00:00Z'), at('2026-11-20T18:00:00Z'))).toBe('decisions/dt=2026-11-20/');
    // A day's objects hold what arrived that day: a range from midnight to midnight lists the days either side too (LOG_DAY_MARGIN_MS).
    expect(listPrefixOf('decisions/', at('2026-11-20T00:00:00Z'), at('2026-11-21T00:00:00Z'))).toBe('decisions/dt=2026-11-');
    expect(listPrefixOf('decisions/', at('2026-11-21T00:00:00Z'), at('2026-11-28T00:00:00Z'))).toBe('decisions/dt=2026-11-2');
    expect(listPrefixOf('decisions/', at('2026-11-28T00:00:00Z'), at('2026-12-03T00:00:00Z'))).toBe('decisions/dt=2026-1');
    expect(listPrefixOf('decisions/', at('2026-12-30T00:00:00Z'), at('2027-01-02T00:00:00Z'))).toBe('decisions/dt=202');
  });

  it('reads an object of a day in the range only (and one outside any dt= folder)', () => {
    const from = at('2026-11-20T12:00:00Z');
    const to = at('2026-11-22T00:00:00Z');
    expect(keyInRange('decisions/dt=2026-11-19/kairos-1-2026-11-19-23-59-00-abc.gz', from, to)).toBe(false);
    expect(keyInRange('decisions/dt=2026-11-20/kairos-1-2026-11-20-01-00-00-abc.gz', from, to)).toBe(true);
    expect(keyInRange('decisions/dt=2026-11-21/x.gz', from, to)).toBe(true);
    // Decisions made before midnight that arrived after it: the day after the range's end is read.
    expect(keyInRange('decisions/dt=2026-11-22/x.gz', from, to)).toBe(true);
    expect(keyInRange('decisions/dt=2026-11-23/x.gz', from, to)).toBe(false);
    // An object named by its oldest record's arrival, 23:58 on the day before the range, holds what arrived up to 5 minutes later.
    expect(keyInRange('decisions/dt=2026-11-19/kairos-1-2026-11-19-23-58-00-abc.gz', at('2026-11-20T00:00:00Z'), to)).toBe(true);
    expect(keyInRange('decisions/manual/x.jsonl', from, to)).toBe(true);
  });
});

describe('the reduce function', () => {
  it('sums the shuffle\'s counts and the shards\' partitions and estimates, or refuses with the reason', async () => {
    const decision = { served: 'a', loggingProbability: 0.5, reward: 1, candidateProbabilities: { a: 1 }, loggedSupport: ['a', 'b'] };
    const part = { ...EMPTY_PARTITION, records: 2, sums: addDecision(addDecision(EMPTY_SUMS, decision), { ...decision, served: 'b', reward: 0 }) };
    const evaluation = await evaluationReduce({ shuffled: [{ records: 0, malformed: 1 }], partitions: [part, part], reward: 'click', minSupport: 0.9 });
    expect(evaluation).toMatchObject({ ok: true, records: 4, malformed: 1, replayed: 4, estimate: { decisions: 4, evaluated: 4, ips: { estimate: 1 } } });
    expect(await evaluationReduce({ shuffled: [], partitions: [], reward: 'click', minSupport: 0.9 })).toMatchObject({ ok: false, reason: expect.stringMatching(/^no decision to replay/) });
  });
});
