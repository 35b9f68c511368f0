/**
 * The live catalog as the functions that decide see it: a process-wide
 * cache of the compiled live version, read from the Control table
 * (items written by shared/store/catalog.ts) through the store's client.
 *
 * A version is read as its normalised document — the JSON the schema
 * produced when the version was published and validated, stored with it
 * (`CATALOG#<n>`, `DOC#<i>` chunks: the document gzip'd, then the source
 * text as a second gzip member that this reader never inflates) — and compiled with
 * domain/catalog/compile.ts. Neither the YAML parser nor zod is on this
 * path: the decide function's bundle and cold start stay small
 * (ARCHITECTURE.md, Budgets). Reads: the live pointer (GetItem), then META
 * and the first document chunk in one BatchGetItem (more chunks only for a
 * catalog over ~350 KB gzip'd).
 *
 * The cache checks the pointer at most every REFRESH_INTERVAL_MS,
 * stale-while-revalidate: a warm caller never waits for the check; a new
 * version is compiled once per process. While the store is unreachable the
 * cached version is served stale for up to KAIROS_STALE_MAX_SECONDS after
 * the last successful check (`liveCatalogStatus` says so, for a metric);
 * past that it is not served at all. A cold caller waits no longer than its
 * deadline.
 */
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { Logger } from '@aws-lambda-powertools/logger';
import { config } from '#shared/config.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { compileDocument } from '#domain/catalog/compile.ts';
import type { CatalogDocument } from '#domain/catalog/schema.ts';
import { batchGet } from './batch-write.ts';
import { withDeadline } from './deadline.ts';
import { bytesOf, dynamo, type DynamoClient, type Item } from './client.ts';
import { CATALOG_DOCUMENT_CHUNK_SK_PREFIX, catalogDocumentChunkItem, catalogLiveItem, catalogMetaItem } from './items.ts';

/**
 * Format of a version's `DOC#` chunks (`META.documentFormat`): 2, written
 * today, the one stored copy of the version — the normalised document's
 * JSON gzip'd (its first `META.documentZippedBytes` bytes), then the source
 * text gzip'd; 1, written before, the document alone, the source text in
 * `CHUNK#` chunks beside it. Both are read.
 */
export const DOCUMENT_FORMAT = 2;
/** Every `META.documentFormat` this store reads. */
export const READABLE_DOCUMENT_FORMATS: ReadonlySet<unknown> = new Set([1, 2]);

/**
 * The gzip'd bytes of a version's `DOC#` chunks, in order, read with its
 * META (one BatchGetItem for META and the first chunk; more chunks only for
 * a catalog over ~350 KB gzip'd). Undefined when the version is missing.
 * Throws for a version stored without its document (publish it again) or
 * with a chunk missing.
 */
export async function readDocumentChunks(
  version: number,
  options?: LiveCatalogOptions,
): Promise<{ meta: Item; zipped: Buffer } | undefined> {
  const { client, table } = resolve(options);
  const metaKey = catalogMetaItem.key(version);
  const chunkKey = (i: number) => catalogDocumentChunkItem.key(version, i);
  const call = { consistent: true, client, deadline: Date.now() + READ_DEADLINE_MS };
  const first = await batchGet(table, [metaKey, chunkKey(0)], call);
  const meta = first.find((i) => i.sk === metaKey.sk);
  if (!meta) return undefined;
  if (!READABLE_DOCUMENT_FORMATS.has(meta.documentFormat) || typeof meta.documentChunks !== 'number') {
    throw new Error(`catalog version ${version} was stored without its normalised document; publish it again`);
  }
  const chunks = new Map<string, Uint8Array>();
  const keep = (items: readonly Item[]) => {
    for (const i of items) {
      const data = bytesOf(i.data);
      if (typeof i.sk === 'string' && i.sk.startsWith(CATALOG_DOCUMENT_CHUNK_SK_PREFIX) && data) chunks.set(i.sk, data);
    }
  };
  keep(first);
  const missing = Array.from({ length: meta.documentChunks }, (_, i) => chunkKey(i)).filter((key) => !chunks.has(key.sk));
  if (missing.length > 0) keep(await batchGet(table, missing, call));
  const parts: Uint8Array[] = [];
  for (let i = 0; i < meta.documentChunks; i++) {
    const part = chunks.get(chunkKey(i).sk);
    if (!part) throw new Error(`catalog version ${version} is incomplete (document chunk ${i} missing)`);
    parts.push(part);
  }
  return { meta, zipped: Buffer.concat(parts) };
}

/** The gzip member of the document in a version's DOC# bytes (format 2: its first documentZippedBytes; format 1: all). */
export function documentMember(meta: Item, zipped: Buffer): Buffer {
  if (meta.documentFormat !== 2) return zipped;
  const end = meta.documentZippedBytes;
  if (typeof end !== 'number' || end < 1 || end > zipped.length) throw new Error(`catalog version ${String(meta.version)}: documentZippedBytes out of range`);
  return zipped.subarray(0, end);
}

/** How often a warm process checks the live pointer. */
export const REFRESH_INTERVAL_MS = 5_000;
/** Deadline of one read of the catalog store (pointer, or document). */
const READ_DEADLINE_MS = 3_000;

let logger: Logger | undefined;
const log = () => (logger ??= new Logger({ serviceName: 'kairos-catalog' }));

export interface LiveCatalogOptions {
  readonly client?: DynamoClient;
  readonly tableName?: string;
}

const resolve = (options: LiveCatalogOptions = {}) => ({
  client: options.client ?? dynamo(),
  table: options.tableName ?? config.CONTROL_TABLE,
});

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

/** The live version number (consistent read), or undefined when no catalog was ever published. */
export async function readLiveVersionNumber(options?: LiveCatalogOptions): Promise<number | undefined> {
  const { client, table } = resolve(options);
  const { Item: item } = await client.send(
    'GetItem',
    { TableName: table, Key: catalogLiveItem.key(), ConsistentRead: true },
    { deadline: Date.now() + READ_DEADLINE_MS },
  );
  return typeof item?.version === 'number' ? item.version : undefined;
}

/**
 * The normalised document of a stored version, or undefined when the
 * version is missing or incomplete. Throws for a version stored without its
 * document (publish it again) or one that fails its checksum.
 */
export async function readCatalogDocument(version: number, options?: LiveCatalogOptions): Promise<CatalogDocument | undefined> {
  return (await readStoredDocument(version, options))?.document;
}

/** readCatalogDocument, with the SHA-256 (hex) of the document's JSON text, which it was checked against. */
async function readStoredDocument(version: number, options?: LiveCatalogOptions): Promise<{ document: CatalogDocument; sha256: string } | undefined> {
  const stored = await readDocumentChunks(version, options);
  if (!stored) return undefined;
  const json = gunzipSync(documentMember(stored.meta, stored.zipped)).toString('utf8');
  const digest = sha256(json);
  if (digest !== stored.meta.documentSha256) throw new Error(`catalog version ${version}: the document does not match its checksum`);
  return { document: JSON.parse(json) as CatalogDocument, sha256: digest };
}

// ---------------------------------------------------------------------------
// Process-wide cache of the live compiled catalog.

interface CacheState {
  catalog?: CompiledCatalog;
  /** The pointer was read at least once (so "no catalog published" is known, not unknown). */
  loaded?: boolean;
  /** When the pointer was last checked (ms). */
  checkedAt: number;
  /** When a check last succeeded (ms): the age of what is cached. */
  confirmedAt: number;
  /** The last check failed (the store is unreachable, or the version unreadable). */
  failing: boolean;
  refreshing?: Promise<CompiledCatalog | undefined>;
}

const cache: CacheState = { checkedAt: 0, confirmedAt: 0, failing: false };

/** Forget the cached catalog (tests; or to force a synchronous reload). */
export function resetCatalogCache(): void {
  cache.catalog = undefined;
  cache.loaded = false;
  cache.checkedAt = 0;
  cache.confirmedAt = 0;
  cache.failing = false;
  cache.refreshing = undefined;
}

export interface LiveCatalogStatus {
  /**
   * `fresh`: the last check succeeded; `stale`: the cached catalog is served
   * although the last check failed; `unknown`: nothing usable is cached
   * (never loaded, or older than KAIROS_STALE_MAX_SECONDS while failing).
   */
  readonly state: 'fresh' | 'stale' | 'unknown';
  /** Milliseconds since the store last confirmed the cached catalog. */
  readonly ageMs: number;
}

const tooOld = (now: number) => now - cache.confirmedAt > config.KAIROS_STALE_MAX_SECONDS * 1_000;

/** What getLiveCatalog serves at `now`, without any I/O. */
export function liveCatalogStatus(now = Date.now()): LiveCatalogStatus {
  const ageMs = Math.max(0, now - cache.confirmedAt);
  if (!cache.loaded && !cache.catalog) return { state: 'unknown', ageMs };
  if (!cache.failing) return { state: 'fresh', ageMs };
  return { state: tooOld(now) ? 'unknown' : 'stale', ageMs };
}

/** The cached live catalog without any I/O (undefined before the first load). */
export function peekLiveCatalog(): CompiledCatalog | undefined {
  return cache.catalog;
}

/** Put a compiled catalog in this process's cache (after publishing it here). */
export function primeCatalogCache(catalog: CompiledCatalog, now = Date.now()): void {
  if (!cache.catalog || catalog.version >= cache.catalog.version) cache.catalog = catalog;
  cache.checkedAt = now;
  cache.confirmedAt = now;
  cache.failing = false;
}

function confirmed<T>(value: T): T {
  cache.confirmedAt = Date.now();
  cache.failing = false;
  return value;
}

async function refresh(options?: LiveCatalogOptions): Promise<CompiledCatalog | undefined> {
  const version = await readLiveVersionNumber(options);
  if (version === undefined) {
    cache.loaded = true;
    return confirmed(cache.catalog);
  }
  if (cache.catalog?.version === version) return confirmed(cache.catalog);
  const stored = await readStoredDocument(version, options);
  if (!stored) throw new Error(`live catalog version ${version} is missing`);
  // Validated when it was published: its rules are not type-checked again (a second parse each), nor its
  // time zones looked up. Its text is JSON.stringify(document) (catalog.ts), so the text's checksum is the hash.
  const result = compileDocument(stored.document, { version, published: true, documentSha256: stored.sha256 });
  if (!result.ok) {
    throw new Error(`live catalog version ${version} does not compile: ${result.problems[0]?.path}: ${result.problems[0]?.message}`);
  }
  if (!cache.catalog || version > cache.catalog.version) cache.catalog = result.catalog;
  cache.loaded = true;
  log().info('catalog loaded', { version, actions: result.catalog.actions.length });
  return confirmed(cache.catalog);
}

function startRefresh(now: number, options?: LiveCatalogOptions): Promise<CompiledCatalog | undefined> {
  if (cache.refreshing) return cache.refreshing;
  cache.checkedAt = now;
  const p = refresh(options)
    .catch((error: unknown) => {
      cache.failing = true;
      throw error;
    })
    .finally(() => {
      if (cache.refreshing === p) cache.refreshing = undefined;
    });
  cache.refreshing = p;
  return p;
}

/**
 * The live compiled catalog. Cold (nothing cached): waits for the store, at
 * most until `deadline` (epoch ms) when given, and throws on a store fault
 * or the deadline (the read goes on in the background and fills the cache).
 * Warm: returns the cached catalog at once and, when the last check is older
 * than REFRESH_INTERVAL_MS, checks the pointer in the background (a failure
 * keeps the cached catalog, served stale, and is logged). Undefined when no
 * catalog was ever published (also cached: checked again in the background
 * like a version change), or when the cached one is older than
 * KAIROS_STALE_MAX_SECONDS while the store is unreachable.
 */
export async function getLiveCatalog(now = Date.now(), options?: LiveCatalogOptions, deadline?: number): Promise<CompiledCatalog | undefined> {
  if (!cache.catalog && !cache.loaded) {
    const loading = startRefresh(now, options);
    return deadline === undefined ? loading : withDeadline(loading, deadline, 'The live catalog');
  }
  if (now - cache.checkedAt >= REFRESH_INTERVAL_MS) {
    startRefresh(now, options).catch((error: unknown) => log().warn('catalog refresh failed; serving the cached version', { error: error as Error }));
  }
  if (cache.failing && tooOld(now)) return undefined;
  return cache.catalog;
}

/** Wait for the live catalog to be current (admin simulate, the profile function at batch start). */
export async function refreshLiveCatalog(options?: LiveCatalogOptions): Promise<CompiledCatalog | undefined> {
  if (cache.refreshing) await cache.refreshing.catch(() => undefined);
  return startRefresh(Date.now(), options);
}
