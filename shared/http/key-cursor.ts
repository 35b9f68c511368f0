/**
 * The `next` of a listing whose pages follow a DynamoDB partition key (the
 * admin profile and outbox listings): the key, UTF-8, as base64url.
 */

/** DynamoDB's largest partition key value, bytes. */
const MAX_PARTITION_KEY_BYTES = 2_048;

/** The longest cursor a key can make: base64url of MAX_PARTITION_KEY_BYTES bytes, no padding. */
export const MAX_KEY_CURSOR_LENGTH = Math.ceil((MAX_PARTITION_KEY_BYTES * 4) / 3);

/** A page's key as the cursor a client sends back. */
export const encodeKeyCursor = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');

/**
 * The key a cursor names, or '' when `cursor` is no base64url text a key
 * could make (the caller refuses it with its own message).
 */
export function decodeKeyCursor(cursor: string): string {
  return cursor.length <= MAX_KEY_CURSOR_LENGTH && /^[A-Za-z0-9_-]+$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
}
