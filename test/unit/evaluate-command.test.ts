/**
 * `npm run evaluate`'s command line (scripts/evaluate.ts): its options and
 * their mistakes (one line, exit code 2, no stack trace), the log files a
 * range reads, a candidate catalog's problems named by file and line, and the
 * printed result. The evaluation itself runs end to end in
 * test/e2e/evaluate.e2e.test.ts.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { MAX_HOLDOUT_EXPERIMENTS } from '#domain/transaction-budget.ts';
import { formatEvaluation, localDataDir, localDecisionKey, logFiles, main, parseEvaluateArgs, readCandidate } from '#scripts/evaluate.ts';
import type { Evaluation } from '#domain/evaluation/evaluate.ts';
import { MAX_CATALOG_BYTES } from '#domain/catalog/load.ts';

const folder = mkdtempSync(join(tmpdir(), 'kairos-evaluate-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
afterEach(() => vi.restoreAllMocks());

describe('the command line', () => {
  it('takes the candidate, the folder or the deployed log, the range and the support bar', () => {
    expect(parseEvaluateArgs(['--catalog', 'c.yaml', '--log', 'logs', '--from', '2026-11-20', '--to', '2026-11-21', '--min-support', '0.8', '--dynamodb', 'http://127.0.0.1:8000'], {})).toEqual({
      catalog: 'c.yaml',
      log: 'logs',
      deployed: false,
      from: Date.parse('2026-11-20T00:00:00Z'),
      // A bare day of --to reads through its end.
      to: Date.parse('2026-11-22T00:00:00Z'),
      minSupport: 0.8,
      dynamodb: 'http://127.0.0.1:8000',
      json: false,
    });
    expect(parseEvaluateArgs(['--catalog', 'c.yaml', '--deployed', '--from', '2026-11-20', '--to', '2026-11-20T12:00:00Z'], { KAIROS_EVALUATION_STATE_MACHINE: 'arn:aws:states:eu-west-1:123456789012:stateMachine:x' })).toMatchObject({
      deployed: true,
      stateMachine: 'arn:aws:states:eu-west-1:123456789012:stateMachine:x',
      to: Date.parse('2026-11-20T12:00:00Z'),
      minSupport: 0.9,
    });
    expect(parseEvaluateArgs(['-h'], {})).toBe('help');
  });

  it.each([
    [[], /--catalog <candidate.yaml> is required/],
    [['--catalog', 'c.yaml', '--log', 'x', '--deployed'], /--log and --deployed exclude each other/],
    [['--catalog', 'c.yaml', '--deployed', '--from', '2026-11-20', '--to', '2026-11-21'], /--deployed needs --state-machine/],
    [['--catalog', 'c.yaml', '--deployed', '--state-machine', 'arn:aws:states:x'], /--deployed needs --from and --to/],
    [['--catalog', 'c.yaml', '--state-machine', 'arn:aws:states:x'], /--state-machine goes with --deployed/],
    [['--catalog', 'c.yaml', '--from', 'yesterday'], /--from must be a day \(YYYY-MM-DD\) or an ISO-8601 instant \(got "yesterday"\)/],
    // Days and instants the engine's Date.parse would move to another day: refused, not read as another range.
    [['--catalog', 'c.yaml', '--from', '2026-11-31'], /--from must be a day of the calendar, YYYY-MM-DD \(got "2026-11-31": there is no such day\)/],
    [['--catalog', 'c.yaml', '--to', '2026-02-29'], /--to must be a day of the calendar/],
    [['--catalog', 'c.yaml', '--from', '2026-02-30T10:00:00Z'], /--from must be a day \(YYYY-MM-DD\) or an ISO-8601 instant \(got "2026-02-30T10:00:00Z"\)/],
    [['--catalog', 'c.yaml', '--from', 'Nov 20 2026'], /--from must be a day \(YYYY-MM-DD\) or an ISO-8601 instant/],
    [['--catalog', 'c.yaml', '--from', '2026-11-21', '--to', '2026-11-20'], /--from must come before --to/],
    [['--catalog', 'c.yaml', '--min-support', '2'], /--min-support must be a share from 0 to 1/],
    [['--catalog', 'c.yaml', '--dynamodb', 'localhost'], /--dynamodb must be a URL/],
    [['--catalog', 'c.yaml', '--bogus'], /Unknown option '--bogus' \(see --help\)/],
  ])('%j is a usage error: one line on stderr, exit code 2', async (argv, message) => {
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
    expect(await main(argv as string[], {})).toBe(2);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(message);
    expect(errors[0]).not.toMatch(/\n\s+at /);
  });

  it('a candidate is checked as a publish now would be: experiments that ended do not count toward the holdout bound', () => {
    const experiments = (live: number, ended: number) =>
      JSON.stringify({
        kind: 'kairos/v1',
        actions: Array.from({ length: 2 * (live + ended) }, (_, i) => ({ id: `a${i}`, name: `A${i}`, content: { web: { title: `A${i}` } } })),
        experiments: Array.from({ length: live + ended }, (_, i) => ({
          id: `exp-${i}`,
          kind: 'actions',
          holdout: 0.5,
          arms: [
            { id: 'one', action: `a${2 * i}` },
            { id: 'two', action: `a${2 * i + 1}` },
          ],
          ...(i < live ? {} : { validity: { from: '2025-01-01T00:00:00Z', to: new Date(Date.now() - (i + 1) * 86_400_000).toISOString() } }),
        })),
      });
    const file = join(folder, 'experiments.json');
    writeFileSync(file, experiments(MAX_HOLDOUT_EXPERIMENTS, 30));
    expect(readCandidate(file).catalog.experiments).toHaveLength(MAX_HOLDOUT_EXPERIMENTS + 30);
    writeFileSync(file, experiments(MAX_HOLDOUT_EXPERIMENTS + 1, 30));
    expect(() => readCandidate(file)).toThrow(/experiments can hold customers out/);
  });

  it('a candidate catalog with a problem is named by file, line and column', () => {
    const file = join(folder, 'bad.yaml');
    writeFileSync(file, 'actions:\n  - id: a\n    name: a\n    content: { web: { title: x } }\n    value: lots\n');
    expect(() => readCandidate(file)).toThrow(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:\\d+: `));
    expect(() => readCandidate(join(folder, 'missing.yaml'))).toThrow(/cannot read the candidate catalog .*missing\.yaml: no such file/);
  });

  it('a candidate that is no regular file (a folder, /dev/zero, read without end) or over a catalog\'s size is refused before it is read', () => {
    expect(() => readCandidate(folder)).toThrow(/cannot read the candidate catalog .*: not a regular file$/);
    expect(() => readCandidate('/dev/zero')).toThrow(/cannot read the candidate catalog \/dev\/zero: not a regular file$/);
    const big = join(folder, 'big.yaml');
    writeFileSync(big, `# ${'x'.repeat(MAX_CATALOG_BYTES)}\n`);
    expect(() => readCandidate(big)).toThrow(`cannot read the candidate catalog ${big}: larger than ${MAX_CATALOG_BYTES} bytes`);
  });

  it('no decision log there, or no dynamodb to read outcomes from: usage errors that say what to give', async () => {
    const candidate = join(folder, 'ok.yaml');
    writeFileSync(candidate, 'actions:\n  - { id: a, name: a, content: { web: { title: x } } }\n');
    const errors: string[] = [];
    vi.spyOn(console, 'error').mockImplementation((line: string) => void errors.push(line));
    expect(await main(['--catalog', candidate, '--log', join(folder, 'nowhere')], {})).toBe(2);
    const logs = mkdtempSync(join(folder, 'log-'));
    writeFileSync(join(logs, '2026-11-20.jsonl'), '');
    expect(await main(['--catalog', candidate, '--log', logs], {})).toBe(2);
    expect(errors).toEqual([expect.stringMatching(/no decision log at .*nowhere \(give the folder with --log\)/), expect.stringMatching(/--dynamodb <url>/)]);
  });
});

describe('the decision key of a local log', () => {
  it('is read from the data folder the --log folder is in (npm start writes <data folder>/decisions), unless KAIROS_DATA_DIR names one', () => {
    const data = mkdtempSync(join(folder, 'data-'));
    const decisions = join(data, 'decisions');
    mkdirSync(decisions);
    writeFileSync(join(data, 'local-secrets.json'), JSON.stringify({ decisionKey: 'dk_0123456789abcdef0123456789abcdef' }));
    expect(localDataDir({}, decisions)).toBe(data);
    expect(() => localDecisionKey({}, localDataDir({}, decisions))).not.toThrow();
    expect(localDataDir({ KAIROS_DATA_DIR: 'elsewhere' }, decisions)).toBe(resolve('elsewhere'));
    // A log folder with no local-secrets.json beside it (an in-memory stack's): npm start's default.
    expect(localDataDir({}, join(folder, 'nowhere'))).toBe(resolve('.kairos'));
    expect(localDataDir({}, undefined)).toBe(resolve('.kairos'));
  });

  it('none found: a usage error that says which variable to set, and where it looked', () => {
    const empty = mkdtempSync(join(folder, 'empty-'));
    expect(() => localDecisionKey({}, empty)).toThrow(
      `no decision key: set KAIROS_DECISION_KEY to the one the stack sealed its decisions with, or KAIROS_DATA_DIR to its data folder (there is no ${join(empty, 'local-secrets.json')})`,
    );
  });
});

describe('the log files of a range', () => {
  it('reads the files of the days in the range (rotated ones too), and any file not named by a day', () => {
    const logs = mkdtempSync(join(folder, 'days-'));
    for (const name of ['2026-11-19.jsonl', '2026-11-20.jsonl', '2026-11-20.jsonl.1', '2026-11-21.jsonl', 'imported.jsonl', 'notes.txt']) writeFileSync(join(logs, name), '');
    const names = (range: { from?: number; to?: number }) => logFiles(logs, range).map((f) => f.slice(logs.length + 1));
    expect(names({})).toEqual(['2026-11-19.jsonl', '2026-11-20.jsonl', '2026-11-20.jsonl.1', '2026-11-21.jsonl', 'imported.jsonl']);
    expect(names({ from: Date.parse('2026-11-20T06:00:00Z'), to: Date.parse('2026-11-20T18:00:00Z') })).toEqual(['2026-11-20.jsonl', '2026-11-20.jsonl.1', 'imported.jsonl']);
    // A decision made just before midnight is written to the next day's file: a range that ends at midnight reads it too,
    // and one that starts at midnight reads the day before's (LOG_DAY_MARGIN_MS).
    expect(names({ from: Date.parse('2026-11-20T06:00:00Z'), to: Date.parse('2026-11-21T00:00:00Z') })).toEqual(['2026-11-20.jsonl', '2026-11-20.jsonl.1', '2026-11-21.jsonl', 'imported.jsonl']);
    expect(names({ from: Date.parse('2026-11-21T00:00:00Z'), to: Date.parse('2026-11-21T12:00:00Z') })).toEqual(['2026-11-20.jsonl', '2026-11-20.jsonl.1', '2026-11-21.jsonl', 'imported.jsonl']);
    // In another zone: 2026-11-21T01:30+02:00 is 23:30 UTC on the 20th.
    expect(names({ from: Date.parse('2026-11-19T12:00:00Z'), to: Date.parse('2026-11-21T01:30:00+02:00') })).toEqual(['2026-11-19.jsonl', '2026-11-20.jsonl', '2026-11-20.jsonl.1', '2026-11-21.jsonl', 'imported.jsonl']);
  });
});

describe('the printed result', () => {
  const counts = { records: 12, malformed: 0, duplicates: 2, outsideRange: 1, notSampled: 2, degraded: 1, replayed: 8, unrendered: 3 };
  it('the estimates with their intervals beside the logged policy’s rate', () => {
    const interval = (estimate: number) => ({ estimate, low: estimate - 0.05, high: estimate + 0.05 });
    const evaluation: Evaluation = {
      ok: true,
      reward: 'click',
      ...counts,
      estimate: { decisions: 8, evaluated: 8, evaluatedShare: 1, effectiveSampleSize: 2.5, loggedRate: 0.125, ips: interval(0.2), snips: interval(0.21), dr: interval(0.19) },
    };
    const text = formatEvaluation(evaluation, 'candidate.yaml');
    expect(text).toContain('records        12 read: 8 replayed (3 first-ranked not rendered), 2 without features (not sampled), 1 degraded, 1 outside the range, 2 duplicates, 0 unreadable');
    expect(text).toContain('logged policy  0.1250  (observed)');
    expect(text).toContain('IPS            0.2000  [0.1500, 0.2500]  (95%)');
    expect(text).toContain('DR             0.1900  [0.1400, 0.2400]  (95%)');
  });

  it('an estimate without an interval prints the reason in its place, not a zero-width interval', () => {
    const interval = (estimate: number) => ({ estimate, low: estimate - 0.05, high: estimate + 0.05 });
    const evaluation: Evaluation = {
      ok: true,
      reward: 'click',
      ...counts,
      estimate: {
        decisions: 8,
        evaluated: 8,
        evaluatedShare: 1,
        effectiveSampleSize: 2.5,
        loggedRate: 0.125,
        ips: interval(0.2),
        snips: { estimate: 1, low: null, high: null, noInterval: 'no interval: the estimated spread is 0 (every decision weighs in alike), which does not make the estimate certain' },
        dr: interval(0.19),
      },
    };
    const text = formatEvaluation(evaluation, 'candidate.yaml');
    expect(text).toContain('SNIPS          1.0000  (no interval: the estimated spread is 0 (every decision weighs in alike), which does not make the estimate certain)\n');
    expect(text).not.toContain('[1.0000, 1.0000]');
    expect(text).toContain('IPS            0.2000  [0.1500, 0.2500]  (95%)');
  });

  it('a refusal with its reason', () => {
    expect(formatEvaluation({ ok: false, reason: 'no support: …', ...counts }, 'c.yaml')).toContain('refused        no support: …');
  });
});
