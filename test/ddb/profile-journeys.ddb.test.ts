/**
 * Journeys through the real profile function against DynamoDB Local: the
 * runs stored with the profile, the act and timer entries in the Outbox
 * table and the report's counters, all in the profile's own transaction;
 * a redelivered batch, a record twice in a batch and a timer fired twice
 * move nothing twice; two customers whose counts fall on the same counter
 * items in one batch are summed into one update (DynamoDB refuses two
 * operations on one item in a transaction).
 *
 * A customer erased and coming back goes through the journey again as run
 * 1: its acts are emitted once under new ids, and its wait's timer, written
 * by the dispatcher's path, is applied (not taken for the erased customer's
 * timer, whose message the erasure deleted); a timer of the erased
 * customer's run whose schedule escaped the erasure, firing after the
 * return, moves nothing.
 *
 * Every run uses a journey id of its own, so the counters it reads are its
 * own in the shared Control table.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { journeyEffectId } from '#domain/journeys/machine.ts';
import { createJourneyStepper } from '#domain/journeys/react.ts';
import { timerEventOfDetail } from '#domain/journeys/timer.ts';
import { parseProfileState } from '#domain/profile/state.ts';
import { userProfileKey, type StoredEvent } from '#domain/stored-event.ts';
import { config } from '#shared/config.ts';
import { dynamo } from '#store/client.ts';
import { outboxItem, statisticsShardOf } from '#store/items.ts';
import { readJourneyCounts } from '#store/journey-counts.ts';
import { outboxEntryFromItem, outboxKeysOf } from '#store/outbox.ts';
import { eraseProfileKeys } from '#store/erasure.ts';
import { writeTimer } from '#shared/bus/journey-timers.ts';
import { eventPk } from '#domain/item-keys.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
const { createProfileHandler } = await import('#functions/profile/handler.ts');

let unique = 0;
const uid = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++unique}`;
const T = Date.parse('2026-04-01T09:00:00Z');
const DAY = Math.floor(T / 86_400_000);

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

function catalogWith(journey: string): CompiledCatalog {
  const result = loadCatalog(
    `
actions:
  - { id: mail, name: Mail, content: { email: { templateId: t, subject: 'Your cart' } } }
  - { id: nudge, name: Nudge, content: { push: { title: Still there?, body: B, deepLink: 'app://cart' } } }
policies: { consentRequired: [] }
journeys:
  - id: ${journey}
    entry: { event: Cart Abandoned }
    steps:
      - { id: email, act: { channel: email } }
      - { id: wait, wait: 30m }
      - { id: push, act: { channel: push } }
`,
    'yaml',
  );
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
}

function profileFunction(catalog: CompiledCatalog) {
  return createProfileHandler({
    enricher: createCatalogEnricher(() => catalog),
    journeys: createJourneyStepper(() => catalog),
    settings: { halfLifeDays: 14 },
  });
}

const cart = (userId: string, sourceId: string, messageId = 'cart'): StoredEvent =>
  storedEvent({ type: 'track', event: 'Cart Abandoned', sourceId, messageId, userId, timestamp: new Date(T).toISOString() });

async function runsOf(userId: string) {
  const found = await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: { pk: userProfileKey(userId) }, ConsistentRead: true });
  return parseProfileState(found.Item?.state as string).journeys;
}

async function outboxEntry(id: string) {
  const found = await dynamo().send('GetItem', { TableName: config.OUTBOX_TABLE, Key: outboxItem.key(id), ConsistentRead: true });
  return outboxEntryFromItem(found.Item);
}

async function counts(journey: string): Promise<Record<string, number>> {
  const rows = await readJourneyCounts({ from: DAY, to: DAY });
  const out: Record<string, number> = {};
  for (const row of rows) if (row.journey === journey) out[row.milestone] = (out[row.milestone] ?? 0) + row.n;
  return out;
}

describe('journeys in the profile function', () => {
  it('stores the run, the emission, the timer and the counts once, whatever the redelivery; the timer fired twice moves on once', async () => {
    const journey = uid('j');
    const userId = uid('u');
    const sourceId = uid('src');
    const process = profileFunction(catalogWith(journey));
    const event = cart(userId, sourceId);
    const record = (n: number, e: StoredEvent = event) => streamRecord(e, { sequenceNumber: sequenceNumber(n) });

    // The record twice in a batch, then the batch redelivered.
    expect(await process(streamEvent([record(1), record(2)]))).toEqual({ batchItemFailures: [] });
    expect(await process(streamEvent([record(1), record(2)]))).toEqual({ batchItemFailures: [] });

    const profileKey = userProfileKey(userId);
    const ids = (kind: 'act' | 'timer', step: string) => journeyEffectId({ kind, journey, run: 1, enteredAt: T, step, profileKey });
    expect(await runsOf(userId)).toEqual({ [journey]: { run: 1, step: 'wait', enteredAt: T, stepAt: T, waitingUntil: T + 1_800_000, named: true } });
    const email = await outboxEntry(ids('act', 'email'));
    expect(email).toMatchObject({ status: 'now', detailType: 'Kairos Journey Action', detail: { kind: 'journey', journey, run: 1, step: 'email', actionId: 'mail', channel: 'email', userId } });
    const timer = await outboxEntry(ids('timer', 'wait'));
    expect(timer).toMatchObject({
      status: 'deferred',
      sendAt: T + 1_800_000,
      detailType: 'Kairos Journey Timer',
      detail: { journey, run: 1, enteredAt: new Date(T).toISOString(), step: 'wait', profileKey },
    });
    expect(await counts(journey)).toEqual({ entered: 1, 'step:email': 1, 'step:wait': 1 });

    // The scheduler writes the timer's event when due; fired twice, it is one event (one message id) delivered twice.
    const fired = timerEventOfDetail(timer!.detail, T + 1_800_000, Math.floor(Date.now() / 1000) + 86_400)!;
    expect(await process(streamEvent([record(3, fired)]))).toEqual({ batchItemFailures: [] });
    expect(await process(streamEvent([record(4, fired)]))).toEqual({ batchItemFailures: [] });
    expect(await runsOf(userId)).toEqual({ [journey]: { run: 1, enteredAt: T, stepAt: T + 1_800_000, ended: { how: 'completed', at: T + 1_800_000 }, named: true } });
    expect(await outboxEntry(ids('act', 'push'))).toMatchObject({ status: 'now', detail: { step: 'push', actionId: 'nudge', channel: 'push', eventId: fired.messageId } });
    expect(await counts(journey)).toEqual({ entered: 1, 'step:email': 1, 'step:wait': 1, 'step:push': 1, completed: 1 });
  });

  it('two customers on the same counter items in one batch: one update each, summed', async () => {
    const journey = uid('j');
    const sourceId = uid('src');
    const first = uid('u');
    let second = uid('u');
    while (statisticsShardOf(userProfileKey(second)) !== statisticsShardOf(userProfileKey(first))) second = uid('u');
    const process = profileFunction(catalogWith(journey));
    const records = [cart(first, sourceId, 'c1'), cart(second, sourceId, 'c2')].map((e, i) => streamRecord(e, { sequenceNumber: sequenceNumber(10 + i) }));
    expect(await process(streamEvent(records))).toEqual({ batchItemFailures: [] });
    expect(await counts(journey)).toEqual({ entered: 2, 'step:email': 2, 'step:wait': 2 });
    expect((await runsOf(first))[journey]).toMatchObject({ run: 1, step: 'wait' });
    expect((await runsOf(second))[journey]).toMatchObject({ run: 1, step: 'wait' });
  });

  it('erased, then back: run 1 again, its acts emitted once under new ids, its timer applied; replays move nothing twice', async () => {
    const journey = uid('j');
    const userId = uid('u');
    const sourceId = uid('src');
    const profileKey = userProfileKey(userId);
    const process = profileFunction(catalogWith(journey));
    let n = 100;
    /** Store the event as ingest does (the erasure finds it there), then deliver its stream record. */
    const applyStored = async (event: StoredEvent, again = false) => {
      if (!again) await dynamo().send('PutItem', { TableName: config.EVENTS_TABLE, Item: event });
      expect(await process(streamEvent([streamRecord(event, { sequenceNumber: sequenceNumber(n++) })]))).toEqual({ batchItemFailures: [] });
    };
    /** Fire the journey's timer as the dispatcher does (writeTimer), and deliver the event it wrote. */
    const fireTimer = async (entryId: string, firedAt: number) => {
      const timer = await outboxEntry(entryId);
      expect(await writeTimer(timer!.detail, firedAt)).toBe(true);
      const pk = eventPk('kairos', timerEventOfDetail(timer!.detail, firedAt, 0)!.messageId);
      const { Item } = await dynamo().send('GetItem', { TableName: config.EVENTS_TABLE, Key: { pk }, ConsistentRead: true });
      await applyStored(Item as unknown as StoredEvent, true);
      return Item as unknown as StoredEvent;
    };
    const at = (ms: number) => new Date(ms).toISOString();
    const cartAt = (time: number, messageId: string) => storedEvent({ type: 'track', event: 'Cart Abandoned', sourceId, messageId, userId, timestamp: at(time) });

    // The first customer: through the journey two hours ago, its wait's timer fired and applied.
    const FIRST = Date.now() - 2 * 3_600_000;
    const first = (kind: 'act' | 'timer', step: string) => journeyEffectId({ kind, journey, run: 1, enteredAt: FIRST, step, profileKey });
    await applyStored(cartAt(FIRST, 'cart-1'));
    await fireTimer(first('timer', 'wait'), FIRST + 1_800_000);
    expect(await runsOf(userId)).toMatchObject({ [journey]: { run: 1, enteredAt: FIRST, ended: { how: 'completed' } } });
    const firstIds = (await outboxKeysOf(profileKey)).map((k) => k.id).sort();
    expect(firstIds).toEqual([first('act', 'email'), first('act', 'push'), first('timer', 'wait')].sort());

    // Erased (no schedule is pending: the timer has fired), then back a second later.
    const erasedAt = Date.now();
    await eraseProfileKeys([profileKey], erasedAt, { cancelSchedule: async () => undefined });
    expect(await outboxKeysOf(profileKey)).toEqual([]);
    const BACK = erasedAt + 1_000;
    const back = (kind: 'act' | 'timer', step: string) => journeyEffectId({ kind, journey, run: 1, enteredAt: BACK, step, profileKey });
    const cart = cartAt(BACK, 'cart-2');
    await applyStored(cart);
    await applyStored(cart, true);
    expect(await runsOf(userId)).toMatchObject({ [journey]: { run: 1, step: 'wait', enteredAt: BACK, stepAt: BACK, waitingUntil: BACK + 1_800_000 } });
    expect(await outboxEntry(back('act', 'email'))).toMatchObject({ status: 'now', detail: { journey, run: 1, enteredAt: at(BACK), step: 'email', actionId: 'mail' } });

    // Its timer, the same journey, run number and step as the erased customer's: written and applied, the run moves on.
    const fired = await fireTimer(back('timer', 'wait'), BACK + 1_800_000);
    await applyStored(fired, true);
    expect((await runsOf(userId))[journey]).toMatchObject({ run: 1, enteredAt: BACK, stepAt: BACK + 1_800_000, ended: { how: 'completed', at: BACK + 1_800_000 } });
    expect(await outboxEntry(back('act', 'push'))).toMatchObject({ status: 'now', detail: { step: 'push', actionId: 'nudge', eventId: fired.messageId } });

    // Each act emitted once, and no id the erased customer's emissions had.
    const backIds = (await outboxKeysOf(profileKey)).map((k) => k.id).sort();
    expect(backIds).toEqual([back('act', 'email'), back('act', 'push'), back('timer', 'wait')].sort());
    for (const id of backIds) expect(firstIds).not.toContain(id);
  });

  it('erased while in a run: the run ends with the profile, counted exited once however often the erasure is called, so the report adds up', async () => {
    const journey = uid('j');
    const userId = uid('u');
    const sourceId = uid('src');
    const profileKey = userProfileKey(userId);
    const process = profileFunction(catalogWith(journey));
    const event = cart(userId, sourceId);
    await dynamo().send('PutItem', { TableName: config.EVENTS_TABLE, Item: event });
    expect(await process(streamEvent([streamRecord(event, { sequenceNumber: sequenceNumber(300) })]))).toEqual({ batchItemFailures: [] });
    expect(await runsOf(userId)).toMatchObject({ [journey]: { run: 1, step: 'wait' } });
    expect(await counts(journey)).toEqual({ entered: 1, 'step:email': 1, 'step:wait': 1 });

    // Erased the same day, while waiting: in the journey no more.
    const erase = () => eraseProfileKeys([profileKey], T + 3_600_000, { cancelSchedule: async () => undefined });
    await erase();
    expect(await counts(journey)).toEqual({ entered: 1, 'step:email': 1, 'step:wait': 1, exited: 1 });
    // Called again (an erasure that failed part way is retried): nothing counted twice.
    await erase();
    expect(await counts(journey)).toEqual({ entered: 1, 'step:email': 1, 'step:wait': 1, exited: 1 });
  });

  it("erased while waiting, the wait's schedule escaping the cancellation, then back: the erased run's timer firing after the return moves nothing; the new run's does", async () => {
    const journey = uid('j');
    const userId = uid('u');
    const sourceId = uid('src');
    const profileKey = userProfileKey(userId);
    const process = profileFunction(catalogWith(journey));
    let n = 200;
    const applyStored = async (event: StoredEvent, store = true) => {
      if (store) await dynamo().send('PutItem', { TableName: config.EVENTS_TABLE, Item: event });
      expect(await process(streamEvent([streamRecord(event, { sequenceNumber: sequenceNumber(n++) })]))).toEqual({ batchItemFailures: [] });
    };
    /** Fire a timer entry as the dispatcher does, and deliver the event it wrote. */
    const fire = async (detail: Record<string, unknown>, firedAt: number) => {
      expect(await writeTimer(detail, firedAt)).toBe(true);
      const pk = eventPk('kairos', timerEventOfDetail(detail, firedAt, 0)!.messageId);
      const { Item } = await dynamo().send('GetItem', { TableName: config.EVENTS_TABLE, Key: { pk }, ConsistentRead: true });
      await applyStored(Item as unknown as StoredEvent, false);
    };
    const cartAt = (time: number, messageId: string) => storedEvent({ type: 'track', event: 'Cart Abandoned', sourceId, messageId, userId, timestamp: new Date(time).toISOString() });

    // Entered ten minutes ago: its wait is due in twenty minutes, after the erasure.
    const FIRST = Date.now() - 600_000;
    await applyStored(cartAt(FIRST, 'cart-1'));
    const erasedTimer = (await outboxEntry(journeyEffectId({ kind: 'timer', journey, run: 1, enteredAt: FIRST, step: 'wait', profileKey })))!.detail;
    await eraseProfileKeys([profileKey], Date.now(), { cancelSchedule: async () => undefined });
    const BACK = Date.now() + 1_000;
    await applyStored(cartAt(BACK, 'cart-2'));
    expect((await runsOf(userId))[journey]).toMatchObject({ run: 1, step: 'wait', enteredAt: BACK });

    // The erased run's schedule fires (same journey, run number and step as the new run's): nothing moves, nothing is sent.
    await fire(erasedTimer, FIRST + 1_800_000);
    expect((await runsOf(userId))[journey]).toMatchObject({ run: 1, step: 'wait', enteredAt: BACK });
    expect((await outboxKeysOf(profileKey)).map((k) => k.id).sort()).toEqual(
      [journeyEffectId({ kind: 'act', journey, run: 1, enteredAt: BACK, step: 'email', profileKey }), journeyEffectId({ kind: 'timer', journey, run: 1, enteredAt: BACK, step: 'wait', profileKey })].sort(),
    );
    // The new run's own timer moves it on: the push, once.
    await fire((await outboxEntry(journeyEffectId({ kind: 'timer', journey, run: 1, enteredAt: BACK, step: 'wait', profileKey })))!.detail, BACK + 1_800_000);
    expect((await runsOf(userId))[journey]).toMatchObject({ run: 1, enteredAt: BACK, ended: { how: 'completed', at: BACK + 1_800_000 } });
    expect(await outboxEntry(journeyEffectId({ kind: 'act', journey, run: 1, enteredAt: BACK, step: 'push', profileKey }))).toMatchObject({ status: 'now', detail: { actionId: 'nudge' } });
  });
});
