/**
 * Which profile an event belongs to, and which anonymous profiles it joins
 * to a known customer (identity resolution, API.md §2).
 */
import { anonymousProfileKey, userProfileKey, type StoredEvent } from '../stored-event.ts';

export interface EventIdentity {
  /** `u#<userId>` when the event names a user, else `a#<anonymousId>` (before tombstones are followed). */
  readonly home: string;
  readonly userId?: string;
  readonly anonymousId?: string;
  /** Anonymous ids to merge into the user: the event's anonymousId, and an alias's previousId. */
  readonly links: readonly string[];
}

export function identityOf(event: Pick<StoredEvent, 'type' | 'userId' | 'anonymousId' | 'previousId'>): EventIdentity {
  if (event.userId !== undefined) {
    const links = new Set<string>();
    if (event.anonymousId !== undefined) links.add(event.anonymousId);
    if (event.type === 'alias' && event.previousId !== undefined && event.previousId !== event.userId) {
      links.add(event.previousId);
    }
    return { home: userProfileKey(event.userId), userId: event.userId, links: [...links] };
  }
  if (event.anonymousId !== undefined) {
    return { home: anonymousProfileKey(event.anonymousId), anonymousId: event.anonymousId, links: [] };
  }
  throw new Error('An event needs a userId or an anonymousId');
}

/** Parse a profile key back into its identity. */
export function parseProfileKey(key: string): { userId: string } | { anonymousId: string } {
  if (key.startsWith('u#') && key.length > 2) return { userId: key.slice(2) };
  if (key.startsWith('a#') && key.length > 2) return { anonymousId: key.slice(2) };
  throw new Error(`Not a profile key: ${key}`);
}
