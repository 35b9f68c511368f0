/**
 * Write keys, stored hashed (SHA-256) in the Control table:
 * pk `KEY#<sha256 hex>`, sk `KEY`. The secret itself is never stored.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GetCommand, PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documentClient } from './client.ts';

export interface WriteKeyRecord {
  readonly keyId: string;
  readonly name: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

export const hashWriteKey = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

export const writeKeyItemKey = (secret: string) => ({ pk: `KEY#${hashWriteKey(secret)}`, sk: 'KEY' });

export function generateWriteKey(): string {
  return `wk_${randomBytes(24).toString('base64url')}`;
}

export async function findWriteKey(
  secret: string,
  client: DynamoDBDocumentClient = documentClient,
  tableName: string = config.CONTROL_TABLE,
): Promise<WriteKeyRecord | undefined> {
  const { Item } = await client.send(new GetCommand({ TableName: tableName, Key: writeKeyItemKey(secret) }));
  if (!Item) return undefined;
  return {
    keyId: String(Item.keyId),
    name: String(Item.name ?? ''),
    createdAt: String(Item.createdAt ?? ''),
    ...(Item.revokedAt ? { revokedAt: String(Item.revokedAt) } : {}),
  };
}

/** Store a key (idempotent for the same secret). Used by the local stack and by key creation. */
export async function putWriteKey(
  secret: string,
  record: Omit<WriteKeyRecord, 'revokedAt'>,
  client: DynamoDBDocumentClient = documentClient,
  tableName: string = config.CONTROL_TABLE,
): Promise<void> {
  await client.send(
    new PutCommand({
      TableName: tableName,
      Item: { ...writeKeyItemKey(secret), ...record, keyHashPrefix: hashWriteKey(secret).slice(0, 8) },
    }),
  );
}
