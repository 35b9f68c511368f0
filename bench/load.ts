/**
 * Load on the local stack with autocannon: throughput and latency of decide
 * and of ingest under concurrent clients, over keep-alive HTTP/1.1, as a
 * load balancer or a fleet of trackers would send them. No budget of
 * ARCHITECTURE.md is about throughput: these figures are for capacity
 * planning and for comparing runs (DynamoDB Local, a JVM on the same two
 * cores, is the bottleneck here, not DynamoDB).
 *
 * - decide: `POST /v1/decide` for a known anonymous customer on the web
 *   channel (the path a web page takes), the profile built from events
 *   first;
 * - ingest: `POST /v1/batch` of 10 `track` messages, every request with new
 *   messageIds (no deduplication shortcut).
 *
 * Each run is bounded in time (`durationSeconds`) and sends only to the
 * local stack's loopback address.
 */
import { randomUUID } from 'node:crypto';
import autocannon from 'autocannon';

export interface LoadTarget {
  readonly url: string;
  readonly writeKey: string;
}

export interface LoadOptions {
  /** Seconds per route. @default 10 */
  readonly durationSeconds?: number;
  /** Concurrent connections. @default 8 */
  readonly connections?: number;
}

export interface LoadFigures {
  readonly route: string;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly timeouts: number;
}

const BATCH_SIZE = 10;

function run(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolveRun, reject) => {
    autocannon(options, (error, result) => (error ? reject(error) : resolveRun(result)));
  });
}

function figures(route: string, result: autocannon.Result): LoadFigures {
  return {
    route,
    requestsPerSecond: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

export async function benchLoad(target: LoadTarget, options: LoadOptions = {}): Promise<LoadFigures[]> {
  const duration = options.durationSeconds ?? 10;
  const connections = options.connections ?? 8;
  if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(target.url)) throw new Error(`bench/load.ts sends only to the local stack on 127.0.0.1, not ${target.url}`);
  const headers = {
    authorization: `Basic ${Buffer.from(`${target.writeKey}:`).toString('base64')}`,
    'content-type': 'application/json',
  };

  // A customer with some history, so decide reads and evaluates a real profile.
  const anonymousId = `load-${randomUUID().slice(0, 8)}`;
  const seed = await fetch(`${target.url}/v1/batch`, {
    method: 'POST',
    headers,
    body: JSON.stringify({
      batch: Array.from({ length: 12 }, (_, i) => ({
        type: 'page',
        messageId: `${anonymousId}-seed-${i}`,
        anonymousId,
        properties: { category: i % 2 === 0 ? 'running' : 'cycling' },
      })),
    }),
  });
  if (!seed.ok) throw new Error(`seeding the load customer failed: ${seed.status} ${await seed.text()}`);

  const decide = await run({
    url: `${target.url}/v1/decide`,
    method: 'POST',
    headers,
    body: JSON.stringify({ anonymousId, channel: 'web', placement: 'home', context: { weather: 'rain' } }),
    connections,
    duration,
  });

  let sequence = 0;
  const ingest = await run({
    url: `${target.url}/v1/batch`,
    method: 'POST',
    headers,
    connections,
    duration,
    requests: [
      {
        setupRequest: (request) => {
          const batch = Array.from({ length: BATCH_SIZE }, () => {
            sequence += 1;
            return { type: 'track', messageId: `${anonymousId}-${sequence}`, anonymousId: `${anonymousId}-${sequence % 97}`, event: 'Load Probe' };
          });
          return { ...request, body: JSON.stringify({ batch }) };
        },
      },
    ],
  });

  const rows = [figures('POST /v1/decide', decide), figures(`POST /v1/batch (${BATCH_SIZE} msgs)`, ingest)];
  console.log(`  ${connections} connections, ${duration} s per route, keep-alive`);
  for (const row of rows) {
    console.log(
      `  ${row.route.padEnd(26)} ${row.requestsPerSecond.toFixed(0).padStart(6)} req/s   p50 ${row.p50Ms.toFixed(1)} ms   p99 ${row.p99Ms.toFixed(1)} ms   non-2xx ${row.non2xx}   errors ${row.errors}   timeouts ${row.timeouts}`,
    );
  }
  const ingestRow = rows[1] as LoadFigures;
  console.log(`  ingest: ${(ingestRow.requestsPerSecond * BATCH_SIZE).toFixed(0)} messages/s accepted`);
  return rows;
}
