/**
 * The Events and Outbox tables' `byProfile` index (tables.ts `byProfile`),
 * read for one question both ask: is anything still stored under a profile
 * key.
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
