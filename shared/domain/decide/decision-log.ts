/**
 * The decision record of one decision as it is logged (evaluation/decision-record.ts
 * `LoggedDecisionRecord`, version 5), built from the decision and what
 * `decideForLog` exposes of it, and the keyed hash that makes its customer
 * pseudonymous.
 *
 * Pure and synchronous: the decide function logs the record as one line of
 * its logger (no network call, no write on the hot path). Simulations
 * (`POST /v1/admin/simulate`) are not traffic and are never logged.
 */
import { createHmac, hkdfSync, createSecretKey, type KeyObject } from 'node:crypto';
import type { CompiledCatalog } from '../catalog/compiled.ts';
import {
  DECISION_RECORD_VERSION,
  loggedArm,
  type LoggedArm,
  type LoggedDecisionRecord,
  type LoggedExperimentArm,
  type LoggedServed,
} from '../evaluation/decision-record.ts';
import { NO_CONTEXT } from '../learning/statistics.ts';
import type { ProfileView } from '../profile/view.ts';
import { MIN_DECISION_SECRET_LENGTH } from './decision-id.ts';
import { unitHash } from './random.ts';
import type { Decision, DecisionLogFacts } from './types.ts';

/** The key the customer key is hashed with in decision records. */
export interface PseudonymKey {
  readonly key: KeyObject;
}

/** Bytes of the HMAC a pseudonym keeps: 128 bits, far beyond any collision among a brand's customers. */
const PSEUDONYM_BYTES = 16;

/** HKDF `info` of the pseudonym key: it keeps this key apart from every other key derived from the same secret. */
const PSEUDONYM_KEY_INFO = 'kairos decision log customer pseudonym v1';

/**
 * The pseudonym key of a secret (the decision secret, KAIROS_DECISION_KEY,
 * at least 32 characters): HKDF-SHA-256 of it, 32 bytes, with its own
 * `info`, so it is not the key decision ids are sealed with. Throws for a
 * shorter secret.
 */
export function pseudonymKey(secret: string): PseudonymKey {
  if (secret.length < MIN_DECISION_SECRET_LENGTH) {
    throw new Error(`A pseudonym key secret must be at least ${MIN_DECISION_SECRET_LENGTH} characters`);
  }
  return { key: createSecretKey(Buffer.from(hkdfSync('sha256', secret, '', PSEUDONYM_KEY_INFO, 32))) };
}

/**
 * The pseudonym of a customer key: HMAC-SHA-256 with the pseudonym key,
 * truncated to its first 16 bytes (128 bits, RFC 2104 §5), base64url (22
 * characters). The same customer always gets the same
 * pseudonym under one key; without the key it cannot be computed from, or
 * turned back into, the customer key.
 */
export function customerPseudonym(key: PseudonymKey, customerKey: string): string {
  return createHmac('sha256', key.key).update(customerKey, 'utf8').digest().toString('base64url', 0, PSEUDONYM_BYTES);
}

/**
 * Whether a decision's record keeps its features: a uniform hash of the
 * decision's reference (`decisionReference`) below `sample` (0..1), so the same decision is always chosen or
 * always not, whoever replays it.
 */
export function isSampledDecision(decisionRef: string, sample: number): boolean {
  return sample > 0 && unitHash(decisionRef) < sample;
}

/** The value at `keys` below `root`, or undefined when a key is missing (own properties only). */
function valueAt(root: unknown, keys: readonly string[]): unknown {
  let at = root;
  for (const key of keys) {
    if (at === null || typeof at !== 'object' || !Object.hasOwn(at, key)) return undefined;
    at = (at as Record<string, unknown>)[key];
  }
  return at;
}

const jsonText = (value: unknown): string | undefined => {
  if (value === undefined) return undefined;
  return JSON.stringify(value) as string | undefined;
};

const sameArm = (a: LoggedArm, b: LoggedArm): boolean => a.length === b.length && a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3];



/** A served arm as logged: `[i]` when `eligible[i]` is the same tuple, else the tuple (`LoggedServed`). */
function servedArm(eligible: readonly LoggedArm[], arm: LoggedArm): LoggedServed {
  for (let i = 0; i < eligible.length; i++) if (sameArm(eligible[i] as LoggedArm, arm)) return [i];
  return arm;
}

export interface DecisionRecordInput {
  /** The catalog decided with. */
  readonly catalog: CompiledCatalog;
  /** The profile decided on (the empty one for a degraded decision). */
  readonly profile: ProfileView;
  /** The request's context. */
  readonly context: Readonly<Record<string, unknown>>;
  readonly decision: Decision;
  readonly facts: DecisionLogFacts;
  /**
   * The decision's reference (decision-id.ts `decisionReference`, of the
   * decision's issue time and nonce): the outcomes of the sealed id the
   * client received are joined on it.
   */
  readonly decisionRef: string;
  /** The customer's pseudonym (customerPseudonym of `facts.customerKey`). */
  readonly customer: string;
}

/**
 * The decision record, as logged (`LoggedDecisionRecord`): the decision's
 * reference (its second is the decision's time), catalog version, channel and placement, pseudonymous
 * customer, learning context (left out when none), fallback and degraded
 * (only when true), the eligible candidates with their chance of position
 * 1 (`facts.eligible`) and what was served in order with the probability
 * each was chosen with, as `[actionId, score, probability, variant?]`
 * tuples rounded to 4 significant digits (a served arm whose tuple is in
 * the eligible list as `[i]`, its index there); the experiment arm each
 * served action was served under (`x`, `[servedIndex, experiment, arm]`)
 * and the experiments whose control group the customer was in (`h`, from
 * `facts.holdouts`), each left out when empty; and, for the catalog's
 * `decisionLog.sample` of decisions (isSampledDecision), `f`: the
 * segments, persona and scores, the profile fields the catalog's rules
 * read (`catalog.ruleFields`; a field the profile lacks is left out, as the
 * rules saw it missing), and the request context — field and context
 * values as JSON text.
 */
export function decisionRecord(input: DecisionRecordInput): LoggedDecisionRecord {
  const { decision, facts, catalog } = input;
  let features: LoggedDecisionRecord['f'];
  if (isSampledDecision(input.decisionRef, catalog.decisionLog.sample)) {
    const fields: Record<string, string> = {};
    for (const field of catalog.ruleFields) {
      const text = jsonText(valueAt(input.profile, field.keys));
      if (text !== undefined) fields[field.path] = text;
    }
    const context: Record<string, string> = {};
    for (const [name, value] of Object.entries(input.context)) {
      const text = jsonText(value);
      if (text !== undefined) context[name] = text;
    }
    const { audience } = facts;
    features = {
      sg: audience.segments,
      ...(audience.persona !== undefined ? { p: audience.persona } : {}),
      sc: audience.scores,
      fl: fields,
      cx: context,
    };
  }
  const eligible = facts.eligible;
  const experiments: LoggedExperimentArm[] = [];
  decision.actions.forEach((a, i) => {
    if (a.experiment) experiments.push([i, a.experiment.id, a.experiment.arm]);
  });
  return {
    v: DECISION_RECORD_VERSION,
    id: input.decisionRef,
    cv: facts.catalogVersion,
    ch: decision.channel,
    ...(decision.placement !== undefined ? { pl: decision.placement } : {}),
    c: input.customer,
    ...(facts.learningContext !== NO_CONTEXT ? { lc: facts.learningContext } : {}),
    ...(decision.fallback === true ? { fb: 1 as const } : {}),
    ...(decision.degraded === true ? { dg: 1 as const } : {}),
    e: eligible,
    s: decision.actions.map((a) => servedArm(eligible, loggedArm(a.actionId, a.variant, a.score, a.probability))),
    ...(experiments.length > 0 ? { x: experiments } : {}),
    ...(facts.holdouts.length > 0 ? { h: facts.holdouts } : {}),
    ...(features ? { f: features } : {}),
  };
}
