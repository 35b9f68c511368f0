/**
 * Right to erasure (API.md §5, ARCHITECTURE.md "erasure removes every
 * trace"): everything held about a customer, deleted.
 *
 * A customer is a set of profile keys: `u#<userId>` and the `a#<anonymousId>`
 * merged into it (or one anonymous profile): every one, found by the
 * Profiles table's `byProfile` index of identity links (operator-id.ts
 * `withIdentityLinks`), not only the newest the profile names. Erasing them:
 *
 * 1. an erasure record per key, first: `x#<sha256 of the key>` in the
 *    Profiles table, `{erasedAt}`. The key is hashed, so the record holds no
 *    identifier. Events accepted before `erasedAt` that are still on their
 *    way through the stream (up to 24 h, plus retries) are dropped by the
 *    profile function when it meets the record, and their Events items
 *    deleted (shared/domain/profile/plan.ts). An anonymous key's record is
 *    kept 8 days (TTL), past those; a user key's is kept: it is what says,
 *    after the user is gone, that the id was a userId, so a later read,
 *    export or erasure of the same id names that user only and never follows
 *    the id's anonymous link to another customer (profile-item.ts
 *    `operatorIdTarget`: an alias may have joined the same id, as an
 *    anonymous id, to another user before it became a user itself). The
 *    linked keys' records are read first (consistent BatchGetItem) and only
 *    those this erasure has not written yet are put, 25 a share (a call
 *    that runs out of time stops between two shares, and the next goes on);
 * 2. every event of every key (the `byProfile` index) that happened at or
 *    before `erasedAt` (domain/profile/erasure.ts `happenedAt`: the ones the profile function
 *    drops; one that happened after it, stored while the erasure runs, is
 *    the returning customer's and stays), 25 at a time (a call that runs
 *    out of time stops between two shares, and the next goes on), with its "applied" marker
 *    (`m#<event pk>`, which names the profile key), an erased-message
 *    record put in their place (`xm#<sha256 of the event pk>`, items.ts
 *    `erasedMessageItem`, kept as long as the event would have been, at
 *    least the marker's MARKER_TTL_SECONDS): the same message coming back
 *    (a replay with its `sentAt`, which the skew correction dates on its new
 *    receipt) is dropped by the profile function, not applied as new. The
 *    events are deleted by conditional DeleteItems (`attribute_exists`), so
 *    a call counts only the events its own deletes removed, never those
 *    of another call erasing the same customer at the same time;
 *    once a linked key's events and emissions (step 3) are erased, its
 *    erasure record says so (`historyErased`, a share of work) and later
 *    calls of the same erasure do not read them again, so a customer linked
 *    to thousands of anonymous ids gets further with each call;
 * 3. every emission of every key (the Outbox table's `byProfile` index:
 *    the triggers' and journeys' sends, with their rendered content), 25 at
 *    a time (their stamps read with one BatchGetItem; a call that runs out
 *    of time stops between two shares), that
 *    the erased customer's profile set off (outbox.ts `erasedCustomersEmissions`:
 *    stamped with a `keyErasedAt` before `erasedAt`; one the returning
 *    customer's events set off while the erasure runs, planned on the fresh
 *    profile that knew of this erasure, is left): the
 *    schedule of each one still pending (`sendAt` after `now`: a send
 *    deferred by quiet hours, a journey's timer) cancelled first
 *    (`cancelSchedule`; a refused emission has none, and a missing schedule
 *    is success), then the item deleted (counted as the events are) — so an
 *    erasure that fails part way finds them again when it is called again;
 * 4. the profile items (profiles and tombstones, the identity links), the
 *    customer's own profile last; a profile's journey runs in progress end
 *    with it, each counted `exited` in the journey report in the same
 *    transaction as its delete (conditioned on the version read), so
 *    counted once however often the erasure is called (more than 99 of
 *    them: ended 99 at a time by puts of the item before its delete, each
 *    with its counts, so every transaction stays within DynamoDB's 100
 *    items: domain/profile/erasure.ts `nextRunEnding`, as the profile plan
 *    ends them; a call that runs out of time stops between two such puts,
 *    and the next goes on); each linked key's item deleted, with its
 *    erasure record marked completed, is a share of work too (a linked key
 *    whose record an earlier call of this erasure completed costs no
 *    further request). Only the erased
 *    customer's items are deleted (started, or merged, before `erasedAt`:
 *    profile-item.ts `erasedCustomersItem`): an event accepted after
 *    `erasedAt` that the profile function applies before this step starts
 *    the returning customer's profile afresh in place of the erased one's
 *    (plan.ts), and this step leaves that profile, with its event applied
 *    once.
 *
 * Each step is idempotent: a failed erasure is retried by calling it again,
 * and that call is the same erasure. The erasure record of the customer's own
 * key (the first) is claimed with a conditional put and says the erasure is
 * `erasing` until its last step is done (then `completedAt`): a request that
 * finds its customer's erasure in progress (an operator's retry after a 503, a
 * double click, a network retry) goes on with it at its `erasedAt`, so the
 * returning customer's events, profile and emissions from after `erasedAt`
 * are left, as by the first request (`ErasureReport.resumed`). A request
 * more than RESUME_WINDOW_MS after that `erasedAt` (the erasure failed, or
 * its operator stopped calling, days ago) is not a retry: it completes that
 * erasure, then a new one at its own instant follows (`previousErasedAt`),
 * so nothing of the customer from before the request is left. Once it has
 * completed, a request is a new erasure at its own instant: what the customer
 * did since they came back is erased too.
 * Events accepted after `erasedAt` start a new profile: the customer came
 * back. Write keys, catalogs and learning statistics hold nothing about one
 * customer.
 */
import { batchWrite } from './batch-write.ts';
import { config } from '#shared/config.ts';
import { dynamo, type DynamoClient } from './client.ts';
import { eventKeysOf, holdsEvents } from './history.ts';
import { erasedCustomersEmissions, holdsEmissions, outboxKeysOf } from './outbox.ts';
import { appliedMarkerItem, erasedMessageItem, erasureRecordItem, statisticsShardOf } from './items.ts';
import { MARKER_TTL_SECONDS, getItems, profileToItem } from './profiles.ts';
import { parseProfileKey } from '#domain/profile/identity.ts';
import { erasedCustomersItem, profileFromItem } from '#domain/profile/profile-item.ts';
import { erasedRunCounts } from '#domain/journeys/machine.ts';
import { nextRunEnding } from '#domain/profile/erasure.ts';
import { MAX_TRANSACTION_ITEMS } from '#domain/transaction-budget.ts';
import { journeyIncrements } from '#domain/journeys/report.ts';
import { isConditionFailed, isContention } from './faults.ts';
import { journeyCountUpdates } from './journey-counts.ts';

/** How long an anonymous key's erasure record is kept: past the stream's 24 h and the retries of a failed batch. */
export const ERASURE_TTL_SECONDS = 8 * 24 * 3600;

/**
 * The erasure record of a profile key, written as its erasure starts: a user
 * key's without expiry, an anonymous key's expiring after
 * ERASURE_TTL_SECONDS; `erasing: true` until the erasure has completed
 * (`completeErasure`). A record without `erasing` (or written before the
 * attribute existed) is an erasure that completed.
 */
export function erasureToItem(profileKey: string, erasedAt: number): Record<string, unknown> {
  const kept = 'userId' in parseProfileKey(profileKey);
  return {
    ...erasureRecordItem.key(profileKey),
    kind: 'erasure',
    erasedAt: new Date(erasedAt).toISOString(),
    erasing: true,
    ...(kept ? {} : { expiresAt: Math.floor(erasedAt / 1000) + ERASURE_TTL_SECONDS }),
  };
}

/**
 * Start the erasure of the customer whose own profile key is `profileKey` at
 * `now` (epoch ms), or join the one in progress: the erasure record put on
 * condition that no erasure of the key is in progress (`erasing`). When one
 * is, its `erasedAt` (epoch ms) and `resumed: true`. Store faults reject.
 */
async function claimErasure(profileKey: string, now: number, client: DynamoClient, profiles: string): Promise<{ readonly erasedAt: number; readonly resumed: boolean }> {
  for (let attempt = 1; ; attempt++) {
    try {
      await client.send('PutItem', {
        TableName: profiles,
        Item: erasureToItem(profileKey, now),
        ConditionExpression: 'attribute_not_exists(erasing)',
      });
      return { erasedAt: now, resumed: false };
    } catch (error) {
      if (!isConditionFailed(error)) throw error;
    }
    const { Item } = await client.send('GetItem', { TableName: profiles, Key: erasureRecordItem.key(profileKey), ConsistentRead: true });
    const erasedAt = erasedAtOf(Item);
    // Completed (or its record unreadable) between the put and the read: claimed afresh.
    if (erasedAt !== undefined) return { erasedAt, resumed: true };
    if (attempt >= 3) throw new Error('The erasure record of the customer could not be claimed or read');
  }
}

/**
 * Whether the erasure record `record` says that the erasure at `erasedAt`
 * (epoch ms) has erased its key's events and emissions
 * (`historyErased`, set by `markHistoryErased`), or has completed.
 */
function historyErasedBy(record: Record<string, unknown> | undefined, erasedAt: number): boolean {
  return erasedAtOf(record) === erasedAt && (record?.historyErased === true || record?.erasing === undefined);
}

/**
 * Update the erasure record of `profileKey` (`update`: an UpdateExpression
 * and its values) when it names the erasure at `erasedAt` (epoch ms); a
 * record that names another erasure is left. Store faults reject.
 */
async function updateErasureRecord(
  profileKey: string,
  erasedAt: number,
  update: { readonly expression: string; readonly values: Record<string, unknown> },
  client: DynamoClient,
  profiles: string,
): Promise<void> {
  try {
    await client.send('UpdateItem', {
      TableName: profiles,
      Key: erasureRecordItem.key(profileKey),
      UpdateExpression: update.expression,
      ConditionExpression: 'erasedAt = :erasedAt',
      ExpressionAttributeValues: { ...update.values, ':erasedAt': new Date(erasedAt).toISOString() },
    });
  } catch (error) {
    if (!isConditionFailed(error)) throw error;
  }
}

/**
 * Say on the erasure record of the linked key `profileKey` that the erasure
 * at `erasedAt` (epoch ms) has erased its events and emissions
 * (`historyErased: true`); a record that names another erasure is left.
 * Store faults reject.
 */
const markHistoryErased = (profileKey: string, erasedAt: number, client: DynamoClient, profiles: string): Promise<void> =>
  updateErasureRecord(profileKey, erasedAt, { expression: 'SET historyErased = :true', values: { ':true': true } }, client, profiles);

/**
 * Mark the erasure at `erasedAt` (epoch ms) of each of `profileKeys` as
 * completed (`completedAt`, ISO; `erasing` removed), the customer's own key
 * (the first) last; a record that names another erasure is left. Store
 * faults reject.
 */
async function completeErasure(profileKeys: readonly string[], erasedAt: number, completedAt: number, client: DynamoClient, profiles: string): Promise<void> {
  const completed = { expression: 'SET completedAt = :completedAt REMOVE erasing', values: { ':completedAt': new Date(completedAt).toISOString() } };
  for (const key of [...profileKeys.slice(1), ...profileKeys.slice(0, 1)]) await updateErasureRecord(key, erasedAt, completed, client, profiles);
}

/**
 * The erased-message record of the event `eventPk` deleted at `erasedAt`
 * (epoch ms): kept until the event's own expiry (`expiresAt`, epoch s) or
 * MARKER_TTL_SECONDS after the erasure, whichever is later — as long as
 * the message would have been deduplicated had it not been erased.
 */
export function erasedMessageToItem(eventPk: string, erasedAt: number, expiresAt: number | undefined): Record<string, unknown> {
  const kept = Math.floor(erasedAt / 1000) + MARKER_TTL_SECONDS;
  return { ...erasedMessageItem.key(eventPk), kind: 'erased message', expiresAt: Math.max(kept, expiresAt ?? 0) };
}

/** When the profile key was erased (epoch ms), from its erasure record item; undefined when it was not. */
export function erasedAtOf(item: Record<string, unknown> | undefined): number | undefined {
  if (item?.kind !== 'erasure' || typeof item.erasedAt !== 'string') return undefined;
  const at = Date.parse(item.erasedAt);
  return Number.isNaN(at) ? undefined : at;
}

/**
 * When each of `profileKeys` (`u#…`, `a#…`) was erased, from their erasure
 * records (BatchGetItem of 100 keys, one request after another): epoch ms by
 * key, for the keys erased only (an anonymous key's record expires after
 * ERASURE_TTL_SECONDS). An operator's batch read (off-policy evaluation),
 * never a request-path one.
 */
export async function readErasures(profileKeys: Iterable<string>, options: { readonly client?: DynamoClient } = {}): Promise<Map<string, number>> {
  const byItem = new Map<string, string>();
  for (const key of profileKeys) byItem.set(erasureRecordItem.key(key).pk, key);
  const items = await getItems([...byItem.keys()], { client: options.client ?? dynamo() });
  const erased = new Map<string, number>();
  for (const [pk, key] of byItem) {
    const at = erasedAtOf(items.get(pk));
    if (at !== undefined) erased.set(key, at);
  }
  return erased;
}

/**
 * Whether an erasure of `profileKeys` (the customer's own first, as
 * `eraseProfileKeys` takes them) has anything to erase: an erasure of the
 * own key in progress (to go on with), a profile item (a profile or a
 * tombstone) at one of the keys, events stored under one of them (accepted,
 * not applied yet) or emissions their writes made. One consistent
 * BatchGetItem, then a Query of one key per key of the Events and Outbox
 * tables' `byProfile` indexes until one is found. Reads only: an operator's
 * request for an id that names nobody is answered (404) without a write.
 * Store faults reject (StoreFault).
 */
export async function erasureHasWork(
  profileKeys: readonly string[],
  options: { readonly client?: DynamoClient; readonly profilesTable?: string; readonly eventsTable?: string; readonly outboxTable?: string } = {},
): Promise<boolean> {
  const client = options.client ?? dynamo();
  const keys = [...new Set(profileKeys)];
  if (keys.length === 0) return false;
  const record = erasureRecordItem.key(keys[0] as string).pk;
  const items = await getItems([record, ...keys], { consistent: true, client, ...(options.profilesTable !== undefined ? { tableName: options.profilesTable } : {}) });
  if (items.get(record)?.erasing !== undefined) return true;
  if (keys.some((key) => profileFromItem(items.get(key)) !== undefined)) return true;
  for (const key of keys) {
    if (await holdsEvents(key, { client, ...(options.eventsTable !== undefined ? { tableName: options.eventsTable } : {}) })) return true;
    if (await holdsEmissions(key, { client, ...(options.outboxTable !== undefined ? { tableName: options.outboxTable } : {}) })) return true;
  }
  return false;
}

export interface ErasureOptions {
  /**
   * Cancels the schedule of the emission whose id is `emissionId` (the
   * stack's scheduler, shared/bus/bus.ts `EmissionScheduler.cancel`):
   * resolves once it will not be sent, a missing schedule included; rejects
   * when it could not (the erasure stops there, to be called again).
   */
  readonly cancelSchedule: (emissionId: string) => Promise<void>;
  readonly client?: DynamoClient;
  readonly profilesTable?: string;
  readonly eventsTable?: string;
  readonly outboxTable?: string;
  /** The table of the journey report's counters (the Control table). */
  readonly controlTable?: string;
  /**
   * When to stop (epoch ms): past it, no further share of work is started
   * (25 linked keys' erasure records, 25 events, 25 emissions, a linked
   * key's history marked erased, a write ending 99 journey runs before a
   * profile item's delete, a linked key's item deleted), nor the next key's
   * events read, and the report says
   * `complete: false`: the
   * erasure goes on where it stopped when it is called again. Every call
   * does one share at least, so calls that each start past it still get to
   * the end. A customer's history (events, sends, journey runs, the items
   * of its merged anonymous ids) may be longer than one invocation can
   * erase.
   * @default none: everything is erased in this call
   */
  readonly deadline?: number;
}

export interface ErasureReport {
  /**
   * The instant (ISO-8601) of the erasure that now holds: what happened at or
   * before it is erased (once `complete`), what came after it is the
   * returning customer's. The request's own, or that of an erasure in
   * progress begun at most RESUME_WINDOW_MS before it that it went on with.
   */
  readonly erasedAt: string;
  /** Whether the erasure at `erasedAt` was already in progress (begun by an earlier request), rather than begun by this one. */
  readonly resumed: boolean;
  /**
   * The instant (ISO-8601) of an erasure in progress that this request found
   * begun more than RESUME_WINDOW_MS before it (one that failed, or whose
   * operator stopped calling): completed first, then followed by the
   * erasure at `erasedAt`. Absent otherwise.
   */
  readonly previousErasedAt?: string;
  readonly profileKeys: number;
  /**
   * Events this call deleted (of the erasure at `erasedAt`, and of the one at
   * `previousErasedAt` when it completed that one first): not those that
   * earlier calls of the same erasure deleted, nor those that a call running
   * at the same time deleted (each event counted only when this call's
   * conditional delete removed it).
   */
  readonly events: number;
  /**
   * Outbox items this call deleted. As `events`, each counted only when this
   * call's delete removed it: two calls at once on the same customer never
   * count the same one.
   */
  readonly emissions: number;
  /** Of those, the ones still pending whose schedule was cancelled. */
  readonly cancelled: number;
  /** Journey runs in progress this call ended (counted `exited` in the journey report), with the profile items' deletes or in writes of their own before them. */
  readonly journeyRuns: number;
  /** Items of the customer's linked keys (its merged anonymous ids: tombstones, anonymous profiles) this call deleted. */
  readonly identityLinks: number;
  /** False when the deadline stopped it before its last step: call it again to go on. */
  readonly complete: boolean;
}

/**
 * How much later than an erasure in progress a request may come and still be
 * that erasure (ms): an operator's retry after a 503, a double click, a
 * client's retry. A request later than that still completes the erasure in
 * progress (at its `erasedAt`), and then erases what the customer did up to
 * the request's own instant.
 */
export const RESUME_WINDOW_MS = 15 * 60_000;

/** Events erased per share: one BatchWriteItem (DynamoDB's 25 requests) of each of their three writes. */
const EVENTS_PER_SHARE = 25;

/** Emissions erased per share: one BatchGetItem of their stamps, then each one's schedule cancelled and its item deleted. */
const EMISSIONS_PER_SHARE = 25;

/** Erasure records of linked keys written per share: one BatchWriteItem (DynamoDB's 25 requests). */
const RECORDS_PER_SHARE = 25;

/**
 * Erase the profile keys of one customer (its own profile key first): erasure
 * records, events and their markers (a share at a time), emissions (pending
 * schedules cancelled, the returning customer's left), then the profile
 * items, then the records marked completed; up to `options.deadline`, after
 * which the report says `complete: false` and the erasure stays in progress
 * for a later call to go on with. `requestedAt`: the request's instant, epoch
 * ms, the erasure's `erasedAt` unless an erasure of the customer's own key is
 * in progress: then this is that erasure, at its `erasedAt` (`resumed`), and
 * when that began more than RESUME_WINDOW_MS before `requestedAt`, it is
 * completed and a new erasure at `requestedAt` follows it
 * (`previousErasedAt`), so that nothing of the customer from before the
 * request is left; a call that stops part way leaves that one in progress,
 * for the next call to go on with. Store faults and a schedule that could
 * not be cancelled reject (the erasure stays in progress, to be called again).
 */
export async function eraseProfileKeys(profileKeys: readonly string[], requestedAt: number, options: ErasureOptions): Promise<ErasureReport> {
  const client = options.client ?? dynamo();
  const profiles = options.profilesTable ?? config.PROFILES_TABLE;
  const keys = [...new Set(profileKeys)];
  if (keys.length === 0) throw new Error('An erasure names one profile key at least');
  const totals: ErasureCounts = { events: 0, emissions: 0, cancelled: 0, journeyRuns: 0, identityLinks: 0, shares: 0 };
  let claim = await claimErasure(keys[0] as string, requestedAt, client, profiles);
  // The erasure in progress this request found begun more than RESUME_WINDOW_MS before it: completed first, then
  // followed by one at the request's instant.
  const previous = claim.resumed && requestedAt - claim.erasedAt > RESUME_WINDOW_MS ? claim.erasedAt : undefined;
  for (;;) {
    const complete = await runErasure(keys, claim.erasedAt, totals, { ...options, client, profilesTable: profiles });
    const report: ErasureReport = {
      erasedAt: new Date(claim.erasedAt).toISOString(),
      resumed: claim.resumed,
      ...(previous !== undefined && claim.erasedAt !== previous ? { previousErasedAt: new Date(previous).toISOString() } : {}),
      profileKeys: keys.length,
      events: totals.events,
      emissions: totals.emissions,
      cancelled: totals.cancelled,
      journeyRuns: totals.journeyRuns,
      identityLinks: totals.identityLinks,
      complete,
    };
    if (!complete || !claim.resumed || requestedAt - claim.erasedAt <= RESUME_WINDOW_MS) return report;
    // Completed, but it left what the customer did between its instant and the request's: a new erasure at the
    // request's instant (or one another request began meanwhile, gone on with in its turn).
    claim = await claimErasure(keys[0] as string, requestedAt, client, profiles);
  }
}

/** What one call of an erasure did so far. */
interface ErasureCounts {
  events: number;
  emissions: number;
  cancelled: number;
  journeyRuns: number;
  identityLinks: number;
  /**
   * Shares of work done (linked keys' erasure records, events, emissions, linked keys' histories marked erased, writes
   * ending runs, linked keys' items deleted): a call past its deadline stops only after one.
   */
  shares: number;
}

/**
 * Run the erasure at `now` (epoch ms, claimed) of `keys` (the customer's own
 * first): every step after the claim, adding what it deletes to `counts`.
 * True once completed; false when `options.deadline` stopped it (the erasure
 * stays in progress). Store faults and a schedule that could not be
 * cancelled reject.
 */
async function runErasure(
  keys: readonly string[],
  now: number,
  counts: ErasureCounts,
  options: ErasureOptions & { readonly client: DynamoClient; readonly profilesTable: string },
): Promise<boolean> {
  const { client, profilesTable: profiles } = options;
  const events = options.eventsTable ?? config.EVENTS_TABLE;
  const outbox = options.outboxTable ?? config.OUTBOX_TABLE;
  // Past the deadline, once this call has done a share of work: each call goes further than the one before.
  const stop = () => counts.shares > 0 && options.deadline !== undefined && Date.now() >= options.deadline;
  const linked = keys.slice(1);
  // The erasure records of the linked keys as earlier calls of this erasure left them (one consistent BatchGetItem
  // per 100): those already written are not written again, those completed stay completed.
  const records = linked.length === 0 ? new Map<string, Record<string, unknown>>() : await getItems(linked.map((key) => erasureRecordItem.key(key).pk), { consistent: true, client, tableName: profiles });
  const recordOf = (key: string) => records.get(erasureRecordItem.key(key).pk);
  const unrecorded = linked.filter((key) => erasedAtOf(recordOf(key)) !== now);
  // Every linked key's record before any event is deleted, RECORDS_PER_SHARE a share (one BatchWriteItem).
  for (let start = 0; start < unrecorded.length; start += RECORDS_PER_SHARE) {
    if (stop()) return false;
    await batchWrite(profiles, unrecorded.slice(start, start + RECORDS_PER_SHARE).map((key) => ({ PutRequest: { Item: erasureToItem(key, now) } })), client);
    counts.shares += 1;
  }
  for (const key of keys) {
    // A linked key whose events and emissions an earlier call of this erasure erased (its record says so) is not read
    // again: a customer linked to thousands of anonymous ids gets further with each call.
    if (key !== keys[0] && historyErasedBy(recordOf(key), now)) continue;
    // A call past its deadline stops before reading the next key's events and emissions.
    if (stop()) return false;
    // The returning customer's events (happened after `now`: stored under the key while the erasure runs) are not
    // the erased customer's: the profile function applies them to a fresh profile, which this erasure leaves.
    const stored = (await eventKeysOf(key, { client, tableName: events })).filter((event) => !(event.happenedAt > now));
    // A share at a time, so that each call erases some and the next goes on from there. In each share the
    // erased-message records first and the events last: an erasure that stops part way finds the events again
    // (and their markers, deleted before them) when it is called again.
    for (let start = 0; start < stored.length; start += EVENTS_PER_SHARE) {
      if (stop()) return false;
      const share = stored.slice(start, start + EVENTS_PER_SHARE);
      await batchWrite(profiles, share.map((event) => ({ PutRequest: { Item: erasedMessageToItem(event.pk, now, event.expiresAt) } })), client);
      await batchWrite(profiles, share.map(({ pk }) => ({ DeleteRequest: { Key: appliedMarkerItem.key(pk) } })), client);
      // One conditional DeleteItem each, at once: counted only when it removed the event, so a request that runs
      // beside another erasing the same customer counts only what it deleted itself.
      const removed = await Promise.all(share.map(({ pk }) => deleteIfPresent(client, events, pk)));
      counts.events += removed.filter(Boolean).length;
      counts.shares += 1;
    }
    const emissions = await outboxKeysOf(key, { client, tableName: outbox });
    for (let start = 0; start < emissions.length; start += EMISSIONS_PER_SHARE) {
      if (stop()) return false;
      const share = emissions.slice(start, start + EMISSIONS_PER_SHARE);
      // The returning customer's (planned on the fresh profile started after this erasure) are left.
      const erased = await erasedCustomersEmissions(share.map(({ pk }) => pk), now, { client, tableName: outbox });
      const gone = share.filter(({ pk }) => erased.has(pk));
      // Each pending one's schedule cancelled before its delete: an erasure stopped in between finds them again.
      for (const emission of gone) {
        if (emission.sendAt <= now) continue;
        await options.cancelSchedule(emission.id);
      }
      // One conditional DeleteItem each (the admin function may delete Outbox items, never write them:
      // shared/functions.ts `readdelete`, no BatchWriteItem, which would grant puts too), counted only when it removed
      // the emission, as the events are.
      for (const emission of gone) {
        if (!(await deleteIfPresent(client, outbox, emission.pk))) continue;
        counts.emissions += 1;
        if (emission.sendAt > now) counts.cancelled += 1;
      }
      // A share that kept every emission (all the returning customer's, listed first when due sooner) is no
      // progress: a call past its deadline reads on until it has erased some, or the next call would stop there.
      if (gone.length > 0) counts.shares += 1;
    }
    // A linked key's history erased: its record says so (a share of work), and later calls of this erasure skip it.
    if (key !== keys[0]) {
      await markHistoryErased(key, now, client, profiles);
      counts.shares += 1;
    }
  }
  // The first key (the customer's own profile) goes last: an erasure that fails or stops before the end still
  // finds the customer, and everything linked to it, when it is called again.
  const control = options.controlTable ?? config.CONTROL_TABLE;
  const tables = { client, profiles, control };
  for (const key of linked) {
    // Completed by an earlier call of this erasure: its item deleted (or left, the returning customer's) already.
    const record = recordOf(key);
    if (erasedAtOf(record) === now && record?.erasing === undefined) continue;
    // Each linked key's item deleted and its record completed is a share of work.
    if (stop()) return false;
    const outcome = await deleteProfileItem(key, now, counts, stop, tables);
    if (outcome === 'stopped') return false;
    if (outcome === 'deleted') counts.identityLinks += 1;
    await completeErasure([key], now, Date.now(), client, profiles);
    counts.shares += 1;
  }
  if ((await deleteProfileItem(keys[0] as string, now, counts, stop, tables)) === 'stopped') return false;
  await completeErasure(keys.slice(0, 1), now, Date.now(), client, profiles);
  return true;
}

/**
 * Delete the item `pk` of `tableName` if it is there (a DeleteItem on
 * condition `attribute_exists(pk)`): true when this request removed it,
 * false when it was gone already (deleted by another request erasing the
 * same customer, or by the profile function). Store faults reject.
 */
async function deleteIfPresent(client: DynamoClient, tableName: string, pk: string): Promise<boolean> {
  try {
    await client.send('DeleteItem', { TableName: tableName, Key: { pk }, ConditionExpression: 'attribute_exists(pk)' });
    return true;
  } catch (error) {
    if (isConditionFailed(error)) return false;
    throw error;
  }
}

/** Attempts at deleting one profile item whose version moves under the erasure (the profile function writing it). */
const DELETE_ATTEMPTS = 4;

/**
 * Delete the profile item `key` (a profile, a tombstone, or nothing) erased
 * at `now` (epoch ms), if it is the erased customer's (profile-item.ts
 * `erasedCustomersItem`: started, or merged, before `now`). One the profile
 * function started at or after `now` (the returning customer's events, applied
 * while the erasure ran, on a fresh profile in place of the erased one's) is
 * left. A profile's journey runs in progress end with it, counted `exited` at
 * `now` (machine.ts `erasedRunCounts`) on its shard, in one transaction with
 * the delete conditioned on the version read: once, whatever the retries, and
 * never a profile written after the read. A customer in more than 99 runs
 * (MAX_TRANSACTION_ITEMS, the delete included: runs of journeys of earlier
 * catalog versions stay in progress until their timers fire) has them ended
 * 99 at a time first, as the profile plan ends them (domain/profile/erasure.ts
 * `nextRunEnding`): the item put again, conditioned on the version read, with
 * their counts in its transaction, each such write a share of work (`counts`).
 * `stopped` when `stop()` said to stop before one of those writes (the runs
 * ended so far stay ended, never counted again); `deleted` once this call
 * deleted the item, `left` when there was none to delete (gone already,
 * another request's delete included) or it is the returning customer's.
 */
async function deleteProfileItem(
  key: string,
  now: number,
  counts: ErasureCounts,
  stop: () => boolean,
  tables: { client: DynamoClient; profiles: string; control: string },
): Promise<'deleted' | 'left' | 'stopped'> {
  const { client, profiles, control } = tables;
  for (let attempt = 1; ; ) {
    const { Item } = await client.send('GetItem', { TableName: profiles, Key: { pk: key }, ConsistentRead: true });
    if (!Item) return 'left';
    const profile = profileFromItem(Item);
    if (profile !== undefined && !erasedCustomersItem(profile, now)) return 'left';
    const version = typeof Item.version === 'number' ? Item.version : undefined;
    const condition = {
      ConditionExpression: version === undefined ? 'attribute_exists(pk) AND attribute_not_exists(#version)' : '#version = :version',
      ExpressionAttributeNames: { '#version': 'version' },
      ...(version === undefined ? {} : { ExpressionAttributeValues: { ':version': version } }),
    };
    // More runs in progress than one transaction holds counters for beside the delete (a customer in runs of
    // journeys of earlier catalog versions): a share of them ended first, the item put again with their counts.
    const ending = profile?.kind === 'profile' ? nextRunEnding(profile.state, now, MAX_TRANSACTION_ITEMS - 1) : undefined;
    // An ending write is a share of work of its own; the delete, with the counts of the runs left, always follows.
    if (ending !== undefined && stop()) return 'stopped';
    const ended = ending?.counts ?? (profile?.kind === 'profile' ? erasedRunCounts(profile.state.journeys, now) : []);
    try {
      await client.send('TransactWriteItems', {
        TransactItems: [
          ending !== undefined
            ? { Put: { TableName: profiles, Item: profileToItem(key, ending.state, (version ?? 0) + 1), ...condition } }
            : { Delete: { TableName: profiles, Key: { pk: key }, ...condition } },
          ...journeyCountUpdates(journeyIncrements(ended), statisticsShardOf(key), control),
        ],
      });
      counts.journeyRuns += ended.length;
      counts.shares += 1;
      if (ending === undefined) return 'deleted';
    } catch (error) {
      // Written (or deleted) meanwhile: read it again.
      if (attempt >= DELETE_ATTEMPTS || !isContention(error)) throw error;
      attempt++;
    }
  }
}
