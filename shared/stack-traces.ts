/**
 * Source-mapped stack traces without paying for them at cold start.
 *
 * Node's `--enable-source-maps` reads and indexes a module's source map when
 * the module loads: for a function's bundle (about 460 KB of code, a 680 KB
 * map) that is about 30 ms of CPU on every cold start (the bench's cold start
 * proxy, bench/README.md), spent whether or not an error is ever logged.
 * Here the same stack text is produced from the same map, read on the first
 * stack that has a frame in the bundle: `error.stack` is formatted by V8 only
 * when it is first read, so a cold start that logs no error reads no map.
 *
 * The formatting is Node 24's own (lib/internal/source_map/prepare_stack_trace.js,
 * `prepareStackTraceWithSourceMaps`, `serializeJSStackFrame`,
 * `getOriginalSymbolName`), over Node's public `module.SourceMap`; the text is
 * held equal to `--enable-source-maps` for the bundle's frames by a property
 * test (test/infra/stack-traces.infra.test.ts). Frames outside the bundle are
 * written as V8 writes them (`CallSite.toString()`), as Node does for files
 * with no map. The source line snippet Node prints above an uncaught
 * exception in a terminal is not reproduced (Lambda reports `error.stack`).
 */
import { accessSync, constants, readFileSync } from 'node:fs';
import { SourceMap, type SourceMapPayload } from 'node:module';
import { fileURLToPath } from 'node:url';

type CallSite = NodeJS.CallSite & {
  getEnclosingLineNumber(): number | null;
  getEnclosingColumnNumber(): number | null;
  isAsync(): boolean;
};

/** Node's marker of its own errors (`internal/errors`: a symbol described `kIsNodeError` on their class's prototype), whose header names the code. */
function isNodeError(error: object): boolean {
  for (let o: object | null = error; o !== null; o = Object.getPrototypeOf(o) as object | null) {
    if (Object.getOwnPropertySymbols(o).some((s) => s.description === 'kIsNodeError')) return true;
  }
  return false;
}

/**
 * The map with its `sources` made absolute URLs against the map's own URL
 * (and `sourceRoot`), as Node's source map cache makes them
 * (lib/internal/source_map/source_map_cache.js `sourcesToAbsolute`).
 */
function withAbsoluteSources(payload: SourceMapPayload, mapUrl: string): SourceMapPayload {
  const root = payload.sourceRoot || '';
  return { ...payload, sources: payload.sources.map((source) => new URL(root + source, mapUrl).href), sourceRoot: '' };
}

/** `Error.prototype.toString` of V8 and Node, for a value that may not be an Error. */
function errorHeader(error: unknown): string {
  if (error !== null && typeof error === 'object') {
    const e = error as { name?: unknown; message?: unknown; code?: unknown };
    if (isNodeError(error)) return `${String(e.name)} [${String(e.code)}]: ${String(e.message)}`;
  }
  return Error.prototype.toString.call(error);
}

const stripFileScheme = (source: string) => (source.startsWith('file://') ? fileURLToPath(source) : source);

/** The symbol name the bundler removed, from the map's `names` (Node's getOriginalSymbolName). */
function originalSymbolName(map: SourceMap, site: CallSite, caller: CallSite | undefined): string | undefined {
  const enclosing = map.findEntry((site.getEnclosingLineNumber() ?? 0) - 1, (site.getEnclosingColumnNumber() ?? 0) - 1) as { name?: string };
  if (enclosing.name) return enclosing.name;
  if (caller && site.getFileName() === caller.getFileName()) {
    return (map.findEntry((caller.getLineNumber() ?? 0) - 1, (caller.getColumnNumber() ?? 0) - 1) as { name?: string }).name;
  }
  return undefined;
}

/** One frame in the original source (Node's serializeJSStackFrame). */
function mappedFrame(map: SourceMap, site: CallSite, caller: CallSite | undefined): string {
  const entry = map.findEntry((site.getLineNumber() ?? 0) - 1, (site.getColumnNumber() ?? 0) - 1) as {
    originalSource?: string;
    originalLine?: number;
    originalColumn?: number;
  };
  if (entry.originalSource === undefined || entry.originalLine === undefined || entry.originalColumn === undefined) return `${site}`;
  const name = originalSymbolName(map, site, caller);
  const functionName = site.getFunctionName() ?? site.getMethodName();
  const prefix = site.isAsync() ? 'async ' : site.isConstructor() ? 'new ' : '';
  const typeName = site.getTypeName();
  const namePrefix = typeName !== null && typeName !== 'global' ? `${typeName}.` : '';
  const mappedName = `${namePrefix}${name || `${functionName || '<anonymous>'}`}`;
  return `${prefix}${mappedName} (${stripFileScheme(entry.originalSource)}:${entry.originalLine + 1}:${entry.originalColumn + 1})`;
}

/** After a failed read of the map, stacks are written unmapped for this long before it is read again (ms). */
export const MAP_RETRY_MS = 10_000;

/** Node's own `Error.prepareStackTrace` (Node 22+ sets one, `ErrorPrepareStackTrace`; older Node none), not a library's. */
const isNodeDefault = (prepare: unknown) => prepare === undefined || (typeof prepare === 'function' && prepare.name === 'ErrorPrepareStackTrace');

/**
 * Turn on source-mapped stack traces for the bundle `bundleUrl` (a `file:`
 * URL, the bundle's `import.meta.url`) when its map is beside it
 * (`<bundle>.map`, esbuild's linked source map). The map is read and indexed
 * on the first stack formatted with a frame in the bundle; a map that cannot
 * be read leaves frames as V8 writes them, and is read again on a later
 * stack, MAP_RETRY_MS after the failure. Does nothing when Node's own
 * source maps are on (`--enable-source-maps`), when the module does not run
 * from a bundle with a map (tests and the local stack run the TypeScript
 * sources), or when a library has set its own `Error.prepareStackTrace`. Idempotent.
 *
 * @returns whether this call turned them on.
 */
export function sourceMappedStackTraces(bundleUrl: string): boolean {
  if (process.sourceMapsEnabled || !isNodeDefault(Error.prepareStackTrace) || !bundleUrl.startsWith('file:')) return false;
  const mapFile = `${fileURLToPath(bundleUrl)}.map`;
  try {
    accessSync(mapFile, constants.R_OK); // read and parsed later, on first need
  } catch {
    return false;
  }
  let map: SourceMap | undefined;
  let failedAt = Number.NEGATIVE_INFINITY;
  const bundleMap = () => {
    // A failed read (a file descriptor or memory short, when errors are likely) is tried again, at most every MAP_RETRY_MS.
    if (map === undefined && Date.now() - failedAt >= MAP_RETRY_MS) {
      try {
        map = new SourceMap(withAbsoluteSources(JSON.parse(readFileSync(mapFile, 'utf8')) as SourceMapPayload, `${bundleUrl}.map`));
      } catch {
        failedAt = Date.now();
      }
    }
    return map;
  };
  Error.prepareStackTrace = (error: unknown, trace: NodeJS.CallSite[]) => {
    const header = errorHeader(error);
    if (trace.length === 0) return header;
    const sites = trace as CallSite[];
    let text = header;
    for (let i = 0; i < sites.length; i++) {
      const site = sites[i] as CallSite;
      let frame: string | undefined;
      try {
        if (site.getFileName() === bundleUrl) {
          const m = bundleMap();
          if (m) frame = mappedFrame(m, site, sites[i + 1]);
        }
      } catch {
        frame = undefined;
      }
      text += `\n    at ${frame ?? `${site}`}`;
    }
    return text;
  };
  return true;
}
