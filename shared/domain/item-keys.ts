/**
 * Item keys shared by ingest, the profile function, decide and admin (no
 * dependencies). The store builds every key through shared/store/items.ts,
 * which re-exports these.
 */
/** An event's key: `<sourceId>#<messageId>`. */
export const eventPk = (sourceId: string, messageId: string): string => `${sourceId}#${messageId}`;
/** An event's place in its customer's history (`byProfile` sort key): `<timestamp ISO>#<messageId>`. */
export const eventSortKey = (timestamp: string, messageId: string): string => `${timestamp}#${messageId}`;
/** A user's profile key: `u#<userId>`. */
export const userProfileKey = (userId: string): string => `u#${userId}`;
/** An anonymous profile's key: `a#<anonymousId>`. */
export const anonymousProfileKey = (anonymousId: string): string => `a#${anonymousId}`;
