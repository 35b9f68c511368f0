/**
 * A worst-case cost estimate of a CEL expression, made at catalog load, in
 * the spirit of Kubernetes' CEL cost limits (cel-go's checker cost
 * estimator): every node of the expression costs 1; a comprehension
 * (`all`, `exists`, `exists_one`, `map`, `filter`) costs its body once per
 * element of the largest list it can meet, so nesting multiplies; string
 * and list operations (`+`, `contains`, `split`, `join`, `matches`, …)
 * cost one unit per 10 characters or elements they traverse or build
 * (`matches` times a quarter of its pattern's RE2 program size).
 *
 * Sizes come from what a rule can be given: literals are their own size;
 * a value read from `context` is bounded by the decide request's context
 * (4 KB of JSON, so at most 4,096 characters or 2,048 elements); one read
 * from the profile by the largest ingested message (32 KB: 32,768
 * characters, 16,384 elements), the profile's segments by what it stores.
 *
 * A rule whose estimate is over MAX_RULE_COST is refused at load, with the
 * position of the node that contributes most. The estimate is an upper
 * bound, not a prediction: the per-decision deadline (rules.ts
 * `createRuleBudget`) bounds what is actually spent.
 *
 * The walk recurses over the expression's AST, whose depth the CEL parser
 * bounds (rules.ts `LIMITS.maxDepth`): no caller-supplied structure is walked.
 */
import type { ASTNode } from '@marcbachmann/cel-js';
import { RULE_HELPERS_BY_NAME } from './helpers.ts';
import { MATCHES_FUNCTION, re2ProgramSize } from './regex.ts';

/** Estimated cost units a single rule may reach (one unit is about one interpreted node). */
export const MAX_RULE_COST = 100_000;

/** Upper bounds of what a rule reads from the request and from the profile. */
export const VALUE_BOUNDS = {
  /** decide's context: ≤ 4,096 bytes of JSON (request.ts CONTEXT_LIMITS). */
  context: { chars: 4_096, elements: 2_048 },
  /** A profile value: set by one message of ≤ 32 KB (ingest limits). */
  profile: { chars: 32_768, elements: 16_384 },
  /** The segments a profile stores. */
  segments: 100,
} as const;

/** A value's bound: cost so far, its size (characters or elements), the size of its elements. */
interface Estimate {
  readonly cost: number;
  readonly size: number;
  readonly elem: number;
  /** Elements when iterated (a value read from input holds fewer elements than characters). */
  readonly count?: number;
  /** Elements of an element when iterated. */
  readonly elemCount?: number;
  /**
   * The elements share one bound (`elem` is their total size, as for a
   * value read from input, where one 4 KB context holds them all), rather
   * than each being up to `elem` (a list built by `map`).
   */
  readonly shared?: boolean;
  /** Where the largest share of the cost is (0-based offset in the expression). */
  readonly hot: { readonly pos: number; readonly cost: number };
}

export interface CostEstimate {
  readonly cost: number;
  /** Offset of the node contributing most to the cost. */
  readonly position: number;
}

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);
/** Methods that traverse their receiver (one unit per 10 characters). */
const TRAVERSE = new Set(['contains', 'startsWith', 'endsWith', 'indexOf', 'lastIndexOf', 'lowerAscii', 'upperAscii', 'trim', 'substring']);

const per10 = (n: number) => Math.ceil(n / 10);
const SCALAR: Omit<Estimate, 'hot'> = { cost: 0, size: 1, elem: 1 };

function posOf(node: ASTNode): number {
  return (node as { pos?: number }).pos ?? 0;
}

function literalString(node: ASTNode | undefined): string | undefined {
  return node && node.op === 'value' && typeof node.args === 'string' ? node.args : undefined;
}

type Scope = ReadonlyMap<string, Omit<Estimate, 'cost' | 'hot'>>;

/** The estimate of `node` in a scope of comprehension variables. */
function estimate(node: ASTNode, scope: Scope): Estimate {
  const at = posOf(node);
  let hot = { pos: at, cost: 0 };
  const add = (e: Estimate): Estimate => {
    if (e.hot.cost > hot.cost) hot = e.hot;
    return e;
  };
  const result = (own: number, children: number, size: number, elem: number, count = size, elemCount = elem): Estimate => {
    const cost = own + children;
    if (own > hot.cost) hot = { pos: at, cost: own };
    return { cost, size, elem, count, elemCount, hot };
  };
  const args = node.args as unknown;
  switch (node.op) {
    case 'value': {
      const v = node.args as unknown;
      const size = typeof v === 'string' ? v.length : v instanceof Uint8Array ? v.length : 1;
      return result(1, 0, size, 1);
    }
    case 'id': {
      const name = node.args as unknown as string;
      const bound = scope.get(name);
      if (bound) return { ...result(1, 0, bound.size, bound.elem, bound.count, bound.elemCount), shared: bound.shared === true };
      const input = name === 'context' ? VALUE_BOUNDS.context : name === 'profile' ? VALUE_BOUNDS.profile : undefined;
      if (input) return { ...result(1, 0, input.chars, input.chars, input.elements, input.elements), shared: true };
      return result(1, 0, 1, 1);
    }
    case '.':
    case '.?':
    case '[]':
    case '[?]': {
      const [target, key] = args as [ASTNode, ASTNode | string];
      const t = add(estimate(target, scope));
      const k = typeof key === 'object' ? add(estimate(key, scope)) : undefined;
      const name = typeof key === 'string' ? key : literalString(k ? (key as ASTNode) : undefined);
      if (target.op === 'id' && (target.args as unknown) === 'profile' && name === 'segments') {
        return result(1, t.cost + (k?.cost ?? 0), VALUE_BOUNDS.segments, 256);
      }
      // A field or element of a value is at most as large as the largest value it holds.
      return { ...result(1, t.cost + (k?.cost ?? 0), t.elem, t.elem, t.elemCount ?? t.elem, t.elemCount ?? t.elem), shared: t.shared === true };
    }
    case 'list': {
      const items = (args as ASTNode[]).map((n) => add(estimate(n, scope)));
      const elem = items.reduce((m, e) => Math.max(m, e.size), 1);
      return result(1, items.reduce((s, e) => s + e.cost, 0), items.length, elem);
    }
    case 'map': {
      const entries = (args as [ASTNode, ASTNode][]).map(([k, v]) => [add(estimate(k, scope)), add(estimate(v, scope))] as const);
      const elem = entries.reduce((m, [k, v]) => Math.max(m, k.size, v.size), 1);
      return result(1, entries.reduce((s, [k, v]) => s + k.cost + v.cost, 0), entries.length, elem);
    }
    case '+': {
      const [l, r] = (args as ASTNode[]).map((n) => add(estimate(n, scope))) as [Estimate, Estimate];
      const size = l.size + r.size;
      return result(1 + per10(size), l.cost + r.cost, size, Math.max(l.elem, r.elem));
    }
    case '==':
    case '!=': {
      const [l, r] = (args as ASTNode[]).map((n) => add(estimate(n, scope))) as [Estimate, Estimate];
      return result(1 + per10(Math.min(l.size, r.size)), l.cost + r.cost, 1, 1);
    }
    case 'in': {
      const [l, r] = (args as ASTNode[]).map((n) => add(estimate(n, scope))) as [Estimate, Estimate];
      return result(1 + (r.count ?? r.size), l.cost + r.cost, 1, 1);
    }
    case '?:': {
      const [c, a, b] = (args as ASTNode[]).map((n) => add(estimate(n, scope))) as [Estimate, Estimate, Estimate];
      return result(1, c.cost + Math.max(a.cost, b.cost), Math.max(a.size, b.size), Math.max(a.elem, b.elem));
    }
    case 'call': {
      const [name, callArgs] = args as [string, ASTNode[]];
      const parts = callArgs.map((n) => add(estimate(n, scope)));
      const size = parts.reduce((m, e) => Math.max(m, e.size), 1);
      // A catalog helper costs what its table says (helpers.ts); other functions 1.
      return result(RULE_HELPERS_BY_NAME.get(name)?.cost ?? 1, parts.reduce((s, e) => s + e.cost, 0), size, size);
    }
    case 'rcall':
      return add(estimateMethod(node, scope));
    default: {
      // Unary and binary operators on scalars: 1 plus their operands.
      const children = Array.isArray(args) ? (args as unknown[]) : [args];
      let cost = 0;
      for (const child of children) {
        if (child && typeof child === 'object' && 'op' in child) cost += add(estimate(child as ASTNode, scope)).cost;
      }
      return result(1, cost, SCALAR.size, SCALAR.elem);
    }
  }
}

function estimateMethod(node: ASTNode, scope: Scope): Estimate {
  const [name, receiver, fnArgs] = node.args as unknown as [string, ASTNode, ASTNode[]];
  const at = posOf(node);
  const done = (own: number, parts: readonly Estimate[], size: number, elem: number): Estimate => {
    let hot = { pos: at, cost: own };
    for (const p of parts) if (p.hot.cost > hot.cost) hot = p.hot;
    return { cost: own + parts.reduce((s, p) => s + p.cost, 0), size, elem, hot };
  };
  if (receiver.op === 'id' && (receiver.args as unknown) === 'cel' && name === 'bind') {
    const [variable, value, body] = fnArgs as [ASTNode, ASTNode, ASTNode];
    const v = estimate(value, scope);
    const inner = new Map(scope).set(variable.args as unknown as string, v);
    return done(1, [v, estimate(body, inner)], 1, 1);
  }
  const r = estimate(receiver, scope);
  if (COMPREHENSIONS.has(name) && fnArgs.length >= 2 && fnArgs[0]?.op === 'id') {
    const variable = fnArgs[0].args as unknown as string;
    // The variable is an element (a list) or a key (a map) of the range.
    const element = { size: r.elem, elem: r.elem, count: r.elemCount ?? r.elem, elemCount: r.elemCount ?? r.elem, shared: r.shared === true };
    const bodyCost = (bound: typeof element) => {
      const inner = new Map(scope).set(variable, bound);
      const steps = fnArgs.slice(1).map((n) => estimate(n, inner));
      return { steps, cost: steps.reduce((s, e) => s + e.cost, 0) };
    };
    const { steps, cost: body } = bodyCost(element);
    const iterations = r.count ?? r.size;
    // Elements sharing one bound: at most one of them is that large, the others are as small as can be
    // (for a body convex in its element's size, the worst case is one large element and the rest minimal).
    const own = r.shared
      ? (() => {
          const small = bodyCost({ size: 1, elem: 1, count: 1, elemCount: 1, shared: true }).cost;
          return 1 + iterations * (1 + small) + Math.max(0, body - small);
        })()
      : 1 + iterations * (1 + body);
    // The hot spot of a costly comprehension is the comprehension itself.
    const estimateOf: Estimate = {
      cost: r.cost + own,
      size: name === 'map' || name === 'filter' ? iterations : 1,
      elem: name === 'map' ? Math.max(1, (steps.at(-1) as Estimate).size) : name === 'filter' ? r.elem : 1,
      ...(name === 'filter' ? { shared: r.shared === true, elemCount: r.elemCount ?? r.elem } : {}),
      hot: { pos: at, cost: own },
    };
    return r.hot.cost > own ? { ...estimateOf, hot: r.hot } : estimateOf;
  }
  const parts = fnArgs.map((n) => estimate(n, scope));
  const arg = (i: number) => parts[i] ?? { cost: 0, size: 1, elem: 1, hot: { pos: at, cost: 0 } };
  if (name === MATCHES_FUNCTION || name === 'matches') {
    // RE2: linear in the text, times the size of the program: about the pattern's length, or for a literal pattern
    // its compiled size when larger (a counted repetition such as `.{1000}` is 7 characters and 1,000 instructions).
    const pattern = literalString(fnArgs[0]);
    const program = pattern === undefined ? arg(0).size : Math.max(arg(0).size, re2ProgramSize(pattern));
    return done((1 + per10(r.size)) * (1 + Math.ceil(program / 4)), [r, ...parts], 1, 1);
  }
  if (TRAVERSE.has(name)) return done(1 + per10(r.size + arg(0).size), [r, ...parts], r.size, 1);
  if (name === 'split') return { ...done(1 + per10(r.size), [r, ...parts], r.size, r.size), shared: true };
  if (name === 'join') {
    const n = r.count ?? r.size;
    const size = n * r.elem + Math.max(0, n - 1) * (fnArgs.length > 0 ? arg(0).size : 0);
    return done(1 + per10(size), [r, ...parts], size, 1);
  }
  if (name === 'size') return done(1, [r, ...parts], 1, 1);
  const size = [r, ...parts].reduce((m, e) => Math.max(m, e.size), 1);
  return done(1, [r, ...parts], size, size);
}

/** The worst-case cost of a parsed expression and where most of it comes from. */
export function estimateCost(ast: ASTNode): CostEstimate {
  const e = estimate(ast, new Map());
  return { cost: e.cost, position: e.hot.pos };
}
