/**
 * The Segment Spec envelope and message, as zod schemas (API.md §2). They
 * check types and lengths only; the structural checks (depth, hostile keys,
 * size) run before them (limits.ts) and the cross-field rules after them
 * (normalise.ts), so a schema never walks an unbounded document.
 */
import * as z from 'zod';
import { MESSAGE_TYPES } from '../stored-event.ts';
import {
  MAX_EVENT_NAME_LENGTH,
  MAX_ID_LENGTH,
  MAX_MESSAGE_ID_LENGTH,
  MAX_MESSAGES_PER_BATCH,
  MAX_NAME_LENGTH,
  hasControlCharacters,
  isPlainObject,
} from './limits.ts';
import { isIsoDateTime } from './timestamps.ts';

const NO_CONTROL = 'must not contain control characters';
const noControl = (s: string) => !hasControlCharacters(s);

const jsonObject = z.custom<Record<string, unknown>>(isPlainObject, { error: 'must be a JSON object' });

const isoDateTime = z
  .string({ error: 'must be an ISO-8601 date-time string' })
  .refine(isIsoDateTime, 'must be an ISO-8601 date-time such as 2024-05-01T10:20:30.000Z');

/** A user, anonymous, previous or group id: a string (numbers are accepted and kept as text). */
const identifier = z
  .union([z.string(), z.number()], { error: 'must be a string' })
  .transform((v) => (typeof v === 'number' ? String(v) : v))
  .pipe(
    z
      .string()
      .max(MAX_ID_LENGTH, `must be at most ${MAX_ID_LENGTH} characters`)
      .refine(noControl, NO_CONTROL),
  );

export const messageSchema = z.object({
  type: z.enum(MESSAGE_TYPES, { error: `must be one of ${MESSAGE_TYPES.join(', ')}` }).nullish(),
  messageId: z
    .string({ error: 'must be a string' })
    .min(1, 'must not be empty')
    .max(MAX_MESSAGE_ID_LENGTH, `must be at most ${MAX_MESSAGE_ID_LENGTH} characters`)
    .refine(noControl, NO_CONTROL)
    .nullish(),
  userId: identifier.nullish(),
  anonymousId: identifier.nullish(),
  previousId: identifier.nullish(),
  groupId: identifier.nullish(),
  event: z
    .string({ error: 'must be a string' })
    .max(MAX_EVENT_NAME_LENGTH, `must be at most ${MAX_EVENT_NAME_LENGTH} characters`)
    .refine(noControl, NO_CONTROL)
    .nullish(),
  name: z
    .string({ error: 'must be a string' })
    .max(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`)
    .nullish(),
  properties: jsonObject.nullish(),
  traits: jsonObject.nullish(),
  context: jsonObject.nullish(),
  timestamp: isoDateTime.nullish(),
  sentAt: isoDateTime.nullish(),
});

export type ParsedMessage = z.infer<typeof messageSchema>;

/** `POST /v1/batch`: the envelope around the messages. */
export const batchEnvelopeSchema = z.object({
  batch: z
    .array(z.unknown(), { error: 'is required: an array of messages' })
    .max(MAX_MESSAGES_PER_BATCH, `too many messages: at most ${MAX_MESSAGES_PER_BATCH} per request`),
  context: jsonObject.nullish(),
  sentAt: isoDateTime.nullish(),
  writeKey: z.string({ error: 'must be a string' }).nullish(),
});

export type BatchEnvelope = z.infer<typeof batchEnvelopeSchema>;
