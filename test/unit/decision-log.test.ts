/**
 * The decision record (shared/domain/decide/decision-log.ts): built from a
 * decision and what `decideForLog` exposes of it — the same answer as
 * `decide`, every eligible candidate with its chance of position 1 (summing
 * to at most 1; the bandit's arm probabilities, or 1 for the first of a
 * deterministic ranking), what was served with its probabilities, degraded
 * and fallback decisions included; features for a sample of decision ids
 * that is deterministic; the customer as a stable keyed hash that is not
 * the customer's id; and the catalog's `decisionLog.sample` and `ruleFields`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '#domain/catalog/load.ts';
import { compileRule } from '#domain/catalog/rules.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { decide, decideForLog, emptyProfile, type DecideOptions } from '#domain/decide/decide.ts';
import { customerPseudonym, decisionRecord, isSampledDecision, pseudonymKey } from '#domain/decide/decision-log.ts';
import type { DecideRequest, LearningStats } from '#domain/decide/types.ts';
import { decisionReference, decodeDecisionId } from '#domain/decide/decision-id.ts';
import { DECISION_LOG_COLUMNS, DECISION_RECORD_KEY, DECISION_RECORD_VERSION, readDecisionRecord, significant4, type DecisionLogRecord, type LoggedDecisionRecord } from '#domain/evaluation/decision-record.ts';
import { NO_CONTEXT } from '#domain/learning/statistics.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { makeView } from './catalog-support.ts';

const NOW = new Date('2026-01-15T12:00:00Z');
const SECRET = 'kdk_unit_test_decision_secret_0123456789';
const KEY = pseudonymKey(SECRET);

function catalog(input: CatalogInput, version = 7): CompiledCatalog {
  const result = loadCatalog(input, 'object', { version });
  if (!result.ok) throw new Error(`catalog: ${JSON.stringify(result.problems)}`);
  return result.catalog;
}

const banner = (id: string, extra: Record<string, unknown> = {}) => ({ id, name: id, content: { web: { title: `${id} title` } }, ...extra });
const twoVariants = [
  { id: 'a', content: { web: { title: 'A' } } },
  { id: 'b', content: { web: { title: 'B' } } },
];

function stats(table: Record<string, [number, number]>): LearningStats {
  return {
    generation: 1,
    get: (actionId, variant, context) => {
      if (context !== NO_CONTEXT) return undefined;
      const entry = table[variant === undefined ? actionId : `${actionId}/${variant}`];
      return entry ? { impressions: entry[0], clicks: entry[1], conversions: 0 } : undefined;
    },
  };
}

const request = (extra: Partial<DecideRequest> = {}): DecideRequest => ({ userId: 'u-1', channel: 'web', limit: 1, context: {}, explain: false, ...extra });

/** The reference of a (plain) decision id, as evaluate opens it. */
function referenceOf(decisionId: string): string {
  const decoded = decodeDecisionId(decisionId);
  if (!decoded) throw new Error('the decision id does not decode');
  return decisionReference(decoded);
}

/** The record the decide function would log for this decision, as its logged JSON. */
function loggedOf(c: CompiledCatalog, profile: ProfileView, req: DecideRequest, options: DecideOptions = {}, decisionRef?: string): LoggedDecisionRecord {
  const { decision, log } = decideForLog(c, profile, req, NOW, options);
  return JSON.parse(JSON.stringify(decisionRecord({
    catalog: c,
    profile,
    context: req.context,
    decision,
    facts: log,
    decisionRef: decisionRef ?? referenceOf(decision.decisionId),
    customer: customerPseudonym(KEY, log.customerKey),
  }))) as LoggedDecisionRecord;
}

/** The record the decide function would log for this decision, as readers read it back. */
function recordOf(c: CompiledCatalog, profile: ProfileView, req: DecideRequest, options: DecideOptions = {}, decisionRef?: string): DecisionLogRecord {
  const record = readDecisionRecord(loggedOf(c, profile, req, options, decisionRef));
  if (!record) throw new Error('the logged record does not read back');
  return record;
}

const sum = (xs: readonly { probability: number }[]) => xs.reduce((s, x) => s + x.probability, 0);

const learningCatalog = () =>
  catalog({
    learning: { enabled: true, exploration: 0.3, floor: 0.05, contextBy: 'none' },
    actions: [banner('hero', { variants: twoVariants }), banner('promo', { value: 2 }), banner('news'), banner('never', { eligibility: 'false' })],
  });

describe('decideForLog', () => {
  it('answers exactly as decide does, with and without learning, for the same randomness', () => {
    const c = learningCatalog();
    const learning = stats({ 'hero/a': [100, 30], 'hero/b': [100, 10], promo: [100, 5], news: [50, 20] });
    for (let i = 0; i < 50; i++) {
      const options: DecideOptions = { nonce: `n${i}`, learning };
      for (const limit of [1, 3]) {
        expect(decideForLog(c, makeView(), request({ limit }), NOW, options).decision).toEqual(decide(c, makeView(), request({ limit }), NOW, options));
      }
    }
    const off = catalog({ learning: { enabled: false }, actions: [banner('x'), banner('y', { value: 3 })] });
    expect(decideForLog(off, makeView(), request({ limit: 2 }), NOW, { nonce: 'z' }).decision).toEqual(decide(off, makeView(), request({ limit: 2 }), NOW, { nonce: 'z' }));
  });

  it('the bandit: one entry per eligible arm with its chance of position 1, summing to 1; the served arm carries the answer\'s probability', () => {
    const c = learningCatalog();
    const learning = stats({ 'hero/a': [100, 30], 'hero/b': [100, 10], promo: [100, 5], news: [50, 20] });
    const served = new Map<string, number>();
    for (let i = 0; i < 40; i++) {
      const record = recordOf(c, makeView(), request(), { nonce: `n${i}`, learning });
      const arms = record.eligible.map((e) => (e.variant === undefined ? e.actionId : `${e.actionId}/${e.variant}`));
      expect(arms.sort()).toEqual(['hero/a', 'hero/b', 'news', 'promo']);
      // Each chance is logged to 4 significant digits: the sum is 1 within half a unit of the 4th digit of each.
      expect(Math.abs(sum(record.eligible) - 1)).toBeLessThanOrEqual(5e-4 + 1e-6 * record.eligible.length);
      for (const e of record.eligible) expect(e.probability).toBeGreaterThanOrEqual(0.05 - 1e-6); // the floor
      const first = record.served[0];
      expect(first).toBeDefined();
      const entry = record.eligible.find((e) => e.actionId === first?.actionId && e.variant === first.variant);
      expect(entry?.probability).toBeCloseTo(first?.probability ?? -1, 6);
      served.set(`${first?.actionId}/${first?.variant ?? ''}`, first?.probability ?? 0);
    }
    expect(served.size).toBeGreaterThan(1); // exploring: more than one arm was served first
  });

  it('a deterministic ranking: every eligible candidate best first, probability 1 for the first and 0 for the others', () => {
    const c = catalog({ learning: { enabled: false }, actions: [banner('x'), banner('y', { value: 3 }), banner('z', { value: 2 }), banner('no', { eligibility: 'false' })] });
    const record = recordOf(c, makeView(), request({ limit: 2 }), { nonce: 'd' });
    expect(record.eligible.map((e) => [e.actionId, e.probability])).toEqual([
      ['y', 1],
      ['z', 0],
      ['x', 0],
    ]);
    expect(record.eligible.map((e) => e.score)).toEqual([...record.eligible.map((e) => e.score)].sort((a, b) => b - a));
    expect(record.served.map((s) => [s.actionId, s.probability])).toEqual([
      ['y', 1],
      ['z', 1],
    ]);
    expect(record).toMatchObject({ catalogVersion: '7', channel: 'web', fallback: false, degraded: false, learningContext: NO_CONTEXT });
  });

  it('an experiment arm weighs its share of customers into the chance of position 1', () => {
    const c = catalog({
      learning: { enabled: false },
      actions: [banner('exp', { variants: twoVariants })],
      experiments: [{ id: 'copy', kind: 'variants', action: 'exp', holdout: 0.2, arms: [{ id: 'a', variant: 'a' }, { id: 'b', variant: 'b' }] }],
    });
    let assigned = 0;
    for (let i = 0; i < 20; i++) {
      const record = recordOf(c, makeView({ userId: `u-${i}` }), request({ userId: `u-${i}` }), { nonce: 'e' });
      if (record.eligible.length === 0) continue; // holdout
      assigned++;
      expect(record.eligible).toHaveLength(1);
      expect(record.eligible[0]?.probability).toBeCloseTo(0.4, 6);
      expect(record.served[0]?.probability).toBeCloseTo(0.4, 6);
    }
    expect(assigned).toBeGreaterThan(5);
  });

  it('fallback and degraded decisions are recorded: nothing eligible, the fallbacks served with probability 1', () => {
    const c = catalog({ learning: { enabled: false }, actions: [banner('gated', { eligibility: 'profile.traits.tier == "gold"' }), banner('safety', { fallback: [{ channel: 'web' }] })] });
    const fallback = recordOf(c, makeView(), request(), { nonce: 'f' });
    expect(fallback).toMatchObject({ fallback: true, degraded: false, eligible: [], served: [{ actionId: 'safety', probability: 1 }] });
    const degraded = recordOf(c, emptyProfile({ userId: 'u-1' }), request(), { nonce: 'g', degraded: true });
    expect(degraded).toMatchObject({ fallback: true, degraded: true, eligible: [], served: [{ actionId: 'safety', probability: 1 }] });
  });
});

describe('features: what the rules read, for a deterministic sample of decision ids', () => {
  const rules = catalog({
    learning: { enabled: false },
    decisionLog: { sample: 1 },
    models: [{ id: 'churnRisk', kind: 'logistic', intercept: 0, features: [{ name: 'o', expression: 'profile.stats.orders', weight: 0.1 }] }],
    segments: [{ id: 'gold', rule: 'profile.traits.tier == "gold"' }],
    personas: [{ id: 'fan', name: 'Fan', rule: 'likes("football")' }],
    actions: [
      banner('cart', { eligibility: 'eventCount("Cart Abandoned", "7d") > 0.0 && context.page == "/cart"' }),
      banner('vip', { eligibility: 'hasSegment("gold") && profile.traits["favourite colour"] == "red"' }),
    ],
  });

  it('the compiled catalog knows the profile fields its rules read, by path, helpers and shorthands included', () => {
    expect(rules.ruleFields.map((f) => f.path).sort()).toEqual(
      ['preferences.interests', 'stats.eventCounts["Cart Abandoned"]', 'stats.orders', 'traits.tier', 'traits["favourite colour"]'].sort(),
    );
    const reads = (source: string) => {
      const r = compileRule(source, 'x');
      if (!r.ok) throw new Error(r.error.message);
      return r.rule.reads?.fields;
    };
    expect(reads('visitsToday > 3.0 && preferredChannel == "push"')).toEqual([['stats', 'visitsToday'], ['preferences', 'preferredChannel'], ['engagement']]);
    expect(reads('profile.traits[context.key] == "x"')).toEqual([['traits']]);
    expect(reads('engagementRate("push") > 0.1 && interest("shoes") > 0.5')).toEqual([['engagement', 'push'], ['stats', 'categoryInterests', 'shoes']]);
    expect(reads('"gold" in profile.segments && profile.persona == "fan" && profile.scores.churnRisk > 0.5')).toEqual([]);
  });

  it('a sampled record keeps segments, persona, scores, the fields read (JSON text; absent fields left out) and the context', () => {
    const profile = makeView({
      traits: { tier: 'gold', 'favourite colour': 'red', email: 'luis@example.com' },
      preferences: { interests: ['football'] },
      stats: { orders: 3, eventCounts: { 'Cart Abandoned': { total: 2, today: 1, last7d: 2, last30d: 2 } } },
    });
    const req = request({ context: { page: '/cart', items: 2 } });
    const record = recordOf(rules, profile, req, { nonce: 's' });
    expect(record.features).toEqual({
      segments: ['gold'],
      persona: 'fan',
      scores: { churnRisk: expect.any(Number) as number },
      fields: {
        'traits.tier': '"gold"',
        'traits["favourite colour"]': '"red"',
        'preferences.interests': '["football"]',
        'stats.orders': '3',
        'stats.eventCounts["Cart Abandoned"]': JSON.stringify({ total: 2, today: 1, last7d: 2, last30d: 2 }),
      },
      context: { page: '"/cart"', items: '2' },
    });
    // Only what the rules read: no other trait.
    expect(JSON.stringify(record)).not.toContain('luis@example.com');
    const bare = recordOf(rules, makeView(), req, { nonce: 's' });
    expect(bare.features?.fields).not.toHaveProperty('traits.tier');
  });

  it('the sample is chosen by the decision reference: the same decision always, about the share asked, none at 0 and all at 1', () => {
    // References as the decide function makes them: the second of issue, then a nonce.
    const ids = Array.from({ length: 20_000 }, (_, i) => `${1795953600 + (i % 60)}.n${i.toString(36)}`);
    const share = ids.filter((id) => isSampledDecision(id, 0.1)).length / ids.length;
    expect(share).toBeGreaterThan(0.09);
    expect(share).toBeLessThan(0.11);
    for (const id of ids.slice(0, 500)) expect(isSampledDecision(id, 0.1)).toBe(isSampledDecision(id, 0.1));
    expect(ids.some((id) => isSampledDecision(id, 0))).toBe(false);
    expect(ids.every((id) => isSampledDecision(id, 1))).toBe(true);

    const tenth = catalog({ learning: { enabled: false }, actions: [banner('x', { eligibility: 'profile.traits.tier == "gold"' })] });
    expect(tenth.decisionLog.sample).toBe(0.1);
    const profile = makeView({ traits: { tier: 'gold' } });
    let sampled = 0;
    for (const id of ids.slice(0, 300)) {
      const first = recordOf(tenth, profile, request(), { nonce: 'x' }, id);
      const again = recordOf(tenth, profile, request(), { nonce: 'x' }, id);
      expect(again.features).toEqual(first.features);
      expect(first.features !== undefined).toBe(isSampledDecision(id, 0.1));
      if (first.features) sampled++;
    }
    expect(sampled).toBeGreaterThan(0);
    expect(sampled).toBeLessThan(300);
  });
});

describe('the pseudonymous customer', () => {
  it('is a stable keyed hash of the customer key: not the id, the same for the same customer, different across customers and keys', () => {
    const c = catalog({ learning: { enabled: false }, actions: [banner('x')] });
    const one = recordOf(c, makeView({ userId: 'luis-42' }), request({ userId: 'luis-42' }), { nonce: 'a' });
    const again = recordOf(c, makeView({ userId: 'luis-42' }), request({ userId: 'luis-42' }), { nonce: 'b' });
    const other = recordOf(c, makeView({ userId: 'ana-7' }), request({ userId: 'ana-7' }), { nonce: 'a' });
    expect(one.customer).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(one.customer).toBe(again.customer);
    expect(one.customer).not.toBe(other.customer);
    expect(JSON.stringify(one)).not.toContain('luis-42');
    expect(customerPseudonym(pseudonymKey(`${SECRET}-rotated`), 'luis-42')).not.toBe(one.customer);
    // The key the customer of a merged profile is known by: its experiment key (the first key it had).
    const merged = recordOf(c, makeView({ userId: 'luis-42', experimentKey: 'anon-1' }), request({ userId: 'luis-42' }), { nonce: 'c' });
    expect(merged.customer).toBe(customerPseudonym(KEY, 'anon-1'));
    expect(() => pseudonymKey('short')).toThrow(/at least 32/);
  });
});

describe('the catalog field decisionLog.sample', () => {
  it('defaults to 0.1 and is refused outside 0..1 or with an unknown field, with its path', () => {
    expect(catalog({ actions: [banner('x')] }).decisionLog).toEqual({ sample: 0.1 });
    expect(catalog({ decisionLog: { sample: 0 }, actions: [banner('x')] }).decisionLog).toEqual({ sample: 0 });
    for (const decisionLog of [{ sample: 1.5 }, { sample: -0.1 }, { sample: '0.5' }, { sample: 0.5, extra: true }]) {
      const result = loadCatalog({ decisionLog, actions: [banner('x')] } as unknown as CatalogInput, 'object');
      expect(result.ok ? [] : result.problems.map((p) => p.path)).toEqual([expect.stringMatching(/^decisionLog/)]);
    }
  });

  it('the Glue columns name every field of the logged record', () => {
    const c = catalog({
      decisionLog: { sample: 1 },
      personas: [{ id: 'fan', name: 'Fan', rule: 'true' }],
      learning: { enabled: true, contextBy: 'persona' },
      actions: [banner('x', { variants: twoVariants }), banner('safety', { fallback: [{ channel: 'web' }], eligibility: 'false' })],
    });
    const logged = loggedOf(c, makeView(), request({ placement: 'home' }), { nonce: 'g' });
    const degraded = loggedOf(c, emptyProfile({ userId: 'u-1' }), request({ placement: 'home' }), { nonce: 'g', degraded: true });
    expect(Object.keys({ ...logged, ...degraded }).sort()).toEqual(['c', 'ch', 'cv', 'dg', 'e', 'f', 'fb', 'id', 'lc', 'pl', 's', 'v']);
    // Version 2's `t` keeps its column (version 2 lines in the same table).
    expect(DECISION_LOG_COLUMNS.find((col) => col.name === DECISION_RECORD_KEY)?.type).toMatch(/[<,]t:bigint/);
    expect(Object.keys(logged.f ?? {}).sort()).toEqual(['cx', 'fl', 'p', 'sc', 'sg']);
    const struct = DECISION_LOG_COLUMNS.find((col) => col.name === DECISION_RECORD_KEY)?.type ?? '';
    for (const field of Object.keys({ ...logged, ...degraded })) expect(struct).toMatch(new RegExp(`[<,]${field}:`));
    for (const field of Object.keys(logged.f ?? {})) expect(struct).toMatch(new RegExp(`[<,]${field}:`));
  });
});

describe('the logged record (version 5, as versions 3 and 4 were)', () => {
  it('short keys, candidates as [actionId, score, probability, variant?] to 4 significant digits, nothing false or default written', () => {
    const c = learningCatalog();
    const learning = stats({ 'hero/a': [100, 30], 'hero/b': [100, 10], promo: [100, 5], news: [50, 20] });
    const logged = loggedOf(c, makeView(), request({ placement: 'home' }), { nonce: 'n1', learning });
    expect(logged).toMatchObject({ v: DECISION_RECORD_VERSION, cv: '7', ch: 'web', pl: 'home' });
    expect(logged).not.toHaveProperty('t'); // the time is the reference's second
    // The id is the decision's reference: what the decide function computes from its issue time and nonce, and what
    // evaluate opens the client's sealed id to.
    expect(logged.id).toBe(decisionReference({ issuedAt: NOW, nonce: 'n1' }));
    expect(logged.id).toBe(`${Math.floor(NOW.getTime() / 1000)}.n1`);
    expect(logged).not.toHaveProperty('fb');
    expect(logged).not.toHaveProperty('dg');
    expect(logged).not.toHaveProperty('lc'); // contextBy none: the learning context is NO_CONTEXT
    for (const arm of logged.e) {
      expect(typeof arm[0]).toBe('string');
      expect(arm.length === 3 || typeof arm[3] === 'string').toBe(true);
      for (const n of [arm[1], arm[2]]) expect(n).toBe(Number(n.toPrecision(4)));
    }
    const { decision, log } = decideForLog(c, makeView(), request({ placement: 'home' }), NOW, { nonce: 'n1', learning });
    // The record's eligible list is the decision's, as decide made it: every arm once, probabilities summing to at most 1.
    expect(logged.e).toEqual(log.eligible);
    expect(new Set(log.eligible.map((e) => `${e[0]}\u0000${e[3] ?? ''}`)).size).toBe(log.eligible.length);
    expect(log.eligible.reduce((sum, e) => sum + e[2], 0)).toBeLessThanOrEqual(1 + 1e-3);
    // The first of a limit-1 answer is the eligible tuple of the same arm: logged as its index there, read back whole.
    const first = decision.actions[0];
    const index = logged.e.findIndex((e) => e[0] === first?.actionId && e[3] === first?.variant);
    expect(index).toBeGreaterThanOrEqual(0);
    expect(logged.s).toEqual([[index]]);
    const read = readDecisionRecord(logged);
    expect(read?.served.map((a) => [a.actionId, a.variant, a.score, a.probability])).toEqual(
      decision.actions.map((a) => [a.actionId, a.variant, significant4(a.score), significant4(a.probability)]),
    );
    expect(read?.at).toBe(new Date(Math.floor(NOW.getTime() / 1000) * 1000).toISOString());
  });

  it('a served arm that is not an eligible tuple (a fallback, a later position of a longer answer) is logged whole', () => {
    const c = catalog({ learning: { enabled: false }, actions: [banner('x'), banner('y'), banner('z')] });
    const logged = loggedOf(c, makeView(), request({ placement: 'home', limit: 3 }), { nonce: 'l3' });
    const read = readDecisionRecord(logged);
    const { decision } = decideForLog(c, makeView(), request({ placement: 'home', limit: 3 }), NOW, { nonce: 'l3' });
    expect(decision.actions.length).toBeGreaterThan(1);
    expect(logged.s.some((a) => a.length > 1)).toBe(true);
    expect(read?.served.map((a) => [a.actionId, a.score, a.probability])).toEqual(decision.actions.map((a) => [a.actionId, significant4(a.score), significant4(a.probability)]));
    // An index that names no eligible tuple, or a reference that is not one, does not read.
    expect(readDecisionRecord({ ...logged, s: [[logged.e.length]] })).toBeUndefined();
    expect(readDecisionRecord({ ...logged, id: 'sealed-looking.id.x' })).toBeUndefined();
  });

  it('4 significant digits, whatever the magnitude', () => {
    expect([0.0064516129, 0.123456, 1, 0.99995, 12.3456, 123456, -0.00012345, 1e-9 / 3].map(significant4)).toEqual([0.006452, 0.1235, 1, 1, 12.35, 123500, -0.0001235, 3.333e-10]);
    expect([0, Number.NaN, Number.POSITIVE_INFINITY].map(significant4)).toEqual([0, Number.NaN, Number.POSITIVE_INFINITY]);
    // The decade table and the logarithm agree with toPrecision(4) from 1e-9 to 1e5.
    let seed = 11;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    for (let i = 0; i < 20_000; i++) {
      const x = random() * 10 ** (Math.floor(random() * 14) - 9);
      expect(significant4(x)).toBeCloseTo(Number(x.toPrecision(4)), 15 - Math.floor(Math.log10(x)));
    }
  });

  it('reads back as the readers’ record; a version 1 record reads as it is; another version, a wrong type or a non-record does not read', () => {
    const c = catalog({ decisionLog: { sample: 1 }, learning: { enabled: false }, actions: [banner('x', { variants: twoVariants }), banner('y')] });
    const logged = loggedOf(c, makeView(), request({ placement: 'home', context: { page: '/cart' } }), { nonce: 'r' });
    const record = readDecisionRecord(logged);
    const ref = decisionReference({ issuedAt: NOW, nonce: 'r' });
    expect(record).toMatchObject({ decisionId: ref, decisionRef: ref, at: new Date(Math.floor(NOW.getTime() / 1000) * 1000).toISOString(), catalogVersion: '7', channel: 'web', placement: 'home', learningContext: NO_CONTEXT, fallback: false, degraded: false });
    expect(record?.eligible.length).toBe(logged.e.length);
    expect(record?.features?.context).toEqual({ page: '"/cart"' });
    const v1: DecisionLogRecord = { decisionId: 'd', at: NOW.toISOString(), catalogVersion: '1', channel: 'web', customer: 'c', fallback: false, degraded: false, eligible: [{ actionId: 'x', score: 1, probability: 1 }], served: [{ actionId: 'x', score: 1, probability: 1 }] };
    expect(readDecisionRecord(v1)).toEqual(v1);
    // Version 2: version 3's keys with the sealed id, which has no reference until evaluate opens it.
    const v2 = readDecisionRecord({ ...logged, v: 2, id: 'sealed-id', t: NOW.getTime(), s: record?.served.map((a) => [a.actionId, a.score, a.probability, ...(a.variant ? [a.variant] : [])]) });
    expect(v2).toMatchObject({ decisionId: 'sealed-id', channel: 'web', at: NOW.toISOString(), served: record?.served });
    expect(v2).not.toHaveProperty('decisionRef');
    for (const bad of [{ ...logged, v: DECISION_RECORD_VERSION + 1 }, { ...logged, id: 'not-a-reference' }, { ...logged, v: 2, t: 'now' }, { ...logged, e: [['x', '1', 1]] }, { ...logged, s: [['x', 1]] }, { ...logged, f: { ...logged.f, sc: { a: 'x' } } }, { ...v1, at: 'never' }, [], null, 'text']) {
      expect(readDecisionRecord(bad)).toBeUndefined();
    }
  });
});

describe('the logged record: an arm whose content does not render for the customer', () => {
  /** `hero` ranks first; its template fails (past TEMPLATE_LIMITS.outputChars) for a customer whose note is too long. */
  const heroFirst = (learning: CatalogInput['learning']) =>
    catalog({
      learning,
      actions: [
        banner('hero', { value: 3, content: { web: { title: 'Hola {{ note }}' } } }),
        banner('plain', { value: 2 }),
        banner('other'),
      ],
    });
  const longNote = makeView({ traits: { note: 'n'.repeat(60_000) } });
  const shortNote = makeView({ traits: { note: 'Luis' } });
  const chances = (logged: LoggedDecisionRecord) => logged.e.map((t) => [t[0], t[2]]);

  it('deterministic: the action served first has its chance (1), the first-ranked one that failed 0; decide’s answer is unchanged', () => {
    const c = heroFirst({ enabled: false });
    for (const limit of [1, 2]) {
      const req = request({ limit });
      const { decision } = decideForLog(c, longNote, req, NOW, { nonce: 'u' });
      expect(decision).toEqual(decide(c, longNote, req, NOW, { nonce: 'u' }));
      expect(decision.actions.map((a) => [a.actionId, a.probability])).toEqual([['plain', 1], ['other', 1]].slice(0, limit));
      const logged = loggedOf(c, longNote, req, { nonce: 'u' });
      expect(logged).not.toHaveProperty('u');
      expect(chances(logged)).toEqual([['hero', 0], ['plain', 1], ['other', 0]]);
      expect(logged.s[0]).toEqual([1]);
    }
    expect(chances(loggedOf(c, shortNote, request({ limit: 2 }), { nonce: 'v' }))).toEqual([['hero', 1], ['plain', 0], ['other', 0]]);
  });

  it('the bandit: the arm that fails is never drawn and is logged with chance 0, the others re-normalised; the answers are decide’s', () => {
    const c = heroFirst({ enabled: true, exploration: 1, floor: 1, contextBy: 'none' });
    const served = new Map<string, number>();
    for (let i = 0; i < 60; i++) {
      const u = (i + 0.5) / 60;
      const options: DecideOptions = { nonce: `b${i}`, random: () => u };
      for (const profile of [longNote, shortNote]) {
        expect(decideForLog(c, profile, request(), NOW, options).decision).toEqual(decide(c, profile, request(), NOW, options));
      }
      const short = loggedOf(c, shortNote, request(), options);
      expect(chances(short)).toEqual(['hero', 'plain', 'other'].map((a) => [a, 0.3333]));
      const long = loggedOf(c, longNote, request(), options);
      expect(long).not.toHaveProperty('u');
      expect(chances(long)).toEqual([['hero', 0], ['plain', 0.5], ['other', 0.5]]);
      const first = decide(c, longNote, request(), NOW, options).actions[0];
      expect(first?.probability).toBe(0.5);
      served.set(first?.actionId ?? '', (served.get(first?.actionId ?? '') ?? 0) + 1);
    }
    expect(Object.fromEntries(served)).toEqual({ plain: 30, other: 30 });
  });

  it('every eligible arm failed: the fallbacks are served, every eligible arm logged with chance 0', () => {
    const c = catalog({ learning: { enabled: false }, actions: [banner('hero', { content: { web: { title: 'Hola {{ note }}' } } }), banner('safety', { fallback: [{ channel: 'web' }], eligibility: 'false' })] });
    const logged = loggedOf(c, longNote, request(), { nonce: 'f' });
    expect(logged).toMatchObject({ fb: 1, e: [['hero', expect.any(Number), 0]], s: [['safety', expect.any(Number), 1]] });
    expect(logged).not.toHaveProperty('u');
  });

  it('`u` of records written by earlier releases reads only in version 5, as an index of `e`; version 4 records read without it', () => {
    const logged = loggedOf(heroFirst({ enabled: false }), shortNote, request({ placement: 'home' }), { nonce: 'r' });
    const earlier = { ...logged, u: 0 };
    expect(readDecisionRecord(earlier)?.unrendered).toEqual({ actionId: 'hero', score: logged.e[0]?.[1], probability: 1 });
    expect(readDecisionRecord({ ...logged, v: 4 })).toEqual(readDecisionRecord(logged));
    expect(readDecisionRecord({ ...logged, v: 4 })).not.toHaveProperty('unrendered');
    for (const bad of [{ ...earlier, v: 4 }, { ...earlier, v: 3 }, { ...logged, u: logged.e.length }, { ...logged, u: -1 }, { ...logged, u: 0.5 }, { ...logged, u: '0' }, { ...logged, u: null }]) {
      expect(readDecisionRecord(bad)).toBeUndefined();
    }
    const struct = DECISION_LOG_COLUMNS.find((col) => col.name === DECISION_RECORD_KEY)?.type ?? '';
    expect(struct).toMatch(/[<,]u:int[,>]/);
  });
});

describe('the logged record (version 4): experiment arms served and control groups', () => {
  const experimentCatalog = () =>
    catalog({
      learning: { enabled: false },
      experiments: [
        { id: 'copy', kind: 'variants', action: 'hero', arms: [{ id: 'a', variant: 'a' }, { id: 'b', variant: 'b' }], holdout: 0.3 },
        { id: 'x-vs-y', kind: 'actions', arms: [{ id: 'x', action: 'x' }, { id: 'y', action: 'y' }], holdout: 0.3 },
      ],
      actions: [banner('hero', { variants: twoVariants, priority: 3 }), banner('x', { priority: 2 }), banner('y', { priority: 2 }), banner('plain')],
    });

  it('logs each served action’s experiment arm as [servedIndex, experiment, arm] and the holdouts, both read back as decide answered', () => {
    const c = experimentCatalog();
    const seen = { arms: 0, holdouts: 0 };
    for (let i = 0; i < 60; i++) {
      const req = request({ userId: `u-${i}`, placement: 'home', limit: 3 });
      const { decision, log } = decideForLog(c, makeView({ userId: `u-${i}` }), req, NOW, { nonce: `x${i}` });
      const logged = loggedOf(c, makeView({ userId: `u-${i}` }), req, { nonce: `x${i}` });
      const arms = decision.actions.flatMap((a, index) => (a.experiment ? [[index, a.experiment.id, a.experiment.arm]] : []));
      // Each left out when empty.
      expect(logged.x).toEqual(arms.length > 0 ? arms : undefined);
      expect(logged.h).toEqual(log.holdouts.length > 0 ? log.holdouts : undefined);
      const read = readDecisionRecord(logged);
      expect(read?.served.map((a) => a.experiment)).toEqual(decision.actions.map((a) => a.experiment));
      expect(read?.holdouts).toEqual(log.holdouts);
      // A holdout's actions are never served.
      for (const experiment of log.holdouts) expect(decision.actions.some((a) => a.experiment?.id === experiment)).toBe(false);
      seen.arms += arms.length;
      seen.holdouts += log.holdouts.length;
    }
    expect(seen.arms).toBeGreaterThan(0);
    expect(seen.holdouts).toBeGreaterThan(0);
    const struct = DECISION_LOG_COLUMNS.find((col) => col.name === DECISION_RECORD_KEY)?.type ?? '';
    expect(struct).toMatch(/[<,]x:array<array<string>>/);
    expect(struct).toMatch(/[<,]h:array<string>/);
  });

  it('a version 3 record reads without holdouts (it does not say which arms it served); x or h outside version 4, or malformed, does not read', () => {
    const c = experimentCatalog();
    const logged = { ...loggedOf(c, makeView(), request({ placement: 'home' }), { nonce: 'v3' }), x: [[0, 'copy', 'a']] as const, h: ['x-vs-y'] };
    const { x: _x, h: _h, ...v3 } = { ...logged, v: 3 };
    const read3 = readDecisionRecord(v3);
    expect(read3).toBeDefined();
    expect(read3).not.toHaveProperty('holdouts');
    expect(read3?.served.every((a) => a.experiment === undefined)).toBe(true);
    expect(readDecisionRecord({ ...logged, v: 4 })?.served[0]?.experiment).toEqual({ id: 'copy', arm: 'a' });
    for (const bad of [
      { ...logged, v: 3 },
      { ...logged, x: [[1, 'copy', 'a']] },
      { ...logged, x: [[0, 'copy', 'a'], [0, 'copy', 'b']] },
      { ...logged, x: [[0, 'copy']] },
      { ...logged, x: [[0, 1, 'a']] },
      { ...logged, h: 'x-vs-y' },
      { ...logged, h: [1] },
    ]) {
      expect(readDecisionRecord(bad)).toBeUndefined();
    }
  });
});

describe('the demo catalog', () => {
  it('reads profile fields its records can keep', () => {
    const demo = loadCatalog(readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8'), 'yaml');
    if (!demo.ok) throw new Error('demo catalog');
    expect(demo.catalog.ruleFields.map((f) => f.path)).toEqual(expect.arrayContaining(['traits.tier', 'stats.lastSeenAt']));
  });
});
