/**
 * The journey state machine: what one applied event does to a customer's
 * journeys, as a pure function of their state, the event, and what the
 * profile plan knows of the event (did it fire a journey's entry trigger,
 * does a CEL condition hold on the profile after it).
 *
 * A customer's state in each journey (`JourneyRun`, kept on the profile:
 * ProfileState `journeys`) is the run number, the step they are at, when
 * they entered and reached the step, and when a timed step's timer is due.
 * For each journey of the catalog, in order, an event:
 * - of a customer in the journey: ends the run `exited` when it meets the
 *   journey's exit condition (its event, or its CEL on the profile after the
 *   event), or when the step they wait at is no longer a wait of the
 *   journey (the catalog changed: removed, renamed, or now another kind);
 *   else the wait step reacts to it — the awaited event moves on to the
 *   step after the wait, the wait's own timer (a `Journey Timer` event for
 *   this journey, run and step: timer.ts) moves on past a duration or to the
 *   wait's `timeout` step; anything else, a stale timer included (one of an
 *   earlier run or step: the customer moved on), changes nothing;
 * - of a customer not in it: starts a new run when the journey's entry
 *   trigger fires on it and the re-entry rule allows it (never entered, or
 *   `again after` the given time since the last run ended).
 * A step reached is run at once: `act` asks for a decision on its channel
 * and moves on, `branch` moves to `then` or `else` by its CEL on the profile,
 * `exit` ends the run `completed` (as does running past the last step), a
 * wait sets its timer and stops there. Jumps only go forward (compile-time
 * check), so one event runs each step of a run at most once.
 *
 * A run is told apart from every other of the customer's by its number
 * and its `enteredAt` together (`sameRun`): its effects' ids
 * (`journeyEffectId`) and its timers (timer.ts) name both. The number alone
 * starts from 1 again for a customer who comes back after an erasure (the
 * profile starts empty); the entry time does not repeat, since the erasure
 * drops every event that happened at or before it (profile/plan.ts), so the
 * returning customer's runs are entered after it. A timer, or a deferred
 * send, of the erased customer's run that still fires matches none of the
 * new runs, and their ids are new ids.
 *
 * A run that exits keeps why (`ended.reason`, EXIT_REASONS) for the
 * operator who reads it. A run of a customer's anonymous profile that a
 * merge drops (their identified profile has a run of the same journey:
 * `joinRuns`) ends `exited` too, noted on the run kept (`merged`). A
 * wait's timer whose steps the profile plan cannot apply (past one event's
 * byte budget, or a throw) ends its run `exited` too
 * (`exitFailedTimerRun`): its timer is spent, nothing else would move it
 * on.
 *
 * Times are the event's (epoch ms): a redelivery or a late replay of the
 * same events gives the same runs, timers and ids. Exactly once is the
 * plan's: the journeys change, and their effects are written, in the same
 * conditional transaction as the profile and the event's "applied" marker.
 */
import { createHash } from 'node:crypto';
import type { Channel } from '../channels.ts';
import type { CompiledJourney, CompiledRule } from '../catalog/compiled.ts';
import { dayOf } from '../profile/time.ts';
import { isTimerEvent, journeyTimerOf } from './timer.ts';
import type { StoredEvent } from '../stored-event.ts';
import { idDigest, MAX_EMISSION_ID_LENGTH } from '../triggers/emission.ts';

/** A customer's state in one journey. */
export interface JourneyRun {
  /** The current or last run, from 1. */
  run: number;
  /** The step the customer is at (its id); absent once the run has ended. */
  step?: string;
  /** When the run began: the entering event's time, epoch ms. */
  enteredAt: number;
  /** When the current step was reached, epoch ms. */
  stepAt: number;
  /** At a wait: when its timer is due, epoch ms. */
  waitingUntil?: number;
  /** How and when the last run ended (epoch ms), and, for a run that exited, why (`EXIT_REASONS`). */
  ended?: { readonly how: JourneyEnd; readonly at: number; readonly reason?: string };
  /**
   * `true` on every run entered since runs are named by their `enteredAt`
   * too; absent on a run entered before (a state written then). Only such a
   * run is matched by a timer that names no `enteredAt` (written then too):
   * see `sameRun`.
   */
  named?: true;
  /**
   * The last run of the journey that a merge ended into this one: the
   * customer's anonymous profile, merged into this one while both were in a
   * run of the journey (`joinRuns`), its number, entry time (epoch ms) and
   * end (`exited` at the merge, with EXIT_REASONS.merged). Kept through the
   * run's steps, not by the customer's next run.
   */
  merged?: { readonly run: number; readonly enteredAt: number; readonly ended: { readonly how: 'exited'; readonly at: number; readonly reason: string } };
}

export type JourneyEnd = 'completed' | 'exited';

/** The most characters of an exit's reason kept on the run (a failure's message is cut to fit). */
export const MAX_EXIT_REASON_LENGTH = 300;

/**
 * Why a run exited, as an operator reads it on the run (GET
 * /v1/admin/profiles/{userId}, `ended.reason`): one sentence, at most
 * MAX_EXIT_REASON_LENGTH characters.
 */
export const EXIT_REASONS = {
  /** The journey's `exit` (its event, or its CEL on the profile after the event) was met. */
  exitMet: (): string => "the journey's exit condition was met",
  /** The step the run waited at is no longer a wait of the journey (the catalog changed). */
  stepGone: (step: string): string => `the step it waited at ("${step}") is no longer a wait of the journey`,
  /** The wait's timer fired while the journey was no longer in the catalog. */
  journeyGone: (journey: string): string => `its wait's timer fired while the journey "${journey}" was no longer in the catalog`,
  /** The customer was erased while in the run. */
  erased: (): string => 'the customer was erased',
  /**
   * The customer's anonymous profile was merged into their identified one, which has a run of the same journey:
   * the identified profile's run is kept, the anonymous one's ends (`joinRuns`).
   */
  merged: (): string => 'merged into another run of the same journey: the visitor was identified as a customer who has one',
  /** The wait's timer fired but what it moves the run on to could not be written (`exitFailedTimerRun`). */
  stepFailed: (step: string, cause: string): string =>
    `its wait's timer fired but the steps after "${step}" could not be applied: ${cause}`.slice(0, MAX_EXIT_REASON_LENGTH),
} as const;

/** Journey id → the customer's run in it. */
export type JourneyRuns = Record<string, JourneyRun>;

/** What the plan knows of the event being applied. */
export interface JourneyInput {
  readonly event: StoredEvent;
  /** The event's time, epoch ms. */
  readonly at: number;
  /** The customer's profile key (`u#…`, `a#…`): decisions and timers are for it. */
  readonly profileKey: string;
  /** The semantic name of a track event (apply.ts `semanticName`), else undefined. */
  readonly eventName: string | undefined;
  /** Whether the journey's entry trigger fires on this event (the transition it names happened). */
  readonly entered: (journey: CompiledJourney) => boolean;
  /** A CEL condition on the profile after the event (a runtime failure is false). */
  readonly holds: (rule: CompiledRule) => boolean;
}

/** A decision asked for by an `act` step: decided and emitted like a trigger's. */
export interface JourneyAct {
  readonly kind: 'act';
  /** Stable across redeliveries: journey, customer, run (its number and entry time) and step (`journeyEffectId`). */
  readonly id: string;
  readonly journey: string;
  readonly run: number;
  /** The run's entry time (JourneyRun `enteredAt`), epoch ms. */
  readonly enteredAt: number;
  readonly step: string;
  readonly profileKey: string;
  readonly channel: Channel;
  readonly placement?: string;
  /** The time of the event that reached the step, epoch ms. */
  readonly at: number;
}

/** A timer to schedule: its `Journey Timer` event is written to the Events table at `dueAt`. */
export interface JourneyTimer {
  readonly kind: 'timer';
  readonly id: string;
  readonly journey: string;
  readonly run: number;
  /** The run's entry time (JourneyRun `enteredAt`), epoch ms. */
  readonly enteredAt: number;
  readonly step: string;
  readonly profileKey: string;
  /** Epoch ms. */
  readonly dueAt: number;
}

export type JourneyEffect = JourneyAct | JourneyTimer;

/** What a journey report counts: a run entered, a step reached, a run ended. */
export type JourneyMilestone = { readonly kind: 'entered' } | { readonly kind: 'step'; readonly step: string } | { readonly kind: JourneyEnd };

/** One count of the journey report, on the UTC day of the event. */
export interface JourneyCount {
  readonly journey: string;
  /** The UTC day of the event, in days since the epoch. */
  readonly day: number;
  readonly milestone: JourneyMilestone;
}

export interface JourneyAdvance {
  readonly runs: JourneyRuns;
  readonly effects: readonly JourneyEffect[];
  readonly counts: readonly JourneyCount[];
}

/**
 * Advance `runs` (not changed) by one applied event through the catalog's
 * `journeys`. A run of a journey the catalog no longer has is kept as it is
 * (a journey put back goes on with it), until its wait's timer fires: that
 * ends it `exited` (`orphanTimerRun`).
 */
export function advanceJourneys(runs: Readonly<JourneyRuns>, journeys: readonly CompiledJourney[], input: JourneyInput): JourneyAdvance {
  let next: JourneyRuns | undefined;
  const effects: JourneyEffect[] = [];
  const counts: JourneyCount[] = [];
  const day = dayOf(input.at);
  for (const journey of journeys) {
    const current = Object.hasOwn(runs, journey.id) ? runs[journey.id] : undefined;
    const count = (milestone: JourneyMilestone) => counts.push({ journey: journey.id, day, milestone });
    const changed = current?.step !== undefined ? react(journey, current, input, effects, count) : enter(journey, current, input, effects, count);
    if (changed) (next ??= { ...runs })[journey.id] = changed;
  }
  const orphan = orphanTimerRun(runs, journeys, input.event);
  if (orphan !== undefined) {
    counts.push({ journey: orphan.journey, day, milestone: { kind: 'exited' } });
    (next ??= { ...runs })[orphan.journey] = ended(orphan.run, 'exited', input.at, EXIT_REASONS.journeyGone(orphan.journey));
  }
  return { runs: next ?? runs, effects, counts };
}

/**
 * The run that `event`, a wait's timer, ends although its journey is no
 * longer in the catalog (`journeys`): the run it names, still at that wait.
 * Nothing else would ever move it on (its timer has fired), so it ends
 * `exited`; a journey put back (a rollback) finds it ended, not stuck.
 */
function orphanTimerRun(runs: Readonly<JourneyRuns>, journeys: readonly CompiledJourney[], event: StoredEvent): { journey: string; run: JourneyRun } | undefined {
  const timer = journeyTimerOf(event);
  if (timer === undefined || journeys.some((j) => j.id === timer.journey) || !Object.hasOwn(runs, timer.journey)) return undefined;
  const run = runs[timer.journey] as JourneyRun;
  if (run.step === undefined || run.step !== timer.step || run.waitingUntil === undefined || !sameRun(timer, run)) return undefined;
  return { journey: timer.journey, run };
}

/**
 * End `exited` at `at` (epoch ms) the run that the journey timer `event`
 * would have moved on when what it moves the run on to cannot be applied
 * (the plan refused the journeys' step of this event: its writes pass what
 * one event may write, or it threw; `cause` says which). The timer is
 * spent with the event, so nothing would ever move that run on: it would
 * stay in progress with no timer left. Only the run the timer names, still
 * waiting at that step (`sameRun`), ends, with its reason
 * (`EXIT_REASONS.stepFailed`) and its `exited` count on the event's UTC day;
 * a stale timer, or an event that is no journey timer, ends nothing
 * (undefined). Pure: a replay gives the same runs and count.
 */
export function exitFailedTimerRun(
  runs: Readonly<JourneyRuns>,
  event: StoredEvent,
  at: number,
  cause: string,
): { runs: JourneyRuns; count: JourneyCount } | undefined {
  const timer = journeyTimerOf(event);
  if (timer === undefined || !Object.hasOwn(runs, timer.journey)) return undefined;
  const run = runs[timer.journey] as JourneyRun;
  if (run.step === undefined || run.step !== timer.step || run.waitingUntil === undefined || !sameRun(timer, run)) return undefined;
  return {
    runs: { ...runs, [timer.journey]: ended(run, 'exited', at, EXIT_REASONS.stepFailed(timer.step, cause)) },
    count: { journey: timer.journey, day: dayOf(at), milestone: { kind: 'exited' } },
  };
}

type Count = (milestone: JourneyMilestone) => void;

/** A customer not in the journey: a new run when its entry fires and re-entry allows. */
function enter(journey: CompiledJourney, last: JourneyRun | undefined, input: JourneyInput, effects: JourneyEffect[], count: Count): JourneyRun | undefined {
  if (last !== undefined) {
    if (journey.reentry.kind === 'once') return undefined;
    if (last.ended === undefined || input.at < last.ended.at + journey.reentry.afterMs) return undefined;
  }
  if (!input.entered(journey)) return undefined;
  count({ kind: 'entered' });
  const run: JourneyRun = { run: (last?.run ?? 0) + 1, enteredAt: input.at, stepAt: input.at, named: true };
  return reach(journey, run, 0, input, effects, count);
}

/** A customer in the journey: its exit condition, then the step they wait at. */
function react(journey: CompiledJourney, run: JourneyRun, input: JourneyInput, effects: JourneyEffect[], count: Count): JourneyRun | undefined {
  if (exits(journey, input)) {
    count({ kind: 'exited' });
    return ended(run, 'exited', input.at, EXIT_REASONS.exitMet());
  }
  const index = journey.stepIndex.get(run.step as string);
  const step = index === undefined ? undefined : journey.steps[index];
  // A step the catalog no longer has as a wait (removed, renamed, or now an act, a branch or an exit: a run
  // only ever stops at a wait): the run cannot go on; it ends as exited.
  if (step === undefined || step.kind !== 'wait') {
    count({ kind: 'exited' });
    return ended(run, 'exited', input.at, EXIT_REASONS.stepGone(run.step as string));
  }
  const timer = journeyTimerOf(input.event);
  if (timer !== undefined) {
    if (timer.journey !== journey.id || !sameRun(timer, run) || timer.step !== step.id || run.waitingUntil === undefined) return undefined;
    return reach(journey, run, step.timeout, input, effects, count);
  }
  if (step.until === undefined || input.eventName !== step.until.event) return undefined;
  if (step.until.when !== undefined && !input.holds(step.until.when)) return undefined;
  return reach(journey, run, step.next, input, effects, count);
}

function exits(journey: CompiledJourney, input: JourneyInput): boolean {
  const exit = journey.exit;
  if (exit === undefined || isTimerEvent(input.event)) return false;
  if (exit.event !== undefined && input.eventName !== exit.event) return false;
  return exit.when === undefined || input.holds(exit.when);
}

/** The run's identity (number, entry time, whether it is named by it) and the run a merge ended into it, kept through every step. */
const identity = (run: JourneyRun): Pick<JourneyRun, 'run' | 'enteredAt' | 'named' | 'merged'> => ({
  run: run.run,
  enteredAt: run.enteredAt,
  ...(run.named ? { named: true } : {}),
  ...(run.merged !== undefined ? { merged: run.merged } : {}),
});

const ended = (run: JourneyRun, how: JourneyEnd, at: number, reason?: string): JourneyRun => ({
  ...identity(run),
  stepAt: at,
  ended: { how, at, ...(reason !== undefined ? { reason } : {}) },
});

/** A run's entry time as timers and deferred sends name it (timer.ts `JourneyTimerRef`, `SendOrigin`): ISO-8601. */
export const runEntryOf = (run: Pick<JourneyRun, 'enteredAt'>): string => new Date(run.enteredAt).toISOString();

/**
 * Whether a timer (or a deferred send) of the run `ref` names — its number
 * and, when it names it, its entry time (ISO-8601) — is one of `run`: the
 * same number and the same entry time. A ref that names no entry time was
 * written before runs were named by it (pending at the deploy that brought
 * them in): it matches by number a run entered before that deploy only
 * (`named` absent), so one of an erased customer never matches the run of
 * a customer who came back since.
 */
export function sameRun(ref: { readonly run: number; readonly enteredAt?: string }, run: JourneyRun): boolean {
  if (ref.run !== run.run) return false;
  return ref.enteredAt === undefined ? run.named !== true : ref.enteredAt === runEntryOf(run);
}

/**
 * Run the journey from step `index` (past the last: completed) until a wait
 * or the end. Jumps go forward only, so this visits each step at most once.
 */
function reach(journey: CompiledJourney, from: JourneyRun, index: number, input: JourneyInput, effects: JourneyEffect[], count: Count): JourneyRun {
  let at = index;
  for (;;) {
    const step = journey.steps[at];
    if (step === undefined || step.kind === 'exit') {
      if (step !== undefined) count({ kind: 'step', step: step.id });
      count({ kind: 'completed' });
      return ended(from, 'completed', input.at);
    }
    count({ kind: 'step', step: step.id });
    const ids = { journey: journey.id, run: from.run, enteredAt: from.enteredAt, step: step.id, profileKey: input.profileKey };
    switch (step.kind) {
      case 'act':
        effects.push({
          kind: 'act',
          id: journeyEffectId({ ...ids, kind: 'act' }),
          ...ids,
          channel: step.channel,
          ...(step.placement !== undefined ? { placement: step.placement } : {}),
          at: input.at,
        });
        at = step.next;
        break;
      case 'branch':
        at = input.holds(step.when) ? step.then : step.else;
        break;
      case 'wait': {
        const dueAt = input.at + step.forMs;
        effects.push({ kind: 'timer', id: journeyEffectId({ ...ids, kind: 'timer' }), ...ids, dueAt });
        return { ...identity(from), step: step.id, stepAt: input.at, waitingUntil: dueAt };
      }
    }
  }
}

/**
 * The stable id of a journey effect, `<journey>.<run>.<step>.<kind>.<run
 * hash>`: the same journey, customer, run (number and entry time), step and
 * kind give the same id, so a second write of it (the outbox's put is
 * conditioned on its absence) can never happen unnoticed. The run hash is
 * 24 hex digits of SHA-256 of the customer's profile key and the run's
 * `enteredAt` (epoch ms): short, and new for a customer who comes back
 * after an erasure, whose run numbers start from 1 again (the module's
 * docstring). Ids and step names may each have 128 characters: an id that
 * would pass MAX_EMISSION_ID_LENGTH is `jh-` and the digest of all six
 * parts instead (no dot, so never a readable id).
 */
export function journeyEffectId(parts: {
  readonly kind: 'act' | 'timer';
  readonly journey: string;
  readonly run: number;
  readonly enteredAt: number;
  readonly step: string;
  readonly profileKey: string;
}): string {
  const runHash = createHash('sha256').update(JSON.stringify([parts.profileKey, parts.enteredAt])).digest('hex').slice(0, 24);
  const readable = `${parts.journey}.${parts.run}.${parts.step}.${parts.kind}.${runHash}`;
  if (readable.length <= MAX_EMISSION_ID_LENGTH) return readable;
  return `jh-${idDigest(JSON.stringify([parts.journey, parts.run, parts.enteredAt, parts.step, parts.kind, parts.profileKey]))}`;
}

/**
 * The report's counts of a customer erased at `at` (epoch ms): each run in
 * progress ends with the profile, `exited`, on the erasure's UTC day, so a
 * journey's `entered` stays `completed` + `exited` + the runs in progress.
 */
export function erasedRunCounts(runs: Readonly<JourneyRuns>, at: number): JourneyCount[] {
  return Object.keys(runs)
    .filter((journey) => inJourney(runs, journey))
    .sort()
    .map((journey) => ({ journey, day: dayOf(at), milestone: { kind: 'exited' } }));
}

/**
 * Which runs in progress an ending ends, and why: the runs of the journeys
 * `only` names (absent: every run in progress), each with `reason`
 * (EXIT_REASONS; absent: `erased`, the erasure's).
 */
export interface RunEnd {
  readonly reason?: string;
  readonly only?: readonly string[];
}

/** The report's counts of the runs in progress that `end` ends at `at` (epoch ms), by journey id (`erasedRunCounts`, `only` those journeys). */
export const endedRunCounts = (runs: Readonly<JourneyRuns>, at: number, end: RunEnd = {}): JourneyCount[] =>
  erasedRunCounts(runs, at).filter((count) => end.only === undefined || end.only.includes(count.journey));

/**
 * End the first `max` (by journey id) of the customer's runs in progress
 * that `end` names `exited` at `at` (epoch ms), with its reason (default:
 * as an erasure ends them, `erasedRunCounts`): the runs with those ended,
 * and their counts (one per run, so at most `max`). A customer can be in
 * more journeys than one transaction holds counters for (a run of a
 * journey the catalog no longer has stays in progress until its timer
 * fires, so runs add up over catalog versions): the item is written again
 * with a share of them ended, each share with its counts in the write's
 * own transaction, before the write that deletes, replaces or merges it
 * counts the rest. A run ended so is no longer in progress: never counted
 * twice.
 */
export function endRunsInProgress(runs: Readonly<JourneyRuns>, at: number, max: number, end: RunEnd = {}): { runs: JourneyRuns; counts: JourneyCount[] } {
  const counts = endedRunCounts(runs, at, end).slice(0, Math.max(0, max));
  if (counts.length === 0) return { runs: { ...runs }, counts };
  const next: JourneyRuns = { ...runs };
  for (const { journey } of counts) next[journey] = ended(runs[journey] as JourneyRun, 'exited', at, end.reason ?? EXIT_REASONS.erased());
  return { runs: next, counts };
}

/**
 * The runs of an anonymous profile (`source`) joined into those of the
 * profile it merges into (`target`), as profile/apply.ts `mergeProfiles`
 * joins them, at `at` (the merge's time, epoch ms; absent: a join in memory
 * that notes nothing): per journey, the target's run (in progress or
 * ended: its number, entry time and ids go on), the source's only where
 * the target has none. A source run in progress where the target has a
 * run of that journey is dropped: `dropped` lists its
 * journeys, by id, for the journey report to count `exited` once, with
 * `mergedRunCounts`, and the kept run notes it (`JourneyRun.merged`, with
 * EXIT_REASONS.merged) when `at` is given. A source run that had ended is
 * counted already. Its pending timers then match no run of the customer
 * (`sameRun`: the target's run is another, of another number or entry time)
 * and do nothing; two runs of the same number entered at the same
 * millisecond are one run to their timers (either's timer of the step the
 * kept run waits at moves it on, once).
 */
export function joinRuns(target: Readonly<JourneyRuns>, source: Readonly<JourneyRuns>, at?: number): { runs: JourneyRuns; dropped: string[] } {
  const runs: JourneyRuns = { ...source, ...target };
  const dropped: string[] = [];
  for (const journey of Object.keys(source).sort()) {
    if (!Object.hasOwn(target, journey) || !inJourney(source, journey)) continue;
    const from = source[journey] as JourneyRun;
    dropped.push(journey);
    if (at !== undefined) {
      const merged = { run: from.run, enteredAt: from.enteredAt, ended: { how: 'exited', at, reason: EXIT_REASONS.merged() } } as const;
      runs[journey] = { ...(target[journey] as JourneyRun), merged };
    }
  }
  return { runs, dropped };
}

/** The report's counts of the runs a merge at `at` (epoch ms) dropped (`joinRuns`): each `exited`, on the merge's UTC day. */
export const mergedRunCounts = (dropped: readonly string[], at: number): JourneyCount[] =>
  dropped.map((journey) => ({ journey, day: dayOf(at), milestone: { kind: 'exited' } }));

/** Whether the customer is in the journey now (a run not ended). */
export const inJourney = (runs: Readonly<JourneyRuns>, journey: string): boolean => Object.hasOwn(runs, journey) && runs[journey]?.step !== undefined;

/** A customer's run in a journey as an operator reads it (GET /v1/admin/profiles/{userId}): times in ISO-8601. */
export interface JourneyRunView {
  readonly journey: string;
  readonly run: number;
  /** The step they are at; absent once the run has ended. */
  readonly step?: string;
  readonly enteredAt: string;
  readonly stepAt: string;
  readonly waitingUntil?: string;
  readonly ended?: { readonly how: JourneyEnd; readonly at: string; readonly reason?: string };
  /** The last run of the journey a merge ended into this one (`JourneyRun.merged`): its number, entry time and end. */
  readonly merged?: { readonly run: number; readonly enteredAt: string; readonly ended: { readonly how: 'exited'; readonly at: string; readonly reason: string } };
}

/** The customer's runs, by journey id. */
export function journeyRunsView(runs: Readonly<JourneyRuns>): JourneyRunView[] {
  const iso = (at: number) => new Date(at).toISOString();
  return Object.keys(runs)
    .sort()
    .map((journey) => {
      const run = runs[journey] as JourneyRun;
      return {
        journey,
        run: run.run,
        ...(run.step !== undefined ? { step: run.step } : {}),
        enteredAt: iso(run.enteredAt),
        stepAt: iso(run.stepAt),
        ...(run.waitingUntil !== undefined ? { waitingUntil: iso(run.waitingUntil) } : {}),
        ...(run.ended !== undefined
          ? { ended: { how: run.ended.how, at: iso(run.ended.at), ...(run.ended.reason !== undefined ? { reason: run.ended.reason } : {}) } }
          : {}),
        ...(run.merged !== undefined
          ? { merged: { run: run.merged.run, enteredAt: iso(run.merged.enteredAt), ended: { ...run.merged.ended, at: iso(run.merged.ended.at) } } }
          : {}),
      };
    });
}
