/**
 * Off-policy evaluation of a catalog on decision records
 * (shared/domain/evaluation/replay.ts, evaluate.ts): the profile rebuilt
 * from a record's features, the replay through the one decide (its
 * deterministic choice, and the bandit's exact position-1 probabilities),
 * the join of decisions with their outcomes by the attribution rules, the
 * map and reduce steps (the same estimates whatever the partitioning), the
 * support refusal, and the candidate's true rate inside the 95% intervals on
 * a synthetic population logged by a uniform-random policy.
 */
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { decide } from '#domain/decide/decide.ts';
import { customerTag, decisionKey, encodeDecisionId, sealDecisionId } from '#domain/decide/decision-id.ts';
import type { LearningStats } from '#domain/decide/types.ts';
import { seededRandom, type Random } from '#domain/decide/random.ts';
import { ArmProbabilityCache } from '#domain/learning/policy.ts';
import { DECISION_RECORD_KEY, DECISION_RECORD_MESSAGE, type DecisionLogRecord } from '#domain/evaluation/decision-record.ts';
import { NO_ACTION, armKey, contextOfFeatures, pathKeys, profileOfFeatures, replayDecision } from '#domain/evaluation/replay.ts';
import {
  decisionRecordsOfText,
  decisionRef,
  evaluatePartition,
  indexOutcomes,
  reduceEvaluation,
  type OutcomeEvent,
  type PartitionSums,
} from '#domain/evaluation/evaluate.ts';

const KEY = decisionKey('evaluation-unit-test-decision-key-0123456789');
const AT = new Date('2026-11-20T10:00:00Z');

function catalog(input: CatalogInput): CompiledCatalog {
  const result = loadCatalog(input, 'object', { version: 7 });
  if (!result.ok) throw new Error(`catalog: ${JSON.stringify(result.problems)}`);
  return result.catalog;
}

const banner = (id: string, extra: Record<string, unknown> = {}) => ({ id, name: id, content: { web: { title: `${id} title` } }, ...extra });

const PLANS = ['student', 'family', 'premium'] as const;
type Plan = (typeof PLANS)[number];
const ACTIONS = ['a0', 'a1', 'a2'] as const;

/** The candidate: one segment per plan (read from `profile.traits.plan`), one action targeted at each; no learning. */
const CHOICE: Record<Plan, string> = { student: 'a1', family: 'a0', premium: 'a2' };
const candidate = catalog({
  learning: { enabled: false },
  segments: PLANS.map((plan) => ({ id: plan, name: plan, rule: `has(profile.traits.plan) && profile.traits.plan == "${plan}"` })),
  actions: ACTIONS.map((id) => banner(id, { targeting: { segments: PLANS.filter((p) => CHOICE[p] === id) } })),
});

let nonce = 0;
/**
 * A record as decide logs it: served `served` at position 1 with `probability`, `eligible` with theirs; sealed id.
 * Its customer (here its pseudonym and its id alike) is `c-<nonce>`, whom the id is bound to.
 */
function record(plan: Plan | undefined, served: string | undefined, eligible: Record<string, number>, at: Date = AT, sealed = true): DecisionLogRecord {
  const n = `n${nonce++}`;
  const actions = served === undefined ? [] : [{ actionId: served, propensity: 0.5, probability: eligible[served] ?? 1 }];
  const plain = encodeDecisionId({ catalogVersion: '3', channel: 'web', issuedAt: at, nonce: n, fallback: false, degraded: false, actions, holdouts: [], context: '-', customer: customerTag(`c-${n}`) });
  const decisionId = sealed ? sealDecisionId(plain, KEY) : plain;
  return {
    decisionId,
    at: at.toISOString(),
    catalogVersion: '3',
    channel: 'web',
    customer: `c-${n}`,
    learningContext: '-',
    fallback: false,
    degraded: false,
    eligible: Object.entries(eligible).map(([actionId, probability]) => ({ actionId, score: 0.5, probability })),
    served: served === undefined ? [] : [{ actionId: served, score: 0.5, probability: eligible[served] ?? 1 }],
    ...(plan !== undefined ? { features: { segments: [], scores: {}, fields: { 'traits.plan': JSON.stringify(plan) }, context: {} } } : {}),
  };
}

/** A click on `r`'s decision, reported by its customer. */
const click = (r: DecisionLogRecord, extra: Record<string, unknown> = {}, minutes = 1): OutcomeEvent => ({
  event: 'Promotion Clicked',
  anonymousId: r.customer,
  properties: { decision_id: r.decisionId, ...extra },
  timestamp: new Date(Date.parse(r.at) + minutes * 60_000).toISOString(),
});

const WEEK_MS = 7 * 86_400_000;

describe('the profile of a record’s features', () => {
  it('sets each logged field at its path, keeps the logged audience and keys experiments by the pseudonym', () => {
    const profile = profileOfFeatures({
      customer: 'pseudo-1',
      features: {
        segments: ['vip'],
        persona: 'saver',
        scores: { churnRisk: 0.4 },
        fields: { 'profile.stats.orders': '3', 'traits.tier': '"VIP"', 'consent.email': '{"granted":true,"updatedAt":"2026-01-01T00:00:00Z"}', 'traits.note': 'not json' },
        context: {},
      },
    });
    expect(profile.stats.orders).toBe(3);
    expect(profile.stats.visitsTotal).toBe(0);
    expect(profile.traits).toEqual({ tier: 'VIP', note: 'not json' });
    expect(profile.consent.email?.granted).toBe(true);
    expect(profile).toMatchObject({ segments: ['vip'], persona: 'saver', scores: { churnRisk: 0.4 }, experimentKey: 'pseudo-1' });
  });

  it('reads the record’s paths: identifiers joined by dots, other keys as bracketed JSON strings', () => {
    expect(pathKeys('traits.tier')).toEqual(['traits', 'tier']);
    expect(pathKeys('stats.eventCounts["Cart Abandoned"].last7d')).toEqual(['stats', 'eventCounts', 'Cart Abandoned', 'last7d']);
    expect(pathKeys('profile.traits["a.b"]')).toEqual(['traits', 'a.b']);
    expect(pathKeys('["odd \\"key\\""]')).toEqual(['odd "key"']);
    for (const bad of ['', 'traits..tier', 'traits tier', 'traits["open', 'traits[1]']) expect(pathKeys(bad)).toBeUndefined();
    const profile = profileOfFeatures({ customer: 'p', features: { segments: [], scores: {}, fields: { 'stats.eventCounts["Cart Abandoned"]': '{"today":1,"last7d":2,"last30d":2,"total":5}' }, context: {} } });
    expect(profile.stats.eventCounts['Cart Abandoned']?.total).toBe(5);
  });

  it('the request context’s values are logged as JSON text', () => {
    expect(contextOfFeatures({ segments: [], scores: {}, fields: {}, context: { page: '"home"', items: '3', flag: 'true' } })).toEqual({ page: 'home', items: 3, flag: true });
  });

  it('ignores a path that would reach an object’s prototype', () => {
    const profile = profileOfFeatures({ customer: 'p', features: { segments: [], scores: {}, fields: { '__proto__.polluted': 'true', 'traits.constructor': '1' }, context: {} } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(profile.traits).toEqual({});
  });
});

describe('replay through the one decide', () => {
  it('a deterministic candidate serves the action its own segments choose, with probability 1', () => {
    for (const plan of PLANS) expect(replayDecision(candidate, record(plan, 'a0', { a0: 1 })).probabilities).toEqual({ [CHOICE[plan]]: 1 });
  });

  it('nothing eligible: the candidate serves nothing', () => {
    const none = catalog({ learning: { enabled: false }, actions: [banner('only', { targeting: { segments: ['vip'] } })], segments: [{ id: 'vip', name: 'vip', rule: 'false' }] });
    expect(replayDecision(none, record('student', 'a0', { a0: 1 })).probabilities).toEqual({ [NO_ACTION]: 1 });
  });

  it('refuses a record without features', () => {
    expect(() => replayDecision(candidate, record(undefined, 'a0', { a0: 1 }))).toThrow(/no features/);
  });

  it('a bandit candidate: every arm’s exact position-1 probability, as decide reports it for the arm it draws', () => {
    const bandit = catalog({
      learning: { enabled: true, exploration: 0.3, floor: 0.05, contextBy: 'none' },
      actions: [banner('hero', { variants: [{ id: 'a', content: { web: { title: 'A' } } }, { id: 'b', content: { web: { title: 'B' } } }], value: 2 }), banner('side'), banner('tail')],
    });
    const counts: Record<string, [number, number]> = { 'hero\u0000a': [500, 40], 'hero\u0000b': [500, 90], side: [400, 60], tail: [300, 30] };
    const learning: LearningStats = {
      generation: 1,
      get: (actionId, variant) => {
        const c = counts[armKey(actionId, variant)];
        return c ? { impressions: c[0], clicks: c[1], conversions: 0 } : undefined;
      },
    };
    const r = record('student', 'side', { side: 0.2 });
    const { probabilities } = replayDecision(bandit, r, { learning });
    expect(Object.keys(probabilities).sort()).toEqual(['hero\u0000a', 'hero\u0000b', 'side', 'tail']);
    expect(Object.values(probabilities).reduce((s, p) => s + p, 0)).toBeCloseTo(1, 9);
    // Decide itself, swept over its draw at limit 1: each arm it serves reports the probability the replay gives it.
    const policies = new ArmProbabilityCache();
    const seen = new Set<string>();
    for (let i = 0; i < 400; i++) {
      const u = (i + 0.5) / 400;
      const d = decide(bandit, profileOfFeatures(r), { channel: 'web', limit: 1, context: {}, explain: false }, AT, { learning, policies, random: () => u });
      const a = d.actions[0];
      if (!a) throw new Error('nothing served');
      seen.add(armKey(a.actionId, a.variant));
      expect(a.probability).toBeCloseTo(probabilities[armKey(a.actionId, a.variant)] ?? -1, 6);
    }
    expect([...seen].sort()).toEqual(Object.keys(probabilities).sort());
  });
});

describe('the join of decisions with their outcomes', () => {
  const r = record('student', 'a1', { a0: 1 / 3, a1: 1 / 3, a2: 1 / 3 });
  const window = candidate.learning.conversionWindowMs;

  it('a click on the served action within the window counts, by the decision it names', () => {
    const index = indexOutcomes([click(r)], KEY, window);
    expect(Object.values(index)).toEqual([['click a1']]);
    const part = evaluatePartition([r], { candidate, outcomes: index, decisionKey: KEY });
    expect(part.sums).toMatchObject({ decisions: 1, evaluated: 1, reward: 1 });
    // A version 3 record names the decision by its reference, not the sealed id: the same join, no key needed to open it.
    const ref = Object.keys(index)[0] as string;
    expect(ref).toBe(decisionRef(r.decisionId, KEY));
    const byRef = { ...r, decisionId: ref, decisionRef: ref };
    expect(evaluatePartition([byRef], { candidate, outcomes: index }).sums).toEqual(part.sums);
  });

  it('an outcome that does not count is no reward: another action, past the window, an id sealed with another key, not an outcome event, another customer', () => {
    const other = decisionKey('another-service-decision-key-0123456789abcdef');
    const forged = { ...click(r), properties: { decision_id: sealDecisionId(encodeDecisionId({ catalogVersion: '3', channel: 'web', issuedAt: AT, nonce: 'x', fallback: false, degraded: false, actions: [{ actionId: 'a1', propensity: 1, probability: 1 }], holdouts: [], customer: customerTag(r.customer) }), other) } };
    const { anonymousId: _own, ...anonymous } = click(r);
    const events = [
      click(r, { action_id: 'a0' }),
      click(r, {}, WEEK_MS / 60_000 + 1),
      forged,
      { ...click(r), event: 'Page Viewed' },
      { ...click(r), anonymousId: 'sybil-0' },
      { ...anonymous, userId: 'mallory' },
      anonymous,
    ];
    const index = indexOutcomes(events, KEY, window);
    expect(index).toEqual({});
    expect(evaluatePartition([r], { candidate, outcomes: index, decisionKey: KEY }).sums).toMatchObject({ evaluated: 1, reward: 0 });
  });

  it("a decision issued at or before its customer's erasure is no reward for the click of the customer who came back; one issued after is", () => {
    const issued = Date.parse(r.at);
    // Erased a second after the decision (the click, after the return, carries the same id): joined to nothing.
    const erasedAfter = indexOutcomes([click(r)], KEY, window, () => issued + 1_000);
    expect(erasedAfter).toEqual({});
    expect(evaluatePartition([r], { candidate, outcomes: erasedAfter, decisionKey: KEY }).sums).toMatchObject({ evaluated: 1, reward: 0 });
    // In the decision's own second: still the erased customer's. Erased before the decision was made: a reward.
    expect(indexOutcomes([click(r)], KEY, window, () => issued)).toEqual({});
    expect(Object.values(indexOutcomes([click(r)], KEY, window, () => issued - 1_000))).toEqual([['click a1']]);
  });

  it('the reward is the candidate’s `learning.reward`: a conversion catalog is not rewarded by a click', () => {
    const converting = catalog({ ...candidate.document, learning: { enabled: false, reward: 'conversion' } } as CatalogInput);
    const events = [click(r)];
    expect(evaluatePartition([r], { candidate: converting, outcomes: indexOutcomes(events, KEY, window), decisionKey: KEY }).sums.reward).toBe(0);
    const order: OutcomeEvent = { event: 'Order Completed', anonymousId: r.customer, properties: { decision_id: r.decisionId }, timestamp: new Date(Date.parse(r.at) + 3_600_000).toISOString() };
    expect(evaluatePartition([r], { candidate: converting, outcomes: indexOutcomes([order], KEY, window), decisionKey: KEY }).sums.reward).toBe(1);
  });

  it('the logging policy’s chance is the served arm’s position-1 chance among the eligible, not its chance among the first limit', () => {
    const r2 = { ...r, eligible: [{ actionId: 'a1', score: 1, probability: 0.25 }, { actionId: 'a0', score: 0.5, probability: 0.75 }], served: [{ actionId: 'a1', score: 1, probability: 0.9 }] };
    // The candidate serves a1 for a student: w = 1 / 0.25.
    expect(evaluatePartition([r2], { candidate, outcomes: {}, decisionKey: KEY }).sums.weight).toBe(4);
  });

  it('leaves out, and counts, records outside the range, without features, degraded, and ids that do not open', () => {
    const records = [
      r,
      record(undefined, 'a0', { a0: 1 }),
      { ...record('student', 'a0', { a0: 1 }), degraded: true },
      record('student', 'a0', { a0: 1 }, new Date('2026-11-22T00:00:00Z')),
      { ...record('student', 'a0', { a0: 1 }), decisionId: 'd2.not-ours' },
    ];
    const part = evaluatePartition(records, { candidate, outcomes: {}, decisionKey: KEY, to: Date.parse('2026-11-21T00:00:00Z') }, 2);
    expect(part).toMatchObject({ records: 5, malformed: 3, outsideRange: 1, notSampled: 1, degraded: 1 });
    expect(part.sums.decisions).toBe(1);
  });
});

describe('the decision log’s lines', () => {
  it('reads the log line as delivered and a bare record, version 3 (as decide logs it), 2 and 1; counts what is none of them', () => {
    const r = record('student', 'a0', { a0: 1, a1: 0 });
    const arm = (c: { actionId: string; score: number; probability: number }) => [c.actionId, c.score, c.probability];
    // Version 3 names the decision by its reference, whose second is the decision's time (r.at is a whole second).
    const v3ref = `${Date.parse(r.at) / 1000}.abcdefgh`;
    const v2 = {
      v: 2,
      id: r.decisionId,
      t: Date.parse(r.at),
      cv: r.catalogVersion,
      ch: r.channel,
      c: r.customer,
      e: r.eligible.map(arm),
      s: r.served.map(arm),
      f: { sg: [], sc: {}, fl: r.features?.fields, cx: {} },
    };
    const text = [
      JSON.stringify({ level: 'INFO', message: DECISION_RECORD_MESSAGE, [DECISION_RECORD_KEY]: v2 }),
      JSON.stringify(v2),
      JSON.stringify({ level: 'INFO', message: DECISION_RECORD_MESSAGE, [DECISION_RECORD_KEY]: r }),
      JSON.stringify(r),
      JSON.stringify({ ...v2, v: 3, id: v3ref, t: undefined }),
      JSON.stringify({ ...v2, v: 4 }),
      '{"message":"other"}',
      'not json',
      '',
    ].join('\n');
    const { records, malformed } = decisionRecordsOfText(text);
    expect(records).toEqual([r, r, r, r, { ...r, decisionId: v3ref, decisionRef: v3ref }]);
    expect(malformed).toBe(3);
  });
});

describe('support', () => {
  it('refuses, naming what the logging policy never explored, when it always served a0 and the candidate would not', () => {
    const records = PLANS.flatMap((plan) => Array.from({ length: 10 }, () => record(plan, 'a0', { a0: 1, a1: 0, a2: 0 })));
    const evaluation = reduceEvaluation([evaluatePartition(records, { candidate, outcomes: {}, decisionKey: KEY })], { reward: 'click' });
    expect(evaluation.ok).toBe(false);
    if (evaluation.ok) return;
    expect(evaluation.reason).toMatch(/^no support: the logging policy never served what the candidate would choose on 20 of 30 replayed decisions \(33\.3% evaluable, at least 90\.0% needed\)/);
    expect(evaluation.reason).toContain('a1 on 10');
    expect(evaluation.reason).toContain('a2 on 10');
    expect(evaluation.replayed).toBe(30);
  });

  it('a lower bar evaluates the share it can', () => {
    const records = PLANS.flatMap((plan) => Array.from({ length: 10 }, () => record(plan, 'a0', { a0: 1, a1: 0, a2: 0 })));
    const evaluation = reduceEvaluation([evaluatePartition(records, { candidate, outcomes: {}, decisionKey: KEY })], { reward: 'click', minSupport: 0.3 });
    expect(evaluation).toMatchObject({ ok: true, estimate: { decisions: 30, evaluated: 10 } });
  });

  it('no decision to replay is a refusal with its reason, not an estimate', () => {
    const evaluation = reduceEvaluation([evaluatePartition([record(undefined, 'a0', { a0: 1 })], { candidate, outcomes: {}, decisionKey: KEY })], { reward: 'click' });
    expect(evaluation).toMatchObject({ ok: false, reason: expect.stringMatching(/^no decision to replay \(1 record\(s\) read; 1 without features/) });
  });
});

describe('a synthetic population logged by a uniform-random policy', () => {
  const SHARES: Record<Plan, number> = { student: 0.5, family: 0.3, premium: 0.2 };
  const RATES: Record<Plan, Record<string, number>> = {
    student: { a0: 0.02, a1: 0.25, a2: 0.05 },
    family: { a0: 0.2, a1: 0.03, a2: 0.08 },
    premium: { a0: 0.05, a1: 0.3, a2: 0.12 },
  };
  const TRUE_RATE = PLANS.reduce((sum, p) => sum + SHARES[p] * (RATES[p][CHOICE[p]] as number), 0);
  const LOGGED_RATE = PLANS.reduce((sum, p) => sum + (SHARES[p] * ACTIONS.reduce((s, a) => s + (RATES[p][a] as number), 0)) / ACTIONS.length, 0);

  function traffic(n: number, random: Random, sealed = true): { records: DecisionLogRecord[]; events: OutcomeEvent[] } {
    const records: DecisionLogRecord[] = [];
    const events: OutcomeEvent[] = [];
    for (let i = 0; i < n; i++) {
      let u = random();
      const plan = PLANS.find((p) => (u -= SHARES[p]) < 0) ?? 'premium';
      const served = ACTIONS[Math.floor(random() * ACTIONS.length)] as string;
      const r = record(plan, served, { a0: 1 / 3, a1: 1 / 3, a2: 1 / 3 }, new Date(AT.getTime() + i * 1000), sealed);
      records.push(r);
      if (random() < (RATES[plan][served] as number)) events.push(click(r));
    }
    return { records, events };
  }

  const { records, events } = traffic(6_000, seededRandom(11));
  const outcomes = indexOutcomes(events, KEY, candidate.learning.conversionWindowMs);
  const whole = reduceEvaluation([evaluatePartition(records, { candidate, outcomes, decisionKey: KEY })], { reward: 'click' });

  it('IPS, SNIPS and DR hold the candidate’s true rate in their 95% intervals, far from the logging policy’s', () => {
    expect(whole.ok).toBe(true);
    if (!whole.ok) return;
    expect(Math.abs(TRUE_RATE - LOGGED_RATE)).toBeGreaterThan(0.05);
    for (const name of ['ips', 'snips', 'dr'] as const) {
      const { low, high } = whole.estimate[name];
      expect({ name, low, high, holdsTruth: (low ?? Infinity) <= TRUE_RATE && TRUE_RATE <= (high ?? -Infinity) }).toMatchObject({ holdsTruth: true });
    }
    expect(Math.abs(whole.estimate.loggedRate - LOGGED_RATE)).toBeLessThan(0.02);
    expect(whole.estimate).toMatchObject({ decisions: 6_000, evaluated: 6_000, evaluatedShare: 1 });
    expect(whole.estimate.effectiveSampleSize).toBeCloseTo(2_000, -2);
  });

  it('the map over partitions and the reduce give the same estimates as one partition', () => {
    const parts: PartitionSums[] = [];
    for (let start = 0; start < records.length; start += 1_700) parts.push(evaluatePartition(records.slice(start, start + 1_700), { candidate, outcomes, decisionKey: KEY }));
    // Through JSON, as a map step's result travels to the reduce.
    const split = reduceEvaluation(parts.reverse().map((p) => JSON.parse(JSON.stringify(p)) as PartitionSums), { reward: 'click' });
    if (!split.ok || !whole.ok) throw new Error('expected estimates');
    for (const name of ['ips', 'snips', 'dr'] as const) {
      expect(split.estimate[name].estimate).toBeCloseTo(whole.estimate[name].estimate, 12);
      expect(split.estimate[name].high).toBeCloseTo(whole.estimate[name].high ?? Number.NaN, 12);
    }
    expect(split.estimate.effectiveSampleSize).toBeCloseTo(whole.estimate.effectiveSampleSize, 9);
  });

  it('through the candidate catalog and decide, the intervals hold the truth in at least 90 of 100 seeded repetitions', () => {
    const covered = { ips: 0, snips: 0, dr: 0 };
    for (let seed = 1; seed <= 100; seed++) {
      // Plain decision ids (no sealing): the same join, a hundred times faster.
      const run = traffic(1_500, seededRandom(5_000 + seed), false);
      const evaluation = reduceEvaluation([evaluatePartition(run.records, { candidate, outcomes: indexOutcomes(run.events, undefined, candidate.learning.conversionWindowMs) })], { reward: 'click' });
      if (!evaluation.ok) throw new Error(evaluation.reason);
      for (const name of ['ips', 'snips', 'dr'] as const) if ((evaluation.estimate[name].low ?? Infinity) <= TRUE_RATE && TRUE_RATE <= (evaluation.estimate[name].high ?? -Infinity)) covered[name]++;
    }
    expect(covered.ips).toBeGreaterThanOrEqual(90);
    expect(covered.snips).toBeGreaterThanOrEqual(90);
    expect(covered.dr).toBeGreaterThanOrEqual(90);
    // 150,000 replayed decisions: a generous deadline on a loaded machine (not a timing assertion).
  }, 300_000);
});
