/**
 * Who is calling. Source routes take a write key (HTTP Basic with the key as
 * user name, Segment's convention, or the body `writeKey`); admin routes take
 * IAM (API Gateway has verified SigV4 and says so in the request context) or,
 * on the local stack only, the admin bearer token.
 *
 * Write keys are looked up hashed and cached briefly, so a revoked key is
 * refused within 30 s (POSITIVE_TTL_MS) everywhere while a warm function does not read the
 * store for every request. While the store is unreachable, a key it
 * confirmed within KAIROS_STALE_MAX_SECONDS is served from cache (stale), so
 * an outage does not turn into 401s or 503s for known sources.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { ApiError } from './errors.ts';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { HttpRequest } from './handler-adapter.ts';
import { config } from '#shared/config.ts';
import { findWriteKey, type WriteKeyKind, type WriteKeyLookup } from '#store/write-key-read.ts';
import { remainingMs, withDeadline } from '#store/deadline.ts';
import { isThrottling, isUnavailable } from '#store/faults.ts';

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
/**
 * Lookups remembered, of live keys and of unknown or revoked ones, each
 * apart: past it, the one confirmed longest ago of its own kind goes. Made-up
 * keys (anyone can send them) never evict a live key, whose cached record is
 * what serves it through a store outage.
 */
export const WRITE_KEY_CACHE_SIZE = 1_000;
/** After a failed lookup, how long requests are served from the stale entry before the store is tried again. */
const RETRY_AFTER_FAILURE_MS = 1_000;
/** Deadline of a lookup when the caller gives none. */
const DEFAULT_LOOKUP_MS = 2_000;

interface CacheEntry {
  readonly record: WriteKeyLookup | undefined;
  /** Fresh until then: served without a read. */
  readonly expires: number;
  /** When the store last confirmed this entry. */
  readonly confirmedAt: number;
  /** When a lookup of this key last failed for a store fault (then the entry is being served stale). */
  failedAt?: number;
}

/** Lookups that found a live key, oldest confirmation first. */
const liveKeys = new Map<string, CacheEntry>();
/** Lookups that found no key or a revoked one, oldest confirmation first. */
const refusedKeys = new Map<string, CacheEntry>();
/** At most one lookup per key in flight; concurrent requests share it. */
const inFlight = new Map<string, Promise<WriteKeyLookup | undefined>>();

const cached = (secret: string): CacheEntry | undefined => liveKeys.get(secret) ?? refusedKeys.get(secret);

/** Remember a lookup in the map of its kind (and forget it in the other), evicting that map's oldest past WRITE_KEY_CACHE_SIZE. */
function remember(secret: string, entry: CacheEntry): void {
  const live = entry.record !== undefined && !entry.record.revokedAt;
  const [into, other] = live ? [liveKeys, refusedKeys] : [refusedKeys, liveKeys];
  other.delete(secret);
  into.delete(secret);
  if (into.size >= WRITE_KEY_CACHE_SIZE) into.delete(into.keys().next().value as string);
  into.set(secret, entry);
}

/** Forget cached keys (tests, and after an operator revokes a key in this process). */
export function clearWriteKeyCache(): void {
  liveKeys.clear();
  refusedKeys.clear();
  inFlight.clear();
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

interface Lookup {
  readonly record: WriteKeyLookup | undefined;
  /** Served from cache past its freshness because the store is unreachable. */
  readonly stale: boolean;
}

const isStoreFault = (error: unknown) => isThrottling(error) || isUnavailable(error);

function startLookup(secret: string, deadline: number): Promise<WriteKeyLookup | undefined> {
  const running = inFlight.get(secret);
  if (running) return running;
  const lookup = findWriteKey(secret, { timeoutMs: remainingMs(deadline) }).then((record) => {
    const confirmedAt = Date.now();
    remember(secret, { record, confirmedAt, expires: confirmedAt + (record && !record.revokedAt ? POSITIVE_TTL_MS : NEGATIVE_TTL_MS) });
    return record;
  });
  const settled = lookup.finally(() => {
    if (inFlight.get(secret) === settled) inFlight.delete(secret);
  });
  settled.catch(() => undefined);
  inFlight.set(secret, settled);
  return settled;
}

/**
 * The key's record: from cache while fresh, else from the store within
 * `deadline`. While the store is unreachable (a store fault or the
 * deadline), the last record it confirmed is served stale for up to
 * KAIROS_STALE_MAX_SECONDS; then a request waits for the store only once
 * per RETRY_AFTER_FAILURE_MS, the others are answered from cache at once.
 */
async function lookup(secret: string, now: number, deadline: number): Promise<Lookup> {
  const hit = cached(secret);
  if (hit && hit.expires > now) return { record: hit.record, stale: false };
  const fallback = hit && now - hit.confirmedAt <= config.KAIROS_STALE_MAX_SECONDS * 1_000 ? hit : undefined;
  if (fallback?.failedAt !== undefined && now - fallback.failedAt < RETRY_AFTER_FAILURE_MS) {
    return { record: fallback.record, stale: true };
  }
  if (fallback && inFlight.has(secret)) return { record: fallback.record, stale: true };
  try {
    return { record: await withDeadline(startLookup(secret, deadline), deadline, 'The write key lookup'), stale: false };
  } catch (error) {
    if (!fallback || !isStoreFault(error)) throw error;
    fallback.failedAt = Date.now();
    return { record: fallback.record, stale: true };
  }
}

export interface AuthenticateOptions {
  /** The request's arrival (ms). */
  readonly now?: number;
  /** Instant (epoch ms) by which the key lookup gives up (store fault: 503, or the stale cached key). */
  readonly deadline?: number;
  /**
   * Whether the route takes the key as the body's `writeKey` too (the event
   * routes, Segment's convention); only the 401 for a missing key says so.
   * @default true
   */
  readonly bodyWriteKey?: boolean;
}

/**
 * The 401 message for a request without a write key: how to send one, and,
 * for a bearer token (the local admin token's form, or a key sent that way),
 * that source routes do not read it.
 */
export function missingWriteKeyMessage(headers: Readonly<Record<string, string>>, bodyWriteKey: boolean): string {
  const how = `send it as the HTTP Basic user name with an empty password (curl -u "KEY:")${bodyWriteKey ? ' or as writeKey in the body' : ''}`;
  if (/^Bearer\s/i.test(headers.authorization ?? '')) {
    return `A write key is required: ${how}; an Authorization: Bearer token is not read here (the admin token is for /v1/admin/* routes only)`;
  }
  return `A write key is required: ${how}`;
}

/**
 * Authenticate a source; throws 401 for a missing, malformed, unknown or
 * revoked key, or the store's fault (503/429) when the key is not cached and
 * the store cannot say. `stale`: the key was accepted from cache because the
 * store is unreachable (count it).
 */
export async function authenticateWriteKey(request: HttpRequest, options: AuthenticateOptions = {}): Promise<SourceIdentity & { readonly stale: boolean }> {
  const now = options.now ?? Date.now();
  const secret = basicAuthKey(request.headers) ?? bodyWriteKey(request.body);
  if (!secret) throw new ApiError('unauthorized', missingWriteKeyMessage(request.headers, options.bodyWriteKey ?? true));
  if (!WRITE_KEY_SHAPE.test(secret)) throw new ApiError('unauthorized', 'Unknown write key');
  const { record, stale } = await lookup(secret, now, options.deadline ?? now + DEFAULT_LOOKUP_MS);
  if (!record || record.revokedAt) throw new ApiError('unauthorized', 'Unknown write key');
  return {
    sourceId: record.keyId,
    kind: record.kind,
    stale,
    ...(record.userTokenSecret !== undefined ? { userTokenSecret: record.userTokenSecret } : {}),
  };
}

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Authenticate an operator. Deployed, API Gateway has already checked SigV4
 * and puts the caller in `requestContext.authorizer.iam`. Locally, the bearer
 * token from KAIROS_ADMIN_TOKEN. A write key here is a 403: it is a valid
 * credential without the right. Returns the principal: the IAM user ARN (or
 * access key), or `local-admin`.
 */
export async function authenticateAdmin(event: APIGatewayProxyEventV2): Promise<{ principal: string }> {
  const iam = (event.requestContext as { authorizer?: { iam?: { userArn?: string; accessKey?: string } } } | undefined)?.authorizer?.iam;
  if (iam) return { principal: iam.userArn ?? iam.accessKey ?? 'iam' };
  const headers: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(event.headers ?? {})) if (typeof v === 'string') headers[k.toLowerCase()] = v;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.authorization ?? '')?.[1];
  const token = config.KAIROS_ADMIN_TOKEN;
  if (bearer && token && timingSafeEqual(digest(bearer), digest(token))) return { principal: 'local-admin' };
  const writeKey = basicAuthKey(headers);
  if (writeKey && WRITE_KEY_SHAPE.test(writeKey)) {
    const now = Date.now();
    const { record } = await lookup(writeKey, now, now + DEFAULT_LOOKUP_MS);
    if (record && !record.revokedAt) throw new ApiError('forbidden', 'A write key cannot use operator routes');
  }
  throw new ApiError('unauthorized', missingOperatorMessage(bearer !== undefined, token !== undefined));
}

/**
 * The 401 message of an operator route: what credential it takes here
 * (locally the admin token as a bearer token, which `npm start` prints;
 * deployed, IAM), and whether the bearer token sent was the wrong one.
 */
export function missingOperatorMessage(bearerSent: boolean, adminTokenSet: boolean): string {
  if (!adminTokenSet) return 'Operator credentials are required: sign the request with AWS IAM (SigV4)';
  return bearerSent
    ? 'The bearer token is not this stack\'s admin token (npm start prints it)'
    : 'Operator credentials are required: Authorization: Bearer <admin token> (npm start prints it)';
}
