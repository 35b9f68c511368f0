/**
 * One local stack per data folder (local/data-folder-lock.ts): a second
 * claim while the first one's process runs is refused, saying what to do; a
 * claim left by a process that is gone is taken over, by one starter when
 * two race for it (in one process at the racy moment, and in separate
 * processes over many folders); a release frees the folder, and only its
 * own claim.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { DATA_FOLDER_LOCK, claimDataFolder } from '#local/data-folder-lock.ts';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'kairos-lock-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const folder = (name: string) => join(root, name);

describe('claiming a data folder', () => {
  it('creates the folder and writes the claiming process id; the release removes it', () => {
    const data = folder('fresh');
    const release = claimDataFolder(data);
    expect(readFileSync(join(data, DATA_FOLDER_LOCK), 'utf8')).toBe(`${process.pid}\n`);
    release();
    expect(existsSync(join(data, DATA_FOLDER_LOCK))).toBe(false);
    // Free again: claimed and released a second time.
    claimDataFolder(data)();
  });

  it('held by another running process: refused, naming the folder, the process and what to do', async () => {
    const data = folder('held');
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      const pid = other.pid as number;
      claimDataFolder(data, pid);
      expect(() => claimDataFolder(data)).toThrow(
        `The data folder ${data} is in use by another local stack (process ${pid}): stop that one, or give this one another folder (KAIROS_DATA_DIR) or none (KAIROS_IN_MEMORY=1). If no stack runs there, delete ${join(data, DATA_FOLDER_LOCK)}.`,
      );
      // The refused claim leaves the holder's claim alone.
      expect(readFileSync(join(data, DATA_FOLDER_LOCK), 'utf8')).toBe(`${pid}\n`);
    } finally {
      other.kill('SIGKILL');
      await new Promise((resolve) => other.once('exit', resolve));
    }
  });

  it('left by a process that is gone (killed), or holding no id: taken over', () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid as number;
    const data = folder('stale');
    claimDataFolder(data, gone);
    const release = claimDataFolder(data);
    expect(readFileSync(join(data, DATA_FOLDER_LOCK), 'utf8')).toBe(`${process.pid}\n`);
    release();
    const garbled = folder('garbled');
    claimDataFolder(garbled, gone);
    writeFileSync(join(garbled, DATA_FOLDER_LOCK), 'not a pid');
    claimDataFolder(garbled)();
  });

  it('two starters racing to take over one stale claim: the first runs, the second is refused (it does not remove the claim just made)', async () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid as number;
    const data = folder('raced');
    claimDataFolder(data, gone);
    const first = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' });
    try {
      const firstPid = first.pid as number;
      let firstRelease: (() => void) | undefined;
      // The second starter has seen the stale claim; before it takes it over, the first starter takes it over and claims.
      const second = () => claimDataFolder(data, process.pid, { beforeTakeover: () => (firstRelease ??= claimDataFolder(data, firstPid)) });
      expect(second).toThrow(`is in use by another local stack (process ${firstPid})`);
      expect(firstRelease).toBeDefined();
      expect(readFileSync(join(data, DATA_FOLDER_LOCK), 'utf8')).toBe(`${firstPid}\n`);
      // Nothing of the takeover is left behind.
      expect(readdirSync(data)).toEqual([DATA_FOLDER_LOCK]);
    } finally {
      first.kill('SIGKILL');
      await new Promise((resolve) => first.once('exit', resolve));
    }
  });

  it('starters in separate processes racing over stale claims: exactly one claims each folder', async () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid as number;
    const race = folder('processes');
    const folders = Array.from({ length: 300 }, (_, i) => join(race, `f${i}`));
    for (const data of folders) claimDataFolder(data, gone);
    const go = join(race, 'go');
    // Each starter waits for the signal, then claims every folder in turn (holding what it claims while it lives).
    const starter = `
      const { existsSync } = await import('node:fs');
      const { claimDataFolder } = await import('./local/data-folder-lock.ts');
      const folders = ${JSON.stringify(folders)};
      process.stdout.write('ready\\n');
      while (!existsSync(${JSON.stringify(go)}));
      const claimed = folders.map((data) => { try { claimDataFolder(data); return 1; } catch { return 0; } });
      process.stdout.write(JSON.stringify(claimed) + '\\n');
      process.stdin.resume();
      process.stdin.on('end', () => process.exit(0));`;
    const starters = [0, 1].map(() => spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', starter], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] }));
    const lines = starters.map((child) => {
      let out = '';
      child.stdout.setEncoding('utf8');
      child.stdout.on('data', (chunk: string) => (out += chunk));
      return (n: number) => new Promise<string[]>((resolve) => {
        const check = () => (out.split('\n').length > n ? resolve(out.split('\n').slice(0, n)) : setTimeout(check, 10));
        check();
      });
    });
    try {
      await Promise.all(lines.map((read) => read(1)));
      writeFileSync(go, '');
      const results = (await Promise.all(lines.map((read) => read(2)))).map((l) => JSON.parse(l[1] as string) as number[]);
      const claimedBy = folders.map((_, i) => results.map((claimed) => claimed[i]).join(''));
      expect(claimedBy.filter((who) => who !== '10' && who !== '01')).toEqual([]);
    } finally {
      for (const child of starters) child.stdin.end();
      await Promise.all(starters.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)))));
    }
  });

  it('a takeover marker left by a start that stopped mid-takeover: refused, naming the marker to delete', () => {
    const gone = spawnSync(process.execPath, ['-e', '']).pid as number;
    const data = folder('marker-left');
    claimDataFolder(data, gone);
    writeFileSync(join(data, `${DATA_FOLDER_LOCK}.takeover`), `${gone}\n`);
    expect(() => claimDataFolder(data)).toThrow(`if no stack runs there, delete ${join(data, `${DATA_FOLDER_LOCK}.takeover`)}`);
  });

  it('a release removes only its own claim', () => {
    const data = folder('taken-over');
    const gone = spawnSync(process.execPath, ['-e', '']).pid as number;
    const staleRelease = claimDataFolder(data, gone);
    const release = claimDataFolder(data);
    staleRelease();
    expect(readFileSync(join(data, DATA_FOLDER_LOCK), 'utf8')).toBe(`${process.pid}\n`);
    release();
  });
});
