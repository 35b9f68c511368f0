/**
 * A first-ranked action whose template cannot be rendered for a customer,
 * on the local stack: decide over HTTP serves the next ranked action in its
 * place (its answer unchanged by the decision log), and the decision's line
 * in the stack's decision log gives each candidate the chance it was served
 * with: 0 for the action that cannot be shown, the served one's share (1)
 * for the next; a customer for whom it renders gets it, with chance 1.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DECISION_LOG_FLUSH_MS, decisionLogFiles } from '#local/decision-log.ts';
import { DECISION_RECORD_VERSION, readDecisionRecord, type DecisionLogRecord } from '#domain/evaluation/decision-record.ts';
import { decisionRef } from '#domain/evaluation/evaluate.ts';
import { decisionKey } from '#domain/decide/decision-id.ts';
import { TEMPLATE_LIMITS } from '#domain/catalog/template.ts';
import { TEST_DECISION_KEY, useLocalStack, type TestStack } from '../support/stack.ts';
import { decideUndegraded, identify, sendEvents, uniqueId, waitForProfile, type Decision, type DecideRequest, type StackAccess } from './fixtures/kairos.ts';

// `wish-banner` ranks first (learning off: value 3 against 2) and walks the customer's wishlist once per item:
// past the template's loop bound (TEMPLATE_LIMITS.loopSteps) for a wishlist of 60 items, not for one of 2.
const catalogDir = mkdtempSync(join(tmpdir(), 'kairos-unrendered-e2e-'));
const catalogFile = join(catalogDir, 'catalog.yaml');
writeFileSync(
  catalogFile,
  `learning: { enabled: false }
decisionLog: { sample: 1 }
actions:
  - id: wish-banner
    name: Wishlist banner
    value: 3
    content:
      web:
        title: '{{ wishlist | size }} wishes{% for a in wishlist %}{% for b in wishlist %}{% endfor %}{% endfor %}'
  - id: plain-banner
    name: Plain banner
    value: 2
    content:
      web:
        title: Plain
`,
);
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

/** A decision that is not degraded (fixtures `decideUndegraded`). */
const healthyDecision = (request: DecideRequest): Promise<Decision> => decideUndegraded(api, request);

describe('a first-ranked action that cannot be rendered for this customer', () => {
  it('is skipped in the answer and logged with chance 0, the action served in its place with its own; where it renders, it is served with chance 1', async () => {
    const long = Array.from({ length: 60 }, (_, i) => `w${i}`);
    expect(long.length * (long.length + 1)).toBeGreaterThan(TEMPLATE_LIMITS.loopSteps);
    const [collector, casual] = [uniqueId('unrendered'), uniqueId('rendered')];
    await sendEvents(api, [identify({ userId: collector }, { wishlist: long }), identify({ userId: casual }, { wishlist: ['boots', 'scarf'] })]);
    await waitForProfile(api, collector, (p) => Array.isArray(p.traits.wishlist));
    await waitForProfile(api, casual, (p) => Array.isArray(p.traits.wishlist));

    const skipped = await healthyDecision({ userId: collector, channel: 'web', limit: 1 });
    const served = await healthyDecision({ userId: casual, channel: 'web', limit: 1 });
    expect(skipped.actions.map((a) => a.actionId)).toEqual(['plain-banner']);
    expect(served.actions.map((a) => [a.actionId, a.content])).toEqual([['wish-banner', { title: '2 wishes' }]]);

    // The stack writes its log DECISION_LOG_FLUSH_MS after the lines are logged.
    await new Promise((resolve) => setTimeout(resolve, DECISION_LOG_FLUSH_MS * 2));
    const key = decisionKey(TEST_DECISION_KEY);
    const lines = decisionLogFiles(stack.decisionLog).flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => (JSON.parse(line) as { decision: Record<string, unknown> }).decision),
    );
    const lineOf = (d: Decision) => lines.find((r) => r.id === decisionRef(d.decisionId, key));
    const recordOf = (d: Decision) => readDecisionRecord(lineOf(d)) as DecisionLogRecord;

    expect(lineOf(skipped)).toMatchObject({ v: DECISION_RECORD_VERSION, e: [['wish-banner', expect.any(Number), 0], ['plain-banner', expect.any(Number), 1]], s: [[1]] });
    expect(lineOf(skipped)).not.toHaveProperty('u');
    expect(recordOf(skipped)).toMatchObject({ served: [{ actionId: 'plain-banner', probability: 1 }] });
    expect(recordOf(skipped)).not.toHaveProperty('unrendered');
    expect(lineOf(served)).toMatchObject({ v: DECISION_RECORD_VERSION, e: [['wish-banner', expect.any(Number), 1], ['plain-banner', expect.any(Number), 0]], s: [[0]] });
    expect(lineOf(served)).not.toHaveProperty('u');
    expect(recordOf(served)).not.toHaveProperty('unrendered');
  });
});
