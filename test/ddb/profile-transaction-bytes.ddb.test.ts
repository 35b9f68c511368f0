/**
 * One event whose sends together pass DynamoDB's 4 MB per transaction, on
 * DynamoDB Local through the real profile function: a catalog whose 20
 * triggers and a journey of 29 acts all start on a complaint, each send
 * rendering about 95 KB of content (49 sends: 4.6 MB). The event's write is
 * one transaction, so the plan holds its reactions to
 * MAX_REACTION_BYTES_PER_EVENT (transaction-budget.ts): the event is
 * applied, the sends that fit are written, the journey stays where it was,
 * instead of a transaction refused on every delivery until the failure
 * queue. And the budget's arithmetic is DynamoDB's: a transaction of a
 * full profile item, reactions of the whole budget and 98 more items of the
 * overhead allowed each is taken; past 4 MB it is refused.
 */
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { createJourneyStepper } from '#domain/journeys/react.ts';
import { createTriggerReactor } from '#domain/triggers/react.ts';
import {
  ITEM_OVERHEAD_BYTES,
  MAX_ITEM_BYTES,
  MAX_REACTION_BYTES_PER_EVENT,
  MAX_TRANSACTION_BYTES,
  MAX_TRANSACTION_ITEMS,
  storedBytes,
} from '#domain/transaction-budget.ts';
import { DynamoClient } from '#store/client.ts';
import { appliedMarkerItem } from '#store/items.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
const { createProfileHandler } = await import('#functions/profile/handler.ts');
const { config } = await import('#shared/config.ts');
const { outboxKeysOf } = await import('#store/outbox.ts');

const run = Date.now().toString(36);
/** A template field holds at most 20,000 characters: a script and four talking points of 19,000 render 95,000 bytes. */
const TEXT = 19_000;

const catalog: CompiledCatalog = (() => {
  const result = loadCatalog(
    JSON.stringify({
      kind: 'kairos/v1',
      actions: [
        {
          id: 'call',
          name: 'Call',
          content: { call_center: { script: 's'.repeat(TEXT), talkingPoints: ['a', 'b', 'c', 'd'].map((c) => c.repeat(TEXT)) } },
        },
      ],
      triggers: Array.from({ length: 20 }, (_, i) => ({ id: `t${i}`, on: { event: 'Complaint Opened' }, decide: { channel: 'call_center' } })),
      journeys: [
        {
          id: 'care',
          entry: { event: 'Complaint Opened' },
          reentry: 'once',
          steps: Array.from({ length: 29 }, (_, i) => ({ id: `act-${i}`, act: { channel: 'call_center' } })),
        },
      ],
    }),
    'json',
  );
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
})();

describe("one event's sends past DynamoDB's 4 MB per transaction", () => {
  it('the event is applied; the sends that fit are written, within the budget; the journey stays where it was', async () => {
    const userId = `bytes-${run}`;
    const event = storedEvent({ type: 'track', userId, event: 'Complaint Opened', messageId: `complaint-${run}`, timestamp: new Date().toISOString() });
    const client = new DynamoClient();
    await client.send('PutItem', { TableName: config.EVENTS_TABLE, Item: event });
    const process = createProfileHandler({
      enricher: () => ({ segments: [], scores: {} }),
      reactor: createTriggerReactor(() => catalog),
      journeys: createJourneyStepper(() => catalog),
      settings: { halfLifeDays: 14 },
      client,
    });
    const response = await process(streamEvent([streamRecord(event, { sequenceNumber: sequenceNumber(1) })]));
    expect(response.batchItemFailures).toEqual([]);
    const marker = await client.send('GetItem', { TableName: config.PROFILES_TABLE, Key: appliedMarkerItem.key(event.pk), ConsistentRead: true });
    expect(marker.Item).toBeDefined();

    const details: Record<string, unknown>[] = [];
    for (const { pk } of await outboxKeysOf(`u#${userId}`)) {
      const { Item } = await client.send('GetItem', { TableName: config.OUTBOX_TABLE, Key: { pk }, ConsistentRead: true });
      details.push(Item?.detail as Record<string, unknown>);
    }
    // The 20 triggers' sends, each with its content rendered whole; none of the journey's.
    expect(details.map((d) => d.trigger).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `t${i}`).sort());
    for (const detail of details) expect(storedBytes(detail)).toBeGreaterThan(95_000);
    expect(details.reduce((sum, d) => sum + storedBytes(d), 0)).toBeLessThanOrEqual(MAX_REACTION_BYTES_PER_EVENT);
    const profile = await client.send('GetItem', { TableName: config.PROFILES_TABLE, Key: { pk: `u#${userId}` }, ConsistentRead: true });
    expect(String(profile.Item?.state)).not.toContain('"care"');
  });

  it("the budget is DynamoDB's: a full profile item, reactions of the whole budget and the other items' overhead fit in one transaction; 4 MB and more does not", async () => {
    const client = new DynamoClient();
    // Keys of the Outbox table's one item kind (`o#…`, shared/store/items.ts): the admin outbox listing, which pages
    // through this table in other tests, may end a page on one of these and refuses a cursor of any other kind.
    const key = (name: string) => `o#bytes-${run}-${name}`;
    /** An item of `bytes` as DynamoDB counts it (its attributes' names and values), in the Outbox table. */
    const item = (name: string, bytes: number) => {
      const pk = key(name);
      return { Put: { TableName: config.OUTBOX_TABLE, Item: { pk, detail: 'x'.repeat(bytes - 'pk'.length - pk.length - 'detail'.length) } } };
    };
    /** The reactions: as many 99,000-byte items as the budget holds, then one of what is left. */
    const reactions = (total: number) => {
      const sizes = Array.from({ length: Math.floor(total / 99_000) }, () => 99_000);
      const rest = total - sizes.length * 99_000;
      return [...sizes, ...(rest > 0 ? [rest] : [])].map((bytes, i) => item(`reaction-${total}-${i}`, bytes));
    };
    const transaction = (label: string, reactionBytes: number) => {
      const sends = reactions(reactionBytes);
      const others = Array.from({ length: MAX_TRANSACTION_ITEMS - 1 - sends.length }, (_, i) => item(`${label}-other-${i}`, ITEM_OVERHEAD_BYTES));
      return [item(`${label}-profile`, MAX_ITEM_BYTES), ...sends, ...others];
    };
    const within = transaction('within', MAX_REACTION_BYTES_PER_EVENT);
    expect(within).toHaveLength(MAX_TRANSACTION_ITEMS);
    await expect(client.send('TransactWriteItems', { TransactItems: within })).resolves.toBeDefined();
    // What the budget leaves out is what DynamoDB refuses: the same transaction with reactions past 4 MB in all.
    const past = transaction('past', MAX_TRANSACTION_BYTES - MAX_ITEM_BYTES + 1);
    await expect(client.send('TransactWriteItems', { TransactItems: past })).rejects.toThrow(/4MB|size/i);
  });
});
