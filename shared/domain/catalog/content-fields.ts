/**
 * The content fields of each channel and how each is shown: the one
 * declaration that the catalog schema (schema.ts) builds its content shapes
 * from and that the compiler (compile.ts) and the renderer (template.ts)
 * read. A module with no dependency, so the decide bundle carries it
 * without the validator.
 *
 * - `html`: a Liquid template whose output is HTML; every `{{ … }}` output is
 *   HTML-escaped (Liquid's output escaping, liquidjs `outputEscape:
 *   "escape"`) unless the author writes `| raw`. The author's own markup is
 *   kept; a value from the profile or the request can add text, never markup.
 * - `text`: a Liquid template whose output is plain text, not escaped; the
 *   client shows it as text (a DOM `textContent`, an SMS, a push title).
 * - `literal`: not a template, copied as written (email `templateId`).
 *
 * `required` fields must be present; `list` fields are arrays of templates.
 * `link` fields (`url`, `imageUrl`, `deepLink`) are URLs a client puts in an
 * `href` or a `src`, or opens: what they render to must not be a URL a
 * browser or a web view runs or reads local data with (`unsafeLinkScheme`).
 */
import type { Channel } from '../channels.ts';

/** How a rendered content field is shown. */
export type ContentKind = 'html' | 'text' | 'literal';

export interface ContentFieldSpec {
  readonly kind: ContentKind;
  readonly required: boolean;
  readonly list?: true;
  /** A URL (a link, an image, a deep link): rendered to one with `unsafeLinkScheme`, the content is not served. */
  readonly link?: true;
  /** What the field is, for authors (docs/catalog.md). */
  readonly description: string;
}

const field = <K extends ContentKind, R extends boolean>(kind: K, required: R, description: string) => ({ kind, required, description });
const link = <R extends boolean>(required: R, description: string) => ({ ...field('text', required, description), link: true as const });
const banner = {
  title: field('text', true, 'headline'),
  body: field('text', false, 'short text under the headline'),
  imageUrl: link(false, 'image URL'),
  url: link(false, 'link URL'),
} as const;

/** Content fields per channel (web/app also take `placements`, see schema.ts). */
export const CONTENT_FIELDS = {
  web: banner,
  app: banner,
  push: {
    title: field('text', true, 'notification title'),
    body: field('text', true, 'notification text'),
    deepLink: link(true, 'link opened on tap'),
    imageUrl: link(false, 'image URL'),
  },
  email: {
    templateId: field('literal', true, 'the template id in the email service provider (e.g. `123`)'),
    subject: field('text', true, 'subject line'),
    greeting: field('html', false, 'salutation line of the body, e.g. `Estimado {{ firstName | default: "cliente" }}`'),
    body: field('html', false, 'body of the email'),
  },
  sms: {
    text: field('text', true, 'message text'),
  },
  call_center: {
    script: field('html', true, "the agent's script"),
    talkingPoints: { ...field('html', false, 'talking points, each a template'), list: true },
  },
} as const satisfies Record<Channel, Readonly<Record<string, ContentFieldSpec>>>;

/**
 * Schemes a link field must not render to: a browser or a web view runs
 * them (`javascript:`, `vbscript:`), shows whatever they hold as a page of
 * their own (`data:`), or reads local or in-memory data with them (`file:`,
 * `blob:`, `filesystem:`). Anything else is served: `https:` and `http:`,
 * a relative reference (`/vip`), `mailto:` or `tel:`, an app's own scheme
 * (`myapp://product/1`).
 */
export const UNSAFE_LINK_SCHEMES: ReadonlySet<string> = new Set(['javascript', 'vbscript', 'data', 'file', 'blob', 'filesystem']);

/**
 * The scheme of `url` (lower case) when it is one of UNSAFE_LINK_SCHEMES,
 * read as a browser parses a URL (WHATWG URL): leading and trailing C0
 * controls and spaces dropped, tabs and line breaks anywhere removed, the
 * scheme in any case (`  JaVa\tScript:` is `javascript`). Undefined for a
 * URL that may be served.
 */
export function unsafeLinkScheme(url: string): string | undefined {
  // eslint-disable-next-line no-control-regex
  const cleaned = url.replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '').replace(/[\t\n\r]/g, '');
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(cleaned)?.[1]?.toLowerCase();
  return scheme !== undefined && UNSAFE_LINK_SCHEMES.has(scheme) ? scheme : undefined;
}

/** Why a link field's value is not served, or undefined when it may be. */
export function unsafeLinkProblem(url: string): string | undefined {
  const scheme = unsafeLinkScheme(url);
  return scheme === undefined
    ? undefined
    : `a link must not be a ${scheme}: URL (a browser would run it or read local data with it): use https, http, a relative link or an app's own scheme`;
}
