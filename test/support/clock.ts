/**
 * The wall clock of the process a local stack runs in, moved by the tests:
 * `Date` (constructed without arguments, `Date.now()`, `Date()`) reads the
 * real clock plus an offset the test sets; every other clock (timers,
 * `performance.now()`, DynamoDB Local's own) runs as before. It still
 * advances in real time.
 *
 * The e2e stacks run at midday UTC of the current day (`startLocalStack`,
 * and `npm start` in the walk-throughs through midday-clock.ts): the demo
 * catalog keeps email, push and SMS quiet at night, so a test that decides
 * on them would otherwise depend on the hour it runs at. A test of quiet
 * hours or of a journey's wait sets the clock where it needs it
 * (`setClock`) or moves it on (`advanceClock`) — ingest, the profile
 * function, decide and the scheduler emulation all read it.
 */

const RealDate = Date;
let offsetMs = 0;
let installed = false;

const shiftedNow = (): number => RealDate.now() + offsetMs;

const ShiftedDate = new Proxy(RealDate, {
  construct(target, args: unknown[], newTarget) {
    return args.length === 0 ? Reflect.construct(target, [shiftedNow()], newTarget) : Reflect.construct(target, args, newTarget);
  },
  apply() {
    return new RealDate(shiftedNow()).toString();
  },
  get(target, property, receiver) {
    if (property === 'now') return shiftedNow;
    return Reflect.get(target, property, receiver) as unknown;
  },
});

/** Replace the process's `Date` with the movable one (once; idempotent). */
function install(): void {
  if (installed) return;
  globalThis.Date = ShiftedDate;
  installed = true;
}

/** Set the clock to `at` (epoch ms) from now on; it goes on advancing in real time. */
export function setClock(at: number): void {
  install();
  offsetMs = at - RealDate.now();
}

/** Move the clock on by `ms`. */
export function advanceClock(ms: number): void {
  install();
  offsetMs += ms;
}

/** What the clock reads now (epoch ms). */
export const clockNow = (): number => shiftedNow();

/** 12:00 UTC of the current (real) day, epoch ms. */
export function middayToday(): number {
  const day = new RealDate(RealDate.now());
  return RealDate.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), 12);
}

/** Set the clock to midday UTC of the current day: every channel's answers are the day's, whatever the hour. */
export const setClockToMidday = (): void => setClock(middayToday());

/** The real clock again. */
export function restoreClock(): void {
  offsetMs = 0;
  if (installed) globalThis.Date = RealDate;
  installed = false;
}
