/**
 * POST /v1/decide — the next best action (API.md §4).
 *
 * parse (middy chain) → write key → validate → the key's rights (public
 * keys: channel, explain, user token; shared/http/key-rights.ts) → live
 * catalog (in-memory, no read when warm) → ONE profile read under a
 * deadline → the pure decision → its id sealed, and for a public key only
 * the public answer. No write on this path: outcomes are attributed later
 * from the decisionId the client sends back in `properties.decision_id`.
 * A store fault on the profile read gives a degraded decision (the
 * catalog's fallbacks, `"degraded": true`), never an error.
 */
import { randomBytes } from 'node:crypto';
import { authenticateWriteKey } from '#http/auth.ts';
import { authorizeDecide } from '#http/key-rights.ts';
import { requiredDecisionSecret } from '#shared/config.ts';
import { ApiError } from '#http/errors.ts';
import { httpHandler, logger } from '#http/middleware.ts';
import { getLiveCatalog } from '#store/catalog-live.ts';
import { decide, emptyProfile } from '#domain/decide/decide.ts';
import { parseDecideRequest } from '#domain/decide/request.ts';
import { emptyCatalog } from '#domain/decide/empty-catalog.ts';
import { decisionKey, sealDecisionId } from '#domain/decide/decision-id.ts';
import { publicDecision } from '#domain/decide/public-answer.ts';
import { readProfile } from './profile-read.ts';

/** Random bytes for decision nonces, drawn in blocks (one crypto call per 512 decisions). */
let entropy = Buffer.alloc(0);
let drawn = 0;
const NONCE_BYTES = 6;

/** 6 random bytes, base64url: makes the decisionId unique. */
function nonce(): string {
  if (drawn + NONCE_BYTES > entropy.length) {
    entropy = randomBytes(NONCE_BYTES * 512);
    drawn = 0;
  }
  const text = entropy.toString('base64url', drawn, drawn + NONCE_BYTES);
  drawn += NONCE_BYTES;
  return text;
}

/** Decision ids leave sealed: opaque to the client, opened only by the profile function. */
const DECISION_KEY = decisionKey(requiredDecisionSecret());

/** A decide request is small: ids, a channel and a bounded context. */
export const MAX_DECIDE_BODY_BYTES = 16 * 1024;

export const handler = httpHandler(
  async (request) => {
    const identity = await authenticateWriteKey(request);
    const parsed = parseDecideRequest(request.body);
    if (!parsed.ok) throw new ApiError('validation_failed', 'The decide request is not valid', parsed.details);
    const input = parsed.value;
    const { publicAnswer } = await authorizeDecide(identity, input, request.headers);

    const now = new Date();
    const [catalog, profile] = await Promise.all([
      getLiveCatalog(now.getTime()),
      readProfile({ userId: input.userId, anonymousId: input.anonymousId }, now),
    ]);
    if (!profile.ok) {
      logger.warn('profile read failed; degraded decision', { error: profile.error as Error });
    }
    const view = (profile.ok && profile.view) || emptyProfile(input);
    const decision = decide(catalog ?? emptyCatalog(), view, input, now, {
      nonce: nonce(),
      degraded: !profile.ok,
      ...(profile.ok && profile.enrichedWith !== undefined ? { enrichedWith: profile.enrichedWith } : {}),
    });
    const sealed = { ...decision, decisionId: sealDecisionId(decision.decisionId, DECISION_KEY) };
    return { status: 200, body: publicAnswer ? publicDecision(sealed) : sealed };
  },
  { maxBodyBytes: MAX_DECIDE_BODY_BYTES, cors: true, body: 'json' },
);
