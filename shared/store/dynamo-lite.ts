/**
 * A small DynamoDB client for the reads on decide's request path: GetItem
 * and BatchGetItem over the DynamoDB JSON protocol (`POST /`,
 * `X-Amz-Target: DynamoDB_20120810.<Operation>`,
 * `Content-Type: application/x-amz-json-1.0`), signed with AWS's own SigV4
 * signer (`@smithy/signature-v4`, SHA-256/HMAC from node:crypto), sent with
 * the global fetch (keep-alive), items unmarshalled by
 * `@aws-sdk/util-dynamodb` (keys, strings or numbers, are written here: its
 * general marshaller would cost the decide bundle 3 KB it does not have).
 *
 * Why it exists: the decide function has a bundle budget of 300 KB and a
 * module-load (cold start) budget of 80 ms (ARCHITECTURE.md, Budgets). The
 * AWS SDK v3 DynamoDB client alone bundles to about 300 KB and most of the
 * load time. So the reads decide makes per request — the profile, the write
 * key (shared/http/auth.ts, cached) and the live catalog (cache refreshed in
 * the background) — go through this client, in every function that shares
 * those code paths. Every write, and every other read, uses the SDK
 * (shared/store/client.ts): transactions, conditional writes, queries,
 * retries tuned for writes that must land.
 *
 * Behaviour:
 * - credentials from the Lambda environment (AWS_ACCESS_KEY_ID,
 *   AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), read per request; with
 *   DYNAMODB_ENDPOINT (the local stack) dummy ones;
 * - endpoint DYNAMODB_ENDPOINT or `https://dynamodb.<region>.amazonaws.com`;
 * - one deadline for the whole call (retries and unprocessed keys included),
 *   enforced with AbortSignal.timeout on every attempt;
 * - errors carry what shared/store/errors.ts reads: `name` from the
 *   response's `__type` (ThrottlingException, ProvisionedThroughputExceeded…
 *   → `kind: 'throttled'`), `$metadata.httpStatusCode`, `code` for network
 *   errors (ECONNREFUSED…), `TimeoutError` past the deadline; 5xx, network
 *   and timeouts are `kind: 'unavailable'`, anything else `kind: 'client'`;
 * - throttling and unavailability are retried (bounded, jittered) while the
 *   deadline allows; BatchGetItem's UnprocessedKeys are requested again.
 * - every HTTP request is counted (`requests`, `counts`): "one DynamoDB
 *   request per warm decision" is measured on this client.
 */
import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { unmarshall } from '@aws-sdk/util-dynamodb';
import { config } from '../config.ts';

export type Item = Record<string, unknown>;

export interface LiteCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

export interface DynamoLiteOptions {
  /** Full URL of the endpoint; default DYNAMODB_ENDPOINT, else the regional endpoint. */
  readonly endpoint?: string;
  readonly region?: string;
  /** Default: the Lambda environment's, or dummy ones for a DYNAMODB_ENDPOINT. */
  readonly credentials?: () => LiteCredentials;
  /** Injected transport (tests inject faults here). Default: the global fetch. */
  readonly fetch?: typeof fetch;
  /** Default deadline of a call, retries included (ms). */
  readonly timeoutMs?: number;
  /** Attempts per HTTP request for retryable faults (default 2). */
  readonly maxAttempts?: number;
}

export interface CallOptions {
  readonly consistent?: boolean;
  /** Deadline of this call, retries included (ms). */
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export type FaultKind = 'throttled' | 'unavailable' | 'client';

/** A failed call, shaped like the SDK's errors where shared/store/errors.ts looks. */
export class DynamoLiteError extends Error {
  readonly kind: FaultKind;
  readonly code?: string;
  readonly $metadata: { readonly httpStatusCode?: number };
  constructor(name: string, message: string, kind: FaultKind, options: { status?: number; code?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = name;
    this.kind = kind;
    if (options.code !== undefined) this.code = options.code;
    this.$metadata = options.status === undefined ? {} : { httpStatusCode: options.status };
  }
}

const THROTTLING_TYPES = new Set([
  'ThrottlingException',
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
]);

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT']);

/** The error of a DynamoDB error response (JSON body with `__type` and `message`). */
export function errorFromResponse(status: number, body: string): DynamoLiteError {
  let type = '';
  let message = '';
  try {
    const parsed = JSON.parse(body) as { __type?: unknown; message?: unknown; Message?: unknown };
    if (typeof parsed.__type === 'string') type = parsed.__type.slice(parsed.__type.lastIndexOf('#') + 1);
    const m = parsed.message ?? parsed.Message;
    if (typeof m === 'string') message = m;
  } catch {
    // not JSON: a proxy or load balancer page; classified by status below
  }
  const name = type || (status >= 500 ? 'InternalServerError' : `HttpError${status}`);
  const kind: FaultKind = THROTTLING_TYPES.has(type) ? 'throttled' : status >= 500 ? 'unavailable' : 'client';
  return new DynamoLiteError(name, message || `DynamoDB answered ${status}`, kind, { status });
}

/** A transport failure (refused, reset, aborted by the deadline) as a DynamoLiteError. */
export function errorFromTransport(error: unknown, deadlineHit: boolean): DynamoLiteError {
  if (deadlineHit || (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))) {
    return new DynamoLiteError('TimeoutError', 'DynamoDB did not answer within the deadline', 'unavailable', { cause: error });
  }
  let code: string | undefined;
  for (let e: unknown = error, depth = 0; e && depth < 4 && code === undefined; e = (e as { cause?: unknown }).cause, depth++) {
    const c = (e as { code?: unknown }).code;
    if (typeof c === 'string') code = c;
  }
  const message = error instanceof Error ? error.message : String(error);
  // Any other transport failure is a connection that did not complete: report it as a reset.
  return new DynamoLiteError('NetworkError', `DynamoDB unreachable: ${message}`, 'unavailable', {
    code: code !== undefined && NETWORK_CODES.has(code) ? code : 'ECONNRESET',
    cause: error,
  });
}

/** node:crypto behind the signer's Checksum interface (SHA-256, or HMAC-SHA-256 with a secret). */
class NodeSha256 {
  private hash: ReturnType<typeof createHash> | ReturnType<typeof createHmac>;
  private readonly secret: Uint8Array | string | undefined;
  constructor(secret?: unknown) {
    this.secret = secret === undefined || secret === null ? undefined : toBytes(secret);
    this.hash = this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
  update(data: unknown): void {
    this.hash.update(toBytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.hash.digest()));
  }
  reset(): void {
    this.hash = this.secret === undefined ? createHash('sha256') : createHmac('sha256', this.secret);
  }
}

function toBytes(data: unknown): Uint8Array | string {
  if (typeof data === 'string' || data instanceof Uint8Array) return data;
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  throw new TypeError('SHA-256 input must be a string or bytes');
}

/** JSON wire form: binary attributes are base64 strings. */
function toWire(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v));
}

/** Turn base64 `B`/`BS` values of a wire item back into bytes (what unmarshall expects). */
function decodeBinary(value: unknown): unknown {
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = decodeBinary(value[i]);
    return value;
  }
  const av = value as Record<string, unknown>;
  if (typeof av.B === 'string') av.B = new Uint8Array(Buffer.from(av.B, 'base64'));
  else if (Array.isArray(av.BS)) av.BS = av.BS.map((b) => (typeof b === 'string' ? new Uint8Array(Buffer.from(b, 'base64')) : b));
  else if (av.M && typeof av.M === 'object') for (const k of Object.keys(av.M)) (av.M as Record<string, unknown>)[k] = decodeBinary((av.M as Record<string, unknown>)[k]);
  else if (Array.isArray(av.L)) decodeBinary(av.L);
  return value;
}

/** A key (string, number or binary attributes) in DynamoDB JSON. */
export function marshallKey(key: Item): Record<string, { S: string } | { N: string } | { B: Uint8Array }> {
  const out: Record<string, { S: string } | { N: string } | { B: Uint8Array }> = {};
  for (const [name, value] of Object.entries(key)) {
    if (typeof value === 'string') out[name] = { S: value };
    else if (typeof value === 'number' && Number.isFinite(value)) out[name] = { N: String(value) };
    else if (value instanceof Uint8Array) out[name] = { B: value };
    else throw new TypeError(`key attribute ${name} must be a string, a finite number or bytes`);
  }
  return out;
}

function itemFromWire(item: Record<string, unknown>): Item {
  for (const k of Object.keys(item)) item[k] = decodeBinary(item[k]);
  return unmarshall(item as never, { wrapNumbers: false }) as Item;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function environmentCredentials(local: boolean): () => LiteCredentials {
  if (local) return () => ({ accessKeyId: 'local', secretAccessKey: 'local' });
  return () => {
    const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
    const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
    if (!accessKeyId || !secretAccessKey) {
      throw new DynamoLiteError('CredentialsError', 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set', 'client');
    }
    const sessionToken = process.env.AWS_SESSION_TOKEN;
    return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
  };
}

export class DynamoLite {
  readonly endpoint: URL;
  readonly region: string;
  /** HTTP requests sent (attempts included). */
  requests = 0;
  /** HTTP requests by `<Operation> <table>`. */
  readonly counts = new Map<string, number>();
  private readonly signer: SignatureV4;
  private readonly defaultTransport: typeof fetch;
  private transport: typeof fetch;
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;

  constructor(options: DynamoLiteOptions = {}) {
    this.region = options.region ?? config.AWS_REGION;
    const endpoint = options.endpoint ?? config.DYNAMODB_ENDPOINT ?? `https://dynamodb.${this.region}.amazonaws.com`;
    this.endpoint = new URL(endpoint);
    const credentials = options.credentials ?? environmentCredentials(options.endpoint !== undefined || config.DYNAMODB_ENDPOINT !== undefined);
    this.signer = new SignatureV4({
      service: 'dynamodb',
      region: this.region,
      credentials: () => Promise.resolve(credentials()),
      sha256: NodeSha256 as never,
      uriEscapePath: true,
      applyChecksum: false,
    });
    this.defaultTransport = options.fetch ?? ((input, init) => fetch(input, init));
    this.transport = this.defaultTransport;
    this.timeoutMs = options.timeoutMs ?? 2_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 2);
  }

  /** One item by key, or undefined. */
  async getItem(table: string, key: Item, options: CallOptions = {}): Promise<Item | undefined> {
    const deadline = Date.now() + (options.timeoutMs ?? this.timeoutMs);
    const out = (await this.call(
      'GetItem',
      table,
      { TableName: table, Key: marshallKey(key), ...(options.consistent ? { ConsistentRead: true } : {}) },
      deadline,
      options.signal,
    )) as { Item?: Record<string, unknown> };
    return out.Item ? itemFromWire(out.Item) : undefined;
  }

  /**
   * Items of one table by key (any number; 100 per request), unprocessed
   * keys requested again within the deadline. Missing keys are absent.
   */
  async batchGetItem(table: string, keys: readonly Item[], options: CallOptions = {}): Promise<Item[]> {
    const deadline = Date.now() + (options.timeoutMs ?? this.timeoutMs);
    const found: Item[] = [];
    for (let start = 0; start < keys.length; start += 100) {
      let pending: unknown[] = keys.slice(start, start + 100).map((k) => marshallKey(k));
      for (let round = 0; pending.length > 0; round++) {
        if (round > 0) {
          const pause = Math.min(500, 20 * 2 ** round) * Math.random();
          if (round > 8 || Date.now() + pause >= deadline) {
            throw new DynamoLiteError('ThrottlingException', `BatchGetItem left ${pending.length} keys unprocessed`, 'throttled');
          }
          await sleep(pause);
        }
        const out = (await this.call(
          'BatchGetItem',
          table,
          { RequestItems: { [table]: { Keys: pending, ...(options.consistent ? { ConsistentRead: true } : {}) } } },
          deadline,
          options.signal,
        )) as { Responses?: Record<string, Record<string, unknown>[]>; UnprocessedKeys?: Record<string, { Keys?: unknown[] }> };
        for (const item of out.Responses?.[table] ?? []) found.push(itemFromWire(item));
        pending = out.UnprocessedKeys?.[table]?.Keys ?? [];
      }
    }
    return found;
  }

  /** One operation, retried on throttling/unavailability while the deadline allows. */
  private async call(operation: string, table: string, input: unknown, deadline: number, signal?: AbortSignal): Promise<unknown> {
    const body = toWire(input);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.send(operation, table, body, deadline, signal);
      } catch (error) {
        const retryable = error instanceof DynamoLiteError && error.kind !== 'client' && error.name !== 'TimeoutError';
        const pause = Math.min(200, 10 * 2 ** attempt) * Math.random();
        if (!retryable || attempt >= this.maxAttempts || signal?.aborted || Date.now() + pause >= deadline) throw error;
        await sleep(pause);
      }
    }
  }

  private async send(operation: string, table: string, body: string, deadline: number, signal?: AbortSignal): Promise<unknown> {
    const remaining = deadline - Date.now();
    if (remaining <= 0) throw new DynamoLiteError('TimeoutError', 'DynamoDB did not answer within the deadline', 'unavailable');
    const url = this.endpoint;
    const signed = await this.signer.sign({
      method: 'POST',
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname || '/',
      query: {},
      headers: {
        host: url.host,
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDB_20120810.${operation}`,
      },
      body,
    } as never);
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries((signed as unknown as { headers: Record<string, string> }).headers)) {
      // fetch sets Host itself, to the same value that was signed.
      if (name.toLowerCase() !== 'host') headers[name] = value;
    }
    this.requests++;
    const countKey = `${operation} ${table}`;
    this.counts.set(countKey, (this.counts.get(countKey) ?? 0) + 1);
    const timeout = AbortSignal.timeout(remaining);
    let response: Response;
    let text: string;
    try {
      response = await this.transport(url, { method: 'POST', headers, body, signal: signal ? AbortSignal.any([signal, timeout]) : timeout });
      text = await response.text();
    } catch (error) {
      throw errorFromTransport(error, timeout.aborted);
    }
    if (response.status !== 200) throw errorFromResponse(response.status, text);
    try {
      return JSON.parse(text) as unknown;
    } catch (error) {
      throw new DynamoLiteError('InternalServerError', 'DynamoDB answered 200 with a body that is not JSON', 'unavailable', { status: 200, cause: error });
    }
  }

  /**
   * Replace the transport of this client (undefined: back to the one it was
   * created with). Tests inject the faults DynamoDB Local cannot produce
   * (throttling, 5xx, timeouts) here, as aws-sdk-client-mock does for the SDK.
   */
  setTransport(transport: typeof fetch | undefined): void {
    this.transport = transport ?? this.defaultTransport;
  }

  /** Forget the request counts. */
  resetCounts(): void {
    this.requests = 0;
    this.counts.clear();
  }
}

let shared: DynamoLite | undefined;

/** The process's client (created on first use, from the environment). */
export function dynamoLite(): DynamoLite {
  shared ??= new DynamoLite();
  return shared;
}
