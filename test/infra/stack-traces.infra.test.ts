/**
 * Stack traces mapped on first need (shared/stack-traces.ts) are the text
 * Node's `--enable-source-maps` writes, for any call path through a bundle
 * built as the functions' are, and the map is read only when a stack needs it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildLikeCdk } from '#infra/bundling.ts';
import { PROJECT_ROOT } from '#infra/constructs/kairos-function.ts';
import { MAP_RETRY_MS } from '#shared/stack-traces.ts';
import type { Leaf, Step } from '../support/stack-trace-fixture.ts';

const STEPS: readonly Step[] = ['named', 'arrow', 'method', 'static', 'getter', 'constructor', 'async', 'map'];
const LEAVES: readonly Leaf[] = ['error', 'type-error', 'node-error', 'custom', 'thrown-later'];

interface Case {
  readonly path: readonly Step[];
  readonly leaf: Leaf;
  readonly message: string;
}

/**
 * Run every case in one fresh Node process importing the bundle; each case's `error.stack`, whether the
 * lazy traces were turned on, and the source map files read before the first stack and after the last.
 */
const PROBE = `
  import fs from 'node:fs';
  import { syncBuiltinESMExports } from 'node:module';
  const reads = [];
  const readFileSync = fs.readFileSync;
  fs.readFileSync = (file, ...rest) => { if (String(file).endsWith('.map')) reads.push(String(file)); return readFileSync(file, ...rest); };
  syncBuiltinESMExports();
  const [bundle, casesFile] = process.argv.slice(1);
  const { lazy, step } = await import(bundle);
  const readsAtLoad = reads.length;
  const cases = JSON.parse(readFileSync(casesFile, 'utf8'));
  const stacks = [];
  for (const c of cases) {
    try {
      await step(c.path, c.leaf, c.message);
      stacks.push(null);
    } catch (error) {
      stacks.push(String(error.stack));
    }
  }
  process.stdout.write(JSON.stringify({ lazy, readsAtLoad, readsAfter: reads.length, stacks }));`;

interface ProbeResult {
  readonly lazy: boolean;
  readonly readsAtLoad: number;
  readonly readsAfter: number;
  readonly stacks: readonly (string | null)[];
}

describe('source-mapped stack traces read on first need (shared/stack-traces.ts)', () => {
  let directory: string;
  let bundleUrl: string;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'kairos-stack-traces-'));
    const outfile = join(directory, 'index.mjs');
    const built = await buildLikeCdk(join(PROJECT_ROOT, 'test/support/stack-trace-fixture.ts'), outfile);
    if (built.errors.length > 0) throw new Error(`the fixture bundle does not build: ${JSON.stringify(built.errors)}`);
    bundleUrl = pathToFileURL(outfile).href;
  }, 120_000);

  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  const probe = (cases: readonly Case[], mode: 'node' | 'lazy' | 'none'): ProbeResult => {
    const casesFile = join(directory, 'cases.json');
    writeFileSync(casesFile, JSON.stringify(cases));
    const stdout = execFileSync(process.execPath, [...(mode === 'node' ? ['--enable-source-maps'] : []), '--input-type=module', '-e', PROBE, bundleUrl, casesFile], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH, ...(mode === 'lazy' ? { KAIROS_LAZY_STACKS: '1' } : {}) },
    });
    return JSON.parse(stdout) as ProbeResult;
  };

  it('for any call path and error, the stack is the text --enable-source-maps gives; the map is read once, on the first stack', () => {
    const cases = fc.sample(
      fc.record({
        path: fc.array(fc.constantFrom(...STEPS), { maxLength: 12 }),
        leaf: fc.constantFrom(...LEAVES),
        message: fc.string({ maxLength: 40 }),
      }),
      { numRuns: 300, seed: 20261201 },
    );
    const node = probe(cases, 'node');
    const lazy = probe(cases, 'lazy');
    expect(node.lazy).toBe(false); // Node's own source maps are on: nothing installed
    expect(lazy.lazy).toBe(true);
    expect(lazy.readsAtLoad).toBe(0);
    expect(lazy.readsAfter).toBe(1);
    for (let i = 0; i < cases.length; i++) {
      expect({ case: cases[i], stack: lazy.stacks[i] }).toEqual({ case: cases[i], stack: node.stacks[i] });
    }
    // Mapped: the frames name the TypeScript source, which a process with neither writes nowhere.
    const fixture = join(PROJECT_ROOT, 'test/support/stack-trace-fixture.ts');
    expect(lazy.stacks.every((stack) => stack?.includes(`${fixture}:`))).toBe(true);
    const none = probe(cases, 'none');
    expect(none.lazy).toBe(false);
    expect(none.stacks.some((stack) => stack?.includes(`${fixture}:`))).toBe(false);
  }, 120_000);

  it('the error kinds keep their headers: Node errors name their code, custom names and messages are kept', () => {
    const cases: Case[] = LEAVES.map((leaf) => ({ path: ['method', 'async', 'named'], leaf, message: 'line one\nline two' }));
    const { stacks } = probe(cases, 'lazy');
    expect(stacks.map((stack) => stack?.split('\n    at ')[0])).toEqual([
      'Error: line one\nline two',
      "TypeError: Cannot read properties of undefined (reading 'field')",
      expect.stringMatching(/^RangeError \[ERR_OUT_OF_RANGE\]: /),
      'CatalogProblem: line one\nline two',
      'RangeError: line one\nline two',
    ]);
    // The frame that threw, by its original name and place (the bundle's name for it is minified).
    expect(stacks[0]).toMatch(/^Error: line one\nline two\n {4}at throwLeaf \(\/.*\/test\/support\/stack-trace-fixture\.ts:\d+:\d+\)\n/);
  }, 60_000);
  it('a map that cannot be read at the first error leaves that stack unmapped, and is read again MAP_RETRY_MS later', () => {
    // The map moved away for the first error, back for the next ones; the clock moved past the retry delay.
    const probe = `
      import { renameSync } from 'node:fs';
      const [bundle, retryMs] = process.argv.slice(1);
      const map = new URL(bundle + '.map').pathname;
      const { step } = await import(bundle);
      const stackOf = async () => { try { await step(['named'], 'error', 'm'); } catch (error) { return String(error.stack); } };
      renameSync(map, map + '.away');
      const first = await stackOf();
      renameSync(map + '.away', map);
      const soon = await stackOf();
      const now = Date.now;
      Date.now = () => now() + Number(retryMs);
      const later = await stackOf();
      process.stdout.write(JSON.stringify({ first, soon, later }));`;
    const stdout = execFileSync(process.execPath, ['--input-type=module', '-e', probe, bundleUrl, String(MAP_RETRY_MS)], {
      encoding: 'utf8',
      timeout: 60_000,
      env: { PATH: process.env.PATH, KAIROS_LAZY_STACKS: '1' },
    });
    const { first, soon, later } = JSON.parse(stdout) as Record<string, string>;
    const fixture = join(PROJECT_ROOT, 'test/support/stack-trace-fixture.ts');
    expect(first).toContain(`${bundleUrl}:`);
    expect(first).not.toContain(fixture);
    expect(soon).not.toContain(fixture);
    expect(later).toContain(`(${fixture}:`);
  }, 60_000);
});
