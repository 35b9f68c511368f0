/**
 * Write keys, stored hashed (SHA-256) in the Control table. The secret
 * itself is never stored: it is shown once, when the key is created.
 *
 * Two items per key, written together:
 * - pk `KEY#<sha256 hex>`, sk `KEY`: what a source route looks up by the
 *   secret it was given (write-key-read.ts, on the request path);
 * - pk `KEYS`, sk `<keyId>`: the operator's list, and the way from a keyId
 *   to its hash when the key is revoked.
 *
 * A key has a kind (`public` | `server`, write-key-read.ts). A public key
 * may have a user-token secret: stored on the lookup item only (source
 * routes verify user tokens with it), never on the list item, never
 * returned; the list item says when it was last set.
 *
 * Revoking stamps `revokedAt` on both. Source routes cache a lookup for 30 s
 * (shared/http/auth.ts), so a revoked key is refused everywhere within that.
 * The lookup is write-key-read.ts; everything here uses the SDK.
 */
import { randomBytes } from 'node:crypto';
import { config } from '#shared/config.ts';
import { dynamo, type DynamoClient } from './client.ts';
import { cancellationCodes, isContention } from './faults.ts';
import { WRITE_KEY_LIST_PK, writeKeyListItem, writeKeyLookupItem } from './items.ts';
import { hashWriteKey, writeKeyFromItem, writeKeyItemKey, type WriteKeyKind, type WriteKeyRecord } from './write-key-read.ts';

export {
  findWriteKey,
  hashWriteKey,
  writeKeyFromItem,
  writeKeyItemKey,
  WRITE_KEY_KINDS,
  type WriteKeyKind,
  type WriteKeyLookup,
  type WriteKeyRecord,
} from './write-key-read.ts';

/** A key as an operator sees it: never the secret, the first 8 hex digits of its SHA-256 to match one. */
export interface WriteKeySummary extends WriteKeyRecord {
  readonly hashPrefix: string;
  /** When the user-token secret was last set (public keys); absent: user tokens are refused. */
  readonly userTokenSecretSetAt?: string;
}

/** A key to create: its name, kind (default public) and, for a public key, its user-token secret. */
export interface NewWriteKey {
  readonly name: string;
  readonly kind?: WriteKeyKind;
  readonly userTokenSecret?: string;
}

export interface KeyStoreOptions {
  readonly client?: DynamoClient;
  readonly tableName?: string;
}

/** A new secret: `wk_` (public) or `sk_` (server) and 24 random bytes, base64url. */
export function generateWriteKey(kind: WriteKeyKind = 'public'): string {
  return `${kind === 'server' ? 'sk' : 'wk'}_${randomBytes(24).toString('base64url')}`;
}

/** A new key id: `key_` and 16 hex digits (random: it says nothing about the secret). */
export function generateKeyId(): string {
  return `key_${randomBytes(8).toString('hex')}`;
}

/** An operator's view of a list item: named fields only, so nothing secret can slip through. */
function summaryOf(item: Record<string, unknown>): WriteKeySummary {
  return {
    ...writeKeyFromItem(item),
    hashPrefix: String(item.keyHashPrefix ?? ''),
    ...(item.userTokenSecretSetAt ? { userTokenSecretSetAt: String(item.userTokenSecretSetAt) } : {}),
  };
}

/** The fields of both items of a key; the user-token secret goes on the lookup item only. */
function keyItems(secret: string, record: WriteKeyRecord, userTokenSecret: string | undefined) {
  const hash = hashWriteKey(secret);
  const fields = { ...record, keyHashPrefix: hash.slice(0, 8) };
  return {
    lookup: { ...writeKeyItemKey(secret), ...fields, ...(userTokenSecret !== undefined ? { userTokenSecret } : {}) },
    list: {
      ...writeKeyListItem.key(record.keyId),
      ...fields,
      keyHash: hash,
      ...(userTokenSecret !== undefined ? { userTokenSecretSetAt: record.createdAt } : {}),
    },
  };
}

/**
 * Store a key with a known secret (idempotent for the same secret and
 * record; kind default public): the local stack's keys, tests and benches.
 */
export async function putWriteKey(
  secret: string,
  record: Omit<WriteKeyRecord, 'revokedAt' | 'kind'> & { readonly kind?: WriteKeyKind; readonly userTokenSecret?: string },
  options: KeyStoreOptions = {},
): Promise<void> {
  const tableName = options.tableName ?? config.CONTROL_TABLE;
  const { userTokenSecret, kind = 'public', ...fields } = record;
  const items = keyItems(secret, { ...fields, kind }, userTokenSecret);
  await (options.client ?? dynamo()).send(
    'TransactWriteItems', {
      TransactItems: [
        { Put: { TableName: tableName, Item: items.lookup } },
        { Put: { TableName: tableName, Item: items.list } },
      ],
    },
  );
}

/**
 * Create a key (`{name, kind = public, userTokenSecret?}`): a new secret and
 * key id, both items written only if neither exists (a collision of random
 * values is refused, never overwritten, and new ones are drawn). Returns the
 * secret, which is not stored.
 */
export async function createWriteKey(
  spec: NewWriteKey,
  now: Date = new Date(),
  options: KeyStoreOptions = {},
): Promise<{ readonly secret: string; readonly key: WriteKeySummary }> {
  const tableName = options.tableName ?? config.CONTROL_TABLE;
  const kind = spec.kind ?? 'public';
  for (let attempt = 1; ; attempt++) {
    const secret = generateWriteKey(kind);
    const record: WriteKeyRecord = { keyId: generateKeyId(), name: spec.name, kind, createdAt: now.toISOString() };
    const items = keyItems(secret, record, spec.userTokenSecret);
    try {
      await (options.client ?? dynamo()).send(
        'TransactWriteItems', {
          TransactItems: [
            {
              Put: {
                TableName: tableName,
                Item: items.lookup,
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
            {
              Put: {
                TableName: tableName,
                Item: items.list,
                ConditionExpression: 'attribute_not_exists(pk)',
              },
            },
          ],
        },
      );
      return { secret, key: summaryOf(items.list) };
    } catch (error) {
      // A random secret or id that exists already (or a conflicting write): draw new ones.
      if (!isContention(error) || attempt >= 3) throw error;
    }
  }
}

/** Every key, oldest first (by key id order within equal creation times), without secrets. */
export async function listWriteKeys(options: KeyStoreOptions = {}): Promise<WriteKeySummary[]> {
  const tableName = options.tableName ?? config.CONTROL_TABLE;
  const keys: WriteKeySummary[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const page = await (options.client ?? dynamo()).send(
      'Query', {
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': WRITE_KEY_LIST_PK },
        ConsistentRead: true,
        ...(start ? { ExclusiveStartKey: start } : {}),
      },
    );
    for (const item of page.Items ?? []) keys.push(summaryOf(item));
    start = page.LastEvaluatedKey;
  } while (start);
  return keys.sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : a.keyId < b.keyId ? -1 : 1));
}

/** One key by id, or undefined. */
export async function getWriteKey(keyId: string, options: KeyStoreOptions = {}): Promise<WriteKeySummary | undefined> {
  const out = await (options.client ?? dynamo()).send(
    'GetItem', { TableName: options.tableName ?? config.CONTROL_TABLE, Key: writeKeyListItem.key(keyId), ConsistentRead: true },
  );
  return out.Item ? summaryOf(out.Item) : undefined;
}

/**
 * Revoke a key: `revokedAt` on both of its items, in one transaction.
 * Revoking a revoked key changes nothing and returns it as it is;
 * undefined when there is no such key.
 */
export async function revokeWriteKey(keyId: string, now: Date = new Date(), options: KeyStoreOptions = {}): Promise<WriteKeySummary | undefined> {
  const tableName = options.tableName ?? config.CONTROL_TABLE;
  const client = options.client ?? dynamo();
  const found = await client.send('GetItem', { TableName: tableName, Key: writeKeyListItem.key(keyId), ConsistentRead: true });
  const item = found.Item;
  if (!item) return undefined;
  if (item.revokedAt) return summaryOf(item);
  const revokedAt = now.toISOString();
  try {
    await client.send(
      'TransactWriteItems', {
        TransactItems: [
          {
            Update: {
              TableName: tableName,
              Key: writeKeyListItem.key(keyId),
              UpdateExpression: 'SET revokedAt = :at',
              ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(revokedAt)',
              ExpressionAttributeValues: { ':at': revokedAt },
            },
          },
          {
            // The lookup item: stamped whatever its state, so the secret is refused from now on.
            Update: {
              TableName: tableName,
              Key: writeKeyLookupItem.key(String(item.keyHash)),
              UpdateExpression: 'SET revokedAt = :at',
              ExpressionAttributeValues: { ':at': revokedAt },
            },
          },
        ],
      },
    );
  } catch (error) {
    // Revoked meanwhile by another call: the key is revoked, which is what was asked.
    if (isContention(error)) return getWriteKey(keyId, options);
    throw error;
  }
  return { ...summaryOf(item), revokedAt };
}

/**
 * Set (or rotate) the user-token secret of a live public key: tokens signed
 * with the previous secret are refused once source routes' lookup cache
 * expires (≤ 30 s). Returns the key, or undefined when there is no such key;
 * throws `KeyStateError` for a revoked or server key.
 */
export async function setUserTokenSecret(
  keyId: string,
  userTokenSecret: string,
  now: Date = new Date(),
  options: KeyStoreOptions = {},
): Promise<WriteKeySummary | undefined> {
  const tableName = options.tableName ?? config.CONTROL_TABLE;
  const client = options.client ?? dynamo();
  const found = await client.send('GetItem', { TableName: tableName, Key: writeKeyListItem.key(keyId), ConsistentRead: true });
  const item = found.Item;
  if (!item) return undefined;
  const key = summaryOf(item);
  if (key.revokedAt) throw new KeyStateError('the key is revoked');
  if (key.kind !== 'public') throw new KeyStateError('only a public key has user tokens (a server key may decide for any user)');
  const setAt = now.toISOString();
  const live = 'attribute_exists(pk) AND attribute_not_exists(revokedAt)';
  try {
    await client.send(
      'TransactWriteItems', {
        TransactItems: [
          {
            Update: {
              TableName: tableName,
              Key: writeKeyListItem.key(keyId),
              UpdateExpression: 'SET userTokenSecretSetAt = :at',
              ConditionExpression: live,
              ExpressionAttributeValues: { ':at': setAt },
            },
          },
          {
            Update: {
              TableName: tableName,
              Key: writeKeyLookupItem.key(String(item.keyHash)),
              UpdateExpression: 'SET userTokenSecret = :secret',
              ConditionExpression: live,
              ExpressionAttributeValues: { ':secret': userTokenSecret },
            },
          },
        ],
      },
    );
  } catch (error) {
    // Revoked meanwhile: nothing was changed. (A throttled or failing store is not a revoked key:
    // it reaches the caller as the fault it is, 429/503.)
    if (cancellationCodes(error).includes('ConditionalCheckFailed')) throw new KeyStateError('the key is revoked');
    throw error;
  }
  return { ...key, userTokenSecretSetAt: setAt };
}

/** A key that cannot take the change asked (revoked, or of the wrong kind). */
export class KeyStateError extends Error {}
