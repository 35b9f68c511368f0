/**
 * The DynamoDB Local launcher (local/dynamodb.ts) as a process: the emulator
 * it starts (a Java child in its own process group) never outlives the
 * process that started it, even when that process is killed without a
 * chance to stop it (SIGKILL: no exit handler runs). Otherwise a killed
 * `npm start` or test worker would leave a JVM holding memory and its port.
 */
import { execFile, spawn } from 'node:child_process';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPOSITORY_ROOT } from '#local/stack.ts';

const run = promisify(execFile);

async function emulatorsOf(pid: number | undefined): Promise<number[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,ppid=,args=']);
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, ppid, ...args]) => ppid === String(pid) && args.join(' ').includes('DynamoDBLocal'))
    .map(([pid]) => Number(pid));
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const portAnswers = (port: number) =>
  new Promise<boolean>((resolveProbe) => {
    const socket = createConnection(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolveProbe(true);
    });
    socket.once('error', () => resolveProbe(false));
  });

async function until(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('DynamoDB Local started by a process', () => {
  it('is stopped when that process is killed with SIGKILL, and its port freed', async () => {
    const launcher = pathToFileURL(join(REPOSITORY_ROOT, 'local', 'dynamodb.ts')).href;
    const script = [
      `const { startDynamoLocal } = await import(${JSON.stringify(launcher)});`,
      'const dynamo = await startDynamoLocal({ inMemory: true });',
      'console.log(`ready ${dynamo.port}`);',
      'setInterval(() => undefined, 60_000);',
    ].join('\n');
    const owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: REPOSITORY_ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    owner.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    owner.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<void>((resolveExit) => owner.once('exit', () => resolveExit()));
    let emulators: number[] = [];
    try {
      await until(() => {
        if (owner.exitCode !== null) throw new Error(`the owner exited with ${owner.exitCode}:\n${output}`);
        return /ready \d+/.test(output);
      }, 'DynamoDB Local to start');
      const port = Number(/ready (\d+)/.exec(output)?.[1]);
      emulators = await emulatorsOf(owner.pid);
      expect(emulators).toHaveLength(1);
      expect(await portAnswers(port)).toBe(true);

      owner.kill('SIGKILL');
      await exited;
      await until(() => emulators.every((pid) => !alive(pid)), 'the emulator to stop after its owner was killed');
      expect(await portAnswers(port)).toBe(false);
    } finally {
      if (owner.exitCode === null && owner.signalCode === null) owner.kill('SIGKILL');
      for (const pid of emulators.filter(alive)) process.kill(-pid, 'SIGKILL');
    }
  });
});
