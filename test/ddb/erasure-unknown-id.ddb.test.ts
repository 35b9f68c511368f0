/**
 * `DELETE /v1/admin/profiles/{id}` of an id that names nobody, on DynamoDB
 * Local through the admin handler: a 404 that writes nothing (API standard:
 * bad input gets a clear 4xx and changes nothing). Before, the erasure was
 * claimed first (an erasure record at `u#<id>`, kept for good) and the 404
 * came after: from then on the `?kind=` hints took the id for a former user.
 * A customer who later gets that id is found, and erased, as any other.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { anonymousProfileKey, userProfileKey } from '#domain/stored-event.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

const ADMIN_TOKEN = 'admin-token-for-erasure-unknown-id-tests';
vi.stubEnv('KAIROS_ADMIN_TOKEN', ADMIN_TOKEN);
vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const { handler } = await import('#functions/admin/handler.ts');
const { processStreamEvent } = await import('#functions/profile/handler.ts');
const { documentClient } = await import('../support/sdk-clients.ts');
const { config } = await import('#shared/config.ts');
const { erasureRecordItem } = await import('#store/items.ts');

const run = Date.now().toString(36);

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

async function call(method: string, path: string) {
  const event = apiGatewayEvent({ method, path, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const response = (await handler(event, lambdaContext())) as APIGatewayProxyStructuredResultV2;
  return { status: response.statusCode, body: response.body ? JSON.parse(response.body) : undefined };
}

/** The Profiles item at `pk`, read consistently. */
async function profilesItem(pk: string) {
  return (await documentClient.send(new GetCommand({ TableName: config.PROFILES_TABLE, Key: { pk }, ConsistentRead: true }))).Item;
}

/** Every item an id could have left in the Profiles table: its profiles and their erasure records. */
async function itemsOf(id: string) {
  const keys = [userProfileKey(id), anonymousProfileKey(id)];
  const pks = [...keys, ...keys.map((key) => erasureRecordItem.key(key).pk)];
  return (await Promise.all(pks.map(profilesItem))).filter((item) => item !== undefined);
}

describe('DELETE /v1/admin/profiles/{id} of an id that names nobody', () => {
  it('is a 404 that writes nothing: the ?kind= hints stay silent, and a customer who later has the id is found and erased as any other', async () => {
    const id = `nobody-${run}`;
    const path = `/v1/admin/profiles/${id}`;
    const refused = await call('DELETE', path);
    expect(refused).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: 'No profile and no events for this id' } } });
    expect(await itemsOf(id)).toEqual([]);
    // As an anonymous id, it is not said to be a userId (no record says it was one).
    expect(await call('GET', `${path}?kind=anonymous`)).toMatchObject({ status: 404, body: { error: { message: 'No profile for this id' } } });
    // The same as an anonymous id: nothing written either.
    expect((await call('DELETE', `${path}?kind=anonymous`)).status).toBe(404);
    expect(await itemsOf(id)).toEqual([]);

    // Later, a customer with that userId: found, erased as a first erasure, gone.
    const event = storedEvent({ type: 'identify', userId: id, messageId: `${id}-1`, timestamp: new Date().toISOString(), sourceId: `s-${run}`, traits: { firstName: 'Rosa' } });
    await documentClient.send(new PutCommand({ TableName: config.EVENTS_TABLE, Item: event }));
    expect((await processStreamEvent(streamEvent([streamRecord(event, { sequenceNumber: sequenceNumber(1) })]))).batchItemFailures).toEqual([]);
    expect(await call('GET', path)).toMatchObject({ status: 200, body: { profile: { userId: id, traits: { firstName: 'Rosa' } } } });
    const erased = await call('DELETE', path);
    expect(erased).toMatchObject({ status: 200, body: { resumed: false, customer: { userId: id, anonymousIds: [] }, events: 1 } });
    expect(erased.body.previousErasedAt).toBeUndefined();
    expect((await call('GET', path)).status).toBe(404);
    // The erasure's own record is kept (it says the id was a userId); a DELETE now changes nothing and is a 404.
    const record = await profilesItem(erasureRecordItem.key(userProfileKey(id)).pk);
    expect(record).toMatchObject({ kind: 'erasure', erasedAt: erased.body.erasedAt });
    expect((await call('DELETE', path)).status).toBe(404);
    expect(await profilesItem(erasureRecordItem.key(userProfileKey(id)).pk)).toEqual(record);
  });
});
