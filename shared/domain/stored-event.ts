/**
 * An accepted message as stored in the Events table, and therefore as the
 * profile function receives it in the stream's NEW_IMAGE. Ingest writes it;
 * the profile function validates it with `storedEventSchema` (a record that
 * does not match is poison: reported, retried, dead-lettered).
 */
import * as z from 'zod';

export const MESSAGE_TYPES = ['track', 'identify', 'page', 'screen', 'alias', 'group'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

const json = z.record(z.string(), z.unknown());

export const storedEventSchema = z.object({
  /** `<sourceId>#<messageId>`: the item key, and the exactly-once key. */
  pk: z.string().min(3),
  /** `u#<userId>` when a userId was sent, else `a#<anonymousId>`: the history index key. */
  profileKey: z.string().regex(/^[ua]#.+/s),
  /** `<timestamp>#<messageId>`: the history index sort key. */
  sortKey: z.string().min(1),
  sourceId: z.string().min(1),
  messageId: z.string().min(1).max(100),
  type: z.enum(MESSAGE_TYPES),
  userId: z.string().min(1).max(256).optional(),
  anonymousId: z.string().min(1).max(256).optional(),
  /** alias: the id being joined to userId. */
  previousId: z.string().min(1).max(256).optional(),
  groupId: z.string().max(256).optional(),
  /** track: the event name. */
  event: z.string().min(1).max(200).optional(),
  /** page/screen: the page or screen name. */
  name: z.string().max(1000).optional(),
  properties: json.optional(),
  traits: json.optional(),
  context: json.optional(),
  /** Event time after clock-skew correction (ISO-8601, UTC). */
  timestamp: z.iso.datetime({ offset: true }),
  /** The timestamp the client sent, before correction. */
  originalTimestamp: z.string().optional(),
  sentAt: z.string().optional(),
  receivedAt: z.iso.datetime({ offset: true }),
  /** Epoch seconds: DynamoDB TTL of the history. */
  expiresAt: z.number().int().positive(),
});

export type StoredEvent = z.infer<typeof storedEventSchema>;

export { eventPk, userProfileKey, anonymousProfileKey } from './keys.ts';
