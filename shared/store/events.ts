/**
 * Writes accepted messages to the Events table, exactly once per
 * (source, messageId): every put is conditional on `attribute_not_exists(pk)`,
 * so a message already stored is a duplicate and changes nothing.
 *
 * Messages go in TransactWriteItems of at most 100 (one round trip per
 * hundred, all-or-nothing), the chunks of a request in parallel. A chunk
 * cancelled because some of its items already exist drops those (they are
 * duplicates) and writes the rest again. Throttling, timeouts and an
 * unreachable store are thrown, so the caller answers 429/503 and the client
 * retries the same messageIds, which is safe.
 *
 * With a `deadline`, the call rejects at that instant with a `timed-out`
 * StoreFault (503): a frozen or slow store never holds the caller past its
 * own timeout. A transaction already sent may still land after that; it is
 * all-or-nothing, and the client's retry with the same messageIds counts its
 * items as duplicates.
 */
import { config } from '#shared/config.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { dynamo, type CallOptions, type DynamoClient } from './client.ts';
import { withDeadline } from './deadline.ts';
import { cancellationCodes, isConditionFailed } from './faults.ts';
import { retrying } from './retry.ts';

/** DynamoDB's limit on actions per transaction. */
export const TRANSACTION_MAX_ITEMS = 100;
/** Under DynamoDB's 4 MB per transaction, with room for attribute overhead. */
const TRANSACTION_MAX_BYTES = 3_000_000;
/** Sends of a chunk that only conflicted with concurrent transactions (the first included). */
const CONFLICT_ATTEMPTS = 5;

export interface StoreEventsOptions {
  readonly client?: DynamoClient;
  readonly tableName?: string;
  /** Instant (epoch ms) by which to give up: the call rejects with a `timed-out` StoreFault. */
  readonly deadline?: number;
}

/** How one chunk reaches the table. */
interface Writer {
  readonly client: DynamoClient;
  readonly tableName: string;
  readonly call: CallOptions;
}

export interface StoreEventsResult {
  /** Newly written. */
  readonly accepted: number;
  /** Already stored, or repeated within the same request. */
  readonly duplicates: number;
}

const CONDITION = 'attribute_not_exists(pk)';

/** First occurrence of each pk wins; later ones in the same request are duplicates. */
export function uniqueByPk(events: readonly StoredEvent[]): { unique: StoredEvent[]; repeated: number } {
  const seen = new Set<string>();
  const unique: StoredEvent[] = [];
  for (const event of events) {
    if (seen.has(event.pk)) continue;
    seen.add(event.pk);
    unique.push(event);
  }
  return { unique, repeated: events.length - unique.length };
}

/** Split into transactions of at most 100 items and ~3 MB. */
export function chunkForTransactions(events: readonly StoredEvent[]): StoredEvent[][] {
  const chunks: StoredEvent[][] = [];
  let current: StoredEvent[] = [];
  let bytes = 0;
  for (const event of events) {
    // JSON length over-approximates DynamoDB's item size for these string/number/map items.
    const size = Buffer.byteLength(JSON.stringify(event), 'utf8');
    if (current.length > 0 && (current.length >= TRANSACTION_MAX_ITEMS || bytes + size > TRANSACTION_MAX_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(event);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

async function putOne(event: StoredEvent, writer: Writer): Promise<StoreEventsResult> {
  try {
    await writer.client.send('PutItem', { TableName: writer.tableName, Item: event, ConditionExpression: CONDITION }, writer.call);
    return { accepted: 1, duplicates: 0 };
  } catch (error) {
    if (isConditionFailed(error)) return { accepted: 0, duplicates: 1 };
    throw error;
  }
}

/** A chunk's transaction was cancelled only by conflicts with concurrent transactions: send it again. */
class Conflicted extends Error {
  constructor(readonly fault: unknown) {
    super('conflicting transactions');
  }
}

async function writeChunk(chunk: StoredEvent[], writer: Writer): Promise<StoreEventsResult> {
  const { client, tableName } = writer;
  // One message alone costs half as much as a plain conditional put.
  if (chunk.length === 1) return putOne(chunk[0] as StoredEvent, writer);
  let pending = chunk;
  let duplicates = 0;
  while (pending.length > 0) {
    if (pending.length === 1) {
      const last = await putOne(pending[0] as StoredEvent, writer);
      return { accepted: last.accepted, duplicates: duplicates + last.duplicates };
    }
    const items = pending;
    const written = await retrying(
      async () => {
        try {
          await client.send(
            'TransactWriteItems',
            { TransactItems: items.map((Item) => ({ Put: { TableName: tableName, Item, ConditionExpression: CONDITION } })) },
            writer.call,
          );
          return true;
        } catch (error) {
          const codes = cancellationCodes(error);
          if (codes.length !== items.length) throw error;
          // Throttled items: let the caller answer 429 (nothing of this chunk was written).
          if (codes.some((code) => code !== 'None' && code !== 'ConditionalCheckFailed' && code !== 'TransactionConflict')) throw error;
          if (codes.includes('ConditionalCheckFailed')) return codes;
          // Only conflicts with concurrent transactions on the same items: back off and try again.
          throw new Conflicted(error);
        }
      },
      (error) => error instanceof Conflicted,
      { attempts: CONFLICT_ATTEMPTS, baseMs: 10, capMs: 200, ...(writer.call.deadline === undefined ? {} : { deadline: writer.call.deadline }) },
    ).catch((error: unknown) => {
      throw error instanceof Conflicted ? error.fault : error;
    });
    if (written === true) return { accepted: pending.length, duplicates };
    // Items that already exist are duplicates; write the rest again.
    duplicates += written.filter((code) => code === 'ConditionalCheckFailed').length;
    pending = pending.filter((_, i) => written[i] !== 'ConditionalCheckFailed');
  }
  return { accepted: 0, duplicates };
}

/**
 * Store events exactly once. Resolves only when every accepted event is
 * durably written; rejects with the store's StoreFault otherwise, or a
 * `timed-out` one past `options.deadline` (some chunks may then be written: a
 * retry counts them as duplicates).
 */
export async function storeEvents(events: readonly StoredEvent[], options: StoreEventsOptions = {}): Promise<StoreEventsResult> {
  const client = options.client ?? dynamo();
  const tableName = options.tableName ?? config.EVENTS_TABLE;
  const { unique, repeated } = uniqueByPk(events);
  const deadline = options.deadline;
  const writer: Writer = { client, tableName, call: deadline === undefined ? {} : { deadline } };
  const writing = Promise.allSettled(chunkForTransactions(unique).map((chunk) => writeChunk(chunk, writer)));
  const settled = await (deadline === undefined ? writing : withDeadline(writing, deadline, 'The Events table'));
  let accepted = 0;
  let duplicates = repeated;
  for (const result of settled) {
    if (result.status === 'rejected') throw result.reason;
    accepted += result.value.accepted;
    duplicates += result.value.duplicates;
  }
  return { accepted, duplicates };
}
