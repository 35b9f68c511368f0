/**
 * Event-to-profile freshness on the local stack (ARCHITECTURE.md budget:
 * event accepted → visible, p95 ≤ 1 s): send one event over HTTP, then poll
 * the admin profile route until the profile reflects it. ~200 samples after a
 * warm-up, one customer, one event at a time.
 *
 * The baseline, measured in the same run: the floor a poller can observe,
 * i.e. the ingest round trip plus one profile read. The difference is the
 * stream: DynamoDB Local's stream, the local event source mapping and the
 * profile function.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

export const FRESHNESS_BUDGET_P95_MS = 1_000;

export interface FreshnessTarget {
  readonly url: string;
  readonly writeKey: string;
  readonly adminToken: string;
}

export interface FreshnessOptions {
  /** Measured samples. @default 200 */
  readonly samples?: number;
  /** Unmeasured samples first (JIT, caches, connections). @default 10 */
  readonly warmup?: number;
  /** Give up on one sample after this long. @default 10 s */
  readonly sampleTimeoutMs?: number;
}

export interface FreshnessResult {
  readonly samples: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** Ingest round trip + one profile read: what polling could observe at best. */
  readonly floor: { readonly ingestP50Ms: number; readonly readP50Ms: number; readonly p50Ms: number };
  /** Freshness p50 / floor p50. */
  readonly ratioP50: number;
  readonly polls: number;
  readonly load1: number;
  readonly withinBudget: boolean;
}

const quantile = (sorted: readonly number[], q: number): number =>
  sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number);

export async function benchFreshness(target: FreshnessTarget, options: FreshnessOptions = {}): Promise<FreshnessResult> {
  const samples = options.samples ?? 200;
  const warmup = options.warmup ?? 10;
  const sampleTimeoutMs = options.sampleTimeoutMs ?? 10_000;
  const userId = `bench-fresh-${randomUUID().slice(0, 8)}`;
  const event = 'Bench Probe';
  const writeAuth = `Basic ${Buffer.from(`${target.writeKey}:`).toString('base64')}`;
  const profileUrl = `${target.url}/v1/admin/profiles/${encodeURIComponent(userId)}`;
  const adminHeaders = { authorization: `Bearer ${target.adminToken}` };

  const countSeen = async (): Promise<number> => {
    const response = await fetch(profileUrl, { headers: adminHeaders });
    const text = await response.text();
    if (response.status === 404) return 0;
    if (response.status !== 200) throw new Error(`GET profile answered ${response.status}: ${text.slice(0, 200)}`);
    const body = JSON.parse(text) as { profile?: { stats?: { eventCounts?: Record<string, { total?: number }> } } };
    return body.profile?.stats?.eventCounts?.[event]?.total ?? 0;
  };

  const freshness: number[] = [];
  const ingest: number[] = [];
  const reads: number[] = [];
  let polls = 0;
  const load1 = loadavg()[0] ?? 0;

  for (let i = 0; i < warmup + samples; i++) {
    const started = performance.now();
    const response = await fetch(`${target.url}/v1/track`, {
      method: 'POST',
      headers: { authorization: writeAuth, 'content-type': 'application/json' },
      body: JSON.stringify({ userId, event, messageId: randomUUID(), properties: { sample: i } }),
    });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`POST /v1/track answered ${response.status}: ${text.slice(0, 200)}`);
    const accepted = performance.now();
    for (;;) {
      const readStarted = performance.now();
      const seen = await countSeen();
      const readEnded = performance.now();
      polls++;
      if (i >= warmup) reads.push(readEnded - readStarted);
      if (seen >= i + 1) {
        if (i >= warmup) {
          freshness.push(readEnded - started);
          ingest.push(accepted - started);
        }
        break;
      }
      if (readEnded - started > sampleTimeoutMs) throw new Error(`sample ${i}: the profile did not reflect the event within ${sampleTimeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  const sorted = [...freshness].sort((a, b) => a - b);
  const p50 = (values: number[]) => quantile([...values].sort((a, b) => a - b), 0.5);
  const floor = { ingestP50Ms: p50(ingest), readP50Ms: p50(reads), p50Ms: p50(ingest) + p50(reads) };
  const result: FreshnessResult = {
    samples,
    p50Ms: quantile(sorted, 0.5),
    p95Ms: quantile(sorted, 0.95),
    p99Ms: quantile(sorted, 0.99),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    floor,
    ratioP50: quantile(sorted, 0.5) / floor.p50Ms,
    polls,
    load1,
    withinBudget: quantile(sorted, 0.95) <= FRESHNESS_BUDGET_P95_MS,
  };

  const ms = (v: number) => `${v.toFixed(1)} ms`;
  console.log(
    [
      '',
      `freshness — event accepted → visible on the profile, local stack, ${samples} samples (load average ${load1.toFixed(1)})`,
      `  event → profile            p50 ${ms(result.p50Ms)}  p95 ${ms(result.p95Ms)}  p99 ${ms(result.p99Ms)}  max ${ms(result.maxMs)}  ` +
        `(budget p95 <= ${FRESHNESS_BUDGET_P95_MS} ms: ${result.withinBudget ? 'ok' : 'OVER BUDGET'})`,
      `  floor (ingest + one read)  p50 ${ms(floor.p50Ms)} (ingest ${ms(floor.ingestP50Ms)}, read ${ms(floor.readP50Ms)})  ` +
        `ratio ${result.ratioP50.toFixed(2)}; the stream's share p50 ≈ ${ms(result.p50Ms - floor.p50Ms)}; ${(polls / (warmup + samples)).toFixed(1)} reads per sample`,
    ].join('\n'),
  );
  return result;
}
