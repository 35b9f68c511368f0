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
 * Rendering is bounded (time and memory limits): a hostile template fails
 * its render, which decide treats as "this content cannot be served".
 */
import { Liquid, type Template } from 'liquidjs';
import type { CompiledContent, CompiledTemplate, RenderedContent, RuleVariables } from './compiled.ts';
import { TEMPLATE_MARKUP as MARKUP } from './patterns.ts';

const liquid = new Liquid({
  strictFilters: true,
  strictVariables: false,
  ownPropertyOnly: true,
  // Bounds against hostile templates (characters parsed, ms rendering, allocation).
  parseLimit: 100_000,
  renderLimit: 50,
  memoryLimit: 10_000_000,
  cache: false,
});


export interface TemplateCompileError {
  readonly message: string;
  readonly position?: number;
}

export function compileTemplate(
  source: string,
  path: string,
): { ok: true; template: CompiledTemplate } | { ok: false; error: TemplateCompileError } {
  if (!MARKUP.test(source)) return { ok: true, template: { source, path, literal: source } };
  try {
    const parsed = liquid.parse(source);
    return { ok: true, template: { source, path, parsed } };
  } catch (error) {
    const e = error as { message?: string; token?: { begin?: number } };
    const message = (e.message ?? 'invalid template').replace(/, line:\d+, col:\d+$/, '');
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

const isBlank = (v: unknown) => v === undefined || v === null || v === '';
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
export function applyFallbacks(scope: TemplateScope, fallbacks: Readonly<Record<string, string>>): TemplateScope {
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

/** Templates compiled without parsing (compile.ts, the stored document), parsed on first render. */
const deferred = new WeakMap<CompiledTemplate, Template[]>();

function parsedOf(template: CompiledTemplate): Template[] {
  if (template.parsed !== undefined) return template.parsed as Template[];
  let parsed = deferred.get(template);
  if (!parsed) {
    parsed = liquid.parse(template.source);
    deferred.set(template, parsed);
  }
  return parsed;
}

/** Render one template; throws on a render failure (limits, filter errors, a template that does not parse). */
export function renderTemplate(template: CompiledTemplate, scope: TemplateScope): string {
  if (template.literal !== undefined) return template.literal;
  return String(liquid.renderSync(parsedOf(template), scope));
}

/**
 * Render a channel's content with the declared fallbacks. Throws when a
 * template fails to render (the caller drops that action and explains why).
 */
export function renderContent(
  content: CompiledContent,
  scope: TemplateScope,
  fallbacks: Readonly<Record<string, string>> = {},
): RenderedContent {
  const filled = Object.keys(fallbacks).length > 0 ? applyFallbacks(scope, fallbacks) : scope;
  const out: RenderedContent = {};
  for (const name in content.literals) out[name] = content.literals[name] as string;
  for (const name in content.fields) out[name] = renderTemplate(content.fields[name] as CompiledTemplate, filled);
  for (const name in content.lists) {
    out[name] = (content.lists[name] as readonly CompiledTemplate[]).map((t) => renderTemplate(t, filled));
  }
  return out;
}
