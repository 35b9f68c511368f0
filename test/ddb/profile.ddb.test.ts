/**
 * The profile function on real DynamoDBStreamEvents against DynamoDB Local:
 * exactly-once application under any delivery a stream can make, identity
 * merges, poison records, store faults.
 */
import awsLite from '@aws-lite/client';
import type { Context, DynamoDBRecord } from 'aws-lambda';
import fc from 'fast-check';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { decisionKey, decodeDecisionId, sealDecisionId } from '#domain/decide/decision-id.ts';
import { applyEvents } from '#domain/profile/apply.ts';
import { emptyProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { type ProfileView } from '#domain/profile/view.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';
import { draft, firstDifference, forCustomer, type Draft } from '../unit/profile-support.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
const { handler, processStreamEvent } = await import('#functions/profile/handler.ts');
const { getItems, resolveProfile, resolveStoredProfile, getProfileView, profileFromItem } = await import('#store/profiles.ts');

const NOW = new Date('2026-04-11T00:00:00Z');
// The handler opens decision ids with the stack's key; the drafts' ids are plain, so they are sealed
// with it here (sealed), as decide would have issued them for `customer`.
const DECISION_KEY = decisionKey(process.env.KAIROS_DECISION_KEY ?? '');
const settings = { halfLifeDays: 14, decisionKey: DECISION_KEY };
const sealed = (draft: Draft, customer: string): Draft => {
  const d = forCustomer(draft, customer);
  const props = d.properties;
  if (!props) return d;
  const out: Record<string, unknown> = { ...props };
  for (const field of ['decision_id', 'decisionId']) {
    if (typeof props[field] === 'string' && decodeDecisionId(props[field]) !== undefined) out[field] = sealDecisionId(props[field], DECISION_KEY);
  }
  return { ...d, properties: out };
};
const context = { functionName: 'profile', awsRequestId: 'test', invokedFunctionArn: 'arn:aws:lambda:us-east-1:1:function:profile' } as Context;
let unique = 0;
const uid = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++unique}`;

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

/** Enrichment is derived at processing time from whatever catalog is live: not part of the aggregate. */
const comparable = (v: ProfileView | undefined) =>
  v ? { ...v, updatedAt: undefined, segments: undefined, persona: undefined, scores: undefined } : v;

async function userView(userId: string): Promise<ProfileView | undefined> {
  const state = await resolveProfile({ userId }, { consistent: true });
  return state ? toProfileView(state, NOW) : undefined;
}

describe('exactly-once application', () => {
  it('any delivery a stream can make (shards, cuts, redelivered suffixes, duplicates) gives the in-order profile', async () => {
    const scenario = fc.record({
      drafts: fc.array(fc.tuple(draft, fc.boolean(), fc.nat(2)), { minLength: 1, maxLength: 20 }),
      identifyAt: fc.nat(),
      identifyShard: fc.nat(2),
      // Per invocation: batch size, offset of a reported failure (redelivery from there), a rewind (replay).
      plan: fc.array(
        fc.record({
          size: fc.integer({ min: 1, max: 8 }),
          failAt: fc.option(fc.nat(7), { nil: undefined }),
          rewind: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined }),
        }),
        { minLength: 1, maxLength: 12 },
      ),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ drafts, identifyAt, identifyShard, plan }) => {
        const userId = uid('u');
        const anonymousId = uid('a');
        const sourceId = uid('src');
        const list: { event: StoredEvent; shard: number }[] = drafts.map(([d, known, shard], i) => ({
          event: storedEvent({ ...sealed(d, known ? userId : anonymousId), sourceId, messageId: `m${i}`, ...(known ? { userId } : { anonymousId }) }),
          shard,
        }));
        const link = storedEvent({ type: 'identify', sourceId, messageId: 'link', userId, anonymousId, timestamp: '2026-03-05T00:00:00.000Z', traits: { tier: 'gold' } });
        list.splice(identifyAt % (list.length + 1), 0, { event: link, shard: identifyShard });

        // Each shard delivers its records in order; shards run concurrently.
        const shards = [0, 1, 2].map((s) =>
          list.filter((e) => e.shard === s).map((e, i) => streamRecord(e.event, { sequenceNumber: sequenceNumber(s * 1000 + i) })),
        );
        const checkpoints = [0, 0, 0];
        for (let step = 0; shards.some((records, s) => checkpoints[s]! < records.length); step++) {
          const last = step >= plan.length;
          await Promise.all(
            shards.map(async (records, s) => {
              const from = checkpoints[s]!;
              if (from >= records.length) return;
              const move = plan[(step + s) % plan.length]!;
              const batch = records.slice(from, from + move.size);
              const response = await processStreamEvent(streamEvent(batch));
              expect(response.batchItemFailures).toEqual([]);
              // A failed invocation (crash, timeout) redelivers from a sequence number inside the batch.
              if (!last && move.failAt !== undefined && move.failAt < batch.length) checkpoints[s] = from + move.failAt;
              else checkpoints[s] = from + batch.length;
              if (!last && move.rewind !== undefined) checkpoints[s] = Math.max(0, checkpoints[s]! - move.rewind);
            }),
          );
        }

        const expected = applyEvents(emptyProfileState({ userId }), list.map((e) => e.event), settings);
        expected.anonymousIds = [anonymousId];
        expect(firstDifference(comparable(await userView(userId)), comparable(toProfileView(expected, NOW)))).toBeUndefined();
        const anonymous = profileFromItem((await getItems([`a#${anonymousId}`], { consistent: true })).get(`a#${anonymousId}`));
        expect(anonymous).toMatchObject({ kind: 'tombstone', mergedInto: userId });
      }),
      { numRuns: 25 },
    );
  });
});

describe('identity resolution', () => {
  it('anonymous browsing, then identify: merged once; later anonymous events land on the user', async () => {
    const userId = uid('u');
    const anonymousId = uid('a');
    const page = (n: number, t: string) => storedEvent({ type: 'page', anonymousId, messageId: `p${n}`, timestamp: t, properties: { category: 'tents' } });
    const identify = storedEvent({ type: 'identify', userId, anonymousId, messageId: 'id1', timestamp: '2026-04-02T00:00:00Z', traits: { email: 'l@x.es' } });
    let seq = 0;
    const send = (events: StoredEvent[]) =>
      handler(streamEvent(events.map((e) => streamRecord(e, { sequenceNumber: sequenceNumber(++seq) }))), context);

    await send([page(1, '2026-04-01T10:00:00Z'), page(2, '2026-04-01T11:00:00Z')]);
    expect((await getProfileView({ anonymousId }, NOW, { consistent: true }))?.stats.visitsTotal).toBe(2);
    // Decide before the stream has merged: the anonymous history is joined in memory.
    expect(await getProfileView({ userId, anonymousId }, NOW, { consistent: true })).toMatchObject({ userId, stats: { visitsTotal: 2 } });
    // The stored item comes with a state read as is, not with one joined in memory.
    const anonymous = await resolveStoredProfile({ anonymousId }, { consistent: true });
    expect(anonymous?.stored).toMatchObject({ kind: 'profile', key: `a#${anonymousId}`, version: 1 });
    expect(anonymous?.stored?.state).toBe(anonymous?.state);
    const joined = await resolveStoredProfile({ userId, anonymousId }, { consistent: true });
    expect(joined?.state.userId).toBe(userId);
    expect(joined && 'stored' in joined).toBe(false);

    await send([identify]);
    await send([identify, page(1, '2026-04-01T10:00:00Z')]); // redelivery: nothing changes
    await send([page(3, '2026-04-03T10:00:00Z')]);
    // A second identify with the same anonymous id must not merge again.
    await send([storedEvent({ type: 'identify', userId, anonymousId, messageId: 'id2', timestamp: '2026-04-04T00:00:00Z', traits: { tier: 'gold' } })]);

    const view = await userView(userId);
    expect(view).toMatchObject({ userId, anonymousIds: [anonymousId], identified: true, traits: { email: 'l@x.es', tier: 'gold' } });
    expect(view?.stats.visitsTotal).toBe(3);
    const item = (await getItems([`a#${anonymousId}`], { consistent: true })).get(`a#${anonymousId}`);
    expect(profileFromItem(item)).toMatchObject({ kind: 'tombstone', mergedInto: userId });
    // Readers that only know the anonymous id find the user.
    expect((await getProfileView({ anonymousId }, NOW, { consistent: true }))?.userId).toBe(userId);
    const followed = await resolveStoredProfile({ anonymousId }, { consistent: true });
    expect(followed?.stored).toMatchObject({ kind: 'profile', key: `u#${userId}` });
    expect(followed?.stored?.state).toBe(followed?.state);
  });

  it('alias joins previousId to the userId', async () => {
    const userId = uid('u');
    const previousId = uid('a');
    await handler(
      streamEvent([
        streamRecord(storedEvent({ type: 'track', anonymousId: previousId, messageId: 't1', event: 'Search', timestamp: '2026-04-01T00:00:00Z' }), { sequenceNumber: sequenceNumber(1) }),
        streamRecord(storedEvent({ type: 'alias', userId, previousId, messageId: 'al1', timestamp: '2026-04-02T00:00:00Z' }), { sequenceNumber: sequenceNumber(2) }),
      ]),
      context,
    );
    expect(await userView(userId)).toMatchObject({ anonymousIds: [previousId], stats: { eventCounts: { Search: { total: 1 } } } });
  });
});

describe('failures', () => {
  it('a poison record is reported by its SequenceNumber while the rest of the batch is applied', async () => {
    const userId = uid('u');
    const good = (n: number) => storedEvent({ type: 'track', userId, messageId: `g${n}`, event: 'Order Completed', timestamp: '2026-04-01T00:00:00Z', properties: { revenue: 5 } });
    const records: DynamoDBRecord[] = [
      streamRecord(good(1), { sequenceNumber: sequenceNumber(1) }),
      streamRecord({ pk: 'src#bad', userId, type: 'track' }, { sequenceNumber: sequenceNumber(2) }),
      streamRecord(good(2), { sequenceNumber: sequenceNumber(3) }),
      streamRecord(good(3), { sequenceNumber: sequenceNumber(4), eventName: 'REMOVE' }),
      streamRecord(good(4), { sequenceNumber: sequenceNumber(5), eventName: 'MODIFY' }),
    ];
    const response = await handler(streamEvent(records), context);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: sequenceNumber(2) }]);
    expect((await userView(userId))?.stats).toMatchObject({ orders: 2, revenue: 10 });
  });

  describe('store faults', () => {
    afterEach(() => awsLite.testing.disable());

    it('fail every record they concern: nothing is checkpointed past an event that was not applied', async () => {
      // DynamoDB throttling every request (DynamoDB Local never throttles): aws-lite's testing mocks.
      awsLite.testing.enable();
      const throttled = { statusCode: 400, error: { __type: 'com.amazonaws.dynamodb.v20120810#ThrottlingException', message: 'Rate exceeded' } };
      for (const operation of ['GetItem', 'BatchGetItem', 'Query', 'PutItem', 'TransactWriteItems', 'BatchWriteItem']) {
        awsLite.testing.mock(`DynamoDB.${operation}`, throttled);
      }
      const userId = uid('u');
      const records = [1, 2].map((n) =>
        streamRecord(storedEvent({ type: 'page', userId, messageId: `f${n}`, timestamp: '2026-04-01T00:00:00Z' }), { sequenceNumber: sequenceNumber(n) }),
      );
      const response = await handler(streamEvent(records), context);
      expect(response.batchItemFailures).toEqual([{ itemIdentifier: sequenceNumber(1) }, { itemIdentifier: sequenceNumber(2) }]);
      expect(awsLite.testing.getAllRequests().length).toBeGreaterThan(0);
      awsLite.testing.disable();
      expect(await userView(userId)).toBeUndefined();
    });
  });
});

describe('enrichment', () => {
  it('stores the enricher result with the profile; a failing enricher keeps the events flowing', async () => {
    const { createProfileHandler } = await import('#functions/profile/handler.ts');
    const userId = uid('u');
    const page = (n: number) => storedEvent({ type: 'page', userId, messageId: `e${n}`, timestamp: '2026-04-01T00:00:00Z' });
    const enriching = createProfileHandler({
      enricher: (view) => ({
        segments: view.stats.visitsTotal >= 2 ? ['frequent'] : ['new'],
        persona: 'explorer',
        scores: { churnRisk: 1 / (1 + view.stats.visitsTotal), bad: Number.NaN },
      }),
    });
    await enriching(streamEvent([page(1), page(2)].map((e, i) => streamRecord(e, { sequenceNumber: sequenceNumber(i) }))), context);
    expect(await userView(userId)).toMatchObject({ segments: ['frequent'], persona: 'explorer', scores: { churnRisk: 1 / 3 } });
    expect((await userView(userId))?.scores).not.toHaveProperty('bad');

    const failing = createProfileHandler({
      enricher: () => {
        throw new Error('enricher bug');
      },
    });
    const response = await failing(streamEvent([streamRecord(page(3), { sequenceNumber: sequenceNumber(3) })]), context);
    expect(response.batchItemFailures).toEqual([]);
    expect(await userView(userId)).toMatchObject({ segments: ['frequent'], stats: { visitsTotal: 3 } });
  });
});
