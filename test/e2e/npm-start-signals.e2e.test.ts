/**
 * `npm start` stops cleanly, DynamoDB Local included, whichever of its
 * processes is told to: SIGTERM or SIGINT to npm (which forwards them to its
 * child: the start script `exec`s node, so that child is the stack itself)
 * or to the node process; and when npm is killed outright (SIGKILL, nothing
 * forwarded), the stack sees its parent gone and stops too. Afterwards no
 * npm, node or Java process of that stack is left and both its ports (HTTP
 * and DynamoDB Local's) are free. The stop is bounded by design (local/start.ts
 * ends the rest by force after a few seconds); the tests wait generously,
 * then assert that nothing remains.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startNpmStart, whatRemains, type NpmStart } from '../support/npm-start.ts';

let stack: NpmStart | undefined;

afterEach(async () => {
  await stack?.kill();
  stack = undefined;
});

const NOTHING_LEFT = { npmExited: true, node: false, java: [], httpPort: false, dynamoPort: false };

describe('npm start stops cleanly', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`on ${signal} to the npm process: exit code 0, no node or Java process left, both ports free`, { timeout: 300_000 }, async () => {
      stack = await startNpmStart({ KAIROS_IN_MEMORY: '1' });
      stack.npm.kill(signal);
      const remains = await whatRemains(stack);
      expect(remains).toEqual(NOTHING_LEFT);
      expect(await stack.exit).toEqual({ code: 0, signal: null });
      expect(stack.output()).toContain(`${signal}: stopping Kairos`);
      expect(stack.output()).toContain('Kairos stopped.');
    });

    it(`on ${signal} to the node process: exit code 0, no Java process left, both ports free`, { timeout: 300_000 }, async () => {
      stack = await startNpmStart({ KAIROS_IN_MEMORY: '1' });
      process.kill(stack.nodePid, signal);
      const remains = await whatRemains(stack);
      expect(remains).toEqual(NOTHING_LEFT);
      expect(await stack.exit).toEqual({ code: 0, signal: null });
      expect(stack.output()).toContain('Kairos stopped.');
    });
  }

  it('when npm is killed (SIGKILL, nothing forwarded): the stack sees its parent gone and stops', { timeout: 300_000 }, async () => {
    stack = await startNpmStart({ KAIROS_IN_MEMORY: '1' });
    stack.npm.kill('SIGKILL');
    const remains = await whatRemains(stack);
    expect(remains).toEqual(NOTHING_LEFT);
    expect(stack.output()).toContain('The process that started Kairos is gone');
  });
});
