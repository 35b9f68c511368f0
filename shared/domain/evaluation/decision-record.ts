/**
 * The decision record: what the decision log keeps of every decision, for
 * off-policy evaluation and audit. The decide function logs one per
 * decision it answers (degraded and fallback answers included; simulations
 * are not traffic and are not logged) as one structured line of its logger
 * (no network call on the hot path), built by
 * shared/domain/decide/decision-log.ts `decisionRecord`. Deployed, a
 * CloudWatch Logs subscription filter selects the lines whose `message` is
 * DECISION_RECORD_MESSAGE and Amazon Data Firehose delivers them to S3,
 * where a Glue table with the columns below lets Athena query them
 * (infra/constructs/decision-log.ts). Locally, the stack appends the same
 * lines to `<data folder>/decisions/<yyyy-mm-dd>.jsonl` (local/decision-log.ts).
 *
 * One definition: the record as it is logged (`LoggedDecisionRecord`,
 * version 5: short keys, candidates as tuples, the decision's reference,
 * the experiment arms served, the control groups the customer was in and
 * the first-ranked arm whose content could not be rendered), the record as
 * readers see it (`DecisionLogRecord`) and the one reader between them
 * (`readDecisionRecord`), the log message that marks it, the line's prefix
 * and the Glue columns all live here. Version 4 records (version 5
 * without `u`: they do not say whether the first-ranked arm rendered),
 * version 3 (version 4 without `x` and `h`), version 2 (version 3's keys
 * with the sealed decision id) and version 1 (the readers' shape, logged
 * as is) are still read; versions 3 to 1 leave `holdouts` absent, which is
 * how a reader tells that a record does not say which experiment arms it
 * served.
 *
 * Pseudonymisation: `customer` is a keyed hash (HMAC-SHA-256, base64url) of
 * the customer key; the log holds no user id, anonymous id, trait or event.
 * Erasure: the log cannot be searched by user id; records expire with the
 * bucket's lifecycle (the deployed retention), which bounds how long a
 * pseudonymous record of an erased customer outlives the erasure.
 */
import { NO_CONTEXT } from '../learning/statistics.ts';

/** The `message` of a decision record's log line (the subscription filter's pattern matches it). */
export const DECISION_RECORD_MESSAGE = 'decision record';

/** The log line's key that holds the record. */
export const DECISION_RECORD_KEY = 'decision';

/** One candidate of the decision: eligible (it passed every check), with its score and selection probability. */
export interface LoggedCandidate {
  readonly actionId: string;
  readonly variant?: string;
  /** propensity × value × weight (logged to 4 significant digits). */
  readonly score: number;
  /** The probability that the policy served it at position 1, [0, 1] (logged to 4 significant digits). */
  readonly probability: number;
  /** A served candidate's experiment and arm, when it was served under one (version 4 on; never on `eligible`). */
  readonly experiment?: { readonly id: string; readonly arm: string };
}

/**
 * What the decision log keeps of one decision, as readers see it
 * (`readDecisionRecord`); logged compact as `LoggedDecisionRecord`.
 */
export interface DecisionLogRecord {
  /**
   * The decision's id in the log: from version 3 its reference
   * (`decisionRef`); in versions 1 and 2 the id as the client received it
   * (sealed, decision-id.ts `sealDecisionId`), which evaluate opens to its
   * reference with the decision key.
   */
  readonly decisionId: string;
  /**
   * Version 3: the decision's reference, `<issued s>.<nonce>`
   * (decision-id.ts `decisionReference`): what the outcomes of the sealed
   * id the client received are joined on. Absent in versions 1 and 2.
   */
  readonly decisionRef?: string;
  /** When the decision was made, ISO-8601 (to the millisecond). */
  readonly at: string;
  readonly catalogVersion: string;
  readonly channel: string;
  readonly placement?: string;
  /** Keyed hash of the customer key (pseudonymous; decision-log.ts `customerPseudonym`). */
  readonly customer: string;
  /** The learning context decided in (persona or segment id; `-` for none). */
  readonly learningContext?: string;
  readonly fallback: boolean;
  readonly degraded: boolean;
  /**
   * Every candidate that passed every check, best first, with its chance of
   * position 1 (decide/types.ts `DecisionLogFacts.eligible`: one entry per
   * arm where the bandit decides); sums to at most 1. Empty for a degraded
   * decision and when nothing was eligible (then `served` holds the fallbacks).
   */
  readonly eligible: readonly LoggedCandidate[];
  /**
   * What was served, in order, as the answer has it: score, and the
   * probability each was chosen with among the first `limit` (API.md §4;
   * 1 for fallbacks).
   */
  readonly served: readonly LoggedCandidate[];
  /**
   * Version 4 on: the experiments whose control group (holdout) the
   * customer was in, so none of their actions was served (empty for none).
   * Absent in older records, which do not say this nor which experiment
   * arm each action was served under.
   */
  readonly holdouts?: readonly string[];
  /**
   * Version 5 on: the eligible arm ranked first — the one the bandit drew
   * for position 1, or the first of the deterministic ranking — when its
   * content could not be rendered (a template that failed on this
   * customer's data, decide.ts step 5), so `served` begins with a lower
   * ranked arm in its place, or the fallbacks, or is empty. It is an entry
   * of `eligible`, with its chance of position 1. Absent: the first-ranked
   * arm rendered, or nothing was eligible; older records do not say.
   * Written by earlier releases only: decide now leaves an arm that does
   * not render out of its draw, with chance 0 in `eligible`, so the arm
   * it serves first is always the one its chances describe.
   */
  readonly unrendered?: LoggedCandidate;
  /** For the sampled share of decisions (`decisionLog.sample`): what the catalog's rules read, enough to replay the decision. */
  readonly features?: {
    readonly segments: readonly string[];
    readonly persona?: string;
    readonly scores: Readonly<Record<string, number>>;
    /**
     * Profile fields the catalog's rules reference (compiled catalog
     * `ruleFields`), by path (`traits.tier`, `stats.eventCounts["Cart Abandoned"]`),
     * each value as JSON text; a field the profile lacks is absent.
     */
    readonly fields: Readonly<Record<string, string>>;
    /** The request context, each value as JSON text. */
    readonly context: Readonly<Record<string, string>>;
  };
}

/** The version of the logged record (`LoggedDecisionRecord.v`). */
export const DECISION_RECORD_VERSION = 5;

/**
 * A candidate as logged: `[actionId, score, probability]`, or
 * `[actionId, score, probability, variant]` for a variant. Score and
 * probability are rounded to 4 significant digits (`significant4`).
 */
export type LoggedArm = readonly [actionId: string, score: number, probability: number, variant?: string];

/**
 * A served candidate as logged: `[i]`, the index of the same tuple in the
 * eligible list (`e`), when it is there with the same score and
 * probability (the first of a `limit: 1` answer always is: its chance of
 * position 1 is its chance among the first one); else the whole tuple (a
 * fallback, or a later position of a longer answer).
 */
export type LoggedServed = LoggedArm | readonly [eligibleIndex: number];

/**
 * A served action's experiment arm as logged: `[i, experiment, arm]`, `i`
 * its position in the served list (`s`).
 */
export type LoggedExperimentArm = readonly [servedIndex: number, experiment: string, arm: string];

/**
 * A decision record as the decide function logs it, under
 * DECISION_RECORD_KEY (version 5; the readers' names in brackets, see
 * `DecisionLogRecord`). Fields that would say false, none or the default
 * are left out.
 */
export interface LoggedDecisionRecord {
  readonly v: typeof DECISION_RECORD_VERSION;
  /**
   * [decisionRef] the decision's reference, `<issued s>.<nonce>`; its
   * second is [at], the time of the decision (version 2: the sealed id,
   * [decisionId], and `t`, epoch ms).
   */
  readonly id: string;
  /** [catalogVersion] */
  readonly cv: string;
  /** [channel] */
  readonly ch: string;
  /** [placement] absent: none. */
  readonly pl?: string;
  /** [customer] the pseudonym. */
  readonly c: string;
  /** [learningContext] absent: none (`-`). */
  readonly lc?: string;
  /** [fallback] 1, or absent. */
  readonly fb?: 1;
  /** [degraded] 1, or absent. */
  readonly dg?: 1;
  /** [eligible] */
  readonly e: readonly LoggedArm[];
  /** [served] */
  readonly s: readonly LoggedServed[];
  /**
   * [unrendered] the index in `e` of the arm ranked first, when its content
   * could not be rendered; absent: it rendered, or `e` is empty. Written by
   * earlier releases only (`DecisionLogRecord.unrendered`).
   */
  readonly u?: number;
  /** [served[i].experiment] the served actions served under an experiment arm; absent: none. */
  readonly x?: readonly LoggedExperimentArm[];
  /** [holdouts] absent: none. */
  readonly h?: readonly string[];
  /** [features] the sampled decisions' only. */
  readonly f?: {
    /** [segments] */
    readonly sg: readonly string[];
    /** [persona] */
    readonly p?: string;
    /** [scores] */
    readonly sc: Readonly<Record<string, number>>;
    /** [fields] */
    readonly fl: Readonly<Record<string, string>>;
    /** [context] */
    readonly cx: Readonly<Record<string, string>>;
  };
}

/**
 * `n` rounded to 4 significant digits, half away from zero (0.0064516 →
 * 0.006452, 123456 → 123500): what the estimators need of a score or a probability, in at most
 * about 6 characters of JSON. 0, infinities and NaN are returned as they are.
 */
export function significant4(n: number): number {
  if (n === 0 || !Number.isFinite(n)) return n;
  const magnitude = Math.abs(n);
  // The decade from a table (a score or a probability is in one of these): no logarithm on the hot path.
  let scale = 0;
  for (let i = 0; i < DECADES.length && magnitude < 1e4; i++) {
    if (magnitude >= (DECADES[i] as number)) {
      scale = SCALES[i] as number;
      break;
    }
  }
  let rounded: number;
  if (scale > 0) rounded = Math.round(magnitude * scale) / scale;
  else {
    const exponent = Math.floor(Math.log10(magnitude));
    if (exponent >= 3) {
      const step = 10 ** (exponent - 3);
      rounded = Math.round(magnitude / step) * step;
    } else {
      const factor = 10 ** (3 - exponent);
      rounded = Math.round(magnitude * factor) / factor;
    }
  }
  return n < 0 ? -rounded : rounded;
}

/** Lower bounds of the decades `significant4` looks up, and the scale that keeps 4 digits in each. */
const DECADES = [1000, 100, 10, 1, 0.1, 0.01, 0.001, 1e-4, 1e-5, 1e-6];
const SCALES = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9];

/** A candidate as logged (`LoggedArm`): score and probability to 4 significant digits. */
export const loggedArm = (actionId: string, variant: string | undefined, score: number, probability: number): LoggedArm =>
  variant === undefined ? [actionId, significant4(score), significant4(probability)] : [actionId, significant4(score), significant4(probability), variant];

/**
 * The start of every decision record line the decide function writes (the
 * line is `{"level":"INFO","message":"decision record","decision":{…}}`):
 * the local stack recognises its lines by it without parsing them.
 */
export const DECISION_RECORD_LINE_PREFIX = `{"level":"INFO","message":${JSON.stringify(DECISION_RECORD_MESSAGE)},${JSON.stringify(DECISION_RECORD_KEY)}:{`;

/** The JSON of eligible lists already written: decide hands the same list to every decision whose bandit policy it took from its cache. */
const eligibleJson = new WeakMap<readonly LoggedArm[], string>();

/**
 * The log line of a decision record, without its newline:
 * `{"level":"INFO","message":"decision record","decision":{…}}` (it starts
 * with DECISION_RECORD_LINE_PREFIX). The decide function writes it to its
 * standard output, where Lambda captures it as one log event and the
 * decision log's subscription filter selects it; the local stack takes the
 * same line off stdout.
 *
 * The record's JSON is `JSON.stringify(record)` for a record whose keys are
 * in `decisionRecord`'s order, written key by key so that an eligible list
 * seen before (the same array) is not serialised again: at 155 eligible
 * arms that list is most of the line and of its cost.
 * test/unit/decision-record-line.test.ts holds the two equal.
 */
export function decisionRecordLine(record: LoggedDecisionRecord): string {
  let eligible = eligibleJson.get(record.e);
  if (eligible === undefined) {
    eligible = JSON.stringify(record.e);
    eligibleJson.set(record.e, eligible);
  }
  const json = JSON.stringify;
  let line = `${DECISION_RECORD_LINE_PREFIX}"v":${json(record.v)},"id":${json(record.id)},"cv":${json(record.cv)},"ch":${json(record.ch)}`;
  if (record.pl !== undefined) line += `,"pl":${json(record.pl)}`;
  line += `,"c":${json(record.c)}`;
  if (record.lc !== undefined) line += `,"lc":${json(record.lc)}`;
  if (record.fb !== undefined) line += `,"fb":${json(record.fb)}`;
  if (record.dg !== undefined) line += `,"dg":${json(record.dg)}`;
  line += `,"e":${eligible},"s":${json(record.s)}`;
  if (record.u !== undefined) line += `,"u":${json(record.u)}`;
  if (record.x !== undefined) line += `,"x":${json(record.x)}`;
  if (record.h !== undefined) line += `,"h":${json(record.h)}`;
  if (record.f !== undefined) line += `,"f":${json(record.f)}`;
  return `${line}}}`;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isStringMap = (v: unknown): v is Record<string, string> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every(isString);
const isNumberMap = (v: unknown): v is Record<string, number> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((n) => typeof n === 'number');

function candidateOf(arm: unknown): LoggedCandidate | undefined {
  if (!Array.isArray(arm) || arm.length < 3 || arm.length > 4) return undefined;
  const [actionId, score, probability, variant] = arm as unknown[];
  if (!isString(actionId) || typeof score !== 'number' || typeof probability !== 'number') return undefined;
  if (variant !== undefined && !isString(variant)) return undefined;
  return variant === undefined ? { actionId, score, probability } : { actionId, variant, score, probability };
}

function candidatesOf(arms: unknown): LoggedCandidate[] | undefined {
  if (!Array.isArray(arms)) return undefined;
  const out: LoggedCandidate[] = [];
  for (const arm of arms) {
    const candidate = candidateOf(arm);
    if (!candidate) return undefined;
    out.push(candidate);
  }
  return out;
}

/** A decision reference as version 3 logs it (decision-id.ts `decisionReference`): epoch seconds, a dot, the nonce. */
const DECISION_REFERENCE = /^\d{1,12}\.[A-Za-z0-9_-]{1,64}$/;

/** The served experiment arms of a version 4 record (`x`) on its served list, or undefined when `x` is malformed. */
function withExperiments(served: LoggedCandidate[], x: unknown): LoggedCandidate[] | undefined {
  if (x === undefined) return served;
  if (!Array.isArray(x)) return undefined;
  const out = [...served];
  for (const entry of x as unknown[]) {
    if (!Array.isArray(entry) || entry.length !== 3) return undefined;
    const [index, id, arm] = entry as unknown[];
    if (typeof index !== 'number' || !isString(id) || !isString(arm)) return undefined;
    const candidate = out[index];
    if (candidate === undefined || candidate.experiment !== undefined) return undefined;
    out[index] = { ...candidate, experiment: { id, arm } };
  }
  return out;
}

/** A version 5, 4 or 3 record, or a version 2 one (`id` the sealed decision id, the time in `t`, served arms as whole tuples). */
function readCompact(r: Record<string, unknown>): DecisionLogRecord | undefined {
  const { id, cv, ch, pl, c, lc, fb, dg, f, h, u } = r;
  const v5 = r.v === DECISION_RECORD_VERSION;
  const v4 = v5 || r.v === 4;
  const v3 = v4 || r.v === 3;
  // Version 3: the time is the reference's second; version 2 logged it in `t`, epoch ms.
  const t = v3 && isString(id) ? Number(id.slice(0, id.indexOf('.'))) * 1000 : r.t;
  if (!isString(id) || typeof t !== 'number' || !Number.isFinite(t) || !isString(cv) || !isString(ch) || !isString(c)) return undefined;
  if (v3 && !DECISION_REFERENCE.test(id)) return undefined;
  if ((pl !== undefined && !isString(pl)) || (lc !== undefined && !isString(lc))) return undefined;
  const eligible = candidatesOf(r.e);
  if (!eligible || !Array.isArray(r.s)) return undefined;
  const served: LoggedCandidate[] = [];
  for (const arm of r.s as unknown[]) {
    const index = Array.isArray(arm) && arm.length === 1 ? (arm[0] as unknown) : undefined;
    const candidate = typeof index === 'number' ? eligible[index] : candidateOf(arm);
    if (!candidate) return undefined;
    served.push(candidate);
  }
  // Only version 4 on logs experiment arms and holdouts; only version 5 the first-ranked arm not rendered.
  if (!v4 && (r.x !== undefined || h !== undefined)) return undefined;
  if (u !== undefined && (!v5 || typeof u !== 'number' || !Number.isInteger(u))) return undefined;
  const unrendered = u === undefined ? undefined : eligible[u];
  if (u !== undefined && !unrendered) return undefined;
  const servedArms = withExperiments(served, r.x);
  if (!servedArms || (h !== undefined && (!Array.isArray(h) || !h.every(isString)))) return undefined;
  let features: DecisionLogRecord['features'];
  if (f !== undefined) {
    const x = f as Record<string, unknown> | null;
    if (x === null || typeof x !== 'object') return undefined;
    if (!Array.isArray(x.sg) || !x.sg.every(isString) || (x.p !== undefined && !isString(x.p))) return undefined;
    if (!isNumberMap(x.sc) || !isStringMap(x.fl) || !isStringMap(x.cx)) return undefined;
    features = { segments: x.sg, ...(x.p !== undefined ? { persona: x.p } : {}), scores: x.sc, fields: x.fl, context: x.cx };
  }
  const at = new Date(t);
  if (Number.isNaN(at.getTime())) return undefined;
  return {
    decisionId: id,
    ...(v3 ? { decisionRef: id } : {}),
    at: at.toISOString(),
    catalogVersion: cv,
    channel: ch,
    ...(pl !== undefined ? { placement: pl } : {}),
    customer: c,
    learningContext: lc ?? NO_CONTEXT,
    fallback: fb === 1,
    degraded: dg === 1,
    eligible,
    served: servedArms,
    ...(v4 ? { holdouts: (h as string[] | undefined) ?? [] } : {}),
    ...(unrendered ? { unrendered } : {}),
    ...(features ? { features } : {}),
  };
}

/** A version 1 record: the readers' shape, logged as is (its features of the shape version 2 on log under `f`). */
function readVersion1(r: Record<string, unknown>): DecisionLogRecord | undefined {
  const v1 = r as Partial<DecisionLogRecord>;
  const ok =
    isString(v1.decisionId) &&
    isString(v1.at) &&
    Number.isFinite(Date.parse(v1.at)) &&
    isString(v1.channel) &&
    (v1.placement === undefined || isString(v1.placement)) &&
    (v1.learningContext === undefined || isString(v1.learningContext)) &&
    (v1.fallback === undefined || typeof v1.fallback === 'boolean') &&
    (v1.degraded === undefined || typeof v1.degraded === 'boolean') &&
    candidateList(v1.served) &&
    candidateList(v1.eligible) &&
    (v1.features === undefined || featuresOk(v1.features));
  return ok ? (v1 as DecisionLogRecord) : undefined;
}

const featuresOk = (f: unknown): boolean => {
  if (f === null || typeof f !== 'object' || Array.isArray(f)) return false;
  const x = f as Record<string, unknown>;
  return Array.isArray(x.segments) && x.segments.every(isString) && (x.persona === undefined || isString(x.persona)) && isNumberMap(x.scores) && isStringMap(x.fields) && isStringMap(x.context);
};

/**
 * How far the eligible arms' chances of position 1 may sum above 1: each is
 * logged to 4 significant digits (`significant4`, a relative error of at most
 * 5·10⁻⁴), so their sum is within 5·10⁻⁴ of the exact one, which is at most 1.
 */
export const PROBABILITY_SUM_TOLERANCE = 1e-3;

/**
 * Whether a record's chances are ones a policy could have logged: every
 * eligible and served probability in [0, 1], and the eligible ones (the
 * chances of position 1 of exclusive events) summing to at most 1, up to
 * the rounding of the log (PROBABILITY_SUM_TOLERANCE). A record that breaks
 * this is corrupt, and weighing its decision by 1 / its chance would weigh
 * it wrongly.
 */
function chancesOk(record: DecisionLogRecord): boolean {
  let sum = 0;
  for (const c of record.eligible) {
    if (!(c.probability >= 0 && c.probability <= 1)) return false;
    sum += c.probability;
  }
  return sum <= 1 + PROBABILITY_SUM_TOLERANCE && record.served.every((c) => c.probability >= 0 && c.probability <= 1);
}

const candidateList = (v: unknown): boolean =>
  Array.isArray(v) && v.every((c) => c !== null && typeof c === 'object' && isString((c as LoggedCandidate).actionId) && typeof (c as LoggedCandidate).probability === 'number');

/**
 * The record a logged value holds, as readers see it: a version 5, 4, 3 or 2 record
 * (`LoggedDecisionRecord`) expanded, or a version 1 record (no `v`) as it
 * is; undefined for anything else — a value that is not a record, a
 * record of a later version than this code reads, one with a field of
 * the wrong type, or one whose chances no policy could have logged (a
 * probability outside [0, 1], eligible chances summing above 1: `chancesOk`).
 */
export function readDecisionRecord(value: unknown): DecisionLogRecord | undefined {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const r = value as Record<string, unknown>;
  const record = r.v === DECISION_RECORD_VERSION || r.v === 4 || r.v === 3 || r.v === 2 ? readCompact(r) : r.v === undefined ? readVersion1(r) : undefined;
  return record && chancesOk(record) ? record : undefined;
}

/**
 * The decision record of one JSON line (a log line as delivered, or a bare
 * record: `readDecisionRecord`); undefined for a line that is not one. A
 * blank line is no line: the caller skips it.
 */
export function decisionRecordOfLine(line: string): DecisionLogRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const object = value !== null && typeof value === 'object' ? (value as Record<string, unknown>) : undefined;
  return readDecisionRecord(object?.message === DECISION_RECORD_MESSAGE ? object[DECISION_RECORD_KEY] : object);
}

/**
 * The decision records of a text of JSON lines (the log lines as
 * delivered, or bare records; version 5, 4, 3, 2 or 1, `readDecisionRecord`),
 * and how many lines were not records.
 */
export function decisionRecordsOfText(text: string): { readonly records: DecisionLogRecord[]; readonly malformed: number } {
  const records: DecisionLogRecord[] = [];
  let malformed = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const record = decisionRecordOfLine(line);
    if (record) records.push(record);
    else malformed++;
  }
  return { records, malformed };
}

/** Hive type of a logged candidate list: each tuple as strings (the JSON SerDe reads the numbers as their text). */
const ARMS = 'array<array<string>>';

/**
 * The Glue (Hive) columns of a decision log line as Firehose delivers it:
 * the line's `level` and `message`, and the version 5 (4, 3, 2) record under
 * DECISION_RECORD_KEY (`LoggedDecisionRecord`'s keys). Partitioned by `dt`
 * (yyyy-MM-dd, UTC). Version 1 lines have none of these record columns set.
 */
export const DECISION_LOG_COLUMNS: readonly { readonly name: string; readonly type: string }[] = [
  { name: 'level', type: 'string' },
  { name: 'message', type: 'string' },
  {
    name: DECISION_RECORD_KEY,
    type:
      'struct<v:int,id:string,t:bigint,cv:string,ch:string,pl:string,c:string,lc:string,fb:int,dg:int,' +
      `e:${ARMS},s:${ARMS},u:int,x:array<array<string>>,h:array<string>,f:struct<sg:array<string>,p:string,sc:map<string,double>,fl:map<string,string>,cx:map<string,string>>>`,
  },
];
