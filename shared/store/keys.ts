/**
 * Write keys, stored hashed (SHA-256) in the Control table:
 * pk `KEY#<sha256 hex>`, sk `KEY`. The secret itself is never stored.
 * The lookup (`findWriteKey`) is write-key-read.ts (dynamo-lite, on the
 * request path of every source route); writes use the SDK.
 */
import { randomBytes } from 'node:crypto';
import { PutCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import { documentClient } from './client.ts';
import { hashWriteKey, writeKeyItemKey, type WriteKeyRecord } from './write-key-read.ts';

export { findWriteKey, hashWriteKey, writeKeyFromItem, writeKeyItemKey, type WriteKeyRecord } from './write-key-read.ts';

export function generateWriteKey(): string {
  return `wk_${randomBytes(24).toString('base64url')}`;
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
