/**
 * `npm start` as a process, for the tests of its lifecycle: started through
 * npm itself (so npm's handling of signals is part of what is tested), on
 * free ports, blind to the developer's own KAIROS_* settings; and the
 * process tree it makes (npm → node → the DynamoDB Local JVM), read with ps.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createConnection } from 'node:net';
import { promisify } from 'node:util';
import { freePort } from '#local/dynamodb.ts';
import { REPOSITORY_ROOT } from '#local/stack.ts';

const run = promisify(execFile);

export const NPM_START_WRITE_KEY = 'wk_lifecycle_test';
export const NPM_START_ADMIN_TOKEN = 'kat_lifecycle_test_admin_token';

export interface ProcessInfo {
  readonly pid: number;
  readonly ppid: number;
  readonly args: string;
}

/** The processes running now (zombies, which have exited, left out). */
export async function processes(): Promise<ProcessInfo[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,ppid=,stat=,args='], { maxBuffer: 16 * 1024 * 1024 });
  return stdout
    .split('\n')
    .map((line) => /^\s*(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/.exec(line))
    .filter((m): m is RegExpExecArray => m !== null && !(m[3] as string).startsWith('Z'))
    .map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[4] as string }));
}

/** `pid` and every process below it. */
export function descendants(all: readonly ProcessInfo[], pid: number): ProcessInfo[] {
  const found: ProcessInfo[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift() as number;
    for (const p of all) {
      if (p.ppid === parent) {
        found.push(p);
        queue.push(p.pid);
      }
    }
  }
  return found;
}

/** The DynamoDB Local JVMs listening (or about to) on `port`, whoever their parent is now. */
export async function emulatorsOnPort(port: number): Promise<ProcessInfo[]> {
  return (await processes()).filter((p) => p.args.includes('DynamoDBLocal') && new RegExp(`-port ${port}(\\s|$)`).test(p.args));
}

/** Whether something accepts TCP connections on 127.0.0.1:`port`. */
export const portAnswers = (port: number): Promise<boolean> =>
  new Promise((resolveProbe) => {
    const socket = createConnection(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolveProbe(true);
    });
    socket.once('error', () => resolveProbe(false));
  });

/** Polls `condition` every 100 ms until it holds; throws with `what` past the (generous) deadline. */
export async function until(condition: () => Promise<boolean> | boolean, what: string | (() => string), timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface NpmStart {
  /** The npm process. */
  readonly npm: ChildProcess;
  /** npm's exit: its code, or the signal that ended it. */
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** `npm start`'s node process (local/start.ts). */
  readonly nodePid: number;
  /** The DynamoDB Local JVM it started. */
  readonly javaPid: number;
  readonly httpPort: number;
  readonly dynamoPort: number;
  readonly url: string;
  /** stdout and stderr so far. */
  output(): string;
  /** Ends whatever of this stack is still running, by force (after a failed test). */
  kill(): Promise<void>;
}

/** The stack's node process and its JVM, once both are there. */
async function stackProcesses(npmPid: number): Promise<{ node: ProcessInfo; java: ProcessInfo } | undefined> {
  const all = await processes();
  const below = descendants(all, npmPid);
  // The JVM's parent is the stack's node process (npm may run it through a shell, whose args name the script too).
  const java = below.find((p) => p.args.includes('DynamoDBLocal'));
  const node = java && below.find((p) => p.pid === java.ppid && p.args.includes('local/start.ts'));
  return node && java ? { node, java } : undefined;
}

/**
 * Runs `npm start` with `env` on top of a clean environment (no KAIROS_*,
 * no PORT; fixed keys; access log off), on a free port, and waits until
 * GET /v1/health answers 200.
 */
export async function startNpmStart(env: Record<string, string> = {}): Promise<NpmStart> {
  const httpPort = await freePort();
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(base)) if (name.startsWith('KAIROS_') || name === 'PORT') delete base[name];
  const npm = spawn('npm', ['start'], {
    cwd: REPOSITORY_ROOT,
    env: {
      ...base,
      PORT: String(httpPort),
      KAIROS_WRITE_KEY: NPM_START_WRITE_KEY,
      KAIROS_ADMIN_TOKEN: NPM_START_ADMIN_TOKEN,
      KAIROS_ACCESS_LOG: '0',
      npm_config_update_notifier: 'false',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  npm.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) =>
    npm.once('exit', (code, signal) => resolveExit({ code, signal })),
  );
  const url = `http://127.0.0.1:${httpPort}`;
  const seen = new Set<number>();
  const kill = async () => {
    const tree = npm.pid === undefined ? [] : descendants(await processes(), npm.pid);
    for (const p of tree) seen.add(p.pid);
    if (npm.exitCode === null && npm.signalCode === null) npm.kill('SIGKILL');
    for (const pid of seen) {
      for (const target of [-pid, pid]) {
        try {
          process.kill(target, 'SIGKILL');
        } catch {
          // gone, or not a group leader
        }
      }
    }
  };
  try {
    let found: { node: ProcessInfo; java: ProcessInfo } | undefined;
    await until(
      async () => {
        if (npm.exitCode !== null || npm.signalCode !== null) throw new Error(`npm start exited early:\n${output}`);
        found ??= await stackProcesses(npm.pid as number);
        if (found) {
          seen.add(found.node.pid);
          seen.add(found.java.pid);
        }
        const health = await fetch(`${url}/v1/health`).catch(() => undefined);
        return found !== undefined && health?.status === 200;
      },
      `npm start to answer on ${url}/v1/health`,
      150_000,
    );
    const { node, java } = found as { node: ProcessInfo; java: ProcessInfo };
    const dynamoPort = Number(/-port (\d+)/.exec(java.args)?.[1]);
    return { npm, exit, nodePid: node.pid, javaPid: java.pid, httpPort, dynamoPort, url, output: () => output, kill };
  } catch (error) {
    await kill();
    throw error;
  }
}

/**
 * Waits (generously) until `npm start` and everything it started are gone —
 * npm, node, every JVM on its DynamoDB port, both ports free — and returns
 * what is left of each, for the test to assert on.
 */
export async function whatRemains(stack: NpmStart, timeoutMs = 60_000): Promise<{
  npmExited: boolean;
  node: boolean;
  java: number[];
  httpPort: boolean;
  dynamoPort: boolean;
}> {
  const remains = async () => {
    const running = await processes();
    const java = running.filter(
      (p) => p.pid === stack.javaPid || (p.args.includes('DynamoDBLocal') && new RegExp(`-port ${stack.dynamoPort}(\\s|$)`).test(p.args)),
    );
    return {
      npmExited: stack.npm.exitCode !== null || stack.npm.signalCode !== null,
      node: running.some((p) => p.pid === stack.nodePid),
      java: java.map((p) => p.pid),
      httpPort: await portAnswers(stack.httpPort),
      dynamoPort: await portAnswers(stack.dynamoPort),
    };
  };
  let last = await remains();
  await until(
    async () => {
      last = await remains();
      return last.npmExited && !last.node && last.java.length === 0 && !last.httpPort && !last.dynamoPort;
    },
    'npm start to stop',
    timeoutMs,
  ).catch(() => undefined);
  return last;
}
