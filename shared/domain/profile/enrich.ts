/**
 * The enrichment hook: after each change the profile function derives
 * segments, a persona and model scores from the profile view and stores them
 * with the profile, so decide reads them in its one read.
 *
 * The enricher is an argument of the batch plan (plan.ts); the profile
 * function passes the catalog's (domain/catalog/enricher.ts).
 */
import type { ProfileView } from './view.ts';

export interface EnrichmentResult {
  readonly segments: readonly string[];
  readonly persona?: string;
  readonly scores: Readonly<Record<string, number>>;
  /** Identity of the catalog the result was evaluated with (its `audienceReuse.stamp`). */
  readonly catalog?: string;
  /** The instant (epoch ms) it was evaluated at: the `updatedAt` the profile is written with. */
  readonly at?: number;
}

export type ProfileEnricher = (view: ProfileView, now: Date) => EnrichmentResult;

/** Derives nothing: a profile function without a catalog. */
export const noEnrichment: ProfileEnricher = () => ({ segments: [], scores: {} });

const MAX_SEGMENTS = 100;
const MAX_SCORES = 50;
const MAX_NAME = 100;

/** Keep an enricher's output within the profile's bounds (it is stored with every profile). */
export function boundEnrichment(result: EnrichmentResult): {
  segments: string[];
  persona?: string;
  scores: Record<string, number>;
  catalog?: string;
  at?: number;
} {
  const segments = [...new Set(result.segments.filter((s) => typeof s === 'string' && s.length > 0 && s.length <= MAX_NAME))]
    .slice(0, MAX_SEGMENTS);
  const scores: Record<string, number> = {};
  for (const [name, value] of Object.entries(result.scores ?? {}).slice(0, MAX_SCORES)) {
    if (name !== '__proto__' && name.length <= MAX_NAME && typeof value === 'number' && Number.isFinite(value)) {
      scores[name] = value;
    }
  }
  const persona =
    typeof result.persona === 'string' && result.persona.length > 0 && result.persona.length <= MAX_NAME
      ? result.persona
      : undefined;
  const stamped =
    typeof result.catalog === 'string' && result.catalog.length <= MAX_NAME && typeof result.at === 'number' && Number.isFinite(result.at);
  return {
    segments,
    ...(persona !== undefined ? { persona } : {}),
    scores,
    ...(stamped ? { catalog: result.catalog, at: result.at } : {}),
  };
}
