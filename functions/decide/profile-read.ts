/**
 * The one read of a decision: the customer's profile (a GetItem of
 * `u#userId` or `a#anonymousId`, or one BatchGetItem of both, joined in
 * memory), under a deadline. A
 * slow or failing store must not turn into a slow or failed decision: past
 * the deadline, or on any store error, the caller decides in degraded mode
 * from the catalog's fallbacks.
 *
 * It reads through the process's one DynamoDB client (shared/store/client.ts).
 * The join is the pure one both share (shared/domain/profile/stored.ts
 * `joinProfiles`).
 */
import { config } from '#shared/config.ts';
import { anonymousProfileKey, userProfileKey } from '#domain/keys.ts';
import { joinProfiles, profileFromItem, type ProfileLookup } from '#domain/profile/stored.ts';
import type { ProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { batchGet } from '#store/batch-write.ts';
import { dynamo, type DynamoClient } from '#store/client.ts';

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
 * The profile state of a customer (see shared/store/profiles.ts
 * `getProfileState`): an anonymous profile not merged yet is merged in
 * memory; a tombstone found for an anonymous-only lookup costs a second
 * read. Undefined: a new customer.
 */
export async function readProfileState(lookup: ProfileLookup, client: DynamoClient, deadlineMs: number): Promise<ProfileState | undefined> {
  const deadline = Date.now() + deadlineMs;
  const call = { deadline, attempts: PROFILE_READ_ATTEMPTS };
  const getItem = async (pk: string) => (await client.send('GetItem', { TableName: config.PROFILES_TABLE, Key: { pk } }, call)).Item;
  const userKey = lookup.userId !== undefined ? userProfileKey(lookup.userId) : undefined;
  const anonKey = lookup.anonymousId !== undefined ? anonymousProfileKey(lookup.anonymousId) : undefined;
  const keys = [userKey, anonKey].filter((k): k is string => k !== undefined);
  if (keys.length === 0) return undefined;
  const unique = [...new Set(keys)];
  // One key: GetItem (DynamoDB's cheapest read); two (a user and an anonymous id to join): one BatchGetItem.
  const items =
    unique.length === 1
      ? [await getItem(unique[0] as string)].filter((i) => i !== undefined)
      : await batchGet(config.PROFILES_TABLE, unique.map((pk) => ({ pk })), { client, ...call });
  const byKey = new Map(items.map((i) => [String(i.pk), i]));
  const joined = joinProfiles(
    lookup,
    userKey ? profileFromItem(byKey.get(userKey)) : undefined,
    anonKey ? profileFromItem(byKey.get(anonKey)) : undefined,
  );
  if (!joined || 'state' in joined) return joined?.state;
  const key = userProfileKey(joined.mergedInto);
  const merged = profileFromItem(await getItem(key));
  return merged?.kind === 'profile' ? merged.state : undefined;
}

/**
 * The customer's profile view at `now`, `view: undefined` for an unknown
 * customer, or `ok: false` when the store failed or missed the deadline.
 * Never throws.
 */
export async function readProfile(
  lookup: ProfileLookup,
  now: Date,
  deadlineMs: number = PROFILE_DEADLINE_MS,
  client: DynamoClient = dynamo(),
): Promise<ProfileRead> {
  try {
    const state = await readProfileState(lookup, client, deadlineMs);
    if (!state) return { ok: true, view: undefined };
    const enrichment = state.enrichment;
    const current = enrichment?.catalog !== undefined && enrichment.at !== undefined && enrichment.at === state.updatedAt;
    return { ok: true, view: toProfileView(state, now), ...(current ? { enrichedWith: enrichment.catalog } : {}) };
  } catch (error) {
    return { ok: false, error };
  }
}
