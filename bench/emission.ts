/**
 * Event → emission latency on the local stack (issue 12 budget: p95 ≤ 2 s):
 * a VIP customer's `Complaint Opened` sent over HTTP (POST /v1/track) until
 * the demo catalog's `vip-complaint-call` trigger's emission is delivered
 * by the local bus — ingest, the Events stream, the profile function
 * (plan, trigger, decide, the transaction with the outbox item), the Outbox
 * stream, the dispatcher, the bus. The instant is the bus's own delivery
 * time (`time` of the delivered event), so polling adds nothing. One event
 * at a time, ~100 samples after a warm-up.
 *
 * The baseline, in the same run: the freshness path alone (event accepted →
 * visible on the profile) is bench/freshness.ts; the difference is the
 * second stream hop and the dispatcher.
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';

export const EMISSION_BUDGET_P95_MS = 2_000;

export interface EmissionTarget {
  readonly url: string;
  readonly writeKey: string;
  /** What the local bus delivered so far (local/stack.ts `emissions`). */
  readonly emissions: () => readonly { readonly time: string; readonly detail: Readonly<Record<string, unknown>> }[];
}

export interface EmissionResult {
  readonly samples: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  readonly load1: number;
  readonly withinBudget: boolean;
}

const quantile = (sorted: readonly number[], q: number): number =>
  sorted.length === 0 ? NaN : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number);

export async function benchEmission(target: EmissionTarget, options: { samples?: number; warmup?: number; sampleTimeoutMs?: number } = {}): Promise<EmissionResult> {
  const samples = options.samples ?? 100;
  const warmup = options.warmup ?? 5;
  const timeoutMs = options.sampleTimeoutMs ?? 15_000;
  const userId = `bench-emit-${randomUUID().slice(0, 8)}`;
  const auth = `Basic ${Buffer.from(`${target.writeKey}:`).toString('base64')}`;
  const post = async (path: string, body: Record<string, unknown>) => {
    const response = await fetch(`${target.url}${path}`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`POST ${path} answered ${response.status}: ${text.slice(0, 200)}`);
  };
  // A VIP: the demo catalog's trigger fires on their complaints.
  await post('/v1/identify', { userId, messageId: randomUUID(), traits: { tier: 'VIP', firstName: 'Bench' } });
  await new Promise((resolve) => setTimeout(resolve, 1_000));

  const latencies: number[] = [];
  const load1 = loadavg()[0] ?? 0;
  for (let i = 0; i < warmup + samples; i++) {
    const messageId = randomUUID();
    const started = Date.now();
    await post('/v1/track', { userId, event: 'Complaint Opened', messageId, properties: { sample: i } });
    for (;;) {
      const delivered = target.emissions().find((e) => e.detail.eventId === messageId && e.detail.trigger === 'vip-complaint-call');
      if (delivered) {
        if (i >= warmup) latencies.push(Date.parse(delivered.time) - started);
        break;
      }
      if (Date.now() - started > timeoutMs) throw new Error(`sample ${i}: no emission within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }
  const sorted = [...latencies].sort((a, b) => a - b);
  const result: EmissionResult = {
    samples,
    p50Ms: quantile(sorted, 0.5),
    p95Ms: quantile(sorted, 0.95),
    maxMs: sorted[sorted.length - 1] ?? NaN,
    load1,
    withinBudget: quantile(sorted, 0.95) <= EMISSION_BUDGET_P95_MS,
  };
  console.log(
    [
      '',
      `emission — event accepted → trigger emission on the bus, local stack, ${samples} samples (load average ${load1.toFixed(1)})`,
      `  event → emission  p50 ${result.p50Ms.toFixed(0)} ms  p95 ${result.p95Ms.toFixed(0)} ms  max ${result.maxMs.toFixed(0)} ms  ` +
        `(budget p95 <= ${EMISSION_BUDGET_P95_MS} ms: ${result.withinBudget ? 'ok' : 'OVER BUDGET'})`,
    ].join('\n'),
  );
  return result;
}
