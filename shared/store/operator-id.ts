/**
 * The customer an operator's id names (the admin profile routes: GET,
 * export, erasure), by the rule of shared/domain/profile/profile-item.ts
 * `operatorIdTarget`: a userId names that user only, an anonymous id its
 * anonymous profile or the user it was merged into.
 */
import { config } from '#shared/config.ts';
import {
  operatorIdIsOtherKind,
  operatorIdKeys,
  operatorIdTarget,
  type OperatorIdKind,
  profileFromItem,
  type OperatorIdReads,
  type OperatorIdTarget,
  type StoredProfile,
} from '#domain/profile/profile-item.ts';
import { parseProfileKey } from '#domain/profile/identity.ts';
import { batchGet } from './batch-write.ts';
import { dynamo, type DynamoClient } from './client.ts';
import { erasedAtOf } from './erasure.ts';
import { holdsEvents } from './history.ts';
import { anonymousProfileItem, erasureRecordItem, userProfileItem } from './items.ts';
import { linkedAnonymousKeys } from './profiles.ts';

export interface OperatorIdCustomer {
  readonly target: OperatorIdTarget;
  /** The customer's stored profile; absent when it has none (erased, not applied yet, unknown). */
  readonly profile?: StoredProfile;
  /** The profile keys whose events and items are the customer's (`operatorIdKeys`). */
  readonly keys: readonly string[];
  /** The id names nobody as the kind asked, but is held as the other kind (`operatorIdIsOtherKind`). */
  readonly otherKind: boolean;
}

/**
 * Resolve an operator's id, of `kind` (a userId or an anonymousId): one consistent BatchGetItem of `u#<id>`,
 * `a#<id>` and the erasure record of `u#<id>`; a Query of one event under
 * `u#<id>` when it holds neither a profile nor an erasure record; for a
 * userId that names nobody and nothing at `a#<id>`, a Query of one event
 * under `a#<id>` (an anonymous visitor's events not applied yet: `otherKind`);
 * a consistent GetItem of the user an anonymous id was merged into. Store
 * faults reject (StoreFault).
 */
export async function resolveOperatorId(
  id: string,
  kind: OperatorIdKind,
  options: { client?: DynamoClient; profilesTable?: string; eventsTable?: string } = {},
): Promise<OperatorIdCustomer> {
  const client = options.client ?? dynamo();
  const tableName = options.profilesTable ?? config.PROFILES_TABLE;
  const userKey = userProfileItem.key(id).pk;
  const anonymousKey = anonymousProfileItem.key(id).pk;
  const erasureKey = erasureRecordItem.key(userKey).pk;
  const items = await batchGet(tableName, [userKey, anonymousKey, erasureKey].map((pk) => ({ pk })), { client, consistent: true });
  const byKey = new Map(items.map((item) => [String(item.pk), item]));
  const user = profileFromItem(byKey.get(userKey));
  const wasUser =
    user?.kind !== 'profile' &&
    (erasedAtOf(byKey.get(erasureKey)) !== undefined ||
      (await holdsEvents(userKey, { client, ...(options.eventsTable !== undefined ? { tableName: options.eventsTable } : {}) })));
  const anonymous = profileFromItem(byKey.get(anonymousKey));
  // A userId that names nobody (no profile, never a user, not merged into itself) with nothing at a#<id>:
  // whether an anonymous visitor's events, not applied yet, are all that is held, for the 404 to say so.
  const namesNobodyAsUser = kind === 'user' && user?.kind !== 'profile' && !wasUser && anonymous === undefined;
  const anonymousEvents =
    namesNobodyAsUser && (await holdsEvents(anonymousKey, { client, ...(options.eventsTable !== undefined ? { tableName: options.eventsTable } : {}) }));
  const reads: OperatorIdReads = { user, wasUser, anonymous, anonymousEvents };
  const target = operatorIdTarget(id, reads, kind);
  let profile: StoredProfile | undefined;
  if (target.names === 'user' && reads.user?.kind === 'profile') profile = reads.user;
  else if (target.names === 'anonymous' && reads.anonymous?.kind === 'profile') profile = reads.anonymous;
  else if (target.names === 'merged') {
    const merged = profileFromItem(
      (await client.send('GetItem', { TableName: tableName, Key: userProfileItem.key(target.userId), ConsistentRead: true })).Item,
    );
    if (merged?.kind === 'profile') profile = merged;
  }
  const otherKind = target.names === 'unknown' && operatorIdIsOtherKind(reads, kind);
  return { target, ...(profile ? { profile } : {}), keys: operatorIdKeys(id, target, reads, profile, kind), otherKind };
}

/**
 * Every profile key of an operator's customer, for its export and its
 * erasure: the customer's own first (`keys[0]`, `resolveOperatorId`'s),
 * then, in key order, the others of `keys` and, when the first is a user's
 * (`u#<userId>`), each anonymous key linked to that user (a tombstone naming
 * it: profiles.ts `linkedAnonymousKeys`, the Profiles table's `byProfile`
 * index) — every link, however many, where the profile's `anonymousIds`
 * keeps the newest LIMITS.anonymousIds. Key order, not merge order: a key's
 * place follows from its text, so an export's cursor names its key and goes
 * on from there however the links changed between pages. A link written
 * before tombstones carried `profileKey` is found only when the profile
 * names it (in `keys`). Store faults reject (StoreFault).
 */
export async function withIdentityLinks(keys: readonly string[], options: { client?: DynamoClient; profilesTable?: string } = {}): Promise<string[]> {
  const [own, ...others] = keys;
  if (own === undefined) return [];
  const linked =
    'userId' in parseProfileKey(own)
      ? await linkedAnonymousKeys(own, {
          ...(options.client !== undefined ? { client: options.client } : {}),
          ...(options.profilesTable !== undefined ? { tableName: options.profilesTable } : {}),
        })
      : [];
  return [own, ...[...new Set([...others, ...linked])].filter((key) => key !== own).sort()];
}
