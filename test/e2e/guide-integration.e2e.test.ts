/**
 * docs/integration.md, followed in order (test/support/walkthrough.ts): its
 * `npm start` line gives the environment, the stack is started through
 * `npm start`'s own command on a free port, and every ```sh walkthrough
 * block runs in one bash session, in document order; each command must
 * print the answer the guide shows under it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readWalkthrough, runWalkthrough, startDocumentedStack, untestedAnswers, WALKTHROUGH_TIMEOUT_MS, type DocumentedStack } from '../support/walkthrough.ts';

const guide = readWalkthrough('docs/integration.md');
let stack: DocumentedStack;

beforeAll(async () => {
  stack = await startDocumentedStack(guide.environment);
});

afterAll(async () => {
  await stack?.stop();
});

describe('docs/integration.md, followed in order', () => {
  it('shows every answer in a walk-through block, each after a curl command', () => {
    expect(untestedAnswers(guide)).toEqual([]);
    expect(guide.steps.length).toBeGreaterThanOrEqual(10);
    for (const step of guide.steps) expect(step.command).toContain('curl ');
  });

  it('gives, request by request, the answer the guide prints', async () => {
    expect(await runWalkthrough(guide.steps, stack.origin)).toBe(guide.steps.length);
  }, WALKTHROUGH_TIMEOUT_MS);
});
