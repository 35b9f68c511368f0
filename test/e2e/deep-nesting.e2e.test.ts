/**
 * A body or a field nested 100,000 levels deep, on every route that reads a
 * body, over HTTP on the local stack: a 400 (validation_failed), never a
 * 500 and never a hang. Decide's body is at most 16 KB, so a 100,000-level
 * body is refused there for its size (413) and the deepest context that fits
 * gets the 400.
 */
import { afterAll, assert, beforeAll, describe, expect, it } from 'vitest';
import { openStack } from './fixtures/stack.ts';
import { call, type CallResult, type Credential, type StackAccess } from './fixtures/kairos.ts';
import { EVENT_ROUTES } from '#http/routes.ts';

let stack: Awaited<ReturnType<typeof openStack>>;
let api: StackAccess;

beforeAll(async () => {
  stack = await openStack();
  api = stack;
});

afterAll(async () => {
  await stack?.stop();
});

const LEVELS = 100_000;
/** JSON text of `levels` nested arrays around a 1. */
const deepArray = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;
/** YAML flow text of `levels` nested sequences. */
const deepYaml = (levels: number) => `${'['.repeat(levels)}1${']'.repeat(levels)}`;

function expectRefused(result: CallResult, status = 400, code = 'validation_failed'): void {
  assert.equal(result.status, status, result.text.slice(0, 300));
  expect((result.json as { error?: { code?: string } }).error?.code).toBe(code);
  expect(result.headers.get('x-request-id')).toBeTruthy();
}

interface Case {
  readonly name: string;
  readonly method: string;
  readonly path: string;
  readonly auth: Credential;
  /** The body text; JSON unless `contentType` says otherwise. */
  readonly body: string;
  readonly contentType?: string;
}

const message = (route: string, field: string) =>
  `{${route === 'batch' ? '"type":"track",' : ''}"userId":"deep","event":"e","previousId":"p","groupId":"g","${field}":{"a":${deepArray(LEVELS)}}}`;

const cases: Case[] = [
  ...EVENT_ROUTES.flatMap((route): Case[] => {
    const field = route === 'identify' || route === 'group' ? 'traits' : route === 'alias' ? 'context' : 'properties';
    const body = route === 'batch' ? `{"batch":[${message(route, field)}]}` : message(route, field);
    return [
      { name: `POST /v1/${route}, ${field} nested ${LEVELS} deep`, method: 'POST', path: `/v1/${route}`, auth: 'write', body },
      { name: `POST /v1/${route}, the body nested ${LEVELS} deep`, method: 'POST', path: `/v1/${route}`, auth: 'write', body: deepArray(LEVELS) },
    ];
  }),
  {
    name: 'PUT /v1/admin/catalog, JSON nested 100,000 deep',
    method: 'PUT',
    path: '/v1/admin/catalog',
    auth: 'admin',
    body: `{"actions":${deepArray(LEVELS)}}`,
  },
  {
    name: 'PUT /v1/admin/catalog, YAML nested 100,000 deep',
    method: 'PUT',
    path: '/v1/admin/catalog',
    auth: 'admin',
    body: `actions: ${deepYaml(LEVELS)}\n`,
    contentType: 'application/yaml',
  },
  {
    name: 'POST /v1/admin/catalog/validate, JSON nested 100,000 deep',
    method: 'POST',
    path: '/v1/admin/catalog/validate',
    auth: 'admin',
    body: `{"segments":[{"id":"s","rule":"true","x":${deepArray(LEVELS)}}]}`,
  },
  {
    name: 'POST /v1/admin/catalog/validate, YAML nested 100,000 deep',
    method: 'POST',
    path: '/v1/admin/catalog/validate',
    auth: 'admin',
    body: `segments:\n  - id: s\n    rule: "true"\n    x: ${deepYaml(LEVELS)}\n`,
    contentType: 'application/yaml',
  },
  {
    name: 'POST /v1/admin/simulate, context nested 100,000 deep',
    method: 'POST',
    path: '/v1/admin/simulate',
    auth: 'admin',
    body: `{"userId":"deep","channel":"web","context":{"a":${deepArray(LEVELS)}}}`,
  },
  {
    name: 'POST /v1/admin/simulate, profile nested 100,000 deep',
    method: 'POST',
    path: '/v1/admin/simulate',
    auth: 'admin',
    body: `{"channel":"web","profile":{"traits":{"a":${deepArray(LEVELS)}}}}`,
  },
  {
    name: 'POST /v1/admin/keys, the body nested 100,000 deep',
    method: 'POST',
    path: '/v1/admin/keys',
    auth: 'admin',
    body: `{"name":${deepArray(LEVELS)}}`,
  },
];

describe(`a body nested ${LEVELS.toLocaleString('en')} levels deep`, () => {
  for (const c of cases) {
    it(`${c.name}: 400 validation_failed`, async () => {
      const result = await call(api, c.method, c.path, {
        auth: c.auth,
        body: c.body,
        headers: { 'content-type': c.contentType ?? 'application/json' },
      });
      expectRefused(result);
    });
  }

  it('POST /v1/decide: a 100,000-level body is over the size limit (413); the deepest context that fits is a 400', async () => {
    const tooLarge = await call(api, 'POST', '/v1/decide', { auth: 'write', body: `{"userId":"deep","channel":"web","context":{"a":${deepArray(LEVELS)}}}` });
    expectRefused(tooLarge, 413, 'payload_too_large');
    const levels = 7_500;
    const deepest = await call(api, 'POST', '/v1/decide', { auth: 'write', body: `{"userId":"deep","channel":"web","context":{"a":${deepArray(levels)}}}` });
    expectRefused(deepest);
  });

  it('the stack still answers afterwards', async () => {
    const health = await call(api, 'GET', '/v1/health');
    expect(health.status).toBe(200);
    const decide = await call(api, 'POST', '/v1/decide', { auth: 'write', body: { anonymousId: 'deep', channel: 'web', context: { a: [[1]] } } });
    expect(decide.status).toBe(200);
  });
});
