/**
 * The catalog's journeys as the profile plan runs them (plan.ts, with each
 * applied event between the view just before it and just after it): the
 * customer's runs moved on by the state machine (machine.ts), and what that
 * writes in the profile's own transaction —
 * - an `act` step: the entry of a decided send (triggers/react.ts
 *   `sendEntry`: every policy, or refused with why), detail type `Kairos
 *   Journey Action`; while quiet hours hold on its channel, its send's
 *   timer instead (`Kairos Send Timer`), decided when due: a due `Send
 *   Timer` of an act is decided then (triggers/react.ts `decideDueSend`) if
 *   the customer is still in that run (machine.ts `sameRun`: its number
 *   and entry time) or it completed, for the act step of that id as the
 *   catalog has it then (its channel and placement now); a run that
 *   exited, or was followed by another, or one of an erased customer's
 *   runs, or a step that is no longer an act of the journey, sends nothing
 *   (a stale timer, as a wait's);
 * - a wait: its timer, an entry `deferred` to the due time, detail type
 *   `Kairos Journey Timer`, which the dispatcher turns into the `Journey
 *   Timer` event (timer.ts) written to the Events table when due;
 * - the report's counts (report.ts).
 * An act's send decided now carries its contact (the plan counts it on the
 * profile at once), and the acts one event sets off decide in turn, each
 * seeing the sends before it (triggers/react.ts `fireInTurn`).
 * An entry is the trigger's `on` (triggers/react.ts `caused`) and its `when`
 * (CEL on the view after the event, `context` the event); the steps' CEL
 * sees the same. Pure: no I/O.
 */
import type { CompiledCatalog, CompiledRule } from '../catalog/compiled.ts';
import { createFailureTally, createRuleVariables, evaluateRule } from '../catalog/rules.ts';
import { eventTime } from '../profile/apply.ts';
import { semanticName } from '../semantic-events.ts';
import type { AppliedChange, JourneyStepper, OutboxEntry } from '../profile/reactions.ts';
import { DETAIL_TYPES, type JourneyTimerDetail } from '../triggers/emission.ts';
import { caused, decideDueSend, eventContext, fireInTurn, sendEntry, type FireOptions } from '../triggers/react.ts';
import { journeyTimerOf, sendTimerOf } from './timer.ts';
import { journeyItemsPerEvent } from '../catalog/compile-journeys.ts';
import { advanceJourneys, runEntryOf, sameRun, type JourneyAct, type JourneyCount, type JourneyRuns, type JourneyTimer } from './machine.ts';

/** What one applied event does to the customer's journeys. */
export interface JourneyReaction {
  readonly runs: JourneyRuns;
  readonly outbox: readonly OutboxEntry[];
  readonly counts: readonly JourneyCount[];
}

/** Move the customer's `runs` on by `change` through the catalog's journeys (see the module's docstring). */
export function reactJourneys(catalog: CompiledCatalog, runs: Readonly<JourneyRuns>, change: AppliedChange, options: FireOptions = {}): JourneyReaction {
  // No journeys: only a wait's timer can still end a run (of a journey since removed: machine.ts).
  if (catalog.journeys.length === 0 && journeyTimerOf(change.event) === undefined) return { runs, outbox: [], counts: [] };
  const due = sendTimerOf(change.event);
  if (due) {
    const origin = due.origin;
    if (origin.kind !== 'journey' || !catalog.journeys.some((j) => j.id === origin.journey)) return { runs, outbox: [], counts: [] };
    const run = Object.hasOwn(runs, origin.journey) ? runs[origin.journey] : undefined;
    const live = run !== undefined && sameRun(origin, run) && run.ended?.how !== 'exited';
    const entry = live ? decideDueSend(catalog, due, change, options) : undefined;
    return { runs, outbox: entry ? [entry] : [], counts: [] };
  }
  const event = change.event;
  const vars = createRuleVariables({ profile: change.after, context: eventContext(event), now: new Date(change.now), catalog, failures: createFailureTally() });
  const holds = (rule: CompiledRule) => evaluateRule(rule, vars);
  const advance = advanceJourneys(runs, catalog.journeys, {
    event,
    at: eventTime(event),
    profileKey: change.profileKey,
    eventName: event.type === 'track' && event.event !== undefined ? semanticName(event.event) : undefined,
    entered: (journey) => caused(journey.entry.on, change) && (journey.entry.when === undefined || holds(journey.entry.when)),
    holds,
  });
  const outbox = fireInTurn(advance.effects, change, (effect, seen) => (effect.kind === 'act' ? actEntry(catalog, effect, seen, options) : timerEntry(effect)));
  return { runs: advance.runs, outbox, counts: advance.counts };
}

function actEntry(catalog: CompiledCatalog, act: JourneyAct, change: AppliedChange, options: FireOptions): OutboxEntry {
  const origin = { kind: 'journey', journey: act.journey, run: act.run, enteredAt: runEntryOf(act), step: act.step, eventId: change.event.messageId } as const;
  return sendEntry(catalog, act, origin, act.id, change, options);
}

function timerEntry(timer: JourneyTimer): OutboxEntry {
  const detail: JourneyTimerDetail = {
    emissionId: timer.id,
    kind: 'journey-timer',
    journey: timer.journey,
    run: timer.run,
    enteredAt: runEntryOf(timer),
    step: timer.step,
    profileKey: timer.profileKey,
    dueAt: new Date(timer.dueAt).toISOString(),
  };
  return { id: timer.id, status: 'deferred', sendAt: timer.dueAt, detailType: DETAIL_TYPES.journeyTimer, detail: detail as unknown as Record<string, unknown> };
}

/**
 * The most transaction items (outbox entries and report counters) one event
 * can add through the catalog's journeys: at most
 * catalog/compile-journeys.ts MAX_JOURNEY_ITEMS_PER_EVENT.
 */
export const journeyBound = (catalog: Pick<CompiledCatalog, 'journeys'>): number =>
  catalog.journeys.reduce((sum, journey) => sum + journeyItemsPerEvent(journey), 0);

/**
 * The profile plan's journey stepper for the catalog's journeys, read
 * through `current` (the live catalog) on each call. No catalog, or none
 * with journeys: no event moves anything, but a wait's timer still ends
 * its run `exited` (machine.ts: its journey is no longer in the catalog),
 * since nothing would move it on later.
 */
export function createJourneyStepper(current: () => CompiledCatalog | undefined, options: FireOptions = {}): JourneyStepper {
  return {
    bound: (event) => {
      const catalog = current();
      // A wait's timer may also end a run of a journey the catalog no longer has: its `exited` count.
      return (catalog ? journeyBound(catalog) : 0) + (journeyTimerOf(event) !== undefined ? 1 : 0);
    },
    step: (runs, change) => {
      const catalog = current();
      if (catalog) return reactJourneys(catalog, runs, change, options);
      const event = change.event;
      const none = () => false;
      const advance = advanceJourneys(runs, [], { event, at: eventTime(event), profileKey: change.profileKey, eventName: undefined, entered: none, holds: none });
      return { runs: advance.runs, outbox: [], counts: advance.counts };
    },
  };
}
