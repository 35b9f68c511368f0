/**
 * A due timer written to the real Events table (DynamoDB Local) through the
 * dispatcher's path (shared/bus/journey-timers.ts): a journey's as its
 * `Journey Timer` event, a deferred send's as its `Send Timer` event
 * (shared/domain/journeys/timer.ts), each once however often it fires
 * (a journey's named by its run's number and entry time, so another run of
 * the same number is another event),
 * under the `kairos#jt-` keys the dispatcher may put; a detail that names
 * no timer writes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { JOURNEY_TIMER_KEY_PREFIX, journeyTimerEvent, journeyTimerMessageId, sendTimerEvent, sendTimerOf, sendTimerOfDetail } from '#domain/journeys/timer.ts';
import { eventPk } from '#domain/item-keys.ts';
import { writeTimer } from '#shared/bus/journey-timers.ts';
import { config } from '#shared/config.ts';
import { dynamo } from '#store/client.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

const DUE = Date.parse('2026-11-30T10:00:00Z');

describe('writing a due journey timer', () => {
  it('stores its Journey Timer event once, however often it fires', async () => {
    const journey = `timers-${Date.now().toString(36)}`;
    const detail = { emissionId: 'x', kind: 'journey-timer', journey, run: 3, step: 'wait', profileKey: 'u#ana', dueAt: new Date(DUE).toISOString() };
    expect(await writeTimer(detail, DUE + 1_000)).toBe(true);
    expect(await writeTimer(detail, DUE + 9_000)).toBe(false);
    const pk = eventPk('kairos', journeyTimerMessageId({ journey, run: 3, step: 'wait', profileKey: 'u#ana' }));
    const { Item } = (await dynamo().send('GetItem', { TableName: config.EVENTS_TABLE, Key: { pk } })) as { Item?: Record<string, unknown> };
    const expected = journeyTimerEvent({ journey, run: 3, step: 'wait', profileKey: 'u#ana', dueAt: DUE }, DUE + 1_000, 0);
    expect(Item).toEqual({ ...expected, expiresAt: Math.floor((DUE + 1_000) / 1000) + config.KAIROS_HISTORY_DAYS * 86_400 });
  });

  it('a timer naming its run\'s entry time: stored under its own message id, with the entry time in its event', async () => {
    const journey = `timers-named-${Date.now().toString(36)}`;
    const enteredAt = new Date(DUE - 1_800_000).toISOString();
    const detail = { emissionId: 'y', kind: 'journey-timer', journey, run: 1, enteredAt, step: 'wait', profileKey: 'u#ana', dueAt: new Date(DUE).toISOString() };
    expect(await writeTimer(detail, DUE + 1_000)).toBe(true);
    expect(await writeTimer(detail, DUE + 9_000)).toBe(false);
    const pk = eventPk('kairos', journeyTimerMessageId({ journey, run: 1, enteredAt, step: 'wait', profileKey: 'u#ana' }));
    expect(pk).not.toBe(eventPk('kairos', journeyTimerMessageId({ journey, run: 1, step: 'wait', profileKey: 'u#ana' })));
    const { Item } = (await dynamo().send('GetItem', { TableName: config.EVENTS_TABLE, Key: { pk } })) as { Item?: Record<string, unknown> };
    expect(Item).toMatchObject({ pk, properties: { journey, run: 1, enteredAt, step: 'wait' } });
    // Another run of the same number (a customer back after an erasure): another event.
    expect(await writeTimer({ ...detail, enteredAt: new Date(DUE - 60_000).toISOString() }, DUE + 1_000)).toBe(true);
  });

  it("stores a deferred send's Send Timer event once, however often it fires, under a timer's key", async () => {
    const send = `vip-in.src-test#m-${Date.now().toString(36)}`;
    const detail = {
      emissionId: 'st-x',
      kind: 'send-timer',
      send,
      channel: 'email',
      origin: { kind: 'trigger', trigger: 'vip-in', cause: { kind: 'entered', segment: 'vip' }, eventId: 'm-1' },
      context: { event: 'Identify', type: 'identify', messageId: 'm-1', timestamp: new Date(DUE).toISOString(), properties: {}, traits: {}, timezone: 'Europe/Madrid' },
      profileKey: 'u#ana',
      dueAt: new Date(DUE).toISOString(),
    };
    expect(await writeTimer(detail, DUE + 1_000)).toBe(true);
    expect(await writeTimer(detail, DUE + 9_000)).toBe(false);
    const expected = sendTimerEvent(sendTimerOfDetail(detail)!, DUE + 1_000, 0);
    expect(expected.pk.startsWith(JOURNEY_TIMER_KEY_PREFIX)).toBe(true);
    const { Item } = (await dynamo().send('GetItem', { TableName: config.EVENTS_TABLE, Key: { pk: expected.pk } })) as { Item?: Record<string, unknown> };
    expect(Item).toEqual({ ...expected, expiresAt: Math.floor((DUE + 1_000) / 1000) + config.KAIROS_HISTORY_DAYS * 86_400 });
    expect(sendTimerOf(Item as never)).toMatchObject({ send, channel: 'email', origin: detail.origin, context: detail.context });
  });

  it('refuses a detail that names no timer, writing nothing', async () => {
    await expect(writeTimer({ kind: 'journey', journey: 'j' }, DUE)).rejects.toThrow(/not a timer/);
  });

  it('refuses a malformed detail without its customer in the message (it is logged)', async () => {
    const userId = 'timer-customer-0c1e5a';
    const error = await writeTimer({ kind: 'journey', journey: 'j', profileKey: `u#${userId}`, userId }, DUE).then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toMatch(/not a timer/);
    expect(error?.message).not.toContain(userId);
  });
});
