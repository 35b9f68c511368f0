/**
 * The import-circle check of `npm run lint` (.dependency-cruiser.cjs,
 * docs/design.md "Layers") refuses what it says it refuses: a circle closed
 * only by type-only imports, through package.json "imports" aliases, as the
 * four circles it was added for were; and passes the same files once the
 * circle is broken. Run on a small project written to a temporary folder
 * with the repository's own configuration and dependency-cruiser's command.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const CONFIG = join(ROOT, '.dependency-cruiser.cjs');
const DEPCRUISE = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruiser.mjs');

let folder: string | undefined;
afterEach(() => {
  if (folder) rmSync(folder, { recursive: true, force: true });
  folder = undefined;
});

/** A project of two folders with aliases, `files` by path; the check's exit status and output. */
function cruise(files: Record<string, string>): { status: number | null; output: string } {
  folder = mkdtempSync(join(tmpdir(), 'kairos-circles-'));
  const project = folder;
  const write = (path: string, text: string) => {
    mkdirSync(join(project, path, '..'), { recursive: true });
    writeFileSync(join(project, path), text);
  };
  write('package.json', JSON.stringify({ name: 'fixture', type: 'module', imports: { '#a/*': './a/*', '#b/*': './b/*' } }));
  write('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'nodenext', moduleResolution: 'nodenext', allowImportingTsExtensions: true, noEmit: true } }));
  for (const [path, text] of Object.entries(files)) write(path, text);
  const run = spawnSync(process.execPath, [DEPCRUISE, '--config', CONFIG, 'a', 'b'], { cwd: project, encoding: 'utf8', timeout: 60_000 });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('the import-circle check (npm run lint)', () => {
  it('refuses a circle closed only by type-only imports through the folder aliases, naming both files', () => {
    const { status, output } = cruise({
      'a/x.ts': "import type { Y } from '#b/y.ts';\nexport type X = number;\nexport type Z = Y;\n",
      'b/y.ts': "import type { X } from '#a/x.ts';\nexport type Y = X;\n",
    });
    expect(status).not.toBe(0);
    expect(output).toContain('no-circular');
    expect(output).toContain('a/x.ts');
    expect(output).toContain('b/y.ts');
  });

  it('passes the same files once the shared type lives in a module both import', () => {
    const { status, output } = cruise({
      'a/shared.ts': 'export type X = number;\n',
      'a/x.ts': "import type { Y } from '#b/y.ts';\nexport type Z = Y;\n",
      'b/y.ts': "import type { X } from '#a/shared.ts';\nexport type Y = X;\n",
    });
    expect(output).not.toContain('no-circular');
    expect(status).toBe(0);
  });
});
