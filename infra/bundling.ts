/**
 * How every Lambda bundle is built: the settings the CDK construct
 * (infra/constructs/kairos-function.ts) and the bench (bench/decide.ts,
 * which builds the bundles as the CDK does) share. No CDK import here.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { decode as decodeMappings, encode as encodeMappings } from '@jridgewell/sourcemap-codec';
import type * as TS from 'typescript';
import { functionDefinitions, type FunctionDefinition } from '#shared/functions.ts';

/**
 * esbuild banner for ESM bundles: a few CommonJS dependencies still call
 * `require()` for Node built-ins, which does not exist in an ES module.
 */
export const ESM_REQUIRE_BANNER = "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";


/**
 * Packages replaced in the bundles (esbuild `alias`, name → absolute path).
 * None: the functions carry no AWS SDK (their one DynamoDB client is
 * aws-lite, shared/store/client.ts, which reads Lambda's credentials from
 * the environment itself), so there is no default credential chain to cut.
 */
export const BUNDLE_ALIASES: Readonly<Record<string, string>> = {};

/**
 * A package left out of the bundles (esbuild `external`) and shipped beside
 * them in the asset, at `node_modules/<name>/`, so that only the processes
 * that use it load it, on first use (a synchronous `require`).
 */
export interface LazyModule {
  /** Package name, as required. */
  readonly name: string;
  /** Files copied from the installed package, relative to its folder: what `require(name)` loads, its package.json and license. */
  readonly files: readonly string[];
  /** The project module that loads it (a bundle that holds this module ships the package). */
  readonly loader: string;
  /** Who loads it and when (shown by the bench beside the bundle sizes). */
  readonly loadedBy: string;
}

/**
 * The lazily loaded packages. re2js: RE2 for CEL `matches()`
 * (shared/domain/catalog/regex.ts), needed only by a catalog that uses it;
 * `require('re2js')` takes its CommonJS build (`exports` → `require`).
 */
export const LAZY_MODULES: readonly LazyModule[] = [
  { name: 're2js', files: ['package.json', 'build/index.cjs', 'LICENSE'], loader: 'shared/domain/catalog/regex.ts', loadedBy: 'catalogs using matches()' },
];

/**
 * aws-lite's XML parser (its vendored fast-xml-parser, 26 KB minified), as
 * its client requires it: lazily (`require('../_vendor/xml')`), on the first
 * request or response in an XML protocol. Of Kairos's calls only S3's are
 * (shared/aws-requests.ts); a function that makes none (the manifest's `s3`,
 * shared/functions.ts) leaves the parser out of its bundle: esbuild keeps the
 * require as it is and it never runs. A pattern on the require's own path.
 */
export const AWS_LITE_XML_PARSER = '*/_vendor/xml';

const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * What the bundle of `entry` (a path, absolute or from the repository root)
 * leaves out (esbuild `external`): the lazily loaded packages, and aws-lite's
 * XML parser unless `entry` is a function whose manifest entry says `s3`.
 */
export function bundleExternals(entry: string): string[] {
  const path = relative(REPOSITORY_ROOT, resolve(REPOSITORY_ROOT, entry)).split(sep).join('/');
  const definition = Object.values(functionDefinitions).find((d) => d.entry === path) as FunctionDefinition | undefined;
  return [...LAZY_MODULES.map((module) => module.name), ...(definition?.s3 === true ? [] : [AWS_LITE_XML_PARSER])];
}

/** Folder of an installed lazy package (its package.json's folder), from the project's node_modules. */
export function lazyModuleFolder(name: string): string {
  const entry = createRequire(import.meta.url).resolve(name);
  const marker = `${sep}node_modules${sep}${name.split('/').join(sep)}${sep}`;
  const at = entry.lastIndexOf(marker);
  if (at === -1) throw new Error(`lazy module ${name}: resolved to ${entry}, outside a node_modules/${name} folder`);
  return entry.slice(0, at + marker.length - 1);
}

/** A path as one POSIX shell word. */
const quote = (path: string) => `'${path.replaceAll("'", "'\\''")}'`;

/**
 * Shell commands (CDK `commandHooks.afterBundling`, run locally, offline)
 * that copy every lazy package's files into `<outputDir>/node_modules/`.
 */
export function lazyModuleCommands(outputDir: string): string[] {
  return LAZY_MODULES.flatMap((module) => {
    const from = lazyModuleFolder(module.name);
    return module.files.map((file) => {
      const to = join(outputDir, 'node_modules', module.name, file);
      return `mkdir -p ${quote(dirname(to))} && cp ${quote(join(from, file))} ${quote(to)}`;
    });
  });
}

/** Copy every lazy package's files into `<outputDir>/node_modules/` (the bench's builds); their total bytes by package. */
export function copyLazyModules(outputDir: string): Record<string, number> {
  const bytes: Record<string, number> = {};
  for (const module of LAZY_MODULES) {
    const from = lazyModuleFolder(module.name);
    for (const file of module.files) {
      const to = join(outputDir, 'node_modules', module.name, file);
      mkdirSync(dirname(to), { recursive: true });
      copyFileSync(join(from, file), to);
      bytes[module.name] = (bytes[module.name] ?? 0) + statSync(to).size;
    }
  }
  return bytes;
}

/**
 * The bundle's text with every non-ASCII UTF-16 code unit written as a
 * `\uXXXX` escape, and where each replacement sits, so that a source map can
 * follow (`shiftSourceMap`).
 *
 * esbuild (charset ascii, its default) escapes non-ASCII characters
 * everywhere but inside regular-expression literals, whose contents it does
 * not parse (liquidjs's accent folding `[àáâãäå]`, cel-js's `µs`). One such
 * character makes Node decode the whole bundle as UTF-8 the slow way and V8
 * hold it as a two-byte string, which it scans again for each function it
 * compiles lazily: about 5 ms of a cold import, and some of the first
 * request's. In a regular expression, with or without the `u` or `v` flag,
 * `\uXXXX` matches what the character matched (a surrogate pair written as
 * two escapes is one code point under `u`); only `RegExp#source` spells it
 * differently. A character escaped by a backslash (`\é`, an identity escape)
 * takes the backslash's place. Strings, identifiers and comments are
 * unaffected in meaning. A tagged template (a template literal after a tag
 * such as `String.raw`), whose tag reads the raw text, is left as it is:
 * esbuild leaves its non-ASCII too, and an escape would change what the tag
 * reads. `text` is parsed as a module (TypeScript's parser) to find those.
 *
 * @returns `code`: the text, ASCII but for tagged templates; `edits[line]`:
 *   the replacements on that line (0-based, split at `\n` as source maps
 *   count lines), each its column in the input, the input length replaced
 *   and the output length written, in column order; `kept`: the non-ASCII
 *   code units left in tagged templates.
 */
export function escapeNonAscii(text: string): { code: string; edits: Map<number, AsciiEdit[]>; kept: number } {
  const edits = new Map<number, AsciiEdit[]>();
  const tagged = Buffer.byteLength(text, 'utf8') === text.length ? [] : taggedTemplateRanges(text);
  let next = 0;
  let kept = 0;
  let code = '';
  let line = 0;
  let lineStart = 0;
  let copied = 0;
  for (let at = 0; at < text.length; at++) {
    const unit = text.charCodeAt(at);
    if (unit === 0x0a) {
      line++;
      lineStart = at + 1;
      continue;
    }
    if (unit < 0x80) continue;
    while (next < tagged.length && (tagged[next] as [number, number])[1] <= at) next++;
    if (next < tagged.length && (tagged[next] as [number, number])[0] <= at) {
      kept++;
      continue;
    }
    let backslashes = 0;
    while (at - backslashes - 1 >= copied && text.charCodeAt(at - backslashes - 1) === 0x5c) backslashes++;
    const from = backslashes % 2 === 1 ? at - 1 : at;
    const escape = `\\u${unit.toString(16).padStart(4, '0')}`;
    code += text.slice(copied, from) + escape;
    copied = at + 1;
    const onLine = edits.get(line) ?? [];
    onLine.push({ column: from - lineStart, replaced: at + 1 - from, written: escape.length });
    edits.set(line, onLine);
  }
  return { code: code + text.slice(copied), edits, kept };
}

/** Where the templates of tagged template expressions sit in a module's text: [start, end) offsets, in order. */
function taggedTemplateRanges(text: string): [number, number][] {
  const ts = createRequire(import.meta.url)('typescript') as typeof TS;
  const source = ts.createSourceFile('bundle.mjs', text, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
  const ranges: [number, number][] = [];
  const visit = (node: TS.Node): void => {
    if (ts.isTaggedTemplateExpression(node)) ranges.push([node.template.getStart(source), node.template.end]);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return ranges.sort((a, b) => a[0] - b[0]);
}

/** One replacement of `escapeNonAscii` on a line. */
export interface AsciiEdit {
  /** Column (UTF-16 code units) in the input line where the replaced text starts. */
  readonly column: number;
  /** Code units replaced. */
  readonly replaced: number;
  /** Code units written instead. */
  readonly written: number;
}

/**
 * A source map's `mappings` moved to follow `escapeNonAscii`'s edits: on each
 * edited line, every segment's generated column after a replacement moves by
 * what the replacement added; a column inside a replaced character moves to
 * its start. The base64 VLQs are read and written by
 * `@jridgewell/sourcemap-codec` (what esbuild's and Rollup's maps are read
 * with): only generated columns change.
 */
export function shiftSourceMap(mappings: string, edits: ReadonlyMap<number, readonly AsciiEdit[]>): string {
  if (edits.size === 0) return mappings;
  const lines = decodeMappings(mappings);
  for (const [line, onLine] of edits) {
    for (const segment of lines[line] ?? []) {
      const column = segment[0];
      let moved = column;
      for (const edit of onLine) {
        if (column >= edit.column + edit.replaced) moved += edit.written - edit.replaced;
        else if (column > edit.column) moved += edit.column - column;
      }
      segment[0] = moved;
    }
  }
  return encodeMappings(lines);
}

/**
 * Rewrite a built bundle as pure ASCII (`escapeNonAscii`) and, when a source
 * map sits beside it (`<bundle>.map`), move its mappings to match. Used by
 * `buildLikeCdk` and, through scripts/ascii-bundle.ts, by the CDK's
 * `afterBundling` hook (`asciiBundleCommand`).
 *
 * @returns the number of code units escaped (0: the file is left as it was).
 */
export function asciiBundle(bundleFile: string): number {
  const { code, edits } = escapeNonAscii(readFileSync(bundleFile, 'utf8'));
  const escaped = [...edits.values()].reduce((sum, onLine) => sum + onLine.length, 0);
  if (escaped === 0) return 0;
  writeFileSync(bundleFile, code);
  const mapFile = `${bundleFile}.map`;
  if (existsSync(mapFile)) {
    const map = JSON.parse(readFileSync(mapFile, 'utf8')) as { mappings: string };
    map.mappings = shiftSourceMap(map.mappings, edits);
    writeFileSync(mapFile, JSON.stringify(map));
  }
  return escaped;
}

/**
 * The shell command (CDK `commandHooks.afterBundling`, run locally, offline,
 * in the project root) that makes `<outputDir>/index.mjs` ASCII and moves its
 * source map (`asciiBundle`), with the Node that runs the synth.
 */
export function asciiBundleCommand(outputDir: string): string {
  const script = fileURLToPath(new URL('../scripts/ascii-bundle.ts', import.meta.url));
  return `${quote(process.execPath)} --import tsx ${quote(script)} ${quote(join(outputDir, 'index.mjs'))}`;
}

/**
 * Build one function's bundle as the CDK construct does
 * (infra/constructs/kairos-function.ts: ESM, minified, node24, platform
 * node, AWS SDK bundled, the aliases, the lazy packages external, made
 * ASCII by `asciiBundle`) into `outfile`, with the lazy packages copied
 * beside it, and its source map as the construct writes it
 * (`<outfile>.map`, linked from the bundle, without the sources' text). For
 * the bench and the tests, which cannot wait for a synth.
 */
export async function buildLikeCdk(entry: string, outfile: string) {
  const { build } = await import('esbuild');
  const result = await build({
    entryPoints: [entry],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'node',
    target: 'node24',
    mainFields: ['module', 'main'],
    banner: { js: ESM_REQUIRE_BANNER },
    alias: { ...BUNDLE_ALIASES },
    external: bundleExternals(entry),
    outfile,
    metafile: true,
    logLevel: 'silent',
    sourcemap: 'linked',
    sourcesContent: false,
  });
  asciiBundle(outfile);
  const lazyBytes = copyLazyModules(dirname(outfile));
  return { ...result, lazyBytes };
}
