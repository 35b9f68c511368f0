/**
 * The event routes of API.md §2 by the message type they imply: `/v1/track`
 * is a `track`, `/v1/batch` carries any. The HTTP route table
 * (shared/http/routes.ts) serves them, with Segment's short forms.
 */
export const EVENT_ROUTES = ['batch', 'track', 'identify', 'page', 'screen', 'alias', 'group'] as const;
export type EventRoute = (typeof EVENT_ROUTES)[number];
