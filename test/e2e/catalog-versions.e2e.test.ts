/**
 * Catalog rollback on the local stack (API.md §5): publish v1, then v2, and
 * decisions follow; roll back to v1 and decisions change back, while the
 * version list shows the whole history. And the churn trainer as a command
 * (scripts/train-churn.ts): help, one-line refusals without a stack trace,
 * no overwrite of an existing file, a round trip on synthetic labelled
 * profiles to a file and published to the stack as a new version. The
 * bulk export (GET /v1/admin/profiles, scripts/export-profiles.ts) pages
 * through the stored profiles and joins the operator's labels into the
 * trainer's input.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadCatalog } from '#domain/catalog/load.ts';
import { syntheticProfiles } from '#scripts/train-churn.ts';
import { useLocalStack } from '../support/stack.ts';
import { call, decide, identify, sendEvents, track, uniqueId, waitForProfile, type StackAccess } from './fixtures/kairos.ts';

let api: StackAccess;
let adminToken = '';
useLocalStack((started, access) => {
  adminToken = started.adminToken;
  api = access;
});

const catalog = (title: string) => `kind: kairos/v1
tags: [promo]
actions:
  - id: home-banner
    name: Home banner
    tags: [promo]
    content:
      web: { title: "${title}", url: "https://example.com/" }
`;

async function publish(title: string): Promise<number> {
  const result = await call<{ version: number; live: boolean }>(api, 'PUT', '/v1/admin/catalog', {
    auth: 'admin',
    body: catalog(title),
    headers: { 'content-type': 'application/yaml' },
  });
  expect({ status: result.status, live: result.json.live }).toEqual({ status: 200, live: true });
  return result.json.version;
}

const titleServed = async (anonymousId: string) =>
  (await decide(api, { anonymousId, channel: 'web' })).actions.map((a) => a.content.title);

describe('catalog rollback', () => {
  it('publishes v1 and v2, rolls back to v1, and decisions change back', async () => {
    const visitor = uniqueId('rollback');
    const v1 = await publish('Version one');
    expect(await titleServed(visitor)).toEqual(['Version one']);
    const v2 = await publish('Version two');
    expect(v2).toBeGreaterThan(v1);
    expect(await titleServed(visitor)).toEqual(['Version two']);

    const rollback = await call<{ version: number; rolledBackFrom: number; live: boolean }>(api, 'POST', '/v1/admin/catalog/rollback', {
      auth: 'admin',
      body: { version: v1 },
    });
    expect(rollback.status).toBe(200);
    expect(rollback.json).toMatchObject({ rolledBackFrom: v1, live: true });
    expect(rollback.json.version).toBeGreaterThan(v2);
    expect(await titleServed(visitor)).toEqual(['Version one']);

    const list = await call<{ liveVersion: number; versions: { version: number; live: boolean; rolledBackFrom?: number }[] }>(
      api,
      'GET',
      '/v1/admin/catalog/versions',
      { auth: 'admin' },
    );
    expect(list.json.liveVersion).toBe(rollback.json.version);
    expect(list.json.versions.slice(0, 3)).toEqual([
      expect.objectContaining({ version: rollback.json.version, live: true, rolledBackFrom: v1 }),
      expect.objectContaining({ version: v2, live: false }),
      expect.objectContaining({ version: v1, live: false }),
    ]);
  });

  it('a write key cannot list, read or roll back versions', async () => {
    for (const [method, path] of [
      ['GET', '/v1/admin/catalog/versions'],
      ['GET', '/v1/admin/catalog/versions/1'],
      ['POST', '/v1/admin/catalog/rollback'],
    ] as const) {
      const result = await call(api, method, path, { auth: 'write', ...(method === 'POST' ? { body: { version: 1 } } : {}) });
      expect({ path, status: result.status }).toEqual({ path, status: 403 });
    }
  });
});

const TRAINER = fileURLToPath(new URL('../../scripts/train-churn.ts', import.meta.url));
const DEMO = fileURLToPath(new URL('../../catalog/demo.yaml', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'kairos-train-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const EXPORTER = fileURLToPath(new URL('../../scripts/export-profiles.ts', import.meta.url));

/** Run the trainer as a user would; its exit code and both streams. */
const trainer = (args: readonly string[], env: Record<string, string> = {}) => command(TRAINER, args, env);

/** Run an operator command (a script of scripts/) as a user would; its exit code and both streams. */
function command(script: string, args: readonly string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolveRun({ code, stdout, stderr }));
  });
}

describe('the churn trainer command', () => {
  it('--help prints the usage and exits 0', async () => {
    const run = await trainer(['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/^Usage: npx tsx scripts\/train-churn\.ts/);
    expect(run.stdout).toContain('--publish <url>');
  });

  it.each([
    [[], /^train-churn: give either --data <file.jsonl> or --synthetic <n>/],
    [['--data', 'no-such-file.jsonl'], /^train-churn: cannot read the data file no-such-file\.jsonl: no such file$/],
    [['--synthetic', '100', '--bogus'], /^train-churn: Unknown option '--bogus'/],
    [['--synthetic', 'many'], /^train-churn: --synthetic must be a number/],
    [['--synthetic', '100', '--model', 'nope'], /^train-churn: no model "nope" in catalog\/demo\.yaml \(it has: churnRisk\)$/],
    [['--synthetic', '100', '--out', DEMO], /exists; choose another --out file, or add --force/],
  ])('refuses %j in one line, exit 2, no stack trace', async (args, message) => {
    const before = readFileSync(DEMO, 'utf8');
    const run = await trainer(args);
    expect({ code: run.code, lines: run.stderr.trim().split('\n').length }).toEqual({ code: 2, lines: 1 });
    expect(run.stderr.trim()).toMatch(message);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(DEMO, 'utf8')).toBe(before);
  });

  it('names the line of a malformed data file', async () => {
    const data = join(scratch, 'bad.jsonl');
    writeFileSync(data, `${JSON.stringify({ profile: {}, churned: true })}\n{"profile": {}, "churned": "yes"}\n`);
    const run = await trainer(['--data', data]);
    expect(run.code).toBe(2);
    expect(run.stderr.trim()).toBe(`train-churn: ${data}:2: "churned" must be true or false`);
  });

  it('fits labelled profiles into a new catalog file, then publishes it as a new version', async () => {
    const data = join(scratch, 'labelled.jsonl');
    writeFileSync(data, syntheticProfiles(800, 7).map((row) => JSON.stringify(row)).join('\n'));
    const out = join(scratch, 'trained.yaml');
    const written = await trainer(['--data', data, '--out', out]);
    expect(written.code).toBe(0);
    expect(written.stderr).toMatch(/^churnRisk: intercept -?[\d.]+, daysSilent [\d.-]+, .*accuracy [\d.]+% on 800 examples\nwrote /);
    expect(existsSync(out)).toBe(true);
    const trained = loadCatalog(readFileSync(out, 'utf8'), 'yaml');
    if (!trained.ok) throw new Error(JSON.stringify(trained.problems));
    const model = trained.catalog.modelsById.get('churnRisk');
    expect(model?.features.find((f) => f.name === 'returns')?.weight).toBeGreaterThan(0);
    expect(trained.source.models?.[0]?.trainedOn).toEqual(expect.stringMatching(/; log loss \d/));
    expect(trained.source.models?.[0]?.trainedOn?.startsWith(`${data}; log loss`)).toBe(true);

    const before = await call<{ liveVersion: number }>(api, 'GET', '/v1/admin/catalog/versions', { auth: 'admin' });
    const published = await trainer(['--data', data, '--publish', api.baseUrl], { KAIROS_ADMIN_TOKEN: adminToken });
    expect(published.code).toBe(0);
    expect(published.stderr).toContain(`published as catalog version ${before.json.liveVersion + 1} on ${api.baseUrl}`);
    const live = await call<{ version: number; source: string }>(api, 'GET', '/v1/admin/catalog', { auth: 'admin' });
    expect(live.json.version).toBe(before.json.liveVersion + 1);
    expect(live.json.source).toContain('trainedOn:');
  });
});

describe('the bulk profile export', () => {
  const exporter = (args: readonly string[], env: Record<string, string> = { KAIROS_ADMIN_TOKEN: adminToken }) => command(EXPORTER, args, env);

  it('pages through GET /v1/admin/profiles with next, and refuses a bad query with a 400 naming the field', async () => {
    const ids = [uniqueId('u-list'), uniqueId('u-list'), uniqueId('u-list')];
    expect((await sendEvents(api, ids.map((userId) => identify({ userId }, { plan: 'pro' })))).accepted).toBe(3);
    for (const id of ids) await waitForProfile(api, id, (p) => p.traits.plan === 'pro');
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await call<{ profiles: { userId?: string; profile: { traits: Record<string, unknown> } }[]; next?: string }>(
        api,
        'GET',
        `/v1/admin/profiles?limit=2${cursor ? `&cursor=${cursor}` : ''}`,
        { auth: 'admin' },
      );
      expect(page.status).toBe(200);
      expect(page.json.profiles.length).toBeLessThanOrEqual(2);
      for (const listed of page.json.profiles) seen.push(listed.userId as string);
      cursor = page.json.next;
      pages++;
    } while (cursor !== undefined && pages < 10_000);
    expect(ids.every((id) => seen.includes(id))).toBe(true);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.every((id) => typeof id === 'string')).toBe(true);

    for (const [query, path] of [['limit=0', 'limit'], ['limit=1001', 'limit'], ['kind=robots', 'kind'], ['cursor=bm9wZQ', 'cursor']] as const) {
      const refused = await call<{ error: { code: string; details: { path: string }[] } }>(api, 'GET', `/v1/admin/profiles?${query}`, { auth: 'admin' });
      expect({ query, status: refused.status, code: refused.json.error.code, path: refused.json.error.details[0]?.path }).toEqual({
        query,
        status: 400,
        code: 'validation_failed',
        path,
      });
    }
    // A well-formed cursor naming no stored profile still continues the listing (any key is a valid start).
    const elsewhere = Buffer.from('u#zzzz-never-stored', 'utf8').toString('base64url');
    expect((await call(api, 'GET', `/v1/admin/profiles?cursor=${elsewhere}`, { auth: 'admin' })).status).toBe(200);
    expect((await call(api, 'GET', '/v1/admin/profiles', { auth: 'write' })).status).toBe(403);
    expect((await call(api, 'GET', '/v1/admin/profiles', { auth: 'none' })).status).toBe(401);
  });

  it('joins the operator\'s labels into the trainer\'s input, and the trainer fits from it', async () => {
    const churned = [uniqueId('u-churned'), uniqueId('u-churned'), uniqueId('u-churned')];
    const retained = [uniqueId('u-kept'), uniqueId('u-kept'), uniqueId('u-kept')];
    const messages = [
      ...churned.flatMap((userId) => [identify({ userId }, { plan: 'basic' }), track({ userId }, 'Order Returned'), track({ userId }, 'Order Returned')]),
      ...retained.flatMap((userId) => [identify({ userId }, { plan: 'pro' }), track({ userId }, 'Order Completed', { revenue: 40 })]),
    ];
    expect((await sendEvents(api, messages)).accepted).toBe(messages.length);
    for (const id of [...churned, ...retained]) await waitForProfile(api, id, (p) => Object.keys(p.stats.eventCounts ?? {}).length > 0);
    const labels = join(scratch, 'labels.jsonl');
    const unknown = uniqueId('u-never-seen');
    writeFileSync(
      labels,
      [...churned.map((userId) => ({ userId, churned: true })), ...retained.map((userId) => ({ userId, churned: false })), { userId: unknown, churned: false }]
        .map((row) => JSON.stringify(row))
        .join('\n'),
    );
    const out = join(scratch, 'exported.jsonl');
    const run = await exporter(['--url', api.baseUrl, '--labels', labels, '--out', out]);
    expect({ code: run.code, stderr: run.stderr }).toEqual({
      code: 0,
      stderr: `exported 6 profile(s) to ${out}\nno profile for 1 labelled id(s), e.g. ${unknown}\n`,
    });
    const rows = readFileSync(out, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { profile: { userId: string }; churned: boolean });
    expect(rows.map((r) => [r.profile.userId, r.churned]).sort()).toEqual([...churned.map((id) => [id, true]), ...retained.map((id) => [id, false])].sort());

    const again = await exporter(['--url', api.baseUrl, '--labels', labels, '--out', out]);
    expect({ code: again.code, stderr: again.stderr.trim() }).toEqual({ code: 2, stderr: `export-profiles: ${out} exists; choose another --out file, or add --force to replace it` });

    const trained = join(scratch, 'from-export.yaml');
    const fit = await trainer(['--data', out, '--out', trained]);
    expect({ code: fit.code, stderr: fit.stderr }).toEqual({ code: 0, stderr: expect.stringMatching(/on 6 examples\nwrote /) });
  });

  it.each([
    [[], /^export-profiles: --url must be the API's base URL/],
    [['--url', 'http://127.0.0.1:1', '--kind', 'robots'], /^export-profiles: --kind must be user, anonymous or all \(got "robots"\)$/],
    [['--url', 'http://127.0.0.1:1', '--bogus'], /^export-profiles: Unknown option '--bogus'/],
    [['--url', 'http://127.0.0.1:1', '--labels', 'no-such-labels.jsonl'], /^export-profiles: cannot read the labels file no-such-labels\.jsonl: no such file$/],
  ])('refuses %j in one line with exit code 2', async (args, message) => {
    const run = await exporter(args);
    expect({ code: run.code, lines: run.stderr.trim().split('\n').length }).toEqual({ code: 2, lines: 1 });
    expect(run.stderr.trim()).toMatch(message);
  });

  it('--help prints the usage; a wrong token is one line naming the answer', async () => {
    const help = await exporter(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: npx tsx scripts\/export-profiles\.ts/);
    const denied = await exporter(['--url', api.baseUrl], { KAIROS_ADMIN_TOKEN: 'not-the-token' });
    expect({ code: denied.code, stderr: denied.stderr.trim() }).toEqual({ code: 2, stderr: expect.stringMatching(/^export-profiles: http:\/\/.* answered 401 /) });
  });
});

describe('a catalog of several MB', () => {
  it('is read back, live and by version, without its parsed document when the two would not fit in one answer', async () => {
    // 10,000 actions and 1,000 segments: about 3.5 MB of YAML; with its parsed document, 7.2 MB of Lambda answer.
    const lines = ['kind: kairos/v1', 'segments:'];
    for (let i = 0; i < 1_000; i++) lines.push(`  - id: s${i}`, `    rule: 'profile.stats.orders > ${i}.0'`);
    lines.push('actions:');
    for (let i = 0; i < 10_000; i++) {
      lines.push(
        `  - id: a${i}`,
        `    name: a${i} ${'x'.repeat(180)}`,
        `    eligibility: 'profile.stats.visits7d > ${i % 50}.0'`,
        `    targeting: { segments: [s${i % 1_000}] }`,
        `    content: { web: { title: 'Oferta ${i}' } }`,
      );
    }
    const text = `${lines.join('\n')}\n`;
    const small = await publish('Small again');
    const published = await call<{ version: number }>(api, 'PUT', '/v1/admin/catalog', { auth: 'admin', body: text, headers: { 'content-type': 'application/yaml' } });
    expect(published.status).toBe(200);
    for (const path of ['/v1/admin/catalog', `/v1/admin/catalog/versions/${published.json.version}`]) {
      const read = await call<{ version: number; source?: string; catalog?: unknown; omitted?: string[] }>(api, 'GET', path, { auth: 'admin' });
      expect({ status: read.status, version: read.json.version, omitted: read.json.omitted, hasCatalog: 'catalog' in read.json }).toEqual({
        status: 200,
        version: published.json.version,
        omitted: ['catalog'],
        hasCatalog: false,
      });
      expect(read.json.source).toBe(text);
    }
    // A catalog that fits is read whole, as before.
    const rolledBack = await call<{ version: number }>(api, 'POST', '/v1/admin/catalog/rollback', { auth: 'admin', body: { version: small } });
    expect(rolledBack.status).toBe(200);
    const live = await call<{ catalog?: unknown; omitted?: string[] }>(api, 'GET', '/v1/admin/catalog', { auth: 'admin' });
    expect({ status: live.status, omitted: live.json.omitted, hasCatalog: live.json.catalog !== undefined }).toEqual({ status: 200, omitted: undefined, hasCatalog: true });
  }, 120_000);
});
