/**
 * The catalog's profile enricher (shared/domain/profile/enrich.ts): after
 * each change the profile function stores the customer's segments (with
 * exclusions and exclusive groups), persona and model scores, evaluated with
 * the live catalog at the event's processing time. Without a catalog it
 * derives nothing.
 */
import type { EnrichmentResult, ProfileEnricher } from '../profile/enrich.ts';
import { evaluateAudience } from './audience.ts';
import type { CompiledCatalog } from './compiled.ts';

const NOTHING: EnrichmentResult = Object.freeze({ segments: [], scores: {} });

/**
 * An enricher reading the catalog through `current` (e.g. the store's
 * `peekLiveCatalog`) on every call. The result carries the catalog's stamp
 * and the instant it was evaluated at: decide reuses its static segments,
 * persona and scores for the profile written with it (audience.ts).
 */
export function createCatalogEnricher(current: () => CompiledCatalog | undefined): ProfileEnricher {
  return (view, now) => {
    const catalog = current();
    if (!catalog) return NOTHING;
    const audience = evaluateAudience(catalog, view, now);
    const stamp = catalog.audienceReuse ? { catalog: catalog.audienceReuse.stamp, at: now.getTime() } : {};
    return audience.persona === undefined
      ? { segments: audience.segments, scores: audience.scores, ...stamp }
      : { segments: audience.segments, persona: audience.persona, scores: audience.scores, ...stamp };
  };
}
