/**
 * One in-memory DynamoDB Local for the integration tiers, with the tables
 * created from the shared definitions. Workers inherit DYNAMODB_ENDPOINT.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { startDynamoLocal, type DynamoLocal } from '../../local/dynamodb.ts';
import { ensureTables } from '../../local/tables.ts';

let dynamo: DynamoLocal | undefined;

export async function setup(): Promise<void> {
  dynamo = await startDynamoLocal({ inMemory: true });
  const client = new DynamoDBClient({
    endpoint: dynamo.endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  const names = await ensureTables(client);
  client.destroy();
  process.env.DYNAMODB_ENDPOINT = dynamo.endpoint;
  process.env.AWS_REGION = 'us-east-1';
  Object.assign(process.env, names);
}

export async function teardown(): Promise<void> {
  await dynamo?.stop();
}
