/**
 * One concern of the HTTP chain: the request body, from the bytes API Gateway
 * hands over to the JSON value the handler reads. Two middlewares, in this
 * order: `httpBodyDecoder` (bytes → text) and `httpJsonBody` (text → JSON).
 *
 * `httpBodyDecoder`:
 *
 * - base64 bodies (API Gateway's binary passthrough) become bytes;
 * - `Content-Encoding: gzip`, `deflate` (zlib, or raw deflate as some clients
 *   send it) and `br` are undone, each layer bounded by the route's size limit
 *   WHILE decompressing (zlib's `maxOutputLength`): a decompression bomb costs
 *   at most the limit's worth of output before it is a 413;
 * - the bytes are decoded with the declared `charset` (UTF-8 when none),
 *   strictly: a byte sequence that is not valid in that charset is a 400,
 *   never silently replaced by U+FFFD.
 *
 * The decoded text replaces `event.body` (`isBase64Encoded: false`) and the
 * `content-encoding` header is removed, as middy's body parsers do.
 *
 * `httpJsonBody`: the content type must be JSON (`text/plain` too: Segment's
 * browser client and sendBeacon send it; none is read as JSON), the text
 * valid JSON and nested at most MAX_JSON_NESTING deep; the value goes to
 * `event.parsedBody`, the text stays in `event.body`.
 */
import type { ZlibOptions } from 'node:zlib';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ApiError } from './errors.ts';
import type { DecodedBodyEvent } from './handler-adapter.ts';
import { jsonSyntaxError } from '#domain/text-position.ts';

export interface BodyDecoderOptions {
  /** Most bytes of the body, on the wire and after each decompression layer; past it, 413. */
  readonly maxBodyBytes: number;
}

/** Content codings a body may carry, in the order applied (`gzip, br`: gzip first). At most this many. */
const MAX_CODINGS = 2;

/** The codings this decoder undoes. */
export const SUPPORTED_CONTENT_CODINGS = ['gzip', 'x-gzip', 'deflate', 'br', 'identity'] as const;

const tooLarge = (limit: number) => new ApiError('payload_too_large', `The body is larger than ${limit} bytes`);

function isOutputLimit(error: unknown): boolean {
  return error instanceof RangeError && (error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
}

/**
 * node:zlib, loaded on the first compressed body: most requests are not
 * compressed, and a cold start that imports zlib pays about 7 ms of CPU for
 * it (Node loading the module and building its ES module facade).
 */
const zlib = () => process.getBuiltinModule('node:zlib');

/** Undo one content coding, producing at most `limit` bytes. */
function decompress(coding: string, input: Buffer, limit: number): Buffer {
  // Output past the limit aborts zlib at that point (it does not inflate the rest).
  const options: ZlibOptions = { maxOutputLength: limit };
  const { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } = zlib();
  try {
    switch (coding) {
      case 'gzip':
      case 'x-gzip':
        return gunzipSync(input, options);
      case 'deflate':
        // RFC 9110's deflate is zlib-wrapped; some clients send raw deflate.
        try {
          return inflateSync(input, options);
        } catch (error) {
          if (isOutputLimit(error)) throw error;
          return inflateRawSync(input, options);
        }
      case 'br':
        return brotliDecompressSync(input, { maxOutputLength: limit });
      default:
        throw new ApiError('unsupported_media_type', `Content-Encoding "${coding}" is not supported (use gzip, deflate or br)`);
    }
  } catch (error) {
    if (error instanceof ApiError) throw error;
    if (isOutputLimit(error)) throw tooLarge(limit);
    throw new ApiError('invalid_json', `The body is not valid ${coding} data`);
  }
}

/** The `charset` parameter of a Content-Type, lower-cased, or undefined. */
export function charsetOf(contentType: string): string | undefined {
  for (const part of contentType.split(';').slice(1)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    const value = part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
    return value === '' ? undefined : value;
  }
  return undefined;
}

function decodeText(bytes: Buffer, charset: string): string {
  // The global TextDecoder (node:util's own): importing node:util makes Node build its ES module facade,
  // which reads util's lazy exports (about 10 ms of a cold start).
  let decoder: InstanceType<typeof TextDecoder>;
  try {
    decoder = new TextDecoder(charset, { fatal: true });
  } catch {
    throw new ApiError('unsupported_media_type', `charset "${charset.slice(0, 40)}" is not supported (use UTF-8)`);
  }
  try {
    return decoder.decode(bytes);
  } catch {
    throw new ApiError('invalid_json', `The body is not valid ${decoder.encoding === 'utf-8' ? 'UTF-8' : charset.slice(0, 40)} text`);
  }
}

/**
 * The body's text from its bytes and headers (lower-cased names).
 * Throws ApiError: 413 past `maxBodyBytes` (on the wire or decompressed),
 * 415 for an unknown content coding or charset, 400 for corrupt compressed
 * data or bytes that are not valid text in the declared charset.
 */
export function decodeBodyBytes(bytes: Buffer, headers: Readonly<Record<string, string>>, maxBodyBytes: number): string {
  if (bytes.length > maxBodyBytes) throw tooLarge(maxBodyBytes);
  const codings = (headers['content-encoding'] ?? '')
    .split(',')
    .map((c) => c.trim().toLowerCase())
    .filter((c) => c !== '' && c !== 'identity');
  if (codings.length > MAX_CODINGS) {
    throw new ApiError('unsupported_media_type', `At most ${MAX_CODINGS} content codings are supported`);
  }
  let body = bytes;
  // The last coding listed was applied last: undo it first.
  for (const coding of codings.reverse()) body = decompress(coding, body, maxBodyBytes);
  return decodeText(body, charsetOf(headers['content-type'] ?? '') ?? 'utf-8');
}

function lowerCaseHeaderNames(headers: APIGatewayProxyEventV2['headers'] | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  for (const [k, v] of Object.entries(headers ?? {})) if (typeof v === 'string') out[k.toLowerCase()] = v;
  return out;
}

/** The middy middleware: decodes `event.body` in place; errors go to the chain's error mapping. */
export function httpBodyDecoder(options: BodyDecoderOptions): MiddlewareObj<APIGatewayProxyEventV2> {
  return {
    before: (request) => {
      const event = request.event;
      if (event.requestContext?.http?.method === 'OPTIONS') return;
      if (event.body === undefined || event.body === null || event.body === '') return;
      const headers = lowerCaseHeaderNames(event.headers);
      // A text body API Gateway passed as a string is already UTF-8 text; without a
      // coding or another charset there is nothing to undo but the size check.
      const bytes = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
      event.body = decodeBodyBytes(bytes, headers, options.maxBodyBytes);
      event.isBase64Encoded = false;
      if (event.headers) {
        for (const name of Object.keys(event.headers)) if (name.toLowerCase() === 'content-encoding') delete event.headers[name];
      }
    },
  };
}

/**
 * Deepest nesting of arrays and objects a JSON body may have. Far above
 * what any route accepts (an event's properties nest at most 10 levels
 * below the message, a catalog a few), and low enough that no code walking
 * a body can run out of stack.
 */
export const MAX_JSON_NESTING = 64;

/** Whether valid JSON text nests deeper than `max` (one pass over the text, no recursion). */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

const baseType = (contentType: string) => contentType.split(';')[0]?.trim().toLowerCase() ?? '';

/** JSON, `text/plain` (any charset) and, for trackers, form-urlencoded. */
function isJsonType(contentType: string, trackerContentTypes: boolean): boolean {
  const base = baseType(contentType);
  if (trackerContentTypes && base === 'application/x-www-form-urlencoded') return true;
  return base === 'application/json' || base === 'text/plain' || base.endsWith('+json');
}

/** The media types a catalog in YAML may be sent with. */
export const YAML_MEDIA_TYPES: ReadonlySet<string> = new Set(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml']);

/** Whether a Content-Type (parameters aside, any case) is one of YAML_MEDIA_TYPES. */
export function isYamlType(contentType: string): boolean {
  return YAML_MEDIA_TYPES.has(baseType(contentType));
}

export interface JsonBodyOptions {
  /** Leave a YAML body (YAML_MEDIA_TYPES) unparsed for the handler (catalogs). @default false */
  readonly yaml?: boolean;
  /**
   * Also read RudderStack's `application/x-www-form-urlencoded` as JSON (its
   * node SDK posts gzipped JSON with that type). Source routes only.
   * @default false
   */
  readonly trackerContentTypes?: boolean;
}

/**
 * The JSON value of a body's text under its content type, or undefined for
 * no body (or YAML where allowed). Throws ApiError: 415 for another content
 * type, 400 `invalid_json` for text that is not JSON (one detail: line,
 * column, the line, a hint for common slips), 400
 * `validation_failed` past MAX_JSON_NESTING.
 */
export function parseJsonBody(text: string, contentType: string, options: JsonBodyOptions = {}): unknown {
  if (text.length === 0) return undefined;
  if (options.yaml === true && isYamlType(contentType)) return undefined;
  if (contentType !== '' && !isJsonType(contentType, options.trackerContentTypes === true)) {
    throw new ApiError(
      'unsupported_media_type',
      options.yaml === true ? 'The body must be JSON (application/json) or, for a catalog, YAML (application/yaml)' : 'The body must be JSON (application/json)',
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const e = jsonSyntaxError(text, error);
    throw new ApiError('invalid_json', 'The body is not valid JSON', [
      {
        path: '(root)',
        message: `${e.message}${e.line === undefined ? '' : ` (line ${e.line}, column ${e.column})`}${e.hint ? `: ${e.hint}` : ''}`,
        ...(e.position === undefined ? {} : { position: e.position, line: e.line, column: e.column, excerpt: e.excerpt }),
        ...(e.hint ? { hint: e.hint } : {}),
      },
    ]);
  }
  if (nestsDeeperThan(text, MAX_JSON_NESTING)) {
    throw new ApiError('validation_failed', `The body nests deeper than ${MAX_JSON_NESTING} levels`, [
      { path: '(root)', message: `must nest at most ${MAX_JSON_NESTING} levels of arrays and objects` },
    ]);
  }
  return value;
}

/** The middy middleware: parses the decoded text (use after httpBodyDecoder) into `event.parsedBody`. */
export function httpJsonBody(options: JsonBodyOptions = {}): MiddlewareObj<APIGatewayProxyEventV2> {
  return {
    before: (request) => {
      const event = request.event as DecodedBodyEvent;
      if (event.requestContext?.http?.method === 'OPTIONS') return;
      if (typeof event.body !== 'string' || event.body === '') return;
      if (event.isBase64Encoded) throw new Error('httpJsonBody needs httpBodyDecoder before it');
      const headers = lowerCaseHeaderNames(event.headers);
      event.parsedBody = parseJsonBody(event.body, headers['content-type'] ?? '', options);
    },
  };
}
