/**
 * The profile plan's reactions run against a Profiles + Outbox table in
 * memory that checks what the transactions check — the profile's version,
 * each applied marker's absence, each outbox item's absence — and commits a
 * write whole or not at all; and the deliveries a stream can make (fast-check):
 * batches cut anywhere, a record twice, redelivery after a fault, any order.
 * An erasure (`erase`) does what shared/store/erasure.ts does to these
 * tables: its erasure record, an erased-message record for each of the
 * customer's events in place of its applied marker, its outbox items and
 * its profile deleted; the plan reads the records back.
 * Shared by the triggers', the journeys' and the caps' property tests.
 */
import fc from 'fast-check';
import { emptyReadState, planBatch, type BatchPlan, type BatchRecord, type PlanOptions, type ReadState } from '#domain/profile/plan.ts';
import type { ProfileItem } from '#domain/profile/profile-item.ts';
import type { OutboxEntry } from '#domain/profile/reactions.ts';
import type { JourneyCounterIncrement } from '#domain/journeys/report.ts';
import { parseProfileState, serializeProfileState } from '#domain/profile/state.ts';
import type { StoredEvent } from '#domain/stored-event.ts';

/** Profiles, Outbox and the journey counters in memory, with the transactions' conditions. */
export class MemoryStore {
  readonly profiles = new Map<string, { version: number; state: string }>();
  /** Anonymous profiles merged into a user: `a#…` → the version written and the user. */
  readonly tombstones = new Map<string, { version: number; mergedInto: string; keyErasedAt: number }>();
  readonly markers = new Set<string>();
  readonly outbox: OutboxEntry[] = [];
  readonly outboxIds = new Set<string>();
  /** The profile key of the write that put each outbox item (the Outbox table's `byProfile` index). */
  readonly outboxProfileKeys = new Map<string, string>();
  /** Erasure records: profile key → when it was erased (epoch ms). */
  readonly erasures = new Map<string, number>();
  /** Erased-message records: event pks. */
  readonly erasedMessages = new Set<string>();
  /** Journey report counters, by `<journey> <day> <milestone>`. */
  readonly counters = new Map<string, number>();
  /** Event pks in the order their writes committed: the order the reactions saw them. */
  readonly applied: string[] = [];
  /** Impressions the committed writes added to the outcome statistics. */
  impressions = 0;
  /** Clicks the committed writes added to the outcome statistics. */
  clicks = 0;
  /** Writes refused because one of their outbox items existed (the markers should make it never happen). */
  outboxRefusals = 0;

  read(reads: { profiles: readonly string[]; markers: readonly string[]; erasures: readonly string[]; erasedMessages?: readonly string[] }, read: ReadState): ReadState {
    const profiles = new Map(read.profiles);
    const applied = new Map(read.applied);
    const erasedAt = new Map(read.erasedAt);
    const erasedMessages = new Map(read.erasedMessages);
    for (const key of reads.profiles) {
      const item = this.profiles.get(key);
      const tombstone = this.tombstones.get(key);
      if (tombstone) {
        profiles.set(key, { kind: 'tombstone', key, version: tombstone.version, mergedInto: tombstone.mergedInto, keyErasedAt: tombstone.keyErasedAt } satisfies ProfileItem);
        continue;
      }
      profiles.set(key, item ? ({ kind: 'profile', key, version: item.version, state: parseProfileState(item.state) } satisfies ProfileItem) : undefined);
    }
    for (const pk of reads.markers) applied.set(pk, this.markers.has(pk));
    for (const key of reads.erasures) erasedAt.set(key, this.erasures.get(key));
    for (const pk of reads.erasedMessages ?? []) erasedMessages.set(pk, this.erasedMessages.has(pk));
    return { profiles, applied, erasedAt, erasedMessages };
  }

  /**
   * Erase the customer `profileKey` (one profile, no merged anonymous
   * ones) at `at` (epoch ms), whose applied events are `eventPks`: what
   * shared/store/erasure.ts `eraseProfileKeys` does.
   */
  erase(profileKey: string, at: number, eventPks: Iterable<string>): void {
    this.erasures.set(profileKey, at);
    for (const pk of eventPks) {
      this.erasedMessages.add(pk);
      this.markers.delete(pk);
    }
    for (let i = this.outbox.length - 1; i >= 0; i--) {
      const id = (this.outbox[i] as OutboxEntry).id;
      if (this.outboxProfileKeys.get(id) !== profileKey) continue;
      this.outbox.splice(i, 1);
      this.outboxIds.delete(id);
      this.outboxProfileKeys.delete(id);
    }
    this.profiles.delete(profileKey);
  }

  /**
   * The plan's writes in order, each whole or not at all; a fault stops
   * before the first write. Returns the outbox entries written, or
   * undefined when a write was refused or faulted (the batch is then
   * redelivered).
   */
  commit(plan: BatchPlan, fault: boolean): OutboxEntry[] | undefined {
    const added: OutboxEntry[] = [];
    for (const target of plan.targets) {
      for (const write of target.writes) {
        if (fault) return undefined;
        const versionHolds = (key: string, readVersion: number): boolean => {
          const version = this.profiles.get(key)?.version ?? this.tombstones.get(key)?.version;
          return readVersion === 0 ? version === undefined : version === readVersion;
        };
        if (!versionHolds(write.profile.key, write.profile.readVersion)) return undefined;
        if (!write.tombstones.every((t) => versionHolds(`a#${t.anonymousId}`, t.readVersion))) return undefined;
        if (write.markers.some((pk) => this.markers.has(pk))) return undefined;
        if (write.outbox.some((e) => this.outboxIds.has(e.id))) {
          this.outboxRefusals++;
          return undefined;
        }
        this.profiles.set(write.profile.key, { version: write.profile.readVersion + 1, state: serializeProfileState(write.profile.state) });
        for (const t of write.tombstones) {
          if (write.userId === undefined) throw new Error('a tombstone needs a user');
          this.profiles.delete(`a#${t.anonymousId}`);
          this.tombstones.set(`a#${t.anonymousId}`, { version: t.readVersion + 1, mergedInto: write.userId, keyErasedAt: t.keyErasedAt });
        }
        for (const pk of write.markers) {
          this.markers.add(pk);
          this.applied.push(pk);
        }
        for (const e of write.outbox) {
          this.outboxIds.add(e.id);
          this.outboxProfileKeys.set(e.id, write.profile.key);
          this.outbox.push(e);
          added.push(e);
        }
        for (const increment of write.statistics) {
          this.impressions += increment.counts.impressions;
          this.clicks += increment.counts.clicks;
        }
        for (const c of write.journeyCounts) this.counters.set(journeyCounterKey(c), (this.counters.get(journeyCounterKey(c)) ?? 0) + c.n);
      }
    }
    return added;
  }
}

/** A journey counter's key in `MemoryStore.counters`. */
export const journeyCounterKey = (c: Pick<JourneyCounterIncrement, 'journey' | 'day' | 'milestone'>): string => `${c.journey} ${c.day} ${c.milestone}`;

/** Plan `records` on what `store` holds, reading what the plan asks for. */
export function planOn(store: MemoryStore, records: readonly BatchRecord[], options: PlanOptions): BatchPlan {
  let read = emptyReadState();
  for (;;) {
    const result = planBatch(records, read, options);
    if (result.kind === 'plan') return result.plan;
    read = store.read(result.reads, read);
  }
}

/**
 * Deliver batches in order to `store` (a new one by default); a faulty
 * commit redelivers its batch (like a stream, from its first record).
 * `optionsOf(i)`: the plan's options for the i-th batch (its instant).
 */
export function deliver(
  batches: readonly StoredEvent[][],
  faults: readonly boolean[],
  optionsOf: (batch: number) => PlanOptions,
  store: MemoryStore = new MemoryStore(),
): MemoryStore {
  let f = 0;
  let seq = store.markers.size * 10;
  batches.forEach((batch, b) => {
    const records = batch.map((event) => ({ id: String(seq++), event }));
    for (let attempt = 0; attempt < 5; attempt++) {
      const fault = attempt < 4 && (faults[f++ % Math.max(1, faults.length)] ?? false);
      if (store.commit(planOn(store, records, optionsOf(b)), fault) !== undefined) break;
    }
  });
  return store;
}

/** Any order (or the given one), duplicates anywhere after their first delivery, batches cut anywhere, faults. */
export const delivery = (list: StoredEvent[], keepOrder: boolean) =>
  fc
    .tuple(
      keepOrder ? fc.constant(list) : fc.shuffledSubarray(list, { minLength: list.length, maxLength: list.length }),
      fc.array(fc.tuple(fc.nat(list.length - 1), fc.nat()), { maxLength: 10 }),
      fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 6 }),
      fc.array(fc.boolean(), { maxLength: 8 }),
    )
    .map(([order, duplicates, cuts, faults]) => {
      const sequence = [...order];
      for (const [index, at] of duplicates) {
        const first = sequence.indexOf(list[index]!);
        const position = first + 1 + (at % (sequence.length - first));
        sequence.splice(position, 0, list[index]!);
      }
      const batches: StoredEvent[][] = [];
      for (let i = 0, c = 0; i < sequence.length; c++) {
        const size = cuts[c % cuts.length]!;
        batches.push(sequence.slice(i, i + size));
        i += size;
      }
      return { batches, faults };
    });
