/**
 * The Segment Spec envelope and message, as zod schemas (API.md §2). They
 * check types and lengths only; the structural checks (depth, hostile keys,
 * size) run before them (limits.ts) and the cross-field rules after them
 * (normalise.ts), so a schema never walks an unbounded document.
 *
 * zod's mini build (tree-shakes; the ingest bundle stays under its 500 KB
 * budget). Every issue carries its own message, so nothing depends on a
 * locale being loaded.
 */
import * as z from 'zod/mini';
import type { MessageType } from '../stored-event.ts';
import {
  idTextZodChecks,
  MAX_EVENT_NAME_LENGTH,
  MAX_MESSAGE_ID_LENGTH,
  MAX_MESSAGES_PER_BATCH,
  MAX_NAME_LENGTH,
  NO_CONTROL_CHARACTERS as NO_CONTROL,
  hasControlCharacters,
  isPlainObject,
} from './limits.ts';
import { isIsoDateTime } from './timestamps.ts';

/**
 * The Segment message types: stored-event.ts's MESSAGE_TYPES (a unit test
 * holds them equal), here so that ingest does not load the stored-event
 * schema (classic zod) it never uses.
 */
export const MESSAGE_TYPES = ['track', 'identify', 'page', 'screen', 'alias', 'group'] as const satisfies readonly MessageType[];

const noControl = (s: string) => !hasControlCharacters(s);

const jsonObject = z.custom<Record<string, unknown>>(isPlainObject, { error: 'must be a JSON object' });

const isoDateTime = z
  .string({ error: 'must be an ISO-8601 date-time string' })
  .check(z.refine(isIsoDateTime, 'must be an ISO-8601 date-time such as 2024-05-01T10:20:30.000Z'));

/** A user, anonymous, previous or group id: a string (numbers are accepted and kept as text) passing ID_TEXT_CHECKS. */
const identifier = z.pipe(
  z.pipe(
    z.union([z.string(), z.number()], { error: 'must be a string' }),
    z.transform((v: string | number) => (typeof v === 'number' ? String(v) : v)),
  ),
  z.string().check(...idTextZodChecks()),
);

export const messageSchema = z.object({
  type: z.nullish(z.enum(MESSAGE_TYPES, { error: `must be one of ${MESSAGE_TYPES.join(', ')}` })),
  messageId: z.nullish(
    z
      .string({ error: 'must be a string' })
      .check(
        z.minLength(1, 'must not be empty'),
        z.maxLength(MAX_MESSAGE_ID_LENGTH, `must be at most ${MAX_MESSAGE_ID_LENGTH} characters`),
        z.refine(noControl, NO_CONTROL),
      ),
  ),
  userId: z.nullish(identifier),
  anonymousId: z.nullish(identifier),
  previousId: z.nullish(identifier),
  groupId: z.nullish(identifier),
  event: z.nullish(
    z
      .string({ error: 'must be a string' })
      .check(z.maxLength(MAX_EVENT_NAME_LENGTH, `must be at most ${MAX_EVENT_NAME_LENGTH} characters`), z.refine(noControl, NO_CONTROL)),
  ),
  name: z.nullish(z.string({ error: 'must be a string' }).check(z.maxLength(MAX_NAME_LENGTH, `must be at most ${MAX_NAME_LENGTH} characters`))),
  properties: z.nullish(jsonObject),
  traits: z.nullish(jsonObject),
  context: z.nullish(jsonObject),
  timestamp: z.nullish(isoDateTime),
  /** The client's own clock when the event happened (RudderStack, mobile backlogs); used when `timestamp` is absent. */
  originalTimestamp: z.nullish(isoDateTime),
  sentAt: z.nullish(isoDateTime),
});

export type ParsedMessage = z.infer<typeof messageSchema>;

/** `POST /v1/batch`: the envelope around the messages. */
export const batchEnvelopeSchema = z.object({
  batch: z
    .array(z.unknown(), { error: 'is required: an array of messages' })
    .check(z.maxLength(MAX_MESSAGES_PER_BATCH, `too many messages: at most ${MAX_MESSAGES_PER_BATCH} per request`)),
  context: z.nullish(jsonObject),
  sentAt: z.nullish(isoDateTime),
  writeKey: z.nullish(z.string({ error: 'must be a string' })),
});

export type BatchEnvelope = z.infer<typeof batchEnvelopeSchema>;
