/**
 * A function's Powertools logger and metrics, named by the one rule of
 * shared/functions.ts (`serviceNameOf`, METRICS_NAMESPACE). Every
 * `new Logger(` and `new Metrics(` of a function is here.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { METRICS_NAMESPACE, serviceNameOf, type LambdaName } from './functions.ts';

/** The logger of function `name` (service `kairos-<name>`). */
export function functionLogger(name: LambdaName): Logger {
  return new Logger({ serviceName: serviceNameOf(name) });
}

/** The metrics of function `name` (namespace `Kairos`, service `kairos-<name>`); name each metric in PascalCase (METRIC_NAME). */
export function functionMetrics(name: LambdaName): Metrics {
  return new Metrics({ namespace: METRICS_NAMESPACE, serviceName: serviceNameOf(name) });
}
