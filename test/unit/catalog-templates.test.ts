/**
 * Content templates are sandboxed and safe for where they are shown:
 * no file system (include, render, layout refused with their path), loops
 * and output bounded at validation and at render, HTML fields escaped and
 * text fields plain — through the loader and through decide.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Drop } from 'liquidjs';
import type { CatalogProblem, CompiledCatalog, CompiledTemplate } from '#domain/catalog/compiled.ts';
import { compileDocument, loadCatalog } from '#domain/catalog/load.ts';
import { createFailureTally, createRuleVariables } from '#domain/catalog/rules.ts';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import { TEMPLATE_LIMITS, renderContent, renderTemplate, rendersSurely, templateScope } from '#domain/catalog/template.ts';
import { contentFor } from '#domain/decide/policies.ts';
import { CONTENT_FIELDS, type ContentFieldSpec, unsafeLinkScheme } from '#domain/catalog/content-fields.ts';
import { decide, emptyProfile } from '#domain/decide/decide.ts';
import type { DecideRequest, Decision } from '#domain/decide/types.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import { CHANNELS, type Channel } from '#domain/channels.ts';

const NOW = new Date('2026-01-15T12:00:00Z');
const granted = { granted: true, updatedAt: '2026-01-01T00:00:00Z' };

const action = (id: string, content: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ id, name: id, content, ...extra });

function refused(input: CatalogInput): readonly CatalogProblem[] {
  const result = loadCatalog(input, 'object');
  if (result.ok) throw new Error('the catalog was accepted');
  return result.problems;
}

function loaded(input: CatalogInput): CompiledCatalog {
  const result = loadCatalog(input, 'object', { version: 1 });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
}

function profile(overrides: Partial<ProfileView> = {}, stats: Partial<ProfileView['stats']> = {}): ProfileView {
  const base = emptyProfile({ userId: 'u-1' });
  return { ...base, consent: { email: granted, sms: granted, push: granted }, ...overrides, stats: { ...base.stats, ...stats } };
}

const request = (channel: Channel, extra: Partial<DecideRequest> = {}): DecideRequest => ({
  userId: 'u-1',
  channel,
  limit: 10,
  context: {},
  explain: true,
  ...extra,
});

const run = (c: CompiledCatalog, p: ProfileView, r: DecideRequest): Decision => decide(c, p, r, NOW, { nonce: 'n1' });

const FILE_CONSTRUCTS = (file: string): string[] => {
  const fromCwd = relative(process.cwd(), file);
  const up = `${'../'.repeat(12)}${file.replace(/^\//, '')}`;
  const name = file.split(sep).pop() as string;
  return [
    `{% include '${file}' %}`,
    `{% include "${fromCwd}" %}`,
    `{% include '${up}' %}`,
    `{% include '${name}' %}`,
    `{% include file %}`,
    `{% include context.file %}`,
    `{% include {{ context.file }} %}`,
    `{% include '${file}' with context %}`,
    `{% render '${file}' %}`,
    `{% render "${up}" %}`,
    `{% render context.file %}`,
    `{% layout '${file}' %}`,
    `{% layout "${fromCwd}" %}{% block x %}{% endblock %}`,
    `{% layout context.file %}`,
    `{%- liquid\ninclude '${file}'\n-%}`,
    `{%- liquid\nrender context.file\n-%}`,
    `{% capture c %}{% include '${file}' %}{% endcapture %}{{ c }}`,
    `{% if true %}{% include '${up}' %}{% endif %}`,
    `{% for f in (1..2) %}{% render file %}{% endfor %}`,
    `{{ '${file}' | append: '' }}{% include '${file}' | upcase %}`,
  ];
};

describe('no file system', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-templates-'));
  const secret = `secret-${randomUUID()}`;
  const files = ['local-secrets.json', 'notes.liquid', 'partial.html'].map((name) => {
    const file = join(dir, name);
    writeFileSync(file, `{"writeKey":"${secret}-${name}"}`);
    return file;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('include, render and layout are refused at validation with the path and position of the field', () => {
    for (const [tag, source] of [
      ['include', "Hola {% include 'header' %}"],
      ['render', 'Hola {% render "header", name: firstName %}'],
      ['layout', "Hola {% layout 'default' %}"],
      ['include', "Hola {% if firstName %}{% liquid\ninclude 'x'\n%}{% endif %}"],
    ] as const) {
      const problems = refused({
        actions: [
          action('a1', { web: { title: 'ok' } }, { variants: [{ id: 'v1', content: { web: { title: 'ok', body: source } } }] }),
          action('a2', { call_center: { script: 'ok', talkingPoints: ['ok', source] } }),
        ],
      });
      expect(problems).toEqual([
        { path: 'actions[0].variants[0].content.web.body', message: expect.stringContaining(`"${tag}" is not allowed`), position: expect.any(Number) },
        { path: 'actions[1].content.call_center.talkingPoints[1]', message: expect.stringContaining(`"${tag}" is not allowed`), position: expect.any(Number) },
      ]);
      expect(problems[0]?.position).toBeGreaterThanOrEqual(5);
    }
  });

  it('no file reaches an answer or an error, through any construct, at validation or at render', () => {
    const scope = { file: files[0], context: { file: files[0] }, traits: {}, profile: {} };
    let tried = 0;
    for (const file of files) {
      for (const source of FILE_CONSTRUCTS(file)) {
        tried++;
        // Validation (the routes' and the loader's path): refused, the message names no content.
        const problems = refused({ actions: [action('a1', { email: { templateId: 't', subject: 's', body: source } })] });
        expect(problems.map((p) => p.path)).toEqual(['actions[0].content.email.body']);
        expect(JSON.stringify(problems)).not.toContain(secret);
        // Render of a template that skipped validation (a stored document is parsed on first render): fails, no content.
        const template: CompiledTemplate = { source, path: 'x', kind: 'text' };
        let message = '';
        try {
          message = renderTemplate(template, scope);
        } catch (error) {
          message = `${(error as Error).message}\n${(error as Error).stack ?? ''}`;
        }
        expect(message).not.toContain(secret);
      }
    }
    expect(tried).toBe(files.length * FILE_CONSTRUCTS('x').length);
  });

  it('decide over a stored document with include templates serves the fallback, and nothing of a file', () => {
    const ok = loadCatalog({ learning: { enabled: false, exploration: 0 }, actions: [action('a1', { web: { title: 't' } }), action('fb', { web: { title: 'fallback' } }, { fallback: true, eligibility: 'false' })] }, 'object');
    if (!ok.ok) throw new Error(JSON.stringify(ok.problems));
    const doc = structuredClone(ok.source);
    (doc.actions[0]!.content.web as { title: string }).title = `Hola {% include '${files[0]}' %}{% render context.file %}`;
    const compiled = compileDocument(doc, { version: 2 });
    if (!compiled.ok) throw new Error(JSON.stringify(compiled.problems));
    const failures = createFailureTally();
    const decision = decide(compiled.catalog, profile(), request('web', { context: { file: files[1] } }), NOW, { nonce: 'n1', failures });
    expect(decision.actions.map((a) => a.actionId)).toEqual(['fb']);
    expect(decision.explanation?.candidates.find((c) => c.actionId === 'a1')?.why).toBe('content:the template could not be rendered');
    expect(JSON.stringify(decision)).not.toContain(secret);
    expect(failures.templates).toBe(1);
  });
});

describe('bounded loops and output', () => {
  it('a loop over a literal range past the bound is refused at validation, with its path; nested loops multiply, literal text counts', () => {
    const over = TEMPLATE_LIMITS.loopSteps + 1;
    const problems = refused({
      actions: [
        action('a1', { sms: { text: `{% for i in (1..${over}) %}x{% endfor %}` } }),
        action('a2', { email: { templateId: 't', subject: 's', body: '{% for i in (1..50) %}{% tablerow j in (1..50) %}{{ j }}{% endtablerow %}{% endfor %}' } }),
        action('a3', { web: { title: `{% for i in (1..100000000) %}{% endfor %}` } }),
        action('a4', { web: { title: `{% for i in (1..${TEMPLATE_LIMITS.outputChars}) limit: 10 %}${'x'.repeat(TEMPLATE_LIMITS.outputChars / 5)}{% endfor %}` } }),
      ],
    });
    expect(problems).toEqual([
      { path: 'actions[0].content.sms.text', message: expect.stringContaining(`bound of ${TEMPLATE_LIMITS.loopSteps}`), position: 0 },
      { path: 'actions[1].content.email.body', message: expect.stringContaining(`bound of ${TEMPLATE_LIMITS.loopSteps}`), position: expect.any(Number) },
      { path: 'actions[2].content.web.title', message: expect.stringContaining('steps'), position: 0 },
      { path: 'actions[3].content.web.title', message: expect.stringContaining(`bound of ${TEMPLATE_LIMITS.outputChars}`), position: expect.any(Number) },
    ]);
    // At the bound, and with a literal `limit`, it is accepted.
    loaded({
      actions: [
        action('a1', { sms: { text: `{% for i in (1..${TEMPLATE_LIMITS.loopSteps}) %}x{% endfor %}` } }),
        action('a2', { sms: { text: `{% for i in (1..100000000) limit: 3 %}{{ i }}{% endfor %}` } }),
      ],
    });
  });

  /** A collection whose items count how many loop bodies read them. */
  class Probe extends Drop {
    static reads = 0;
    override liquidMethodMissing(): string {
      Probe.reads++;
      return '';
    }
  }
  const compiledText = (source: string): CompiledTemplate => {
    const c = loaded({ actions: [action('a1', { sms: { text: source } })] });
    return c.actions[0]!.content.sms!.fields.text!;
  };
  const fails = (template: CompiledTemplate, scope: Record<string, unknown>): string => {
    try {
      return `rendered ${renderTemplate(template, scope).length} characters`;
    } catch (error) {
      return (error as Error).message;
    }
  };

  it('a loop over a long list stops at the bound: no body runs past it, nothing is returned, it throws (the caller counts it)', () => {
    const list = Array.from({ length: 100_000 }, () => new Probe());
    for (const source of [
      '{% for item in items %}{{ item.touch }}{% endfor %}',
      '{% for a in items %}{% for item in items %}{{ item.touch }}{% endfor %}{% endfor %}',
      '{% capture c %}{% for item in items %}{{ item.touch }}{% endfor %}{% endcapture %}{{ c }}',
      '{% for x in (1..10) %}{% capture c %}{% for item in items limit: n %}{{ item.touch }}{% endfor %}{% endcapture %}{% endfor %}',
      '{% tablerow item in items %}{{ item.touch }}{% endtablerow %}',
    ]) {
      Probe.reads = 0;
      // The step bound stops it (on a starved machine the time backstop may stop it first): never past the bound.
      expect(fails(compiledText(source), { items: list, n: 500 })).toMatch(new RegExp(`more than ${TEMPLATE_LIMITS.loopSteps} loop steps|template render limit`));
      expect(Probe.reads).toBeLessThanOrEqual(TEMPLATE_LIMITS.loopSteps);
      expect(Probe.reads).toBeGreaterThan(0);
    }
  });

  it('an empty loop body and a range from the request are bounded too', () => {
    const template = compiledText('{% for i in (1..n) %}{% endfor %}{% for i in (1..n) %}{% for j in (1..n) %}{% endfor %}{% endfor %}done');
    expect(fails(template, { n: 1_000_000_000 })).toContain('limit exceeded');
    expect(fails(template, { n: TEMPLATE_LIMITS.loopSteps * 10 })).toContain('loop steps');
    expect(fails(template, { n: 50 })).toContain('loop steps');
    expect(fails(template, { n: 10 })).toBe('rendered 4 characters');
  });

  it('output past its bound, direct or through captures that double, renders nothing', () => {
    const big = 'y'.repeat(1_000);
    expect(fails(compiledText('{% for i in (1..n) %}{{ big }}{% endfor %}'), { n: 40, big })).toBe('rendered 40000 characters');
    expect(fails(compiledText('{% for i in (1..n) %}{{ big }}{% endfor %}'), { n: 900, big })).toContain(`more than ${TEMPLATE_LIMITS.outputChars} characters`);
    const doubling = compiledText('{% assign a = big %}{% for i in (1..40) %}{% capture a %}{{ a }}{{ a }}{% endcapture %}{% endfor %}{{ a | size }}');
    expect(fails(doubling, { big })).toContain(`more than ${TEMPLATE_LIMITS.outputChars} characters`);
  });

  it('a channel\'s content is bounded in all: talking points each within their bound but together past it render nothing (counted), and the next action is served', () => {
    const c = loaded({
      learning: { enabled: false, exploration: 0 },
      actions: [
        action('long-call', { call_center: { script: 'Nota', talkingPoints: Array.from({ length: 9 }, () => '{{ traits.note }}') } }, { value: 10 }),
        action('short-call', { call_center: { script: 'plain' } }),
      ],
    });
    const withNote = (length: number) => profile({ traits: { note: 'n'.repeat(length) } });
    const failures = createFailureTally();
    // 9 × 45,000 bytes: each point within its own 50,000 characters, the content 405,000 bytes (a DynamoDB item holds 400 KB).
    const decision = decide(c, withNote(45_000), request('call_center', { limit: 1 }), NOW, { nonce: 'n1', failures });
    expect(decision.actions.map((a) => a.actionId)).toEqual(['short-call']);
    expect(decision.explanation?.candidates.find((x) => x.actionId === 'long-call')?.why).toBe('content:the template could not be rendered');
    expect(failures.templates).toBe(1);
    const fits = run(c, withNote(TEMPLATE_LIMITS.contentBytes / 10), request('call_center', { limit: 1 }));
    expect(fits.actions.map((a) => a.actionId)).toEqual(['long-call']);
    // Bytes, not characters: four-byte characters (two UTF-16 units each) reach the bound sooner.
    const render = (note: string) => () =>
      renderContent(c.actions[0]!.content.call_center!, templateScope(createRuleVariables({ catalog: c, profile: profile({ traits: { note } }), channel: 'call_center', now: NOW })));
    expect(render('n'.repeat(6_000))).not.toThrow();
    expect(render('😀'.repeat(3_000))).toThrow(`more than ${TEMPLATE_LIMITS.contentBytes} bytes`);
  });

  it('decide drops the content that reaches a bound (counted) and serves the next action', () => {
    const c = loaded({
      learning: { enabled: false, exploration: 0 },
      actions: [
        action('loop', { web: { title: '{% for i in context.items %}{{ i }}{% endfor %}' } }, { value: 10 }),
        action('plain', { web: { title: 'plain' } }),
      ],
    });
    const failures = createFailureTally();
    const decision = decide(c, profile(), request('web', { limit: 1, context: { items: Array.from({ length: 5_000 }, (_, i) => i) } }), NOW, { nonce: 'n1', failures });
    expect(decision.actions.map((a) => a.actionId)).toEqual(['plain']);
    expect(decision.explanation?.candidates.find((x) => x.actionId === 'loop')?.why).toBe('content:the template could not be rendered');
    expect(failures.templates).toBe(1);
    const small = run(c, profile(), request('web', { limit: 1, context: { items: [1, 2, 3] } }));
    expect(small.actions[0]?.content).toEqual({ title: '123' });
  });
});

const PAYLOAD = `<script>alert(1)</script>"><img src=x onerror=alert(2)>'&{{ 6 | times: 7 }}{% include '/etc/passwd' %}`;
const ESCAPED = PAYLOAD.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&#34;').replaceAll("'", '&#39;');

/** Every content field of a rendered action checked for its declared kind; returns the kinds met with the payload. */
function checkContent(channel: Channel, content: Readonly<Record<string, string | string[]>>, met: Set<string>): void {
  const specs: Readonly<Record<string, ContentFieldSpec>> = CONTENT_FIELDS[channel];
  for (const [name, value] of Object.entries(content)) {
    const spec = specs[name];
    expect(spec, `${channel}.${name} is declared`).toBeDefined();
    for (const text of Array.isArray(value) ? value : [value]) {
      if (spec?.kind === 'html') {
        expect(text, `${channel}.${name}`).not.toMatch(/<script|<img|onerror=alert\(2\)>/);
        if (text.includes(ESCAPED)) met.add(`html:${channel}.${name}`);
      } else if (text.includes('alert')) {
        // Plain text: the value as it was, inert (not parsed as a template, not escaped).
        expect(text, `${channel}.${name}`).toContain(PAYLOAD);
        met.add(`text:${channel}.${name}`);
      }
      expect(text).not.toContain('42');
    }
  }
}

describe('rendered content is safe for where it is shown', () => {
  it('every channel field is declared html or text (or literal) in one place, the schema built from it', () => {
    const kinds = Object.fromEntries(
      CHANNELS.map((c) => [c, Object.fromEntries(Object.entries(CONTENT_FIELDS[c] as Record<string, ContentFieldSpec>).map(([n, s]) => [n, s.kind]))]),
    );
    expect(kinds.email).toEqual({ templateId: 'literal', subject: 'text', greeting: 'html', body: 'html' });
    expect(kinds.call_center).toEqual({ script: 'html', talkingPoints: 'html' });
    expect(kinds.sms).toEqual({ text: 'text' });
    // A field the declaration does not have is refused by the schema.
    expect(refused({ actions: [action('a1', { sms: { text: 'x', html: 'y' } })] })[0]?.message).toContain('html');
  });

  it('a trait or context value with markup comes out escaped in html fields and verbatim, inert, in text fields — every field of every channel', () => {
    const fields = (channel: Channel) =>
      Object.fromEntries(
        Object.entries(CONTENT_FIELDS[channel] as Record<string, ContentFieldSpec>).map(([name, spec]) => {
          const template = `<b>{{ firstName }}</b> {{ traits.firstName }} {{ context.city }}`;
          return [name, spec.kind === 'literal' ? 't-1' : spec.list ? [template, 'Hi {{ profile.traits.firstName }}'] : template];
        }),
      );
    const c = loaded({
      learning: { enabled: false, exploration: 0 },
      policies: { consentRequired: [] },
      actions: CHANNELS.map((channel) => action(`a-${channel}`, { [channel]: fields(channel) })),
    });
    const met = new Set<string>();
    for (const channel of CHANNELS) {
      const decision = run(c, profile({ traits: { firstName: PAYLOAD } }), request(channel, { context: { city: PAYLOAD } }));
      expect(decision.actions.map((a) => a.actionId)).toEqual([`a-${channel}`]);
      checkContent(channel, decision.actions[0]!.content, met);
      // The author's own markup is kept in html fields.
      const html = Object.entries(decision.actions[0]!.content).filter(
        ([name]) => (CONTENT_FIELDS[channel] as Record<string, ContentFieldSpec>)[name]?.kind === 'html',
      );
      expect(html.filter(([, value]) => !String(value).includes('<b>'))).toEqual([]);
    }
    const declared = CHANNELS.flatMap((channel) =>
      Object.entries(CONTENT_FIELDS[channel] as Record<string, ContentFieldSpec>)
        .filter(([, s]) => s.kind !== 'literal')
        .map(([n, s]) => `${s.kind}:${channel}.${n}`),
    );
    expect([...met].sort()).toEqual(declared.sort());
  });

  it('a link field (url, imageUrl, deepLink) that renders to a javascript:, vbscript:, data:, file: or blob: URL is not served (counted), in any case and with what browsers strip; any other link is', () => {
    const c = loaded({
      learning: { enabled: false, exploration: 0 },
      policies: { consentRequired: [] },
      actions: [
        action(
          'linked',
          {
            web: { title: 'Continue', url: '{{ context.next }}', imageUrl: '{{ traits.avatar | default: "https://cdn.example.com/a.png" }}' },
            push: { title: 'Hola', body: 'b', deepLink: '{{ traits.link | default: "shop://home" }}' },
          },
          { value: 10 },
        ),
        action('plain', { web: { title: 'plain' }, push: { title: 'plain', body: 'b', deepLink: 'shop://home' } }),
      ],
    });
    const decideFor = (channel: Channel, context: Record<string, unknown>, traits: Record<string, unknown> = {}) => {
      const failures = createFailureTally();
      const decision = decide(c, profile({ traits }), request(channel, { limit: 1, context }), NOW, { nonce: 'n1', failures });
      return { served: decision.actions.map((a) => a.actionId), templates: failures.templates, why: decision.explanation?.candidates.find((x) => x.actionId === 'linked')?.why };
    };
    const dropped = { served: ['plain'], templates: 1, why: 'content:the template could not be rendered' };
    const unsafe = [
      'javascript:alert(document.cookie)',
      '  JaVaScRiPt:alert(1)',
      'java\tscript:alert(1)',
      'java\nscript:alert(1)',
      '\u0000javascript:alert(1)',
      'vbscript:msgbox(1)',
      'data:text/html,<script>alert(1)</script>',
      'file:///etc/passwd',
      'blob:https://shop.example.com/4f1c',
    ];
    for (const link of unsafe) {
      expect({ link, ...decideFor('web', { next: link }) }).toEqual({ link, ...dropped });
      expect({ link, ...decideFor('web', { next: '/vip' }, { avatar: link }) }).toEqual({ link, ...dropped });
      expect({ link, ...decideFor('push', {}, { link }) }).toEqual({ link, ...dropped });
    }
    const safe = ['https://shop.example.com/vip', 'http://shop.example.com/', '/vip?from=banner', 'vip', '', 'mailto:club@shop.example.com', 'tel:+34900000000', 'https://shop.example.com/javascript:x'];
    for (const link of safe) {
      expect({ link, ...decideFor('web', { next: link }) }).toEqual({ link, served: ['linked'], templates: 0, why: expect.any(String) });
    }
    expect(decideFor('push', {}, { link: 'shop://product/42' })).toMatchObject({ served: ['linked'], templates: 0 });
    // A link written as such (no template) is known at validation: refused there, with its path.
    for (const content of [{ web: { title: 't', url: ' javascript:alert(1)' } }, { web: { title: 't', imageUrl: 'data:image/svg+xml,<svg onload=alert(1)>' } }, { push: { title: 't', body: 'b', deepLink: 'JAVASCRIPT:x' } }]) {
      expect(refused({ actions: [action('a1', content)] })).toEqual([expect.objectContaining({ path: expect.stringMatching(/^actions\[0\]\.content\.(web|push)\.(url|imageUrl|deepLink)$/), message: expect.stringContaining('a link must not be a') })]);
    }
  });

  it('in an html field, a value that starts a URL attribute (href, src …) and renders to a javascript: … URL is not served (counted); the author\'s own links and any other value are', () => {
    const c = loaded({
      learning: { enabled: false, exploration: 0 },
      policies: { consentRequired: [] },
      actions: [
        action(
          'agent-script',
          {
            call_center: {
              script: '<p>Cliente {{ firstName }}</p><a href="javascript:void(0)" class="x">notas</a> <a class="crm" href = "{% if traits.crm %}{{ traits.crm }}{% endif %}">ficha</a>',
              talkingPoints: ['<img src={{ context.photo | default: "/p.png" }} alt="">'],
            },
            email: { templateId: 't-1', subject: 'Hola', body: '<a href=\'{% echo traits.crm %}\'>ver</a>' },
          },
          { value: 10 },
        ),
        action('plain', { call_center: { script: '<p>plain</p>' }, email: { templateId: 't-2', subject: 'plain' } }),
      ],
    });
    const decideFor = (channel: Channel, traits: Record<string, unknown>, context: Record<string, unknown> = {}) => {
      const failures = createFailureTally();
      const decision = decide(c, profile({ traits }), request(channel, { limit: 1, context }), NOW, { nonce: 'n1', failures });
      return { served: decision.actions.map((a) => a.actionId), templates: failures.templates, content: decision.actions[0]?.content };
    };
    for (const crm of ['javascript:alert(document.cookie)', ' \tJaVaScRiPt:alert(1)', 'vbscript:msgbox(1)', 'data:text/html,<script>alert(1)</script>']) {
      expect({ crm, ...decideFor('call_center', { crm }) }).toMatchObject({ crm, served: ['plain'], templates: 1 });
      expect({ crm, ...decideFor('email', { crm }) }).toMatchObject({ crm, served: ['plain'], templates: 1 });
    }
    expect(decideFor('call_center', {}, { photo: 'javascript:alert(1)' })).toMatchObject({ served: ['plain'], templates: 1 });
    // Escaped, an entity a value holds is text: the browser reads "javascript&colon;…", no scheme.
    expect(decideFor('call_center', { crm: 'javascript&colon;alert(1)' })).toMatchObject({ served: ['agent-script'], templates: 0 });
    const served = decideFor('call_center', { crm: 'https://crm.example.com/c/42', firstName: 'javascript:alert(1)' });
    expect(served).toMatchObject({ served: ['agent-script'], templates: 0 });
    // The author's own javascript:void(0) is kept; a value outside an attribute is text.
    expect(served.content?.script).toBe('<p>Cliente javascript:alert(1)</p><a href="javascript:void(0)" class="x">notas</a> <a class="crm" href = "https://crm.example.com/c/42">ficha</a>');
    expect(decideFor('email', { crm: '/c/42' })).toMatchObject({ served: ['agent-script'], content: { body: "<a href='/c/42'>ver</a>" } });
  });

  it('in an html field, a tag that begins a URL attribute\'s value is checked on what it renders as a whole: a value after a script scheme the tag writes is not served', () => {
    // The per-output check sees only "alert(document.cookie)"; the link the browser follows is javascript:alert(document.cookie).
    const template = loaded({ actions: [action('a', { call_center: { script: '<a href="{% if vip %}javascript:{% endif %}{{ x }}">ver</a>' } })] }).actions[0]?.content.call_center?.fields
      .script as CompiledTemplate;
    expect(() => renderTemplate(template, { vip: true, x: 'alert(document.cookie)' })).toThrow(/an HTML attribute's URL: a link must not be a javascript: URL/);
    expect(renderTemplate(template, { vip: false, x: '/p/42' })).toBe('<a href="/p/42">ver</a>');
  });

  it('property: in an html field, a value that may begin a URL attribute\'s value on some path (after an empty value, after a branch not taken) is checked as a link; a served render never begins the URL with a script scheme', () => {
    type Piece = string | { if: string; body: Piece[] };
    const piece: fc.Arbitrary<Piece> = fc.letrec<{ piece: Piece }>((tie) => ({
      piece: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        fc.constantFrom('/x', ' ', '?q=', '{{ link }}', '{{ empty }}', '{{ link | raw }}', '{% echo empty %}'),
        fc.record({ if: fc.constantFrom('a', 'b'), body: fc.array(tie('piece'), { maxLength: 3 }) }),
      ),
    })).piece;
    const source = (pieces: Piece[]): string => pieces.map((p) => (typeof p === 'string' ? p : `{% if ${p.if} %}${source(p.body)}{% endif %}`)).join('');
    const unescape = (html: string) => html.replace(/&#(\d+);|&(amp|lt|gt|quot|apos);/g, (_, n: string, e: string) => (n ? String.fromCodePoint(Number(n)) : ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e] ?? _));
    fc.assert(
      fc.property(
        fc.array(piece, { maxLength: 5 }),
        fc.constantFrom('javascript:alert(1)', ' \tJaVaScRiPt:alert(1)', 'data:text/html,x', 'vbscript:x'),
        fc.boolean(),
        fc.boolean(),
        (pieces, link, a, b) => {
          const script = `<a href="${source(pieces)}">ver</a>`;
          const template = loaded({ actions: [action('a', { call_center: { script } })] }).actions[0]?.content.call_center?.fields.script as CompiledTemplate;
          let rendered: string | undefined;
          try {
            rendered = renderTemplate(template, { link, empty: '', a, b });
          } catch {
            rendered = undefined;
          }
          const href = rendered === undefined ? undefined : unescape(rendered.slice('<a href="'.length, -'">ver</a>'.length));
          expect({ script, a, b, scheme: href === undefined ? undefined : unsafeLinkScheme(href) }).toEqual({ script, a, b, scheme: undefined });
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('in an html field, a value written into a srcset, CSS, a refresh, script, an unquoted attribute, a tag or through | raw that would load or run something is not served (counted); a harmless value is', () => {
    // [template, a value anyone with the public key can set that would become a script or a navigation, a harmless value, what the harmless one renders]
    const cases: [string, string, string, string][] = [
      ['<img srcset="{{ x }} 2x">', 'javascript:alert(1)', '/b.png', '<img srcset="/b.png 2x">'],
      ['<img srcset="/a.png 1x, {{ x }} 2x">', ' JaVaScRiPt:alert(1)', '/b.png', '<img srcset="/a.png 1x, /b.png 2x">'],
      ['<img srcset="/img/{{ x }} 2x">', 'a.png 1x, data:image/svg+xml,x', 'a.png', '<img srcset="/img/a.png 2x">'],
      ['<source imagesrcset={{ x }}>', 'vbscript:x', '/c.webp', '<source imagesrcset=/c.webp>'],
      ['<div style="background:url({{ x }})">', 'javascript:alert(1)', '/bg.png', '<div style="background:url(/bg.png)">'],
      ["<div style=\"background:url('{{ x }}')\">", 'data:text/html,x', 'https://cdn.example.com/bg.png', "<div style=\"background:url('https://cdn.example.com/bg.png')\">"],
      ['<div style="color:{{ x }}">', 'red;background:URL(javascript:alert(1))', 'red', '<div style="color:red">'],
      ['<div style="color:{{ x }}">', 'red;background:u\\72l(x)', '#336699', '<div style="color:#336699">'],
      ['<style>.tier{color:{{ x }}}</style>', 'red}@import "https://evil.example.com/x.css";', 'green', '<style>.tier{color:green}</style>'],
      ['<style>.hero{background:url({{ x }})}</style>', 'javascript:alert(1)', '/hero.png', '<style>.hero{background:url(/hero.png)}</style>'],
      ['<meta http-equiv="refresh" content="0;url={{ x }}">', 'javascript:alert(1)', '/next', '<meta http-equiv="refresh" content="0;url=/next">'],
      ['<meta http-equiv="refresh" content="{{ x }}">', '0; URL=data:text/html,x', '30', '<meta http-equiv="refresh" content="30">'],
      ['<p>{{ x | raw }}</p>', '<img src=x onerror=alert(1)>', 'Hola &amp; bienvenido', '<p>Hola &amp; bienvenido</p>'],
      ['<p>{% liquid\n  echo x | raw\n%}</p>', '<svg onload=alert(1)>', 'Hola', '<p>Hola</p>'],
      ['<a title="{{ x | raw }}">ver</a>', '" onmouseover="alert(1)', 'Ficha', '<a title="Ficha">ver</a>'],
      ['<p class={{ x }}>Hola</p>', 'vip onmouseover=alert(1)', 'vip', '<p class=vip>Hola</p>'],
      ['<p>5 <{{ x }}</p>', 'img src=x onerror=alert(1)', '10', '<p>5 <10</p>'],
      ['<iframe srcdoc="<p>{{ x }}</p>"></iframe>', '<img src=x onerror=alert(1)>', 'Hola', '<iframe srcdoc="<p>Hola</p>"></iframe>'],
      ["<button onclick=\"crm.open('{{ x }}')\">ficha</button>", "');alert(1);('", 'C-42', "<button onclick=\"crm.open('C-42')\">ficha</button>"],
      ['<script>crm.tier = {{ x }};</script>', '1;alert(1)', '3', '<script>crm.tier = 3;</script>'],
    ];
    const decideFor = (script: string, x: string) => {
      const c = loaded({
        learning: { enabled: false, exploration: 0 },
        policies: { consentRequired: [] },
        actions: [action('agent-script', { call_center: { script } }, { value: 10 }), action('plain', { call_center: { script: '<p>plain</p>' } })],
      });
      const failures = createFailureTally();
      const decision = decide(c, profile({ traits: { x } }), request('call_center', { limit: 1 }), NOW, { nonce: 'n1', failures });
      return { served: decision.actions.map((a) => a.actionId), templates: failures.templates, script: decision.actions[0]?.content.script };
    };
    for (const [template, hostile, harmless, rendered] of cases) {
      expect({ template, hostile, ...decideFor(template, hostile) }).toMatchObject({ template, hostile, served: ['plain'], templates: 1 });
      expect({ template, ...decideFor(template, harmless) }).toEqual({ template, served: ['agent-script'], templates: 0, script: rendered });
    }
    // The author's own text is left alone, a string literal through | raw too, and escaping is enough in element text and quoted values.
    const own = '<img srcset="data:image/png;base64,AAAA 1x"><div style="background:url(/bg.png)">{{ "<b>Hola</b>" | raw }}<p title="{{ x }}">{{ x }}</p></div>';
    expect(decideFor(own, '" onmouseover="alert(1) <script>')).toMatchObject({
      served: ['agent-script'],
      script: '<img srcset="data:image/png;base64,AAAA 1x"><div style="background:url(/bg.png)"><b>Hola</b><p title="&#34; onmouseover=&#34;alert(1) &lt;script&gt;">&#34; onmouseover=&#34;alert(1) &lt;script&gt;</p></div>',
    });
  });

  it('property: whatever a value holds, a served render keeps it inside its attribute (no space in an unquoted value, no markup through | raw) and no srcset candidate or CSS url( it writes is a script URL', () => {
    const template = (source: string) => {
      const c = loaded({ actions: [action('a', { call_center: { script: source } })] });
      return c.actions[0]?.content.call_center?.fields.script as CompiledTemplate;
    };
    const unquoted = template('<p class={{ x }}>');
    const raw = template('<p>{{ x | raw }}</p>');
    const srcset = template('<img srcset="/a.png 1x, {{ x }} 2x">');
    const css = template('<div style="background:url({{ x }})">');
    const rendered = (t: CompiledTemplate, x: string) => {
      try {
        return renderTemplate(t, { x });
      } catch {
        return undefined;
      }
    };
    // The browser's reading of the escaped text (the entities Liquid's escape writes, and numeric ones).
    const unescape = (html: string) =>
      html.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos);/gi, (_, e: string) =>
        e[0] === '#' ? String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1))) : ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e.toLowerCase()] ?? _,
      );
    const pieces = fc.constantFrom('javascript:', 'JaVaScRiPt:', 'data:', 'vbscript:', ' ', '\t', '\n', ',', ';', '"', "'", '<', '>', '=', '/', '(', ')', '\\', 'url(', '&#58;', '&colon;', '1x', 'alert(1)', 'a', 'https://x.example/p.png');
    const values = fc.array(fc.oneof(pieces, fc.string({ maxLength: 3 })), { maxLength: 8 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(values, (x) => {
        // Each render either fails (not served) or keeps the property.
        const u = rendered(unquoted, x);
        const r = rendered(raw, x);
        const s = rendered(srcset, x);
        const c = rendered(css, x);
        const cssValue = c === undefined ? undefined : unescape(c.slice('<div style="background:url('.length, -3));
        const served = {
          unquoted: u === undefined || /^<p class=[^\t\n\f\r >]*>$/.test(u),
          raw: r === undefined || !/[<>"'`]/.test(r.slice(3, -4)),
          srcset:
            s === undefined ||
            unescape(s.slice('<img srcset="'.length, -2))
              .split(',')
              .every((candidate) => unsafeLinkScheme(candidate.trim().split(/[\t\n\f\r ]/)[0] ?? '') === undefined),
          css: cssValue === undefined || (unsafeLinkScheme(cssValue) === undefined && !/url\(|\\/i.test(cssValue)),
        };
        expect({ x, ...served }).toEqual({ x, unquoted: true, raw: true, srcset: true, css: true });
      }),
      { numRuns: 2000 },
    );
  });

  it('in an html field, each branch of an {% if %} / {% case %} is read from where the block begins: a value is checked where it lands, on every path', () => {
    const decideFor = (script: string, traits: Record<string, unknown>) => {
      const c = loaded({
        learning: { enabled: false, exploration: 0 },
        policies: { consentRequired: [] },
        actions: [action('agent-script', { call_center: { script } }, { value: 10 }), action('plain', { call_center: { script: '<p>plain</p>' } })],
      });
      const failures = createFailureTally();
      const decision = decide(c, profile({ traits }), request('call_center', { limit: 1 }), NOW, { nonce: 'n1', failures });
      return { served: decision.actions.map((a) => a.actionId), templates: failures.templates, script: decision.actions[0]?.content.script };
    };
    const hostileCss = 'red;background:url(javascript:alert(1))';
    // Read as one text, the if-branch's `">` would put the else-branch's value in text; it lands in the style attribute.
    const inStyle = '<div style="{% if traits.vip %}color:gold">{% else %}{{ traits.x }}">{% endif %}Hola</div>';
    expect(decideFor(inStyle, { x: hostileCss })).toMatchObject({ served: ['plain'], templates: 1 });
    expect(decideFor(inStyle, { x: 'color:red' })).toEqual({ served: ['agent-script'], templates: 0, script: '<div style="color:red">Hola</div>' });
    // The same in a {% case %}: each {% when %} is read from the {% case %}.
    const inCase = '<div style="{% case traits.tier %}{% when "a" %}color:gold">{% when "b" %}color:{{ traits.x }}">{% else %}">{% endcase %}Hola</div>';
    expect(decideFor(inCase, { tier: 'b', x: hostileCss })).toMatchObject({ served: ['plain'], templates: 1 });
    // And the reverse: read as one text, the else-branch's value would be judged inside the onclick the if-branch opened; it is text.
    const inText = '{% if traits.vip %}<button onclick="{% else %}<b>{{ traits.x }}</b><button onclick="{% endif %}crm.open()">ficha</button>';
    expect(decideFor(inText, { x: "O'Brien & María" })).toEqual({
      served: ['agent-script'],
      templates: 0,
      script: '<b>O&#39;Brien &amp; María</b><button onclick="crm.open()">ficha</button>',
    });
    // Branches (or a loop's body) that leave different HTML contexts are refused at load, with the block's position and how to fix it.
    for (const [script, position, where] of [
      ['{% if a %}<a href="{% else %}<b>{{ x }}</b>{% endif %}">ver</a>', 0, /the branch at 0 ends in the href attribute's value of <a>, the branch at 19 ends in text/],
      ['<p>Hola</p>{% unless a %}<a title="{% endunless %}{{ x }}">', 11, /the path that skips it is in text, the branch at 11 ends in the title attribute's value of <a>/],
      ['<p>{% if a %}<{% endif %}{{ x }}</p>', 3, /right after a "<"/],
      ['<p>{% for i in (1..3) %}<b title="{{ i }}{% endfor %}"></p>', 3, /does not end in the HTML context it starts in/],
      ['<input {% if a %}checked{% endif %}="{{ x }}">', 7, /inside the tag <input>/],
      ['<p{% if a %} class="{% endif %}>{{ x }}', 2, /inside the tag <p>/],
    ] as const) {
      expect(refused({ actions: [action('a', { call_center: { script } })] })).toEqual([
        expect.objectContaining({ path: 'actions[0].content.call_center.script', position, message: expect.stringMatching(where) }),
      ]);
      expect(refused({ actions: [action('a', { call_center: { script } })] })[0]?.message).toMatch(/close in (each branch|its body) the tag or attribute it opens/);
    }
    // Branches that each close what they open, or open nothing, are fine (an attribute written with {% if %} too).
    expect(
      loaded({
        actions: [
          action('a', {
            call_center: {
              script:
                '{% if a %}<a href="/a">{{ x }}</a>{% elsif b %}<b title="{{ x }}">{{ x }}</b>{% else %}{{ x }}{% endif %}<input {% if vip %}checked{% endif %} class="{% if vip %}gold{% else %}{{ tier }}{% endif %}"><p{% if vip %} class="vip"{% endif %}>{{ x }}</p>{% for i in (1..3) %}<i>{{ i }}</i>{% else %}-{% endfor %}',
            },
          }),
        ],
      }).actions,
    ).toHaveLength(1);
  });

  it('in an html field, the text of a {% comment %} is not read as HTML: a quote or a ">" in it does not move where later values are checked', () => {
    const decideFor = (script: string, x: string) => {
      const c = loaded({
        learning: { enabled: false, exploration: 0 },
        policies: { consentRequired: [] },
        actions: [action('agent-script', { call_center: { script } }, { value: 10 }), action('plain', { call_center: { script: '<p>plain</p>' } })],
      });
      const failures = createFailureTally();
      const decision = decide(c, profile({ traits: { x } }), request('call_center', { limit: 1 }), NOW, { nonce: 'n1', failures });
      return { served: decision.actions.map((a) => a.actionId), templates: failures.templates, script: decision.actions[0]?.content.script };
    };
    // Read as HTML, the comment's `">` would close the tag and put the value in text; it lands in the style attribute.
    const inStyle = '<div style="color:red;{% comment %}">{% endcomment %}{{ traits.x }}">Hola</div>';
    expect(decideFor(inStyle, 'background:url(javascript:alert(1))')).toMatchObject({ served: ['plain'], templates: 1 });
    expect(decideFor(inStyle, 'margin:0')).toEqual({ served: ['agent-script'], templates: 0, script: '<div style="color:red;margin:0">Hola</div>' });
    // A "<p " in a comment would put the value inside a tag (refused at load); it is text.
    expect(decideFor('{% comment %}<p {% endcomment %}<b>{{ traits.x }}</b>', 'Hola')).toEqual({ served: ['agent-script'], templates: 0, script: '<b>Hola</b>' });
    // The text of {% raw %} is written as it stands: read as HTML (its "{{" is not an output).
    const afterRaw = '<div style="{% raw %}{{a}}{% endraw %}">{{ traits.x }}</div>';
    expect(decideFor(afterRaw, 'url(x)')).toEqual({ served: ['agent-script'], templates: 0, script: '<div style="{{a}}">url(x)</div>' });
  });

  it('in an html field, an output inside a tag (its name, an attribute\'s name) is refused at load with its path and position', () => {
    for (const [script, position] of [
      ['<p {{ attrs }}>Hola</p>', 3],
      ['<a href="/vip" {{ traits.extra }}>ver</a>', 15],
      ['<div data-{{ key }}="1">', 10],
      ['<p>Hola</p><img src="/a.png"{% echo attrs %}>', 28],
    ] as const) {
      expect(refused({ actions: [action('a', { call_center: { script } })] })).toEqual([
        expect.objectContaining({ path: 'actions[0].content.call_center.script', position, message: expect.stringMatching(/^template error: a value cannot be written inside a tag/) }),
      ]);
    }
    // Written by the template with {% if %}, an attribute is fine; so is a value in a quoted value, or in text.
    expect(loaded({ actions: [action('a', { call_center: { script: '<input {% if vip %}checked{% endif %} class="{{ tier }}" title={{ tier }}>{{ tier }}' } })] }).actions).toHaveLength(1);
  });

  it('in an html field, a value written into an attribute of <object>, <embed>, <param> or <applet> is refused at load (a plugin loads links from any of them), whatever the attribute\'s name or place', () => {
    for (const [script, position] of [
      ['<object><param name="movie" value="{{ x }}"></object>', 35],
      ['<param value="{{ x }}" name="movie">', 14],
      ['<PARAM NAME="{{ n }}" VALUE="/a.swf">', 13],
      ['<param name="filename" value="/media/{% echo x %}">', 37],
      ['<object data="/a.swf" codebase={{ x }}></object>', 31],
      ['<embed src="{% if vip %}/gold.swf{% else %}{{ x }}{% endif %}">', 43],
      ['<applet code="{{ x }}"></applet>', 14],
    ] as const) {
      expect(refused({ actions: [action('a', { call_center: { script } })] })).toEqual([
        expect.objectContaining({
          path: 'actions[0].content.call_center.script',
          position,
          message: expect.stringMatching(/^template error: a value cannot be written into an attribute of <(object|embed|param|applet)>: .*hand their attributes to plugins/),
        }),
      ]);
    }
    // The template's own plugin markup stays, and so does a value in the element's text (fallback content) or elsewhere.
    const own = '<object data="/a.swf"><param name="movie" value="/a.swf">{{ tier }}</object><p title="{{ tier }}">{{ tier }}</p>';
    expect(loaded({ actions: [action('a', { call_center: { script: own } })] }).actions).toHaveLength(1);
  });

  it('over the demo catalog: every action of every channel a hostile profile is offered, through decide', () => {
    const demo = loadCatalog(readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8'), 'yaml', { version: 1 });
    if (!demo.ok) throw new Error(JSON.stringify(demo.problems));
    const catalog = demo.catalog;
    const hostile = (stats: Partial<ProfileView['stats']>, traits: Record<string, unknown> = {}) =>
      profile({ traits: { firstName: PAYLOAD, tier: 'VIP', ...traits }, timezone: 'UTC' }, { lastSeenAt: '2026-01-14T00:00:00Z', ...stats });
    const customers = [
      hostile({}),
      hostile({ openComplaints: 1, returns: 1, lastReturnAt: '2026-01-10T00:00:00Z', orders: 2, lastPurchaseAt: '2025-10-01T00:00:00Z' }),
      hostile({ orders: 3, lastPurchaseAt: '2025-11-01T00:00:00Z' }),
    ];
    const met = new Set<string>();
    const served = new Set<string>();
    for (const customer of customers) {
      for (const channel of CHANNELS) {
        for (const placement of [undefined, 'home', 'home_hero']) {
          const decision = run(catalog, customer, request(channel, { ...(placement ? { placement } : {}), context: { city: PAYLOAD, weather: 'rain' } }));
          for (const a of decision.actions) {
            served.add(`${channel}:${a.actionId}`);
            checkContent(channel, channel === 'push' ? { ...a.content } : a.content, met);
          }
        }
      }
    }
    // The payload reached html fields (email greeting, call-centre script) and text fields (email subject, web body).
    expect([...met]).toEqual(expect.arrayContaining(['html:email.greeting', 'html:call_center.script', 'text:email.subject']));
    expect(served.size).toBeGreaterThan(5);
    // And every content of the demo, each action and variant, rendered directly for the same profile.
    const vars = createRuleVariables({ catalog, profile: customers[0]!, channel: 'web', context: { city: PAYLOAD }, now: NOW });
    for (const a of catalog.actions) {
      for (const variant of [undefined, ...a.variants.map((v) => v.id)]) {
        for (const channel of a.channels) {
          const content = contentFor(a, channel, variant);
          if (content) checkContent(channel, renderContent(content, templateScope(vars), a.fallbacks), met);
        }
      }
    }
  });
});

describe('the HTML guard judges what a value becomes where it lands: whole URL values, captures, tags that write values', () => {
  /** Decide for a customer with these traits, the agent's script first, a plain one next. */
  const decideFor = (script: string, traits: Record<string, unknown>) => {
    const c = loaded({
      learning: { enabled: false, exploration: 0 },
      policies: { consentRequired: [] },
      actions: [action('agent-script', { call_center: { script } }, { value: 10 }), action('plain', { call_center: { script: '<p>plain</p>' } })],
    });
    const failures = createFailureTally();
    const decision = decide(c, profile({ traits }), request('call_center', { limit: 1 }), NOW, { nonce: 'n1', failures });
    return { served: decision.actions.map((a) => a.actionId), templates: failures.templates, script: decision.actions[0]?.content.script };
  };
  /** [template, traits anyone with the public key can set that make it a script or a navigation, harmless traits, what the harmless ones render]. */
  type Case = readonly [string, Record<string, unknown>, Record<string, unknown>, string];
  const expectCases = (cases: readonly Case[]) => {
    for (const [template, hostile, harmless, rendered] of cases) {
      expect({ template, hostile, ...decideFor(template, hostile) }).toMatchObject({ template, hostile, served: ['plain'], templates: 1 });
      expect({ template, ...decideFor(template, harmless) }).toEqual({ template, served: ['agent-script'], templates: 0, script: rendered });
    }
  };
  const refusedAt = (script: string) => refused({ actions: [action('a', { call_center: { script } })] });

  it('the whole value of a URL attribute, srcset or refresh a value is written into is checked as a link: a scheme split over outputs, or after the template\'s own text, is not served', () => {
    expectCases([
      ['<a href="{{ a }}{{ b }}">ver</a>', { a: 'java', b: 'script:alert(1)' }, { a: '/p/', b: '42' }, '<a href="/p/42">ver</a>'],
      ['<a href="{{ a }}{{ b }}">ver</a>', { a: ' JaVa\t', b: 'ScRiPt:alert(1)' }, { a: 'mailto:', b: 'ana@example.com' }, '<a href="mailto:ana@example.com">ver</a>'],
      ['<a href="{{ a }}:{{ b }}">ver</a>', { a: 'javascript', b: 'alert(1)' }, { a: 'https', b: '//crm.example.com' }, '<a href="https://crm.example.com">ver</a>'],
      ['<a href="java{{ b }}">ver</a>', { b: 'script:alert(1)' }, { b: '-docs/p' }, '<a href="java-docs/p">ver</a>'],
      ['<a href="{{ a }}&#115;cript:{{ b }}">ver</a>', { a: 'java', b: 'alert(1)' }, { a: '/java', b: 'x' }, '<a href="/java&#115;cript:x">ver</a>'],
      ['<a href={{ a }}{{ b }}>ver</a>', { a: 'java', b: 'script:alert(1)' }, { a: '/x', b: '/y' }, '<a href=/x/y>ver</a>'],
      ['<a href="{% for p in parts %}{{ p }}{% endfor %}">ver</a>', { parts: ['ja', 'va', 'script:alert(1)'] }, { parts: ['/a', '/b'] }, '<a href="/a/b">ver</a>'],
      ['<img srcset="/a.png 1x, {{ a }}{{ b }} 2x">', { a: 'java', b: 'script:x' }, { a: '/b', b: '.png' }, '<img srcset="/a.png 1x, /b.png 2x">'],
      ['<meta http-equiv="refresh" content="0;url={{ a }}{{ b }}">', { a: 'java', b: 'script:alert(1)' }, { a: '/ne', b: 'xt' }, '<meta http-equiv="refresh" content="0;url=/next">'],
    ]);
    // A {% break %} (or {% continue %}) ends a loop's pass where it stands: one inside a value would leave what follows the loop in it.
    expect(refusedAt('{% for p in parts %}<a href="{{ p }}{% break %}">ficha</a>{% endfor %}{{ b }}">ver</a>')).toEqual([
      expect.objectContaining({ path: 'actions[0].content.call_center.script', position: 0, message: expect.stringMatching(/the \{% for %\} at 0 does not end in the HTML context it starts in \(it is entered in text, the branch at 36 ends in the href attribute's value of <a>\)/) }),
    ]);
    expect(refusedAt('{% for p in parts %}<a href="{{ p }}{% liquid\n if p\n  continue\n endif %}">ficha</a>{% endfor %}{{ b }}">ver</a>')).toEqual([
      expect.objectContaining({ position: 0, message: expect.stringMatching(/does not end in the HTML context it starts in/) }),
    ]);
    expect(decideFor('<ul>{% for p in parts %}<li>{{ p }}</li>{% if p == "b" %}{% break %}{% endif %}{% endfor %}</ul>', { parts: ['a', 'b', 'c'] })).toMatchObject({ script: '<ul><li>a</li><li>b</li></ul>' });
    // What a {% case %} holds before its first {% when %} is not written: no URL value of it is looked for.
    expect(decideFor('{% case x %}<a href="{{ y }}">{% when 1 %}<b>{{ y }}</b>{% endcase %}', { x: 1, y: 'javascript:1' })).toMatchObject({ script: '<b>javascript:1</b>' });
  });

  it('property: whatever the values and the template\'s own text between them, a served render\'s href is never a script URL', () => {
    const decoded = (html: string) =>
      html.replace(/&(#x[0-9a-f]+|#\d+|[a-z]+);?/gi, (whole, e: string) =>
        e[0] === '#'
          ? String.fromCodePoint(e[1] === 'x' || e[1] === 'X' ? Number.parseInt(e.slice(2), 16) : Number(e.slice(1)))
          : (({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", colon: ':', tab: '\t', newline: '\n' }) as Record<string, string>)[e.toLowerCase()] ?? whole,
      );
    const own = fc.constantFrom('java', 'script', ':', '&#58;', '&colon;', '&#x09;', ' ', '/', 'data', '{% if p %}java{% endif %}', '{% if q %}:{% endif %}');
    const output = fc.constantFrom('{{ a }}', '{{ b }}', '{{ c }}', '{% echo a %}', '{% cycle b %}', '{{ c | raw }}');
    const value = fc.constantFrom('java', 'script:', 'JaVa', 'ScRiPt:alert(1)', ':', '', '/x', '\t', 'javascript', 'alert(1)', 'data', 'text/html,x', 'vbscript:x');
    fc.assert(
      fc.property(fc.array(fc.oneof(own, output), { minLength: 1, maxLength: 6 }), value, value, value, fc.boolean(), fc.boolean(), (pieces, a, b, c, p, q) => {
        fc.pre(pieces.some((piece) => piece.startsWith('{{') || piece.startsWith('{% echo') || piece.startsWith('{% cycle')));
        const script = `<a href="${pieces.join('')}">ver</a>`;
        const result = loadCatalog({ actions: [action('a', { call_center: { script } })] }, 'object', { version: 1 });
        // Refused at load (the template's own script URL with a value in it): never served.
        if (!result.ok) return;
        const template = result.catalog.actions[0]?.content.call_center?.fields.script as CompiledTemplate;
        let rendered: string | undefined;
        try {
          rendered = renderTemplate(template, { a, b, c, p, q });
        } catch {
          rendered = undefined;
        }
        const href = rendered === undefined ? undefined : decoded(rendered.slice('<a href="'.length, -'">ver</a>'.length));
        expect({ script, a, b, c, scheme: href === undefined ? undefined : unsafeLinkScheme(href) }).toEqual({ script, a, b, c, scheme: undefined });
      }),
      { numRuns: 1500 },
    );
  });

  it('a value written into the template\'s own javascript:, vbscript: or data: URL is refused at load with its path, position and why, in any case, with spaces, tabs, line breaks or entities in the scheme', () => {
    for (const [script, position, attribute] of [
      ['<a href="javascript:{{ x }}">ver</a>', 9, 'href'],
      ['<a href="  JaVaScRiPt:crm.open({{ x }})">ver</a>', 9, 'href'],
      ['<a href="&#106;avascript:{{ x }}">ver</a>', 9, 'href'],
      ['<a href="java&#x09;script:{{ x }}">ver</a>', 9, 'href'],
      ['<a href="java\tscript:{{ x }}">ver</a>', 9, 'href'],
      ['<a href="java\nscript:{{ x }}">ver</a>', 9, 'href'],
      ['<a href="javascript&colon;{{ x }}">ver</a>', 9, 'href'],
      ['<a href=javascript:{{ x }}>ver</a>', 8, 'href'],
      ['<a href="vbscript:{{ x }}">ver</a>', 9, 'href'],
      ['<iframe src="data:text/html,<p>{{ x }}</p>"></iframe>', 13, 'src'],
      ["<form action='javascript:{% echo x %}'></form>", 14, 'action'],
      ['<a href="javascript:{% if a %}{{ x }}{% endif %}">ver</a>', 9, 'href'],
      ['<a href="javascript:{% cycle x, "1" %}">ver</a>', 9, 'href'],
      ['<img srcset="/a.png 1x, javascript:{{ x }} 2x">', 13, 'srcset'],
      ['<meta http-equiv="refresh" content="0;url=javascript:{{ x }}">', 36, 'content'],
    ] as const) {
      expect({ script, problems: refusedAt(script) }).toEqual({
        script,
        problems: [
          expect.objectContaining({
            path: 'actions[0].content.call_center.script',
            position,
            message: expect.stringMatching(new RegExp(`^template error: a value is written into the ${attribute} attribute of <\\w+> after the template's own text .*(javascript|vbscript|data): URL.*begin it with https:, http: or a relative path`)),
          }),
        ],
      });
    }
    // A template that ends inside such a value cannot have it checked whole.
    expect(refusedAt('<p>Hola</p><a href="/p/{{ x }}')).toEqual([
      expect.objectContaining({ path: 'actions[0].content.call_center.script', position: 20, message: expect.stringMatching(/ends inside the href attribute's value of <a>, which a value is written into: close the attribute/) }),
    ]);
    // The author's own script URL with no value in it stays, and so does a value after a safe start.
    expect(decideFor('<a href="javascript:void(0)">ver</a><a href="https://crm.example.com/c/{{ x }}">ficha</a><a href="/javascript:{{ x }}">x</a>', { x: '42' })).toEqual({
      served: ['agent-script'],
      templates: 0,
      script: '<a href="javascript:void(0)">ver</a><a href="https://crm.example.com/c/42">ficha</a><a href="/javascript:42">x</a>',
    });
    // The same text of the author's inside a branch is still the author's own: no value is written into the attribute.
    expect(decideFor('<a href="{% if x %}javascript:void(0){% endif %}">ver</a>', { x: '42' })).toEqual({
      served: ['agent-script'],
      templates: 0,
      script: '<a href="javascript:void(0)">ver</a>',
    });
  });

  it('a {% capture %} body is read as a page of its own: its text does not move where later values are checked, and the captured value is judged where it is written', () => {
    expectCases([
      // Read inline, the capture's `">` would put the value in text; it lands in the href.
      ['<a href="{% capture c %}">{% endcapture %}{{ x }}">ver</a>', { x: 'javascript:alert(1)' }, { x: '/p/42' }, '<a href="/p/42">ver</a>'],
      ['<script>{% capture c %}</script>{% endcapture %}crm.tier = {{ x }};</script>', { x: '1;alert(1)' }, { x: '3' }, '<script>crm.tier = 3;</script>'],
      ['<div style="color:red;{% capture c %}">{% endcapture %}{{ x }}">Hola</div>', { x: 'background:url(javascript:alert(1))' }, { x: 'margin:0' }, '<div style="color:red;margin:0">Hola</div>'],
      // The captured text written into a URL, script or through | raw is judged there, whole.
      ['{% capture c %}{{ x }}{% endcapture %}<a href="{{ c }}">ver</a>', { x: 'javascript:alert(1)' }, { x: '/p/42' }, '<a href="/p/42">ver</a>'],
    ]);
    // Markup captured and written through | raw is never served; escaped, it is text.
    expect(decideFor('{% capture c %}<b>{{ x }}</b>{% endcapture %}<p>{{ c | raw }}</p>', { x: 'Hola' })).toMatchObject({ served: ['plain'], templates: 1 });
    expect(decideFor('{% capture c %}<b title="{{ x }}">{{ x }}</b>{% endcapture %}<p>{{ c }}</p>', { x: '"><script>alert(1)</script>' })).toEqual({
      served: ['agent-script'],
      templates: 0,
      script: '<p>&lt;b title=&#34;&amp;#34;&amp;gt;&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;&#34;&gt;&amp;#34;&amp;gt;&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;&lt;/b&gt;</p>',
    });
  });

  it('blanks that Liquid\'s whitespace control ({{-, -}}, {%-, -%}) trims are not read: a value is judged where the trimmed markup puts it', () => {
    expectCases([
      // Read with its blank, the value would be text; trimmed, it follows the "<".
      ['<p>5 < {{- n }}</p>', { n: 'img src=x onerror=alert(1)' }, { n: '10' }, '<p>5 <10</p>'],
      // Read with its blanks, the value would be in a quoted href; trimmed, it is in the unquoted title value.
      ['<a title={{ t -}}  href="/p/{{ u }}">ver</a>', { t: 'a', u: 'x onmouseover=alert(1)' }, { t: 'a', u: '42' }, '<a title=ahref="/p/42">ver</a>'],
      ['<ul>\n  {%- for p in parts -%}\n  <li onclick="crm.open({{ p }})">{{ p }}</li>\n  {%- endfor -%}\n</ul>', { parts: ['1);alert(1'] }, { parts: ['1', '2'] }, '<ul><li onclick="crm.open(1)">1</li><li onclick="crm.open(2)">2</li></ul>'],
    ]);
  });

  it('{% cycle %}, {% increment %} and {% decrement %} are judged where they write, as an output is', () => {
    expectCases([
      ['<script>crm.tier = {% cycle x %};</script>', { x: '1;alert(1)' }, { x: '3' }, '<script>crm.tier = 3;</script>'],
      ['<p>5 <{% cycle x, "1" %}</p>', { x: 'img src=x onerror=alert(1)' }, { x: '10' }, '<p>5 <10</p>'],
      ['<p class={% cycle x %}>Hola</p>', { x: 'vip onmouseover=alert(1)' }, { x: 'vip' }, '<p class=vip>Hola</p>'],
      ['<div style="color:{% cycle x %}">Hola</div>', { x: 'red;background:url(javascript:alert(1))' }, { x: 'red' }, '<div style="color:red">Hola</div>'],
      ['<p>{% cycle x | raw %}</p>', { x: '<img src=x onerror=alert(1)>' }, { x: 'Hola' }, '<p>Hola</p>'],
      ['<a href="{% cycle x %}">ver</a>', { x: 'javascript:alert(1)' }, { x: '/p/42' }, '<a href="/p/42">ver</a>'],
    ]);
    // A counter writes a number, where it stands.
    expect(decideFor('<a href="{% increment n %}">ver</a><script>var n = {% increment n %}, m = {% decrement m %};</script>', {})).toEqual({
      served: ['agent-script'],
      templates: 0,
      script: '<a href="0">ver</a><script>var n = 1, m = -1;</script>',
    });
    for (const [script, position] of [
      ['<p {% cycle x %}>Hola</p>', 3],
      ['<p {% increment n %}>Hola</p>', 3],
      ['<p {% liquid\n decrement n %}>Hola</p>', 14],
    ] as const) {
      expect(refusedAt(script)).toEqual([
        expect.objectContaining({ path: 'actions[0].content.call_center.script', position, message: expect.stringMatching(/^template error: a value cannot be written inside a tag/) }),
      ]);
    }
  });
});

describe('rendersSurely: content known to render without rendering it (what decide asks of every arm the bandit may draw)', () => {
  const NAMES = ['firstName', 'city', 'note', 'traits.note', 'profile.traits.city', 'context.device', 'list', 'nested.inner'] as const;
  const output = fc.record({
    name: fc.constantFrom(...NAMES, 'note.size', 'note.length', 'true', 'missing'),
    default: fc.option(fc.string({ maxLength: 12 }).filter((t) => !/["'\\{}%]/.test(t)), { nil: undefined }),
  }).map(({ name, default: d }) => (d === undefined ? `{{ ${name} }}` : `{{ ${name} | default: "${d}" }}`));
  const template = fc
    .array(
      fc.oneof(
        { weight: 3, arbitrary: fc.constantFrom('Hola ', ', ', 'oferta 5', ' é ') },
        { weight: 1, arbitrary: fc.constantFrom('{% if note %}x{% endif %}', '{{ note | upcase }}') },
        { weight: 4, arbitrary: output },
      ),
      { minLength: 1, maxLength: 4 },
    )
    .map((parts) => parts.join(''));
  /** A value of any length around the bounds (output characters, content bytes), or not text at all. */
  const value = fc.oneof(
    fc.string({ maxLength: 20 }),
    fc.string({ maxLength: 20 }),
    fc.integer({ min: 0, max: 70_000 }).map((n) => 'x'.repeat(n)),
    fc.integer({ min: 0, max: 40_000 }).map((n) => 'é'.repeat(n)),
    fc.integer(),
    fc.constant(null),
    fc.array(fc.string({ maxLength: 3 }), { maxLength: 3 }),
  );

  it('property: whenever it says so, renderContent renders (and it says so for the plain templates of short values)', () => {
    let sure = 0;
    let failed = 0;
    fc.assert(
      fc.property(
        template,
        fc.option(template, { nil: undefined }),
        fc.constantFrom('https://shop.example.com/o/1', '{{ city }}', undefined),
        fc.record({ firstName: value, city: value, note: value, list: value }),
        fc.option(fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 0, max: 60_000 })).map((n) => ({ firstName: 'f'.repeat(n) })), { nil: undefined }),
        (title, body, url, traits, fallbacks) => {
          const loaded = loadCatalog({ actions: [{ id: 'a', name: 'a', content: { web: { title, ...(body ? { body } : {}), ...(url ? { url } : {}) } }, ...(fallbacks ? { fallbacks } : {}) }] }, 'object', { version: 1 });
          if (!loaded.ok) return;
          const action = loaded.catalog.actions[0]!;
          const scope = templateScope(createRuleVariables({ catalog: loaded.catalog, profile: profile({ traits: { ...traits, nested: { inner: traits.note } } }), context: { device: 'mobile' }, channel: 'web', now: NOW }));
          const content = contentFor(action, 'web')!;
          let rendered = true;
          try {
            renderContent(content, scope, action.fallbacks);
          } catch {
            rendered = false;
            failed++;
          }
          const says = rendersSurely(content, scope, action.fallbacks);
          if (says) sure++;
          // Sure means it renders.
          expect(says && !rendered).toBe(false);
        },
      ),
      { numRuns: 300, seed: 31 },
    );
    // Both sides are reached: content it settles, and content that does not render.
    expect(sure).toBeGreaterThan(30);
    expect(failed).toBeGreaterThan(10);
  }, 120_000);

  it('says so for plain templates of short values, not for a tag, another filter, a link template or a long value', () => {
    const loaded = loadCatalog(
      {
        actions: [
          { id: 'plain', name: 'plain', content: { web: { title: 'Hola {{ firstName | default: "amigo" }}', url: 'https://x.example/o' } }, fallbacks: { firstName: 'cliente' } },
          { id: 'tag', name: 'tag', content: { web: { title: '{% if firstName %}Hola{% endif %}' } } },
          { id: 'filter', name: 'filter', content: { web: { title: '{{ firstName | upcase }}' } } },
          { id: 'link', name: 'link', content: { web: { title: 'T', url: 'https://x.example/{{ firstName }}' } } },
        ],
      },
      'object',
      { version: 1 },
    );
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    const scopeOf = (firstName: string) => templateScope(createRuleVariables({ catalog: loaded.catalog, profile: profile({ traits: { firstName } }), channel: 'web', now: NOW }));
    const sure = (id: string, firstName: string) => {
      const action = loaded.catalog.actions.find((a) => a.id === id)!;
      return rendersSurely(contentFor(action, 'web')!, scopeOf(firstName), action.fallbacks);
    };
    expect(['plain', 'tag', 'filter', 'link'].map((id) => sure(id, 'Luis'))).toEqual([true, false, false, false]);
    expect(sure('plain', 'x'.repeat(TEMPLATE_LIMITS.outputChars))).toBe(false);
  });
});
