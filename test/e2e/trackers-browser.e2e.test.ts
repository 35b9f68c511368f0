/**
 * Browser trackers on a customer's page, in headless Chromium, the page on
 * one origin (a tiny static server) and Kairos on another (the local stack):
 * - Segment's browser client, `@segment/analytics-next` unmodified (bundled
 *   for the page with esbuild), in its default mode (one fetch per event to
 *   /v1/i, /v1/p, /v1/t: text/plain bodies, the writeKey in the body and an
 *   Authorization header, so a CORS preflight) and in batching mode (/v1/b);
 *   the browser has no internet, so the page gives the client its settings
 *   (`cdnSettings`) and it fetches nothing from Segment's CDN;
 * - `navigator.sendBeacon` to a short route (/v1/p) with the writeKey in a
 *   text/plain body.
 * Each checks the profile (GET /v1/admin/profiles/{id}), not just the status.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStack } from './fixtures/stack.ts';
import { countOf, uniqueId, waitForProfile, type RunningStack } from './fixtures/kairos.ts';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CLIENT_ENTRY = new URL('./fixtures/segment-browser.ts', import.meta.url);

/**
 * The customer's page. `mode`: `default` or `batching` (analytics-next), or
 * `beacon` (navigator.sendBeacon). The analytics-next configuration is the one
 * docs/integration.md shows.
 */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>Shop</title><script src="/analytics.js"></script></head>
<body><script>
const q = new URLSearchParams(location.search);
const api = new URL(q.get('api'));
const writeKey = q.get('key');
const mode = q.get('mode');
const id = q.get('id');
async function withSegment() {
  const segmentIo = { apiKey: writeKey, apiHost: api.host + '/v1', protocol: api.protocol.replace(':', '') };
  if (mode === 'batching') segmentIo.deliveryStrategy = { strategy: 'batching', config: { size: 3, timeout: 1000 } };
  const [analytics] = await AnalyticsBrowser.load({
    writeKey,
    cdnSettings: { integrations: { 'Segment.io': segmentIo }, metrics: { sampleRate: 0 } },
  });
  const done = await Promise.all([
    analytics.identify(id, { firstName: 'Ana', tier: 'gold' }),
    analytics.page('Shoes', { category: 'shoes' }),
    analytics.track('Order Completed', { revenue: 60, products: [{ category: 'shoes' }] }),
  ]);
  return done.map((ctx) => ({ type: ctx.event.type, failed: ctx.failedDelivery() ? String(ctx.failedDelivery().reason) : null }));
}
function withBeacon() {
  const body = JSON.stringify({ writeKey, anonymousId: id, messageId: id + '-beacon', name: 'Home', properties: { category: 'shoes' } });
  return [{ type: 'page', queued: navigator.sendBeacon(api.origin + '/v1/p', body) }];
}
window.kairosResult = (mode === 'beacon' ? Promise.resolve(withBeacon()) : withSegment()).catch((error) => ({ error: String(error) }));
</script></body></html>`;

let stack: RunningStack | undefined;
let site: Server | undefined;
let siteOrigin: string;
let browser: Browser | undefined;

async function startSite(script: string): Promise<Server> {
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://site.invalid').pathname;
    if (request.method === 'GET' && path === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(PAGE);
    } else if (request.method === 'GET' && path === '/analytics.js') {
      response.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8', 'cache-control': 'no-store' }).end(script);
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  return server;
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `Chromium is required for the browser test and was not found at ${CHROMIUM_PATH}. ` +
        'Install it (Debian/Ubuntu: `apt-get install -y chromium`) or set CHROMIUM_PATH to a Chromium/Chrome binary.',
    );
  }
  const bundle = await build({ entryPoints: [CLIENT_ENTRY.pathname], bundle: true, format: 'iife', platform: 'browser', target: 'es2020', write: false, logLevel: 'silent' });
  const script = bundle.outputFiles[0]?.text ?? '';
  const [started, server, launched] = await Promise.all([
    openStack(),
    startSite(script),
    chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    }),
  ]);
  stack = started;
  site = server;
  browser = launched;
  // "localhost" for the site and "127.0.0.1" for the API: two origins, so CORS applies for real.
  siteOrigin = `http://localhost:${(server.address() as AddressInfo).port}`;
  if (new URL(started.baseUrl).origin === siteOrigin) throw new Error('the page and the API must be on different origins');
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
  await stack?.stop();
});

interface PageRun {
  readonly result: unknown;
  /** Every request the page made: method and URL. */
  readonly requests: readonly { method: string; url: string; status?: number }[];
}

/** Load the page in a fresh browser context and wait for its tracker calls to settle. */
async function runPage(mode: 'default' | 'batching' | 'beacon', id: string): Promise<PageRun> {
  const context = await browser!.newContext();
  const tab = await context.newPage();
  const requests: { method: string; url: string; status?: number }[] = [];
  let pending = 0;
  tab.on('request', () => pending++);
  tab.on('response', (response) => {
    const request = response.request();
    requests.push({ method: request.method(), url: request.url(), status: response.status() });
    pending--;
  });
  tab.on('requestfailed', (request) => {
    requests.push({ method: request.method(), url: request.url() });
    pending--;
  });
  const url = new URL('/', siteOrigin);
  url.searchParams.set('api', stack!.baseUrl);
  url.searchParams.set('key', stack!.writeKey);
  url.searchParams.set('mode', mode);
  url.searchParams.set('id', id);
  await tab.goto(url.href);
  const result = await tab.evaluate(() => (globalThis as unknown as { kairosResult: Promise<unknown> }).kairosResult);
  // Every request the page started has its answer (or its failure) before the tab closes.
  await expect.poll(() => pending, { timeout: 30_000 }).toBe(0);
  await context.close();
  return { result, requests };
}

/** The origins and paths of the calls the page made to anything but its own origin. */
const outbound = (run: PageRun) =>
  run.requests
    .filter((r) => new URL(r.url).origin !== siteOrigin)
    .map((r) => ({ origin: new URL(r.url).origin, path: new URL(r.url).pathname, method: r.method, status: r.status }));

describe('@segment/analytics-next in Chromium, from another origin', () => {
  it('default mode: identify, page and track go to /v1/i, /v1/p, /v1/t and reach the profile', async () => {
    const userId = uniqueId('ajs-default');
    const run = await runPage('default', userId);
    expect(run.result).toEqual([
      { type: 'identify', failed: null },
      { type: 'page', failed: null },
      { type: 'track', failed: null },
    ]);
    const calls = outbound(run);
    // Only Kairos was called: no CDN, no metrics endpoint.
    expect(new Set(calls.map((c) => c.origin))).toEqual(new Set([new URL(stack!.baseUrl).origin]));
    expect(calls.map((c) => `${c.method} ${c.path} ${c.status}`).sort()).toEqual(['POST /v1/i 200', 'POST /v1/p 200', 'POST /v1/t 200']);

    const profile = await waitForProfile(stack!, userId, (p) => p.stats.orders === 1 && p.stats.visitsTotal === 1 && p.traits.tier === 'gold');
    expect(profile.traits).toMatchObject({ firstName: 'Ana', tier: 'gold' });
    expect(profile.stats.revenue).toBe(60);
    expect(profile.stats.visitsToday).toBe(1);
  });

  it('batching mode: the three events go in one POST /v1/b and reach the profile', async () => {
    const userId = uniqueId('ajs-batching');
    const run = await runPage('batching', userId);
    expect(run.result).toEqual([
      { type: 'identify', failed: null },
      { type: 'page', failed: null },
      { type: 'track', failed: null },
    ]);
    const profile = await waitForProfile(stack!, userId, (p) => p.stats.orders === 1 && p.stats.visitsTotal === 1 && p.traits.tier === 'gold');
    expect(profile.traits).toMatchObject({ firstName: 'Ana', tier: 'gold' });
    expect(countOf(profile, 'Order Completed')).toBe(1);
    const calls = outbound(run);
    expect(calls.map((c) => `${c.origin} ${c.method} ${c.path} ${c.status}`)).toEqual([`${new URL(stack!.baseUrl).origin} POST /v1/b 200`]);
  });
});

describe('navigator.sendBeacon on a short route', () => {
  it('POST /v1/p with a text/plain body and the writeKey in it: the visit reaches the profile', async () => {
    const anonymousId = uniqueId('beacon');
    const run = await runPage('beacon', anonymousId);
    expect(run.result).toEqual([{ type: 'page', queued: true }]);
    const profile = await waitForProfile(stack!, { anonymousId }, (p) => p.stats.visitsTotal === 1);
    expect(profile.stats.visitsToday).toBe(1);
  });
});
