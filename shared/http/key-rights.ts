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
 * Tokens are verified with `jose` (HS256 only, `sub` and `exp` required,
 * `exp` and `nbf` against this server's clock), and refused when they say
 * they were issued (`iat`) more than USER_TOKEN_MAX_CLOCK_SKEW_SECONDS ahead
 * of it.
 */
import { jwtVerify } from 'jose';
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
 * How far ahead of this server's clock a token's `iat` may be, in seconds
 * (a back-end's clock a little ahead). A token issued further in the future
 * came from a clock that cannot be trusted, its `exp` too: refused (jose
 * checks `iat` only for being a number).
 */
export const USER_TOKEN_MAX_CLOCK_SKEW_SECONDS = 300;

/**
 * Whether `token` is an HS256 JWT signed with `secret` whose `sub` is
 * `userId`, whose `exp` (required) has not passed and whose `iat`, if any,
 * is at most USER_TOKEN_MAX_CLOCK_SKEW_SECONDS ahead. Never throws.
 */
export async function isValidUserToken(token: string, secret: string, userId: string): Promise<boolean> {
  if (!TOKEN_SHAPE.test(token)) return false;
  try {
    const { payload } = await jwtVerify(token, encoder.encode(secret), { algorithms: ['HS256'], requiredClaims: ['sub', 'exp'] });
    if (payload.iat !== undefined && payload.iat > Date.now() / 1000 + USER_TOKEN_MAX_CLOCK_SKEW_SECONDS) return false;
    return payload.sub === userId;
  } catch {
    return false;
  }
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
    if (!(await isValidUserToken(token, identity.userTokenSecret, input.userId))) {
      throw new ApiError('unauthorized', 'The X-Kairos-User-Token is not valid for this userId (wrong user or secret, or expired)');
    }
    return { publicAnswer: true, identified: true };
  }
  return { publicAnswer: true, identified: false };
}
