/**
 * The `byProfile` indexes (tables.ts: the Events and Outbox tables' items by
 * the profile key whose writes made them, the Profiles table's identity
 * links by their user's profile key), read for the two questions their
 * callers ask: is anything still stored under a profile key, and every item
 * stored under it.
 */
import type { DynamoClient } from './client.ts';

/**
 * Whether the index `indexName` of `tableName` holds an item under
 * `profileKey` (one Query of at most one key; eventually consistent, as
 * every index read). Store faults reject (StoreFault).
 */
export async function holdsUnderProfileKey(client: DynamoClient, tableName: string, indexName: string, profileKey: string): Promise<boolean> {
  const page = await client.send('Query', {
    TableName: tableName,
    IndexName: indexName,
    KeyConditionExpression: 'profileKey = :k',
    ExpressionAttributeValues: { ':k': profileKey },
    ProjectionExpression: 'pk',
    Limit: 1,
  });
  return (page.Items ?? []).length > 0;
}

/**
 * Every item the index `indexName` of `tableName` holds under `profileKey`
 * (a Query, page after page, in the index's sort key order; the attributes
 * the index projects, or those `projection` names: a ProjectionExpression
 * and its attribute names), each passed to `each` as its page arrives.
 * Eventually consistent, as every index read. Store faults reject
 * (StoreFault).
 */
export async function forEachUnderProfileKey(
  client: DynamoClient,
  tableName: string,
  indexName: string,
  profileKey: string,
  each: (item: Record<string, unknown>) => void,
  projection?: { readonly expression: string; readonly names?: Record<string, string> },
): Promise<void> {
  let start: Record<string, unknown> | undefined;
  do {
    const page = await client.send('Query', {
      TableName: tableName,
      IndexName: indexName,
      KeyConditionExpression: 'profileKey = :k',
      ExpressionAttributeValues: { ':k': profileKey },
      ...(projection ? { ProjectionExpression: projection.expression, ...(projection.names ? { ExpressionAttributeNames: projection.names } : {}) } : {}),
      ...(start ? { ExclusiveStartKey: start } : {}),
    });
    for (const item of page.Items ?? []) each(item);
    start = page.LastEvaluatedKey;
  } while (start);
}
