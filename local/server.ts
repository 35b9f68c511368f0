/**
 * The local API Gateway: a node:http server on 127.0.0.1 that does what an
 * API Gateway HTTP API with Lambda proxy integrations (payload 2.0) does in
 * front of the deployed functions. It matches the route table
 * (shared/http/routes.ts), turns the request into the same event API Gateway
 * sends, invokes the same handler module and writes the function's result
 * back, with the route key API Gateway sends: the table's (`POST /v1/batch`;
 * `HEAD <path>` for a HEAD on a GET route, routes.ts `methodsOf`, answered
 * without its body as API Gateway does: Node's http server sends no body to
 * a HEAD, and the content-length written is the GET answer's),
 * `OPTIONS <path>` for a preflight on a CORS path, and `$default` for a
 * request no route matches (an unknown path or another method), which goes
 * to the function of API Gateway's `$default` route as deployed. Requests
 * that never reach a function are answered here in the API.md §6 shape and
 * codes, each with an x-request-id: a body over 10 MB 413
 * `payload_too_large`, headers over the limit 431 `payload_too_large`, a
 * body or headers that never finish 503 `unavailable` with Retry-After, a
 * malformed request line, header or chunk 400 `validation_failed`.
 */
import { randomBytes } from 'node:crypto';
import { isUtf8 } from 'node:buffer';
import { createServer, maxHeaderSize, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { ErrorBody, ErrorCode } from '#http/errors.ts';
import { DEFAULT_ROUTE_FUNCTION, matchRoute, type FunctionName } from '#http/routes.ts';
import { invokeFunction, LOCAL_ACCOUNT_ID, type LocalFunction } from './lambda.ts';

/** API Gateway HTTP API's maximum request payload. */
export const API_GATEWAY_MAX_BODY_BYTES = 10 * 1024 * 1024;

export interface LocalServerOptions {
  /** The HTTP functions of the route table, by name. */
  readonly functions: Readonly<Record<FunctionName, LocalFunction>>;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 or absent: a free port. */
  readonly port?: number;
  readonly region?: string;
  /** Default 10 MB (API Gateway). */
  readonly maxBodyBytes?: number;
  /** Time allowed to receive a whole body once the headers are in. Default 30 s. */
  readonly bodyTimeoutMs?: number;
  /** Time allowed to receive the request headers. Default 10 s. */
  readonly headersTimeoutMs?: number;
  /** While false, every request gets 503 (the stack is still starting). */
  readonly isReady?: () => boolean;
  /** Where failures of the functions themselves are reported (stderr by default). */
  readonly onFunctionError?: (route: string, error: Error, reason: string) => void;
  /** One line per request (method, path, status, ms). */
  readonly accessLog?: (line: string) => void;
}

export interface LocalServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  /** Stop accepting, let in-flight requests finish (bounded), close keep-alive sockets. */
  stop(): Promise<void>;
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

/** API Gateway's own request ids look like `JKJaXmPLvHcESHA=`. */
const apiGatewayRequestId = (): string => randomBytes(11).toString('base64');

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number) => String(n).padStart(2, '0');
/** requestContext.time: `12/Mar/2020:19:03:58 +0000`. */
function clfTime(date: Date): string {
  return `${pad(date.getUTCDate())}/${MONTHS[date.getUTCMonth()]}/${date.getUTCFullYear()}:${pad(date.getUTCHours())}:${pad(
    date.getUTCMinutes(),
  )}:${pad(date.getUTCSeconds())} +0000`;
}

/** Bodies API Gateway passes as text; anything else arrives base64-encoded. */
function isTextual(contentType: string): boolean {
  const base = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (base === '') return false;
  return (
    base.startsWith('text/') ||
    base === 'application/json' ||
    base.endsWith('+json') ||
    base === 'application/xml' ||
    base.endsWith('+xml') ||
    base === 'application/javascript' ||
    base === 'application/yaml' ||
    base === 'application/x-yaml'
  );
}

interface ParsedHeaders {
  readonly headers: Record<string, string>;
  readonly cookies: string[];
}

/** Lower-cased names, repeated headers comma-joined, cookies split out (payload 2.0). */
function collectHeaders(raw: readonly string[]): ParsedHeaders {
  const headers: Record<string, string> = Object.create(null);
  const cookies: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] ?? '').toLowerCase();
    const value = raw[i + 1] ?? '';
    if (name === 'cookie') {
      for (const part of value.split(';')) {
        const cookie = part.trim();
        if (cookie) cookies.push(cookie);
      }
      continue;
    }
    headers[name] = name in headers ? `${headers[name]},${value}` : value;
  }
  return { headers, cookies };
}

function splitTarget(target: string): { rawPath: string; rawQueryString: string } | undefined {
  let pathAndQuery = target;
  if (!target.startsWith('/')) {
    // absolute-form (`GET http://host/path`), which proxies send.
    try {
      const url = new URL(target);
      pathAndQuery = `${url.pathname}${url.search}`;
    } catch {
      return undefined;
    }
  }
  const hash = pathAndQuery.indexOf('#');
  if (hash !== -1) pathAndQuery = pathAndQuery.slice(0, hash);
  const q = pathAndQuery.indexOf('?');
  return q === -1
    ? { rawPath: pathAndQuery, rawQueryString: '' }
    : { rawPath: pathAndQuery.slice(0, q), rawQueryString: pathAndQuery.slice(q + 1) };
}

function queryParameters(rawQueryString: string): Record<string, string> | undefined {
  if (!rawQueryString) return undefined;
  const out: Record<string, string> = Object.create(null);
  for (const part of rawQueryString.split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const rawName = eq === -1 ? part : part.slice(0, eq);
    const rawValue = eq === -1 ? '' : part.slice(eq + 1);
    const name = safeDecode(rawName);
    const value = safeDecode(rawValue);
    out[name] = name in out ? `${out[name]},${value}` : value;
  }
  return Object.keys(out).length > 0 ? { ...out } : undefined;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replaceAll('+', ' '));
  } catch {
    return s;
  }
}

type BodyResult =
  | { readonly kind: 'ok'; readonly body: Buffer }
  | { readonly kind: 'too_large' }
  | { readonly kind: 'timeout' }
  | { readonly kind: 'aborted' };

/**
 * Read the body with API Gateway's limit, counting as it arrives (a
 * declared Content-Length over the limit is refused before reading), and
 * give up when it does not arrive in time.
 */
function readBody(req: IncomingMessage, limit: number, timeoutMs: number): Promise<BodyResult> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.resolve({ kind: 'too_large' });
  return new Promise((resolveBody) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const finish = (result: BodyResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('aborted', onAborted);
      req.off('error', onAborted);
      req.off('close', onClose);
      resolveBody(result);
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        chunks.length = 0;
        finish({ kind: 'too_large' });
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => finish({ kind: 'ok', body: Buffer.concat(chunks, size) });
    const onAborted = () => finish({ kind: 'aborted' });
    const onClose = () => {
      if (!req.complete) finish({ kind: 'aborted' });
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('aborted', onAborted);
    req.on('error', onAborted);
    req.on('close', onClose);
  });
}

/**
 * An answer of the local API Gateway itself, in the API.md §6 shape: the
 * body and its headers (JSON, `x-request-id`, `apigw-requestid`, its
 * length, then `extra`).
 */
function errorAnswer(
  code: ErrorCode,
  message: string,
  requestId: string,
  extra: Record<string, string> = {},
): { readonly body: string; readonly headers: Record<string, string> } {
  const error: ErrorBody = { error: { code, message } };
  const body = JSON.stringify(error);
  return {
    body,
    headers: {
      ...JSON_HEADERS,
      'x-request-id': requestId,
      'apigw-requestid': requestId,
      'content-length': String(Buffer.byteLength(body)),
      ...extra,
    },
  };
}

function sendError(
  res: ServerResponse,
  status: number,
  code: ErrorCode,
  message: string,
  requestId: string,
  extra: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const answer = errorAnswer(code, message, requestId, extra);
  res.writeHead(status, answer.headers);
  res.end(answer.body);
}

/**
 * The answer to a request Node's HTTP parser refuses before there is a
 * request to route (the `clientError` codes), in API.md §6 codes:
 * request line and headers over Node's limit (`http.maxHeaderSize`, 16 KB by
 * default; `HPE_HEADER_OVERFLOW`) 431
 * `payload_too_large`; headers that never finish arriving
 * (`ERR_HTTP_REQUEST_TIMEOUT`) 503 `unavailable` with `Retry-After: 1`,
 * as a body that never finishes does; anything else (a malformed request
 * line, header or chunk) 400 `validation_failed`.
 */
export function malformedRequestAnswer(parserCode: string | undefined): {
  readonly status: number;
  readonly code: ErrorCode;
  readonly message: string;
  readonly headers?: Record<string, string>;
} {
  if (parserCode === 'HPE_HEADER_OVERFLOW') {
    return { status: 431, code: 'payload_too_large', message: `The request line and headers are larger than this server accepts (${maxHeaderSize} bytes; API Gateway: 10240)` };
  }
  if (parserCode === 'ERR_HTTP_REQUEST_TIMEOUT') {
    return { status: 503, code: 'unavailable', message: 'The request did not arrive in time; send it again', headers: { 'retry-after': '1' } };
  }
  return { status: 400, code: 'validation_failed', message: 'Malformed HTTP request' };
}

/** How long the body of a refused request is drained before the connection is cut (loaded machines upload 10 MB slowly). */
const REFUSED_BODY_DRAIN_MS = 30_000;

const hasPendingBody = (req: IncomingMessage): boolean =>
  !req.complete &&
  (req.headers['transfer-encoding'] !== undefined ||
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0'));

/**
 * Answer a request without (fully) reading its body. A connection with an
 * unread body cannot be reused: say `connection: close`, let the client read
 * the answer while what it still sends is discarded (for at most
 * REFUSED_BODY_DRAIN_MS), then close.
 */
function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  code: ErrorCode,
  message: string,
  requestId: string,
  extra: Record<string, string> = {},
): void {
  if (hasPendingBody(req)) {
    extra = { ...extra, connection: 'close' };
    res.once('finish', () => {
      // Drain what the client still sends, so it reads the answer instead of a reset; a client that
      // keeps sending past REFUSED_BODY_DRAIN_MS is cut off.
      const cutOff = setTimeout(() => req.socket.destroy(), REFUSED_BODY_DRAIN_MS);
      cutOff.unref();
      req.once('end', () => {
        clearTimeout(cutOff);
        req.socket.end();
      });
      req.resume();
    });
  }
  sendError(res, status, code, message, requestId, extra);
}

interface StructuredResult {
  statusCode: number;
  headers?: Record<string, unknown>;
  cookies?: unknown;
  body?: unknown;
  isBase64Encoded?: unknown;
}

function isStructured(result: unknown): result is StructuredResult {
  return typeof result === 'object' && result !== null && !Array.isArray(result) && 'statusCode' in result;
}

/** Build the API Gateway HTTP API (payload 2.0) event. */
export function toApiGatewayEvent(input: {
  req: IncomingMessage;
  routeKey: string;
  method: string;
  rawPath: string;
  rawQueryString: string;
  pathParameters: Record<string, string>;
  body: Buffer;
  requestId: string;
  region: string;
  now?: Date;
}): APIGatewayProxyEventV2 {
  const { req, body } = input;
  const now = input.now ?? new Date();
  const { headers, cookies } = collectHeaders(req.rawHeaders);
  const host = (headers.host ?? '127.0.0.1').replace(/:\d+$/, '');
  const contentType = headers['content-type'] ?? '';
  const sourceIp = (req.socket.remoteAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
  const query = queryParameters(input.rawQueryString);
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: input.routeKey,
    rawPath: input.rawPath,
    rawQueryString: input.rawQueryString,
    ...(cookies.length > 0 ? { cookies } : {}),
    headers: { ...headers },
    ...(query ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: LOCAL_ACCOUNT_ID,
      apiId: 'local',
      domainName: host,
      domainPrefix: host.split('.')[0] ?? host,
      http: {
        method: input.method,
        path: input.rawPath,
        protocol: `HTTP/${req.httpVersion}`,
        sourceIp,
        userAgent: headers['user-agent'] ?? '',
      },
      requestId: input.requestId,
      routeKey: input.routeKey,
      stage: '$default',
      time: clfTime(now),
      timeEpoch: now.getTime(),
    },
    ...(Object.keys(input.pathParameters).length > 0 ? { pathParameters: { ...input.pathParameters } } : {}),
    isBase64Encoded: false,
  };
  if (body.length > 0) {
    const asText = (isTextual(contentType) || contentType === '') && isUtf8(body);
    event.body = asText ? body.toString('utf8') : body.toString('base64');
    event.isBase64Encoded = !asText;
  }
  return event;
}

function writeResult(res: ServerResponse, result: unknown, requestId: string): boolean {
  const headers: Record<string, string | string[]> = { 'apigw-requestid': requestId };
  let status = 200;
  let body: Buffer;
  if (isStructured(result)) {
    if (!Number.isInteger(result.statusCode) || result.statusCode < 100 || result.statusCode > 599) return false;
    status = result.statusCode;
    for (const [name, value] of Object.entries(result.headers ?? {})) {
      if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
        headers[name.toLowerCase()] = String(value);
      }
    }
    if (Array.isArray(result.cookies) && result.cookies.length > 0) {
      headers['set-cookie'] = result.cookies.map(String);
    }
    const text = result.body === undefined || result.body === null ? '' : String(result.body);
    body = result.isBase64Encoded === true ? Buffer.from(text, 'base64') : Buffer.from(text, 'utf8');
  } else {
    // No statusCode: API Gateway infers 200 with the result as a JSON body.
    headers['content-type'] = 'application/json';
    body = Buffer.from(typeof result === 'string' ? result : JSON.stringify(result ?? null), 'utf8');
  }
  headers['content-length'] = String(body.length);
  res.writeHead(status, headers);
  res.end(body);
  return true;
}

export async function startLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const region = options.region ?? 'us-east-1';
  const maxBodyBytes = options.maxBodyBytes ?? API_GATEWAY_MAX_BODY_BYTES;
  const bodyTimeoutMs = options.bodyTimeoutMs ?? 30_000;
  const isReady = options.isReady ?? (() => true);
  const reportError =
    options.onFunctionError ??
    ((route: string, error: Error, reason: string) =>
      console.error(`[kairos] ${route}: function ${reason}: ${error.stack ?? error.message}`));
  const inFlight = new Set<Promise<void>>();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const started = performance.now();
    const requestId = apiGatewayRequestId();
    const method = (req.method ?? 'GET').toUpperCase();
    const target = splitTarget(req.url ?? '/');
    res.once('finish', () => {
      options.accessLog?.(`${method} ${target?.rawPath ?? req.url} ${res.statusCode} ${(performance.now() - started).toFixed(1)} ms`);
    });
    if (!isReady()) {
      refuse(req, res, 503, 'unavailable', 'Kairos is starting; retry in a moment', requestId, { 'retry-after': '1' });
      return;
    }
    if (!target) {
      refuse(req, res, 404, 'not_found', 'No such route', requestId);
      return;
    }
    const { rawPath, rawQueryString } = target;

    // The route key and function API Gateway would pick (infra/constructs/kairos-http-api.ts).
    const match = matchRoute(method, rawPath);
    let key: string;
    let functionName: FunctionName;
    let pathParameters: Record<string, string> = {};
    // A preflight goes to the function of a CORS route on that path; the functions answer it.
    const corsMatch =
      !match.route && method === 'OPTIONS'
        ? match.allowed.map((allowed) => matchRoute(allowed, rawPath)).find((m) => m.route?.cors === true)
        : undefined;
    if (match.route) {
      key = match.key;
      functionName = match.route.function;
      pathParameters = match.pathParameters;
    } else if (corsMatch?.route) {
      key = `OPTIONS ${corsMatch.route.path}`;
      functionName = corsMatch.route.function;
      pathParameters = corsMatch.pathParameters;
    } else {
      // No route: API Gateway's $default route (its function answers 404 or 405 with Allow).
      key = '$default';
      functionName = DEFAULT_ROUTE_FUNCTION;
    }

    const read = await readBody(req, maxBodyBytes, bodyTimeoutMs);
    if (read.kind === 'aborted') {
      res.destroy();
      return;
    }
    if (read.kind === 'too_large') {
      refuse(req, res, 413, 'payload_too_large', `The body is larger than ${maxBodyBytes} bytes`, requestId, {
        connection: 'close',
      });
      return;
    }
    if (read.kind === 'timeout') {
      // A client whose upload stalled retries (Segment's and RudderStack's SDKs retry a 503; the same messageIds are safe).
      refuse(req, res, 503, 'unavailable', 'The request body did not arrive in time; send it again', requestId, {
        'retry-after': '1',
        connection: 'close',
      });
      return;
    }

    const fn = options.functions[functionName];
    const event = toApiGatewayEvent({
      req,
      routeKey: key,
      method,
      rawPath,
      rawQueryString,
      pathParameters,
      body: read.body,
      requestId,
      region,
    });
    const outcome = await invokeFunction(fn, event, region);
    if (res.destroyed) return;
    if (!outcome.ok) {
      reportError(key, outcome.error, outcome.reason);
      if (outcome.reason === 'request_too_large') {
        sendError(res, 413, 'payload_too_large', 'The request is larger than a function accepts', requestId);
      } else if (outcome.reason === 'timeout') {
        sendError(res, 503, 'unavailable', 'The function did not answer in time', requestId, { 'retry-after': '1' });
      } else {
        sendError(res, 500, 'internal', 'Internal error', requestId);
      }
      return;
    }
    try {
      if (!writeResult(res, outcome.result, requestId)) {
        reportError(key, new Error('The function returned an invalid statusCode'), 'malformed response');
        sendError(res, 500, 'internal', 'Internal error', requestId);
      }
    } catch (error) {
      // e.g. a header value Node refuses; API Gateway answers 500 for a malformed integration response.
      reportError(key, error as Error, 'malformed response');
      if (!res.headersSent) sendError(res, 500, 'internal', 'Internal error', requestId);
      else res.destroy();
    }
  };

  const server = createServer(
    {
      headersTimeout: options.headersTimeoutMs ?? 10_000,
      // Backstop behind the body timeout above.
      requestTimeout: bodyTimeoutMs + (options.headersTimeoutMs ?? 10_000) + 5_000,
      keepAliveTimeout: 5_000,
    },
    (req, res) => {
      const task = handle(req, res)
        .catch((error: unknown) => {
          console.error('[kairos] local server error:', error);
          if (!res.headersSent) sendError(res, 500, 'internal', 'Internal error', apiGatewayRequestId());
          else res.destroy();
        })
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    },
  );
  // Malformed HTTP (bad request line, oversized headers, headers that never finish): answered in API.md §6 codes, then
  // closed; never a crash.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const { status, code, message, headers } = malformedRequestAnswer(error.code);
    const answer = errorAnswer(code, message, apiGatewayRequestId(), { ...headers, connection: 'close' });
    const head = Object.entries(answer.headers).map(([name, value]) => `${name}: ${value}\r\n`).join('');
    socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${head}\r\n${answer.body}`);
  });

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolveListen();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';

  let stopping: Promise<void> | undefined;
  return {
    url: `http://${host}:${port}`,
    port,
    server,
    stop() {
      stopping ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        server.closeIdleConnections();
        const drained = Promise.allSettled([...inFlight]);
        await Promise.race([drained, new Promise((r) => setTimeout(r, 5_000).unref())]);
        server.closeAllConnections();
        await closed;
      })();
      return stopping;
    },
  };
}
