/**
 * Hostile rules on the local stack: a catalog whose rules would be
 * unbounded is refused with the path and position; one whose rules are as
 * heavy as the load-time limit allows (catastrophic regular expressions on
 * the longest context decide accepts, comprehensions over its largest lists)
 * is served: decide answers every request, and the other routes (health,
 * ingest) are not held while it does. No timed assertion: every request
 * must simply answer (the client's own timeout is generous).
 */
import { afterAll, assert, beforeAll, describe, expect, it } from 'vitest';
import { openStack } from './fixtures/stack.ts';
import { call, track, uniqueId, type StackAccess } from './fixtures/kairos.ts';

let stack: Awaited<ReturnType<typeof openStack>>;
let api: StackAccess;

beforeAll(async () => {
  stack = await openStack();
  api = stack;
});

afterAll(async () => {
  await stack?.stop();
});

const PATTERNS = ['^(a+)+$', '(a|aa)+$', '^(a*)*b$', '^(a|a?)+$', '(.*a){12}$'];

/** 120 actions, each with its own heavy-but-admitted rule, and a safe fallback. */
function heavyCatalog(marker: string) {
  return {
    learning: { enabled: false, exploration: 0 },
    actions: [
      ...Array.from({ length: 120 }, (_, i) => ({
        id: `heavy-${i}`,
        name: `heavy ${i}`,
        eligibility: `context.s.matches("${PATTERNS[i % PATTERNS.length]}") && context.l.exists(x, x == ${i}) || context.s.matches("^(a+)+${i}$")`,
        content: { web: { title: `heavy ${i}` } },
      })),
      { id: `safe-${marker}`, name: 'safe', value: 0.001, fallback: true, content: { web: { title: 'safe' } } },
    ],
  };
}

/** The longest string and list a 4 KB context holds. */
const hostileContext = { s: `${'a'.repeat(2_400)}!`, l: Array.from({ length: 700 }, (_, i) => i % 7) };

describe('a catalog of hostile rules', () => {
  it('is refused when a rule may cost too much, with the path and position', async () => {
    const refused = await call(api, 'POST', '/v1/admin/catalog/validate', {
      auth: 'admin',
      body: {
        actions: [
          {
            id: 'nested',
            name: 'nested',
            eligibility: 'context.l.exists(x, context.l.exists(y, context.l.exists(z, x == y && y == z)))',
            content: { web: { title: 't' } },
          },
        ],
      },
    });
    assert.equal(refused.status, 400, refused.text.slice(0, 300));
    const details = (refused.json as { error: { code: string; details: { path: string; message: string; position?: number }[] } }).error;
    expect(details.code).toBe('validation_failed');
    // With where it is in the body (line, column, the line) beside the position in the rule.
    expect(details.details).toContainEqual({
      path: 'actions[0].eligibility',
      message: expect.stringMatching(/may cost too much to evaluate/),
      position: 0,
      line: 1,
      column: expect.any(Number),
      excerpt: expect.any(String),
    });
  });

  it('under the heaviest admitted rules, decide answers every request and health and ingest are not held', async () => {
    const marker = uniqueId('hostile');
    const put = await call(api, 'PUT', '/v1/admin/catalog', { auth: 'admin', body: heavyCatalog(marker) });
    assert.equal(put.status, 200, put.text.slice(0, 300));
    // Live once decide serves this catalog's fallback.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const probe = await call<{ actions: { actionId: string }[] }>(api, 'POST', '/v1/decide', {
        auth: 'write',
        body: { anonymousId: uniqueId('probe'), channel: 'web' },
      });
      if (probe.json?.actions?.some((a) => a.actionId === `safe-${marker}`)) break;
      assert.isBelow(Date.now(), deadline, 'the catalog was stored but decide did not serve it within 60 s');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }

    const decides = Array.from({ length: 24 }, (_, i) =>
      call<{ actions: { actionId: string }[] }>(api, 'POST', '/v1/decide', {
        auth: 'write',
        body: { anonymousId: uniqueId(`hostile-${i}`), channel: 'web', limit: 3, context: hostileContext },
      }),
    );
    const healths = Array.from({ length: 12 }, () => call(api, 'GET', '/v1/health'));
    const events = Array.from({ length: 6 }, (_, i) =>
      call(api, 'POST', '/v1/batch', { auth: 'write', body: { batch: [track({ userId: uniqueId(`hostile-u${i}`) }, 'Product Viewed')] } }),
    );
    const [decided, healthy, ingested] = await Promise.all([Promise.all(decides), Promise.all(healths), Promise.all(events)]);
    expect(decided.map((d) => d.status)).toEqual(decided.map(() => 200));
    for (const d of decided) expect(d.json.actions.length).toBeGreaterThan(0);
    expect(healthy.map((h) => h.status)).toEqual(healthy.map(() => 200));
    expect(ingested.map((e) => e.status)).toEqual(ingested.map(() => 200));
  });
});
