/**
 * The decisionId: everything an outcome needs to be attributed, carried by
 * the client instead of written by decide (the decide path never writes).
 *
 * Format (v3, written): `<payload>.<check>` where
 * - payload = base64url(UTF-8 JSON array)
 *   `[3, catalogVersion, channel, placement, issuedAtSeconds, nonce, flags, persona, actions, holdouts, context, customer]`
 *   with `actions` = `[[actionId, variant, experimentId, arm, propensity, probability], ...]`,
 *   `holdouts` = experiment ids whose control group the customer is in,
 *   `context` = the learning context the decision was made in (persona or
 *   segment id, `-` for none; what its outcomes' statistics are kept under),
 *   `customer` = the customer tag (`customerTag` of decide.ts `customerKey`:
 *   the customer the decision was made for, whose outcomes alone count for it)
 *   ("" for an absent string, propensity and probability rounded to 4
 *   decimals, probability `null` when unknown),
 *   flags: bit 0 fallback, bit 1 degraded;
 * - v2 (still decoded) is the same array with 2 first and without
 *   `customer`; v1 (still decoded) the v2 array with 1 first, without
 *   `context`, and actions without `probability`. Ids of both were issued
 *   before decisions were bound to their customer: they stay unbound (an
 *   outcome from any profile counts) until their attribution window (or
 *   conversion window) has passed, after which no outcome counts for them;
 * - check = base36 of a 32-bit hash of the payload, so a truncated or
 *   mangled id is refused instead of attributed to the wrong action.
 *
 * This plain form is what decide computes. On the wire the id is sealed
 * (`sealDecisionId`): encrypted and authenticated with the service's
 * decision key (AES-256-GCM), because it names the persona, propensities,
 * probabilities, learning context, holdouts and customer tag that a public write key must never read (API.md §1, §4). Sealing
 * also makes it tamper-evident: an id the service did not issue does not
 * open. Decoding and opening never throw on hostile input.
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, hash, randomBytes, type KeyObject } from 'node:crypto';
import { isChannel, type Channel } from '../channels.ts';
import { hash32 } from './random.ts';

export interface DecidedAction {
  readonly actionId: string;
  readonly variant?: string;
  readonly experiment?: { readonly id: string; readonly arm: string };
  /** Propensity used to rank the action (0..1). */
  readonly propensity: number;
  /**
   * The chance (0..1) that the policy served this action (and variant) in
   * this decision: decide.ts's definition. Absent in v1 ids.
   */
  readonly probability?: number;
}

export interface DecisionRecord {
  readonly catalogVersion: string;
  readonly channel: Channel;
  readonly placement?: string;
  /** When the decision was made (ISO-8601, second precision). */
  readonly issuedAt: string;
  /** Makes two decisions of the same second distinct (impression de-duplication). */
  readonly nonce: string;
  readonly fallback: boolean;
  readonly degraded: boolean;
  readonly persona?: string;
  readonly actions: readonly DecidedAction[];
  /** Experiments whose control group the customer is in (exposure of the holdout, for uplift). */
  readonly holdouts: readonly string[];
  /** The learning context of the decision (statistics.ts `learningContext`); absent in v1 ids. */
  readonly context?: string;
  /**
   * The customer the decision was made for: `customerTag` of decide.ts
   * `customerKey`. Absent in v1 and v2 ids (unbound: see the module's docstring).
   */
  readonly customer?: string;
}

/** Longest id accepted by the decoder (10 actions with long ids fit well under it). */
export const MAX_DECISION_ID_LENGTH = 4096;
/** The format written; V2 and V1 are still read. */
const FORMAT = 3;
const FORMAT_V2 = 2;
const FORMAT_V1 = 1;

/** Length of a customer tag: 11 base64url characters, 66 bits of SHA-256. */
export const CUSTOMER_TAG_LENGTH = 11;
const CUSTOMER_TAG = /^[A-Za-z0-9_-]{11}$/;

/**
 * The customer tag of a customer key (decide.ts `customerKey`, or any id of
 * the customer an outcome is reported for): the first 66 bits of its
 * SHA-256, base64url (CUSTOMER_TAG_LENGTH characters): finding a second id
 * with a given tag costs about 2^66 hashes. About 1 µs. It travels only
 * inside the sealed id, so a client never reads it.
 */
export function customerTag(customerKey: string): string {
  return hash('sha256', customerKey, 'base64url').slice(0, CUSTOMER_TAG_LENGTH);
}

const round4 = (n: number) => Math.round(n * 10_000) / 10_000;

/**
 * A record to encode; `issuedAt` may be the Date itself (decide's clock, no
 * ISO round trip); `customer` is required: every id written is bound to its
 * customer (a customerTag).
 */
export type DecisionInput = Omit<DecisionRecord, 'issuedAt' | 'customer'> & { readonly issuedAt: string | Date; readonly customer: string };

export function encodeDecisionId(record: DecisionInput): string {
  const flags = (record.fallback ? 1 : 0) | (record.degraded ? 2 : 0);
  const issuedMs = typeof record.issuedAt === 'string' ? Date.parse(record.issuedAt) : record.issuedAt.getTime();
  const issued = Math.floor(issuedMs / 1000);
  const actions = record.actions.map((a) => [
    a.actionId,
    a.variant ?? '',
    a.experiment?.id ?? '',
    a.experiment?.arm ?? '',
    round4(a.propensity),
    a.probability === undefined ? null : round4(a.probability),
  ]);
  const json = JSON.stringify([
    FORMAT,
    record.catalogVersion,
    record.channel,
    record.placement ?? '',
    Number.isFinite(issued) ? issued : 0,
    record.nonce,
    flags,
    record.persona ?? '',
    actions,
    record.holdouts,
    record.context ?? '',
    record.customer,
  ]);
  const payload = Buffer.from(json, 'utf8').toString('base64url');
  return `${payload}.${hash32(payload).toString(36)}`;
}

const isString = (v: unknown, max = 256): v is string => typeof v === 'string' && v.length <= max;
const optional = (v: string) => (v === '' ? undefined : v);

/**
 * A decision's reference: `<issued s>.<nonce>` (epoch seconds of its
 * issue, then its nonce), unique per decision and short (about 19
 * characters). What the profile's counted-outcome keys
 * (profile/outcomes.ts) and the decision log (evaluation/decision-record.ts,
 * version 3) name a decision by, and what off-policy evaluation joins them
 * on. `issuedAt`: ISO-8601 or a Date (its second is taken).
 */
export function decisionReference(decision: { readonly issuedAt: string | Date; readonly nonce: string }): string {
  const ms = typeof decision.issuedAt === 'string' ? Date.parse(decision.issuedAt) : decision.issuedAt.getTime();
  return `${Math.floor(ms / 1000)}.${decision.nonce}`;
}

/** The decision behind an id, or undefined when the id is not one of ours (or was mangled). */
export function decodeDecisionId(id: unknown): DecisionRecord | undefined {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_DECISION_ID_LENGTH) return undefined;
  const dot = id.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const payload = id.slice(0, dot);
  if (!/^[A-Za-z0-9_-]+$/.test(payload) || hash32(payload).toString(36) !== id.slice(dot + 1)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (!Array.isArray(parsed)) return undefined;
  const format = parsed[0];
  const length = format === FORMAT ? 12 : format === FORMAT_V2 ? 11 : format === FORMAT_V1 ? 10 : 0;
  if (length === 0 || parsed.length !== length) return undefined;
  const [, version, channel, placement, issued, nonce, flags, persona, actions, holdouts, context = '', customer] = parsed as unknown[];
  if (format === FORMAT && !(typeof customer === 'string' && CUSTOMER_TAG.test(customer))) return undefined;
  if (!Array.isArray(holdouts) || holdouts.length > 50 || !holdouts.every((h) => isString(h) && h !== '')) return undefined;
  if (!isString(version) || !isChannel(channel) || !isString(placement) || !isString(nonce, 64)) return undefined;
  if (!isString(persona) || !isString(context)) return undefined;
  if (typeof issued !== 'number' || !Number.isSafeInteger(issued) || issued < 0) return undefined;
  if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0 || flags > 3) return undefined;
  if (!Array.isArray(actions) || actions.length > 10) return undefined;
  const isShare = (n: unknown): n is number => typeof n === 'number' && n >= 0 && n <= 1;
  const decided: DecidedAction[] = [];
  for (const entry of actions as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== (format === FORMAT_V1 ? 5 : 6)) return undefined;
    const [actionId, variant, experimentId, arm, propensity, probability = null] = entry as unknown[];
    if (!isString(actionId) || actionId === '' || !isString(variant) || !isString(experimentId) || !isString(arm)) {
      return undefined;
    }
    if (!isShare(propensity) || !(probability === null || isShare(probability))) return undefined;
    const v = optional(variant);
    decided.push({
      actionId,
      ...(v !== undefined ? { variant: v } : {}),
      ...(experimentId !== '' ? { experiment: { id: experimentId, arm } } : {}),
      propensity,
      ...(probability !== null ? { probability } : {}),
    });
  }
  const p = optional(placement);
  const pe = optional(persona);
  return {
    catalogVersion: version,
    channel,
    ...(p !== undefined ? { placement: p } : {}),
    issuedAt: new Date(issued * 1000).toISOString(),
    nonce,
    fallback: (flags & 1) === 1,
    degraded: (flags & 2) === 2,
    ...(pe !== undefined ? { persona: pe } : {}),
    actions: decided,
    holdouts: holdouts as string[],
    ...(context !== '' ? { context } : {}),
    ...(typeof customer === 'string' ? { customer } : {}),
  };
}

/** The decided action an outcome event names (`properties.action_id`), or the first one. */
export function attributedAction(record: DecisionRecord, actionId?: unknown): DecidedAction | undefined {
  if (typeof actionId === 'string' && actionId !== '') return record.actions.find((a) => a.actionId === actionId);
  return record.actions[0];
}

/** The key decision ids are sealed with (AES-256-GCM), derived from a secret of at least 32 characters. */
export interface DecisionKey {
  readonly key: KeyObject;
}

/** Shortest decision secret accepted (KAIROS_DECISION_KEY). */
export const MIN_DECISION_SECRET_LENGTH = 32;

/** The decision key of a secret (its SHA-256 is the AES-256 key); throws for a secret shorter than 32 characters. */
export function decisionKey(secret: string): DecisionKey {
  if (secret.length < MIN_DECISION_SECRET_LENGTH) {
    throw new Error(`A decision key secret must be at least ${MIN_DECISION_SECRET_LENGTH} characters`);
  }
  return { key: createSecretKey(createHash('sha256').update(secret, 'utf8').digest()) };
}

const SEALED_PREFIX = 'd2.';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Random bytes for IVs, drawn in blocks from the CSPRNG (one call per IV_BLOCK ids: a call costs about as much as sealing). */
const IV_BLOCK = 512;
let ivPool = Buffer.alloc(0);
let ivTaken = 0;

/** A fresh random IV (IV_BYTES), never handed out twice: GCM's nonce must not repeat under one key. */
function freshIv(): Buffer {
  if (ivTaken + IV_BYTES > ivPool.length) {
    ivPool = randomBytes(IV_BYTES * IV_BLOCK);
    ivTaken = 0;
  }
  const iv = ivPool.subarray(ivTaken, ivTaken + IV_BYTES);
  ivTaken += IV_BYTES;
  return iv;
}

/**
 * The wire form of a decision id: `d2.` + base64url(iv[12] | AES-256-GCM
 * ciphertext of the plain id | tag[16]). Opaque to whoever holds it; only the
 * service can open it.
 */
export function sealDecisionId(plainId: string, key: DecisionKey): string {
  const iv = freshIv();
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  const sealed = Buffer.concat([iv, cipher.update(plainId, 'utf8'), cipher.final(), cipher.getAuthTag()]);
  return SEALED_PREFIX + sealed.toString('base64url');
}

/** Longest sealed id accepted (a plain id of MAX_DECISION_ID_LENGTH, sealed, fits). */
export const MAX_SEALED_DECISION_ID_LENGTH = SEALED_PREFIX.length + Math.ceil(((MAX_DECISION_ID_LENGTH + IV_BYTES + TAG_BYTES) * 4) / 3);

/** The plain id inside a sealed one, or undefined when it was not sealed with this key (forged, mangled, foreign). */
export function openDecisionId(sealedId: unknown, key: DecisionKey): string | undefined {
  if (typeof sealedId !== 'string' || !sealedId.startsWith(SEALED_PREFIX) || sealedId.length > MAX_SEALED_DECISION_ID_LENGTH) {
    return undefined;
  }
  const body = sealedId.slice(SEALED_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) return undefined;
  const bytes = Buffer.from(body, 'base64url');
  if (bytes.length <= IV_BYTES + TAG_BYTES) return undefined;
  // Only the canonical text: base64url's last character can carry unused bits that decoding ignores, so
  // without this, a changed last character could open to the same id (a second spelling of one id).
  if (bytes.toString('base64url') !== body) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, bytes.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES });
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    return Buffer.concat([decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * The decision behind an id as an outcome event carries it: with a key, only
 * a sealed id that opens with it; without one (pure tests and tools), the
 * plain id.
 */
export function readDecisionId(id: unknown, key: DecisionKey | undefined): DecisionRecord | undefined {
  return key ? decodeDecisionId(openDecisionId(id, key)) : decodeDecisionId(id);
}
