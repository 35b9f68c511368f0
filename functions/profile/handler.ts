/**
 * The profile function: applies the Events stream (NEW_IMAGE) to the
 * Profiles table exactly once. For a batch it decodes the records, plans
 * them (shared/domain/profile/plan.ts, pure), reads what the plan needs and
 * commits its writes (shared/store/profile-batch.ts), then answers with
 * `batchItemFailures` (ReportBatchItemFailures): a record that is not a
 * stored event or that the aggregate refuses, and every record a store
 * fault kept from being applied, by sequence number; the stream redelivers
 * them and the "applied" markers make the redelivery of the others a no-op.
 *
 * What the applied events set off (the catalog's triggers,
 * shared/domain/triggers/react.ts, and its journeys' steps and timers,
 * shared/domain/journeys/react.ts) is written to the Outbox table in each
 * profile write's own transaction; the dispatcher publishes it. The
 * journeys' runs are stored with the profile, and the journey report's
 * counts are added in the same transaction. Emissions
 * are counted by status (`EmissionsNow`; `EmissionsDeferred`: timers — a
 * journey's wait, a send that fell in quiet hours, counted again as `now`
 * or refused when it is decided at their end; `EmissionsRefused`: sends a
 * policy refused are never published).
 *
 * A timer (a deferred send's, a journey's wait: journeys/timer.ts) has no
 * effect but what the catalog makes of it, and is applied once: while what
 * reacts is not known (`reactionsKnown`: the live catalog never read in
 * this process, its store unreachable), timers are not applied but
 * reported failed, so the stream delivers them again; a customer's own
 * events flow meanwhile.
 *
 * A plain loop rather than Powertools' batch processor: the unit of work is
 * the batch (one read, one transaction per profile), not a record.
 */
import '#shared/source-maps-register.ts';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context, DynamoDBBatchResponse, DynamoDBRecord, DynamoDBStreamEvent } from 'aws-lambda';
import { config, requiredDecisionSecret } from '#shared/config.ts';
import { functionLogger, functionMetrics } from '#shared/observability.ts';
import { decisionKey } from '#domain/decide/decision-id.ts';
import { customerPseudonym, pseudonymKey } from '#domain/decide/decision-log.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { DEFAULT_OUTCOME_LEARNING, type OutcomeLearning } from '#domain/learning/statistics.ts';
import type { ProfileEnricher } from '#domain/profile/enrich.ts';
import type { JourneyStepper, ProfileReactor } from '#domain/profile/reactions.ts';
import { createTriggerReactor } from '#domain/triggers/react.ts';
import { createJourneyStepper } from '#domain/journeys/react.ts';
import { isTimerEvent } from '#domain/journeys/timer.ts';
import { emptyReadState, planBatch, type BatchPlan, type BatchRecord, type ReadState } from '#domain/profile/plan.ts';
import type { ProfileSettings } from '#domain/profile/state.ts';
import { storedEventSchema } from '#domain/stored-event.ts';
import { getLiveCatalog, liveCatalogStatus, peekLiveCatalog } from '#store/catalog-live.ts';
import type { DynamoClient } from '#store/client.ts';
import { commitTargets, deleteEvents, readForPlan } from '#store/profile-batch.ts';
import { jitteredPause, sleep } from '#store/retry.ts';
import { itemFromImage } from '#store/stream-image.ts';

const logger = functionLogger('profile');
const metrics = functionMetrics('profile');

export class PoisonRecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PoisonRecordError';
  }
}

/** Outcomes are attributed only to decision ids this service sealed (decide). */
const DECISION_KEY = decisionKey(requiredDecisionSecret());

/** The key log lines name a customer by (decision-log.ts `pseudonymKey` of the decision secret). */
const PSEUDONYM_KEY = pseudonymKey(requiredDecisionSecret());

/**
 * How a log line names the customer of profile key `profileKey` (`u#…`,
 * `a#…`): its pseudonym (decision-log.ts `customerPseudonym`, 22 characters),
 * never the key, which holds the customer's id; log lines are kept for
 * months and are not erased.
 */
const customerInLogs = (profileKey: string): string => customerPseudonym(PSEUDONYM_KEY, profileKey);

/** The same profile was changed concurrently more times than we planned again: a transient fault. */
export class ContentionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContentionError';
  }
}

/**
 * A write DynamoDB refuses (item too large, invalid request) even with its
 * event alone. `customer` is the profile's pseudonym (`customerInLogs`),
 * logged with the error; its message never holds the profile key.
 */
export class NonRetryableWriteError extends Error {
  readonly customer: string;
  constructor(message: string, options: { customer: string; cause?: unknown }) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'NonRetryableWriteError';
    this.customer = options.customer;
  }
}

export interface ProfileFunctionOptions {
  /** Segments, persona and scores from the profile view; stored with each profile. */
  readonly enricher: ProfileEnricher;
  /** Awaited before a batch is planned (e.g. refreshing the cached catalog the enricher reads); a failure is logged. */
  readonly prepare?: () => Promise<void>;
  /**
   * Whether what reacts to events (the reactor's and the journeys' catalog) is known, read after `prepare`; while
   * it is not, the batch's timers are reported failed (delivered again), not applied. @default always known
   */
  readonly reactionsKnown?: () => boolean;
  /** What applied events set off (triggers), written to the outbox with the profile; absent: nothing. */
  readonly reactor?: ProfileReactor;
  /** The journeys applied events move on (their runs stored with the profile, their emissions and counts in its transaction); absent: none. */
  readonly journeys?: JourneyStepper;
  readonly settings?: ProfileSettings;
  /**
   * The catalog's learning settings outcomes are counted with (conversion
   * window, learning context), read once per plan. @default `settings.learning`,
   * else DEFAULT_OUTCOME_LEARNING
   */
  readonly learning?: () => OutcomeLearning;
  readonly client?: DynamoClient;
  readonly now?: () => number;
  /** Plans of the same records after a failed condition (a concurrent writer) before they are left to the stream. @default 10 */
  readonly maxAttempts?: number;
  /** Profiles committed at the same time. @default 16 */
  readonly concurrency?: number;
}

export interface ApplyReport {
  /** Failed record ids: the stream must redeliver them (or dead-letter a poison one). */
  readonly failures: Map<string, Error>;
  readonly applied: number;
  /** Already applied (their marker exists): redeliveries. */
  readonly duplicates: number;
  readonly merges: number;
  /** Accepted before their customer was erased: dropped, and their Events items deleted. */
  readonly erased: number;
  /** Outcomes applied for decisions issued at or before their customer's erasure: counted for nothing (plan.ts `erasedOutcomes`). */
  readonly erasedOutcomes: number;
  /** Outbox entries committed, by status. */
  readonly emissions: { readonly now: number; readonly deferred: number; readonly refused: number };
}

const sequenceOf = (record: DynamoDBRecord): string => record.dynamodb?.SequenceNumber ?? '';

/** Decode a record: an INSERT's NEW_IMAGE must be a stored event; other kinds are ignored. */
function decode(record: DynamoDBRecord): { kind: 'event'; record: BatchRecord } | { kind: 'ignore' } | { kind: 'poison'; error: Error } {
  // MODIFY never happens to an event; REMOVE is the TTL expiring the history.
  if (record.eventName !== 'INSERT') return { kind: 'ignore' };
  const image = record.dynamodb?.NewImage;
  if (!image) return { kind: 'poison', error: new PoisonRecordError('INSERT record without NEW_IMAGE') };
  let raw: unknown;
  try {
    raw = itemFromImage(image as Record<string, unknown>);
  } catch (error) {
    return { kind: 'poison', error: new PoisonRecordError(`Unreadable NEW_IMAGE: ${(error as Error).message}`) };
  }
  const parsed = storedEventSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { kind: 'poison', error: new PoisonRecordError(`Not a stored event: ${problems.join('; ')}`) };
  }
  return { kind: 'event', record: { id: sequenceOf(record), event: parsed.data } };
}

const backoff = (attempt: number) => sleep(jitteredPause(attempt, 5, 200));

/**
 * Apply decoded records exactly once: plan, read what the plan needs, commit;
 * the records of a write that lost a race are planned again from a fresh read.
 */
export async function applyRecords(records: readonly BatchRecord[], options: ProfileFunctionOptions): Promise<ApplyReport> {
  const failures = new Map<string, Error>();
  const report = { applied: 0, duplicates: 0, merges: 0, erased: 0, erasedOutcomes: 0 };
  const emissions = { now: 0, deferred: 0, refused: 0 };
  const maxAttempts = options.maxAttempts ?? 10;
  const isolate: BatchRecord[] = [];
  let pending: readonly BatchRecord[] = records;
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt >= maxAttempts) {
      for (const record of pending) failures.set(record.id, new ContentionError(`Profile changed concurrently ${maxAttempts} times; will be retried`));
      break;
    }
    if (attempt > 0) await backoff(attempt);
    const now = (options.now ?? Date.now)();
    let plan: BatchPlan;
    try {
      plan = await planWithReads(pending, now, options);
    } catch (error) {
      for (const record of pending) failures.set(record.id, error as Error);
      break;
    }
    for (const [id, error] of plan.failures) failures.set(id, error);
    for (const warning of plan.warnings) {
      logger.warn(warning.message, warning.profileKey === undefined ? {} : { customer: customerInLogs(warning.profileKey) });
    }
    report.duplicates += plan.duplicates.length;
    if (plan.dropped.length > 0) {
      try {
        await deleteEvents(plan.dropped.map((d) => d.eventPk), { client: options.client });
        report.erased += plan.dropped.length;
      } catch (error) {
        for (const dropped of plan.dropped) for (const id of dropped.records) failures.set(id, error as Error);
      }
    }

    const outcomes = await commitTargets(plan.targets, { client: options.client, now, concurrency: options.concurrency });
    const again = new Set<string>();
    plan.targets.forEach((target, i) => {
      const outcome = outcomes[i]!;
      const done = outcome.kind === 'committed' ? target.writes : target.writes.slice(0, outcome.at);
      for (const write of done) {
        report.applied += write.markers.length;
        report.merges += write.tombstones.length;
        report.erasedOutcomes += write.erasedOutcomes;
        for (const entry of write.outbox) emissions[entry.status]++;
      }
      if (outcome.kind === 'committed') return;
      const rest = target.writes.slice(outcome.at).flatMap((w) => w.records);
      if (outcome.kind === 'contention') for (const id of rest) again.add(id);
      else if (outcome.kind === 'invalid' && rest.length > 1) {
        // Isolate the event that makes the write impossible: each event alone.
        logger.warn('profile transaction refused; applying its events one at a time', { customer: customerInLogs(target.key), error: outcome.error.message });
        for (const record of pending) if (rest.includes(record.id)) isolate.push(record);
      } else if (outcome.kind === 'invalid') {
        const customer = customerInLogs(target.key);
        for (const id of rest) failures.set(id, new NonRetryableWriteError(`The profile cannot be written: ${outcome.error.message}`, { customer, cause: outcome.error }));
      } else {
        // A store fault: these records are redelivered (markers make the already-applied ones no-ops).
        for (const id of rest) failures.set(id, outcome.error);
      }
    });
    pending = pending.filter((r) => again.has(r.id));
  }
  for (const record of isolate) {
    const alone = await applyRecords([record], options);
    for (const [id, error] of alone.failures) failures.set(id, error);
    report.applied += alone.applied;
    report.duplicates += alone.duplicates;
    report.merges += alone.merges;
    report.erased += alone.erased;
    report.erasedOutcomes += alone.erasedOutcomes;
    emissions.now += alone.emissions.now;
    emissions.deferred += alone.emissions.deferred;
    emissions.refused += alone.emissions.refused;
  }
  return { failures, ...report, emissions };
}

/** Plan, reading what the plan asks for (twice at most: identities, then the users tombstones point to). */
async function planWithReads(records: readonly BatchRecord[], now: number, options: ProfileFunctionOptions): Promise<BatchPlan> {
  let read: ReadState = emptyReadState();
  const base = options.settings ?? { halfLifeDays: config.KAIROS_INTEREST_HALF_LIFE_DAYS, decisionKey: DECISION_KEY };
  const settings: ProfileSettings = { ...base, learning: options.learning?.() ?? base.learning ?? DEFAULT_OUTCOME_LEARNING };
  for (;;) {
    const result = planBatch(records, read, {
      settings,
      enricher: options.enricher,
      now,
      ...(options.reactor ? { reactor: options.reactor } : {}),
      ...(options.journeys ? { journeys: options.journeys } : {}),
    });
    if (result.kind === 'plan') return result.plan;
    read = await readForPlan(result.reads, read, { client: options.client });
  }
}

/** The profile function's stream handler, with its enricher and store passed in. */
export function createProfileHandler(options: ProfileFunctionOptions): (event: DynamoDBStreamEvent, context?: Context) => Promise<DynamoDBBatchResponse> {
  return async (event) => {
    const records = event.Records ?? [];
    const failures = new Map<string, Error>();
    const decoded: BatchRecord[] = [];
    for (const record of records) {
      const outcome = decode(record);
      if (outcome.kind === 'event') decoded.push(outcome.record);
      else if (outcome.kind === 'poison') failures.set(sequenceOf(record), outcome.error);
    }
    if (decoded.length > 0 && options.prepare) {
      try {
        await options.prepare();
      } catch (error) {
        // Segments are derived data: a catalog that cannot be read now must not hold the customer's events back.
        logger.warn('profile enricher not prepared; enriching with what is cached', { error: error as Error });
      }
    }
    if (options.reactionsKnown && !options.reactionsKnown()) {
      for (let i = decoded.length - 1; i >= 0; i--) {
        const record = decoded[i] as BatchRecord;
        if (!isTimerEvent(record.event)) continue;
        failures.set(record.id, new Error('timer held back: the live catalog is not read yet (delivered again)'));
        decoded.splice(i, 1);
      }
    }
    const report = await applyRecords(decoded, options);
    for (const [id, error] of report.failures) failures.set(id, error);

    metrics.addMetric('EventsApplied', MetricUnit.Count, report.applied);
    metrics.addMetric('EventsAlreadyApplied', MetricUnit.Count, report.duplicates);
    metrics.addMetric('ProfilesMerged', MetricUnit.Count, report.merges);
    metrics.addMetric('EventsDroppedByErasure', MetricUnit.Count, report.erased);
    metrics.addMetric('OutcomesDroppedByErasure', MetricUnit.Count, report.erasedOutcomes);
    metrics.addMetric('RecordsFailed', MetricUnit.Count, failures.size);
    metrics.addMetric('EmissionsNow', MetricUnit.Count, report.emissions.now);
    metrics.addMetric('EmissionsDeferred', MetricUnit.Count, report.emissions.deferred);
    metrics.addMetric('EmissionsRefused', MetricUnit.Count, report.emissions.refused);
    metrics.publishStoredMetrics();
    for (const [sequenceNumber, error] of failures) logger.error('stream record not applied', { sequenceNumber, error });
    // In the batch's order; Lambda checkpoints before the lowest.
    return {
      batchItemFailures: records.filter((r) => failures.has(sequenceOf(r))).map((r) => ({ itemIdentifier: sequenceOf(r) })),
    };
  };
}

/**
 * Segments, persona and scores from the live catalog, cached in the process
 * and refreshed in the background; its learning settings, which outcomes
 * are counted with; its triggers, decided with its policies; and its
 * journeys.
 */
export const catalogEnrichment = {
  enricher: createCatalogEnricher(peekLiveCatalog),
  reactor: createTriggerReactor(peekLiveCatalog, { decisionKey: DECISION_KEY }),
  journeys: createJourneyStepper(peekLiveCatalog, { decisionKey: DECISION_KEY }),
  learning: () => {
    const learning = peekLiveCatalog()?.learning;
    return learning ? { contextBy: learning.contextBy, conversionWindowMs: learning.conversionWindowMs } : DEFAULT_OUTCOME_LEARNING;
  },
  prepare: async () => {
    await getLiveCatalog();
  },
  reactionsKnown: () => peekLiveCatalog() !== undefined || liveCatalogStatus().state !== 'unknown',
} as const satisfies Pick<ProfileFunctionOptions, 'enricher' | 'prepare' | 'reactionsKnown' | 'learning' | 'reactor' | 'journeys'>;

export const processStreamEvent = createProfileHandler(catalogEnrichment);

export const handler = async (event: DynamoDBStreamEvent, context: Context): Promise<DynamoDBBatchResponse> => {
  logger.addContext(context);
  return processStreamEvent(event, context);
};
