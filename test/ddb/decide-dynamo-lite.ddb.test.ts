/**
 * dynamo-lite, decide's read client: requests are SigV4-signed, items
 * round-trip against DynamoDB Local exactly as the SDK's DocumentClient
 * reads them, and the faults DynamoDB Local cannot produce (throttling,
 * 5xx, a refused connection, a hang, unprocessed keys) — answered by a tiny
 * local HTTP server with DynamoDB's error bodies — map to the errors
 * shared/store/errors.ts classifies.
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
import { documentClient } from '#store/client.ts';
import { DynamoLite, DynamoLiteError } from '#store/dynamo-lite.ts';
import { storeFaultToApiError } from '#http/errors.ts';
import { isThrottling, isUnavailable } from '#store/errors.ts';
import { freePort } from '#local/dynamodb.ts';

const run = `lite-${Date.now().toString(36)}`;
const TABLE = config.PROFILES_TABLE;

describe('signing', () => {
  it('signs every request with SigV4 (credentials, scope, signed headers) and speaks the JSON protocol', async () => {
    const seen: { url: string; headers: Record<string, string>; body: string }[] = [];
    const lite = new DynamoLite({
      endpoint: 'https://dynamodb.eu-west-1.amazonaws.com',
      region: 'eu-west-1',
      credentials: () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret', sessionToken: 'token-1' }),
      fetch: async (input, init) => {
        seen.push({ url: String(input), headers: init?.headers as Record<string, string>, body: String(init?.body) });
        return new Response(JSON.stringify({ Item: { pk: { S: 'u#1' }, n: { N: '2' } } }), { status: 200 });
      },
    });
    expect(await lite.getItem('profiles', { pk: 'u#1' }, { consistent: true })).toEqual({ pk: 'u#1', n: 2 });
    const [request] = seen;
    expect(request?.url).toBe('https://dynamodb.eu-west-1.amazonaws.com/');
    const headers = request?.headers ?? {};
    expect(headers['x-amz-target']).toBe('DynamoDB_20120810.GetItem');
    expect(headers['content-type']).toBe('application/x-amz-json-1.0');
    expect(headers['x-amz-security-token']).toBe('token-1');
    expect(headers['x-amz-date']).toMatch(/^\d{8}T\d{6}Z$/);
    const date = headers['x-amz-date']?.slice(0, 8);
    expect(headers.authorization).toMatch(
      new RegExp(
        `^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/${date}/eu-west-1/dynamodb/aws4_request, ` +
          'SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$',
      ),
    );
    expect(JSON.parse(request?.body ?? '')).toEqual({ TableName: 'profiles', Key: { pk: { S: 'u#1' } }, ConsistentRead: true });
    // A different body is a different signature.
    await lite.getItem('profiles', { pk: 'u#2' });
    expect(seen[1]?.headers.authorization?.slice(-64)).not.toBe(headers.authorization?.slice(-64));
    expect(lite.requests).toBe(2);
    expect(lite.counts.get('GetItem profiles')).toBe(2);
  });
});

describe('against DynamoDB Local', () => {
  const lite = new DynamoLite();

  it('reads any item exactly as the SDK DocumentClient does (GetItem and BatchGetItem)', async () => {
    const scalar = fc.oneof(
      fc.string({ maxLength: 20 }),
      fc.integer({ min: -1e9, max: 1e9 }),
      fc.integer({ min: -1e9, max: 1e9 }).map((n) => n / 1024),
      fc.boolean(),
      fc.constant(null),
      fc.uint8Array({ minLength: 1, maxLength: 16 }),
    );
    const value = fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), scalar, { maxKeys: 4 }));
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/).filter((k) => k !== 'pk'), value, { maxKeys: 6 }), async (attributes) => {
        const pk = `${run}-rt-${n++}`;
        await documentClient.send(new PutCommand({ TableName: TABLE, Item: { pk, ...attributes } }));
        const { Item: expected } = await documentClient.send(new GetCommand({ TableName: TABLE, Key: { pk }, ConsistentRead: true }));
        expect(await lite.getItem(TABLE, { pk }, { consistent: true })).toEqual(expected);
        expect(await lite.batchGetItem(TABLE, [{ pk }, { pk: `${pk}-absent` }], { consistent: true })).toEqual([expected]);
      }),
      { numRuns: 25 },
    );
    expect(await lite.getItem(TABLE, { pk: `${run}-nobody` })).toBeUndefined();
  });

  it('BatchGetItem of more than 100 keys: one request per 100', async () => {
    const keys = Array.from({ length: 130 }, (_, i) => ({ pk: `${run}-many-${i}` }));
    for (const key of keys.slice(0, 3)) await documentClient.send(new PutCommand({ TableName: TABLE, Item: { ...key, i: 1 } }));
    const before = lite.requests;
    const items = await lite.batchGetItem(TABLE, keys, { consistent: true });
    expect(items.map((i) => i.pk).sort()).toEqual(keys.slice(0, 3).map((k) => k.pk).sort());
    expect(lite.requests - before).toBe(2);
  });

  it('a DynamoDB error answer (unknown table) is a client error, not a store fault', async () => {
    const error = await lite.getItem(`${run}-no-such-table`, { pk: 'x' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DynamoLiteError);
    expect(error).toMatchObject({ name: 'ResourceNotFoundException', kind: 'client', $metadata: { httpStatusCode: 400 } });
    expect(storeFaultToApiError(error)).toBeUndefined();
  });
});

describe('faults', () => {
  type Answer = (req: IncomingMessage, res: ServerResponse, body: string) => void;
  let server: Server;
  let answers: Answer[] = [];
  let endpoint = '';
  let received = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received++;
        const answer = answers.shift();
        if (answer) answer(req, res, body);
        else res.writeHead(500).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const dynamoError = (status: number, type: string, message: string): Answer => (_req, res) =>
    res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message }));
  const client = (options: { maxAttempts?: number; timeoutMs?: number } = {}) => new DynamoLite({ endpoint, maxAttempts: 1, timeoutMs: 1_000, ...options });
  const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as DynamoLiteError);

  it.each([
    ['ProvisionedThroughputExceededException', 400, 'throttled', 'throttled'],
    ['ThrottlingException', 400, 'throttled', 'throttled'],
    ['InternalServerError', 500, 'unavailable', 'unavailable'],
    ['ServiceUnavailable', 503, 'unavailable', 'unavailable'],
  ] as const)('%s (%i) → %s', async (type, status, kind, apiCode) => {
    answers = [dynamoError(status, type, 'no')];
    const error = await failure(client().getItem('t', { pk: 'x' }));
    expect(error).toMatchObject({ name: type, kind, $metadata: { httpStatusCode: status } });
    expect(storeFaultToApiError(error)?.code).toBe(apiCode);
  });

  it('a 502 page that is not JSON is unavailable', async () => {
    answers = [(_req, res) => res.writeHead(502, { 'content-type': 'text/html' }).end('<html>bad gateway</html>')];
    const error = await failure(client().getItem('t', { pk: 'x' }));
    expect(error).toMatchObject({ kind: 'unavailable', $metadata: { httpStatusCode: 502 } });
    expect(isUnavailable(error)).toBe(true);
  });

  it('a refused connection (closed port) is unavailable', async () => {
    const closed = await freePort();
    const error = await failure(new DynamoLite({ endpoint: `http://127.0.0.1:${closed}`, maxAttempts: 1 }).getItem('t', { pk: 'x' }));
    expect(error).toMatchObject({ kind: 'unavailable', code: 'ECONNREFUSED' });
    expect(storeFaultToApiError(error)?.code).toBe('unavailable');
  });

  it('no answer within the deadline is a TimeoutError, on time', async () => {
    answers = [() => undefined]; // never answers
    const started = performance.now();
    const error = await failure(client({ timeoutMs: 150 }).getItem('t', { pk: 'x' }));
    expect(error).toMatchObject({ name: 'TimeoutError', kind: 'unavailable' });
    expect(isUnavailable(error)).toBe(true);
    expect(performance.now() - started).toBeLessThan(1_000);
  });

  it('a throttled or failed attempt is retried once within the deadline', async () => {
    const ok: Answer = (_req, res) => res.writeHead(200).end(JSON.stringify({ Item: { pk: { S: 'x' } } }));
    answers = [dynamoError(400, 'ThrottlingException', 'slow down'), ok];
    const lite = client({ maxAttempts: 2 });
    expect(await lite.getItem('t', { pk: 'x' })).toEqual({ pk: 'x' });
    expect(lite.requests).toBe(2);
    // A client error is not retried.
    answers = [dynamoError(400, 'ValidationException', 'bad key'), ok];
    const before = received;
    expect(await failure(lite.getItem('t', { pk: 'x' }))).toMatchObject({ name: 'ValidationException', kind: 'client' });
    expect(received - before).toBe(1);
    answers = [];
  });

  it('BatchGetItem asks again for unprocessed keys; keys left unprocessed past the deadline are throttling', async () => {
    const wire = (pk: string) => ({ pk: { S: pk } });
    answers = [
      (_req, res, body) => {
        expect(JSON.parse(body).RequestItems.t.Keys).toEqual([wire('a'), wire('b')]);
        res.writeHead(200).end(JSON.stringify({ Responses: { t: [wire('a')] }, UnprocessedKeys: { t: { Keys: [wire('b')] } } }));
      },
      (_req, res, body) => {
        expect(JSON.parse(body).RequestItems.t.Keys).toEqual([wire('b')]);
        res.writeHead(200).end(JSON.stringify({ Responses: { t: [wire('b')] }, UnprocessedKeys: {} }));
      },
    ];
    const lite = client();
    expect(await lite.batchGetItem('t', [{ pk: 'a' }, { pk: 'b' }])).toEqual([{ pk: 'a' }, { pk: 'b' }]);
    expect(lite.requests).toBe(2);

    // The answer still leaves the key unprocessed, and by the time it arrives the call's deadline has passed.
    // The clock is moved rather than waited for: with a real wait, whether the deadline falls between two
    // rounds (throttling) or aborts a request in flight (a timeout) would depend on the machine's load.
    const realNow = Date.now.bind(Date);
    let skew = 0;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + skew);
    const late: Answer = (_req, res) => {
      skew += 60_000;
      res.writeHead(200).end(JSON.stringify({ Responses: { t: [] }, UnprocessedKeys: { t: { Keys: [wire('b')] } } }));
    };
    answers = [late, late, late];
    const before = received;
    let error: DynamoLiteError | undefined;
    try {
      error = await failure(client({ timeoutMs: 30_000 }).batchGetItem('t', [{ pk: 'b' }]));
    } finally {
      clock.mockRestore();
    }
    expect(error).toMatchObject({ name: 'ThrottlingException', kind: 'throttled' });
    expect(isThrottling(error)).toBe(true);
    expect(received - before).toBe(1); // not asked again once the deadline has passed
    answers = [];
  });
});
