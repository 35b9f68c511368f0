/**
 * The decide handler on DynamoDB Local: one DynamoDB call per warm
 * decision, the profile joined from userId and anonymousId (as the store's
 * the store's resolveProfile joins it), a degraded decision when the store fails or is
 * slow (a refused connection and a server that never answers, real; a 500
 * and throttling, which DynamoDB Local cannot produce, from aws-lite's
 * testing mocks), bad input answered with a 4xx and never a 500, and
 * simulate for operators only.
 */
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';

await vi.hoisted(async () => {
  // Its own Control table (createOwnControlTable): the catalog this file publishes is live for it alone.
  process.env.CONTROL_TABLE = `decide-${Date.now().toString(36)}-control`;
  process.env.POWERTOOLS_LOG_LEVEL = 'ERROR';
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  process.env.KAIROS_ADMIN_TOKEN = 'decide-test-admin-token-0123456789';
  // Before any import reads the environment (hoisted): the guard every ddb file runs.
  const { assertLocalEndpoint } = await import('#local/dynamodb.ts');
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'The ddb tests');
});

import { handler } from '#functions/decide/handler.ts';
import { handler as adminHandler } from '#functions/admin/handler.ts';
import awsLite from '@aws-lite/client';
import { PROFILE_DEADLINE_MS, readProfileState } from '#functions/decide/profile-read.ts';
import { createOwnControlTable, documentClient } from '../support/sdk-clients.ts';
import { dynamo } from '#store/client.ts';
import { refusingEndpoint, silentEndpoint, type SilentEndpoint } from '../support/store-faults.ts';
import { joinProfiles, profileFromItem, type ProfileLookup } from '#domain/profile/profile-item.ts';
import { putWriteKey, writeKeyItemKey } from '#store/write-keys.ts';
import { SignJWT } from 'jose';
import { publishCatalog } from '#store/catalog.ts';
import { profileToItem, tombstoneToItem } from '#store/profiles.ts';
import { config } from '#shared/config.ts';
import { USER_TOKEN_CLOCK_SKEW_SECONDS } from '#http/key-rights.ts';
import { emptyProfileState, type ProfileState } from '#domain/profile/state.ts';
import { anonymousProfileKey, userProfileKey } from '#domain/stored-event.ts';
import { decisionKey, decodeDecisionId as decodePlainDecisionId, readDecisionId } from '#domain/decide/decision-id.ts';

/** Decide seals its ids with KAIROS_DECISION_KEY (test/support/global-setup.ts); the test opens them as the profile function does. */
const decodeDecisionId = (id: unknown) => readDecisionId(id, decisionKey(process.env.KAIROS_DECISION_KEY ?? ''));
import { apiGatewayEvent, basicAuth, lambdaContext } from '../support/apigw.ts';

const KEY = 'wk_decide_ddb_test';
const ADMIN = `Bearer ${process.env.KAIROS_ADMIN_TOKEN}`;
const run = `r${Date.now().toString(36)}`;
const LUIS = `luis-${run}`;
const ANON = `anon-${run}`;

const catalogDocument = {
  segments: [
    { id: 'vip', rule: 'profile.traits.tier == "VIP"' },
    { id: 'frequent', rule: 'profile.stats.visitsToday > 10.0' },
  ],
  learning: { enabled: false, exploration: 0 },
  actions: [
    {
      id: 'email-123',
      name: 'VIP email',
      targeting: { segments: ['vip'] },
      content: { email: { templateId: '123', subject: 'Para ti', greeting: 'Estimado {{ firstName }}' } },
      fallbacks: { firstName: 'cliente' },
    },
    {
      id: 'mega-banner',
      name: 'Mega offer',
      targeting: { segments: ['frequent'] },
      content: { web: { title: 'Hola {{ firstName | default: "visitante" }}', placements: ['home_hero'] } },
    },
    { id: 'welcome', name: 'Welcome', content: { web: { title: 'Bienvenido' } }, fallback: [{ channel: 'web', placement: 'home_hero' }] },
    { id: 'push-news', name: 'Push', content: { push: { title: 'Novedades', body: 'Mira', deepLink: 'app://news' } } },
  ],
};

function state(identity: { userId?: string; anonymousId?: string }, edit: (s: ProfileState) => void): ProfileState {
  const s = emptyProfileState(identity);
  edit(s);
  return s;
}

const t0 = Date.parse('2026-01-01T00:00:00Z');

/** Every DynamoDB request of the process's one client (decide's profile read, the write key, the catalog), by operation. */
function resetSent(): void {
  dynamo().resetCounts();
}
function sent(): string[] {
  return [...dynamo().counts].flatMap(([name, n]) => Array.from({ length: n }, () => name.split(' ')[0] as string));
}

beforeAll(async () => {
  await createOwnControlTable();
  await putWriteKey(KEY, { keyId: 'src-decide', name: 'decide tests', kind: 'server', createdAt: new Date().toISOString() });
  const published = await publishCatalog(JSON.stringify(catalogDocument), 'json');
  if (!published.ok) throw new Error(JSON.stringify(published.problems));
  const luis = state({ userId: LUIS }, (s) => {
    s.traits = { firstName: ['Luis', t0], tier: ['VIP', t0] };
    s.consent = { email: [true, t0] };
  });
  // An anonymous visitor not merged yet, with many visits: decide joins it in memory.
  const visitor = state({ anonymousId: ANON }, (s) => {
    s.visits = { n: 0 };
  });
  for (const [key, item] of [
    [userProfileKey(LUIS), luis],
    [anonymousProfileKey(ANON), visitor],
  ] as const) {
    await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: profileToItem(key, item, 1) }));
  }
});

interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Record<string, unknown> & { actions?: { actionId: string; content: Record<string, unknown> }[] };
}

async function post(body: unknown, headers: Record<string, string> = { authorization: basicAuth(KEY) }): Promise<Reply> {
  const result = await handler(apiGatewayEvent({ method: 'POST', path: '/v1/decide', headers, body }), lambdaContext());
  return {
    status: result.statusCode ?? 0,
    headers: (result.headers ?? {}) as Record<string, string>,
    body: JSON.parse(result.body || '{}'),
  };
}

describe('decide on DynamoDB Local', () => {
  it('a warm decision makes exactly one DynamoDB request, and writes nothing', async () => {
    await post({ userId: LUIS, channel: 'email' }); // warms the write key cache
    resetSent();
    const reply = await post({ userId: LUIS, channel: 'email' });
    expect(reply.status).toBe(200);
    expect(sent()).toEqual(['GetItem']);
    expect([...dynamo().counts.keys()]).toEqual([`GetItem ${config.PROFILES_TABLE}`]);
    resetSent();
    await post({ userId: LUIS, anonymousId: ANON, channel: 'web', placement: 'home_hero' });
    expect(sent()).toEqual(['BatchGetItem']);
  });

  it('decides on the stored profile: rendered content, segments, a decodable decisionId', async () => {
    const reply = await post({ userId: LUIS, channel: 'email' });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({
      userId: LUIS,
      channel: 'email',
      segments: ['vip'],
      actions: [{ actionId: 'email-123', content: { templateId: '123', subject: 'Para ti', greeting: 'Estimado Luis' } }],
    });
    expect(reply.body.degraded).toBeUndefined();
    expect(reply.headers['access-control-allow-origin']).toBe('*');
    const decoded = decodeDecisionId(reply.body.decisionId);
    expect(decoded).toMatchObject({ channel: 'email', degraded: false, actions: [{ actionId: 'email-123' }] });
    expect(Number(decoded?.catalogVersion)).toBeGreaterThan(0);
  });

  it('an unknown customer is a new anonymous one: the fallback, not an error', async () => {
    const reply = await post({ anonymousId: `nobody-${run}`, channel: 'web', placement: 'home_hero', explain: true });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ anonymousId: `nobody-${run}`, fallback: true, actions: [{ actionId: 'welcome' }] });
    expect((reply.body.explanation as { candidates: unknown[] }).candidates).toContainEqual(
      expect.objectContaining({ actionId: 'mega-banner', eligible: false }),
    );
  });

  it('consent is required for email, sms and push', async () => {
    const push = await post({ userId: LUIS, channel: 'push' });
    expect(push.status).toBe(200);
    expect(push.body.actions).toEqual([]);
  });
});

describe('public and server keys on decide', () => {
  const PUBLIC = 'wk_decide_ddb_public';
  const LEGACY = 'wk_decide_ddb_legacy';
  const TOKEN_SECRET = 'uts_decide_ddb_user_token_secret_0123456789';
  const token = (sub: string, options: { secret?: string; expiresInSeconds?: number } = {}) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(sub)
      .setExpirationTime(Math.floor(Date.now() / 1000) + (options.expiresInSeconds ?? 600))
      .sign(new TextEncoder().encode(options.secret ?? TOKEN_SECRET));
  const asPublic = async (body: unknown, userToken?: string, key = PUBLIC) =>
    post(body, { authorization: basicAuth(key), ...(userToken !== undefined ? { 'x-kairos-user-token': userToken } : {}) });

  beforeAll(async () => {
    await putWriteKey(PUBLIC, { keyId: 'src-decide-public', name: 'site', createdAt: new Date().toISOString(), userTokenSecret: TOKEN_SECRET });
    // A key as stored before kinds existed: it reads as public.
    await documentClient.send(
      new PutCommand({
        TableName: config.CONTROL_TABLE,
        Item: { ...writeKeyItemKey(LEGACY), keyId: 'src-decide-legacy', name: 'legacy', createdAt: new Date().toISOString() },
      }),
    );
  });

  it('a server key gets the full answer: segments, scores, reasons, explanation', async () => {
    const reply = await post({ userId: LUIS, channel: 'email', explain: true });
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ userId: LUIS, segments: ['vip'], actions: [{ actionId: 'email-123' }] });
    expect(reply.body.explanation).toBeDefined();
    expect(reply.body.actions?.[0]).toHaveProperty('score');
    expect(reply.body.actions?.[0]).toHaveProperty('reasons');
  });

  it('a public key with a valid user token: 200 with actions and content only, and an opaque decision id', async () => {
    const reply = await asPublic({ userId: LUIS, channel: 'web', placement: 'home_hero' }, await token(LUIS));
    expect(reply.status).toBe(200);
    expect(Object.keys(reply.body).sort()).toEqual(['actions', 'channel', 'decisionId', 'fallback', 'placement']);
    expect(reply.body.actions).toEqual([{ actionId: 'welcome', content: { title: 'Bienvenido' } }]);
    const text = JSON.stringify(reply.body).toLowerCase();
    for (const hidden of ['vip', 'luis', 'segments', 'score', 'propensity', 'reasons', 'explanation', 'persona']) expect(text).not.toContain(hidden);
    // Opaque to the client, still attributable by the service.
    expect(decodeDecisionId(reply.body.decisionId)).toMatchObject({ channel: 'web', actions: [{ actionId: 'welcome' }] });
    const anonymous = await asPublic({ anonymousId: ANON, channel: 'push' }, undefined, LEGACY);
    expect(anonymous.status).toBe(200);
    expect(anonymous.body).not.toHaveProperty('segments');
  });

  it('a public key: a userId without a token, another user\'s, an expired one, one signed with another secret → 401', async () => {
    const body = { userId: LUIS, channel: 'web' };
    const replies = [
      await asPublic(body),
      await asPublic(body, await token(`${LUIS}-other`)),
      // Expired further back than the clock skew allowed (key-rights.ts USER_TOKEN_CLOCK_SKEW_SECONDS).
      await asPublic(body, await token(LUIS, { expiresInSeconds: -(USER_TOKEN_CLOCK_SKEW_SECONDS + 30) })),
      await asPublic(body, await token(LUIS, { secret: `${TOKEN_SECRET}-rotated` })),
      await asPublic(body, await token(LUIS), LEGACY), // a key without a user-token secret
    ];
    for (const reply of replies) {
      expect(reply.status).toBe(401);
      expect(reply.body).toMatchObject({ error: { code: 'unauthorized' } });
    }
  });

  it('a public key: explain, email, sms and call_center → 403, even with a valid token', async () => {
    const valid = await token(LUIS);
    const replies = [
      await asPublic({ anonymousId: ANON, channel: 'web', explain: true }),
      ...(await Promise.all(['email', 'sms', 'call_center'].map((channel) => asPublic({ userId: LUIS, channel }, valid)))),
      await asPublic({ anonymousId: ANON, channel: 'email' }, undefined, LEGACY),
    ];
    for (const reply of replies) {
      expect(reply.status).toBe(403);
      expect(reply.body).toMatchObject({ error: { code: 'forbidden' } });
    }
  });
});

describe('the profile read joins identities', () => {
  /** What the read must give: the items read with the SDK, joined by the pure join, a tombstone followed once. */
  async function expectedState(lookup: ProfileLookup) {
    const read = async (pk: string) =>
      profileFromItem((await documentClient.send(new GetCommand({ TableName: config.PROFILES_TABLE, Key: { pk }, ConsistentRead: true }))).Item);
    const user = lookup.userId !== undefined ? await read(userProfileKey(lookup.userId)) : undefined;
    const anonymous = lookup.anonymousId !== undefined ? await read(anonymousProfileKey(lookup.anonymousId)) : undefined;
    const joined = joinProfiles(lookup, user, anonymous);
    if (!joined || 'state' in joined) return joined?.state;
    const merged = await read(userProfileKey(joined.mergedInto));
    return merged?.kind === 'profile' ? merged.state : undefined;
  }

  it('user, anonymous, both, identified before the merge, merged (tombstone), unknown', async () => {
    const merged = `merged-${run}`;
    const owner = `owner-${run}`;
    await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: tombstoneToItem(merged, owner, 1, t0) }));
    const ownerState = state({ userId: owner }, (s) => {
      s.traits = { firstName: ['Ana', t0] };
    });
    await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: profileToItem(userProfileKey(owner), ownerState, 1) }));
    const lookups = [
      { userId: LUIS },
      { anonymousId: ANON },
      { userId: LUIS, anonymousId: ANON },
      { userId: `new-${run}`, anonymousId: ANON },
      { anonymousId: merged },
      { userId: owner, anonymousId: merged },
      { userId: `nobody-${run}` },
      {},
    ];
    for (const lookup of lookups) {
      const expected = await expectedState(lookup);
      expect({ lookup, state: await readProfileState(lookup, dynamo(), PROFILE_DEADLINE_MS) }).toEqual({ lookup, state: expected });
    }
    // The tombstone is followed to its owner; an unknown customer has no state.
    expect(await readProfileState({ anonymousId: merged }, dynamo(), PROFILE_DEADLINE_MS)).toMatchObject({ userId: owner });
    expect(await readProfileState({ userId: `nobody-${run}` }, dynamo(), PROFILE_DEADLINE_MS)).toBeUndefined();
  });
});

describe('decide when the store fails', () => {
  // The write key and the catalog are cached by the decisions before: the faults meet the profile read.
  let silent: SilentEndpoint | undefined;
  afterEach(async () => {
    awsLite.testing.disable();
    dynamo().useEndpoint(undefined);
    await silent?.close();
    silent = undefined;
  });

  /** DynamoDB's error answer to every read, from aws-lite's testing mocks (DynamoDB Local never answers these). */
  const answer = (statusCode: number, type: string) => async () => {
    awsLite.testing.enable();
    const error = { statusCode, error: { __type: `com.amazonaws.dynamodb.v20120810#${type}`, message: 'injected' } };
    for (const operation of ['GetItem', 'BatchGetItem']) awsLite.testing.mock(`DynamoDB.${operation}`, error);
  };

  it.each([
    ['a 500', answer(500, 'InternalServerError')],
    ['throttling', answer(400, 'ProvisionedThroughputExceededException')],
    ['a refused connection', async () => dynamo().useEndpoint(await refusingEndpoint())],
  ])('%s → 200 with a degraded decision from the fallbacks', async (_what, fault) => {
    await post({ userId: LUIS, channel: 'web', placement: 'home_hero' }); // the key and catalog cached
    await fault();
    resetSent();
    const web = await post({ userId: LUIS, channel: 'web', placement: 'home_hero' });
    expect(web.status).toBe(200);
    expect(web.body).toMatchObject({ degraded: true, fallback: true, actions: [{ actionId: 'welcome' }] });
    expect(decodeDecisionId(web.body.decisionId)?.degraded).toBe(true);
    // The profile read met the fault: its one request, and one retry within the deadline.
    expect(dynamo().counts.get(`GetItem ${config.PROFILES_TABLE}`)).toBe(2);
    // Consent cannot be checked: nothing on a consent-bound channel.
    const email = await post({ userId: LUIS, channel: 'email' });
    expect(email.body).toMatchObject({ degraded: true, actions: [] });
  });

  it('a profile read slower than the deadline → a degraded decision within the budget', async () => {
    await post({ userId: LUIS, channel: 'web', placement: 'home_hero' }); // the key and catalog cached
    // A server that accepts the request and never answers, like a store that hangs.
    silent = await silentEndpoint();
    dynamo().useEndpoint(silent.endpoint);
    const started = performance.now();
    const reply = await post({ userId: LUIS, channel: 'web', placement: 'home_hero' });
    const elapsed = performance.now() - started;
    expect(reply.status).toBe(200);
    expect(reply.body.degraded).toBe(true);
    expect(elapsed).toBeLessThan(1_500);
    expect(silent.connections()).toBeGreaterThan(0);
  });
});

describe('decide refuses bad input with a 4xx, never a 500', () => {
  const valid = { userId: 'u-input', channel: 'web', placement: 'home_hero' };

  it('malformed JSON, non-JSON, not an object, oversize', async () => {
    const auth = { authorization: basicAuth(KEY) };
    expect((await post('{"channel": "web",')).body).toMatchObject({ error: { code: 'invalid_json' } });
    expect((await post('<x/>', { ...auth, 'content-type': 'application/xml' })).status).toBe(415);
    for (const body of ['[]', '42', 'null', '"web"', '']) {
      const reply = await post(body, { ...auth, 'content-type': 'application/json' });
      expect({ body, status: reply.status }).toEqual({ body, status: 400 });
    }
    const big = await post({ ...valid, context: { blob: 'x'.repeat(17 * 1024) } });
    expect(big.status).toBe(413);
    expect(big.body).toMatchObject({ error: { code: 'payload_too_large' } });
  });

  it('wrong types and values are named by their path', async () => {
    const reply = await post({ ...valid, channel: 'fax', limit: 11, explain: 'yes', context: ['rain'], userId: { $ne: null } });
    expect(reply.status).toBe(400);
    const error = reply.body.error as { code: string; details: { path: string }[] };
    expect(error.code).toBe('validation_failed');
    expect(error.details.map((d) => d.path)).toEqual(expect.arrayContaining(['channel', 'limit', 'explain', 'context', 'userId']));
  });

  it('a missing, malformed or unknown write key is 401', async () => {
    const missing = await post(valid, {});
    expect(missing.status).toBe(401);
    // How to send one, without the body writeKey decide refuses (400) anyway.
    expect(missing.body).toEqual({ error: { code: 'unauthorized', message: 'A write key is required: send it as the HTTP Basic user name with an empty password (curl -u "KEY:")' } });
    // The key (or the admin token) as a bearer token: said not to be read here.
    const bearer = await post(valid, { authorization: `Bearer ${KEY}` });
    expect(bearer.status).toBe(401);
    expect((bearer.body.error as { message: string }).message).toMatch(/; an Authorization: Bearer token is not read here \(the admin token is for \/v1\/admin\/\* routes only\)$/);
    expect((await post(valid, { authorization: 'Basic !!!' })).status).toBe(401);
    const unknown = await post(valid, { authorization: basicAuth('wk_unknown_key') });
    expect(unknown.status).toBe(401);
    expect(unknown.body).toMatchObject({ error: { code: 'unauthorized' } });
  });

  it('any JSON body, hostile strings included: a 200 or a 4xx with the error shape', async () => {
    const hostile = fc.constantFrom('__proto__', 'constructor', '{{ 7 * 7 }}', '{% raw %}', '\u0000\ud800', '<script>', '💥'.repeat(50));
    const field = fc.oneof(hostile, fc.constantFrom('web', 'push', 'home_hero'), fc.string({ maxLength: 20 }), fc.integer(), fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 2 }));
    const body = fc.oneof(
      fc.record({ userId: field, anonymousId: field, channel: field, placement: field, limit: field, context: fc.dictionary(fc.oneof(hostile, fc.string({ maxLength: 8 })), field), explain: field }, { requiredKeys: [] }),
      fc.jsonValue({ maxDepth: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(body, async (value) => {
        const reply = await post(JSON.stringify(value), { authorization: basicAuth(KEY), 'content-type': 'application/json' });
        expect([200, 400, 413]).toContain(reply.status);
        // A decision (with its actions, no template ever run on input) or the error shape.
        const shape =
          reply.status === 200
            ? { actions: Array.isArray(reply.body.actions), templated: JSON.stringify(reply.body).includes('"49"') }
            : { code: typeof (reply.body.error as { code?: unknown })?.code, message: typeof (reply.body.error as { message?: unknown })?.message };
        expect(shape).toEqual(reply.status === 200 ? { actions: true, templated: false } : { code: 'string', message: 'string' });
      }),
      { numRuns: 150 },
    );
  });
});

describe('POST /v1/admin/simulate', () => {
  async function simulate(body: unknown, authorization: string): Promise<Reply> {
    const result = await adminHandler(
      apiGatewayEvent({ method: 'POST', path: '/v1/admin/simulate', headers: { authorization }, body }),
      lambdaContext(),
    );
    return { status: result.statusCode ?? 0, headers: (result.headers ?? {}) as Record<string, string>, body: JSON.parse(result.body || '{}') };
  }

  it('a write key cannot simulate (403), no credential is 401', async () => {
    const withKey = await simulate({ userId: LUIS, channel: 'email' }, basicAuth(KEY));
    expect(withKey.status).toBe(403);
    expect(withKey.body).toMatchObject({ error: { code: 'forbidden' } });
    expect((await simulate({ userId: LUIS, channel: 'email' }, '')).status).toBe(401);
  });

  it('a stored customer: the decision with every candidate explained', async () => {
    const reply = await simulate({ userId: LUIS, channel: 'email' }, ADMIN);
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ simulated: true, actions: [{ actionId: 'email-123' }] });
    expect((reply.body.explanation as { candidates: { actionId: string }[] }).candidates.map((c) => c.actionId)).toEqual(['email-123']);
    expect((reply.body.explanation as { policies: string[] }).policies.filter((p) => p.startsWith('profile:'))).toEqual([]);
  });

  it('an id with no profile (a typo): decided as for a new customer, and the explanation says so first', async () => {
    const reply = await simulate({ userId: `${LUIS}-typo`, channel: 'email' }, ADMIN);
    expect(reply.status).toBe(200);
    expect((reply.body.explanation as { policies: string[] }).policies[0]).toBe(`profile:no profile for userId ${LUIS}-typo: decided as for a new customer`);
  });

  it('an inline profile, at another instant, with the request context', async () => {
    const reply = await simulate(
      {
        profile: { traits: { firstName: 'Ana' }, stats: { visitsToday: 12 } },
        channel: 'web',
        placement: 'home_hero',
        context: { weather: 'rain' },
        at: '2026-03-01T10:00:00Z',
      },
      ADMIN,
    );
    expect(reply.status).toBe(200);
    expect(reply.body).toMatchObject({ segments: ['frequent'], actions: [{ actionId: 'mega-banner', content: { title: 'Hola Ana' } }] });
    // A simulation's id is the plain one: it was never served, so no outcome can be attributed to it.
    expect(decodePlainDecisionId(reply.body.decisionId)?.issuedAt).toBe('2026-03-01T10:00:00.000Z');
  });

  it('an inline profile takes every part of the view: consent, engagement and contacts (numbers and lists left out are 0 and empty)', async () => {
    const profile = (granted: boolean) => ({
      traits: { tier: 'VIP', firstName: 'Ana' },
      stats: { lastPurchaseAt: '2026-01-01T00:00:00Z', orders: 3 },
      consent: { email: { granted } },
      engagement: { email: { delivered: 4 } },
      contacts: { 'other-action': { impressions: ['2026-02-28T09:00:00Z'] } },
    });
    const granted = await simulate({ profile: profile(true), channel: 'email', at: '2026-03-01T10:00:00Z' }, ADMIN);
    expect(granted.status).toBe(200);
    expect(granted.body).toMatchObject({ actions: [{ actionId: 'email-123' }] });
    const withdrawn = await simulate({ profile: profile(false), channel: 'email', at: '2026-03-01T10:00:00Z' }, ADMIN);
    expect(withdrawn.status).toBe(200);
    expect(withdrawn.body.actions).toEqual([]);
    const badConsent = await simulate({ profile: { consent: { email: { granted: 'yes' } } }, channel: 'email' }, ADMIN);
    expect(badConsent.status).toBe(400);
    expect((badConsent.body.error as { details: { path: string }[] }).details.map((d) => d.path)).toContain('profile.consent.email.granted');
  });

  it('an invalid request or profile is a 400 naming the path', async () => {
    const bad = await simulate({ profile: { stats: { visitsToday: 'many' } }, channel: 'web' }, ADMIN);
    expect(bad.status).toBe(400);
    expect((bad.body.error as { details: { path: string }[] }).details.map((d) => d.path)).toContain('profile.stats.visitsToday');
    for (const body of [{ channel: 'web' }, { userId: 'u', channel: 'fax' }, { profile: 'x', channel: 'web' }, { userId: 'u', channel: 'web', context: 'rain' }]) {
      expect({ body, status: (await simulate(body, ADMIN)).status }).toEqual({ body, status: 400 });
    }
  });

  it('a misspelled field of the inline profile is a 400 naming it, not a simulation of another profile; a profile as GET answers it is taken whole', async () => {
    const typo = await simulate({ profile: { userId: 'u-7', trait: { firstName: 'Ana' }, stats: { order: 3 } }, channel: 'email' }, ADMIN);
    expect(typo.status).toBe(400);
    expect((typo.body.error as { details: unknown[] }).details).toEqual(
      expect.arrayContaining([
        { path: 'profile', message: 'unknown field(s): trait' },
        { path: 'profile.stats', message: 'unknown field(s): order' },
      ]),
    );
    const stored = await adminHandler(apiGatewayEvent({ method: 'GET', path: `/v1/admin/profiles/${LUIS}`, headers: { authorization: ADMIN } }), lambdaContext());
    const { profile } = JSON.parse(stored.body ?? '{}') as { profile: Record<string, unknown> };
    expect(profile.userId).toBe(LUIS);
    const pasted = await simulate({ profile, channel: 'email' }, ADMIN);
    expect(pasted.status).toBe(200);
    expect(pasted.body).toMatchObject({ simulated: true, actions: [{ actionId: 'email-123' }] });
  });

  it('a time, a time zone or a channel of the inline profile that is none is a 400 naming the field; valid ones are taken', async () => {
    const details = async (profile: unknown) => {
      const reply = await simulate({ profile, channel: 'email' }, ADMIN);
      expect(reply.status).toBe(400);
      expect((reply.body.error as { code: string }).code).toBe('validation_failed');
      return (reply.body.error as { details: { path: string; message: string }[] }).details;
    };
    const instant = 'must be an ISO-8601 date-time with its offset, e.g. 2026-11-20T10:00:00Z';
    expect(await details({ stats: { lastSeenAt: 'yesterday' } })).toEqual([{ path: 'profile.stats.lastSeenAt', message: instant }]);
    expect(await details({ timezone: 'Mars/Olympus' })).toEqual([{ path: 'profile.timezone', message: 'must be an IANA time zone, e.g. "Europe/Madrid"' }]);
    // Every time of the view, at every depth: in a named type, in a list, in a map of lists.
    const times: [unknown, string][] = [
      [{ updatedAt: '2026-02-30T00:00:00Z' }, 'profile.updatedAt'],
      [{ stats: { firstSeenAt: '2026-03-01' } }, 'profile.stats.firstSeenAt'],
      [{ stats: { lastPurchaseAt: 'last week' } }, 'profile.stats.lastPurchaseAt'],
      [{ stats: { lastReturnAt: '2026-03-01T10:00:00' } }, 'profile.stats.lastReturnAt'],
      [{ preferences: { updatedAt: '1700000000000' } }, 'profile.preferences.updatedAt'],
      [{ consent: { email: { granted: true, updatedAt: 'now' } } }, 'profile.consent.email.updatedAt'],
      [{ engagement: { push: { lastEngagedAt: 'x' } } }, 'profile.engagement.push.lastEngagedAt'],
      [{ engagement: { push: { lastDeliveredAt: 'x' } } }, 'profile.engagement.push.lastDeliveredAt'],
      [{ contacts: { a: { impressions: ['2026-03-01T10:00:00Z', 'then'] } } }, 'profile.contacts.a.impressions[1]'],
      [{ contacts: { a: { lastImpressionAt: 'then' } } }, 'profile.contacts.a.lastImpressionAt'],
      [{ channelContacts: { email: ['then'] } }, 'profile.channelContacts.email[0]'],
    ];
    for (const [profile, path] of times) expect({ path, details: await details(profile) }).toEqual({ path, details: [{ path, message: instant }] });
    expect(await details({ preferences: { preferredChannel: 'fax' } })).toEqual([
      { path: 'profile.preferences.preferredChannel', message: 'must be one of web, app, push, email, sms, call_center' },
    ]);
    // Valid ones are taken: a zone, times with an offset or in UTC.
    const vip = await simulate(
      {
        profile: {
          timezone: 'Europe/Madrid',
          traits: { tier: 'VIP', firstName: 'Ana' },
          consent: { email: { granted: true, updatedAt: '2026-01-01T01:00:00+01:00' } },
          stats: { lastPurchaseAt: '2026-01-01T01:00:00+01:00', lastSeenAt: '2026-02-28T10:00:00Z' },
          preferences: { preferredChannel: 'email' },
        },
        channel: 'email',
        at: '2026-03-01T10:00:00Z',
      },
      ADMIN,
    );
    expect(vip.status).toBe(200);
    expect(vip.body).toMatchObject({ actions: [{ actionId: 'email-123' }] });
  });

  it('a list or a text of the inline profile past its bound is a 400 that names the bound, not the type', async () => {
    const details = async (profile: unknown) => {
      const reply = await simulate({ profile, channel: 'web' }, ADMIN);
      expect(reply.status).toBe(400);
      return (reply.body.error as { details: { path: string; message: string }[] }).details;
    };
    const interests = Array.from({ length: 1_001 }, (_, i) => `i${i}`);
    expect(await details({ preferences: { interests } })).toEqual([
      { path: 'profile.preferences.interests', message: 'must be at most 1000 items' },
    ]);
    expect(await details({ persona: 'x'.repeat(10_001) })).toEqual([{ path: 'profile.persona', message: 'must be at most 10000 characters' }]);
    // The type's own message is unchanged.
    expect(await details({ preferences: { interests: 'running' } })).toEqual([{ path: 'profile.preferences.interests', message: 'must be a list' }]);
  });
});
