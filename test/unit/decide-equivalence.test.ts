/**
 * The two shortcuts of a warm decision give exactly what the full
 * evaluation gives:
 * - the eligibility index (each distinct conjunct of the actions' rules once
 *   per decision, actions with a false conjunct skipped unread);
 * - the audience reuse (static segments, persona and scores taken from a
 *   profile the profile function enriched with the same catalog, only the
 *   dynamic rules evaluated at decide time).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { evaluateAudience } from '#domain/catalog/audience.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { compileRule } from '#domain/catalog/rules.ts';
import { decide } from '#domain/decide/decide.ts';
import type { DecideRequest } from '#domain/decide/types.ts';
import { boundEnrichment } from '#domain/profile/enrich.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { makeView } from './catalog-support.ts';

const NOW = new Date('2026-03-10T12:00:00Z');
const iso = (hoursAgo: number, from = NOW) => new Date(from.getTime() - hoursAgo * 3_600_000).toISOString();

/** Clauses reading only what changes with events. */
const STATIC = [
  'profile.traits.tier == "gold"',
  'profile.traits.tier != "basic"',
  'profile.stats.orders >= 2.0',
  'likes("cycling")',
  'profile.identified',
  'has(profile.traits.email)',
  'profile.traits.age > 30',
  'engagementRate("email") > 0.2',
  'eventCount("Product Viewed", "total") > 3.0',
  'size(profile.anonymousIds) > 0',
  'profile.traits.missing == 1',
  'profile.consent.email.granted',
  'preferredChannel == "email"',
  'profile.stats.openComplaints > 0.0',
  'profile.traits.name.startsWith("L")',
  'profile.traits.tier in ["gold", "silver"]',
];
/** Clauses reading the request or the clock. */
const DYNAMIC = [
  'profile.stats.visitsToday > 2.0',
  'context.device == "mobile"',
  'daysSince(profile.stats.lastPurchaseAt) > 30.0',
  'interest("running") > 0.3',
  'eventCount("Product Viewed", "7d") >= 2.0',
  'visitsToday > 1.0',
  'context.weather in ["rain", "snow"]',
  'hoursSince(profile.stats.lastSeenAt) < 48.0',
  'profile.stats.eventCounts["Product Viewed"].today > 0.0',
  'channel == "web"',
];
const FEATURES = ['profile.stats.orders', 'profile.stats.visitsToday', 'interest("running")', 'profile.traits.age', 'likes("cycling")', 'profile.stats.revenue / 100.0'];

const clause = fc.constantFrom(...STATIC, ...DYNAMIC);
/** A rule of 1 to 3 clauses joined by && or ||, sometimes negated. */
const rule = (extra: readonly string[] = []) =>
  fc
    .tuple(
      fc.array(extra.length > 0 ? fc.oneof(clause, fc.constantFrom(...extra)) : clause, { minLength: 1, maxLength: 3 }),
      fc.array(fc.constantFrom(' && ', ' || '), { minLength: 2, maxLength: 2 }),
      fc.boolean(),
    )
    .map(([parts, ops, negate]) => {
      const text = parts.reduce((acc, p, i) => (i === 0 ? p : `${acc}${ops[i - 1] ?? ' && '}${p}`), '');
      return negate && parts.length === 1 ? `!(${text})` : text;
    });

/** Models, segments (some in an exclusive group, some on earlier segments or models), personas. */
const audienceCatalog = fc
  .record({
    models: fc.array(fc.array(fc.constantFrom(...FEATURES), { minLength: 1, maxLength: 2 }), { minLength: 0, maxLength: 3 }),
    segments: fc.array(fc.tuple(fc.integer({ min: 0, max: 1_000 }), fc.boolean(), fc.boolean()), { minLength: 2, maxLength: 8 }),
    personas: fc.array(fc.integer({ min: 0, max: 1_000 }), { minLength: 0, maxLength: 4 }),
    grouped: fc.integer({ min: 0, max: 3 }),
  })
  .chain(({ models, segments, personas, grouped }) => {
    const modelIds = models.map((_, i) => `m${i}`);
    const modelRefs = modelIds.flatMap((id) => [`aboveThreshold("${id}")`, `profile.scores.${id} > 0.5`]);
    const segmentRules = segments.map((_, i) =>
      rule([...modelRefs, ...Array.from({ length: i }, (_, j) => `hasSegment("s${j}")`), ...(i > 0 ? ['size(profile.segments) > 0'] : [])]),
    );
    const personaRules = personas.map(() => rule([...modelRefs, ...segments.map((_, j) => `hasSegment("s${j}")`)]));
    return fc.record({ segmentRules: fc.tuple(...segmentRules), personaRules: fc.tuple(...personaRules) }).map(({ segmentRules, personaRules }) => {
      const input: CatalogInput = {
        models: models.map((features, i) => ({
          id: modelIds[i] as string,
          kind: 'logistic' as const,
          intercept: -1 + i,
          threshold: 0.5,
          features: features.map((expression, j) => ({ name: `f${j}`, expression, weight: 0.3 + j, default: 0 })),
        })),
        segments: segments.map(([, exclude], i) => ({
          id: `s${i}`,
          rule: segmentRules[i] as string,
          ...(exclude ? { exclude: i % 2 === 0 ? 'profile.stats.returns > 1.0' : 'context.page == "/cart"' } : {}),
        })),
        exclusiveGroups: grouped >= 2 && segments.length >= grouped ? [{ id: 'g', segments: segments.slice(0, grouped).map((_, i) => `s${i}`) }] : [],
        personas: personas.map((_, i) => ({ id: `p${i}`, name: `P${i}`, rule: personaRules[i] as string })),
        actions: [{ id: 'a', name: 'a', content: { web: { title: 't' } } }],
      };
      return input;
    });
  });

/** A customer; `at` shifts what depends on the instant (windows, decay), as one state seen at two times. */
const customer = fc.record({
  tier: fc.constantFrom('gold', 'silver', 'basic', undefined),
  age: fc.oneof(fc.integer({ min: 15, max: 70 }), fc.constant('n/a'), fc.constant(undefined)),
  name: fc.constantFrom('Luis', 'Ana', undefined),
  email: fc.boolean(),
  orders: fc.integer({ min: 0, max: 5 }),
  returns: fc.integer({ min: 0, max: 3 }),
  complaints: fc.integer({ min: 0, max: 1 }),
  cycling: fc.boolean(),
  consent: fc.boolean(),
  viewedTotal: fc.integer({ min: 0, max: 9 }),
  anonymous: fc.boolean(),
  engagement: fc.double({ min: 0, max: 1, noNaN: true }),
});
const instant = fc.record({
  visitsToday: fc.integer({ min: 0, max: 5 }),
  running: fc.double({ min: 0, max: 1, noNaN: true }),
  viewed7d: fc.integer({ min: 0, max: 4 }),
  viewedToday: fc.integer({ min: 0, max: 2 }),
  purchasedDaysAgo: fc.oneof(fc.integer({ min: 0, max: 90 }), fc.constant(undefined)),
  seenHoursAgo: fc.integer({ min: 0, max: 100 }),
  hoursLater: fc.integer({ min: 0, max: 72 }),
});
const context = fc.record(
  { device: fc.constantFrom('mobile', 'desktop'), weather: fc.constantFrom('rain', 'sun'), page: fc.constantFrom('/', '/cart') },
  { requiredKeys: [] },
);

type Customer = typeof customer extends fc.Arbitrary<infer T> ? T : never;
type Instant = typeof instant extends fc.Arbitrary<infer T> ? T : never;

function viewOf(c: Customer, t: Instant, now: Date): ProfileView {
  const traits: Record<string, unknown> = {};
  if (c.tier !== undefined) traits.tier = c.tier;
  if (c.age !== undefined) traits.age = c.age;
  if (c.name !== undefined) traits.name = c.name;
  if (c.email) traits.email = 'x@example.com';
  return makeView({
    traits,
    anonymousIds: c.anonymous ? ['a-1'] : [],
    consent: { email: { granted: c.consent, updatedAt: '2026-01-01T00:00:00.000Z' } },
    preferences: { interests: c.cycling ? ['cycling'] : [] },
    engagement: { email: { delivered: 10, engaged: Math.round(c.engagement * 10), rate: Math.round(c.engagement * 10) / 10 } },
    updatedAt: iso(1, now),
    stats: {
      orders: c.orders,
      returns: c.returns,
      openComplaints: c.complaints,
      visitsToday: t.visitsToday,
      visits7d: t.visitsToday + 3,
      categoryInterests: { running: t.running },
      eventCounts: { 'Product Viewed': { today: t.viewedToday, last7d: t.viewed7d, last30d: t.viewed7d + 1, total: c.viewedTotal } },
      ...(t.purchasedDaysAgo !== undefined ? { lastPurchaseAt: iso(24 * t.purchasedDaysAgo, now) } : {}),
      lastSeenAt: iso(t.seenHoursAgo, now),
    },
  });
}

function compile(input: CatalogInput, version = 3): CompiledCatalog {
  const result = loadCatalog(input, 'object', { version });
  if (!result.ok) throw new Error(JSON.stringify(result.problems.slice(0, 3)));
  return result.catalog;
}

/** The view as the profile function stores it: its enrichment (bounded) in segments, persona, scores. */
function enriched(catalog: CompiledCatalog, view: ProfileView, at: Date): { view: ProfileView; stamp: string | undefined } {
  const stored = boundEnrichment(createCatalogEnricher(() => catalog)(view, at));
  return {
    view: { ...view, segments: stored.segments, scores: stored.scores, ...(stored.persona !== undefined ? { persona: stored.persona } : {}) },
    stamp: stored.catalog,
  };
}

const plain = (a: ReturnType<typeof evaluateAudience>) => ({ segments: a.segments, persona: a.persona, scores: a.scores });

describe('audience reuse', () => {
  it('static results from the enriched profile plus dynamic ones evaluated now equal a full evaluation', () => {
    fc.assert(
      fc.property(audienceCatalog, customer, instant, instant, context, (input, c, before, after, ctx) => {
        const catalog = compile(input);
        const enrichedAt = new Date(NOW.getTime() - after.hoursLater * 3_600_000);
        // The same state seen when it was written (no context) and now (another instant, a request context).
        const stored = enriched(catalog, viewOf(c, before, enrichedAt), enrichedAt);
        const decideView = { ...viewOf(c, after, NOW), segments: stored.view.segments, scores: stored.view.scores };
        if (stored.view.persona !== undefined) Object.assign(decideView, { persona: stored.view.persona });
        expect(stored.stamp).toBe(catalog.audienceReuse?.stamp);
        const full = evaluateAudience(catalog, decideView, NOW, ctx);
        const reused = evaluateAudience(catalog, decideView, NOW, ctx, stored.stamp);
        expect(plain(reused)).toEqual(plain(full));
      }),
      { numRuns: 300 },
    );
  }, 120_000);

  it('takes static results from the profile, and nothing from a profile enriched with another catalog', () => {
    const catalog = compile({
      segments: [
        { id: 'gold', rule: 'profile.traits.tier == "gold"' },
        { id: 'busy', rule: 'profile.stats.visitsToday > 2.0' },
        { id: 'gold-busy', rule: 'hasSegment("gold") && context.device == "mobile"' },
      ],
      actions: [{ id: 'a', name: 'a', content: { web: { title: 't' } } }],
    });
    expect(catalog.audienceReuse?.dynamicSegments).toEqual([false, true, true]);
    // Stored "gold" (the customer was gold when the profile was written) is trusted, "busy" is evaluated now.
    const view = makeView({ traits: { tier: 'silver' }, segments: ['gold', 'busy'], stats: { visitsToday: 0 } });
    const stamp = catalog.audienceReuse?.stamp;
    expect(evaluateAudience(catalog, view, NOW, { device: 'mobile' }, stamp).segments).toEqual(['gold', 'gold-busy']);
    expect(evaluateAudience(catalog, view, NOW, { device: 'mobile' }).segments).toEqual([]);
    expect(evaluateAudience(catalog, view, NOW, { device: 'mobile' }, '2:0123456789abcdef').segments).toEqual([]);
    const next = compile({ ...{ segments: [{ id: 'gold', rule: 'profile.traits.tier == "GOLD"' }] }, actions: [{ id: 'a', name: 'a', content: { web: { title: 't' } } }] });
    expect(next.audienceReuse?.stamp).not.toBe(stamp);
  });

  it('classifies what a rule reads', () => {
    const reads = (source: string) => {
      const r = compileRule(source, 'x');
      if (!r.ok) throw new Error(r.error.message);
      return r.rule.reads;
    };
    expect(reads('profile.traits.tier == "gold" && profile.stats.orders > 1.0')?.dynamic).toBe(false);
    expect(reads('eventCount("Order Completed", "total") > 1.0')?.dynamic).toBe(false);
    expect(reads('profile.stats.eventCounts["x"].total > 1.0')?.dynamic).toBe(false);
    for (const dynamic of [...DYNAMIC, 'profile.stats.eventCounts["x"].last7d > 1.0', 'has(profile.updatedAt)', 'profile.stats.eventCounts.exists(k, k == "x")', '[1].exists(x, x < profile.stats.visits30d)']) {
      expect({ dynamic, reads: reads(dynamic)?.dynamic }).toEqual({ dynamic, reads: true });
    }
    expect(reads('hasSegment("a") && aboveThreshold("m") && profile.scores.n > 0.1')).toEqual({ dynamic: false, segments: ['a'], models: ['m', 'n'], fields: [] });
    expect(reads('"vip" in profile.segments')?.segments).toEqual(['*']);
  });
});

describe('eligibility index', () => {
  const actions = fc.array(
    fc.record({
      eligibility: fc.option(rule(['size(profile.anonymousIds) >= 0', 'profile.traits.age == "n/a"', 'true', 'false']), { nil: undefined }),
      targeted: fc.boolean(),
      capped: fc.boolean(),
      value: fc.integer({ min: 1, max: 50 }),
    }),
    { minLength: 1, maxLength: 40 },
  );

  it('decides what evaluating every rule decides', () => {
    let indexed = 0;
    fc.assert(
      fc.property(actions, customer, instant, context, fc.boolean(), (list, c, t, ctx, enoughContacts) => {
        const catalog = compile({
          learning: { enabled: false, exploration: 0 },
          segments: [{ id: 'gold', rule: 'profile.traits.tier == "gold"' }],
          actions: list.map((a, i) => ({
            id: `a${i}`,
            name: `a${i}`,
            value: a.value,
            ...(a.eligibility !== undefined ? { eligibility: a.eligibility } : {}),
            ...(a.targeted ? { targeting: { segments: ['gold'] } } : {}),
            ...(a.capped ? { caps: ['1/day'] } : {}),
            content: { web: { title: `t${i}` } },
          })),
        });
        if (catalog.eligibilityIndex) indexed++;
        const unindexed: CompiledCatalog = { ...catalog, eligibilityIndex: undefined };
        const view = viewOf(c, t, NOW);
        if (enoughContacts) Object.assign(view, { contacts: { a0: { impressions: [iso(2)], clicks: 0, conversions: 0 } } });
        const request: DecideRequest = { userId: 'u-1', channel: 'web', limit: 10, context: ctx, explain: false };
        const withIndex = decide(catalog, view, request, NOW, { nonce: 'n' });
        const without = decide(unindexed, view, request, NOW, { nonce: 'n' });
        expect(withIndex).toEqual(without);
        // And the explained decision (which never uses the index) selects the same actions.
        const explained = decide(catalog, view, { ...request, explain: true }, NOW, { nonce: 'n' });
        expect(explained.actions).toEqual(withIndex.actions);
      }),
      { numRuns: 300 },
    );
    expect(indexed).toBeGreaterThan(150);
  }, 120_000);
});
