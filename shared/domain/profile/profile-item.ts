/**
 * A Profiles item as every reader sees it, and how a lookup by userId and/or
 * anonymousId resolves to one profile state. Pure (no AWS import), so the
 * SDK-based store (shared/store/profiles.ts) and decide's lean read
 * (functions/decide/profile-read.ts) share one definition of the join.
 */
import { anonymousProfileKey, userProfileKey } from '../item-keys.ts';
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
  /**
   * The erasure of its key that the profile plan had read when it merged the
   * anonymous profile (epoch ms; 0: none), as a profile's
   * `ProfileState.keyErasedAt`. A tombstone stored before the field existed
   * reads as merged at its `mergedAt`.
   */
  readonly keyErasedAt: number;
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
    const mergedAt = typeof item.mergedAt === 'string' ? Date.parse(item.mergedAt) : Number.NaN;
    const keyErasedAt = typeof item.keyErasedAt === 'number' ? item.keyErasedAt : Number.isNaN(mergedAt) ? 0 : mergedAt;
    return { kind: 'tombstone', key: item.pk, version, mergedInto: item.mergedInto, keyErasedAt };
  }
  if (item.kind === 'profile' && typeof item.state === 'string') {
    return { kind: 'profile', key: item.pk, version, state: parseProfileState(item.state) };
  }
  return undefined;
}

/**
 * Whether a Profiles item is the erased customer's: started (a profile) or
 * merged (a tombstone) before `erasedAt`, the erasure of its key (epoch ms;
 * undefined: its key was never erased), by its `keyErasedAt`. Such an item is
 * what the erasure deletes as its last step (shared/store/erasure.ts); until
 * it is gone, the profile plan applies the returning customer's events as if
 * it were absent (a fresh profile in its place, plan.ts), so they are neither
 * applied on the erased customer's state nor deleted with it. An item started
 * at or after the erasure holds only what came after it: the erasure leaves it.
 */
export function erasedCustomersItem(item: ProfileItem | undefined, erasedAt: number | undefined): boolean {
  if (item === undefined || erasedAt === undefined) return false;
  return (item.kind === 'profile' ? item.state.keyErasedAt : item.keyErasedAt) < erasedAt;
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

/**
 * What the store read about one id an operator names (the admin profile
 * routes, `/v1/admin/profiles/{id}`: the profile, its export, its erasure).
 */
export interface OperatorIdReads {
  /** The item at `u#<id>`. */
  readonly user: ProfileItem | undefined;
  /**
   * Whether the id was a userId without a profile now: an erasure record of
   * `u#<id>` (kept: shared/store/erasure.ts), or events stored under `u#<id>` that the profile
   * function has not applied yet.
   */
  readonly wasUser: boolean;
  /** The item at `a#<id>`: an anonymous profile, or its tombstone. */
  readonly anonymous: ProfileItem | undefined;
  /**
   * Whether events are stored under `a#<id>`, which holds no item: an
   * anonymous visitor's events the profile function has not applied yet.
   * Read only where it decides what a 404 says (a userId that names nobody,
   * with nothing at `a#<id>`); false elsewhere.
   */
  readonly anonymousEvents: boolean;
}

/**
 * What an operator says an id is (the admin profile routes' `kind` query
 * parameter, the listing's terms): a `userId` (the default), or an
 * `anonymousId`. The two are apart: `u#<id>` and `a#<id>` are different
 * keys, and the same text may be both one customer's userId and another's
 * anonymous id.
 */
export type OperatorIdKind = 'user' | 'anonymous';

/** The kinds an operator may name, the default first. */
export const OPERATOR_ID_KINDS: readonly OperatorIdKind[] = ['user', 'anonymous'];

/**
 * Whom an operator's id names (`operatorIdTarget`):
 * - `user`: the user `id` (read `u#<id>`; it may be gone, erased);
 * - `anonymous`: the anonymous profile `a#<id>`, never merged;
 * - `merged`: the anonymous id `id`, merged into the user `userId`
 *   (read `u#<userId>`);
 * - `unknown`: nothing is held under the key of the kind named.
 */
export type OperatorIdTarget =
  | { readonly names: 'user'; readonly userId: string }
  | { readonly names: 'anonymous'; readonly anonymousId: string }
  | { readonly names: 'merged'; readonly anonymousId: string; readonly userId: string }
  | { readonly names: 'unknown' };

/**
 * The rule for what an operator's id names, by the kind the operator says it
 * is. A userId (`kind` `user`) names that user only, while it is or was one
 * (a user profile, an erasure record of it, events stored under it, or an
 * anonymous id of the same text merged into it); it never reaches an
 * anonymous visitor. An anonymous id (`kind` `anonymous`) names its
 * anonymous profile, or the user it was merged into (the customer the
 * visitor became); it never reaches the user of the same text. So an
 * erasure, first or repeated, a read and an export reach the customer the
 * operator named, and nobody else.
 */
export function operatorIdTarget(id: string, reads: OperatorIdReads, kind: OperatorIdKind): OperatorIdTarget {
  if (kind === 'user') {
    const mergedIntoItself = reads.anonymous?.kind === 'tombstone' && reads.anonymous.mergedInto === id;
    return reads.user?.kind === 'profile' || reads.wasUser || mergedIntoItself ? { names: 'user', userId: id } : { names: 'unknown' };
  }
  if (reads.anonymous?.kind === 'profile') return { names: 'anonymous', anonymousId: id };
  if (reads.anonymous?.kind === 'tombstone') return { names: 'merged', anonymousId: id, userId: reads.anonymous.mergedInto };
  return { names: 'unknown' };
}

/**
 * Whether an id that names nobody as `kind` is held as the other kind (a
 * user, or an anonymous visitor, of the same text): what a 404 tells the
 * operator, so that they name it as what it is.
 */
export function operatorIdIsOtherKind(reads: OperatorIdReads, kind: OperatorIdKind): boolean {
  return kind === 'user' ? reads.anonymous !== undefined || reads.anonymousEvents : reads.user?.kind === 'profile' || reads.wasUser;
}

/** Every profile key of the customer a stored profile is: itself and the anonymous ids merged into it. */
export function customerProfileKeys(profile: StoredProfile): string[] {
  const state = profile.state;
  return [
    ...new Set([
      profile.key,
      ...state.anonymousIds.map(anonymousProfileKey),
      ...(state.anonymousId !== undefined ? [anonymousProfileKey(state.anonymousId)] : []),
    ]),
  ];
}

/**
 * The profile keys an operator's id reaches: the customer's (its profile and
 * the anonymous ids merged into it) when `profile` is the profile the target
 * reads; else the keys that may still hold its events (an erasure completed
 * again, or events not applied yet): the user's key for a user (with
 * `a#<id>` when it was merged into that user), the anonymous key for an
 * anonymous id, the key of the kind named for an unknown id. Never another
 * customer's key.
 */
export function operatorIdKeys(
  id: string,
  target: OperatorIdTarget,
  reads: OperatorIdReads,
  profile: StoredProfile | undefined,
  kind: OperatorIdKind,
): string[] {
  if (profile) return customerProfileKeys(profile);
  switch (target.names) {
    case 'user':
      return reads.anonymous?.kind === 'tombstone' && reads.anonymous.mergedInto === id ? [userProfileKey(id), anonymousProfileKey(id)] : [userProfileKey(id)];
    case 'anonymous':
    case 'merged':
      return [anonymousProfileKey(id)];
    case 'unknown':
      return [kind === 'user' ? userProfileKey(id) : anonymousProfileKey(id)];
  }
}
