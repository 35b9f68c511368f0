/**
 * A real browser on a customer's web page: the page lives on one origin
 * (a tiny static server), Kairos on another (the local stack). Headless
 * Chromium loads the page, the page calls POST /v1/decide with the public
 * write key in a Basic Authorization header — which forces a CORS
 * preflight — and renders the returned banner into the DOM.
 *
 * Chromium is required: without it this test fails with the way to install
 * it (CI installs it in .ci/run).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, assert, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { openStack } from './fixtures/stack.ts';
import {
  actionIds,
  decide,
  ensureDemoCatalog,
  identify,
  isFallback,
  page,
  sendEvents,
  uniqueId,
  userToken,
  waitForProfile,
  type Decision,
  type StackAccess,
} from './fixtures/kairos.ts';

const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const BANNER_PAGE = new URL('./fixtures/banner.html', import.meta.url);
const DEMO_CATALOG = new URL('../../catalog/demo.yaml', import.meta.url);

type Stack = Awaited<ReturnType<typeof openStack>>;
let stack: Stack | undefined;
let api: StackAccess;
let site: Server | undefined;
let siteOrigin: string;
let browser: Browser | undefined;
const preflights: { origin?: string; method?: string; headers?: string }[] = [];

/** The customer's website: serves the banner page and nothing else. */
async function startSite(): Promise<Server> {
  const html = await readFile(BANNER_PAGE, 'utf8');
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? '/', 'http://site.invalid').pathname;
    if (request.method === 'GET' && (path === '/' || path === '/banner.html')) {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      response.end(html);
      return;
    }
    response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
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
  const [started, server, launched] = await Promise.all([
    openStack(),
    startSite(),
    chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    }),
  ]);
  stack = started;
  site = server;
  browser = launched;
  api = started;
  await ensureDemoCatalog(api, await readFile(DEMO_CATALOG, 'utf8'));
  // "localhost" for the site and "127.0.0.1" for the API: two different origins
  // (host and port), so the browser applies the same-origin policy for real.
  siteOrigin = `http://localhost:${(server.address() as AddressInfo).port}`;
  if (new URL(api.baseUrl).origin === siteOrigin) throw new Error('the page and the API must be on different origins');
});

afterAll(async () => {
  await browser?.close();
  await new Promise<void>((resolve) => (site ? site.close(() => resolve()) : resolve()));
  await stack?.stop();
});

describe('a web page on another origin renders the next best action', () => {
  it('calls decide with the write key through CORS and renders the banner title', async () => {
    // A frequent anonymous visitor today (seed scenario 3): the home banner is the mega offer.
    const anonymousId = uniqueId('browser-anon');
    await sendEvents(api, Array.from({ length: 12 }, () => page({ anonymousId })));
    await waitForProfile(api, { anonymousId }, (p) => p.stats.visitsToday >= 12);

    const context = await browser!.newContext();
    const tab = await context.newPage();
    const consoleErrors: string[] = [];
    tab.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    // Watch the network from the browser's side: the preflight and the decide call.
    const cdp = await context.newCDPSession(tab);
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', (e: { request: { method: string; url: string; headers: Record<string, string> } }) => {
      if (e.request.method === 'OPTIONS' && e.request.url.endsWith('/v1/decide')) {
        preflights.push({
          origin: e.request.headers.Origin ?? e.request.headers.origin,
          method: e.request.headers['Access-Control-Request-Method'],
          headers: e.request.headers['Access-Control-Request-Headers'],
        });
      }
    });
    const decideResponse = tab.waitForResponse((r) => r.url() === `${api.baseUrl}/v1/decide` && r.request().method() === 'POST');

    const url = new URL('/banner.html', siteOrigin);
    url.searchParams.set('api', api.baseUrl);
    url.searchParams.set('key', api.writeKey);
    url.searchParams.set('anonymousId', anonymousId);
    url.searchParams.set('placement', 'home');
    await tab.goto(url.href);

    const response = await decideResponse;
    expect(response.status()).toBe(200);
    const sent = await response.request().allHeaders();
    expect(sent.origin).toBe(siteOrigin);
    expect(sent.authorization).toMatch(/^Basic /);
    expect(['*', siteOrigin]).toContain((await response.allHeaders())['access-control-allow-origin']);

    const hero = tab.locator('#hero');
    await expect.poll(() => hero.getAttribute('data-state'), { timeout: 30_000 }).not.toBe('loading');
    const state = await hero.getAttribute('data-state');
    assert.strictEqual(state, 'rendered', `page error: ${await hero.getAttribute('data-error')}; console: ${consoleErrors.join(' | ')}`);

    const decision = (await tab.evaluate(() => (globalThis as unknown as { kairosDecision: unknown }).kairosDecision)) as Decision;
    expect(actionIds(decision)).toEqual(['bannerMegaOferta']);
    const title = decision.actions[0]?.content.title;
    expect(typeof title).toBe('string');
    expect((title as string).trim().length).toBeGreaterThan(0);
    // The DOM shows the banner the API chose, as text.
    await expect.poll(() => tab.locator('#hero .kairos-title').textContent()).toBe(title);
    expect(await tab.locator('#hero .kairos-banner').getAttribute('data-action-id')).toBe('bannerMegaOferta');
    expect(await tab.locator('#hero .kairos-banner').getAttribute('data-decision-id')).toBe(decision.decisionId);

    // The same decision through the API directly (deterministic for the same profile and context).
    const direct = await decide(api, { anonymousId, channel: 'web', placement: 'home', context: { page: '/banner.html', device: 'desktop' } });
    expect(actionIds(direct)).toEqual(['bannerMegaOferta']);

    // The browser sent a CORS preflight for the Authorization header, from the page's origin.
    expect(preflights.length).toBeGreaterThanOrEqual(1);
    expect(preflights[0]?.origin).toBe(siteOrigin);
    expect(preflights[0]?.method).toBe('POST');
    expect(preflights[0]?.headers ?? '').toMatch(/authorization/i);
    await context.close();
  });

  it('a new visitor gets the home fallback banner, rendered the same way', async () => {
    const context = await browser!.newContext();
    const tab = await context.newPage();
    const url = new URL('/banner.html', siteOrigin);
    url.searchParams.set('api', api.baseUrl);
    url.searchParams.set('key', api.writeKey);
    url.searchParams.set('anonymousId', uniqueId('browser-new'));
    url.searchParams.set('placement', 'home');
    await tab.goto(url.href);
    const hero = tab.locator('#hero');
    await expect.poll(() => hero.getAttribute('data-state'), { timeout: 30_000 }).toBe('rendered');
    const decision = (await tab.evaluate(() => (globalThis as unknown as { kairosDecision: unknown }).kairosDecision)) as Decision;
    expect(decision.actions).toHaveLength(1);
    expect(actionIds(decision)).not.toContain('bannerMegaOferta');
    expect(isFallback(decision, decision.actions[0])).toBe(true);
    expect(await tab.locator('#hero .kairos-title').textContent()).toBe(decision.actions[0]?.content.title);
    await context.close();
  });

  it('a logged-in customer: the page sends the user token its back-end minted, and gets actions and content only', async () => {
    const userId = uniqueId('browser-user');
    await sendEvents(api, [identify({ userId }, { firstName: 'Lucía', tier: 'VIP' })]);
    await waitForProfile(api, userId, (p) => p.traits.firstName === 'Lucía');
    const context = await browser!.newContext();
    const tab = await context.newPage();
    const requestHeaders: string[] = [];
    tab.on('request', (r) => {
      if (r.url().endsWith('/v1/decide') && r.method() === 'POST') requestHeaders.push(JSON.stringify(r.headers()));
    });
    const url = new URL('/banner.html', siteOrigin);
    url.searchParams.set('api', api.baseUrl);
    url.searchParams.set('key', api.writeKey);
    url.searchParams.set('userId', userId);
    url.searchParams.set('userToken', await userToken(api, userId));
    url.searchParams.set('placement', 'home');
    await tab.goto(url.href);
    const hero = tab.locator('#hero');
    await expect.poll(() => hero.getAttribute('data-state'), { timeout: 30_000 }).not.toBe('loading');
    assert.strictEqual(await hero.getAttribute('data-state'), 'rendered', `page error: ${await hero.getAttribute('data-error')}`);
    expect(requestHeaders.join()).toContain('x-kairos-user-token');
    const decision = (await tab.evaluate(() => (globalThis as unknown as { kairosDecision: unknown }).kairosDecision)) as Record<string, unknown>;
    expect(Object.keys(decision).filter((k) => !['decisionId', 'channel', 'placement', 'actions', 'fallback', 'degraded'].includes(k))).toEqual([]);

    // Without the token the page is refused: a userId must be proven.
    url.searchParams.delete('userToken');
    await tab.goto(url.href);
    await expect.poll(() => hero.getAttribute('data-state'), { timeout: 30_000 }).toBe('error');
    expect(await hero.getAttribute('data-error')).toContain('401');
    await context.close();
  });

  it('a page with a wrong write key cannot get a decision', async () => {
    const context = await browser!.newContext();
    const tab = await context.newPage();
    const url = new URL('/banner.html', siteOrigin);
    url.searchParams.set('api', api.baseUrl);
    url.searchParams.set('key', 'wk_wrong-key');
    url.searchParams.set('anonymousId', uniqueId('browser-bad'));
    await tab.goto(url.href);
    const hero = tab.locator('#hero');
    await expect.poll(() => hero.getAttribute('data-state'), { timeout: 30_000 }).toBe('error');
    expect(await hero.getAttribute('data-error')).toContain('401');
    await context.close();
  });
});
