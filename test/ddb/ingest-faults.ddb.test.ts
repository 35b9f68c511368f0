/**
 * Store faults DynamoDB Local cannot produce (throttling, timeouts, 5xx,
 * refused connections), injected with aws-sdk-client-mock into the SDK
 * (writes) and into dynamo-lite's transport (the write-key lookup): the
 * client gets 429/503 with Retry-After, and never a 200 for a half-written
 * request.
 */
import {
  InternalServerError,
  ProvisionedThroughputExceededException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  // The faults below are expected: keep their warnings out of the test output.
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  // Before any import reads the environment (hoisted): the guard every ddb file runs.
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler } from '../../functions/ingest/handler.ts';
import { clearWriteKeyCache } from '#http/auth.ts';
import { PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import { config } from '#shared/config.ts';
import { dynamo } from '#store/client.ts';
import { writeKeyItemKey } from '#store/keys.ts';
import { dynamoLite } from '#store/dynamo-lite.ts';
import { freePort } from '#local/dynamodb.ts';
import { apiGatewayEvent, basicAuth, lambdaContext } from '#test/support/apigw.ts';

const KEY = 'wk_ingest_faults';
const ddb = mockClient(DynamoDBDocumentClient);

beforeAll(async () => {
  // The key is read from DynamoDB Local (dynamo-lite); only the writes below meet injected faults.
  // Stored with the plain client: the DocumentClient is mocked.
  const item = { ...writeKeyItemKey(KEY), keyId: 'src-faults', name: 'faults', createdAt: '2026-11-23T00:00:00.000Z' };
  await dynamo.send(new PutItemCommand({ TableName: config.CONTROL_TABLE, Item: marshall(item) }));
});

afterEach(() => {
  ddb.reset();
  dynamoLite().setTransport(undefined);
  clearWriteKeyCache();
});

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });
const throttled = () => new ProvisionedThroughputExceededException({ message: 'Rate exceeded', ...meta(400) });
const cancelled = (...codes: string[]) =>
  new TransactionCanceledException({
    message: `Transaction cancelled [${codes.join(', ')}]`,
    CancellationReasons: codes.map((Code) => ({ Code })),
    ...meta(400),
  });
const timeout = () => Object.assign(new Error('Connection timed out after 1000 ms'), { name: 'TimeoutError' });
const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8000'), { code: 'ECONNREFUSED' });
const serverError = () => new InternalServerError({ message: 'Internal server error', ...meta(500) });

const track = (i: number) => ({ type: 'track', messageId: `fault-${i}`, userId: 'u-1', event: 'Product Viewed' });

async function send(route: string, body: unknown) {
  const result = await handler(
    apiGatewayEvent({ method: 'POST', path: `/v1/${route}`, headers: { authorization: basicAuth(KEY) }, body }),
    lambdaContext(),
  );
  return {
    status: result.statusCode,
    headers: (result.headers ?? {}) as Record<string, string>,
    body: JSON.parse(result.body ?? '{}') as Record<string, unknown>,
  };
}

describe('ingest when the store fails', () => {
  it.each([
    ['throttling', throttled, 429, 'throttled'],
    ['a transaction cancelled for throttled items', () => cancelled('None', 'ThrottlingError', 'None'), 429, 'throttled'],
    ['a timeout', timeout, 503, 'unavailable'],
    ['a refused connection', refused, 503, 'unavailable'],
    ['a 500 from DynamoDB', serverError, 503, 'unavailable'],
  ])('%s → %i %s with Retry-After, nothing reported accepted', async (_what, fault, status, code) => {
    ddb.on(TransactWriteCommand).rejects(fault());
    const reply = await send('batch', { batch: [track(1), track(2), track(3)] });
    expect(reply.status).toBe(status);
    expect(reply.body).toEqual({ error: { code, message: expect.any(String) } });
    expect(Number(reply.headers['retry-after'])).toBeGreaterThan(0);
    expect(reply.headers['x-request-id']).toMatch(/\S/);
  });

  it('a single-message route maps a throttled put to 429', async () => {
    ddb.on(PutCommand).rejects(throttled());
    const reply = await send('track', { messageId: 'fault-single', userId: 'u-1', event: 'Product Viewed' });
    expect(reply.status).toBe(429);
    expect(reply.headers['retry-after']).toBe('1');
  });

  it('answers 503, not 200, when one chunk of a large batch fails and the others are written', async () => {
    ddb.on(TransactWriteCommand).resolvesOnce({}).rejectsOnce(timeout()).resolves({});
    const reply = await send('batch', { batch: Array.from({ length: 250 }, (_, i) => track(i)) });
    expect(ddb.commandCalls(TransactWriteCommand).map((c) => c.args[0].input.TransactItems?.length)).toEqual([100, 100, 50]);
    expect(reply.status).toBe(503);
    expect(reply.body).not.toHaveProperty('accepted');
  });

  it('a store that never answers is a 503 with Retry-After before the function times out', async () => {
    ddb.on(TransactWriteCommand).callsFake(() => new Promise(() => undefined));
    const result = await handler(
      apiGatewayEvent({ method: 'POST', path: '/v1/batch', headers: { authorization: basicAuth(KEY) }, body: { batch: [track(1), track(2)] } }),
      lambdaContext({ getRemainingTimeInMillis: () => 1_500 }),
    );
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body ?? '{}')).toEqual({ error: { code: 'unavailable', message: expect.any(String) } });
    expect(Number((result.headers ?? {})['retry-after'])).toBeGreaterThan(0);
  });

  it('a write-key lookup failing is a 503, not a 401', async () => {
    const closed = await freePort();
    dynamoLite().setTransport((_input, init) => fetch(`http://127.0.0.1:${closed}/`, init));
    const reply = await send('batch', { batch: [track(1)] });
    expect(reply.status).toBe(503);
  });

  it('drops the items that already exist from a cancelled transaction and writes the rest', async () => {
    ddb.on(TransactWriteCommand).rejectsOnce(cancelled('None', 'ConditionalCheckFailed', 'None')).resolves({});
    const reply = await send('batch', { batch: [track(1), track(2), track(3)] });
    expect(reply.body).toEqual({ success: true, accepted: 2, duplicates: 1, rejected: [] });
    const retried = ddb.commandCalls(TransactWriteCommand)[1]?.args[0].input.TransactItems ?? [];
    expect(retried.map((item) => item.Put?.Item?.messageId)).toEqual(['fault-1', 'fault-3']);
    expect(retried.every((item) => item.Put?.ConditionExpression === 'attribute_not_exists(pk)')).toBe(true);
  });

  it('retries a transaction that conflicts with concurrent writes, then gives up with 503', async () => {
    ddb.on(TransactWriteCommand).rejects(cancelled('TransactionConflict', 'None'));
    const reply = await send('batch', { batch: [track(1), track(2)] });
    expect(reply.status).toBe(503);
    expect(ddb.commandCalls(TransactWriteCommand)).toHaveLength(5);
  });
});
