/**
 * The profile function's reads and writes around the pure batch plan
 * (shared/domain/profile/plan.ts):
 *
 * - `readForPlan`: what a plan asks for (profiles, "applied" markers,
 *   erasure records, erased messages) in consistent BatchGetItem requests of 100 keys, sent
 *   together;
 * - `commitTargets`: the plan's writes as conditional TransactWriteItems
 *   (profiles.ts builds each write's items, statistics.ts the ADD updates
 *   of its outcome statistics, journey-counts.ts those of its journey
 *   report counts, outbox.ts the puts of its outbox entries: the
 *   transactional outbox), packed; a failed condition is
 *   reported as contention (read again and plan anew), a refused request as
 *   invalid, anything else as a fault;
 * - `deleteEvents`: the Events items of events dropped after an erasure.
 */
import { config } from '#shared/config.ts';
import { cellKey, type StatisticsIncrement } from '#domain/learning/statistics.ts';
import type { PlannedWrite, ReadSet, ReadState, TargetPlan } from '#domain/profile/plan.ts';
import { profileFromItem } from '#domain/profile/profile-item.ts';
import { batchWrite } from './batch-write.ts';
import { dynamo, type DynamoClient, type TransactWriteItem } from './client.ts';
import { isContention, isInvalidRequest } from './faults.ts';
import { erasedAtOf } from './erasure.ts';
import { appliedMarkerItem, erasedMessageItem, erasureRecordItem, journeyCountItem, statisticsItem, statisticsShardOf } from './items.ts';
import { journeyCountUpdates } from './journey-counts.ts';
import type { JourneyCounterIncrement } from '#domain/journeys/report.ts';
import { outboxPuts } from './outbox.ts';
import { pool } from './pool.ts';
import { getItems, profileWriteTransaction } from './profiles.ts';
import { statisticsUpdates } from './statistics.ts';

const BATCH_GET_MAX = 100;

export interface ProfileBatchOptions {
  readonly client?: DynamoClient;
}

/** Read what `reads` names and return `read` with it added (a new state; `read` is not changed). */
export async function readForPlan(reads: ReadSet, read: ReadState, options: ProfileBatchOptions = {}): Promise<ReadState> {
  const markerKey = (pk: string) => appliedMarkerItem.key(pk).pk;
  const erasureKey = (profileKey: string) => erasureRecordItem.key(profileKey).pk;
  const erasedMessageKey = (pk: string) => erasedMessageItem.key(pk).pk;
  const itemKeys = [
    ...new Set([...reads.profiles, ...reads.markers.map(markerKey), ...reads.erasures.map(erasureKey), ...reads.erasedMessages.map(erasedMessageKey)]),
  ];
  const requests: string[][] = [];
  for (let i = 0; i < itemKeys.length; i += BATCH_GET_MAX) requests.push(itemKeys.slice(i, i + BATCH_GET_MAX));
  const pages = await Promise.all(requests.map((keys) => getItems(keys, { consistent: true, client: options.client ?? dynamo() })));
  const items = new Map<string, Record<string, unknown>>();
  for (const page of pages) for (const [key, item] of page) items.set(key, item);

  const profiles = new Map(read.profiles);
  const applied = new Map(read.applied);
  const erasedAt = new Map(read.erasedAt);
  const erasedMessages = new Map(read.erasedMessages);
  for (const key of reads.profiles) profiles.set(key, profileFromItem(items.get(key)));
  for (const pk of reads.markers) applied.set(pk, items.has(markerKey(pk)));
  for (const key of reads.erasures) erasedAt.set(key, erasedAtOf(items.get(erasureKey(key))));
  for (const pk of reads.erasedMessages) erasedMessages.set(pk, items.has(erasedMessageKey(pk)));
  return { profiles, applied, erasedAt, erasedMessages };
}

/** How the chain of one target ended: every write committed, or the first that did not and why. */
export type TargetOutcome =
  | { readonly kind: 'committed' }
  | { readonly kind: 'contention' | 'invalid' | 'fault'; readonly at: number; readonly error: Error };

/** DynamoDB's most: 100 items and 4 MB per TransactWriteItems; packs stay under both. */
const PACK_MAX_ITEMS = 100;
const PACK_MAX_BYTES = 3_500_000;

type TransactItem = TransactWriteItem;

/**
 * Commit each target's chain of writes: the first write of every target, then
 * the second of those whose first committed, and so on. The writes of one
 * stage touch disjoint items, so they are packed into as few transactions as
 * DynamoDB takes (a write's items stay together), up to `concurrency` in
 * flight: a batch of a hundred customers' events is a few transactions, not
 * a hundred. Each write's outcome statistics go in its transaction, on its
 * profile's shard (items.ts `statisticsShardOf`); members of a pack whose
 * statistics fall on the same item have them summed into one update
 * (DynamoDB refuses two operations on one item in a transaction), and a
 * pack's 100 items count each statistics item once. A pack commits whole or
 * not at all: a failed condition anywhere
 * in it is contention for each of its targets (planned again from a fresh
 * read); a refused pack is retried a write at a time, so a refusal (an item
 * too large) stays with its own target. Outcomes in the order of `targets`.
 */
export async function commitTargets(
  targets: readonly TargetPlan[],
  options: ProfileBatchOptions & { readonly now: number; readonly concurrency?: number },
): Promise<TargetOutcome[]> {
  const client = options.client ?? dynamo();
  const outcomes: (TargetOutcome | undefined)[] = targets.map(() => undefined);
  for (let stage = 0; ; stage++) {
    const members = targets.flatMap((target, index) =>
      outcomes[index] === undefined && stage < target.writes.length ? [member(index, target.writes[stage]!, options.now)] : [],
    );
    if (members.length === 0) break;
    const send = async (pack: readonly Member[]): Promise<void> => {
      try {
        await client.send('TransactWriteItems', { TransactItems: packItems(pack) });
      } catch (error) {
        const kind = isContention(error) ? 'contention' : isInvalidRequest(error) ? 'invalid' : 'fault';
        if (kind === 'invalid' && pack.length > 1) {
          for (const member of pack) await send([member]);
          return;
        }
        for (const member of pack) outcomes[member.index] = { kind, at: stage, error: error as Error };
      }
    };
    await pool(packs(members), options.concurrency ?? 16, send);
  }
  return outcomes.map((outcome) => outcome ?? { kind: 'committed' });
}

/**
 * One write of a pack: its profile's items, and its outcome statistics and
 * journey counts with the ids of the (shared) items they fall on.
 */
interface Member {
  readonly index: number;
  readonly items: TransactItem[];
  readonly shard: number;
  readonly statistics: readonly StatisticsIncrement[];
  readonly journeyCounts: readonly JourneyCounterIncrement[];
  readonly statisticsItems: ReadonlySet<string>;
}

function member(index: number, write: PlannedWrite, now: number): Member {
  const shard = statisticsShardOf(write.profile.key);
  const keyId = (key: { pk: string; sk: string }) => `${key.pk}\n${key.sk}`;
  const statisticsItems = new Set([
    ...write.statistics.map((increment) => keyId(statisticsItem.key(shard, increment.bucket, cellKey(increment.cell)))),
    ...write.journeyCounts.map((count) => keyId(journeyCountItem.key(shard, count.day, count.journey, count.milestone))),
  ]);
  const items = [...profileWriteTransaction(write, write.userId, now).TransactItems, ...outboxPuts(write.outbox, write.profile.key, write.profile.state.keyErasedAt, now)];
  return { index, items, shard, statistics: write.statistics, journeyCounts: write.journeyCounts, statisticsItems };
}

/** A pack's transaction: each member's items, then the statistics and journey counts of every member, summed per item. */
function packItems(pack: readonly Member[]): TransactItem[] {
  const byShard = new Map<number, { statistics: StatisticsIncrement[]; journeyCounts: JourneyCounterIncrement[] }>();
  for (const m of pack) {
    const shared = byShard.get(m.shard);
    if (shared) {
      shared.statistics.push(...m.statistics);
      shared.journeyCounts.push(...m.journeyCounts);
    } else byShard.set(m.shard, { statistics: [...m.statistics], journeyCounts: [...m.journeyCounts] });
  }
  return [
    ...pack.flatMap((m) => m.items),
    ...[...byShard].flatMap(([shard, shared]) => [...statisticsUpdates(shared.statistics, shard), ...journeyCountUpdates(shared.journeyCounts, shard)]),
  ];
}

/** Rough size of a transaction item: its profile state or emission detail (the bulk) and a margin for the rest. */
const itemBytes = (item: TransactItem): number => {
  const state = 'Put' in item ? item.Put.Item.state : undefined;
  const detail = 'Put' in item ? item.Put.Item.detail : undefined;
  return 512 + (typeof state === 'string' ? state.length * 2 : 0) + (detail ? JSON.stringify(detail).length * 2 : 0);
};

/** A statistics update's size (its key and three numbers): well under `itemBytes`' margin. */
const STATISTICS_ITEM_BYTES = 512;

/**
 * Members in order, cut into packs of at most PACK_MAX_ITEMS items (a
 * statistics or journey counter item shared by several members counts
 * once, as `packItems` sends it) and PACK_MAX_BYTES.
 */
function packs(members: readonly Member[]): Member[][] {
  const out: Member[][] = [];
  let current: Member[] = [];
  let items = 0;
  let bytes = 0;
  let statistics = new Set<string>();
  for (const m of members) {
    const size = m.items.reduce((sum, item) => sum + itemBytes(item), 0);
    const added = [...m.statisticsItems].filter((id) => !statistics.has(id)).length;
    const fits = items + m.items.length + statistics.size + added <= PACK_MAX_ITEMS && bytes + size + added * STATISTICS_ITEM_BYTES <= PACK_MAX_BYTES;
    if (current.length > 0 && !fits) {
      out.push(current);
      current = [];
      items = 0;
      bytes = 0;
      statistics = new Set();
    }
    current.push(m);
    items += m.items.length;
    bytes += size + [...m.statisticsItems].filter((id) => !statistics.has(id)).length * STATISTICS_ITEM_BYTES;
    for (const id of m.statisticsItems) statistics.add(id);
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** Delete the Events items of dropped events. */
export async function deleteEvents(eventPks: readonly string[], options: ProfileBatchOptions & { readonly eventsTable?: string } = {}): Promise<void> {
  if (eventPks.length === 0) return;
  await batchWrite(
    options.eventsTable ?? config.EVENTS_TABLE,
    eventPks.map((pk) => ({ DeleteRequest: { Key: { pk } } })),
    options.client ?? dynamo(),
  );
}
