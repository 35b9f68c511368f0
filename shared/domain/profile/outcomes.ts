/**
 * Outcome attribution: which track events are outcomes of a decision
 * (impression, click, conversion), and whether one counts.
 *
 * An outcome counts only when
 * - its decision id (`properties.decision_id`, alias `decisionId`) opens
 *   with the service's decision key: an id the service did not issue, or a
 *   mangled one, counts for nothing;
 * - it comes from the customer the decision was made for: the id's customer
 *   tag (decision-id.ts `customerTag` of decide's customer key) is the tag
 *   of one of the ids the event is reported under (`CustomerIds`: the
 *   profile's user id, anonymous id, merged anonymous ids and experiment
 *   key, and the event's own ids), so a decision made for anonymous A still
 *   counts after A logs in as U and is merged into U, and nobody else's
 *   report counts for it. v1 and v2 ids carry no tag and are not checked
 *   (issued before the tag; they stop counting when their window passes);
 * - an event of a channel (`Push Notification …`, `Email …`, `SMS …`)
 *   names a decision made for that channel: a web decision reported as
 *   `Push Notification Received` or `Email Opened` counts for nothing, so
 *   one decision is never counted on two channels;
 * - the action it names (`action_id`, alias `actionId`; absent: the
 *   decision's first action) was served by that decision, and the variant it
 *   names (`variant`), if any, is the one served;
 * - it happened within the attribution window of the decision
 *   (`ATTRIBUTION_WINDOW_MS` after it for an impression or a click, the
 *   catalog's `learning.conversionWindow` for a conversion, and no earlier
 *   than `CLOCK_SKEW_MS` before it);
 * - its decision was issued after the newest erasure of the customer's ids
 *   (`erasedAt`: of the profile it is applied to and of the ids the event is
 *   reported under, profile/plan.ts) and after the erasure of the id it was
 *   issued to (`erasedIds`: the anonymous ids merged into the profile that
 *   were erased on their own before they were merged, matched by the
 *   decision's customer tag, `customerErasure`): a decision issued at or
 *   before it was made for the erased customer, and an outcome reported for
 *   it after they came back (a late click on last week's email, under the
 *   same id, or under the id of the user the returning visitor was later
 *   joined to) counts for nothing, though its customer tag matches
 *   (`issuedBeforeErasure`);
 * - the same (decision, action, kind) has not been counted on this profile
 *   already: a client that reports an impression twice, or both
 *   `Email Delivered` and `Email Opened`, counts one impression.
 * Every event, counted or not, stays in the history and in the per-name
 * event counts.
 *
 * The event names follow the Segment spec (Ecommerce: Promotion Viewed /
 * Clicked, Order Completed; Mobile: Push Notification Received / Tapped;
 * Email: Email Delivered / Opened / Link Clicked). The spec has no SMS
 * events: Kairos reads `SMS Delivered` and `SMS Link Clicked` by analogy.
 */
import type { Channel } from '../channels.ts';
import { attributedAction, customerTag, decisionReference, readDecisionId, MAX_SEALED_DECISION_ID_LENGTH, type DecidedAction, type DecisionKey, type DecisionRecord } from '../decide/decision-id.ts';

export type OutcomeKind = 'impression' | 'click' | 'conversion';

/** Outcome events by semantic name (lower case, single spaces); `channel`: the only channel whose decisions it reports on (absent: any). */
export const OUTCOME_EVENTS: Readonly<Record<string, { readonly kind: OutcomeKind; readonly channel?: Channel }>> = {
  'promotion viewed': { kind: 'impression' },
  'promotion clicked': { kind: 'click' },
  'push notification received': { kind: 'impression', channel: 'push' },
  'push notification tapped': { kind: 'click', channel: 'push' },
  'email delivered': { kind: 'impression', channel: 'email' },
  'email opened': { kind: 'impression', channel: 'email' },
  'email link clicked': { kind: 'click', channel: 'email' },
  'sms delivered': { kind: 'impression', channel: 'sms' },
  'sms link clicked': { kind: 'click', channel: 'sms' },
  'order completed': { kind: 'conversion' },
};

/** How long after its decision an impression or a click is attributed to it: 7 days, ms (a conversion: `learning.conversionWindow`). */
export const ATTRIBUTION_WINDOW_MS = 7 * 24 * 3_600_000;

/** How much earlier than its decision an outcome may be stamped (client clocks): 5 minutes, ms. */
export const CLOCK_SKEW_MS = 5 * 60_000;

/** An outcome of a decision that the service issued and that served what the outcome names. */
export interface AttributedOutcome {
  readonly kind: OutcomeKind;
  readonly channel: Channel;
  readonly decision: DecisionRecord;
  readonly action: DecidedAction;
  /**
   * When the decision was made, epoch ms: the time the outcome is recorded
   * at (contact history, caps, engagement), so that whichever of several
   * reports of one outcome counts, and in whatever order they arrive, the
   * profile is the same.
   */
  readonly decidedAt: number;
  /** What it counts for: `<kind initial>.<channel>.<issued s>.<nonce>.<action>` (see `parseOutcomeKey`). */
  readonly key: string;
}

const KIND_INITIAL: Readonly<Record<OutcomeKind, string>> = { impression: 'i', click: 'c', conversion: 'v' };
const KIND_OF_INITIAL: Readonly<Record<string, OutcomeKind>> = { i: 'impression', c: 'click', v: 'conversion' };
const NONCE = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * The ids of the customer an outcome event is reported for: those of the
 * profile it is applied to (userId, anonymousId, merged anonymousIds, the
 * experiment key) and the event's own userId and anonymousId; undefined
 * entries are skipped. Read lazily, and only for an id that carries a tag.
 */
export type CustomerIds = Iterable<string | undefined>;

/** Whether `decision` was made for the customer of `ids`: its tag is one of theirs; an id without a tag (v1, v2) is unbound. */
export function decidedFor(decision: Pick<DecisionRecord, 'customer'>, ids: CustomerIds): boolean {
  const tag = decision.customer;
  if (tag === undefined) return true;
  for (const id of ids) if (id !== undefined && customerTag(id) === tag) return true;
  return false;
}

/** Whether a decision issued at `decidedAt` (epoch ms) was issued at or before the erasure at `erasedAt` (epoch ms; undefined: none). */
export const decidedBefore = (decidedAt: number, erasedAt: number | undefined): boolean => erasedAt !== undefined && decidedAt <= erasedAt;

/**
 * Erased ids of a customer: an id (an anonymous id merged into the profile,
 * or the anonymous profile's own) → when it was erased, epoch ms
 * (state.ts `ProfileState.erasedAnonymousIds`).
 */
export type ErasedIds = Readonly<Record<string, number>>;

/**
 * The erasure of the id `decision` was issued to among `erasedIds` (epoch
 * ms): the newest of the ids whose customer tag (decision-id.ts
 * `customerTag`) is the decision's; undefined when none is, or the decision
 * carries no tag (v1, v2). Hashes an id only when there are erased ids.
 */
export function customerErasure(decision: Pick<DecisionRecord, 'customer'>, erasedIds: ErasedIds | undefined): number | undefined {
  const tag = decision.customer;
  if (tag === undefined || erasedIds === undefined) return undefined;
  let at: number | undefined;
  for (const [id, erased] of Object.entries(erasedIds)) {
    if (customerTag(id) === tag && (at === undefined || erased > at)) at = erased;
  }
  return at;
}

/**
 * Whether `decision` was issued at or before the erasure of its customer:
 * `erasedAt` (the newest erasure of the ids an event is reported under and
 * of the profile it is applied to, epoch ms; undefined: none), or the
 * erasure of the id it was issued to among `erasedIds` (`customerErasure`).
 * Such a decision was made for an erased customer: nothing reported for it
 * counts or reacts (profile/plan.ts).
 */
export function issuedBeforeErasure(decision: Pick<DecisionRecord, 'issuedAt' | 'customer'>, erasedAt: number | undefined, erasedIds?: ErasedIds): boolean {
  const issued = Date.parse(decision.issuedAt);
  return decidedBefore(issued, erasedAt) || decidedBefore(issued, customerErasure(decision, erasedIds));
}

const idText = (value: unknown, maxLength: number): string | undefined =>
  typeof value === 'string' && value.length > 0 && value.length <= maxLength ? value : undefined;

/**
 * The decision an event's properties name (`decision_id`, alias
 * `decisionId`), opened with `decisionKey` (decision-id.ts
 * `readDecisionId`); undefined when they name none, or an id the service did
 * not issue (or a mangled one).
 */
export function namedDecision(props: Readonly<Record<string, unknown>>, decisionKey: DecisionKey | undefined): DecisionRecord | undefined {
  const id = idText(props.decision_id, MAX_SEALED_DECISION_ID_LENGTH) ?? idText(props.decisionId, MAX_SEALED_DECISION_ID_LENGTH);
  if (id === undefined) return undefined;
  const decision = readDecisionId(id, decisionKey);
  return decision && NONCE.test(decision.nonce) ? decision : undefined;
}

/**
 * The outcome a track event is, or undefined when it is not one or does not
 * count by the rules above (the de-duplication is `countOutcomeOnce`'s).
 * `semanticName` is the event name normalised; `at` the event time (epoch ms);
 * `customer` the ids it is reported for (`CustomerIds`; undefined skips
 * that check, only to bound what an event may count, never to count it);
 * `conversionWindowMs` how long after its decision a conversion is
 * attributed to it (ms; the catalog's `learning.conversionWindow`);
 * `erasedAt` the newest erasure of the customer's ids (epoch ms; undefined:
 * none known) and `erasedIds` the customer's ids erased on their own
 * (`ErasedIds`), at or before whose erasure a decision counts no outcome
 * (`issuedBeforeErasure`).
 */
export function attributeOutcome(
  semanticName: string,
  props: Readonly<Record<string, unknown>>,
  at: number,
  customer: CustomerIds | undefined,
  decisionKey: DecisionKey | undefined,
  conversionWindowMs: number = ATTRIBUTION_WINDOW_MS,
  erasedAt?: number,
  erasedIds?: ErasedIds,
): AttributedOutcome | undefined {
  const event = OUTCOME_EVENTS[semanticName];
  if (!event) return undefined;
  const decision = namedDecision(props, decisionKey);
  if (!decision) return undefined;
  if (event.channel !== undefined && event.channel !== decision.channel) return undefined;
  const named = props.action_id ?? props.actionId;
  if (named !== undefined && typeof named !== 'string') return undefined;
  const action = attributedAction(decision, named);
  if (!action) return undefined;
  // A named variant must be the one served; an empty or absent one names none.
  if (typeof props.variant === 'string' && props.variant !== '' && props.variant !== action.variant) return undefined;
  const decidedAt = Date.parse(decision.issuedAt);
  const window = event.kind === 'conversion' ? conversionWindowMs : ATTRIBUTION_WINDOW_MS;
  if (!(at >= decidedAt - CLOCK_SKEW_MS && at <= decidedAt + window)) return undefined;
  if (issuedBeforeErasure(decision, erasedAt, erasedIds)) return undefined;
  if (customer !== undefined && !decidedFor(decision, customer)) return undefined;
  const channel = decision.channel;
  return {
    kind: event.kind,
    channel,
    decision,
    action,
    decidedAt,
    key: `${KIND_INITIAL[event.kind]}.${channel}.${decisionReference(decision)}.${action.actionId}`,
  };
}

/**
 * The impression a click or a conversion implies: the customer acted on
 * what the decision served, so they were shown it. The same outcome as a
 * reported impression of that decision's action (kind `impression`, the
 * same key `i.<channel>.<issued s>.<nonce>.<action>`), so whichever of the
 * two is counted first is the one counted, once: the profile counts it
 * before the click or conversion that implies it when no impression of that
 * action was counted (apply.ts), and a report of the impression afterwards
 * counts nothing. Undefined for an impression.
 */
export function impliedImpression(outcome: AttributedOutcome): AttributedOutcome | undefined {
  if (outcome.kind === 'impression') return undefined;
  return { ...outcome, kind: 'impression', key: `${KIND_INITIAL.impression}${outcome.key.slice(1)}` };
}

/** What a counted-outcome key names. */
export interface OutcomeKeyParts {
  readonly kind: OutcomeKind;
  readonly channel: Channel;
  /** The decision: `<issued s>.<nonce>`. */
  readonly decision: string;
  readonly actionId: string;
}

/** The parts of a key made by `attributeOutcome` (the action id is last: it may hold dots). */
export function parseOutcomeKey(key: string): OutcomeKeyParts {
  const [kind, channel, issued, nonce, ...action] = key.split('.');
  return {
    kind: KIND_OF_INITIAL[kind as string] as OutcomeKind,
    channel: channel as Channel,
    decision: `${issued ?? ''}.${nonce ?? ''}`,
    actionId: action.join('.'),
  };
}

/** The decision an outcome key names: `<issued s>.<nonce>` (the key of a send's contact, `ProfileState.sent`). */
export const decisionOfOutcome = (key: string): string => parseOutcomeKey(key).decision;

/** The decision of a decision record: `<issued s>.<nonce>`, as `decisionOfOutcome` reads it from an outcome's key. */
export const decisionOfRecord = (record: Pick<DecisionRecord, 'issuedAt' | 'nonce'>): string =>
  `${Math.floor(Date.parse(record.issuedAt) / 1000)}.${record.nonce}`;

/** Counted outcome keys kept on a profile; past it the oldest decisions' keys are dropped. */
export const COUNTED_OUTCOMES_LIMIT = 200;

const olderFirst = ([ka, ta]: [string, number], [kb, tb]: [string, number]): number => ta - tb || (ka < kb ? -1 : ka > kb ? 1 : 0);

/**
 * Record `outcome` as counted in `counted` (key → decision time, epoch ms)
 * unless it already is; true when it counts now. When the record is full,
 * the oldest decision's key is dropped, and an outcome of a decision no
 * newer than the oldest kept cannot be proven new: it does not count (never
 * twice, at the cost of a very late report counting for nothing; only this
 * bound can make the counts depend on arrival order).
 */
export function countOutcomeOnce(counted: Record<string, number>, outcome: Pick<AttributedOutcome, 'key' | 'decidedAt'>): boolean {
  if (Object.hasOwn(counted, outcome.key)) return false;
  const entries = Object.entries(counted);
  if (entries.length >= COUNTED_OUTCOMES_LIMIT) {
    const oldest = entries.reduce((a, b) => (olderFirst(a, b) <= 0 ? a : b));
    if (olderFirst([outcome.key, outcome.decidedAt], oldest) <= 0) return false;
    delete counted[oldest[0]];
  }
  counted[outcome.key] = outcome.decidedAt;
  return true;
}

/**
 * The counted outcomes of two profiles joined (an anonymous profile merged
 * into a known one): the union, bounded to the newest decisions, and the
 * keys both had counted, whose second count the merge takes back.
 */
export function mergeCountedOutcomes(
  a: Readonly<Record<string, number>>,
  b: Readonly<Record<string, number>>,
): { readonly counted: Record<string, number>; readonly countedTwice: readonly string[] } {
  const countedTwice = Object.keys(b).filter((key) => Object.hasOwn(a, key));
  const entries = Object.entries({ ...a, ...b });
  if (entries.length > COUNTED_OUTCOMES_LIMIT) entries.sort(olderFirst).splice(0, entries.length - COUNTED_OUTCOMES_LIMIT);
  return { counted: Object.fromEntries(entries), countedTwice };
}
