/**
 * The decision log on the local stack: every decision the decide function
 * answers over HTTP — learning and deterministic placements, a known and an
 * anonymous customer, and a degraded answer while the store refuses
 * connections — is one line of the stack's decision log
 * (`<decision log folder>/<yyyy-mm-dd>.jsonl`), the decide logger's JSON
 * line as the deployed subscription filter would send it to Firehose:
 * `level`, message DECISION_RECORD_MESSAGE and the compact record (version
 * 5, DECISION_RECORD_VERSION) under DECISION_RECORD_KEY, none of the logger's standard keys; read
 * back (readDecisionRecord), it has the decision id the client got, a pseudonymous customer, the
 * eligible candidates and what was served with their probabilities, and
 * (the catalog samples every decision here) the features the rules read.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DECISION_LOG_FLUSH_MS, decisionLogFiles } from '#local/decision-log.ts';
import { REPOSITORY_ROOT } from '#local/stack.ts';
import { DECISION_RECORD_VERSION, readDecisionRecord, significant4, type DecisionLogRecord } from '#domain/evaluation/decision-record.ts';
import { decisionRef } from '#domain/evaluation/evaluate.ts';
import { decisionKey } from '#domain/decide/decision-id.ts';
import { TEST_DECISION_KEY, useLocalStack, type TestStack } from '../support/stack.ts';
import { refusingEndpoint } from '../support/store-faults.ts';
import { decide, decideUndegraded, identify, sendEvents, uniqueId, waitForProfile, type Decision, type DecideRequest, type StackAccess } from './fixtures/kairos.ts';

// The demo catalog, with every decision's features kept.
const catalogDir = mkdtempSync(join(tmpdir(), 'kairos-decision-log-e2e-'));
const catalogFile = join(catalogDir, 'catalog.yaml');
writeFileSync(catalogFile, `${readFileSync(join(REPOSITORY_ROOT, 'catalog/demo.yaml'), 'utf8')}\ndecisionLog:\n  sample: 1\n`);
afterAll(() => rmSync(catalogDir, { recursive: true, force: true }));

let stack: TestStack;
let api: StackAccess;
useLocalStack(
  (started, access) => {
    stack = started;
    api = access;
  },
  { catalogFile },
);

interface LogLine {
  /** The line as logged. */
  readonly raw: Readonly<Record<string, unknown>>;
  /** Its record, read back. */
  readonly decision: DecisionLogRecord;
}

function logLines(): LogLine[] {
  return decisionLogFiles(stack.decisionLog).flatMap((file) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const raw = JSON.parse(line) as Record<string, unknown>;
        const decision = readDecisionRecord(raw.decision);
        if (!decision) throw new Error(`not a decision record: ${line.slice(0, 200)}`);
        return { raw, decision };
      }),
  );
}

/** Every decision answered, degraded ones included (each must be logged). */
const answered: Decision[] = [];

/** A decision that is not degraded (fixtures `decideUndegraded`); every answer is kept in `answered`. */
const healthyDecision = (request: DecideRequest): Promise<Decision> => decideUndegraded(api, request, (d) => answered.push(d));

const sum = (xs: readonly { probability: number }[]) => xs.reduce((s, x) => s + x.probability, 0);

describe('the decide function logs one decision record per decision', () => {
  it('known and anonymous customers, learning and deterministic placements, and a degraded answer', async () => {
    const userId = uniqueId('declog');
    await sendEvents(api, [identify({ userId }, { tier: 'VIP', firstName: 'Luis' })]);
    await waitForProfile(api, userId, (p) => p.traits.tier === 'VIP');

    const hero = await healthyDecision({ userId, channel: 'web', placement: 'home_hero' });
    const home = await healthyDecision({ userId, channel: 'web', placement: 'home', context: { weather: 'rain', city: 'Madrid' } });
    const anonymous = await healthyDecision({ anonymousId: uniqueId('declog-anon'), channel: 'web', placement: 'home' });
    const heroAgain = await healthyDecision({ userId, channel: 'web', placement: 'home_hero' });

    // The store refuses every connection: decide answers degraded (the key and catalog from its caches), and logs it.
    const { dynamo } = await import('#store/client.ts');
    dynamo().useEndpoint(await refusingEndpoint());
    let degraded: Decision;
    try {
      degraded = await decide(api, { userId, channel: 'web', placement: 'home' });
      answered.push(degraded);
    } finally {
      dynamo().useEndpoint(undefined);
    }
    expect(degraded.degraded).toBe(true);

    // The stack writes its log DECISION_LOG_FLUSH_MS after the lines are logged.
    await new Promise((resolve) => setTimeout(resolve, DECISION_LOG_FLUSH_MS * 2));
    const lines = logLines();
    // A record names its decision by its reference, what the sealed id the client received opens to.
    const refOf = (sealed: string): string | undefined => decisionRef(sealed, decisionKey(TEST_DECISION_KEY));
    expect(lines.map((l) => l.decision.decisionRef).sort()).toEqual(answered.map((d) => refOf(d.decisionId)).sort());
    const byRef = new Map(lines.map((l) => [l.decision.decisionRef, l]));
    for (const d of answered) {
      const line = byRef.get(refOf(d.decisionId));
      expect(Object.keys(line?.raw ?? {})).toEqual(['level', 'message', 'decision']);
      expect(line?.raw).toMatchObject({ level: 'INFO', message: 'decision record', decision: { v: DECISION_RECORD_VERSION } });
      const record = line?.decision;
      expect(record).toMatchObject({ channel: d.channel, placement: d.placement, fallback: d.fallback === true, degraded: d.degraded === true });
      expect(record?.served).toEqual(
        d.actions.map((a) => ({ actionId: a.actionId, ...(a.variant !== undefined ? { variant: a.variant } : {}), score: significant4(a.score ?? Number.NaN), probability: significant4(a.probability ?? Number.NaN) })),
      );
      expect(sum(record?.eligible ?? [])).toBeLessThanOrEqual(1 + 5e-4 + 1e-6 * (record?.eligible.length ?? 0));
      expect(Date.parse(record?.at ?? '')).toBeGreaterThan(Date.now() - 10 * 60_000);
      expect(record?.customer).toMatch(/^[A-Za-z0-9_-]{22}$/);
      expect(JSON.stringify(record)).not.toContain(userId);
    }

    const recordOf = (d: Decision) => byRef.get(refOf(d.decisionId))?.decision as DecisionLogRecord;
    // One customer, one pseudonym; another customer, another.
    expect(recordOf(heroAgain).customer).toBe(recordOf(hero).customer);
    expect(recordOf(degraded).customer).toBe(recordOf(hero).customer);
    expect(recordOf(anonymous).customer).not.toBe(recordOf(hero).customer);

    // The learning placement: both variants of the hero banner are arms; the one served first carries its probability.
    const heroRecord = recordOf(hero);
    expect(heroRecord.catalogVersion).toBe(String(stack.catalog.version));
    const first = heroRecord.served[0];
    expect(heroRecord.eligible.find((e) => e.actionId === first?.actionId && e.variant === first.variant)?.probability).toBeCloseTo(first?.probability ?? -1, 6);
    expect(heroRecord.eligible.filter((e) => e.actionId === 'spring-sale-banner').map((e) => e.variant).sort()).toEqual(['a', 'b']);
    expect(sum(heroRecord.eligible)).toBeGreaterThan(0.999 - 5e-4);

    // The deterministic placement: what was served first is the first eligible, with probability 1, and the
    // rainy-day recipe (its rule reads the context) among the others with 0; what the rules read kept.
    const homeRecord = recordOf(home);
    expect(homeRecord.eligible[0]).toMatchObject({ actionId: home.actions[0]?.actionId, probability: 1 });
    expect(homeRecord.eligible.find((e) => e.actionId === 'recipe-rainy-day')?.probability).toBe(0);
    expect(homeRecord.features?.segments).toEqual(home.segments);
    expect(homeRecord.features?.fields['traits.tier']).toBe('"VIP"');
    expect(homeRecord.features?.context).toEqual({ weather: '"rain"', city: '"Madrid"' });

    // Degraded: nothing was eligible, the fallback served.
    expect(recordOf(degraded)).toMatchObject({ degraded: true, eligible: [], served: degraded.actions.map((a) => ({ actionId: a.actionId, probability: 1 })) });
    expect(degraded.actions.length).toBeGreaterThan(0);
  });
});
