/**
 * One `npm start` per data folder (local/data-folder-lock.ts): a second
 * `npm start` over the folder of a running one exits with code 1 and says
 * what to do, before it starts a DynamoDB Local there; the first goes on
 * answering, and frees the folder when it stops. Started again over the
 * folder, it prints the credentials it generated there the first time.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '#local/dynamodb.ts';
import { DATA_FOLDER_LOCK } from '#local/data-folder-lock.ts';
import { REPOSITORY_ROOT } from '#local/stack.ts';
import { processes, startNpmStart, whatRemains, type NpmStart } from '../support/npm-start.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'kairos-folder-'));
let first: NpmStart | undefined;

afterAll(async () => {
  await first?.kill();
  rmSync(dataDir, { recursive: true, force: true });
});

/** `npm start` run to its end: exit code and output. */
function runNpmStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const base: NodeJS.ProcessEnv = { ...process.env };
  for (const name of Object.keys(base)) if (name.startsWith('KAIROS_') || name === 'PORT') delete base[name];
  const npm = spawn('npm', ['start'], { cwd: REPOSITORY_ROOT, env: { ...base, npm_config_update_notifier: 'false', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  npm.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  npm.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return new Promise((resolve) => npm.once('exit', (code) => resolve({ code, output })));
}

describe('a data folder in use', () => {
  it('a second npm start over it is refused, saying by whom and what to do; the first runs on, and frees it when it stops', async () => {
    first = await startNpmStart({ KAIROS_DATA_DIR: dataDir });
    const claim = join(dataDir, DATA_FOLDER_LOCK);
    expect(readFileSync(claim, 'utf8')).toBe(`${first.nodePid}\n`);

    const second = await runNpmStart({ KAIROS_DATA_DIR: dataDir, PORT: String(await freePort()) });
    expect(second.code).toBe(1);
    expect(second.output).toContain(
      `Kairos could not start: The data folder ${dataDir} is in use by another local stack (process ${first.nodePid}): stop that one, or give this one another folder (KAIROS_DATA_DIR) or none (KAIROS_IN_MEMORY=1).`,
    );
    // No second DynamoDB Local over the folder: only the first one's.
    const emulators = (await processes()).filter((p) => p.args.includes('DynamoDBLocal') && p.args.includes(join(dataDir, 'dynamodb')));
    expect(emulators.map((p) => p.pid)).toEqual([first.javaPid]);
    expect((await fetch(`${first.url}/v1/health`)).status).toBe(200);
    expect(readFileSync(claim, 'utf8')).toBe(`${first.nodePid}\n`);

    first.npm.kill('SIGTERM');
    expect(await whatRemains(first)).toEqual({ npmExited: true, node: false, java: [], httpPort: false, dynamoPort: false });
    expect(existsSync(claim)).toBe(false);
  });

  it('started again over it, prints the same generated credentials, each still said to be generated and kept there', async () => {
    // The first start generated the server key, the user-token secret and the decision key (the public key and the admin
    // token are fixed by startNpmStart): the restart reads them back from the folder and says where they come from.
    const generatedLines = (output: string) => output.split('\n').filter((line) => /^ {2}(server key|user-token secret) /.test(line));
    const before = generatedLines(first?.output() ?? '');
    expect(before).toHaveLength(2);
    for (const line of before) expect(line).toMatch(/ {3}\(generated; kept in the data folder\)$/);
    const again = await startNpmStart({ KAIROS_DATA_DIR: dataDir });
    try {
      expect(generatedLines(again.output())).toEqual(before);
    } finally {
      again.npm.kill('SIGTERM');
      await whatRemains(again);
    }
  });
});
