/**
 * One local stack per data folder (local/data-folder-lock.ts): a second
 * claim while the first one's process runs is refused, saying what to do; a
 * claim left by a process that is gone is taken over; a release frees the
 * folder, and only its own claim.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DATA_FOLDER_LOCK, claimDataFolder } from '#local/data-folder-lock.ts';

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
