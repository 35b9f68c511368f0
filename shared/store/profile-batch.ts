/**
 * The profile function's reads and writes around the pure batch plan
 * (shared/domain/profile/plan.ts):
 *
 * - `readForPlan`: what a plan asks for (profiles, "applied" markers,
 *   erasure records) in consistent BatchGetItem requests of 100 keys, sent
 *   together;
 * - `commitTargets`: each target's chain of writes as conditional
 *   TransactWriteItems (profiles.ts builds them), targets in parallel; a
 *   failed condition is reported as contention (read again and plan anew),
 *   a refused request as invalid, anything else is thrown back as a fault;
 * - `deleteEvents`: the Events items of events dropped after an erasure.
 */
import type { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '../config.ts';
import type { PlannedWrite, ReadSet, ReadState, TargetPlan } from '../domain/profile/plan.ts';
import { profileFromItem } from '../domain/profile/stored.ts';
import { batchWrite } from './batch-write.ts';
import { documentClient } from './client.ts';
import { erasedAtOf, erasureKey } from './erasure.ts';
import { getItems, markerKey, writeProfile } from './profiles.ts';

const BATCH_GET_MAX = 100;

export interface ProfileBatchOptions {
  readonly client?: DynamoDBDocumentClient;
}

/** Read what `reads` names and return `read` with it added (a new state; `read` is not changed). */
export async function readForPlan(reads: ReadSet, read: ReadState, options: ProfileBatchOptions = {}): Promise<ReadState> {
  const itemKeys = [...new Set([...reads.profiles, ...reads.markers.map(markerKey), ...reads.erasures.map(erasureKey)])];
  const requests: string[][] = [];
  for (let i = 0; i < itemKeys.length; i += BATCH_GET_MAX) requests.push(itemKeys.slice(i, i + BATCH_GET_MAX));
  const pages = await Promise.all(requests.map((keys) => getItems(keys, { consistent: true, client: options.client ?? documentClient })));
  const items = new Map<string, Record<string, unknown>>();
  for (const page of pages) for (const [key, item] of page) items.set(key, item);

  const profiles = new Map(read.profiles);
  const applied = new Map(read.applied);
  const erasedAt = new Map(read.erasedAt);
  for (const key of reads.profiles) profiles.set(key, profileFromItem(items.get(key)));
  for (const pk of reads.markers) applied.set(pk, items.has(markerKey(pk)));
  for (const key of reads.erasures) erasedAt.set(key, erasedAtOf(items.get(erasureKey(key))));
  return { profiles, applied, erasedAt };
}

/** How the chain of one target ended: every write committed, or the first that did not and why. */
export type TargetOutcome =
  | { readonly kind: 'committed' }
  | { readonly kind: 'contention' | 'invalid'; readonly at: number; readonly error: Error }
  | { readonly kind: 'fault'; readonly at: number; readonly error: Error };

/** Commit each target's writes in order, up to `concurrency` targets at a time. Outcomes in the order of `targets`. */
export async function commitTargets(
  targets: readonly TargetPlan[],
  options: ProfileBatchOptions & { readonly now: number; readonly concurrency?: number },
): Promise<TargetOutcome[]> {
  const outcomes: TargetOutcome[] = new Array<TargetOutcome>(targets.length);
  let next = 0;
  const worker = async () => {
    while (next < targets.length) {
      const index = next++;
      outcomes[index] = await commitChain(targets[index]!.writes, options);
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.concurrency ?? 16, targets.length) }, worker));
  return outcomes;
}

async function commitChain(writes: readonly PlannedWrite[], options: ProfileBatchOptions & { readonly now: number }): Promise<TargetOutcome> {
  for (let at = 0; at < writes.length; at++) {
    const write = writes[at]!;
    try {
      await writeProfile(write, write.userId, options.now, options.client ?? documentClient);
    } catch (error) {
      if (isContention(error)) return { kind: 'contention', at, error: error as Error };
      if (isInvalidRequest(error)) return { kind: 'invalid', at, error: error as Error };
      return { kind: 'fault', at, error: error as Error };
    }
  }
  return { kind: 'committed' };
}

/** Delete the Events items of dropped events. */
export async function deleteEvents(eventPks: readonly string[], options: ProfileBatchOptions & { readonly eventsTable?: string } = {}): Promise<void> {
  if (eventPks.length === 0) return;
  await batchWrite(
    options.eventsTable ?? config.EVENTS_TABLE,
    eventPks.map((pk) => ({ DeleteRequest: { Key: { pk } } })),
    options.client ?? documentClient,
  );
}

const cancellationReasons = (error: unknown): { Code?: string }[] =>
  (error as Partial<TransactionCanceledException> | undefined)?.CancellationReasons ?? [];

/** A condition failed (someone else wrote first) or a conflicting transaction ran: read again and plan anew. */
export function isContention(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  if (name === 'TransactionCanceledException') {
    return cancellationReasons(error).every(
      (r) => r.Code === undefined || r.Code === 'None' || r.Code === 'ConditionalCheckFailed' || r.Code === 'TransactionConflict',
    );
  }
  return name === 'TransactionConflictException';
}

/** The request itself is refused (size, shape): the same transaction can never succeed. */
export function isInvalidRequest(error: unknown): boolean {
  const name = (error as Error | undefined)?.name;
  if (name === 'ValidationException' || name === 'ItemCollectionSizeLimitExceededException') return true;
  if (name === 'TransactionCanceledException') {
    return cancellationReasons(error).some((r) => r.Code === 'ValidationError' || r.Code === 'ItemCollectionSizeLimitExceeded');
  }
  return false;
}
