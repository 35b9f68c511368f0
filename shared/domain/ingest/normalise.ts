/**
 * From a parsed request body to the Events items to store, as a pure
 * function: every message is either turned into a StoredEvent or rejected
 * with its reason; an unusable envelope rejects the whole request.
 */
import type { core } from 'zod/mini';
import { formatPath } from '../issues.ts';
import { CONSENT_UPDATED, consentUpdateIssues, semanticName } from '../semantic-events.ts';
import type { EventRoute } from './event-routes.ts';
import { anonymousProfileKey, eventPk, eventSortKey, userProfileKey } from '../item-keys.ts';
import type { MessageType, StoredEvent } from '../stored-event.ts';
import {
  MAX_FUTURE_MS,
  MAX_MESSAGE_BYTES,
  hasControlCharacters,
  inspectStructure,
  isPlainObject,
  utf8Length,
} from './limits.ts';
import { batchEnvelopeSchema, messageSchema, type ParsedMessage } from './schema.ts';
import { MAX_TIMESTAMP_MS, correctTimestamp, parseIsoDateTime } from './timestamps.ts';

export interface Issue {
  /** `batch[3].userId`-style parts. */
  readonly path: readonly PropertyKey[];
  readonly message: string;
}

export type RejectionCode = 'validation_failed' | 'payload_too_large';

export interface Rejection {
  readonly index: number;
  /** The client's messageId, when it sent a usable one. */
  readonly messageId?: string;
  readonly code: RejectionCode;
  /** `path: problem` of the first problem found. */
  readonly message: string;
}

export interface IngestOptions {
  /** The route the request came in on; a single-message route implies the type. */
  readonly route: EventRoute;
  readonly sourceId: string;
  /** Time of receipt, epoch milliseconds. */
  readonly receivedAt: number;
  /** History retention: items expire this many days after receipt. */
  readonly historyDays: number;
  /** Makes a messageId for a message that has none (it then cannot deduplicate). */
  readonly newMessageId: () => string;
}

export type IngestPlan =
  /** The envelope itself is unusable: nothing may be stored. */
  | { readonly ok: false; readonly issues: readonly Issue[] }
  | {
      readonly ok: true;
      readonly messageCount: number;
      /** In message order; at most one rejection or one event per message. */
      readonly events: readonly StoredEvent[];
      readonly rejections: readonly Rejection[];
      /** Every problem of every rejected message, with full paths. */
      readonly issues: readonly Issue[];
    };

const zodIssues = (error: core.$ZodError, base: readonly PropertyKey[]): Issue[] =>
  error.issues.map((issue) => ({ path: [...base, ...issue.path], message: issue.message }));

const nonEmpty = (value: string | null | undefined): string | undefined =>
  value === null || value === undefined || value === '' ? undefined : value;

/** A messageId worth echoing back to the client in a rejection. */
function echoMessageId(message: unknown): string | undefined {
  if (!isPlainObject(message)) return undefined;
  const id = message.messageId;
  if (typeof id !== 'string' || id.length === 0 || id.length > 100 || hasControlCharacters(id)) return undefined;
  return id;
}

interface EnvelopeDefaults {
  readonly context: Record<string, unknown> | undefined;
  readonly sentAt: string | undefined;
}

interface MessageResult {
  readonly event?: StoredEvent;
  readonly issues?: Issue[];
  readonly code?: RejectionCode;
}

function normaliseMessage(
  raw: unknown,
  base: readonly PropertyKey[],
  envelope: EnvelopeDefaults,
  options: IngestOptions,
): MessageResult {
  if (!isPlainObject(raw)) return { issues: [{ path: base, message: 'a message must be a JSON object' }] };

  // Structure first: it bounds everything that follows (zod, JSON.stringify).
  const problem = inspectStructure(raw);
  if (problem) return { issues: [{ path: [...base, ...problem.path], message: problem.message }] };
  const bytes = utf8Length(JSON.stringify(raw));
  if (bytes > MAX_MESSAGE_BYTES) {
    return {
      code: 'payload_too_large',
      issues: [{ path: base, message: `message is ${bytes} bytes; at most ${MAX_MESSAGE_BYTES} bytes allowed` }],
    };
  }

  const parsed = messageSchema.safeParse(raw);
  if (!parsed.success) return { issues: zodIssues(parsed.error, base) };
  const m: ParsedMessage = parsed.data;
  const issues: Issue[] = [];
  const at = (...parts: PropertyKey[]) => [...base, ...parts];

  let type: MessageType;
  if (options.route === 'batch') {
    if (!m.type) return { issues: [{ path: at('type'), message: 'is required' }] };
    type = m.type;
  } else {
    type = options.route;
    if (m.type && m.type !== type) {
      issues.push({ path: at('type'), message: `must be "${type}" on /v1/${type} (or absent)` });
    }
  }

  const userId = nonEmpty(m.userId);
  const anonymousId = nonEmpty(m.anonymousId);
  if (!userId && !anonymousId) issues.push({ path: at('userId'), message: 'userId or anonymousId is required' });
  const event = nonEmpty(m.event);
  if (type === 'track' && !event) issues.push({ path: at('event'), message: 'is required for track' });
  // A consent change Kairos could not read would be accepted and ignored: refused, naming the field.
  if (type === 'track' && event && semanticName(event) === CONSENT_UPDATED) {
    for (const issue of consentUpdateIssues(m.properties ?? {})) issues.push({ path: at('properties', issue.field), message: issue.message });
  }
  const previousId = nonEmpty(m.previousId);
  if (type === 'alias') {
    if (!previousId) issues.push({ path: at('previousId'), message: 'is required for alias' });
    if (!userId) issues.push({ path: at('userId'), message: 'is required for alias' });
  }
  const groupId = nonEmpty(m.groupId);
  if (type === 'group' && !groupId) issues.push({ path: at('groupId'), message: 'is required for group' });

  // Time: `timestamp`, else `originalTimestamp` (mobile backlogs), with Segment's
  // skew correction by the message's sentAt, else the batch's.
  const clientTimestamp = m.timestamp ?? m.originalTimestamp ?? undefined;
  const sentAt = m.sentAt ?? envelope.sentAt;
  const timestampMs = clientTimestamp ? parseIsoDateTime(clientTimestamp) : undefined;
  const sentAtMs = sentAt ? parseIsoDateTime(sentAt) : undefined;
  const corrected = correctTimestamp(timestampMs, sentAtMs, options.receivedAt);
  if (corrected > options.receivedAt + MAX_FUTURE_MS) {
    issues.push({ path: at('timestamp'), message: 'is more than 1 hour in the future (after clock-skew correction)' });
  } else if (corrected < 0 || corrected > MAX_TIMESTAMP_MS) {
    issues.push({ path: at('timestamp'), message: 'is out of range (after clock-skew correction)' });
  }

  if (issues.length > 0) return { issues };

  const messageId = m.messageId ?? options.newMessageId();
  const timestamp = new Date(corrected).toISOString();
  const context =
    envelope.context && m.context ? { ...envelope.context, ...m.context } : (m.context ?? envelope.context);
  const withProperties = type === 'track' || type === 'page' || type === 'screen';
  const withTraits = type === 'identify' || type === 'group';

  const stored: StoredEvent = {
    pk: eventPk(options.sourceId, messageId),
    profileKey: userId ? userProfileKey(userId) : anonymousProfileKey(anonymousId as string),
    sortKey: eventSortKey(timestamp, messageId),
    sourceId: options.sourceId,
    messageId,
    type,
    ...(userId ? { userId } : {}),
    ...(anonymousId ? { anonymousId } : {}),
    ...(type === 'alias' && previousId ? { previousId } : {}),
    ...(groupId ? { groupId } : {}),
    ...(type === 'track' && event ? { event } : {}),
    ...((type === 'page' || type === 'screen') && m.name ? { name: m.name } : {}),
    ...(withProperties && m.properties ? { properties: m.properties } : {}),
    ...(withTraits ? traitsOf(type, m) : {}),
    ...(context ? { context } : {}),
    timestamp,
    ...(clientTimestamp ? { originalTimestamp: clientTimestamp } : {}),
    ...(sentAt ? { sentAt } : {}),
    receivedAt: new Date(options.receivedAt).toISOString(),
    expiresAt: Math.floor(options.receivedAt / 1000) + Math.round(options.historyDays * 86_400),
  };
  return { event: stored };
}

/**
 * The traits a message sets. On identify, `context.traits` (where RudderStack's
 * SDKs put them) merged with `traits`, the top-level value winning a conflict;
 * on group, the group's `traits`.
 */
function traitsOf(type: MessageType, m: ParsedMessage): { traits?: Record<string, unknown> } {
  const contextTraits = type === 'identify' ? m.context?.traits : undefined;
  if (!isPlainObject(contextTraits)) return m.traits ? { traits: m.traits } : {};
  return { traits: { ...contextTraits, ...(m.traits ?? {}) } };
}

function envelopeOf(body: unknown, options: IngestOptions): { issues: Issue[] } | { messages: unknown[]; base: (i: number) => PropertyKey[]; defaults: EnvelopeDefaults } {
  if (!isPlainObject(body)) {
    return {
      issues: [
        {
          path: [],
          message:
            options.route === 'batch'
              ? 'the body must be a JSON object with a "batch" array'
              : 'the body must be a JSON object (one message)',
        },
      ],
    };
  }
  if (options.route !== 'batch') {
    return { messages: [body], base: () => [], defaults: { context: undefined, sentAt: undefined } };
  }
  // Everything but the messages is checked here; the messages one by one below.
  const problem = inspectStructure({ ...body, batch: null });
  if (problem) return { issues: [{ path: problem.path, message: problem.message }] };
  const parsed = batchEnvelopeSchema.safeParse(body);
  if (!parsed.success) return { issues: zodIssues(parsed.error, []) };
  const { batch, context, sentAt } = parsed.data;
  if (context) {
    const bytes = utf8Length(JSON.stringify(context));
    if (bytes > MAX_MESSAGE_BYTES) {
      return { issues: [{ path: ['context'], message: `is ${bytes} bytes; at most ${MAX_MESSAGE_BYTES} bytes allowed` }] };
    }
  }
  return {
    messages: batch,
    base: (i) => ['batch', i],
    defaults: { context: context ?? undefined, sentAt: sentAt ?? undefined },
  };
}

/** Validate and normalise a request body into the items to store and the messages refused. */
export function planIngest(body: unknown, options: IngestOptions): IngestPlan {
  const envelope = envelopeOf(body, options);
  if ('issues' in envelope) return { ok: false, issues: envelope.issues };
  const events: StoredEvent[] = [];
  const rejections: Rejection[] = [];
  const issues: Issue[] = [];
  envelope.messages.forEach((raw, index) => {
    const result = normaliseMessage(raw, envelope.base(index), envelope.defaults, options);
    if (result.event) {
      events.push(result.event);
      return;
    }
    const messageIssues = result.issues ?? [{ path: envelope.base(index), message: 'invalid message' }];
    issues.push(...messageIssues);
    const first = messageIssues[0] as Issue;
    const messageId = echoMessageId(raw);
    rejections.push({
      index,
      ...(messageId ? { messageId } : {}),
      code: result.code ?? 'validation_failed',
      message: `${formatPath(first.path)}: ${first.message}`,
    });
  });
  return { ok: true, messageCount: envelope.messages.length, events, rejections, issues };
}

export interface StoreOutcome {
  readonly accepted: number;
  readonly duplicates: number;
}

export interface IngestResponseBody {
  readonly success: true;
  readonly accepted: number;
  readonly duplicates: number;
  readonly rejected: readonly Rejection[];
}

/**
 * Nothing to store and something refused. On a single-message route the
 * request as a whole is then a 400 (its one message must not look like a
 * success); a batch still answers 200 with every message in `rejected[]`.
 */
export function isWhollyRejected(plan: Extract<IngestPlan, { ok: true }>): boolean {
  return plan.events.length === 0 && plan.rejections.length > 0;
}

export function responseBody(plan: Extract<IngestPlan, { ok: true }>, stored: StoreOutcome): IngestResponseBody {
  return { success: true, accepted: stored.accepted, duplicates: stored.duplicates, rejected: plan.rejections };
}
