/**
 * Journeys: the catalog's `journeys` (shape, references, forward-only jumps,
 * each refusal with its line and column) and the state machine
 * (shared/domain/journeys/machine.ts) step by step: entry, act, wait, the
 * timer and a stale one, a wait for an event and its timeout, branch, exit
 * condition, exit step, re-entry; an act in quiet hours, its send decided
 * when its timer is due, or not at all when the run exited meanwhile.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CompiledCatalog, CompiledJourney, CompiledRule } from '#domain/catalog/compiled.ts';
import { createRuleVariables, evaluateRule } from '#domain/catalog/rules.ts';
import { caused } from '#domain/triggers/react.ts';
import {
  advanceJourneys,
  EXIT_REASONS,
  exitFailedTimerRun,
  journeyEffectId,
  journeyRunsView,
  MAX_EXIT_REASON_LENGTH,
  runEntryOf,
  type JourneyInput,
  type JourneyRuns,
} from '#domain/journeys/machine.ts';
import { journeyTimerEvent, journeyTimerOf, journeyTimerMessageId, INTERNAL_SOURCE_ID, timerEventOfDetail } from '#domain/journeys/timer.ts';
import { createJourneyStepper } from '#domain/journeys/react.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import type { PlanOptions } from '#domain/profile/plan.ts';
import { parseProfileState, serializeProfileState, type ProfileState } from '#domain/profile/state.ts';
import { storedEvent } from '../support/stream.ts';
import { deliver, MemoryStore } from './reactions-support.ts';
import { semanticName } from '#domain/semantic-events.ts';
import { emptyProfileView, type ProfileView } from '#domain/profile/view.ts';
import type { StoredEvent } from '#domain/stored-event.ts';

const DAY = 86_400_000;
const T0 = Date.parse('2026-11-30T10:00:00Z');

const BASE = [
  'tags: [promo, service]',
  'segments:',
  '  - id: churn-high',
  '    rule: has(profile.traits.risk) && profile.traits.risk == "high"',
  'actions:',
  '  - id: retain-email',
  '    name: Retention email',
  '    content: { email: { templateId: t1, subject: We miss you } }',
  '  - id: retain-push',
  '    name: Retention push',
  '    content: { push: { title: Come back, body: 10% off, deepLink: "app://shop" } }',
].join('\n');

const RETENTION = [
  'journeys:',
  '  - id: retention',
  '    entry: { entered: churn-high }',
  '    reentry: { after: 30d }',
  '    exit: { event: Order Completed }',
  '    steps:',
  '      - id: email',
  '        act: { channel: email }',
  '      - id: wait',
  '        wait: 2d',
  '      - id: no-order',
  '        branch: { when: profile.stats.orders == 0.0, then: push, else: done }',
  '      - id: push',
  '        act: { channel: push }',
  '      - id: done',
  '        exit: true',
].join('\n');

function compile(text: string): CompiledCatalog {
  const result = loadCatalog(text, 'yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.problems, null, 2));
  return result.catalog;
}

function refused(text: string) {
  const result = loadCatalog(text, 'yaml');
  if (result.ok) throw new Error('expected the catalog to be refused');
  return result.problems.map((p) => ({ path: p.path, message: p.message, line: p.line, column: p.column }));
}

let sequence = 0;
function track(name: string, at: number, properties: Record<string, unknown> = {}): StoredEvent {
  const messageId = `m${++sequence}`;
  const timestamp = new Date(at).toISOString();
  return {
    pk: `key_1#${messageId}`,
    profileKey: 'u#luis',
    sortKey: `${timestamp}#${messageId}`,
    sourceId: 'key_1',
    messageId,
    type: 'track',
    userId: 'luis',
    event: name,
    properties,
    timestamp,
    receivedAt: timestamp,
    expiresAt: Math.floor(at / 1000) + 86_400,
  };
}

const view = (segments: string[], extra: Partial<ProfileView> = {}): ProfileView => ({ ...emptyProfileView(), segments, ...extra });

/** The input of one event: `before`/`after` views for the entry, CEL on `after`. */
function input(event: StoredEvent, before: ProfileView, after: ProfileView): JourneyInput {
  const eventName = event.type === 'track' && event.event ? semanticName(event.event) : undefined;
  const at = Date.parse(event.timestamp);
  return {
    event,
    at,
    profileKey: event.profileKey,
    eventName,
    entered: (journey: CompiledJourney) =>
      caused(journey.entry.on, { event, before, after }) && (journey.entry.when === undefined || holdsOn(after, at)(journey.entry.when)),
    holds: holdsOn(after, at),
  };
}
const holdsOn = (profile: ProfileView, at: number) => (rule: CompiledRule) => evaluateRule(rule, createRuleVariables({ profile, now: new Date(at) }));

function timerFor(runs: JourneyRuns, journey: string, firedAt: number): StoredEvent {
  const run = runs[journey]!;
  return journeyTimerEvent({ journey, run: run.run, enteredAt: runEntryOf(run), step: run.step!, profileKey: 'u#luis', dueAt: run.waitingUntil! }, firedAt, 1);
}

describe('catalog journeys', () => {
  it('compile: steps by index, durations in ms, names semantic, jumps resolved', () => {
    const catalog = compile(`${BASE}\n${RETENTION}`);
    const [journey] = catalog.journeys;
    expect(journey).toMatchObject({
      id: 'retention',
      entry: { on: { kind: 'entered', segment: 'churn-high' } },
      reentry: { kind: 'after', afterMs: 30 * DAY },
      exit: { event: 'order completed' },
    });
    expect(journey!.steps.map((s) => s.kind)).toEqual(['act', 'wait', 'branch', 'act', 'exit']);
    expect(journey!.steps[1]).toMatchObject({ forMs: 2 * DAY, next: 2, timeout: 2 });
    expect(journey!.steps[2]).toMatchObject({ then: 3, else: 4 });
    expect(journey!.stepIndex.get('push')).toBe(3);
  });

  it('a wait for an event, seconds, and the entry forms', () => {
    const catalog = compile(
      `${BASE}\nmodels:\n  - { id: churnRisk, kind: logistic, intercept: 0, threshold: 0.7, features: [{ name: o, expression: profile.stats.orders, weight: 1 }] }\n` +
        [
          'journeys:',
          '  - id: a',
          '    entry: { event: Cart_Abandoned, when: profile.stats.orders >= 0.0 }',
          '    steps:',
          '      - { id: w, wait: { event: Order Completed, timeout: 30s, onTimeout: nudge } }',
          '      - { id: thanks, act: { channel: email }, next: end }',
          '      - { id: nudge, act: { channel: push } }',
          '      - { id: end, exit: true }',
          '  - { id: b, entry: { score: { model: churnRisk } }, steps: [{ id: s, act: { channel: email } }] }',
          '  - { id: c, entry: { persona: "*" }, steps: [{ id: s, wait: { for: 1h } }] }',
          '  - { id: d, entry: { left: churn-high }, exit: { when: "true" }, steps: [{ id: s, exit: true }] }',
        ].join('\n'),
    );
    const [a, b, c, d] = catalog.journeys;
    expect(a!.entry.on).toEqual({ kind: 'event', event: 'Cart_Abandoned' });
    expect(a!.entry.when?.source).toBe('profile.stats.orders >= 0.0');
    expect(a!.steps[0]).toMatchObject({ kind: 'wait', forMs: 30_000, until: { event: 'order completed' }, next: 1, timeout: 2 });
    expect(a!.steps[1]).toMatchObject({ next: 3 });
    expect(b!.entry.on).toEqual({ kind: 'score', model: 'churnRisk', direction: 'above', threshold: 0.7 });
    expect(c!.entry.on).toEqual({ kind: 'persona', persona: '*' });
    expect(c!.steps[0]).toMatchObject({ forMs: 3_600_000 });
    expect(d!.entry.on).toEqual({ kind: 'left', segment: 'churn-high' });
  });

  const located = (text: string) => {
    const problems = refused(text);
    const lines = text.split('\n');
    return {
      problems,
      at: (path: string) => problems.find((p) => p.path === path),
      lineOf: (snippet: string) => lines.findIndex((l) => l.includes(snippet)) + 1,
    };
  };

  it('refuses a shape it cannot read, each with its path, line and column', () => {
    const text = [
      BASE,
      'journeys:',
      '  - id: j',
      '    entry: { entered: churn-high }',
      '    steps:',
      '      - { id: four, wait: 3x }',
      '      - { id: five, act: { channel: email }, exit: true }',
      '      - { id: six, exit: true, next: four }',
      '  - id: k',
      '    entry: { persona: p2, event: x }',
      '    steps: []',
    ].join('\n');
    const { problems, at, lineOf } = located(text);
    expect(at('journeys[0].steps[0].wait')).toMatchObject({ line: lineOf('id: four') });
    expect(at('journeys[0].steps[1]')).toMatchObject({ message: expect.stringMatching(/exactly one of act, wait, branch or exit \(this one has act, exit\)/), line: lineOf('id: five') });
    expect(at('journeys[0].steps[2].next')?.message).toMatch(/an exit step has no "next"/);
    expect(at('journeys[1].entry')).toMatchObject({ message: expect.stringMatching(/exactly one of "event", "entered", "left", "persona", "score"/), line: lineOf('persona: p2') });
    expect(at('journeys[1].steps')).toMatchObject({ line: lineOf('steps: []') });
    expect(problems.filter((p) => !(Number(p.line) > 0)).map((p) => p.path)).toEqual([]);
  });

  it('refuses references and jumps that cannot run, each with its path, line and column', () => {
    const text = [
      BASE,
      'journeys:',
      '  - id: j',
      '    entry: { entered: churn-hihg }',
      '    exit: { event: journey_timer }',
      '    steps:',
      '      - { id: one, act: { channel: email }, next: one }',
      '      - { id: two, branch: { when: profile.stats.ordrs > 1.0, then: nowhere } }',
      '      - { id: two, wait: { event: Journey Timer, timeout: 1d } }',
      '  - { id: j, entry: { score: { model: churnRisk } }, steps: [{ id: s, exit: true }] }',
    ].join('\n');
    const { problems, at, lineOf } = located(text);
    expect(at('journeys[0].entry.entered')).toMatchObject({ message: expect.stringContaining('unknown segment "churn-hihg"'), line: lineOf('churn-hihg') });
    expect(at('journeys[0].exit.event')?.message).toMatch(/Kairos's own timer events/);
    expect(at('journeys[0].steps[0].next')).toMatchObject({ message: expect.stringContaining('jumps go forward only'), line: lineOf('id: one') });
    expect(at('journeys[0].steps[1].branch.when')).toMatchObject({ message: expect.stringMatching(/CEL error/), line: lineOf('ordrs') });
    expect(at('journeys[0].steps[1].branch.then')).toMatchObject({ message: expect.stringContaining('unknown step "nowhere"'), line: lineOf('nowhere') });
    expect(at('journeys[0].steps[2].id')?.message).toBe('duplicate step id "two"');
    expect(at('journeys[0].steps[2].wait.event')?.message).toMatch(/Kairos's own timer events/);
    expect(at('journeys[1].id')?.message).toBe('duplicate journey id "j"');
    expect(at('journeys[1].entry.score.model')?.message).toMatch(/unknown model "churnRisk"/);
    expect(problems.filter((p) => !(Number(p.line) > 0)).map((p) => p.path)).toEqual([]);
  });
});

describe('the journey state machine', () => {
  const catalog = compile(`${BASE}\n${RETENTION}`);
  const journeys = catalog.journeys;
  const out = view([]);
  const inSegment = view(['churn-high']);

  it('enters on the transition, acts, and waits with a timer', () => {
    const event = track('Identify Risk', T0);
    const { runs, effects, counts } = advanceJourneys({}, journeys, input(event, out, inSegment));
    expect(runs.retention).toEqual({ run: 1, step: 'wait', enteredAt: T0, stepAt: T0, waitingUntil: T0 + 2 * DAY, named: true });
    const ids = { journey: 'retention', run: 1, enteredAt: T0, profileKey: 'u#luis' };
    expect(effects).toEqual([
      { kind: 'act', id: journeyEffectId({ ...ids, kind: 'act', step: 'email' }), ...ids, step: 'email', channel: 'email', at: T0 },
      { kind: 'timer', id: journeyEffectId({ ...ids, kind: 'timer', step: 'wait' }), ...ids, step: 'wait', dueAt: T0 + 2 * DAY },
    ]);
    const day = Math.floor(T0 / DAY);
    expect(counts).toEqual([
      { journey: 'retention', day, milestone: { kind: 'entered' } },
      { journey: 'retention', day, milestone: { kind: 'step', step: 'email' } },
      { journey: 'retention', day, milestone: { kind: 'step', step: 'wait' } },
    ]);
    // Staying in the segment is no transition: nothing more.
    const again = advanceJourneys(runs, journeys, input(track('Page', T0 + 1000), inSegment, inSegment));
    expect(again).toEqual({ runs, effects: [], counts: [] });
  });

  it('the timer moves on (branch → push → completed); a second firing or an older timer is stale', () => {
    const entered = advanceJourneys({}, journeys, input(track('x', T0), out, inSegment)).runs;
    const timer = timerFor(entered, 'retention', T0 + 2 * DAY + 5);
    const { runs, effects, counts } = advanceJourneys(entered, journeys, input(timer, inSegment, inSegment));
    expect(runs.retention).toMatchObject({ run: 1, ended: { how: 'completed', at: T0 + 2 * DAY } });
    expect(runs.retention?.step).toBeUndefined();
    expect(effects.map((e) => [e.kind, e.step])).toEqual([['act', 'push']]);
    expect(counts.map((c) => c.milestone)).toEqual([
      { kind: 'step', step: 'no-order' },
      { kind: 'step', step: 'push' },
      { kind: 'step', step: 'done' },
      { kind: 'completed' },
    ]);
    expect(advanceJourneys(runs, journeys, input(timer, inSegment, inSegment))).toEqual({ runs, effects: [], counts: [] });
  });

  it('a branch that fails goes to else; a timer of another step or run changes nothing', () => {
    const entered = advanceJourneys({}, journeys, input(track('x', T0), out, inSegment)).runs;
    const stale = journeyTimerEvent({ journey: 'retention', run: 0, enteredAt: runEntryOf({ enteredAt: T0 }), step: 'wait', profileKey: 'u#luis', dueAt: T0 }, T0, 1);
    expect(advanceJourneys(entered, journeys, input(stale, inSegment, inSegment)).runs).toBe(entered);
    const otherStep = journeyTimerEvent({ journey: 'retention', run: 1, enteredAt: runEntryOf({ enteredAt: T0 }), step: 'email', profileKey: 'u#luis', dueAt: T0 }, T0, 1);
    expect(advanceJourneys(entered, journeys, input(otherStep, inSegment, inSegment)).effects).toEqual([]);
    const ordered = view(['churn-high'], { stats: { ...emptyProfileView().stats, orders: 1 } });
    const { effects, counts } = advanceJourneys(entered, journeys, input(timerFor(entered, 'retention', T0 + 2 * DAY), ordered, ordered));
    expect(effects).toEqual([]);
    expect(counts.map((c) => c.milestone)).toEqual([{ kind: 'step', step: 'no-order' }, { kind: 'step', step: 'done' }, { kind: 'completed' }]);
  });

  it('exits on the exit event, and re-enters only after the re-entry time', () => {
    const entered = advanceJourneys({}, journeys, input(track('x', T0), out, inSegment)).runs;
    const order = track('Order Completed', T0 + DAY);
    const exited = advanceJourneys(entered, journeys, input(order, inSegment, out));
    expect(exited.runs.retention).toMatchObject({ run: 1, ended: { how: 'exited', at: T0 + DAY, reason: EXIT_REASONS.exitMet() } });
    expect(exited.counts.map((c) => c.milestone)).toEqual([{ kind: 'exited' }]);
    // Its timer comes later: stale.
    expect(advanceJourneys(exited.runs, journeys, input(timerFor(entered, 'retention', T0 + 2 * DAY), out, out)).effects).toEqual([]);
    // Entering again within 30 days: not allowed; after: run 2.
    expect(advanceJourneys(exited.runs, journeys, input(track('x', T0 + 10 * DAY), out, inSegment)).effects).toEqual([]);
    const second = advanceJourneys(exited.runs, journeys, input(track('x', T0 + 31 * DAY), out, inSegment));
    expect(second.runs.retention).toMatchObject({ run: 2, step: 'wait' });
    expect(second.effects.map((e) => e.id)).toEqual([
      journeyEffectId({ kind: 'act', journey: 'retention', run: 2, enteredAt: T0 + 31 * DAY, step: 'email', profileKey: 'u#luis' }),
      journeyEffectId({ kind: 'timer', journey: 'retention', run: 2, enteredAt: T0 + 31 * DAY, step: 'wait', profileKey: 'u#luis' }),
    ]);
  });

  it('once: never entered again', () => {
    const once = compile(`${BASE}\njourneys:\n  - { id: j, entry: { event: Complaint Opened }, steps: [{ id: call, act: { channel: call_center } }] }`).journeys;
    const first = advanceJourneys({}, once, input(track('Complaint Opened', T0), out, out));
    expect(first.runs.j).toMatchObject({ run: 1, ended: { how: 'completed' } });
    expect(first.counts.map((c) => c.milestone.kind)).toEqual(['entered', 'step', 'completed']);
    expect(advanceJourneys(first.runs, once, input(track('Complaint Opened', T0 + 100 * DAY), out, out)).effects).toEqual([]);
  });

  it('a wait for an event: the event moves on, the timeout goes elsewhere', () => {
    const wait = compile(
      `${BASE}\njourneys:\n  - id: j\n    entry: { event: Cart Abandoned }\n    steps:\n` +
        '      - { id: w, wait: { event: Order Completed, when: profile.stats.orders >= 1.0, timeout: 1h, onTimeout: nudge } }\n' +
        '      - { id: thanks, act: { channel: email }, next: end }\n' +
        '      - { id: nudge, act: { channel: push } }\n' +
        '      - { id: end, exit: true }',
    ).journeys;
    const runs = advanceJourneys({}, wait, input(track('Cart Abandoned', T0), out, out)).runs;
    expect(runs.j).toMatchObject({ step: 'w', waitingUntil: T0 + 3_600_000 });
    // The awaited event whose condition does not hold: still waiting.
    expect(advanceJourneys(runs, wait, input(track('order_completed', T0 + 1), out, out)).runs).toBe(runs);
    const ordered = view([], { stats: { ...emptyProfileView().stats, orders: 1 } });
    expect(advanceJourneys(runs, wait, input(track('order_completed', T0 + 1), out, ordered)).effects.map((e) => e.step)).toEqual(['thanks']);
    expect(advanceJourneys(runs, wait, input(timerFor(runs, 'j', T0 + 3_600_000), out, out)).effects.map((e) => e.step)).toEqual(['nudge']);
  });
});

describe('the catalog changed under a waiting run', () => {
  const out = view([]);
  const inSegment = view(['churn-high']);
  const entered = advanceJourneys({}, compile(`${BASE}\n${RETENTION}`).journeys, input(track('x', T0), out, inSegment)).runs;

  it('the step it waits at is now an act, a branch or an exit: the run ends exited (counted), never stuck; the customer may enter again', () => {
    for (const changed of ['act: { channel: push }', 'branch: { when: "true", then: push }', 'exit: true']) {
      const journeys = compile(`${BASE}\n${RETENTION.replace('wait: 2d', changed)}`).journeys;
      // Its timer fires: the run cannot go on at a step that waits for nothing.
      const timer = timerFor(entered, 'retention', T0 + 2 * DAY);
      const moved = advanceJourneys(entered, journeys, input(timer, inSegment, inSegment));
      expect({ changed, run: moved.runs.retention }).toMatchObject({ changed, run: { run: 1, ended: { how: 'exited', at: T0 + 2 * DAY, reason: EXIT_REASONS.stepGone('wait') } } });
      expect(moved.runs.retention?.step).toBeUndefined();
      expect(moved.effects).toEqual([]);
      expect(moved.counts.map((c) => c.milestone)).toEqual([{ kind: 'exited' }]);
      // Any other event ends it the same way.
      expect(advanceJourneys(entered, journeys, input(track('Page', T0 + DAY), inSegment, inSegment)).runs.retention).toMatchObject({ ended: { how: 'exited' } });
      // After the re-entry time, the customer enters the journey as it is now.
      const again = advanceJourneys(moved.runs, journeys, input(track('x', T0 + 40 * DAY), out, inSegment));
      expect({ changed, run: again.runs.retention }).toMatchObject({ changed, run: { run: 2 } });
    }
  });
});

describe('journeyRunsView', () => {
  it('lists the runs by journey id with ISO times, an ended run without a step, an exit with its reason', () => {
    const iso = (at: number) => new Date(at).toISOString();
    expect(
      journeyRunsView({
        z: { run: 2, enteredAt: T0, stepAt: T0 + 1, ended: { how: 'exited', at: T0 + 1, reason: EXIT_REASONS.exitMet() } },
        a: { run: 1, step: 'wait', enteredAt: T0, stepAt: T0, waitingUntil: T0 + DAY },
        c: { run: 1, enteredAt: T0, stepAt: T0 + 1, ended: { how: 'completed', at: T0 + 1 } },
      }),
    ).toEqual([
      { journey: 'a', run: 1, step: 'wait', enteredAt: iso(T0), stepAt: iso(T0), waitingUntil: iso(T0 + DAY) },
      { journey: 'c', run: 1, enteredAt: iso(T0), stepAt: iso(T0 + 1), ended: { how: 'completed', at: iso(T0 + 1) } },
      { journey: 'z', run: 2, enteredAt: iso(T0), stepAt: iso(T0 + 1), ended: { how: 'exited', at: iso(T0 + 1), reason: "the journey's exit condition was met" } },
    ]);
  });
});

describe('exitFailedTimerRun', () => {
  const journeys = compile(`${BASE}\n${RETENTION}`).journeys;
  const inSegment = view(['churn-high']);
  const entered = advanceJourneys({}, journeys, input(track('x', T0), view([]), inSegment)).runs;

  it("ends exited the run its timer names, still waiting at that step, with the reason and one exited count on the timer's day", () => {
    const timer = timerFor(entered, 'retention', T0 + 2 * DAY);
    const exit = exitFailedTimerRun(entered, timer, T0 + 2 * DAY, 'too large');
    expect(exit?.runs.retention).toEqual({
      run: 1,
      enteredAt: T0,
      stepAt: T0 + 2 * DAY,
      named: true,
      ended: { how: 'exited', at: T0 + 2 * DAY, reason: `its wait's timer fired but the steps after "wait" could not be applied: too large` },
    });
    expect(exit?.count).toEqual({ journey: 'retention', day: Math.floor((T0 + 2 * DAY) / DAY), milestone: { kind: 'exited' } });
    // A long cause is cut to fit the run.
    expect(exitFailedTimerRun(entered, timer, T0 + 2 * DAY, 'x'.repeat(5_000))?.runs.retention?.ended?.reason).toHaveLength(MAX_EXIT_REASON_LENGTH);
  });

  it('ends nothing for a stale timer (another run, another step, a run ended) or an event that is no timer', () => {
    const stale = journeyTimerEvent({ journey: 'retention', run: 2, enteredAt: runEntryOf({ enteredAt: T0 }), step: 'wait', profileKey: 'u#luis', dueAt: T0 }, T0, 1);
    const otherStep = journeyTimerEvent({ journey: 'retention', run: 1, enteredAt: runEntryOf({ enteredAt: T0 }), step: 'email', profileKey: 'u#luis', dueAt: T0 }, T0, 1);
    const ended = advanceJourneys(entered, journeys, input(track('Order Completed', T0 + DAY), inSegment, inSegment)).runs;
    expect(exitFailedTimerRun(entered, stale, T0, 'x')).toBeUndefined();
    expect(exitFailedTimerRun(entered, otherStep, T0, 'x')).toBeUndefined();
    expect(exitFailedTimerRun(ended, timerFor(entered, 'retention', T0 + 2 * DAY), T0, 'x')).toBeUndefined();
    expect(exitFailedTimerRun(entered, track('Page', T0), T0, 'x')).toBeUndefined();
  });
});

describe('timer events', () => {
  it('are Kairos events with a stable message id within ingest\'s 100 characters; a caller\'s look-alike is no timer', () => {
    const timer = { journey: 'retention', run: 3, step: 'wait', profileKey: `u#${'x'.repeat(250)}`, dueAt: T0 };
    const event = journeyTimerEvent(timer, T0 + 5, 123);
    expect(event).toMatchObject({ sourceId: INTERNAL_SOURCE_ID, type: 'track', userId: 'x'.repeat(250), timestamp: new Date(T0).toISOString(), expiresAt: 123 });
    expect(event.messageId).toBe(journeyTimerMessageId(timer));
    expect(event.messageId.length).toBeLessThanOrEqual(100);
    expect(journeyTimerEvent(timer, T0 + 99, 1).pk).toBe(event.pk);
    expect(journeyTimerMessageId({ ...timer, run: 4 })).not.toBe(event.messageId);
    expect(journeyTimerOf(event)).toEqual({ journey: 'retention', run: 3, step: 'wait' });
    expect(journeyTimerOf({ ...event, sourceId: 'key_0123' })).toBeUndefined();
    expect(journeyTimerEvent({ ...timer, profileKey: 'a#anon' }, T0, 1)).toMatchObject({ anonymousId: 'anon' });
  });
});

describe("a journey act in quiet hours: its send's timer, decided when due (journeys/react.ts)", () => {
  /** The catalog with the journey's steps `steps` (its first step, `email`, an email act unless changed). */
  const withSteps = (...steps: readonly string[]) =>
    compile(
      [
        BASE,
        'policies:',
        '  consentRequired: []',
        "  quietHours: [{ id: night-email, channels: [email], from: '22:00', to: '08:00', timezone: UTC }]",
        'journeys:',
        '  - id: retention',
        '    entry: { entered: churn-high }',
        '    exit: { event: Order Completed }',
        '    steps:',
        ...steps.map((step) => `      - ${step}`),
      ].join('\n'),
    );
  const catalog = withSteps('{ id: email, act: { channel: email } }', '{ id: wait, wait: 3d }');
  const NIGHT = Date.parse('2026-11-30T23:00:00Z');
  const END = Date.parse('2026-12-01T08:00:00Z');
  const optionsAt = (now: number, live: CompiledCatalog = catalog): PlanOptions => ({
    settings: { halfLifeDays: 14 },
    enricher: createCatalogEnricher(() => live),
    journeys: createJourneyStepper(() => live),
    now,
  });
  const at = (ms: number) => new Date(ms).toISOString();
  /** At 23:00 the customer's risk turns high: the journey's email act falls in quiet hours. */
  const entered = (): MemoryStore => {
    const store = deliver([[storedEvent({ type: 'identify', userId: 'luis', messageId: 'risk', timestamp: at(NIGHT), traits: { risk: 'high' } })]], [], () => optionsAt(NIGHT));
    expect(store.outbox.map((e) => [e.detailType, e.status, e.detail.kind])).toEqual([
      ['Kairos Send Timer', 'deferred', 'send-timer'],
      ['Kairos Journey Timer', 'deferred', 'journey-timer'],
    ]);
    expect(store.outbox[0]).toMatchObject({
      sendAt: END,
      detail: {
        send: journeyEffectId({ kind: 'act', journey: 'retention', run: 1, enteredAt: NIGHT, step: 'email', profileKey: 'u#luis' }),
        origin: { kind: 'journey', journey: 'retention', run: 1, enteredAt: at(NIGHT), step: 'email' },
      },
    });
    return store;
  };
  const fire = (store: MemoryStore, live: CompiledCatalog = catalog): MemoryStore =>
    deliver([[timerEventOfDetail(store.outbox[0]!.detail, END, 1)!]], [], () => optionsAt(END, live), store);
  /** A copy of `from` (its profile and markers) whose profile state is `state`. */
  const withState = (from: MemoryStore, state: ProfileState): MemoryStore => {
    const copy = new MemoryStore();
    copy.profiles.set('u#luis', { version: from.profiles.get('u#luis')!.version, state: serializeProfileState(state) });
    for (const pk of from.markers) copy.markers.add(pk);
    return copy;
  };
  const emailContacts = (store: MemoryStore) => parseProfileState(store.profiles.get('u#luis')!.state).channels.email?.contacts ?? [];

  it('the customer still in the run: sent at the end of quiet hours under the act\'s id, one contact; the run stays where it was', () => {
    const store = entered();
    const runs = parseProfileState(store.profiles.get('u#luis')!.state).journeys;
    fire(store);
    const sent = store.outbox.filter((e) => e.detailType === 'Kairos Journey Action');
    expect(sent.map((e) => [e.id, e.status, e.sendAt, e.detail.actionId, e.detail.step])).toEqual([[store.outbox[0]!.detail.send, 'now', END, 'retain-email', 'email']]);
    expect(emailContacts(store)).toEqual([END]);
    expect(parseProfileState(store.profiles.get('u#luis')!.state).journeys).toEqual(runs);
  });

  it("the step changed in the catalog meanwhile: decided on the step's channel as it is when due; a step that is gone, or no longer an act, sends nothing", () => {
    // The operator moved the step to push during the night: the send goes out as a push, under the act's id.
    const store = entered();
    fire(store, withSteps('{ id: email, act: { channel: push } }', '{ id: wait, wait: 3d }'));
    const sent = store.outbox.filter((e) => e.detailType === 'Kairos Journey Action');
    expect(sent.map((e) => [e.id, e.status, e.detail.channel, e.detail.actionId, e.detail.step])).toEqual([[store.outbox[0]!.detail.send, 'now', 'push', 'retain-push', 'email']]);
    expect(emailContacts(store)).toEqual([]);
    expect(parseProfileState(store.profiles.get('u#luis')!.state).channels.push?.contacts).toEqual([END]);
    // The step removed (another in its place), or turned into a wait: nothing is decided.
    for (const live of [withSteps('{ id: email-v2, act: { channel: email } }', '{ id: wait, wait: 3d }'), withSteps('{ id: email, wait: 1h }', '{ id: wait, wait: 3d }')]) {
      const other = entered();
      const before = other.outbox.length;
      fire(other, live);
      expect(other.outbox.length).toBe(before);
      expect(emailContacts(other)).toEqual([]);
    }
  });

  it("the journey removed from the catalog while the customer waits (or no catalog live at all): the wait's timer ends the run exited (counted once, with its reason), not lost; a journey put back finds it ended", () => {
    const noJourneys = compile(BASE);
    const other = compile(`${BASE}\njourneys:\n  - { id: other, entry: { event: Cart Abandoned }, steps: [{ id: w, wait: 1h }] }`);
    for (const live of [noJourneys, other, undefined]) {
      const store = entered();
      const timer = store.outbox.find((e) => e.detailType === 'Kairos Journey Timer')!;
      const due = Date.parse(String(timer.detail.dueAt));
      const optionsOf = (): PlanOptions =>
        live ? optionsAt(due, live) : { settings: { halfLifeDays: 14 }, enricher: createCatalogEnricher(() => undefined), journeys: createJourneyStepper(() => undefined), now: due };
      const fireTimer = () => deliver([[timerEventOfDetail(timer.detail, due, 1)!]], [], optionsOf, store);
      fireTimer();
      const runs = parseProfileState(store.profiles.get('u#luis')!.state).journeys;
      expect(runs.retention).toMatchObject({ run: 1, ended: { how: 'exited', at: due, reason: EXIT_REASONS.journeyGone('retention') } });
      expect(runs.retention?.step).toBeUndefined();
      const exited = [...store.counters].filter(([k]) => k.startsWith('retention ') && k.endsWith(' exited'));
      expect(exited.map(([, n]) => n)).toEqual([1]);
      // Fired again: stored once, and the run is ended anyway.
      fireTimer();
      expect([...store.counters].filter(([k]) => k.startsWith('retention ') && k.endsWith(' exited')).map(([, n]) => n)).toEqual([1]);
      // The journey put back (a rollback): the run is not stuck at a wait whose timer has fired.
      deliver([[storedEvent({ type: 'track', userId: 'luis', messageId: `later-${live?.journeys.length}`, event: 'Page Viewed', timestamp: at(due + 1000) })]], [], () => optionsAt(due + 1000), store);
      expect(parseProfileState(store.profiles.get('u#luis')!.state).journeys.retention?.step).toBeUndefined();
    }
  });

  it('the run exited meanwhile (an order at 02:00): the timer is stale and sends nothing', () => {
    const store = entered();
    deliver([[storedEvent({ type: 'track', userId: 'luis', messageId: 'order', event: 'Order Completed', timestamp: at(NIGHT + 3 * 3_600_000) })]], [], () => optionsAt(NIGHT + 3 * 3_600_000), store);
    expect(parseProfileState(store.profiles.get('u#luis')!.state).journeys.retention?.ended?.how).toBe('exited');
    const before = store.outbox.length;
    fire(store);
    expect(store.outbox.length).toBe(before);
    expect(store.outbox.filter((e) => e.detailType === 'Kairos Journey Action')).toEqual([]);
    expect(emailContacts(store)).toEqual([]);
  });

  it("erased at 00:00, back at 01:00 in run 1 again: the erased customer's timer, still fired, sends nothing; the returning customer's send is decided once, under a new id", () => {
    const store = entered();
    const erasedTimer = store.outbox[0]!.detail;
    store.erase('u#luis', NIGHT + 3_600_000, [...store.markers]);
    expect(store.outbox).toEqual([]);
    const BACK = NIGHT + 2 * 3_600_000;
    deliver([[storedEvent({ type: 'identify', userId: 'luis', messageId: 'risk-again', timestamp: at(BACK), traits: { risk: 'high' } })]], [], () => optionsAt(BACK), store);
    const timer = store.outbox.find((e) => e.detailType === 'Kairos Send Timer')!;
    expect(timer).toMatchObject({ sendAt: END, detail: { origin: { kind: 'journey', journey: 'retention', run: 1, enteredAt: at(BACK), step: 'email' } } });
    expect(timer.detail.send).not.toBe(erasedTimer.send);
    expect(timer.id).not.toBe(erasedTimer.emissionId);
    // The erased customer's timer comes due (at 08:00, after the erasure): the same journey, run number and step, another run.
    const entries = store.outbox.length;
    deliver([[timerEventOfDetail(erasedTimer, END, 1)!]], [], () => optionsAt(END), store);
    expect(store.outbox.length).toBe(entries);
    expect(emailContacts(store)).toEqual([]);
    // The returning customer's own: decided once, whatever the firings.
    const own = timerEventOfDetail(timer.detail, END, 1)!;
    deliver([[own], [own]], [], () => optionsAt(END), store);
    const sent = store.outbox.filter((e) => e.detailType === 'Kairos Journey Action');
    expect(sent.map((e) => [e.id, e.status, e.detail.run, e.detail.enteredAt])).toEqual([[timer.detail.send, 'now', 1, at(BACK)]]);
    expect(emailContacts(store)).toEqual([END]);
  });

  it('a send timer written before runs were named by their entry time: decided for the run it was written for, never for a run entered since', () => {
    const store = entered();
    const detail = store.outbox[0]!.detail as { origin: Record<string, unknown> } & Record<string, unknown>;
    const { enteredAt: _named, ...origin } = detail.origin;
    const legacy = { ...detail, origin };
    // The run as the deploy found it (no `named`): the timer is its own.
    const state = parseProfileState(store.profiles.get('u#luis')!.state);
    const { named: _since, ...unnamed } = state.journeys.retention!;
    const old = withState(store, { ...state, journeys: { retention: unnamed } });
    deliver([[timerEventOfDetail(legacy, END, 1)!]], [], () => optionsAt(END), old);
    expect(old.outbox.filter((e) => e.detailType === 'Kairos Journey Action').map((e) => e.detail.enteredAt)).toEqual([undefined]);
    // A run entered since (named): the legacy timer is not its.
    const since = withState(store, state);
    deliver([[timerEventOfDetail(legacy, END, 1)!]], [], () => optionsAt(END), since);
    expect(since.outbox.filter((e) => e.detailType === 'Kairos Journey Action')).toEqual([]);
  });
});

describe('a customer who comes back after an erasure: new runs, new ids, and the erased runs\' timers change nothing', () => {
  const catalog = compile(`${BASE}\n${RETENTION}`);
  const journeys = catalog.journeys;
  const out = view([]);
  const inSegment = view(['churn-high']);
  // The erasure drops everything that happened at or before it: the customer's first event after it is later.
  const ERASED = T0 + DAY;
  const BACK = ERASED + 60_000;

  it("the returning customer's run 1 has other act and timer ids than the erased customer's run 1; the same event gives the same ids again", () => {
    const first = advanceJourneys({}, journeys, input(track('x', T0), out, inSegment));
    const back = advanceJourneys({}, journeys, input(track('x', BACK), out, inSegment));
    expect(back.runs.retention).toMatchObject({ run: 1, step: 'wait' });
    expect(back.effects.map((e) => [e.kind, e.run, e.step])).toEqual(first.effects.map((e) => [e.kind, e.run, e.step]));
    for (const effect of back.effects) expect(first.effects.map((e) => e.id)).not.toContain(effect.id);
    // A redelivery or a replay of the same event: the same runs and ids.
    const replayed = track('x', BACK);
    expect(advanceJourneys({}, journeys, input(replayed, out, inSegment))).toEqual(advanceJourneys({}, journeys, input({ ...replayed }, out, inSegment)));
    expect(advanceJourneys({}, journeys, input(replayed, out, inSegment)).effects.map((e) => e.id)).toEqual(back.effects.map((e) => e.id));
  });

  it("the erased customer's wait timer, still fired, finds the returning customer's run 1 at the same step: it changes nothing", () => {
    const first = advanceJourneys({}, journeys, input(track('x', T0 + DAY - 1_000), out, inSegment)).runs;
    const back = advanceJourneys({}, journeys, input(track('x', BACK), out, inSegment)).runs;
    expect(back.retention).toMatchObject({ run: 1, step: 'wait' });
    // The erased run's timer is due after the erasure (its schedule escaped the cancellation): same journey, run number and step.
    const stale = timerFor(first, 'retention', first.retention!.waitingUntil!);
    expect(journeyTimerOf(stale)).toMatchObject({ journey: 'retention', run: 1, step: 'wait' });
    expect(advanceJourneys(back, journeys, input(stale, inSegment, inSegment))).toEqual({ runs: back, effects: [], counts: [] });
    // The returning customer's own timer moves the run on.
    expect(advanceJourneys(back, journeys, input(timerFor(back, 'retention', back.retention!.waitingUntil!), inSegment, inSegment)).effects.map((e) => e.step)).toEqual(['push']);
  });
});

describe('timers written before runs were named by their entry time (pending at the deploy)', () => {
  const catalog = compile(`${BASE}\n${RETENTION}`);
  const journeys = catalog.journeys;
  const inSegment = view(['churn-high']);
  /** A run entered before the deploy, as its stored state reads: no `named`. */
  const before: JourneyRuns = { retention: { run: 1, step: 'wait', enteredAt: T0, stepAt: T0, waitingUntil: T0 + 2 * DAY } };
  const legacy = journeyTimerEvent({ journey: 'retention', run: 1, step: 'wait', profileKey: 'u#luis', dueAt: T0 + 2 * DAY }, T0 + 2 * DAY, 1);

  it('keep the message id they had (journey, run, step and customer), so a second firing is still one event', () => {
    const written = `jt-${createHash('sha256').update(JSON.stringify(['retention', 1, 'wait', 'u#luis'])).digest('hex').slice(0, 40)}`;
    expect(legacy.messageId).toBe(written);
    expect(journeyTimerOf(legacy)).toEqual({ journey: 'retention', run: 1, step: 'wait' });
    const named = journeyTimerEvent({ journey: 'retention', run: 1, enteredAt: runEntryOf({ enteredAt: T0 }), step: 'wait', profileKey: 'u#luis', dueAt: T0 + 2 * DAY }, T0 + 2 * DAY, 1);
    expect(named.messageId).not.toBe(written);
  });

  it('move on the run they were written for (entered before the deploy), and never a run entered since', () => {
    const moved = advanceJourneys(before, journeys, input(legacy, inSegment, inSegment));
    expect(moved.runs.retention).toMatchObject({ run: 1, ended: { how: 'completed' } });
    expect(moved.effects.map((e) => e.step)).toEqual(['push']);
    // The push act of that run is named by its entry time like any other.
    expect(moved.effects[0]!.id).toBe(journeyEffectId({ kind: 'act', journey: 'retention', run: 1, enteredAt: T0, step: 'push', profileKey: 'u#luis' }));
    const since: JourneyRuns = { retention: { ...before.retention!, named: true } };
    expect(advanceJourneys(since, journeys, input(legacy, inSegment, inSegment))).toEqual({ runs: since, effects: [], counts: [] });
  });
});
