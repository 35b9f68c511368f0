/**
 * What a write key may ask of decide (API.md §1, §4).
 *
 * - server key: everything decide offers.
 * - public key: the customer-facing channels (web, app, push), never
 *   `explain` (403), for an `anonymousId`, or for a `userId` proven by an
 *   `X-Kairos-User-Token`: an HS256 JWT `{sub: userId, exp}` signed with the
 *   key's user-token secret (401 without a valid, unexpired token for that
 *   very userId). Its answer is `publicDecision` (shared/domain/decide/public-answer.ts).
 *   For an anonymousId alone it decides on the anonymous visitor only
 *   (`identified: false`): an anonymousId that identify or alias joined to
 *   a userId is decided as a new visitor, since anyone holding the public
 *   key can send that identify for any userId (events need no token).
 *
 * Tokens are verified with `jose` (HS256 only, `sub` and `exp` required),
 * against this server's clock with the same allowance for a clock that is a
 * little off (USER_TOKEN_CLOCK_SKEW_SECONDS) on `exp`, `nbf` and `iat`, and
 * refused when they live longer than KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS
 * (`exp` − `iat`, or `exp` − now without `iat`): a token that leaks stops
 * working within that time. A refusal is a 401 that says why.
 */
import { errors, jwtVerify } from 'jose';
import { config } from '#shared/config.ts';
import type { Channel } from '#domain/channels.ts';
import type { DecideRequest } from '#domain/decide/types.ts';
import type { SourceIdentity } from './auth.ts';
import { ApiError } from './errors.ts';

/** The request header that carries the user token (lower case, as HttpRequest holds headers). */
export const USER_TOKEN_HEADER = 'x-kairos-user-token';

/** Channels a public key may decide on: those a customer sees on their own device. */
export const PUBLIC_CHANNELS: ReadonlySet<Channel> = new Set<Channel>(['web', 'app', 'push']);

/** A compact JWS, bounded: anything else is not a token (refused before any parsing). */
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{1,1024}\.[A-Za-z0-9_-]{1,2048}\.[A-Za-z0-9_-]{1,512}$/;

const encoder = new TextEncoder();

/**
 * How far this server's clock and a token's issuer's may disagree, in
 * seconds, allowed alike on `exp` (accepted until this long after it),
 * `nbf` (from this long before it) and `iat` (at most this far ahead).
 */
export const USER_TOKEN_CLOCK_SKEW_SECONDS = 300;

/** What a user token is checked against: the lifetime allowed and the clock (epoch ms). */
export interface UserTokenPolicy {
  /** Seconds a token may live at most (`exp` − `iat`, or `exp` − now without `iat`). @default config KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS */
  readonly maxLifetimeSeconds?: number;
  /** This server's clock, epoch milliseconds. @default Date.now() */
  readonly now?: number;
}

const isoSeconds = (seconds: number) => new Date(seconds * 1000).toISOString();

/**
 * Why `token` does not prove `userId` to a key whose user-token secret is
 * `secret`, as a phrase completing "The X-Kairos-User-Token …"; undefined
 * when it does: an HS256 JWT signed with `secret`, `sub` = `userId`, `exp`
 * not passed and `nbf` reached (both within the clock skew), `iat` at most
 * the skew ahead, and a lifetime within `policy.maxLifetimeSeconds`. The
 * claims are read only once the signature holds, so a forged token learns
 * nothing but that it is not signed with the secret. Never throws.
 */
export async function userTokenProblem(token: string, secret: string, userId: string, policy: UserTokenPolicy = {}): Promise<string | undefined> {
  if (!TOKEN_SHAPE.test(token)) return 'is not a JWT (three base64url parts, at most 3.5 KB)';
  const now = (policy.now ?? Date.now()) / 1000;
  const maxLifetime = policy.maxLifetimeSeconds ?? config.KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS;
  const skew = USER_TOKEN_CLOCK_SKEW_SECONDS;
  let payload: { sub?: string; exp?: number; iat?: number };
  try {
    ({ payload } = await jwtVerify(token, encoder.encode(secret), {
      algorithms: ['HS256'],
      requiredClaims: ['sub', 'exp'],
      clockTolerance: skew,
      currentDate: new Date(now * 1000),
    }));
  } catch (error) {
    if (error instanceof errors.JWTExpired) return `expired at ${isoSeconds(Number((error.payload as { exp?: unknown }).exp))}`;
    if (error instanceof errors.JWTClaimValidationFailed) {
      const value = (error.payload as Record<string, unknown>)[error.claim];
      if (error.reason === 'missing') return `has no \`${error.claim}\` claim`;
      if (error.claim === 'nbf' && typeof value === 'number') return `is not valid before ${isoSeconds(value)} (nbf)`;
      return `has an invalid \`${error.claim}\` claim`;
    }
    return "is not an HS256 JWT signed with this key's user-token secret";
  }
  const { sub, exp, iat } = payload as { sub: string; exp: number; iat?: number };
  if (iat !== undefined && iat > now + skew) {
    return `says it was issued at ${isoSeconds(iat)} (iat), more than ${skew} s ahead of this server's clock: mint tokens with a synchronised clock`;
  }
  const lifetime = exp - (iat ?? now);
  if (lifetime > maxLifetime + (iat === undefined ? skew : 0)) {
    return `lives ${Math.round(lifetime)} s (exp − ${iat === undefined ? 'now, without iat' : 'iat'}), longer than the ${maxLifetime} s a user token may: mint tokens that expire sooner`;
  }
  if (sub !== userId) return 'is for another userId';
  return undefined;
}

/** Whether `token` proves `userId` (userTokenProblem finds nothing). Never throws. */
export async function isValidUserToken(token: string, secret: string, userId: string, policy: UserTokenPolicy = {}): Promise<boolean> {
  return (await userTokenProblem(token, secret, userId, policy)) === undefined;
}

/** What a decide request may see, once its key's rights are checked. */
export interface DecideRights {
  /** The answer is `publicDecision`'s (a public key). */
  readonly publicAnswer: boolean;
  /**
   * The decision may use an identified customer's profile: a server key, or
   * a public key with a user token for the userId. False for a public key
   * deciding for an anonymousId alone: a profile that resolves to a userId
   * (identify or alias joined the anonymousId to it) is not this caller's to
   * see, and is decided as a new visitor.
   */
  readonly identified: boolean;
}

/**
 * Check a decide request against the key's rights; throws 403 for a channel
 * or `explain` outside a public key's rights, 401 for a userId without a
 * valid user token. Returns what the decision may see (`DecideRights`).
 */
export async function authorizeDecide(
  identity: SourceIdentity,
  input: Pick<DecideRequest, 'userId' | 'channel' | 'explain'>,
  headers: Readonly<Record<string, string>>,
): Promise<DecideRights> {
  if (identity.kind === 'server') return { publicAnswer: false, identified: true };
  if (!PUBLIC_CHANNELS.has(input.channel)) {
    throw new ApiError('forbidden', `A public key decides on web, app and push only, not ${input.channel}: use a server key`);
  }
  if (input.explain) throw new ApiError('forbidden', 'A public key cannot ask for explain: use a server key');
  if (input.userId !== undefined) {
    const token = headers[USER_TOKEN_HEADER];
    if (!token) {
      throw new ApiError('unauthorized', 'A public key needs an X-Kairos-User-Token for this userId (or decide for the anonymousId)');
    }
    if (!identity.userTokenSecret) {
      // No token can be valid: say so, rather than suggest the token is wrong.
      throw new ApiError(
        'unauthorized',
        'This public key has no user-token secret, so no X-Kairos-User-Token is valid with it: an operator sets one with PUT /v1/admin/keys/{keyId}/user-token-secret (or decide for the anonymousId)',
      );
    }
    const problem = await userTokenProblem(token, identity.userTokenSecret, input.userId);
    if (problem !== undefined) {
      throw new ApiError('unauthorized', `The X-Kairos-User-Token ${problem}`, [{ path: USER_TOKEN_HEADER, message: problem }]);
    }
    return { publicAnswer: true, identified: true };
  }
  return { publicAnswer: true, identified: false };
}
