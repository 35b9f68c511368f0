/**
 * The operator function: every `/v1/admin/*` route. The chain resolves the
 * route from API Gateway's route key and the caller (IAM, or the local
 * admin token) before the body is read; then the route key picks the
 * implementation from the dispatch table (routes.ts), called with the
 * function's services (services.ts `AdminServices`).
 */
import '#shared/source-maps-register.ts';
import middy from '@middy/core';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { httpAdminPrincipal } from '#http/admin-principal.ts';
import { httpBodyDecoder, httpJsonBody } from '#http/body-decoder.ts';
import { ApiError, httpErrorResponse } from '#http/errors.ts';
import { fromChain, httpRequestHandler, type HttpContext } from '#http/handler-adapter.ts';
import { httpDeadline } from '#http/invocation-deadline.ts';
import { httpResponseHeaders } from '#http/response-headers.ts';
import { httpRouteKey } from '#http/route-key.ts';
import { routeKey } from '#http/routes.ts';
import { eventBridgeScheduler } from '#shared/bus/eventbridge.ts';
import { functionLogger } from '#shared/observability.ts';
import { MAX_CATALOG_BODY_BYTES } from './catalog.ts';
import { adminRoutes } from './routes.ts';
import type { AdminServices } from './services.ts';

/** Catalogs are the largest admin bodies (functions/admin/catalog.ts). */
const MAX_ADMIN_BODY_BYTES = MAX_CATALOG_BODY_BYTES;

const logger = functionLogger('admin');

/** The admin chain over `services` (the local stack passes its own scheduler). */
export function createAdminHandler(services: AdminServices) {
  const dispatch = httpRequestHandler(async (request, context) => {
    const key = routeKey(fromChain(context, 'route'));
    const route = Object.hasOwn(adminRoutes, key) ? adminRoutes[key] : undefined;
    if (!route) throw new ApiError('not_found', `No such route: ${key}`);
    return route(request, context, services);
  });
  // No CORS: operator routes are never called from a browser (IAM).
  return middy<APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Error, HttpContext>()
    .use(injectLambdaContext(logger))
    .use(httpResponseHeaders())
    .use(httpErrorResponse({ logger }))
    .use(httpRouteKey('admin'))
    .use(httpDeadline())
    .use(httpAdminPrincipal())
    .use(httpBodyDecoder({ maxBodyBytes: MAX_ADMIN_BODY_BYTES }))
    .use(httpJsonBody({ yaml: true }))
    .handler(dispatch);
}

/** Deployed: EventBridge Scheduler in the stack's group (KAIROS_SCHEDULE_GROUP, read when a schedule is first cancelled). */
export const handler = createAdminHandler({ scheduler: eventBridgeScheduler() });
