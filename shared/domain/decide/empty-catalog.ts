/**
 * The catalog in force before any has been published: no actions, so every
 * decision is a valid `actions: []` rather than an error.
 *
 * The document of `{}` (catalog/default-document.ts, built from the
 * defaults of catalog/defaults.ts, the one declaration the schema reads too)
 * through the one compile path, so decide needs no validator here.
 */
import type { CompiledCatalog } from '../catalog/compiled.ts';
import { compileDocument } from '../catalog/compile.ts';
import { defaultCatalogDocument } from '../catalog/default-document.ts';

let empty: CompiledCatalog | undefined;

export function emptyCatalog(): CompiledCatalog {
  if (!empty) {
    const result = compileDocument(defaultCatalogDocument(), { version: 0 });
    if (!result.ok) throw new Error('the empty catalog does not compile');
    empty = result.catalog;
  }
  return empty;
}
