/**
 * "Did you mean …?" for catalog mistakes: the known name closest to a
 * misspelled one (a field, a segment, a persona, a tag, a model, a
 * channel, a filter), by edit distance, ignoring case.
 */

/** Longest name compared (longer ones get no suggestion): the distance costs length × length. */
const MAX_COMPARED = 128;

/**
 * Edit distance between `a` and `b` (optimal string alignment: insertions,
 * deletions, substitutions and swaps of two neighbours, each 1), or
 * `limit + 1` as soon as it must exceed `limit`.
 */
export function editDistance(a: string, b: string, limit = Number.POSITIVE_INFINITY): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let beforePrevious: number[] = [];
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d = Math.min(d, (beforePrevious[j - 2] as number) + 1);
      current.push(d);
      if (d < best) best = d;
    }
    if (best > limit) return limit + 1;
    beforePrevious = previous;
    previous = current;
  }
  return previous[b.length] as number;
}

/**
 * The candidate closest to `word` when it is close enough to be a slip: at
 * most a third of the word's length in edits (at least 1, at most 3), or
 * the same name in another case; else the shortest candidate that begins
 * with the word (`churn` → `churnRisk`, for a word of 3 characters or
 * more). Undefined when nothing is that close.
 */
export function closestName(word: string, candidates: Iterable<string>): string | undefined {
  if (word.length === 0 || word.length > MAX_COMPARED) return undefined;
  const lower = word.toLowerCase();
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of candidates) {
    if (candidate === word || candidate.length > MAX_COMPARED) continue;
    const d = editDistance(lower, candidate.toLowerCase(), bestDistance - 1);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  if (best !== undefined || word.length < 3) return best;
  for (const candidate of candidates) {
    if (candidate.length > word.length && candidate.toLowerCase().startsWith(lower) && (best === undefined || candidate.length < best.length)) best = candidate;
  }
  return best;
}

/** `did you mean "x"?` for the closest candidate, or undefined. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const name = closestName(word, candidates);
  return name === undefined ? undefined : `did you mean "${name}"?`;
}
