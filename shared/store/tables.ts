/**
 * The one definition of every DynamoDB table. Read by the CDK stack
 * (infra/), the store (shared/store), the local stack (local/) and the tests.
 * The keys of the items each table holds are built in items.ts.
 * Plain data: no AWS SDK or CDK import, so every reader can use it.
 */

export type AttributeType = 'S' | 'N' | 'B';

export interface KeyDefinition {
  readonly name: string;
  readonly type: AttributeType;
}

export interface IndexDefinition {
  readonly indexName: string;
  readonly partitionKey: KeyDefinition;
  readonly sortKey?: KeyDefinition;
  /** Attributes projected besides the keys; `ALL` projects the whole item. */
  readonly projection: 'ALL' | 'KEYS_ONLY';
}

export interface TableDefinition {
  /** Logical id, used as the CDK construct id. */
  readonly id: 'Events' | 'Profiles' | 'Control' | 'Outbox';
  /** Environment variable through which functions learn the physical name. */
  readonly envVar: 'EVENTS_TABLE' | 'PROFILES_TABLE' | 'CONTROL_TABLE' | 'OUTBOX_TABLE';
  /** Physical name on the local stack (prefixed by KAIROS_TABLE_PREFIX). */
  readonly localName: string;
  readonly partitionKey: KeyDefinition;
  readonly sortKey?: KeyDefinition;
  /** Epoch-seconds attribute after which DynamoDB deletes the item. */
  readonly timeToLiveAttribute?: string;
  /** Stream view type; the Events table (to the profile function) and the Outbox table (to the dispatcher) stream. */
  readonly stream?: 'NEW_IMAGE';
  readonly globalSecondaryIndexes?: readonly IndexDefinition[];
}

/**
 * What every table shares: a string partition key `pk`, and items that
 * expire at `expiresAt` (epoch seconds) when they carry it.
 */
const pkWithExpiry = {
  partitionKey: { name: 'pk', type: 'S' },
  timeToLiveAttribute: 'expiresAt',
} as const satisfies Partial<TableDefinition>;

/**
 * A table's `byProfile` index: a customer's items by profile key
 * (`profileKey` = `u#<userId>` | `a#<anonymousId>`), in `sortKey` order.
 */
const byProfile = <const K extends KeyDefinition, const P extends IndexDefinition['projection']>(sortKey: K, projection: P) =>
  ({ indexName: 'byProfile', partitionKey: { name: 'profileKey', type: 'S' }, sortKey, projection }) as const satisfies IndexDefinition;

/**
 * Events: the accepted history. One item per accepted message, keyed by
 * `<sourceId>#<messageId>` so the conditional put that stores it is also the
 * exactly-once check. The stream (NEW_IMAGE) feeds the profile function.
 * Items expire (`expiresAt`) after the history retention (>= the 30-day
 * deduplication window).
 */
export const eventsTable = {
  id: 'Events',
  envVar: 'EVENTS_TABLE',
  localName: 'kairos-events',
  ...pkWithExpiry,
  stream: 'NEW_IMAGE',
  // A customer's history, newest first: sortKey = <timestamp ISO>#<messageId>.
  globalSecondaryIndexes: [byProfile({ name: 'sortKey', type: 'S' }, 'ALL')],
} as const satisfies TableDefinition;

/**
 * Profiles: the single customer view, one item per profile key
 * (`u#<userId>` or `a#<anonymousId>`), plus short-lived "applied" markers
 * (`m#<event pk>`) that make stream redelivery a no-op. Markers expire after
 * `expiresAt` (longer than the 24 h a stream record lives). Its `byProfile`
 * index finds a customer's identity links (the tombstones of the anonymous
 * ids merged into a user, whatever their number) for the export and the
 * erasure (shared/store/profiles.ts `linkedAnonymousKeys`).
 */
export const profilesTable = {
  id: 'Profiles',
  envVar: 'PROFILES_TABLE',
  localName: 'kairos-profiles',
  ...pkWithExpiry,
  // A user's identity links (profileKey: the user's profile key `u#<userId>`, on tombstones only), sortKey = mergedAt
  // (ISO). Keys only: the index holds no more than the link itself.
  globalSecondaryIndexes: [byProfile({ name: 'mergedAt', type: 'S' }, 'KEYS_ONLY')],
} as const satisfies TableDefinition;

/**
 * Control: write keys (hashed), catalog versions (chunked), learning stats.
 */
export const controlTable = {
  id: 'Control',
  envVar: 'CONTROL_TABLE',
  localName: 'kairos-control',
  ...pkWithExpiry,
  sortKey: { name: 'sk', type: 'S' },
} as const satisfies TableDefinition;

/**
 * Outbox: what the profile function's applied events set off (triggers,
 * journeys), one item per emission keyed by its stable id, put in the same
 * transaction as the profile (a transactional outbox). Its stream
 * (NEW_IMAGE) feeds the dispatcher, which publishes to the EventBridge bus
 * or schedules a deferred send. A table of its own rather than the Profiles
 * table's stream: the dispatcher reads emissions only (no stream of every
 * profile write to filter), its rights stop at this table, and items expire
 * (`expiresAt`) on their own clock. Its `byProfile` index finds a
 * customer's emissions for the erasure (shared/store/erasure.ts).
 */
export const outboxTable = {
  id: 'Outbox',
  envVar: 'OUTBOX_TABLE',
  localName: 'kairos-outbox',
  ...pkWithExpiry,
  stream: 'NEW_IMAGE',
  // A customer's emissions, for the erasure (profileKey: the profile key of the write that made them),
  // sortKey = sendAt (epoch ms). Keys only: the index holds no content.
  globalSecondaryIndexes: [byProfile({ name: 'sendAt', type: 'N' }, 'KEYS_ONLY')],
} as const satisfies TableDefinition;

export const tables = [eventsTable, profilesTable, controlTable, outboxTable] as const satisfies readonly TableDefinition[];

export type TableName = (typeof tables)[number]['id'];
