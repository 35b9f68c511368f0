/**
 * The store's one DynamoDB client (shared/store/client.ts, aws-lite):
 * requests are SigV4-signed and speak DynamoDB's JSON protocol, items
 * round-trip against DynamoDB Local exactly as the SDK's DocumentClient
 * reads them, and the faults DynamoDB Local cannot produce (throttling,
 * 5xx, a page that is not JSON, a hang, unprocessed keys) — answered by a
 * tiny local HTTP server with DynamoDB's error bodies — and a refused
 * connection become the typed StoreFaults of shared/store/faults.ts, which
 * the HTTP edge maps to 429/503.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  // Before any import reads the environment (hoisted): the guard every ddb file runs.
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { config } from '#shared/config.ts';
import { documentClient } from '../support/sdk-clients.ts';
import { DynamoClient, bytesOf } from '#store/client.ts';
import { batchGet } from '#store/batch-write.ts';
import { StoreFault, isThrottling, isUnavailable } from '#store/faults.ts';
import { storeFaultToApiError } from '#http/errors.ts';
import { refusingEndpoint } from '../support/store-faults.ts';

const run = `client-${Date.now().toString(36)}`;
const TABLE = config.PROFILES_TABLE;

type Answer = (req: IncomingMessage, res: ServerResponse, body: string) => void;
let server: Server;
let answers: Answer[] = [];
let endpoint = '';
let received: { headers: IncomingMessage['headers']; url: string; body: string }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers, url: req.url ?? '', body });
      const answer = answers.shift();
      if (answer) answer(req, res, body);
      else res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

const json = (status: number, body: unknown): Answer => (_req, res) =>
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));
const dynamoError = (status: number, type: string, message: string): Answer =>
  json(status, { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message });
const client = (options: { maxAttempts?: number; timeoutMs?: number } = {}) => new DynamoClient({ endpoint, maxAttempts: 1, timeoutMs: 1_000, ...options });
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as StoreFault);

describe('signing', () => {
  it('signs every request with SigV4 (credentials, scope, signed headers) and speaks the JSON protocol', async () => {
    received = [];
    answers = [json(200, { Item: { pk: { S: 'u#1' }, n: { N: '2' } } }), json(200, {})];
    const signed = new DynamoClient({
      endpoint,
      region: 'eu-west-1',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token-1' },
      maxAttempts: 1,
    });
    expect((await signed.send('GetItem', { TableName: 'profiles', Key: { pk: 'u#1' }, ConsistentRead: true })).Item).toEqual({ pk: 'u#1', n: 2 });
    const [request] = received;
    expect(request?.url).toBe('/');
    const headers = request?.headers ?? {};
    expect(headers['x-amz-target']).toBe('DynamoDB_20120810.GetItem');
    expect(headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(headers['x-amz-security-token']).toBe('token-1');
    expect(headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    const date = String(headers['x-amz-date']).slice(0, 8);
    expect(headers.authorization).toMatch(
      new RegExp(`^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/${date}/eu-west-1/dynamodb/aws4_request, SignedHeaders=[a-z0-9;-]*x-amz-target[a-z0-9;-]*, Signature=[0-9a-f]{64}$`),
    );
    expect(String(headers.authorization)).toMatch(/SignedHeaders=[^,]*host[^,]*x-amz-date/);
    expect(JSON.parse(request?.body ?? '')).toEqual({ TableName: 'profiles', Key: { pk: { S: 'u#1' } }, ConsistentRead: true });
    // A different body is a different signature.
    await signed.send('GetItem', { TableName: 'profiles', Key: { pk: 'u#2' } });
    expect(String(received[1]?.headers.authorization).slice(-64)).not.toBe(String(headers.authorization).slice(-64));
    expect(signed.requests).toBe(2);
    expect(signed.counts.get('GetItem profiles')).toBe(2);
  });
});

describe('against DynamoDB Local', () => {
  const local = new DynamoClient();

  it('reads any item exactly as the SDK DocumentClient does (GetItem and BatchGetItem), binary as base64', async () => {
    const scalar = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.integer({ min: -1e9, max: 1e9 }),
      fc.integer({ min: -1e9, max: 1e9 }).map((n) => n / 1024),
      fc.boolean(),
      fc.constant(null),
    );
    const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), scalar, { maxKeys: 4 }));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/).filter((k) => k !== 'pk'), value, { maxKeys: 6 }), async (attributes) => {
        const pk = `${run}-rt-${n++}`;
        await documentClient.send(new PutCommand({ TableName: TABLE, Item: { pk, ...attributes } }));
        const { Item: expected } = await documentClient.send(new GetCommand({ TableName: TABLE, Key: { pk }, ConsistentRead: true }));
        expect((await local.send('GetItem', { TableName: TABLE, Key: { pk }, ConsistentRead: true })).Item).toEqual(expected);
        expect(await batchGet(TABLE, [{ pk }, { pk: `${pk}-absent` }], { consistent: true, client: local })).toEqual([expected]);
      }),
      { numRuns: 25 },
    );
    expect((await local.send('GetItem', { TableName: TABLE, Key: { pk: `${run}-nobody` } })).Item).toBeUndefined();
  });

  it('writes any item the SDK DocumentClient reads back the same, binary attributes included', async () => {
    const scalar = fc.oneof(fc.string({ maxLength: 20 }), fc.integer({ min: -1e9, max: 1e9 }), fc.boolean(), fc.constant(null));
    const value = fc.oneof(scalar, fc.uint8Array({ minLength: 1, maxLength: 16 }), fc.array(scalar, { maxLength: 4 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), scalar, { maxKeys: 4 }));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/).filter((k) => k !== 'pk'), value, { maxKeys: 6 }), async (attributes) => {
        const pk = `${run}-w-${n++}`;
        await local.send('PutItem', { TableName: TABLE, Item: { pk, ...attributes, gone: undefined } });
        const { Item } = await documentClient.send(new GetCommand({ TableName: TABLE, Key: { pk }, ConsistentRead: true }));
        expect(Item).toEqual({ pk, ...attributes });
        const read = (await local.send('GetItem', { TableName: TABLE, Key: { pk }, ConsistentRead: true })).Item ?? {};
        const binary = Object.entries(attributes).filter(([, v]) => v instanceof Uint8Array);
        expect(binary.map(([name]) => bytesOf(read[name]))).toEqual(binary.map(([, v]) => v));
      }),
      { numRuns: 25 },
    );
  });

  it('BatchGetItem of more than 100 keys: one request per 100', async () => {
    const keys = Array.from({ length: 130 }, (_, i) => ({ pk: `${run}-many-${i}` }));
    for (const key of keys.slice(0, 3)) await documentClient.send(new PutCommand({ TableName: TABLE, Item: { ...key, i: 1 } }));
    const before = local.requests;
    const items = await batchGet(TABLE, keys, { consistent: true, client: local });
    expect(items.map((i) => i.pk).sort()).toEqual(keys.slice(0, 3).map((k) => k.pk).sort());
    expect(local.requests - before).toBe(2);
  });

  it('a transaction sent again after a cancellation is sent as it was (its input is not changed)', async () => {
    const item = { pk: `${run}-tx`, n: 1 };
    const input = { TransactItems: [{ Put: { TableName: TABLE, Item: item, ConditionExpression: 'attribute_not_exists(pk)' } }] };
    await local.send('TransactWriteItems', input);
    const again = await failure(local.send('TransactWriteItems', input));
    expect(again).toMatchObject({ name: 'TransactionCanceledException', kind: 'transaction-cancelled', reasons: ['ConditionalCheckFailed'] });
    // Contention its writer gave up on (the erasure's profile delete, conditioned on the version it read): a 503 to retry, not a 500.
    expect(storeFaultToApiError(again)).toMatchObject({ code: 'unavailable', status: 503, retryAfter: 1 });
    expect(input.TransactItems[0]?.Put.Item).toBe(item);
    expect(item).toEqual({ pk: `${run}-tx`, n: 1 });
  });

  it('a failed condition is conditional-check-failed; an unknown table a client error, not a store fault', async () => {
    await local.send('PutItem', { TableName: TABLE, Item: { pk: `${run}-c` } });
    const exists = await failure(local.send('PutItem', { TableName: TABLE, Item: { pk: `${run}-c` }, ConditionExpression: 'attribute_not_exists(pk)' }));
    expect(exists).toMatchObject({ name: 'ConditionalCheckFailedException', kind: 'conditional-check-failed', status: 400 });
    const error = await failure(local.send('GetItem', { TableName: `${run}-no-such-table`, Key: { pk: 'x' } }));
    expect(error).toBeInstanceOf(StoreFault);
    expect(error).toMatchObject({ name: 'ResourceNotFoundException', kind: 'client', status: 400 });
    expect(storeFaultToApiError(error)).toBeUndefined();
  });

  it('pages a Query with the key where the last page stopped', async () => {
    for (let i = 0; i < 5; i++) await local.send('PutItem', { TableName: config.CONTROL_TABLE, Item: { pk: `${run}-page`, sk: `s${i}` } });
    const seen: unknown[] = [];
    const stops: unknown[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await local.send('Query', {
        TableName: config.CONTROL_TABLE,
        KeyConditionExpression: 'pk = :p',
        ExpressionAttributeValues: { ':p': `${run}-page` },
        Limit: 2,
        ...(start ? { ExclusiveStartKey: start } : {}),
      });
      seen.push(...(page.Items ?? []).map((i) => i.sk));
      start = page.LastEvaluatedKey;
      if (start) stops.push(start);
    } while (start);
    expect(seen).toEqual(['s0', 's1', 's2', 's3', 's4']);
    expect(stops).toEqual([{ pk: `${run}-page`, sk: 's1' }, { pk: `${run}-page`, sk: 's3' }]);
  });
});

describe('faults', () => {
  it.each([
    ['ProvisionedThroughputExceededException', 400, 'throttled', 'throttled'],
    ['ThrottlingException', 400, 'throttled', 'throttled'],
    ['InternalServerError', 500, 'unavailable', 'unavailable'],
    ['ServiceUnavailable', 503, 'unavailable', 'unavailable'],
  ] as const)('%s (%i) → %s', async (type, status, kind, apiCode) => {
    answers = [dynamoError(status, type, 'no')];
    const error = await failure(client().send('GetItem', { TableName: 't', Key: { pk: 'x' } }));
    expect(error).toMatchObject({ name: type, kind, status });
    expect(storeFaultToApiError(error)?.code).toBe(apiCode);
  });

  it('a 502 page that is not JSON is unavailable', async () => {
    answers = [(_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>')];
    const error = await failure(client().send('GetItem', { TableName: 't', Key: { pk: 'x' } }));
    expect(error).toMatchObject({ kind: 'unavailable', status: 502 });
    expect(isUnavailable(error)).toBe(true);
  });

  it('a refused connection (closed port) is unavailable', async () => {
    const error = await failure(new DynamoClient({ endpoint: await refusingEndpoint(), maxAttempts: 1 }).send('GetItem', { TableName: 't', Key: { pk: 'x' } }));
    expect(error).toMatchObject({ name: 'NetworkError', kind: 'unavailable', code: 'ECONNREFUSED' });
    expect(storeFaultToApiError(error)?.code).toBe('unavailable');
  });

  it('no answer within the deadline is a timed-out TimeoutError, on time', async () => {
    answers = [() => undefined]; // never answers
    const started = performance.now();
    const error = await failure(client({ timeoutMs: 150 }).send('GetItem', { TableName: 't', Key: { pk: 'x' } }));
    expect(error).toMatchObject({ name: 'TimeoutError', kind: 'timed-out' });
    expect(isUnavailable(error)).toBe(true);
    expect(storeFaultToApiError(error)?.code).toBe('unavailable');
    expect(performance.now() - started).toBeLessThan(1_000);
    server.closeAllConnections();
  });

  it('a throttled or failed attempt is retried within the attempts and the deadline; a client error is not', async () => {
    const ok = json(200, { Item: { pk: { S: 'x' } } });
    answers = [dynamoError(400, 'ThrottlingException', 'slow down'), ok];
    const retrying = client({ maxAttempts: 2 });
    expect((await retrying.send('GetItem', { TableName: 't', Key: { pk: 'x' } })).Item).toEqual({ pk: 'x' });
    expect(retrying.requests).toBe(2);
    answers = [dynamoError(500, 'InternalServerError', 'oops'), dynamoError(500, 'InternalServerError', 'oops'), ok];
    expect(await failure(retrying.send('GetItem', { TableName: 't', Key: { pk: 'x' } }))).toMatchObject({ kind: 'unavailable' });
    expect(retrying.requests).toBe(4);
    answers = [dynamoError(400, 'ValidationException', 'bad key'), ok];
    const before = received.length;
    expect(await failure(retrying.send('GetItem', { TableName: 't', Key: { pk: 'x' } }))).toMatchObject({ name: 'ValidationException', kind: 'invalid' });
    expect(received.length - before).toBe(1);
    answers = [];
  });

  it('BatchGetItem asks again for unprocessed keys; keys left unprocessed past the deadline are throttling', async () => {
    const wire = (pk: string) => ({ pk: { S: pk } });
    answers = [
      (_req, res, body) => {
        expect(JSON.parse(body).RequestItems.t.Keys).toEqual([wire('a'), wire('b')]);
        json(200, { Responses: { t: [wire('a')] }, UnprocessedKeys: { t: { Keys: [wire('b')] } } })(_req, res, body);
      },
      (_req, res, body) => {
        expect(JSON.parse(body).RequestItems.t.Keys).toEqual([wire('b')]);
        json(200, { Responses: { t: [wire('b')] }, UnprocessedKeys: {} })(_req, res, body);
      },
    ];
    const reader = client();
    expect(await batchGet('t', [{ pk: 'a' }, { pk: 'b' }], { client: reader })).toEqual([{ pk: 'a' }, { pk: 'b' }]);
    expect(reader.requests).toBe(2);

    // The answer still leaves the key unprocessed, and by the time it arrives the call's deadline has passed.
    // The clock is moved rather than waited for: with a real wait, whether the deadline falls between two
    // rounds (throttling) or ends a request in flight (a timeout) would depend on the machine's load.
    const realNow = Date.now.bind(Date);
    let skew = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew);
    const late: Answer = (req, res, body) => {
      skew += 60_000;
      json(200, { Responses: { t: [] }, UnprocessedKeys: { t: { Keys: [wire('b')] } } })(req, res, body);
    };
    answers = [late, late, late];
    const before = received.length;
    let error: StoreFault | undefined;
    try {
      error = await failure(batchGet('t', [{ pk: 'b' }], { client: client({ timeoutMs: 30_000 }), deadline: realNow() + 30_000 }));
    } finally {
      clock.mockRestore();
    }
    expect(error).toMatchObject({ name: 'ThrottlingException', kind: 'throttled' });
    expect(isThrottling(error)).toBe(true);
    expect(received.length - before).toBe(1); // not asked again once the deadline has passed
    answers = [];
  });
});
