/**
 * The floor under the cold start proxy (bench/decide.ts): the packages the
 * decide function bundles, with no Kairos code, each set up as decide sets
 * it up when its module loads (a Powertools logger with its middy
 * middleware, a Powertools metrics, a CEL environment, a Liquid engine, a zod
 * schema; jose and the aws-lite DynamoDB client imported). Built like the
 * decide bundle (infra/bundling.ts buildLikeCdk); the bench times its import
 * in fresh processes beside the decide bundle's, so the share of the budget
 * the libraries take before any of our code runs is measured in the same run.
 */
import middy from '@middy/core';
import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics } from '@aws-lambda-powertools/metrics';
import awsLite from '@aws-lite/client';
import { Environment } from '@marcbachmann/cel-js';
import { jwtVerify } from 'jose';
import { Liquid } from 'liquidjs';
import * as z from 'zod/mini';

const logger = new Logger({ serviceName: 'decide' });
const metrics = new Metrics({ namespace: 'Kairos', serviceName: 'decide' });
const environment = new Environment();
// As decide's engines are made (catalog/template.ts): with a locale, so no Intl default is resolved at construction.
const liquid = new Liquid({ locale: 'en-US' });
const body = z.object({ channel: z.string() });

/** Keeps every part in the bundle (nothing is tree-shaken away). */
export const handler = middy()
  .use(injectLambdaContext(logger))
  .handler(async () => ({ environment, liquid, body, metrics, jwtVerify, awsLite }));
