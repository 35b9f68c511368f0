/**
 * Readiness of the store for GET /v1/health: one GetItem of an item that
 * never exists in the Control table (the cheapest read DynamoDB has), under
 * a short deadline, its result cached briefly and shared by concurrent
 * callers, so a load balancer polling health never becomes store load.
 */
import { config } from '#shared/config.ts';
import { dynamo, type DynamoClient } from './client.ts';
import { healthProbeItem } from './items.ts';

/** Deadline of one probe (ms). */
export const PROBE_DEADLINE_MS = 1_000;
/** How long a probe's result is reused (ms): at most one probe per this interval per process. */
export const PROBE_CACHE_MS = 2_000;

export interface Readiness {
  readonly ok: boolean;
  /** When the probe behind this answer ran (ms). */
  readonly checkedAt: number;
  /** Why the store is not ready (the fault's name), when it is not. */
  readonly reason?: string;
}

let last: Readiness | undefined;
let probing: Promise<Readiness> | undefined;

/** Forget the cached result (tests). */
export function resetReadiness(): void {
  last = undefined;
  probing = undefined;
}

async function probe(client: DynamoClient): Promise<Readiness> {
  try {
    await client.send('GetItem', { TableName: config.CONTROL_TABLE, Key: healthProbeItem.key() }, { deadline: Date.now() + PROBE_DEADLINE_MS });
    return { ok: true, checkedAt: Date.now() };
  } catch (error) {
    return { ok: false, checkedAt: Date.now(), reason: error instanceof Error ? error.name : 'Error' };
  }
}

/** Whether the store answers, probed at most every PROBE_CACHE_MS; never throws, answers within PROBE_DEADLINE_MS. */
export function storeReadiness(now = Date.now(), client?: DynamoClient): Promise<Readiness> {
  if (last && now - last.checkedAt < PROBE_CACHE_MS) return Promise.resolve(last);
  if (probing) return probing;
  const running = probe(client ?? dynamo()).then((result) => {
    last = result;
    if (probing === running) probing = undefined;
    return result;
  });
  probing = running;
  return running;
}
