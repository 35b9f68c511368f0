/**
 * The candidates of a slot (channel + placement) in a compact, columnar
 * form, built once per catalog version and slot.
 *
 * Why columns: a decision reads a few facts of every candidate (validity,
 * tags, targeting, which checks apply, the static part of its score). Read
 * from the action objects, that touches hundreds of objects spread over the
 * heap; right after the profile read, with the CPU caches and TLB cold,
 * that memory traffic was most of decide's time. Read from typed arrays it
 * is a few contiguous pages, and an action object is only read when one of
 * its own checks applies (caps, a rule the eligibility index could not
 * settle, experiments, variants) or when it wins.
 *
 * It is an accelerator of the per-candidate checks (checks.ts), never a
 * definition: `filteredOut` settles the `accelerated` checks (validity,
 * suppression, targeting) from the columns, and drops the actions whose
 * eligibility rule has a false conjunct (the catalog's EligibilityIndex);
 * `ruleSettled` tells the rule check a rule whose conjuncts all hold.
 * test/unit/decide-slot.test.ts holds it equal to the checks (a property
 * test: it drops exactly what they drop, settles only rules that hold).
 */
import type { Channel } from '../channels.ts';
import type { Audience, CompiledAction, CompiledCatalog, EligibilityIndex, RuleVariables } from '../catalog/compiled.ts';
import { budgetAllows } from '../catalog/rules.ts';
import type { DecisionPolicies } from './policies.ts';
import { canServePlacement, isFallbackHere, resolvePlacement } from './policies.ts';

/** Per-candidate flags: which of its own checks apply. */
const F_TARGET_ANY = 1; // targeting.segments: one of them
const F_TARGET_NONE = 2; // targeting.excludeSegments: none of them
const F_TARGET_PERSONA = 4; // targeting.personas: one of them
const F_CAPS = 8;
export const F_RULE = 16;
const F_EXPERIMENTS = 32;
/** No variants and no propensity model: its propensity is the plain prior when nothing is learnt. */
export const F_PLAIN = 64;
const F_TAGS = 128;
const F_TARGETING = F_TARGET_ANY | F_TARGET_NONE | F_TARGET_PERSONA;
/** Checks of the candidate's own that read its object: frequency caps, a rule, experiments. */
export const F_OWN_CHECKS = F_CAPS | F_RULE | F_EXPERIMENTS;

/** Bit numbers of the catalog's segments, personas and tags. */
interface Numbering {
  readonly segments: ReadonlyMap<string, number>;
  readonly personas: ReadonlyMap<string, number>;
  readonly tags: ReadonlyMap<string, number>;
  readonly segmentWords: number;
  readonly personaWords: number;
  readonly tagWords: number;
}

export interface Slot {
  readonly list: readonly CompiledAction[];
  /** Catalog index of each candidate (the eligibility bitsets are by index). */
  readonly indices: Int32Array;
  readonly validFrom: Float64Array;
  readonly validTo: Float64Array;
  readonly flags: Uint8Array;
  readonly value: Float64Array;
  /** The action's weight in this slot (arbitration weights included). */
  readonly weight: Float64Array;
  readonly priority: Float64Array;
  /** `tagWords` words per candidate. */
  readonly tagBits: Uint32Array;
  /** `segmentWords` words per candidate: targeting.segments, targeting.excludeSegments. */
  readonly targetAny: Uint32Array;
  readonly targetNone: Uint32Array;
  /** `personaWords` words per candidate: targeting.personas. */
  readonly targetPersonas: Uint32Array;
  readonly numbering: Numbering;
}

const words = (n: number) => Math.max(1, Math.ceil(n / 32));

function setBit(bits: Uint32Array, offset: number, bit: number | undefined): void {
  if (bit === undefined) return;
  const w = offset + (bit >>> 5);
  bits[w] = (bits[w] as number) | (1 << (bit & 31));
}

const numberings = new WeakMap<CompiledCatalog, Numbering>();

function numberingOf(catalog: CompiledCatalog): Numbering {
  let numbering = numberings.get(catalog);
  if (!numbering) {
    const tags = new Map<string, number>();
    for (const action of catalog.actions) for (const tag of action.tags) if (!tags.has(tag)) tags.set(tag, tags.size);
    const segments = new Map(catalog.segments.map((s, i) => [s.id, i]));
    const personas = new Map(catalog.personas.map((p, i) => [p.id, i]));
    numbering = {
      segments,
      personas,
      tags,
      segmentWords: words(segments.size),
      personaWords: words(personas.size),
      tagWords: words(tags.size),
    };
    numberings.set(catalog, numbering);
  }
  return numbering;
}

function buildSlot(catalog: CompiledCatalog, channel: Channel, placement: string | undefined): Slot {
  const list = catalog.actionsByChannel[channel].filter(
    (action) => canServePlacement(action, channel, placement) && !(action.fallbackRoles.length > 0 && isFallbackHere(action, channel, placement)),
  );
  const n = list.length;
  const numbering = numberingOf(catalog);
  const where = resolvePlacement(catalog, channel, placement);
  const slot: Slot = {
    list,
    indices: Int32Array.from(list, (a) => a.index),
    validFrom: Float64Array.from(list, (a) => a.validFrom),
    validTo: Float64Array.from(list, (a) => a.validTo),
    flags: new Uint8Array(n),
    value: Float64Array.from(list, (a) => a.value),
    weight: Float64Array.from(list, (a) => where.weights[a.index] ?? a.weight),
    priority: Float64Array.from(list, (a) => a.priority),
    tagBits: new Uint32Array(n * numbering.tagWords),
    targetAny: new Uint32Array(n * numbering.segmentWords),
    targetNone: new Uint32Array(n * numbering.segmentWords),
    targetPersonas: new Uint32Array(n * numbering.personaWords),
    numbering,
  };
  list.forEach((action, k) => {
    let flags = 0;
    const t = action.targeting;
    if (t?.segments) {
      flags |= F_TARGET_ANY;
      for (const s of t.segments) setBit(slot.targetAny, k * numbering.segmentWords, numbering.segments.get(s));
    }
    if (t?.excludeSegments) {
      flags |= F_TARGET_NONE;
      for (const s of t.excludeSegments) setBit(slot.targetNone, k * numbering.segmentWords, numbering.segments.get(s));
    }
    if (t?.personas) {
      flags |= F_TARGET_PERSONA;
      for (const p of t.personas) setBit(slot.targetPersonas, k * numbering.personaWords, numbering.personas.get(p));
    }
    if (action.caps.length > 0) flags |= F_CAPS;
    if (action.eligibility) flags |= F_RULE;
    if (action.experiments.length > 0) flags |= F_EXPERIMENTS;
    if (action.variants.length === 0 && action.propensityModel === undefined) flags |= F_PLAIN;
    if (action.tags.length > 0) {
      flags |= F_TAGS;
      for (const tag of action.tags) setBit(slot.tagBits, k * numbering.tagWords, numbering.tags.get(tag));
    }
    slot.flags[k] = flags;
  });
  return slot;
}

const slotCache = new WeakMap<CompiledCatalog, Map<string, Slot>>();

/**
 * The actions that compete on a channel/placement: content for it, and not
 * in the fallback role there (a fallback serves only when nothing else
 * does). Computed once per catalog version and slot.
 */
export function slotFor(catalog: CompiledCatalog, channel: Channel, placement: string | undefined): Slot {
  let bySlot = slotCache.get(catalog);
  if (!bySlot) {
    bySlot = new Map();
    slotCache.set(catalog, bySlot);
  }
  const key = `${channel}\u0000${placement ?? ''}`;
  let slot = bySlot.get(key);
  if (!slot) {
    slot = buildSlot(catalog, channel, placement);
    // Placements are free text from callers: bound the cache.
    if (bySlot.size >= 1_000) bySlot.clear();
    bySlot.set(key, slot);
  }
  return slot;
}

/** The tags the active suppression policies suppress, as the slot's tag bits (undefined: none). */
function suppressedTagMask(slot: Slot, policies: DecisionPolicies): Uint32Array | undefined {
  const active = policies.suppressions;
  if (active.length === 0) return undefined;
  const mask = new Uint32Array(slot.numbering.tagWords);
  let any = false;
  for (const policy of active) {
    for (const tag of policy.tags) {
      const bit = slot.numbering.tags.get(tag);
      if (bit === undefined) continue; // no action carries it
      setBit(mask, 0, bit);
      any = true;
    }
  }
  return any ? mask : undefined;
}

function intersects(bits: Uint32Array, base: number, mask: Uint32Array): boolean {
  for (let w = 0; w < mask.length; w++) if (((bits[base + w] as number) & (mask[w] as number)) !== 0) return true;
  return false;
}

interface ConjunctVerdicts {
  /** Actions whose eligibility rule has a false conjunct: not eligible. */
  readonly out: Uint32Array;
  /** Actions whose rule is only indexed conjuncts, all true: eligible by their rule. */
  readonly allTrue: Uint32Array;
}

/**
 * Every distinct conjunct of the catalog's eligibility rules, once. A
 * conjunct that is false rules its actions out (CEL's `&&` is false when
 * one side is, errors included); one that is true is a step towards "all
 * true"; anything else (a missing field, a value only cel-js handles)
 * leaves the verdict to the rule itself, evaluated as usual. Conjuncts are
 * pure: evaluating one a rule would have short-circuited changes nothing.
 */
function conjunctVerdicts(index: EligibilityIndex | undefined, vars: RuleVariables): ConjunctVerdicts | undefined {
  if (!index) return undefined;
  const out = new Uint32Array(index.words);
  const unsure = new Uint32Array(index.words);
  for (let c = 0; c < index.conjuncts.length; c++) {
    let value: unknown;
    // Past the deadline a conjunct decides nothing: its rules meet the deadline themselves (evaluateRule).
    if (!budgetAllows(vars, index.costs?.[c])) value = undefined;
    else {
      try {
        value = (index.conjuncts[c] as (vars: RuleVariables) => unknown)(vars);
      } catch {
        value = undefined;
      }
    }
    if (value === true) continue;
    const target = value === false ? out : unsure;
    const actions = index.actionsOf[c] as Uint32Array;
    for (let w = 0; w < index.words; w++) target[w] = (target[w] as number) | (actions[w] as number);
  }
  const allTrue = new Uint32Array(index.words);
  for (let w = 0; w < index.words; w++) {
    allTrue[w] = (index.complete[w] as number) & ~(out[w] as number) & ~(unsure[w] as number);
  }
  return { out, allTrue };
}

/** One decision's facts as the slot's bits: the instant, the suppressed tags, the audience, the rules' conjuncts. */
export interface SlotFilter {
  readonly nowMs: number;
  readonly suppressed: Uint32Array | undefined;
  readonly segments: Uint32Array;
  readonly personas: Uint32Array;
  readonly verdicts: ConjunctVerdicts | undefined;
}

export function slotFilter(
  slot: Slot,
  catalog: CompiledCatalog,
  facts: { readonly nowMs: number; readonly audience: Pick<Audience, 'segments' | 'persona'>; readonly vars: RuleVariables; readonly policies: DecisionPolicies },
): SlotFilter {
  const { numbering } = slot;
  const segments = new Uint32Array(numbering.segmentWords);
  for (const id of facts.audience.segments) setBit(segments, 0, numbering.segments.get(id));
  const personas = new Uint32Array(numbering.personaWords);
  if (facts.audience.persona !== undefined) setBit(personas, 0, numbering.personas.get(facts.audience.persona));
  return {
    nowMs: facts.nowMs,
    suppressed: suppressedTagMask(slot, facts.policies),
    segments,
    personas,
    verdicts: conjunctVerdicts(catalog.eligibilityIndex, facts.vars),
  };
}

/**
 * The candidate at slot position `k` fails one of the accelerated checks
 * (validity, suppression, targeting: exactly as checks.ts would), or its
 * eligibility rule has a false conjunct (the rule check would drop it).
 */
export function filteredOut(slot: Slot, k: number, f: SlotFilter): boolean {
  const verdicts = f.verdicts;
  if (verdicts) {
    const i = slot.indices[k] as number;
    if (((verdicts.out[i >>> 5] as number) & (1 << (i & 31))) !== 0) return true;
  }
  if (!(f.nowMs >= (slot.validFrom[k] as number) && f.nowMs < (slot.validTo[k] as number))) return true;
  const flags = slot.flags[k] as number;
  if (f.suppressed && (flags & F_TAGS) !== 0 && intersects(slot.tagBits, k * f.suppressed.length, f.suppressed)) return true;
  if ((flags & F_TARGETING) !== 0) {
    const sw = f.segments.length;
    if ((flags & F_TARGET_ANY) !== 0 && !intersects(slot.targetAny, k * sw, f.segments)) return true;
    if ((flags & F_TARGET_NONE) !== 0 && intersects(slot.targetNone, k * sw, f.segments)) return true;
    if ((flags & F_TARGET_PERSONA) !== 0 && !intersects(slot.targetPersonas, k * f.personas.length, f.personas)) return true;
  }
  return false;
}

/** The action's eligibility rule holds without running it: every conjunct indexed and true. */
export function ruleSettled(f: SlotFilter, actionIndex: number): boolean {
  const verdicts = f.verdicts;
  return verdicts !== undefined && ((verdicts.allTrue[actionIndex >>> 5] as number) & (1 << (actionIndex & 31))) !== 0;
}
