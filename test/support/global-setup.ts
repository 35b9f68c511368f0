/**
 * One in-memory DynamoDB Local for the integration tiers, with the tables
 * created from the shared definitions. Workers inherit DYNAMODB_ENDPOINT.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { assertLocalEndpoint, startDynamoLocal, type DynamoLocal } from '#local/dynamodb.ts';
import { ensureTables } from '#local/tables.ts';

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
  assertLocalEndpoint(dynamo.endpoint, 'The ddb tests');
  process.env.DYNAMODB_ENDPOINT = dynamo.endpoint;
  process.env.AWS_REGION = 'us-east-1';
  // Nothing in an integration test may reach a real AWS account.
  process.env.AWS_ACCESS_KEY_ID = 'local';
  process.env.AWS_SECRET_ACCESS_KEY = 'local';
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  Object.assign(process.env, names);
  // The functions that seal and open decision ids (decide, profile) require it.
  process.env.KAIROS_DECISION_KEY = 'kdk_integration_tests_decision_key_0123456789';
}

export async function teardown(): Promise<void> {
  await dynamo?.stop();
}
