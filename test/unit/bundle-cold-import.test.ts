/**
 * What a function's bundle makes Node load when a cold start imports it:
 * node:zlib only on the first compressed body (shared/http/body-decoder.ts),
 * so the functions that read no stored catalog (ingest, health) import
 * without it; a compressed body still decodes (test/unit/http-body-decoder.test.ts).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLikeCdk } from '#infra/bundling.ts';
import { PROJECT_ROOT } from '#infra/constructs/kairos-function.ts';

const execFileAsync = promisify(execFile);
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-cold-import-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The built-in modules Node loaded while a fresh process imported `bundle`. */
async function builtinsLoadedByImport(bundle: string): Promise<string[]> {
  const probe = `
    const before = new Set(process.moduleLoadList);
    const module = await import(${JSON.stringify(pathToFileURL(bundle).href)});
    if (typeof module.handler !== 'function') throw new Error('no handler');
    process.stdout.write(JSON.stringify(process.moduleLoadList.filter((m) => !before.has(m) && m.startsWith('NativeModule ')).map((m) => m.slice(13))));`;
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', probe], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env, AWS_REGION: 'us-east-1', POWERTOOLS_METRICS_DISABLED: 'true' },
  });
  return JSON.parse(stdout) as string[];
}

describe('a cold import', () => {
  it.each(['ingest', 'health'])('of the %s bundle does not load node:zlib', async (name) => {
    const outfile = join(dir, name, 'index.mjs');
    const result = await buildLikeCdk(join(PROJECT_ROOT, `functions/${name}/handler.ts`), outfile);
    expect(result.errors).toEqual([]);
    const loaded = await builtinsLoadedByImport(outfile);
    // The probe itself sees the import happen: crypto is loaded by every bundle.
    expect(loaded).toContain('crypto');
    expect(loaded).not.toContain('zlib');
  });
});
