/**
 * The one declaration of every Lambda function: its entry, what it may do
 * to each table (least privilege, turned into IAM grants by the CDK stack),
 * and its memory. The local stack imports the same handlers.
 */
import type { TableName } from '#store/tables.ts';
import { ERASURE_RECORD_PREFIX } from '#store/items.ts';

/**
 * `write` puts without reading (ingest's conditional puts need no read
 * right); `put` is `PutItem` alone (the dispatcher's conditional puts of
 * due timers: no batch, no update, no delete, no read);
 * `readdelete` is `read` and `DeleteItem` (the erasure's deletes of a
 * customer's emissions: no put, no update, no batch).
 */
/**
 * What a function may do to a table: `read` (every read action), `get` (GetItem and BatchGetItem only: items by key,
 * limited to the partition keys of `leadingKeys` when given), `write`, `readwrite`, `put` (PutItem only, limited the
 * same way), `readdelete` (`read` and DeleteItem).
 */
export type Access = 'read' | 'get' | 'write' | 'readwrite' | 'put' | 'readdelete';

export interface FunctionDefinition {
  /** Path of the handler module from the repository root; exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly tables: Partial<Record<TableName, Access>>;
  /**
   * The partition keys a `put` may write or a `get` may read, as
   * `dynamodb:LeadingKeys` patterns (IAM `StringLike`: `*` is any suffix):
   * the only items the function can create, or read, in that table.
   */
  readonly leadingKeys?: Partial<Record<TableName, readonly string[]>>;
  /** Reads the Events stream (the profile function). */
  readonly readsStream?: boolean;
  /** Seals (decide) or opens (profile, evaluation) decision ids: gets KAIROS_DECISION_KEY. */
  readonly decisionKey?: boolean;
  /**
   * Reads or writes S3 objects (shared/aws-requests.ts), an XML protocol: its
   * bundle keeps aws-lite's XML parser, which every other function's bundle
   * leaves out (infra/bundling.ts `bundleExternals`).
   */
  readonly s3?: boolean;
  readonly memorySize: number;
  readonly timeoutSeconds: number;
}

export const functionDefinitions = {
  ingest: {
    entry: 'functions/ingest/handler.ts',
    description: 'Segment-compatible event ingestion: validate, deduplicate, store',
    tables: { Events: 'write', Control: 'read' },
    memorySize: 1024,
    timeoutSeconds: 10,
  },
  profile: {
    entry: 'functions/profile/handler.ts',
    description: 'Applies the Events stream to the customer profiles',
    // Events: deletes an event accepted before its customer's erasure that arrives after it.
    // Outbox: puts what applied events set off (triggers), in the profile's transaction.
    tables: { Profiles: 'readwrite', Events: 'write', Control: 'read', Outbox: 'write' },
    readsStream: true,
    decisionKey: true,
    memorySize: 1024,
    timeoutSeconds: 60,
  },
  decide: {
    entry: 'functions/decide/handler.ts',
    description: 'Next best action for one customer on one channel',
    // Profiles: the one read by key (GetItem, or BatchGetItem of the user and the visitor), never an index.
    tables: { Profiles: 'get', Control: 'read' },
    decisionKey: true,
    memorySize: 1769,
    timeoutSeconds: 5,
  },
  admin: {
    entry: 'functions/admin/handler.ts',
    description: 'Operator routes: catalog, simulate, profiles (export, erasure), write keys, reports, outbox',
    // Outbox: the listing, and the erasure's Query of a customer's emissions, batched reads of them (whose each is: its keyErasedAt), and their deletes one at a time.
    tables: { Profiles: 'readwrite', Events: 'readwrite', Control: 'readwrite', Outbox: 'readdelete' },
    memorySize: 1024,
    timeoutSeconds: 29,
  },
  dispatcher: {
    entry: 'functions/dispatcher/handler.ts',
    description: 'Publishes the outbox (triggers, journeys) to the EventBridge bus, schedules timers, writes due timers (journey waits, deferred sends)',
    // Reads the Outbox table's stream (its event source mapping grants it); puts due timers in the Events table.
    tables: { Events: 'put' },
    // Only timers' event keys (a journey's, a deferred send's), `kairos#jt-<digest>` (shared/domain/journeys/timer.ts JOURNEY_TIMER_KEY_PREFIX,
    // held equal by test/unit/journeys-properties.test.ts): a source id no write key has.
    leadingKeys: { Events: ['kairos#jt-*'] },
    memorySize: 512,
    timeoutSeconds: 30,
  },
  health: {
    entry: 'functions/health/handler.ts',
    description: 'Readiness of the API: probes the store (one GetItem, cached briefly)',
    tables: { Control: 'read' },
    memorySize: 256,
    timeoutSeconds: 3,
  },
  // Off-policy evaluation (infra/constructs/evaluation.ts): the steps of its state machine, not on any request path.
  evaluationInputs: {
    entry: 'functions/evaluation-inputs/handler.ts',
    s3: true,
    description: 'Off-policy evaluation, first step: the candidate catalog checked, the outcomes and statistics of the range written for the map step',
    // Events: the outcome events of the range (a Scan); Profiles: the erasure records of their customers (by key, and
    // those items only: no profile); Control: the learning statistics.
    tables: { Events: 'read', Profiles: 'get', Control: 'read' },
    leadingKeys: { Profiles: [`${ERASURE_RECORD_PREFIX}*`] },
    decisionKey: true,
    memorySize: 1769,
    timeoutSeconds: 900,
  },
  evaluationShuffle: {
    entry: 'functions/evaluation-shuffle/handler.ts',
    s3: true,
    description: 'Off-policy evaluation, shuffle step: a batch of decision log objects sent to shards by decision reference, every copy of a decision to one shard',
    tables: {},
    decisionKey: true,
    memorySize: 1769,
    timeoutSeconds: 900,
  },
  evaluationMap: {
    entry: 'functions/evaluation-map/handler.ts',
    s3: true,
    description: 'Off-policy evaluation, map step: a shard of the shuffled decision log replayed through the candidate catalog, each decision once, to partial sums',
    tables: {},
    decisionKey: true,
    memorySize: 1769,
    timeoutSeconds: 900,
  },
  // The actions report's decisions, counted from the decision log (infra/constructs/decision-counts.ts): not on any request path.
  decisionCounter: {
    entry: 'functions/decision-counter/handler.ts',
    s3: true,
    description: 'Counts the decisions of each decision log object Firehose writes into the actions report, once per object',
    // Control: the statistics items' decision counts and each object's markers (TransactWriteItems of puts and updates, no read).
    tables: { Control: 'write' },
    memorySize: 512,
    timeoutSeconds: 60,
  },
  evaluationReduce: {
    entry: 'functions/evaluation-reduce/handler.ts',
    s3: true,
    description: 'Off-policy evaluation, reduce step: the partial sums, read from the maps\' results in the evaluation bucket, to the estimates (or the reason there are none)',
    tables: {},
    memorySize: 512,
    timeoutSeconds: 120,
  },
} as const satisfies Record<string, FunctionDefinition>;

export type LambdaName = keyof typeof functionDefinitions;

/**
 * The naming rule of every function's logs and metrics, declared once:
 * Powertools `serviceName` (the logger's `service` key, the metrics'
 * `service` dimension, POWERTOOLS_SERVICE_NAME) is `kairos-<function>`;
 * every metric is in the METRICS_NAMESPACE namespace and named in
 * PascalCase (METRIC_NAME: `DegradedDecisions`, `EventsAccepted`).
 * shared/observability.ts makes the loggers and metrics by this rule.
 */
export const serviceNameOf = (name: LambdaName): `kairos-${LambdaName}` => `kairos-${name}`;

/** CloudWatch namespace of every Kairos metric (POWERTOOLS_METRICS_NAMESPACE). */
export const METRICS_NAMESPACE = 'Kairos';

/** A metric name: PascalCase, letters and digits. */
export const METRIC_NAME = /^[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*$/;

/**
 * How the Events stream reaches the profile function: the deployed event
 * source mapping and the local stack's poller both read these, so they
 * behave alike.
 */
export const profileStreamSettings = {
  batchSize: 100,
  /** No batching window: a lone event is applied at once (freshness budget p95 ≤ 1 s). */
  maxBatchingWindowSeconds: 0,
  /** Retries of a failing record (after bisecting) before it goes to the failure queue. */
  retryAttempts: 3,
  bisectOnError: true,
  /** Older records go to the failure queue instead of being retried. */
  maxRecordAgeSeconds: 6 * 60 * 60,
  /** Lambda keeps per-key order within a shard at any factor. */
  parallelizationFactor: 2,
  /** The records that reach the function: new events (an event is never updated or removed by a caller). */
  eventNames: ['INSERT'],
} as const;

/**
 * How the decision log's pieces reach the counting of the actions report's
 * decisions: deployed, the redrive policy of the decision counter's SQS
 * queue (infra/constructs/decision-counts.ts); locally, the attempts of the
 * local decision counter at one piece (local/decision-counter.ts).
 */
export const decisionCountSettings = {
  /** Deliveries of a piece (an object's message, a local chunk) before it is given up on, to the failure queue or file. */
  maxReceiveCount: 5,
} as const;

/** A DynamoDB stream record's kind. */
export type StreamEventName = 'INSERT' | 'MODIFY' | 'REMOVE';

/**
 * How the Outbox table's stream reaches the dispatcher (deployed mapping and
 * local poller alike): small batches at once (an emission is due now: event
 * → emission latency budget p95 ≤ 2 s), bounded retries, then the failure
 * queue.
 */
export const dispatcherStreamSettings = {
  batchSize: 10,
  maxBatchingWindowSeconds: 0,
  retryAttempts: 5,
  bisectOnError: true,
  maxRecordAgeSeconds: 6 * 60 * 60,
  parallelizationFactor: 1,
  /**
   * New emissions, and removals: an emission the erasure deleted before the
   * dispatcher read it has its schedule cancelled once it is made (the
   * removal follows the insert in the item's shard); TTL's removals are
   * skipped by the dispatcher.
   */
  eventNames: ['INSERT', 'REMOVE'],
} as const;
