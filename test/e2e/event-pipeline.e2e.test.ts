/**
 * The event pipeline end to end on the local stack, over HTTP only:
 * an unmodified Segment SDK (@segment/analytics-node) → POST /v1/batch →
 * ingest → Events table → stream → profile function → Profiles table →
 * GET /v1/admin/profiles/{userId}. The stream is asynchronous, so every
 * read polls until the profile reflects what was sent (no fixed sleeps).
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import {
  DescribeStreamCommand,
  DynamoDBStreamsClient,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-dynamodb-streams';
import { Analytics } from '@segment/analytics-node';
import { describe, expect, it } from 'vitest';
import { useLocalStack, type TestStack } from '../support/stack.ts';
import { countOf, sendEvents, track, waitForProfile, type Profile, type StackAccess } from './fixtures/kairos.ts';

let stack: TestStack;
let api: StackAccess;
useLocalStack((started, access) => {
  stack = started;
  api = access;
});

interface BatchAnswer {
  readonly status: number;
  readonly accepted?: number;
  readonly duplicates?: number;
  readonly rejected?: readonly unknown[];
}

interface Exchange {
  /** Request headers as received (lower-case names). */
  readonly headers: Record<string, string>;
  readonly body: string;
  /** What Kairos answered (the SDK's own events do not expose the response body). */
  readonly answer: BatchAnswer;
}

/**
 * A transparent proxy in front of Kairos that records every exchange; with
 * `loseFirstAnswer`, Kairos handles the first request but the client gets a
 * 503 instead of its answer (a response lost on the way), so it retries.
 */
async function recordingProxy(options: { loseFirstAnswer?: boolean } = {}) {
  const exchanges: Exchange[] = [];
  let lost = false;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const headers = Object.fromEntries(
        Object.entries(req.headers).filter(([k, v]) => typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)),
      ) as Record<string, string>;
      const body = Buffer.concat(chunks).toString('utf8');
      const upstream = await fetch(`${stack.baseUrl}${req.url}`, { method: req.method, headers, body });
      const text = await upstream.text();
      let parsed: object = {};
      try {
        parsed = JSON.parse(text) as object;
      } catch {
        // the status says enough
      }
      exchanges.push({ headers, body, answer: { status: upstream.status, ...parsed } });
      if (options.loseFirstAnswer && !lost) {
        lost = true;
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"code":"unavailable","message":"lost"}}');
        return;
      }
      res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    exchanges,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The unmodified SDK pointed at `host`. */
function segmentClient(host: string) {
  const analytics = new Analytics({
    writeKey: stack.writeKey,
    host,
    path: '/v1/batch',
    flushAt: 7,
    flushInterval: 50,
    maxRetries: 5,
  });
  const errors: unknown[] = [];
  analytics.on('error', (error) => errors.push(error));
  return { analytics, errors };
}

const messageIds = (body: string) => (JSON.parse(body) as { batch: { messageId: string }[] }).batch.map((m) => m.messageId);

/** What one customer does, and what the profile must say afterwards. */
interface Customer {
  readonly userId: string;
  readonly traits: Record<string, unknown>;
  readonly visits: number;
  readonly orders: number;
  readonly revenue: number;
  readonly returns: number;
  readonly openComplaints: number;
  readonly consent: Record<string, boolean>;
  readonly tracks: Record<string, number>;
  send(analytics: Analytics): void;
}

const NAMES = ['Ana', 'Luis', 'Mei', 'Olu'];

function customer(i: number, t0: number): Customer {
  const userId = `sdk-${i}-${randomUUID().slice(0, 8)}`;
  const name = NAMES[i] ?? `C${i}`;
  let tick = 0;
  // Explicit, increasing event times: "later" means later, whatever the batching.
  const at = () => new Date(t0 + 1_000 * tick++);
  const tracks: Record<string, number> = {};
  const calls: ((a: Analytics) => void)[] = [];
  const trackCall = (event: string, properties: Record<string, unknown>) => {
    tracks[event] = (tracks[event] ?? 0) + 1;
    const timestamp = at();
    calls.push((a) => a.track({ userId, event, properties, timestamp }));
  };
  const identifyCall = (traits: Record<string, unknown>) => {
    const timestamp = at();
    calls.push((a) => a.identify({ userId, traits, timestamp }));
  };

  identifyCall({ firstName: name, email: `${name.toLowerCase()}@example.com`, tier: 'silver', address: { city: 'Madrid' } });
  const visits = i + 2;
  for (let v = 0; v < visits; v++) {
    const timestamp = at();
    calls.push((a) => a.page({ userId, name: 'Product', properties: { path: `/p/${v}`, category: 'shoes' }, timestamp }));
  }
  const orders = i + 1;
  let revenue = 0;
  for (let o = 0; o < orders; o++) {
    const amount = Math.round(1050 * (o + 1) + 333 * i) / 100;
    revenue += amount;
    // Customer 2's shop sends `total` instead of `revenue`.
    trackCall('Order Completed', i === 2 ? { order_id: `o-${o}`, total: amount } : { order_id: `o-${o}`, revenue: amount, currency: 'EUR' });
  }
  const returns = i % 2;
  for (let r = 0; r < returns; r++) trackCall('Order Refunded', { order_id: 'o-0' });
  const resolved = i > 0 ? 1 : 0;
  for (let c = 0; c < i; c++) trackCall('Complaint Opened', { reason: 'late delivery' });
  for (let c = 0; c < resolved; c++) trackCall('Complaint Resolved', {});
  const consent: Record<string, boolean> = { email: true };
  trackCall('Consent Updated', { channel: 'email', granted: true });
  if (i === 1) {
    trackCall('Unsubscribed', { channel: 'email' });
    consent.email = false;
  }
  if (i === 3) {
    trackCall('Consent Updated', { channel: 'sms', granted: false });
    consent.sms = false;
  }
  identifyCall({ tier: 'gold', address: { country: 'ES' } });

  return {
    userId,
    traits: { firstName: name, email: `${name.toLowerCase()}@example.com`, tier: 'gold', address: { city: 'Madrid', country: 'ES' } },
    visits,
    orders,
    revenue,
    returns,
    openComplaints: i - resolved,
    consent,
    tracks,
    send: (analytics) => calls.forEach((c) => c(analytics)),
  };
}

const messagesOf = (c: Customer) => 2 + c.visits + Object.values(c.tracks).reduce((a, b) => a + b, 0);

/** The profile has taken in everything the customer did. */
const complete = (c: Customer) => (p: Profile) =>
  p.stats.visitsTotal === c.visits &&
  Object.entries(c.tracks).every(([event, n]) => countOf(p, event) === n) &&
  p.traits.tier === 'gold';

function expectProfileOf(c: Customer, p: Profile): void {
  expect(p.userId).toBe(c.userId);
  expect(p.traits).toMatchObject(c.traits);
  expect(p.stats).toMatchObject({
    visitsTotal: c.visits,
    orders: c.orders,
    returns: c.returns,
    openComplaints: c.openComplaints,
  });
  expect(p.stats.revenue).toBeCloseTo(c.revenue, 6);
  expect(Object.fromEntries(Object.keys(c.consent).map((channel) => [channel, p.consent[channel]?.granted]))).toEqual(c.consent);
  expect(Object.fromEntries(Object.keys(c.tracks).map((event) => [event, countOf(p, event)]))).toEqual(c.tracks);
}

describe('an unmodified Segment SDK feeding the profiles', () => {
  it('sends identify, page and track for several customers; every profile matches what was sent', async () => {
    const t0 = Date.now() - 10 * 60_000;
    const customers = [0, 1, 2, 3].map((i) => customer(i, t0));
    const proxy = await recordingProxy();
    try {
      const sdk = segmentClient(proxy.url);
      for (const c of customers) c.send(sdk.analytics);
      await sdk.analytics.closeAndFlush({ timeout: 30_000 });

      expect(sdk.errors).toEqual([]);
      const total = customers.reduce((n, c) => n + messagesOf(c), 0);
      const answers = proxy.exchanges.map((e) => e.answer);
      expect(answers.filter((a) => a.status !== 200 || a.duplicates !== 0 || a.rejected?.length !== 0)).toEqual([]);
      expect(answers.reduce((n, a) => n + (a.accepted ?? 0), 0)).toBe(total);
      expect(proxy.exchanges.length).toBeGreaterThan(1); // flushAt 7: several batches
      const basic = `Basic ${Buffer.from(`${stack.writeKey}:`).toString('base64')}`;
      expect(proxy.exchanges.every((e) => e.headers.authorization === basic)).toBe(true);
    } finally {
      await proxy.close();
    }

    for (const c of customers) expectProfileOf(c, await waitForProfile(api, c.userId, complete(c)));
  });

  it('a batch the SDK re-sends after a lost response (same messageIds) is reported as duplicates and changes no profile', async () => {
    // A proxy in front of Kairos loses the answer to the first batch: Kairos stored it, the SDK saw a 503 and retries.
    const proxy = await recordingProxy({ loseFirstAnswer: true });
    try {
      const c = customer(2, Date.now() - 5 * 60_000);
      const sdk = segmentClient(proxy.url);
      c.send(sdk.analytics);
      await sdk.analytics.closeAndFlush({ timeout: 30_000 });
      expect(sdk.errors).toEqual([]);

      const [lost, ...rest] = proxy.exchanges;
      const retry = rest.find((e) => e.headers['x-retry-count'] === '1');
      expect(lost?.answer).toMatchObject({ status: 200, duplicates: 0 });
      const lostIds = messageIds(lost?.body ?? '{"batch":[]}');
      expect(lost?.answer.accepted).toBe(lostIds.length);
      // The SDK re-sent the same messages; Kairos reports them all as duplicates.
      expect(messageIds(retry?.body ?? '{"batch":[]}')).toEqual(lostIds);
      expect(retry?.answer).toMatchObject({ status: 200, accepted: 0, duplicates: lostIds.length });
      expect(proxy.exchanges.reduce((n, e) => n + (e.answer.accepted ?? 0), 0)).toBe(messagesOf(c));

      // A later event shows the stream has caught up; the profile counts everything exactly once.
      await sendEvents(api, [track({ userId: c.userId }, 'Sentinel Seen')]);
      const p = await waitForProfile(api, c.userId, (q) => countOf(q, 'Sentinel Seen') === 1 && complete(c)(q));
      expectProfileOf(c, p);
    } finally {
      await proxy.close();
    }
  });

  it('re-posting an accepted batch verbatim reports every message as a duplicate and leaves the profile unchanged', async () => {
    const userId = `replay-${randomUUID().slice(0, 8)}`;
    const proxy = await recordingProxy();
    try {
      const sdk = segmentClient(proxy.url);
      sdk.analytics.track({ userId, event: 'Order Completed', properties: { revenue: 30 } });
      sdk.analytics.page({ userId, name: 'Home' });
      sdk.analytics.identify({ userId, traits: { tier: 'bronze' } });
      await sdk.analytics.closeAndFlush({ timeout: 30_000 });
    } finally {
      await proxy.close();
    }
    const before = await waitForProfile(api, userId, (p) => p.stats.orders === 1 && p.stats.visitsTotal === 1 && p.traits.tier === 'bronze');

    const [sent] = proxy.exchanges;
    expect(sent?.answer).toMatchObject({ status: 200, accepted: 3 });
    const replay = await fetch(`${stack.baseUrl}/v1/batch`, { method: 'POST', headers: sent?.headers, body: sent?.body });
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ success: true, accepted: 0, duplicates: 3 });

    await sendEvents(api, [track({ userId }, 'Sentinel Seen')]);
    const after = await waitForProfile(api, userId, (p) => countOf(p, 'Sentinel Seen') === 1);
    expect(after.stats).toMatchObject({ orders: 1, revenue: 30, visitsTotal: 1 });
    expect(after.traits).toEqual(before.traits);
    expect(countOf(after, 'Order Completed')).toBe(1);
  });
});

describe('identity resolution', () => {
  it('merges the anonymous history into the customer once, and later anonymous events land on the customer', async () => {
    const anonymousId = `anon-${randomUUID().slice(0, 8)}`;
    const userId = `known-${randomUUID().slice(0, 8)}`;
    const t0 = Date.now() - 5 * 60_000;
    const sdk = segmentClient(stack.baseUrl);
    for (let v = 0; v < 3; v++) {
      sdk.analytics.page({ anonymousId, name: 'Product', properties: { category: 'running' }, timestamp: new Date(t0 + v * 1_000) });
    }
    sdk.analytics.track({ anonymousId, event: 'Product Viewed', properties: { category: 'running' }, timestamp: new Date(t0 + 4_000) });
    await sdk.analytics.flush();
    await waitForProfile(api, { anonymousId }, (p) => p.stats.visitsTotal === 3 && countOf(p, 'Product Viewed') === 1);

    sdk.analytics.identify({ userId, anonymousId, traits: { firstName: 'Sam' }, timestamp: new Date(t0 + 10_000) });
    await sdk.analytics.flush();
    const merged = (await waitForProfile(api, userId, (p) => p.stats.visitsTotal === 3)) as Profile & { anonymousIds: string[] };
    expect(merged.anonymousIds).toContain(anonymousId);
    expect(merged.identified).toBe(true);
    expect(merged.traits.firstName).toBe('Sam');
    expect(countOf(merged, 'Product Viewed')).toBe(1);

    // Identifying again with the same pair, and more anonymous activity: merged once, new activity on the customer.
    sdk.analytics.identify({ userId, anonymousId, traits: { tier: 'gold' }, timestamp: new Date(t0 + 20_000) });
    sdk.analytics.page({ anonymousId, name: 'Cart', timestamp: new Date(t0 + 30_000) });
    sdk.analytics.track({ anonymousId, event: 'Order Completed', properties: { revenue: 99 }, timestamp: new Date(t0 + 40_000) });
    await sdk.analytics.closeAndFlush({ timeout: 30_000 });
    expect(sdk.errors).toEqual([]);
    const later = (await waitForProfile(
      api,
      userId,
      (p) => p.stats.orders === 1 && p.traits.tier === 'gold' && p.stats.visitsTotal >= 4,
    )) as Profile & { anonymousIds: string[] };
    expect(later.stats.visitsTotal).toBe(4);
    expect(later.stats.revenue).toBe(99);
    expect(countOf(later, 'Product Viewed')).toBe(1);
    expect(later.anonymousIds.filter((id: string) => id === anonymousId)).toHaveLength(1);
  });
});

describe('a poison record in the Events stream', () => {
  it('is sent to the failure queue after bounded retries while the events around it are applied', async () => {
    const userId = `poison-${randomUUID().slice(0, 8)}`;
    await sendEvents(api, [track({ userId }, 'Before Poison')]);
    await waitForProfile(api, userId, (p) => countOf(p, 'Before Poison') === 1);

    // Something that is not a stored event lands in the Events table (a bad writer, a manual edit).
    const poisonPk = `poison#${randomUUID()}`;
    const client = new DynamoDBClient({
      endpoint: stack.dynamoEndpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    try {
      await client.send(
        new PutItemCommand({
          TableName: stack.tables.EVENTS_TABLE,
          Item: { pk: { S: poisonPk }, profileKey: { S: `u#${userId}` }, sortKey: { S: 'x' }, type: { S: 'not-a-type' } },
        }),
      );
    } finally {
      client.destroy();
    }
    await sendEvents(api, [track({ userId }, 'After Poison')]);
    const p = await waitForProfile(api, userId, (q) => countOf(q, 'After Poison') === 1);
    expect(countOf(p, 'Before Poison')).toBe(1);

    const deadline = Date.now() + 30_000; // returns as soon as the record is there
    while (stack.failures().length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const failures = stack.failures();
    expect(failures).toHaveLength(1);
    const poisonSeq = await sequenceNumberOf(poisonPk);
    expect(failures[0]).toMatchObject({
      requestContext: { condition: 'RetryAttemptsExhausted', approximateInvokeCount: 4 },
      DDBStreamBatchInfo: { startSequenceNumber: poisonSeq, streamArn: stack.streamArn },
    });
    // The records after the reported one were retried with it (Lambda re-reads from the failed record) yet counted once.
    expect(countOf(await waitForProfile(api, userId, () => true), 'After Poison')).toBe(1);

    // The shard moves on.
    await sendEvents(api, [track({ userId }, 'Much Later')]);
    await waitForProfile(api, userId, (q) => countOf(q, 'Much Later') === 1);
    expect(stack.failures()).toHaveLength(1);
  });
});

/** Read the Events stream directly to find the sequence number of the record with this key. */
async function sequenceNumberOf(pk: string): Promise<string | undefined> {
  const streams = new DynamoDBStreamsClient({
    endpoint: stack.dynamoEndpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  try {
    const { StreamDescription } = await streams.send(new DescribeStreamCommand({ StreamArn: stack.streamArn }));
    for (const shard of StreamDescription?.Shards ?? []) {
      let iterator = (
        await streams.send(new GetShardIteratorCommand({ StreamArn: stack.streamArn, ShardId: shard.ShardId, ShardIteratorType: 'TRIM_HORIZON' }))
      ).ShardIterator;
      while (iterator) {
        const page = await streams.send(new GetRecordsCommand({ ShardIterator: iterator }));
        const hit = page.Records?.find((r) => r.dynamodb?.Keys?.pk?.S === pk);
        if (hit) return hit.dynamodb?.SequenceNumber;
        if (!page.Records?.length) break;
        iterator = page.NextShardIterator;
      }
    }
    return undefined;
  } finally {
    streams.destroy();
  }
}
