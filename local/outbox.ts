/**
 * The local stand-ins for the stack's EventBridge bus and EventBridge
 * Scheduler (shared/bus/bus.ts), fed by the same dispatcher handler as the
 * deployed stack:
 *
 * - `LocalBus`: each event put on the bus is one line of
 *   `<dataDir>/outbox.jsonl` — what EventBridge would have delivered
 *   (`id` = emissionId, `time`, `source`, `detail-type`, `detail`), read by
 *   the operator (GET /v1/admin/outbox/emissions) and the tests; kept in
 *   memory too (the in-memory stack has no file);
 * - `LocalScheduler`: one-time schedules kept in `<dataDir>/schedules/`,
 *   one file per schedule (written when scheduled, deleted when fired or
 *   cancelled: a change writes that schedule alone, so a night of deferred
 *   sends scheduled and fired at once costs each its own size, never every
 *   pending one again; a schedules.json of an earlier version beside the
 *   folder is taken into it at start), each fired on time by wall-clock time
 *   (read at least every second, so a clock that jumps is followed) — put
 *   on the bus, then removed — and, after a restart, loaded again: one
 *   whose time passed while the stack was down fires at once. Scheduling an event that
 *   is already scheduled is a no-op, as EventBridge Scheduler's name
 *   conflict is; `cancel` removes one (and saves), a missing one is
 *   success, as DeleteSchedule's not found is for the erasure. A timer (a journey's wait, `Kairos Journey Timer`; a
 *   deferred send, `Kairos Send Timer`) is not put on the bus when it fires: its event is written to the
 *   Events table (`writeTimer`, the dispatcher's own path deployed), never
 *   to outbox.jsonl; a deferred send is decided then by the profile function.
 *   A schedule whose delivery fails is tried again, 1, 2, 4 … 60 s later, as
 *   EventBridge Scheduler retries (SCHEDULE_RETRY_POLICY: 10 retries, about
 *   5 minutes in all); past its retries it is set aside, as Scheduler sends
 *   it to the timer failure queue: its file is moved to
 *   `<dataDir>/schedules-failed/` (in memory: dropped) and the reason logged
 *   once. A schedule file that cannot be read or is not a schedule is moved
 *   there at start, logged once (reading the same bytes again cannot help).
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { SCHEDULE_RETRY_POLICY, type BusEvent, type EmissionBus, type EmissionScheduler } from '#shared/bus/bus.ts';
import { EMISSION_SOURCE, TIMER_DETAIL_TYPES } from '#domain/triggers/emission.ts';

/** One line of outbox.jsonl: an event as the bus delivers it. */
export interface DeliveredEvent {
  readonly id: string;
  readonly time: string;
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: Readonly<Record<string, unknown>>;
}

export class LocalBus implements EmissionBus {
  readonly #file: string | undefined;
  readonly #events: DeliveredEvent[] = [];
  readonly #now: () => number;

  /** `file`: outbox.jsonl (appended; the events already in it are read back); none keeps them in memory only. */
  constructor(file?: string, now: () => number = () => Date.now()) {
    this.#file = file;
    this.#now = now;
    if (file && existsSync(file)) {
      for (const line of readFileSync(file, 'utf8').split('\n')) {
        if (line.trim() === '') continue;
        try {
          this.#events.push(JSON.parse(line) as DeliveredEvent);
        } catch {
          // A line cut short by a crash: skipped, the rest is read.
        }
      }
    }
  }

  async put(events: readonly BusEvent[]): Promise<readonly string[]> {
    const delivered = events.map(
      (e): DeliveredEvent => ({ id: e.id, time: new Date(this.#now()).toISOString(), source: EMISSION_SOURCE, 'detail-type': e.detailType, detail: e.detail }),
    );
    if (this.#file && delivered.length > 0) {
      mkdirSync(dirname(this.#file), { recursive: true });
      appendFileSync(this.#file, delivered.map((d) => `${JSON.stringify(d)}\n`).join(''));
    }
    this.#events.push(...delivered);
    return [];
  }

  /** Every event delivered, oldest first. */
  events(): readonly DeliveredEvent[] {
    return [...this.#events];
  }
}

/** The longest the scheduler emulation goes without reading the wall clock (ms). */
const CLOCK_CHECK_MS = 1_000;

/** The pause after a schedule's first failed delivery, ms (doubled with each failure, up to MAX_RETRY_PAUSE_MS). */
const DEFAULT_RETRY_PAUSE_MS = 1_000;
const MAX_RETRY_PAUSE_MS = 60_000;

/** The folder schedules given up on are moved to, beside the schedules' folder `folder`: `<folder>-failed`. */
export const failedSchedulesFolderOf = (folder: string): string => `${folder}-failed`;

interface Schedule {
  readonly event: BusEvent;
  /** Epoch ms. */
  readonly at: number;
}

/** The file of a schedule in the scheduler's folder: 40 hex digits of SHA-256 of its event id (ids hold any character). */
const scheduleFileOf = (eventId: string): string => `${createHash('sha256').update(eventId, 'utf8').digest('hex').slice(0, 40)}.json`;

const SCHEDULE_FILE = /^[0-9a-f]{40}\.json$/;

const isSchedule = (value: unknown): value is Schedule => {
  const s = value as Schedule | null;
  return s !== null && typeof s === 'object' && typeof s.at === 'number' && typeof s.event?.id === 'string' && typeof s.event.detailType === 'string';
};

export class LocalScheduler implements EmissionScheduler {
  readonly #folder: string | undefined;
  readonly #bus: EmissionBus;
  readonly #schedules = new Map<string, Schedule>();
  readonly #log: (line: string) => void;
  readonly #writeTimer: (detail: Readonly<Record<string, unknown>>, firedAt: number) => Promise<unknown>;
  readonly #retryPauseMs: number;
  /** Failed deliveries of each schedule in this run, by event id. */
  readonly #failures = new Map<string, number>();
  /** The one timer: due for the soonest schedule, and never more than CLOCK_CHECK_MS away. */
  #timer: NodeJS.Timeout | undefined;
  #firing = false;
  #stopped = false;

  /**
   * `folder`: where the schedules are kept, one file each (loaded now: every schedule is armed, past ones fire at
   * once; a `<folder>.json` of an earlier version, every schedule in one file, is taken into the folder and removed);
   * none keeps them in memory.
   * `writeTimer`: writes a fired timer to the Events table (default shared/bus/journey-timers.ts `writeTimer`,
   * imported when a timer first fires: the store's configuration is read only once the stack has set its environment).
   * `retryPauseMs`: the pause after a schedule's first failed delivery (doubled with each failure, up to 60 s).
   * @default retryPauseMs 1000
   */
  constructor(
    bus: EmissionBus,
    options: {
      folder?: string;
      log?: (line: string) => void;
      writeTimer?: (detail: Readonly<Record<string, unknown>>, firedAt: number) => Promise<unknown>;
      retryPauseMs?: number;
    } = {},
  ) {
    this.#bus = bus;
    this.#retryPauseMs = options.retryPauseMs ?? DEFAULT_RETRY_PAUSE_MS;
    this.#writeTimer =
      options.writeTimer ?? (async (detail, firedAt) => (await import('#shared/bus/journey-timers.ts')).writeTimer(detail, firedAt));
    this.#folder = options.folder;
    this.#log = options.log ?? ((line) => console.error(`[kairos] scheduler: ${line}`));
    if (this.#folder) this.#load(this.#folder);
    this.#arm();
  }

  /** The schedules of `folder`, and those of an earlier version's `<folder>.json`, written into it. */
  #load(folder: string): void {
    mkdirSync(folder, { recursive: true });
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      // A write cut short by a crash (its temporary file) never was a schedule.
      if (!SCHEDULE_FILE.test(name)) {
        if (name.endsWith('.tmp')) rmSync(path, { force: true });
        continue;
      }
      try {
        const schedule: unknown = JSON.parse(readFileSync(path, 'utf8'));
        if (!isSchedule(schedule)) throw new Error('not a schedule');
        this.#schedules.set(schedule.event.id, schedule);
      } catch (error) {
        this.#log(`cannot read schedule ${name}: ${(error as Error).message}; ${this.#moveAside(name)}`);
      }
    }
    const earlier = `${folder}.json`;
    if (!existsSync(earlier)) return;
    try {
      const saved: unknown = JSON.parse(readFileSync(earlier, 'utf8'));
      for (const schedule of Array.isArray(saved) ? saved.filter(isSchedule) : []) {
        if (this.#schedules.has(schedule.event.id)) continue;
        this.#schedules.set(schedule.event.id, schedule);
        this.#write(schedule);
      }
      rmSync(earlier, { force: true });
    } catch (error) {
      this.#log(`cannot read ${earlier}: ${(error as Error).message}; its schedules are not loaded`);
    }
  }

  async scheduleAt(event: BusEvent, at: number): Promise<void> {
    if (this.#schedules.has(event.id)) return;
    const schedule = { event, at };
    this.#write(schedule);
    this.#schedules.set(event.id, schedule);
    this.#arm();
  }

  async cancel(eventId: string): Promise<void> {
    if (!this.#schedules.delete(eventId)) return;
    this.#remove(eventId);
    this.#arm();
  }

  /** The schedules not fired yet, soonest first. */
  pending(): readonly Schedule[] {
    return [...this.#schedules.values()].sort((a, b) => a.at - b.at);
  }

  /** Stop the timer (the schedules stay in the folder and are armed again by the next start). */
  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /**
   * Schedules are wall-clock times, as EventBridge Scheduler's are, and a
   * timer runs on the monotonic clock: the wall clock is read again at
   * least every CLOCK_CHECK_MS, so a schedule that a clock change (a laptop
   * waking from sleep, an NTP step) made due fires within that.
   */
  #arm(): void {
    if (this.#stopped || this.#firing) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#schedules.size === 0) return;
    const soonest = Math.min(...[...this.#schedules.values()].map((s) => s.at));
    const wait = Math.min(Math.max(0, soonest - Date.now()), CLOCK_CHECK_MS);
    this.#timer = setTimeout(() => void this.#fireDue(), wait);
    this.#timer.unref?.();
  }

  /** Fire every schedule that is due, oldest first, then arm the timer again. */
  async #fireDue(): Promise<void> {
    this.#timer = undefined;
    if (this.#stopped) return;
    this.#firing = true;
    try {
      for (const schedule of this.pending()) {
        if (this.#stopped || schedule.at > Date.now()) break;
        try {
          if (TIMER_DETAIL_TYPES.includes(schedule.event.detailType)) await this.#writeTimer(schedule.event.detail, Date.now());
          else if ((await this.#bus.put([schedule.event])).length > 0) throw new Error('the bus refused it');
          if (this.#schedules.delete(schedule.event.id)) this.#remove(schedule.event.id);
          this.#failures.delete(schedule.event.id);
        } catch (error) {
          this.#failed(schedule, error as Error);
        }
      }
    } finally {
      this.#firing = false;
      this.#arm();
    }
  }

  /**
   * A delivery of `schedule` failed. EventBridge Scheduler retries a failed target, with growing pauses, and past
   * SCHEDULE_RETRY_POLICY's retries sends the event to its dead-letter queue; so does the emulation: tried again
   * after a pause (in memory, a restart fires it at once), past the retries set aside (its file moved to the failed
   * folder), logged on its first failure and when set aside. A schedule cancelled meanwhile (its customer erased) is
   * left alone.
   */
  #failed(schedule: Schedule, error: Error): void {
    const id = schedule.event.id;
    if (!this.#schedules.has(id)) return;
    const failures = (this.#failures.get(id) ?? 0) + 1;
    if (failures > SCHEDULE_RETRY_POLICY.MaximumRetryAttempts) {
      this.#schedules.delete(id);
      this.#failures.delete(id);
      this.#log(`schedule ${id} not delivered after ${failures} attempts: ${error.message}; ${this.#moveAside(scheduleFileOf(id))}`);
      return;
    }
    this.#failures.set(id, failures);
    if (failures === 1) this.#log(`schedule ${id} not delivered: ${error.message}; retrying (${SCHEDULE_RETRY_POLICY.MaximumRetryAttempts} times at most)`);
    const pause = Math.min(MAX_RETRY_PAUSE_MS, this.#retryPauseMs * 2 ** (failures - 1));
    this.#schedules.set(id, { ...schedule, at: Date.now() + pause });
  }

  /** Move the schedule file `name` to the failed folder; says where it went, for the log line. */
  #moveAside(name: string): string {
    if (!this.#folder) return 'dropped';
    const failed = failedSchedulesFolderOf(this.#folder);
    try {
      mkdirSync(failed, { recursive: true });
      renameSync(join(this.#folder, name), join(failed, name));
      return `moved to ${join(failed, name)}`;
    } catch (error) {
      // Not there (never written: a schedule kept in memory only), or the move itself failed: it is not armed again.
      return `not moved (${(error as Error).message}); not tried again in this run`;
    }
  }

  /** Keep `schedule` in its own file (written beside it, then renamed into place: never half a schedule). */
  #write(schedule: Schedule): void {
    if (!this.#folder) return;
    mkdirSync(this.#folder, { recursive: true });
    const path = join(this.#folder, scheduleFileOf(schedule.event.id));
    writeFileSync(`${path}.tmp`, JSON.stringify(schedule));
    renameSync(`${path}.tmp`, path);
  }

  /** Delete the file of the schedule of `eventId` (fired or cancelled: nothing of it stays on disk). */
  #remove(eventId: string): void {
    if (this.#folder) rmSync(join(this.#folder, scheduleFileOf(eventId)), { force: true });
  }
}
