/**
 * A fast path for the common shape of catalog rules: a CEL expression made
 * only of field access, literals, comparisons of numbers, equality of
 * primitives, `in`, `!`, `&&`, `||`, `?:`, `has()` and the catalog helpers
 * is turned into plain JavaScript closures at load (about 10x faster than
 * interpreting the AST, which matters with 1,000 actions per decision).
 *
 * It never changes a rule's meaning: the expression was parsed and
 * type-checked by cel-js first, and whenever a value at run time is outside
 * what the closures handle exactly (a string ordering, a timestamp, a list
 * compared with a list, …) they throw UNSUPPORTED and the rule is evaluated
 * by cel-js instead. `&&`/`||` keep CEL's error absorption (`false && error`
 * is false). An expression with any other construct (arithmetic, methods,
 * macros such as `exists`) is always evaluated by cel-js.
 *
 * A field missing from the profile or context (`profile.scores.churnRisk`
 * for a new customer) is CEL's "no such key" error. It is common — most
 * rules meet some customer without the field — so it is not thrown (a throw
 * costs microseconds): the closures return it as a value (`MissingKey`),
 * which propagates like CEL's error values and is absorbed by `&&`/`||`
 * exactly as cel-js absorbs its thrown error. The runner returns it, and
 * evaluateRule treats it as cel-js's error: no match, counted as a failure.
 */
import type { ASTNode } from '@marcbachmann/cel-js';
import type { RuleConjunct, RuleVariables } from './compiled.ts';
import { estimateCost } from './cost.ts';
import { INVALID_TIME, LITERAL_KINDS, RULE_HELPERS_BY_NAME, timeValue, type HelperArgument, type RuleHelper } from './helpers.ts';
import { MATCHES_FUNCTION, re2 } from './regex.ts';

/** Thrown when a value is outside the fast path: evaluate with cel-js instead. */
export const UNSUPPORTED: unique symbol = Symbol('cel-fast-path-unsupported');

/**
 * CEL's "no such key" error as a value (no stack trace, never thrown): what
 * a rule gives when it reads a field the profile or context does not have.
 */
export class MissingKey {
  readonly code = 'no_such_key';
  readonly message: string;
  constructor(readonly key: string) {
    this.message = `No such key: ${key}`;
  }
}

/** One MissingKey per key (they are immutable): a rule that meets a missing field allocates nothing. */
const missingKeys = new Map<string, MissingKey>();

function missing(key: string): MissingKey {
  let value = missingKeys.get(key);
  if (value === undefined) {
    value = new MissingKey(key);
    // Keys are the catalog's field names, plus any a rule computes: bounded all the same.
    if (missingKeys.size < 1_024) missingKeys.set(key, value);
  }
  return value;
}

const isMissing = (v: unknown): v is MissingKey => v instanceof MissingKey;

type Fn = (vars: RuleVariables) => unknown;

export interface FastHelpers {
  /**
   * Closures by canonical expression, shared by every rule compiled with the
   * same map (one catalog): a sub-expression written in many rules
   * (`profile.stats.visitsToday`, `daysSince(profile.stats.lastPurchaseAt)`)
   * is one closure, so a decision touches far less memory. Closures are pure.
   */
  readonly intern?: Map<string, Fn | undefined>;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function field(obj: unknown, key: string): unknown {
  if (isMissing(obj)) return obj;
  if (!isPlainObject(obj)) throw UNSUPPORTED;
  const value = Object.hasOwn(obj, key) ? obj[key] : undefined;
  return value === undefined ? missing(key) : value;
}

const isNumber = (v: unknown): v is number | bigint => typeof v === 'number' || typeof v === 'bigint';

/** CEL equality for primitives of the same kind; anything else is left to cel-js. */
function equals(a: unknown, b: unknown): boolean {
  if (isNumber(a) && isNumber(b)) return Number(a) === Number(b);
  if (typeof a === 'string' && typeof b === 'string') return a === b;
  if (typeof a === 'boolean' && typeof b === 'boolean') return a === b;
  if (a === null && b === null) return true;
  throw UNSUPPORTED;
}

function asBool(v: unknown): boolean {
  if (v === true || v === false) return v;
  throw UNSUPPORTED;
}

/**
 * CEL `&&` (absorbing value false) and `||` (absorbing value true): the
 * absorbing value wins over an error on either side; a missing field on one
 * side and the other side's neutral value gives the missing field (the
 * rule's error). A value outside the fast path (UNSUPPORTED) on either side
 * hands the whole rule to cel-js.
 */
function logical(absorbing: boolean): (l: Fn, r: Fn) => Fn {
  return (l, r) => (vars) => {
    const left = l(vars);
    if (left === absorbing) return absorbing;
    const right = r(vars);
    if (left === !absorbing) return isMissing(right) ? right : asBool(right);
    if (!isMissing(left)) throw UNSUPPORTED;
    if (right === absorbing) return absorbing;
    if (right !== !absorbing && !isMissing(right)) throw UNSUPPORTED;
    return left;
  };
}
const and = logical(false);
const or = logical(true);

function literalString(node: ASTNode | undefined): string | undefined {
  return node && node.op === 'value' && typeof node.args === 'string' ? node.args : undefined;
}

/** Compile a node (shared through `h.intern`), or return undefined when the expression needs cel-js. */
function compile(node: ASTNode, h: FastHelpers): Fn | undefined {
  const intern = h.intern;
  if (!intern) return compileNode(node, h);
  const key = astKey(node);
  if (intern.has(key)) return intern.get(key);
  const fn = compileNode(node, h);
  intern.set(key, fn);
  return fn;
}

function compileNode(node: ASTNode, h: FastHelpers): Fn | undefined {
  switch (node.op) {
    case 'value': {
      const v = node.args;
      if (typeof v === 'bigint') {
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(-Number.MAX_SAFE_INTEGER)) return undefined;
        const n = Number(v);
        return () => n;
      }
      if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean' || v === null) return () => v;
      return undefined;
    }
    case 'id': {
      const name = node.args;
      if (!['profile', 'context', 'channel', 'placement', 'visitsToday', 'preferredChannel'].includes(name)) return undefined;
      return (vars) => (vars as unknown as Record<string, unknown>)[name];
    }
    case '.': {
      const [target, key] = node.args;
      const t = compile(target, h);
      return t && ((vars) => field(t(vars), key));
    }
    case '[]': {
      const [target, index] = node.args;
      const key = literalString(index);
      const t = compile(target, h);
      if (!t) return undefined;
      if (key !== undefined) return (vars) => field(t(vars), key);
      const i = compile(index, h);
      return (
        i &&
        ((vars) => {
          const k = i(vars);
          if (isMissing(k)) return k;
          if (typeof k !== 'string') throw UNSUPPORTED;
          return field(t(vars), k);
        })
      );
    }
    case '!_': {
      const a = compile(node.args, h);
      return (
        a &&
        ((vars) => {
          const v = a(vars);
          return isMissing(v) ? v : !asBool(v);
        })
      );
    }
    case '&&':
    case '||': {
      const l = compile(node.args[0], h);
      const r = compile(node.args[1], h);
      if (!l || !r) return undefined;
      return node.op === '&&' ? and(l, r) : or(l, r);
    }
    case '?:': {
      const [c, a, b] = node.args.map((n) => compile(n, h));
      if (!c || !a || !b) return undefined;
      return (vars) => {
        const cond = c(vars);
        if (isMissing(cond)) return cond;
        return asBool(cond) ? a(vars) : b(vars);
      };
    }
    case '==':
    case '!=': {
      const l = compile(node.args[0], h);
      const r = compile(node.args[1], h);
      if (!l || !r) return undefined;
      const eq = node.op === '==';
      return (vars) => {
        const a = l(vars);
        if (isMissing(a)) return a;
        const b = r(vars);
        if (isMissing(b)) return b;
        return equals(a, b) === eq;
      };
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const l = compile(node.args[0], h);
      const r = compile(node.args[1], h);
      if (!l || !r) return undefined;
      const cmp =
        node.op === '<'
          ? (a: number, b: number) => a < b
          : node.op === '<='
            ? (a: number, b: number) => a <= b
            : node.op === '>'
              ? (a: number, b: number) => a > b
              : (a: number, b: number) => a >= b;
      return (vars) => {
        const a = l(vars);
        if (isMissing(a)) return a;
        const b = r(vars);
        if (isMissing(b)) return b;
        if (typeof a !== 'number' || typeof b !== 'number' || Number.isNaN(a) || Number.isNaN(b)) throw UNSUPPORTED;
        return cmp(a, b);
      };
    }
    case 'in': {
      const [elNode, collNode] = node.args;
      const el = compile(elNode, h);
      if (!el) return undefined;
      if (collNode.op === 'list') {
        const items = collNode.args.map((n) => compile(n, h));
        if (items.some((i) => !i)) return undefined;
        return (vars) => {
          const v = el(vars);
          if (isMissing(v)) return v;
          for (const item of items) {
            const candidate = (item as Fn)(vars);
            if (isMissing(candidate)) return candidate;
            if (equals(v, candidate)) return true;
          }
          return false;
        };
      }
      const coll = compile(collNode, h);
      return (
        coll &&
        ((vars) => {
          const v = el(vars);
          if (isMissing(v)) return v;
          const c = coll(vars);
          if (isMissing(c)) return c;
          if (Array.isArray(c)) {
            if (typeof v !== 'string') throw UNSUPPORTED;
            for (const item of c) {
              if (typeof item !== 'string') throw UNSUPPORTED;
              if (item === v) return true;
            }
            return false;
          }
          if (isPlainObject(c) && typeof v === 'string') return Object.hasOwn(c, v) && c[v] !== undefined;
          throw UNSUPPORTED;
        })
      );
    }
    case 'call':
      return compileCall(node.args[0], node.args[1], h);
    case 'rcall': {
      // `text.matches("literal")` (renamed to the RE2 function by rules.ts): the program compiled once.
      const [name, receiver, args] = node.args as unknown as [string, ASTNode, ASTNode[]];
      const pattern = args.length === 1 ? literalString(args[0]) : undefined;
      if (name !== MATCHES_FUNCTION || pattern === undefined) return undefined;
      let program: ReturnType<typeof re2>;
      try {
        program = re2(pattern);
      } catch {
        return undefined;
      }
      const t = compile(receiver, h);
      return (
        t &&
        ((vars) => {
          const text = t(vars);
          if (isMissing(text)) return text;
          if (typeof text !== 'string') throw UNSUPPORTED;
          return program.test(text);
        })
      );
    }
    default:
      return undefined;
  }
}

function compileCall(name: string, args: ASTNode[], h: FastHelpers): Fn | undefined {
  const [first] = args;
  switch (name) {
    case 'has': {
      if (args.length !== 1 || !first || first.op !== '.') return undefined;
      const [target, key] = first.args;
      const t = compile(target, h);
      return (
        t &&
        ((vars) => {
          const obj = t(vars);
          if (isMissing(obj)) return obj;
          if (!isPlainObject(obj)) throw UNSUPPORTED;
          return Object.hasOwn(obj, key) && obj[key] !== undefined;
        })
      );
    }
    default: {
      const helper = RULE_HELPERS_BY_NAME.get(name);
      return helper && compileHelper(helper, args, h);
    }
  }
}

/**
 * A call of a helper of the table (helpers.ts): its arguments compiled to
 * closures and converted as cel-js converts them, then the helper's own
 * `run`. A value cel-js would refuse is UNSUPPORTED (cel-js then fails it);
 * a missing `string` argument propagates as a MissingKey, a missing or null
 * `time` is "never".
 */
function compileHelper(helper: RuleHelper, args: readonly ASTNode[], h: FastHelpers): Fn | undefined {
  if (args.length !== helper.args.length || args.length > 2) return undefined;
  const parts: ((vars: RuleVariables) => unknown)[] = [];
  for (let i = 0; i < helper.args.length; i++) {
    const arg = helper.args[i] as HelperArgument;
    const node = args[i] as ASTNode;
    if (LITERAL_KINDS.has(arg.kind)) {
      const literal = literalString(node);
      if (literal === undefined) return undefined;
      parts.push(() => literal);
      continue;
    }
    const fn = compile(node, h);
    if (!fn) return undefined;
    if (arg.kind === 'time') {
      parts.push((vars) => {
        const value = fn(vars);
        if (isMissing(value)) return undefined;
        if (value !== null && typeof value !== 'string') throw UNSUPPORTED;
        const t = timeValue(value);
        if (t === INVALID_TIME) throw UNSUPPORTED;
        return t;
      });
    } else {
      parts.push((vars) => {
        const value = fn(vars);
        if (isMissing(value)) return value;
        if (typeof value !== 'string') throw UNSUPPORTED;
        return value;
      });
    }
  }
  const run = helper.run;
  const [one, two] = parts as [Fn | undefined, Fn | undefined];
  if (one === undefined) return (vars) => run(vars, undefined, undefined);
  if (two === undefined) {
    return (vars) => {
      const first = one(vars);
      return isMissing(first) ? first : run(vars, first, undefined);
    };
  }
  return (vars) => {
    const first = one(vars);
    if (isMissing(first)) return first;
    const second = two(vars);
    return isMissing(second) ? second : run(vars, first, second);
  };
}

/**
 * A runner for the expression: the closures with cel-js as the fallback, or
 * undefined when the expression is not in the fast subset. It returns the
 * rule's value, or a MissingKey where cel-js would throw "no such key".
 */
export function compileFastPath(ast: ASTNode, slow: Fn, helpers: FastHelpers): Fn | undefined {
  const fast = compile(ast, helpers);
  if (!fast) return undefined;
  return (vars) => {
    try {
      return fast(vars);
    } catch (error) {
      if (error === UNSUPPORTED) return slow(vars);
      throw error;
    }
  };
}


const keys = new WeakMap<ASTNode, string>();

/** Canonical text of an AST: operators and arguments only (no positions). */
function astKey(node: ASTNode): string {
  let key = keys.get(node);
  if (key === undefined) {
    key = keyOf(node);
    keys.set(node, key);
  }
  return key;
}

function keyOf(node: ASTNode): string {
  const args = node.args as unknown;
  const part = (a: unknown): string => {
    if (a && typeof a === 'object' && 'op' in a) return astKey(a as ASTNode);
    if (Array.isArray(a)) return `[${a.map(part).join(',')}]`;
    if (typeof a === 'bigint') return `${a}n`;
    if (typeof a === 'number') return Object.is(a, -0) ? '-0d' : `${a}d`;
    return JSON.stringify(a) ?? 'undefined';
  };
  return `(${node.op} ${part(args)})`;
}

/**
 * The top-level conjuncts of a rule, each compiled by the fast path when it
 * can be. `complete` is false when some conjunct is not in the fast subset
 * (it is left out): the rule's verdict then needs the rule itself unless
 * another conjunct is false.
 *
 * CEL's `&&` is commutative, errors included (`error && false` is false):
 * a rule is false as soon as one conjunct is false, whatever the others
 * give; it is true when every conjunct is true.
 */
export function compileConjuncts(ast: ASTNode, helpers: FastHelpers): { conjuncts: RuleConjunct[]; complete: boolean } {
  const conjuncts: RuleConjunct[] = [];
  let complete = true;
  const walk = (node: ASTNode): void => {
    if (node.op === '&&') {
      walk(node.args[0]);
      walk(node.args[1]);
      return;
    }
    const run = compile(node, helpers);
    if (run) conjuncts.push({ key: astKey(node), run, cost: estimateCost(node).cost });
    else complete = false;
  };
  walk(ast);
  return { conjuncts, complete };
}
