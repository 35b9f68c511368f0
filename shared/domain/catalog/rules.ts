/**
 * CEL for every rule of the catalog (@marcbachmann/cel-js).
 *
 * Two environments with the same variables and helpers:
 * - the *checking* environment declares `profile` with the field types of
 *   ProfileView, so a typo (`profile.stat.visitsToday`) or a type mismatch
 *   (`profile.stats.visitsToday == "x"`) is refused at load with its position;
 * - the *running* environment declares `profile` as a plain map, so the view
 *   is read as-is (no conversion, no allocation per evaluation).
 * Profile numbers are JSON numbers, which CEL reads as `double` in both: the
 * two environments agree on what an expression means.
 *
 * Variables: `profile`, `context` (map), `channel` (string), `placement`
 * (string), `now` (timestamp), `visitsToday` (double), `preferredChannel` (string).
 * Helpers: the one table of helpers.ts (`daysSince`, `hoursSince`,
 * `eventCount`, `hasSegment`, `inSegment`, `aboveThreshold`, `interest`,
 * `likes`, `engagementRate`), registered here as cel-js macros and compiled
 * by the fast path from the same table.
 * Variable `preferredChannel` (string): the channel the customer declared
 * (zero-party), else the one of push, email, sms, app with the best
 * engagement rate (at least one delivery), else "".
 *
 * In rules `profile.persona` is "" when the customer has none, so
 * `profile.persona == "x"` needs no `has()` guard.
 */
import { Environment } from '@marcbachmann/cel-js';
import type { ASTNode } from '@marcbachmann/cel-js';
import type { Channel } from '../channels.ts';
import { PROFILE_CEL_SCHEMA, PROFILE_CEL_TYPES, type ProfileView } from '../profile/view.ts';
import { MissingKey, compileConjuncts, compileFastPath } from './fastpath.ts';
import { EVENT_COUNT_WINDOWS, INVALID_TIME, LITERAL_KINDS, RULE_HELPERS, RULE_HELPERS_BY_NAME, timeValue, type HelperScope, type RuleHelper } from './helpers.ts';
import { MAX_RULE_COST, estimateCost } from './cost.ts';
import { MATCHES_FUNCTION, re2Error, re2Matches } from './regex.ts';
import { didYouMean } from './suggest.ts';
import type { Audience, CompiledCatalog, CompiledRule, FailureTally, RuleBudget, RuleProfile, RuleReads, RuleVariables } from './compiled.ts';

type Ctx = { getValue(key: string): unknown };
type Checker = {
  check(node: ASTNode, ctx: unknown): unknown;
  getType(name: string): unknown;
  createError(code: string, message: string, node: ASTNode): Error;
};
type Evaluator = { run(node: ASTNode, ctx: Ctx): unknown };
interface Macro {
  args: ASTNode[];
}

function literalString(node: ASTNode | undefined): string | undefined {
  return node && node.op === 'value' && typeof node.args === 'string' ? node.args : undefined;
}

/** A macro: `typeCheck` at load, `evaluate` per evaluation with access to the activation. */
function macro(
  returns: string,
  typeCheck: (checker: Checker, m: Macro, ctx: unknown) => void,
  evaluate: (ev: Evaluator, m: Macro, ctx: Ctx) => unknown,
) {
  return ({ args }: { args: ASTNode[] }) => ({
    args,
    async: false,
    typeCheck(checker: Checker, m: Macro, ctx: unknown) {
      typeCheck(checker, m, ctx);
      return checker.getType(returns);
    },
    evaluate,
  });
}

function requireLiteral(checker: Checker, node: ASTNode | undefined, fn: string, what: string): string {
  const value = literalString(node);
  if (value === undefined) {
    throw checker.createError('invalid_macro_argument', `${fn}() takes the ${what} id as a string literal`, node as ASTNode);
  }
  return value;
}

/** A helper's arguments as its `run` takes them (helpers.ts HelperArgument), evaluated by cel-js. */
function helperArguments(helper: RuleHelper, ev: Evaluator, m: Macro, ctx: Ctx): unknown[] {
  return helper.args.map((arg, i) => {
    const node = m.args[i] as ASTNode;
    if (LITERAL_KINDS.has(arg.kind)) return (node as { args: string }).args;
    if (arg.kind === 'time') {
      let value: unknown;
      try {
        value = ev.run(node, ctx);
      } catch (error) {
        // A missing field is "never", like null.
        if ((error as { code?: string }).code === 'no_such_key') return undefined;
        throw error;
      }
      const t = timeValue(value);
      if (t === INVALID_TIME) throw new Error(`not a timestamp: ${typeof value === 'string' ? JSON.stringify(value.slice(0, 40)) : typeof value}`);
      return t;
    }
    const value = ev.run(node, ctx);
    if (typeof value !== 'string') throw new Error(`${helper.name}() takes ${arg.kind === 'string' ? arg.what : 'a'} string`);
    return value;
  });
}

/** A helper's load-time check of its arguments: literals where the table wants them, the others type-checked. */
function checkHelperArguments(helper: RuleHelper, checker: Checker, m: Macro, ctx: unknown): void {
  if (m.args.length !== helper.args.length) {
    throw checker.createError('invalid_macro_argument', `${helper.name}() takes ${helper.args.length} argument(s)`, (m.args[0] ?? m) as ASTNode);
  }
  helper.args.forEach((arg, i) => {
    const node = m.args[i] as ASTNode;
    if (arg.kind === 'segment' || arg.kind === 'model') void requireLiteral(checker, node, helper.name, arg.kind);
    else if (arg.kind === 'window') {
      const window = literalString(node);
      if (window === undefined || !(EVENT_COUNT_WINDOWS as readonly string[]).includes(window)) {
        throw checker.createError(
          'invalid_macro_argument',
          `${helper.name}() window must be one of ${EVENT_COUNT_WINDOWS.map((w) => `"${w}"`).join(', ')}`,
          node,
        );
      }
    } else checker.check(node, ctx);
  });
}

/** The helpers' view of the activation (helpers.ts HelperScope), read from cel-js's context. */
function helperScope(ctx: Ctx): HelperScope {
  return {
    profile: ctx.getValue('profile') as RuleProfile,
    $nowMs: ctx.getValue('$nowMs') as number,
    $segments: ctx.getValue('$segments') as ReadonlySet<string>,
    $thresholds: ctx.getValue('$thresholds') as ReadonlyMap<string, number>,
  };
}

function registerHelpers(env: Environment): Environment {
  // `matches()` through RE2 (regex.ts): every `matches` call of a rule is renamed to this one.
  env.registerFunction(`string.${MATCHES_FUNCTION}(string): bool`, (text: string, pattern: string) => {
    try {
      return re2Matches(text, pattern);
    } catch (error) {
      throw new Error(re2Error(pattern) ?? (error as Error).message);
    }
  });
  for (const helper of RULE_HELPERS) {
    env.registerFunction(
      `${helper.name}(${helper.args.map(() => 'ast').join(', ')}): ${helper.returns}`,
      macro(
        helper.returns,
        (checker, m, ctx) => checkHelperArguments(helper, checker, m, ctx),
        (ev, m, ctx) => {
          const [first, second] = helperArguments(helper, ev, m, ctx);
          return helper.run(helperScope(ctx), first, second);
        },
      ) as never,
    );
  }
  return env;
}

const ENGAGEMENT_CHANNELS = ['push', 'email', 'sms', 'app'] as const;

/** Declared preferred channel, else the best engaged one (ties: push, email, sms, app), else "". */
function preferredChannelOf(profile: Pick<RuleProfile, 'preferences' | 'engagement'>): string {
  const declared = profile.preferences?.preferredChannel;
  if (declared) return declared;
  let best = '';
  let bestRate = -1;
  for (const channel of ENGAGEMENT_CHANNELS) {
    const e = profile.engagement?.[channel];
    if (!e || !(e.delivered >= 1)) continue;
    if (e.rate > bestRate) {
      best = channel;
      bestRate = e.rate;
    }
  }
  return best;
}

const LIMITS = { maxAstNodes: 2_000, maxDepth: 64, maxListElements: 500, maxMapEntries: 200, maxCallArguments: 16 };

function baseEnvironment(): Environment {
  return new Environment({ homogeneousAggregateLiterals: false, limits: LIMITS })
    .registerVariable('context', 'map<string, dyn>')
    .registerVariable('channel', 'string')
    .registerVariable('placement', 'string')
    .registerVariable('now', 'google.protobuf.Timestamp')
    .registerVariable('visitsToday', 'double')
    .registerVariable('preferredChannel', 'string');
}

function createCheckingEnvironment(): Environment {
  const env = new Environment({ homogeneousAggregateLiterals: false, limits: LIMITS });
  // The profile's schema is declared with the view (profile/view.ts), typed from ProfileView.
  for (const [name, schema] of Object.entries(PROFILE_CEL_TYPES)) env.registerType({ name, schema } as never);
  env.registerVariable({ name: 'profile', schema: PROFILE_CEL_SCHEMA } as never);
  env
    .registerVariable('context', 'map<string, dyn>')
    .registerVariable('channel', 'string')
    .registerVariable('placement', 'string')
    .registerVariable('now', 'google.protobuf.Timestamp')
    .registerVariable('visitsToday', 'double')
    .registerVariable('preferredChannel', 'string');
  return registerHelpers(env);
}

const runningEnvironment = registerHelpers(baseEnvironment().registerVariable('profile', 'map<string, dyn>'));
// Made on first use: the serve path never type-checks (a published catalog passed the check), so
// a cold decide does not build it.
let checkingEnvironmentMade: Environment | undefined;
const checkingEnvironment = (): Environment => (checkingEnvironmentMade ??= createCheckingEnvironment());

export type RuleKind = 'bool' | 'number';

export interface RuleCompileError {
  readonly message: string;
  /** 0-based offset in the expression. */
  readonly position?: number;
  /** For a common slip, what to write instead (`write 1.0 instead of 1`). */
  readonly hint?: string;
}

/**
 * A name a rule refers to, checked against the catalog (compile.ts): the
 * literal id of a helper call (`hasSegment("vip")`: segment,
 * `aboveThreshold("churn")`: model), a score read (`profile.scores.churn`:
 * score, a model's id), a channel literal (`channel == "push"`,
 * `preferredChannel in ["sms"]`, `engagementRate("email")`: channel).
 */
export interface RuleReference {
  readonly kind: 'segment' | 'model' | 'score' | 'channel';
  readonly id: string;
  /** 0-based offset of the literal or field name in the expression. */
  readonly position?: number;
  /** For a channel: what reads it (`channel`, `preferredChannel`, `engagementRate`). */
  readonly via?: string;
}

type TypedNode = ASTNode & { pos?: number; start?: number; left?: TypedNode; right?: TypedNode; checkedType?: { type?: string } };

const NUMERIC = new Set(['int', 'uint', 'double']);

/**
 * Where a "no such overload" between an int and a double is (the literal
 * that has the other type, else the right operand), and what to write:
 * CEL does not mix int and double.
 */
function numericMismatch(node: TypedNode | undefined, source: string): { position: number; hint: string } | undefined {
  const left = node?.left;
  const right = node?.right;
  const lt = left?.checkedType?.type;
  const rt = right?.checkedType?.type;
  if (!left || !right || !lt || !rt || lt === rt || !NUMERIC.has(lt) || !NUMERIC.has(rt)) return undefined;
  const literal = right.op === 'value' ? right : left.op === 'value' ? left : undefined;
  if (literal) {
    const other = literal === right ? lt : rt;
    const text = source.slice(literal.start ?? literal.pos ?? 0, literal.end ?? undefined).trim();
    const written = typeof literal.args === 'bigint' ? String(literal.args) : text;
    const number = Number(written.replace(/u$/i, ''));
    const instead =
      other === 'double' ? (Number.isInteger(number) ? `${number}.0` : String(number)) : Number.isInteger(number) ? String(number) : `int(${written})`;
    return {
      position: literal.start ?? literal.pos ?? 0,
      hint: `write ${instead} instead of ${written}: the other side is ${other === 'double' ? 'a double (profile numbers are doubles)' : `an ${other}`} and CEL does not mix int and double`,
    };
  }
  return {
    position: right.start ?? right.pos ?? 0,
    hint: `convert one side with double(…) or int(…): CEL does not mix ${lt} and ${rt}`,
  };
}

/** What a rule can name: its variables and the functions, methods and macros it may call (CEL's and RULE_HELPERS). Made on first use. */
let ruleNamesMade: { readonly variables: readonly string[]; readonly functions: ReadonlySet<string> } | undefined;
function ruleNames(): { readonly variables: readonly string[]; readonly functions: ReadonlySet<string> } {
  if (ruleNamesMade) return ruleNamesMade;
  const builtIn = new Set(new Environment().getDefinitions().variables.map((v) => v.name));
  const definitions = checkingEnvironment().getDefinitions();
  return (ruleNamesMade = {
    variables: definitions.variables.map((v) => v.name).filter((name) => !builtIn.has(name)),
    functions: new Set(definitions.functions.map((f) => (f.name === MATCHES_FUNCTION ? 'matches' : f.name))),
  });
}

const LOGICAL_WORDS: Readonly<Record<string, string>> = { and: '&&', or: '||', not: '!' };

/**
 * What to write instead, for the slips of someone new to CEL: a misspelled
 * function or method (`dayssince(…)`), `=` or `===` for `==`, `and` / `or` /
 * `not` for `&&` / `||` / `!`, a text without its quotes (`tier == VIP`).
 */
function slipHint(message: string, source: string, position: number | undefined): string | undefined {
  const call = /^found no matching overload for '(?:[^']*\.)?([A-Za-z_]\w*)\(/.exec(message)?.[1];
  if (call !== undefined) {
    const { functions } = ruleNames();
    if (functions.has(call)) return undefined;
    const suggestion = didYouMean(call, functions);
    return `there is no function "${call}"${suggestion ? `; ${suggestion}` : ''}`;
  }
  if (/^Unexpected character: =/.test(message)) return 'compare with "==" (one "=" is not an operator in CEL)';
  const word = position === undefined ? undefined : /^[A-Za-z]+/.exec(source.slice(position))?.[0]?.toLowerCase();
  if (/^Unexpected character/.test(message) && word !== undefined && LOGICAL_WORDS[word] !== undefined) {
    return `write "${LOGICAL_WORDS[word]}" instead of "${source.slice(position, (position ?? 0) + word.length)}"`;
  }
  const variable = /^Unknown variable: ([A-Za-z_]\w*)$/.exec(message)?.[1];
  if (variable !== undefined) {
    // `list.exist(i, …)`: a misspelled macro leaves its loop variable undeclared.
    const macro = new RegExp(`\\.([A-Za-z_]\\w*)\\(\\s*${variable}\\s*,`).exec(source)?.[1];
    if (macro !== undefined && !ruleNames().functions.has(macro)) {
      const suggestion = didYouMean(macro, ruleNames().functions);
      return `there is no function "${macro}"${suggestion ? `; ${suggestion}` : ''}`;
    }
    return `a text goes in quotes ("${variable}"); the variables are ${ruleNames().variables.join(', ')}`;
  }
  return undefined;
}

function errorInfo(error: unknown, source = ''): RuleCompileError {
  const e = error as { summary?: string; message?: string; range?: { start: number }; node?: TypedNode };
  const message = (e.summary ?? e.message ?? String(error)).split('\n')[0]?.replaceAll(MATCHES_FUNCTION, 'matches') ?? 'invalid expression';
  const overload = /^no such overload/.test(message);
  const mismatch = overload ? numericMismatch(e.node, source) : undefined;
  if (mismatch) return { message, position: mismatch.position, hint: mismatch.hint };
  // An operator whose operands do not go together: at the right operand (the left one starts the whole expression).
  const right = overload ? e.node?.right : undefined;
  const position = right ? (right.start ?? right.pos) : (e.range?.start ?? e.node?.pos);
  const hint = source === '' ? undefined : slipHint(message, source, position);
  return { message, ...(position === undefined ? {} : { position }), ...(hint === undefined ? {} : { hint }) };
}

const CHANNEL_VARIABLES = new Set(['channel', 'preferredChannel']);

function channelLiterals(node: ASTNode, via: string, out: RuleReference[]): void {
  const nodes = node.op === 'list' ? (node.args as ASTNode[]) : [node];
  for (const n of nodes) {
    const literal = literalString(n);
    if (literal !== undefined) out.push({ kind: 'channel', id: literal, position: (n as TypedNode).pos ?? 0, via });
  }
}

function collectReferences(node: ASTNode, out: RuleReference[]): void {
  if (node.op === 'call') {
    const [name, args] = node.args as [string, ASTNode[]];
    const helper = RULE_HELPERS_BY_NAME.get(name);
    helper?.args.forEach((arg, i) => {
      const literal = literalString(args[i]);
      const position = (args[i] as TypedNode | undefined)?.pos ?? 0;
      if ((arg.kind === 'segment' || arg.kind === 'model') && literal !== undefined) out.push({ kind: arg.kind, id: literal, position });
      else if (arg.kind === 'string' && arg.what === 'a channel' && literal !== undefined) out.push({ kind: 'channel', id: literal, position, via: name });
    });
    for (const arg of args) collectReferences(arg, out);
    return;
  }
  if (node.op === '==' || node.op === '!=' || node.op === 'in') {
    const [left, right] = node.args as [ASTNode, ASTNode];
    if (left.op === 'id' && CHANNEL_VARIABLES.has(left.args as string)) channelLiterals(right, left.args as string, out);
    else if (node.op !== 'in' && right.op === 'id' && CHANNEL_VARIABLES.has(right.args as string)) channelLiterals(left, right.args as string, out);
  }
  if (node.op === '.' || node.op === '.?' || node.op === '[]' || node.op === '[?]') {
    const [target, key] = node.args as [ASTNode, ASTNode | string];
    const id = typeof key === 'string' ? key : literalString(key);
    const [owner, field] = target.op === '.' || target.op === '.?' ? (target.args as [ASTNode, string]) : [];
    const isScores = field === 'scores' && owner?.op === 'id' && owner.args === 'profile';
    if (isScores && id !== undefined) out.push({ kind: 'score', id, position: typeof key === 'string' ? ((node as TypedNode).pos ?? 0) : ((key as TypedNode).pos ?? 0) });
  }
  const args = node.args as unknown;
  if (Array.isArray(args)) {
    for (const a of args) {
      if (a && typeof a === 'object' && 'op' in a) collectReferences(a as ASTNode, out);
      else if (Array.isArray(a)) for (const b of a) if (b && typeof b === 'object' && 'op' in b) collectReferences(b as ASTNode, out);
    }
  } else if (args && typeof args === 'object' && 'op' in args) {
    collectReferences(args as ASTNode, out);
  }
}

/**
 * Rename every `matches` call of a parsed expression to the RE2 one
 * (regex.ts) and check its pattern when it is a literal. The AST's depth is
 * bounded by the parser (LIMITS.maxDepth); the walk keeps its own stack.
 */
function useRe2(ast: ASTNode): RuleCompileError | undefined {
  const stack: unknown[] = [ast];
  let refused: RuleCompileError | undefined;
  while (stack.length > 0) {
    const item = stack.pop();
    if (!item || typeof item !== 'object') continue;
    if (Array.isArray(item)) {
      for (const x of item) stack.push(x);
      continue;
    }
    if (!('op' in item)) continue;
    const node = item as ASTNode;
    if (node.op === 'rcall' && (node.args[0] as string) === 'matches') {
      (node.args as unknown[])[0] = MATCHES_FUNCTION;
      const pattern = literalString((node.args[2] as ASTNode[])[0]);
      const message = pattern === undefined ? undefined : re2Error(pattern);
      if (message && !refused) refused = { message, position: (node as { pos?: number }).pos ?? 0 };
    }
    stack.push(node.args);
  }
  return refused;
}

/**
 * Compile a CEL expression once: parse, type-check against ProfileView,
 * require a bool (rules) or a number/bool (model features), and estimate its
 * worst-case cost (cost.ts; over MAX_RULE_COST it is refused). `matches()`
 * runs on RE2 (regex.ts); a literal pattern RE2 refuses is refused here.
 */
export function compileRule(
  source: string,
  path: string,
  kind: RuleKind = 'bool',
  options: {
    fastPath?: boolean;
    intern?: Map<string, ((vars: RuleVariables) => unknown) | undefined>;
    /**
     * Type-check the expression (a second parse, in the checking
     * environment). Off only for a catalog that was validated when it was
     * published: the check only refuses, and it already passed. @default true
     */
    typeCheck?: boolean;
  } = {},
): { ok: true; rule: CompiledRule; references: RuleReference[] } | { ok: false; error: RuleCompileError } {
  if (options.typeCheck !== false) {
    let checked: { valid: boolean; type?: string; error?: unknown };
    try {
      const forCheck = checkingEnvironment().parse(source);
      const refused = useRe2(forCheck.ast);
      if (refused) return { ok: false, error: refused };
      checked = forCheck.check();
    } catch (error) {
      return { ok: false, error: errorInfo(error, source) };
    }
    if (!checked.valid) return { ok: false, error: errorInfo(checked.error, source) };
    const type = checked.type ?? 'dyn';
    if (kind === 'bool' && type !== 'bool' && type !== 'dyn') {
      return { ok: false, error: { message: `the expression must be a condition (bool), it is ${type}`, position: 0 } };
    }
    if (kind === 'number' && !['double', 'int', 'uint', 'bool', 'dyn'].includes(type)) {
      return { ok: false, error: { message: `the expression must be a number or a bool, it is ${type}`, position: 0 } };
    }
  }
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = runningEnvironment.parse(source);
  } catch (error) {
    return { ok: false, error: errorInfo(error) };
  }
  useRe2(parsed.ast);
  const estimate = estimateCost(parsed.ast);
  if (estimate.cost > MAX_RULE_COST) {
    return {
      ok: false,
      error: {
        message: `the expression may cost too much to evaluate: estimated worst case ${estimate.cost} units, limit ${MAX_RULE_COST} (nested comprehensions, or long lists and strings)`,
        position: estimate.position,
      },
    };
  }
  const references: RuleReference[] = [];
  collectReferences(parsed.ast, references);
  const trimmed = source.trim();
  const constant = trimmed === 'true' ? true : trimmed === 'false' ? false : undefined;
  const slow = parsed as unknown as (vars: RuleVariables) => unknown;
  const fast = options.fastPath !== false;
  const helpers = options.intern ? { intern: options.intern } : {};
  const split = fast && kind === 'bool' ? compileConjuncts(parsed.ast, helpers) : undefined;
  const rule: CompiledRule = {
    source,
    path,
    run: (fast ? compileFastPath(parsed.ast, slow, helpers) : undefined) ?? slow,
    ...(constant === undefined ? {} : { constant }),
    ...(split && split.conjuncts.length > 0 ? { conjuncts: split.conjuncts, conjunctsComplete: split.complete } : {}),
    reads: readsOf(parsed.ast),
    cost: estimate.cost,
  };
  return { ok: true, rule: Object.freeze(rule), references };
}


const REQUEST_OR_CLOCK = new Set(['context', 'channel', 'placement', 'now', 'visitsToday']);
/** Profile paths whose value depends on the instant of the view (windows, decay) or on the write. */
const CLOCK_PATHS: readonly (readonly string[])[] = [
  ['stats', 'visitsToday'],
  ['stats', 'visits7d'],
  ['stats', 'visits30d'],
  ['stats', 'categoryInterests'],
  ['stats', 'eventCounts', '*', 'today'],
  ['stats', 'eventCounts', '*', 'last7d'],
  ['stats', 'eventCounts', '*', 'last30d'],
  ['updatedAt'],
];

/** `profile.a["b"].c` → root `profile`, keys [a, b, c]; undefined when a key is not a literal. */
function pathOf(node: ASTNode): { root: string; keys: string[] } | undefined {
  const keys: string[] = [];
  let at: ASTNode = node;
  for (;;) {
    if (at.op === 'id') return { root: at.args, keys: keys.reverse() };
    if (at.op === '.' || at.op === '.?') {
      keys.push(at.args[1]);
      at = at.args[0];
      continue;
    }
    if (at.op === '[]' || at.op === '[?]') {
      const key = literalString(at.args[1]);
      if (key === undefined) return undefined;
      keys.push(key);
      at = at.args[0];
      continue;
    }
    return undefined;
  }
}

function clockPath(keys: readonly string[]): boolean {
  if (keys.length === 0) return true;
  return CLOCK_PATHS.some((d) => {
    const n = Math.min(d.length, keys.length);
    for (let i = 0; i < n; i++) if (d[i] !== '*' && d[i] !== keys[i]) return false;
    return true;
  });
}

/** Profile fields the shorthand variables stand for (createRuleVariables). */
const SHORTHAND_FIELDS: Readonly<Record<string, readonly (readonly string[])[]>> = {
  visitsToday: [['stats', 'visitsToday']],
  preferredChannel: [['preferences', 'preferredChannel'], ['engagement']],
};

/** The audience's parts of the rule profile: logged apart from the fields (segments, persona, scores). */
const AUDIENCE_KEYS = new Set(['segments', 'persona', 'scores']);

export function readsOf(ast: ASTNode): RuleReads {
  let dynamic = false;
  const segments = new Set<string>();
  const models = new Set<string>();
  const fields = new Map<string, readonly string[]>();
  const field = (keys: readonly string[]) => {
    if (keys.length > 0 && !AUDIENCE_KEYS.has(keys[0] as string)) fields.set(JSON.stringify(keys), keys);
  };
  const visit = (node: ASTNode): void => {
    const path = node.op === 'id' || node.op === '.' || node.op === '.?' || node.op === '[]' || node.op === '[?]' ? pathOf(node) : undefined;
    if (path) {
      if (REQUEST_OR_CLOCK.has(path.root)) dynamic = true;
      for (const keys of SHORTHAND_FIELDS[path.root] ?? []) field(keys);
      if (path.root === 'profile') {
        const [first, second] = path.keys;
        if (first === 'segments') segments.add('*');
        else if (first === 'scores') models.add(second ?? '*');
        else if (first !== 'persona' && clockPath(path.keys)) dynamic = true;
        field(path.keys);
      }
      return;
    }
    if (node.op === 'call') {
      const [name, args] = node.args;
      const helper = RULE_HELPERS_BY_NAME.get(name);
      if (helper) {
        const literals = args.map((arg) => literalString(arg));
        if (helper.dynamic(literals)) dynamic = true;
        for (const keys of helper.profileReads(literals)) field(keys);
        helper.args.forEach((arg, i) => {
          const literal = literals[i];
          if (arg.kind === 'segment' && literal !== undefined) segments.add(literal);
          if (arg.kind === 'model' && literal !== undefined) models.add(literal);
        });
      }
      for (const arg of args) visit(arg);
      return;
    }
    const args = node.args as unknown;
    // Any other node: every AST below it (arrays, and the object arguments of comprehensions).
    const each = (a: unknown): void => {
      if (!a || typeof a !== 'object') return;
      if ('op' in a) visit(a as ASTNode);
      else if (Array.isArray(a)) a.forEach(each);
      else Object.values(a).forEach(each);
    };
    each(args);
  };
  visit(ast);
  return { dynamic, segments: [...segments], models: [...models], fields: [...fields.values()] };
}

/** A new, empty tally of runtime failures: one per decision (or per enrichment), read by its caller. */
export function createFailureTally(): FailureTally {
  return { rules: 0, deadline: 0, templates: 0 };
}

function recordFailure(rule: CompiledRule, vars: RuleVariables, error: unknown): void {
  const tally = vars.$failures;
  tally.rules++;
  tally.lastRule = { path: rule.path, message: error instanceof MissingKey ? error.message : errorInfo(error).message };
}

/** Default per-decision budget for evaluating rules, in ms. */
export const DEFAULT_RULE_BUDGET_MS = 50;
/** Estimated cost units run between two reads of the clock (a fast rule costs a few). */
export const CLOCK_EVERY = 2_000;

/**
 * A monotonic clock in ms: process.hrtime, the clock performance.now reads,
 * without performance.now's first call (it loads perf_hooks: 3 to 5 ms of
 * CPU in a fresh process, paid by decide's first request).
 */
const monotonicNow = (): number => {
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1_000 + nanoseconds / 1_000_000;
};

/**
 * A decision's evaluation budget: `budgetMs` from now. `clock` (ms,
 * monotonic; default process.hrtime) is read at the start and then once
 * every CLOCK_EVERY estimated cost units.
 */
export function createRuleBudget(budgetMs: number = DEFAULT_RULE_BUDGET_MS, clock: () => number = monotonicNow): RuleBudget {
  return { deadline: clock() + budgetMs, budgetMs, clock, spent: 0, expired: false };
}

/**
 * Whether the decision may still run `cost` more units: the clock is read
 * once every CLOCK_EVERY estimated units, and before any rule costlier
 * than that. Past the deadline every rule is skipped.
 */
function withinBudget(budget: RuleBudget, cost: number): boolean {
  if (budget.expired) return false;
  budget.spent += cost;
  if (budget.spent < CLOCK_EVERY) return true;
  budget.spent = 0;
  if (budget.clock() < budget.deadline) return true;
  budget.expired = true;
  return false;
}

function skip(rule: CompiledRule, budget: RuleBudget, vars: RuleVariables): void {
  vars.$failures.deadline++;
  recordFailure(rule, vars, new Error(`not evaluated: the decision's rule budget (${budget.budgetMs} ms) had run out`));
}

/** False when the decision's budget has run out (then the rule counts as skipped and failed). */
function mayRun(rule: CompiledRule, vars: RuleVariables): boolean {
  const budget = vars.$budget;
  if (budget === undefined || withinBudget(budget, rule.cost ?? 1)) return true;
  skip(rule, budget, vars);
  return false;
}

/** Whether a decision's budget still allows `cost` units (for rule parts evaluated outside evaluateRule). */
export function budgetAllows(vars: RuleVariables, cost = 1): boolean {
  const budget = vars.$budget;
  return budget === undefined || withinBudget(budget, cost);
}

/**
 * Evaluate a condition. Never throws: a runtime failure (missing field, type
 * mismatch, non-bool result) is "no match" (false) and is counted; so is a
 * rule the decision's deadline leaves no time for (not run).
 * An absent rule (`undefined`) holds.
 */
export function evaluateRule(rule: CompiledRule | undefined, vars: RuleVariables): boolean {
  if (rule === undefined) return true;
  if (rule.constant !== undefined) return rule.constant;
  if (!mayRun(rule, vars)) return false;
  try {
    const result = rule.run(vars);
    if (result === true) return true;
    if (result === false) return false;
    // A field the customer does not have: cel-js's "no such key", returned by the fast path without a throw.
    recordFailure(rule, vars, result instanceof MissingKey ? result : new Error(`the condition gave ${typeof result}, not a bool`));
    return false;
  } catch (error) {
    recordFailure(rule, vars, error);
    return false;
  }
}

/** Evaluate a number (model features). A runtime failure, or no time left, gives `fallback`, counted. */
export function evaluateNumber(rule: CompiledRule, vars: RuleVariables, fallback: number): number {
  if (!mayRun(rule, vars)) return fallback;
  try {
    const result = rule.run(vars);
    if (typeof result === 'number' && Number.isFinite(result)) return result;
    if (typeof result === 'bigint') return Number(result);
    if (typeof result === 'boolean') return result ? 1 : 0;
    recordFailure(rule, vars, result instanceof MissingKey ? result : new Error(`the expression gave ${typeof result}, not a number`));
    return fallback;
  } catch (error) {
    recordFailure(rule, vars, error);
    return fallback;
  }
}

const EMPTY_CONTEXT: Readonly<Record<string, unknown>> = Object.freeze({});
const EMPTY_SEGMENTS: ReadonlySet<string> = new Set();
const EMPTY_THRESHOLDS: ReadonlyMap<string, number> = new Map();

export interface RuleVariablesInput {
  readonly profile: ProfileView;
  /** This decision's audience (evaluateAudience); absent: the view's stored segments, persona, scores. */
  readonly audience?: Audience;
  readonly context?: Readonly<Record<string, unknown>>;
  readonly channel?: Channel | '';
  readonly placement?: string;
  readonly now: Date;
  /** The catalog (its model thresholds feed `aboveThreshold`). */
  readonly catalog?: Pick<CompiledCatalog, 'thresholds'>;
  /** The decision's evaluation budget (createRuleBudget); absent: no deadline. */
  readonly budget?: RuleBudget;
  /** Where the rules' runtime failures are counted (createFailureTally); absent: a new tally. */
  readonly failures?: FailureTally;
}

/**
 * Build the activation of one decision, once: every rule of the decision
 * reads the same object (no allocation per rule).
 */
export function createRuleVariables(input: RuleVariablesInput): RuleVariables {
  const { profile, audience } = input;
  // Rules see `persona` as "" when there is none (no has() guard needed).
  const ruleProfile: RuleProfile = audience
    ? { ...profile, segments: audience.segments, scores: audience.scores, persona: audience.persona ?? '' }
    : { ...profile, persona: profile.persona ?? '' };
  return {
    profile: ruleProfile,
    context: input.context ?? EMPTY_CONTEXT,
    channel: input.channel ?? '',
    placement: input.placement ?? '',
    now: input.now,
    visitsToday: profile.stats?.visitsToday ?? 0,
    preferredChannel: preferredChannelOf(profile),
    $nowMs: input.now.getTime(),
    $segments: audience?.segmentSet ?? (profile.segments?.length ? new Set(profile.segments) : EMPTY_SEGMENTS),
    $thresholds: input.catalog?.thresholds ?? EMPTY_THRESHOLDS,
    $failures: input.failures ?? createFailureTally(),
    ...(input.budget ? { $budget: input.budget } : {}),
  } as RuleVariables;
}
