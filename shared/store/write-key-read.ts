/**
 * The write-key lookup of every source route (shared/http/auth.ts): one
 * GetItem of the hashed key in the Control table, through the store's
 * client (shared/store/client.ts). Keys are written by shared/store/write-keys.ts.
 *
 * pk `KEY#<sha256 hex>`, sk `KEY`. The key itself is never stored; the
 * user-token secret of a public key is (it verifies HMACs), on this item only.
 */
import { createHash } from 'node:crypto';
import { config } from '#shared/config.ts';
import { dynamo, type DynamoClient } from './client.ts';
import { writeKeyLookupItem } from './items.ts';

/**
 * What a key may do (API.md §1): `public` ships in a page or an app (events;
 * decide on web/app/push for the caller's own customer, actions and content
 * only); `server` is a back-end's secret (everything decide offers).
 */
export type WriteKeyKind = 'public' | 'server';
export const WRITE_KEY_KINDS: readonly WriteKeyKind[] = ['public', 'server'];

export interface WriteKeyRecord {
  readonly keyId: string;
  readonly name: string;
  /** A key stored before kinds existed has none and reads as `public`, the lesser right. */
  readonly kind: WriteKeyKind;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

/** The lookup item's record: the key and, for a public key, the secret its user tokens are signed with. */
export interface WriteKeyLookup extends WriteKeyRecord {
  /** HS256 secret of the `X-Kairos-User-Token`s of this key; never returned by an operator route. */
  readonly userTokenSecret?: string;
}

export const hashWriteKey = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

/** The lookup item's key for a key's secret (shared/store/items.ts `writeKeyLookupItem`). */
export const writeKeyItemKey = (secret: string) => writeKeyLookupItem.key(hashWriteKey(secret));

/** The record of a stored key item (without its user-token secret). */
export function writeKeyFromItem(item: Record<string, unknown>): WriteKeyRecord {
  return {
    keyId: String(item.keyId),
    name: String(item.name ?? ''),
    kind: item.kind === 'server' ? 'server' : 'public',
    createdAt: String(item.createdAt ?? ''),
    ...(item.revokedAt ? { revokedAt: String(item.revokedAt) } : {}),
  };
}

/** The stored key for a secret, or undefined. Store faults throw (a StoreFault, see shared/store/faults.ts). */
export async function findWriteKey(
  secret: string,
  options: { client?: DynamoClient; tableName?: string; timeoutMs?: number } = {},
): Promise<WriteKeyLookup | undefined> {
  const { Item: item } = await (options.client ?? dynamo()).send(
    'GetItem',
    { TableName: options.tableName ?? config.CONTROL_TABLE, Key: writeKeyItemKey(secret) },
    options.timeoutMs === undefined ? {} : { deadline: Date.now() + options.timeoutMs },
  );
  if (!item) return undefined;
  const record = writeKeyFromItem(item);
  return typeof item.userTokenSecret === 'string' && item.userTokenSecret !== ''
    ? { ...record, userTokenSecret: item.userTokenSecret }
    : record;
}
