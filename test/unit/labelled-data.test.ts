/**
 * The labelled files of the churn trainer (scripts/train-churn.ts
 * `parseTrainingData`) and of the profile export (scripts/export-profiles.ts
 * `parseLabels`): an `at` that is no ISO-8601 date-time, or a day the
 * calendar does not have, is a usage error naming the line, never read as
 * another instant.
 */
import { describe, expect, it } from 'vitest';
import { parseLabels } from '#scripts/export-profiles.ts';
import { parseTrainingData } from '#scripts/train-churn.ts';

const trainingLine = (at: unknown) => JSON.stringify({ profile: { userId: 'u-1' }, churned: true, at });
const labelLine = (at: unknown) => JSON.stringify({ userId: 'u-1', churned: false, at });

describe('"at" of a labelled line', () => {
  it.each(['2026-02-30T00:00:00Z', '2026-11-31T10:00:00Z', 'Nov 20 2026', '2026-11-20T25:00:00Z', 'yesterday', 42])(
    '%j is refused, naming the file and line',
    (at) => {
      expect(() => parseTrainingData(`${trainingLine('2026-11-01T00:00:00Z')}\n${trainingLine(at)}`, 'labelled.jsonl')).toThrow(
        'labelled.jsonl:2: "at" must be an ISO-8601 date-time such as 2026-11-01T00:00:00Z',
      );
      expect(() => parseLabels(labelLine(at), 'labels.jsonl')).toThrow('labels.jsonl:1: "at" must be an ISO-8601 date-time such as 2026-11-01T00:00:00Z');
    },
  );

  it('an ISO-8601 date-time is read as that instant, in UTC when it has no zone', () => {
    const rows = parseTrainingData([trainingLine('2026-11-01T12:00:00+02:00'), trainingLine('2026-11-01T12:00:00'), trainingLine(undefined)].join('\n'), 'l');
    expect(rows.map((r) => r.at)).toEqual(['2026-11-01T10:00:00.000Z', '2026-11-01T12:00:00.000Z', undefined]);
    expect(parseLabels(labelLine('2026-11-01T12:00:00+02:00'), 'l').get('u-1')).toEqual({ churned: false, at: '2026-11-01T12:00:00+02:00' });
  });
});
