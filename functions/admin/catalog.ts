/**
 * Catalog routes of the operator API (API.md §5):
 * - GET  /v1/admin/catalog           the live catalog, its source text and version;
 * - PUT  /v1/admin/catalog           validate the whole catalog, store it as a new
 *                                    version and make it live (JSON, or YAML with
 *                                    `Content-Type: application/yaml`);
 * - POST /v1/admin/catalog/validate  the same checks, nothing stored.
 *
 * A catalog with any problem is refused with `400 validation_failed` listing
 * every problem (`details[].path`, `.message`, and `.position` inside a CEL
 * expression or a template); nothing is stored and nothing goes live.
 */
import { authenticateAdmin } from '#http/auth.ts';
import { ApiError, type ErrorDetail } from '#http/errors.ts';
import type { HttpRequest, HttpResponse } from '#http/middleware.ts';
import type { CatalogProblem, CompiledCatalog } from '#domain/catalog/compiled.ts';
import { MAX_CATALOG_BYTES, loadCatalog, parseCatalogText } from '#domain/catalog/load.ts';
import { publishCatalog, readLiveCatalog } from '#store/catalog.ts';

/** Largest catalog body, in bytes (the admin function's body limit must be at least this). */
export const MAX_CATALOG_BODY_BYTES = MAX_CATALOG_BYTES;

const YAML_TYPES = new Set(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml']);

function formatOf(request: HttpRequest): 'json' | 'yaml' {
  const base = request.contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  return YAML_TYPES.has(base) ? 'yaml' : 'json';
}

function problemDetails(problems: readonly CatalogProblem[]): ErrorDetail[] {
  return problems.map(
    (p) =>
      ({
        path: p.path,
        message: p.position === undefined ? p.message : `${p.message} (at position ${p.position})`,
        ...(p.position === undefined ? {} : { position: p.position }),
      }) as ErrorDetail,
  );
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
    throw new ApiError('validation_failed', 'The body must be a catalog', [{ path: '(root)', message: 'Required' }]);
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
  };
}

export async function getCatalogRoute(): Promise<HttpResponse> {
  const live = await readLiveCatalog();
  if (!live) throw new ApiError('not_found', 'No catalog has been published yet');
  const parsed = parseCatalogText(live.text, live.format);
  return {
    status: 200,
    body: {
      version: live.version,
      createdAt: live.createdAt,
      format: live.format,
      sha256: live.sha256,
      catalog: parsed.ok ? parsed.value : null,
      source: live.text,
    },
  };
}

export async function putCatalogRoute(request: HttpRequest): Promise<HttpResponse> {
  const { text, format } = catalogText(request);
  const { principal } = await authenticateAdmin(request);
  const result = await publishCatalog(text, format, { principal });
  if (!result.ok) refuse(result.problems);
  return {
    status: 200,
    body: {
      version: result.version,
      live: result.live,
      ...(result.live ? {} : { liveVersion: result.liveVersion }),
      ...summary(result.catalog),
    },
  };
}

export async function validateCatalogRoute(request: HttpRequest): Promise<HttpResponse> {
  const { text, format } = catalogText(request);
  const result = loadCatalog(text, format);
  if (!result.ok) refuse(result.problems);
  return { status: 200, body: { valid: true, ...summary(result.catalog) } };
}

/** Entries for the admin dispatch table (functions/admin/routes.ts). */
export const catalogRoutes = {
  'GET /v1/admin/catalog': getCatalogRoute,
  'PUT /v1/admin/catalog': putCatalogRoute,
  'POST /v1/admin/catalog/validate': validateCatalogRoute,
} as const;
