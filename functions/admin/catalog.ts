/**
 * Catalog routes of the operator API (API.md §5):
 * - GET  /v1/admin/catalog           the live catalog, its source text and version
 *                                    (what does not fit in an answer is left out
 *                                    and named in `omitted`);
 * - PUT  /v1/admin/catalog           validate the whole catalog, store it as a new
 *                                    version and make it live (JSON, or YAML with
 *                                    `Content-Type: application/yaml`);
 * - POST /v1/admin/catalog/validate  the same checks, nothing stored;
 * - GET  /v1/admin/catalog/versions  every published version, newest first, in
 *                                    pages (`limit` 1..100, default 20; `before`,
 *                                    the `next` of the previous page): time,
 *                                    size, SHA-256 of the source, who published
 *                                    it, and which one is live;
 * - GET  /v1/admin/catalog/versions/{version}  one version, as GET /v1/admin/catalog
 *                                    shows the live one;
 * - POST /v1/admin/catalog/rollback  `{"version": n}`: publishes version n's source
 *                                    again as a new version (validated with
 *                                    today's checks) and makes it live.
 *
 * A catalog with any problem is refused with `400 validation_failed` listing
 * every problem once (`details[].path`, `.message`; `.line`, `.column` and
 * `.excerpt` in the text; `.position` inside a CEL expression or a template;
 * `.hint` for a common slip); nothing is stored and nothing goes live. A
 * valid catalog's answer lists its `warnings` (same fields): parts of rules
 * that can never be true, which do not refuse it.
 */
import { isYamlType } from '#http/body-decoder.ts';
import { ApiError, type ErrorDetail } from '#http/errors.ts';
import { fromChain, type HttpContext, type HttpRequest, type HttpResponse } from '#http/handler-adapter.ts';
import type { CatalogProblem, CompiledCatalog } from '#domain/catalog/compiled.ts';
import { MAX_CATALOG_BYTES, loadCatalog, parseCatalogText } from '#domain/catalog/load.ts';
import * as z from 'zod/mini';
import { issueDetails } from '#domain/decide/request.ts';
import { RESPONSE_BODY_BUDGET_BYTES, bodyPayloadBytes } from '#http/response-size.ts';
import {
  MAX_VERSIONS_PAGE,
  listCatalogVersions,
  publishCatalog,
  readCatalogVersion,
  readLiveCatalog,
  readLiveVersion,
  rollbackCatalog,
  type StoredCatalogVersion,
} from '#store/catalog.ts';

/** Largest catalog body, in bytes (the admin function's body limit must be at least this). */
export const MAX_CATALOG_BODY_BYTES = MAX_CATALOG_BYTES;

function formatOf(request: HttpRequest): 'json' | 'yaml' {
  return isYamlType(request.contentType) ? 'yaml' : 'json';
}

/**
 * Problems (or warnings) as API.md §6 details: the message says where
 * (`(line 12, column 5)` in the text, else `(at position 8)` inside the
 * expression or template), and the detail carries `position`, `line`,
 * `column`, `excerpt` (the line) and `hint` when known.
 */
function problemDetails(problems: readonly CatalogProblem[]): ErrorDetail[] {
  return problems.map((p) => {
    const where = p.line !== undefined ? ` (line ${p.line}, column ${p.column})` : p.position !== undefined ? ` (at position ${p.position})` : '';
    return {
      path: p.path,
      message: `${p.message}${where}`,
      ...(p.position === undefined ? {} : { position: p.position }),
      ...(p.line === undefined ? {} : { line: p.line, column: p.column as number }),
      ...(p.excerpt === undefined ? {} : { excerpt: p.excerpt }),
      ...(p.hint === undefined ? {} : { hint: p.hint }),
    };
  });
}

function refuse(problems: readonly CatalogProblem[]): never {
  const n = problems.length;
  throw new ApiError('validation_failed', `The catalog is not valid (${n} problem${n === 1 ? '' : 's'})`, problemDetails(problems));
}

/** The catalog text of the request, with its format; 400 when there is none. */
function catalogText(request: HttpRequest): { text: string; format: 'json' | 'yaml' } {
  const format = formatOf(request);
  if (Buffer.byteLength(request.rawBody, 'utf8') > MAX_CATALOG_BYTES) {
    throw new ApiError('payload_too_large', `The catalog is larger than ${MAX_CATALOG_BYTES} bytes`);
  }
  if (request.rawBody.trim() === '') {
    throw new ApiError('validation_failed', 'The body must be a catalog', [
      {
        path: '(root)',
        message: 'the body is empty: send the catalog (YAML or JSON) as the body',
        hint: 'with curl, --data-binary @<file>, its path relative to where curl runs: curl sends an empty body when it cannot read the file (silently under -s)',
      },
    ]);
  }
  return { text: request.rawBody, format };
}

function summary(catalog: CompiledCatalog) {
  return {
    actions: catalog.actions.length,
    segments: catalog.segments.length,
    personas: catalog.personas.length,
    policies: catalog.policies.suppressions.length + catalog.policies.channelCaps.length + catalog.policies.quietHours.length,
    experiments: catalog.experiments.length,
    models: catalog.models.length,
    triggers: catalog.triggers.length,
    journeys: catalog.journeys.length,
  };
}

/**
 * One stored version as the catalog routes show it: its metadata, parsed
 * document (`catalog`) and source text (`source`). An answer that would not
 * fit in a Lambda response (shared/http/response-size.ts; a catalog of
 * several MB, whose parsed document is as large again) leaves out
 * `catalog`, then `source` if that is still too large, and lists what it
 * left out in `omitted`.
 */
function versionBody(stored: StoredCatalogVersion, liveVersion: number | undefined) {
  const whole = wholeVersionBody(stored, liveVersion);
  if (bodyPayloadBytes(whole) <= RESPONSE_BODY_BUDGET_BYTES) return whole;
  const { catalog: _catalog, ...sourceOnly } = whole;
  if (bodyPayloadBytes(sourceOnly) <= RESPONSE_BODY_BUDGET_BYTES) return { ...sourceOnly, omitted: ['catalog'] };
  const { source: _source, ...metadata } = sourceOnly;
  return { ...metadata, omitted: ['catalog', 'source'] };
}

function wholeVersionBody(stored: StoredCatalogVersion, liveVersion: number | undefined) {
  const parsed = parseCatalogText(stored.text, stored.format);
  return {
    version: stored.version,
    live: stored.version === liveVersion,
    createdAt: stored.createdAt,
    format: stored.format,
    bytes: stored.bytes,
    sha256: stored.sha256,
    ...(stored.principal !== undefined ? { principal: stored.principal } : {}),
    ...(stored.rolledBackFrom !== undefined ? { rolledBackFrom: stored.rolledBackFrom } : {}),
    catalog: parsed.ok ? parsed.value : null,
    source: stored.text,
  };
}

const invalidQuery = (path: string, message: string) => new ApiError('validation_failed', 'The request is not valid', [{ path, message }]);

/** A positive version number from a path parameter or query string, or a 400 naming `path`. */
function versionNumber(raw: string | undefined, path: string): number {
  if (raw === undefined || !/^[1-9]\d{0,14}$/.test(raw)) throw invalidQuery(path, 'must be a version number (1, 2, …)');
  return Number(raw);
}

function refuseUnknownQuery(request: HttpRequest, known: readonly string[]): void {
  const unknown = Object.keys(request.query).find((name) => !known.includes(name));
  if (unknown !== undefined) throw invalidQuery(unknown, `is not a parameter of this route (it takes ${known.length ? known.join(', ') : 'none'})`);
}

export async function getCatalogRoute(request: HttpRequest): Promise<HttpResponse> {
  refuseUnknownQuery(request, []);
  const live = await readLiveCatalog();
  if (!live) throw new ApiError('not_found', 'No catalog has been published yet');
  return { status: 200, body: versionBody(live, live.version) };
}

export async function getCatalogVersionRoute(request: HttpRequest): Promise<HttpResponse> {
  refuseUnknownQuery(request, []);
  const version = versionNumber(request.pathParameters.version, 'version');
  const [stored, liveVersion] = await Promise.all([readCatalogVersion(version), readLiveVersion()]);
  if (!stored) throw new ApiError('not_found', `No catalog version ${version}`);
  return { status: 200, body: versionBody(stored, liveVersion) };
}

export const DEFAULT_VERSIONS_PAGE = 20;

export async function listCatalogVersionsRoute(request: HttpRequest): Promise<HttpResponse> {
  refuseUnknownQuery(request, ['limit', 'before']);
  const { limit: rawLimit, before: rawBefore } = request.query;
  let limit = DEFAULT_VERSIONS_PAGE;
  if (rawLimit !== undefined) {
    if (!/^\d{1,4}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > MAX_VERSIONS_PAGE) {
      throw invalidQuery('limit', `must be an integer from 1 to ${MAX_VERSIONS_PAGE}`);
    }
    limit = Number(rawLimit);
  }
  const before = rawBefore === undefined ? undefined : versionNumber(rawBefore, 'before');
  const [page, liveVersion] = await Promise.all([listCatalogVersions({ limit, ...(before !== undefined ? { before } : {}) }), readLiveVersion()]);
  return {
    status: 200,
    body: {
      ...(liveVersion !== undefined ? { liveVersion } : {}),
      versions: page.versions.map((v) => ({ ...v, live: v.version === liveVersion })),
      ...(page.next !== undefined ? { next: page.next } : {}),
    },
  };
}

/** `POST /v1/admin/catalog/rollback` body. */
export const rollbackSchema = z.strictObject(
  { version: z.int('must be a version number (1, 2, …)').check(z.gte(1, 'must be a version number (1, 2, …)')) },
  'the body must be a JSON object {"version": n}',
);

export async function rollbackCatalogRoute(request: HttpRequest, context: HttpContext): Promise<HttpResponse> {
  const parsed = rollbackSchema.safeParse(request.body ?? {});
  if (!parsed.success) throw new ApiError('validation_failed', 'The rollback request is not valid', issueDetails(parsed.error.issues));
  const principal = fromChain(context, 'principal');
  const result = await rollbackCatalog(parsed.data.version, { principal });
  if (!result.ok && result.reason === 'not_found') throw new ApiError('not_found', `No catalog version ${parsed.data.version}`);
  if (!result.ok) {
    const n = result.problems.length;
    throw new ApiError(
      'validation_failed',
      `Catalog version ${parsed.data.version} no longer passes validation (${n} problem${n === 1 ? '' : 's'}); nothing changed`,
      problemDetails(result.problems),
    );
  }
  return {
    status: 200,
    body: {
      version: result.version,
      rolledBackFrom: result.rolledBackFrom,
      live: result.live,
      ...(result.live ? {} : { liveVersion: result.liveVersion }),
      ...summary(result.catalog),
      warnings: problemDetails(result.warnings ?? []),
    },
  };
}

export async function putCatalogRoute(request: HttpRequest, context: HttpContext): Promise<HttpResponse> {
  const { text, format } = catalogText(request);
  const principal = fromChain(context, 'principal');
  const result = await publishCatalog(text, format, { principal });
  if (!result.ok) refuse(result.problems);
  return {
    status: 200,
    body: {
      version: result.version,
      live: result.live,
      ...(result.live ? {} : { liveVersion: result.liveVersion }),
      ...summary(result.catalog),
      warnings: problemDetails(result.warnings ?? []),
    },
  };
}

export async function validateCatalogRoute(request: HttpRequest): Promise<HttpResponse> {
  const { text, format } = catalogText(request);
  // As publishing now would check it (shared/store/catalog.ts publishCatalog).
  const result = loadCatalog(text, format, { at: Date.now() });
  if (!result.ok) refuse(result.problems);
  return { status: 200, body: { valid: true, ...summary(result.catalog), warnings: problemDetails(result.warnings ?? []) } };
}

/** Entries for the admin dispatch table (functions/admin/routes.ts). */
export const catalogRoutes = {
  'GET /v1/admin/catalog': getCatalogRoute,
  'PUT /v1/admin/catalog': putCatalogRoute,
  'POST /v1/admin/catalog/validate': validateCatalogRoute,
  'GET /v1/admin/catalog/versions': listCatalogVersionsRoute,
  'GET /v1/admin/catalog/versions/{version}': getCatalogVersionRoute,
  'POST /v1/admin/catalog/rollback': rollbackCatalogRoute,
} as const;
