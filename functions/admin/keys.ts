/**
 * Write keys (API.md §5):
 * - POST   /v1/admin/keys          `{"name": "website"}` → 201 with the new key's
 *                                  secret (`writeKey`), shown this once, never again;
 * - GET    /v1/admin/keys          every key, without its secret;
 * - DELETE /v1/admin/keys/{keyId}  revokes it: refused by every source route
 *                                  within 30 s (their lookup cache); revoking
 *                                  again changes nothing.
 */
import * as z from 'zod/mini';
import { ApiError } from '#http/errors.ts';
import type { HttpRequest, HttpResponse } from '#http/middleware.ts';
import { issueDetails } from '#domain/decide/request.ts';
import { hasControlCharacters, hasLoneSurrogate } from '#domain/ingest/limits.ts';
import { createWriteKey, listWriteKeys, revokeWriteKey } from '#store/keys.ts';

/** `POST /v1/admin/keys` body. */
export const createKeySchema = z.strictObject(
  {
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

/** Key ids are ours (`key_…`, or the local stack's `local-…`): anything else names no key. */
const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

async function createKeyRoute(request: HttpRequest): Promise<HttpResponse> {
  if (request.body === undefined && request.rawBody.trim() !== '') {
    throw new ApiError('unsupported_media_type', 'The body must be JSON (application/json)');
  }
  const parsed = createKeySchema.safeParse(request.body ?? {});
  if (!parsed.success) throw new ApiError('validation_failed', 'The key request is not valid', issueDetails(parsed.error.issues));
  const { secret, key } = await createWriteKey(parsed.data.name);
  return { status: 201, body: { ...key, writeKey: secret } };
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
  'DELETE /v1/admin/keys/{keyId}': revokeKeyRoute,
} as const;
