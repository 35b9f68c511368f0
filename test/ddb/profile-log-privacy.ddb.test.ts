/**
 * The profile function's log lines never name a customer by their id: on
 * its rare failure paths (a profile DynamoDB refuses to write, a user key
 * found a tombstone) the lines carry the customer's pseudonym
 * (decision-log.ts `customerPseudonym`), against DynamoDB Local, with the
 * Powertools logger's own output captured.
 */
import awsLite from '@aws-lite/client';
import type { Context } from 'aws-lambda';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { customerPseudonym, pseudonymKey } from '#domain/decide/decision-log.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { sequenceNumber, storedEvent, streamEvent, streamRecord } from '../support/stream.ts';
import { documentClient } from '../support/sdk-clients.ts';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'WARN';
const { handler } = await import('#functions/profile/handler.ts');
/** The pseudonym the handler names a profile by in its logs (the decision secret's, as decide's records). */
const customerInLogs = (profileKey: string) => customerPseudonym(pseudonymKey(process.env.KAIROS_DECISION_KEY ?? ''), profileKey);
const { userProfileItem } = await import('#store/items.ts');
const { tombstoneToItem } = await import('#store/profiles.ts');
const { config } = await import('#shared/config.ts');

const context = { functionName: 'profile', awsRequestId: 'test', invokedFunctionArn: 'arn:aws:lambda:us-east-1:1:function:profile' } as Context;
let unique = 0;
const uid = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${++unique}`;

/** What the logger wrote (it writes warnings and errors to stderr, the rest to stdout). */
let lines: string[] = [];
beforeAll(() => {
  assertLocalEndpoint(process.env.DYNAMODB_ENDPOINT, 'This test');
});
beforeEach(() => {
  lines = [];
  const capture = (chunk: string | Uint8Array): boolean => {
    lines.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    return true;
  };
  vi.spyOn(process.stdout, 'write').mockImplementation(capture);
  vi.spyOn(process.stderr, 'write').mockImplementation(capture);
});
afterEach(() => {
  vi.restoreAllMocks();
  awsLite.testing.disable();
});

const logged = (): string => lines.join('');

describe('log lines name a customer by a pseudonym', () => {
  it('a profile DynamoDB refuses to write: the lines carry the pseudonym, not the user id', async () => {
    // A bounded profile always fits an item, so DynamoDB Local never refuses one: its answer is mocked (aws-lite's
    // testing mocks, as the store-fault tests do), the reads finding nothing.
    awsLite.testing.enable();
    awsLite.testing.mock('DynamoDB.BatchGetItem', { Responses: {}, UnprocessedKeys: {} });
    awsLite.testing.mock('DynamoDB.GetItem', {});
    const refused = { statusCode: 400, error: { __type: 'com.amazonaws.dynamodb.v20120810#ValidationException', message: 'Item size has exceeded the maximum allowed size' } };
    awsLite.testing.mock('DynamoDB.TransactWriteItems', refused);
    const userId = uid('refused-customer');
    const page = (n: number) => storedEvent({ type: 'page', userId, messageId: `p${n}`, timestamp: '2026-04-01T00:00:00Z' });
    const records = [1, 2].map((n) => streamRecord(page(n), { sequenceNumber: sequenceNumber(n) }));
    const response = await handler(streamEvent(records), context);
    awsLite.testing.disable();
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: sequenceNumber(1) }, { itemIdentifier: sequenceNumber(2) }]);
    const out = logged();
    expect(out).toContain('one at a time');
    expect(out).toContain('cannot be written');
    expect(out).toContain(customerInLogs(`u#${userId}`));
    expect(out).not.toContain(userId);
  });

  it('a user key found a tombstone: the failure line does not hold the user id', async () => {
    const userId = uid('tombstoned-customer');
    // Cannot happen through the stack (a user key is never a tombstone): written here, merged into itself, to reach the refusal.
    await documentClient.send(new PutCommand({ TableName: config.PROFILES_TABLE, Item: { ...tombstoneToItem('x', userId, 1, Date.now()), ...userProfileItem.key(userId) } }));
    const event = storedEvent({ type: 'track', userId, messageId: 't1', event: 'Viewed', timestamp: '2026-04-01T00:00:00Z' });
    const response = await handler(streamEvent([streamRecord(event, { sequenceNumber: sequenceNumber(1) })]), context);
    expect(response.batchItemFailures).toEqual([{ itemIdentifier: sequenceNumber(1) }]);
    const out = logged();
    expect(out).toContain('tombstone');
    expect(out).not.toContain(userId);
  });
});
