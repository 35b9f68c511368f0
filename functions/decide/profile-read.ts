/**
 * The one read of a decision: the customer's profile (GetItem-equivalent
 * BatchGetItem of `u#userId` and `a#anonymousId`, joined in memory), under a
 * deadline. A slow or failing store must not turn into a slow or failed
 * decision: past the deadline, or on any store error, the caller decides in
 * degraded mode from the catalog's fallbacks.
 *
 * This client is decide's own: short connection/request timeouts and a
 * single retry, where the shared client is tuned for writes that must land.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { config } from '#shared/config.ts';
import { getProfileState, type ProfileLookup } from '#store/profiles.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import type { ProfileView } from '#domain/profile/view.ts';

function envMs(name: string, fallback: number, min: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`Invalid configuration: ${name} must be an integer from ${min} to ${max} (milliseconds)`);
  }
  return value;
}

/**
 * Whole budget of the profile read, retries included
 * (KAIROS_DECIDE_PROFILE_DEADLINE_MS). DynamoDB answers a GetItem in a few
 * ms; DynamoDB Local (a JVM, cold at first) gets more room.
 */
export const PROFILE_DEADLINE_MS = envMs('KAIROS_DECIDE_PROFILE_DEADLINE_MS', config.DYNAMODB_ENDPOINT ? 2_000 : 600, 20, 4_000);

export const decideDynamo = new DynamoDBClient({
  region: config.AWS_REGION,
  ...(config.DYNAMODB_ENDPOINT
    ? { endpoint: config.DYNAMODB_ENDPOINT, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
    : {}),
  maxAttempts: 2,
  requestHandler: {
    connectionTimeout: Math.min(250, PROFILE_DEADLINE_MS),
    requestTimeout: Math.max(10, Math.floor(PROFILE_DEADLINE_MS / 2)),
    // Abort the attempt (and let the one retry run) instead of only logging a warning.
    throwOnRequestTimeout: true,
  },
});

export const decideDocumentClient = DynamoDBDocumentClient.from(decideDynamo, {
  marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  unmarshallOptions: { wrapNumbers: false },
});

export type ProfileRead =
  | { readonly ok: true; readonly view: ProfileView | undefined }
  | { readonly ok: false; readonly error: unknown };

class DeadlineExceeded extends Error {
  override readonly name = 'TimeoutError';
}

/**
 * The customer's profile view at `now`, `view: undefined` for an unknown
 * customer, or `ok: false` when the store failed or missed the deadline.
 * Never throws.
 */
export async function readProfile(
  lookup: ProfileLookup,
  now: Date,
  deadlineMs: number = PROFILE_DEADLINE_MS,
  client: DynamoDBDocumentClient = decideDocumentClient,
): Promise<ProfileRead> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(`profile read exceeded ${deadlineMs} ms`)), deadlineMs);
  });
  try {
    const state = await Promise.race([getProfileState(lookup, { client }), deadline]);
    return { ok: true, view: state ? toProfileView(state, now) : undefined };
  } catch (error) {
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}
