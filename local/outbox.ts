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
 * - `LocalScheduler`: one-time schedules kept in `<dataDir>/schedules.json`
 *   (rewritten on every change), each fired on time by wall-clock time
 *   (read at least every second, so a clock that jumps is followed) — put
 *   on the bus, then removed — and, after a restart, loaded again: one
 *   whose time passed while the stack was down fires at once. Scheduling an event that
 *   is already scheduled is a no-op, as EventBridge Scheduler's name
 *   conflict is; `cancel` removes one (and saves), a missing one is
 *   success, as DeleteSchedule's not found is for the erasure. A timer (a journey's wait, `Kairos Journey Timer`; a
 *   deferred send, `Kairos Send Timer`) is not put on the bus when it fires: its event is written to the
 *   Events table (`writeTimer`, the dispatcher's own path deployed), never
 *   to outbox.jsonl; a deferred send is decided then by the profile function.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { BusEvent, EmissionBus, EmissionScheduler } from '#shared/bus/bus.ts';
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

interface Schedule {
  readonly event: BusEvent;
  /** Epoch ms. */
  readonly at: number;
}

export class LocalScheduler implements EmissionScheduler {
  readonly #file: string | undefined;
  readonly #bus: EmissionBus;
  readonly #schedules = new Map<string, Schedule>();
  readonly #log: (line: string) => void;
  readonly #writeTimer: (detail: Readonly<Record<string, unknown>>, firedAt: number) => Promise<unknown>;
  /** The one timer: due for the soonest schedule, and never more than CLOCK_CHECK_MS away. */
  #timer: NodeJS.Timeout | undefined;
  #firing = false;
  #stopped = false;

  /**
   * `file`: schedules.json (loaded now: every schedule is armed, past ones fire at once); none keeps them in memory.
   * `writeTimer`: writes a fired timer to the Events table (default shared/bus/journey-timers.ts `writeTimer`,
   * imported when a timer first fires: the store's configuration is read only once the stack has set its environment).
   */
  constructor(
    bus: EmissionBus,
    options: { file?: string; log?: (line: string) => void; writeTimer?: (detail: Readonly<Record<string, unknown>>, firedAt: number) => Promise<unknown> } = {},
  ) {
    this.#bus = bus;
    this.#writeTimer =
      options.writeTimer ?? (async (detail, firedAt) => (await import('#shared/bus/journey-timers.ts')).writeTimer(detail, firedAt));
    this.#file = options.file;
    this.#log = options.log ?? ((line) => console.error(`[kairos] scheduler: ${line}`));
    if (this.#file && existsSync(this.#file)) {
      try {
        const saved = JSON.parse(readFileSync(this.#file, 'utf8')) as Schedule[];
        for (const schedule of saved) this.#schedules.set(schedule.event.id, schedule);
      } catch (error) {
        this.#log(`cannot read ${this.#file}: ${(error as Error).message}; starting with no schedules`);
      }
    }
    this.#arm();
  }

  async scheduleAt(event: BusEvent, at: number): Promise<void> {
    if (this.#schedules.has(event.id)) return;
    this.#schedules.set(event.id, { event, at });
    this.#save();
    this.#arm();
  }

  async cancel(eventId: string): Promise<void> {
    if (!this.#schedules.delete(eventId)) return;
    this.#save();
    this.#arm();
  }

  /** The schedules not fired yet, soonest first. */
  pending(): readonly Schedule[] {
    return [...this.#schedules.values()].sort((a, b) => a.at - b.at);
  }

  /** Stop the timer (the schedules stay in the file and are armed again by the next start). */
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
          this.#schedules.delete(schedule.event.id);
        } catch (error) {
          // EventBridge Scheduler retries a failed target; so does the emulation, a second later.
          this.#log(`schedule ${schedule.event.id} not delivered: ${(error as Error).message}; retrying`);
          // Unless it was cancelled meanwhile (its customer erased).
          if (this.#schedules.has(schedule.event.id)) this.#schedules.set(schedule.event.id, { ...schedule, at: Date.now() + 1_000 });
        }
        this.#save();
      }
    } finally {
      this.#firing = false;
      this.#arm();
    }
  }

  #save(): void {
    if (!this.#file) return;
    mkdirSync(dirname(this.#file), { recursive: true });
    const temporary = `${this.#file}.tmp`;
    writeFileSync(temporary, JSON.stringify(this.pending()));
    renameSync(temporary, this.#file);
  }
}
