/**
 * The catalog in force before any has been published: no actions, so every
 * decision is a valid `actions: []` rather than an error.
 *
 * Compiled from the normalised form of `{}` (the schema's defaults, checked
 * by a unit test against the schema), so decide needs no validator here.
 */
import type { CompiledCatalog } from '../catalog/compiled.ts';
import { compileDocument } from '../catalog/compile.ts';
import type { CatalogDocument } from '../catalog/schema.ts';

/** `catalogSchema.parse({})`. */
export const EMPTY_CATALOG_DOCUMENT: CatalogDocument = {
  kind: 'kairos/v1',
  tags: [],
  segments: [],
  exclusiveGroups: [],
  personas: [],
  models: [],
  actions: [],
  policies: { suppressions: [], channelCaps: [], quietHours: [], consentRequired: ['email', 'sms', 'push'] },
  arbitration: { placements: [] },
  learning: { enabled: true, exploration: 0.1, floor: 0.01, prior: { alpha: 1, beta: 1 }, contextBy: 'persona' },
  experiments: [],
};

let empty: CompiledCatalog | undefined;

export function emptyCatalog(): CompiledCatalog {
  if (!empty) {
    const result = compileDocument(structuredClone(EMPTY_CATALOG_DOCUMENT), { version: 0 });
    if (!result.ok) throw new Error('the empty catalog does not compile');
    empty = result.catalog;
  }
  return empty;
}
