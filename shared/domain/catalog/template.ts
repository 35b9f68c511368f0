/**
 * Content templates (Liquid, liquidjs): parsed once at catalog load,
 * rendered for the winning actions only.
 *
 * A template sees:
 * - every trait at the top level (`{{ firstName }}`, `{{ tier }}`),
 * - `profile` (the profile of the decision), `traits`, `context`, `channel`,
 *   `placement`.
 * A missing variable renders as empty text; declare a fallback either inline
 * (`{{ firstName | default: "cliente" }}`) or in the action's `fallbacks`
 * map (`fallbacks: {firstName: cliente}`), which fills the variable when the
 * profile does not have it (absent, null or empty).
 *
 * Output is made safe for where the field is shown (content-fields.ts): in an
 * `html` field every `{{ … }}` is HTML-escaped (liquidjs `outputEscape`), in a
 * `text` field it is plain text. A value is output, never parsed: a trait
 * holding Liquid markup stays text.
 *
 * Sandboxed: there is no file system at all (`include`, `render` and `layout`
 * are refused when the template is parsed, and the engine's `fs` has no
 * file), and a render is bounded (TEMPLATE_LIMITS): loop steps (iterations
 * weighted by the size of the body) and output size, counted as it goes; allocations and time as a backstop. A
 * render that reaches a bound stops there and fails, which decide treats as
 * "this content cannot be served" (counted in the decision's FailureTally, `templates`).
 */
import {
  type Context,
  ForTag,
  Liquid,
  TablerowTag,
  Tag,
  toValue,
  toValueSync,
  TypeGuards,
  type Emitter,
  type FS,
  type Liquid as LiquidEngine,
  type TagToken,
  type Template,
  type TopLevelToken,
  type Token,
  type ValueToken,
} from 'liquidjs';
import type { CompiledContent, CompiledTemplate, RenderedContent, RuleVariables, TemplateKind } from './compiled.ts';
import { CONTENT_FIELDS, type ContentFieldSpec, unsafeLinkProblem } from './content-fields.ts';
import { TEMPLATE_MARKUP as MARKUP } from './patterns.ts';
import { didYouMean } from './suggest.ts';
import { utf8Length } from '../ingest/limits.ts';
import { PROFILE_CEL_SCHEMA } from '../profile/view.ts';

/** Bounds of one template's render (one content field, or one item of a list field). */
export const TEMPLATE_LIMITS = {
  /**
   * Loop work: every pass through a loop body (`for`, `tablerow`, an empty
   * body too) counts the tags, outputs and text of that body (at least 1; a
   * nested loop counts its own passes), every loop of the template together.
   * A loop with a one-output body may run 2,000 times, one with ten, 200.
   */
  loopSteps: 2_000,
  /** Characters a template outputs (and each `capture` inside it). */
  outputChars: 50_000,
  /** liquidjs `memoryLimit`: elements and characters allocated by ranges and filters, in total. */
  allocations: 200_000,
  /** liquidjs `renderLimit`, ms: a backstop; the counted bounds above stop a hostile template long before it. */
  renderMs: 1_000,
  /** liquidjs `parseLimit`: characters parsed (a content field is at most 20,000). */
  parseChars: 100_000,
  /**
   * UTF-8 bytes of one channel's rendered content, every field and list item
   * together (`renderContent`). An action's fields may each reach
   * `outputChars` (a call-centre script with 50 talking points, 2.5 million),
   * but a rendered action travels whole: ten in a decide answer (Lambda's 6
   * MB), one in a trigger's or a journey's outbox item (DynamoDB's 400 KB).
   */
  contentBytes: 100_000,
} as const;

const NO_FILE_SYSTEM = 'templates have no file system: partials and layouts (include, render, layout) are not available';

/** The engine's file system: it has no file (nothing reaches the disk even if a tag asked). */
const noFiles: FS = {
  exists: () => Promise.resolve(false),
  existsSync: () => false,
  readFile: () => Promise.reject(new Error(NO_FILE_SYSTEM)),
  readFileSync: () => {
    throw new Error(NO_FILE_SYSTEM);
  },
  resolve: () => {
    throw new Error(NO_FILE_SYSTEM);
  },
  contains: () => Promise.resolve(false),
  containsSync: () => false,
};

/** `include`, `render`, `layout`: refused where they are parsed, with their position. */
function refusedTag(name: string) {
  return class extends Tag {
    constructor(token: TagToken, remainTokens: TopLevelToken[], liquid: LiquidEngine) {
      super(token, remainTokens, liquid);
      throw new Error(`"${name}" is not allowed: ${NO_FILE_SYSTEM}`);
    }
    render(): void {
      throw new Error(NO_FILE_SYSTEM);
    }
  };
}

const LOOP_STEPS = 'kairos:loopSteps';

type Children = (partials: boolean, sync: boolean) => Generator<unknown, Template[]>;

/** The nodes a template has under it, in a flat list (iterative). */
function childrenOf(node: Template): readonly Template[] {
  const children = (node as { children?: Children }).children;
  return typeof children === 'function' ? (toValueSync(children.call(node, false, true)) ?? []) : [];
}

/** What one pass through a loop body costs: its nodes, nested blocks included, a nested loop as one (it counts its own passes). */
function bodyWeight(body: readonly Template[]): number {
  let weight = 0;
  const stack = [...body];
  while (stack.length > 0) {
    const node = stack.pop() as Template;
    if (node instanceof LoopPass) continue;
    weight++;
    if (!(node instanceof BoundedFor || node instanceof BoundedTablerow)) stack.push(...childrenOf(node));
  }
  return Math.max(1, weight);
}

/** A node placed first in a loop's body: counts each pass (an empty body too) and stops the render past the bound. */
class LoopPass implements Template {
  constructor(
    readonly token: Token,
    readonly weight: number,
  ) {}
  render(ctx: Context): void {
    // A register: per-render state liquidjs keeps for tags (as `increment` does), shared by captures.
    const steps = (ctx.getRegister(LOOP_STEPS, 0) as number) + this.weight;
    if (steps > TEMPLATE_LIMITS.loopSteps) throw new Error(`more than ${TEMPLATE_LIMITS.loopSteps} loop steps`);
    ctx.setRegister(LOOP_STEPS, steps);
  }
}

class BoundedFor extends ForTag {
  readonly weight: number;
  constructor(...args: ConstructorParameters<typeof ForTag>) {
    super(...args);
    this.weight = bodyWeight(this.templates);
    this.templates.unshift(new LoopPass(this.token, this.weight));
  }
}

class BoundedTablerow extends TablerowTag {
  readonly weight: number;
  constructor(...args: ConstructorParameters<typeof TablerowTag>) {
    super(...args);
    this.weight = bodyWeight(this.templates);
    this.templates.unshift(new LoopPass(this.token, this.weight));
  }
}

/** liquidjs `stringify` (an output's text), iterative over nested arrays. */
function outputText(value: unknown): string {
  const v = toValue(value);
  if (typeof v === 'string') return v;
  if (v === null || v === undefined) return '';
  if (!Array.isArray(v)) return String(v);
  let text = '';
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const item = toValue(stack.pop());
    if (Array.isArray(item)) for (let i = item.length - 1; i >= 0; i--) stack.push(item[i]);
    else if (typeof item === 'string') text += item;
    else if (item !== null && item !== undefined) text += String(item);
    if (text.length > TEMPLATE_LIMITS.outputChars) break;
  }
  return text;
}

/** The render's output (and each capture's): refuses to grow past the bound. */
class BoundedEmitter implements Emitter {
  buffer = '';
  write(html: unknown): void {
    const text = typeof html === 'string' ? html : outputText(html);
    if (this.buffer.length + text.length > TEMPLATE_LIMITS.outputChars) {
      throw new Error(`more than ${TEMPLATE_LIMITS.outputChars} characters of output`);
    }
    this.buffer += text;
  }
}

function sandboxedLiquid(kind: TemplateKind): Liquid {
  const engine = new Liquid({
    strictFilters: true,
    strictVariables: false,
    ownPropertyOnly: true,
    fs: noFiles,
    relativeReference: false,
    dynamicPartials: false,
    ...(kind === 'html' ? { outputEscape: 'escape' as const } : {}),
    // The `date` filter's locale, given: without one liquidjs asks Intl for the process's default at
    // construction, ICU's first DateTimeFormat, about 40 ms of CPU at import. en-US is the default it
    // finds on Lambda (LANG=en_US.UTF-8) and here.
    locale: 'en-US',
    parseLimit: TEMPLATE_LIMITS.parseChars,
    renderLimit: TEMPLATE_LIMITS.renderMs,
    memoryLimit: TEMPLATE_LIMITS.allocations,
    cache: false,
  });
  for (const name of ['include', 'render', 'layout']) engine.registerTag(name, refusedTag(name));
  engine.registerTag('for', BoundedFor);
  engine.registerTag('tablerow', BoundedTablerow);
  // Every block rendered without an emitter of its own (the template, a capture) writes to a bounded one.
  const renderer = engine.renderer;
  const renderTemplates = renderer.renderTemplates;
  renderer.renderTemplates = function (templates, ctx, emitter) {
    return renderTemplates.call(this, templates, ctx, emitter ?? new BoundedEmitter());
  };
  return engine;
}

/** One engine per kind: an `html` template is parsed with output escaping, which its outputs keep. */
const engines: Readonly<Record<TemplateKind, Liquid>> = { html: sandboxedLiquid('html'), text: sandboxedLiquid('text') };

/** Attributes whose value is a URL a browser follows or loads. */
const URL_ATTRIBUTES: readonly string[] = ['href', 'src', 'action', 'formaction', 'xlink:href', 'poster', 'background', 'cite', 'data', 'ping', 'lowsrc', 'dynsrc'];
/** The characters an HTML entity stands for, decoded once (numeric, and the named ones that can spell a scheme or markup). */
const NAMED_ENTITIES: Readonly<Record<string, string>> = { colon: ':', tab: '\t', newline: '\n', amp: '&', nbsp: '\u00a0', lt: '<', gt: '>', quot: '"', apos: "'" };
function decodeEntities(html: string): string {
  return html.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);?/gi, (whole, name: string) => {
    if (name[0] === '#') {
      const code = name[1] === 'x' || name[1] === 'X' ? Number.parseInt(name.slice(2), 16) : Number.parseInt(name.slice(1), 10);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[name.toLowerCase()] ?? whole;
  });
}

/**
 * Where an output of an `html` template writes, read as a browser's HTML
 * tokenizer reads the template's own text (simplified; Liquid markup is
 * skipped, it does not move the state):
 * - `text`: element text (and comments, `<title>`, `<textarea>`),
 * - `tagOpen`: right after a `<` in text (`<{{ x }}`), where a letter would open a tag,
 * - `tag`: a tag's name, an attribute's name or the space between attributes,
 * - `attribute`: an attribute's value (`name`, lower case; `quote` `"`, `'`
 *   or `''` unquoted; `tag`, the element; `valueStart`, the offset where
 *   the value begins in the template; `atStart`, whether on some path only
 *   spaces and Liquid output come before it in the value),
 * - `style` / `script`: the text of a `<style>` / `<script>` element (`valueStart`: after its start tag).
 */
type HtmlContext =
  | { readonly in: 'text' | 'tagOpen' | 'tag' }
  | { readonly in: 'attribute'; readonly name: string; readonly quote: string; readonly tag: string; readonly valueStart: number; readonly atStart: boolean }
  | { readonly in: 'style' | 'script'; readonly valueStart: number };

const TEXT: HtmlContext = { in: 'text' };
const IN_TAG: HtmlContext = { in: 'tag' };
const TAG_OPEN: HtmlContext = { in: 'tagOpen' };
/** The blanks Liquid's whitespace control (`{{-`, `-}}`, `{%-`, `-%}`; liquidjs `greedy`, its default) trims around markup. */
const isLiquidBlank = (c: string | undefined) => c !== undefined && /^[\t\n\v\f\r \u00a0\u1680\u180e\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/.test(c);
const isHtmlSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';
const isLetter = (c: string | undefined) => c !== undefined && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
/** Elements whose text is not markup (raw text): a value there is read as CSS or script, or as text. */
const RAW_TEXT_ELEMENTS: ReadonlySet<string> = new Set(['style', 'script', 'textarea', 'title', 'xmp', 'iframe', 'noembed', 'noframes', 'noscript']);

/** Liquid blocks whose branches (or passes) the HTML context pass follows: each must leave the context it is entered with, or all the same one. */
const BRANCHING_TAGS: ReadonlySet<string> = new Set(['if', 'unless', 'case', 'for', 'tablerow']);
const LOOP_TAGS: ReadonlySet<string> = new Set(['for', 'tablerow']);
const BRANCH_TAGS: ReadonlySet<string> = new Set(['elsif', 'else', 'when']);
/**
 * Liquid tags that write a value (liquidjs 10: `echo` and `cycle` write an
 * expression's value, escaped in an `html` template unless `| raw`;
 * `increment` and `decrement` a counter, a number): each is judged where it
 * writes as an output is. `{% liquid %}` holds tags, these among them.
 * Every other tag writes the template's own text or nothing (`capture`
 * and `assign` set a variable, written later by an output).
 */
const VALUE_TAGS: ReadonlySet<string> = new Set(['echo', 'cycle', 'increment', 'decrement']);
/** Whether a `{% liquid %}` tag's markup has a `break` or `continue` among its lines (`{% liquid if done\n break\n endif %}`). Linear. */
function liquidLoopExit(markup: string): boolean {
  const lines = markup.replace(/^\{%-?\s*liquid/, '').replace(/-?%\}$/, '').split('\n');
  return lines.some((line) => /^\s*(?:break|continue)\s*$/.test(line));
}
/** The name of the Liquid tag (`{% name … %}`, `{%- name … -%}`) that begins at `at`, lower case; '' for none. */
function liquidTagName(source: string, at: number): string {
  return /^\{%-?\s*([A-Za-z_]\w*)/.exec(source.slice(at, at + 64))?.[1]?.toLowerCase() ?? '';
}
/** Where the tag `{% end<name> %}` that closes a block begun before `from` starts and ends, or undefined. */
function blockEnd(source: string, from: number, name: string): { begin: number; end: number } | undefined {
  const m = new RegExp(`\\{%-?\\s*end${name}\\s*-?%\\}`, 'g');
  m.lastIndex = from;
  const found = m.exec(source);
  return found ? { begin: found.index, end: found.index + found[0].length } : undefined;
}

/**
 * Where a URL-valued attribute's value (a URL attribute, a srcset, a
 * `<meta content>`) begins (`check`: what the whole value is checked with)
 * or ends (`writes`: whether on this path a value is written into it) in an
 * `html` template's source. At render the value between the two is checked
 * whole (`guardUrlValues`).
 */
type UrlValueMark = { readonly offset: number; readonly check: (value: string) => string | undefined } | { readonly offset: number; readonly writes: boolean };

/**
 * The HTML context of each Liquid output or tag (`{{ … }}`, `{% … %}`) of an
 * `html` template's source, by where it begins and ends (in source order),
 * and where each URL-valued attribute's value begins and ends (`urlValues`).
 * One forward pass, linear in the source. Liquid blocks are followed: each
 * branch of an `{% if %}` / `{% unless %}` / `{% case %}` is read from the
 * context the block is entered with, and a template whose branches (or a
 * loop's body, pass after pass) would leave different contexts is refused
 * (throws, with `token.begin` the block's offset), since an output after it
 * would be judged in one and land in another. `{% comment %}` text is
 * skipped; `{% raw %}` text is read as HTML (it is written as it stands).
 * A `{% capture %}` body is read as a text of its own, from the start of a
 * page: it is written nowhere where it stands, its text is a variable's
 * value, judged whole where an output writes it; the context after it is
 * the one before it.
 * Refused (throws, with `token.begin` the value's offset): a value written
 * into a URL-valued attribute whose own text before any Liquid already
 * makes it unsafe (`href="javascript:{{ x }}"`), and a template that ends
 * inside such a value.
 */
function htmlContexts(source: string): { contexts: { begin: number; end: number; context: HtmlContext }[]; urlValues: UrlValueMark[] } {
  const out: { begin: number; end: number; context: HtmlContext }[] = [];
  const urlValues: UrlValueMark[] = [];
  type State = 'data' | 'tagName' | 'beforeName' | 'name' | 'afterName' | 'beforeValue' | 'value' | 'rawText' | 'comment';
  let state = 'data' as State;
  let tag = '';
  let endTag = false;
  let name = '';
  let quote = '';
  let valueStart = 0;
  let rawElement = '';
  let rawStart = 0;
  // In text right after a "<" that opened nothing (yet): a value written here could open a tag.
  let afterLt = false;
  // Whether the author's text (outside the Liquid blocks begun in the value) is in the attribute's value yet: before it, a value may begin it.
  let valueText = false;
  let valueDepth = 0;
  // Whether on this path a value is written into the attribute's value (an output, a tag of VALUE_TAGS, a {% liquid %}).
  let valueWrites = false;
  type Snapshot = {
    state: State; tag: string; endTag: boolean; name: string; quote: string; valueStart: number; rawElement: string; rawStart: number; afterLt: boolean; valueText: boolean; valueDepth: number; valueWrites: boolean;
  };
  const snapshot = (): Snapshot => ({ state, tag, endTag, name, quote, valueStart, rawElement, rawStart, afterLt, valueText, valueDepth, valueWrites });
  const restore = (s: Snapshot) => ({ state, tag, endTag, name, quote, valueStart, rawElement, rawStart, afterLt, valueText, valueDepth, valueWrites } = s);
  const beginValue = (at: number, quoteChar: string) => {
    state = 'value';
    quote = quoteChar;
    valueStart = at;
    valueText = false;
    valueDepth = frames.length;
    valueWrites = false;
    const check = urlValueCheck(name, tag);
    if (check !== undefined) urlValues.push({ offset: at, check });
  };
  /** The attribute's value ends at `at` (its closing quote, or the space or `>` after an unquoted one; the template's end). */
  const endValue = (at: number) => {
    const check = urlValueCheck(name, tag);
    if (check === undefined) return;
    if (valueWrites) {
      // The template's own text at the start of the value, up to its first Liquid markup, as the browser reads it.
      const markup = source.slice(valueStart, at).search(/\{[{%]/);
      const own = decodeEntities(source.slice(valueStart, markup < 0 ? at : valueStart + markup));
      const problem = check(own);
      if (problem !== undefined) {
        const message = `a value is written into the ${name} attribute of <${tag}> after the template's own text ${JSON.stringify(own.trim().slice(0, 40))}, which already makes it unsafe (${problem}), so the value would run as script or as a page of its own: write the whole URL in the template, or begin it with https:, http: or a relative path`;
        throw Object.assign(new Error(message), { token: { begin: valueStart, end: at } });
      }
      if (at === source.length) {
        const message = `the template ends inside the ${name} attribute's value of <${tag}>, which a value is written into: close the attribute in the template, so that the value it becomes can be checked whole`;
        throw Object.assign(new Error(message), { token: { begin: valueStart, end: at } });
      }
    }
    if (at < source.length) urlValues.push({ offset: at, writes: valueWrites });
  };
  /**
   * What of a snapshot decides how the rest of the template is read. Between
   * attributes, after an attribute's name or not is the same unless an `=`
   * comes next (`betweenAttributes`); after a tag's name too when a space,
   * `/` or `>` comes next (`afterTagName`: `<p{% if vip %} class="vip"{% endif %}>`).
   */
  const key = (s: Snapshot, betweenAttributes: boolean, afterTagName: boolean): string => {
    if (betweenAttributes && (s.state === 'beforeName' || s.state === 'name' || s.state === 'afterName' || (afterTagName && s.state === 'tagName'))) {
      return `between ${s.tag} ${s.endTag}`;
    }
    switch (s.state) {
      case 'data':
        return `data ${s.afterLt}`;
      case 'comment':
        return 'comment';
      case 'rawText':
        return `rawText ${s.rawElement} ${s.rawElement === 'style' ? s.rawStart : ''}`;
      case 'value':
        // Where the value began matters where the author's text before an output is read (CSS, a refresh URL).
        return `value ${s.tag} ${s.name} ${s.quote} ${s.name === 'style' || (s.name === 'content' && s.tag === 'meta') ? s.valueStart : ''}`;
      default:
        return `${s.state} ${s.tag} ${s.endTag} ${s.name}`;
    }
  };
  const describe = (s: Snapshot): string => {
    switch (s.state) {
      case 'data':
        return s.afterLt ? 'right after a "<"' : 'in text';
      case 'comment':
        return 'in an HTML comment';
      case 'rawText':
        return `in the text of <${s.rawElement}>`;
      case 'value':
        return `in the ${s.name} attribute's value of <${s.tag}>`;
      default:
        return `inside the tag <${s.endTag ? '/' : ''}${s.tag}>`;
    }
  };
  // `marks`: how many urlValues were noted when the block began (what a {% case %} holds before its first {% when %} is not written).
  type Frame = { name: string; begin: number; start: Snapshot; ends: { at: number; end: Snapshot }[]; branchAt: number; otherwise: boolean; marks: number };
  const frames: Frame[] = [];
  const closeTag = (at: number) => {
    if (!endTag && RAW_TEXT_ELEMENTS.has(tag)) {
      state = 'rawText';
      rawElement = tag;
      rawStart = at + 1;
    } else state = 'data';
  };
  const context = (at: number): HtmlContext => {
    switch (state) {
      case 'data':
        return afterLt ? TAG_OPEN : TEXT;
      case 'comment':
        return TEXT;
      case 'rawText':
        return rawElement === 'style' || rawElement === 'script' ? { in: rawElement, valueStart: rawStart } : TEXT;
      case 'beforeValue':
        return { in: 'attribute', name, quote: '', tag, valueStart: at, atStart: true };
      case 'value':
        return { in: 'attribute', name, quote, tag, valueStart, atStart: !valueText };
      default:
        return IN_TAG;
    }
  };
  /** A block's branches (and the path that skips it, unless it has an `else`) must end alike; the context goes on from there. */
  const closeBlock = (frame: Frame, at: number, after: number) => {
    frame.ends.push({ at: frame.branchAt, end: snapshot() });
    const loop = LOOP_TAGS.has(frame.name);
    const paths = loop || !frame.otherwise ? [{ at: -1, end: frame.start }, ...frame.ends] : frame.ends;
    // What comes next, past spaces and Liquid tags (`{% if vip %}checked{% endif %} class="x"`); after a loop's body, its body again too.
    const nextIsEquals = (from: number) => {
      let next = from;
      for (;;) {
        while (isHtmlSpace(source[next])) next++;
        if (!source.startsWith('{%', next)) break;
        const close = source.indexOf('%}', next + 2);
        if (close < 0) break;
        next = close + 2;
      }
      return source[next] === '=';
    };
    const betweenAttributes = !nextIsEquals(after) && !(loop && nextIsEquals(frame.begin));
    const afterTagName = !loop && (isHtmlSpace(source[after]) || source[after] === '/' || source[after] === '>');
    const first = paths[0] as { at: number; end: Snapshot };
    const other = paths.find((p) => key(p.end, betweenAttributes, afterTagName) !== key(first.end, betweenAttributes, afterTagName));
    if (other === undefined) {
      // In an attribute's value, a value is written into it if it is on any path.
      valueWrites = paths.some((p) => p.end.valueWrites);
      return;
    }
    const where = (p: { at: number; end: Snapshot }) =>
      p.at < 0 ? `${loop ? 'it is entered' : 'the path that skips it is'} ${describe(p.end)}` : `the branch at ${p.at} ends ${describe(p.end)}`;
    const message = loop
      ? `the {% ${frame.name} %} at ${frame.begin} does not end in the HTML context it starts in (${where(first)}, ${where(other)}), so each pass would be read from a different one: close in its body the tag or attribute it opens`
      : `the branches of the {% ${frame.name} %} at ${frame.begin} end in different HTML contexts (${where(first)}, ${where(other)}), so a value written after it could land somewhere other than where it is checked: close in each branch the tag or attribute it opens, or open it before the {% ${frame.name} %}`;
    throw Object.assign(new Error(message), { token: { begin: frame.begin, end: at } });
  };
  let literalUntil = -1;
  // The blanks before this offset are written (no `{{-` / `{%-` after them trims them).
  let writtenBlanksUntil = -1;
  let i = 0;
  while (i < source.length) {
    const c = source[i] as string;
    if (i >= literalUntil && c === '{' && (source[i + 1] === '{' || source[i + 1] === '%')) {
      const at = i;
      const here = context(i);
      // An output that begins an unquoted value (`src={{ x }}`): the value goes on after it.
      if (state === 'beforeValue') beginValue(i, '');
      const close = source.indexOf(source[i + 1] === '{' ? '}}' : '%}', i + 2);
      i = close < 0 ? source.length : close + 2;
      out.push({ begin: at, end: i, context: here });
      const liquidTag = source[at + 1] === '%' ? liquidTagName(source, at) : '';
      if (state === 'value' && (source[at + 1] === '{' || VALUE_TAGS.has(liquidTag) || liquidTag === 'liquid')) valueWrites = true;
      if (liquidTag === 'comment') {
        // Not written: its text does not move the context.
        i = blockEnd(source, i, 'comment')?.end ?? source.length;
      } else if (liquidTag === 'raw') {
        // Written as it stands: HTML, with no Liquid in it.
        literalUntil = blockEnd(source, i, 'raw')?.begin ?? source.length;
      } else if (liquidTag === 'capture') {
        // Its text is a variable's value, written (and judged, whole) where an output writes it: read from the start of a page of its own.
        frames.push({ name: liquidTag, begin: at, start: snapshot(), ends: [], branchAt: at, otherwise: false, marks: urlValues.length });
        restore({ state: 'data', tag: '', endTag: false, name: '', quote: '', valueStart: 0, rawElement: '', rawStart: 0, afterLt: false, valueText: false, valueDepth: 0, valueWrites: false });
      } else if (liquidTag === 'endcapture' && frames.at(-1)?.name === 'capture') {
        restore((frames.pop() as Frame).start);
      } else if (BRANCHING_TAGS.has(liquidTag)) {
        frames.push({ name: liquidTag, begin: at, start: snapshot(), ends: [], branchAt: at, otherwise: false, marks: urlValues.length });
      } else if (BRANCH_TAGS.has(liquidTag) && frames.length > 0) {
        const frame = frames.at(-1) as Frame;
        // What a {% case %} holds before its first {% when %} is not written.
        if (frame.name !== 'case' || frame.branchAt !== frame.begin) frame.ends.push({ at: frame.branchAt, end: snapshot() });
        else urlValues.length = frame.marks;
        frame.branchAt = at;
        if (liquidTag === 'else') frame.otherwise = true;
        restore(frame.start);
      } else if (liquidTag === 'break' || liquidTag === 'continue' || (liquidTag === 'liquid' && liquidLoopExit(source.slice(at, i)))) {
        // The rest of the loop's body is skipped: the context here (in the page, past any capture it is in) is one the loop may end a pass in.
        let here = snapshot();
        for (let k = frames.length - 1; k >= 0; k--) {
          const frame = frames[k] as Frame;
          if (LOOP_TAGS.has(frame.name)) {
            frame.ends.push({ at, end: here });
            break;
          }
          if (frame.name === 'capture') here = frame.start;
        }
      } else if (liquidTag.startsWith('end') && frames.at(-1)?.name === liquidTag.slice(3)) {
        closeBlock(frames.pop() as Frame, at, i);
      }
      // `-}}` / `-%}` trims the blanks after it (but the text of a {% raw -%}): they are not written.
      if (liquidTag !== 'raw' && source[i - 3] === '-') while (i < source.length && isLiquidBlank(source[i])) i++;
      continue;
    }
    if (i >= writtenBlanksUntil && isLiquidBlank(c)) {
      // `{{-` / `{%-` trims the blanks before it (not in the text of {% raw %}, nor before its {%- endraw %}): they are not written.
      let j = i + 1;
      while (j < source.length && isLiquidBlank(source[j])) j++;
      if (j > literalUntil && source[j] === '{' && (source[j + 1] === '{' || source[j + 1] === '%') && source[j + 2] === '-') {
        i = j;
        continue;
      }
      writtenBlanksUntil = j;
    }
    afterLt = false;
    switch (state) {
      case 'data':
        if (c === '<' && source.startsWith('!--', i + 1)) {
          state = 'comment';
          i += 4;
          continue;
        }
        if (c === '<' && (isLetter(source[i + 1]) || (source[i + 1] === '/' && isLetter(source[i + 2])))) {
          endTag = source[i + 1] === '/';
          tag = '';
          state = 'tagName';
          i += endTag ? 2 : 1;
          continue;
        }
        if (c === '<') afterLt = true;
        break;
      case 'comment':
        if (c === '-' && source.startsWith('->', i + 1)) {
          state = 'data';
          i += 3;
          continue;
        }
        break;
      case 'rawText':
        if (c === '<' && source[i + 1] === '/' && source.slice(i + 2, i + 2 + rawElement.length).toLowerCase() === rawElement) {
          endTag = true;
          tag = rawElement;
          state = 'tagName';
          i += 2 + rawElement.length;
          continue;
        }
        break;
      case 'tagName':
        if (isHtmlSpace(c) || c === '/') state = 'beforeName';
        else if (c === '>') closeTag(i);
        else tag += c.toLowerCase();
        break;
      case 'beforeName':
      case 'afterName':
        if (c === '>') closeTag(i);
        else if (c === '=' && state === 'afterName') state = 'beforeValue';
        else if (c === '/') state = 'beforeName';
        else if (!isHtmlSpace(c)) {
          state = 'name';
          name = c.toLowerCase();
        }
        break;
      case 'name':
        if (isHtmlSpace(c)) state = 'afterName';
        else if (c === '=') state = 'beforeValue';
        else if (c === '/') state = 'beforeName';
        else if (c === '>') closeTag(i);
        else name += c.toLowerCase();
        break;
      case 'beforeValue':
        if (c === '"' || c === "'") beginValue(i + 1, c);
        else if (c === '>') closeTag(i);
        else if (!isHtmlSpace(c)) {
          beginValue(i, '');
          continue;
        }
        break;
      case 'value':
        if (quote !== '' ? c === quote : isHtmlSpace(c)) {
          endValue(i);
          state = 'beforeName';
        } else if (quote === '' && c === '>') {
          endValue(i);
          closeTag(i);
        }
        else if (!isHtmlSpace(c) && frames.length <= valueDepth) valueText = true;
        break;
    }
    i++;
  }
  if (state === 'value') endValue(source.length);
  return { contexts: out, urlValues };
}

/** The context of the Liquid markup that `offset` is in (an `echo` inside `{% liquid %}` has its tag's), by binary search. */
function contextAt(contexts: readonly { begin: number; end: number; context: HtmlContext }[], offset: number): HtmlContext | undefined {
  let low = 0;
  let high = contexts.length - 1;
  while (low <= high) {
    const mid = (low + high) >> 1;
    const block = contexts[mid] as { begin: number; end: number; context: HtmlContext };
    if (offset < block.begin) high = mid - 1;
    else if (offset >= block.end) low = mid + 1;
    else return block.context;
  }
  return undefined;
}

/** The template's own text from `start` to `end`, Liquid markup left out. Linear. */
function authorText(source: string, start: number, end: number): string {
  let text = '';
  let i = start;
  while (i < end) {
    const open = source.indexOf('{', i);
    if (open < 0 || open >= end) return text + source.slice(i, end);
    const next = source[open + 1];
    if (next !== '{' && next !== '%') {
      text += source.slice(i, open + 1);
      i = open + 1;
      continue;
    }
    text += source.slice(i, open);
    const close = source.indexOf(next === '{' ? '}}' : '%}', open + 2);
    i = close < 0 ? end : close + 2;
  }
  return text;
}

/** What a value may not hold where CSS reads it (lower case): a URL it would load, an import, an old script hook, an escape that can spell any of them. */
const CSS_LOADS = ['url(', '@import', 'image-set(', 'image(', 'expression(', '-moz-binding', 'behavior', '\\'];

/** Why a value written into CSS (a `style` attribute, a `<style>` element) after `before` (the author's CSS) is not served. */
function cssProblem(value: string, before: string): string | undefined {
  const lower = value.toLowerCase();
  for (const what of CSS_LOADS) {
    if (lower.includes(what)) return `a value written into CSS must not hold "${what}" (it could load a URL or run script): write the CSS in the template`;
  }
  let end = before.length;
  while (end > 0 && isHtmlSpace(before[end - 1])) end--;
  if (end > 0 && (before[end - 1] === '"' || before[end - 1] === "'")) end--;
  while (end > 0 && isHtmlSpace(before[end - 1])) end--;
  const head = before.slice(Math.max(0, end - 7), end).toLowerCase();
  if (head.endsWith('url(') || head.endsWith('@import')) {
    const problem = unsafeLinkProblem(value);
    if (problem !== undefined) return `a CSS URL: ${problem}`;
  }
  return undefined;
}

const UNQUOTED_VALUE =
  'an output in an unquoted attribute value: a value with a space (a name like "Ana María") is not served, since it would start another attribute; quote the attribute';
/**
 * Elements that hand their attributes to a plugin, which loads URLs from
 * any number of them (`<param name="movie" value="…">`, `src`, `url`,
 * `code`, `filename`, `codebase`, `archive`, `classid`, an `<embed>`'s own
 * made-up ones): no value is written into their attributes.
 */
const PLUGIN_ELEMENTS: ReadonlySet<string> = new Set(['object', 'embed', 'param', 'applet']);

const valueInPluginElement = (tag: string) =>
  `a value cannot be written into an attribute of <${tag}>: <object>, <embed>, <param> and <applet> hand their attributes to plugins, which load links from any of them (a <param name="movie" value="…">), so no check of the value could keep script out: write their attributes in the template, or link to the media with an <a href> or <img src>`;

const VALUE_IN_TAG =
  'a value cannot be written inside a tag, as its name or an attribute\'s (it could add an attribute that runs script): write the tag and its attributes in the template, a value in a quoted attribute value (class="{{ tier }}"), or choose with {% if %}';

/** Characters a value written into script (a `<script>` element, an `on…` attribute) may hold: words, numbers and ` .,:@+-`. */
const SCRIPT_SAFE = /^[\w .,:@+-]*$/;
const scriptProblem = (value: string) =>
  SCRIPT_SAFE.test(value) ? undefined : 'a value written into script (a <script> element or an on… attribute) may hold only letters, digits, spaces and . , : @ + - (anything else could run as code)';

/** The URL of a `<meta http-equiv="refresh">` content (`5; url=/next`, `0;/next`, `0 /next`), read as the HTML standard reads it; undefined when it has none. */
export function refreshUrl(content: string): string | undefined {
  let i = 0;
  while (isHtmlSpace(content[i])) i++;
  while (i < content.length && ((content[i] as string) >= '0' && (content[i] as string) <= '9' || content[i] === '.')) i++;
  if (i >= content.length) return undefined;
  if (content[i] !== ';' && content[i] !== ',' && !isHtmlSpace(content[i])) return undefined;
  while (isHtmlSpace(content[i])) i++;
  if (content[i] === ';' || content[i] === ',') i++;
  while (isHtmlSpace(content[i])) i++;
  let rest = content.slice(i);
  if (rest.slice(0, 3).toLowerCase() === 'url') {
    let j = 3;
    while (isHtmlSpace(rest[j])) j++;
    if (rest[j] === '=') {
      j++;
      while (isHtmlSpace(rest[j])) j++;
      rest = rest.slice(j);
    }
  }
  if (rest[0] === '"' || rest[0] === "'") rest = rest.slice(1);
  return rest;
}

/** Attributes whose value is a list of image candidates (`url 2x, url 640w`). */
const SRCSET_ATTRIBUTES: ReadonlySet<string> = new Set(['srcset', 'imagesrcset']);

/** Why what a value writes into a srcset is not served: every candidate's URL is checked as a link. */
function srcsetProblem(value: string): string | undefined {
  for (const candidate of value.split(',')) {
    let start = 0;
    while (isHtmlSpace(candidate[start])) start++;
    let end = start;
    while (end < candidate.length && !isHtmlSpace(candidate[end])) end++;
    const problem = unsafeLinkProblem(candidate.slice(start, end));
    if (problem !== undefined) return `a srcset URL: ${problem}`;
  }
  return undefined;
}

/** Why a URL attribute's value (entities decoded) is not served: it is a `javascript:` … URL. */
function urlAttributeProblem(url: string): string | undefined {
  const problem = unsafeLinkProblem(url);
  return problem === undefined ? undefined : `an HTML attribute's URL: ${problem}`;
}

/** Why a `<meta content>` (entities decoded) is not served: its refresh URL is a `javascript:` … URL. */
function refreshProblem(content: string): string | undefined {
  const url = refreshUrl(content);
  const problem = url === undefined ? undefined : unsafeLinkProblem(url);
  return problem === undefined ? undefined : `a refresh URL: ${problem}`;
}

/**
 * How the whole value of the attribute `name` of `<tag>` is checked when a
 * value is written into it (entities decoded): as a link (URL_ATTRIBUTES),
 * each candidate as a link (a srcset), its refresh URL as a link (`<meta
 * content>`); undefined for an attribute whose value is no URL.
 */
function urlValueCheck(name: string, tag: string): ((value: string) => string | undefined) | undefined {
  if (URL_ATTRIBUTES.includes(name)) return urlAttributeProblem;
  if (SRCSET_ATTRIBUTES.has(name)) return srcsetProblem;
  if (name === 'content' && tag === 'meta') return refreshProblem;
  if (ANIMATION_ELEMENTS.has(tag) && ANIMATION_VALUE_ATTRIBUTES.has(name)) return animationValueProblem;
  return undefined;
}

/**
 * SVG animation elements and the attributes whose values they set on
 * another attribute (`<set attributeName="href" to="…">`, `<animate
 * values="a;b">`): any of them may set a link.
 */
const ANIMATION_ELEMENTS: ReadonlySet<string> = new Set(['set', 'animate']);
const ANIMATION_VALUE_ATTRIBUTES: ReadonlySet<string> = new Set(['to', 'from', 'by', 'values']);

/** Why an animation's value (entities decoded) is not served: each `;`-separated value is checked as a link. */
function animationValueProblem(value: string): string | undefined {
  for (const part of value.split(';')) {
    const problem = unsafeLinkProblem(part);
    if (problem !== undefined) return `an SVG animation's value (it may set a link): ${problem}`;
  }
  return undefined;
}

/** What a value written with `| raw` must not hold: it would open or close a tag, or an attribute's value. */
const MARKUP_CHARACTERS = ['<', '>', '"', "'", '`'];

/**
 * The check of what one output writes at `context` (its text as written,
 * escaped unless `raw`), or undefined where escaping is enough (element
 * text, a quoted value of an ordinary attribute).
 */
function contextCheck(source: string, at: number, context: HtmlContext, raw: boolean): ((written: string) => string | undefined) | undefined {
  const checks: ((written: string) => string | undefined)[] = [];
  if (raw) {
    checks.push((written) =>
      MARKUP_CHARACTERS.some((c) => written.includes(c))
        ? 'a value written with | raw must not hold < > " \' or ` (it could open a tag or an attribute): write the markup in the template'
        : undefined,
    );
  }
  if (context.in === 'tagOpen') {
    checks.push((written) => (/^[A-Za-z/!?]/.test(written) ? 'a value written right after "<" must not start with a letter, /, ! or ? (it would open a tag)' : undefined));
  } else if (context.in === 'script') {
    checks.push(scriptProblem);
  } else if (context.in === 'style') {
    const before = authorText(source, context.valueStart, at);
    checks.push((written) => cssProblem(written, before));
  } else if (context.in === 'attribute') {
    if (context.quote === '') {
      checks.push((written) =>
        /[\t\n\f\r ]/.test(written) ? 'a value in an unquoted attribute must not hold spaces (it would start another attribute): quote the attribute' : undefined,
      );
    }
    const before = authorText(source, context.valueStart, at);
    if (context.name.startsWith('on')) checks.push((written) => scriptProblem(decodeEntities(written)));
    else if (context.name === 'style') checks.push((written) => cssProblem(decodeEntities(written), before));
    else if (SRCSET_ATTRIBUTES.has(context.name)) checks.push((written) => srcsetProblem(decodeEntities(written)));
    else if (ANIMATION_ELEMENTS.has(context.tag) && ANIMATION_VALUE_ATTRIBUTES.has(context.name)) {
      checks.push((written) => animationValueProblem(decodeEntities(written)));
    }
    else if (context.name === 'srcdoc') {
      checks.push((written) => (decodeEntities(written).includes('<') ? 'a value written into an srcdoc must not hold "<" (the frame reads it as markup)' : undefined));
    }
    else if (context.atStart && URL_ATTRIBUTES.includes(context.name)) {
      // It may begin the URL (`href="{{ link }}"`, `href="{% if vip %}/vip{% endif %}{{ link }}"` when not vip).
      checks.push((written) => urlAttributeProblem(decodeEntities(written)));
    } else if (context.name === 'content' && context.tag === 'meta') {
      checks.push((written) => refreshProblem(before + decodeEntities(written)));
    }
  }
  if (checks.length === 0) return undefined;
  return (written) => {
    for (const check of checks) {
      const problem = check(written);
      if (problem !== undefined) return problem;
    }
    return undefined;
  };
}

/** The text written so far to `emitter`, the render's or a capture's (always a BoundedEmitter: `sandboxedLiquid`). */
function writtenSoFar(emitter: Emitter): string {
  if (!(emitter instanceof BoundedEmitter)) throw new Error('the HTML guard cannot read what this render writes');
  return emitter.buffer;
}

/**
 * Render `node` where it writes and fail the render when `check` finds a
 * problem with what it wrote (a tag that returns its text, as `cycle`
 * does, has it written first).
 */
function guardWritten(node: Template, check: (written: string) => string | undefined): void {
  const render = node.render.bind(node);
  node.render = function* (ctx: Context, emitter: Emitter) {
    const from = writtenSoFar(emitter).length;
    const html: unknown = yield render(ctx, emitter);
    if (html) emitter.write(html);
    const problem = check(writtenSoFar(emitter).slice(from));
    if (problem !== undefined) throw new Error(problem);
  } as Template['render'];
}

/**
 * Where a URL-valued attribute's value begins in each output (the render's,
 * a capture's) while it is being written: its offset there, its check, and
 * whether a value has been written into it (`noteWrites`) in this render.
 */
const openUrlValues = new WeakMap<Emitter, { at: number; check: (value: string) => string | undefined; written: boolean }>();

const LOST_URL_VALUE = "the HTML guard lost where a URL attribute's value begins: it cannot be checked";

/** A node that writes a value (`writerOf`): notes, at render, that it writes into the URL-valued attribute's value open where it writes, if one is. */
function noteWrites(node: Template): void {
  const render = node.render.bind(node);
  node.render = function* (ctx: Context, emitter: Emitter) {
    const open = openUrlValues.get(emitter);
    if (open !== undefined) open.written = true;
    const html: unknown = yield render(ctx, emitter);
    return html;
  } as Template['render'];
}

/**
 * The last node of an `html` template that writes values: a URL-valued
 * attribute's value still open when the render ends, that a value was
 * written into, is checked whole to the end (a backstop: `htmlContexts`
 * refuses a template that ends inside one, and a loop left inside one).
 */
class UrlValueBackstop implements Template {
  constructor(readonly token: Token) {}
  render(_ctx: Context, emitter: Emitter): void {
    const open = openUrlValues.get(emitter);
    if (open === undefined || !open.written) return;
    const problem = open.check(decodeEntities(writtenSoFar(emitter).slice(open.at)));
    if (problem !== undefined) throw new Error(problem);
  }
}

/**
 * At render, check the whole value of every URL-valued attribute a value
 * is written into, as the browser will read it: what the template's own
 * text and every output and tag wrote between the value's start and its
 * end (`htmlContexts` `urlValues`), HTML entities decoded
 * (`href="{{ a }}{{ b }}"` with `java` and `script:…`, `href="java{{ b }}"`,
 * `href="{{ a }}:{{ b }}"` are not served). Each begins and ends in the
 * template's own text, an HTML node of `nodes`, whose render notes where
 * (`openUrlValues`); one that does not (a quote written by `{% raw %}`) is
 * refused (throws, with the offset).
 */
function guardUrlValues(nodes: readonly Template[], marks: readonly UrlValueMark[]): void {
  const sorted = [...nodes].sort((a, b) => a.token.begin - b.token.begin);
  const byNode = new Map<Template, { at: number; mark: UrlValueMark }[]>();
  for (const mark of marks) {
    const start = 'check' in mark;
    let low = 0;
    let high = sorted.length - 1;
    let found: Template | undefined;
    while (low <= high) {
      const mid = (low + high) >> 1;
      const node = sorted[mid] as Template;
      if (mark.offset < node.token.begin) high = mid - 1;
      else if (mark.offset > node.token.end || (!start && mark.offset === node.token.end)) low = mid + 1;
      else {
        found = node;
        break;
      }
    }
    if (found === undefined) {
      const message = "a URL attribute's value (href, src, srcset, a refresh …) that a value is written into must begin and end in the template's own text (not in {% raw %}), so that the value it becomes can be checked whole";
      throw Object.assign(new Error(message), { token: { begin: mark.offset, end: mark.offset } });
    }
    const token = found.token as Token & { trimLeft: number };
    const str = (found as { str?: unknown }).str as string;
    // Whitespace control trims the node's text: an offset in what it trimmed is at its edge.
    const at = Math.min(Math.max(mark.offset - token.begin - token.trimLeft, 0), str.length);
    const list = byNode.get(found) ?? [];
    list.push({ at, mark });
    byNode.set(found, list);
  }
  for (const [node, list] of byNode) {
    const render = node.render.bind(node);
    node.render = function* (ctx: Context, emitter: Emitter) {
      const from = writtenSoFar(emitter).length;
      yield render(ctx, emitter);
      for (const { at, mark } of list) {
        const written = writtenSoFar(emitter);
        if ('check' in mark) {
          if (openUrlValues.has(emitter)) throw new Error(LOST_URL_VALUE);
          openUrlValues.set(emitter, { at: from + at, check: mark.check, written: false });
          continue;
        }
        const open = openUrlValues.get(emitter);
        openUrlValues.delete(emitter);
        if (open === undefined) {
          if (mark.writes) throw new Error(LOST_URL_VALUE);
          continue;
        }
        if (!mark.writes && !open.written) continue;
        const problem = open.check(decodeEntities(written.slice(open.at, from + at)));
        if (problem !== undefined) throw new Error(problem);
      }
    } as Template['render'];
  }
}

/** A value an output, an `echo` or a `cycle` candidate writes: its expression and filters. */
type WrittenValue = { readonly initial?: { readonly postfix?: readonly unknown[] }; readonly filters?: readonly { readonly name?: string; readonly raw?: boolean; readonly args?: readonly unknown[] }[] };

/** Whether a written value is unescaped: its last filter is `raw`, and it is not a string literal with no filter argument (the author's own text). */
function unescaped(value: WrittenValue): boolean {
  const filters = value.filters ?? [];
  const last = filters.at(-1);
  if (last === undefined || !(last.raw === true || last.name === 'raw')) return false;
  const postfix = value.initial?.postfix ?? [];
  return !(postfix.length === 1 && TypeGuards.isQuotedToken(postfix[0] as Token) && filters.every((f) => (f.args ?? []).length === 0));
}

/**
 * Whether `node` writes a value, an output (`{{ … }}`) or a tag of
 * VALUE_TAGS, and then whether it may write it unescaped (`raw`): an
 * output's, an `echo`'s or any `cycle` candidate's value through `| raw`;
 * `increment` and `decrement` write a number.
 */
function writerOf(node: Template): { raw: boolean } | undefined {
  const token = node.token as Token | undefined;
  if (token === undefined) return undefined;
  if (TypeGuards.isOutputToken(token)) return { raw: unescaped((node as { value?: WrittenValue }).value ?? {}) };
  if (!TypeGuards.isTagToken(token) || !VALUE_TAGS.has(token.name)) return undefined;
  if (token.name === 'cycle') return { raw: ((node as { candidates?: readonly WrittenValue[] }).candidates ?? []).some(unescaped) };
  const value = (node as { value?: WrittenValue }).value;
  return { raw: value !== undefined && unescaped(value) };
}

/**
 * Parse a template of this kind. In an `html` template, the outputs and tags
 * that start a URL attribute's value are guarded, the whole value of every
 * URL-valued attribute a value is written into (`guardUrlValues`), and
 * every output (`{{ … }}`, a tag of VALUE_TAGS: `echo`, `cycle`,
 * `increment`, `decrement`) that writes where escaping is not enough (`contextCheck`):
 * right after a `<`, in an unquoted, `on…`, `style`, `srcset`, `srcdoc` or
 * `<meta content>` value, in a `<style>` or `<script>` element, or with
 * `| raw` (but for a string literal with no filter argument, the author's
 * own text). An output inside a tag, as its name or an attribute's, or in
 * an attribute of <object>, <embed>, <param> or <applet> (PLUGIN_ELEMENTS),
 * is refused: the parse throws, with the output's token; so are Liquid
 * branches that leave different HTML contexts, with the block's. An output in an
 * unquoted value is noted in `warnings` (a value with a space is not served).
 */
function parseTemplate(source: string, kind: TemplateKind, warnings?: TemplateCompileError[]): Template[] {
  const parsed = engines[kind].parse(source);
  if (kind !== 'html') return parsed;
  const writers: { node: Template; begin: number; raw: boolean }[] = [];
  const htmlNodes: Template[] = [];
  const stack: Template[] = [...parsed];
  while (stack.length > 0) {
    const node = stack.pop() as Template;
    if (node instanceof LoopPass) continue;
    const begin = node.token?.begin;
    if (TypeGuards.isHTMLToken(node.token)) htmlNodes.push(node);
    const writer = writerOf(node);
    if (writer !== undefined && begin !== undefined) writers.push({ node, begin, raw: writer.raw });
    stack.push(...childrenOf(node));
  }
  if (writers.length === 0) return parsed;
  const { contexts, urlValues } = htmlContexts(source);
  guardUrlValues(htmlNodes, urlValues);
  for (const { node } of writers) noteWrites(node);
  parsed.push(new UrlValueBackstop((parsed.at(-1) as Template).token));
  for (const { node, begin, raw } of writers) {
    const context = contextAt(contexts, begin);
    // As a tag's or an attribute's name, any value could add an attribute that runs script (`<p {{ attr }}>`): the template is refused.
    if (context?.in === 'tag') throw Object.assign(new Error(VALUE_IN_TAG), { token: node.token });
    if (context?.in === 'attribute' && PLUGIN_ELEMENTS.has(context.tag)) throw Object.assign(new Error(valueInPluginElement(context.tag)), { token: node.token });
    if (context?.in === 'attribute' && context.quote === '') warnings?.push({ message: UNQUOTED_VALUE, position: begin });
    const check = context === undefined ? undefined : contextCheck(source, begin, context, raw);
    if (check !== undefined) guardWritten(node, check);
  }
  return parsed;
}

export interface TemplateCompileError {
  readonly message: string;
  /** 0-based offset in the template: the tag or output, or the filter name of an unknown filter. */
  readonly position?: number;
  /** For an unknown filter close to a known one: `did you mean "upcase"?`. */
  readonly hint?: string;
}

/** An unknown filter's name in its output (`{{ x | upcse }}`): its offset, and the known filter it is likely a slip for. */
function unknownFilter(source: string, kind: TemplateKind, message: string, token: { begin?: number; end?: number } | undefined) {
  const name = /^undefined filter: (\S+)/.exec(message)?.[1];
  if (name === undefined || token?.begin === undefined) return undefined;
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`\\|\\s*(${escaped})(?![\\w-])`).exec(source.slice(token.begin, token.end ?? source.length));
  const hint = didYouMean(name, Object.keys(engines[kind].filters));
  return { position: token.begin + (m ? m.index + m[0].length - name.length : 0), ...(hint ? { hint } : {}) };
}

/** A literal loop size (`(1..500)`, `limit: 20`), else undefined. */
function literalNumber(token: ValueToken | undefined): number | undefined {
  return TypeGuards.isNumberToken(token) ? token.content : undefined;
}

function literalLoopSize(collection: unknown, limit: unknown): number | undefined {
  let size: number | undefined;
  if (TypeGuards.isRangeToken(collection)) {
    const low = literalNumber(collection.lhs);
    const high = literalNumber(collection.rhs);
    if (low !== undefined && high !== undefined) size = Math.max(0, Math.floor(high) - Math.ceil(low) + 1);
  }
  const cap = literalNumber(limit as ValueToken | undefined);
  if (cap !== undefined) size = Math.max(0, Math.min(size ?? cap, cap));
  return size;
}

/**
 * The bounds a parsed template exceeds whatever it renders, where that is
 * known before rendering: loops over literal ranges or with a literal
 * `limit` (nested ones multiply), and the literal text they repeat.
 */
function staticBoundProblem(parsed: readonly Template[]): TemplateCompileError | undefined {
  let steps = 0;
  let output = 0;
  const stack: { node: Template; times: number }[] = parsed.map((node) => ({ node, times: 1 }));
  while (stack.length > 0) {
    const { node, times } = stack.pop() as { node: Template; times: number };
    if (node instanceof LoopPass) continue;
    if (node instanceof BoundedFor || node instanceof BoundedTablerow) {
      const limit = node instanceof BoundedFor ? node.hash.hash.limit : node.args.hash.limit;
      const size = literalLoopSize(node.collection, limit);
      const inner = size === undefined ? times : times * size;
      if (size !== undefined) steps += inner * node.weight;
      if (steps > TEMPLATE_LIMITS.loopSteps) {
        return { message: `loops here take ${steps} steps or more (passes × the size of their body), over the bound of ${TEMPLATE_LIMITS.loopSteps}`, position: node.token.begin };
      }
      for (const child of node.templates) stack.push({ node: child, times: inner });
      if (node instanceof BoundedFor) for (const child of node.elseTemplates) stack.push({ node: child, times });
      continue;
    }
    const str = (node as { str?: unknown }).str;
    if (typeof str === 'string') {
      output += str.length * times;
      if (output > TEMPLATE_LIMITS.outputChars) {
        return { message: `outputs ${output} characters or more, over the bound of ${TEMPLATE_LIMITS.outputChars}`, position: node.token.begin };
      }
    }
    for (const child of childrenOf(node)) stack.push({ node: child, times });
  }
  return undefined;
}

type SchemaNode = string | { readonly [field: string]: SchemaNode };

/**
 * Reads of `profile.…` that name no field of the profile (PROFILE_CEL_SCHEMA,
 * the one declaration rules are checked against): `{{ profile.stat.orders }}`
 * renders empty for every customer. Below a map (`traits`, `scores` …), a
 * list or a value anything goes (keys are free, `size` and `first` are
 * Liquid's). Each with its offset in the template and the field meant, when
 * one is close.
 */
function unknownProfileReads(parsed: Template[], kind: TemplateKind, source: string): TemplateCompileError[] {
  const lineStarts = [0];
  for (let i = source.indexOf('\n'); i !== -1; i = source.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const out: TemplateCompileError[] = [];
  const seen = new Set<string>();
  for (const variable of engines[kind].analyzeSync(parsed).globals.profile ?? []) {
    let node: SchemaNode = PROFILE_CEL_SCHEMA;
    const read = ['profile'];
    for (const segment of variable.segments.slice(1)) {
      if (typeof node === 'string' || typeof segment !== 'string') break;
      const next: SchemaNode | undefined = Object.hasOwn(node, segment) ? node[segment] : undefined;
      if (next === undefined) {
        const what = read.join('.');
        const key = `${what}.${segment}`;
        if (seen.has(key)) break;
        seen.add(key);
        const at = variable.location;
        const position = at ? (lineStarts[at.row - 1] ?? 0) + at.col - 1 : undefined;
        const hint = didYouMean(segment, Object.keys(node));
        out.push({
          message: `${what} has no field "${segment}": it renders empty for every customer`,
          ...(position === undefined ? {} : { position }),
          ...(hint ? { hint } : {}),
        });
        break;
      }
      read.push(segment);
      node = next;
    }
  }
  return out;
}

/**
 * Parse a content template of this kind. Refused: Liquid syntax errors,
 * unknown filters, `include`/`render`/`layout`, and loops or literal text
 * over TEMPLATE_LIMITS when that is known before rendering, an output
 * inside an HTML tag, Liquid branches (or a loop's body) that leave
 * different HTML contexts (`htmlContexts`). Warned about (`warnings`): a read of a `profile.`
 * field the profile does not have, an output in an unquoted HTML attribute
 * value.
 */
export function compileTemplate(
  source: string,
  path: string,
  kind: TemplateKind,
): { ok: true; template: CompiledTemplate; warnings?: TemplateCompileError[] } | { ok: false; error: TemplateCompileError } {
  if (!MARKUP.test(source)) return { ok: true, template: { source, path, kind, literal: source } };
  try {
    const unquoted: TemplateCompileError[] = [];
    const parsed = parseTemplate(source, kind, unquoted);
    const bound = staticBoundProblem(parsed);
    if (bound) return { ok: false, error: bound };
    const warnings = [...unknownProfileReads(parsed, kind, source), ...unquoted.sort((a, b) => (a.position ?? 0) - (b.position ?? 0))];
    return { ok: true, template: { source, path, kind, parsed }, ...(warnings.length > 0 ? { warnings } : {}) };
  } catch (error) {
    const e = error as { message?: string; token?: { begin?: number; end?: number } };
    const message = (e.message ?? 'invalid template').replace(/, line:\d+, col:\d+$/, '');
    const filter = unknownFilter(source, kind, message, e.token);
    if (filter) return { ok: false, error: { message, ...filter } };
    return {
      ok: false,
      error: e.token?.begin === undefined ? { message } : { message, position: e.token.begin },
    };
  }
}

/** The variables a template sees, built once per rendered decision. */
export type TemplateScope = Record<string, unknown>;

/** Template scope from the decision's rule variables. */
export function templateScope(vars: RuleVariables): TemplateScope {
  const traits = (vars.profile.traits ?? {}) as Record<string, unknown>;
  return {
    ...traits,
    profile: vars.profile,
    traits,
    context: vars.context,
    channel: vars.channel,
    placement: vars.placement,
  };
}

/** What a declared fallback replaces: nothing, `false`, whitespace-only text or an empty list (as Liquid's `default` treats nil, false and empty). */
const isBlank = (v: unknown) =>
  v === undefined || v === null || v === false || (typeof v === 'string' && v.trim() === '') || (Array.isArray(v) && v.length === 0);
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

function getPath(scope: Record<string, unknown>, parts: readonly string[]): unknown {
  let cur: unknown = scope;
  for (const part of parts) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** Copy-on-write set along a dotted path (the profile is shared and read-only). */
function setPath(scope: Record<string, unknown>, parts: readonly string[], value: unknown): Record<string, unknown> {
  const [head, ...rest] = parts;
  if (head === undefined || UNSAFE_KEYS.has(head)) return scope;
  if (rest.length === 0) return { ...scope, [head]: value };
  const child = scope[head];
  const base = child !== null && typeof child === 'object' && !Array.isArray(child) ? (child as Record<string, unknown>) : {};
  return { ...scope, [head]: setPath(base, rest, value) };
}

/** Apply the action's declared fallbacks to a scope (only for blank variables). */
function applyFallbacks(scope: TemplateScope, fallbacks: Readonly<Record<string, string>>): TemplateScope {
  let out = scope;
  for (const key in fallbacks) {
    const parts = key.split('.');
    if (isBlank(getPath(out, parts))) out = setPath(out, parts, fallbacks[key]);
    // `firstName` falls back for `traits.firstName` and `profile.traits.firstName` too.
    if (parts.length === 1) {
      if (isBlank(getPath(out, ['traits', key]))) out = setPath(out, ['traits', key], fallbacks[key]);
      if (isBlank(getPath(out, ['profile', 'traits', key]))) out = setPath(out, ['profile', 'traits', key], fallbacks[key]);
    }
  }
  return out;
}

/** Templates compiled without parsing (compile.ts, the stored document), parsed on first render; a parse error is kept too. */
const deferred = new WeakMap<CompiledTemplate, Template[] | Error>();

function parsedOf(template: CompiledTemplate): Template[] {
  if (template.parsed !== undefined) return template.parsed as Template[];
  let parsed = deferred.get(template);
  if (!parsed) {
    try {
      parsed = parseTemplate(template.source, template.kind);
    } catch (error) {
      parsed = error instanceof Error ? error : new Error(String(error));
    }
    deferred.set(template, parsed);
  }
  if (parsed instanceof Error) throw parsed;
  return parsed;
}

/**
 * Render one template. Throws on a render failure (a bound of
 * TEMPLATE_LIMITS reached, a filter error, a template that does not parse),
 * which the caller counts (decide: FailureTally `templates`); nothing of a
 * failed render is returned.
 */
export function renderTemplate(template: CompiledTemplate, scope: TemplateScope): string {
  if (template.literal !== undefined) return template.literal;
  return String(engines[template.kind].renderSync(parsedOf(template), scope));
}

/**
 * Render a channel's content with the declared fallbacks. Throws when a
 * template fails to render, when a link field (content-fields.ts `link`)
 * renders to a URL with an unsafe scheme (`javascript:` …), or when the
 * content passes `TEMPLATE_LIMITS.contentBytes` in all (the caller drops
 * that action and explains why).
 */
export function renderContent(
  content: CompiledContent,
  scope: TemplateScope,
  fallbacks: Readonly<Record<string, string>> = {},
): RenderedContent {
  const filled = Object.keys(fallbacks).length > 0 ? applyFallbacks(scope, fallbacks) : scope;
  const out: RenderedContent = {};
  let bytes = 0;
  const counted = (text: string): string => {
    bytes += utf8Length(text);
    if (bytes > TEMPLATE_LIMITS.contentBytes) {
      throw new Error(`the content renders to more than ${TEMPLATE_LIMITS.contentBytes} bytes in all (its fields and list items together)`);
    }
    return text;
  };
  const specs: Readonly<Record<string, ContentFieldSpec>> = CONTENT_FIELDS[content.channel];
  for (const name in content.literals) out[name] = content.literals[name] as string;
  for (const name in content.fields) {
    const text = counted(renderTemplate(content.fields[name] as CompiledTemplate, filled));
    const unsafe = specs[name]?.link === true ? unsafeLinkProblem(text) : undefined;
    // A value from the profile or the request (anyone with a write key sets their traits) never becomes a script link.
    if (unsafe !== undefined) throw new Error(`${name}: ${unsafe}`);
    out[name] = text;
  }
  for (const name in content.lists) {
    out[name] = (content.lists[name] as readonly CompiledTemplate[]).map((t) => counted(renderTemplate(t, filled)));
  }
  return out;
}

/**
 * The plain form of a `text` template: literal text and outputs of a
 * variable (`{{ firstName }}`, `{{ traits.city | default: "tu ciudad" }}`),
 * nothing else — no tag, no other filter, no whitespace control. Each
 * output writes the variable's value (or a declared fallback, or the
 * default) as text, so its length bounds the render. Null: another form.
 */
interface PlainTemplate {
  /** Characters of literal text. */
  readonly text: number;
  /** Each output: the variable's path and the default's length (0: none). */
  readonly outputs: readonly { readonly path: readonly string[]; readonly fallback: number }[];
}

const PLAIN_OUTPUT = /^\s*([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*(?:\|\s*default\s*:\s*(?:"([^"\\{}]*)"|'([^'\\{}]*)')\s*)?$/;
/** Names liquidjs reads otherwise than as a plain property (literals, and the size, first and last of strings and lists). */
const NOT_PLAIN = new Set(['empty', 'blank', 'nil', 'null', 'true', 'false', 'size', 'first', 'last']);
const plainForms = new WeakMap<CompiledTemplate, PlainTemplate | null>();
/** The least an output of the plain form is counted for, characters. */
const OUTPUT_SLACK = 32;

function plainFormOf(template: CompiledTemplate): PlainTemplate | null {
  let form = plainForms.get(template);
  if (form !== undefined) return form;
  form = null;
  if (template.kind === 'text') {
    const parts = template.source.split(/\{\{(.*?)\}\}/s);
    let text = 0;
    const outputs: { path: readonly string[]; fallback: number }[] = [];
    let plain = true;
    for (let i = 0; i < parts.length && plain; i++) {
      const part = parts[i] as string;
      if (i % 2 === 0) {
        if (part.includes('{{') || part.includes('{%') || part.includes('}}') || part.includes('%}')) plain = false;
        text += part.length;
        continue;
      }
      const match = PLAIN_OUTPUT.exec(part);
      const path = match?.[1]?.split('.');
      if (!match || !path || path.some((p) => NOT_PLAIN.has(p) || UNSAFE_KEYS.has(p))) plain = false;
      else outputs.push({ path, fallback: (match[2] ?? match[3] ?? '').length });
    }
    if (plain) form = { text, outputs };
  }
  plainForms.set(template, form);
  return form;
}

/** Characters a value writes as an output's text; undefined for a list or an object (not bounded here). */
function plainLength(value: unknown): number | undefined {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'string') return value.length;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value).length;
  return undefined;
}

/**
 * Whether `renderContent(content, scope, fallbacks)` surely renders, known
 * without rendering: every field and list item is literal text (its link
 * fields safe) or of the plain form of `text` templates (not in a link
 * field), and the longest text its values, fallbacks and defaults could
 * write stays within TEMPLATE_LIMITS (output characters per template,
 * content bytes in all, 3 UTF-8 bytes per UTF-16 unit at most). False:
 * not known (render it to know). Decide asks it of every arm the bandit
 * may draw, so that only content it cannot settle is rendered for that
 * (test/unit/catalog-templates.test.ts holds it to renderContent).
 */
export function rendersSurely(content: CompiledContent, scope: TemplateScope, fallbacks: Readonly<Record<string, string>> = {}): boolean {
  const form = plainContentOf(content);
  if (!form) return false;
  let longestFallback = longestFallbacks.get(fallbacks);
  if (longestFallback === undefined) {
    longestFallback = 0;
    for (const key in fallbacks) longestFallback = Math.max(longestFallback, (fallbacks[key] as string).length);
    longestFallbacks.set(fallbacks, longestFallback);
  }
  let bytes = form.bytes;
  for (const template of form.templates) {
    let chars = template.text;
    for (const output of template.outputs) {
      const length = plainLength(getPath(scope, output.path));
      if (length === undefined) return false;
      // At least OUTPUT_SLACK: a property liquidjs reads of a string or a number (its `length`) that getPath does not.
      chars += Math.max(length, longestFallback, output.fallback, OUTPUT_SLACK);
    }
    if (chars > TEMPLATE_LIMITS.outputChars) return false;
    bytes += 3 * chars;
  }
  return bytes <= TEMPLATE_LIMITS.contentBytes;
}

const longestFallbacks = new WeakMap<object, number>();

/** What of a content `rendersSurely` knows once: its literal bytes and its plain templates; null when some field is of neither kind (or a literal link is unsafe). */
interface PlainContent {
  readonly bytes: number;
  readonly templates: readonly PlainTemplate[];
}

const plainContents = new WeakMap<CompiledContent, PlainContent | null>();

function plainContentOf(content: CompiledContent): PlainContent | null {
  let known = plainContents.get(content);
  if (known !== undefined) return known;
  let bytes = 0;
  const templates: PlainTemplate[] = [];
  let plain = true;
  for (const name in content.literals) bytes += utf8Length(content.literals[name] as string);
  const specs: Readonly<Record<string, ContentFieldSpec>> = CONTENT_FIELDS[content.channel];
  const add = (template: CompiledTemplate, link: boolean): void => {
    if (template.literal !== undefined) {
      if (link && unsafeLinkProblem(template.literal) !== undefined) plain = false;
      bytes += utf8Length(template.literal);
      return;
    }
    const form = link ? null : plainFormOf(template);
    if (form) templates.push(form);
    else plain = false;
  };
  for (const name in content.fields) add(content.fields[name] as CompiledTemplate, specs[name]?.link === true);
  for (const name in content.lists) for (const item of content.lists[name] as readonly CompiledTemplate[]) add(item, false);
  known = plain ? { bytes, templates } : null;
  plainContents.set(content, known);
  return known;
}
