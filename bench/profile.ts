/**
 * The profile stream's apply rate at saturation: stored events delivered as
 * DynamoDB stream batches of 100 (two shards' worth in parallel, a customer's
 * events in order on one of them, like the event source mapping with
 * parallelization factor 2) to the real profile handler on DynamoDB Local,
 * with the demo catalog live (segments, persona and scores computed for
 * every write), as fast as it takes them: events applied per second.
 *
 * Baseline, same run: the very TransactWriteItems the handler sent (recorded
 * at the client, per batch), replayed raw into a table of the same shape in
 * the same order (each batch's transactions at the handler's concurrency,
 * batches of a shard one after another). The ratio handler / raw is what
 * planning, reading and our code cost on top of the writes exactly-once
 * needs anyway. Budget (ARCHITECTURE.md): ≥ 0.5.
 *
 * Call `benchProfile(endpoint)` with DYNAMODB_ENDPOINT unset or equal to the
 * endpoint, before anything else has loaded shared/config.ts with another one.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import { CreateTableCommand } from '@aws-sdk/client-dynamodb';
import type { Operations } from '#store/client.ts';

type TransactInput = Operations['TransactWriteItems']['input'];
import type { DynamoDBRecord } from 'aws-lambda';
import { assertLocalEndpoint } from '#local/dynamodb.ts';

/** Events per round, customers per round. */
const EVENTS = 1_500;
const CUSTOMERS = 150;
const BATCH_SIZE = 100;
/** Batches in flight: one per shard (parallelization factor 2 on one shard behaves the same). */
const SHARDS = 2;
const ROUNDS = 3;
/** Transactions in flight per batch when the raw side replays them (the handler's default). */
const RAW_CONCURRENCY = 16;
const BUDGET = 0.5;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await task(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export interface ProfileBenchResult {
  readonly handlerPerSecond: number;
  readonly rawPerSecond: number;
  readonly ratio: number;
  readonly withinBudget: boolean;
}

export async function benchProfile(endpoint: string): Promise<ProfileBenchResult> {
  assertLocalEndpoint(endpoint, 'benchProfile');
  process.env.DYNAMODB_ENDPOINT ??= endpoint;
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';

  const { config } = await import('#shared/config.ts');
  if (config.DYNAMODB_ENDPOINT !== endpoint) {
    throw new Error(`benchProfile(${endpoint}) but the handlers were configured for ${config.DYNAMODB_ENDPOINT ?? 'AWS'}`);
  }
  const { ensureTables } = await import('#local/tables.ts');
  // The handler's writes and the raw baseline go through the product's one DynamoDB client; the SDK only creates tables.
  const { dynamo: sdk } = await import('#test/support/sdk-clients.ts');
  const { dynamo } = await import('#store/client.ts');
  const client = dynamo();
  const { loadLocalCatalog } = await import('#local/catalog.ts');
  const { storedEvent, streamEvent, streamRecord, sequenceNumber } = await import('#test/support/stream.ts');
  const { processStreamEvent } = await import('#functions/profile/handler.ts');

  await ensureTables(sdk);
  const catalog = await loadLocalCatalog({ inMemory: true, log: () => undefined });
  const rawTable = `${config.PROFILES_TABLE}-raw-bench`;
  await sdk.send(
    new CreateTableCommand({
      TableName: rawTable,
      AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST',
    }),
  );

  // Every TransactWriteItems the handler sends, by the batch it was sent for.
  const batchOf = new AsyncLocalStorage<TransactInput[]>();
  const send = client.send.bind(client);
  client.send = ((operation, input, options) => {
    const recording = batchOf.getStore();
    if (recording && operation === 'TransactWriteItems') recording.push(structuredClone(input as TransactInput));
    return send(operation, input, options);
  }) as typeof client.send;

  /**
   * A round's stream: per customer, anonymous browsing, an identify that
   * merges it, then known activity (views, orders, outcomes); customers
   * interleaved in time, each on one shard.
   */
  const shardsFor = (round: string): DynamoDBRecord[][][] => {
    const perCustomer = Math.floor(EVENTS / CUSTOMERS);
    const shards: DynamoDBRecord[][] = Array.from({ length: SHARDS }, () => []);
    const t0 = Date.parse('2026-04-01T00:00:00Z');
    let sequence = 0;
    for (let step = 0; step < perCustomer; step++) {
      for (let c = 0; c < CUSTOMERS; c++) {
        const userId = `bench-${round}-u${c}`;
        const anonymousId = `bench-${round}-a${c}`;
        const timestamp = new Date(t0 + (step * CUSTOMERS + c) * 1000).toISOString();
        const messageId = `${round}-${c}-${step}`;
        const event =
          step < 3
            ? storedEvent({ type: 'page', anonymousId, messageId, timestamp, properties: { category: ['shoes', 'tents', 'yoga'][c % 3] } })
            : step === 3
              ? storedEvent({ type: 'identify', userId, anonymousId, messageId, timestamp, traits: { email: `${userId}@example.com`, tier: c % 2 ? 'gold' : 'silver' } })
              : step % 3 === 0
                ? storedEvent({ type: 'track', userId, anonymousId, messageId, timestamp, event: 'Order Completed', properties: { revenue: 20 + (c % 50), products: [{ category: 'shoes' }] } })
                : storedEvent({ type: 'track', userId, anonymousId, messageId, timestamp, event: 'Product Viewed', properties: { category: ['shoes', 'tents', 'yoga'][step % 3] } });
        shards[c % SHARDS]!.push(streamRecord(event, { sequenceNumber: sequenceNumber(++sequence) }));
      }
    }
    return shards.map((records) => {
      const batches: DynamoDBRecord[][] = [];
      for (let i = 0; i < records.length; i += BATCH_SIZE) batches.push(records.slice(i, i + BATCH_SIZE));
      return batches;
    });
  };
  const eventsIn = (shards: DynamoDBRecord[][][]) => shards.flat(2).length;

  const handlerRound = async (round: string) => {
    const shards = shardsFor(round);
    const recorded = shards.map((batches) => batches.map(() => [] as TransactInput[]));
    const started = performance.now();
    await Promise.all(
      shards.map(async (batches, s) => {
        for (let b = 0; b < batches.length; b++) {
          const response = await batchOf.run(recorded[s]![b]!, () => processStreamEvent(streamEvent(batches[b]!)));
          if (response.batchItemFailures.length > 0) throw new Error(`the profile handler failed ${response.batchItemFailures.length} records`);
        }
      }),
    );
    return { perSecond: eventsIn(shards) / ((performance.now() - started) / 1000), recorded, events: eventsIn(shards) };
  };

  const rawRound = async (recorded: TransactInput[][][], events: number) => {
    const retabled = recorded.map((batches) =>
      batches.map((transactions) =>
        transactions.map((input) => ({
          TransactItems: input.TransactItems.map((item) => ('Put' in item ? { Put: { ...item.Put, TableName: rawTable } } : item)),
        })),
      ),
    );
    const started = performance.now();
    await Promise.all(
      retabled.map(async (batches) => {
        for (const transactions of batches) {
          await pool(transactions, RAW_CONCURRENCY, async (input) => {
            await send('TransactWriteItems', input);
          });
        }
      }),
    );
    return events / ((performance.now() - started) / 1000);
  };

  const viaHandler: number[] = [];
  const raw: number[] = [];
  let transactions = 0;
  for (let round = -1; round < ROUNDS; round++) {
    const handled = await handlerRound(`r${round}`);
    const rawRate = await rawRound(handled.recorded, handled.events);
    if (round < 0) continue; // warm-up: JIT, connections, the live catalog
    viaHandler.push(handled.perSecond);
    raw.push(rawRate);
    transactions = handled.recorded.flat(2).length;
  }
  const handlerPerSecond = median(viaHandler);
  const rawPerSecond = median(raw);
  const ratio = handlerPerSecond / rawPerSecond;
  const withinBudget = ratio >= BUDGET;
  const line = (label: string, xs: number[]) =>
    `  ${label.padEnd(60)} ${median(xs).toFixed(0).padStart(6)} events/s (median; rounds ${xs.map((x) => x.toFixed(0)).join(', ')})`;
  console.log(
    `profile stream: ${ROUNDS} rounds of ${EVENTS} events (${CUSTOMERS} customers: anonymous pages, identify, activity), ` +
      `batches of ${BATCH_SIZE} on ${SHARDS} shards; ${catalog.message}`,
  );
  console.log(line('profile handler (decode → plan → read → commit)', viaHandler));
  console.log(line(`raw TransactWriteItems the handler sent (${transactions}/round)`, raw));
  console.log(`  ratio handler / raw TransactWriteItems:  ${ratio.toFixed(2)} (budget >= ${BUDGET}: ${withinBudget ? 'ok' : 'OVER BUDGET'})`);
  return { handlerPerSecond, rawPerSecond, ratio, withinBudget };
}
