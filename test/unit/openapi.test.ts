/**
 * docs/openapi.json: generated from the route table and the request schemas
 * (scripts/openapi.ts), valid OpenAPI 3.1, current, and naming exactly the
 * routes the stack serves (the route walk, test/e2e/route-walk.e2e.test.ts,
 * calls every one of them on the local stack).
 */
import { readFileSync } from 'node:fs';
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { routeKeysOf, routes } from '#http/routes.ts';
import { CONTEXT_LIMITS, parseDecideRequest } from '#domain/decide/request.ts';
import { OPENAPI_FILE, buildOpenApi, openApiText } from '#scripts/openapi.ts';

const published = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8')) as {
  paths: Record<string, Record<string, { security: unknown[]; requestBody?: unknown }>>;
  components: { schemas: Record<string, { properties?: Record<string, unknown>; required?: string[] }> };
};

describe('docs/openapi.json', () => {
  it('is current: `npm run openapi` would write the same bytes', () => {
    expect(readFileSync(OPENAPI_FILE, 'utf8')).toBe(openApiText());
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await new Validator().validate(buildOpenApi('0.0.0') as Parameters<Validator['validate']>[0]);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('describes exactly the routes of the route table, with their credentials', () => {
    const described = Object.entries(published.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ key: `${method.toUpperCase()} ${path}`, secured: op.security.length > 0 })),
    );
    // A GET route is served on HEAD too (routes.ts methodsOf), with the same credentials.
    const served = routes.flatMap((r) => routeKeysOf(r).map((key) => ({ key, secured: r.auth !== 'none' })));
    const byKey = (a: { key: string }, b: { key: string }) => a.key.localeCompare(b.key);
    expect(described.sort(byKey)).toEqual(served.sort(byKey));
  });

  it('documents the decide body the parser checks (fields and the required channel)', () => {
    const decide = published.components.schemas.DecideRequest;
    expect(Object.keys(decide?.properties ?? {}).sort()).toEqual(
      ['anonymousId', 'channel', 'context', 'explain', 'limit', 'placement', 'userId', 'writeKey'].sort(),
    );
    expect(decide?.required).toEqual(['channel']);
    // A body with a field the document does not name is refused by the parser, as the document's strict object says.
    expect(parseDecideRequest({ channel: 'web', anonymousId: 'a', undocumented: 1 }).ok).toBe(false);
  });

  it('states the context bounds the parser holds: at most CONTEXT_LIMITS.keys keys of at most CONTEXT_LIMITS.keyLength characters', () => {
    for (const name of ['DecideRequest', 'SimulateRequest']) {
      expect(published.components.schemas[name]?.properties?.context).toMatchObject({
        type: 'object',
        maxProperties: CONTEXT_LIMITS.keys,
        propertyNames: { maxLength: CONTEXT_LIMITS.keyLength },
      });
    }
    const keys = (n: number, length: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [String(i).padStart(length, 'k'), i]));
    expect(parseDecideRequest({ channel: 'web', anonymousId: 'a', context: keys(CONTEXT_LIMITS.keys, 3) }).ok).toBe(true);
    expect(parseDecideRequest({ channel: 'web', anonymousId: 'a', context: keys(1, CONTEXT_LIMITS.keyLength) }).ok).toBe(true);
    expect(parseDecideRequest({ channel: 'web', anonymousId: 'a', context: keys(CONTEXT_LIMITS.keys + 1, 3) }).ok).toBe(false);
    expect(parseDecideRequest({ channel: 'web', anonymousId: 'a', context: keys(1, CONTEXT_LIMITS.keyLength + 1) }).ok).toBe(false);
  });
});
