/**
 * A function's Powertools logger and metrics, named by the one rule of
 * shared/functions.ts (`serviceNameOf`, METRICS_NAMESPACE). Every
 * `new Logger(` and `new Metrics(` of a function is here.
 */
import { LogFormatter, LogItem, Logger } from '@aws-lambda-powertools/logger';
import type { LogAttributes, UnformattedAttributes } from '@aws-lambda-powertools/logger/types';
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

/**
 * Writes a line as `{"level":…,"message":…,<the call's keys>}`: none of the
 * standard keys Powertools adds (timestamp, service, sampling rate, X-Ray
 * trace id, and from the Lambda context cold_start, function_arn,
 * function_memory_size, function_name, function_request_id — about 350
 * bytes a line in Lambda).
 */
class BareLogFormatter extends LogFormatter {
  override formatAttributes(attributes: UnformattedAttributes, additionalLogAttributes: LogAttributes): LogItem {
    return new LogItem({ attributes: { level: attributes.logLevel, message: attributes.message, ...additionalLogAttributes } });
  }
}

/**
 * A bare logger of function `name` (BareLogFormatter: `level`, `message`
 * and the call's keys only), INFO whatever POWERTOOLS_LOG_LEVEL says: for a
 * line written on every request and kept, where the standard keys would
 * be a large share of the bytes (decide's decision records).
 */
export function bareFunctionLogger(name: LambdaName): Logger {
  return new Logger({ serviceName: serviceNameOf(name), logLevel: 'INFO', logFormatter: new BareLogFormatter() });
}
