/**
 * The README walk-through, run as written (test/support/walkthrough.ts): the
 * `npm start` line of README.md gives the environment, the stack is started
 * through `npm start`'s own command as a child process on a free port, and
 * every command of the ```sh walkthrough block runs in bash and must print
 * what the README says it prints.
 * It also proves the process shuts down cleanly on SIGTERM, port freed.
 */
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DOCUMENTED_ORIGIN,
  emulatorsOf,
  readWalkthrough,
  runWalkthrough,
  startDocumentedStack,
  untestedAnswers,
  WALKTHROUGH_TIMEOUT_MS,
  type DocumentedStack,
} from '../support/walkthrough.ts';

const readme = readWalkthrough('README.md');
let stack: DocumentedStack;

beforeAll(async () => {
  stack = await startDocumentedStack(readme.environment);
});

afterAll(async () => {
  // Still running only when a step failed before the SIGTERM test: stop it the same way, by force if it must be.
  await stack?.stop();
});

describe('the README walk-through', () => {
  it('has commands, each with its documented output, and no answer outside a walk-through block', () => {
    expect(untestedAnswers(readme)).toEqual([]);
    expect(readme.steps.length).toBeGreaterThanOrEqual(4);
    for (const step of readme.steps) expect(step.command).toMatch(new RegExp(`curl .*${DOCUMENTED_ORIGIN.replaceAll('.', '\\.')}`, 's'));
  });

  it('npm start prints the URL, one key of each kind, the user-token secret and the admin token of the README', () => {
    const env = readme.environment;
    const output = stack.output();
    expect(output).toContain(`Kairos is running at ${stack.origin}`);
    expect(output).toMatch(new RegExp(`public key +${env.KAIROS_WRITE_KEY}`));
    expect(output).toMatch(new RegExp(`server key +${env.KAIROS_SERVER_KEY}`));
    expect(output).toContain(env.KAIROS_USER_TOKEN_SECRET);
    expect(output).toContain(env.KAIROS_ADMIN_TOKEN);
  });

  it('GET /v1/health answers the version of package.json, as the deployed functions do', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const answer = await fetch(`${stack.origin}/v1/health`);
    expect(answer.status).toBe(200);
    expect(((await answer.json()) as { version?: string }).version).toBe(version);
  });

  it('prints what the README says, command by command', async () => {
    expect(await runWalkthrough(readme.steps, stack.origin)).toBe(readme.steps.length);
  }, WALKTHROUGH_TIMEOUT_MS);

  it('stops cleanly on SIGTERM: exit code 0, DynamoDB Local gone, the port free', async () => {
    const emulators = await emulatorsOf(stack.child.pid);
    expect(emulators).toHaveLength(1);
    stack.child.kill('SIGTERM');
    const code = await Promise.race([stack.exit, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
    expect(code).toBe(0);
    expect(stack.output()).toContain('Kairos stopped.');
    const port = Number(new URL(stack.origin).port);
    const refused = await new Promise<boolean>((resolveProbe) => {
      const socket = createConnection(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolveProbe(false);
      });
      socket.once('error', () => resolveProbe(true));
    });
    expect(refused).toBe(true);
    const alive = (pid: number) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    expect(emulators.filter(alive)).toEqual([]);
  });
});
