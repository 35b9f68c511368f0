/**
 * The catalog in force before any has been published: no actions, so every
 * decision is a valid `actions: []` rather than an error.
 */
import type { CompiledCatalog } from '../catalog/compiled.ts';
import { loadCatalog } from '../catalog/load.ts';

let empty: CompiledCatalog | undefined;

export function emptyCatalog(): CompiledCatalog {
  if (!empty) {
    const result = loadCatalog({}, 'object', { version: 0 });
    if (!result.ok) throw new Error('the empty catalog does not compile');
    empty = result.catalog;
  }
  return empty;
}
