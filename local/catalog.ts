/**
 * Step 3 of the local stack (ARCHITECTURE.md, "The local stack"): load the
 * catalog — the file named by KAIROS_CATALOG, else the demo seed scenarios —
 * unless one is already stored.
 *
 * This is the seam where catalog loading plugs in: `startLocalStack` calls
 * `loadLocalCatalog` once the tables exist, the write key is stored and the
 * handler modules are loaded (so `process.env` and `#shared/config.ts` point
 * at DynamoDB Local), and before it reports ready on GET /v1/health.
 * A catalog file that does not validate stops the start with every problem
 * listed: nothing half-valid goes live.
 */

export interface CatalogLoadContext {
  /** KAIROS_CATALOG, resolved against the working directory. */
  readonly catalogFile?: string;
  /** True for an in-memory stack (tests): nothing survives a restart. */
  readonly inMemory: boolean;
  /** Print a line to the operator (the `npm start` console). */
  readonly log: (line: string) => void;
}

export interface CatalogLoadResult {
  /** `loaded`: stored now; `kept`: a stored catalog was left as is; `none`: no catalog. */
  readonly status: 'loaded' | 'kept' | 'none';
  readonly version?: string;
  /** One line for the console, e.g. `demo catalog v3 loaded (12 actions)`. */
  readonly message: string;
}

export type CatalogLoader = (context: CatalogLoadContext) => Promise<CatalogLoadResult>;

export const loadLocalCatalog: CatalogLoader = async (context) => {
  // Imported here, not at the top: the store reads its configuration at load,
  // which must happen after the stack has pointed process.env at DynamoDB Local.
  const { ensureCatalogLoaded, DEMO_CATALOG_PATH } = await import('#store/catalog.ts');
  const result = await ensureCatalogLoaded(context.catalogFile ?? DEMO_CATALOG_PATH);
  return { status: result.status, version: String(result.version), message: result.message };
};
