/**
 * The decision counter: the decisions of each object Firehose writes to the
 * decision log bucket, added to the actions report's `decisions` (API.md §5)
 * exactly once per object (shared/store/statistics.ts
 * `countDecisionLogChunk`, under the object's id `s3://<bucket>/<key>`).
 *
 * Fed by an SQS queue that an EventBridge rule fills with the bucket's
 * "Object Created" events for `decisions/` (infra/constructs/decision-counts.ts),
 * in batches: each message is handled on its own, and the messages that
 * failed are returned as `batchItemFailures` (the rest are deleted), so a
 * failed object is delivered again, up to the queue's receive limit, then
 * kept in its failure queue. An object delivered twice (EventBridge and SQS
 * are at least once) is counted once. A message that is not an S3 "Object
 * Created" event is a failure (kept, never silently dropped).
 */
import '#shared/source-maps-register.ts';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import * as z from 'zod/mini';
import { getObjectText } from '#shared/aws-requests.ts';
import { functionLogger } from '#shared/observability.ts';
import { countDecisionLogChunk } from '#store/statistics.ts';

const logger = functionLogger('decisionCounter');

/** An S3 "Object Created" event as EventBridge delivers it (the fields read here; its key is read as given, then URL-decoded: readObjectOf). */
const objectCreated = z.object({
  source: z.literal('aws.s3'),
  'detail-type': z.literal('Object Created'),
  detail: z.object({ bucket: z.object({ name: z.string().check(z.minLength(1)) }), object: z.object({ key: z.string().check(z.minLength(1)) }) }),
});

/** Reads an object's text (deployed: S3 GetObject, gunzipped). */
export type ReadObject = (bucket: string, key: string) => Promise<string>;

/**
 * The object an event names, and the key it was read under: the key as
 * given, else, when that is not found and the key reads differently
 * URL-decoded (S3's event notifications encode keys, `dt=` as `dt%3D`), the
 * decoded key. Either way the object is counted under its stored key, once.
 */
async function readObjectOf(read: ReadObject, bucket: string, key: string): Promise<{ key: string; text: string }> {
  try {
    return { key, text: await read(bucket, key) };
  } catch (error) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(key.replace(/\+/g, ' '));
    } catch {
      throw error;
    }
    if (decoded === key) throw error;
    return { key: decoded, text: await read(bucket, decoded) };
  }
}

/** Count the object one message names; throws when the message is not an "Object Created" event or the object could not be counted. */
async function countMessage(body: string, read: ReadObject): Promise<void> {
  const parsed = objectCreated.safeParse(JSON.parse(body));
  if (!parsed.success) throw new Error(`not an S3 Object Created event: ${z.prettifyError(parsed.error)}`);
  const { bucket } = parsed.data.detail;
  const object = await readObjectOf(read, bucket.name, parsed.data.detail.object.key);
  const count = await countDecisionLogChunk(`s3://${bucket.name}/${object.key}`, object.text);
  logger.info('decision log object counted', { key: object.key, ...count });
  if (count.uncounted > 0 || count.malformed > 0 || count.duplicates > 0) {
    logger.warn('decision log object lines not counted', { key: object.key, olderRecords: count.uncounted, malformed: count.malformed, duplicates: count.duplicates });
  }
}

/** The counter of a batch, reading objects with `read`: each message on its own; those that failed are returned for SQS to deliver again. */
export function decisionCounter(read: ReadObject): (event: SQSEvent) => Promise<SQSBatchResponse> {
  return async (event) => {
    const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
    for (const message of event.Records) {
      try {
        await countMessage(message.body, read);
      } catch (error) {
        logger.error('decision log message not counted (delivered again)', { messageId: message.messageId, error });
        batchItemFailures.push({ itemIdentifier: message.messageId });
      }
    }
    return { batchItemFailures };
  };
}

export const handler = middy<SQSEvent, SQSBatchResponse>().use(injectLambdaContext(logger)).handler(decisionCounter(getObjectText));
