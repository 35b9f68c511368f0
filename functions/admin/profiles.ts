/**
 * A customer's data for operators (API.md §5):
 * - GET    /v1/admin/profiles                  every stored profile, in pages (a bulk
 *                                              export, e.g. training data for a model);
 * - GET    /v1/admin/profiles/{userId}         the profile (API.md §3) and its last 50
 *                                              events, newest first (fewer when they would
 *                                              not fit in an answer);
 * - GET    /v1/admin/profiles/{userId}/export  everything held (right of access): the
 *                                              profile, its stored state, the identity
 *                                              links (every one, however many:
 *                                              `linkedAnonymousIds`, those of the keys
 *                                              each page read) and every event, in pages;
 * - DELETE /v1/admin/profiles/{userId}         erases it (right to erasure,
 *                                              shared/store/erasure.ts), its pending
 *                                              sends cancelled on the stack's scheduler:
 *                                              `{erasedAt, resumed, previousErasedAt?, customer, events}`;
 *                                              a request while the customer's erasure is
 *                                              in progress goes on with it (its erasedAt,
 *                                              `resumed: true`), unless it began more than
 *                                              RESUME_WINDOW_MS (15 min) earlier: then it
 *                                              is completed and a new erasure at the
 *                                              request's instant follows (that erasedAt,
 *                                              `previousErasedAt`: the one completed
 *                                              first); one after it completed is a new
 *                                              erasure (`resumed: false`); a
 *                                              history longer than one call erases
 *                                              (events, sends, journey runs, merged
 *                                              anonymous ids) is a 503
 *                                              (Retry-After) saying how far it got, and
 *                                              the next call goes on; `events` counts
 *                                              what this call deleted (not what a call
 *                                              at the same time deleted). An id that names
 *                                              nobody, with nothing held under its keys
 *                                              and no erasure of it in progress, is a
 *                                              404 that writes nothing.
 *
 * The customer of an id (shared/store/operator-id.ts `resolveOperatorId`),
 * by the kind the operator says it is (`?kind=`, as the listing's): a
 * userId (`user`, the default) names that user, with every anonymous id
 * merged into it, and nobody else; an anonymous id (`kind=anonymous`) names
 * the anonymous visitor's profile, or the user it was merged into. A userId
 * never reaches an anonymous visitor: an id held only as an anonymous id is
 * a 404 that says to name it with `?kind=anonymous` (and the other way
 * round).
 *
 * Every answer fits in a Lambda response (shared/http/response-size.ts):
 * events and profiles are big when their senders made them so (any write
 * key may send 32 KB events under any userId), so a page holds what fits
 * and its `next` goes on from there.
 */
import { ApiError } from '#http/errors.ts';
import { decodeKeyCursor, encodeKeyCursor } from '#http/key-cursor.ts';
import { fromChain, type HttpContext, type HttpRequest, type HttpResponse } from '#http/handler-adapter.ts';
import type { AdminServices } from './services.ts';
import { PROFILE_LIST_KINDS, listProfiles } from '#store/profiles.ts';
import { resolveOperatorId, withIdentityLinks } from '#store/operator-id.ts';
import { listRecentEvents, pageAllEvents, type HistoryCursor, type HistoryItem } from '#store/history.ts';
import { eraseProfileKeys, erasureHasWork } from '#store/erasure.ts';
import type { ProfileState } from '#domain/profile/state.ts';
import { OPERATOR_ID_KINDS, type OperatorIdKind } from '#domain/profile/profile-item.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { journeyRunsView } from '#domain/journeys/machine.ts';
import { idTextProblem } from '#domain/ingest/limits.ts';
import { parseProfileKey } from '#domain/profile/identity.ts';
import { bodyPayloadBytes, itemsWithinBudget } from '#http/response-size.ts';

export const HISTORY_LIMIT = 50;

/**
 * The id of an admin profile route: present, and held to the events' id
 * checks (ingest/limits.ts `ID_TEXT_CHECKS`: length, control characters,
 * lone surrogates, blank), so an operator names a customer the way events
 * do, except the checks added for ids coming in (`incomingOnly`: invisible
 * and bidirectional characters), so that a customer stored before them can
 * still be read, exported and erased. 400 `validation_failed` naming
 * `userId` otherwise.
 */
export function validateUserId(value: string | undefined): string {
  if (value === undefined || value.length === 0) {
    throw new ApiError('validation_failed', 'userId is required', [{ path: 'userId', message: 'Required' }]);
  }
  const problem = idTextProblem(value, 'stored');
  if (problem !== undefined) throw new ApiError('validation_failed', `userId ${problem}`, [{ path: 'userId', message: problem }]);
  return value;
}

/**
 * The `kind` query parameter of an admin profile route: what the path's id
 * is, `user` (a userId, the default) or `anonymous` (an anonymousId). 400
 * `validation_failed` naming `kind` otherwise.
 */
export function operatorIdKind(value: string | undefined): OperatorIdKind {
  return kindOf(value, OPERATOR_ID_KINDS, () =>
    new ApiError('validation_failed', 'kind must be user or anonymous', [{ path: 'kind', message: 'must be user (a userId, the default) or anonymous (an anonymousId)' }]),
  );
}

/** A `kind` query parameter: one of `kinds`, the first when absent (the default); anything else throws `refused()`. */
function kindOf<K extends string>(value: string | undefined, kinds: readonly K[], refused: () => ApiError): K {
  if (value === undefined) return kinds[0] as K;
  const kind = kinds.find((k) => k === value);
  if (kind === undefined) throw refused();
  return kind;
}

/** The 404 of an id that names nobody as `kind`; when it is held as the other kind, it says how to name it. */
function notFound(message: string, kind: OperatorIdKind, otherKind: boolean): ApiError {
  if (!otherKind) return new ApiError('not_found', message);
  return new ApiError(
    'not_found',
    kind === 'user'
      ? `${message} as a userId: it is an anonymous visitor's id, named with ?kind=anonymous`
      : `${message} as an anonymousId: it is a userId, named without ?kind (or with ?kind=user)`,
  );
}

/** The event as an operator sees it: the message, without storage keys. */
function publicEvent(item: HistoryItem): Record<string, unknown> {
  const { pk: _pk, profileKey: _profileKey, sortKey: _sortKey, expiresAt: _expiresAt, ...event } = item;
  return event;
}

/** Who a stored profile is: its ids and the anonymous ids merged into it. */
function customerOf(state: ProfileState) {
  return {
    ...(state.userId !== undefined ? { userId: state.userId } : {}),
    ...(state.anonymousId !== undefined ? { anonymousId: state.anonymousId } : {}),
    anonymousIds: state.anonymousIds,
  };
}

export async function getProfileRoute(request: HttpRequest): Promise<HttpResponse> {
  const id = validateUserId(request.pathParameters.userId);
  const kind = operatorIdKind(request.query.kind);
  const { profile: found, keys, otherKind } = await resolveOperatorId(id, kind);
  if (!found) throw notFound('No profile for this id', kind, otherKind);
  const state = found.state;
  const events = (await listRecentEvents(keys, HISTORY_LIMIT)).map(publicEvent);
  const body = { profile: toProfileView(state, Date.now()), journeys: journeyRunsView(state.journeys), events: [] as Record<string, unknown>[] };
  body.events = itemsWithinBudget(events, bodyPayloadBytes(body));
  return { status: 200, body };
}

/** Events per export page: the default and the most a caller may ask for. */
export const EXPORT_PAGE = { default: 500, max: 1_000 } as const;

const invalidQuery = (path: string, message: string) => new ApiError('validation_failed', 'The export request is not valid', [{ path, message }]);

function exportLimit(raw: string | undefined): number {
  if (raw === undefined) return EXPORT_PAGE.default;
  const limit = /^\d{1,4}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(limit >= 1 && limit <= EXPORT_PAGE.max)) throw invalidQuery('limit', `must be an integer from 1 to ${EXPORT_PAGE.max}`);
  return limit;
}

/** Room kept in an export page for its `next` (a cursor's key parts are at most 1,024 characters each). */
const CURSOR_ROOM_BYTES = 8_192;

/**
 * The opaque `next` of a page: base64url JSON of `{key, start?}`, `key` the
 * profile key to go on with (its text, not its place: the customer's keys
 * can change between pages, as merges add identity links) and `start` where
 * to go on inside it.
 */
const encodeCursor = (cursor: HistoryCursor, keys: readonly string[]) =>
  Buffer.from(JSON.stringify({ key: keys[cursor.key], ...(cursor.start ? { start: cursor.start } : {}) }), 'utf8').toString('base64url');

/**
 * The place in `keys` (the customer's own first, then the others in key
 * order: operator-id.ts `withIdentityLinks`) to go on from with profile key
 * `key`: its own place, or where it would be (a key gone since the last page
 * leaves none of the others unread; a key added since, before it, was not
 * the customer's when the export started).
 */
function placeOf(keys: readonly string[], key: string): number {
  if (key === keys[0]) return 0;
  let place = 1;
  while (place < keys.length && (keys[place] as string) < key) place++;
  return place;
}

function decodeCursor(raw: string | undefined, keys: readonly string[]): HistoryCursor | undefined {
  if (raw === undefined) return undefined;
  const refuse = () => invalidQuery('cursor', 'is not the `next` of a page of this export');
  if (raw.length > 2_048 || !/^[A-Za-z0-9_-]+$/.test(raw)) throw refuse();
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
  } catch {
    throw refuse();
  }
  const cursor = value as { key?: unknown; start?: Record<string, unknown> };
  if (!cursor || typeof cursor !== 'object' || typeof cursor.key !== 'string' || cursor.key.length === 0 || cursor.key.length > 1_024) throw refuse();
  const key = placeOf(keys, cursor.key);
  if (cursor.start === undefined) return { key };
  const start = cursor.start;
  const fields = start && typeof start === 'object' ? Object.keys(start).sort().join(',') : '';
  const keyPart = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 1_024;
  // Inside a key: that very key, still the customer's.
  if (fields !== 'pk,profileKey,sortKey' || keys[key] !== cursor.key || start.profileKey !== cursor.key || !keyPart(start.pk) || !keyPart(start.sortKey)) {
    throw refuse();
  }
  return { key, start: { pk: start.pk as string, profileKey: keys[key] as string, sortKey: start.sortKey as string } };
}

export async function exportProfileRoute(request: HttpRequest): Promise<HttpResponse> {
  const id = validateUserId(request.pathParameters.userId);
  const kind = operatorIdKind(request.query.kind);
  const limit = exportLimit(request.query.limit);
  const resolved = await resolveOperatorId(id, kind);
  if (!resolved.profile) throw notFound('No profile for this id', kind, resolved.otherKind);
  const found = resolved.profile;
  // Every identity link of the customer, however many (the profile names its newest LIMITS.anonymousIds).
  const keys = await withIdentityLinks(resolved.keys);
  const cursor = decodeCursor(request.query.cursor, keys);
  const first = cursor?.key ?? 0;
  const page = await pageAllEvents(keys, limit, cursor, { maxKeys: EXPORT_KEYS_PER_PAGE });
  const state = found.state;
  const head = {
    exportedAt: new Date().toISOString(),
    customer: customerOf(state),
    profile: toProfileView(state, Date.now()),
    stored: { version: found.version, state },
  };
  // The linked anonymous ids of the keys this page read (at most EXPORT_KEYS_PER_PAGE), before its events are cut to
  // the answer's size: a page cut short goes on inside the key of its last event, listed again on the next page.
  const linkedOf = (end: number) => linkedAnonymousIdsOf(keys, first, end);
  const events = itemsWithinBudget(page.events.map(publicEvent), bodyPayloadBytes({ ...head, linkedAnonymousIds: linkedOf(readEnd(keys, page.next)), events: [] }) + CURSOR_ROOM_BYTES);
  // A page cut short by the answer's size goes on right after its last event (the index's start key).
  const last = events.length < page.events.length ? page.events[events.length - 1] : undefined;
  const next: HistoryCursor | undefined = last
    ? { key: keys.indexOf(last.profileKey), start: { pk: String(last.pk), profileKey: last.profileKey, sortKey: last.sortKey } }
    : page.next;
  return { status: 200, body: { ...head, linkedAnonymousIds: linkedOf(readEnd(keys, next)), events, ...(next ? { next: encodeCursor(next, keys) } : {}) } };
}

/** Profile keys an export page reads at most (each costs a Query; the page lists their anonymous ids). */
export const EXPORT_KEYS_PER_PAGE = 1_000;

/** Where a page that stops at `next` stopped reading keys (exclusive): past the key it stopped inside, if any. */
const readEnd = (keys: readonly string[], next: HistoryCursor | undefined): number =>
  next === undefined ? keys.length : next.start !== undefined ? next.key + 1 : next.key;

/** The anonymous ids of `keys[from..end)` linked to the customer (every key but its own, the first). */
function linkedAnonymousIdsOf(keys: readonly string[], from: number, end: number): string[] {
  return keys
    .slice(Math.max(1, from), end)
    .map(parseProfileKey)
    .flatMap((identity) => ('anonymousId' in identity ? [identity.anonymousId] : []));
}

/**
 * What an erasure keeps of its invocation past its deadline (ms): the share
 * of work under way when the deadline comes (25 events, 25 emissions, 25
 * erasure records of merged anonymous ids, the mark that one merged
 * anonymous id's history is erased, a write ending 99 journey runs, the
 * delete of one merged anonymous id's item), the customer's own
 * profile's delete and the answer.
 * Erasing a long history takes more than one call: each goes on where the
 * last stopped.
 */
export const ERASURE_FINISH_MS = 5_000;

export async function eraseProfileRoute(request: HttpRequest, context: HttpContext, services: AdminServices): Promise<HttpResponse> {
  const id = validateUserId(request.pathParameters.userId);
  const kind = operatorIdKind(request.query.kind);
  // Without a profile, events may still be held (accepted, not yet applied, or an erasure completed
  // again): the keys the id's own identities may hold them under, never another customer's.
  const resolved = await resolveOperatorId(id, kind);
  const { profile: found, otherKind } = resolved;
  // Every identity link of the customer, however many (the profile names its newest LIMITS.anonymousIds).
  const keys = await withIdentityLinks(resolved.keys);
  // An id that names nobody is a 404 that writes nothing (no erasure claimed): nothing is held under its keys and no
  // erasure of them is in progress. A request that goes on with an erasure in progress answers for that erasure, even
  // when the requests before it had already deleted everything.
  if (!found && !(await erasureHasWork(keys))) throw notFound('No profile and no events for this id', kind, otherKind);
  // A scheduler that cannot cancel is a dependency down, as a store fault is: 503 and retry (the entry is kept until then).
  const cancelSchedule = (emissionId: string) =>
    services.scheduler.cancel(emissionId).catch(() => {
      throw new ApiError('unavailable', 'The scheduler could not cancel a waiting send; retry the erasure later', undefined, 2);
    });
  const report = await eraseProfileKeys(keys, Date.now(), { cancelSchedule, deadline: fromChain(context, 'deadline') - ERASURE_FINISH_MS });
  if (!report.complete) {
    throw new ApiError(
      'unavailable',
      `The erasure is not finished: this call erased ${report.events} events, ${report.emissions} emissions and ${report.identityLinks} identity links of this customer and ended ${report.journeyRuns} of its journey runs, and more remain; call DELETE again to go on where it stopped`,
      undefined,
      1,
    );
  }
  const state = found?.state;
  return {
    status: 200,
    body: {
      erasedAt: report.erasedAt,
      resumed: report.resumed,
      ...(report.previousErasedAt !== undefined ? { previousErasedAt: report.previousErasedAt } : {}),
      customer: state ? customerOf(state) : kind === 'user' ? { userId: id } : { anonymousId: id },
      events: report.events,
    },
  };
}

/** Profiles per page of the listing: the default and the most a caller may ask for. */
export const LIST_PAGE = { default: 100, max: 1_000 } as const;

/** How long a listing page may read before it answers with what it found (under API Gateway's 30 s). */
const LIST_READ_MS = 20_000;

const invalidList = (path: string, message: string) => new ApiError('validation_failed', 'The profile listing request is not valid', [{ path, message }]);

/**
 * GET /v1/admin/profiles?kind=user|anonymous|all&limit=1..1000&cursor=…:
 * `{profiles: [{userId?, anonymousId?, anonymousIds, profile}], next?}`,
 * each profile as GET /v1/admin/profiles/{userId} shows it (API.md §3).
 * `kind` defaults to `user`; pages follow the table's order, and a page may
 * hold fewer than `limit` (the read stops after 20 s) — follow `next`
 * until it is absent. 400 for a bad limit, kind or cursor.
 */
export async function listProfilesRoute(request: HttpRequest): Promise<HttpResponse> {
  const kind = kindOf(request.query.kind, PROFILE_LIST_KINDS, () => invalidList('kind', 'must be user, anonymous or all'));
  const rawLimit = request.query.limit;
  const limit = rawLimit === undefined ? LIST_PAGE.default : /^\d{1,4}$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
  if (!(limit >= 1 && limit <= LIST_PAGE.max)) throw invalidList('limit', `must be an integer from 1 to ${LIST_PAGE.max}`);
  const cursor = request.query.cursor;
  let after: string | undefined;
  if (cursor !== undefined) {
    after = decodeKeyCursor(cursor);
    if (!/^[ua]#./.test(after) || after.length > 1_100) throw invalidList('cursor', 'is not the `next` of a page of this listing');
  }
  const now = Date.now();
  const page = await listProfiles({ kind, limit, ...(after !== undefined ? { after } : {}), deadline: now + LIST_READ_MS });
  const profiles = itemsWithinBudget(
    page.profiles.map((found) => ({ ...customerOf(found.state), profile: toProfileView(found.state, now) })),
    bodyPayloadBytes({ profiles: [], next: 'x'.repeat(CURSOR_ROOM_BYTES) }),
  );
  // A page cut short by the answer's size goes on right after its last profile (any key is a valid start).
  const next = profiles.length < page.profiles.length ? page.profiles[profiles.length - 1]?.key : page.next;
  return {
    status: 200,
    body: { profiles, ...(next !== undefined ? { next: encodeKeyCursor(next) } : {}) },
  };
}
