import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NO_INVISIBLE_CHARACTERS, inspectStructure } from '#domain/ingest/limits.ts';
import { planIngest, type IngestOptions, type IngestPlan } from '#domain/ingest/normalise.ts';
import { parseIsoDateTime } from '#domain/ingest/timestamps.ts';
import { storedEventSchema, type StoredEvent } from '#domain/stored-event.ts';

const RECEIVED = Date.parse('2026-11-23T12:00:00.000Z');
let counter = 0;
const options = (overrides: Partial<IngestOptions> = {}): IngestOptions => ({
  route: 'batch',
  sourceId: 'src-1',
  receivedAt: RECEIVED,
  historyDays: 90,
  newMessageId: () => `generated-${++counter}`,
  ...overrides,
});

const track = (extra: Record<string, unknown> = {}) => ({
  type: 'track',
  messageId: 'm-1',
  userId: 'u-1',
  event: 'Product Viewed',
  properties: { category: 'shoes' },
  ...extra,
});

function accepted(plan: IngestPlan): StoredEvent[] {
  if (!plan.ok) throw new Error(`envelope refused: ${JSON.stringify(plan.issues)}`);
  return [...plan.events];
}

/** The rejection messages of a one-message batch (empty when it was accepted). */
function rejectionOf(message: unknown, overrides: Partial<IngestOptions> = {}): string[] {
  const plan = planIngest({ batch: [message] }, options(overrides));
  if (!plan.ok) throw new Error('envelope refused');
  return plan.rejections.map((r) => r.message);
}

/** `{"a":{"a":…1…}}` with `levels` objects, built as text so no recursion is needed. */
const nested = (levels: number) => JSON.parse(`${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`);

describe('planIngest: a message becomes a StoredEvent', () => {
  it('builds the keys, the TTL and keeps the Segment fields', () => {
    const [event] = accepted(planIngest({ batch: [track({ anonymousId: 'a-1' })] }, options()));
    expect(event).toMatchObject({
      pk: 'src-1#m-1',
      profileKey: 'u#u-1',
      sortKey: '2026-11-23T12:00:00.000Z#m-1',
      sourceId: 'src-1',
      type: 'track',
      userId: 'u-1',
      anonymousId: 'a-1',
      event: 'Product Viewed',
      properties: { category: 'shoes' },
      timestamp: '2026-11-23T12:00:00.000Z',
      receivedAt: '2026-11-23T12:00:00.000Z',
      expiresAt: RECEIVED / 1000 + 90 * 86_400,
    });
    expect(storedEventSchema.parse(event)).toEqual(event);
  });

  it('keys an anonymous message by its anonymousId and makes a messageId when none is sent', () => {
    const plan = planIngest({ batch: [{ type: 'page', anonymousId: 'a-7', name: 'Home' }, { type: 'page', anonymousId: 'a-7' }] }, options());
    const events = accepted(plan);
    expect(events.map((e) => e.profileKey)).toEqual(['a#a-7', 'a#a-7']);
    expect(events[0]?.messageId).toMatch(/^generated-\d+$/);
    expect(events[0]?.messageId).not.toBe(events[1]?.messageId);
    expect(events[0]?.pk).toBe(`src-1#${events[0]?.messageId}`);
    expect(events[0]?.name).toBe('Home');
    // Numeric ids, which some trackers send, are kept as text.
    expect(accepted(planIngest({ batch: [track({ userId: 42 })] }, options()))[0]?.profileKey).toBe('u#42');
  });

  it('corrects client clock skew as Segment does: timestamp - sentAt + receivedAt', () => {
    // The client's clock is 3 days behind; the event happened 10 s before it was sent.
    const message = track({ timestamp: '2026-11-20T11:59:50.000Z', sentAt: '2026-11-20T12:00:00.000Z' });
    const [event] = accepted(planIngest({ batch: [message] }, options()));
    expect(event?.timestamp).toBe('2026-11-23T11:59:50.000Z');
    expect(event?.originalTimestamp).toBe('2026-11-20T11:59:50.000Z');
    // The batch's sentAt applies when the message has none; the message's wins over the batch's.
    const [fromBatch, own] = accepted(
      planIngest(
        {
          sentAt: '2026-11-20T12:00:00+01:00',
          batch: [track({ timestamp: '2026-11-20T10:59:00Z' }), track({ messageId: 'm-2', timestamp: '2026-11-20T10:59:00Z', sentAt: '2026-11-20T11:00:00Z' })],
        },
        options(),
      ),
    );
    expect(fromBatch?.timestamp).toBe('2026-11-23T11:59:00.000Z');
    expect(own?.timestamp).toBe('2026-11-23T11:59:00.000Z');
    expect(fromBatch?.sentAt).toBe('2026-11-20T12:00:00+01:00');
  });

  it('uses the time of receipt without a timestamp and the timestamp (in UTC) without sentAt', () => {
    const [noTimestamp, noSentAt] = accepted(
      planIngest({ batch: [track(), track({ messageId: 'm-2', timestamp: '2026-01-02T03:04:05.678+02:00' })] }, options()),
    );
    expect(noTimestamp?.timestamp).toBe('2026-11-23T12:00:00.000Z');
    expect(noSentAt?.timestamp).toBe('2026-01-02T01:04:05.678Z');
  });

  it('refuses a timestamp more than one hour in the future, after correction', () => {
    const hourAhead = new Date(RECEIVED + 3_600_000).toISOString();
    const tooFar = new Date(RECEIVED + 3_600_001).toISOString();
    expect(rejectionOf(track({ timestamp: hourAhead }))).toEqual([]);
    expect(rejectionOf(track({ timestamp: tooFar }))).toEqual([
      'batch[0].timestamp: is more than 1 hour in the future (after clock-skew correction)',
    ]);
    // A client whose clock runs 5 hours fast is fine once corrected.
    const fast = (ms: number) => new Date(RECEIVED + 5 * 3_600_000 + ms).toISOString();
    expect(rejectionOf(track({ timestamp: fast(-1000), sentAt: fast(0) }))).toEqual([]);
  });

  it('dates a mobile backlog by originalTimestamp, corrected with the per-message sentAt before the batch\'s, on every route', () => {
    // RudderStack's mobile SDKs: a screen and an order from two days ago, flushed now by a
    // device whose clock runs 7 minutes slow. Each message has its own sentAt (the flush),
    // the batch another (the HTTP request), the event its originalTimestamp and no timestamp.
    const deviceNow = RECEIVED - 7 * 60_000;
    const twoDaysAgo = new Date(deviceNow - 2 * 86_400_000).toISOString();
    const flushed = new Date(deviceNow - 1000).toISOString();
    const request = new Date(deviceNow).toISOString();
    const mobile = (type: string, extra: Record<string, unknown>) => ({
      type,
      messageId: `m-${type}`,
      anonymousId: 'a-1',
      originalTimestamp: twoDaysAgo,
      sentAt: flushed,
      ...extra,
    });
    const expected = new Date(RECEIVED - 2 * 86_400_000 + 1000).toISOString();
    const batch = accepted(
      planIngest(
        { sentAt: request, batch: [mobile('screen', { name: 'Home' }), mobile('track', { event: 'Order Completed', properties: { revenue: 10 } })] },
        options(),
      ),
    );
    expect(batch.map((e) => e.timestamp)).toEqual([expected, expected]);
    expect(batch[0]?.originalTimestamp).toBe(twoDaysAgo);
    for (const route of ['screen', 'track'] as const) {
      const { type: _type, ...message } = mobile(route, route === 'track' ? { event: 'Order Completed' } : { name: 'Home' });
      const [single] = accepted(planIngest(message, options({ route })));
      expect(single?.timestamp).toBe(expected);
    }
    // timestamp, when sent, still wins over originalTimestamp.
    const [explicit] = accepted(planIngest({ batch: [track({ timestamp: '2026-11-22T12:00:00Z', originalTimestamp: twoDaysAgo })] }, options()));
    expect(explicit?.timestamp).toBe('2026-11-22T12:00:00.000Z');
    expect(rejectionOf(track({ originalTimestamp: 'yesterday' }))).toEqual([
      'batch[0].originalTimestamp: must be an ISO-8601 date-time such as 2024-05-01T10:20:30.000Z',
    ]);
  });

  it('merges identify traits from context.traits, the top-level traits winning a conflict', () => {
    const [rudder, both, group, trackEvent] = accepted(
      planIngest(
        {
          batch: [
            { type: 'identify', messageId: 'm-1', userId: 'u-1', context: { traits: { firstName: 'Luis', tier: 'gold' } } },
            { type: 'identify', messageId: 'm-2', userId: 'u-1', traits: { tier: 'vip' }, context: { traits: { tier: 'gold', city: 'Madrid' } } },
            { type: 'group', messageId: 'm-3', userId: 'u-1', groupId: 'g-1', traits: { plan: 'pro' }, context: { traits: { tier: 'gold' } } },
            track({ messageId: 'm-4', context: { traits: { tier: 'gold' } } }),
          ],
        },
        options(),
      ),
    );
    expect(rudder?.traits).toEqual({ firstName: 'Luis', tier: 'gold' });
    expect(both?.traits).toEqual({ tier: 'vip', city: 'Madrid' });
    // Group traits describe the group, and a track carries no traits: context.traits stays context.
    expect(group?.traits).toEqual({ plan: 'pro' });
    expect(trackEvent?.traits).toBeUndefined();
    expect(trackEvent?.context).toEqual({ traits: { tier: 'gold' } });
  });

  it('merges the batch context under each message context', () => {
    const [event] = accepted(
      planIngest({ context: { locale: 'es-ES', ip: '1.1.1.1' }, batch: [track({ context: { ip: '2.2.2.2' } })] }, options()),
    );
    expect(event?.context).toEqual({ locale: 'es-ES', ip: '2.2.2.2' });
  });

  it('takes the type from a single-message route and refuses a contradicting one', () => {
    const single = options({ route: 'identify' });
    const [event] = accepted(planIngest({ userId: 'u-1', traits: { tier: 'gold' }, writeKey: 'ignored' }, single));
    expect(event).toMatchObject({ type: 'identify', traits: { tier: 'gold' } });
    const plan = planIngest({ type: 'track', userId: 'u-1', event: 'x' }, single);
    expect(plan.ok && plan.rejections[0]?.message).toBe('type: must be "identify" on /v1/identify (or absent)');
  });
});

describe('planIngest: limits and hostile input', () => {
  it.each([
    ['messageId over 100 chars', { messageId: 'm'.repeat(101) }, 'batch[0].messageId: must be at most 100 characters'],
    ['userId over 256 chars', { userId: 'u'.repeat(257) }, 'batch[0].userId: must be at most 256 characters'],
    ['event over 200 chars', { event: 'e'.repeat(201) }, 'batch[0].event: must be at most 200 characters'],
    ['no user or anonymous id', { userId: undefined }, 'batch[0].userId: userId or anonymousId is required'],
    ['track without event', { event: '' }, 'batch[0].event: is required for track'],
    ['control character in userId', { userId: 'u\u0000' }, 'batch[0].userId: must not contain control characters'],
    ['a userId of only spaces', { userId: '   ' }, 'batch[0].userId: must not be blank (only whitespace)'],
    ['an anonymousId of only whitespace beside a userId', { anonymousId: '\u00a0 \u3000' }, 'batch[0].anonymousId: must not be blank (only whitespace)'],
    ['control character in event', { event: 'Viewed\n' }, 'batch[0].event: must not contain control characters'],
    ['DEL in messageId', { messageId: 'm\u007f' }, 'batch[0].messageId: must not contain control characters'],
    ['a C1 control character (NEL) in userId', { userId: 'u-42\u0085' }, 'batch[0].userId: must not contain control characters'],
    ['a C1 control character (CSI) in event', { event: 'Viewed\u009b31m' }, 'batch[0].event: must not contain control characters'],
    ['a right-to-left override in userId', { userId: 'u-\u202e24' }, `batch[0].userId: ${NO_INVISIBLE_CHARACTERS}`],
    ['a zero-width space in anonymousId beside a userId', { anonymousId: 'a-9\u200b' }, `batch[0].anonymousId: ${NO_INVISIBLE_CHARACTERS}`],
    ['a bidirectional isolate in userId', { userId: '\u2067u-42' }, `batch[0].userId: ${NO_INVISIBLE_CHARACTERS}`],
    ['a line separator in userId', { userId: 'u\u2028-42' }, `batch[0].userId: ${NO_INVISIBLE_CHARACTERS}`],
    ['properties not an object', { properties: [1] }, 'batch[0].properties: must be a JSON object'],
    ['not an ISO timestamp', { timestamp: '23/11/2026' }, 'batch[0].timestamp: must be an ISO-8601 date-time such as 2024-05-01T10:20:30.000Z'],
    ['an impossible date', { timestamp: '2026-02-30T00:00:00Z' }, 'batch[0].timestamp: must be an ISO-8601 date-time such as 2024-05-01T10:20:30.000Z'],
    ['userId of the wrong type', { userId: { id: 1 } }, 'batch[0].userId: must be a string'],
    ['an unknown type', { type: 'purchase' }, 'batch[0].type: must be one of track, identify, page, screen, alias, group'],
  ])('refuses %s', (_what, change, message) => {
    expect(rejectionOf(track(change))).toEqual([message]);
  });

  it('refuses a Consent Updated it could not apply (it was accepted and ignored), under any spelling of its name', () => {
    const consent = (event: string, properties: Record<string, unknown>) => track({ event, properties });
    const channels = 'one of web, app, push, email, sms, call_center';
    expect(rejectionOf(consent('Consent Updated', { channel: 'mail', granted: false }))).toEqual([
      `batch[0].properties.channel: a Consent Updated event names its channel: ${channels}`,
    ]);
    expect(rejectionOf(consent('consent_updated', { channel: 'email', granted: 'yes' }))).toEqual([
      'batch[0].properties.granted: a Consent Updated event says whether consent is granted: true or false',
    ]);
    // The message's first problem names it (as for every message).
    expect(rejectionOf(consent('CONSENT UPDATED', {}))).toEqual([`batch[0].properties.channel: a Consent Updated event names its channel: ${channels}`]);
    expect(rejectionOf(track({ event: 'Consent Updated' }))).toEqual([`batch[0].properties.channel: a Consent Updated event names its channel: ${channels}`]);
    for (const granted of [true, false, 'true', 'false']) expect(rejectionOf(consent('Consent Updated', { channel: 'sms', granted }))).toEqual([]);
    // Another event's properties are not read so.
    expect(rejectionOf(consent('Consent Viewed', { channel: 'mail' }))).toEqual([]);
  });

  it('refuses a blank previousId or groupId, and still takes an empty id as absent', () => {
    expect(rejectionOf({ type: 'alias', userId: 'u-1', previousId: ' ' })).toEqual(['batch[0].previousId: must not be blank (only whitespace)']);
    expect(rejectionOf({ type: 'group', userId: 'u-1', groupId: '  ' })).toEqual(['batch[0].groupId: must not be blank (only whitespace)']);
    expect(rejectionOf(track({ userId: '', anonymousId: 'a-1' }))).toEqual([]);
  });

  it('requires previousId and userId for alias, groupId for group', () => {
    expect(rejectionOf({ type: 'alias', anonymousId: 'a-1' })).toEqual(['batch[0].previousId: is required for alias']);
    expect(rejectionOf({ type: 'alias', userId: 'u-1', previousId: 'a-1' })).toEqual([]);
    expect(rejectionOf({ type: 'group', userId: 'u-1' })).toEqual(['batch[0].groupId: is required for group']);
  });

  it('allows 10 levels of nesting below the message and refuses 11, even 100,000 deep', () => {
    // properties is level 1, so it may hold 10 nested objects and not 11.
    expect(rejectionOf(track({ properties: nested(10) }))).toEqual([]);
    expect(rejectionOf(track({ properties: nested(11) }))[0]).toMatch(/^batch\[0\]\.properties(\.a){10}: nesting deeper than 10 levels$/);
    expect(inspectStructure(nested(100_000))?.message).toBe('nesting deeper than 10 levels');
    expect(rejectionOf(track({ properties: nested(100_000) }))).toHaveLength(1);
  });

  it.each(['__proto__', 'constructor', 'prototype'])('refuses a %s key anywhere in the message or envelope', (key) => {
    const deep = JSON.parse(`{"type":"track","userId":"u","event":"e","properties":{"items":[{"${key}":{"isAdmin":true}}]}}`);
    expect(rejectionOf(deep)).toEqual([`batch[0].properties.items[0].${key}: forbidden key "${key}"`]);
    const top = JSON.parse(`{"type":"track","userId":"u","event":"e","${key}":{}}`);
    expect(rejectionOf(top)).toHaveLength(1);
    const envelope = planIngest(JSON.parse(`{"batch":[],"context":{"${key}":{"polluted":1}}}`), options());
    expect(envelope).toEqual({ ok: false, issues: [{ path: ['context', key], message: `forbidden key "${key}"` }] });
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('refuses values the store cannot hold: empty keys, lone surrogates, unsafe numbers', () => {
    expect(rejectionOf(track({ properties: { '': 1 } }))).toEqual(['batch[0].properties: empty keys are not allowed']);
    expect(rejectionOf(track({ properties: { a: 'x\ud800' } }))).toEqual(['batch[0].properties.a: must be valid Unicode (lone surrogate)']);
    expect(rejectionOf(track({ properties: { a: 1e300 } }))[0]).toMatch(/^batch\[0\]\.properties\.a: number out of the supported range/);
    expect(rejectionOf(track({ properties: { a: 1e-200 } }))).toHaveLength(1);
    expect(rejectionOf(track({ properties: { a: 'control \u0001 characters are data here', n: 0.5, big: 2 ** 53 - 1 } }))).toEqual([]);
  });

  it('refuses a message over 32 KB as payload_too_large and accepts one just under', () => {
    const sized = (bytes: number) => {
      const base = track({ properties: { blob: '' } });
      const overhead = Buffer.byteLength(JSON.stringify(base));
      return track({ properties: { blob: 'x'.repeat(bytes - overhead) } });
    };
    expect(rejectionOf(sized(32 * 1024))).toEqual([]);
    const plan = planIngest({ batch: [sized(32 * 1024 + 1)] }, options());
    expect(plan.ok && plan.rejections).toEqual([
      { index: 0, messageId: 'm-1', code: 'payload_too_large', message: 'batch[0]: message is 32769 bytes; at most 32768 bytes allowed' },
    ]);
  });

  it('refuses an unusable envelope as a whole', () => {
    const issues = (body: unknown) => {
      const plan = planIngest(body, options());
      return plan.ok ? [] : plan.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ batch: Array.from({ length: 501 }, () => track()) })).toEqual(['batch: too many messages: at most 500 per request']);
    expect(issues({ batch: Array.from({ length: 500 }, () => track()) })).toEqual([]);
    expect(issues({})).toEqual(['batch: is required: an array of messages']);
    expect(issues([track()])).toEqual([': the body must be a JSON object with a "batch" array']);
    expect(issues({ batch: [], sentAt: 'yesterday' })).toEqual(['sentAt: must be an ISO-8601 date-time such as 2024-05-01T10:20:30.000Z']);
    expect(issues({ batch: [], context: { blob: 'x'.repeat(33_000) } })[0]).toMatch(/^context: is \d+ bytes/);
  });

  it('keeps valid messages and reports each refused one with its index and messageId', () => {
    const plan = planIngest({ batch: [track(), track({ messageId: 'bad', userId: 7.5, event: '' }), 'nope', track({ messageId: 'm-3' })] }, options());
    if (!plan.ok) throw new Error('envelope refused');
    expect(plan.events.map((e) => e.messageId)).toEqual(['m-1', 'm-3']);
    expect(plan.events[1]?.userId).toBe('u-1');
    expect(plan.rejections).toEqual([
      { index: 1, messageId: 'bad', code: 'validation_failed', message: 'batch[1].event: is required for track' },
      { index: 2, code: 'validation_failed', message: 'batch[2]: a message must be a JSON object' },
    ]);
  });
});

describe('parseIsoDateTime', () => {
  it('agrees with Date.parse on canonical ISO strings and refuses non-dates', () => {
    fc.assert(
      fc.property(fc.date({ min: new Date(0), max: new Date('9999-12-31T23:59:59.999Z'), noInvalidDate: true }), (d) => {
        expect(parseIsoDateTime(d.toISOString())).toBe(d.getTime());
      }),
    );
    for (const bad of ['2026-13-01T00:00:00Z', '2026-11-23', 'now', '2026-11-23T24:00:00Z', '2026-11-23T10:00:00+25:00', '']) {
      expect(parseIsoDateTime(bad)).toBeUndefined();
    }
  });
});

// Valid messages of every type, some with one or two fields replaced by
// arbitrary JSON, plus wholly arbitrary JSON: every outcome is common.
const isoArb = fc
  .date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date(RECEIVED + 2 * 3_600_000), noInvalidDate: true })
  .map((d) => d.toISOString());
// JSON the store can hold (fc.jsonValue also yields empty keys and unsafe numbers, refused by design).
const { json: storableJson } = fc.letrec((tie) => ({
  json: fc.oneof(
    { depthSize: 'small' },
    fc.constant(null),
    fc.boolean(),
    fc.integer(),
    fc.integer().map((n) => n / 100),
    fc.string({ maxLength: 20 }),
    fc.array(tie('json'), { maxLength: 4 }),
    fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), tie('json'), { maxKeys: 4 }),
  ),
}));
const storableObject = fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), storableJson, { maxKeys: 5 });
const validMessageArb = fc.record(
  {
    type: fc.constantFrom('track', 'identify', 'page', 'screen', 'alias', 'group'),
    messageId: fc.string({ minLength: 1, maxLength: 100 }),
    userId: fc.string({ minLength: 1, maxLength: 256 }),
    anonymousId: fc.string({ maxLength: 20 }),
    previousId: fc.string({ minLength: 1, maxLength: 20 }),
    groupId: fc.string({ minLength: 1, maxLength: 20 }),
    event: fc.string({ minLength: 1, maxLength: 200 }),
    name: fc.string({ maxLength: 30 }),
    properties: storableObject,
    traits: storableObject,
    context: storableObject,
    timestamp: isoArb,
    sentAt: fc.integer({ min: -5_000, max: 60_000 }),
  },
  { requiredKeys: ['type', 'userId', 'event', 'previousId', 'groupId'] },
).map(({ sentAt, ...message }) =>
  // A client sends shortly after the event, whatever its clock says.
  sentAt !== undefined && message.timestamp
    ? { ...message, sentAt: new Date(Date.parse(message.timestamp) + sentAt).toISOString() }
    : message,
);
const FIELDS = ['type', 'messageId', 'userId', 'anonymousId', 'event', 'properties', 'traits', 'context', 'timestamp', 'sentAt'];
const messageArb = fc.oneof(
  { weight: 4, arbitrary: validMessageArb },
  {
    weight: 4,
    arbitrary: fc
      .tuple(validMessageArb, fc.dictionary(fc.constantFrom(...FIELDS), fc.jsonValue({ maxDepth: 3 }), { minKeys: 1, maxKeys: 2 }))
      .map(([message, broken]) => ({ ...message, ...broken })),
  },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 4 }) },
);
const bodyArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ batch: fc.array(messageArb, { maxLength: 20 }), context: storableObject, sentAt: isoArb }, { requiredKeys: ['batch'] }) },
  { weight: 2, arbitrary: messageArb },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 5 }) },
);
const routeArb = fc.constantFrom('batch', 'track', 'identify', 'page', 'screen', 'alias', 'group' as const);

describe('planIngest: properties', () => {
  it('never throws, accounts for every message exactly once, and only produces valid StoredEvents', () => {
    let seen = { events: 0, rejections: 0, refused: 0 };
    fc.assert(
      fc.property(bodyArb, routeArb, (body, route) => {
        // Through JSON, as the HTTP layer delivers it (drops undefined, turns -0 into 0).
        const wire = JSON.parse(JSON.stringify(body) ?? 'null');
        const plan = planIngest(wire, options({ route }));
        const violations: string[] = [];
        if (!plan.ok) {
          seen.refused += 1;
          if (plan.issues.length === 0) violations.push('refused without an issue');
        } else {
          seen = { ...seen, events: seen.events + plan.events.length, rejections: seen.rejections + plan.rejections.length };
          if (plan.events.length + plan.rejections.length !== plan.messageCount) violations.push('messages unaccounted for');
          if (new Set(plan.rejections.map((r) => r.index)).size !== plan.rejections.length) violations.push('a message rejected twice');
          if (plan.rejections.some((r) => r.index >= plan.messageCount)) violations.push('rejection index out of range');
          if (plan.issues.length < plan.rejections.length) violations.push('a rejection without its issue');
          for (const event of plan.events) {
            if (!storedEventSchema.safeParse(event).success) violations.push(`invalid StoredEvent ${event.pk}`);
            if (Date.parse(event.timestamp) > RECEIVED + 3_600_000) violations.push('future timestamp accepted');
            if (inspectStructure(event)) violations.push('hostile structure accepted');
          }
        }
        expect(violations).toEqual([]);
      }),
      { numRuns: 400 },
    );
    // The generator reaches every outcome, so the checks above were exercised.
    expect(Math.min(seen.events, seen.rejections, seen.refused)).toBeGreaterThan(20);
  });
});

describe('ingest schemas', () => {
  it('know the same message types as the stored event', async () => {
    const { MESSAGE_TYPES: stored } = await import('#domain/stored-event.ts');
    const { MESSAGE_TYPES: ingest } = await import('#domain/ingest/schema.ts');
    expect([...ingest]).toEqual([...stored]);
  });
});
