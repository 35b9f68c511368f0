/**
 * The decide request parser the function uses is a hand-written equivalent
 * of the zod schema of the contract: for any body, the same verdict, the
 * same request, and the same problems (each failing path with its first
 * message; zod mini may add a second message for a path after a type error,
 * e.g. "must not be empty" for an empty array given as userId).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decideRequestSchema, issueDetails, parseDecideRequest } from '#domain/decide/request.ts';

const schema = decideRequestSchema();

type Details = readonly { path: string; message: string }[];
const firstPerPath = (details: Details) => details.filter((d, i) => details.findIndex((e) => e.path === d.path) === i);

function reference(body: unknown) {
  const parsed = schema.safeParse(body);
  if (!parsed.success) return { ok: false, details: firstPerPath(issueDetails(parsed.error.issues)) };
  const { writeKey: _writeKey, ...value } = parsed.data;
  return { ok: true, value };
}

function ours(body: unknown) {
  const parsed = parseDecideRequest(body);
  return parsed.ok ? parsed : { ok: false, details: firstPerPath(parsed.details) };
}

const field = fc.oneof(
  fc.constantFrom('web', 'push', 'email', 'fax', 'home_hero', '', 'u-1', 'bad placement!', 'x'.repeat(257), 'k'.repeat(101)),
  fc.integer({ min: -2, max: 12 }),
  fc.constantFrom(2 ** 53, -(2 ** 53), 1e300, -1e300, 1.5),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.string({ maxLength: 3 }), { maxLength: 2 }),
  fc.dictionary(fc.oneof(fc.string({ maxLength: 4 }), fc.constant('k'.repeat(101))), fc.jsonValue({ maxDepth: 5 }), { maxKeys: 4 }),
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

  it('a valid request with defaults applied; the body write key dropped', () => {
    expect(parseDecideRequest({ userId: 'u', channel: 'web', writeKey: 'wk' })).toEqual({
      ok: true,
      value: { userId: 'u', channel: 'web', limit: 1, context: {}, explain: false },
    });
  });
});
