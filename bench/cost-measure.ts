/**
 * The cost module of `npm run bench`: what 1M decisions and 1M ingested
 * events cost on AWS list prices (bench/cost.ts, bench/prices.ts), from what
 * this run measures of the real handlers against DynamoDB Local:
 *
 * - decide: the handler's warm duration per decision, 1,000 decisions
 *   after 1,000 to warm it (V8 optimises a handler after a few thousand
 *   calls; a million decisions are served almost all by warm instances: 50
 *   calls of warm-up, as before, measured the interpreter and doubled the
 *   figure) (the generated
 *   1,000-action catalog of the decide bench, learning on, its decision
 *   record written), the DynamoDB read units of the requests it sends
 *   (metered per request from the items read, `readUnits`), and the bytes of
 *   its decision record line (captured as the local stack captures it),
 *   gzipped as Firehose and S3 get them;
 * - an ingested event: the ingest handler's mean duration for one `track`
 *   message per request (what a page sends) and the write units of its
 *   conditional put; the profile handler's duration per event on stream
 *   batches of 10 events of 10 customers (each event its own profile write:
 *   the costly case), with the read and write units of what it sends.
 *
 * Durations are each call's wall time, with the CPU time this process
 * spent during it: Lambda bills each invocation's wall time, rounded up to
 * its millisecond (cost.ts `billedDurationMs`), with its CPU part stretched
 * below one vCPU (cost.ts `lambdaDurationMs`), the rest — DynamoDB Local's
 * round trips, slower than DynamoDB's (bench/README.md) — as measured: the
 * Lambda lines over-estimate. Not counted: data
 * transfer out, the statistics cache's background reads (16 Queries per
 * decide environment every 5 s, whatever the traffic), and free items
 * (DynamoDB Streams reads by Lambda, S3 lifecycle expiry).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ONE_VCPU_MB, costPerMillion, lambdaDurationMs, readUnits, writeUnits, type CostLine, type UnitUse } from './cost.ts';
import { PRICES_RECORDED } from './prices.ts';

/** The budget of a million decisions, USD (ARCHITECTURE.md, issue 11). */
export const DECISION_BUDGET_USD = 1.5;

/**
 * Lambda's own lines per invocation in the function's log group, bytes:
 * none. Every function runs with the JSON log format and the system log
 * level WARN (infra/constructs/kairos-function.ts `systemLogLevelV2:
 * SystemLogLevel.WARN`), and Lambda sends only system logs at the selected
 * level and lower — WARN being the lowest — while an invocation's
 * platform.start and platform.report events are INFO (the Lambda developer
 * guide, "Log-level filtering",
 * https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html,
 * and the SystemLogLevel property of CloudFormation's LoggingConfig: "Lambda
 * only sends system logs at the selected level of detail and lower, where
 * DEBUG is the highest level and WARN is the lowest").
 * What remains are WARN events (a timeout, dropped logs), not counted per
 * invocation. At INFO, they would be about 400 bytes an invocation.
 */
export const PLATFORM_LOG_BYTES = 0;

/** Decision records per Firehose record: CloudWatch Logs sends a subscription's log events in batches (an assumption: 100). */
const RECORDS_PER_FIREHOSE_RECORD = 100;

/** How long the decision log keeps its records (infra DecisionLog's default retention), months. */
const DECISION_LOG_MONTHS = 3;

/** The byte size DynamoDB bills an item by, approximated by its JSON text (attribute names and values). */
const itemBytes = (item: unknown): number => (item ? Buffer.byteLength(JSON.stringify(item)) : 0);

interface Meter {
  readUnits: number;
  writeUnits: number;
  requests: number;
}

/** Meters the read and write units of every request `client` sends while `meter` is set. */
function meterClient(client: { send: (...args: never[]) => Promise<unknown> }): { meter: Meter | undefined; reset(): Meter } {
  const state: { meter: Meter | undefined; reset(): Meter } = {
    meter: undefined,
    reset() {
      this.meter = { readUnits: 0, writeUnits: 0, requests: 0 };
      return this.meter;
    },
  };
  const send = client.send.bind(client) as (operation: string, input: Record<string, unknown>, options?: unknown) => Promise<Record<string, unknown>>;
  (client as { send: unknown }).send = async (operation: string, input: Record<string, unknown>, options?: unknown) => {
    const output = await send(operation, input, options);
    const m = state.meter;
    if (!m) return output;
    m.requests++;
    if (operation === 'GetItem') m.readUnits += readUnits(itemBytes(output.Item), { consistent: input.ConsistentRead === true });
    if (operation === 'BatchGetItem') {
      const requested = input.RequestItems as Record<string, { ConsistentRead?: boolean }>;
      for (const [table, items] of Object.entries((output.Responses ?? {}) as Record<string, unknown[]>)) {
        for (const item of items) m.readUnits += readUnits(itemBytes(item), { consistent: requested[table]?.ConsistentRead === true });
      }
    }
    if (operation === 'Query') m.readUnits += readUnits(((output.Items ?? []) as unknown[]).reduce<number>((n, item) => n + itemBytes(item), 0));
    if (operation === 'PutItem') m.writeUnits += writeUnits(itemBytes(input.Item));
    if (operation === 'UpdateItem' || operation === 'DeleteItem') m.writeUnits += 1;
    if (operation === 'TransactWriteItems') {
      for (const t of input.TransactItems as Record<string, { Item?: unknown }>[]) {
        // A Put by its item's size; an Update, Delete or ConditionCheck of a small item: 1 KB.
        m.writeUnits += writeUnits(t.Put ? itemBytes(t.Put.Item) : 1, { transactional: true });
      }
    }
    return output;
  };
  return state;
}

const mean = (values: readonly number[]) => values.reduce((s, v) => s + v, 0) / values.length;

/** One measured invocation: its duration and the CPU time it used, ms. */
interface Invocation {
  readonly durationMs: number;
  readonly cpuMs: number;
}

/** The invocations of parallel lists of durations and CPU times. */
const oneByOne = (durations: readonly number[], cpu: readonly number[]): Invocation[] => durations.map((durationMs, i) => ({ durationMs, cpuMs: cpu[i] ?? durationMs }));

export interface CostBenchResult {
  readonly decisions: { readonly generated: CostLine[]; readonly seed: CostLine[] };
  readonly events: CostLine[];
  readonly withinBudget: boolean;
}

/** The cost table of this run (see the module's docstring); `endpoint` is the in-memory DynamoDB Local the bench started. */
export async function benchCost(endpoint: string): Promise<CostBenchResult> {
  // The handlers read their configuration at first import: the emulator's endpoint, quiet logs and metrics.
  process.env.DYNAMODB_ENDPOINT ??= endpoint;
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  const { prepareDecideFixture, generateCatalog } = await import('./decide.ts');
  const fixture = await prepareDecideFixture(endpoint, generateCatalog().document);
  const { dynamo } = await import('#store/client.ts');
  const { functionDefinitions } = await import('#shared/functions.ts');
  const { lambdaContext, apiGatewayEvent } = await import('#test/support/apigw.ts');
  const { handler: decideHandler } = await import('#functions/decide/handler.ts');
  const { handler: ingestHandler } = await import('#functions/ingest/handler.ts');
  const { processStreamEvent } = await import('#functions/profile/handler.ts');
  const { storedEvent, streamEvent, streamRecord, sequenceNumber } = await import('#test/support/stream.ts');
  const { captureDecisionRecords, decisionLogFiles, LocalDecisionLog } = await import('#local/decision-log.ts');
  const metered = meterClient(dynamo() as never);

  // Decide: warm, then timed; its records captured as the local stack captures them.
  const DECISIONS = 1_000;
  /** The CPU time this process spent during `run`, ms (DynamoDB Local is another process: its work is not in it). */
  const cpuMsOf = async <T>(run: () => Promise<T>): Promise<{ value: T; cpuMs: number }> => {
    const started = process.cpuUsage();
    const value = await run();
    const used = process.cpuUsage(started);
    return { value, cpuMs: (used.user + used.system) / 1000 };
  };

  let decideRuns = 0;
  const measureDecide = async (): Promise<{ ms: number; cpuMs: number; invocations: Invocation[]; units: Meter; recordBytes: number; recordGzipBytes: number }> => {
    decideRuns++;
    const folder = mkdtempSync(join(tmpdir(), 'kairos-bench-cost-'));
    const log = new LocalDecisionLog(folder);
    const release = captureDecisionRecords(log);
    try {
      const WARM = 1_000;
      for (let i = 0; i < WARM; i++) await decideHandler(fixture.event(), lambdaContext());
      const units = metered.reset();
      const ms: number[] = [];
      const cpu: number[] = [];
      for (let i = 0; i < DECISIONS; i++) {
        const started = performance.now();
        const { value: answer, cpuMs } = await cpuMsOf(async () => (await decideHandler(fixture.event(), lambdaContext())) as { statusCode?: number });
        ms.push(performance.now() - started);
        cpu.push(cpuMs);
        if (answer.statusCode !== 200) throw new Error(`decide answered ${answer.statusCode}`);
      }
      metered.meter = undefined;
      if (process.env.KAIROS_BENCH_CPU_PROFILE) await profileDecisions(join(process.env.KAIROS_BENCH_CPU_PROFILE, `cost-decide-${decideRuns}.cpuprofile`), () => decideHandler(fixture.event(), lambdaContext()));
      log.close();
      const all = decisionLogFiles(folder)
        .flatMap((file) => readFileSync(file, 'utf8').split('\n'))
        .filter((l) => l !== '')
        .slice(0, WARM + DECISIONS);
      if (all.length !== WARM + DECISIONS) throw new Error(`${all.length} decision records for ${WARM + DECISIONS} decisions`);
      const text = `${all.slice(WARM).join('\n')}\n`;
      return { ms: mean(ms), cpuMs: mean(cpu), invocations: oneByOne(ms, cpu), units, recordBytes: Buffer.byteLength(text) / DECISIONS, recordGzipBytes: gzipSync(text).length / DECISIONS };
    } finally {
      release();
      rmSync(folder, { recursive: true, force: true });
    }
  };
  const generated = await measureDecide();
  await fixture.publishSeed();
  const { refreshLiveCatalog } = await import('#store/catalog-live.ts');
  await refreshLiveCatalog();
  const seed = await measureDecide();

  // Ingest: one track message per request.
  const EVENTS = 200;
  const ingestMs: number[] = [];
  const ingestCpu: number[] = [];
  const track = (i: number) =>
    apiGatewayEvent({
      method: 'POST',
      path: '/v1/track',
      headers: fixture.headers,
      body: JSON.stringify({ userId: `cost-${i % 10}`, event: 'Product Viewed', messageId: `cost-${Date.now().toString(36)}-${i}`, properties: { category: 'running', price: 42 } }),
    });
  for (let i = 0; i < 20; i++) await ingestHandler(track(-1 - i), lambdaContext());
  const ingestUnits = metered.reset();
  for (let i = 0; i < EVENTS; i++) {
    const started = performance.now();
    const { value: answer, cpuMs } = await cpuMsOf(async () => (await ingestHandler(track(i), lambdaContext())) as { statusCode?: number });
    ingestMs.push(performance.now() - started);
    ingestCpu.push(cpuMs);
    if (answer.statusCode !== 200) throw new Error(`ingest answered ${answer.statusCode}`);
  }
  metered.meter = undefined;

  // Profile: stream batches of 10 events, one per customer.
  const BATCH = 10;
  const BATCHES = 20;
  let sequence = 0;
  const batch = (b: number) =>
    streamEvent(
      Array.from({ length: BATCH }, (_, c) =>
        streamRecord(
          storedEvent({ type: 'track', userId: `cost-profile-${c}`, messageId: `cost-p-${b}-${c}`, event: 'Product Viewed', timestamp: new Date().toISOString(), properties: { category: 'running' } }),
          { sequenceNumber: sequenceNumber(sequence++) },
        ),
      ),
    );
  for (let b = 0; b < 3; b++) await processStreamEvent(batch(-1 - b), lambdaContext());
  const profileUnits = metered.reset();
  const profileMs: number[] = [];
  const profileCpu: number[] = [];
  for (let b = 0; b < BATCHES; b++) {
    const started = performance.now();
    const { value: answer, cpuMs } = await cpuMsOf(() => processStreamEvent(batch(b), lambdaContext()));
    profileMs.push(performance.now() - started);
    profileCpu.push(cpuMs);
    if (answer.batchItemFailures.length > 0) throw new Error(`the profile function failed ${answer.batchItemFailures.length} records`);
  }
  metered.meter = undefined;
  await fixture.restore();

  const decisionUse = (m: Awaited<ReturnType<typeof measureDecide>>): UnitUse => ({
    httpRequests: 1,
    lambdas: [{ name: 'decide', invocations: 1, durationMs: m.ms, cpuMs: m.cpuMs, memoryMb: functionDefinitions.decide.memorySize, invocationsMeasured: m.invocations }],
    readUnits: m.units.readUnits / DECISIONS,
    writeUnits: m.units.writeUnits / DECISIONS,
    logBytes: m.recordBytes + PLATFORM_LOG_BYTES,
    firehoseRecords: 1 / RECORDS_PER_FIREHOSE_RECORD,
    firehoseRecordBytes: m.recordGzipBytes * RECORDS_PER_FIREHOSE_RECORD,
    s3Bytes: m.recordGzipBytes,
    s3Months: DECISION_LOG_MONTHS,
  });
  const eventUse: UnitUse = {
    httpRequests: 1,
    lambdas: [
      { name: 'ingest', invocations: 1, durationMs: mean(ingestMs), cpuMs: mean(ingestCpu), memoryMb: functionDefinitions.ingest.memorySize, invocationsMeasured: oneByOne(ingestMs, ingestCpu) },
      {
        name: 'profile',
        invocations: 1 / BATCH,
        durationMs: mean(profileMs),
        cpuMs: mean(profileCpu),
        memoryMb: functionDefinitions.profile.memorySize,
        invocationsMeasured: oneByOne(profileMs, profileCpu),
      },
    ],
    readUnits: ingestUnits.readUnits / EVENTS + profileUnits.readUnits / (BATCH * BATCHES),
    writeUnits: ingestUnits.writeUnits / EVENTS + profileUnits.writeUnits / (BATCH * BATCHES),
    logBytes: PLATFORM_LOG_BYTES * (1 + 1 / BATCH),
    firehoseRecords: 0,
    firehoseRecordBytes: 0,
  };
  const decisions = { generated: costPerMillion(decisionUse(generated)), seed: costPerMillion(decisionUse(seed)) };
  const events = costPerMillion(eventUse);
  const totalOf = (lines: readonly CostLine[]) => lines.at(-1)?.usdPerMillion ?? Number.POSITIVE_INFINITY;
  const withinBudget = totalOf(decisions.generated) <= DECISION_BUDGET_USD && totalOf(decisions.seed) <= DECISION_BUDGET_USD;

  const table = (title: string, lines: readonly CostLine[]) =>
    [`  ${title}`, ...lines.map((l) => `    ${l.item.padEnd(84)} $${l.usdPerMillion.toFixed(4)}`)].join('\n');
  const measured = (label: string, m: Awaited<ReturnType<typeof measureDecide>>) =>
    `${label} ${m.ms.toFixed(2)} ms/decision (${m.cpuMs.toFixed(2)} ms CPU), ${(m.units.requests / DECISIONS).toFixed(2)} DynamoDB requests (${(m.units.readUnits / DECISIONS).toFixed(2)} RRU), decision record ${m.recordBytes.toFixed(0)} B (${m.recordGzipBytes.toFixed(0)} B gzipped)`;
  // What decide's memory buys: the Lambda line and the CPU part of an answer at other sizes (same measured calls).
  const memoryLine = (label: string, m: Awaited<ReturnType<typeof measureDecide>>) =>
    [512, 1024, ONE_VCPU_MB]
      .map((memoryMb) => {
        const use = { name: 'decide', invocations: 1, durationMs: m.ms, cpuMs: m.cpuMs, memoryMb, invocationsMeasured: m.invocations };
        const usd = costPerMillion({ httpRequests: 0, lambdas: [use], readUnits: 0, writeUnits: 0, logBytes: 0, firehoseRecords: 0, firehoseRecordBytes: 0 }).find((l) => l.item.startsWith('Lambda'))?.usdPerMillion ?? 0;
        return `${memoryMb} MB $${usd.toFixed(4)} (CPU ${(lambdaDurationMs(use) - m.ms + m.cpuMs).toFixed(1)} ms)`;
      })
      .join(', ') + ` — ${label}`;
  const budget = (label: string, lines: readonly CostLine[]) =>
    `  budget     1M decisions, ${label}: $${totalOf(lines).toFixed(2)} (budget ≤ $${DECISION_BUDGET_USD.toFixed(2)}) ${totalOf(lines) <= DECISION_BUDGET_USD ? 'ok' : 'OVER BUDGET'}`;
  console.log(
    [
      `  measured   ${measured('decide, 1,000-action catalog', generated)}`,
      `             ${measured('decide, seed catalog', seed)}`,
      `             ingest ${mean(ingestMs).toFixed(2)} ms/event (${mean(ingestCpu).toFixed(2)} ms CPU, ${(ingestUnits.writeUnits / EVENTS).toFixed(2)} WRU); profile ${mean(profileMs).toFixed(1)} ms per batch of ${BATCH} (${mean(profileCpu).toFixed(1)} ms CPU, ${(profileUnits.readUnits / (BATCH * BATCHES)).toFixed(2)} RRU, ${(profileUnits.writeUnits / (BATCH * BATCHES)).toFixed(2)} WRU per event)`,
      `  prices     bench/prices.ts, ${PRICES_RECORDED}; CloudWatch Logs includes ${PLATFORM_LOG_BYTES} B of Lambda platform lines per invocation (system log level WARN)`,
      `  Lambda     billed duration = measured − CPU + CPU × max(1, ${ONE_VCPU_MB} MB / memory): the CPU part stretched below one vCPU`,
      `  memory     decide's Lambda line per 1M at ${memoryLine('1,000-action catalog', generated)}`,
      `             ${memoryLine('seed catalog', seed)}; configured ${functionDefinitions.decide.memorySize} MB`,
      table('1M decisions, 1,000-action catalog (USD)', decisions.generated),
      table('1M decisions, seed catalog (USD)', decisions.seed),
      table('1M ingested events, one per request (USD)', events),
      budget('1,000-action catalog', decisions.generated),
      budget('seed catalog', decisions.seed),
    ].join('\n'),
  );
  return { decisions, events, withinBudget };
}

/**
 * KAIROS_BENCH_CPU_PROFILE=<dir>: after the timed decisions, 1,000 more under V8's sampling profiler,
 * written to `file` (open in Chrome DevTools or speedscope); not in the figures.
 */
async function profileDecisions(file: string, call: () => Promise<unknown>): Promise<void> {
  const { Session } = await import('node:inspector/promises');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { dirname } = await import('node:path');
  mkdirSync(dirname(file), { recursive: true });
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 50 });
    await session.post('Profiler.start');
    for (let i = 0; i < 1_000; i++) await call();
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(profile));
  } finally {
    session.disconnect();
  }
}
