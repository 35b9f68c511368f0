/**
 * POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/alias,
 * /v1/group and Segment's short forms (/v1/b, /v1/t …) — Segment-compatible
 * ingestion (API.md §2):
 * the chain (headers, CORS, errors, metrics, route key, deadline, body:
 * 500 KB of JSON) → write key → validate and normalise → store exactly once.
 *
 * Every store call runs under the invocation's deadline (shared/http/invocation-deadline.ts,
 * from the Lambda context's remaining time): a slow or unreachable store is a
 * 503 with Retry-After before the function's own timeout, never a 500.
 */
import '#shared/source-maps-register.ts';
import { randomUUID } from 'node:crypto';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { config } from '#shared/config.ts';
import { functionLogger, functionMetrics } from '#shared/observability.ts';
import { authenticateWriteKey } from '#http/auth.ts';
import { httpBodyDecoder, httpJsonBody } from '#http/body-decoder.ts';
import { httpCors } from '#http/cors.ts';
import { httpDeadline } from '#http/invocation-deadline.ts';
import { ApiError, httpErrorResponse } from '#http/errors.ts';
import { fromChain, httpRequestHandler, type HttpContext } from '#http/handler-adapter.ts';
import { httpResponseHeaders } from '#http/response-headers.ts';
import { httpRouteKey } from '#http/route-key.ts';
import { formatPath } from '#domain/issues.ts';
import { eventRouteOfPath, type EventRoute } from '#http/routes.ts';
import { MAX_BODY_BYTES } from '#domain/ingest/limits.ts';
import { isWhollyRejected, planIngest, responseBody, type Issue } from '#domain/ingest/normalise.ts';
import { storeEvents } from '#store/events.ts';

const logger = functionLogger('ingest');
export const metrics = functionMetrics('ingest');

/** The event route of the request's route (the route key middleware's; short forms included). */
function eventRouteOf(context: HttpContext): EventRoute {
  const name = eventRouteOfPath(fromChain(context, 'route').path);
  if (!name) throw new ApiError('not_found', 'No such route');
  return name;
}

const invalid = (message: string, issues: readonly Issue[]) =>
  new ApiError(
    'validation_failed',
    message,
    issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message })),
  );

const ingest = httpRequestHandler(
  async (request, context) => {
    const receivedAt = Date.now();
    const deadline = fromChain(context, 'deadline');
    const route = eventRouteOf(context);
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
    metrics.addMetric('EventsRejected', MetricUnit.Count, plan.rejections.length);
    // A batch answers per message (200 with rejected[]) however many are refused;
    // on a single-message route the message is the whole request.
    if (route !== 'batch' && isWhollyRejected(plan)) throw invalid(plan.rejections[0]?.message ?? 'The message is invalid', plan.issues);
    const stored = await storeEvents(plan.events, { deadline }).catch((error: unknown) => {
      // Answered 429/503 (or 500 if it is a bug) by the chain; the client retries the same messageIds.
      // A TimeoutError here is the deadline: 503, and whatever landed is a duplicate on retry.
      metrics.addMetric('StoreFaults', MetricUnit.Count, 1);
      logger.warn('events not stored', { sourceId, messages: plan.events.length, error: error as Error });
      throw error;
    });
    metrics.addMetric('EventsAccepted', MetricUnit.Count, stored.accepted);
    metrics.addMetric('EventsAlreadyAccepted', MetricUnit.Count, stored.duplicates);
    return { status: 200, body: responseBody(plan, stored) };
  },
);

export const handler = middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>()
  .use(injectLambdaContext(logger))
  .use(httpResponseHeaders())
  .use(httpCors())
  .use(httpErrorResponse({ logger }))
  .use(logMetrics(metrics))
  // Counted before the body is decoded and parsed, so refused bodies (413, invalid JSON) are counted too.
  // (A middy `before` that returns a value short-circuits the chain: return nothing.)
  .use({
    before: () => {
      metrics.addMetric('Requests', MetricUnit.Count, 1);
    },
  })
  .use(httpRouteKey('ingest'))
  .use(httpDeadline())
  .use(httpBodyDecoder({ maxBodyBytes: MAX_BODY_BYTES }))
  .use(httpJsonBody({ trackerContentTypes: true }))
  .handler(ingest);
