/**
 * Off-policy evaluation of a candidate catalog on the decision log, as a map
 * and a reduce, both pure:
 *
 * - map (`evaluatePartition`): one partition of the log (a JSONL file of a
 *   day, an S3 object) → `PartitionSums`. Each decision record that carries
 *   `features` is replayed through the candidate (replay.ts
 *   `replayDecision`, the one decide) and its reward joined from the
 *   outcomes (`indexOutcomes`); the estimators' sums (estimators.ts
 *   `addDecision`) are added per decision.
 * - reduce (`reduceEvaluation`): the partitions' sums merged, then IPS,
 *   SNIPS and DR with their 95% intervals (estimators.ts
 *   `estimateFromSums`) beside the logged policy's observed rate, or a
 *   refusal with its reason when the logging policy did not explore what
 *   the candidate would do.
 *
 * What is evaluated: position 1 of the logging policy's draw — the arm its
 * ranking put first (the bandit's draw, or the first of the deterministic
 * ranking) — and the reward of showing it there. Its reward is 1
 * when an outcome of the candidate's reward kind (`learning.reward`: click
 * or conversion) was counted for that action of that decision by the
 * attribution rules (profile/outcomes.ts `attributeOutcome`: the service's
 * own decision id, reported by the customer it was made for, the action it
 * served, within the attribution or conversion window), else 0. The logging
 * policy's probability is the record's position-1 probability of that arm
 * (its eligible entry: the chance decide served it with, an arm that does
 * not render for the customer left out of the draw with chance 0 and the
 * others re-normalised, decide.ts; in records of earlier releases that name
 * a first-ranked arm not rendered, that arm's, below); its support, the
 * eligible arms with a probability above 0 (and what it served). The
 * direct method's reward model q̂(x, a) is the posterior mean of arm a in
 * the decision's learning context, channel and placement from the learning
 * statistics (learning/statistics.ts `posterior`, the candidate's prior and
 * reward kind); 0 for serving nothing.
 *
 * Decide now logs the chance each arm is served with for the customer, an
 * arm whose content does not render at 0, so a decision is weighed by the
 * chance of what it showed: E[w·r | x] = Σ_{a ∈ R(x)} h(a|x) r(x, a) over
 * the arms R(x) that render, as below, with every draw shown. Records
 * written by earlier releases drew among every eligible arm and may name
 * a first-ranked arm that could not be rendered (the record's
 * `unrendered`, version 5: its template failed on this customer's data,
 * and decide served the next ranked arm in its place). The draw put that arm u first
 * with its logged chance π(u), exact over every eligible arm, so the
 * decision is evaluated as the event "u drawn, not shown": it counts in n
 * (replayed, in support when the candidate's choices are), its reward is 0
 * (the outcome of what was shown in u's place is credited to nothing: it
 * belongs to the substitution, not to a draw of that arm), and it matches
 * no candidate choice, not even a candidate whose replayed position-1
 * choice is u itself: the candidate's replay goes through the same decide,
 * so it could not show u either, and what it would show in u's place (and
 * earn) is not what this record observed. Such a decision adds weight 0.
 * A decision whose every eligible arm failed (the fallbacks, or nothing,
 * served) is not such an event: what it showed did not depend on the draw,
 * so it is evaluated as what it served with probability 1, as when nothing
 * was eligible. Both are counted apart as `unrendered`.
 *
 * Why that keeps IPS unbiased. For a decision x let π(a|x) be the logged
 * chance that the draw puts arm a first (exact: it is the distribution the
 * draw was made from), R(x) the arms whose content renders for x, r(x, a)
 * the reward of showing a at position 1, and h(a|x) the candidate's
 * replayed position-1 probabilities. The logged event e is the drawn arm a
 * with reward r(x, a) when a ∈ R(x), else "a not shown" with reward 0; the
 * weight is w = h(a|x) / π(a|x) for a shown a and 0 for one not shown. So
 *   E[w·r | x] = Σ_{a ∈ R(x)} π(a|x) · h(a|x)/π(a|x) · r(x, a) = Σ_{a ∈ R(x)} h(a|x) r(x, a),
 * the candidate's reward at position 1 wherever its choice renders: its
 * true rate for a candidate whose choices render (π(a|x) > 0 for them:
 * the support check). Weighing the served arm by its own π, as records
 * before version 5 must be, is biased on every decision of a customer for
 * whom some eligible arm fails, not only where the failure was drawn: arms
 * A and B at π = 0.5, A failing for customer c, B is shown to c every time
 * while each record says 0.5, so a candidate serving B is credited twice
 * B's rate on c. SNIPS divides by Σw, and E[w | x] = Σ_{a ∈ R(x)} h(a|x),
 * which is 1 for such a candidate; DR's correction has expectation
 * Σ_{a ∈ R(x)} h(a|x)(r(x, a) − q̂(x, a)), so it too gives the true rate.
 *
 * Limits: the candidate's own render failures. Its replay renders on the
 * profile rebuilt from the record's features, which hold only the fields
 * the logging catalog's rules read, so a template failure that depends on
 * another field (or on the candidate's own templates reading one) is not
 * reproduced there. A deterministic candidate's replayed choice is what
 * decide serves, after skipping what did not render in the replay: where
 * the replay reproduces the failure, that is the arm it would really show
 * and the estimate is its true rate; where it does not, its choice is an
 * arm that cannot be shown, which matches nothing (IPS counts 0 there). A
 * bandit candidate's replayed distribution is its draw over all its
 * eligible arms as its policy computes them (replay.ts reads the arm
 * probabilities, before decide leaves out what does not render in the
 * replay); for its draws of an arm outside R(x), what it would show
 * instead is not estimated: IPS counts them 0 (short of its rate by the
 * reward of its substitutes), SNIPS gives its rate over the decisions
 * where its draw renders (Σw/n tends to its share of draws that render),
 * and DR puts q̂(x, a) for them.
 *
 * Left out, and counted: records without features (not sampled), degraded
 * decisions (the profile was not read: nothing to replay), lines that are
 * not decision records, records outside the requested time range, and
 * duplicates: a decision whose reference was already read by the same map
 * step (`PartitionInput.seen`, shared by the partitions one step reads:
 * `mapStep`). Firehose and the log subscription deliver at least once, so
 * the same record may arrive twice; counted twice, its decision would
 * weigh double. The first delivery read is the one evaluated. A map step
 * that sees every copy of its decisions counts each once: locally one step
 * reads every file; deployed, one step reads each shard, to which the
 * shuffle sent every copy of its decisions' records (shuffle.ts).
 */
import type { CompiledCatalog } from '../catalog/compiled.ts';
import type { LearningStats } from '../decide/types.ts';
import { decisionReference, decodeDecisionId, readDecisionId, type DecisionKey } from '../decide/decision-id.ts';
import { NO_CONTEXT, posterior } from '../learning/statistics.ts';
import type { ArmProbabilityCache } from '../learning/policy.ts';
import { attributeOutcome, parseOutcomeKey, type OutcomeKind } from '../profile/outcomes.ts';
import { semanticName } from '../semantic-events.ts';
import type { Channel } from '../channels.ts';
import { type DecisionLogRecord } from './decision-record.ts';
import { EMPTY_SUMS, addDecision, estimateFromSums, inSupport, mergeSums, type OffPolicyEstimate, type OffPolicySums } from './estimators.ts';
import { NO_ACTION, armKey, armOfKey, replayCache, replayDecision } from './replay.ts';

// The reader of a log text lives with the record (the decision counts read it without the evaluation).
export { decisionRecordsOfText } from './decision-record.ts';

/** An outcome event as stored (the Events table's track events): name, properties, time (ISO-8601), and the ids it was sent under. */
export interface OutcomeEvent {
  readonly event: string;
  readonly properties?: Readonly<Record<string, unknown>>;
  readonly timestamp: string;
  readonly userId?: string;
  readonly anonymousId?: string;
}

/**
 * The outcomes of decisions, by decision (`decisionRef`: its second and
 * nonce, whether the id is sealed or plain): each entry `<kind> <arm key>`
 * (replay.ts `armKey`) once. Plain JSON (a map step reads it from a file).
 */
export type OutcomeIndex = Readonly<Record<string, readonly string[]>>;

/**
 * A decision's reference in the outcome index: `<issued s>.<nonce>` (the
 * decision part of profile/outcomes.ts's counted-outcome key), from its id
 * sealed with `key` or plain; undefined for an id that does not open.
 */
export function decisionRef(id: string, key: DecisionKey | undefined): string | undefined {
  const decision = (key ? readDecisionId(id, key) : undefined) ?? decodeDecisionId(id);
  return decision ? decisionReference(decision) : undefined;
}

/** A record's decision reference (`decisionRef`): the one it logs (version 3 on), else its id's; undefined for an id that does not open. */
export const referenceOf = (record: DecisionLogRecord, key: DecisionKey | undefined): string | undefined => record.decisionRef ?? decisionRef(record.decisionId, key);

const outcomeEntry = (kind: OutcomeKind, arm: string): string => `${kind} ${arm}`;

/**
 * The logged event of a draw whose first-ranked arm could not be rendered
 * (the module's docstring): a key that no candidate choice (an arm key, or
 * NO_ACTION) is, so it never matches.
 */
const notShown = (arm: string): string => `\u0001not shown\u0001${arm}`;

/**
 * The outcomes that count among `events` (profile/outcomes.ts
 * `attributeOutcome` with `decisionKey` — undefined: plain ids, as pure
 * tests write them — and the conversion window, ms), indexed by decision.
 * The customer an outcome must come from is matched against the event's own
 * userId and anonymousId only (the log has no profiles): an outcome that the
 * profile counts through a merged identity alone (a decision for anonymous A
 * reported under user U without A) is not joined here. `erasedAt`: the
 * newest erasure of an event's userId and anonymousId (epoch ms; undefined:
 * none), as the profile counts it: an outcome of a decision issued at or
 * before it was the erased customer's and is joined to nothing, though the
 * customer came back under the same id (absent: no erasure is known).
 */
export function indexOutcomes(
  events: Iterable<OutcomeEvent>,
  decisionKey: DecisionKey | undefined,
  conversionWindowMs: number,
  erasedAt?: (event: OutcomeEvent) => number | undefined,
): OutcomeIndex {
  const index = new Map<string, Set<string>>();
  for (const event of events) {
    const at = Date.parse(event.timestamp);
    if (!Number.isFinite(at)) continue;
    const props = event.properties ?? {};
    const outcome = attributeOutcome(semanticName(event.event), props, at, [event.userId, event.anonymousId], decisionKey, conversionWindowMs, erasedAt?.(event));
    if (!outcome) continue;
    const id = parseOutcomeKey(outcome.key).decision;
    let entries = index.get(id);
    if (!entries) index.set(id, (entries = new Set()));
    entries.add(outcomeEntry(outcome.kind, armKey(outcome.action.actionId, outcome.action.variant)));
  }
  const out: Record<string, string[]> = {};
  for (const [id, entries] of index) out[id] = [...entries];
  return out;
}

/** What a map step returns for one partition: counts and the estimators' sums. */
export interface PartitionSums {
  /** Decision records read (malformed lines apart). */
  readonly records: number;
  /** Lines that were not decision records, records whose decision id does not open or whose served action has no chance in (0, 1]. */
  readonly malformed: number;
  /** Records of a decision already read by this map step (its reference in `PartitionInput.seen`): a second delivery, left out. */
  readonly duplicates: number;
  /** Records left out: outside the time range, without features, degraded. */
  readonly outsideRange: number;
  readonly notSampled: number;
  readonly degraded: number;
  /**
   * Replayed decisions whose first-ranked arm could not be rendered (the
   * record's `unrendered`): counted in the sums, matching no candidate
   * choice, unless every eligible arm failed (the module's docstring).
   */
  readonly unrendered: number;
  /** Replayed decisions whose candidate choice lay outside the logging policy's support, by the candidate's arm key. */
  readonly unsupported: Readonly<Record<string, number>>;
  /** The estimators' sums over the replayed decisions. */
  readonly sums: OffPolicySums;
}

export const EMPTY_PARTITION: PartitionSums = Object.freeze({
  records: 0,
  malformed: 0,
  duplicates: 0,
  outsideRange: 0,
  notSampled: 0,
  degraded: 0,
  unrendered: 0,
  unsupported: {},
  sums: EMPTY_SUMS,
});

export interface PartitionInput {
  readonly candidate: CompiledCatalog;
  readonly outcomes: OutcomeIndex;
  /** The key the records' decision ids are sealed with (absent: plain ids). */
  readonly decisionKey?: DecisionKey;
  /** The learning statistics the candidate decides with and the direct method reads (absent: the prior). */
  readonly learning?: LearningStats;
  /** Only decisions made in [from, to), epoch ms. */
  readonly from?: number;
  readonly to?: number;
  /** Kept across partitions of one process (replay.ts `replayCache`). */
  readonly cache?: ArmProbabilityCache;
  /**
   * The decision references (`decisionRef`) read so far by this map step,
   * shared by the partitions it reads and added to here: a record whose
   * reference is in it is a duplicate delivery and left out. Absent: a new
   * set, so duplicates within this partition only.
   */
  readonly seen?: Set<string>;
}

/**
 * The map step: one partition's records → its sums (see the module's
 * docstring for what counts).
 */
export function evaluatePartition(records: Iterable<DecisionLogRecord>, input: PartitionInput, malformedLines = 0): PartitionSums {
  let malformed = malformedLines;
  let duplicates = 0;
  const { candidate, outcomes, learning } = input;
  const cache = input.cache ?? replayCache();
  const seen = input.seen ?? new Set<string>();
  const reward = candidate.learning.reward;
  const prior = candidate.learning.prior;
  let count = 0;
  let outsideRange = 0;
  let notSampled = 0;
  let degraded = 0;
  let unrendered = 0;
  const unsupported: Record<string, number> = {};
  let sums = EMPTY_SUMS;
  for (const record of records) {
    count++;
    // A decision id that does not open cannot be joined with its outcomes: a line that is not a record of ours.
    const ref = referenceOf(record, input.decisionKey);
    if (ref === undefined) {
      malformed++;
      continue;
    }
    if (seen.has(ref)) {
      duplicates++;
      continue;
    }
    seen.add(ref);
    const at = Date.parse(record.at);
    if ((input.from !== undefined && at < input.from) || (input.to !== undefined && at >= input.to)) {
      outsideRange++;
      continue;
    }
    if (record.degraded) {
      degraded++;
      continue;
    }
    if (!record.features) {
      notSampled++;
      continue;
    }
    const first = record.served[0];
    // The draw's first arm was not shown, and a lower ranked one was in its place (not the fallbacks: every arm failed).
    const drawnNotShown = record.unrendered !== undefined && first !== undefined && !record.fallback ? record.unrendered : undefined;
    const served = drawnNotShown
      ? notShown(armKey(drawnNotShown.actionId, drawnNotShown.variant))
      : first
        ? armKey(first.actionId, first.variant)
        : NO_ACTION;
    // Position 1's chance: the eligible entry's (`served` holds the chance among the first `limit`); 1 for a fallback or nothing.
    const eligible = drawnNotShown ?? record.eligible.find((c) => armKey(c.actionId, c.variant) === served);
    const loggingProbability = eligible ? eligible.probability : first && record.eligible.length > 0 ? first.probability : 1;
    if (!(loggingProbability > 0 && loggingProbability <= 1)) {
      malformed++;
      continue;
    }
    if (record.unrendered !== undefined) unrendered++;
    const loggedSupport = new Set(record.eligible.filter((c) => c.probability > 0).map((c) => armKey(c.actionId, c.variant)));
    loggedSupport.add(served);
    const { probabilities } = replayDecision(candidate, record, { ...(learning ? { learning } : {}), cache });
    const context = record.learningContext ?? NO_CONTEXT;
    const q = (arm: string): number => {
      if (arm === NO_ACTION) return 0;
      const { actionId, variant } = armOfKey(arm);
      const { alpha, beta } = posterior(learning?.get(actionId, variant, context, record.channel as Channel, record.placement), prior, reward);
      return alpha / (alpha + beta);
    };
    const directEstimates: Record<string, number> = { [served]: drawnNotShown ? 0 : q(served) };
    for (const arm of Object.keys(probabilities)) directEstimates[arm] = q(arm);
    // A draw not shown earns nothing: the outcome of what stood in for it is not its.
    const rewarded = !drawnNotShown && Object.hasOwn(outcomes, ref) && (outcomes[ref] ?? []).includes(outcomeEntry(reward, served));
    const decision = {
      served,
      loggingProbability,
      reward: rewarded ? 1 : 0,
      candidateProbabilities: probabilities,
      loggedSupport: [...loggedSupport],
      directEstimates,
    };
    if (!inSupport(decision)) {
      for (const [arm, p] of Object.entries(probabilities)) if (p > 0 && !loggedSupport.has(arm)) unsupported[arm] = (unsupported[arm] ?? 0) + 1;
    }
    sums = addDecision(sums, decision);
  }
  return { records: count, malformed, duplicates, outsideRange, notSampled, degraded, unrendered, unsupported, sums };
}

/**
 * One map step over partitions read in turn (the files of a local log, the
 * parts of a deployed shard): a function taking each partition's records
 * and unreadable lines (`decisionRecordsOfText`) to its sums, with one
 * `seen` across the calls, so a decision whose records sit in several of
 * them is evaluated once, its first record read.
 */
export function mapStep(input: Omit<PartitionInput, 'seen'>): (partition: { readonly records: Iterable<DecisionLogRecord>; readonly malformed: number }) => PartitionSums {
  const step: PartitionInput = { ...input, cache: input.cache ?? replayCache(), seen: new Set<string>() };
  return ({ records, malformed }) => evaluatePartition(records, step, malformed);
}

/** Two partitions' results together (commutative, associative). */
export function mergePartitions(a: PartitionSums, b: PartitionSums): PartitionSums {
  const unsupported: Record<string, number> = { ...a.unsupported };
  for (const [arm, n] of Object.entries(b.unsupported)) unsupported[arm] = (unsupported[arm] ?? 0) + n;
  return {
    records: a.records + b.records,
    malformed: a.malformed + b.malformed,
    duplicates: a.duplicates + b.duplicates,
    outsideRange: a.outsideRange + b.outsideRange,
    notSampled: a.notSampled + b.notSampled,
    degraded: a.degraded + b.degraded,
    unrendered: a.unrendered + b.unrendered,
    unsupported,
    sums: mergeSums(a.sums, b.sums),
  };
}

/** Least share of the replayed decisions the candidate's choice must lie in the logging policy's support on, by default. */
export const DEFAULT_MIN_SUPPORT = 0.9;

/** What counts the reduce step reports with either answer. */
export interface EvaluationCounts {
  readonly records: number;
  readonly malformed: number;
  /** Records of a decision read before by the same map step (`PartitionSums.duplicates`). */
  readonly duplicates: number;
  readonly outsideRange: number;
  readonly notSampled: number;
  readonly degraded: number;
  /** Decisions replayed through the candidate. */
  readonly replayed: number;
  /** Of those, decisions whose first-ranked arm could not be rendered (`PartitionSums.unrendered`). */
  readonly unrendered: number;
}

/** The reduce step's answer: the estimates, or why there are none. */
export type Evaluation =
  | ({ readonly ok: true; readonly reward: 'click' | 'conversion'; readonly estimate: OffPolicyEstimate } & EvaluationCounts)
  | ({ readonly ok: false; readonly reason: string } & EvaluationCounts);

/**
 * The reduce step: the partitions' sums → the estimates of the candidate's
 * reward rate (estimators.ts `estimateFromSums`), or a refusal when fewer
 * than `minSupport` (default DEFAULT_MIN_SUPPORT) of the replayed decisions
 * fall in the logging policy's support — the estimate would speak of a
 * different population than the candidate's traffic — naming the arms the
 * logging policy never served where the candidate would.
 */
export function reduceEvaluation(
  parts: Iterable<PartitionSums>,
  options: { readonly reward: 'click' | 'conversion'; readonly minSupport?: number },
): Evaluation {
  let all = EMPTY_PARTITION;
  for (const part of parts) all = mergePartitions(all, part);
  const counts: EvaluationCounts = {
    records: all.records,
    malformed: all.malformed,
    duplicates: all.duplicates,
    outsideRange: all.outsideRange,
    notSampled: all.notSampled,
    degraded: all.degraded,
    replayed: all.sums.decisions,
    unrendered: all.unrendered,
  };
  const minSupport = options.minSupport ?? DEFAULT_MIN_SUPPORT;
  const { decisions, evaluated } = all.sums;
  if (decisions === 0) {
    return {
      ok: false,
      reason: `no decision to replay (${all.records} record(s) read; ${all.notSampled} without features, ${all.degraded} degraded, ${all.outsideRange} outside the range, ${all.duplicates} duplicates; ${all.malformed} line(s) unreadable)`,
      ...counts,
    };
  }
  if (evaluated === 0 || evaluated < minSupport * decisions) {
    const arms = Object.entries(all.unsupported)
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, 5)
      .map(([arm, n]) => `${describeArm(arm)} on ${n}`)
      .join(', ');
    return {
      ok: false,
      reason:
        `no support: the logging policy never served what the candidate would choose on ${decisions - evaluated} of ${decisions} replayed decisions ` +
        `(${formatShare(evaluated / decisions)} evaluable, at least ${formatShare(minSupport)} needed)${arms ? `; the candidate's choices it never explored: ${arms}` : ''}`,
      ...counts,
    };
  }
  return { ok: true, reward: options.reward, estimate: estimateFromSums(all.sums), ...counts };
}

const formatShare = (share: number): string => `${(share * 100).toFixed(1)}%`;

const describeArm = (arm: string): string => {
  if (arm === NO_ACTION) return 'serving nothing';
  const { actionId, variant } = armOfKey(arm);
  return variant === undefined ? actionId : `${actionId} (variant ${variant})`;
};
