/**
 * The Outbox table (tables.ts `outboxTable`): the emissions applied events
 * set off (shared/domain/profile/reactions.ts `OutboxEntry`).
 *
 * - `outboxPuts`: the items of a profile write's entries, for its own
 *   transaction (profile-batch.ts `commitTargets`), each conditioned on its
 *   absence (pk = the stable emission id);
 * - `outboxEntryFromItem`: an item (read, or a stream record's NEW_IMAGE)
 *   back to its entry, or undefined for anything else;
 * - `listOutbox`: a page of the table for the operator's route, newest
 *   `sendAt` first within the page, within a budget when given;
 * - `outboxKeysOf`, `holdsEmissions`, `erasedCustomersEmissions`: the
 *   emissions a profile key's writes made (the `byProfile` index), and
 *   which are an erased customer's, for the erasure;
 * - `emissionIdOfKey`: the emission id an item key names (a stream
 *   record's `Keys`, an index entry).
 *
 * Item: `pk` (outboxItem), `id`, `status`, `sendAt` (epoch ms), `detailType`,
 * `detail` (a map), `profileKey` (the profile key of the write that made it:
 * `u#<userId>` | `a#<anonymousId>`), `keyErasedAt` (epoch ms, 0: none: the
 * erasure of that key the profile written had been started after, its
 * `ProfileState.keyErasedAt`, which tells an erased customer's emission from
 * the returning customer's: `erasedCustomersEmissions`), `createdAt` (epoch
 * ms), `expiresAt` (epoch s, TTL: OUTBOX_RETENTION_DAYS after `sendAt`).
 */
import { config } from '#shared/config.ts';
import type { OutboxEntry } from '#domain/profile/reactions.ts';
import { batchGet } from './batch-write.ts';
import { forEachUnderProfileKey, holdsUnderProfileKey } from './by-profile.ts';
import { dynamo, type DynamoClient, type Item, type TransactWriteItem } from './client.ts';
import { outboxItem } from './items.ts';
import { outboxTable } from './tables.ts';

/** The emission id of an Outbox item key (`outboxItem`'s), or undefined for anything else. */
export function emissionIdOfKey(pk: unknown): string | undefined {
  if (typeof pk !== 'string' || pk.length < 3) return undefined;
  const id = pk.slice(2);
  return outboxItem.key(id).pk === pk ? id : undefined;
}

/** Days an emission stays in the table after its send time (the operator's route reads them meanwhile). */
export const OUTBOX_RETENTION_DAYS = 7;

const STATUSES = new Set<OutboxEntry['status']>(['now', 'deferred', 'refused']);

/**
 * The put of each entry, conditioned on its absence (`profileKey`: the
 * profile key of the write that made them; `keyErasedAt`: the erasure of
 * that key the written profile was started after, epoch ms, 0: none,
 * `ProfileState.keyErasedAt`; `now`: the write's instant, epoch ms).
 */
export function outboxPuts(
  entries: readonly OutboxEntry[],
  profileKey: string,
  keyErasedAt: number,
  now: number,
  tableName: string = config.OUTBOX_TABLE,
): TransactWriteItem[] {
  return entries.map((entry) => ({
    Put: {
      TableName: tableName,
      Item: {
        ...outboxItem.key(entry.id),
        id: entry.id,
        status: entry.status,
        sendAt: entry.sendAt,
        detailType: entry.detailType,
        detail: entry.detail,
        profileKey,
        keyErasedAt,
        createdAt: now,
        expiresAt: Math.ceil(entry.sendAt / 1000) + OUTBOX_RETENTION_DAYS * 86_400,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    },
  }));
}

/** An outbox item back to its entry; undefined when it is not one. */
export function outboxEntryFromItem(item: Item | undefined): (OutboxEntry & { readonly createdAt: number }) | undefined {
  if (!item || typeof item.pk !== 'string' || !item.pk.startsWith('o#')) return undefined;
  const { id, status, sendAt, detailType, detail, createdAt } = item;
  if (typeof id !== 'string' || !STATUSES.has(status as OutboxEntry['status']) || typeof sendAt !== 'number' || typeof detailType !== 'string') return undefined;
  if (detail === null || typeof detail !== 'object' || Array.isArray(detail)) return undefined;
  return {
    id,
    status: status as OutboxEntry['status'],
    sendAt,
    detailType,
    detail: detail as Record<string, unknown>,
    createdAt: typeof createdAt === 'number' ? createdAt : sendAt,
  };
}

export interface OutboxPage {
  readonly entries: readonly (OutboxEntry & { readonly createdAt: number })[];
  /** Where the next page starts (the last key read, opaque); absent on the last page. */
  readonly cursor?: string;
}

/**
 * A page of the outbox (a Scan of at most `limit` items from `cursor`), its
 * entries newest `sendAt` first. Store faults reject (StoreFault).
 */
export async function listOutbox(
  options: {
    readonly limit?: number;
    readonly cursor?: string;
    /**
     * A page's budget: `weigh` of each entry (in the table's order) summed,
     * at most `maxWeight`; the page ends before the entry that would pass it
     * (it keeps one entry at least), its cursor at the last entry kept.
     */
    readonly budget?: { readonly weigh: (entry: OutboxEntry & { readonly createdAt: number }) => number; readonly maxWeight: number };
    readonly client?: DynamoClient;
    readonly tableName?: string;
  } = {},
): Promise<OutboxPage> {
  const client = options.client ?? dynamo();
  const page = await client.send('Scan', {
    TableName: options.tableName ?? config.OUTBOX_TABLE,
    Limit: Math.min(Math.max(options.limit ?? 100, 1), 1_000),
    ...(options.cursor ? { ExclusiveStartKey: { pk: options.cursor } } : {}),
  });
  const entries: (OutboxEntry & { readonly createdAt: number })[] = [];
  let weight = 0;
  let last = page.LastEvaluatedKey?.pk;
  for (const item of page.Items ?? []) {
    const entry = outboxEntryFromItem(item);
    if (entry === undefined) continue;
    if (options.budget !== undefined) {
      weight += options.budget.weigh(entry);
      if (weight > options.budget.maxWeight && entries.length > 0) {
        last = outboxItem.key((entries.at(-1) as OutboxEntry).id).pk;
        break;
      }
    }
    entries.push(entry);
  }
  entries.sort((a, b) => b.sendAt - a.sendAt);
  return { entries, ...(typeof last === 'string' ? { cursor: last } : {}) };
}

const BY_PROFILE = outboxTable.globalSecondaryIndexes[0].indexName;

/** An emission of a profile key, as the `byProfile` index keeps it (keys only). */
export interface OutboxKey {
  /** The item's key (`o#<emission id>`). */
  readonly pk: string;
  /** The emission id: the bus event's id, and its schedule's name (shared/bus/eventbridge.ts `scheduleNameOf`). */
  readonly id: string;
  /** When it is (or was to be) published, epoch ms. */
  readonly sendAt: number;
}

/**
 * Every emission the writes of `profileKey` made (the `byProfile` index,
 * every page; eventually consistent, as every index read). Store faults
 * reject (StoreFault).
 */
export async function outboxKeysOf(profileKey: string, options: { readonly client?: DynamoClient; readonly tableName?: string } = {}): Promise<OutboxKey[]> {
  const keys: OutboxKey[] = [];
  await forEachUnderProfileKey(options.client ?? dynamo(), options.tableName ?? config.OUTBOX_TABLE, BY_PROFILE, profileKey, (item) => {
    const id = emissionIdOfKey(item.pk);
    if (id !== undefined && typeof item.sendAt === 'number') keys.push({ pk: item.pk as string, id, sendAt: item.sendAt });
  });
  return keys;
}

/**
 * Whether the writes of `profileKey` made any emission the Outbox table
 * still holds (a Query of one key of the `byProfile` index; eventually
 * consistent). Store faults reject (StoreFault).
 */
export async function holdsEmissions(profileKey: string, options: { readonly client?: DynamoClient; readonly tableName?: string } = {}): Promise<boolean> {
  return holdsUnderProfileKey(options.client ?? dynamo(), options.tableName ?? config.OUTBOX_TABLE, BY_PROFILE, profileKey);
}

/**
 * Which of the Outbox items `pks` are emissions of the customer erased at
 * `erasedAt` (epoch ms): set off on a profile started before that erasure
 * (its `keyErasedAt` earlier; an item written before the stamp existed
 * counts as such). One set off by the returning customer's events on the
 * fresh profile started in the erased one's place (`keyErasedAt` at or after
 * `erasedAt`) is not, nor an item that is gone. Consistent BatchGetItem
 * reads of `pk` and `keyErasedAt` (batch-write.ts `batchGet`, 100 keys a
 * request, unprocessed keys requested again): the `byProfile` index holds
 * keys only. Store faults reject (StoreFault).
 */
export async function erasedCustomersEmissions(
  pks: readonly string[],
  erasedAt: number,
  options: { readonly client?: DynamoClient; readonly tableName?: string } = {},
): Promise<Set<string>> {
  const items = await batchGet(
    options.tableName ?? config.OUTBOX_TABLE,
    [...new Set(pks)].map((pk) => ({ pk })),
    { consistent: true, projection: 'pk, keyErasedAt', client: options.client ?? dynamo() },
  );
  return new Set(items.filter((item) => !(typeof item.keyErasedAt === 'number' && item.keyErasedAt >= erasedAt)).map((item) => String(item.pk)));
}
