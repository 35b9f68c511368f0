/**
 * One concern of the HTTP chain: from the bytes API Gateway hands over to the
 * body text, before anything parses it.
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
 */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync, type ZlibOptions } from 'node:zlib';
import { TextDecoder } from 'node:util';
import type { MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { ApiError } from './errors.ts';

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

/** Undo one content coding, producing at most `limit` bytes. */
function decompress(coding: string, input: Buffer, limit: number): Buffer {
  // Output past the limit aborts zlib at that point (it does not inflate the rest).
  const options: ZlibOptions = { maxOutputLength: limit };
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
  let decoder: TextDecoder;
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
