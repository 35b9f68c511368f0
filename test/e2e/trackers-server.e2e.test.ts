/**
 * Server and mobile trackers against the local stack, checked on the PROFILE
 * (GET /v1/admin/profiles/{id}), not only on the status:
 * - the unmodified `@rudderstack/rudder-sdk-node` with its default options
 *   (gzipped bodies typed application/x-www-form-urlencoded);
 * - a RudderStack mobile SDK's offline backlog (originalTimestamp and a
 *   per-message sentAt), as its SDKs send it;
 * - RudderStack's JS SDKs' identify, whose traits are only in context.traits;
 * - a batch whose messages are all refused;
 * - a preflight header the operator added (KAIROS_CORS_ALLOW_HEADERS).
 */
import Analytics from '@rudderstack/rudder-sdk-node';
import { describe, expect, it } from 'vitest';
import { useLocalStack } from '../support/stack.ts';
import { call, countOf, daysAgo, uniqueId, waitForProfile, type BatchResult, type StackAccess } from './fixtures/kairos.ts';

// Read by the handlers when the stack loads them (as KAIROS_CORS_ORIGINS is).
process.env.KAIROS_CORS_ALLOW_HEADERS = 'X-Shop-Session';

let api: StackAccess;
useLocalStack((_stack, access) => {
  api = { ...access, baseUrl: access.baseUrl.replace(/\/$/, '') };
});

describe('@rudderstack/rudder-sdk-node with its default options', () => {
  it('gzips its batches; identify traits, an order dated by originalTimestamp and a page reach the profile', async () => {
    const userId = uniqueId('rudder-node');
    const errors: unknown[] = [];
    // Nothing but the write key and the data plane URL: gzip on, retries on, default flush settings.
    const client = new Analytics(api.writeKey, { dataPlaneUrl: api.baseUrl, logLevel: 'error', errorHandler: (error: unknown) => errors.push(error) });
    const twoDaysAgo = daysAgo(2);
    client.identify({ userId, traits: { firstName: 'Lucía', tier: 'gold' } });
    // The SDK keeps a message's own originalTimestamp (its typings omit the field).
    const order = { userId, event: 'Order Completed', properties: { revenue: 80, products: [{ category: 'shoes' }] }, originalTimestamp: twoDaysAgo };
    client.track(order as Parameters<typeof client.track>[0]);
    client.page({ userId, name: 'Home', properties: { category: 'shoes' } });
    await client.flush();
    expect(errors).toEqual([]);

    const profile = await waitForProfile(api, userId, (p) => p.stats.orders === 1 && p.stats.visitsTotal === 1 && p.traits.tier === 'gold');
    expect(profile.traits).toMatchObject({ firstName: 'Lucía', tier: 'gold' });
    expect(profile.stats.revenue).toBe(80);
    // The order is dated by its originalTimestamp (skew-corrected), not by its arrival.
    expect(Math.abs(Date.parse(profile.stats.lastPurchaseAt ?? '') - Date.parse(twoDaysAgo))).toBeLessThan(60_000);
    expect(profile.stats.visitsToday).toBe(1);
  });
});

describe('a mobile offline backlog (RudderStack Android/iOS)', () => {
  it('a screen and an order from two days ago, flushed now, are dated two days ago', async () => {
    const anonymousId = uniqueId('mobile');
    const userId = uniqueId('mobile-user');
    // The device clock runs 7 minutes slow; each message carries its own sentAt (when the
    // SDK flushed it), the batch another; no message has a timestamp.
    const deviceNow = Date.now() - 7 * 60_000;
    const twoDaysAgo = new Date(deviceNow - 2 * 86_400_000).toISOString();
    const flushedAt = new Date(deviceNow - 500).toISOString();
    const message = (extra: Record<string, unknown>) => ({
      messageId: uniqueId('m'),
      anonymousId,
      userId,
      originalTimestamp: twoDaysAgo,
      sentAt: flushedAt,
      channel: 'mobile',
      context: { library: { name: 'com.rudderstack.android.sdk.core', version: '1.25.1' }, os: { name: 'Android' } },
      ...extra,
    });
    const body = {
      sentAt: new Date(deviceNow).toISOString(),
      batch: [
        message({ type: 'screen', name: 'Home', properties: { category: 'shoes' } }),
        message({ type: 'track', event: 'Order Completed', properties: { revenue: 35 } }),
      ],
    };
    const result = await call<BatchResult>(api, 'POST', '/v1/batch', { auth: 'write', body });
    expect(result.status).toBe(200);
    expect(result.json).toMatchObject({ accepted: 2, rejected: [] });

    const profile = await waitForProfile(api, userId, (p) => p.stats.orders === 1 && p.stats.visitsTotal === 1);
    // Corrected for the slow clock: two days before receipt, give or take the request's own time.
    const expected = Date.now() - 2 * 86_400_000;
    expect(Math.abs(Date.parse(profile.stats.lastPurchaseAt ?? '') - expected)).toBeLessThan(5 * 60_000);
    expect(profile.stats.visitsToday).toBe(0);
  });
});

describe("RudderStack's JS SDKs: identify traits only in context.traits", () => {
  it('fills the profile traits, the top-level traits winning a conflict', async () => {
    const userId = uniqueId('rudder-js');
    const identifyMessage = (extra: Record<string, unknown>) => ({ messageId: uniqueId('m'), userId, anonymousId: uniqueId('anon'), ...extra });
    const onlyContext = await call(api, 'POST', '/v1/identify', {
      auth: 'write',
      body: identifyMessage({ context: { traits: { firstName: 'Luis', tier: 'gold', email: 'luis@example.com' } } }),
    });
    expect(onlyContext.status).toBe(200);
    await waitForProfile(api, userId, (p) => p.traits.tier === 'gold');
    const both = await call(api, 'POST', '/v1/identify', {
      auth: 'write',
      body: identifyMessage({ traits: { tier: 'vip' }, context: { traits: { tier: 'silver', city: 'Madrid' } } }),
    });
    expect(both.status).toBe(200);
    const profile = await waitForProfile(api, userId, (p) => p.traits.city === 'Madrid');
    expect(profile.traits).toMatchObject({ firstName: 'Luis', email: 'luis@example.com', tier: 'vip', city: 'Madrid' });
  });
});

describe('a batch whose messages are all refused', () => {
  it('is a 200 with accepted 0 and every message in rejected[], like a partly valid batch, and changes nothing', async () => {
    const userId = uniqueId('all-invalid');
    const batch = [
      { type: 'track', messageId: uniqueId('m'), userId },
      { type: 'track', messageId: uniqueId('m'), event: 'Order Completed' },
      { type: 'shout', messageId: uniqueId('m'), userId, event: 'x' },
    ];
    const result = await call<BatchResult>(api, 'POST', '/v1/batch', { auth: 'write', body: { batch } });
    expect(result.status).toBe(200);
    expect(result.json).toMatchObject({ success: true, accepted: 0, duplicates: 0 });
    expect(result.json.rejected.map((r) => [r.index, r.messageId, r.code])).toEqual(batch.map((m, i) => [i, m.messageId, 'validation_failed']));
    // The same message beside a valid one: the same rejection, the other stored.
    const mixed = await call<BatchResult>(api, 'POST', '/v1/batch', {
      auth: 'write',
      body: { batch: [batch[0], { type: 'track', messageId: uniqueId('m'), userId, event: 'Product Viewed' }] },
    });
    expect(mixed.json).toMatchObject({ accepted: 1, rejected: [{ index: 0, code: 'validation_failed', message: result.json.rejected[0]?.message }] });
    const profile = await waitForProfile(api, userId, (p) => countOf(p, 'Product Viewed') === 1);
    expect(profile.stats.orders).toBe(0);
    // An unusable envelope is still a 400.
    const envelope = await call(api, 'POST', '/v1/batch', { auth: 'write', body: { batch: 'none' } });
    expect(envelope.status).toBe(400);
  });
});

describe('CORS allowed headers are configurable', () => {
  it('the preflight allows a header the operator added, besides the built-in ones', async () => {
    const result = await call(api, 'OPTIONS', '/v1/t', {
      headers: { origin: 'https://shop.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-shop-session,traceparent' },
    });
    expect(result.status).toBe(204);
    const allowed = (result.headers.get('access-control-allow-headers') ?? '').split(',');
    expect(allowed).toEqual(expect.arrayContaining(['x-shop-session', 'traceparent', 'authorization', 'x-kairos-user-token']));
  });
});
