/**
 * The admin listings' cursors (shared/http/key-cursor.ts): any partition key
 * DynamoDB can hold comes back from its cursor, up to the 2,048-byte limit;
 * a 2,048-character cursor limit refused the next page after an emission
 * whose key passed about 1,536 bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_KEY_CURSOR_LENGTH, decodeKeyCursor, encodeKeyCursor } from '#http/key-cursor.ts';

describe('listing cursors', () => {
  it('give back every key up to 2,048 bytes', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 400 }), (text) => {
        const key = `o#${text}`;
        fc.pre(Buffer.byteLength(key) <= 2_048);
        expect(decodeKeyCursor(encodeKeyCursor(key))).toBe(key);
      }),
    );
    const longest = `o#${'x'.repeat(2_046)}`;
    expect(encodeKeyCursor(longest).length).toBeLessThanOrEqual(MAX_KEY_CURSOR_LENGTH);
    expect(decodeKeyCursor(encodeKeyCursor(longest))).toBe(longest);
  });

  it('read no key from a cursor no key could make', () => {
    for (const cursor of ['', 'a+b', 'a/b', 'a=', 'x'.repeat(MAX_KEY_CURSOR_LENGTH + 1)]) expect(decodeKeyCursor(cursor)).toBe('');
  });
});
