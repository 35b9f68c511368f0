/**
 * A stream record's image (DynamoDB JSON, as Lambda delivers NEW_IMAGE) as a
 * plain item, with the same unmarshaller the client uses for its answers
 * (@aws-sdk/util-dynamodb's, vendored inside aws-lite): numbers as JS numbers.
 * Throws on an attribute value it cannot read.
 */
import { unmarshall } from '@aws-lite/client/src/_vendor/aws.js';

export function itemFromImage(image: Record<string, unknown>): Record<string, unknown> {
  return unmarshall(image, { wrapNumbers: false });
}

/**
 * Whether a stream record is DynamoDB's own removal of an expired item (TTL):
 * the record's `userIdentity` is the service's (type `Service`, principal
 * `dynamodb.amazonaws.com`); a caller's DeleteItem carries none.
 * (Amazon DynamoDB Developer Guide, "DynamoDB Streams and Time to Live".)
 */
export function isExpiryRemoval(record: { readonly eventName?: string; readonly userIdentity?: { readonly type?: string; readonly principalId?: string } }): boolean {
  return record.eventName === 'REMOVE' && record.userIdentity?.type === 'Service' && record.userIdentity.principalId === 'dynamodb.amazonaws.com';
}
