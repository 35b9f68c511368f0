/**
 * The write-key lookup of every source route (shared/http/auth.ts): one
 * GetItem of the hashed key in the Control table, through dynamo-lite, so
 * the decide function's bundle carries no SDK (shared/store/dynamo-lite.ts
 * says why). Keys are written by shared/store/keys.ts (SDK).
 *
 * pk `KEY#<sha256 hex>`, sk `KEY`. The secret itself is never stored.
 */
import { createHash } from 'node:crypto';
import { config } from '../config.ts';
import { dynamoLite, type DynamoLite } from './dynamo-lite.ts';

export interface WriteKeyRecord {
  readonly keyId: string;
  readonly name: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

export const hashWriteKey = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

export const writeKeyItemKey = (secret: string) => ({ pk: `KEY#${hashWriteKey(secret)}`, sk: 'KEY' });

/** The record of a stored key item. */
export function writeKeyFromItem(item: Record<string, unknown>): WriteKeyRecord {
  return {
    keyId: String(item.keyId),
    name: String(item.name ?? ''),
    createdAt: String(item.createdAt ?? ''),
    ...(item.revokedAt ? { revokedAt: String(item.revokedAt) } : {}),
  };
}

/** The stored key for a secret, or undefined. Store faults throw (DynamoLiteError, see shared/store/errors.ts). */
export async function findWriteKey(
  secret: string,
  options: { lite?: DynamoLite; tableName?: string; timeoutMs?: number } = {},
): Promise<WriteKeyRecord | undefined> {
  const item = await (options.lite ?? dynamoLite()).getItem(
    options.tableName ?? config.CONTROL_TABLE,
    writeKeyItemKey(secret),
    options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs },
  );
  return item ? writeKeyFromItem(item) : undefined;
}
