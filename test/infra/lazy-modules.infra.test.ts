/**
 * The decide bundle built as the CDK builds it (infra/bundling.ts
 * `buildLikeCdk`: re2js external, shipped beside the bundle) answers
 * decisions in fresh Node processes, as Lambda runs it, against DynamoDB
 * Local: a catalog whose eligibility uses `matches()` loads re2js from
 * beside the bundle and evaluates it; a catalog without `matches()` never
 * loads it.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

const emulator = await vi.hoisted(async () => {
  // Before any import reads the environment: this file's own in-memory DynamoDB Local.
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { assertLocalEndpoint, startDynamoLocal } = await import('#local/dynamodb.ts');
  const { ensureTables } = await import('#local/tables.ts');
  const dynamo = await startDynamoLocal({ inMemory: true });
  assertLocalEndpoint(dynamo.endpoint, 'The lazy-module test');
  const client = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const names = await ensureTables(client);
  client.destroy();
  Object.assign(process.env, names, {
    DYNAMODB_ENDPOINT: dynamo.endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    KAIROS_DECISION_KEY: 'kdk_lazy_module_test_decision_key_0123456789',
    POWERTOOLS_LOG_LEVEL: 'ERROR',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  delete process.env.AWS_SESSION_TOKEN;
  delete process.env.AWS_PROFILE;
  return dynamo;
});

import { DECISION_RECORD_MESSAGE } from '#domain/evaluation/decision-record.ts';
import { LAZY_MODULES, buildLikeCdk } from '#infra/bundling.ts';
import { PROJECT_ROOT } from '#infra/constructs/kairos-function.ts';
import { putWriteKey } from '#store/write-keys.ts';
import { publishCatalog } from '#store/catalog.ts';
import { apiGatewayEvent, basicAuth } from '../support/apigw.ts';

const execFileAsync = promisify(execFile);
const KEY = `wk_lazy_modules_${Date.now().toString(36)}`;
let dir: string;
let bundle: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kairos-lazy-'));
  bundle = join(dir, 'index.mjs');
  const result = await buildLikeCdk(join(PROJECT_ROOT, 'functions/decide/handler.ts'), bundle);
  if (result.errors.length > 0) throw new Error(`the decide bundle does not build: ${result.errors[0]?.text}`);
  await putWriteKey(KEY, { keyId: 'lazy-modules', name: 'lazy modules test', kind: 'server', createdAt: new Date().toISOString() });
});

afterAll(async () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  await emulator.stop();
});

/**
 * A fresh process imports the bundle and answers one decide, as Lambda's runtime would; whether it loaded
 * re2js, and how many decision record lines the bundle's logger wrote to stdout (before the probe's own line).
 */
async function coldDecide(device: string): Promise<{ statusCode: number; actions: string[]; re2jsLoaded: boolean; records: number }> {
  const event = apiGatewayEvent({
    method: 'POST',
    path: '/v1/decide',
    headers: { authorization: basicAuth(KEY), 'content-type': 'application/json' },
    body: JSON.stringify({ userId: 'lazy-user', channel: 'web', limit: 5, context: { device } }),
  });
  const probe = `
    import { createRequire } from 'node:module';
    const { handler } = await import(process.argv[1]);
    const context = { awsRequestId: 'lazy', functionName: 'kairos-decide', getRemainingTimeInMillis: () => 5000 };
    const answer = await handler(JSON.parse(process.argv[2]), context);
    const body = JSON.parse(answer.body);
    const re2jsLoaded = Object.keys(createRequire(process.argv[1]).cache).some((path) => path.includes('/node_modules/re2js/'));
    process.stdout.write('\\n' + JSON.stringify({ statusCode: answer.statusCode, actions: (body.actions ?? []).map((a) => a.actionId ?? a.id), re2jsLoaded }));`;
  const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', probe, pathToFileURL(bundle).href, JSON.stringify(event)], {
    encoding: 'utf8',
    timeout: 60_000,
    env: { ...process.env },
  });
  const lines = stdout.split('\n').filter((line) => line.startsWith('{'));
  const records = lines.filter((line) => (JSON.parse(line) as { message?: unknown }).message === DECISION_RECORD_MESSAGE).length;
  return { ...(JSON.parse(lines.at(-1) ?? '') as { statusCode: number; actions: string[]; re2jsLoaded: boolean }), records };
}

const action = (id: string, eligibility: string) => ({ id, name: id, eligibility, content: { web: { title: id } } });

describe('re2js, loaded lazily beside the decide bundle', () => {
  it('is shipped beside the bundle and not inside it', () => {
    for (const module of LAZY_MODULES) {
      for (const file of module.files) expect(existsSync(join(dir, 'node_modules', module.name, file))).toBe(true);
    }
    expect(readFileSync(bundle, 'utf8')).not.toContain('invalid nested repetition operator');
  });

  it('evaluates a matches() rule of the live catalog (RE2 semantics), loading re2js from beside the bundle', async () => {
    const published = await publishCatalog(
      JSON.stringify({
        learning: { enabled: false, exploration: 0 },
        actions: [action('mobile-offer', 'context.device.matches("^mob(ile)?$")'), action('desktop-offer', 'context.device.matches("^desk")')],
      }),
      'json',
    );
    expect(published.ok).toBe(true);
    expect(await coldDecide('mobile')).toEqual({ statusCode: 200, actions: ['mobile-offer'], re2jsLoaded: true, records: 1 });
    expect(await coldDecide('desktop-pc')).toEqual({ statusCode: 200, actions: ['desktop-offer'], re2jsLoaded: true, records: 1 });
  });

  it('is never loaded for a catalog without matches()', async () => {
    const published = await publishCatalog(
      JSON.stringify({
        learning: { enabled: false, exploration: 0 },
        actions: [action('mobile-offer', 'context.device == "mobile"'), action('any-offer', 'context.device.startsWith("desk")')],
      }),
      'json',
    );
    expect(published.ok).toBe(true);
    expect(await coldDecide('mobile')).toEqual({ statusCode: 200, actions: ['mobile-offer'], re2jsLoaded: false, records: 1 });
  });
});
