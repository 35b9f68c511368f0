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
 * The checks are the same functions' (shared/domain/catalog/decision.ts);
 * a property test holds the columnar path equal to them.
 */
import type { Channel } from '../channels.ts';
import type { Audience, CompiledAction, CompiledCatalog, CompiledSuppression } from '../catalog/compiled.ts';
import { canServePlacement, resolvePlacement } from '../catalog/decision.ts';

/** Per-candidate flags: which of its own checks apply. */
export const F_TARGET_ANY = 1; // targeting.segments: one of them
export const F_TARGET_NONE = 2; // targeting.excludeSegments: none of them
export const F_TARGET_PERSONA = 4; // targeting.personas: one of them
export const F_CAPS = 8;
export const F_RULE = 16;
export const F_EXPERIMENTS = 32;
/** No variants and no propensity model: its propensity is the plain prior when nothing is learnt. */
export const F_PLAIN = 64;
export const F_TAGS = 128;
export const F_TARGETING = F_TARGET_ANY | F_TARGET_NONE | F_TARGET_PERSONA;

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

/** The action is a fallback of this channel/placement. */
export function isFallbackHere(action: CompiledAction, channel: Channel, placement: string | undefined): boolean {
  return action.fallbackRoles.some((r) => r.channel === channel && (r.placement === undefined || r.placement === placement));
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
export function suppressedTagMask(slot: Slot, active: readonly CompiledSuppression[]): Uint32Array | undefined {
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

/** The candidate carries a suppressed tag. */
export function isSuppressed(slot: Slot, k: number, mask: Uint32Array): boolean {
  const n = mask.length;
  const base = k * n;
  for (let w = 0; w < n; w++) if (((slot.tagBits[base + w] as number) & (mask[w] as number)) !== 0) return true;
  return false;
}

/** The decision's audience as the slot's bits. */
export interface AudienceBits {
  readonly segments: Uint32Array;
  readonly personas: Uint32Array;
}

export function audienceBits(slot: Slot, audience: Pick<Audience, 'segments' | 'persona'>): AudienceBits {
  const { numbering } = slot;
  const segments = new Uint32Array(numbering.segmentWords);
  for (const id of audience.segments) setBit(segments, 0, numbering.segments.get(id));
  const personas = new Uint32Array(numbering.personaWords);
  if (audience.persona !== undefined) setBit(personas, 0, numbering.personas.get(audience.persona));
  return { segments, personas };
}

function intersects(bits: Uint32Array, base: number, mask: Uint32Array): boolean {
  for (let w = 0; w < mask.length; w++) if (((bits[base + w] as number) & (mask[w] as number)) !== 0) return true;
  return false;
}

/** `matchesTargeting` on the slot's bits (`flags` has at least one targeting flag). */
export function matchesTargetingBits(slot: Slot, k: number, flags: number, bits: AudienceBits): boolean {
  const sw = bits.segments.length;
  if ((flags & F_TARGET_ANY) !== 0 && !intersects(slot.targetAny, k * sw, bits.segments)) return false;
  if ((flags & F_TARGET_NONE) !== 0 && intersects(slot.targetNone, k * sw, bits.segments)) return false;
  if ((flags & F_TARGET_PERSONA) !== 0 && !intersects(slot.targetPersonas, k * bits.personas.length, bits.personas)) return false;
  return true;
}
