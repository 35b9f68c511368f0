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
