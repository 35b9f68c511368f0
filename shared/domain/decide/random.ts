/**
 * Deterministic hashing and pseudo-random numbers for decisioning. Nothing
 * here is cryptographic: the goal is a stable, well-mixed value for a given
 * input (sticky experiment arms, reproducible Thompson draws in tests) at a
 * cost of nanoseconds, with no dependency.
 */

/** 32-bit FNV-1a over the UTF-16 code units of `text`, finished with a murmur3 avalanche. */
export function hash32(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** A point in [0, 1) derived from `text`: the bucket of a sticky assignment. */
export const unitHash = (text: string): number => hash32(text) / 0x1_0000_0000;

/** A uniform generator in [0, 1). */
export type Random = () => number;

/** mulberry32: small, fast, good enough for sampling; the same seed gives the same sequence. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 0x1_0000_0000;
  };
}

/** Standard normal draw (Box–Muller, one of the pair). */
function normal(random: Random): number {
  let u = 0;
  while (u === 0) u = random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Gamma(shape, 1) draw, Marsaglia–Tsang; shape < 1 through the boost u^(1/shape). */
export function sampleGamma(shape: number, random: Random): number {
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = random();
    return sampleGamma(shape + 1, random) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = random();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v;
  }
}

/** Beta(alpha, beta) draw: the Thompson sample of a conversion rate. */
export function sampleBeta(alpha: number, beta: number, random: Random): number {
  const x = sampleGamma(alpha, random);
  const y = sampleGamma(beta, random);
  const sum = x + y;
  return sum > 0 ? x / sum : alpha / (alpha + beta);
}
