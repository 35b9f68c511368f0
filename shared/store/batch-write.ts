/**
 * BatchWriteItem of any number of puts and deletes on one table: chunks of
 * 25 (DynamoDB's most), unprocessed items (throttled writes) retried with
 * backoff, and reported as throttling when they stay unprocessed.
 */
import { BatchWriteCommand, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { documentClient } from './client.ts';

export type WriteRequest = { PutRequest: { Item: Record<string, unknown> } } | { DeleteRequest: { Key: Record<string, unknown> } };

const BATCH_WRITE_MAX = 25;

export async function batchWrite(
  tableName: string,
  requests: readonly WriteRequest[],
  client: DynamoDBDocumentClient = documentClient,
): Promise<void> {
  for (let i = 0; i < requests.length; i += BATCH_WRITE_MAX) {
    let pending = requests.slice(i, i + BATCH_WRITE_MAX);
    for (let attempt = 0; pending.length > 0; attempt++) {
      if (attempt > 0) {
        if (attempt > 8) {
          // Unprocessed items are throttled writes: reported as throttling (a 429 to an operator, a retry of the stream).
          throw Object.assign(new Error(`DynamoDB left ${pending.length} writes unprocessed after ${attempt} attempts`), {
            name: 'ThrottlingException',
          });
        }
        await new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(1_000, 20 * 2 ** attempt)));
      }
      const out = await client.send(new BatchWriteCommand({ RequestItems: { [tableName]: [...pending] } }));
      pending = (out.UnprocessedItems?.[tableName] ?? []) as typeof pending;
    }
  }
}
