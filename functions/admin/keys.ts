/**
 * Write keys (API.md §1, §5):
 * - POST   /v1/admin/keys          `{"name": "website", "kind"?: "public" | "server",
 *                                  "userTokenSecret"?: string}` → 201 with the new key's
 *                                  secret (`writeKey`), shown this once, never again;
 *                                  kind defaults to public; only a public key takes a
 *                                  user-token secret (32-512 printable ASCII characters);
 * - GET    /v1/admin/keys          every key with its kind, without any secret;
 * - PUT    /v1/admin/keys/{keyId}/user-token-secret  `{"userTokenSecret": string}` →
 *                                  200 the key: sets or rotates the secret user tokens
 *                                  are signed with (old tokens refused within 30 s);
 * - DELETE /v1/admin/keys/{keyId}  revokes it: refused by every source route
 *                                  within 30 s (their lookup cache); revoking
 *                                  again changes nothing.
 */
import * as z from 'zod/mini';
import { ApiError } from '#http/errors.ts';
import type { HttpRequest, HttpResponse } from '#http/handler-adapter.ts';
import { issueDetails } from '#domain/decide/request.ts';
import { hasControlCharacters, hasLoneSurrogate } from '#domain/ingest/limits.ts';
import { KeyStateError, WRITE_KEY_KINDS, createWriteKey, listWriteKeys, revokeWriteKey, setUserTokenSecret } from '#store/write-keys.ts';

/** An HS256 secret: long enough to resist guessing, printable so that it fits in an environment variable. */
const userTokenSecretSchema = z
  .string('must be a string')
  .check(
    z.minLength(32, 'must be at least 32 characters'),
    z.maxLength(512, 'must be at most 512 characters'),
    z.regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
  );

/** `POST /v1/admin/keys` body. */
export const createKeySchema = z.strictObject(
  {
    kind: z.optional(z.enum(WRITE_KEY_KINDS, 'must be "public" or "server"')),
    userTokenSecret: z.optional(userTokenSecretSchema),
    name: z
      .string('must be a string')
      .check(
        z.minLength(1, 'must not be empty'),
        z.maxLength(100, 'must be at most 100 characters'),
        z.refine((name) => !hasControlCharacters(name), 'must not contain control characters'),
        z.refine((name) => !hasLoneSurrogate(name), 'must be valid Unicode'),
        z.refine((name) => name.trim() === name, 'must not start or end with a space'),
      ),
  },
  'the body must be a JSON object',
);

export const setUserTokenSecretSchema = z.strictObject({ userTokenSecret: userTokenSecretSchema }, 'the body must be a JSON object');

/** Key ids are ours (`key_…`, or the local stack's `local-…`): anything else names no key. */
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

function jsonBody(request: HttpRequest): unknown {
  if (request.body === undefined && request.rawBody.trim() !== '') {
    throw new ApiError('unsupported_media_type', 'The body must be JSON (application/json)');
  }
  return request.body ?? {};
}

async function createKeyRoute(request: HttpRequest): Promise<HttpResponse> {
  const parsed = createKeySchema.safeParse(jsonBody(request));
  if (!parsed.success) throw new ApiError('validation_failed', 'The key request is not valid', issueDetails(parsed.error.issues));
  const { name, kind = 'public', userTokenSecret } = parsed.data;
  if (kind === 'server' && userTokenSecret !== undefined) {
    throw new ApiError('validation_failed', 'The key request is not valid', [
      { path: 'userTokenSecret', message: 'only a public key takes a user-token secret (a server key may decide for any user)' },
    ]);
  }
  const { secret, key } = await createWriteKey({ name, kind, ...(userTokenSecret !== undefined ? { userTokenSecret } : {}) });
  return { status: 201, body: { ...key, writeKey: secret } };
}

async function setUserTokenSecretRoute(request: HttpRequest): Promise<HttpResponse> {
  const keyId = request.pathParameters.keyId ?? '';
  const parsed = setUserTokenSecretSchema.safeParse(jsonBody(request));
  if (!parsed.success) throw new ApiError('validation_failed', 'The user-token secret is not valid', issueDetails(parsed.error.issues));
  let key;
  try {
    key = KEY_ID.test(keyId) ? await setUserTokenSecret(keyId, parsed.data.userTokenSecret) : undefined;
  } catch (error) {
    if (error instanceof KeyStateError) {
      throw new ApiError('validation_failed', `The user-token secret cannot be set: ${error.message}`, [{ path: 'keyId', message: error.message }]);
    }
    throw error;
  }
  if (!key) throw new ApiError('not_found', 'No such key');
  return { status: 200, body: key };
}

async function listKeysRoute(): Promise<HttpResponse> {
  return { status: 200, body: { keys: await listWriteKeys() } };
}

async function revokeKeyRoute(request: HttpRequest): Promise<HttpResponse> {
  const keyId = request.pathParameters.keyId ?? '';
  const revoked = KEY_ID.test(keyId) ? await revokeWriteKey(keyId) : undefined;
  if (!revoked) throw new ApiError('not_found', 'No such key');
  return { status: 200, body: revoked };
}

export const keyRoutes = {
  'POST /v1/admin/keys': createKeyRoute,
  'GET /v1/admin/keys': listKeysRoute,
  'PUT /v1/admin/keys/{keyId}/user-token-secret': setUserTokenSecretRoute,
  'DELETE /v1/admin/keys/{keyId}': revokeKeyRoute,
} as const;
