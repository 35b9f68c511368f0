/**
 * Fuzz test of the body decoder (middy's index.fuzz.js habit): any bytes
 * under any Content-Encoding and Content-Type either decode to text or are
 * refused with a 400, 413 or 415 ApiError — never another error — and every
 * coding round-trips any text within the limit.
 */
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBodyBytes } from '#http/body-decoder.ts';
import { ApiError } from '#http/errors.ts';

const LIMIT = 4096;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** The decoded text, the ApiError's status, or the unexpected error's name. */
function attempt(run: () => string): { text: string } | { status: number } | { unexpected: string; status: -1 } {
  try {
    return { text: run() };
  } catch (error) {
    if (error instanceof ApiError) return { status: error.status };
    return { unexpected: String(error), status: -1 };
  }
}

const coding = fc.constantFrom('gzip', 'x-gzip', 'deflate', 'br', 'identity', '', 'compress', 'zstd', 'GZIP', ' gzip , br ', 'gzip,gzip', 'br,deflate,gzip');
const contentType = fc.oneof(
  fc.constantFrom('application/json', 'text/plain', 'text/plain; charset=utf-8', 'text/plain;charset=ISO-8859-1', 'text/plain; charset=utf-16', 'application/x-www-form-urlencoded', ''),
  fc.string({ maxLength: 60 }),
);
const compressors: Record<string, (b: Buffer) => Buffer> = {
  gzip: gzipSync,
  deflate: deflateSync,
  'raw-deflate': deflateRawSync,
  br: brotliCompressSync,
  identity: (b) => b,
};

describe('body decoder fuzz', () => {
  it('never throws anything but a 400/413/415 ApiError, and any text it returns is well-formed', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 6000 }).map((a) => Buffer.from(a)),
          // Valid compressed data of random bytes, possibly truncated or corrupted.
          fc
            .tuple(fc.uint8Array({ maxLength: 8000 }), fc.constantFrom(...Object.values(compressors)), fc.nat(64), fc.nat())
            .map(([bytes, compress, cut, flip]) => {
              const out = Buffer.from(compress(Buffer.from(bytes)));
              if (out.length > 0 && flip % 3 === 0) out.writeUInt8(out.readUInt8(flip % out.length) ^ 0x55, flip % out.length);
              return out.subarray(0, Math.max(0, out.length - (cut % 4 === 0 ? cut : 0)));
            }),
        ),
        coding,
        contentType,
        (bytes, encoding, type) => {
          const result = attempt(() => decodeBodyBytes(bytes, { 'content-encoding': encoding, 'content-type': type }, LIMIT));
          // Text is well-formed (no lone surrogate, which a lenient decoder would let through); a refusal is a 4xx ApiError.
          const acceptable = 'text' in result ? !LONE_SURROGATE.test(result.text) : [400, 413, 415].includes(result.status);
          expect({ acceptable, result: JSON.stringify(result).slice(0, 200) }).toMatchObject({ acceptable: true });
        },
      ),
      { numRuns: 400 },
    );
  });

  it('round-trips any UTF-8 text through every coding within the limit, and refuses it (413) past the limit', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 3000 }), fc.constantFrom(...Object.keys(compressors)), (text, name) => {
        const raw = Buffer.from(text, 'utf8');
        const header = name === 'raw-deflate' ? 'deflate' : name;
        const body = (compressors[name] as (b: Buffer) => Buffer)(raw);
        const headers = { 'content-encoding': header, 'content-type': 'text/plain' };
        const fits = raw.length <= LIMIT && body.length <= LIMIT;
        expect(attempt(() => decodeBodyBytes(body, headers, LIMIT))).toEqual(fits ? { text } : { status: 413 });
      }),
      { numRuns: 300 },
    );
  });
});
