/**
 * Content templates over HTTP on a local stack that keeps its data on disk
 * (the key file, DynamoDB Local's files): no template construct reads a file
 * of the data folder into any answer or error of the catalog routes or of
 * decide, and a trait set through the events API comes out of decide escaped
 * in HTML fields and as inert text elsewhere.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, assert, beforeAll, describe, expect, it } from 'vitest';
import { startLocalStack, type TestStack } from '../support/stack.ts';
import { call, identify, sendEvents, uniqueId, waitForProfile, type StackAccess } from './fixtures/kairos.ts';
import { CONTENT_FIELDS, type ContentFieldSpec } from '#domain/catalog/content-fields.ts';
import { CHANNELS, type Channel } from '#domain/channels.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'kairos-data-'));
let stack: TestStack;
let api: StackAccess;

beforeAll(async () => {
  // On disk, keys generated and remembered in the data folder: what `npm start` keeps there.
  stack = await startLocalStack({ inMemory: false, dataDir, writeKey: undefined, adminToken: undefined });
  api = {
    baseUrl: stack.baseUrl.replace(/\/$/, ''),
    writeKey: stack.writeKey,
    serverKey: stack.serverKey,
    userTokenSecret: stack.userTokenSecret,
    adminToken: stack.adminToken,
  };
});

afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

const PAYLOAD = `<script>alert(1)</script>"><img src=x onerror=alert(2)>'&{{ 6 | times: 7 }}`;
const ESCAPED = PAYLOAD.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;').replaceAll('"', '&#34;').replaceAll("'", '&#39;');
const CANARY = `canary-${randomUUID()}`;

/** Every content field of a channel: the trait and a context value in author markup; literal fields plain. */
function fieldsOf(channel: Channel): Record<string, unknown> {
  const template = '<b>{{ firstName }}</b> {{ context.city }}';
  return Object.fromEntries(
    Object.entries(CONTENT_FIELDS[channel] as Record<string, ContentFieldSpec>).map(([name, spec]) => [
      name,
      spec.kind === 'literal' ? 't-1' : spec.list ? [template] : template,
    ]),
  );
}

const CATALOG = {
  learning: { enabled: false, exploration: 0 },
  policies: { consentRequired: [] },
  actions: CHANNELS.map((channel) => ({ id: `all-${channel}`, name: channel, content: { [channel]: fieldsOf(channel) } })),
};

interface Answer {
  readonly actions: readonly { readonly actionId: string; readonly content: Record<string, string | string[]> }[];
}

async function decideFor(userId: string, channel: Channel, city: string) {
  // Every channel for a named customer: what a back-end asks, with the server key.
  return call<Answer>(api, 'POST', '/v1/decide', { auth: 'server', body: { userId, channel, context: { city } } });
}

/** Every file under the data folder, with what of its content an answer must never show. */
function dataFiles(): { file: string; markers: string[] }[] {
  const out: { file: string; markers: string[] }[] = [];
  for (const entry of readdirSync(dataDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const file = join(entry.parentPath, entry.name);
    const bytes = readFileSync(file);
    const binary = bytes.subarray(0, 4096).includes(0);
    const markers = binary
      ? [bytes.subarray(0, 15).toString('latin1'), ...(bytes.includes(CANARY) ? [CANARY] : [])]
      : bytes
          .toString('utf8')
          .split('\n')
          .map((line) => line.trim())
          .filter((line) => line.length >= 8)
          .slice(0, 200);
    out.push({ file, markers: markers.filter((m) => m.trim().length >= 8) });
  }
  return out;
}

const constructs = (file: string): string[] => {
  const fromCwd = relative(process.cwd(), file);
  const up = `${'../'.repeat(12)}${file.replace(/^\//, '')}`;
  const name = file.split('/').pop() as string;
  return [
    `{% include '${file}' %}`,
    `{% include "${fromCwd}" %}`,
    `{% include '${up}' %}`,
    `{% include '${name}' %}`,
    `{% include context.file %}`,
    `{% include {{ context.file }} %}`,
    `{% render '${file}' %}`,
    `{% render "${up}" %}`,
    `{% render context.file %}`,
    `{% layout '${file}' %}`,
    `{% layout "${fromCwd}" %}{% block x %}{% endblock %}`,
    `{%- liquid\ninclude '${file}'\n-%}`,
    `{% capture c %}{% include '${file}' %}{% endcapture %}{{ c }}`,
    `{% if true %}{% render '${up}' %}{% endif %}`,
    `{{ '${file}' | append: '' }}{% include '${file}' %}`,
  ];
};

describe('templates on a stack with a data folder', () => {
  it('a trait set with the write key comes out of decide escaped in html fields, verbatim (inert) in text fields, on every channel', async () => {
    const put = await call(api, 'PUT', '/v1/admin/catalog', { auth: 'admin', body: CATALOG });
    assert.equal(put.status, 200, put.text.slice(0, 500));
    const userId = uniqueId('hostile');
    const sent = await sendEvents(api, [identify({ userId }, { firstName: PAYLOAD, note: CANARY })]);
    expect(sent.accepted).toBe(1);
    await waitForProfile(api, userId, (p) => (p.traits as { firstName?: unknown }).firstName === PAYLOAD);

    const html: string[] = [];
    const text: string[] = [];
    for (const channel of CHANNELS) {
      // Decide caches the catalog for a few seconds: wait until it serves this one.
      const deadline = Date.now() + 40_000;
      let answer = await decideFor(userId, channel, PAYLOAD);
      while (answer.json?.actions?.[0]?.actionId !== `all-${channel}` && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        answer = await decideFor(userId, channel, PAYLOAD);
      }
      assert.equal(answer.status, 200, answer.text.slice(0, 500));
      const served = answer.json.actions[0];
      expect(served?.actionId).toBe(`all-${channel}`);
      for (const [name, value] of Object.entries(served?.content ?? {})) {
        const kind = (CONTENT_FIELDS[channel] as Record<string, ContentFieldSpec>)[name]?.kind;
        for (const one of Array.isArray(value) ? value : [value]) {
          if (kind === 'html') html.push(one);
          if (kind === 'text') text.push(one);
        }
      }
    }
    // email greeting and body, call-centre script and talking point: escaped, the author's markup kept.
    expect(html).toHaveLength(4);
    expect(html.filter((v) => v !== `<b>${ESCAPED}</b> ${ESCAPED}`)).toEqual([]);
    // Every other field: the value as it was, not escaped and not evaluated (no 42).
    expect(text.length).toBeGreaterThanOrEqual(14);
    expect(text.filter((v) => v !== `<b>${PAYLOAD}</b> ${PAYLOAD}`)).toEqual([]);
  });

  it('no file of the data folder reaches an answer or an error, through any template construct', async () => {
    const files = dataFiles();
    expect(files.map((f) => relative(dataDir, f.file))).toEqual(expect.arrayContaining(['local-secrets.json']));
    // The markers are real: the key file holds the stack's keys, and DynamoDB's files the trait just stored.
    const all = files.flatMap((f) => f.markers);
    expect(all.some((m) => m.includes(api.writeKey))).toBe(true);
    expect(all.some((m) => m.includes(api.adminToken))).toBe(true);
    expect(all).toContain(CANARY);

    const answers: string[] = [];
    for (const { file } of files) {
      const templates = constructs(file);
      const catalog = {
        actions: templates.map((source, i) => ({ id: `a${i}`, name: 'a', content: { email: { templateId: 't', subject: 's', body: source } } })),
      };
      for (const [method, path] of [
        ['POST', '/v1/admin/catalog/validate'],
        ['PUT', '/v1/admin/catalog'],
      ] as const) {
        const refused = await call<{ error: { details: { path: string }[] } }>(api, method, path, { auth: 'admin', body: catalog });
        assert.equal(refused.status, 400, refused.text.slice(0, 500));
        expect(refused.json.error.details.map((d) => d.path)).toEqual(templates.map((_, i) => `actions[${i}].content.email.body`));
        answers.push(refused.text);
      }
      // In a value, the constructs are text: decide shows them as written, reads nothing.
      const userId = uniqueId('reader');
      for (const channel of ['web', 'email'] as const) {
        const answer = await call(api, 'POST', '/v1/decide', {
          auth: 'server',
          body: { userId, channel, context: { city: templates.join(' '), file } },
        });
        assert.equal(answer.status, 200, answer.text.slice(0, 500));
        answers.push(answer.text);
      }
    }
    expect(answers.some((a) => a.includes('{% include'))).toBe(true);
    const leaks = files.flatMap(({ file, markers }) =>
      markers.filter((m) => answers.some((a) => a.includes(m))).map((m) => `${relative(dataDir, file)}: ${m.slice(0, 40)}`),
    );
    expect(leaks).toEqual([]);
    expect(answers.filter((a) => a.includes(api.writeKey) || a.includes(api.adminToken))).toEqual([]);
  });
});
