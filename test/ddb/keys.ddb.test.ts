/**
 * The write-key store on DynamoDB Local: the two items of a key (the lookup
 * by hashed secret and the operator's list) always agree, revoking is
 * idempotent (the first revocation's time stays), and the secret is never
 * stored.
 */
import fc from 'fast-check';
import { QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { assertLocalEndpoint } from '#local/dynamodb.ts';

vi.stubEnv('POWERTOOLS_LOG_LEVEL', 'SILENT');
const keys = await import('#store/write-keys.ts');
const { documentClient } = await import('../support/sdk-clients.ts');
const { DynamoClient } = await import('#store/client.ts');
const { StoreFault } = await import('#store/faults.ts');
const { config } = await import('#shared/config.ts');

beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});

describe('write keys in the Control table', () => {
  it('a created key is found by its secret, listed without it, and its secret is stored nowhere', async () => {
    const { secret, key } = await keys.createWriteKey({ name: 'website' }, new Date('2026-11-23T10:00:00Z'));
    expect(await keys.findWriteKey(secret)).toEqual({ keyId: key.keyId, name: 'website', kind: 'public', createdAt: '2026-11-23T10:00:00.000Z' });
    expect((await keys.listWriteKeys()).find((k) => k.keyId === key.keyId)).toEqual(key);
    const all = await documentClient.send(new ScanCommand({ TableName: config.CONTROL_TABLE, ConsistentRead: true }));
    expect(JSON.stringify(all.Items)).not.toContain(secret);
    expect(JSON.stringify(all.Items)).not.toContain(secret.slice(3, 20));
  });

  it('storing a known secret again (the local stack at each start) keeps one key', async () => {
    const secret = keys.generateWriteKey();
    const record = { keyId: `local-${Date.now().toString(36)}`, name: 'local stack key', kind: 'public' as const, createdAt: new Date().toISOString() };
    await keys.putWriteKey(secret, record);
    await keys.putWriteKey(secret, record);
    const listed = await documentClient.send(
      new QueryCommand({
        TableName: config.CONTROL_TABLE,
        KeyConditionExpression: 'pk = :pk AND sk = :sk',
        ExpressionAttributeValues: { ':pk': 'KEYS', ':sk': record.keyId },
        ConsistentRead: true,
      }),
    );
    expect(listed.Items).toHaveLength(1);
    expect(await keys.findWriteKey(secret)).toEqual(record);
  });

  it('any sequence of creations and revocations: both items agree, and a key keeps its first revocation time', async () => {
    const operation = fc.oneof(
      fc.record({ op: fc.constant('create' as const), name: fc.string({ minLength: 1, maxLength: 20 }) }),
      fc.record({ op: fc.constant('revoke' as const), which: fc.nat({ max: 5 }) }),
      fc.record({ op: fc.constant('revoke-unknown' as const) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(operation, { minLength: 1, maxLength: 12 }), async (operations) => {
        let clock = Date.parse('2026-11-23T00:00:00Z');
        const tick = () => new Date((clock += 1_000));
        const created: { secret: string; keyId: string; name: string; createdAt: string }[] = [];
        const firstRevocation = new Map<string, string>();
        const revocations: { got: string | undefined; first: string | undefined }[] = [];
        const unknown: unknown[] = [];
        for (const o of operations) {
          if (o.op === 'create') {
            const { secret, key } = await keys.createWriteKey({ name: o.name }, tick());
            created.push({ secret, keyId: key.keyId, name: o.name, createdAt: key.createdAt });
          } else if (o.op === 'revoke') {
            const target = created[o.which % Math.max(1, created.length)];
            if (!target) continue;
            const at = tick();
            const revoked = await keys.revokeWriteKey(target.keyId, at);
            if (!firstRevocation.has(target.keyId)) firstRevocation.set(target.keyId, at.toISOString());
            revocations.push({ got: revoked?.revokedAt, first: firstRevocation.get(target.keyId) });
          } else {
            unknown.push(await keys.revokeWriteKey(`key_${'0'.repeat(15)}${created.length}`, tick()));
          }
        }
        expect(revocations.map((r) => r.got)).toEqual(revocations.map((r) => r.first));
        expect(unknown.every((r) => r === undefined)).toBe(true);
        const listed = new Map((await keys.listWriteKeys()).map((k) => [k.keyId, k]));
        for (const k of created) {
          const revokedAt = firstRevocation.get(k.keyId);
          const expected = { keyId: k.keyId, name: k.name, kind: 'public', createdAt: k.createdAt, ...(revokedAt ? { revokedAt } : {}) };
          expect(await keys.findWriteKey(k.secret)).toEqual(expected);
          expect(listed.get(k.keyId)).toEqual({ ...expected, hashPrefix: keys.hashWriteKey(k.secret).slice(0, 8) });
        }
      }),
      { numRuns: 15 },
    );
  });

  it('two revocations racing: one time wins and both callers see it', async () => {
    const { key } = await keys.createWriteKey({ name: 'raced' });
    const [a, b] = await Promise.all([
      keys.revokeWriteKey(key.keyId, new Date('2026-11-23T12:00:00Z')),
      keys.revokeWriteKey(key.keyId, new Date('2026-11-23T12:00:01Z')),
    ]);
    expect(a?.revokedAt).toBeDefined();
    expect(a?.revokedAt).toBe(b?.revokedAt);
    expect((await keys.getWriteKey(key.keyId))?.revokedAt).toBe(a?.revokedAt);
  });

  it('a new secret and id are drawn when the ones drawn exist already (a collision), three times at most', async () => {
    // A collision of 24 random bytes cannot be produced on purpose: the first writes are refused as DynamoDB refuses
    // a conditional put on an existing item, the others go to DynamoDB Local.
    const cancelled = () =>
      new StoreFault('TransactionCanceledException', 'Transaction cancelled', 'transaction-cancelled', { reasons: [{ Code: 'ConditionalCheckFailed' }] });
    const refusing = (refusals: number) => {
      const sent: unknown[] = [];
      const client = new DynamoClient();
      const send = client.send.bind(client);
      client.send = ((operation, input, options) => {
        sent.push(input);
        return sent.length <= refusals ? Promise.reject(cancelled()) : send(operation, input, options);
      }) as typeof client.send;
      return { client, sent };
    };
    const once = refusing(1);
    const { secret, key } = await keys.createWriteKey({ name: 'after a collision' }, new Date(), { client: once.client });
    expect(once.sent).toHaveLength(2);
    expect(await keys.findWriteKey(secret)).toMatchObject({ keyId: key.keyId });
    const always = refusing(10);
    await expect(keys.createWriteKey({ name: 'never' }, new Date(), { client: always.client })).rejects.toMatchObject({ kind: 'transaction-cancelled' });
    expect(always.sent).toHaveLength(3);
  });

  it('a throttled transaction is the store fault it is, not a collision, a revocation race or a revoked key: it reaches the caller as is', async () => {
    const throttled = () =>
      new StoreFault('TransactionCanceledException', 'Transaction cancelled', 'transaction-cancelled', { reasons: [{ Code: 'ThrottlingError' }, { Code: 'None' }] });
    const throttling = () => {
      const sent: string[] = [];
      const client = new DynamoClient();
      const send = client.send.bind(client);
      client.send = ((operation, input, options) => {
        sent.push(operation);
        return operation === 'TransactWriteItems' ? Promise.reject(throttled()) : send(operation, input, options);
      }) as typeof client.send;
      return { client, sent };
    };
    const create = throttling();
    await expect(keys.createWriteKey({ name: 'throttled' }, new Date(), { client: create.client })).rejects.toMatchObject({ kind: 'transaction-cancelled' });
    expect(create.sent.filter((o) => o === 'TransactWriteItems')).toHaveLength(1);

    const { key } = await keys.createWriteKey({ name: 'to change while throttled' });
    const secret = await keys.setUserTokenSecret(key.keyId, 'u'.repeat(40), new Date(), { client: throttling().client }).catch((e: unknown) => e);
    expect(secret).not.toBeInstanceOf(keys.KeyStateError);
    expect(secret).toMatchObject({ kind: 'transaction-cancelled' });
    await expect(keys.revokeWriteKey(key.keyId, new Date(), { client: throttling().client })).rejects.toMatchObject({ kind: 'transaction-cancelled' });
    expect((await keys.getWriteKey(key.keyId))?.revokedAt).toBeUndefined();
  });

  it('a key has a kind (public by default); a key stored without one reads as public', async () => {
    const server = await keys.createWriteKey({ name: 'back-end', kind: 'server' });
    expect(server.secret).toMatch(/^sk_/);
    expect(server.key.kind).toBe('server');
    expect(await keys.findWriteKey(server.secret)).toMatchObject({ keyId: server.key.keyId, kind: 'server' });
    expect((await keys.listWriteKeys()).find((k) => k.keyId === server.key.keyId)?.kind).toBe('server');

    // An item as stored before kinds existed.
    const legacy = keys.generateWriteKey();
    const { PutCommand } = await import('@aws-sdk/lib-dynamodb');
    const fields = { keyId: `legacy-${Date.now().toString(36)}`, name: 'legacy', createdAt: new Date().toISOString() };
    await documentClient.send(new PutCommand({ TableName: config.CONTROL_TABLE, Item: { ...keys.writeKeyItemKey(legacy), ...fields } }));
    expect(await keys.findWriteKey(legacy)).toMatchObject({ keyId: fields.keyId, kind: 'public' });
  });

  it('the user-token secret is on the lookup item only: never listed, set and rotated by key id, refused for server and revoked keys', async () => {
    const first = `uts_first_${'a'.repeat(32)}`;
    const second = `uts_second_${'b'.repeat(32)}`;
    const { secret, key } = await keys.createWriteKey({ name: 'site', userTokenSecret: first }, new Date('2026-11-23T10:00:00Z'));
    expect(key.userTokenSecretSetAt).toBe('2026-11-23T10:00:00.000Z');
    expect(await keys.findWriteKey(secret)).toMatchObject({ kind: 'public', userTokenSecret: first });

    const rotated = await keys.setUserTokenSecret(key.keyId, second, new Date('2026-11-24T10:00:00Z'));
    expect(rotated).toMatchObject({ keyId: key.keyId, userTokenSecretSetAt: '2026-11-24T10:00:00.000Z' });
    expect((await keys.findWriteKey(secret))?.userTokenSecret).toBe(second);

    const listed = await keys.listWriteKeys();
    expect(listed.find((k) => k.keyId === key.keyId)).toMatchObject({ userTokenSecretSetAt: '2026-11-24T10:00:00.000Z' });
    expect(JSON.stringify(listed)).not.toContain(second);
    expect(JSON.stringify(listed)).not.toContain(first);
    const listItems = await documentClient.send(
      new QueryCommand({ TableName: config.CONTROL_TABLE, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'KEYS' } }),
    );
    expect(JSON.stringify(listItems.Items)).not.toContain(second);

    expect(await keys.setUserTokenSecret('key_0000000000000000', second)).toBeUndefined();
    const server = await keys.createWriteKey({ name: 'server', kind: 'server' });
    await expect(keys.setUserTokenSecret(server.key.keyId, second)).rejects.toBeInstanceOf(keys.KeyStateError);
    await keys.revokeWriteKey(key.keyId);
    await expect(keys.setUserTokenSecret(key.keyId, first)).rejects.toBeInstanceOf(keys.KeyStateError);
    expect((await keys.findWriteKey(secret))?.userTokenSecret).toBe(second);
  });
});
