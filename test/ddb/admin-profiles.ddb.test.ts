/**
 * GET /v1/admin/profiles/{userId} on DynamoDB Local: operator auth, input
 * checks, and the profile with its last 50 events across linked ids.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { StoredEvent } from '#domain/stored-event.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';

const ADMIN_TOKEN = 'admin-token-for-tests-0123456789';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const { handler } = await import('#functions/admin/handler.ts');
const { processStreamEvent } = await import('#functions/profile/handler.ts');
const { documentClient } = await import('../support/sdk-clients.ts');
const { putWriteKey } = await import('#store/write-keys.ts');
const { config } = await import('#shared/config.ts');

const context = { functionName: 'admin', awsRequestId: 'test' } as Context;
const run = Date.now().toString(36);
const userId = `admin-u-${run}`;
const anonymousId = `admin-a-${run}`;
const WRITE_KEY = `wk_admin_test_${run}`;

function request(path: string, headers: Record<string, string> = {}, routeKey = 'GET /v1/admin/profiles/{userId}'): APIGatewayProxyEventV2 {
  const raw = path.split('/').pop() ?? '';
  return {
    version: '2.0',
    routeKey,
    rawPath: path,
    rawQueryString: '',
    headers,
    pathParameters: routeKey.includes('{userId}') ? { userId: decodeURIComponent(raw) } : undefined,
    isBase64Encoded: false,
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: 'localhost',
      domainPrefix: 'localhost',
      http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
      requestId: `req-${Math.random()}`,
      routeKey,
      stage: '$default',
      time: '',
      timeEpoch: 0,
    },
  } as APIGatewayProxyEventV2;
}

const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
async function call(event: APIGatewayProxyEventV2) {
  const response = (await handler(event, context)) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined, headers: response.headers };
}
const profilePath = (id: string) => `/v1/admin/profiles/${encodeURIComponent(id)}`;

beforeAll(async () => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
  await putWriteKey(WRITE_KEY, { keyId: `key-${run}`, name: 'test', createdAt: new Date().toISOString() });
  // 40 anonymous page views, then identify, then 30 orders: 71 events, as ingest stores them.
  const events: StoredEvent[] = [];
  const at = (minute: number) => new Date(Date.parse('2026-04-01T00:00:00Z') + minute * 60_000).toISOString();
  for (let i = 0; i < 40; i++) events.push(storedEvent({ type: 'page', anonymousId, messageId: `p${i}`, timestamp: at(i), sourceId: `s-${run}` }));
  events.push(storedEvent({ type: 'identify', userId, anonymousId, messageId: 'id', timestamp: at(40), traits: { firstName: 'Luis' }, sourceId: `s-${run}` }));
  for (let i = 0; i < 30; i++) {
    events.push(storedEvent({ type: 'track', userId, event: 'Order Completed', messageId: `o${i}`, timestamp: at(41 + i), properties: { revenue: 2 }, sourceId: `s-${run}` }));
  }
  for (const event of events) await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
  const response = await processStreamEvent(streamEvent(events.map((e, i) => streamRecord(e, { sequenceNumber: sequenceNumber(i) }))));
  if (response.batchItemFailures.length > 0) throw new Error('The seed events were not all applied');
});

describe('GET /v1/admin/profiles/{userId}', () => {
  it('401 without a credential, 401 with a wrong token, 403 with a write key', async () => {
    const missing = await call(request(profilePath(userId)));
    expect(missing.body.error).toEqual({ code: 'unauthorized', message: 'Operator credentials are required: Authorization: Bearer <admin token> (npm start prints it)' });
    const wrong = await call(request(profilePath(userId), { authorization: 'Bearer wrong-token-wrong-token' }));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toEqual({ code: 'unauthorized', message: "The bearer token is not this stack's admin token (npm start prints it)" });
    const basic = `Basic ${Buffer.from(`${WRITE_KEY}:`).toString('base64')}`;
    const forbidden = await call(request(profilePath(userId), { authorization: basic }));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.error.code).toBe('forbidden');
  });

  it('404 for an unknown customer and for a route the function does not serve', async () => {
    const unknown = await call(request(profilePath(`nobody-${run}`), admin));
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('not_found');
    expect((await call(request('/v1/admin/nothing', admin, 'GET /v1/admin/nothing'))).status).toBe(404);
  });

  it('400 naming userId for a malformed percent-encoding in the raw path, as API Gateway passes it on', async () => {
    const event = { ...request(profilePath('x'), admin), rawPath: '/v1/admin/profiles/%ff', pathParameters: { userId: '%ff' } };
    const reply = await call(event);
    expect(reply.status).toBe(400);
    expect(reply.body.error).toMatchObject({ code: 'validation_failed', details: [{ path: 'userId', message: expect.stringContaining('"%ff"') }] });
  });

  it('400 for an id that is too long or holds control characters', async () => {
    for (const id of ['x'.repeat(257), 'bad\u0000id', 'line\nbreak', 'c1\u0085control']) {
      const response = await call(request(profilePath(id), admin));
      expect(response.status).toBe(400);
      expect(response.body.error).toMatchObject({ code: 'validation_failed', details: [{ path: 'userId' }] });
    }
  });

  it('400 for an id the events refuse too: blank, or not Unicode (a lone surrogate), with the events\' message', async () => {
    const blank = await call(request(profilePath('   '), admin));
    expect(blank.status).toBe(400);
    expect(blank.body.error).toMatchObject({ code: 'validation_failed', details: [{ path: 'userId', message: 'must not be blank (only whitespace)' }] });
    const lone = { ...request(profilePath('x'), admin), pathParameters: { userId: 'a\ud800' } };
    const notUnicode = await call(lone);
    expect(notUnicode.status).toBe(400);
    expect(notUnicode.body.error).toMatchObject({ code: 'validation_failed', details: [{ path: 'userId' }] });
  });

  it('names an id with invisible or bidirectional characters, which events now refuse but may have stored before (to read, export, erase it)', async () => {
    for (const id of [`zw-${run}\u200b`, `rlo-\u202e${run}`]) {
      const response = await call(request(profilePath(id), admin));
      expect({ id, status: response.status, body: response.body }).toMatchObject({ id, status: 404, body: { error: { code: 'not_found' } } });
    }
  });

  it('200: the profile and its last 50 events, newest first, across the user and its anonymous ids', async () => {
    const response = await call(request(profilePath(userId), admin));
    expect(response.status).toBe(200);
    expect(response.headers?.['access-control-allow-origin']).toBeUndefined();
    const { profile, events } = response.body;
    expect(profile).toMatchObject({ userId, anonymousIds: [anonymousId], identified: true, traits: { firstName: 'Luis' } });
    expect(profile.stats).toMatchObject({ visitsTotal: 40, orders: 30, revenue: 60 });
    expect(events).toHaveLength(50);
    expect(events[0]).toMatchObject({ messageId: 'o29', type: 'track', event: 'Order Completed', userId });
    expect(events[0]).not.toHaveProperty('pk');
    const times = events.map((e: { timestamp: string }) => e.timestamp);
    expect([...times].sort().reverse()).toEqual(times);
    // 30 orders + identify + the 19 newest anonymous page views.
    expect(events.filter((e: { anonymousId?: string; userId?: string }) => e.anonymousId === anonymousId && !e.userId)).toHaveLength(19);
    // The merged anonymous id, named as an anonymousId, finds the same customer; named as a userId, nobody.
    const asAnonymous = { ...request(profilePath(anonymousId), admin), rawQueryString: 'kind=anonymous', queryStringParameters: { kind: 'anonymous' } };
    expect((await call(asAnonymous)).body.profile.userId).toBe(userId);
    expect((await call(request(profilePath(anonymousId), admin))).status).toBe(404);
  });
});
