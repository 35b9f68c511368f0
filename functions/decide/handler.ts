/**
 * POST /v1/decide — the next best action (API.md §4).
 *
 * the chain (headers, CORS, errors, route key, deadline, body: JSON) →
 * write key → validate → the key's rights (public
 * keys: channel, explain, user token, and without a token the anonymous
 * visitor only; shared/http/key-rights.ts) → live
 * catalog (in-memory, no read when warm) → ONE profile read under a
 * deadline → the outcome statistics (in-memory, refreshed in the
 * background: shared/store/statistics-cache.ts) → the pure decision (the
 * bandit's arm probabilities cached per process) → its id sealed, and for a public key only
 * the public answer. No write on this path: outcomes are attributed later
 * from the decisionId the client sends back in `properties.decision_id`.
 * A store fault on the profile read gives a degraded decision (the
 * catalog's fallbacks, `"degraded": true`), never an error.
 *
 * Every decision answered, degraded and fallback ones included, is logged
 * as one decision record (shared/domain/decide/decision-log.ts, compact:
 * version 3): one INFO line written to the function's standard output
 * (evaluation/decision-record.ts `decisionRecordLine`: `level`, `message`
 * DECISION_RECORD_MESSAGE and the record under DECISION_RECORD_KEY, none of
 * Powertools' standard keys), whatever POWERTOOLS_LOG_LEVEL says (deployed,
 * the function's application log level must stay INFO, its default, for
 * Lambda to keep the line). Not through the Powertools logger: its JSON
 * replacer runs for every value of the record, and at 155 eligible arms
 * that cost about 0.3 ms a decision, most of what the HTTP bench's ratio
 * was over its budget by (bench/README.md). Deployed, the decision log's
 * subscription filter sends these lines to Firehose; locally the stack
 * appends them to a JSONL file. The customer in it is a keyed hash.
 *
 * One deadline per request (KAIROS_DECIDE_DEADLINE_MS, 1 s by default, and
 * within the function's own timeout): the write key lookup, a cold catalog
 * load and the profile read all give up by then, less the time kept to
 * decide and answer. While the store is unreachable the write key and the
 * catalog are served stale from cache (shared/http/auth.ts,
 * shared/store/catalog-live.ts), counted in the `WriteKeyServedStale` and
 * `CatalogServedStale` metrics; every degraded answer counts in
 * `DegradedDecisions`.
 */
import '#shared/source-maps-register.ts';
import { randomBytes } from 'node:crypto';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { config, requiredDecisionSecret } from '#shared/config.ts';
import { functionLogger, functionMetrics } from '#shared/observability.ts';
import { authenticateWriteKey } from '#http/auth.ts';
import { httpBodyDecoder, httpJsonBody } from '#http/body-decoder.ts';
import { httpCors } from '#http/cors.ts';
import { httpDeadline } from '#http/invocation-deadline.ts';
import { authorizeDecide } from '#http/key-rights.ts';
import { ApiError, httpErrorResponse } from '#http/errors.ts';
import { fromChain, httpRequestHandler, type HttpContext } from '#http/handler-adapter.ts';
import { httpResponseHeaders } from '#http/response-headers.ts';
import { httpRouteKey } from '#http/route-key.ts';
import { getLiveCatalog, liveCatalogStatus } from '#store/catalog-live.ts';
import { StatisticsCache } from '#store/statistics-cache.ts';
import { ArmProbabilityCache } from '#domain/learning/policy.ts';
import { remainingMs } from '#store/deadline.ts';
import { ActionArmsCache, decideForLog, emptyProfile } from '#domain/decide/decide.ts';
import { customerPseudonym, decisionRecord, pseudonymKey } from '#domain/decide/decision-log.ts';
import { decisionRecordLine } from '#domain/evaluation/decision-record.ts';
import { parseDecideRequest } from '#domain/decide/request.ts';
import { emptyCatalog } from '#domain/decide/empty-catalog.ts';
import { DEFAULT_RULE_BUDGET_MS, createFailureTally } from '#domain/catalog/rules.ts';
import { decisionKey, decisionReference, sealDecisionId } from '#domain/decide/decision-id.ts';
import { publicDecision } from '#domain/decide/public-answer.ts';
import { PROFILE_DEADLINE_MS, readProfile } from './profile-read.ts';

/** Random bytes for decision nonces, drawn in blocks (one crypto call per 512 decisions). */
let entropy = Buffer.alloc(0);
let drawn = 0;
const NONCE_BYTES = 6;

/** 6 random bytes, base64url: makes the decisionId unique. */
function nonce(): string {
  if (drawn + NONCE_BYTES > entropy.length) {
    entropy = randomBytes(NONCE_BYTES * 512);
    drawn = 0;
  }
  const text = entropy.toString('base64url', drawn, drawn + NONCE_BYTES);
  drawn += NONCE_BYTES;
  return text;
}

/** Decision ids leave sealed: opaque to the client, opened only by the profile function. */
const DECISION_KEY = decisionKey(requiredDecisionSecret());

/** Customers in decision records are keyed hashes, with a key derived from the same secret (not the sealing key). */
const PSEUDONYM_KEY = pseudonymKey(requiredDecisionSecret());

/** A decide request is small: ids, a channel and a bounded context. */
export const MAX_DECIDE_BODY_BYTES = 16 * 1024;

/** Kept from the request's deadline for deciding, rendering and answering once the reads are done (ms). */
export const DECIDE_RESERVE_MS = 100;

const logger = functionLogger('decide');

/**
 * What the bandit learns from: the outcome statistics, refreshed in the
 * background (never awaited here; read through a client of their own), and
 * the arm probabilities and each action's arms computed from them, per
 * process.
 */
export const statistics = new StatisticsCache({
  onRefreshFailure: (error) => logger.warn('statistics refresh failed; deciding with the last good statistics', { error: error as Error }),
});
const policies = new ArmProbabilityCache();
const arms = new ActionArmsCache();
export const metrics = functionMetrics('decide');

const decideRoute = httpRequestHandler(
  async (request, context) => {
    const started = Date.now();
    const deadline = fromChain(context, 'deadline');
    const readsBy = deadline - DECIDE_RESERVE_MS;
    const identity = await authenticateWriteKey(request, { now: started, deadline: readsBy, bodyWriteKey: false });
    if (identity.stale) metrics.addMetric('WriteKeyServedStale', MetricUnit.Count, 1);
    // A body writeKey (the event routes' convention) is refused here with a 400, even when it is the key checked above.
    const parsed = parseDecideRequest(request.body);
    if (!parsed.ok) throw new ApiError('validation_failed', 'The decide request is not valid', parsed.details);
    const input = parsed.value;
    const { publicAnswer, identified } = await authorizeDecide(identity, input, request.headers);

    const now = new Date();
    const [catalog, profile] = await Promise.all([
      getLiveCatalog(now.getTime(), undefined, readsBy).then(
        (value) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      ),
      readProfile({ userId: input.userId, anonymousId: input.anonymousId }, now, { deadlineMs: Math.min(PROFILE_DEADLINE_MS, remainingMs(readsBy)), identified }),
    ]);
    if (!catalog.ok) logger.warn('live catalog unavailable; degraded decision', { error: catalog.error as Error });
    const catalogState = liveCatalogStatus(Date.now()).state;
    if (catalogState === 'stale') metrics.addMetric('CatalogServedStale', MetricUnit.Count, 1);
    if (!profile.ok) {
      logger.warn('profile read failed; degraded decision', { error: profile.error as Error });
    }
    const degraded = !profile.ok || !catalog.ok || catalogState === 'unknown';
    if (degraded) metrics.addMetric('DegradedDecisions', MetricUnit.Count, 1);
    const view = (profile.ok && profile.view) || emptyProfile(input);
    const failures = createFailureTally();
    const live = (catalog.ok && catalog.value) || emptyCatalog();
    const learning = live.learning.enabled && !degraded ? statistics.current(now.getTime(), live.learning.windowMs) : undefined;
    const decisionNonce = nonce();
    const { decision, log } = decideForLog(live, view, input, now, {
      nonce: decisionNonce,
      ...(learning ? { learning } : {}),
      policies,
      arms,
      ruleBudgetMs: DEFAULT_RULE_BUDGET_MS,
      failures,
      degraded,
      ...(profile.ok && profile.enrichedWith !== undefined ? { enrichedWith: profile.enrichedWith } : {}),
    });
    // Rules the decision's budget left no time for (rule:error, not run), for a log metric filter.
    if (failures.deadline > 0) logger.warn('rule budget ran out', { ruleDeadlineSkips: failures.deadline, ruleFailures: failures.rules });
    const sealed = { ...decision, decisionId: sealDecisionId(decision.decisionId, DECISION_KEY) };
    const record = decisionRecord({
      catalog: live,
      profile: view,
      context: input.context,
      decision,
      facts: log,
      decisionRef: decisionReference({ issuedAt: now, nonce: decisionNonce }),
      customer: customerPseudonym(PSEUDONYM_KEY, log.customerKey),
    });
    process.stdout.write(`${decisionRecordLine(record)}\n`);
    return { status: 200, body: publicAnswer ? publicDecision(sealed) : sealed };
  },
);

function publishCounted(): void {
  if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
}

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>()
  .use(injectLambdaContext(logger))
  .use(httpResponseHeaders())
  .use(httpCors())
  .use(httpErrorResponse({ logger }))
  // Metrics only when something was counted: a healthy decision emits nothing.
  .use({ after: publishCounted, onError: publishCounted })
  .use(httpRouteKey('decide'))
  .use(httpDeadline({ budgetMs: config.KAIROS_DECIDE_DEADLINE_MS }))
  .use(httpBodyDecoder({ maxBodyBytes: MAX_DECIDE_BODY_BYTES }))
  .use(httpJsonBody())
  .handler(decideRoute);
