/**
 * DynamoDB clients side by side for decide's reads: the AWS SDK v3
 * (DynamoDBDocumentClient), bare aws-lite (@aws-lite/client +
 * @aws-lite/dynamodb) and the product's one client built on it
 * (shared/store/client.ts: deadline, retries, typed faults, counts). For
 * each: the minified bundle of a module
 * that makes the client and reads one item (built like the CDK builds the
 * functions), a fresh process importing it and making its first GetItem
 * (median of 7), and warm sequential GetItem p50/p99 against DynamoDB Local.
 *
 *   node --import tsx bench/clients.ts http://127.0.0.1:8000 kairos-control
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';
import { BUNDLE_ALIASES, ESM_REQUIRE_BANNER } from '#infra/bundling.ts';

const [endpoint = 'http://127.0.0.1:8000', table = 'kairos-control'] = process.argv.slice(2);
const ROOT = resolve(import.meta.dirname, '..');
const KEY = { pk: 'BENCH#client', sk: 'ITEM' };

const entries: Record<string, string> = {
  sdk: `
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand } from '@aws-sdk/lib-dynamodb';
export function make(endpoint) {
  return DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1', endpoint, credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 2 }));
}
export async function get(client, table, key) {
  return (await client.send(new GetCommand({ TableName: table, Key: key }), { abortSignal: AbortSignal.timeout(1000) })).Item;
}`,
  'aws-lite': `
import awsLite from '@aws-lite/client';
import dynamodb from '@aws-lite/dynamodb';
let pending;
export function make(endpoint) {
  const url = new URL(endpoint);
  return awsLite({ region: 'us-east-1', host: url.hostname, port: Number(url.port), protocol: url.protocol.replace(':', ''), accessKeyId: 'local', secretAccessKey: 'local', plugins: [dynamodb], retries: 1 });
}
export async function get(client, table, key) {
  return (await (await client).DynamoDB.GetItem({ TableName: table, Key: key })).Item;
}`,
  'store client': `
import { DynamoClient } from '${join(ROOT, 'shared/store/client.ts')}';
export function make(endpoint) { return new DynamoClient({ endpoint, region: 'us-east-1', timeoutMs: 1000, maxAttempts: 2 }); }
export async function get(client, table, key) { return (await client.send('GetItem', { TableName: table, Key: key })).Item; }`,
};

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;

const dir = mkdtempSync(join(tmpdir(), 'kairos-clients-'));
try {
  for (const [name, source] of Object.entries(entries)) {
    const entry = join(ROOT, `.bench-client-${name.replace(/\W/g, '-')}.mjs`);
    writeFileSync(entry, source);
    const outfile = join(dir, `${name.replace(/\W/g, '-')}.mjs`);
    try {
      await build({
        entryPoints: [entry], bundle: true, minify: true, format: 'esm', platform: 'node', target: 'node24',
        mainFields: ['module', 'main'], banner: { js: ESM_REQUIRE_BANNER }, alias: { ...BUNDLE_ALIASES }, outfile, logLevel: 'silent',
      });
    } finally {
      rmSync(entry, { force: true });
    }
    const bytes = statSync(outfile).size;
    const script = `
      const t0 = performance.now();
      const m = await import(${JSON.stringify(outfile)});
      const t1 = performance.now();
      const c = m.make(${JSON.stringify(endpoint)});
      const first = await m.get(c, ${JSON.stringify(table)}, ${JSON.stringify(KEY)});
      const t2 = performance.now();
      if (process.argv[1] === 'warm') {
        const s = [];
        for (let i = 0; i < 2000; i++) { const a = performance.now(); await m.get(c, ${JSON.stringify(table)}, ${JSON.stringify(KEY)}); s.push(performance.now() - a); }
        s.sort((x, y) => x - y);
        console.log(JSON.stringify({ p50: s[1000], p99: s[1980], found: first !== undefined }));
      } else console.log(JSON.stringify({ load: t1 - t0, first: t2 - t1, found: first !== undefined }));
      process.exit(0);`;
    const runs: { load: number; first: number }[] = [];
    for (let i = 0; i < 7; i++) {
      const child = spawnSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script, 'cold'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1' } });
      if (child.status !== 0) throw new Error(`${name}: ${child.stderr.slice(0, 800)}`);
      runs.push(JSON.parse(child.stdout.trim().split('\n').pop() as string));
    }
    const warm = spawnSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script, 'warm'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', AWS_REGION: 'us-east-1' } });
    if (warm.status !== 0) throw new Error(`${name}: ${warm.stderr.slice(0, 800)}`);
    const w = JSON.parse(warm.stdout.trim().split('\n').pop() as string) as { p50: number; p99: number; found: boolean };
    const load = percentile(runs.map((r) => r.load).sort((a, b) => a - b), 0.5);
    const first = percentile(runs.map((r) => r.first).sort((a, b) => a - b), 0.5);
    console.log(`${name.padEnd(12)} bundle ${(bytes / 1024).toFixed(0).padStart(4)} KB  load ${load.toFixed(1).padStart(6)} ms  first GetItem ${first.toFixed(1).padStart(6)} ms  warm p50 ${w.p50.toFixed(2)} ms p99 ${w.p99.toFixed(2)} ms  (item found: ${w.found})`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
