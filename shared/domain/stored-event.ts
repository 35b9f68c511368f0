/**
 * An accepted message as stored in the Events table, and therefore as the
 * profile function receives it in the stream's NEW_IMAGE. Ingest writes it;
 * the profile function validates it with `storedEventSchema` (a record that
 * does not match is poison: reported, retried, dead-lettered).
 */
import * as z from 'zod/mini';

export const MESSAGE_TYPES = ['track', 'identify', 'page', 'screen', 'alias', 'group'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

const json = z.record(z.string(), z.unknown());
const text = (min: number, max?: number) =>
  max === undefined ? z.string().check(z.minLength(min)) : z.string().check(z.minLength(min), z.maxLength(max));

/** zod's mini build (the profile function's bundle budget); same fields, checks and output as before. */
export const storedEventSchema = z.object({
  /** `<sourceId>#<messageId>`: the item key, and the exactly-once key. */
  pk: text(3),
  /** `u#<userId>` when a userId was sent, else `a#<anonymousId>`: the history index key. */
  profileKey: z.string().check(z.regex(/^[ua]#.+/s)),
  /** `<timestamp>#<messageId>`: the history index sort key. */
  sortKey: text(1),
  sourceId: text(1),
  messageId: text(1, 100),
  type: z.enum(MESSAGE_TYPES),
  userId: z.optional(text(1, 256)),
  anonymousId: z.optional(text(1, 256)),
  /** alias: the id being joined to userId. */
  previousId: z.optional(text(1, 256)),
  groupId: z.optional(z.string().check(z.maxLength(256))),
  /** track: the event name. */
  event: z.optional(text(1, 200)),
  /** page/screen: the page or screen name. */
  name: z.optional(z.string().check(z.maxLength(1000))),
  properties: z.optional(json),
  traits: z.optional(json),
  context: z.optional(json),
  /** Event time after clock-skew correction (ISO-8601, UTC). */
  timestamp: z.iso.datetime({ offset: true }),
  /** The timestamp the client sent, before correction. */
  originalTimestamp: z.optional(z.string()),
  sentAt: z.optional(z.string()),
  receivedAt: z.iso.datetime({ offset: true }),
  /** Epoch seconds: DynamoDB TTL of the history. */
  expiresAt: z.int().check(z.positive()),
});

export type StoredEvent = z.infer<typeof storedEventSchema>;

export { eventPk, userProfileKey, anonymousProfileKey } from './item-keys.ts';
