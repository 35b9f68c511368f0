/**
 * The ingest function end to end on a real DynamoDB Local: API Gateway v2
 * event in, response out, and what the Events table then holds.
 */
import { randomUUID } from 'node:crypto';
import { deflateSync, gzipSync } from 'node:zlib';
import { GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { Analytics } from '@segment/analytics-node';
import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  // Before any import reads the environment (hoisted): the guard every ddb file runs.
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler } from '#functions/ingest/handler.ts';
import { config } from '#shared/config.ts';
import { documentClient } from '../support/sdk-clients.ts';
import { putWriteKey } from '#store/write-keys.ts';
import { EVENT_ROUTES, SHORT_EVENT_ROUTES } from '#http/routes.ts';
import { storedEventSchema } from '#domain/stored-event.ts';
import { apiGatewayEvent, basicAuth, lambdaContext } from '../support/apigw.ts';

const RUN = randomUUID().slice(0, 8);
/** One write key (one source) per concern, so stored items can be counted per source. */
const sources = {
  main: { key: `wk_ingest_main_${RUN}`, id: `src-ingest-main-${RUN}` },
  hostile: { key: `wk_ingest_hostile_${RUN}`, id: `src-ingest-hostile-${RUN}` },
  fuzz: { key: `wk_ingest_fuzz_${RUN}`, id: `src-ingest-fuzz-${RUN}` },
};

beforeAll(async () => {
  for (const { key, id } of Object.values(sources)) {
    await putWriteKey(key, { keyId: id, name: `ingest test ${id}`, createdAt: new Date().toISOString() });
  }
});

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown> & { error?: { code: string; message: string; details?: unknown[] } };
}

async function post(
  route: string,
  body: unknown,
  options: { key?: string | null; headers?: Record<string, string> } = {},
): Promise<Reply> {
  // `key: null` sends no credential at all.
  const key = options.key === undefined ? sources.main.key : options.key;
  const headers = options.headers ?? {};
  const event = apiGatewayEvent({
    method: 'POST',
    path: `/v1/${route}`,
    headers: { ...(key ? { authorization: basicAuth(key) } : {}), ...headers },
    body,
  });
  const result = await handler(event, lambdaContext());
  return {
    status: result.statusCode ?? 0,
    headers: (result.headers ?? {}) as Record<string, string>,
    body: result.body ? JSON.parse(result.body) : {},
  };
}

/** Every stored pk of a source (optionally below a messageId prefix). */
async function storedPks(sourceId: string, messageIdPrefix = ''): Promise<string[]> {
  const pks: string[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await documentClient.send(
      new ScanCommand({
        TableName: config.EVENTS_TABLE,
        FilterExpression: 'begins_with(pk, :prefix)',
        ExpressionAttributeValues: { ':prefix': `${sourceId}#${messageIdPrefix}` },
        ProjectionExpression: 'pk',
        ExclusiveStartKey,
      }),
    );
    for (const item of page.Items ?? []) pks.push(String(item.pk));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return pks.sort();
}

const track = (messageId: string, extra: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId,
  userId: `user-${RUN}`,
  event: 'Product Viewed',
  properties: { category: 'shoes', price: 42.5 },
  timestamp: '2026-11-20T10:00:00.000Z',
  ...extra,
});

describe('POST /v1/batch stores messages exactly once', () => {
  it('stores a batch, then reports the same batch resent as duplicates and stores nothing new', async () => {
    const p = `once-${RUN}-`;
    const batch = {
      sentAt: '2026-11-20T10:00:05.000Z',
      context: { library: { name: 'analytics-node', version: '3.1.0' } },
      batch: [
        track(`${p}1`),
        { type: 'identify', messageId: `${p}2`, userId: `user-${RUN}`, anonymousId: `anon-${RUN}`, traits: { email: 'luis@example.com' } },
        { type: 'page', messageId: `${p}3`, anonymousId: `anon-${RUN}`, name: 'Home', properties: { category: 'home' } },
      ],
    };
    const first = await post('batch', batch);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ success: true, accepted: 3, duplicates: 0, rejected: [] });
    expect(first.headers['x-request-id']).toBeTruthy();
    expect(first.headers['access-control-allow-origin']).toBe('*');

    const { Item } = await documentClient.send(
      new GetCommand({ TableName: config.EVENTS_TABLE, Key: { pk: `${sources.main.id}#${p}1` } }),
    );
    const stored = storedEventSchema.parse(Item);
    expect(stored).toMatchObject({
      profileKey: `u#user-${RUN}`,
      event: 'Product Viewed',
      properties: { category: 'shoes', price: 42.5 },
      context: { library: { name: 'analytics-node', version: '3.1.0' } },
      originalTimestamp: '2026-11-20T10:00:00.000Z',
    });
    // Skew-corrected: five seconds before receipt.
    expect(Date.parse(stored.receivedAt) - Date.parse(stored.timestamp)).toBe(5_000);

    const again = await post('batch', batch);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ success: true, accepted: 0, duplicates: 3, rejected: [] });
    expect(await storedPks(sources.main.id, p)).toEqual([1, 2, 3].map((i) => `${sources.main.id}#${p}${i}`));
  });

  it('accepts the valid messages of a batch and reports the others', async () => {
    const p = `partial-${RUN}-`;
    const hostile = JSON.parse(`{"type":"track","messageId":"${p}4","userId":"u","event":"e","properties":{"__proto__":{"admin":true}}}`);
    const reply = await post('batch', {
      batch: [track(`${p}1`), track(`${p}2`, { userId: undefined }), track(`${p}3`), hostile, track(`${p}1`)],
    });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      success: true,
      accepted: 2,
      duplicates: 1,
      rejected: [
        { index: 1, messageId: `${p}2`, code: 'validation_failed', message: 'batch[1].userId: userId or anonymousId is required' },
        { index: 3, messageId: `${p}4`, code: 'validation_failed', message: 'batch[3].properties.__proto__: forbidden key "__proto__"' },
      ],
    });
    expect(await storedPks(sources.main.id, p)).toEqual([`${sources.main.id}#${p}1`, `${sources.main.id}#${p}3`]);
  });

  it.each(EVENT_ROUTES.filter((r) => r !== 'batch'))('POST /v1/%s takes one message, its type implied', async (route) => {
    const id = `single-${route}-${RUN}`;
    const message = {
      messageId: id,
      userId: `user-${RUN}`,
      event: 'Signed Up',
      previousId: `anon-${RUN}`,
      groupId: 'acme',
      traits: { tier: 'gold' },
    };
    expect((await post(route, message)).body).toEqual({ success: true, accepted: 1, duplicates: 0, rejected: [] });
    expect((await post(route, message)).body).toEqual({ success: true, accepted: 0, duplicates: 1, rejected: [] });
    const { Item } = await documentClient.send(new GetCommand({ TableName: config.EVENTS_TABLE, Key: { pk: `${sources.main.id}#${id}` } }));
    expect(Item?.type).toBe(route);
  });

  it('takes the event route from the route key, not the path: /v1/identify under "POST /v1/t" is a track, under $default or another function\'s key a 404', async () => {
    const id = `route-key-${RUN}`;
    const message = { messageId: id, userId: `user-${RUN}`, event: 'Viewed', traits: { tier: 'gold' } };
    const at = (routeKey: string) =>
      apiGatewayEvent({ method: 'POST', path: '/v1/identify', routeKey, headers: { authorization: basicAuth(sources.main.key) }, body: message });
    for (const key of ['$default', 'POST /v1/decide', 'GET /v1/batch']) {
      const refused = await handler(at(key), lambdaContext());
      expect({ key, status: refused.statusCode, code: JSON.parse(refused.body ?? '{}').error?.code }).toEqual({ key, status: 404, code: 'not_found' });
    }
    expect((await handler(at('POST /v1/t'), lambdaContext())).statusCode).toBe(200);
    const { Item } = await documentClient.send(new GetCommand({ TableName: config.EVENTS_TABLE, Key: { pk: `${sources.main.id}#${id}` } }));
    expect(Item?.type).toBe('track');
  });

  it('accepts the body writeKey that Segment SDKs send instead of Basic auth', async () => {
    const id = `bodykey-${RUN}`;
    const reply = await post('batch', { writeKey: sources.main.key, batch: [track(id)] }, { key: null });
    expect(reply.body).toMatchObject({ accepted: 1 });
  });

  it('any messages, grouped in any batches, sent any number of times, concurrently: each messageId is stored once', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 150 }).chain((distinct) =>
          fc.array(fc.array(fc.nat(distinct - 1), { minLength: 1, maxLength: 230 }), { minLength: 1, maxLength: 4 }),
        ),
        async (requests) => {
          const p = `prop-${RUN}-${run++}-`;
          const replies = await Promise.all(requests.map((ids) => post('batch', { batch: ids.map((i) => track(`${p}${i}`)) })));
          const sentIds = new Set(requests.flat());
          const accepted = replies.reduce((n, r) => n + Number(r.body.accepted), 0);
          const duplicates = replies.reduce((n, r) => n + Number(r.body.duplicates), 0);
          expect(replies.map((r) => r.status)).toEqual(requests.map(() => 200));
          expect(accepted).toBe(sentIds.size);
          expect(accepted + duplicates).toBe(requests.flat().length);
          expect(await storedPks(sources.main.id, p)).toEqual([...sentIds].map((i) => `${sources.main.id}#${p}${i}`).sort());
          // Sending everything again changes nothing.
          const resent = await post('batch', { batch: [...sentIds].map((i) => track(`${p}${i}`)) });
          expect(resent.body).toMatchObject({ accepted: 0, duplicates: sentIds.size });
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('an unmodified Segment SDK (@segment/analytics-node)', () => {
  it('delivers every call type, and its retry after a lost response stores nothing twice', async () => {
    const replies: Reply[] = [];
    const sentIds: string[][] = [];
    const analytics = new Analytics({
      writeKey: sources.main.key,
      host: 'https://kairos.example.com',
      flushAt: 6,
      maxRetries: 3,
      // The SDK's own request (URL, headers, body), delivered as API Gateway would.
      httpClient: async (url, init) => {
        const event = apiGatewayEvent({ method: init.method, path: new URL(url).pathname, headers: init.headers, body: init.body });
        const result = await handler(event, lambdaContext());
        const reply = { status: result.statusCode ?? 0, headers: (result.headers ?? {}) as Record<string, string>, body: JSON.parse(result.body ?? '{}') };
        replies.push(reply);
        sentIds.push((JSON.parse(init.body) as { batch: { messageId: string }[] }).batch.map((m) => m.messageId));
        // The first response is lost on the way back: the SDK sees a 503 and retries the same batch.
        const status = replies.length === 1 ? 503 : reply.status;
        return new Response(result.body, { status, headers: reply.headers });
      },
    });
    const userId = `sdk-user-${RUN}`;
    const anonymousId = `sdk-anon-${RUN}`;
    analytics.page({ anonymousId, name: 'Home', properties: { category: 'home' } });
    analytics.track({ anonymousId, event: 'Product Viewed', properties: { category: 'running', price: 89.9 } });
    analytics.identify({ userId, anonymousId, traits: { email: 'luis@example.com', firstName: 'Luis' } });
    analytics.alias({ userId, previousId: anonymousId });
    analytics.group({ userId, groupId: 'acme', traits: { plan: 'enterprise' } });
    analytics.screen({ userId, name: 'Cart' });
    await analytics.closeAndFlush({ timeout: 10_000 });

    expect(replies.map((r) => r.status)).toEqual([200, 200]);
    expect(replies.map((r) => r.body)).toEqual([
      { success: true, accepted: 6, duplicates: 0, rejected: [] },
      { success: true, accepted: 0, duplicates: 6, rejected: [] },
    ]);
    expect(sentIds[1]).toEqual(sentIds[0]);
    const ids = sentIds[0] ?? [];
    expect(await storedPks(sources.main.id)).toEqual(expect.arrayContaining(ids.map((id) => `${sources.main.id}#${id}`)));
    const { Item } = await documentClient.send(new GetCommand({ TableName: config.EVENTS_TABLE, Key: { pk: `${sources.main.id}#${ids[2]}` } }));
    expect(Item).toMatchObject({ type: 'identify', userId, anonymousId, profileKey: `u#${userId}`, traits: { firstName: 'Luis' } });
    expect(Item?.context).toMatchObject({ library: { name: expect.stringContaining('analytics-node') } });
  });
});

describe('the bodies trackers send', () => {
  const stored = async (messageId: string) =>
    (await documentClient.send(new GetCommand({ TableName: config.EVENTS_TABLE, Key: { pk: `${sources.main.id}#${messageId}` } }))).Item;

  it("RudderStack's node SDK: a gzipped batch typed application/x-www-form-urlencoded is stored", async () => {
    const id = `rudder-gzip-${RUN}`;
    const body = gzipSync(JSON.stringify({ batch: [track(id)], sentAt: new Date().toISOString() }));
    const reply = await post('batch', body, { headers: { 'content-encoding': 'gzip', 'content-type': 'application/x-www-form-urlencoded' } });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ success: true, accepted: 1, duplicates: 0, rejected: [] });
    expect(await stored(id)).toMatchObject({ type: 'track', event: 'Product Viewed' });
  });

  it('a deflated body on a single-message route is stored', async () => {
    const id = `deflate-${RUN}`;
    const body = deflateSync(JSON.stringify({ messageId: id, userId: `user-${RUN}`, traits: { tier: 'gold' } }));
    const reply = await post('identify', body, { headers: { 'content-encoding': 'deflate', 'content-type': 'application/json' } });
    expect(reply.status).toBe(200);
    expect(await stored(id)).toMatchObject({ type: 'identify', traits: { tier: 'gold' } });
  });

  it.each(Object.entries(SHORT_EVENT_ROUTES))(
    "Segment's browser client: POST /v1/%s (text/plain, writeKey in the body, no Authorization) is /v1/%s",
    async (short, long) => {
      const id = `short-${short}-${RUN}`;
      const message = { ...messageFor(long, id), writeKey: sources.main.key, sentAt: new Date().toISOString() };
      const body = long === 'batch' ? { batch: [message], writeKey: sources.main.key } : message;
      const reply = await post(short, JSON.stringify(body), { key: null, headers: { 'content-type': 'text/plain;charset=UTF-8' } });
      expect(reply.status).toBe(200);
      expect(reply.body).toMatchObject({ accepted: 1 });
      expect(await stored(id)).toMatchObject({ type: long === 'batch' ? 'track' : long, messageId: id });
    },
  );

  it('invalid UTF-8 in a body is a 400, never stored with U+FFFD in its place', async () => {
    const id = `bad-utf8-${RUN}`;
    const text = JSON.stringify({ batch: [track(id, { properties: { city: 'MARK' } })] });
    const [before, after] = text.split('MARK') as [string, string];
    const body = Buffer.concat([Buffer.from(before), Buffer.from([0x4d, 0xe1, 0x6c]), Buffer.from(after)]);
    for (const headers of [{ 'content-type': 'application/json' }, { 'content-type': 'text/plain' }]) {
      const reply = await post('batch', body, { headers });
      expect(reply.status).toBe(400);
      expect(reply.body.error).toMatchObject({ code: 'invalid_json', message: expect.stringContaining('UTF-8') });
    }
    const gzipped = await post('batch', gzipSync(body), { headers: { 'content-encoding': 'gzip' } });
    expect(gzipped.status).toBe(400);
    expect(await stored(id)).toBeUndefined();
  });

  it('a decompression bomb is a 413 (the 500 KB limit applies to the decompressed body)', async () => {
    const prefix = JSON.stringify({ batch: [track(`bomb-${RUN}`, { properties: { pad: 'PAD' } })] }).split('PAD');
    const body = gzipSync(Buffer.concat([Buffer.from(prefix[0] ?? ''), Buffer.alloc(64 * 1024 * 1024, 0x61), Buffer.from(prefix[1] ?? '')]));
    expect(body.length).toBeLessThan(500 * 1024);
    const reply = await post('batch', body, { headers: { 'content-encoding': 'gzip', 'content-type': 'application/json' } });
    expect(reply.status).toBe(413);
    expect(reply.body.error).toMatchObject({ code: 'payload_too_large' });
    expect(reply.headers['access-control-allow-origin']).toBe('*');
  });

  it('an unknown content coding is a 415', async () => {
    const reply = await post('batch', Buffer.from('{}'), { headers: { 'content-encoding': 'zstd' } });
    expect(reply.status).toBe(415);
    expect(reply.body.error).toMatchObject({ code: 'unsupported_media_type' });
  });
});

const oneMegabyte = 'x'.repeat(1024 * 1024);
/** `{"a":{"a":…}}` as text: too deep for JSON.stringify on a worker's stack. */
const deepText = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

/** A message for the route, with `extra` merged in. */
function messageFor(route: string, tag: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...(route === 'batch' ? { type: 'track' } : {}),
    messageId: tag,
    userId: `hostile-${RUN}`,
    event: 'Product Viewed',
    previousId: 'p',
    groupId: 'g',
    ...extra,
  };
}
const wrap = (route: string, message: unknown) => (route === 'batch' ? { batch: [message] } : message);

interface HostileCase {
  readonly name: string;
  readonly routes?: readonly string[];
  readonly status: number;
  readonly code: string;
  /**
   * A problem of the message, not of the request: on /v1/batch it is answered
   * 200 with `accepted: 0` and the message in `rejected[]`, as beside a valid one.
   */
  readonly perMessage?: boolean;
  /** The message's code in `rejected[]` when it differs from `code`. */
  readonly rejectedCode?: string;
  /** The field the refusal must name (its last path part), when the case pins it. */
  readonly field?: string;
  readonly send: (route: string, tag: string) => Promise<Reply>;
}

const hostileCases: HostileCase[] = [
  {
    name: 'malformed JSON',
    status: 400,
    code: 'invalid_json',
    send: (route) => post(route, '{"batch": [{"type": "track",', { key: sources.hostile.key, headers: { 'content-type': 'application/json' } }),
  },
  {
    name: 'a body that is not JSON',
    status: 415,
    code: 'unsupported_media_type',
    send: (route) => post(route, '<track/>', { key: sources.hostile.key, headers: { 'content-type': 'application/xml' } }),
  },
  {
    name: 'wrong types',
    status: 400,
    code: 'validation_failed',
    send: (route, tag) =>
      post(route, route === 'batch' ? { batch: { 0: messageFor(route, tag) } } : messageFor(route, tag, { userId: { id: 1 }, properties: 'x', traits: [] }), {
        key: sources.hostile.key,
      }),
  },
  {
    name: 'a JSON array body',
    status: 400,
    code: 'validation_failed',
    send: (route, tag) => post(route, [messageFor(route, tag)], { key: sources.hostile.key }),
  },
  {
    name: 'an oversize body (600 KB)',
    status: 413,
    code: 'payload_too_large',
    send: (route, tag) => post(route, wrap(route, messageFor(route, tag, { properties: { blob: 'x'.repeat(600 * 1024) } })), { key: sources.hostile.key }),
  },
  {
    name: 'too many messages',
    routes: ['batch'],
    status: 400,
    code: 'validation_failed',
    send: (route, tag) =>
      post(route, { batch: Array.from({ length: 501 }, (_, i) => messageFor(route, `${tag}-${i}`)) }, { key: sources.hostile.key }),
  },
  {
    name: 'no write key',
    status: 401,
    code: 'unauthorized',
    send: (route, tag) => post(route, wrap(route, messageFor(route, tag)), { key: null }),
  },
  {
    name: 'an unknown write key',
    status: 401,
    code: 'unauthorized',
    send: (route, tag) => post(route, wrap(route, messageFor(route, tag)), { key: `wk_unknown_${RUN}` }),
  },
  {
    name: 'a malformed Authorization header',
    status: 401,
    code: 'unauthorized',
    send: (route, tag) => post(route, wrap(route, messageFor(route, tag)), { key: null, headers: { authorization: 'Basic !!!' } }),
  },
  {
    name: 'control characters in ids',
    perMessage: true,
    status: 400,
    code: 'validation_failed',
    send: (route, tag) => post(route, wrap(route, messageFor(route, tag, { userId: 'evil\u0000id', anonymousId: 'a\r\nb' })), { key: sources.hostile.key }),
  },
  {
    name: 'a userId of only spaces',
    perMessage: true,
    status: 400,
    code: 'validation_failed',
    field: 'userId',
    send: (route, tag) => post(route, wrap(route, messageFor(route, tag, { userId: '   ' })), { key: sources.hostile.key }),
  },
  {
    name: 'a control character in the messageId',
    perMessage: true,
    status: 400,
    code: 'validation_failed',
    send: (route, tag) => post(route, wrap(route, messageFor(route, `${tag}\u001b[31m`)), { key: sources.hostile.key }),
  },
  {
    name: 'a 1 MB string',
    status: 413,
    code: 'payload_too_large',
    send: (route, tag) => post(route, wrap(route, messageFor(route, tag, { userId: oneMegabyte })), { key: sources.hostile.key }),
  },
  {
    name: 'a message over 32 KB',
    perMessage: true,
    rejectedCode: 'payload_too_large',
    status: 400,
    code: 'validation_failed',
    send: (route, tag) => post(route, wrap(route, messageFor(route, tag, { context: { blob: 'x'.repeat(40_000) } })), { key: sources.hostile.key }),
  },
  {
    // Deeper than any body may nest (64 levels): the whole request is refused, on the batch route too.
    name: 'nesting 5,000 levels deep',
    perMessage: false,
    status: 400,
    code: 'validation_failed',
    send: (route, tag) =>
      post(route, JSON.stringify(wrap(route, messageFor(route, tag, { properties: 'DEEP' }))).replace('"DEEP"', deepText(5_000)), {
        key: sources.hostile.key,
        headers: { 'content-type': 'application/json' },
      }),
  },
  {
    // Within the body's bound but deeper than a message's 10 levels: refused per message.
    name: 'a message nesting 20 levels deep',
    perMessage: true,
    status: 400,
    code: 'validation_failed',
    send: (route, tag) =>
      post(route, JSON.stringify(wrap(route, messageFor(route, tag, { properties: 'DEEP' }))).replace('"DEEP"', deepText(20)), {
        key: sources.hostile.key,
        headers: { 'content-type': 'application/json' },
      }),
  },
  {
    name: '__proto__ keys',
    perMessage: true,
    status: 400,
    code: 'validation_failed',
    send: (route, tag) =>
      post(route, JSON.stringify(wrap(route, messageFor(route, tag))).replace('"event"', '"__proto__":{"polluted":true},"event"'), {
        key: sources.hostile.key,
        headers: { 'content-type': 'application/json' },
      }),
  },
  {
    name: 'a constructor.prototype chain in the batch context',
    routes: ['batch'],
    status: 400,
    code: 'validation_failed',
    send: (route, tag) =>
      post(route, `{"context":{"constructor":{"prototype":{"polluted":true}}},"batch":[${JSON.stringify(messageFor(route, tag))}]}`, {
        key: sources.hostile.key,
        headers: { 'content-type': 'application/json' },
      }),
  },
  {
    name: 'a number the store cannot hold',
    perMessage: true,
    status: 400,
    code: 'validation_failed',
    send: (route, tag) => post(route, wrap(route, messageFor(route, tag, { properties: { n: 1e300 } })), { key: sources.hostile.key }),
  },
];

describe('bad input on every ingest route: a clear 4xx, never a 500, nothing stored', () => {
  const table = EVENT_ROUTES.flatMap((route) =>
    hostileCases.filter((c) => !c.routes || c.routes.includes(route)).map((c) => ({ route, ...c })),
  );
  it.each(table.filter((c) => !(c.route === 'batch' && c.perMessage)))('POST /v1/$route with $name → $status $code', async ({ route, name, status, code, field, send }) => {
    const tag = `hostile-${RUN}-${route}-${name.replace(/\W+/g, '-')}`;
    const reply = await send(route, tag);
    expect(reply.status).toBe(status);
    expect(reply.body.error).toMatchObject({ code, message: expect.any(String) });
    expect(Object.keys(reply.body)).toEqual(['error']);
    expect(reply.headers['x-request-id']).toMatch(/\S/);
    // A validation failure says what and where.
    expect(code !== 'validation_failed' || (reply.body.error?.details?.length ?? 0) > 0).toBe(true);
    const paths = ((reply.body.error?.details ?? []) as { path: string }[]).map((d) => d.path);
    expect(paths.filter((path) => path === field)).toHaveLength(field === undefined ? 0 : 1);
    expect(await storedPks(sources.hostile.id)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it.each(hostileCases.filter((c) => c.perMessage))(
    'POST /v1/batch whose only message has $name → 200, accepted 0, the message in rejected[] ($code)',
    async ({ name, code, rejectedCode, field, send }) => {
      const tag = `hostile-${RUN}-batch-only-${name.replace(/\W+/g, '-')}`;
      const reply = await send('batch', tag);
      expect(reply.status).toBe(200);
      expect(reply.body).toMatchObject({
        success: true,
        accepted: 0,
        duplicates: 0,
        rejected: [{ index: 0, code: rejectedCode ?? code, message: expect.any(String) }],
      });
      expect(reply.body.rejected).toHaveLength(1);
      const message = (reply.body.rejected as { message: string }[])[0]?.message ?? '';
      expect(message).toMatch(field === undefined ? /^batch\[0\]/ : new RegExp(`^batch\\[0\\]\\.${field}: `));
      expect(await storedPks(sources.hostile.id)).toEqual([]);
    },
  );

  it('arbitrary JSON on any route never yields a 5xx, and every 4xx has the error shape', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...EVENT_ROUTES), fc.jsonValue({ maxDepth: 6 }), async (route, body) => {
        const reply = await post(route, body ?? null, { key: sources.fuzz.key });
        expect(reply.status).toBeLessThan(500);
        expect(reply.headers['x-request-id']).toMatch(/\S/);
        expect(reply.status === 200 ? reply.body.success : reply.body.error?.code).toBeTruthy();
      }),
      { numRuns: 150 },
    );
  });
});
