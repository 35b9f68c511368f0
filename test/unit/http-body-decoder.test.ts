/**
 * The body decoder of the HTTP chain (shared/http/body-decoder.ts): content
 * codings, size limits applied while decompressing, strict charsets.
 */
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import middy from '@middy/core';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { charsetOf, decodeBodyBytes, httpBodyDecoder } from '#http/body-decoder.ts';
import { ApiError } from '#http/errors.ts';
import { apiGatewayEvent, lambdaContext } from '../support/apigw.ts';

const LIMIT = 500 * 1024;
const json = JSON.stringify({ batch: [{ type: 'track', event: 'Order Completed', userId: 'u-1', properties: { city: 'Málaga ☀' } }] });

/** The ApiError code and status a call throws (or `ok`). */
function outcome(run: () => unknown): string {
  try {
    run();
    return 'ok';
  } catch (error) {
    if (error instanceof ApiError) return `${error.status} ${error.code}`;
    throw error;
  }
}

describe('content codings', () => {
  it.each([
    ['gzip', gzipSync],
    ['x-gzip', gzipSync],
    ['deflate', deflateSync],
    ['br', brotliCompressSync],
  ] as const)('undoes %s', (coding, compress) => {
    const body = compress(Buffer.from(json, 'utf8'));
    expect(decodeBodyBytes(body, { 'content-encoding': coding, 'content-type': 'application/json' }, LIMIT)).toBe(json);
  });

  it('reads raw deflate, as some clients send for "deflate"', () => {
    expect(decodeBodyBytes(deflateRawSync(Buffer.from(json)), { 'content-encoding': 'Deflate' }, LIMIT)).toBe(json);
  });

  it('undoes two codings in reverse order of application, and ignores identity', () => {
    const body = brotliCompressSync(gzipSync(Buffer.from(json)));
    expect(decodeBodyBytes(body, { 'content-encoding': 'gzip, identity, br' }, LIMIT)).toBe(json);
  });

  it('refuses an unknown coding (415), more than two codings (415) and corrupt data (400)', () => {
    expect(outcome(() => decodeBodyBytes(Buffer.from(json), { 'content-encoding': 'compress' }, LIMIT))).toBe('415 unsupported_media_type');
    const triple = gzipSync(gzipSync(gzipSync(Buffer.from(json))));
    expect(outcome(() => decodeBodyBytes(triple, { 'content-encoding': 'gzip, gzip, gzip' }, LIMIT))).toBe('415 unsupported_media_type');
    expect(outcome(() => decodeBodyBytes(Buffer.from(json), { 'content-encoding': 'gzip' }, LIMIT))).toBe('400 invalid_json');
    expect(outcome(() => decodeBodyBytes(Buffer.from(json), { 'content-encoding': 'br' }, LIMIT))).toBe('400 invalid_json');
  });
});

describe('size limits', () => {
  it('413 for a body over the limit on the wire', () => {
    expect(outcome(() => decodeBodyBytes(Buffer.alloc(LIMIT + 1, 0x20), {}, LIMIT))).toBe('413 payload_too_large');
  });

  it('413 for a small compressed body that decompresses past the limit; exactly the limit is fine', () => {
    const atLimit = gzipSync(Buffer.alloc(LIMIT, 0x20));
    expect(decodeBodyBytes(atLimit, { 'content-encoding': 'gzip' }, LIMIT)).toHaveLength(LIMIT);
    const overLimit = gzipSync(Buffer.alloc(LIMIT + 1, 0x20));
    expect(overLimit.length).toBeLessThan(2048);
    expect(outcome(() => decodeBodyBytes(overLimit, { 'content-encoding': 'gzip' }, LIMIT))).toBe('413 payload_too_large');
    for (const [coding, compress] of [
      ['deflate', deflateSync],
      ['br', brotliCompressSync],
    ] as const) {
      expect(outcome(() => decodeBodyBytes(compress(Buffer.alloc(LIMIT + 1, 0x20)), { 'content-encoding': coding }, LIMIT))).toBe(
        '413 payload_too_large',
      );
    }
  });

  it('stops decompressing at the limit: a bomb whose tail is corrupt is a 413, its tail never read', () => {
    // 8 MB of spaces in a few KB, cut short: inflating it whole ends in a
    // corrupt-data error (shown with a limit above 8 MB); a decoder that stops at
    // the limit never reaches the cut. (Brotli packs the same 8 MB in 14 bytes: nothing to cut.)
    for (const [coding, compress] of [
      ['gzip', gzipSync],
      ['deflate', deflateSync],
    ] as const) {
      const bomb = compress(Buffer.alloc(8 * 1024 * 1024, 0x20));
      const cut = bomb.subarray(0, bomb.length - 16);
      expect(outcome(() => decodeBodyBytes(cut, { 'content-encoding': coding }, 16 * 1024 * 1024))).toBe('400 invalid_json');
      expect(outcome(() => decodeBodyBytes(cut, { 'content-encoding': coding }, LIMIT))).toBe('413 payload_too_large');
    }
  }, 60_000);

  it('applies the limit to every layer of a doubly compressed bomb', () => {
    const inner = gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x20));
    const outer = gzipSync(inner);
    expect(outcome(() => decodeBodyBytes(outer, { 'content-encoding': 'gzip, gzip' }, LIMIT))).toBe('413 payload_too_large');
  }, 60_000);
});

describe('charsets: strict decoding', () => {
  it('reads UTF-8 by default, and drops a byte-order mark', () => {
    expect(decodeBodyBytes(Buffer.from(json, 'utf8'), { 'content-type': 'text/plain' }, LIMIT)).toBe(json);
    expect(decodeBodyBytes(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(json)]), {}, LIMIT)).toBe(json);
  });

  it.each([
    ['a stray 0xff byte', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d])],
    ['an overlong encoding of "/"', Buffer.from([0x22, 0xc0, 0xaf, 0x22])],
    ['an encoded UTF-16 surrogate', Buffer.from([0x22, 0xed, 0xa0, 0x80, 0x22])],
    ['a truncated sequence', Buffer.from([0x22, 0xe2, 0x82])],
  ])('400 for invalid UTF-8: %s (never replaced by U+FFFD)', (_name, bytes) => {
    expect(outcome(() => decodeBodyBytes(bytes, { 'content-type': 'application/json' }, LIMIT))).toBe('400 invalid_json');
    expect(outcome(() => decodeBodyBytes(bytes, { 'content-type': 'text/plain; charset=UTF-8' }, LIMIT))).toBe('400 invalid_json');
    expect(outcome(() => decodeBodyBytes(gzipSync(bytes), { 'content-encoding': 'gzip' }, LIMIT))).toBe('400 invalid_json');
  });

  it('decodes the declared charset (text/plain with any charset)', () => {
    const latin1 = Buffer.from('{"city":"M\u00e1laga"}', 'latin1');
    expect(decodeBodyBytes(latin1, { 'content-type': 'text/plain; charset=ISO-8859-1' }, LIMIT)).toBe('{"city":"Málaga"}');
    const utf16 = Buffer.from('{"a":"☀"}', 'utf16le');
    expect(decodeBodyBytes(utf16, { 'content-type': 'text/plain;charset="utf-16le"' }, LIMIT)).toBe('{"a":"☀"}');
  });

  it('415 for a charset it does not know', () => {
    expect(outcome(() => decodeBodyBytes(Buffer.from(json), { 'content-type': 'text/plain; charset=klingon' }, LIMIT))).toBe(
      '415 unsupported_media_type',
    );
  });

  it('reads the charset parameter wherever it stands', () => {
    expect(charsetOf('text/plain')).toBeUndefined();
    expect(charsetOf('text/plain; Charset=UTF-8')).toBe('utf-8');
    expect(charsetOf('application/json; foo=bar; charset="latin1"')).toBe('latin1');
    expect(charsetOf('text/plain; charset=')).toBeUndefined();
  });
});

describe('the middy middleware', () => {
  const echo = middy(async (event: APIGatewayProxyEventV2) => ({ body: event.body, base64: event.isBase64Encoded, headers: event.headers })).use(
    httpBodyDecoder({ maxBodyBytes: LIMIT }),
  );

  it('replaces a base64 gzip body with its text and drops content-encoding', async () => {
    const event = apiGatewayEvent({ method: 'POST', path: '/v1/batch', headers: { 'content-encoding': 'gzip' }, body: gzipSync(Buffer.from(json)) });
    expect(event.isBase64Encoded).toBe(true);
    const result = await echo(event, lambdaContext());
    expect(result.body).toBe(json);
    expect(result.base64).toBe(false);
    expect(result.headers['content-encoding']).toBeUndefined();
  });

  it('throws the ApiError for the chain to map, and leaves preflight alone', async () => {
    const bad = apiGatewayEvent({ method: 'POST', path: '/v1/batch', headers: { 'content-type': 'text/plain' }, body: Buffer.from([0x7b, 0xff, 0x7d]) });
    await expect(echo(bad, lambdaContext())).rejects.toMatchObject({ status: 400, code: 'invalid_json' });
    const preflight = apiGatewayEvent({ method: 'OPTIONS', path: '/v1/t', headers: { 'content-encoding': 'gzip' }, body: 'not gzip' });
    expect((await echo(preflight, lambdaContext())).body).toBe('not gzip');
  });
});
