/**
 * The actions report's `decisions` on the local stack: decide answers N
 * decisions over HTTP; the stack's decision log writes their records and
 * counts each write once (local/decision-counter.ts, the deployed decision
 * counter's code); GET /v1/admin/reports/actions then has, per cell, the
 * number of decisions that served it — each served action under its variant
 * and experiment arm, and the control group once per decision that held the
 * customer out — and the experiment's arms the same. The counts lag the
 * decisions (the log's flush and the counter's gathering): the test polls
 * the report until its total is in, under a generous deadline, then checks
 * every count.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { useLocalStack } from '../support/stack.ts';
import { call, decide, uniqueId, type StackAccess } from './fixtures/kairos.ts';

const CATALOG = {
  learning: { enabled: false },
  actions: [
    { id: 'hero', name: 'Hero', priority: 3, content: { web: { title: 'Hero' } }, variants: [{ id: 'a', content: { web: { title: 'A' } } }, { id: 'b', content: { web: { title: 'B' } } }] },
    { id: 'news', name: 'News', priority: 1, content: { web: { title: 'News' } } },
  ],
  experiments: [{ id: 'hero-copy', kind: 'variants', action: 'hero', holdout: 0.3, arms: [{ id: 'a', variant: 'a' }, { id: 'b', variant: 'b' }] }],
};

const catalogDir = mkdtempSync(join(tmpdir(), 'kairos-decision-counts-e2e-'));
const catalogFile = join(catalogDir, 'catalog.yaml');
// JSON is YAML.
writeFileSync(catalogFile, JSON.stringify(CATALOG));
afterAll(() => rmSync(catalogDir, { recursive: true, force: true }));

let api: StackAccess;
useLocalStack(
  (_started, access) => {
    api = access;
  },
  { catalogFile },
);

interface Answer {
  readonly actions: { actionId: string; variant?: string; experiment?: { id: string; arm: string } }[];
  readonly degraded?: boolean;
  readonly explanation?: { holdouts: string[] };
}

interface Row {
  readonly actionId?: string;
  readonly variant?: string;
  readonly arm?: string;
  readonly decisions: number;
}

interface Report {
  readonly rows: Row[];
  readonly experiments: { id: string; arms: { arm: string; decisions: number }[] }[];
}

/** A cell as the test tells them apart: action (empty for the control group), variant, arm. */
const cellOf = (actionId: string, variant: string | undefined, arm: string | undefined) => `${actionId}/${variant ?? ''}/${arm ?? ''}`;

async function report(): Promise<Report> {
  const res = await call<Report>(api, 'GET', '/v1/admin/reports/actions?channel=web&placement=home', { auth: 'admin' });
  expect(res.status).toBe(200);
  return res.json;
}

describe('decisions in the actions report, on the local stack', () => {
  it('decide N times → the log written and counted → each cell’s decisions is what was served in it', async () => {
    const N = 30;
    const expected = new Map<string, number>();
    const add = (key: string) => expected.set(key, (expected.get(key) ?? 0) + 1);
    let healthy = 0;
    for (let i = 0; i < N; i += 5) {
      const answers = await Promise.all(
        Array.from({ length: 5 }, () => decide(api, { anonymousId: uniqueId('counted'), channel: 'web', placement: 'home', limit: 2, explain: true }) as Promise<unknown> as Promise<Answer>),
      );
      for (const answer of answers) {
        // A degraded answer (a loaded machine may let a profile read pass decide's deadline) serves nothing: it adds nothing.
        if (!answer.degraded) healthy++;
        for (const a of answer.actions) add(cellOf(a.actionId, a.variant, a.experiment?.arm));
        for (const _experiment of answer.explanation?.holdouts ?? []) add(cellOf('', undefined, 'control'));
      }
    }
    const total = [...expected.values()].reduce((sum, n) => sum + n, 0);
    // Every healthy decision served `news`, and the hero action in one arm or the other unless the customer was held out.
    expect(healthy).toBeGreaterThan(0);
    expect(expected.get(cellOf('news', undefined, undefined))).toBe(healthy);
    expect(total).toBe(2 * healthy);

    // The counts lag the decisions: poll (never a timed assertion) until they are all in.
    const deadline = Date.now() + 60_000;
    let latest = await report();
    while (latest.rows.reduce((sum, r) => sum + r.decisions, 0) < total && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      latest = await report();
    }
    const counted = new Map(latest.rows.filter((r) => r.decisions > 0).map((r) => [cellOf(r.actionId ?? '', r.variant, r.arm), r.decisions]));
    expect(counted).toEqual(expected);
    const arms = latest.experiments.find((e) => e.id === 'hero-copy')?.arms ?? [];
    expect(arms.map((a) => [a.arm, a.decisions])).toEqual(
      ['control', 'a', 'b'].map((arm) => [arm, arm === 'control' ? (expected.get(cellOf('', undefined, 'control')) ?? 0) : (expected.get(cellOf('hero', arm, arm)) ?? 0)]),
    );
  });
});
