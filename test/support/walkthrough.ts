/**
 * A document's walk-through, run as written (README.md, docs/integration.md,
 * docs/catalog.md):
 *
 * - the document's `KEY=value … npm start` line is the environment the
 *   walk-through is written for;
 * - the stack is started with `npm start`'s own command (package.json
 *   `scripts.start`) as a child process, on a free port: the documents'
 *   origin, http://127.0.0.1:3000, becomes that port's, so a test never
 *   collides with a running `npm start`;
 * - every ```sh walkthrough block of the document, in document order, is one
 *   session of one bash (variables set by a step are seen by the next ones),
 *   run in the repository's root, its node processes (the user tokens the
 *   documents mint) on the stack's midday clock; each command is followed by
 *   the output the document says it prints, on a `# → …` line.
 *
 * The notation of an output is JSON, where `…` stands for what is not shown:
 * `,…` fields left out of an object (the fields shown must be there with
 * these values), `[…]` an array whose items are not shown, `{…}` an object
 * whose fields are not shown, `"…"` any string and `"text…"` a string that
 * starts with `text` (an id or a time that changes from run to run).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect } from 'vitest';
import { freePort } from '#local/dynamodb.ts';
import { REPOSITORY_ROOT } from '#local/stack.ts';

const run = promisify(execFile);

/** The origin the documents are written for (`npm start`'s default). */
export const DOCUMENTED_ORIGIN = 'http://127.0.0.1:3000';

export interface Step {
  /** The command lines, as written (comments left out). */
  readonly command: string;
  /** What the document says it prints (the text after `# → `). */
  readonly expected: string;
}

export interface Walkthrough {
  /** The document, relative to the repository root. */
  readonly path: string;
  readonly text: string;
  /** The `KEY=value … npm start` line's variables. */
  readonly environment: Readonly<Record<string, string>>;
  /** Every step of every ```sh walkthrough block, in document order. */
  readonly steps: readonly Step[];
}

/** Reads a document's walk-through; throws when it has no environment line or no walkthrough block. */
export function readWalkthrough(path: string): Walkthrough {
  const text = readFileSync(join(REPOSITORY_ROOT, path), 'utf8');
  return { path, text, environment: documentEnvironment(text, path), steps: walkthroughSteps(text, path) };
}

/** The `KEY=value … npm start` line: the environment the walk-through is written for. */
function documentEnvironment(text: string, path: string): Record<string, string> {
  const line = text.split('\n').find((l) => /^(?:[A-Z_]+=\S+\s+)+npm start\s*$/.test(l.trim()));
  if (!line) throw new Error(`${path} has no \`KEY=value npm start\` line`);
  return Object.fromEntries(
    line
      .trim()
      .replace(/\s*npm start$/, '')
      .split(/\s+/)
      .map((kv) => kv.split('=', 2) as [string, string]),
  );
}

/**
 * The fenced code blocks of a document, with their info string (```sh walkthrough → `sh walkthrough`);
 * a block indented in a list item is read without its indentation.
 */
export function codeBlocks(text: string): { info: string; body: string }[] {
  return [...text.matchAll(/^( *)```([^\n]*)\n([\s\S]*?)^\1```/gm)].map((m) => {
    const indent = m[1] ?? '';
    const body = (m[3] ?? '')
      .split('\n')
      .map((line) => (line.startsWith(indent) ? line.slice(indent.length) : line))
      .join('\n');
    return { info: (m[2] ?? '').trim(), body };
  });
}

/**
 * The code blocks of a document that show an answer (`# → …`) but are not
 * ```sh walkthrough blocks: request/answer pairs no test runs.
 */
export function untestedAnswers(walkthrough: Pick<Walkthrough, 'text'>): string[] {
  return codeBlocks(walkthrough.text)
    .filter((b) => b.info !== 'sh walkthrough' && /^#\s*→/m.test(b.body))
    .map((b) => b.body);
}

/** The commands of the ```sh walkthrough blocks, each with the output written under it (`# → …`). */
function walkthroughSteps(text: string, path: string): Step[] {
  const blocks = codeBlocks(text).filter((b) => b.info === 'sh walkthrough');
  if (blocks.length === 0) throw new Error(`${path} has no \`\`\`sh walkthrough block`);
  const steps: Step[] = [];
  for (const { body } of blocks) {
    let command: string[] = [];
    for (const line of body.split('\n')) {
      if (line.startsWith('# → ')) {
        if (command.length === 0) throw new Error(`${path}: an output without a command: ${line}`);
        steps.push({ command: command.join('\n'), expected: line.slice(4) });
        command = [];
      } else if (line.startsWith('#') || (line.trim() === '' && command.length === 0)) {
        continue;
      } else {
        command.push(line);
      }
    }
    if (command.length > 0) throw new Error(`${path}: a command without its output: ${command.join('\n')}`);
  }
  return steps;
}

const ANY_ARRAY = '\u0000any array';
const ANY_OBJECT = '\u0000any object';

/** The expected value an output line stands for (the notation above), for `toMatchObject`. */
export function expectedOutput(text: string): unknown {
  // Outside strings: `,…` is dropped, `[…]` and `{…}` become placeholders; inside strings `…` is kept.
  let json = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (inString) {
      json += c;
      if (c === '\\') json += text[++i] ?? '';
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      json += c;
    } else if (text.startsWith(',…', i)) {
      i += 1;
    } else if (text.startsWith('[…]', i)) {
      json += JSON.stringify(ANY_ARRAY);
      i += 2;
    } else if (text.startsWith('{…}', i)) {
      json += JSON.stringify(ANY_OBJECT);
      i += 2;
    } else {
      json += c;
    }
  }
  const convert = (value: unknown): unknown => {
    if (value === ANY_ARRAY) return expect.any(Array);
    if (value === ANY_OBJECT) return expect.any(Object);
    if (value === '…') return expect.any(String);
    if (typeof value === 'string' && value.endsWith('…')) {
      return expect.stringMatching(new RegExp(`^${value.slice(0, -1).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
    if (Array.isArray(value)) return value.map(convert);
    if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, convert(v)]));
    return value;
  };
  return convert(JSON.parse(json) as unknown);
}

/** The developer's own Kairos settings left out: the walk-through sets its own. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(env)) if (name.startsWith('KAIROS') || name === 'PORT') delete env[name];
  return env;
}

export interface DocumentedStack {
  /** `npm start`'s node process. */
  readonly child: ChildProcess;
  /** Its exit code. */
  readonly exit: Promise<number | null>;
  /** Where it answers (a free port). */
  readonly origin: string;
  /** stdout and stderr so far. */
  output(): string;
  /** Stops it if it still runs (SIGTERM, then by force with its DynamoDB Local): for afterAll. */
  stop(): Promise<void>;
}

/**
 * Starts the stack as `npm start` does (the command of package.json
 * `scripts.start`) with `environment` on a free port, and waits until
 * GET /v1/health answers 200.
 */
export async function startDocumentedStack(environment: Readonly<Record<string, string>>): Promise<DocumentedStack> {
  // The free port can be taken by another test's process before the stack binds it: then a new port, up to 3 times.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnPort(environment, await freePort());
    } catch (error) {
      if (attempt >= 3 || !/is already in use/.test((error as Error).message)) throw error;
    }
  }
}

/** startDocumentedStack on `port`. */
async function startOnPort(environment: Readonly<Record<string, string>>, port: number): Promise<DocumentedStack> {
  const origin = `http://127.0.0.1:${port}`;
  const pkg = JSON.parse(readFileSync(join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  // `exec node …`: the shell npm runs the script in becomes node (test/e2e/npm-start-signals.e2e.test.ts).
  const [command, ...args] = pkg.scripts.start.replace(/^exec\s+/, '').split(/\s+/);
  if (command !== 'node') throw new Error(`scripts.start is expected to run node, not ${command}`);
  // Preceded by the midday clock (midday-clock.ts): the documented answers are the day's, whatever the hour.
  const midday = join(REPOSITORY_ROOT, 'test', 'support', 'midday-clock.ts');
  const scriptAt = args.findIndex((arg, i) => !arg.startsWith('-') && args[i - 1] !== '--import');
  const child = spawn(process.execPath, [...args.slice(0, scriptAt), '--import', midday, ...args.slice(scriptAt)], {
    cwd: REPOSITORY_ROOT,
    env: { ...cleanEnvironment(), ...environment, PORT: String(port), KAIROS_ACCESS_LOG: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exit = new Promise<number | null>((resolveExit) => child.once('exit', (code) => resolveExit(code)));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    // A SIGKILL of node alone would leave its Java process behind: find it first.
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
  };
  // Under the e2e tier's 120 s hook timeout, so that a start that fails stops what it started.
  const deadline = Date.now() + 100_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${output}`);
    const health = await fetch(`${origin}/v1/health`).catch(() => undefined);
    if (health?.status === 200) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`npm start did not become healthy:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { child, exit, origin, output: () => output, stop };
}

/** How long a whole walk-through may take on a loaded machine (reads are retried up to a minute each). */
export const WALKTHROUGH_TIMEOUT_MS = 600_000;

/** The DynamoDB Local a process runs: a Java child in its own process group. */
export async function emulatorsOf(pid: number | undefined): Promise<number[]> {
  const { stdout } = await run('ps', ['-eo', 'pid=,ppid=,args=']);
  return stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter(([, ppid, ...args]) => ppid === String(pid) && args.join(' ').includes('DynamoDBLocal'))
    .map(([pid]) => Number(pid));
}

/**
 * One bash for a whole walk-through, as a reader's terminal: a variable a
 * step sets (`export KAIROS=…`, `DECISION=$(curl …)`) is there for the next.
 * Each command's stdout and stderr are captured apart from the shell's own.
 */
export class WalkthroughShell {
  private readonly bash: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'kairos-walkthrough-'));
  private shellOutput = '';
  private count = 0;

  constructor() {
    // The documents mint user tokens with node (`iat`, `exp`): it reads the midday clock the documented stack runs on
    // (startDocumentedStack), or the tokens would be dated hours away from that stack's clock.
    const midday = join(REPOSITORY_ROOT, 'test', 'support', 'midday-clock.ts');
    const env = { ...cleanEnvironment(), NODE_OPTIONS: `--import tsx --import "${midday}"` };
    this.bash = spawn('bash', ['--noprofile', '--norc'], { cwd: REPOSITORY_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.bash.stdout?.on('data', (chunk: Buffer) => (this.shellOutput += chunk.toString()));
    this.bash.stderr?.on('data', (chunk: Buffer) => (this.shellOutput += chunk.toString()));
  }

  /** Runs `command` in the session; its stdout, stderr and exit status. */
  async run(command: string, timeoutMs = 30_000): Promise<{ stdout: string; stderr: string; status: number }> {
    const n = ++this.count;
    const file = (name: string) => join(this.dir, `${n}.${name}`);
    writeFileSync(file('sh'), command);
    const marker = `__walkthrough_step_${n}_status__`;
    // stdin from /dev/null: a command must not read the session's own input.
    this.bash.stdin?.write(`eval "$(cat '${file('sh')}')" >'${file('out')}' 2>'${file('err')}' </dev/null; printf '\\n%s %s\\n' '${marker}' "$?"\n`);
    const deadline = Date.now() + timeoutMs;
    let match: RegExpExecArray | null;
    while (!(match = new RegExp(`${marker} (\\d+)`).exec(this.shellOutput))) {
      if (this.bash.exitCode !== null) throw new Error(`the walk-through's shell exited (${this.bash.exitCode}):\n${this.shellOutput}`);
      if (Date.now() > deadline) throw new Error(`the command did not finish within ${timeoutMs} ms:\n${command}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return { stdout: readFileSync(file('out'), 'utf8'), stderr: readFileSync(file('err'), 'utf8'), status: Number(match[1]) };
  }

  close(): void {
    this.bash.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Runs the steps in order in one shell, against `origin` instead of the
 * documented one, and asserts that each prints what the document says.
 * Reads may run before the stream has reached the profile, or before a new
 * catalog version is served ("a moment later", "within 30 s"): they are
 * retried until they print the documented output or a generous deadline
 * passes (a loaded machine is slow, not wrong); writes never are. A decision
 * writes nothing, so it is retried like a read. Returns how many steps
 * printed what the document says (all of them, or it throws).
 */
export async function runWalkthrough(steps: readonly Step[], origin: string): Promise<number> {
  const shell = new WalkthroughShell();
  let checked = 0;
  try {
    for (const step of steps) {
      const command = step.command.replaceAll(DOCUMENTED_ORIGIN, origin);
      const expected = expectedOutput(step.expected);
      const isRead = /\/v1\/decide\b/.test(command) || !/\s-d\s|\s-X\s|--data/.test(command);
      const deadline = Date.now() + (isRead ? 60_000 : 0);
      let actual: unknown;
      for (;;) {
        const { stdout, stderr } = await shell.run(command);
        try {
          actual = JSON.parse(stdout) as unknown;
        } catch {
          actual = stderr === '' ? stdout : { stdout, stderr };
        }
        let matches = true;
        try {
          expect(actual).toMatchObject(expected as object);
        } catch {
          matches = false;
        }
        if (matches || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect({ command: step.command, output: actual }).toMatchObject({ command: step.command, output: expected });
      checked++;
    }
  } finally {
    shell.close();
  }
  return checked;
}
