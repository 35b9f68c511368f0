/**
 * A customer's event history from the Events table's `byProfile` index
 * (profileKey = u#<userId> | a#<anonymousId>, sortKey = <timestamp>#<messageId>).
 */
import { config } from '#shared/config.ts';
import { eventsTable } from './tables.ts';
import { dynamo, type DynamoClient } from './client.ts';
import { byProfileQuery, forEachUnderProfileKey, holdsUnderProfileKey } from './by-profile.ts';
import { happenedAt } from '#domain/profile/erasure.ts';
import type { StoredEvent } from '#domain/stored-event.ts';

const INDEX = eventsTable.globalSecondaryIndexes[0].indexName;
const PARALLEL_QUERIES = 10;

export type HistoryItem = Record<string, unknown> & { profileKey: string; sortKey: string };

/**
 * The `limit` most recent events across several profile keys (a user and
 * the anonymous ids merged into it), newest first.
 */
export async function listRecentEvents(
  profileKeys: readonly string[],
  limit: number,
  options: { client?: DynamoClient; tableName?: string } = {},
): Promise<HistoryItem[]> {
  const client = options.client ?? dynamo();
  const tableName = options.tableName ?? config.EVENTS_TABLE;
  if (limit <= 0) return [];
  const queue = [...new Set(profileKeys)];
  const found: HistoryItem[] = [];
  const query = async (profileKey: string) => {
    let startKey: Record<string, unknown> | undefined;
    let collected = 0;
    do {
      const page = await client.send(
        'Query', {
          ...byProfileQuery(tableName, INDEX, profileKey),
          ScanIndexForward: false,
          Limit: limit - collected,
          ExclusiveStartKey: startKey,
        },
      );
      for (const item of page.Items ?? []) found.push(item as HistoryItem);
      collected += page.Items?.length ?? 0;
      startKey = page.LastEvaluatedKey;
    } while (startKey && collected < limit);
  };
  const workers = Array.from({ length: Math.min(PARALLEL_QUERIES, queue.length) }, async () => {
    for (let key = queue.shift(); key !== undefined; key = queue.shift()) await query(key);
  });
  await Promise.all(workers);
  return found
    .sort((a, b) => (a.sortKey < b.sortKey ? 1 : a.sortKey > b.sortKey ? -1 : String(a.pk) < String(b.pk) ? 1 : -1))
    .slice(0, limit);
}

/** Where an export page stopped: the profile key's position and, inside it, DynamoDB's page key. */
export interface HistoryCursor {
  readonly key: number;
  readonly start?: { readonly pk: string; readonly profileKey: string; readonly sortKey: string };
}

/**
 * One page of EVERY event of several profile keys (an export): key by key
 * in the order given, newest first within a key, at most `limit` events
 * read from at most `maxKeys` keys (a customer may have thousands, most
 * without events: each costs a Query); `next` when there is more.
 */
export async function pageAllEvents(
  profileKeys: readonly string[],
  limit: number,
  cursor: HistoryCursor = { key: 0 },
  options: { client?: DynamoClient; tableName?: string; maxKeys?: number } = {},
): Promise<{ events: HistoryItem[]; next?: HistoryCursor }> {
  const client = options.client ?? dynamo();
  const tableName = options.tableName ?? config.EVENTS_TABLE;
  const events: HistoryItem[] = [];
  let key = cursor.key;
  let start: Record<string, unknown> | undefined = cursor.start;
  const end = Math.min(profileKeys.length, cursor.key + (options.maxKeys ?? profileKeys.length));
  while (key < end) {
    const page = await client.send(
      'Query', {
        ...byProfileQuery(tableName, INDEX, profileKeys[key] as string),
        ScanIndexForward: false,
        Limit: limit - events.length,
        ...(start ? { ExclusiveStartKey: start } : {}),
      },
    );
    for (const item of page.Items ?? []) events.push(item as HistoryItem);
    start = page.LastEvaluatedKey;
    if (!start) key++;
    if (events.length >= limit) break;
  }
  if (key >= profileKeys.length) return { events };
  const last = start as { pk?: unknown; profileKey?: unknown; sortKey?: unknown } | undefined;
  return {
    events,
    next: last
      ? { key, start: { pk: String(last.pk), profileKey: String(last.profileKey), sortKey: String(last.sortKey) } }
      : { key },
  };
}

/**
 * The pk, expiry (`expiresAt`, epoch s, the Events table's TTL; absent on
 * an item without one) and the instant it happened for an erasure
 * (`happenedAt`, epoch ms, domain/profile/erasure.ts `happenedAt`; NaN when its times cannot
 * be read) of every event stored under a profile key (an erasure). The
 * index is eventually consistent: an event stored a moment ago may be
 * missing (see shared/store/erasure.ts for how those are caught).
 */
export async function eventKeysOf(
  profileKey: string,
  options: { client?: DynamoClient; tableName?: string } = {},
): Promise<{ readonly pk: string; readonly expiresAt?: number; readonly happenedAt: number }[]> {
  const keys: { pk: string; expiresAt?: number; happenedAt: number }[] = [];
  const each = (item: Record<string, unknown>) =>
    keys.push({
      pk: String(item.pk),
      ...(typeof item.expiresAt === 'number' ? { expiresAt: item.expiresAt } : {}),
      happenedAt: happenedAt(item as unknown as StoredEvent),
    });
  await forEachUnderProfileKey(options.client ?? dynamo(), options.tableName ?? config.EVENTS_TABLE, INDEX, profileKey, each, {
    // What `happenedAt` reads: the times, and what names a timer and its origin.
    expression: 'pk, expiresAt, receivedAt, #timestamp, sourceId, #type, #event, properties',
    names: { '#timestamp': 'timestamp', '#type': 'type', '#event': 'event' },
  });
  return keys;
}

/** Whether any event is stored under a profile key (one Query of at most one item; eventually consistent, as `eventKeysOf`). */
export async function holdsEvents(profileKey: string, options: { client?: DynamoClient; tableName?: string } = {}): Promise<boolean> {
  return holdsUnderProfileKey(options.client ?? dynamo(), options.tableName ?? config.EVENTS_TABLE, INDEX, profileKey);
}
