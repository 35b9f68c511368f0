/**
 * The README walk-through, run as written: the `npm start` line of README.md
 * gives the environment, the stack is started through `npm start`'s own
 * command (package.json `scripts.start`) as a child process, and every curl
 * command of the ```sh walkthrough block runs in bash and must print what the
 * README says it prints. The one translation: the README's port 3000 becomes
 * a free port, so the test never collides with a running `npm start`.
 * It also proves the process shuts down cleanly on SIGTERM, port freed.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '#local/dynamodb.ts';
import { REPOSITORY_ROOT } from '#local/stack.ts';

const run = promisify(execFile);
const README = readFileSync(join(REPOSITORY_ROOT, 'README.md'), 'utf8');
const README_ORIGIN = 'http://127.0.0.1:3000';

interface Step {
  readonly command: string;
  readonly expected: string;
}

/** The `KEY=value … npm start` line: the environment the walk-through is written for. */
function readmeEnvironment(): Record<string, string> {
  const line = README.split('\n').find((l) => /^(?:[A-Z_]+=\S+\s+)+npm start\s*$/.test(l.trim()));
  if (!line) throw new Error('README.md has no `KEY=value npm start` line');
  return Object.fromEntries(line.trim().replace(/\s*npm start$/, '').split(/\s+/).map((kv) => kv.split('=', 2) as [string, string]));
}

/** The commands of the ```sh walkthrough block, each with the output written under it (`# → …`). */
function walkthroughSteps(): Step[] {
  const block = /```sh walkthrough\n([\s\S]*?)```/.exec(README)?.[1];
  if (!block) throw new Error('README.md has no ```sh walkthrough block');
  const steps: Step[] = [];
  let command: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('# → ')) {
      if (command.length === 0) throw new Error(`An output without a command: ${line}`);
      steps.push({ command: command.join('\n'), expected: line.slice(4) });
      command = [];
    } else if (line.startsWith('#') || (line.trim() === '' && command.length === 0)) {
      continue;
    } else {
      command.push(line);
    }
  }
  if (command.length > 0) throw new Error(`A command without its output: ${command.join('\n')}`);
  return steps;
}

/**
 * The README's notation for an output: JSON where `…` stands for fields left
 * out and `[…]` for an array whose items are not shown. Fields shown must be
 * there with these values.
 */
function expectedOutput(text: string): unknown {
  const ANY_ARRAY = '__readme_any_array__';
  const json = text.replaceAll('[…]', `"${ANY_ARRAY}"`).replaceAll(/,…/g, '');
  const parsed = JSON.parse(json) as unknown;
  const convert = (value: unknown): unknown => {
    if (value === ANY_ARRAY) return expect.any(Array);
    if (Array.isArray(value)) return value.map(convert);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v)]));
    return value;
  };
  return convert(parsed);
}

let child: ChildProcess | undefined;
let origin: string;
let output = '';
let exit: Promise<number | null>;

beforeAll(async () => {
  const port = await freePort();
  origin = `http://127.0.0.1:${port}`;
  const pkg = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  // `exec node …`: the shell npm runs the script in becomes node (test/e2e/local-stack-lifecycle.e2e.test.ts).
  const [command, ...args] = pkg.scripts.start.replace(/^exec\s+/, '').split(/\s+/);
  if (command !== 'node') throw new Error(`scripts.start is expected to run node, not ${command}`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('KAIROS_') || name === 'PORT') delete env[name];
  child = spawn(process.execPath, args, {
    cwd: REPOSITORY_ROOT,
    env: { ...env, ...readmeEnvironment(), PORT: String(port), KAIROS_ACCESS_LOG: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  exit = new Promise((resolveExit) => child?.once('exit', (code) => resolveExit(code)));
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${output}`);
    const health = await fetch(`${origin}/v1/health`).catch(() => undefined);
    if (health?.status === 200) break;
    if (Date.now() > deadline) throw new Error(`npm start did not become healthy:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
});

/** The DynamoDB Local a process runs: a Java child in its own process group. */
async function emulatorsOf(pid: number | undefined): Promise<number[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,ppid=,args=']);
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, ppid, ...args]) => ppid === String(pid) && args.join(' ').includes('DynamoDBLocal'))
    .map(([pid]) => Number(pid));
}

afterAll(async () => {
  if (!child || child.exitCode !== null) return;
  // Still running only when a step failed before the SIGTERM test: stop it the same way, by force if it must be,
  // and then its emulator too (a SIGKILL of npm start alone would leave the Java process behind).
  const emulators = await emulatorsOf(child.pid);
  child.kill('SIGTERM');
  const stopped = await Promise.race([exit.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 20_000))]);
  if (stopped) return;
  child.kill('SIGKILL');
  await exit;
  for (const pid of emulators) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});

describe('the README walk-through', () => {
  const steps = walkthroughSteps();

  it('has commands, each with its documented output', () => {
    expect(steps.length).toBeGreaterThanOrEqual(4);
    for (const step of steps) expect(step.command).toMatch(new RegExp(`curl .*${README_ORIGIN.replaceAll('.', '\\.')}`, 's'));
  });

  it('npm start prints the URL, one key of each kind, the user-token secret and the admin token of the README', () => {
    const env = readmeEnvironment();
    expect(output).toContain(`Kairos is running at ${origin}`);
    expect(output).toMatch(new RegExp(`public key +${env.KAIROS_WRITE_KEY}`));
    expect(output).toMatch(new RegExp(`server key +${env.KAIROS_SERVER_KEY}`));
    expect(output).toContain(env.KAIROS_USER_TOKEN_SECRET);
    expect(output).toContain(env.KAIROS_ADMIN_TOKEN);
  });

  it('prints what the README says, command by command', async () => {
    for (const step of steps) {
      const command = step.command.replaceAll(README_ORIGIN, origin);
      const expected = expectedOutput(step.expected);
      // Reads may run before the stream has reached the profile ("a moment later"): retry them, never writes.
      // A decision reads the profile and writes nothing, so it is retried like a read. The deadline is generous
      // (a loaded machine is slow, not wrong): a read returns as soon as it prints what the README says.
      const isRead = /\/v1\/decide\b/.test(command) || !/\s-d\s|\s-X\s/.test(command);
      const deadline = Date.now() + (isRead ? 30_000 : 0);
      let actual: unknown;
      for (;;) {
        const { stdout } = await run('bash', ['-c', command], { timeout: 15_000 });
        try {
          actual = JSON.parse(stdout) as unknown;
        } catch {
          actual = stdout;
        }
        const matches = (() => {
          try {
            expect(actual).toMatchObject(expected as object);
            return true;
          } catch {
            return false;
          }
        })();
        if (matches || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect({ command: step.command, output: actual }).toMatchObject({ command: step.command, output: expected });
    }
  });

  it('stops cleanly on SIGTERM: exit code 0, DynamoDB Local gone, the port free', async () => {
    const emulators = await emulatorsOf(child?.pid);
    expect(emulators).toHaveLength(1);
    child?.kill('SIGTERM');
    const code = await Promise.race([exit, new Promise((r) => setTimeout(() => r('still running'), 20_000))]);
    expect(code).toBe(0);
    expect(output).toContain('Kairos stopped.');
    const port = Number(new URL(origin).port);
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
