/**
 * What a public write key may ask and read (API.md §1, §4): the sealed
 * decision id (opaque, tamper-evident, still attributable), the public
 * answer (named fields only) and the rights check with user tokens.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SignJWT } from 'jose';
import { CHANNELS } from '#domain/channels.ts';
import {
  MAX_SEALED_DECISION_ID_LENGTH,
  customerTag,
  decisionKey,
  decodeDecisionId,
  encodeDecisionId,
  openDecisionId,
  readDecisionId,
  sealDecisionId,
  type DecisionRecord,
} from '#domain/decide/decision-id.ts';
import { publicDecision } from '#domain/decide/public-answer.ts';
import type { Decision } from '#domain/decide/types.ts';
import { applyEvent } from '#domain/profile/apply.ts';
import { emptyProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { ApiError } from '#http/errors.ts';
import { USER_TOKEN_CLOCK_SKEW_SECONDS, authorizeDecide, isValidUserToken, userTokenProblem } from '#http/key-rights.ts';
import type { SourceIdentity } from '#http/auth.ts';

const KEY = decisionKey('kdk_unit_tests_decision_key_0123456789');
const OTHER_KEY = decisionKey('kdk_unit_tests_another_key_0123456789');

/** A decision as decide writes it: bound to its customer. */
type BoundDecision = DecisionRecord & { readonly customer: string };

const record: BoundDecision = {
  catalogVersion: '7',
  channel: 'web',
  placement: 'home',
  issuedAt: '2026-11-23T10:00:00.000Z',
  nonce: 'n0nce',
  fallback: false,
  degraded: false,
  persona: 'student-sport',
  actions: [{ actionId: 'mega-offer-banner', variant: 'b', experiment: { id: 'banner-copy', arm: 'b' }, propensity: 0.3127 }],
  holdouts: ['vip-holdout'],
  customer: customerTag('u-1'),
};

describe('sealed decision ids', () => {
  it('open with the key to the same decision, and say nothing of it to whoever holds only the id', () => {
    const sealed = sealDecisionId(encodeDecisionId(record), KEY);
    expect(sealed).toMatch(/^d2\.[A-Za-z0-9_-]+$/);
    expect(readDecisionId(sealed, KEY)).toEqual(record);
    const bytes = Buffer.from(sealed.slice(3), 'base64url').toString('latin1');
    for (const secret of ['student-sport', 'vip-holdout', 'mega-offer-banner', '0.3127', 'banner-copy', 'home', record.customer]) {
      expect(sealed).not.toContain(secret);
      expect(bytes).not.toContain(secret);
    }
    // Two seals of one decision differ (a fresh IV each time): ids cannot be compared to infer anything.
    expect(sealDecisionId(encodeDecisionId(record), KEY)).not.toBe(sealed);
  });

  it('an id not sealed with the key does not open: forged plain ids, other keys, any flipped character', () => {
    const plain = encodeDecisionId(record);
    expect(decodeDecisionId(plain)).toEqual(record);
    expect(readDecisionId(plain, KEY)).toBeUndefined();
    const sealed = sealDecisionId(plain, KEY);
    expect(openDecisionId(sealed, OTHER_KEY)).toBeUndefined();
    fc.assert(
      fc.property(fc.nat({ max: sealed.length - 4 }), fc.constantFrom(...'ABCxyz019-_'), (at, c) => {
        const i = at + 3;
        fc.pre(sealed[i] !== c);
        const mangled = sealed.slice(0, i) + c + sealed.slice(i + 1);
        // The last character included: where it carries unused bits the bytes are the same, but that second spelling is refused.
        expect(openDecisionId(mangled, KEY)).toBeUndefined();
      }),
    );
    // A seal whose text ends in a partial group, its last character's unused bits set: the same bytes, refused.
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    for (let n = 0, checked = 0; checked < 10 && n < 1000; n++) {
      const one = sealDecisionId(plain, KEY);
      const body = one.slice(3);
      if (body.length % 4 === 0) continue;
      const last = ALPHABET.indexOf(body.at(-1) as string);
      const respelled = one.slice(0, -1) + ALPHABET[last + 1];
      expect(Buffer.from(respelled.slice(3), 'base64url').equals(Buffer.from(body, 'base64url'))).toBe(true);
      expect(openDecisionId(one, KEY)).toBe(plain);
      expect(openDecisionId(respelled, KEY)).toBeUndefined();
      checked++;
    }
    for (const hostile of ['', 'd2.', 'd2.!!!', `d2.${'A'.repeat(MAX_SEALED_DECISION_ID_LENGTH)}`, 42, null, {}]) {
      expect(openDecisionId(hostile, KEY)).toBeUndefined();
    }
  });

  it('the profile function attributes an outcome to the decision a sealed id names, and a plain (forgeable) id to nothing', () => {
    const served: BoundDecision = { ...record, channel: 'push', issuedAt: '2026-01-15T12:00:00.000Z', actions: [{ actionId: 'push-offer', propensity: 0.25 }] };
    const outcome = (messageId: string, decisionId: string) => ({
      pk: `src#${messageId}`,
      profileKey: 'u#u-1',
      sortKey: `2026-01-15T12:05:00.000Z#${messageId}`,
      sourceId: 'src',
      messageId,
      type: 'track' as const,
      userId: 'u-1',
      event: 'Promotion Viewed',
      properties: { decision_id: decisionId },
      timestamp: '2026-01-15T12:05:00.000Z',
      receivedAt: '2026-01-15T12:05:00.000Z',
      expiresAt: 2_000_000_000,
    });
    const settings = { halfLifeDays: 14, decisionKey: KEY };
    const sealed = applyEvent(emptyProfileState({ userId: 'u-1' }), outcome('m1', sealDecisionId(encodeDecisionId(served), KEY)), settings);
    expect(toProfileView(sealed, Date.parse('2026-01-15T13:00:00Z')).contacts['push-offer']).toMatchObject({ impressions: ['2026-01-15T12:00:00.000Z'] });
    const forged = applyEvent(emptyProfileState({ userId: 'u-1' }), outcome('m2', encodeDecisionId(served)), settings);
    expect(toProfileView(forged, Date.parse('2026-01-15T13:00:00Z')).contacts['push-offer']).toBeUndefined();
  });

  it('any decision of any channel round-trips through seal and open', () => {
    fc.assert(
      fc.property(fc.constantFrom(...CHANNELS), fc.string({ maxLength: 40 }), (channel, persona) => {
        const r: BoundDecision = { ...record, channel, ...(persona ? { persona } : { persona: undefined }) };
        const { persona: _p, ...rest } = r;
        const expected = persona ? r : rest;
        const sealed = sealDecisionId(encodeDecisionId(expected), KEY);
        expect(sealed.length).toBeLessThanOrEqual(MAX_SEALED_DECISION_ID_LENGTH);
        expect(readDecisionId(sealed, KEY)).toEqual(expected);
      }),
    );
  });
});

const fullDecision: Decision = {
  decisionId: 'd2.sealed',
  userId: 'u-42',
  anonymousId: 'a-9',
  channel: 'web',
  placement: 'home_hero',
  actions: [
    {
      actionId: 'mega-offer-banner',
      variant: 'b',
      content: { title: 'Hola Luis' },
      score: 0.42,
      propensity: 0.31,
      probability: 0.87,
      experiment: { id: 'banner-copy', arm: 'b' },
      reasons: ['segment:vip', 'persona:student-sport'],
      fallback: true,
    },
  ],
  segments: ['vip', 'in-conflict'],
  persona: 'student-sport',
  fallback: true,
  degraded: true,
  explanation: { catalogVersion: 3, candidates: [{ actionId: 'x', eligible: false, why: 'suppressed:in-conflict' }], policies: ['consent:email'], explored: false, holdouts: ['h'] },
};

describe('the public answer', () => {
  it('keeps exactly the decision id, channel, placement, flags and per action id, variant, content and experiment', () => {
    expect(publicDecision(fullDecision)).toEqual({
      decisionId: 'd2.sealed',
      channel: 'web',
      placement: 'home_hero',
      actions: [{ actionId: 'mega-offer-banner', variant: 'b', content: { title: 'Hola Luis' }, experiment: { id: 'banner-copy', arm: 'b' } }],
      fallback: true,
      degraded: true,
    });
    const text = JSON.stringify(publicDecision(fullDecision));
    for (const hidden of ['vip', 'in-conflict', 'student-sport', '0.42', '0.31', 'reasons', 'explanation', 'consent', 'u-42', 'a-9']) {
      expect(text).not.toContain(hidden);
    }
  });
});

const SECRET = 'uts_unit_tests_user_token_secret_0123456789';
const publicKey: SourceIdentity = { sourceId: 'key_public', kind: 'public', userTokenSecret: SECRET };
const serverKey: SourceIdentity = { sourceId: 'key_server', kind: 'server' };

async function token(
  sub: string,
  options: { secret?: string; exp?: number; iat?: number; nbf?: number; alg?: 'HS256' | 'HS512'; noExp?: boolean } = {},
): Promise<string> {
  const jwt = new SignJWT({}).setProtectedHeader({ alg: options.alg ?? 'HS256' }).setSubject(sub);
  if (!options.noExp) jwt.setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 600);
  if (options.iat !== undefined) jwt.setIssuedAt(options.iat);
  if (options.nbf !== undefined) jwt.setNotBefore(options.nbf);
  return jwt.sign(new TextEncoder().encode(options.secret ?? SECRET));
}

async function refusal(promise: Promise<unknown>): Promise<{ status: number; code: string } | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    if (error instanceof ApiError) return { status: error.status, code: error.code };
    throw error;
  }
}

describe('the rights of a key on decide', () => {
  const ask = (identity: SourceIdentity, input: { userId?: string; channel: (typeof CHANNELS)[number]; explain?: boolean }, userToken?: string) =>
    authorizeDecide(identity, { explain: false, ...input }, userToken === undefined ? {} : { 'x-kairos-user-token': userToken });

  it('a server key may ask anything', async () => {
    for (const channel of CHANNELS) {
      expect(await ask(serverKey, { userId: 'u-42', channel, explain: true })).toEqual({ publicAnswer: false, identified: true });
    }
  });

  it('a public key: web, app and push for an anonymous visitor, the public answer, on the anonymous visitor only', async () => {
    for (const channel of ['web', 'app', 'push'] as const) expect(await ask(publicKey, { channel })).toEqual({ publicAnswer: true, identified: false });
    expect(await ask(serverKey, { channel: 'web' })).toEqual({ publicAnswer: false, identified: true });
  });

  it('a public key: email, sms, call_center and explain are 403', async () => {
    for (const channel of ['email', 'sms', 'call_center'] as const) {
      expect(await refusal(ask(publicKey, { channel, userId: 'u-42' }, await token('u-42')))).toEqual({ status: 403, code: 'forbidden' });
    }
    expect(await refusal(ask(publicKey, { channel: 'web', explain: true }))).toEqual({ status: 403, code: 'forbidden' });
  });

  it('a public key: a userId needs a valid, unexpired token for that very user, signed with the key secret', async () => {
    const unauthorized = { status: 401, code: 'unauthorized' };
    const web = { channel: 'web' as const, userId: 'u-42' };
    expect(await refusal(ask(publicKey, web))).toEqual(unauthorized);
    expect(await refusal(ask(publicKey, web, await token('u-43')))).toEqual(unauthorized);
    expect(await refusal(ask(publicKey, web, await token('u-42', { exp: Math.floor(Date.now() / 1000) - USER_TOKEN_CLOCK_SKEW_SECONDS - 60 })))).toEqual(unauthorized);
    expect(await refusal(ask(publicKey, web, await token('u-42', { secret: `${SECRET}-other` })))).toEqual(unauthorized);
    expect(await refusal(ask(publicKey, web, await token('u-42', { noExp: true })))).toEqual(unauthorized);
    expect(await refusal(ask(publicKey, web, await token('u-42', { alg: 'HS512' })))).toEqual(unauthorized);
    expect(await refusal(ask(publicKey, web, 'not.a.token'))).toEqual(unauthorized);
    expect(await refusal(ask({ sourceId: 'k', kind: 'public' }, web, await token('u-42')))).toEqual(unauthorized);
    // A key without a user-token secret: the 401 says what is missing, not that the token is wrong.
    await expect(ask({ sourceId: 'k', kind: 'public' }, web, await token('u-42'))).rejects.toThrow(
      'This public key has no user-token secret, so no X-Kairos-User-Token is valid with it: an operator sets one with PUT /v1/admin/keys/{keyId}/user-token-secret (or decide for the anonymousId)',
    );
    await expect(ask(publicKey, web, await token('u-43'))).rejects.toThrow('The X-Kairos-User-Token is for another userId');
    await expect(ask(publicKey, web, await token('u-42', { secret: `${SECRET}-other` }))).rejects.toThrow(
      "The X-Kairos-User-Token is not an HS256 JWT signed with this key's user-token secret",
    );
    expect(await ask(publicKey, web, await token('u-42'))).toEqual({ publicAnswer: true, identified: true });
  });

  it('a public key: a token issued (iat) further ahead of the server\'s clock than the skew allowed is refused; within it, accepted', async () => {
    const web = { channel: 'web' as const, userId: 'u-42' };
    const now = Math.floor(Date.now() / 1000);
    const years = 5 * 365 * 86_400;
    // "Issued" five years ahead, by a clock whose exp cannot be trusted either.
    expect(await refusal(ask(publicKey, web, await token('u-42', { iat: now + years, exp: now + years + 600 })))).toEqual({ status: 401, code: 'unauthorized' });
    expect(await refusal(ask(publicKey, web, await token('u-42', { iat: now + USER_TOKEN_CLOCK_SKEW_SECONDS + 60, exp: now + 3_600 })))).toEqual({
      status: 401,
      code: 'unauthorized',
    });
    // A back-end's clock a little ahead, or a token issued a while ago: accepted.
    for (const iat of [now + USER_TOKEN_CLOCK_SKEW_SECONDS - 60, now + 5, now, now - 3_600]) {
      expect({ iat: iat - now, rights: await ask(publicKey, web, await token('u-42', { iat })) }).toEqual({ iat: iat - now, rights: { publicAnswer: true, identified: true } });
    }
  });

  it('a public key: the 401 says why the token is refused, in the error shape, naming the header', async () => {
    const web = { channel: 'web' as const, userId: 'u-42' };
    const now = Math.floor(Date.now() / 1000);
    const refused = async (userToken: string) => {
      try {
        await ask(publicKey, web, userToken);
      } catch (error) {
        if (error instanceof ApiError) return error.toBody();
      }
      return undefined;
    };
    expect(await refused(await token('u-42', { exp: now - 3_600 }))).toEqual({
      error: {
        code: 'unauthorized',
        message: `The X-Kairos-User-Token expired at ${new Date((now - 3_600) * 1000).toISOString()}`,
        details: [{ path: 'x-kairos-user-token', message: `expired at ${new Date((now - 3_600) * 1000).toISOString()}` }],
      },
    });
    expect((await refused(await token('u-42', { noExp: true })))?.error.message).toBe('The X-Kairos-User-Token has no `exp` claim');
    expect((await refused('not.a.token'))?.error.message).toBe("The X-Kairos-User-Token is not an HS256 JWT signed with this key's user-token secret");
    expect((await refused('x'))?.error.message).toBe('The X-Kairos-User-Token is not a JWT (three base64url parts, at most 3.5 KB)');
    expect((await refused(await token('u-42', { nbf: now + 3_600 })))?.error.message).toBe(
      `The X-Kairos-User-Token is not valid before ${new Date((now + 3_600) * 1000).toISOString()} (nbf)`,
    );
    // The documents' old examples: valid until 2100, no iat.
    expect((await refused(await token('u-42', { exp: 4_102_444_800 })))?.error.message).toMatch(
      /^The X-Kairos-User-Token lives \d+ s \(exp − now, without iat\), longer than the 86400 s a user token may: mint tokens that expire sooner$/,
    );
  });

  it('a user token lives at most the lifetime allowed (exp − iat, or exp − now without iat): a day by default', async () => {
    const now = Date.parse('2026-11-30T12:00:00Z');
    const at = now / 1000;
    const day = 86_400;
    const check = async (claims: { iat?: number; exp: number }, maxLifetimeSeconds?: number) =>
      userTokenProblem(await token('u-42', claims), SECRET, 'u-42', { now, ...(maxLifetimeSeconds !== undefined ? { maxLifetimeSeconds } : {}) });
    expect(await check({ iat: at, exp: at + day })).toBeUndefined();
    expect(await check({ iat: at - 3_600, exp: at + day - 3_600 })).toBeUndefined();
    expect(await check({ iat: at, exp: at + day + 1 })).toBe('lives 86401 s (exp − iat), longer than the 86400 s a user token may: mint tokens that expire sooner');
    // Issued long ago with a long life: refused although only an hour is left.
    expect(await check({ iat: at - 30 * day, exp: at + 3_600 })).toMatch(/^lives \d+ s \(exp − iat\)/);
    // Without iat the lifetime is counted from now, with the issuer's clock allowed the skew ahead.
    expect(await check({ exp: at + day + USER_TOKEN_CLOCK_SKEW_SECONDS })).toBeUndefined();
    expect(await check({ exp: at + day + USER_TOKEN_CLOCK_SKEW_SECONDS + 1 })).toMatch(/^lives \d+ s \(exp − now, without iat\)/);
    // Configurable: an hour.
    expect(await check({ iat: at, exp: at + 3_600 }, 3_600)).toBeUndefined();
    expect(await check({ iat: at, exp: at + 7_200 }, 3_600)).toMatch(/longer than the 3600 s a user token may/);
  });

  it('the same clock skew on exp, nbf and iat: accepted within it, refused past it', async () => {
    const now = Date.parse('2026-11-30T12:00:00Z');
    const at = now / 1000;
    const skew = USER_TOKEN_CLOCK_SKEW_SECONDS;
    const check = async (claims: { iat?: number; nbf?: number; exp: number }) => userTokenProblem(await token('u-42', claims), SECRET, 'u-42', { now });
    // exp: a token that expired a moment ago by this server's clock, within the skew, is still accepted.
    expect(await check({ iat: at - 600, exp: at - skew + 1 })).toBeUndefined();
    expect(await check({ iat: at - 600, exp: at - skew })).toMatch(/^expired at /);
    // nbf: a token valid from a moment from now, within the skew, is accepted.
    expect(await check({ iat: at, nbf: at + skew, exp: at + 3_600 })).toBeUndefined();
    expect(await check({ iat: at, nbf: at + skew + 1, exp: at + 3_600 })).toMatch(/^is not valid before /);
    // iat: issued a moment ahead, within the skew, is accepted.
    expect(await check({ iat: at + skew, exp: at + 3_600 })).toBeUndefined();
    expect(await check({ iat: at + skew + 1, exp: at + 3_600 })).toMatch(/^says it was issued at .* more than 300 s ahead/);
  });

  it('a token check never throws, whatever the header holds', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 300 }), async (text) => {
        expect(await isValidUserToken(text, SECRET, 'u-42')).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});
