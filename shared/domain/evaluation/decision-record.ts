/**
 * The decision record: what the decision log keeps of every decision, for
 * off-policy evaluation and audit. The decide function logs one per
 * decision it answers (degraded and fallback answers included; simulations
 * are not traffic and are not logged) as one structured line of its logger
 * (no network call on the hot path), built by
 * shared/domain/decide/decision-log.ts `decisionRecord`. Deployed, a
 * CloudWatch Logs subscription filter selects the lines whose `message` is
 * DECISION_RECORD_MESSAGE and Amazon Data Firehose delivers them to S3,
 * where a Glue table with the columns below lets Athena query them
 * (infra/constructs/decision-log.ts). Locally, the stack appends the same
 * lines to `<data folder>/decisions/<yyyy-mm-dd>.jsonl` (local/decision-log.ts).
 *
 * One definition: the record's shape (`DecisionLogRecord`), the log message
 * that marks it and the Glue columns all live here.
 *
 * Pseudonymisation: `customer` is a keyed hash (HMAC-SHA-256, base64url) of
 * the customer key; the log holds no user id, anonymous id, trait or event.
 * Erasure: the log cannot be searched by user id; records expire with the
 * bucket's lifecycle (the deployed retention), which bounds how long a
 * pseudonymous record of an erased customer outlives the erasure.
 */

/** The `message` of a decision record's log line (the subscription filter's pattern matches it). */
export const DECISION_RECORD_MESSAGE = 'decision record';

/** The log line's key that holds the record. */
export const DECISION_RECORD_KEY = 'decision';

/** One candidate of the decision: eligible (it passed every check), with its score and selection probability. */
export interface LoggedCandidate {
  readonly actionId: string;
  readonly variant?: string;
  /** propensity × value × weight. */
  readonly score: number;
  /** The probability that the policy served it at position 1, [0, 1]. */
  readonly probability: number;
}

/** What the decision log keeps of one decision. */
export interface DecisionLogRecord {
  /**
   * The decision id as the client received it (sealed, decision-id.ts
   * `sealDecisionId`): what outcome events carry back in
   * `properties.decision_id`, so a record joins its outcomes on this string.
   */
  readonly decisionId: string;
  /** When the decision was made, ISO-8601. */
  readonly at: string;
  readonly catalogVersion: string;
  readonly channel: string;
  readonly placement?: string;
  /** Keyed hash of the customer key (pseudonymous; decision-log.ts `customerPseudonym`). */
  readonly customer: string;
  /** The learning context decided in (persona or segment id; `-` for none). */
  readonly learningContext?: string;
  readonly fallback: boolean;
  readonly degraded: boolean;
  /**
   * Every candidate that passed every check, best first, with its chance of
   * position 1 (decide/types.ts `DecisionLogFacts.eligible`: one entry per
   * arm where the bandit decides); sums to at most 1. Empty for a degraded
   * decision and when nothing was eligible (then `served` holds the fallbacks).
   */
  readonly eligible: readonly LoggedCandidate[];
  /**
   * What was served, in order, as the answer has it: score, and the
   * probability each was chosen with among the first `limit` (API.md §4;
   * 1 for fallbacks).
   */
  readonly served: readonly LoggedCandidate[];
  /** For the sampled share of decisions (`decisionLog.sample`): what the catalog's rules read, enough to replay the decision. */
  readonly features?: {
    readonly segments: readonly string[];
    readonly persona?: string;
    readonly scores: Readonly<Record<string, number>>;
    /**
     * Profile fields the catalog's rules reference (compiled catalog
     * `ruleFields`), by path (`traits.tier`, `stats.eventCounts["Cart Abandoned"]`),
     * each value as JSON text; a field the profile lacks is absent.
     */
    readonly fields: Readonly<Record<string, string>>;
    /** The request context, each value as JSON text. */
    readonly context: Readonly<Record<string, string>>;
  };
}

/** Hive type of a candidate list. */
const CANDIDATES = 'array<struct<actionId:string,variant:string,score:double,probability:double>>';

/**
 * The Glue (Hive) columns of a decision log line as Firehose delivers it
 * (the Powertools JSON line): the record under DECISION_RECORD_KEY, and the
 * line's own timestamp and message. Partitioned by `dt` (yyyy-MM-dd, UTC).
 */
export const DECISION_LOG_COLUMNS: readonly { readonly name: string; readonly type: string }[] = [
  { name: 'timestamp', type: 'string' },
  { name: 'message', type: 'string' },
  {
    name: DECISION_RECORD_KEY,
    type:
      'struct<decisionId:string,at:string,catalogVersion:string,channel:string,placement:string,customer:string,learningContext:string,' +
      `fallback:boolean,degraded:boolean,eligible:${CANDIDATES},served:${CANDIDATES},` +
      'features:struct<segments:array<string>,persona:string,scores:map<string,double>,fields:map<string,string>,context:map<string,string>>>',
  },
];
