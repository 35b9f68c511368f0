/**
 * POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/alias,
 * /v1/group and Segment's short forms (/v1/b, /v1/t …) — Segment-compatible
 * ingestion (API.md §2):
 * parse (500 KB, JSON) → write key → validate and normalise → store exactly once.
 *
 * Every store call runs under the invocation's deadline (shared/http/deadline.ts,
 * from the Lambda context's remaining time): a slow or unreachable store is a
 * 503 with Retry-After before the function's own timeout, never a 500.
 */
import { randomUUID } from 'node:crypto';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import { config } from '#shared/config.ts';
import { authenticateWriteKey } from '#http/auth.ts';
import { invocationDeadline } from '#http/deadline.ts';
import { ApiError } from '#http/errors.ts';
import { formatPath } from '#domain/issues.ts';
import { httpHandler, logger, type HttpRequest } from '#http/middleware.ts';
import { eventRouteOfPath, type EventRoute } from '#http/routes.ts';
import { MAX_BODY_BYTES } from '#domain/ingest/limits.ts';
import { isWhollyRejected, planIngest, responseBody, type Issue } from '#domain/ingest/normalise.ts';
import { storeEvents } from '#store/events.ts';

export const metrics = new Metrics({ namespace: 'Kairos', serviceName: 'ingest' });

/** The event route of the request, from API Gateway's route key (or the path); short forms included. */
function eventRouteOf(request: HttpRequest): EventRoute {
  const routeKey = request.routeKey ?? '';
  const [method, path] = routeKey.includes(' ') ? routeKey.split(' ', 2) : [request.method, request.path];
  const name = eventRouteOfPath(path ?? '') ?? eventRouteOfPath(request.path);
  if (!name) throw new ApiError('not_found', 'No such route');
  if ((method ?? request.method) !== 'POST') throw new ApiError('method_not_allowed', 'Use POST', undefined, undefined, { allow: 'POST' });
  return name;
}

const invalid = (message: string, issues: readonly Issue[]) =>
  new ApiError(
    'validation_failed',
    message,
    issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
  );

export const handler = httpHandler(
  async (request, context) => {
    const receivedAt = Date.now();
    const deadline = invocationDeadline(context, receivedAt);
    const route = eventRouteOf(request);
    const { sourceId, stale } = await authenticateWriteKey(request, { now: receivedAt, deadline });
    if (stale) metrics.addMetric('WriteKeyServedStale', MetricUnit.Count, 1);
    const plan = planIngest(request.body, {
      route,
      sourceId,
      receivedAt,
      historyDays: config.KAIROS_HISTORY_DAYS,
      newMessageId: randomUUID,
    });
    if (!plan.ok) {
      const first = plan.issues[0];
      throw invalid(first ? `${formatPath(first.path)}: ${first.message}` : 'The request is invalid', plan.issues);
    }
    metrics.addMetric('rejected', MetricUnit.Count, plan.rejections.length);
    // A batch answers per message (200 with rejected[]) however many are refused;
    // on a single-message route the message is the whole request.
    if (route !== 'batch' && isWhollyRejected(plan)) throw invalid(plan.rejections[0]?.message ?? 'The message is invalid', plan.issues);
    const stored = await storeEvents(plan.events, { deadline }).catch((error: unknown) => {
      // Answered 429/503 (or 500 if it is a bug) by the chain; the client retries the same messageIds.
      // A TimeoutError here is the deadline: 503, and whatever landed is a duplicate on retry.
      metrics.addMetric('storeFaults', MetricUnit.Count, 1);
      logger.warn('events not stored', { sourceId, messages: plan.events.length, error: error as Error });
      throw error;
    });
    metrics.addMetric('accepted', MetricUnit.Count, stored.accepted);
    metrics.addMetric('duplicates', MetricUnit.Count, stored.duplicates);
    return { status: 200, body: responseBody(plan, stored) };
  },
  {
    maxBodyBytes: MAX_BODY_BYTES,
    cors: true,
    body: 'json',
    trackerContentTypes: true,
    first: [
      logMetrics(metrics),
      // Counted before the body is decoded and parsed, so refused bodies (413, invalid JSON) are counted too.
      // (A middy `before` that returns a value short-circuits the chain: return nothing.)
      {
        before: () => {
          metrics.addMetric('requests', MetricUnit.Count, 1);
        },
      },
    ],
  },
);
