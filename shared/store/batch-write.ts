/**
 * DynamoDB's batch operations on one table, with their unprocessed items:
 * - `batchWrite`: any number of puts and deletes, in chunks of 25;
 * - `batchGet`: any number of keys, in chunks of 100.
 * Unprocessed items (throttled requests) are sent again with jittered
 * exponential backoff (`untilProcessed`), and reported as throttling when
 * they stay unprocessed.
 */
import { BatchGetCommand, BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { documentClient } from './client.ts';

export type WriteRequest = { PutRequest: { Item: Record<string, unknown> } } | { DeleteRequest: { Key: Record<string, unknown> } };

const BATCH_WRITE_MAX = 25;
const BATCH_GET_MAX = 100;
/** Attempts of one chunk before its unprocessed items are reported as throttling. */
const MAX_ATTEMPTS = 9;

/**
 * Send `initial` with `send` until nothing comes back unprocessed: full
 * jitter, 20 ms doubling, at most 1 s between attempts. Throws a
 * `ThrottlingException` (a 429 to an operator, a retry of the stream) when
 * items stay unprocessed after MAX_ATTEMPTS.
 */
export async function untilProcessed<T>(initial: readonly T[], send: (pending: readonly T[]) => Promise<readonly T[]>): Promise<void> {
  let pending = initial;
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > 0) {
      if (attempt >= MAX_ATTEMPTS) {
        throw Object.assign(new Error(`DynamoDB left ${pending.length} items unprocessed after ${attempt} attempts`), {
          name: 'ThrottlingException',
        });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(1_000, 20 * 2 ** attempt)));
    }
    pending = await send(pending);
  }
}

export async function batchWrite(
  tableName: string,
  requests: readonly WriteRequest[],
  client: DynamoDBDocumentClient = documentClient,
): Promise<void> {
  for (let i = 0; i < requests.length; i += BATCH_WRITE_MAX) {
    await untilProcessed(requests.slice(i, i + BATCH_WRITE_MAX), async (pending) => {
      const out = await client.send(new BatchWriteCommand({ RequestItems: { [tableName]: [...pending] } }));
      return (out.UnprocessedItems?.[tableName] ?? []) as WriteRequest[];
    });
  }
}

/** The items found for `keys` (in no particular order; a key with no item is absent). */
export async function batchGet(
  tableName: string,
  keys: readonly Record<string, unknown>[],
  options: { consistent?: boolean; client?: DynamoDBDocumentClient } = {},
): Promise<Record<string, unknown>[]> {
  const client = options.client ?? documentClient;
  const found: Record<string, unknown>[] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_MAX) {
    await untilProcessed(keys.slice(i, i + BATCH_GET_MAX), async (pending) => {
      const out = await client.send(
        new BatchGetCommand({ RequestItems: { [tableName]: { Keys: [...pending], ConsistentRead: options.consistent ?? false } } }),
      );
      found.push(...(out.Responses?.[tableName] ?? []));
      return (out.UnprocessedKeys?.[tableName]?.Keys ?? []) as Record<string, unknown>[];
    });
  }
  return found;
}
