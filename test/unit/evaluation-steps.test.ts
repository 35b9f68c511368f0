/**
 * The deployed evaluation's steps (shared/evaluation-steps.ts): the
 * ListObjectsV2 prefix of a range's days, which decision log objects the
 * map step reads, and the reduce function on partial sums read from the
 * maps' ResultWriter results.
 */
import { describe, expect, it } from 'vitest';
import { RESULTS_PREFIX, keyInRange, listPrefixOf, readMapResults, resultsPrefixOf, writeMapResults, type MapResultsManifest } from '#shared/evaluation-steps.ts';
import { memoryObjects } from '../support/memory-objects.ts';
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
  const BUCKET = 'kairos-evaluation';
  const decision = { served: 'a', loggingProbability: 0.5, reward: 1, candidateProbabilities: { a: 1 }, loggedSupport: ['a', 'b'] };
  const part = { ...EMPTY_PARTITION, records: 2, sums: addDecision(addDecision(EMPTY_SUMS, decision), { ...decision, served: 'b', reward: 0 }) };

  it('reads the shuffle\'s counts and the shards\' partitions from the maps\' results, and estimates, or refuses with the reason', async () => {
    const objects = memoryObjects();
    const reduce = evaluationReduce(objects);
    const event = {
      shuffled: await writeMapResults(objects, BUCKET, resultsPrefixOf('execution-1'), 'shuffle', [{ records: 0, malformed: 1 }]),
      partitions: await writeMapResults(objects, BUCKET, resultsPrefixOf('execution-1'), 'shards', [part, part]),
      reward: 'click' as const,
      minSupport: 0.9,
    };
    // What travels in the execution's state is where the results are, whatever their size.
    expect(JSON.stringify(event).length).toBeLessThan(400);
    expect(await reduce(event)).toMatchObject({ ok: true, records: 4, malformed: 1, replayed: 4, estimate: { decisions: 4, evaluated: 4, ips: { estimate: 1 } } });
    const empty = { ...event, shuffled: await writeMapResults(objects, BUCKET, resultsPrefixOf('execution-1'), 'none-1', []), partitions: await writeMapResults(objects, BUCKET, resultsPrefixOf('execution-1'), 'none-2', []) };
    expect(await reduce(empty)).toMatchObject({ ok: false, reason: expect.stringMatching(/^no decision to replay/) });
  });

  it('finds the maps’ results of an execution under its own prefix, in the prefix the bucket expires and the reduce step may read', async () => {
    expect(resultsPrefixOf('evaluation-run-1')).toBe('results/evaluation-run-1');
    expect(resultsPrefixOf('evaluation-run-1').startsWith(RESULTS_PREFIX)).toBe(true);
    // Step Functions writes a map run's files under `<prefix>/<map run id>/`: the twin writes them there too.
    const objects = memoryObjects();
    expect(await writeMapResults(objects, BUCKET, resultsPrefixOf('evaluation-run-1'), 'run-1', [part])).toEqual({ Bucket: BUCKET, Key: 'results/evaluation-run-1/run-1/manifest.json' });
    expect(objects.keys(BUCKET)).toEqual(['results/evaluation-run-1/run-1/SUCCEEDED_0.json', 'results/evaluation-run-1/run-1/manifest.json']);
  });

  it('reads every result file of a ResultWriter manifest, each child\'s Output, in the manifest\'s order', async () => {
    const objects = memoryObjects();
    // As Step Functions writes them: result files of child executions (Input and Output as JSON text), and the manifest.
    const child = (name: string, output: unknown) => ({ ExecutionArn: `arn:x:${name}`, Name: name, Status: 'SUCCEEDED', Input: '{"shard":0}', InputDetails: { Included: true }, Output: JSON.stringify(output), OutputDetails: { Included: true } });
    await objects.put(BUCKET, 'results/run-1/SUCCEEDED_0.json', Buffer.from(JSON.stringify([child('a', part), child('b', part)])));
    await objects.put(BUCKET, 'results/run-1/SUCCEEDED_1.json', Buffer.from(JSON.stringify([child('c', EMPTY_PARTITION)])));
    const manifest: MapResultsManifest = {
      DestinationBucket: BUCKET,
      MapRunArn: 'arn:aws:states:eu-west-1:123456789012:mapRun:x/Shards:run-1',
      ResultFiles: { FAILED: [], PENDING: [], SUCCEEDED: [{ Key: 'results/run-1/SUCCEEDED_0.json', Size: 1 }, { Key: 'results/run-1/SUCCEEDED_1.json', Size: 1 }] },
    };
    await objects.put(BUCKET, 'results/run-1/manifest.json', Buffer.from(JSON.stringify(manifest)));
    expect(await readMapResults(objects, { Bucket: BUCKET, Key: 'results/run-1/manifest.json' })).toEqual([part, part, EMPTY_PARTITION]);
    // A map run with a failed item is a defect (the state machine tolerates none): the step fails, naming the manifest.
    await objects.put(BUCKET, 'results/run-2/manifest.json', Buffer.from(JSON.stringify({ ...manifest, ResultFiles: { ...manifest.ResultFiles, FAILED: [{ Key: 'results/run-2/FAILED_0.json', Size: 1 }] } })));
    await expect(readMapResults(objects, { Bucket: BUCKET, Key: 'results/run-2/manifest.json' })).rejects.toThrow(/results\/run-2\/manifest\.json has 1 result file\(s\) of failed or pending items/);
  });
});
