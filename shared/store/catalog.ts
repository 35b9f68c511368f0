/**
 * Catalog versions in the Control table, and the process-wide cache of the
 * live compiled catalog.
 *
 * Items (pk, sk):
 * - `CATALOG`, `COUNTER`      `{next}`: version allocation (atomic ADD), so
 *                              versions are unique and monotonic;
 * - `CATALOG#<n>`, `CHUNK#<i>` `{data: Binary}`: the gzip'd source text,
 *                              split in chunks well under DynamoDB's 400 KB;
 * - `CATALOG#<n>`, `META`     `{version, chunks, bytes, sha256, format,
 *                              createdAt, principal, actions}`: written after
 *                              the chunks, it marks the version complete;
 * - `CATALOG`, `LIVE`         `{version, updatedAt}`: the live pointer, moved
 *                              only forward by a conditional write
 *                              (`version < :n`), so concurrent PUTs are safe:
 *                              the highest allocated version wins, and a
 *                              pointer never names an incomplete version.
 *
 * Nothing is stored unless the whole catalog is valid (`publishCatalog`
 * validates before writing). The cache (`getLiveCatalog`) checks the
 * pointer at most every 5 s, stale-while-revalidate: a warm caller never
 * waits for the check; a new version is compiled once per process.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { Logger } from '@aws-lambda-powertools/logger';
import {
  BatchWriteCommand,
  GetCommand,
  QueryCommand,
  UpdateCommand,
  type DynamoDBDocumentClient,
} from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import type { CatalogProblem, CompiledCatalog } from '../domain/catalog/compiled.ts';
import { loadCatalog } from '../domain/catalog/load.ts';
import { documentClient } from './client.ts';

const logger = new Logger({ serviceName: 'kairos-catalog' });

export const CATALOG_PK = 'CATALOG';
export const LIVE_SK = 'LIVE';
export const COUNTER_SK = 'COUNTER';
export const META_SK = 'META';
export const versionPk = (version: number): string => `CATALOG#${version}`;
export const chunkSk = (index: number): string => `CHUNK#${String(index).padStart(5, '0')}`;

/** Bytes of gzip'd text per chunk item (DynamoDB items are limited to 400 KB). */
export const DEFAULT_CHUNK_BYTES = 350_000;
/** How often a warm process checks the live pointer. */
export const REFRESH_INTERVAL_MS = 5_000;
/** The demo catalog of the seed scenarios. */
export const DEMO_CATALOG_PATH = fileURLToPath(new URL('../../catalog/demo.yaml', import.meta.url));

export interface CatalogStoreOptions {
  readonly client?: DynamoDBDocumentClient;
  readonly tableName?: string;
  /** Chunk size in bytes (tests use small ones). */
  readonly chunkBytes?: number;
}

export interface StoredCatalogVersion {
  readonly version: number;
  /** The catalog text as the operator sent it (YAML or JSON). */
  readonly text: string;
  readonly format: 'json' | 'yaml';
  readonly sha256: string;
  readonly bytes: number;
  readonly chunks: number;
  readonly createdAt: string;
  readonly principal?: string;
}

export type PublishResult =
  | {
      readonly ok: true;
      readonly version: number;
      /** False when a newer version went live first (concurrent PUT): this one is stored but superseded. */
      readonly live: boolean;
      readonly liveVersion: number;
      readonly catalog: CompiledCatalog;
    }
  | { readonly ok: false; readonly problems: readonly CatalogProblem[] };

const resolve = (options: CatalogStoreOptions = {}) => ({
  client: options.client ?? documentClient,
  table: options.tableName ?? config.CONTROL_TABLE,
  chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
});

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The live version number, or undefined when no catalog was ever published. */
export async function readLiveVersion(options?: CatalogStoreOptions): Promise<number | undefined> {
  const { client, table } = resolve(options);
  const { Item } = await client.send(
    new GetCommand({ TableName: table, Key: { pk: CATALOG_PK, sk: LIVE_SK }, ConsistentRead: true }),
  );
  return typeof Item?.version === 'number' ? Item.version : undefined;
}

async function allocateVersion(client: DynamoDBDocumentClient, table: string): Promise<number> {
  const { Attributes } = await client.send(
    new UpdateCommand({
      TableName: table,
      Key: { pk: CATALOG_PK, sk: COUNTER_SK },
      UpdateExpression: 'ADD #next :one',
      ExpressionAttributeNames: { '#next': 'next' },
      ExpressionAttributeValues: { ':one': 1 },
      ReturnValues: 'UPDATED_NEW',
    }),
  );
  const next = Attributes?.next;
  if (typeof next !== 'number') throw new Error('catalog version counter did not return a number');
  return next;
}

async function batchPut(client: DynamoDBDocumentClient, table: string, items: Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < items.length; i += 25) {
    let pending = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt >= 8) throw new Error('catalog chunks could not be written (unprocessed items)');
      if (attempt > 0) await new Promise((r) => setTimeout(r, 25 * 2 ** attempt));
      const out = await client.send(new BatchWriteCommand({ RequestItems: { [table]: pending } }));
      pending = (out.UnprocessedItems?.[table] ?? []) as typeof pending;
    }
  }
}

/**
 * Store a catalog text as a new version and move the live pointer to it.
 * The caller has validated it (publishCatalog does); the pointer only moves
 * forward. With `onlyIfNone`, the pointer is set only if no catalog is live.
 */
export async function storeCatalogVersion(
  text: string,
  format: 'json' | 'yaml',
  meta: { principal?: string; actions?: number; onlyIfNone?: boolean } = {},
  options?: CatalogStoreOptions,
): Promise<{ version: number; live: boolean; liveVersion: number; chunks: number }> {
  const { client, table, chunkBytes } = resolve(options);
  const version = await allocateVersion(client, table);
  const zipped = gzipSync(Buffer.from(text, 'utf8'), { level: 6 });
  const chunks: Record<string, unknown>[] = [];
  for (let offset = 0, i = 0; offset < zipped.length || i === 0; offset += chunkBytes, i++) {
    chunks.push({ pk: versionPk(version), sk: chunkSk(i), data: new Uint8Array(zipped.subarray(offset, offset + chunkBytes)) });
  }
  const createdAt = new Date().toISOString();
  await batchPut(client, table, chunks);
  await batchPut(client, table, [
    {
      pk: versionPk(version),
      sk: META_SK,
      version,
      chunks: chunks.length,
      bytes: Buffer.byteLength(text, 'utf8'),
      sha256: sha256(text),
      format,
      createdAt,
      ...(meta.principal ? { principal: meta.principal } : {}),
      ...(meta.actions !== undefined ? { actions: meta.actions } : {}),
    },
  ]);
  try {
    await client.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: CATALOG_PK, sk: LIVE_SK },
        UpdateExpression: 'SET #version = :v, updatedAt = :at',
        ConditionExpression: meta.onlyIfNone ? 'attribute_not_exists(#version)' : 'attribute_not_exists(#version) OR #version < :v',
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: { ':v': version, ':at': createdAt },
      }),
    );
    return { version, live: true, liveVersion: version, chunks: chunks.length };
  } catch (error) {
    if ((error as Error).name !== 'ConditionalCheckFailedException') throw error;
    const liveVersion = (await readLiveVersion(options)) ?? version;
    return { version, live: false, liveVersion, chunks: chunks.length };
  }
}

/** Read one stored version (its text), or undefined when missing or incomplete. */
export async function readCatalogVersion(version: number, options?: CatalogStoreOptions): Promise<StoredCatalogVersion | undefined> {
  const { client, table } = resolve(options);
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': versionPk(version) },
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      }),
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  const meta = items.find((i) => i.sk === META_SK);
  if (!meta) return undefined;
  const chunks = items
    .filter((i) => typeof i.sk === 'string' && i.sk.startsWith('CHUNK#'))
    .sort((a, b) => String(a.sk).localeCompare(String(b.sk)));
  if (chunks.length !== meta.chunks) throw new Error(`catalog version ${version} is incomplete (${chunks.length}/${String(meta.chunks)} chunks)`);
  const zipped = Buffer.concat(chunks.map((c) => Buffer.from(c.data as Uint8Array)));
  const text = gunzipSync(zipped).toString('utf8');
  if (sha256(text) !== meta.sha256) throw new Error(`catalog version ${version} does not match its checksum`);
  return {
    version,
    text,
    format: meta.format === 'yaml' ? 'yaml' : 'json',
    sha256: String(meta.sha256),
    bytes: Number(meta.bytes),
    chunks: chunks.length,
    createdAt: String(meta.createdAt),
    ...(typeof meta.principal === 'string' ? { principal: meta.principal } : {}),
  };
}

/** The live version's text, or undefined when no catalog is live. */
export async function readLiveCatalog(options?: CatalogStoreOptions): Promise<StoredCatalogVersion | undefined> {
  const version = await readLiveVersion(options);
  return version === undefined ? undefined : readCatalogVersion(version, options);
}

// ---------------------------------------------------------------------------
// Process-wide cache of the live compiled catalog.

interface CacheState {
  catalog?: CompiledCatalog;
  /** The pointer was read at least once (so "no catalog published" is known, not unknown). */
  loaded?: boolean;
  /** When the pointer was last checked (ms). */
  checkedAt: number;
  refreshing?: Promise<CompiledCatalog | undefined>;
}

const cache: CacheState = { checkedAt: 0 };

/** Forget the cached catalog (tests; or to force a synchronous reload). */
export function resetCatalogCache(): void {
  cache.catalog = undefined;
  cache.loaded = false;
  cache.checkedAt = 0;
  cache.refreshing = undefined;
}

/** The cached live catalog without any I/O (undefined before the first load). */
export function peekLiveCatalog(): CompiledCatalog | undefined {
  return cache.catalog;
}

/** Put a compiled catalog in this process's cache (after publishing it here). */
export function primeCatalogCache(catalog: CompiledCatalog, now = Date.now()): void {
  if (!cache.catalog || catalog.version >= cache.catalog.version) cache.catalog = catalog;
  cache.checkedAt = now;
}

async function refresh(options?: CatalogStoreOptions): Promise<CompiledCatalog | undefined> {
  const version = await readLiveVersion(options);
  cache.loaded = true;
  if (version === undefined) return cache.catalog;
  if (cache.catalog?.version === version) return cache.catalog;
  const stored = await readCatalogVersion(version, options);
  if (!stored) throw new Error(`live catalog version ${version} is missing`);
  const result = loadCatalog(stored.text, stored.format, { version });
  if (!result.ok) {
    throw new Error(`live catalog version ${version} does not compile: ${result.problems[0]?.path}: ${result.problems[0]?.message}`);
  }
  if (!cache.catalog || version > cache.catalog.version) cache.catalog = result.catalog;
  logger.info('catalog loaded', { version, actions: result.catalog.actions.length });
  return cache.catalog;
}

function startRefresh(now: number, options?: CatalogStoreOptions): Promise<CompiledCatalog | undefined> {
  if (cache.refreshing) return cache.refreshing;
  cache.checkedAt = now;
  const p = refresh(options).finally(() => {
    if (cache.refreshing === p) cache.refreshing = undefined;
  });
  cache.refreshing = p;
  return p;
}

/**
 * The live compiled catalog. Cold (nothing cached): waits for the store and
 * throws on a store fault. Warm: returns the cached catalog at once and, when
 * the last check is older than REFRESH_INTERVAL_MS, checks the pointer in the
 * background (a failure keeps the cached catalog and is logged).
 * Undefined when no catalog was ever published (also cached: checked again
 * in the background like a version change).
 */
export async function getLiveCatalog(now = Date.now(), options?: CatalogStoreOptions): Promise<CompiledCatalog | undefined> {
  if (!cache.catalog && !cache.loaded) return startRefresh(now, options);
  if (now - cache.checkedAt >= REFRESH_INTERVAL_MS) {
    startRefresh(now, options).catch((error: unknown) => logger.warn('catalog refresh failed; serving the cached version', { error: error as Error }));
  }
  return cache.catalog;
}

/** Wait for the live catalog to be current (admin simulate, the profile function at batch start). */
export async function refreshLiveCatalog(options?: CatalogStoreOptions): Promise<CompiledCatalog | undefined> {
  if (cache.refreshing) await cache.refreshing.catch(() => undefined);
  return startRefresh(Date.now(), options);
}

// ---------------------------------------------------------------------------

/** Validate, then store and make live. Nothing is written for an invalid catalog. */
export async function publishCatalog(
  text: string,
  format: 'json' | 'yaml',
  meta: { principal?: string; onlyIfNone?: boolean } = {},
  options?: CatalogStoreOptions,
): Promise<PublishResult> {
  const checked = loadCatalog(text, format);
  if (!checked.ok) return { ok: false, problems: checked.problems };
  const stored = await storeCatalogVersion(text, format, { ...meta, actions: checked.catalog.actions.length }, options);
  const result = loadCatalog(text, format, { version: stored.version });
  if (!result.ok) return { ok: false, problems: result.problems };
  if (stored.live && !options?.client) primeCatalogCache(result.catalog);
  return { ok: true, version: stored.version, live: stored.live, liveVersion: stored.liveVersion, catalog: result.catalog };
}

export function formatOfPath(path: string): 'json' | 'yaml' {
  return path.toLowerCase().endsWith('.json') ? 'json' : 'yaml';
}

/**
 * Load a catalog file unless a catalog is already live (the local stack's
 * step 3: the demo catalog, or KAIROS_CATALOG). Throws with every problem
 * when the file is invalid (the operator named it, so refuse rather than
 * ignore).
 */
export async function ensureCatalogLoaded(
  path: string = DEMO_CATALOG_PATH,
  options?: CatalogStoreOptions,
): Promise<{ status: 'loaded' | 'kept'; version: number; actions: number; message: string }> {
  const live = await readLiveVersion(options);
  if (live !== undefined) {
    return { status: 'kept', version: live, actions: -1, message: `catalog v${live} kept (already stored)` };
  }
  const text = await readFile(path, 'utf8');
  const result = await publishCatalog(text, formatOfPath(path), { principal: 'local-stack', onlyIfNone: true }, options);
  if (!result.ok) {
    const lines = result.problems.slice(0, 20).map((p) => `  ${p.path}: ${p.message}${p.position !== undefined ? ` (at ${p.position})` : ''}`);
    throw new Error(`catalog ${path} is not valid:\n${lines.join('\n')}`);
  }
  if (!result.live) {
    return { status: 'kept', version: result.liveVersion, actions: -1, message: `catalog v${result.liveVersion} kept (stored concurrently)` };
  }
  const actions = result.catalog.actions.length;
  return { status: 'loaded', version: result.version, actions, message: `catalog v${result.version} loaded from ${path} (${actions} actions)` };
}
