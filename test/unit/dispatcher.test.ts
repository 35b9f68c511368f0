/**
 * The dispatcher (functions/dispatcher/handler.ts) with the local bus and
 * scheduler (local/outbox.ts): what each outbox status becomes, the
 * records a failing bus or scheduler leaves to the stream
 * (`batchItemFailures` by sequence number), and the scheduler emulation —
 * on time, once per event, persisted, and firing after a restart what came
 * due while the stack was down. The bus and scheduler here are the local
 * ones; the failing ones are stand-ins for faults (a refused entry, an
 * unreachable service) the local ones cannot produce.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createDispatchHandler, createTimerHandler, dispatchRecords } from '#functions/dispatcher/handler.ts';
import { journeyTimerOfDetail, sendTimerOfDetail, timerEventOfDetail } from '#domain/journeys/timer.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import type { OutboxEntry } from '#domain/profile/reactions.ts';
import { outboxPuts } from '#store/outbox.ts';
import { SCHEDULE_RETRY_POLICY, type BusEvent, type EmissionBus, type EmissionScheduler } from '#shared/bus/bus.ts';
import { failedSchedulesFolderOf, LocalBus, LocalScheduler } from '#local/outbox.ts';
import { cancelScheduleRequest, scheduleNameOf, scheduleRequest } from '#shared/bus/eventbridge.ts';
import { advanceClock, restoreClock } from '../support/clock.ts';
import { streamEvent, streamRecord } from '../support/stream.ts';

const dir = mkdtempSync(join(tmpdir(), 'kairos-dispatcher-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The schedules the local scheduler keeps in `folder` (a file each), soonest first. */
const savedIn = (folder: string): unknown[] =>
  readdirSync(folder)
    .map((name) => JSON.parse(readFileSync(join(folder, name), 'utf8')) as { at: number })
    .sort((a, b) => a.at - b.at);

const NOW = Date.parse('2026-11-30T10:00:00Z');
const entry = (id: string, status: OutboxEntry['status'], sendAt = NOW): OutboxEntry => ({
  id,
  status,
  sendAt,
  detailType: 'Kairos Trigger Action',
  detail: { emissionId: id, channel: 'email' },
});
/** The stream record of an entry as the Outbox table stores it. */
const record = (e: OutboxEntry, sequenceNumber: string) => {
  const put = outboxPuts([e], 'u#someone', 0, NOW, 'kairos-outbox')[0]!;
  return streamRecord('Put' in put ? put.Put.Item : {}, { sequenceNumber });
};

/** A fired schedule's event as the bus rule delivers it to the dispatcher (an EventBridge event). */
const busRuleEvent = (detailType: string, detail: Record<string, unknown>) => ({
  version: '0',
  id: 'e-1',
  account: '123456789012',
  time: new Date(NOW).toISOString(),
  region: 'us-east-1',
  resources: [],
  source: 'kairos',
  'detail-type': detailType,
  detail,
});

class RecordingScheduler implements EmissionScheduler {
  readonly calls: { event: BusEvent; at: number }[] = [];
  readonly cancelled: string[] = [];
  async scheduleAt(event: BusEvent, at: number): Promise<void> {
    this.calls.push({ event, at });
  }
  async cancel(eventId: string): Promise<void> {
    this.cancelled.push(eventId);
  }
}

describe('the dispatcher', () => {
  it('puts `now` and due `deferred` emissions on the bus, schedules later ones, skips refused ones', async () => {
    const bus = new LocalBus(undefined, () => NOW);
    const scheduler = new RecordingScheduler();
    const handler = createDispatchHandler({ bus, scheduler, now: () => NOW });
    const result = await handler(
      streamEvent([
        record(entry('a', 'now'), '1'),
        record(entry('b', 'deferred', NOW + 3_600_000), '2'),
        record(entry('c', 'refused'), '3'),
        record(entry('d', 'deferred', NOW - 1_000), '4'),
        streamRecord({ pk: 'o#e', id: 'e', status: 'now' }, { sequenceNumber: '5', eventName: 'REMOVE' }),
      ]),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    expect(bus.events().map((e) => [e.id, e.source, e['detail-type'], e.detail])).toEqual([
      ['a', 'kairos', 'Kairos Trigger Action', { emissionId: 'a', channel: 'email' }],
      ['d', 'kairos', 'Kairos Trigger Action', { emissionId: 'd', channel: 'email' }],
    ]);
    expect(scheduler.calls.map((c) => [c.event.id, c.at])).toEqual([['b', NOW + 3_600_000]]);
  });

  it('leaves to the stream the records whose emission the bus refused or the scheduler could not take', async () => {
    const refusing: EmissionBus = { put: async (events) => events.filter((e) => e.id === 'x').map((e) => e.id) };
    const down: EmissionScheduler = {
      scheduleAt: async () => {
        throw new Error('Scheduler unreachable');
      },
      cancel: async () => {
        throw new Error('Scheduler unreachable');
      },
    };
    const records = [record(entry('x', 'now'), '10'), record(entry('y', 'now'), '11'), record(entry('z', 'deferred', NOW + 60_000), '12')];
    const report = await dispatchRecords(records, { bus: refusing, scheduler: down, now: () => NOW });
    expect(report).toEqual({ published: 1, scheduled: 0, timers: 0, cancelled: 0, failures: ['12', '10'] });
    const unreachable: EmissionBus = {
      put: async () => {
        throw new Error('EventBridge unreachable');
      },
    };
    const handler = createDispatchHandler({ bus: unreachable, scheduler: new RecordingScheduler(), now: () => NOW });
    expect(await handler(streamEvent(records))).toEqual({ batchItemFailures: [{ itemIdentifier: '10' }, { itemIdentifier: '11' }] });
  });

  it("cancels the schedule of an emission a caller removed (the erasure), not of one TTL's expiry removed; an insert removed later in the batch goes nowhere", async () => {
    const bus = new LocalBus(undefined, () => NOW);
    const scheduler = new RecordingScheduler();
    const removal = (id: string, sequenceNumber: string) => streamRecord({ pk: `o#${id}` }, { sequenceNumber, eventName: 'REMOVE' });
    const expiry = (id: string, sequenceNumber: string) => ({ ...removal(id, sequenceNumber), userIdentity: { type: 'Service', principalId: 'dynamodb.amazonaws.com' } });
    const report = await dispatchRecords(
      [
        // Scheduled in an earlier batch, erased since: its schedule is cancelled.
        removal('earlier', '20'),
        // Inserted and erased within this batch: neither scheduled nor published.
        record(entry('later', 'deferred', NOW + 60_000), '21'),
        record(entry('now-erased', 'now'), '22'),
        removal('later', '23'),
        removal('now-erased', '24'),
        // Expired after its retention: nothing to cancel.
        expiry('old', '25'),
        // Removed before it was inserted again? Not in one shard's order: an insert after its removal is dispatched.
        removal('again', '26'),
        record(entry('again', 'now'), '27'),
      ],
      { bus, scheduler, now: () => NOW },
    );
    expect(report).toEqual({ published: 1, scheduled: 0, timers: 0, cancelled: 4, failures: [] });
    expect(scheduler.cancelled).toEqual(['earlier', 'later', 'now-erased', 'again']);
    expect(scheduler.calls).toEqual([]);
    expect(bus.events().map((e) => e.id)).toEqual(['again']);

    // A schedule that cannot be cancelled leaves its removal to the stream (redelivered, cancelled then).
    const down: EmissionScheduler = {
      scheduleAt: async () => undefined,
      cancel: async () => {
        throw new Error('Scheduler unreachable');
      },
    };
    const failed = await dispatchRecords([removal('earlier', '30')], { bus, scheduler: down, now: () => NOW });
    expect(failed).toEqual({ published: 0, scheduled: 0, timers: 0, cancelled: 0, failures: ['30'] });
  });

  it('names a schedule after its event: 64 characters at most, the same for the same event, different for another', () => {
    const long = `trigger.${'x'.repeat(300)}`;
    expect(scheduleNameOf(long)).toMatch(/^[0-9A-Za-z._-]{1,64}$/);
    expect(scheduleNameOf(long)).toBe(scheduleNameOf(long));
    expect(scheduleNameOf('a.src#1')).not.toBe(scheduleNameOf('a.src#2'));
  });
});

/** A journey timer's outbox entry, as shared/domain/journeys/react.ts writes it. */
const timerEntry = (id: string, dueAt: number, status: OutboxEntry['status'] = 'deferred'): OutboxEntry => ({
  id,
  status,
  sendAt: dueAt,
  detailType: 'Kairos Journey Timer',
  detail: { emissionId: id, kind: 'journey-timer', journey: 'churn', run: 2, step: 'wait', profileKey: 'u#u-1', dueAt: new Date(dueAt).toISOString() },
});

/** The timer writes asked for: (timer named by the detail, instant fired). */
class RecordingTimers {
  readonly written: { timer: ReturnType<typeof journeyTimerOfDetail>; firedAt: number }[] = [];
  readonly write = async (detail: Readonly<Record<string, unknown>>, firedAt: number): Promise<void> => {
    this.written.push({ timer: journeyTimerOfDetail(detail), firedAt });
  };
}

describe('the dispatcher and journey timers', () => {
  it('writes a due timer to the Events table, never on the bus; schedules one not yet due', async () => {
    const bus = new LocalBus(undefined, () => NOW);
    const scheduler = new RecordingScheduler();
    const timers = new RecordingTimers();
    const handler = createDispatchHandler({ bus, scheduler, now: () => NOW, writeTimer: timers.write });
    const result = await handler(
      streamEvent([
        record(timerEntry('due', NOW - 5_000), '1'),
        record(timerEntry('later', NOW + 60_000), '2'),
        record(entry('a', 'now'), '3'),
      ]),
    );
    expect(result).toEqual({ batchItemFailures: [] });
    expect(timers.written).toEqual([
      { timer: { journey: 'churn', run: 2, step: 'wait', profileKey: 'u#u-1', dueAt: NOW - 5_000 }, firedAt: NOW },
    ]);
    expect(bus.events().map((e) => e.id)).toEqual(['a']);
    expect(scheduler.calls.map((c) => [c.event.id, c.event.detailType, c.at])).toEqual([['later', 'Kairos Journey Timer', NOW + 60_000]]);
  });

  it('leaves to the stream the record of a timer that could not be written', async () => {
    const down = async () => {
      throw new Error('Events table unreachable');
    };
    const report = await dispatchRecords([record(timerEntry('t', NOW), '7'), record(entry('a', 'now'), '8')], {
      bus: new LocalBus(),
      scheduler: new RecordingScheduler(),
      now: () => NOW,
      writeTimer: down,
    });
    expect(report).toEqual({ published: 1, scheduled: 0, timers: 0, cancelled: 0, failures: ['7'] });
  });

  it('a fired schedule delivered by the bus rule writes its timer; any other event is refused', async () => {
    const timers = new RecordingTimers();
    const handle = createTimerHandler({ now: () => NOW + 1, writeTimer: timers.write });
    const fired = timerEntry('t', NOW);
    const bridgeEvent = (detailType: string) => busRuleEvent(detailType, fired.detail);
    await handle(bridgeEvent('Kairos Journey Timer'));
    expect(timers.written).toEqual([{ timer: { journey: 'churn', run: 2, step: 'wait', profileKey: 'u#u-1', dueAt: NOW }, firedAt: NOW + 1 }]);
    await expect(handle(bridgeEvent('Kairos Trigger Action'))).rejects.toThrow(/unexpected event/);
    expect(timers.written).toHaveLength(1);
  });

  it('the local scheduler writes a fired timer to the Events table, not to the bus', async () => {
    const bus = new LocalBus();
    const timers = new RecordingTimers();
    const scheduler = new LocalScheduler(bus, { log: () => undefined, writeTimer: timers.write });
    const at = Date.now() + 100;
    const { id, detailType, detail } = timerEntry('soon', at);
    await scheduler.scheduleAt({ id, detailType, detail }, at);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(timers.written.map((w) => w.timer?.dueAt)).toEqual([at]);
    expect(timers.written[0]!.firedAt).toBeGreaterThanOrEqual(at);
    expect(bus.events()).toEqual([]);
    expect(scheduler.pending()).toEqual([]);
    scheduler.stop();
  });

  it('reads a timer only from a well-formed detail', () => {
    const { detail } = timerEntry('t', NOW);
    expect(journeyTimerOfDetail(detail)).toEqual({ journey: 'churn', run: 2, step: 'wait', profileKey: 'u#u-1', dueAt: NOW });
    for (const broken of [{ kind: 'journey' }, { run: 1.5 }, { profileKey: 'x-1' }, { dueAt: 'soon' }, { step: undefined }]) {
      expect(journeyTimerOfDetail({ ...detail, ...broken })).toBeUndefined();
    }
  });
});

describe('the deployed scheduler', () => {
  it('a schedule puts its event on the bus at its time, retried, then dead-lettered to the failure queue; named after the event', () => {
    const target = { busArn: 'arn:aws:events:eu-west-1:123456789012:event-bus/b', group: 'g', roleArn: 'arn:aws:iam::123456789012:role/r', deadLetterArn: 'arn:aws:sqs:eu-west-1:123456789012:q' };
    const event = { id: 'churn.1.email.act.abc', detailType: 'Kairos Journey Action', detail: { n: 1 } };
    const request = scheduleRequest(event, Date.parse('2026-12-01T09:00:00.200Z'), target);
    expect(request.path).toBe(`/schedules/${scheduleNameOf(event.id)}`);
    expect(scheduleNameOf(event.id)).toMatch(/^kairos-[0-9a-f]{40}$/);
    expect(request.payload).toMatchObject({
      GroupName: 'g',
      ScheduleExpression: 'at(2026-12-01T09:00:01)',
      ScheduleExpressionTimezone: 'UTC',
      ActionAfterCompletion: 'DELETE',
      Target: {
        Arn: target.busArn,
        RoleArn: target.roleArn,
        EventBridgeParameters: { Source: 'kairos', DetailType: 'Kairos Journey Action' },
        Input: JSON.stringify(event.detail),
        RetryPolicy: SCHEDULE_RETRY_POLICY,
        DeadLetterConfig: { Arn: target.deadLetterArn },
      },
    });
  });
});

describe('the deployed scheduler cancels', () => {
  it("deletes the event's schedule by its name, in the group", () => {
    expect(cancelScheduleRequest('churn.1.email.act.abc', 'g')).toEqual({ path: `/schedules/${scheduleNameOf('churn.1.email.act.abc')}`, query: { groupName: 'g' } });
  });
});

describe('the local bus and scheduler', () => {
  it('cancels a pending schedule: it never fires, and is gone from the folder; cancelling a missing one is success', async () => {
    const bus = new LocalBus();
    const folder = join(dir, 'schedules-cancel');
    const scheduler = new LocalScheduler(bus, { folder, log: () => undefined });
    const kept = { id: 'kept', detailType: 'T', detail: {} };
    const cancelled = { id: 'cancelled', detailType: 'T', detail: { firstName: 'Ana' } };
    const at = Date.now() + 300;
    await scheduler.scheduleAt(kept, at);
    await scheduler.scheduleAt(cancelled, at);
    await scheduler.cancel('cancelled');
    await scheduler.cancel('never-scheduled');
    expect(savedIn(folder)).toEqual([{ event: kept, at }]);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(bus.events().map((e) => e.id)).toEqual(['kept']);
    await scheduler.cancel('kept');
    scheduler.stop();
    expect(new LocalScheduler(bus, { folder, log: () => undefined }).pending()).toEqual([]);
  });

  it('a schedule whose delivery fails for good is set aside past Scheduler\'s retries (its file moved to the failed folder, logged once): the others fire', async () => {
    const bus = new LocalBus();
    const folder = join(dir, 'aside', 'schedules');
    const lines: string[] = [];
    // The journey timers' own writer: a detail that names no timer is refused before the store is reached.
    const scheduler = new LocalScheduler(bus, { folder, log: (line) => lines.push(line), retryPauseMs: 1 });
    const customer = 'u#aside-customer-7f3b';
    const broken = { id: 'broken-timer', detailType: 'Kairos Journey Timer', detail: { emissionId: 'broken-timer', kind: 'journey-timer', profileKey: customer } };
    const good = { id: 'good', detailType: 'Kairos Trigger Action', detail: { n: 1 } };
    const at = Date.now() + 50;
    await scheduler.scheduleAt(broken, at);
    await scheduler.scheduleAt(good, at + 100);
    for (let i = 0; i < 400 && scheduler.pending().length > 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
    scheduler.stop();
    expect(scheduler.pending()).toEqual([]);
    expect(bus.events().map((e) => e.id)).toEqual(['good']);
    expect(readdirSync(folder)).toEqual([]);
    expect(savedIn(failedSchedulesFolderOf(folder))).toEqual([{ event: broken, at }]);
    const about = lines.filter((line) => line.includes('broken-timer'));
    expect(about).toHaveLength(2);
    expect(about[1]).toContain(`after ${SCHEDULE_RETRY_POLICY.MaximumRetryAttempts + 1} attempts`);
    expect(about[1]).toContain('not a timer');
    expect(lines.join('\n')).not.toContain(customer);
    // Set aside: a restart does not fire it again.
    expect(new LocalScheduler(bus, { folder, log: () => undefined }).pending()).toEqual([]);
  });

  it('a schedule file that cannot be read is moved to the failed folder at start, logged once', () => {
    const bus = new LocalBus();
    const folder = join(dir, 'unreadable', 'schedules');
    new LocalScheduler(bus, { folder, log: () => undefined }).stop();
    const name = `${'ab'.repeat(20)}.json`;
    writeFileSync(join(folder, name), '{"event": {"id": "cut short');
    const lines: string[] = [];
    new LocalScheduler(bus, { folder, log: (line) => lines.push(line) }).stop();
    expect(lines).toEqual([expect.stringContaining(`cannot read schedule ${name}`)]);
    expect(readdirSync(folder)).toEqual([]);
    expect(readFileSync(join(failedSchedulesFolderOf(folder), name), 'utf8')).toBe('{"event": {"id": "cut short');
    const again: string[] = [];
    new LocalScheduler(bus, { folder, log: (line) => again.push(line) }).stop();
    expect(again).toEqual([]);
  });

  it('the bus appends each event to outbox.jsonl and reads the file back', async () => {
    const file = join(dir, 'outbox.jsonl');
    const bus = new LocalBus(file, () => NOW);
    await bus.put([{ id: 'one', detailType: 'T', detail: { n: 1 } }]);
    await bus.put([{ id: 'two', detailType: 'T', detail: { n: 2 } }]);
    expect(readFileSync(file, 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { id: string }).id)).toEqual(['one', 'two']);
    expect(new LocalBus(file).events().map((e) => e.id)).toEqual(['one', 'two']);
  });

  it('fires a schedule on time, once however often it is scheduled, and persists what is pending', async () => {
    const bus = new LocalBus();
    const folder = join(dir, 'schedules-a');
    const scheduler = new LocalScheduler(bus, { folder, log: () => undefined });
    const event = { id: 'soon', detailType: 'T', detail: {} };
    const at = Date.now() + 300;
    await scheduler.scheduleAt(event, at);
    await scheduler.scheduleAt(event, at);
    expect(savedIn(folder)).toEqual([{ event, at }]);
    expect(bus.events()).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 700));
    expect(bus.events().map((e) => e.id)).toEqual(['soon']);
    expect(Date.parse(bus.events()[0]!.time)).toBeGreaterThanOrEqual(at);
    expect(scheduler.pending()).toEqual([]);
    expect(savedIn(folder)).toEqual([]);
    scheduler.stop();
  });

  it('follows the wall clock: a schedule two days away fires within a second of the clock jumping past it', async () => {
    const bus = new LocalBus();
    const scheduler = new LocalScheduler(bus, { log: () => undefined });
    const at = Date.now() + 2 * 86_400_000;
    try {
      await scheduler.scheduleAt({ id: 'in-two-days', detailType: 'T', detail: {} }, at);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(bus.events()).toEqual([]);
      advanceClock(2 * 86_400_000 + 1_000);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(bus.events().map((e) => e.id)).toEqual(['in-two-days']);
      expect(Date.parse(bus.events()[0]!.time)).toBeGreaterThanOrEqual(at);
      expect(scheduler.pending()).toEqual([]);
    } finally {
      scheduler.stop();
      restoreClock();
    }
  });

  it('many schedules at once (a night of deferred sends): each one scheduled and fired writes about its own size, not every pending one again', async () => {
    // The bytes this process writes, as the kernel counts them (Linux).
    const written = (): number => Number(/^wchar: (\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'))?.[1]);
    const folder = join(dir, 'schedules-many');
    const fired: string[] = [];
    const scheduler = new LocalScheduler(new LocalBus(), { folder, log: () => undefined, writeTimer: async (detail) => void fired.push(String(detail.emissionId)) });
    const count = 1_500;
    const context = { event: 'Order Completed', type: 'track', properties: { note: 'x'.repeat(600) }, traits: {} };
    const events = Array.from({ length: count }, (_, i) => ({ id: `st-${i}`, detailType: 'Kairos Send Timer', detail: { emissionId: `st-${i}`, kind: 'send-timer', context } }));
    const size = events.reduce((sum, e) => sum + JSON.stringify(e).length, 0);
    const before = written();
    const at = Date.now() + 1_000;
    for (const event of events) await scheduler.scheduleAt(event, at);
    expect(scheduler.pending()).toHaveLength(count);
    // Each pending one kept on disk (a restart fires it).
    expect(readdirSync(folder)).toHaveLength(count);
    for (let i = 0; i < 300 && fired.length < count; i++) await new Promise((resolve) => setTimeout(resolve, 50));
    scheduler.stop();
    expect(fired).toHaveLength(count);
    // Rewriting every pending schedule on each change writes about count² / 2 schedules; one file per schedule, about count.
    expect(written() - before).toBeLessThan(10 * size);
    expect(new LocalScheduler(new LocalBus(), { folder, log: () => undefined }).pending()).toEqual([]);
  }, 60_000);

  it('survives a restart: a schedule that came due while stopped fires at start, a later one on time', async () => {
    const folder = join(dir, 'schedules-b');
    const first = new LocalScheduler(new LocalBus(), { folder, log: () => undefined });
    await first.scheduleAt({ id: 'due', detailType: 'T', detail: {} }, Date.now() + 100);
    await first.scheduleAt({ id: 'later', detailType: 'T', detail: {} }, Date.now() + 800);
    first.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    const bus = new LocalBus();
    const second = new LocalScheduler(bus, { folder, log: () => undefined });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(bus.events().map((e) => e.id)).toEqual(['due']);
    await new Promise((resolve) => setTimeout(resolve, 900));
    expect(bus.events().map((e) => e.id)).toEqual(['due', 'later']);
    second.stop();
  });

  it("takes an earlier version's schedules.json into its folder at start: none is lost, the file is gone", async () => {
    const folder = join(dir, 'schedules-earlier');
    const later = { event: { id: 'later', detailType: 'T', detail: { n: 1 } }, at: Date.now() + 60_000 };
    writeFileSync(`${folder}.json`, JSON.stringify([later]));
    const scheduler = new LocalScheduler(new LocalBus(), { folder, log: () => undefined });
    scheduler.stop();
    expect(scheduler.pending()).toEqual([later]);
    expect(savedIn(folder)).toEqual([later]);
    expect(existsSync(`${folder}.json`)).toBe(false);
    expect(new LocalScheduler(new LocalBus(), { folder, log: () => undefined }).pending()).toEqual([later]);
  });
});

/** A deferred send's timer entry, as shared/domain/triggers/react.ts writes it when quiet hours hold. */
const sendTimerEntry = (id: string, dueAt: number): OutboxEntry => ({
  id,
  status: 'deferred',
  sendAt: dueAt,
  detailType: 'Kairos Send Timer',
  detail: {
    emissionId: id,
    kind: 'send-timer',
    send: 'vip-in.src#m-1',
    channel: 'email',
    origin: { kind: 'trigger', trigger: 'vip-in', cause: { kind: 'entered', segment: 'vip' }, eventId: 'm-1' },
    context: { event: 'Identify', type: 'identify', messageId: 'm-1', timestamp: new Date(NOW).toISOString(), properties: {}, traits: {} },
    profileKey: 'u#u-1',
    dueAt: new Date(dueAt).toISOString(),
  },
});

describe("the dispatcher and a deferred send's timer", () => {
  /** The Send Timer events the writes asked for make (the one definition the Events table gets). */
  const written: StoredEvent[] = [];
  const write = async (detail: Readonly<Record<string, unknown>>, firedAt: number): Promise<void> => {
    written.push(timerEventOfDetail(detail, firedAt, 1)!);
  };

  it('writes a due one to the Events table (to be decided there), never on the bus; schedules one not yet due; the bus rule and the local scheduler write it too', async () => {
    written.length = 0;
    const bus = new LocalBus(undefined, () => NOW);
    const scheduler = new RecordingScheduler();
    const report = await dispatchRecords([record(sendTimerEntry('st-due', NOW - 5_000), '1'), record(sendTimerEntry('st-later', NOW + 60_000), '2')], {
      bus,
      scheduler,
      now: () => NOW,
      writeTimer: write,
    });
    expect(report).toEqual({ published: 0, scheduled: 1, timers: 1, cancelled: 0, failures: [] });
    expect(written.map((e) => [e.event, e.properties?.send, e.timestamp])).toEqual([['Send Timer', 'vip-in.src#m-1', new Date(NOW - 5_000).toISOString()]]);
    expect(bus.events()).toEqual([]);
    expect(scheduler.calls.map((c) => [c.event.id, c.event.detailType, c.at])).toEqual([['st-later', 'Kairos Send Timer', NOW + 60_000]]);

    const fired = sendTimerEntry('st-fired', NOW);
    await createTimerHandler({ now: () => NOW + 1, writeTimer: write })(busRuleEvent('Kairos Send Timer', fired.detail));
    expect(written).toHaveLength(2);

    const local = new LocalScheduler(bus, { log: () => undefined, writeTimer: write });
    const at = Date.now() + 100;
    const soon = sendTimerEntry('st-soon', at);
    await local.scheduleAt({ id: soon.id, detailType: soon.detailType, detail: soon.detail }, at);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(written.map((e) => e.timestamp).at(-1)).toBe(new Date(at).toISOString());
    expect(bus.events()).toEqual([]);
    expect(local.pending()).toEqual([]);
    local.stop();
  });

  it('reads a send timer only from a well-formed detail', () => {
    const { detail } = sendTimerEntry('st', NOW);
    expect(sendTimerOfDetail(detail)).toMatchObject({ send: 'vip-in.src#m-1', channel: 'email', profileKey: 'u#u-1', dueAt: NOW });
    for (const broken of [{ kind: 'journey-timer' }, { channel: 'fax' }, { send: '' }, { origin: { kind: 'trigger', trigger: 't' } }, { context: 'x' }, { placement: 3 }]) {
      expect(sendTimerOfDetail({ ...detail, ...broken })).toBeUndefined();
      expect(timerEventOfDetail({ ...detail, ...broken }, NOW, 1)).toBeUndefined();
    }
  });
});
