/**
 * The two AWS APIs the evaluation uses besides DynamoDB, through aws-lite's
 * plain signed requests (no plugin, no SDK client in the bundle): S3
 * GetObject / PutObject / ListObjectsV2 for the evaluation functions and
 * the decision counter, Step Functions
 * StartExecution / DescribeExecution for `npm run evaluate --deployed`.
 * Credentials and region from the environment (Lambda's, or the
 * operator's). Not reachable from this repository's tests (no AWS account):
 * the CDK assertions pin what they may call.
 */
import { gunzipSync } from 'node:zlib';
import awsLite from '@aws-lite/client';
import type { EvaluationObjects } from './evaluation-steps.ts';

type AwsLite = Awaited<ReturnType<typeof awsLite>>;

let client: Promise<AwsLite> | undefined;

const aws = (): Promise<AwsLite> =>
  (client ??= awsLite({ autoloadPlugins: false, awsConfigFile: false, keepAlive: true, ...(process.env.AWS_REGION ? { region: process.env.AWS_REGION } : {}) }));

/** The S3 path of an object: `/<bucket>/<key>`, the key's segments URI-encoded. */
const objectPath = (bucket: string, key: string): string => `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;

/** An S3 object's bytes. */
export async function getObject(bucket: string, key: string): Promise<Buffer> {
  const response = await (await aws())({ service: 's3', path: objectPath(bucket, key), responseContentType: 'application/octet-stream' } as Parameters<AwsLite>[0]);
  const payload = response.payload as unknown;
  return Buffer.isBuffer(payload) ? payload : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload));
}

/** A decision log object's text: Firehose writes GZIP (magic bytes 1f 8b); a plain object is read as it is. */
export async function getObjectText(bucket: string, key: string): Promise<string> {
  return textOfObject(await getObject(bucket, key));
}

/** An object's bytes as text: GZIP (magic bytes 1f 8b) unzipped, anything else read as it is. */
export const textOfObject = (bytes: Buffer): string => (bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes).toString('utf8');

/** Writes bytes to S3 (`contentType`, default application/octet-stream). */
export async function putObject(bucket: string, key: string, body: Buffer, contentType = 'application/octet-stream'): Promise<void> {
  await (await aws())({ service: 's3', method: 'PUT', path: objectPath(bucket, key), headers: { 'content-type': contentType }, payload: body });
}

/** The keys of the objects under `prefix` (ListObjectsV2, every page), in S3's order: ascending UTF-8 bytes. */
export async function listObjectKeys(bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const query: Record<string, string> = { 'list-type': '2', prefix, ...(token !== undefined ? { 'continuation-token': token } : {}) };
    const response = await (await aws())({ service: 's3', path: `/${bucket}/`, query } as Parameters<AwsLite>[0]);
    const page = response.payload as { Contents?: { Key: unknown } | { Key: unknown }[]; IsTruncated?: unknown; NextContinuationToken?: unknown };
    const contents = page.Contents === undefined ? [] : Array.isArray(page.Contents) ? page.Contents : [page.Contents];
    for (const object of contents) keys.push(String(object.Key));
    token = String(page.IsTruncated) === 'true' && typeof page.NextContinuationToken === 'string' ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

/** One Step Functions action (AWS JSON 1.0). */
async function states(action: string, payload: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await (await aws())({
    service: 'states',
    method: 'POST',
    path: '/',
    awsjson: false,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': `AWSStepFunctions.${action}` },
    payload: JSON.stringify(payload),
  });
  return response.payload as Record<string, unknown>;
}

/** Starts an execution of a state machine with `input` (JSON); its ARN. */
export async function startExecution(stateMachineArn: string, input: unknown): Promise<string> {
  const answer = await states('StartExecution', { stateMachineArn, input: JSON.stringify(input) });
  return String(answer.executionArn);
}

/** An execution's status and, once it ended, its output (JSON text) or its error and cause. */
export async function describeExecution(executionArn: string): Promise<{ status: string; output?: string; error?: string; cause?: string }> {
  const answer = await states('DescribeExecution', { executionArn });
  return {
    status: String(answer.status),
    ...(typeof answer.output === 'string' ? { output: answer.output } : {}),
    ...(typeof answer.error === 'string' ? { error: answer.error } : {}),
    ...(typeof answer.cause === 'string' ? { cause: answer.cause } : {}),
  };
}

/** The evaluation steps' objects in S3 (shared/evaluation-steps.ts `EvaluationObjects`). */
export const s3Objects: EvaluationObjects = { get: getObject, put: putObject, list: listObjectKeys };
