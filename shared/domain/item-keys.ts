/** Item keys shared by ingest, the profile function, decide and admin (no dependencies). */
export const eventPk = (sourceId: string, messageId: string): string => `${sourceId}#${messageId}`;
export const userProfileKey = (userId: string): string => `u#${userId}`;
export const anonymousProfileKey = (anonymousId: string): string => `a#${anonymousId}`;
