/**
 * The decision record: what the decision log keeps of every decision, for
 * off-policy evaluation and audit. Meant to be one structured log line of
 * the decide function's logger (no network call on the hot path); decide
 * does not write it yet. Deployed, a CloudWatch Logs subscription filter
 * selects the lines whose `message` is DECISION_RECORD_MESSAGE and Amazon
 * Data Firehose delivers them to S3, where a Glue table with the columns
 * below lets Athena query them (infra/constructs/decision-log.ts).
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
  readonly decisionId: string;
  /** When the decision was made, ISO-8601. */
  readonly at: string;
  readonly catalogVersion: string;
  readonly channel: string;
  readonly placement?: string;
  /** Keyed hash of the customer key (pseudonymous). */
  readonly customer: string;
  readonly learningContext?: string;
  readonly fallback: boolean;
  readonly degraded: boolean;
  readonly eligible: readonly LoggedCandidate[];
  /** What was served, in order, with the probability each was chosen with. */
  readonly served: readonly LoggedCandidate[];
  /** For the sampled share of decisions (`decisionLog.sample`): what the catalog's rules read, enough to replay the decision. */
  readonly features?: {
    readonly segments: readonly string[];
    readonly persona?: string;
    readonly scores: Readonly<Record<string, number>>;
    /** Profile fields the catalog's rules reference, by path, as JSON text. */
    readonly fields: Readonly<Record<string, string>>;
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
