/**
 * Compiling the catalog's `journeys` (schema.ts `journeySchema`) for
 * compile.ts: the entry compiled as a trigger's `on` is (compile.ts
 * `causeOf`), step ids checked, CEL compiled through the catalog's one rule
 * compiler, durations in ms,
 * step jumps resolved to indexes. Jumps (`next`, a branch's `then`/`else`,
 * a wait's `onTimeout`) go forward only: a run can never loop, and one event
 * runs each step of it at most once.
 */
import { semanticName } from '../semantic-events.ts';
import { DURATION_PATTERN } from './patterns.ts';
import { JOURNEY_TIMER_EVENT, SEND_TIMER_EVENT } from '../journeys/timer.ts';
import type { CompiledJourney, CompiledJourneyEntry, CompiledJourneyStep, CompiledRule, TriggerCause } from './compiled.ts';
import type { JourneyDocument } from './schema.ts';
import { didYouMean } from './suggest.ts';

const DURATION_UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;

/** `30s` → 30 000; `2d` → 172 800 000. Throws on a malformed duration (the schema refuses those first). */
export function durationToMs(duration: string): number {
  const m = DURATION_PATTERN.exec(duration);
  if (!m) throw new Error(`invalid duration ${duration}`);
  return Number(m[1]) * DURATION_UNIT_MS[m[2] as keyof typeof DURATION_UNIT_MS];
}

/**
 * The most items one event can add to its profile's transaction through the
 * catalog's journeys (journeys/react.ts `journeyBound`); a catalog over it is
 * refused, so an event's write always fits DynamoDB's 100 items.
 */
export const MAX_JOURNEY_ITEMS_PER_EVENT = 60;

/**
 * The most items one event can add through `journey`: the run entered or
 * ended and each step reached (report counters), an outbox entry per act
 * step and one timer.
 */
export function journeyItemsPerEvent(journey: Pick<CompiledJourney, 'steps'>): number {
  const acts = journey.steps.filter((s) => s.kind === 'act').length;
  const waits = journey.steps.some((s) => s.kind === 'wait') ? 1 : 0;
  return 2 + journey.steps.length + acts + waits;
}

/** What compile.ts lends: its problem list, its rule compiler and the ids the catalog declares. */
export interface JourneyCompileTools {
  readonly problem: (path: string, message: string, hint?: string) => void;
  /** Compile a bool CEL rule at `path` (its problems reported), undefined when it does not compile. */
  readonly rule: (source: string, path: string) => CompiledRule | undefined;
  /** A trigger's `on` at `path` (its references checked, as a trigger's are), undefined when it names none. */
  readonly cause: (on: JourneyDocument['entry'], path: string) => TriggerCause | undefined;
}

const TIMER_NAMES = new Map([JOURNEY_TIMER_EVENT, SEND_TIMER_EVENT].map((name) => [semanticName(name), name]));

/** The compiled journeys; a problem anywhere is reported through `tools` (the caller refuses the catalog). */
export function compileJourneys(docs: readonly JourneyDocument[], tools: JourneyCompileTools): CompiledJourney[] {
  const seen = new Set<string>();
  const journeys = docs.map((doc, i): CompiledJourney => {
    const at = `journeys[${i}]`;
    if (seen.has(doc.id)) tools.problem(`${at}.id`, `duplicate journey id "${doc.id}"`);
    seen.add(doc.id);
    const eventName = (name: string, path: string): string => {
      const semantic = semanticName(name);
      const timer = TIMER_NAMES.get(semantic);
      if (timer !== undefined) tools.problem(path, `"${timer}" is the name of Kairos's own timer events`);
      return semantic;
    };

    const cause = tools.cause(doc.entry, `${at}.entry`);
    if (cause?.kind === 'event') eventName(cause.event, `${at}.entry.event`);
    const entryWhen = doc.entry.when === undefined ? undefined : tools.rule(doc.entry.when, `${at}.entry.when`);
    const entry: CompiledJourneyEntry = { on: cause ?? { kind: 'event', event: '' }, ...(entryWhen ? { when: entryWhen } : {}) };

    const stepIndex = new Map<string, number>();
    doc.steps.forEach((step, j) => {
      if (stepIndex.has(step.id)) tools.problem(`${at}.steps[${j}].id`, `duplicate step id "${step.id}"`);
      else stepIndex.set(step.id, j);
    });
    /** A jump from step `from` to the step `id`: its index, which must come after `from`. */
    const jump = (id: string | undefined, from: number, path: string): number => {
      if (id === undefined) return from + 1;
      const to = stepIndex.get(id);
      if (to === undefined) {
        tools.problem(path, `unknown step "${id}"`, didYouMean(id, stepIndex.keys()));
        return from + 1;
      }
      if (to <= from) tools.problem(path, `step "${id}" is not after this one (jumps go forward only)`);
      return to;
    };

    const steps: CompiledJourneyStep[] = doc.steps.map((step, j) => {
      const path = `${at}.steps[${j}]`;
      const next = jump(step.next, j, `${path}.next`);
      if (step.act) {
        return { kind: 'act', id: step.id, channel: step.act.channel, ...(step.act.placement ? { placement: step.act.placement } : {}), next };
      }
      if (step.branch) {
        const when = tools.rule(step.branch.when, `${path}.branch.when`) as CompiledRule;
        return { kind: 'branch', id: step.id, when, then: jump(step.branch.then, j, `${path}.branch.then`), else: jump(step.branch.else, j, `${path}.branch.else`) };
      }
      if (step.wait !== undefined) {
        const wait = step.wait;
        if (typeof wait === 'string') return { kind: 'wait', id: step.id, forMs: durationToMs(wait), next, timeout: next };
        if ('for' in wait) return { kind: 'wait', id: step.id, forMs: durationToMs(wait.for), next, timeout: next };
        const when = wait.when === undefined ? undefined : tools.rule(wait.when, `${path}.wait.when`);
        return {
          kind: 'wait',
          id: step.id,
          forMs: durationToMs(wait.timeout),
          until: { event: eventName(wait.event, `${path}.wait.event`), ...(when ? { when } : {}) },
          next,
          timeout: jump(wait.onTimeout, j, `${path}.wait.onTimeout`),
        };
      }
      return { kind: 'exit', id: step.id };
    });

    const exitWhen = doc.exit?.when === undefined ? undefined : tools.rule(doc.exit.when, `${at}.exit.when`);
    const exit =
      doc.exit === undefined
        ? undefined
        : { ...(doc.exit.event !== undefined ? { event: eventName(doc.exit.event, `${at}.exit.event`) } : {}), ...(exitWhen ? { when: exitWhen } : {}) };
    return {
      id: doc.id,
      ...(doc.name ? { name: doc.name } : {}),
      entry,
      reentry: doc.reentry === 'once' ? { kind: 'once' } : { kind: 'after', afterMs: durationToMs(doc.reentry.after) },
      ...(exit ? { exit } : {}),
      steps,
      stepIndex,
    };
  });
  const items = journeys.reduce((sum, journey) => sum + journeyItemsPerEvent(journey), 0);
  if (items > MAX_JOURNEY_ITEMS_PER_EVENT) {
    tools.problem('journeys', `the journeys can add ${items} items to one event's transaction (a count per step reached, an emission per act, a timer), more than ${MAX_JOURNEY_ITEMS_PER_EVENT}: fewer or shorter journeys`);
  }
  return journeys;
}
