/**
 * The decisionId round trip and the pure helpers behind decide: sticky
 * experiment assignment, the Beta sampler, request validation.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { CHANNELS } from '#domain/channels.ts';
import {
  CUSTOMER_TAG_LENGTH,
  MAX_DECISION_ID_LENGTH,
  attributedAction,
  customerTag,
  decodeDecisionId,
  encodeDecisionId,
  type DecisionInput,
  type DecisionRecord,
} from '#domain/decide/decision-id.ts';
import { assignArm } from '#domain/decide/experiments.ts';
import { CONTROL_ARM } from '#domain/catalog/compiled.ts';
import { hash32, sampleBeta, seededRandom } from '#domain/decide/random.ts';
import { SIMULATE_ONE_CUSTOMER, parseDecideRequest, parseSimulateRequest } from '#domain/decide/request.ts';

const idText = fc.string({ minLength: 1, maxLength: 60 });
const record: fc.Arbitrary<DecisionInput & DecisionRecord> = fc.record(
  {
    catalogVersion: fc.nat().map(String),
    channel: fc.constantFrom(...CHANNELS),
    placement: idText,
    issuedAt: fc.integer({ min: 0, max: 4_000_000_000 }).map((s) => new Date(s * 1000).toISOString()),
    nonce: fc.string({ minLength: 1, maxLength: 12 }),
    fallback: fc.boolean(),
    degraded: fc.boolean(),
    persona: idText,
    actions: fc.array(
      fc.record(
        {
          actionId: idText,
          variant: idText,
          experiment: fc.record({ id: idText, arm: idText }),
          propensity: fc.integer({ min: 0, max: 10_000 }).map((n) => n / 10_000),
          probability: fc.integer({ min: 0, max: 10_000 }).map((n) => n / 10_000),
        },
        { requiredKeys: ['actionId', 'propensity'] },
      ),
      { maxLength: 10 },
    ),
    holdouts: fc.array(idText, { maxLength: 3 }),
    context: idText,
    customer: fc.string({ maxLength: 60 }).map(customerTag),
  },
  { requiredKeys: ['catalogVersion', 'channel', 'issuedAt', 'nonce', 'fallback', 'degraded', 'actions', 'holdouts', 'customer'] },
);


/** An unsealed decision id with a valid checksum around any payload (the plain format decodeDecisionId reads). */
const forge = (value: unknown): string => {
  const payload = Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${payload}.${hash32(payload).toString(36)}`;
};
describe('decisionId', () => {
  it('round-trips every decision, URL-safe and compact', () => {
    fc.assert(
      fc.property(record, (r) => {
        const id = encodeDecisionId(r);
        expect(id).toMatch(/^[A-Za-z0-9_-]+\.[0-9a-z]+$/);
        expect(id.length).toBeLessThanOrEqual(MAX_DECISION_ID_LENGTH);
        expect(decodeDecisionId(id)).toEqual(r);
      }),
      { numRuns: 300 },
    );
  });

  it('a typical one-action decision, its customer tag included, fits in 200 characters', () => {
    const id = encodeDecisionId({
      catalogVersion: '42',
      channel: 'web',
      placement: 'home_hero',
      issuedAt: '2026-01-15T12:00:00.000Z',
      nonce: 'a1B2c3D4',
      fallback: false,
      degraded: false,
      persona: 'student-sport',
      actions: [{ actionId: 'mega-offer-banner', variant: 'b', experiment: { id: 'banner-copy', arm: 'b' }, propensity: 0.3127 }],
      holdouts: [],
      customer: customerTag('anonymous-0b6f0a4e-3c1d-4f7a-9d55-6a2f1c8e7b90'),
    });
    expect(id.length).toBeLessThanOrEqual(200);
  });

  it('a mangled, truncated or foreign id decodes to undefined, never throws', () => {
    const good = encodeDecisionId({
      catalogVersion: '1',
      channel: 'push',
      issuedAt: '2026-01-15T12:00:00.000Z',
      nonce: 'x',
      fallback: false,
      degraded: false,
      actions: [{ actionId: 'a', propensity: 0.5 }],
      holdouts: [],
      customer: customerTag('u-1'),
    });
    expect(decodeDecisionId(good.slice(0, -1))).toBeUndefined();
    expect(decodeDecisionId(`A${good}`)).toBeUndefined();
    const [payload] = good.split('.');
    expect(decodeDecisionId(`${payload}.zzzz`)).toBeUndefined();
    for (const value of [undefined, null, 42, {}, '', '.', 'x'.repeat(MAX_DECISION_ID_LENGTH + 1), '__proto__.0']) {
      expect(decodeDecisionId(value)).toBeUndefined();
    }
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        expect(() => decodeDecisionId(s)).not.toThrow();
      }),
    );
  });

  it('a payload with a valid checksum but a wrong shape is refused', () => {
    const valid = [3, '1', 'web', '', 0, 'n', 0, '', [['a', '', '', '', 0.5, 0.25]], [], 'student', customerTag('u-1')];
    expect(decodeDecisionId(forge(valid))).toBeDefined();
    const broken = [
      [4, ...valid.slice(1)], // unknown format
      [2, ...valid.slice(1)], // v2 has no customer
      [1, ...valid.slice(1, 11)], // v1 has no context, nor probabilities
      valid.slice(0, 11), // v3 without its customer
      valid.map((v, i) => (i === 11 ? '' : v)), // empty customer tag
      valid.map((v, i) => (i === 11 ? 'u-1' : v)), // a customer key, not its tag
      valid.map((v, i) => (i === 11 ? `${customerTag('u-1')}x` : v)), // tag too long
      valid.map((v, i) => (i === 11 ? 42 : v)), // tag not a string
      valid.map((v, i) => (i === 8 ? [['a', '', '', '', 0.5]] : v)), // v2 without probability
      valid.map((v, i) => (i === 8 ? [['a', '', '', '', 0.5, 1.01]] : v)), // probability
      valid.map((v, i) => (i === 10 ? 7 : v)), // context
      valid.map((v, i) => (i === 2 ? 'fax' : v)), // channel
      valid.map((v, i) => (i === 6 ? 9 : v)), // flags
      valid.map((v, i) => (i === 8 ? [['a', '', '', '', 1.5, 0.5]] : v)), // propensity
      valid.map((v, i) => (i === 8 ? [['', '', '', '', 0.5, 0.5]] : v)), // empty action id
      valid.map((v, i) => (i === 8 ? Array.from({ length: 11 }, () => ['a', '', '', '', 0.5, 0.5]) : v)), // too many
      valid.slice(0, 10),
      [...valid, 'extra'],
      { 0: 1 },
    ];
    expect(broken.map((value) => decodeDecisionId(forge(value)))).toEqual(broken.map(() => undefined));
  });

  it('a v1 id (issued before probabilities and the learning context) still decodes, without them', () => {
    const v1 = [1, '4', 'web', 'home_hero', 1_768_478_400, 'n1', 0, 'student', [['hero', 'b', 'copy', 'b', 0.31]], ['other']];
    expect(decodeDecisionId(forge(v1))).toEqual({
      catalogVersion: '4',
      channel: 'web',
      placement: 'home_hero',
      issuedAt: '2026-01-15T12:00:00.000Z',
      nonce: 'n1',
      fallback: false,
      degraded: false,
      persona: 'student',
      actions: [{ actionId: 'hero', variant: 'b', experiment: { id: 'copy', arm: 'b' }, propensity: 0.31 }],
      holdouts: ['other'],
    });
  });

  it('a v2 id (issued before the customer tag) still decodes, unbound: without a customer', () => {
    const v2 = [2, '4', 'web', 'home_hero', 1_768_478_400, 'n1', 0, 'student', [['hero', 'b', 'copy', 'b', 0.31, 0.5]], [], 'student'];
    expect(decodeDecisionId(forge(v2))).toEqual({
      catalogVersion: '4',
      channel: 'web',
      placement: 'home_hero',
      issuedAt: '2026-01-15T12:00:00.000Z',
      nonce: 'n1',
      fallback: false,
      degraded: false,
      persona: 'student',
      actions: [{ actionId: 'hero', variant: 'b', experiment: { id: 'copy', arm: 'b' }, propensity: 0.31, probability: 0.5 }],
      holdouts: [],
      context: 'student',
    });
  });

  it('carries the customer tag of the customer it was decided for (v3): short, stable, distinct per customer', () => {
    const id = encodeDecisionId({
      catalogVersion: '4',
      channel: 'web',
      issuedAt: '2026-01-15T12:00:00.000Z',
      nonce: 'n',
      fallback: false,
      degraded: false,
      actions: [{ actionId: 'a', propensity: 0.2, probability: 1 }],
      holdouts: [],
      customer: customerTag('harvest-1'),
    });
    const [payload] = id.split('.');
    const array = JSON.parse(Buffer.from(payload as string, 'base64url').toString('utf8'));
    expect(array[0]).toBe(3);
    expect(array[11]).toBe(customerTag('harvest-1'));
    expect(decodeDecisionId(id)?.customer).toBe(customerTag('harvest-1'));
    expect(customerTag('harvest-1')).toHaveLength(CUSTOMER_TAG_LENGTH);
    expect(customerTag('harvest-1')).toBe(customerTag('harvest-1'));
    const sybils = Array.from({ length: 1_000 }, (_, i) => customerTag(`sybil-${i}`));
    expect(new Set([...sybils, customerTag('harvest-1')]).size).toBe(1_001);
  });

  it('carries each action\'s probability and the learning context (since v2)', () => {
    const id = encodeDecisionId({
      catalogVersion: '4',
      channel: 'web',
      issuedAt: '2026-01-15T12:00:00.000Z',
      nonce: 'n',
      fallback: false,
      degraded: false,
      actions: [
        { actionId: 'a', variant: 'x', propensity: 0.2, probability: 0.87654 },
        { actionId: 'b', propensity: 0.1, probability: 1 },
      ],
      holdouts: [],
      context: 'seg-vip',
      customer: customerTag('u-1'),
    });
    const [payload] = id.split('.');
    expect(JSON.parse(Buffer.from(payload as string, 'base64url').toString('utf8'))[0]).toBe(3);
    const r = decodeDecisionId(id);
    expect(r?.context).toBe('seg-vip');
    expect(r?.actions.map((a) => a.probability)).toEqual([0.8765, 1]);
  });

  it('names the action an outcome is about', () => {
    const r = decodeDecisionId(
      encodeDecisionId({
        catalogVersion: '3',
        channel: 'web',
        issuedAt: '2026-01-15T12:00:00.000Z',
        nonce: 'n',
        fallback: false,
        degraded: false,
        actions: [
          { actionId: 'a', propensity: 0.2 },
          { actionId: 'b', variant: 'v2', experiment: { id: 'e', arm: 'v2' }, propensity: 0.1 },
        ],
        holdouts: [],
        customer: customerTag('u-1'),
      }),
    );
    expect(r).toBeDefined();
    expect(attributedAction(r!, 'b')).toEqual({ actionId: 'b', variant: 'v2', experiment: { id: 'e', arm: 'v2' }, propensity: 0.1 });
    expect(attributedAction(r!, undefined)?.actionId).toBe('a');
    expect(attributedAction(r!, 'zzz')).toBeUndefined();
  });
});

describe('experiment assignment', () => {
  const experiment = (holdout: number, weights: readonly number[]) => ({
    id: 'exp',
    holdout,
    arms: weights.map((weight, i) => ({ id: `arm${i}`, weight })),
  });

  it('is a pure function of experiment and customer', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 40 }),
        fc.double({ min: 0, max: 0.9, noNaN: true }),
        fc.array(fc.double({ min: 0.1, max: 10, noNaN: true }), { minLength: 2, maxLength: 5 }),
        (customer, holdout, weights) => {
          const e = experiment(holdout, weights);
          const arm = assignArm(e, customer);
          expect(assignArm({ ...e, arms: [...e.arms] }, customer)).toBe(arm);
          expect([CONTROL_ARM, ...e.arms.map((a) => a.id)]).toContain(arm);
        },
      ),
    );
  });

  it('splits traffic in the configured shares (holdout, then weights)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0, 0.1, 0.25, 0.5),
        fc.constantFrom([1, 1], [1, 3], [2, 1, 1]),
        fc.string({ maxLength: 6 }),
        (holdout, weights, salt) => {
          const e = { ...experiment(holdout, weights), id: `exp-${salt}` };
          const n = 5_000;
          const counts = new Map<string, number>();
          for (let i = 0; i < n; i++) {
            const arm = assignArm(e, `c${i}`);
            counts.set(arm, (counts.get(arm) ?? 0) + 1);
          }
          const total = weights.reduce((a, b) => a + b, 0);
          expect(Math.abs((counts.get(CONTROL_ARM) ?? 0) / n - holdout)).toBeLessThan(0.03);
          weights.forEach((w, i) => {
            const expected = (1 - holdout) * (w / total);
            expect(Math.abs((counts.get(`arm${i}`) ?? 0) / n - expected)).toBeLessThan(0.03);
          });
        },
      ),
      { numRuns: 12 },
    );
  });

  it('assignments in two experiments are independent', () => {
    const a = { id: 'first', holdout: 0, arms: [{ id: 'x', weight: 1 }, { id: 'y', weight: 1 }] };
    const b = { ...a, id: 'second' };
    let same = 0;
    const n = 4_000;
    for (let i = 0; i < n; i++) if (assignArm(a, `c${i}`) === assignArm(b, `c${i}`)) same++;
    expect(Math.abs(same / n - 0.5)).toBeLessThan(0.04);
  });
});

describe('Beta sampling', () => {
  it('has the mean of Beta(alpha, beta), and the same seed gives the same draws', () => {
    for (const [alpha, beta] of [
      [1, 1],
      [2, 8],
      [0.5, 0.5],
      [151, 851],
    ] as const) {
      const random = seededRandom(42);
      let sum = 0;
      let min = 1;
      let max = 0;
      const n = 20_000;
      for (let i = 0; i < n; i++) {
        const x = sampleBeta(alpha, beta, random);
        sum += x;
        min = Math.min(min, x);
        max = Math.max(max, x);
      }
      expect(min).toBeGreaterThanOrEqual(0);
      expect(max).toBeLessThanOrEqual(1);
      expect(Math.abs(sum / n - alpha / (alpha + beta))).toBeLessThan(0.01);
    }
    const one = seededRandom(7);
    const two = seededRandom(7);
    expect([sampleBeta(3, 4, one), sampleBeta(3, 4, one)]).toEqual([sampleBeta(3, 4, two), sampleBeta(3, 4, two)]);
  });
});

describe('request validation', () => {
  it('fills the defaults', () => {
    expect(parseDecideRequest({ userId: 'u', channel: 'web' })).toEqual({
      ok: true,
      value: { userId: 'u', channel: 'web', limit: 1, context: {}, explain: false },
    });
  });

  it('names every problem by its path', () => {
    const result = parseDecideRequest({ userId: 7, channel: 'fax', limit: 11, explain: 'yes', context: [], extra: 1 });
    expect(result.ok).toBe(false);
    const paths = result.ok ? [] : result.details.map((d) => d.path);
    expect(paths).toEqual(expect.arrayContaining(['userId', 'channel', 'limit', 'explain', 'context', '(root)']));
  });

  it('requires a customer id and bounds the context', () => {
    expect(parseDecideRequest({ channel: 'web' }).ok).toBe(false);
    const wide = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]));
    expect(parseDecideRequest({ userId: 'u', channel: 'web', context: wide }).ok).toBe(false);
    expect(parseDecideRequest({ userId: 'u', channel: 'web', context: { a: { b: { c: { d: { e: 1 } } } } } }).ok).toBe(false);
    expect(parseDecideRequest({ userId: 'u', channel: 'web', context: { blob: 'x'.repeat(5_000) } }).ok).toBe(false);
  });

  it('simulate names one customer: a stored one by its ids, or an inline profile, never both', () => {
    expect(parseSimulateRequest({ userId: 'u', channel: 'web' }).ok).toBe(true);
    // An operator simulates a customer stored before ids refused invisible characters; decide refuses such an id.
    for (const id of ['u-42\u200b', 'u-\u202e24']) {
      expect(parseSimulateRequest({ userId: id, channel: 'web' }).ok).toBe(true);
      expect(parseSimulateRequest({ anonymousId: id, channel: 'web' }).ok).toBe(true);
      expect(parseDecideRequest({ userId: id, channel: 'web' }).ok).toBe(false);
    }
    expect(parseSimulateRequest({ userId: 'u\u0000', channel: 'web' }).ok).toBe(false);
    expect(parseSimulateRequest({ profile: { userId: 'u', traits: { firstName: 'Ana' } }, channel: 'web' }).ok).toBe(true);
    for (const ids of [{ userId: 'u' }, { anonymousId: 'a' }, { userId: 'u', anonymousId: 'a' }]) {
      const result = parseSimulateRequest({ ...ids, profile: { traits: { firstName: 'Ana' } }, channel: 'web' });
      expect(result).toEqual({ ok: false, details: [{ path: 'profile', message: SIMULATE_ONE_CUSTOMER }] });
    }
  });

  it('never throws, whatever the body', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (body) => {
        expect(() => parseDecideRequest(body)).not.toThrow();
        expect(() => parseSimulateRequest(body)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });
});

describe('attribution of an outcome that carries only decision_id', () => {
  it('the profile records the impression and click for the decided action on its channel, at the decision time', async () => {
    const { applyEvent } = await import('#domain/profile/apply.ts');
    const { emptyProfileState } = await import('#domain/profile/state.ts');
    const { toProfileView } = await import('#domain/profile/to-view.ts');
    const decisionId = encodeDecisionId({
      catalogVersion: '4',
      channel: 'push',
      issuedAt: '2026-01-15T12:00:00.000Z',
      nonce: 'abc',
      fallback: false,
      degraded: false,
      // Long ids (several actions) must be accepted too.
      actions: Array.from({ length: 6 }, (_, i) => ({ actionId: `push-offer-number-${i}`, variant: 'b', propensity: 0.25 })),
      holdouts: [],
      customer: customerTag('u-1'),
    });
    expect(decisionId.length).toBeGreaterThan(200);
    const event = (messageId: string, name: string) => ({
      pk: `src#${messageId}`,
      profileKey: 'u#u-1',
      sortKey: `2026-01-15T12:05:00.000Z#${messageId}`,
      sourceId: 'src',
      messageId,
      type: 'track' as const,
      userId: 'u-1',
      event: name,
      properties: { decision_id: decisionId },
      timestamp: '2026-01-15T12:05:00.000Z',
      receivedAt: '2026-01-15T12:05:00.000Z',
      expiresAt: 2_000_000_000,
    });
    let state = emptyProfileState({ userId: 'u-1' });
    state = applyEvent(state, event('m1', 'Promotion Viewed'), { halfLifeDays: 14 });
    state = applyEvent(state, event('m2', 'Promotion Clicked'), { halfLifeDays: 14 });
    const view = toProfileView(state, Date.parse('2026-01-15T13:00:00Z'));
    // Recorded at the decision's time, so that whichever report of an outcome counts, the profile is the same.
    expect(view.contacts['push-offer-number-0']).toMatchObject({ impressions: ['2026-01-15T12:00:00.000Z'], clicks: 1 });
    expect(view.channelContacts.push).toEqual(['2026-01-15T12:00:00.000Z']);
  });
});
