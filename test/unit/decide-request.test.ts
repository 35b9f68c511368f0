/**
 * The decide request parser the function uses is a hand-written equivalent
 * of the zod schema of the contract: for any body, the same verdict, the
 * same request, and the same problems (each failing path with its first
 * message; zod mini may add a second message for a path after a type error,
 * e.g. "must not be empty" for an empty array given as userId).
 */
import fc from 'fast-check';
import { assert, describe, expect, it } from 'vitest';
import { BODY_WRITE_KEY_REFUSED, decideRequestSchema, issueDetails, parseDecideRequest } from '#domain/decide/request.ts';
import { planIngest } from '#domain/ingest/normalise.ts';
import { NO_INVISIBLE_CHARACTERS } from '#domain/ingest/limits.ts';

const schema = decideRequestSchema();

type Details = readonly { path: string; message: string }[];
const firstPerPath = (details: Details) => details.filter((d, i) => details.findIndex((e) => e.path === d.path) === i);

function reference(body: unknown) {
  const parsed = schema.safeParse(body);
  if (!parsed.success) return { ok: false, details: firstPerPath(issueDetails(parsed.error.issues)) };
  return { ok: true, value: parsed.data };
}

function ours(body: unknown) {
  const parsed = parseDecideRequest(body);
  return parsed.ok ? parsed : { ok: false, details: firstPerPath(parsed.details) };
}

const field = fc.oneof(
  fc.constantFrom('web', 'push', 'email', 'fax', 'home_hero', '', 'u-1', 'bad placement!', 'x'.repeat(257), 'k'.repeat(101), 'a\u0007', 'a\ud800', '\udc00b', '   ', ' u '),
  fc.integer({ min: -2, max: 12 }),
  fc.constantFrom(2 ** 53, -(2 ** 53), 1e300, -1e300, 1.5),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
  fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constant('k'.repeat(101))), fc.jsonValue({ maxDepth: 5 }), { maxKeys: 4 }),
  // Keys and values the events refuse (ingest/limits.ts inspectStructure), as JSON would give them.
  fc
    .dictionary(
      fc.constantFrom('__proto__', 'constructor', 'prototype', '', 'k\ud800', 'ok'),
      fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom('x\udc00', 2 ** 60, 1e-200, 'plain')),
      { maxKeys: 3 },
    )
    .map((entries) => JSON.parse(`{${Object.entries(entries).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`) as unknown),
);

describe('parseDecideRequest', () => {
  it('agrees with the zod schema on any body', () => {
    const body = fc.oneof(
      fc.record(
        {
          userId: field,
          anonymousId: field,
          channel: fc.oneof(fc.constantFrom('web', 'app', 'push', 'email', 'sms', 'call_center'), field),
          placement: field,
          limit: field,
          context: field,
          explain: field,
          writeKey: field,
          extra: field,
        },
        { requiredKeys: [] },
      ),
      fc.jsonValue({ maxDepth: 2 }),
    );
    fc.assert(
      fc.property(body, (value) => {
        const json = JSON.parse(JSON.stringify(value ?? null)) as unknown;
        expect(ours(json)).toEqual(reference(json));
      }),
      { numRuns: 3_000 },
    );
  });

  it('a context nested 100,000 deep is refused for its depth by both, without recursing into it', () => {
    const context = JSON.parse(`{"a":${'['.repeat(100_000)}1${']'.repeat(100_000)}}`) as Record<string, unknown>;
    const body = { userId: 'u', channel: 'web', context };
    const expected = [{ path: 'context', message: 'must nest at most 4 levels' }];
    expect(parseDecideRequest(body)).toEqual({ ok: false, details: expected });
    const parsed = decideRequestSchema().safeParse(body);
    expect(parsed.success ? [] : issueDetails(parsed.error.issues)).toEqual(expected);
  });

  it('a valid request with defaults applied', () => {
    expect(parseDecideRequest({ userId: 'u', channel: 'web' })).toEqual({
      ok: true,
      value: { userId: 'u', channel: 'web', limit: 1, context: {}, explain: false },
    });
  });

  /** Both parsers' problems for a body given as JSON text (so that `__proto__` is an own key and 1e400 is Infinity, as on the wire). */
  function problems(json: string) {
    const body = JSON.parse(json) as unknown;
    const parsed = schema.safeParse(body);
    const expected = parsed.success ? [] : firstPerPath(issueDetails(parsed.error.issues));
    const got = parseDecideRequest(body);
    expect(got.ok ? [] : firstPerPath(got.details)).toEqual(expected);
    return expected;
  }

  it.each([
    ['a control character in userId', '{"userId":"a\\u0007","channel":"web"}', 'userId', 'must not contain control characters'],
    ['a lone surrogate in userId', '{"userId":"a\\ud800","channel":"web"}', 'userId', 'must be valid Unicode (lone surrogate)'],
    ['a userId of only spaces', '{"userId":"   ","channel":"web"}', 'userId', 'must not be blank (only whitespace)'],
    ['an anonymousId of only whitespace', '{"anonymousId":"\\u00a0\\u2003","channel":"web"}', 'anonymousId', 'must not be blank (only whitespace)'],
    ['a lone surrogate in anonymousId', '{"anonymousId":"\\udc00a","channel":"web"}', 'anonymousId', 'must be valid Unicode (lone surrogate)'],
    ['a C1 control character in userId', '{"userId":"u-42\\u0085","channel":"web"}', 'userId', 'must not contain control characters'],
    ['a right-to-left override in userId', '{"userId":"u-\\u202e24","channel":"web"}', 'userId', NO_INVISIBLE_CHARACTERS],
    ['a zero-width joiner in anonymousId', '{"anonymousId":"a\\u200d9","channel":"web"}', 'anonymousId', NO_INVISIBLE_CHARACTERS],
    ['a __proto__ key in context', '{"userId":"u","channel":"web","context":{"__proto__":{"admin":true}}}', 'context.__proto__', 'forbidden key "__proto__"'],
    ['a constructor key in context', '{"userId":"u","channel":"web","context":{"a":{"constructor":1}}}', 'context.a.constructor', 'forbidden key "constructor"'],
    ['an infinite number in context', '{"userId":"u","channel":"web","context":{"x":1e400}}', 'context.x', 'number out of the supported range (±9007199254740991)'],
    ['an empty key in context', '{"userId":"u","channel":"web","context":{"":1}}', 'context', 'empty keys are not allowed'],
    ['a context key past 100 characters', `{"userId":"u","channel":"web","context":{"${'k'.repeat(101)}":1}}`, `context.${'k'.repeat(101)}`, 'keys must be at most 100 characters'],
    ['a context past 4,096 bytes of UTF-8', `{"userId":"u","channel":"web","context":{"a":"${'é'.repeat(2_100)}"}}`, 'context', 'must be at most 4096 bytes of JSON'],
    ['a body writeKey', '{"userId":"u","channel":"web","writeKey":"wk"}', 'writeKey', BODY_WRITE_KEY_REFUSED],
    ['a too long body writeKey', `{"userId":"u","channel":"web","writeKey":"${'w'.repeat(201)}"}`, 'writeKey', BODY_WRITE_KEY_REFUSED],
  ])('%s is refused with its own message by both', (_label, json, path, message) => {
    expect(problems(json)).toEqual([{ path, message }]);
  });

  it('ids are held to the events\' definition: what a message refuses in its userId, decide refuses with the same message', () => {
    for (const id of ['a\u0007', 'a\u0085', 'a\u202e', 'a\ufeff', 'a\ud800', 'x'.repeat(257), '   ']) {
      const plan = planIngest(
        { type: 'track', event: 'E', userId: id },
        { route: 'track', sourceId: 's', receivedAt: Date.parse('2026-01-01T00:00:00Z'), historyDays: 1, newMessageId: () => 'm' },
      );
      assert(plan.ok);
      const decided = parseDecideRequest({ userId: id, channel: 'web' });
      assert(!decided.ok);
      expect(plan.issues.map((i) => i.message)).toEqual(decided.details.map((d) => d.message));
    }
  });
});
