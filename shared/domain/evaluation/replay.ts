/**
 * Replay of a logged decision through another catalog: the profile and the
 * request are rebuilt from the decision record's sampled `features`, and the
 * candidate catalog decides with the one `decide()` (decide/decide.ts), at
 * the decision's instant, for the decision's channel and placement, with the
 * learning statistics the caller read.
 *
 * What the candidate would serve first is a distribution over arms (an
 * action, or an action's variant; `armKey`): where its bandit decides
 * (learning on and exploring), the exact position-1 probabilities of every
 * eligible arm (learning/policy.ts `armProbabilities`, read from the arm
 * probability cache decide fills); otherwise the one action it ranks first,
 * with probability 1; NO_ACTION when it serves nothing.
 *
 * The rebuilt profile: the empty profile (profile/view.ts
 * `emptyProfileView`) with each logged field (`features.fields`, path →
 * JSON text) set at its path, the request context from the logged one, and the logged segments, persona and scores as
 * the stored audience. The candidate evaluates its own audience from these
 * fields: a candidate whose rules read a profile field the logging catalog's
 * rules did not read sees that field empty (the record keeps only what the
 * logging catalog read). Experiments assign by the record's pseudonymous
 * customer key, so the candidate's experiment arms are a fair draw, not the
 * customer's real arm.
 */
import { ArmProbabilityCache, type ArmProbabilities } from '../learning/policy.ts';
import { decide } from '../decide/decide.ts';
import type { LearningStats } from '../decide/types.ts';
import type { CompiledCatalog } from '../catalog/compiled.ts';
import { emptyProfileView, type ProfileView } from '../profile/view.ts';
import type { Channel } from '../channels.ts';
import type { DecisionLogRecord } from './decision-record.ts';

/** The arm key of an answer that served nothing. */
export const NO_ACTION = '';

/** An arm's key: the action id, or `<action id>\u0000<variant>` (the ids the bandit's arm probabilities carry). */
export const armKey = (actionId: string, variant?: string): string => (variant === undefined ? actionId : `${actionId}\u0000${variant}`);

/** The action and variant of an arm key. */
export function armOfKey(key: string): { readonly actionId: string; readonly variant?: string } {
  const nul = key.indexOf('\u0000');
  return nul === -1 ? { actionId: key } : { actionId: key.slice(0, nul), variant: key.slice(nul + 1) };
}

/** The arm probability cache decide fills, keeping the last probabilities it handed out. */
class RecordingCache extends ArmProbabilityCache {
  private last: ArmProbabilities | undefined;

  /** The probabilities handed out since the last call, and forget them. */
  take(): ArmProbabilities | undefined {
    const last = this.last;
    this.last = undefined;
    return last;
  }

  override get(key: string, compute: () => ArmProbabilities): ArmProbabilities {
    const value = super.get(key, compute);
    this.last = value;
    return value;
  }
}

/** Sets `value` at the dotted `path` of `target`, making the objects on the way. */
function setPath(target: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let node = target;
  for (let i = 0; i < path.length - 1; i++) {
    const part = path[i] as string;
    const next = node[part];
    const child: Record<string, unknown> = next !== null && typeof next === 'object' && !Array.isArray(next) ? { ...(next as Record<string, unknown>) } : {};
    node[part] = child;
    node = child;
  }
  node[path[path.length - 1] as string] = value;
}

const UNSAFE_PARTS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * The keys of a logged field's path as the record writes it (`traits.tier`,
 * `stats.eventCounts["Cart Abandoned"]`: identifiers joined by dots, other
 * keys as bracketed JSON strings; a leading `profile.` is dropped), or
 * undefined for a path it cannot read.
 */
export function pathKeys(path: string): string[] | undefined {
  const keys: string[] = [];
  const rest = path.replace(/^profile(?=[.[])\.?/, '');
  const token = /^(?:(?<dot>\.)?(?<id>[A-Za-z_$][A-Za-z0-9_$]*)|\[(?<json>"(?:[^"\\]|\\.)*")\])/;
  let at = 0;
  while (at < rest.length) {
    const match = token.exec(rest.slice(at));
    if (!match?.groups) return undefined;
    if (match.groups.id !== undefined) {
      if (keys.length > 0 && match.groups.dot === undefined) return undefined;
      keys.push(match.groups.id);
    } else {
      keys.push(JSON.parse(match.groups.json as string) as string);
    }
    at += match[0].length;
  }
  return keys.length > 0 ? keys : undefined;
}

/** A logged value (JSON text); a text that is not JSON is kept as it is. */
const jsonValue = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
};

/**
 * The profile a record's features describe: the empty profile, each logged
 * field set at its path (`pathKeys`), the logged segments, persona and
 * scores, and the pseudonymous customer as the experiment key.
 */
export function profileOfFeatures(record: Pick<DecisionLogRecord, 'customer' | 'features'>): ProfileView {
  const profile = { ...emptyProfileView(), experimentKey: record.customer } as unknown as Record<string, unknown>;
  const features = record.features;
  if (!features) return profile as unknown as ProfileView;
  for (const [path, text] of Object.entries(features.fields)) {
    const keys = pathKeys(path);
    if (!keys || keys.some((k) => UNSAFE_PARTS.has(k))) continue;
    setPath(profile, keys, jsonValue(text));
  }
  profile.segments = [...features.segments];
  if (features.persona !== undefined) profile.persona = features.persona;
  profile.scores = { ...features.scores };
  return profile as unknown as ProfileView;
}

/** The request context of a record's features (values logged as JSON text). */
export const contextOfFeatures = (features: NonNullable<DecisionLogRecord['features']>): Record<string, unknown> =>
  Object.fromEntries(Object.entries(features.context).map(([name, text]) => [name, jsonValue(text)]));

/** What the candidate would serve first on a logged decision. */
export interface Replayed {
  /** Position-1 probability per arm key (armKey; NO_ACTION for nothing served); arms absent have 0. */
  readonly probabilities: Readonly<Record<string, number>>;
}

export interface ReplayOptions {
  /** The learning statistics the candidate decides with (absent: its prior). */
  readonly learning?: LearningStats;
  /** Kept between replays (arm probabilities are a function of their inputs). @default one per call */
  readonly cache?: ArmProbabilityCache;
}

/** A cache for `replayDecision` to fill and read. */
export const replayCache = (): ArmProbabilityCache => new RecordingCache();

/**
 * The candidate's position-1 distribution on a logged decision, by the one
 * decide. The record must carry `features`.
 * @throws RangeError for a record without features.
 */
export function replayDecision(candidate: CompiledCatalog, record: DecisionLogRecord, options: ReplayOptions = {}): Replayed {
  if (!record.features) throw new RangeError(`decision ${record.decisionId} has no features to replay`);
  const cache = options.cache instanceof RecordingCache ? options.cache : new RecordingCache();
  cache.take();
  const decision = decide(
    candidate,
    profileOfFeatures(record),
    {
      channel: record.channel as Channel,
      ...(record.placement !== undefined ? { placement: record.placement } : {}),
      limit: 1,
      context: contextOfFeatures(record.features),
      explain: false,
    },
    new Date(record.at),
    { ...(options.learning ? { learning: options.learning } : {}), policies: cache, nonce: record.decisionId.slice(-16) },
  );
  const first = decision.actions[0];
  if (!first) return { probabilities: { [NO_ACTION]: 1 } };
  // The bandit decided this answer: its arm probabilities are the distribution (the draw is one sample of it).
  const policy = cache.take();
  if (policy && !first.fallback) {
    const probabilities: Record<string, number> = {};
    policy.ids.forEach((id, i) => {
      const p = policy.probabilities[i] ?? 0;
      if (p > 0) probabilities[id] = (probabilities[id] ?? 0) + p;
    });
    return { probabilities };
  }
  return { probabilities: { [armKey(first.actionId, first.variant)]: 1 } };
}
