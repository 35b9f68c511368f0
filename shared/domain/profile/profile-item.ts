/**
 * A Profiles item as every reader sees it, and how a lookup by userId and/or
 * anonymousId resolves to one profile state. Pure (no AWS import), so the
 * SDK-based store (shared/store/profiles.ts) and decide's lean read
 * (functions/decide/profile-read.ts) share one definition of the join.
 */
import { mergeProfiles } from './apply.ts';
import { parseProfileState, type ProfileState } from './state.ts';

export interface StoredProfile {
  readonly kind: 'profile';
  readonly key: string;
  readonly version: number;
  readonly state: ProfileState;
}

export interface StoredTombstone {
  readonly kind: 'tombstone';
  readonly key: string;
  readonly version: number;
  /** The userId this anonymous profile was merged into. */
  readonly mergedInto: string;
}

export type ProfileItem = StoredProfile | StoredTombstone;

export interface ProfileLookup {
  readonly userId?: string;
  readonly anonymousId?: string;
}

/**
 * Parse a Profiles item (plain attributes, as the DocumentClient or
 * `unmarshall` gives them). Undefined for a missing item or one that is not
 * a profile or tombstone (a marker).
 */
export function profileFromItem(item: Record<string, unknown> | undefined): ProfileItem | undefined {
  if (!item || typeof item.pk !== 'string') return undefined;
  const version = typeof item.version === 'number' ? item.version : 0;
  if (item.kind === 'tombstone' && typeof item.mergedInto === 'string') {
    return { kind: 'tombstone', key: item.pk, version, mergedInto: item.mergedInto };
  }
  if (item.kind === 'profile' && typeof item.state === 'string') {
    return { kind: 'profile', key: item.pk, version, state: parseProfileState(item.state) };
  }
  return undefined;
}

/** A state joined or re-keyed in memory is not the one its enrichment stamp was evaluated for. */
function withoutStamp(state: ProfileState): ProfileState {
  if (state.enrichment?.catalog === undefined) return state;
  const { catalog: _catalog, at: _at, ...enrichment } = state.enrichment;
  return { ...state, enrichment };
}

/**
 * Resolve a lookup from the items read for `u#userId` and `a#anonymousId`:
 * - a user profile, with an anonymous profile the stream has not merged yet
 *   merged in memory;
 * - only an anonymous profile: itself, or, when the caller also named the
 *   userId (identified before the stream merged), its history as the user's;
 * - an anonymous-only lookup that finds a tombstone: `{ mergedInto }`, the
 *   user to read next (the customer has since been identified);
 * - nothing: undefined (a new customer).
 */
export function joinProfiles(
  lookup: ProfileLookup,
  user: ProfileItem | undefined,
  anon: ProfileItem | undefined,
): { readonly state: ProfileState } | { readonly mergedInto: string } | undefined {
  if (user?.kind === 'profile') {
    return { state: anon?.kind === 'profile' ? withoutStamp(mergeProfiles(user.state, anon.state)) : user.state };
  }
  if (anon?.kind === 'profile') {
    if (lookup.userId === undefined || lookup.anonymousId === undefined) return { state: anon.state };
    const { anonymousId: _anonymousId, ...rest } = withoutStamp(anon.state);
    return { state: { ...rest, userId: lookup.userId, anonymousIds: [...anon.state.anonymousIds, lookup.anonymousId] } };
  }
  if (anon?.kind === 'tombstone' && lookup.userId === undefined) return { mergedInto: anon.mergedInto };
  return undefined;
}
