/**
 * Shared by the profile tests (unit and ddb): a fast-check arbitrary of
 * event drafts covering every row of the effects table, a deep comparison
 * of views with floats equal to 1e-9, and the outcome statistics a set of
 * profiles must have added, from their events alone.
 */
import fc from 'fast-check';
import { customerTag, decodeDecisionId, encodeDecisionId } from '#domain/decide/decision-id.ts';
import { CONTROL_ARM } from '#domain/catalog/compiled.ts';
import type { Channel } from '#domain/channels.ts';
import { DEFAULT_OUTCOME_LEARNING, cellKey, learningContext, outcomeIncrement, type StatisticsCell, type StatisticsIncrement } from '#domain/learning/statistics.ts';
import { eventOutcome } from '#domain/profile/apply.ts';
import type { AttributedOutcome } from '#domain/profile/outcomes.ts';
import type { ProfileSettings } from '#domain/profile/state.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import type { storedEvent } from '../support/stream.ts';

const T0 = Date.parse('2026-03-01T00:00:00Z');

export type Draft = Omit<Parameters<typeof storedEvent>[0], 'messageId' | 'userId'>;

// Second-level times over 40 days, with frequent exact ties (LWW tie-breaks must not depend on order).
const time = fc.oneof(
  fc.integer({ min: 0, max: 40 * 24 * 3600 }),
  fc.constantFrom(0, 3600, 86_400, 10 * 86_400),
).map((s) => new Date(T0 + s * 1000).toISOString());
const channel = fc.constantFrom('web', 'app', 'push', 'email', 'sms', 'call_center');
const category = fc.constantFrom('shoes', 'socks', 'yoga', 'tents');
const zone = fc.constantFrom('Europe/Madrid', 'America/New_York', 'Asia/Kolkata', 'UTC');
/**
 * A decision id as decide issues it (read plain: the profile tests run without a decision key),
 * serving a1 (variant x) and a2 (arm b of experiment exp-a); a web decision also has a persona and
 * a placement, and its customer is in the control group of experiment exp-h. Made for `customer`
 * (decide's customer key; u-1, the profile tests' customer, unless given).
 */
export const decisionId = (
  issuedAt: Date,
  channel: Channel,
  nonce = `n${issuedAt.getTime().toString(36)}${channel}`,
  actions: readonly string[] = ['a1', 'a2'],
  customer = 'u-1',
): string =>
  encodeDecisionId({
    catalogVersion: '1',
    channel,
    ...(channel === 'web' ? { placement: 'home', persona: 'p-web' } : {}),
    issuedAt,
    nonce,
    fallback: false,
    degraded: false,
    actions: actions.map((actionId) => ({
      actionId,
      ...(actionId === 'a1' ? { variant: 'x' } : {}),
      ...(actionId === 'a2' ? { experiment: { id: 'exp-a', arm: 'b' } } : {}),
      propensity: 0.5,
    })),
    holdouts: channel === 'web' ? ['exp-h'] : [],
    customer: customerTag(customer),
  });

/**
 * Which decision an outcome names, resolved against the outcome's own time by `draft`: one made at
 * the start of the outcome's day, or `lag` days before (8: outside the attribution window), so that
 * several reports of one outcome are frequent; or an id the service never issued.
 */
const DECISION = '__decision';
const decisionRef = fc.oneof(
  { weight: 5, arbitrary: fc.record({ lag: fc.constantFrom(0, 0, 1, 8), channel: fc.constantFrom<Channel>('web', 'push') }) },
  { weight: 1, arbitrary: fc.constantFrom('d1', `${decisionId(new Date(T0), 'web').slice(0, -2)}zz`) },
);
const resolveDecision = (timestamp: string, ref: unknown): unknown => {
  if (typeof ref === 'string') return ref;
  const { lag, channel } = ref as { lag: number; channel: Channel };
  const day = Math.floor(Date.parse(timestamp) / 86_400_000) - lag;
  return decisionId(new Date(day * 86_400_000), channel);
};

const outcome = (event: string) =>
  fc
    .record(
      {
        ref: decisionRef,
        alias: fc.boolean(),
        action_id: fc.option(fc.constantFrom('a1', 'a2', 'a3'), { nil: undefined }),
        variant: fc.option(fc.constantFrom('x', 'y'), { nil: undefined }),
        channel: fc.option(channel, { nil: undefined }),
      },
      { requiredKeys: ['ref', 'alias'] },
    )
    .map(({ ref, alias, ...rest }): Pick<Draft, 'type' | 'event' | 'properties'> => ({
      type: 'track',
      event,
      properties: { [DECISION]: { ref, field: alias ? 'decisionId' : 'decision_id' }, ...rest },
    }));

/**
 * `d` with its decision ids (plain ones decide issued; anything else is left
 * as it is) made for `customer` instead: the customer whose id the event
 * carries, so that its outcomes count wherever the event is applied.
 */
export function forCustomer<T extends Pick<Draft, 'properties'>>(d: T, customer: string): T {
  const props = d.properties;
  if (!props) return d;
  const out: Record<string, unknown> = { ...props };
  for (const field of ['decision_id', 'decisionId']) {
    const decision = decodeDecisionId(props[field]);
    if (decision) out[field] = encodeDecisionId({ ...decision, customer: customerTag(customer) });
  }
  return { ...d, properties: out };
}

export const draft: fc.Arbitrary<Draft> = fc
  .tuple(
    time,
    fc.oneof(
      fc.record({
        type: fc.constant('identify' as const),
        traits: fc.record(
          {
            tier: fc.constantFrom('gold', 'silver'),
            email: fc.constantFrom('a@x.es', 'b@x.es'),
            first_name: fc.constantFrom('Luis', 'Ana'),
            address: fc.record({ city: fc.constantFrom('Madrid', 'Lyon') }, { requiredKeys: [] }),
            timezone: zone,
          },
          { requiredKeys: [] },
        ),
      }),
      fc.record({
        type: fc.constantFrom('page' as const, 'screen' as const),
        properties: fc.record({ category }, { requiredKeys: [] }),
        context: fc.record({ timezone: zone }, { requiredKeys: [] }),
      }),
      fc.record({ type: fc.constant('track' as const), event: fc.constant('Product Viewed'), properties: fc.record({ category }) }),
      fc.record({
        type: fc.constant('track' as const),
        event: fc.constant('Order Completed'),
        properties: fc.record(
          {
            revenue: fc.double({ min: 0, max: 500, noNaN: true }),
            total: fc.double({ min: 0, max: 500, noNaN: true }),
            products: fc.array(fc.record({ category }), { maxLength: 3 }),
            [DECISION]: decisionRef.map((ref) => ({ ref, field: 'decision_id' })),
            action_id: fc.constantFrom('a1', 'a2'),
          },
          { requiredKeys: [] },
        ),
      }),
      fc.constantFrom('Order Refunded', 'Complaint Opened', 'Complaint Resolved', 'Unsubscribed', 'Video Played', 'Search').map(
        (event): Pick<Draft, 'type' | 'event'> => ({ type: 'track', event }),
      ),
      fc.record({
        type: fc.constant('track' as const),
        event: fc.constant('Consent Updated'),
        properties: fc.record({ channel, granted: fc.boolean() }),
      }),
      fc.record({
        type: fc.constant('track' as const),
        event: fc.constant('Preferences Updated'),
        properties: fc.record(
          { interests: fc.array(category, { maxLength: 3 }), preferred_channel: channel },
          { requiredKeys: [] },
        ),
      }),
      outcome('Promotion Viewed'),
      outcome('Promotion Clicked'),
      outcome('Push Notification Received'),
      outcome('Push Notification Tapped'),
      outcome('Email Opened'),
      outcome('Email Link Clicked'),
      outcome('Email Delivered'),
      outcome('SMS Delivered'),
      outcome('SMS Link Clicked'),
    ),
  )
  .map(([timestamp, body]) => {
    const properties = (body as { properties?: Record<string, unknown> }).properties;
    const named = properties?.[DECISION] as { ref: unknown; field: string } | undefined;
    if (!properties || !named) return { timestamp, ...body } as Draft;
    const { [DECISION]: _, ...rest } = properties;
    return { timestamp, ...body, properties: { ...rest, [named.field]: resolveDecision(timestamp, named.ref) } } as Draft;
  });


/** Deep comparison of profile views with floats equal to 1e-9 (relative): the first differing path. */
export function firstDifference(actual: unknown, expected: unknown, path = '$'): string | undefined {
  if (typeof actual === 'number' && typeof expected === 'number') {
    const scale = Math.max(1, Math.abs(actual), Math.abs(expected));
    return Math.abs(actual - expected) <= 1e-9 * scale ? undefined : `${path}: ${actual} ≠ ${expected}`;
  }
  if (Array.isArray(actual) && Array.isArray(expected)) {
    if (actual.length !== expected.length) return `${path}: length ${actual.length} ≠ ${expected.length}`;
    for (let i = 0; i < actual.length; i++) {
      const d = firstDifference(actual[i], expected[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (actual && expected && typeof actual === 'object' && typeof expected === 'object') {
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    const keys = new Set([...Object.keys(a), ...Object.keys(e)].filter((k) => a[k] !== undefined || e[k] !== undefined));
    for (const key of keys) {
      const d = firstDifference(a[key], e[key], `${path}.${key}`);
      if (d) return d;
    }
    return undefined;
  }
  return Object.is(actual, expected) ? undefined : `${path}: ${JSON.stringify(actual)} ≠ ${JSON.stringify(expected)}`;
}

/** Statistics summed per (bucket, cell), as `bucket cellKey` → `impressions/clicks/conversions`, without empty sums. */
export function statisticsTotals(increments: Iterable<StatisticsIncrement>): Record<string, string> {
  const sums = new Map<string, [number, number, number]>();
  for (const { bucket, cell, counts } of increments) {
    const key = `${bucket} ${cellKey(cell)}`;
    const sum = sums.get(key) ?? [0, 0, 0];
    sums.set(key, [sum[0] + counts.impressions, sum[1] + counts.clicks, sum[2] + counts.conversions]);
  }
  return Object.fromEntries(
    [...sums]
      .filter(([, sum]) => sum.some((n) => n !== 0))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([key, sum]) => [key, sum.join('/')]),
  );
}

/**
 * The statistics a set of final profiles must have added, each given by the
 * events it holds (below the counted-outcomes bound), by the definition:
 * each (decision, action, kind) an event of the profile is an outcome of
 * (from the decision's customer: one of the profile's ids) adds 1 to the served action's cell, and each (decision, kind) adds 1 to
 * the control cell of each experiment whose holdout the decision's customer
 * was in. A click or a conversion is also an impression of that (decision,
 * action): the customer was shown what they acted on.
 */
export function expectedStatistics(profiles: readonly (readonly StoredEvent[])[], settings: ProfileSettings): Record<string, string> {
  const contextBy = (settings.learning ?? DEFAULT_OUTCOME_LEARNING).contextBy;
  const increments: StatisticsIncrement[] = [];
  for (const events of profiles) {
    const keys = new Set<string>();
    const units = new Set<string>();
    // The final profile holds every id its events were sent under.
    const ids = { anonymousIds: events.flatMap((e) => [e.userId, e.anonymousId].filter((id): id is string => id !== undefined)) };
    const count = (outcome: AttributedOutcome): void => {
      if (keys.has(outcome.key)) return;
      keys.add(outcome.key);
      const increment = outcomeIncrement(outcome, contextBy);
      increments.push(increment);
      const unit = `${outcome.kind} ${outcome.decision.issuedAt} ${outcome.decision.nonce}`;
      if (units.has(unit)) return;
      units.add(unit);
      for (const experiment of outcome.decision.holdouts) {
        const cell: StatisticsCell = {
          actionId: '',
          experiment,
          arm: CONTROL_ARM,
          context: learningContext(contextBy, outcome.decision),
          channel: outcome.decision.channel,
          ...(outcome.decision.placement !== undefined ? { placement: outcome.decision.placement } : {}),
        };
        increments.push({ ...increment, cell });
      }
    };
    for (const event of events) {
      const outcome = eventOutcome(event, settings, ids);
      if (!outcome) continue;
      if (outcome.kind !== 'impression') count({ ...outcome, kind: 'impression', key: `i${outcome.key.slice(1)}` });
      count(outcome);
    }
  }
  return statisticsTotals(increments);
}
