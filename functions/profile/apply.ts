/**
 * Applies stored events to the Profiles table exactly once, with identity
 * resolution. The thin stream handler (handler.ts) calls `applyStoredEvents`
 * with a batch's valid events; this module only orchestrates the store and
 * the pure domain (shared/domain/profile).
 *
 * - Events are grouped by the profile they resolve to (anonymous ids that
 *   were merged resolve to their user through the tombstone).
 * - A group is applied in read-modify-write transactions of at most 99
 *   markers + profile + tombstones. Each transaction puts the profile
 *   conditioned on the version read, and an "applied" marker per event
 *   conditioned on its absence, so a redelivered event is a no-op and a
 *   concurrent writer (another group, another shard) makes us re-read and
 *   retry, never lose an event.
 * - Groups run in parallel; a non-retryable failure of a transaction falls
 *   back to one event per transaction so a poison event is isolated.
 * - A store fault is never swallowed: the events it concerns are returned
 *   as failed, so the stream redelivers them.
 */
import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { applyEvents, linkAnonymousId, mergeProfiles } from '#domain/profile/apply.ts';
import { boundEnrichment, type ProfileEnricher } from '#domain/profile/enrich.ts';
import { identityOf, parseProfileKey, type EventIdentity } from '#domain/profile/identity.ts';
import { emptyProfileState, type ProfileSettings, type ProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { anonymousProfileKey, userProfileKey, type StoredEvent } from '#domain/stored-event.ts';
import { getItems, markerKey, profileFromItem, writeProfile, type ProfileItem } from '#store/profiles.ts';
import { batchWrite } from '#store/batch-write.ts';
import { erasedAtOf, erasureKey } from '#store/erasure.ts';
import { isThrottling, isUnavailable } from '#store/errors.ts';
import { config } from '#shared/config.ts';

export interface ApplyInput {
  /** Caller's id for the event (the stream record's sequence number). */
  readonly id: string;
  readonly event: StoredEvent;
}

export interface ApplyOptions {
  readonly settings: ProfileSettings;
  readonly enricher: ProfileEnricher;
  readonly now?: () => number;
  readonly client?: DynamoDBDocumentClient;
  /** Read-modify-write attempts under contention before giving up (the records are then redelivered). */
  readonly maxAttempts?: number;
  /** The Events table, where an event dropped by an erasure is deleted. @default config.EVENTS_TABLE */
  readonly eventsTable?: string;
  /** Groups applied at the same time. */
  readonly concurrency?: number;
  readonly onWarning?: (message: string, details: Record<string, unknown>) => void;
}

export interface ApplyReport {
  /** Failed inputs by id: the stream must redeliver them (or dead-letter a poison one). */
  readonly failures: Map<string, Error>;
  readonly applied: number;
  /** Already applied (their marker exists): redeliveries. */
  readonly duplicates: number;
  readonly merges: number;
  /** Accepted before their customer was erased: dropped, and their Events items deleted. */
  readonly erased: number;
}

/** The most items DynamoDB takes in one TransactWriteItems. */
const MAX_TRANSACTION_ITEMS = 100;

/** A failure that retrying the same transaction cannot fix (item too large, invalid request). */
export class NonRetryableWriteError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetryableWriteError';
  }
}

/** The same profile was changed concurrently more times than we retried: a transient fault. */
export class ContentionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContentionError';
  }
}

interface Entry {
  readonly ids: string[];
  readonly event: StoredEvent;
  readonly identity: EventIdentity;
}

interface Counters {
  applied: number;
  duplicates: number;
  merges: number;
  erased: number;
}

export async function applyStoredEvents(inputs: readonly ApplyInput[], options: ApplyOptions): Promise<ApplyReport> {
  const failures = new Map<string, Error>();
  const counters: Counters = { applied: 0, duplicates: 0, merges: 0, erased: 0 };
  const entries: Entry[] = [];
  const byPk = new Map<string, Entry>();
  for (const input of inputs) {
    const seen = byPk.get(input.event.pk);
    if (seen) {
      // The same event twice in one batch: applied once, both records share the outcome.
      seen.ids.push(input.id);
      continue;
    }
    let identity: EventIdentity;
    try {
      identity = identityOf(input.event);
    } catch (error) {
      failures.set(input.id, error as Error);
      continue;
    }
    const entry: Entry = { ids: [input.id], event: input.event, identity };
    byPk.set(input.event.pk, entry);
    entries.push(entry);
  }

  const fail = (group: readonly Entry[], error: Error) => {
    for (const entry of group) for (const id of entry.ids) failures.set(id, error);
  };

  let groups: Map<string, Entry[]>;
  try {
    groups = await groupByProfile(entries, options);
  } catch (error) {
    fail(entries, error as Error);
    return { failures, ...counters };
  }

  const queue = [...groups.values()];
  const workers = Array.from({ length: Math.min(options.concurrency ?? 8, queue.length) }, async () => {
    for (let group = queue.shift(); group; group = queue.shift()) {
      await applyGroup(group, options, counters, fail);
    }
  });
  await Promise.all(workers);
  return { failures, ...counters };
}

/** Group entries by the profile they resolve to, following the tombstones of merged anonymous ids. */
async function groupByProfile(entries: readonly Entry[], options: ApplyOptions): Promise<Map<string, Entry[]>> {
  const anonymousHomes = entries.filter((e) => e.identity.userId === undefined).map((e) => e.identity.home);
  const items = await getItems(anonymousHomes, { consistent: true, client: options.client });
  const groups = new Map<string, Entry[]>();
  for (const entry of entries) {
    const home = profileFromItem(items.get(entry.identity.home));
    const key = home?.kind === 'tombstone' ? userProfileKey(home.mergedInto) : entry.identity.home;
    const group = groups.get(key) ?? [];
    group.push(entry);
    groups.set(key, group);
  }
  return groups;
}

/** Split a group into chunks whose transaction fits: profile + markers + tombstones ≤ 100 items. */
function chunk(group: readonly Entry[]): Entry[][] {
  const chunks: Entry[][] = [];
  let current: Entry[] = [];
  let size = 1;
  for (const entry of group) {
    const cost = 1 + entry.identity.links.length;
    if (current.length > 0 && size + cost > MAX_TRANSACTION_ITEMS - 1) {
      chunks.push(current);
      current = [];
      size = 1;
    }
    current.push(entry);
    size += cost;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

async function applyGroup(
  group: readonly Entry[],
  options: ApplyOptions,
  counters: Counters,
  fail: (entries: readonly Entry[], error: Error) => void,
): Promise<void> {
  const chunks = chunk(group);
  for (let i = 0; i < chunks.length; i++) {
    const entries = chunks[i]!;
    try {
      await applyChunk(entries, options, counters, fail);
    } catch (error) {
      if (error instanceof NonRetryableWriteError && entries.length > 1) {
        // Isolate the event that makes the transaction impossible: one event per transaction.
        options.onWarning?.('profile transaction refused; applying events one at a time', { error: error.message });
        for (const entry of entries) {
          try {
            await applyChunk([entry], options, counters, fail);
          } catch (single) {
            fail([entry], single as Error);
          }
        }
        continue;
      }
      // A store fault: this chunk and the rest of the group are redelivered (markers make the
      // already-applied ones no-ops).
      fail(chunks.slice(i).flat(), error as Error);
      return;
    }
  }
}

const backoff = (attempt: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.random() * Math.min(200, 5 * 2 ** attempt)));

/** One read-modify-write transaction for events that resolve to one profile; retried on contention. */
async function applyChunk(
  entries: readonly Entry[],
  options: ApplyOptions,
  counters: Counters,
  fail: (entries: readonly Entry[], error: Error) => void,
): Promise<void> {
  const maxAttempts = options.maxAttempts ?? 10;
  const now = options.now ?? Date.now;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    if (attempt > 0) await backoff(attempt);
    const links = [...new Set(entries.flatMap((e) => e.identity.links))].map(anonymousProfileKey);
    const homes = [...new Set(entries.map((e) => e.identity.home))];
    const markers = entries.map((e) => markerKey(e.event.pk));
    const erasures = [...new Set([...homes, ...links])].map(erasureKey);
    const items = await getItems([...homes, ...links, ...markers, ...erasures], { consistent: true, client: options.client });
    const parse = (key: string): ProfileItem | undefined => profileFromItem(items.get(key));

    // Right to erasure (shared/store/erasure.ts): an event accepted before one of its identities was
    // erased is dropped, and its Events item deleted (the erasure may have run before it was stored).
    const erasedBefore = (key: string, receivedAt: number) => {
      const at = erasedAtOf(items.get(erasureKey(key)));
      return at !== undefined && receivedAt <= at;
    };
    const dropped = entries.filter((e) => {
      const receivedAt = Date.parse(e.event.receivedAt);
      return erasedBefore(e.identity.home, receivedAt) || e.identity.links.some((id) => erasedBefore(anonymousProfileKey(id), receivedAt));
    });
    if (dropped.length > 0) {
      await batchWrite(
        options.eventsTable ?? config.EVENTS_TABLE,
        dropped.map((e) => ({ DeleteRequest: { Key: { pk: e.event.pk } } })),
        options.client,
      );
      counters.erased += dropped.length;
      const rest = entries.filter((e) => !dropped.includes(e));
      if (rest.length > 0) await applyChunk(rest, options, counters, fail);
      return;
    }

    // The target: a merged anonymous id resolves to its user (tombstones never change back).
    const targets = new Set(
      entries.map((e) => {
        const home = parse(e.identity.home);
        return home?.kind === 'tombstone' ? userProfileKey(home.mergedInto) : e.identity.home;
      }),
    );
    if (targets.size > 1) {
      // Resolution changed under us (a merge landed between grouping and now): split.
      for (const target of targets) {
        const subset = entries.filter((e) => {
          const home = parse(e.identity.home);
          return (home?.kind === 'tombstone' ? userProfileKey(home.mergedInto) : e.identity.home) === target;
        });
        await applyChunk(subset, options, counters, fail);
      }
      return;
    }
    const targetKey = [...targets][0]!;
    if (!items.has(targetKey) && !homes.includes(targetKey)) {
      for (const [key, item] of await getItems([targetKey], { consistent: true, client: options.client })) {
        items.set(key, item);
      }
    }

    const pending = entries.filter((e) => !items.has(markerKey(e.event.pk)));
    const duplicates = entries.length - pending.length;
    if (pending.length === 0) {
      counters.duplicates += duplicates;
      return;
    }

    const target = parse(targetKey);
    if (target?.kind === 'tombstone') throw new Error(`Profile ${targetKey} is a tombstone`);
    const readVersion = target?.version ?? 0;
    let state: ProfileState = target?.state ?? emptyProfileState(parseProfileKey(targetKey));

    // Apply; if one event throws, apply one by one and set the poison aside.
    const applied: Entry[] = [];
    const poisoned: { entry: Entry; error: Error }[] = [];
    try {
      state = applyEvents(state, pending.map((e) => e.event), options.settings);
      applied.push(...pending);
    } catch {
      for (const entry of pending) {
        try {
          state = applyEvents(state, [entry.event], options.settings);
          applied.push(entry);
        } catch (error) {
          poisoned.push({ entry, error: error as Error });
        }
      }
    }

    // Identity resolution: each linked anonymous profile is merged once, then becomes a tombstone.
    const tombstones: { anonymousId: string; readVersion: number }[] = [];
    const userId = 'userId' in parseProfileKey(targetKey) ? (parseProfileKey(targetKey) as { userId: string }).userId : undefined;
    if (userId !== undefined) {
      const done = new Set<string>();
      for (const entry of applied) {
        for (const anonymousId of entry.identity.links) {
          if (done.has(anonymousId)) continue;
          done.add(anonymousId);
          const anonymous = parse(anonymousProfileKey(anonymousId));
          if (anonymous?.kind === 'tombstone') continue; // merged before (into this user or another): once only
          if (anonymous?.kind === 'profile') state = mergeProfiles(state, anonymous.state);
          else state = structuredClone(state);
          linkAnonymousId(state, anonymousId);
          tombstones.push({ anonymousId, readVersion: anonymous?.version ?? 0 });
        }
      }
    }

    if (applied.length === 0) {
      for (const { entry, error } of poisoned) fail([entry], error);
      counters.duplicates += duplicates;
      return;
    }

    const at = now();
    try {
      state.enrichment = boundEnrichment(options.enricher(toProfileView(state, at), new Date(at)));
    } catch (error) {
      // Derived data only: keep the previous enrichment rather than block the customer's events.
      options.onWarning?.('profile enricher failed; previous enrichment kept', { error: (error as Error).message });
    }
    state.updatedAt = at;

    try {
      await writeProfile(
        { profile: { key: targetKey, state, readVersion }, tombstones, markers: applied.map((e) => e.event.pk) },
        userId,
        at,
        options.client,
      );
    } catch (error) {
      if (isContention(error)) continue;
      if (isThrottling(error) || isUnavailable(error)) throw error;
      if (isInvalidRequest(error)) {
        throw new NonRetryableWriteError(`Profile ${targetKey} cannot be written: ${(error as Error).message}`, {
          cause: error,
        });
      }
      throw error;
    }
    for (const { entry, error } of poisoned) fail([entry], error);
    counters.applied += applied.length;
    counters.duplicates += duplicates;
    counters.merges += tombstones.length;
    return;
  }
  throw new ContentionError(`Profile changed concurrently ${maxAttempts} times; will be retried`);
}

/** A condition failed (someone else wrote first) or a conflicting transaction ran: re-read and retry. */
function isContention(error: unknown): boolean {
  if (error instanceof TransactionCanceledException || (error as Error | undefined)?.name === 'TransactionCanceledException') {
    const reasons = (error as TransactionCanceledException).CancellationReasons ?? [];
    return reasons.every((r) => r.Code === undefined || r.Code === 'None' || r.Code === 'ConditionalCheckFailed' || r.Code === 'TransactionConflict');
  }
  return (error as Error | undefined)?.name === 'TransactionConflictException';
}

/** The request itself is refused (size, shape): retrying the same transaction cannot help. */
function isInvalidRequest(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  if (name === 'ValidationException' || name === 'ItemCollectionSizeLimitExceededException') return true;
  if (name === 'TransactionCanceledException') {
    const reasons = (error as TransactionCanceledException).CancellationReasons ?? [];
    return reasons.some((r) => r.Code === 'ValidationError' || r.Code === 'ItemCollectionSizeLimitExceeded');
  }
  return false;
}
