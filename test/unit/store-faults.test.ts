/**
 * The store's one fault classifier (shared/store/faults.ts `toStoreFault`)
 * on DynamoDB's answers: a read of an index still being built (added to a
 * table that holds items: the Profiles table's `byProfile` after an
 * upgrade) is `unavailable` (a 503 to retry), not `invalid`; any other
 * ValidationException stays `invalid`.
 */
import { describe, expect, it } from 'vitest';
import { isTransient, isInvalidRequest, toStoreFault } from '#store/faults.ts';

/** An error as aws-lite rejects with DynamoDB's answer. */
function answer(type: string, message: string, statusCode = 400): Error {
  return Object.assign(new Error(`@aws-lite/client: DynamoDB.Query: ${message}`), { statusCode, __type: `com.amazonaws.dynamodb.v20120810#${type}` });
}

describe('toStoreFault', () => {
  it('a read of a backfilling index is unavailable, to be retried', () => {
    const fault = toStoreFault(answer('ValidationException', 'Cannot read from backfilling global secondary index: byProfile'));
    expect(fault).toMatchObject({ name: 'ValidationException', kind: 'unavailable', status: 400 });
    expect(isTransient(fault)).toBe(true);
    expect(isInvalidRequest(fault)).toBe(false);
  });

  it('any other ValidationException is a refused request', () => {
    const fault = toStoreFault(answer('ValidationException', 'One or more parameter values were invalid: an AttributeValue may not contain an empty string'));
    expect(fault).toMatchObject({ kind: 'invalid' });
    expect(isInvalidRequest(fault)).toBe(true);
  });
});
