/**
 * The one read of a decision: the customer's profile (a GetItem of
 * `u#userId` or `a#anonymousId`, or one BatchGetItem of both, joined in
 * memory: shared/store/profiles.ts `resolveProfile`), under a deadline. A
 * slow or failing store must not turn into a slow or failed decision: past
 * the deadline, or on any store error, the caller decides in degraded mode
 * from the catalog's fallbacks.
 *
 * It reads through the process's one DynamoDB client (shared/store/client.ts).
 */
import { config } from '#shared/config.ts';
import type { ProfileLookup } from '#domain/profile/profile-item.ts';
import type { ProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { dynamo, type DynamoClient } from '#store/client.ts';
import { resolveProfile } from '#store/profiles.ts';

/**
 * Longest budget of the profile read, retries included: the decide deadline
 * (KAIROS_DECIDE_DEADLINE_MS). The handler gives it what remains of the
 * request's deadline.
 */
export const PROFILE_DEADLINE_MS = config.KAIROS_DECIDE_DEADLINE_MS;

/** Attempts of the profile read: one retry of a throttled or failed request, within the deadline. */
const PROFILE_READ_ATTEMPTS = 2;

export type { ProfileLookup };

export type ProfileRead =
  | {
      readonly ok: true;
      readonly view: ProfileView | undefined;
      /**
       * The catalog stamp of the view's segments, persona and scores when they
       * describe this very state (enriched when it was written, not joined in
       * memory since): decide reuses their static part.
       */
      readonly enrichedWith?: string;
    }
  | { readonly ok: false; readonly error: unknown };

/**
 * The profile state of a customer, resolved as every reader resolves it
 * (shared/store/profiles.ts `resolveProfile`: one read, a second only to
 * follow a tombstone), within `deadlineMs`, one retry of a throttled or
 * failed request. Undefined: a new customer.
 */
export function readProfileState(lookup: ProfileLookup, client: DynamoClient, deadlineMs: number): Promise<ProfileState | undefined> {
  return resolveProfile(lookup, { client, deadline: Date.now() + deadlineMs, attempts: PROFILE_READ_ATTEMPTS });
}

/** How `readProfile` reads. */
export interface ProfileReadOptions {
  /** @default PROFILE_DEADLINE_MS */
  readonly deadlineMs?: number;
  /** @default the process's client */
  readonly client?: DynamoClient;
  /**
   * Whether an identified customer's profile may be used (key-rights.ts
   * `DecideRights.identified`). False: a lookup that resolves to a profile
   * with a userId (an anonymousId that identify or alias joined to it) reads
   * as a new customer, `view: undefined`.
   * @default true
   */
  readonly identified?: boolean;
}

/**
 * The customer's profile view at `now`, `view: undefined` for an unknown
 * customer (or an identified one the caller may not see: `identified`), or
 * `ok: false` when the store failed or missed the deadline. Never throws.
 */
export async function readProfile(lookup: ProfileLookup, now: Date, options: ProfileReadOptions = {}): Promise<ProfileRead> {
  try {
    const state = await readProfileState(lookup, options.client ?? dynamo(), options.deadlineMs ?? PROFILE_DEADLINE_MS);
    if (!state || (options.identified === false && state.userId !== undefined)) return { ok: true, view: undefined };
    const enrichment = state.enrichment;
    const current = enrichment?.catalog !== undefined && enrichment.at !== undefined && enrichment.at === state.updatedAt;
    return { ok: true, view: toProfileView(state, now), ...(current ? { enrichedWith: enrichment.catalog } : {}) };
  } catch (error) {
    return { ok: false, error };
  }
}
