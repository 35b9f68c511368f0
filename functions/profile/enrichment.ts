/**
 * Wires the catalog's enricher (segments, persona, scores from the live
 * catalog) into the profile function. The live catalog is cached in the
 * process and refreshed in the background at most every few seconds, so a
 * batch costs no catalog read once warm.
 */
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { setProfileEnricher } from '#domain/profile/enrich.ts';
import { getLiveCatalog, peekLiveCatalog } from '#store/catalog-live.ts';

setProfileEnricher(createCatalogEnricher(peekLiveCatalog), {
  prepare: async () => {
    await getLiveCatalog();
  },
});
