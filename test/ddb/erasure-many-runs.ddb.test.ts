/**
 * A customer in more journey runs than one transaction holds counters for
 * (runs of journeys of earlier catalog versions stay in progress until their
 * timers fire, so they add up past 100): erased, every run is counted
 * exited once and the profile deleted, each TransactWriteItems within
 * DynamoDB's 100 items; back after the erasure but before its last step,
 * the returning customer's event is applied on a fresh profile, the erased
 * customer's runs counted exited once, not refused as a write too large.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { JourneyRuns } from '#domain/journeys/machine.ts';
import { emptyProfileState, parseProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import { anonymousProfileKey, userProfileKey } from '#domain/stored-event.ts';
import { config } from '#shared/config.ts';
import { dynamo } from '#store/client.ts';
import { readJourneyCounts } from '#store/journey-counts.ts';
import { profileToItem } from '#store/profiles.ts';
import { eraseProfileKeys, erasureToItem } from '#store/erasure.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
const { createProfileHandler } = await import('#functions/profile/handler.ts');

let unique = 0;
const uid = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++unique}`;
const T = Date.parse('2026-05-01T09:00:00Z');
const DAY_MS = 86_400_000;
const RUNS = 150;

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

/** `RUNS` runs in progress, each waiting in its own journey (`<prefix>-000`…). */
function runsInProgress(prefix: string): JourneyRuns {
  const runs: JourneyRuns = {};
  for (let i = 0; i < RUNS; i++) {
    runs[`${prefix}-${String(i).padStart(3, '0')}`] = { run: 1, step: 'wait', enteredAt: T - DAY_MS, stepAt: T - DAY_MS, waitingUntil: T + 60 * DAY_MS, named: true };
  }
  return runs;
}

/** The profile of `userId` (or of the visitor `anonymousId`), in `RUNS` runs in progress, stored as the profile function stores it (version 3). */
async function storeCustomerInRuns(id: { userId: string } | { anonymousId: string }, prefix: string): Promise<void> {
  const state = { ...emptyProfileState(id), journeys: runsInProgress(prefix), updatedAt: T - DAY_MS };
  const key = 'userId' in id ? userProfileKey(id.userId) : anonymousProfileKey(id.anonymousId);
  await dynamo().send('PutItem', { TableName: config.PROFILES_TABLE, Item: profileToItem(key, state, 3) });
}

/** The exited counts of the journeys named `<prefix>-…` on the day of `at`, by journey. */
async function exitedCounts(prefix: string, at: number): Promise<Record<string, number>> {
  const day = Math.floor(at / DAY_MS);
  const out: Record<string, number> = {};
  for (const row of await readJourneyCounts({ from: day, to: day })) {
    if (row.journey.startsWith(`${prefix}-`) && row.milestone === 'exited') out[row.journey] = (out[row.journey] ?? 0) + row.n;
  }
  return out;
}

const eachOnce = (prefix: string) => Object.fromEntries(Object.keys(runsInProgress(prefix)).map((journey) => [journey, 1]));

async function profileItem(userId: string) {
  return (await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: { pk: userProfileKey(userId) }, ConsistentRead: true })).Item;
}

describe('a customer in more journey runs than one transaction holds', () => {
  it(`erased: each of ${RUNS} runs counted exited once and the profile deleted, however often the erasure is called`, async () => {
    const userId = uid('u');
    const prefix = uid('j');
    await storeCustomerInRuns({ userId }, prefix);
    const erasedAt = T + 3_600_000;
    const erase = () => eraseProfileKeys([userProfileKey(userId)], erasedAt, { cancelSchedule: async () => undefined });
    await erase();
    expect(await profileItem(userId)).toBeUndefined();
    expect(await exitedCounts(prefix, erasedAt)).toEqual(eachOnce(prefix));
    await erase();
    expect(await exitedCounts(prefix, erasedAt)).toEqual(eachOnce(prefix));
  });

  it(`back before the erasure's last step: the event applied on a fresh profile, the erased customer's ${RUNS} runs counted exited once`, async () => {
    const userId = uid('u');
    const prefix = uid('j');
    await storeCustomerInRuns({ userId }, prefix);
    // The erasure's first step (its record), not yet its last (the profile item).
    const erasedAt = T + 3_600_000;
    await dynamo().send('PutItem', { TableName: config.PROFILES_TABLE, Item: erasureToItem(userProfileKey(userId), erasedAt) });
    const back = new Date(erasedAt + 60_000).toISOString();
    const event = { ...storedEvent({ type: 'identify', userId, messageId: uid('m'), timestamp: back, traits: { firstName: 'Rosa' } }), receivedAt: back };
    const process = createProfileHandler({ enricher: () => ({ segments: [], scores: {} }), settings: { halfLifeDays: 14 } });
    expect(await process(streamEvent([streamRecord(event, { sequenceNumber: sequenceNumber(1) })]))).toEqual({ batchItemFailures: [] });

    const item = await profileItem(userId);
    const state = parseProfileState(item?.state as string);
    expect(state).toMatchObject({ keyErasedAt: erasedAt, journeys: {} });
    expect(toProfileView(state, erasedAt + 120_000).traits).toEqual({ firstName: 'Rosa' });
    expect(await exitedCounts(prefix, erasedAt)).toEqual(eachOnce(prefix));
    // The erasure's last step then leaves the returning customer's profile, and counts nothing more.
    await eraseProfileKeys([userProfileKey(userId)], erasedAt, { cancelSchedule: async () => undefined });
    expect((await profileItem(userId))?.version).toBe(item?.version);
    expect(await exitedCounts(prefix, erasedAt)).toEqual(eachOnce(prefix));
  });

  it(`a visitor erased in ${RUNS} runs, back and logging in before the erasure's last step: joined as a tombstone, its runs counted exited once`, async () => {
    const userId = uid('u');
    const anonymousId = uid('a');
    const prefix = uid('j');
    await storeCustomerInRuns({ anonymousId }, prefix);
    const erasedAt = T + 3_600_000;
    await dynamo().send('PutItem', { TableName: config.PROFILES_TABLE, Item: erasureToItem(anonymousProfileKey(anonymousId), erasedAt) });
    const back = new Date(erasedAt + 60_000).toISOString();
    const event = { ...storedEvent({ type: 'identify', userId, anonymousId, messageId: uid('m'), timestamp: back, traits: { firstName: 'Rosa' } }), receivedAt: back };
    const process = createProfileHandler({ enricher: () => ({ segments: [], scores: {} }), settings: { halfLifeDays: 14 } });
    expect(await process(streamEvent([streamRecord(event, { sequenceNumber: sequenceNumber(2) })]))).toEqual({ batchItemFailures: [] });

    const tombstone = (await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: { pk: anonymousProfileKey(anonymousId) }, ConsistentRead: true })).Item;
    expect(tombstone).toMatchObject({ kind: 'tombstone', mergedInto: userId });
    expect(parseProfileState((await profileItem(userId))?.state as string)).toMatchObject({ journeys: {}, anonymousIds: [anonymousId] });
    expect(await exitedCounts(prefix, erasedAt)).toEqual(eachOnce(prefix));
    await eraseProfileKeys([anonymousProfileKey(anonymousId)], erasedAt, { cancelSchedule: async () => undefined });
    expect(await exitedCounts(prefix, erasedAt)).toEqual(eachOnce(prefix));
  });
});
