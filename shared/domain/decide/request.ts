/**
 * The decide request at the boundary (API.md §4).
 *
 * The zod (mini) schemas are the contract: `decideRequestSchema()` and the
 * simulate schema, built on first use. The decide function itself parses
 * with `parseDecideRequest`, a hand-written equivalent of
 * `decideRequestSchema()` (same fields, defaults, paths and messages; a
 * property test holds the two to the same verdicts): decide's bundle budget
 * (300 KB) has no room for the schema machinery only this request needs,
 * and its module load builds nothing.
 *
 * Ids and the context are held to the events' definitions (ingest/limits.ts:
 * `ID_TEXT_CHECKS` for ids, `inspectStructure` for what a context may hold),
 * so that decide refuses what ingest refuses, with the same messages. A body
 * `writeKey` is refused (BODY_WRITE_KEY_REFUSED).
 */
import * as z from 'zod/mini';
import { CHANNELS } from '../channels.ts';
import { formatPath, type ErrorDetail } from '../issues.ts';
import { PROTOTYPE_KEYS, idTextProblem, idTextZodChecks, inspectStructure, isPlainObject, utf8Length } from '../ingest/limits.ts';
import type { DecideRequest } from './types.ts';

/** Same shape as catalog ids (placements are declared in the catalog). */
const PLACEMENT = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export const CONTEXT_LIMITS = { keys: 50, keyLength: 100, bytes: 4_096, depth: 4 } as const;

/**
 * Levels of arrays and objects in `value`, counted up to one past
 * CONTEXT_LIMITS.depth (deeper is not walked: no recursion, bounded work
 * whatever a caller sends).
 */
function depthOf(value: unknown): number {
  const limit = CONTEXT_LIMITS.depth + 1;
  let max = 0;
  const stack: { value: unknown; depth: number }[] = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const item = stack.pop() as { value: unknown; depth: number };
    if (item.value === null || typeof item.value !== 'object') continue;
    const depth = item.depth + 1;
    if (depth > max) max = depth;
    if (max >= limit) return max;
    for (const child of Object.values(item.value)) stack.push({ value: child, depth });
  }
  return max;
}

/** The context's JSON length in UTF-8 bytes, or 0 when it nests too deep to be serialised (refused for its depth). */
const jsonLength = (context: unknown): number => (depthOf(context) > CONTEXT_LIMITS.depth ? 0 : utf8Length(JSON.stringify(context)));

/**
 * The events' structural checks (ingest/limits.ts `inspectStructure`:
 * prototype-pollution and empty keys, text that is not Unicode, numbers the
 * store cannot hold such as JSON's `1e400`) on a context that nests within
 * its bound (deeper is refused for its depth alone).
 */
const structureProblem = (context: unknown) =>
  (depthOf(context) > CONTEXT_LIMITS.depth ? undefined : inspectStructure(context, CONTEXT_LIMITS.depth));

const CONTEXT_MESSAGES = {
  type: 'must be an object',
  keyLength: `keys must be at most ${CONTEXT_LIMITS.keyLength} characters`,
  keys: `must have at most ${CONTEXT_LIMITS.keys} keys`,
  depth: `must nest at most ${CONTEXT_LIMITS.depth} levels`,
  bytes: `must be at most ${CONTEXT_LIMITS.bytes} bytes of JSON`,
} as const;

/**
 * A body `writeKey` is Segment's convention for the event routes; on decide
 * the key goes in the Authorization header only (API.md §1).
 */
export const BODY_WRITE_KEY_REFUSED = 'is not accepted on /v1/decide: send the write key as the HTTP Basic user name';

/** A customer id: a non-empty string passing the events' ID_TEXT_CHECKS (`stored`: an id an operator names, limits.ts `idTextZodChecks`). */
const identifier = (id: 'incoming' | 'stored' = 'incoming') =>
  z.string('must be a string').check(z.minLength(1, 'must not be empty'), ...idTextZodChecks(id));

/**
 * The context as sent (not a copy: a record schema would copy it key by key,
 * and assigning a `__proto__` key replaces the copy's prototype, hiding the
 * key from the checks that follow).
 */
const contextSchema = () =>
  z
  .custom<Record<string, unknown>>(isPlainObject, CONTEXT_MESSAGES.type)
  .check(
    z.superRefine((c, payload) => {
      const longKey = Object.keys(c).find((key) => key.length > CONTEXT_LIMITS.keyLength);
      // Aborts, as a type error does: nothing else is checked on such a context or request.
      if (longKey !== undefined) payload.addIssue({ code: 'custom', input: c, path: [longKey], message: CONTEXT_MESSAGES.keyLength, continue: false });
    }),
    z.refine((c) => Object.keys(c).length <= CONTEXT_LIMITS.keys, CONTEXT_MESSAGES.keys),
    z.refine((c) => depthOf(c) <= CONTEXT_LIMITS.depth, CONTEXT_MESSAGES.depth),
    z.refine((c) => jsonLength(c) <= CONTEXT_LIMITS.bytes, CONTEXT_MESSAGES.bytes),
    z.superRefine((c, payload) => {
      const problem = structureProblem(c);
      if (problem) payload.addIssue({ code: 'custom', input: c, path: problem.path, message: problem.message });
    }),
  );

/** Fields common to decide and simulate. */
const decisionFields = () => ({
  channel: z.enum(CHANNELS, `must be one of ${CHANNELS.join(', ')}`),
  placement: z.optional(z.string('must be a string').check(z.regex(PLACEMENT, 'must be 1-128 characters: letters, digits, "_", "-", ".", ":"'))),
  limit: z._default(z.int('must be an integer from 1 to 10').check(z.gte(1, 'must be at least 1'), z.lte(10, 'must be at most 10')), 1),
  context: z._default(contextSchema(), {}),
});

/** The decide request's zod schema (the reference `parseDecideRequest` is tested against). */
export const decideRequestSchema = () =>
  z
  .strictObject(
    {
    userId: z.optional(identifier()),
    anonymousId: z.optional(identifier()),
    ...decisionFields(),
    explain: z._default(z.boolean('must be true or false'), false),
    /** Refused: named so that the refusal says why (BODY_WRITE_KEY_REFUSED). */
    writeKey: z.optional(z.never(BODY_WRITE_KEY_REFUSED)),
    },
    'the body must be a JSON object',
  )
  .check(
    z.refine((r) => r.userId !== undefined || r.anonymousId !== undefined, {
      message: 'userId or anonymousId is required',
      path: ['userId'],
    }),
  );

/**
 * An instant as simulate takes it (its `at`, the times of its inline
 * profile): an ISO-8601 date-time with its offset (`2026-11-20T10:00:00Z`,
 * `2026-11-20T11:00:00+01:00`).
 */
export const isoInstant = () => z.iso.datetime({ offset: true, error: 'must be an ISO-8601 date-time with its offset, e.g. 2026-11-20T10:00:00Z' });

/**
 * Simulate's inline profile as sent (not a copy, for the context's reason:
 * a copied `__proto__` key would become the copy's prototype, and the
 * profile would be decided without what it holds), held to the events'
 * structural checks on what no stored profile can hold (`inspectStructure`
 * with PROTOTYPE_KEYS: a `__proto__` key, an empty key, text that is not
 * Unicode, a number the store cannot hold), anywhere in it. Its nesting is
 * the body's (the body decoder's bound): a profile's `constructor` event
 * count, or a trait as deep as an event may set it, is taken as GET
 * /v1/admin/profiles/{userId} gives it.
 */
const inlineProfileSchema = () =>
  z
  .custom<Record<string, unknown>>(isPlainObject, 'must be an object')
  .check(
    z.superRefine((profile, payload) => {
      const problem = inspectStructure(profile, Number.POSITIVE_INFINITY, PROTOTYPE_KEYS);
      if (problem) payload.addIssue({ code: 'custom', input: profile, path: problem.path, message: problem.message });
    }),
  );

/** POST /v1/admin/simulate: a stored customer (`userId`/`anonymousId`) or an inline `profile`. */
const buildSimulateRequestSchema = () =>
  z
  .strictObject(
    {
    userId: z.optional(identifier('stored')),
    anonymousId: z.optional(identifier('stored')),
    /** A profile to decide for, as GET /v1/admin/profiles returns it (missing fields are empty). */
    profile: z.optional(inlineProfileSchema()),
    ...decisionFields(),
    /** Simulate at another instant (ISO-8601), e.g. to check quiet hours or a validity window. */
    at: z.optional(isoInstant()),
    },
    'the body must be a JSON object',
  )
  .check(
    z.refine((r) => r.userId !== undefined || r.anonymousId !== undefined || r.profile !== undefined, {
      message: 'profile, userId or anonymousId is required',
      path: ['userId'],
    }),
    // One customer: a stored one (its ids) or an inline profile (its ids, if any, inside it), never both.
    z.refine((r) => r.profile === undefined || (r.userId === undefined && r.anonymousId === undefined), {
      message: SIMULATE_ONE_CUSTOMER,
      path: ['profile'],
    }),
  );

/** Simulate's refusal of a body naming a stored customer and an inline profile at once. */
export const SIMULATE_ONE_CUSTOMER = 'send either a profile or the ids of a stored customer (userId, anonymousId), not both';

let simulateSchema: ReturnType<typeof buildSimulateRequestSchema> | undefined;

/** The simulate request's zod schema, built once on first use. */
export const simulateRequestSchema = () => (simulateSchema ??= buildSimulateRequestSchema());

export type SimulateRequest = z.infer<ReturnType<typeof buildSimulateRequestSchema>>;

type Issue = { path: readonly PropertyKey[]; message: string };


/** zod issues as API.md §6 details (bounded: a hostile body cannot make a huge error). */
export function issueDetails(issues: readonly Issue[]): ErrorDetail[] {
  return issues.slice(0, 20).map((issue) => {
    const unknownKeys = (issue as { code?: string; keys?: string[] }).code === 'unrecognized_keys'
      ? (issue as { keys?: string[] }).keys
      : undefined;
    const message = unknownKeys ? `unknown field(s): ${unknownKeys.slice(0, 5).map((k) => k.slice(0, 50)).join(', ')}` : issue.message;
    return { path: formatPath(issue.path), message };
  });
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; details: ErrorDetail[] };

const DECIDE_KEYS = new Set(['userId', 'anonymousId', 'channel', 'placement', 'limit', 'context', 'explain', 'writeKey']);
const CHANNEL_SET: ReadonlySet<unknown> = new Set(CHANNELS);

/**
 * `decideRequestSchema()` by hand: the same request, or the same issues in
 * the same order with the same messages — including zod's: the error text
 * given to a schema is used for all its issues (an over-long context key is
 * "must be an object"), and the object-level check (userId or anonymousId)
 * runs unless a field failed its type (zod's aborting issues).
 */
export function parseDecideRequest(body: unknown): ParseResult<DecideRequest> {
  if (!isPlainObject(body)) return { ok: false, details: issueDetails([{ path: [], message: 'the body must be a JSON object' }]) };
  const issues: (Issue & { code?: string; keys?: string[] })[] = [];
  let aborted = false;
  const problem = (path: PropertyKey[], message: string, typeError = false) => {
    issues.push({ path, message });
    if (typeError) aborted = true;
  };
  for (const name of ['userId', 'anonymousId'] as const) {
    const v = body[name];
    if (v === undefined) continue;
    if (typeof v !== 'string') problem([name], 'must be a string', true);
    else if (v.length < 1) problem([name], 'must not be empty');
    else {
      const message = idTextProblem(v);
      if (message !== undefined) problem([name], message);
    }
  }
  const channel = body.channel;
  if (!CHANNEL_SET.has(channel)) problem(['channel'], `must be one of ${CHANNELS.join(', ')}`, true);
  const placement = body.placement;
  if (placement !== undefined) {
    if (typeof placement !== 'string') problem(['placement'], 'must be a string', true);
    else if (!PLACEMENT.test(placement)) problem(['placement'], 'must be 1-128 characters: letters, digits, "_", "-", ".", ":"');
  }
  const limit = body.limit === undefined ? 1 : body.limit;
  if (typeof limit !== 'number' || !Number.isInteger(limit)) problem(['limit'], 'must be an integer from 1 to 10', true);
  // zod: an integer outside the safe range is a range issue, not a type issue (it does not abort).
  else if (!Number.isSafeInteger(limit)) problem(['limit'], 'must be an integer from 1 to 10');
  else if (limit < 1) problem(['limit'], 'must be at least 1');
  else if (limit > 10) problem(['limit'], 'must be at most 10');
  const context = body.context === undefined ? {} : body.context;
  if (!isPlainObject(context)) problem(['context'], CONTEXT_MESSAGES.type, true);
  else {
    const keys = Object.keys(context);
    const longKey = keys.find((key) => key.length > CONTEXT_LIMITS.keyLength);
    if (longKey !== undefined) problem(['context', longKey], CONTEXT_MESSAGES.keyLength, true);
    else {
      if (keys.length > CONTEXT_LIMITS.keys) problem(['context'], CONTEXT_MESSAGES.keys);
      const depth = depthOf(context);
      if (depth > CONTEXT_LIMITS.depth) problem(['context'], CONTEXT_MESSAGES.depth);
      else {
        if (utf8Length(JSON.stringify(context)) > CONTEXT_LIMITS.bytes) problem(['context'], CONTEXT_MESSAGES.bytes);
        const structure = inspectStructure(context, CONTEXT_LIMITS.depth);
        if (structure) problem(['context', ...structure.path], structure.message);
      }
    }
  }
  const explain = body.explain === undefined ? false : body.explain;
  if (typeof explain !== 'boolean') problem(['explain'], 'must be true or false', true);
  if (body.writeKey !== undefined) problem(['writeKey'], BODY_WRITE_KEY_REFUSED, true);
  const unknown = Object.keys(body).filter((k) => !DECIDE_KEYS.has(k));
  if (unknown.length > 0) issues.push({ code: 'unrecognized_keys', keys: unknown, path: [], message: '' });
  if (!aborted && body.userId === undefined && body.anonymousId === undefined) problem(['userId'], 'userId or anonymousId is required');
  if (issues.length > 0) return { ok: false, details: issueDetails(issues) };
  return { ok: true, value: { ...body, limit, context, explain } as DecideRequest };
}

export function parseSimulateRequest(body: unknown): ParseResult<SimulateRequest> {
  const parsed = simulateRequestSchema().safeParse(body);
  if (!parsed.success) return { ok: false, details: issueDetails(parsed.error.issues) };
  return { ok: true, value: parsed.data };
}
