/**
 * How every Lambda bundle is built: the settings the CDK construct
 * (infra/constructs/kairos-function.ts) and the bench (bench/decide.ts,
 * which builds the bundles as the CDK does) share. No CDK import here.
 */
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';

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

/** Folder of an installed lazy package (its package.json's folder), from the project's node_modules. */
export function lazyModuleFolder(name: string): string {
  const entry = createRequire(import.meta.url).resolve(name);
  const marker = `${sep}node_modules${sep}${name.split('/').join(sep)}${sep}`;
  const at = entry.lastIndexOf(marker);
  if (at === -1) throw new Error(`lazy module ${name}: resolved to ${entry}, outside a node_modules/${name} folder`);
  return entry.slice(0, at + marker.length - 1);
}

/**
 * Shell commands (CDK `commandHooks.afterBundling`, run locally, offline)
 * that copy every lazy package's files into `<outputDir>/node_modules/`.
 */
export function lazyModuleCommands(outputDir: string): string[] {
  const quote = (path: string) => `'${path.replaceAll("'", "'\\''")}'`;
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
 * Build one function's bundle as the CDK construct does
 * (infra/constructs/kairos-function.ts: ESM, minified, node24, platform
 * node, AWS SDK bundled, the aliases, the lazy packages external) into
 * `outfile`, with the lazy packages copied beside it. For the bench and
 * the tests, which cannot wait for a synth; no source map.
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
    external: LAZY_MODULES.map((module) => module.name),
    outfile,
    metafile: true,
    logLevel: 'silent',
  });
  const lazyBytes = copyLazyModules(dirname(outfile));
  return { ...result, lazyBytes };
}
