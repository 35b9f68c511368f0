import { Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  HttpApi,
  HttpMethod,
  HttpRoute,
  HttpRouteKey,
  HttpStage,
  LogGroupLogDestination,
  type IHttpRouteAuthorizer,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { RemovalPolicy } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { DEFAULT_ROUTE_FUNCTION, methodsOf, routeKey, type FunctionName, type Route, type ServedMethod } from '#http/routes.ts';

export interface KairosHttpApiProps {
  /** The public route table (shared/http/routes.ts). */
  readonly routes: readonly Route[];

  /** The function behind each `Route.function`. Every function a route names must be here. */
  readonly functions: Readonly<Record<FunctionName, IFunction>>;

  /**
   * Steady-state request rate allowed on the stage, per second (protects the
   * account's Lambda concurrency and DynamoDB capacity from a runaway client).
   * @default 1000
   */
  readonly throttlingRateLimit?: number;

  /**
   * Burst of requests allowed above the rate limit.
   * @default 2000
   */
  readonly throttlingBurstLimit?: number;

  /**
   * How long the access logs are kept.
   * @default RetentionDays.THREE_MONTHS
   */
  readonly accessLogRetention?: RetentionDays;
}

/**
 * Access log line: the request id ties it to the function's logs
 * (x-request-id). The route is named by its key (`DELETE
 * /v1/admin/profiles/{userId}`), never by the path as sent: a path holds a
 * customer's id (the profile routes), which the erasure cannot take back
 * out of a log kept for months.
 */
const ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    requestTime: '$context.requestTime',
    routeKey: '$context.routeKey',
    method: '$context.httpMethod',
    status: '$context.status',
    protocol: '$context.protocol',
    responseLength: '$context.responseLength',
    responseLatency: '$context.responseLatency',
    integrationLatency: '$context.integrationLatency',
    integrationStatus: '$context.integrationStatus',
    integrationError: '$context.integrationErrorMessage',
    sourceIp: '$context.identity.sourceIp',
    userAgent: '$context.identity.userAgent',
    caller: '$context.identity.userArn',
  }),
);

/** Construct id of a route: `POST /v1/admin/profiles/{userId}` → `POST-v1-admin-profiles-userId`. */
export const routeConstructId = (route: { method: ServedMethod | 'OPTIONS'; path: string }): string =>
  `${route.method}${route.path.replace(/[{}]/g, '').replace(/\//g, '-')}`;

/**
 * The public HTTP API: one API Gateway route per entry of the route table
 * and method it is served on (a GET route also on HEAD: routes.ts
 * `methodsOf`), with the authorization the table declares:
 * - `iam`: SigV4, checked by API Gateway (HttpIamAuthorizer);
 * - `writeKey`: checked by the function (Segment clients may send the key in
 *   the body, which a gateway authorizer cannot read);
 * - `none`: public (health).
 * Routes marked `cors` also get an OPTIONS route to the same function, which
 * answers preflight itself with the operator's allowed origins. Admin routes
 * get no CORS at all.
 */
export class KairosHttpApi extends Construct {
  public readonly httpApi: HttpApi;
  public readonly stage: HttpStage;
  public readonly accessLogGroup: LogGroup;
  /** Routes by route key (`POST /v1/batch`, `OPTIONS /v1/batch` …). */
  public readonly routes = new Map<string, HttpRoute>();
  /** Catches every request no route matches (404/405 in the API's error shape). */
  public readonly defaultRoute: HttpRoute;

  constructor(scope: Construct, id: string, props: KairosHttpApiProps) {
    super(scope, id);

    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'Kairos public API: events, decide, admin',
      createDefaultStage: false,
    });

    this.accessLogGroup = new LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: {
        rateLimit: props.throttlingRateLimit ?? 1000,
        burstLimit: props.throttlingBurstLimit ?? 2000,
      },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogGroup),
        format: ACCESS_LOG_FORMAT,
      },
    });

    const integrations = new Map<FunctionName, HttpLambdaIntegration>();
    const integrationFor = (name: FunctionName): HttpLambdaIntegration => {
      let integration = integrations.get(name);
      if (!integration) {
        const fn = props.functions[name];
        if (!fn) throw new Error(`KairosHttpApi: no function "${name}" for its routes`);
        integration = new HttpLambdaIntegration(`${name}Integration`, fn);
        integrations.set(name, integration);
      }
      return integration;
    };
    const iamAuthorizer = new HttpIamAuthorizer();

    const seen = new Set<string>();
    const preflightPaths = new Map<string, FunctionName>();
    for (const route of props.routes) {
      const key = routeKey(route);
      if (route.auth === 'iam' && route.cors) {
        throw new Error(`KairosHttpApi: ${key} is an IAM route; IAM routes never answer CORS`);
      }

      for (const method of methodsOf(route)) {
        const served = routeKey({ method, path: route.path });
        if (seen.has(served)) throw new Error(`KairosHttpApi: duplicate route ${served}`);
        seen.add(served);
        const httpRoute = this.addRoute(method, route.path, integrationFor(route.function), route.auth === 'iam' ? iamAuthorizer : undefined);
        this.acknowledgeAuthorization(httpRoute, route, served);
      }

      if (route.cors) {
        const owner = preflightPaths.get(route.path);
        if (owner && owner !== route.function) {
          throw new Error(`KairosHttpApi: ${route.path} is served by ${owner} and ${route.function}; preflight needs one`);
        }
        preflightPaths.set(route.path, route.function);
      }
    }

    for (const [path, fn] of preflightPaths) {
      // Browsers send preflight without credentials: never behind an authorizer.
      const preflight = this.addRoute('OPTIONS', path, integrationFor(fn), undefined);
      Validations.of(preflight).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason: `CORS preflight for ${path}: browsers send OPTIONS without credentials (Fetch standard), so it cannot be authorized; the function answers only with the allowed origins, methods and headers.`,
      });
    }

    // Anything no route matches: API Gateway's own answer is `{"message":"Not Found"}`
    // and never a 405; the health function answers 404 not_found / 405
    // method_not_allowed in the API's error shape instead, as the local stack does.
    this.defaultRoute = new HttpRoute(this, 'DefaultRoute', {
      httpApi: this.httpApi,
      routeKey: HttpRouteKey.DEFAULT,
      integration: integrationFor(DEFAULT_ROUTE_FUNCTION),
    });
    Validations.of(this.defaultRoute).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'The $default route only catches paths and methods outside the route table and answers 404 not_found or 405 method_not_allowed; it reads no data, so there is nothing to authorize.',
    });
  }

  /** The API's URL (https://…/), with a trailing slash. */
  public get url(): string {
    return this.stage.url;
  }

  private addRoute(
    method: ServedMethod | 'OPTIONS',
    path: string,
    integration: HttpLambdaIntegration,
    authorizer: IHttpRouteAuthorizer | undefined,
  ): HttpRoute {
    const route = new HttpRoute(this, routeConstructId({ method, path }), {
      httpApi: this.httpApi,
      routeKey: HttpRouteKey.with(path, HttpMethod[method]),
      integration,
      authorizer,
    });
    this.routes.set(`${method} ${path}`, route);
    return route;
  }

  /**
   * Routes without a gateway authorizer are deliberate (the route table says
   * so); cdk-nag's APIG4 is acknowledged on exactly those routes, with why.
   * IAM routes need nothing: AWS_IAM satisfies APIG4.
   */
  private acknowledgeAuthorization(httpRoute: HttpRoute, route: Route, key: string): void {
    switch (route.auth) {
      case 'iam':
        return;
      case 'writeKey':
        Validations.of(httpRoute).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason: `${key} is authorized in the function with the source's write key: Segment-compatible clients may send it in the JSON body (writeKey), which an API Gateway authorizer cannot read; keys are stored hashed and a missing or unknown key gets 401.`,
        });
        return;
      case 'none':
        Validations.of(httpRoute).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason: `${key} is the public liveness probe (API.md: no credential); it reads no data and returns only {ok, version}.`,
        });
        return;
      default: {
        const never: never = route.auth;
        throw new Error(`KairosHttpApi: unknown auth ${String(never)} on ${key}`);
      }
    }
  }
}
