/**
 * The bundles are pure ASCII (infra/bundling.ts `escapeNonAscii`,
 * `shiftSourceMap`, `asciiBundle`): what esbuild leaves non-ASCII (inside
 * regular-expression literals) is written as `\uXXXX` escapes that match the
 * same text, the source map still points every mapped token at its own
 * source position, and the libraries whose regular expressions were escaped
 * (liquidjs's accent folding, cel-js's `µs` durations) answer as they do
 * unbundled.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asciiBundle, buildLikeCdk, escapeNonAscii, shiftSourceMap } from '#infra/bundling.ts';
import { PROJECT_ROOT } from '#infra/constructs/kairos-function.ts';

const execFileAsync = promisify(execFile);
/** Pure ASCII: every character one UTF-8 byte. */
const isAscii = (text: string) => Buffer.byteLength(text, 'utf8') === text.length;

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-ascii-'));
  // Entries written here resolve the project's packages.
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Evaluate a JavaScript expression's source text. */
const evaluate = (source: string): unknown => new Function(`return (${source});`)();

describe('escapeNonAscii', () => {
  it('writes every non-ASCII code unit as \\uXXXX, and the regular expressions match what they matched', () => {
    const cases = [
      String.raw`/[àáâãäå]/g`,
      String.raw`/(\d*\.?\d*)(ns|us|µs|ms|s|m|h)/`,
      // An identity escape of a non-ASCII character: the escape takes the backslash's place.
      String.raw`/\é+/`,
      // An escaped backslash before it: the backslash stays a backslash.
      String.raw`/\\é/`,
      // Astral characters: two code units without the u flag, one code point with it.
      String.raw`/[😀-😂]/u`,
      String.raw`/^😀.$/`,
      String.raw`/[ẞŒÞ]/v`,
    ];
    const inputs = ['àé', 'é', 'éé', '\\é', 'a', '3µs', '3us', '😁', '😀x', '😀\ud83d', 'Œ', 'ẞ', 'x'];
    for (const source of cases) {
      const { code } = escapeNonAscii(source);
      expect(isAscii(code)).toBe(true);
      const [before, after] = [evaluate(source), evaluate(code)] as [RegExp, RegExp];
      expect(after.flags).toBe(before.flags);
      for (const input of inputs) expect([source, input, after.exec(input)?.[0]]).toEqual([source, input, before.exec(input)?.[0]]);
    }
  });

  it('leaves a tagged template as it is (its tag reads the raw text), and escapes around it', () => {
    const source = 'String.raw`é${"ñ"}ü${String.raw`ß`}` + `é${1}` + /é/.source + "é" + String.raw`é`.length';
    const { code, kept } = escapeNonAscii(source);
    // The outer tagged template is kept whole, substitutions included.
    expect(kept).toBe(5);
    expect(code).toBe('String.raw`é${"ñ"}ü${String.raw`ß`}` + `\\u00e9${1}` + /\\u00e9/.source + "\\u00e9" + String.raw`é`.length');
    expect(evaluate(source)).toBe('éñüßé1éé1');
    // Only the regular expression's source spells its escape.
    expect(evaluate(code)).toBe('éñüßé1\\u00e9é1');
  });

  it('leaves ASCII text as it is, and reports each replacement by line and column', () => {
    expect(escapeNonAscii('let a = /x/;\nlet b = 1;')).toEqual({ code: 'let a = /x/;\nlet b = 1;', edits: new Map(), kept: 0 });
    const { code, edits } = escapeNonAscii('a;\nx=/é|\\ñ/;y=/ß/');
    expect(code).toBe('a;\nx=/\\u00e9|\\u00f1/;y=/\\u00df/');
    expect(edits).toEqual(
      new Map([
        [
          1,
          [
            { column: 3, replaced: 1, written: 6 },
            { column: 5, replaced: 2, written: 6 },
            { column: 12, replaced: 1, written: 6 },
          ],
        ],
      ]),
    );
  });
});

describe('shiftSourceMap', () => {
  it('keeps every mapped token of a minified bundle on its own source position', async () => {
    const source = [
      'export function fold(text: string) {',
      "  return text.replace(/[àáâ]/g, 'a').replace(/[ñ]/g, 'n');",
      '}',
      'export function later(value: number) {',
      '  const unit = /(\\d+)(µs|ms)/.exec(String(value));',
      '  return unit ? fold(unit[2] ?? "") : later(value + 1);',
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'fold.ts'), source);
    const result = await build({
      entryPoints: [join(dir, 'fold.ts')],
      bundle: true,
      minify: true,
      format: 'esm',
      sourcemap: 'external',
      outfile: join(dir, 'fold.mjs'),
      write: false,
      logLevel: 'silent',
    });
    const text = (ext: string) => result.outputFiles.find((file) => file.path.endsWith(ext))?.text ?? '';
    const [code, payload] = [text('.mjs'), JSON.parse(text('.map')) as SourceMapPayload];
    expect(isAscii(code)).toBe(false);

    const { code: ascii, edits } = escapeNonAscii(code);
    const before = new SourceMap(payload);
    const after = new SourceMap({ ...payload, mappings: shiftSourceMap(payload.mappings, edits) });
    const [oldLines, newLines] = [code.split('\n'), ascii.split('\n')];
    const moved: { character: string | undefined; entry: object }[] = [];
    const expected: typeof moved = [];
    for (const [line, text] of oldLines.entries()) {
      let newColumn = 0;
      for (let column = 0; column < text.length; column++) {
        const entry = before.findEntry(line, column) as { generatedColumn?: number };
        if (entry.generatedColumn === column) {
          // The same character sits at the moved column, and the moved mapping names the same source position.
          expected.push({ character: text[column], entry: { ...entry, generatedColumn: newColumn } });
          moved.push({ character: newLines[line]?.[newColumn], entry: after.findEntry(line, newColumn) });
        }
        newColumn += text.charCodeAt(column) < 0x80 ? 1 : 6;
      }
    }
    expect(expected.length).toBeGreaterThan(10);
    expect(moved).toEqual(expected);
  });
});

describe('asciiBundle', () => {
  it('makes a bundle of liquidjs and cel-js ASCII, and their escaped regular expressions answer as unbundled', async () => {
    const probe = [
      "import { Liquid } from 'liquidjs';",
      "import { Environment } from '@marcbachmann/cel-js';",
      'const liquid = new Liquid();',
      "const cel = new Environment({ unlistedVariablesAreDyn: true });",
      'export const answers = () => [',
      "  liquid.parseAndRenderSync(\"{{ 'Crème Brûlée à Œuvre' | slugify: 'latin' }}\"),",
      "  String(cel.evaluate('duration(\"1500µs\") == duration(\"1ms\") + duration(\"500us\")')),",
      '];',
    ].join('\n');
    writeFileSync(join(dir, 'probe.ts'), probe);
    const outfile = join(dir, 'probe-bundle', 'index.mjs');
    const result = await buildLikeCdk(join(dir, 'probe.ts'), outfile);
    expect(result.errors).toEqual([]);
    expect(isAscii(readFileSync(outfile, 'utf8'))).toBe(true);

    const unbundled = (await import(pathToFileURL(join(dir, 'probe.ts')).href)) as { answers: () => string[] };
    expect(unbundled.answers()).toEqual(['creme-brulee-a-oeuvre', 'true']);
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--input-type=module', '-e', `const m = await import(${JSON.stringify(pathToFileURL(outfile).href)}); process.stdout.write(JSON.stringify(m.answers()));`],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(JSON.parse(stdout)).toEqual(unbundled.answers());
  });

  it('rewrites the file and the source map beside it, and leaves an ASCII file untouched', () => {
    const file = join(dir, 'small.mjs');
    writeFileSync(file, 'export const r=/[é]/;export const s=1;\n//# sourceMappingURL=small.mjs.map\n');
    writeFileSync(`${file}.map`, JSON.stringify({ version: 3, sources: ['a.ts'], names: [], mappings: 'AAAA,YAAe,qBAAsB' }));
    expect(asciiBundle(file)).toBe(1);
    expect(readFileSync(file, 'utf8')).toBe('export const r=/[\\u00e9]/;export const s=1;\n//# sourceMappingURL=small.mjs.map\n');
    // Segments at columns 0 and 12 sit before the escape (column 17); the one at 33 moves by 5 (its delta from 12: 21 → 26).
    expect((JSON.parse(readFileSync(`${file}.map`, 'utf8')) as { mappings: string }).mappings).toBe('AAAA,YAAe,0BAAsB');
    expect(asciiBundle(file)).toBe(0);
  });

  it('the decide bundle, built as the CDK builds it, is pure ASCII and loads', async () => {
    const outfile = join(dir, 'decide', 'index.mjs');
    const result = await buildLikeCdk(join(PROJECT_ROOT, 'functions/decide/handler.ts'), outfile);
    expect(result.errors).toEqual([]);
    expect(isAscii(readFileSync(outfile, 'utf8'))).toBe(true);
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--input-type=module', '-e', `const m = await import(${JSON.stringify(pathToFileURL(outfile).href)}); process.stdout.write(typeof m.handler);`],
      { encoding: 'utf8', timeout: 60_000, env: { ...process.env, AWS_REGION: 'us-east-1', POWERTOOLS_METRICS_DISABLED: 'true', KAIROS_DECISION_KEY: 'kdk_ascii_test_decision_key_0123456789abcdef' } },
    );
    expect(stdout).toBe('function');
  });
});
