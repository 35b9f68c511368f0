/**
 * One DynamoDB client per module, created at load. On the local stack
 * DYNAMODB_ENDPOINT points it at DynamoDB Local.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';

export function createDynamoClient(endpoint = config.DYNAMODB_ENDPOINT): DynamoDBClient {
  return new DynamoDBClient({
    region: config.AWS_REGION,
    ...(endpoint
      ? { endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
    maxAttempts: 3,
  });
}

export function createDocumentClient(client: DynamoDBClient = createDynamoClient()): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    unmarshallOptions: { wrapNumbers: false },
  });
}

export const dynamo = createDynamoClient();
export const documentClient = createDocumentClient(dynamo);
