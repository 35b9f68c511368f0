/**
 * The `byProfile` indexes (tables.ts: the Events and Outbox tables' items by
 * the profile key whose writes made them, the Profiles table's identity
 * links by their user's profile key): the one Query of them by profile key
 * (`byProfileQuery`, which the history's paged reads extend), and the two
 * questions callers ask of it: is anything still stored under a profile
 * key, and every item stored under it.
 */
import type { DynamoClient } from './client.ts';

/** The Query of the index `indexName` of `tableName` for the items under `profileKey`: what every read of a `byProfile` index sends first. */
export function byProfileQuery(tableName: string, indexName: string, profileKey: string) {
  return { TableName: tableName, IndexName: indexName, KeyConditionExpression: 'profileKey = :k', ExpressionAttributeValues: { ':k': profileKey } };
}

/**
 * Whether the index `indexName` of `tableName` holds an item under
 * `profileKey` (one Query of at most one key; eventually consistent, as
 * every index read). Store faults reject (StoreFault).
 */
export async function holdsUnderProfileKey(client: DynamoClient, tableName: string, indexName: string, profileKey: string): Promise<boolean> {
  const page = await client.send('Query', {
    ...byProfileQuery(tableName, indexName, profileKey),
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
      ...byProfileQuery(tableName, indexName, profileKey),
      ...(projection ? { ProjectionExpression: projection.expression, ...(projection.names ? { ExpressionAttributeNames: projection.names } : {}) } : {}),
      ...(start ? { ExclusiveStartKey: start } : {}),
    });
    for (const item of page.Items ?? []) each(item);
    start = page.LastEvaluatedKey;
  } while (start);
}
