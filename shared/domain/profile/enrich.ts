/**
 * The enrichment hook: after each change the profile function derives
 * segments, a persona and model scores from the profile view and stores them
 * with the profile, so decide reads them in its one read.
 *
 * The profile function plugs the catalog's enricher in with
 * `setProfileEnricher` (functions/profile/enrichment.ts); the default
 * derives nothing.
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

export const defaultProfileEnricher: ProfileEnricher = () => ({ segments: [], scores: {} });

/** Async work before a batch is enriched (e.g. refreshing the cached live catalog the enricher reads). */
export type EnricherPreparation = () => Promise<void>;

let current: ProfileEnricher = defaultProfileEnricher;
let preparation: EnricherPreparation | undefined;

export function setProfileEnricher(enricher: ProfileEnricher, options: { prepare?: EnricherPreparation } = {}): void {
  current = enricher;
  preparation = options.prepare;
}

/** Run the enricher's preparation, if any; the profile function awaits it at the start of each batch. */
export async function prepareProfileEnricher(): Promise<void> {
  await preparation?.();
}

export function getProfileEnricher(): ProfileEnricher {
  return current;
}

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
