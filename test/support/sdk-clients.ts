/**
 * The AWS SDK v3 DynamoDB clients the tests use to set up and inspect tables
 * (puts, scans, reads), apart from the product's own client
 * (shared/store/client.ts, aws-lite) under test. On DynamoDB Local
 * (DYNAMODB_ENDPOINT, set by the global setup).
 */
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '#shared/config.ts';
import { createTableInput } from '#local/tables.ts';
import { controlTable } from '#store/tables.ts';

export const dynamo = new DynamoDBClient({
  region: config.AWS_REGION,
  ...(config.DYNAMODB_ENDPOINT
    ? { endpoint: config.DYNAMODB_ENDPOINT, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
    : {}),
});

export const documentClient = DynamoDBDocumentClient.from(dynamo, {
  marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  unmarshallOptions: { wrapNumbers: false },
});

/**
 * Create this test file's own Control table, named by `config.CONTROL_TABLE`
 * (set in the file's hoisted block, before any import reads it): the live
 * catalog, write keys and statistics of a file that publishes a catalog,
 * apart from the other ddb files running at the same time on the one
 * DynamoDB Local.
 */
export async function createOwnControlTable(): Promise<void> {
  await dynamo.send(new CreateTableCommand(createTableInput(controlTable, config.CONTROL_TABLE)));
}
