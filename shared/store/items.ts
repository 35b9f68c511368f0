/**
 * The key of every item type, one builder each, beside the table
 * definitions (tables.ts): the one place a key template is written. Every
 * store module builds its keys here; stored data depends on these shapes,
 * so a change to one is a data migration (test/unit/store-items.test.ts
 * pins them).
 *
 * An item type is `{name, table, key}`: `key(...ids)` returns the item's
 * primary key (`{pk}` on Events and Profiles, `{pk, sk}` on Control).
 * The event and profile keys are domain concepts too (ingest builds them,
 * the profile plan parses them): their templates are in
 * shared/domain/item-keys.ts, re-exported here; the store imports them from
 * this module only.
 */
import { createHash } from 'node:crypto';
import { anonymousProfileKey, eventPk, eventSortKey, userProfileKey } from '#domain/item-keys.ts';
import { controlTable, eventsTable, outboxTable, profilesTable, type TableName } from './tables.ts';

export { anonymousProfileKey, eventPk, eventSortKey, userProfileKey };

/** A primary key: `pk`, and `sk` on the Control table. */
export type ItemKey = { readonly pk: string } | { readonly pk: string; readonly sk: string };

export interface ItemType<Ids extends readonly unknown[], Key extends ItemKey> {
  /** What the item is, in the field's terms. */
  readonly name: string;
  readonly table: TableName;
  /** The item's primary key for its ids. */
  readonly key: (...ids: Ids) => Key;
}

const itemType = <Ids extends readonly unknown[], Key extends ItemKey>(
  name: string,
  table: TableName,
  key: (...ids: Ids) => Key,
): ItemType<Ids, Key> => ({ name, table, key });

const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');
/** A chunk index, zero-padded to 5 digits so the chunks sort in order. */
const chunkIndex = (index: number): string => String(index).padStart(5, '0');

// --- Events --------------------------------------------------------------

/**
 * An accepted event: pk `<sourceId>#<messageId>`. Its `byProfile` index key
 * is `profileKey` (`u#<userId>` | `a#<anonymousId>`) and `sortKey`
 * (`<timestamp ISO>#<messageId>`), built with it by ingest.
 */
export const eventItem = itemType('event', eventsTable.id, (sourceId: string, messageId: string) => ({ pk: eventPk(sourceId, messageId) }));

// --- Profiles ------------------------------------------------------------

/** A user's profile: pk `u#<userId>`. */
export const userProfileItem = itemType('user profile', profilesTable.id, (userId: string) => ({ pk: userProfileKey(userId) }));

/** An anonymous profile, or its tombstone once merged into a user: pk `a#<anonymousId>`. */
export const anonymousProfileItem = itemType('anonymous profile or tombstone', profilesTable.id, (anonymousId: string) => ({
  pk: anonymousProfileKey(anonymousId),
}));

/** An "applied" marker of an event (stream redelivery is a no-op): pk `m#<event pk>`. */
export const appliedMarkerItem = itemType('applied marker', profilesTable.id, (eventPk: string) => ({ pk: `m#${eventPk}` }));

/**
 * An erasure record of a profile key: pk `x#<sha256 hex of the profile
 * key>` (64 lowercase hex digits), so the record names nobody.
 */
export const erasureRecordItem = itemType('erasure record', profilesTable.id, (profileKey: string) => ({ pk: `${ERASURE_RECORD_PREFIX}${sha256Hex(profileKey)}` }));

/** The partition key prefix of every erasure record (IAM grants reading those items alone: shared/functions.ts). */
export const ERASURE_RECORD_PREFIX = 'x#';

/**
 * An erased message: an event an erasure deleted, so that the same message
 * coming back is dropped whatever its time (plan.ts). pk `xm#<sha256 hex of
 * the event pk>`, so the record names nobody (a messageId may).
 */
export const erasedMessageItem = itemType('erased message', profilesTable.id, (eventPk: string) => ({ pk: `xm#${sha256Hex(eventPk)}` }));

// --- Control -------------------------------------------------------------

/**
 * A write key's lookup item, by the SHA-256 (hex) of the key's secret:
 * pk `KEY#<sha256 hex>`, sk `KEY`.
 */
export const writeKeyLookupItem = itemType('write key lookup', controlTable.id, (keyHash: string) => ({ pk: `KEY#${keyHash}`, sk: 'KEY' }));

/** The partition of the operator's list of write keys (`writeKeyListItem`), for a Query. */
export const WRITE_KEY_LIST_PK = 'KEYS';

/** A write key in the operator's list: pk `KEYS`, sk `<keyId>`. */
export const writeKeyListItem = itemType('write key list entry', controlTable.id, (keyId: string) => ({ pk: WRITE_KEY_LIST_PK, sk: keyId }));

/** The live catalog pointer (`{version}`): pk `CATALOG`, sk `LIVE`. */
export const catalogLiveItem = itemType('catalog live pointer', controlTable.id, () => ({ pk: 'CATALOG', sk: 'LIVE' }));

/** The catalog version counter (`{next}`): pk `CATALOG`, sk `COUNTER`. */
export const catalogCounterItem = itemType('catalog version counter', controlTable.id, () => ({ pk: 'CATALOG', sk: 'COUNTER' }));

/** The partition of one catalog version's items (META and chunks): `CATALOG#<version>`, for a Query. */
export const catalogVersionPk = (version: number): string => `CATALOG#${version}`;

/** A catalog version's META item: pk `CATALOG#<version>`, sk `META`. */
export const catalogMetaItem = itemType('catalog version meta', controlTable.id, (version: number) => ({
  pk: catalogVersionPk(version),
  sk: 'META',
}));

/** Sort-key prefix of a catalog version's source chunks. */
export const CATALOG_CHUNK_SK_PREFIX = 'CHUNK#';

/**
 * A chunk of a catalog version's gzip'd source text, for versions stored
 * before each version was stored once (`documentFormat` 1 or none; read,
 * no longer written): pk `CATALOG#<version>`, sk `CHUNK#<index, 5 digits>`.
 */
export const catalogChunkItem = itemType('catalog source chunk', controlTable.id, (version: number, index: number) => ({
  pk: catalogVersionPk(version),
  sk: `${CATALOG_CHUNK_SK_PREFIX}${chunkIndex(index)}`,
}));

/** Sort-key prefix of a catalog version's normalised document chunks. */
export const CATALOG_DOCUMENT_CHUNK_SK_PREFIX = 'DOC#';

/**
 * A chunk of a catalog version's one stored copy: its normalised document
 * gzip'd, then its source text gzip'd (catalog-live.ts DOCUMENT_FORMAT):
 * pk `CATALOG#<version>`, sk `DOC#<index, 5 digits>`.
 */
export const catalogDocumentChunkItem = itemType('catalog document chunk', controlTable.id, (version: number, index: number) => ({
  pk: catalogVersionPk(version),
  sk: `${CATALOG_DOCUMENT_CHUNK_SK_PREFIX}${chunkIndex(index)}`,
}));

/** The health probe's item, read and never written: pk `HEALTH`, sk `PROBE`. */
export const healthProbeItem = itemType('health probe', controlTable.id, () => ({ pk: 'HEALTH', sk: 'PROBE' }));

/**
 * Outcome statistics (shared/domain/learning/statistics.ts): one cell's
 * counts in one hourly bucket of one shard. pk `STAT#<shard, 2 digits>`,
 * sk `<bucket start, epoch ms, 13 digits>#<cell key>`, so one Query per
 * shard reads a time range. A counted outcome goes to the shard of the
 * profile it was counted on (`statisticsShardOf`): a popular action's
 * increments spread over STATISTICS_SHARDS partitions, and one profile's
 * always land on the same one.
 */
export const statisticsItem = itemType('outcome statistics', controlTable.id, (shard: number, bucket: number, cell: string) => ({
  pk: `${STATISTICS_PK_PREFIX}${String(shard).padStart(2, '0')}`,
  sk: `${statisticsBucketSk(bucket)}#${cell}`,
}));

/** Partitions the statistics are spread over. */
export const STATISTICS_SHARDS = 16;
export const STATISTICS_PK_PREFIX = 'STAT#';
/** The sort-key prefix of a bucket: its start (epoch ms) zero-padded to 13 digits, so buckets sort in time order. */
export const statisticsBucketSk = (bucket: number): string => String(bucket).padStart(13, '0');
/** The shard of a profile's statistics: 0..STATISTICS_SHARDS−1 from a hash of its key. */
export const statisticsShardOf = (profileKey: string): number => createHash('sha256').update(profileKey, 'utf8').digest().readUInt32BE(0) % STATISTICS_SHARDS;

/**
 * A journey report counter (shared/domain/journeys/report.ts): how many
 * times one milestone of one journey (`entered`, `step:<id>`, `completed`,
 * `exited`) happened on one UTC day, on one shard. pk `JOURNEY#<shard, 2
 * digits>`, sk `<day, days since the epoch, 6 digits>#<journey>#<milestone>`
 * (journey and step ids hold no `#`), so one Query per shard reads a range
 * of days. A customer's counts go to their profile's shard
 * (`statisticsShardOf`), as their outcome statistics do.
 */
export const journeyCountItem = itemType('journey report counter', controlTable.id, (shard: number, day: number, journey: string, milestone: string) => ({
  pk: `${JOURNEY_COUNT_PK_PREFIX}${String(shard).padStart(2, '0')}`,
  sk: `${journeyCountDaySk(day)}#${journey}#${milestone}`,
}));

export const JOURNEY_COUNT_PK_PREFIX = 'JOURNEY#';

/**
 * The marker of one part of a decision log chunk whose decisions were
 * added to the statistics (statistics.ts `countDecisionChunk`): written in
 * the same transaction as that part's increments, under the condition that
 * it does not exist, so a chunk delivered again adds nothing. pk
 * `DLOG#<sha-256 hex of the chunk id>` (an S3 object's key can be 1,024
 * bytes; the hash keeps the key short and spreads chunks over partitions),
 * sk `PART#<part, 5 digits>`.
 */
export const decisionChunkItem = itemType('decision log chunk counted', controlTable.id, (chunk: string, part: number) => ({
  pk: `DLOG#${sha256Hex(chunk)}`,
  sk: `PART#${chunkIndex(part)}`,
}));
/** The sort-key prefix of a day: its number zero-padded to 6 digits, so days sort in order. */
export const journeyCountDaySk = (day: number): string => String(day).padStart(6, '0');
// --- Outbox --------------------------------------------------------------

/**
 * An emission of the outbox (shared/domain/profile/reactions.ts
 * `OutboxEntry`): pk `o#<emission id>`; the id is stable (trigger id + event
 * key), so the conditional put that writes it is also the exactly-once check.
 */
export const outboxItem = itemType('outbox emission', outboxTable.id, (emissionId: string) => ({ pk: `o#${emissionId}` }));

/** Every item type, for the tests that pin them. */
export const itemTypes = [
  eventItem,
  userProfileItem,
  anonymousProfileItem,
  appliedMarkerItem,
  erasureRecordItem,
  erasedMessageItem,
  writeKeyLookupItem,
  writeKeyListItem,
  catalogLiveItem,
  catalogCounterItem,
  catalogMetaItem,
  catalogChunkItem,
  catalogDocumentChunkItem,
  healthProbeItem,
  statisticsItem,
  journeyCountItem,
  decisionChunkItem,
  outboxItem,
] as const;
