/**
 * Catalog versions in the Control table, and the process-wide cache of the
 * live compiled catalog.
 *
 * Items (pk, sk):
 * - `CATALOG`, `COUNTER`      `{next}`: version allocation (atomic ADD), so
 *                              versions are unique and monotonic;
 * - `CATALOG#<n>`, `DOC#<i>`   `{data: Binary}`: the version, stored once:
 *                              the validated, normalised document (the
 *                              schema's output, JSON) gzip'd — what the live
 *                              cache compiles without parsing YAML or
 *                              validating again (catalog-live.ts) — then the
 *                              source text as the operator sent it, a second
 *                              gzip member, for the version routes and
 *                              rollbacks; split in chunks well under
 *                              DynamoDB's 400 KB;
 * - `CATALOG#<n>`, `META`     `{version, bytes, sha256, format,
 *                              documentChunks, documentSha256,
 *                              documentZippedBytes, documentFormat,
 *                              createdAt, principal, actions}`: written after
 *                              the chunks, it marks the version complete;
 * - `CATALOG#<n>`, `CHUNK#<i>` `{data: Binary}`: the gzip'd source text of a
 *                              version stored before (documentFormat 1, whose
 *                              DOC# chunks hold the document alone); read,
 *                              no longer written;
 * - `CATALOG`, `LIVE`         `{version, updatedAt}`: the live pointer, moved
 *                              only forward by a conditional write
 *                              (`version < :n`), so concurrent PUTs are safe:
 *                              the highest allocated version wins, and a
 *                              pointer never names an incomplete version.
 *
 * Nothing is stored unless the whole catalog is valid (`publishCatalog`
 * validates before writing). The process cache of the live compiled catalog
 * (`getLiveCatalog`, re-exported here) is shared/store/catalog-live.ts: it
 * reads the stored normalised document and compiles it, so the decide
 * function imports it without this module's YAML parser and validator.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { gunzipSync, gzipSync } from 'node:zlib';
import { config } from '#shared/config.ts';
import type { CatalogProblem, CompiledCatalog } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CatalogDocument } from '#domain/catalog/schema.ts';
import { DOCUMENT_FORMAT, READABLE_DOCUMENT_FORMATS, documentMember, primeCatalogCache, readDocumentChunks } from './catalog-live.ts';
import { batchGet, batchWrite } from './batch-write.ts';
import { bytesOf, dynamo, type DynamoClient } from './client.ts';
import {
  CATALOG_CHUNK_SK_PREFIX,
  catalogCounterItem,
  catalogDocumentChunkItem,
  catalogLiveItem,
  catalogMetaItem,
  catalogVersionPk,
  type ItemKey,
} from './items.ts';

export {
  DOCUMENT_FORMAT,
  REFRESH_INTERVAL_MS,
  getLiveCatalog,
  peekLiveCatalog,
  primeCatalogCache,
  readCatalogDocument,
  refreshLiveCatalog,
  resetCatalogCache,
} from './catalog-live.ts';

/** Bytes of gzip'd text per chunk item (DynamoDB items are limited to 400 KB). */
export const DEFAULT_CHUNK_BYTES = 350_000;
/** The demo catalog of the seed scenarios. */
export const DEMO_CATALOG_PATH = fileURLToPath(new URL('../../catalog/demo.yaml', import.meta.url));

export interface CatalogStoreOptions {
  readonly client?: DynamoClient;
  readonly tableName?: string;
  /** Chunk size in bytes (tests use small ones). */
  readonly chunkBytes?: number;
}

/** What the version list shows of one version (its META item). */
export interface CatalogVersionSummary {
  readonly version: number;
  readonly createdAt: string;
  readonly format: 'json' | 'yaml';
  /** Bytes of the source text. */
  readonly bytes: number;
  /** SHA-256 (hex) of the source text. */
  readonly sha256: string;
  readonly principal?: string;
  readonly actions?: number;
  /** Set on a version published by a rollback: the version whose text it republished. */
  readonly rolledBackFrom?: number;
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
  readonly rolledBackFrom?: number;
}

export type PublishResult =
  | {
      readonly ok: true;
      readonly version: number;
      /** False when a newer version went live first (concurrent PUT): this one is stored but superseded. */
      readonly live: boolean;
      readonly liveVersion: number;
      readonly catalog: CompiledCatalog;
      /** What the catalog allows but can never be true (loadCatalog's warnings). */
      readonly warnings?: readonly CatalogProblem[];
    }
  | { readonly ok: false; readonly problems: readonly CatalogProblem[] };

const resolve = (options: CatalogStoreOptions = {}) => ({
  client: options.client ?? dynamo(),
  table: options.tableName ?? config.CONTROL_TABLE,
  chunkBytes: options.chunkBytes ?? DEFAULT_CHUNK_BYTES,
});

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/** The live version number, or undefined when no catalog was ever published. */
export async function readLiveVersion(options?: CatalogStoreOptions): Promise<number | undefined> {
  const { client, table } = resolve(options);
  const { Item } = await client.send(
    'GetItem', { TableName: table, Key: catalogLiveItem.key(), ConsistentRead: true },
  );
  return typeof Item?.version === 'number' ? Item.version : undefined;
}

async function allocateVersion(client: DynamoClient, table: string): Promise<number> {
  const { Attributes } = await client.send(
    'UpdateItem', {
      TableName: table,
      Key: catalogCounterItem.key(),
      UpdateExpression: 'ADD #next :one',
      ExpressionAttributeNames: { '#next': 'next' },
      ExpressionAttributeValues: { ':one': 1 },
      ReturnValues: 'UPDATED_NEW',
    },
  );
  const next = Attributes?.next;
  if (typeof next !== 'number') throw new Error('catalog version counter did not return a number');
  return next;
}

const puts = (items: readonly Record<string, unknown>[]) => items.map((Item) => ({ PutRequest: { Item } }));

const gzip = (text: string) => gzipSync(Buffer.from(text, 'utf8'), { level: 6 });

/** Bytes split into `{pk, sk, data}` chunk items, the i-th keyed `key(i)`. */
function chunkItems(key: (i: number) => ItemKey, zipped: Buffer, chunkBytes: number): Record<string, unknown>[] {
  const items: Record<string, unknown>[] = [];
  for (let offset = 0, i = 0; offset < zipped.length || i === 0; offset += chunkBytes, i++) {
    items.push({ ...key(i), data: new Uint8Array(zipped.subarray(offset, offset + chunkBytes)) });
  }
  return items;
}

/**
 * Store a catalog text as a new version, with its normalised document, and
 * move the live pointer to it. The caller has validated it (publishCatalog
 * does, and passes the document); without `document` the text is validated
 * here and an invalid one throws. The pointer only moves forward. With
 * `onlyIfNone`, the pointer is set only if no catalog is live.
 */
export async function storeCatalogVersion(
  text: string,
  format: 'json' | 'yaml',
  meta: { principal?: string; actions?: number; onlyIfNone?: boolean; document?: CatalogDocument; rolledBackFrom?: number } = {},
  options?: CatalogStoreOptions,
): Promise<{ version: number; live: boolean; liveVersion: number; chunks: number }> {
  const { client, table, chunkBytes } = resolve(options);
  let document = meta.document;
  let actions = meta.actions;
  if (!document) {
    const checked = loadCatalog(text, format, { at: Date.now() });
    if (!checked.ok) throw new Error(`refusing to store an invalid catalog: ${checked.problems[0]?.path}: ${checked.problems[0]?.message}`);
    document = checked.source;
    actions ??= checked.catalog.actions.length;
  }
  const documentJson = JSON.stringify(document);
  const version = await allocateVersion(client, table);
  // One copy: the document's gzip member, then the source text's (catalog-live.ts DOCUMENT_FORMAT).
  const documentZipped = gzip(documentJson);
  const chunks = chunkItems((i) => catalogDocumentChunkItem.key(version, i), Buffer.concat([documentZipped, gzip(text)]), chunkBytes);
  const createdAt = new Date().toISOString();
  await batchWrite(table, puts(chunks), client);
  // The version's meta item, once every chunk is stored: a reader never meets a version without its chunks.
  await batchWrite(
    table,
    puts([
      {
        ...catalogMetaItem.key(version),
        version,
        bytes: Buffer.byteLength(text, 'utf8'),
        sha256: sha256(text),
        format,
        documentFormat: DOCUMENT_FORMAT,
        documentChunks: chunks.length,
        documentSha256: sha256(documentJson),
        documentZippedBytes: documentZipped.length,
        createdAt,
        ...(meta.principal ? { principal: meta.principal } : {}),
        ...(actions !== undefined ? { actions } : {}),
        ...(meta.rolledBackFrom !== undefined ? { rolledBackFrom: meta.rolledBackFrom } : {}),
      },
    ]),
    client,
  );
  try {
    await client.send(
      'UpdateItem', {
        TableName: table,
        Key: catalogLiveItem.key(),
        UpdateExpression: 'SET #version = :v, updatedAt = :at',
        ConditionExpression: meta.onlyIfNone ? 'attribute_not_exists(#version)' : 'attribute_not_exists(#version) OR #version < :v',
        ExpressionAttributeNames: { '#version': 'version' },
        ExpressionAttributeValues: { ':v': version, ':at': createdAt },
      },
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
  const { Item: head } = await client.send('GetItem', { TableName: table, Key: catalogMetaItem.key(version), ConsistentRead: true });
  if (!head) return undefined;
  if (head.documentFormat === 2) {
    // The source text is the gzip member after the document's.
    const stored = await readDocumentChunks(version, { client, tableName: table });
    if (!stored) return undefined;
    const text = gunzipSync(stored.zipped.subarray(documentMember(stored.meta, stored.zipped).length)).toString('utf8');
    return storedVersion(version, stored.meta, text, stored.meta.documentChunks as number);
  }
  // A version stored before (documentFormat 1, or none): its text in CHUNK# chunks.
  const items: Record<string, unknown>[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      'Query', {
        TableName: table,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': catalogVersionPk(version) },
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      },
    );
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  const meta = items.find((i) => i.sk === catalogMetaItem.key(version).sk);
  if (!meta) return undefined;
  const chunks = items
    .filter((i) => typeof i.sk === 'string' && i.sk.startsWith(CATALOG_CHUNK_SK_PREFIX))
    .sort((a, b) => String(a.sk).localeCompare(String(b.sk)));
  if (chunks.length !== meta.chunks) throw new Error(`catalog version ${version} is incomplete (${chunks.length}/${String(meta.chunks)} chunks)`);
  const zipped = Buffer.concat(chunks.map((c) => bytesOf(c.data) ?? new Uint8Array()));
  return storedVersion(version, meta, gunzipSync(zipped).toString('utf8'), chunks.length);
}

function storedVersion(version: number, meta: Record<string, unknown>, text: string, chunks: number): StoredCatalogVersion {
  if (sha256(text) !== meta.sha256) throw new Error(`catalog version ${version} does not match its checksum`);
  return {
    version,
    text,
    format: meta.format === 'yaml' ? 'yaml' : 'json',
    sha256: String(meta.sha256),
    bytes: Number(meta.bytes),
    chunks,
    createdAt: String(meta.createdAt),
    ...(typeof meta.principal === 'string' ? { principal: meta.principal } : {}),
    ...(typeof meta.rolledBackFrom === 'number' ? { rolledBackFrom: meta.rolledBackFrom } : {}),
  };
}

function versionSummary(meta: Record<string, unknown>): CatalogVersionSummary {
  return {
    version: Number(meta.version),
    createdAt: String(meta.createdAt),
    format: meta.format === 'yaml' ? 'yaml' : 'json',
    bytes: Number(meta.bytes),
    sha256: String(meta.sha256),
    ...(typeof meta.principal === 'string' ? { principal: meta.principal } : {}),
    ...(typeof meta.actions === 'number' ? { actions: meta.actions } : {}),
    ...(typeof meta.rolledBackFrom === 'number' ? { rolledBackFrom: meta.rolledBackFrom } : {}),
  };
}

/** The highest version number ever allocated (0: none). */
async function lastAllocatedVersion(client: DynamoClient, table: string): Promise<number> {
  const { Item } = await client.send('GetItem', { TableName: table, Key: catalogCounterItem.key(), ConsistentRead: true });
  return typeof Item?.next === 'number' ? Item.next : 0;
}

/** Most versions one page of the list may hold (one BatchGetItem reads at most 100 keys). */
export const MAX_VERSIONS_PAGE = 100;

/**
 * Published versions, newest first: `limit` versions numbered below `before`
 * (default: all). Reads the META item of each candidate number in one
 * BatchGetItem per page; a number whose publication never completed (no
 * META) is skipped. `next` is the `before` of the following page, absent on
 * the last one.
 */
export async function listCatalogVersions(
  page: { limit: number; before?: number },
  options?: CatalogStoreOptions,
): Promise<{ versions: CatalogVersionSummary[]; next?: number }> {
  const { client, table } = resolve(options);
  const limit = Math.min(Math.max(1, page.limit), MAX_VERSIONS_PAGE);
  let top = Math.min(page.before === undefined ? Infinity : page.before - 1, await lastAllocatedVersion(client, table));
  const versions: CatalogVersionSummary[] = [];
  while (top >= 1 && versions.length < limit) {
    const wanted = Array.from({ length: Math.min(limit - versions.length, top) }, (_, i) => top - i);
    const found = await batchGet(table, wanted.map((v) => catalogMetaItem.key(v)), { consistent: true, client });
    versions.push(...found.map(versionSummary).sort((a, b) => b.version - a.version));
    top -= wanted.length;
  }
  return { versions, ...(top >= 1 ? { next: top + 1 } : {}) };
}

/** The live version's text, or undefined when no catalog is live. */
export async function readLiveCatalog(options?: CatalogStoreOptions): Promise<StoredCatalogVersion | undefined> {
  const version = await readLiveVersion(options);
  return version === undefined ? undefined : readCatalogVersion(version, options);
}

// ---------------------------------------------------------------------------

/**
 * Validate, then store and make live. Nothing is written for an invalid
 * catalog. Validated as of now: an experiment ended or paused by now does
 * not count toward the holdout bound (compile.ts `liveHoldoutExperiments`).
 */
export async function publishCatalog(
  text: string,
  format: 'json' | 'yaml',
  meta: { principal?: string; onlyIfNone?: boolean; rolledBackFrom?: number } = {},
  options?: CatalogStoreOptions,
): Promise<PublishResult> {
  const checked = loadCatalog(text, format, { at: Date.now() });
  if (!checked.ok) return { ok: false, problems: checked.problems };
  const stored = await storeCatalogVersion(
    text,
    format,
    { ...meta, actions: checked.catalog.actions.length, document: checked.source },
    options,
  );
  const catalog: CompiledCatalog = { ...checked.catalog, version: stored.version };
  if (stored.live && !options?.client) primeCatalogCache(catalog);
  return {
    ok: true,
    version: stored.version,
    live: stored.live,
    liveVersion: stored.liveVersion,
    catalog,
    ...(checked.warnings && checked.warnings.length > 0 ? { warnings: checked.warnings } : {}),
  };
}

export type RollbackResult =
  | PublishResult & { readonly ok: true; readonly rolledBackFrom: number }
  | { readonly ok: false; readonly reason: 'not_found' }
  | { readonly ok: false; readonly reason: 'invalid'; readonly problems: readonly CatalogProblem[] };

/**
 * Make an earlier version live again by publishing its source text as a new
 * version (validated again with today's checks: a version that no longer
 * validates is refused with its problems, and nothing changes). The history
 * only grows, so a rollback can itself be rolled back.
 */
export async function rollbackCatalog(
  version: number,
  meta: { principal?: string } = {},
  options?: CatalogStoreOptions,
): Promise<RollbackResult> {
  const stored = await readCatalogVersion(version, options);
  if (!stored) return { ok: false, reason: 'not_found' };
  const result = await publishCatalog(stored.text, stored.format, { ...meta, rolledBackFrom: version }, options);
  if (!result.ok) return { ok: false, reason: 'invalid', problems: result.problems };
  return { ...result, rolledBackFrom: version };
}

/**
 * A live version stored before versions kept their normalised document
 * cannot be loaded by the live cache: store its text again (validated) as a
 * new version. Returns the new version, or undefined when nothing was needed.
 */
export async function storeMissingDocument(version: number, options?: CatalogStoreOptions): Promise<number | undefined> {
  const { client, table } = resolve(options);
  const { Item } = await client.send(
    'GetItem', { TableName: table, Key: catalogMetaItem.key(version), ConsistentRead: true },
  );
  if (!Item || READABLE_DOCUMENT_FORMATS.has(Item.documentFormat)) return undefined;
  const stored = await readCatalogVersion(version, options);
  if (!stored) return undefined;
  const principal = typeof Item.principal === 'string' ? Item.principal : 'unknown';
  const result = await publishCatalog(stored.text, stored.format, { principal: `${principal} (document stored)` }, options);
  if (!result.ok) throw new Error(`live catalog version ${version} no longer validates: ${result.problems[0]?.path}: ${result.problems[0]?.message}`);
  return result.version;
}

export function formatOfPath(path: string): 'json' | 'yaml' {
  return path.toLowerCase().endsWith('.json') ? 'json' : 'yaml';
}

/**
 * The text of a catalog file (UTF-8).
 * @throws Error naming the file, why it cannot be read (missing, a folder,
 *   not readable) and what to give instead, never the bare system error.
 */
async function readCatalogFile(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'there is no such file' : code === 'EISDIR' ? 'it is a folder' : code === 'EACCES' ? 'it is not readable (permissions)' : (error as Error).message;
    throw new Error(`catalog file ${path} cannot be read: ${why}; give the path of a YAML or JSON catalog (KAIROS_CATALOG, relative to the folder npm start runs in), or unset it for the demo catalog`);
  }
}

/**
 * Load a catalog file unless a catalog is already live (the local stack's
 * step 3: the demo catalog, or KAIROS_CATALOG). Throws with every problem
 * when the file is invalid (the operator named it, so refuse rather than
 * ignore), and names the file when it cannot be read.
 */
export async function ensureCatalogLoaded(
  path: string = DEMO_CATALOG_PATH,
  options?: CatalogStoreOptions,
): Promise<{ status: 'loaded' | 'kept'; version: number; actions: number; message: string }> {
  const live = await readLiveVersion(options);
  if (live !== undefined) {
    const upgraded = await storeMissingDocument(live, options);
    if (upgraded !== undefined) {
      return { status: 'kept', version: upgraded, actions: -1, message: `catalog v${live} kept, stored again as v${upgraded} with its normalised document` };
    }
    return { status: 'kept', version: live, actions: -1, message: `catalog v${live} kept (already stored)` };
  }
  const text = await readCatalogFile(path);
  const result = await publishCatalog(text, formatOfPath(path), { principal: 'local-stack', onlyIfNone: true }, options);
  if (!result.ok) {
    const lines = result.problems
      .slice(0, 20)
      .map((p) => `  ${p.path}: ${p.message}${p.line !== undefined ? ` (line ${p.line}, column ${p.column})` : p.position !== undefined ? ` (at ${p.position})` : ''}`);
    throw new Error(`catalog ${path} is not valid:\n${lines.join('\n')}`);
  }
  if (!result.live) {
    return { status: 'kept', version: result.liveVersion, actions: -1, message: `catalog v${result.liveVersion} kept (stored concurrently)` };
  }
  const actions = result.catalog.actions.length;
  return { status: 'loaded', version: result.version, actions, message: `catalog v${result.version} loaded from ${path} (${actions} actions)` };
}
