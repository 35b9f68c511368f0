/**
 * `npm run evaluate` end to end on the local stack: decide serves a catalog
 * whose bandit explores every eligible action (the decision log's records,
 * with features for every decision, in the stack's decisions folder), the
 * customers click through /v1/track with the decision id when they were
 * served the action their plan likes, and the evaluate command
 * (scripts/evaluate.ts `main`, as `npm run evaluate` runs it) estimates, on
 * that folder and the stack's DynamoDB Local, what a candidate catalog that
 * serves each plan its liked action would have earned — the click rate of 1
 * its choices always get — beside the logged policy's much lower rate; and
 * refuses, with the reason, a candidate whose choice was never served.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { Evaluation } from '#domain/evaluation/evaluate.ts';
import { significant4 } from '#domain/evaluation/decision-record.ts';
import { DECISION_LOG_FLUSH_MS } from '#local/decision-log.ts';
import { TEST_DECISION_KEY, useLocalStack, type TestStack } from '../support/stack.ts';
import { decide, identify, sendEvents, track, uniqueId, waitForProfile, type StackAccess } from './fixtures/kairos.ts';

const folder = mkdtempSync(join(tmpdir(), 'kairos-evaluate-e2e-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));

const PLANS = ['student', 'family'] as const;
/** The action each plan clicks when it is served it (and only then). */
const LIKED: Record<(typeof PLANS)[number], string> = { student: 'a1', family: 'a0' };

const segments = PLANS.map((plan) => `  - { id: ${plan}, name: ${plan}, rule: 'has(profile.traits.plan) && profile.traits.plan == "${plan}"' }`).join('\n');
const banners = ['a0', 'a1', 'a2'].map((id) => `  - { id: ${id}, name: ${id}, content: { web: { title: ${id.toUpperCase()} } } }`).join('\n');

/** The live catalog: every action eligible for everyone, the bandit exploring all of them (floor 0.2 each); every decision keeps its features. */
const LOGGING = `
decisionLog: { sample: 1 }
learning: { enabled: true, exploration: 1, floor: 0.2, contextBy: none }
segments:
${segments}
actions:
${banners}
`;

/** The candidate: each plan its liked action (no learning). */
const CANDIDATE = `
learning: { enabled: false }
segments:
${segments}
actions:
${PLANS.map((plan) => `  - { id: ${LIKED[plan]}, name: ${LIKED[plan]}, content: { web: { title: ${LIKED[plan].toUpperCase()} } }, targeting: { segments: [${plan}] } }`).join('\n')}
`;

/** A candidate that serves an action the logging catalog never had: nothing to learn it from. */
const NEVER_SERVED = `
learning: { enabled: false }
actions:
  - { id: brand-new, name: brand new, content: { web: { title: New } } }
`;

const catalogFile = join(folder, 'logging.yaml');
writeFileSync(catalogFile, LOGGING);

let stack: TestStack;
let api: StackAccess;
useLocalStack(
  (started, access) => {
    stack = started;
    api = access;
  },
  { catalogFile },
);

/** Runs the command as `npm run evaluate` does; its exit code, standard output and error. */
async function evaluate(candidate: string, extra: string[] = []): Promise<{ code: number; stdout: string; stderr: string }> {
  // The stack writes its decision log DECISION_LOG_FLUSH_MS after the lines are logged.
  await new Promise((resolve) => setTimeout(resolve, DECISION_LOG_FLUSH_MS * 2));
  const file = join(folder, `candidate-${uniqueId('c')}.yaml`);
  writeFileSync(file, candidate);
  let stdout = '';
  const stderr: string[] = [];
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  const error = vi.spyOn(console, 'error').mockImplementation((line: string) => void stderr.push(line));
  try {
    // Imported once the stack has set its environment (the command reads shared/config.ts).
    const { main } = await import('#scripts/evaluate.ts');
    const code = await main(['--catalog', file, '--log', stack.decisionLog, '--dynamodb', stack.dynamoEndpoint, ...extra], { KAIROS_DECISION_KEY: TEST_DECISION_KEY });
    return { code, stdout, stderr: stderr.join('\n') };
  } finally {
    write.mockRestore();
    error.mockRestore();
  }
}

describe('npm run evaluate on the local stack’s decision log', () => {
  const N = 36;
  let liked = 0;
  /** Σ 1/π over the decisions that served the liked action: π is the answer's probability (limit 1: the chance of position 1) as logged, to 4 significant digits. */
  let inverseChances = 0;
  /** The evaluation of the log as written, once. */
  let once: Evaluation | undefined;

  it('decide logs a record with features for each decision; the customers click what their plan likes', async () => {
    const customers = Array.from({ length: N }, (_, i) => ({ userId: uniqueId('eval'), plan: PLANS[i % PLANS.length] as (typeof PLANS)[number] }));
    const stored = await sendEvents(api, customers.map((c) => identify({ userId: c.userId }, { plan: c.plan })));
    expect(stored.accepted).toBe(N);
    // Decide reads the plan from the profile: wait for the stream to apply every customer's traits.
    for (const c of customers) await waitForProfile(api, c.userId, (p) => p.traits.plan === c.plan);
    const clicks = [];
    for (const c of customers) {
      const d = await decide(api, { userId: c.userId, channel: 'web' });
      expect(d.degraded).toBeUndefined();
      const served = d.actions[0]?.actionId;
      if (served === LIKED[c.plan]) {
        liked++;
        inverseChances += 1 / significant4(d.actions[0]?.probability ?? Number.NaN);
        clicks.push(track({ userId: c.userId }, 'Promotion Clicked', { decision_id: d.decisionId, action_id: served }));
      }
    }
    expect((await sendEvents(api, clicks)).accepted).toBe(clicks.length);
    expect(readdirSync(stack.decisionLog).filter((f) => f.endsWith('.jsonl')).length).toBeGreaterThan(0);
    // The bandit explored: some customers were served what they like, some were not.
    expect(liked).toBeGreaterThan(0);
    expect(liked).toBeLessThan(N);
  });

  it('estimates the candidate’s rate (1: its choices are always clicked) beside the logged policy’s observed rate', async () => {
    const { code, stdout, stderr } = await evaluate(CANDIDATE, ['--json']);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const evaluation = JSON.parse(stdout) as Evaluation;
    if (!evaluation.ok) throw new Error(`refused: ${evaluation.reason}`);
    // One record per decision, each with its features: every one is replayed, and the candidate's choice was one the bandit could make.
    expect(evaluation).toMatchObject({ records: N, replayed: N, reward: 'click', notSampled: 0, degraded: 0, malformed: 0, estimate: { evaluated: N, evaluatedShare: 1 } });
    const { estimate } = evaluation;
    // Every decision where the logging policy served the candidate's choice was clicked: SNIPS is exactly 1.
    expect(estimate.snips.estimate).toBeCloseTo(1, 9);
    // …from terms all alike: its spread is 0, so it has no interval rather than [1, 1].
    expect(estimate.snips).toMatchObject({ low: null, high: null, noInterval: expect.stringMatching(/^no interval: the estimated spread is 0/) as unknown });
    // IPS: the clicks weighted by 1 / the logging policy's chance, over all decisions (the answers' probabilities as logged).
    expect(estimate.ips.estimate).toBeCloseTo(inverseChances / N, 4);
    for (const name of ['ips', 'dr'] as const) {
      expect(estimate[name].low).toBeLessThan(estimate[name].estimate);
      expect(estimate[name].high).toBeGreaterThan(estimate[name].estimate);
    }
    // The logged policy's rate is the clicks it observed: the liked actions it happened to serve.
    expect(estimate.loggedRate).toBeCloseTo(liked / N, 9);
    expect(estimate.loggedRate).toBeLessThan(0.8);
    expect(estimate.effectiveSampleSize).toBeGreaterThan(0);
    once = evaluation;
  });

  it('a log delivered twice (every line again, in another file of the folder) evaluates each decision once', async () => {
    const days = readdirSync(stack.decisionLog).filter((f) => f.endsWith('.jsonl'));
    const again = join(stack.decisionLog, 'delivered-again.jsonl');
    writeFileSync(again, days.map((f) => readFileSync(join(stack.decisionLog, f), 'utf8')).join(''));
    try {
      const { code, stdout } = await evaluate(CANDIDATE, ['--json']);
      expect(code).toBe(0);
      const evaluation = JSON.parse(stdout) as Evaluation;
      expect(evaluation).toMatchObject({ records: 2 * N, duplicates: N, replayed: N, malformed: 0 });
      if (!evaluation.ok || !once?.ok) throw new Error('refused');
      // DR's reward model is the learning statistics, which the stack's stream may have moved since: the rest is the log's alone.
      const { dr: _dr, ...estimate } = evaluation.estimate;
      const { dr: _once, ...first } = once.estimate;
      expect(estimate).toEqual(first);
    } finally {
      rmSync(again);
    }
  });

  it('reduces the map step’s sums with the deployed reduce step, from result files written as the deployed maps’ ResultWriter writes them', async () => {
    await new Promise((resolve) => setTimeout(resolve, DECISION_LOG_FLUSH_MS * 2));
    const { evaluateLocalLog, folderObjects, logFiles, readCandidate } = await import('#scripts/evaluate.ts');
    const { DynamoClient } = await import('#store/client.ts');
    const { decisionKey } = await import('#domain/decide/decision-id.ts');
    const { readMapResults } = await import('#shared/evaluation-steps.ts');
    const file = join(folder, `candidate-${uniqueId('c')}.yaml`);
    writeFileSync(file, CANDIDATE);
    const resultsFolder = join(folder, 'results');
    const evaluation = await evaluateLocalLog({
      candidate: readCandidate(file).catalog,
      files: logFiles(stack.decisionLog),
      decisionKey: decisionKey(TEST_DECISION_KEY),
      client: new DynamoClient({ endpoint: stack.dynamoEndpoint }),
      minSupport: 0,
      resultsFolder,
    });
    expect(evaluation).toMatchObject({ ok: true, records: N, replayed: N });
    // What the reduce read: a manifest naming one result file of the files' sums (each a child's Output, JSON text), and an empty shuffle.
    const objects = folderObjects(resultsFolder);
    const manifest = JSON.parse((await objects.get('evaluation', 'results/local/files/manifest.json')).toString('utf8')) as { ResultFiles: { SUCCEEDED: { Key: string }[]; FAILED: unknown[] } };
    expect(manifest.ResultFiles).toMatchObject({ FAILED: [], SUCCEEDED: [{ Key: 'results/local/files/SUCCEEDED_0.json' }] });
    const sums = await readMapResults<{ records: number }>(objects, { Bucket: 'evaluation', Key: 'results/local/files/manifest.json' });
    expect(sums.length).toBe(logFiles(stack.decisionLog).length);
    expect(sums.reduce((n, s) => n + s.records, 0)).toBe(N);
    expect(await readMapResults(objects, { Bucket: 'evaluation', Key: 'results/local/shuffle/manifest.json' })).toEqual([]);
  });

  it('prints the table for people', async () => {
    const { code, stdout } = await evaluate(CANDIDATE);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^logged policy {2}0\.\d{4} {2}\(observed\)$/m);
    expect(stdout).toMatch(/^SNIPS {10}1\.0000 {2}\(no interval: the estimated spread is 0 /m);
    expect(stdout).toMatch(/^IPS {12}\d\.\d{4} {2}\[\d\.\d{4}, \d\.\d{4}\] {2}\(95%\)$/m);
  });

  it('refuses, with the reason, a candidate whose choice the logging policy never served (exit code 3)', async () => {
    const { code, stdout, stderr } = await evaluate(NEVER_SERVED);
    expect(code).toBe(3);
    expect(stderr).toMatch(/^evaluate: refused: no support: the logging policy never served what the candidate would choose on \d+ of \d+ replayed decisions .*brand-new on \d+/);
    expect(stdout).toMatch(/^refused {8}no support/m);
  });
});
