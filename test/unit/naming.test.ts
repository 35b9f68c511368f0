/**
 * The one naming rule of logs and metrics (shared/functions.ts): every
 * function's logger and metrics come from shared/observability.ts
 * (service `kairos-<function>`, namespace `Kairos`), and every metric name
 * is PascalCase. Read from the sources, so that a new `addMetric(` or
 * `new Logger(` cannot slip past it.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { METRIC_NAME, METRICS_NAMESPACE, functionDefinitions, serviceNameOf, type LambdaName } from '#shared/functions.ts';
import { functionLogger, functionMetrics } from '#shared/observability.ts';

const ROOT = join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => relative(ROOT, join(entry.parentPath, entry.name)));
}

const files = [...sources('functions'), ...sources('shared')];
const text = new Map(files.map((file) => [file, readFileSync(join(ROOT, file), 'utf8')]));

/**
 * The store's live-catalog cache keeps a logger of its own (service
 * `kairos-catalog`) in whichever function loads it; the rule wants it to log
 * as that function.
 */
const OWN_LOGGER_PENDING = ['shared/store/catalog-live.ts'];

describe('naming of logs and metrics', () => {
  it('the rule: kairos-<function>, namespace Kairos', () => {
    expect((Object.keys(functionDefinitions) as LambdaName[]).map(serviceNameOf)).toEqual(
      Object.keys(functionDefinitions).map((name) => `kairos-${name}`),
    );
    expect(METRICS_NAMESPACE).toBe('Kairos');
    expect(['DegradedDecisions', 'EventsAccepted', 'Requests'].every((n) => METRIC_NAME.test(n))).toBe(true);
    expect(['requests', 'storeFaults', 'Events_Accepted', 'Events-Accepted', 'EVENTS', ''].some((n) => METRIC_NAME.test(n))).toBe(false);
  });

  it('every addMetric names its metric in PascalCase, with a literal name', () => {
    const calls = [...text].flatMap(([file, source]) => [...source.matchAll(/\baddMetric\(\s*([^,]*),/g)].map((m) => ({ file, name: m[1] ?? '' })));
    expect(calls.length).toBeGreaterThan(10);
    const bad = calls.filter(({ name }) => !/^'[^']*'$/.test(name) || !METRIC_NAME.test(name.slice(1, -1)));
    expect(bad).toEqual([]);
  });

  it('loggers and metrics are made only by shared/observability.ts, by the rule', () => {
    const makers = [...text].filter(([, source]) => /\bnew (Logger|Metrics)\(/.test(source)).map(([file]) => file);
    expect(makers.sort()).toEqual(['shared/observability.ts', ...OWN_LOGGER_PENDING].sort());
    const logger = functionLogger('decide');
    const metrics = functionMetrics('ingest');
    // Powertools keeps the service name in its log data (the `service` key of every line).
    expect((logger as unknown as { powertoolsLogData: { serviceName: string } }).powertoolsLogData.serviceName).toBe('kairos-decide');
    metrics.addMetric('Requests', 'Count', 1);
    const stored = metrics.serializeMetrics() as unknown as { _aws: { CloudWatchMetrics: { Namespace: string }[] }; service: string };
    expect({ namespace: stored._aws.CloudWatchMetrics[0]?.Namespace, service: stored.service }).toEqual({ namespace: 'Kairos', service: 'kairos-ingest' });
  });
});
