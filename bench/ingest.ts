/**
 * Ingestion throughput: 500-message batches through the real ingest handler
 * (API Gateway v2 event in, validation, normalisation, exactly-once
 * transactional writes) against raw BatchWriteItem of the same items (25 per
 * request, no condition, no validation: the floor), and against raw
 * conditional TransactWriteItems of the same items (what exactly-once costs in
 * the store, so the gap to the handler is our code), on the same DynamoDB
 * Local, with the same budget of concurrent DynamoDB requests, over several
 * alternating rounds. DynamoDB Local is slower than DynamoDB: only the ratio
 * within one run means anything.
 *
 * Call `benchIngest(endpoint)` with DYNAMODB_ENDPOINT unset or equal to the
 * endpoint, before anything else has loaded shared/config.ts with another one.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import type { StoredEvent } from '#domain/stored-event.ts';
import type { DynamoClient, WriteRequest } from '#store/client.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';

const BATCH_SIZE = 500;
const BATCHES_PER_ROUND = 4;
const ROUNDS = 7;
/** Concurrent DynamoDB requests allowed to each side. */
const REQUEST_BUDGET = 10;
/** A 500-message batch makes 5 transactions of 100, in parallel. */
const HANDLER_CONCURRENCY = REQUEST_BUDGET / 5;
const BATCH_WRITE_SIZE = 25;
const TRANSACTION_SIZE = 100;


/** Run `tasks` with at most `limit` in flight. */
async function pool<T>(items: readonly T[], limit: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function message(tag: string, i: number) {
  return {
    type: 'track',
    messageId: `${tag}-${i}`,
    userId: `bench-user-${i % 997}`,
    anonymousId: `bench-anon-${i % 1999}`,
    event: i % 3 === 0 ? 'Order Completed' : 'Product Viewed',
    properties: {
      product_id: `p-${i % 211}`,
      category: ['shoes', 'running', 'outdoor', 'kids'][i % 4],
      price: 19.99 + (i % 50),
      currency: 'EUR',
      decision_id: i % 5 === 0 ? `d-${i}` : undefined,
    },
    context: {
      ip: '203.0.113.7',
      locale: 'es-ES',
      page: { path: '/products/running', url: 'https://shop.example.com/products/running' },
      userAgent: 'Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko)',
    },
    timestamp: new Date(Date.now() - 5_000).toISOString(),
  };
}

async function batchWriteAll(client: DynamoClient, tableName: string, items: StoredEvent[]): Promise<void> {
  let pending: WriteRequest[] = items.map((Item) => ({ PutRequest: { Item } }));
  for (let attempt = 0; pending.length > 0; attempt++) {
    if (attempt > 10) throw new Error('BatchWriteItem kept returning unprocessed items');
    const { UnprocessedItems } = await client.send('BatchWriteItem', { RequestItems: { [tableName]: pending } });
    pending = UnprocessedItems?.[tableName] ?? [];
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

export async function benchIngest(endpoint: string): Promise<void> {
  assertLocalEndpoint(endpoint, 'benchIngest');
  process.env.DYNAMODB_ENDPOINT ??= endpoint;
  process.env.AWS_REGION ??= 'us-east-1';
  // One EMF document per invocation would drown the report.
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';

  const { config } = await import('#shared/config.ts');
  if (config.DYNAMODB_ENDPOINT !== endpoint) {
    throw new Error(
      `benchIngest(${endpoint}) but the handlers were configured for ${config.DYNAMODB_ENDPOINT ?? 'AWS'}: ` +
        'set DYNAMODB_ENDPOINT before shared/config.ts is first imported',
    );
  }
  // The baselines go through the product's one DynamoDB client, the handler's; the SDK only creates and checks tables.
  const { dynamo: productClient } = await import('#store/client.ts');
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { ensureTables } = await import('#local/tables.ts');
  const { putWriteKey } = await import('#store/write-keys.ts');
  const { planIngest } = await import('#domain/ingest/normalise.ts');
  const { handler } = await import('#functions/ingest/handler.ts');
  const { apiGatewayEvent, basicAuth, lambdaContext } = await import('#test/support/apigw.ts');

  const dynamo = new DynamoDBClient({ endpoint, region: config.AWS_REGION, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const client = productClient();
  try {
    await ensureTables(dynamo);
    for (const table of [config.EVENTS_TABLE, config.CONTROL_TABLE]) {
      await dynamo.send(new DescribeTableCommand({ TableName: table })).catch(() => {
        throw new Error(`Table ${table} does not exist on ${endpoint}`);
      });
    }
    const run = randomUUID().slice(0, 8);
    const secret = `wk_bench_${run}`;
    const sourceId = `bench-${run}`;
    await putWriteKey(secret, { keyId: sourceId, name: 'ingest bench', createdAt: new Date().toISOString() });

    /** Attempts of one batch: a 503 is sent again, as trackers do (a loaded machine can make DynamoDB Local time out). */
    const MAX_ATTEMPTS = 5;
    let unavailableRetries = 0;
    const handlerRound = async (round: number): Promise<number> => {
      const events = Array.from({ length: BATCHES_PER_ROUND }, (_, b) =>
        apiGatewayEvent({
          method: 'POST',
          path: '/v1/batch',
          headers: { authorization: basicAuth(secret) },
          body: { sentAt: new Date().toISOString(), batch: Array.from({ length: BATCH_SIZE }, (_, i) => message(`h${round}-${b}`, i)) },
        }),
      );
      const started = performance.now();
      await pool(events, HANDLER_CONCURRENCY, async (event) => {
        // As a tracker does: a 503 (the store overloaded, nothing written) is sent again after its Retry-After.
        for (let attempt = 1; ; attempt++) {
          const result = await handler(event, lambdaContext());
          if (result.statusCode === 503 && attempt < MAX_ATTEMPTS) {
            unavailableRetries++;
            const after = Number((result.headers as Record<string, string> | undefined)?.['retry-after'] ?? 1);
            await new Promise((resolve) => setTimeout(resolve, Math.min(5, Math.max(0.1, after)) * 1000));
            continue;
          }
          const body = JSON.parse(result.body ?? '{}') as { accepted?: number; duplicates?: number };
          // A retried batch may have been stored by an attempt whose answer was lost: duplicates count as accepted.
          if (result.statusCode !== 200 || (body.accepted ?? 0) + (body.duplicates ?? 0) !== BATCH_SIZE) {
            throw new Error(`ingest answered ${result.statusCode}: ${String(result.body).slice(0, 300)}`);
          }
          return;
        }
      });
      return (BATCHES_PER_ROUND * BATCH_SIZE) / ((performance.now() - started) / 1000);
    };

    /** The very items the handler would store, built outside the timed part. */
    const itemsFor = (tag: string): StoredEvent[] => {
      const items: StoredEvent[] = [];
      for (let b = 0; b < BATCHES_PER_ROUND; b++) {
        const plan = planIngest(
          { batch: Array.from({ length: BATCH_SIZE }, (_, i) => message(`${tag}-${b}`, i)) },
          { route: 'batch', sourceId, receivedAt: Date.now(), historyDays: config.KAIROS_HISTORY_DAYS, newMessageId: randomUUID },
        );
        if (!plan.ok || plan.events.length !== BATCH_SIZE) throw new Error('could not build the items to write');
        items.push(...plan.events);
      }
      return items;
    };
    const timed = async (items: StoredEvent[], size: number, write: (chunk: StoredEvent[]) => Promise<unknown>) => {
      const requests: StoredEvent[][] = [];
      for (let i = 0; i < items.length; i += size) requests.push(items.slice(i, i + size));
      const started = performance.now();
      await pool(requests, REQUEST_BUDGET, async (chunk) => {
        await write(chunk);
      });
      return items.length / ((performance.now() - started) / 1000);
    };
    const rawRound = (round: number) =>
      timed(itemsFor(`r${round}`), BATCH_WRITE_SIZE, (chunk) => batchWriteAll(client, config.EVENTS_TABLE, chunk));
    const transactRound = (round: number) =>
      timed(itemsFor(`t${round}`), TRANSACTION_SIZE, (chunk) =>
        client.send('TransactWriteItems', {
          TransactItems: chunk.map((Item) => ({
            Put: { TableName: config.EVENTS_TABLE, Item, ConditionExpression: 'attribute_not_exists(pk)' },
          })),
        }),
      );

    // Warm every path (JIT on both sides, connections, the write-key cache), then alternate.
    for (let warm = 1; warm <= 1; warm++) {
      await handlerRound(-warm);
      await transactRound(-warm);
      await rawRound(-warm);
    }
    const viaHandler: number[] = [];
    const transact: number[] = [];
    const raw: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      viaHandler.push(await handlerRound(round));
      transact.push(await transactRound(round));
      raw.push(await rawRound(round));
    }
    const line = (label: string, xs: number[]) =>
      `  ${label.padEnd(62)} ${median(xs).toFixed(0).padStart(6)} msg/s (median; rounds ${xs.map((x) => x.toFixed(0)).join(', ')})`;
    console.log(
      `ingest: ${ROUNDS} rounds of ${BATCHES_PER_ROUND} x ${BATCH_SIZE}-message batches, ${REQUEST_BUDGET} concurrent DynamoDB requests for each side`,
    );
    console.log(line('ingest handler (HTTP event → validate → exactly-once store)', viaHandler));
    if (unavailableRetries > 0) console.log(`  (${unavailableRetries} batch(es) answered 503 and were sent again after Retry-After, inside the timing)`);
    console.log(line('raw conditional TransactWriteItems, 100/request (same items)', transact));
    console.log(line('raw BatchWriteItem, 25/request, unconditional (same items)', raw));
    console.log(`  ratio handler / raw BatchWriteItem:       ${(median(viaHandler) / median(raw)).toFixed(2)}`);
    console.log(`  ratio handler / raw TransactWriteItems:   ${(median(viaHandler) / median(transact)).toFixed(2)} (the cost of our code)`);
  } finally {
    dynamo.destroy();
  }
}
