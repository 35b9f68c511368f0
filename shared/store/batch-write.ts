/**
 * DynamoDB's batch operations on one table, with their unprocessed items:
 * - `batchWrite`: any number of puts and deletes, in chunks of 25;
 * - `batchGet`: any number of keys, in chunks of 100.
 * Unprocessed items (throttled requests) are sent again with jittered
 * exponential backoff (shared/store/retry.ts `untilProcessed`), and reported
 * as a `throttled` StoreFault when they stay unprocessed.
 */
import { dynamo, type CallOptions, type DynamoClient, type Item, type WriteRequest } from './client.ts';
import { untilProcessed } from './retry.ts';

export type { WriteRequest };

const BATCH_WRITE_MAX = 25;
const BATCH_GET_MAX = 100;

export async function batchWrite(
  tableName: string,
  requests: readonly WriteRequest[],
  client: DynamoClient = dynamo(),
  options: CallOptions = {},
): Promise<void> {
  for (let i = 0; i < requests.length; i += BATCH_WRITE_MAX) {
    await untilProcessed(
      requests.slice(i, i + BATCH_WRITE_MAX),
      async (pending) => {
        const out = await client.send('BatchWriteItem', { RequestItems: { [tableName]: [...pending] } }, options);
        return out.UnprocessedItems?.[tableName] ?? [];
      },
      { attempts: 9, ...(options.deadline === undefined ? {} : { deadline: options.deadline }) },
    );
  }
}

/**
 * The items found for `keys` (in no particular order; a key with no item is
 * absent); with `projection` (a ProjectionExpression of plain attribute
 * names), only those attributes of each.
 */
export async function batchGet(
  tableName: string,
  keys: readonly Item[],
  options: { consistent?: boolean; projection?: string; client?: DynamoClient } & CallOptions = {},
): Promise<Item[]> {
  const { client = dynamo(), consistent = false, projection, ...call } = options;
  const found: Item[] = [];
  for (let i = 0; i < keys.length; i += BATCH_GET_MAX) {
    await untilProcessed(
      keys.slice(i, i + BATCH_GET_MAX),
      async (pending) => {
        const request = { Keys: [...pending], ConsistentRead: consistent, ...(projection === undefined ? {} : { ProjectionExpression: projection }) };
        const out = await client.send('BatchGetItem', { RequestItems: { [tableName]: request } }, call);
        found.push(...(out.Responses?.[tableName] ?? []));
        return out.UnprocessedKeys?.[tableName]?.Keys ?? [];
      },
      { attempts: 9, ...(call.deadline === undefined ? {} : { deadline: call.deadline }) },
    );
  }
  return found;
}
