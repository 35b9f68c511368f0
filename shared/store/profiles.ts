/**
 * The Profiles table (shared/store/tables.ts): one item per profile key,
 *
 * - `u#<userId>` / `a#<anonymousId>` → a profile:
 *   `{pk, kind: 'profile', version, state: <ProfileState JSON>, userId?, anonymousId?, updatedAt}`
 * - `a#<anonymousId>` merged into a user → a tombstone, the identity link:
 *   `{pk, kind: 'tombstone', version, mergedInto: <userId>, profileKey: u#<userId>, mergedAt, keyErasedAt}`,
 *   found from the user by the table's `byProfile` index (`linkedAnonymousKeys`;
 *   a tombstone written before `profileKey` existed is not in it);
 * - `m#<event pk>` → an "applied" marker (TTL `expiresAt`), written in the
 *   same transaction as the profile change it records.
 *
 * Readers (decide, admin, simulate) use `getProfileView` or, with an item in
 * hand, the pure `profileFromItem` + `toProfileView`.
 */
import { config } from '#shared/config.ts';
import { joinProfiles, profileFromItem, type ProfileLookup, type StoredProfile } from '#domain/profile/profile-item.ts';
import {
  STATE_VERSION,
  serializeProfileState,
  type ProfileState,
} from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { batchGet } from './batch-write.ts';
import { dynamo, type CallOptions, type DynamoClient, type TransactWriteItem } from './client.ts';
import { anonymousProfileItem, appliedMarkerItem, userProfileItem } from './items.ts';
import { isConditionFailed } from './faults.ts';
import { profilesTable } from './tables.ts';
import { forEachUnderProfileKey } from './by-profile.ts';

const LINKS_INDEX = profilesTable.globalSecondaryIndexes[0].indexName;

/** How long an "applied" marker is kept: far longer than the 24 h a stream record lives. */
export const MARKER_TTL_SECONDS = 7 * 24 * 3600;

export { profileFromItem, type ProfileItem, type StoredProfile, type StoredTombstone } from '#domain/profile/profile-item.ts';

/** The item that stores a profile state (version is the new version). */
export function profileToItem(key: string, state: ProfileState, version: number): Record<string, unknown> {
  return {
    pk: key,
    kind: 'profile',
    version,
    sv: STATE_VERSION,
    state: serializeProfileState(state),
    ...(state.userId !== undefined ? { userId: state.userId } : {}),
    ...(state.anonymousId !== undefined ? { anonymousId: state.anonymousId } : {}),
    ...(state.updatedAt !== undefined ? { updatedAt: new Date(state.updatedAt).toISOString() } : {}),
  };
}

/**
 * The tombstone of the anonymous profile `anonymousId` merged into `userId`
 * at `now` (epoch ms); `keyErasedAt`: the erasure of its key the merge read
 * (epoch ms, 0: none; profile-item.ts `StoredTombstone.keyErasedAt`). It
 * carries the user's profile key (`profileKey`, `u#<userId>`), the
 * `byProfile` index key by which `linkedAnonymousKeys` finds every link of
 * the user, whatever their number.
 */
export function tombstoneToItem(anonymousId: string, userId: string, version: number, now: number, keyErasedAt = 0): Record<string, unknown> {
  return {
    ...anonymousProfileItem.key(anonymousId),
    kind: 'tombstone',
    version,
    mergedInto: userId,
    profileKey: userProfileItem.key(userId).pk,
    mergedAt: new Date(now).toISOString(),
    keyErasedAt,
  };
}

/**
 * The profile keys (`a#<anonymousId>`) of every identity link of the user
 * whose profile key is `userKey` (`u#<userId>`): the tombstones naming it in
 * the Profiles table's `byProfile` index (a Query, page after page, keys
 * only), in the order of their merge time. Eventually consistent, as every index read: a
 * link merged a moment ago may be missing. A tombstone written before it
 * carried `profileKey` is not found here (the profile's `anonymousIds` still
 * names the newest LIMITS.anonymousIds of them). Store faults reject
 * (StoreFault).
 */
export async function linkedAnonymousKeys(userKey: string, options: { client?: DynamoClient; tableName?: string } = {}): Promise<string[]> {
  const keys: string[] = [];
  await forEachUnderProfileKey(options.client ?? dynamo(), options.tableName ?? config.PROFILES_TABLE, LINKS_INDEX, userKey, (item) => keys.push(String(item.pk)));
  return keys;
}

/**
 * Give the identity links written before links carried the user's profile
 * key theirs (`profileKey`, `u#<mergedInto>`), so that `linkedAnonymousKeys`
 * finds them: a Scan of the Profiles table for tombstones without it, each
 * one updated on condition that it is still that tombstone without it (one
 * deleted or changed meanwhile is left; the version is kept, so the profile
 * function's and the erasure's conditional writes are unaffected). An
 * operator's one-off migration, never a request-path read: it reads the
 * whole table. `start`: the `next` of an earlier run stopped at
 * `deadline` (epoch ms). Returns how many links it indexed and, when the
 * deadline stopped it first, `next`. Store faults reject (StoreFault).
 */
export async function indexIdentityLinks(
  options: { client?: DynamoClient; tableName?: string; start?: Record<string, unknown>; deadline?: number } = {},
): Promise<{ indexed: number; next?: Record<string, unknown> }> {
  const client = options.client ?? dynamo();
  const tableName = options.tableName ?? config.PROFILES_TABLE;
  let indexed = 0;
  let start = options.start;
  do {
    if (options.deadline !== undefined && Date.now() >= options.deadline && start !== undefined) return { indexed, next: start };
    const page = await client.send('Scan', {
      TableName: tableName,
      FilterExpression: '#kind = :tombstone AND attribute_not_exists(profileKey)',
      ProjectionExpression: 'pk, mergedInto',
      ExpressionAttributeNames: { '#kind': 'kind' },
      ExpressionAttributeValues: { ':tombstone': 'tombstone' },
      ...(start ? { ExclusiveStartKey: start } : {}),
    });
    for (const item of page.Items ?? []) {
      if (typeof item.mergedInto !== 'string') continue;
      try {
        await client.send('UpdateItem', {
          TableName: tableName,
          Key: { pk: item.pk },
          UpdateExpression: 'SET profileKey = :profileKey',
          ConditionExpression: '#kind = :tombstone AND mergedInto = :mergedInto AND attribute_not_exists(profileKey)',
          ExpressionAttributeNames: { '#kind': 'kind' },
          ExpressionAttributeValues: { ':tombstone': 'tombstone', ':mergedInto': item.mergedInto, ':profileKey': userProfileItem.key(item.mergedInto).pk },
        });
        indexed += 1;
      } catch (error) {
        if (!isConditionFailed(error)) throw error;
      }
    }
    start = page.LastEvaluatedKey;
  } while (start);
  return { indexed };
}

/** An "applied" marker: the event's key only (`<sourceId>#<messageId>`), nothing that names the customer. */
export function markerToItem(eventPk: string, now: number): Record<string, unknown> {
  return {
    ...appliedMarkerItem.key(eventPk),
    kind: 'marker',
    expiresAt: Math.floor(now / 1000) + MARKER_TTL_SECONDS,
  };
}

/**
 * BatchGetItem of any number of keys of the Profiles table (consistent if
 * asked), unprocessed keys requested again. Returns the items by pk.
 */
export async function getItems(
  keys: readonly string[],
  options: { consistent?: boolean; client?: DynamoClient; tableName?: string } = {},
): Promise<Map<string, Record<string, unknown>>> {
  const unique = [...new Set(keys)];
  const items = await batchGet(
    options.tableName ?? config.PROFILES_TABLE,
    unique.map((pk) => ({ pk })),
    { consistent: options.consistent ?? false, client: options.client ?? dynamo() },
  );
  return new Map(items.map((item) => [String(item.pk), item]));
}

export interface ProfileWrite {
  /** The profile item to put, with the version it was read at (0: it did not exist). */
  readonly profile: { key: string; state: ProfileState; readVersion: number };
  /** Anonymous ids turned into tombstones, with the version read (0: absent) and the erasure of their key read (0: none). */
  readonly tombstones: readonly { anonymousId: string; readVersion: number; keyErasedAt?: number }[];
  /** Event pks applied by this write. */
  readonly markers: readonly string[];
}

/** Build the one transaction that applies events: profile + tombstones + markers, all conditional. */
export function profileWriteTransaction(
  write: ProfileWrite,
  userId: string | undefined,
  now: number,
  tableName: string = config.PROFILES_TABLE,
): { TransactItems: TransactWriteItem[] } {
  const versioned = (readVersion: number) =>
    readVersion === 0
      ? { ConditionExpression: 'attribute_not_exists(pk)' }
      : { ConditionExpression: 'version = :v', ExpressionAttributeValues: { ':v': readVersion } };
  const items: TransactWriteItem[] = [
    {
      Put: {
        TableName: tableName,
        Item: profileToItem(write.profile.key, write.profile.state, write.profile.readVersion + 1),
        ...versioned(write.profile.readVersion),
      },
    },
  ];
  for (const tombstone of write.tombstones) {
    if (userId === undefined) throw new Error('Only a user profile can absorb an anonymous profile');
    items.push({
      Put: {
        TableName: tableName,
        Item: tombstoneToItem(tombstone.anonymousId, userId, tombstone.readVersion + 1, now, tombstone.keyErasedAt),
        ...versioned(tombstone.readVersion),
      },
    });
  }
  for (const eventPk of write.markers) {
    items.push({
      Put: {
        TableName: tableName,
        Item: markerToItem(eventPk, now),
        ConditionExpression: 'attribute_not_exists(pk)',
      },
    });
  }
  if (items.length > 100) throw new Error(`A profile transaction holds at most 100 items, not ${items.length}`);
  return { TransactItems: items };
}

export async function writeProfile(
  write: ProfileWrite,
  userId: string | undefined,
  now: number,
  client: DynamoClient = dynamo(),
): Promise<void> {
  await client.send('TransactWriteItems', profileWriteTransaction(write, userId, now));
}

export type { ProfileLookup } from '#domain/profile/profile-item.ts';

export interface ResolveOptions extends CallOptions {
  readonly client?: DynamoClient;
  readonly consistent?: boolean;
  readonly tableName?: string;
}

/**
 * The profile state of a customer, the one resolution of identities every
 * reader uses (decide, simulate, the admin's views): `u#userId` and/or
 * `a#anonymousId` in one request (GetItem for one key, BatchGetItem for
 * both). An anonymous profile not merged yet (the stream has not caught up)
 * is merged in memory (`joinProfiles`); a tombstone found for an
 * anonymous-only lookup is followed to the user it was merged into (a
 * second read). Undefined: no profile yet (a new customer). Store faults
 * reject (StoreFault), `timed-out` past `options.deadline`.
 */
export async function resolveProfile(lookup: ProfileLookup, options: ResolveOptions = {}): Promise<ProfileState | undefined> {
  return (await resolveStoredProfile(lookup, options))?.state;
}

/** A resolved customer: its profile state and, when that state is one stored item's as read, that item. */
export interface ResolvedProfile {
  readonly state: ProfileState;
  /** The stored profile whose state `state` is; absent when `state` was joined in memory. */
  readonly stored?: StoredProfile;
}

/**
 * `resolveProfile`, with the stored profile item the state was read from
 * (its key and version) when it was not joined in memory: always, for a
 * lookup of one id. Same reads and faults as `resolveProfile`.
 */
export async function resolveStoredProfile(lookup: ProfileLookup, options: ResolveOptions = {}): Promise<ResolvedProfile | undefined> {
  const { client = dynamo(), consistent = false, tableName = config.PROFILES_TABLE, ...call } = options;
  const getItem = async (pk: string) =>
    (await client.send('GetItem', { TableName: tableName, Key: { pk }, ...(consistent ? { ConsistentRead: true } : {}) }, call)).Item;
  const userKey = lookup.userId !== undefined ? userProfileItem.key(lookup.userId).pk : undefined;
  const anonKey = lookup.anonymousId !== undefined ? anonymousProfileItem.key(lookup.anonymousId).pk : undefined;
  const keys = [...new Set([userKey, anonKey].filter((k): k is string => k !== undefined))];
  if (keys.length === 0) return undefined;
  // One key: GetItem (DynamoDB's cheapest read); two (a user and an anonymous id to join): one BatchGetItem.
  const items =
    keys.length === 1
      ? [await getItem(keys[0] as string)].filter((i) => i !== undefined)
      : await batchGet(tableName, keys.map((pk) => ({ pk })), { client, consistent, ...call });
  const byKey = new Map(items.map((i) => [String(i.pk), i]));
  const user = userKey ? profileFromItem(byKey.get(userKey)) : undefined;
  const anon = anonKey ? profileFromItem(byKey.get(anonKey)) : undefined;
  const joined = joinProfiles(lookup, user, anon);
  if (!joined) return undefined;
  if ('state' in joined) {
    // joinProfiles returns a stored state itself when it joined nothing.
    const stored = [user, anon].find((p): p is StoredProfile => p?.kind === 'profile' && p.state === joined.state);
    return stored ? { state: joined.state, stored } : { state: joined.state };
  }
  const merged = profileFromItem(await getItem(userProfileItem.key(joined.mergedInto).pk));
  return merged?.kind === 'profile' ? { state: merged.state, stored: merged } : undefined;
}

/** The ProfileView of a customer at `now` (see `resolveProfile`); undefined for an unknown customer. */
export async function getProfileView(
  lookup: ProfileLookup,
  now: Date | number = Date.now(),
  options: ResolveOptions = {},
): Promise<ProfileView | undefined> {
  const state = await resolveProfile(lookup, options);
  return state ? toProfileView(state, now) : undefined;
}

/** Items a Scan of the profile listing evaluates per request (before its filter). */
const SCAN_PAGE_ITEMS = 1_000;

/** Which profiles a listing holds: known users (`u#…`), anonymous visitors never merged (`a#…`), or both; the default first. */
export const PROFILE_LIST_KINDS = ['user', 'anonymous', 'all'] as const;
export type ProfileListKind = (typeof PROFILE_LIST_KINDS)[number];

export interface ListProfilesOptions {
  readonly kind: ProfileListKind;
  /** Profiles wanted in this page (1..1,000); a page may hold fewer when the table's end or the deadline comes first. */
  readonly limit: number;
  /** The `next` of the previous page: the Profiles pk to continue after. */
  readonly after?: string;
  /** Stop reading (and return what was found, with `next`) at this instant, epoch ms. */
  readonly deadline?: number;
  readonly client?: DynamoClient;
  readonly tableName?: string;
}

/**
 * One page of the stored profiles, in the table's order (a Scan filtered to
 * profile items of the kind asked: no tombstones, markers or erasure
 * records). `next` is the pk to continue after, absent at the end. Reads
 * cost the whole table over all pages, whatever the filter: this is an
 * operator's bulk export, never a request-path read.
 */
export async function listProfiles(options: ListProfilesOptions): Promise<{ profiles: StoredProfile[]; next?: string }> {
  const client = options.client ?? dynamo();
  const prefix = options.kind === 'user' ? 'u#' : options.kind === 'anonymous' ? 'a#' : undefined;
  const profiles: StoredProfile[] = [];
  let start: Record<string, unknown> | undefined = options.after !== undefined ? { pk: options.after } : undefined;
  do {
    const page = await client.send(
      'Scan',
      {
        TableName: options.tableName ?? config.PROFILES_TABLE,
        FilterExpression: prefix ? '#kind = :profile AND begins_with(pk, :prefix)' : '#kind = :profile',
        ExpressionAttributeNames: { '#kind': 'kind' },
        ExpressionAttributeValues: { ':profile': 'profile', ...(prefix ? { ':prefix': prefix } : {}) },
        Limit: SCAN_PAGE_ITEMS,
        ...(start ? { ExclusiveStartKey: start } : {}),
      },
      options.deadline !== undefined ? { deadline: options.deadline } : {},
    );
    start = page.LastEvaluatedKey;
    for (const item of page.Items ?? []) {
      const profile = profileFromItem(item);
      if (profile?.kind !== 'profile') continue;
      profiles.push(profile);
      // A full page ends at its last profile: the next one starts right after it (any key is a valid start).
      if (profiles.length === options.limit) return { profiles, next: profile.key };
    }
  } while (start && (options.deadline === undefined || Date.now() < options.deadline - 1_000));
  const next = typeof start?.pk === 'string' ? start.pk : undefined;
  return { profiles, ...(next !== undefined ? { next } : {}) };
}
