/**
 * GET /v1/admin/profiles/{userId}: the profile (API.md §3) and its last 50
 * events, newest first, across the user and every anonymous id merged into
 * it. An id that is only known as an anonymous visitor finds that
 * anonymous profile (or the user it was merged into).
 */
import { ApiError } from '#http/errors.ts';
import type { HttpRequest, HttpResponse } from '#http/middleware.ts';
import { profileFromItem, getItems, type ProfileItem } from '#store/profiles.ts';
import { listRecentEvents, type HistoryItem } from '#store/history.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { anonymousProfileKey, userProfileKey } from '#domain/stored-event.ts';

export const HISTORY_LIMIT = 50;

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;

export function validateUserId(value: string | undefined): string {
  if (value === undefined || value.length === 0) {
    throw new ApiError('validation_failed', 'userId is required', [{ path: 'userId', message: 'Required' }]);
  }
  if (value.length > 256) {
    throw new ApiError('validation_failed', 'userId is too long', [{ path: 'userId', message: 'At most 256 characters' }]);
  }
  if (CONTROL_CHARS.test(value)) {
    throw new ApiError('validation_failed', 'userId contains control characters', [
      { path: 'userId', message: 'Control characters are not allowed' },
    ]);
  }
  return value;
}

/** The event as an operator sees it: the message, without storage keys. */
function publicEvent(item: HistoryItem): Record<string, unknown> {
  const { pk: _pk, profileKey: _profileKey, sortKey: _sortKey, expiresAt: _expiresAt, ...event } = item;
  return event;
}

/** The profile item for an id: the user's, else an anonymous one (following a merge). */
async function findProfile(id: string): Promise<Extract<ProfileItem, { kind: 'profile' }> | undefined> {
  const userKey = userProfileKey(id);
  const anonKey = anonymousProfileKey(id);
  const items = await getItems([userKey, anonKey]);
  const user = profileFromItem(items.get(userKey));
  if (user?.kind === 'profile') return user;
  const anon = profileFromItem(items.get(anonKey));
  if (anon?.kind === 'profile') return anon;
  if (anon?.kind === 'tombstone') {
    const mergedKey = userProfileKey(anon.mergedInto);
    const merged = profileFromItem((await getItems([mergedKey])).get(mergedKey));
    if (merged?.kind === 'profile') return merged;
  }
  return undefined;
}

export async function getProfileRoute(request: HttpRequest): Promise<HttpResponse> {
  const id = validateUserId(request.pathParameters.userId);
  const found = await findProfile(id);
  if (!found) throw new ApiError('not_found', 'No profile for this id');
  const state = found.state;
  const keys = [
    found.key,
    ...state.anonymousIds.map(anonymousProfileKey),
    ...(state.anonymousId !== undefined ? [anonymousProfileKey(state.anonymousId)] : []),
  ];
  const events = await listRecentEvents(keys, HISTORY_LIMIT);
  return { status: 200, body: { profile: toProfileView(state, Date.now()), events: events.map(publicEvent) } };
}
