/**
 * Who is calling. Source routes take a write key (HTTP Basic with the key as
 * user name, Segment's convention, or the body `writeKey`); admin routes take
 * IAM (API Gateway has verified SigV4 and says so in the request context) or,
 * on the local stack only, the admin bearer token.
 *
 * Write keys are looked up hashed and cached briefly, so a revoked key is
 * refused within 60 s everywhere while a warm function does not read the
 * store for every request.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { ApiError } from './errors.ts';
import type { HttpRequest } from './middleware.ts';
import { config } from '../config.ts';
import { findWriteKey, type WriteKeyKind, type WriteKeyLookup } from '../store/write-key-read.ts';

export interface SourceIdentity {
  /** Stable id of the source (the write key's id): the scope of messageId deduplication. */
  readonly sourceId: string;
  /** What the key may do (API.md §1); shared/http/key-rights.ts applies it to decide. */
  readonly kind: WriteKeyKind;
  /** The secret the key's user tokens are signed with (public keys), if the operator set one. */
  readonly userTokenSecret?: string;
}

const POSITIVE_TTL_MS = 30_000;
const NEGATIVE_TTL_MS = 5_000;
const MAX_CACHE = 1_000;
const cache = new Map<string, { record: WriteKeyLookup | undefined; expires: number }>();

/** Forget cached keys (tests, and after an operator revokes a key in this process). */
export function clearWriteKeyCache(): void {
  cache.clear();
}

/** The write key in `Authorization: Basic base64(key:)`, if any. */
export function basicAuthKey(headers: Readonly<Record<string, string>>): string | undefined {
  const header = headers.authorization;
  if (!header) return undefined;
  const match = /^Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(header);
  if (!match?.[1]) return undefined;
  const decoded = Buffer.from(match[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  const key = colon === -1 ? decoded : decoded.slice(0, colon);
  return key.length > 0 ? key : undefined;
}

function bodyWriteKey(body: unknown): string | undefined {
  if (body && typeof body === 'object' && !Array.isArray(body) && Object.hasOwn(body, 'writeKey')) {
    const key = (body as Record<string, unknown>).writeKey;
    return typeof key === 'string' && key.length > 0 ? key : undefined;
  }
  return undefined;
}

const WRITE_KEY_SHAPE = /^[\x21-\x7e]{1,200}$/;

async function lookup(secret: string, now: number): Promise<WriteKeyLookup | undefined> {
  const hit = cache.get(secret);
  if (hit && hit.expires > now) return hit.record;
  const record = await findWriteKey(secret);
  if (cache.size >= MAX_CACHE) cache.clear();
  cache.set(secret, { record, expires: now + (record && !record.revokedAt ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS) });
  return record;
}

/** Authenticate a source; throws 401 for a missing, malformed, unknown or revoked key. */
export async function authenticateWriteKey(request: HttpRequest, now = Date.now()): Promise<SourceIdentity> {
  const secret = basicAuthKey(request.headers) ?? bodyWriteKey(request.body);
  if (!secret) throw new ApiError('unauthorized', 'A write key is required (HTTP Basic user name or body writeKey)');
  if (!WRITE_KEY_SHAPE.test(secret)) throw new ApiError('unauthorized', 'Unknown write key');
  const record = await lookup(secret, now);
  if (!record || record.revokedAt) throw new ApiError('unauthorized', 'Unknown write key');
  return {
    sourceId: record.keyId,
    kind: record.kind,
    ...(record.userTokenSecret !== undefined ? { userTokenSecret: record.userTokenSecret } : {}),
  };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Authenticate an operator. Deployed, API Gateway has already checked SigV4
 * and puts the caller in `requestContext.authorizer.iam`. Locally, the bearer
 * token from KAIROS_ADMIN_TOKEN. A write key here is a 403: it is a valid
 * credential without the right.
 */
export async function authenticateAdmin(request: HttpRequest): Promise<{ principal: string }> {
  const iam = (request.event.requestContext as { authorizer?: { iam?: { userArn?: string; accessKey?: string } } })
    .authorizer?.iam;
  if (iam) return { principal: iam.userArn ?? iam.accessKey ?? 'iam' };
  const header = request.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
  const token = config.KAIROS_ADMIN_TOKEN;
  if (bearer && token && timingSafeEqual(digest(bearer), digest(token))) return { principal: 'local-admin' };
  const writeKey = basicAuthKey(request.headers);
  if (writeKey && WRITE_KEY_SHAPE.test(writeKey)) {
    const record = await lookup(writeKey, Date.now());
    if (record && !record.revokedAt) throw new ApiError('forbidden', 'A write key cannot use operator routes');
  }
  throw new ApiError('unauthorized', 'Operator credentials are required');
}
