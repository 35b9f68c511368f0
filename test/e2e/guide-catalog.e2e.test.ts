/**
 * docs/catalog.md, followed in order (test/support/walkthrough.ts): its
 * `npm start` line gives the environment, the stack is started through
 * `npm start`'s own command on a free port, and every ```sh walkthrough
 * block (validate, simulate, publish, the versions, a rollback and the
 * decision it changes back) runs in one bash session, in document order;
 * each command must print the answer the guide shows under it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWalkthrough, runWalkthrough, startDocumentedStack, untestedAnswers, WALKTHROUGH_TIMEOUT_MS, type DocumentedStack } from '../support/walkthrough.ts';

const guide = readWalkthrough('docs/catalog.md');
let stack: DocumentedStack;

beforeAll(async () => {
  stack = await startDocumentedStack(guide.environment);
});

afterAll(async () => {
  await stack?.stop();
});

describe('docs/catalog.md, followed in order', () => {
  it('shows every answer in a walk-through block, each after a curl command, the rollback among them', () => {
    expect(untestedAnswers(guide)).toEqual([]);
    for (const step of guide.steps) expect(step.command).toContain('curl ');
    expect(guide.steps.map((s) => s.command).filter((c) => c.includes('/v1/admin/catalog/rollback'))).not.toEqual([]);
  });

  it('gives, request by request, the answer the guide prints', async () => {
    expect(await runWalkthrough(guide.steps, stack.origin)).toBe(guide.steps.length);
  }, WALKTHROUGH_TIMEOUT_MS);
});
