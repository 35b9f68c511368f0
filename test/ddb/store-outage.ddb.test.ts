/**
 * Decide through a store that stops answering (the process's client sent
 * to a server that accepts requests and never answers, as a frozen DynamoDB
 * would; they end at their deadline): the write key and the live catalog
 * are served stale from cache, for KAIROS_STALE_MAX_SECONDS at most, and
 * every answer is a degraded decision under the request's deadline, never an
 * error for a known key. The clock is moved with fake Date only; the
 * requests' deadlines run on real timers.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  process.env.POWERTOOLS_LOG_LEVEL = 'CRITICAL';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.KAIROS_DECIDE_DEADLINE_MS = '400';
  process.env.KAIROS_STALE_MAX_SECONDS = '600';
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler } from '#functions/decide/handler.ts';
import { authenticateWriteKey, clearWriteKeyCache, WRITE_KEY_CACHE_SIZE } from '#http/auth.ts';
import type { HttpRequest } from '#http/handler-adapter.ts';
import { putWriteKey } from '#store/write-keys.ts';
import { dynamo } from '#store/client.ts';
import { liveCatalogStatus, refreshLiveCatalog } from '#store/catalog-live.ts';
import { apiGatewayEvent, basicAuth, lambdaContext } from '../support/apigw.ts';
import { silentEndpoint, type SilentEndpoint } from '../support/store-faults.ts';

const KEY = `wk_outage_${Date.now().toString(36)}`;

let silent: SilentEndpoint | undefined;

async function freeze(): Promise<void> {
  silent = await silentEndpoint();
  dynamo().useEndpoint(silent.endpoint);
}

async function thaw(): Promise<void> {
  dynamo().useEndpoint(undefined);
  await silent?.close();
  silent = undefined;
}

async function post(key = KEY) {
  const result = await handler(
    apiGatewayEvent({ method: 'POST', path: '/v1/decide', headers: { authorization: basicAuth(key) }, body: { userId: 'u-outage', channel: 'web' } }),
    lambdaContext(),
  );
  return { status: result.statusCode ?? 0, body: JSON.parse(result.body || '{}') as Record<string, unknown> };
}

/** A decide answered 200 and not degraded (what a warm process gives while the store answers). */
const usable = async () => {
  const reply = await post();
  return reply.status === 200 && reply.body.degraded === undefined;
};

beforeAll(async () => {
  await putWriteKey(KEY, { keyId: 'src-outage', name: 'outage tests', kind: 'server', createdAt: new Date().toISOString() });
});

afterEach(async () => {
  await thaw();
  clearWriteKeyCache();
  vi.useRealTimers();
});

describe('decide while the store does not answer', () => {
  it('serves the cached write key and catalog stale, degraded, until KAIROS_STALE_MAX_SECONDS', async () => {
    // Warm: key and catalog cached (a cold start on a loaded machine may miss the short deadline: ask again).
    let warm = await post();
    for (let attempt = 0; attempt < 30 && !(warm.status === 200 && warm.body.degraded === undefined); attempt++) warm = await post();
    expect(warm.status).toBe(200);
    expect(warm.body).not.toHaveProperty('degraded');
    expect(liveCatalogStatus().state).toBe('fresh');
    vi.useFakeTimers({ toFake: ['Date'] });
    await freeze();

    vi.setSystemTime(Date.now() + 60_000); // past the key's 30 s freshness and the catalog's 5 s check
    const stale = await post();
    expect(stale).toMatchObject({ status: 200, body: { degraded: true } });
    await refreshLiveCatalog().catch(() => undefined); // the background check fails under its own deadline
    expect(liveCatalogStatus().state).toBe('stale');
    expect(await post()).toMatchObject({ status: 200, body: { degraded: true } });

    vi.setSystemTime(Date.now() + 601_000); // past KAIROS_STALE_MAX_SECONDS since the store last answered
    expect(liveCatalogStatus().state).toBe('unknown');
    const tooOld = await post();
    expect(tooOld.status).toBe(503);
    expect(tooOld.body).toEqual({ error: { code: 'unavailable', message: expect.any(String) } });

    expect(silent?.connections()).toBeGreaterThan(0);
    vi.useRealTimers();
    await thaw();
    await refreshLiveCatalog();
    expect(liveCatalogStatus().state).toBe('fresh');
    let recovered = await usable();
    for (let attempt = 0; attempt < 30 && !recovered; attempt++) recovered = await usable();
    expect(recovered).toBe(true); // 200 and not degraded once the store answers again
  });

  it('keeps serving a known key stale after more unknown keys than the cache holds were tried (they do not evict it)', async () => {
    let warm = await post();
    for (let attempt = 0; attempt < 30 && !(warm.status === 200 && warm.body.degraded === undefined); attempt++) warm = await post();
    expect(warm).toMatchObject({ status: 200 });
    // Anyone can send made-up keys: each is looked up once and remembered as unknown.
    const unknown = Array.from({ length: WRITE_KEY_CACHE_SIZE + 10 }, (_, i) => `wk_made_up_${i}_${Date.now().toString(36)}`);
    for (let i = 0; i < unknown.length; i += 50) {
      const refused = await Promise.all(
        unknown.slice(i, i + 50).map((key) =>
          authenticateWriteKey({ headers: { authorization: basicAuth(key) }, body: undefined } as unknown as HttpRequest, { deadline: Date.now() + 10_000 }).then(
            () => 'accepted',
            (error: { code?: string }) => error.code,
          ),
        ),
      );
      expect(new Set(refused)).toEqual(new Set(['unauthorized']));
    }
    vi.useFakeTimers({ toFake: ['Date'] });
    await freeze();
    vi.setSystemTime(Date.now() + 60_000); // past the key's 30 s freshness: only the cached record can say
    expect(await post()).toMatchObject({ status: 200, body: { degraded: true } });
  });

  it('a key the process has not seen is a 503 (not a 401) while the store cannot say', async () => {
    await freeze();
    const reply = await post(`${KEY}_unseen`);
    expect(reply.status).toBe(503);
  });
});
