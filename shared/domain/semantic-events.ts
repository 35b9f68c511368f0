/**
 * The semantic events Kairos reads (Segment's spec names, compared as
 * `semanticName` reads them) and the shape of the one whose fields change
 * what Kairos may send: `Consent Updated {channel, granted}`. The profile
 * aggregate (profile/apply.ts) applies it; ingest (ingest/normalise.ts)
 * refuses a malformed one with a 400 naming the field, so a consent change
 * is never accepted and then silently ignored.
 */
import { CHANNELS, isChannel, type Channel } from './channels.ts';

/** `Order Completed`, `order_completed` and `order completed` are the same semantic event. */
export const semanticName = (name: string): string => name.trim().toLowerCase().replace(/[\s_]+/g, ' ');

/** The semantic name of `Consent Updated`. */
export const CONSENT_UPDATED = 'consent updated';

/** A boolean as events carry it: true or false, or the strings "true" and "false"; else undefined. */
export function booleanValue(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  return undefined;
}

/** The consent change a `Consent Updated` event's properties make, or undefined when they are malformed (consentUpdateIssues says why). */
export function consentUpdateOf(properties: Readonly<Record<string, unknown>>): { readonly channel: Channel; readonly granted: boolean } | undefined {
  const granted = booleanValue(properties.granted);
  return isChannel(properties.channel) && granted !== undefined ? { channel: properties.channel, granted } : undefined;
}

/** Why a `Consent Updated` event's properties are malformed: each field's path (under `properties`) and message; none when consentUpdateOf reads them. */
export function consentUpdateIssues(properties: Readonly<Record<string, unknown>>): { readonly field: 'channel' | 'granted'; readonly message: string }[] {
  const issues: { field: 'channel' | 'granted'; message: string }[] = [];
  if (!isChannel(properties.channel)) issues.push({ field: 'channel', message: `a Consent Updated event names its channel: one of ${CHANNELS.join(', ')}` });
  if (booleanValue(properties.granted) === undefined) issues.push({ field: 'granted', message: 'a Consent Updated event says whether consent is granted: true or false' });
  return issues;
}
