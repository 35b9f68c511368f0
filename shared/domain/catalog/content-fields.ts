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
 */
import type { Channel } from '../channels.ts';

/** How a rendered content field is shown. */
export type ContentKind = 'html' | 'text' | 'literal';

export interface ContentFieldSpec {
  readonly kind: ContentKind;
  readonly required: boolean;
  readonly list?: true;
  /** What the field is, for authors (docs/catalog.md). */
  readonly description: string;
}

const field = <K extends ContentKind, R extends boolean>(kind: K, required: R, description: string) => ({ kind, required, description });
const banner = {
  title: field('text', true, 'headline'),
  body: field('text', false, 'short text under the headline'),
  imageUrl: field('text', false, 'image URL'),
  url: field('text', false, 'link URL'),
} as const;

/** Content fields per channel (web/app also take `placements`, see schema.ts). */
export const CONTENT_FIELDS = {
  web: banner,
  app: banner,
  push: {
    title: field('text', true, 'notification title'),
    body: field('text', true, 'notification text'),
    deepLink: field('text', true, 'link opened on tap'),
    imageUrl: field('text', false, 'image URL'),
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
