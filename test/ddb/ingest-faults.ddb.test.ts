/**
 * Store faults on ingest: throttling, cancelled transactions and 5xx
 * answers, which DynamoDB Local cannot produce, from aws-lite's testing
 * mocks (every DynamoDB call of the process answered as scripted; the
 * write-key lookup answered with the key's item); a refused connection and
 * a store that never answers, real (the process's client sent to a closed
 * port, or to a server that accepts and never answers). The client gets
 * 429/503 with Retry-After, and never a 200 for a half-written request.
 */
import awsLite from '@aws-lite/client';
import { afterEach, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  // The faults below are expected: keep their warnings out of the test output.
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  // Before any import reads the environment (hoisted): the guard every ddb file runs.
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler } from '#functions/ingest/handler.ts';
import { clearWriteKeyCache } from '#http/auth.ts';
import { dynamo } from '#store/client.ts';
import { putWriteKey, writeKeyItemKey } from '#store/write-keys.ts';
import { apiGatewayEvent, basicAuth, lambdaContext } from '../support/apigw.ts';
import { refusingEndpoint, silentEndpoint, type SilentEndpoint } from '../support/store-faults.ts';

const KEY = 'wk_ingest_faults';
const KEY_ITEM = { ...writeKeyItemKey(KEY), keyId: 'src-faults', name: 'faults', kind: 'public', createdAt: '2026-11-23T00:00:00.000Z' };

let silent: SilentEndpoint | undefined;
afterEach(async () => {
  awsLite.testing.disable();
  dynamo().useEndpoint(undefined);
  await silent?.close();
  silent = undefined;
  clearWriteKeyCache();
});

/** DynamoDB's error answer (HTTP status, `__type`), as aws-lite's mocks give it. */
const answer = (statusCode: number, type: string, fields: Record<string, unknown> = {}) => ({
  statusCode,
  error: { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: type, ...fields },
});
const throttled = () => answer(400, 'ProvisionedThroughputExceededException');
const cancelled = (...codes: string[]) =>
  answer(400, 'TransactionCanceledException', { CancellationReasons: codes.map((Code) => ({ Code })) });
const serverError = () => answer(500, 'InternalServerError');

/** Script the process's DynamoDB: the write key found, and each operation's answers in turn (the last one repeats). */
function script(answers: Partial<Record<'PutItem' | 'TransactWriteItems', unknown[] | ((input: unknown) => unknown)>>): void {
  awsLite.testing.enable();
  awsLite.testing.mock('DynamoDB.GetItem', { Item: KEY_ITEM });
  for (const [operation, list] of Object.entries(answers)) awsLite.testing.mock(`DynamoDB.${operation}`, list);
}

type SentItems = { Put: { Item: Record<string, { S?: string }>; ConditionExpression?: string } }[];
/** The TransactItems of each TransactWriteItems sent (as the mocks received them: DynamoDB JSON). */
const transactions = () =>
  (awsLite.testing.getAllRequests('DynamoDB.TransactWriteItems') ?? []).map((r) => (r.request as { TransactItems: SentItems }).TransactItems);
const firstMessageId = (items: SentItems) => items[0]?.Put.Item.messageId?.S;

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
    ['a 500 from DynamoDB', serverError, 503, 'unavailable'],
  ])('%s → %i %s with Retry-After, nothing reported accepted', async (_what, fault, status, code) => {
    script({ TransactWriteItems: [fault()] });
    const reply = await send('batch', { batch: [track(1), track(2), track(3)] });
    expect(reply.status).toBe(status);
    expect(reply.body).toEqual({ error: { code, message: expect.any(String) } });
    expect(Number(reply.headers['retry-after'])).toBeGreaterThan(0);
    expect(reply.headers['x-request-id']).toMatch(/\S/);
  });

  it('a refused connection → 503 unavailable with Retry-After, nothing reported accepted', async () => {
    await putWriteKey(KEY, { keyId: KEY_ITEM.keyId, name: KEY_ITEM.name, createdAt: KEY_ITEM.createdAt });
    expect((await send('batch', { batch: [] })).status).toBeLessThan(500); // the key read and cached
    dynamo().useEndpoint(await refusingEndpoint());
    const reply = await send('batch', { batch: [track(1), track(2), track(3)] });
    expect(reply.status).toBe(503);
    expect(reply.body).toEqual({ error: { code: 'unavailable', message: expect.any(String) } });
    expect(Number(reply.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('a single-message route maps a throttled put to 429', async () => {
    script({ PutItem: [throttled()] });
    const reply = await send('track', { messageId: 'fault-single', userId: 'u-1', event: 'Product Viewed' });
    expect(reply.status).toBe(429);
    expect(reply.headers['retry-after']).toBe('1');
  });

  it('answers 503, not 200, when one chunk of a large batch fails and the others are written', async () => {
    // The second chunk fails every time it is sent (the client's three attempts); the others are written.
    script({ TransactWriteItems: (input) => (firstMessageId((input as { TransactItems: SentItems }).TransactItems) === 'fault-100' ? serverError() : {}) });
    const reply = await send('batch', { batch: Array.from({ length: 250 }, (_, i) => track(i)) });
    const sent = transactions().map((items) => `${firstMessageId(items)}:${items.length}`);
    expect(sent.sort()).toEqual(['fault-0:100', 'fault-100:100', 'fault-100:100', 'fault-100:100', 'fault-200:50']);
    expect(reply.status).toBe(503);
    expect(reply.body).not.toHaveProperty('accepted');
  });

  it('a store that never answers is a 503 with Retry-After before the function times out', async () => {
    await putWriteKey(KEY, { keyId: KEY_ITEM.keyId, name: KEY_ITEM.name, createdAt: KEY_ITEM.createdAt });
    expect((await send('batch', { batch: [] })).status).toBeLessThan(500); // the key read and cached
    silent = await silentEndpoint();
    dynamo().useEndpoint(silent.endpoint);
    const started = Date.now();
    const result = await handler(
      apiGatewayEvent({ method: 'POST', path: '/v1/batch', headers: { authorization: basicAuth(KEY) }, body: { batch: [track(1), track(2)] } }),
      lambdaContext({ getRemainingTimeInMillis: () => 1_500 }),
    );
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(silent.connections()).toBeGreaterThan(0);
    expect(result.statusCode).toBe(503);
    expect(JSON.parse(result.body ?? '{}')).toEqual({ error: { code: 'unavailable', message: expect.any(String) } });
    expect(Number((result.headers ?? {})['retry-after'])).toBeGreaterThan(0);
  });

  it('a write-key lookup failing is a 503, not a 401', async () => {
    dynamo().useEndpoint(await refusingEndpoint());
    const reply = await send('batch', { batch: [track(1)] });
    expect(reply.status).toBe(503);
  });

  it('drops the items that already exist from a cancelled transaction and writes the rest', async () => {
    script({ TransactWriteItems: [cancelled('None', 'ConditionalCheckFailed', 'None'), {}] });
    const reply = await send('batch', { batch: [track(1), track(2), track(3)] });
    expect(reply.body).toEqual({ success: true, accepted: 2, duplicates: 1, rejected: [] });
    const retried = transactions()[1] ?? [];
    expect(retried.map((item) => item.Put.Item.messageId?.S)).toEqual(['fault-1', 'fault-3']);
    expect(retried.every((item) => item.Put.ConditionExpression === 'attribute_not_exists(pk)')).toBe(true);
  });

  it('retries a transaction that conflicts with concurrent writes, then gives up with 503', async () => {
    script({ TransactWriteItems: [cancelled('TransactionConflict', 'None')] });
    const reply = await send('batch', { batch: [track(1), track(2)] });
    expect(reply.status).toBe(503);
    expect(transactions()).toHaveLength(5);
  });
});
