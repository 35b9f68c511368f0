/**
 * The customer's rights over HTTP on the local stack (API.md §5): an export
 * of everything held, then an erasure after which no route finds the
 * customer, and decide treats them as someone new. A write key can do
 * neither.
 */
import { describe, expect, it } from 'vitest';
import { useLocalStack } from '../support/stack.ts';
import { call, decide, getProfile, identify, page, sendEvents, track, uniqueId, waitForProfile, type Profile, type StackAccess } from './fixtures/kairos.ts';

let api: StackAccess;
useLocalStack((_stack, access) => {
  api = access;
});

describe("a customer's data", () => {
  it('is exported whole, then erased: every route finds nothing, and decide sees a new customer', async () => {
    const userId = uniqueId('privacy');
    const anonymousId = uniqueId('privacy-anon');
    await sendEvents(api, [
      page({ anonymousId }, { path: '/', category: 'cycling' }),
      identify({ userId }, { firstName: 'Lucía', tier: 'VIP', email: 'lucia@example.com' }),
      track({ userId }, 'Order Completed', { revenue: 120 }),
    ]);
    await sendEvents(api, [{ ...identify({ userId }, {}), anonymousId }]);
    await waitForProfile(api, userId, (p) => p.stats.orders === 1 && p.stats.visitsTotal === 1);

    const exported = await call<{ customer: unknown; profile: { traits: unknown }; events: unknown[] }>(
      api,
      'GET',
      `/v1/admin/profiles/${encodeURIComponent(userId)}/export`,
      { auth: 'admin' },
    );
    expect(exported.status).toBe(200);
    expect(exported.json.customer).toEqual({ userId, anonymousIds: [anonymousId] });
    expect(exported.json.profile.traits).toMatchObject({ firstName: 'Lucía', email: 'lucia@example.com' });
    expect(exported.json.events).toHaveLength(4);

    const before = await decide(api, { userId, channel: 'web', placement: 'home_hero' });
    expect(before.segments?.length).toBeGreaterThan(0);

    // A write key can neither export nor erase.
    for (const method of ['GET', 'DELETE'] as const) {
      const path = method === 'GET' ? `/v1/admin/profiles/${encodeURIComponent(userId)}/export` : `/v1/admin/profiles/${encodeURIComponent(userId)}`;
      expect((await call(api, method, path, { auth: 'write' })).status).toBe(403);
    }

    const erased = await call<{ events: number }>(api, 'DELETE', `/v1/admin/profiles/${encodeURIComponent(userId)}`, { auth: 'admin' });
    expect(erased.status).toBe(200);
    expect(erased.json.events).toBe(4);

    for (const id of [userId, anonymousId]) {
      expect((await call(api, 'GET', `/v1/admin/profiles/${encodeURIComponent(id)}`, { auth: 'admin' })).status).toBe(404);
      expect((await call(api, 'GET', `/v1/admin/profiles/${encodeURIComponent(id)}/export`, { auth: 'admin' })).status).toBe(404);
    }
    const after = await decide(api, { userId, channel: 'web', placement: 'home_hero' });
    expect(after.segments).toEqual([]);
    const simulated = await call<{ segments: string[] }>(api, 'POST', '/v1/admin/simulate', { auth: 'admin', body: { userId, channel: 'web' } });
    expect(simulated.status).toBe(200);
    expect(simulated.json.segments).toEqual([]);
  });

  it('a customer whose events fill more than a Lambda answer (any write key can send 32 KB events under their id) is read and exported whole, in pages that fit', async () => {
    const userId = uniqueId('bulky');
    // Each quote is 2 bytes of the 32 KB message, and 4 of a Lambda answer (escaped in the body, then in the body string).
    const note = '"'.repeat(16_000);
    const total = 150;
    for (let b = 0; b < total / 15; b++) {
      await sendEvents(api, Array.from({ length: 15 }, () => track({ userId }, 'Bulky Note', { note })));
    }
    await waitForProfile(api, userId, (p) => p.stats.eventCounts['Bulky Note']?.total === total, 120_000);

    const profile = await call<{ events: unknown[] }>(api, 'GET', `/v1/admin/profiles/${encodeURIComponent(userId)}`, { auth: 'admin' });
    expect(profile.status).toBe(200);
    expect(profile.json.events.length).toBeGreaterThan(0);
    expect(profile.json.events.length).toBeLessThanOrEqual(50);

    const seen = new Set<string>();
    let cursor: string | undefined;
    let pages = 0;
    do {
      const query = cursor === undefined ? '' : `?cursor=${cursor}`;
      const page = await call<{ events: { messageId: string }[]; next?: string }>(api, 'GET', `/v1/admin/profiles/${encodeURIComponent(userId)}/export${query}`, { auth: 'admin' });
      expect(page.status).toBe(200);
      expect(page.json.events.length).toBeGreaterThan(0);
      for (const event of page.json.events) seen.add(event.messageId);
      cursor = page.json.next;
      pages++;
    } while (cursor !== undefined && pages < 20);
    expect(pages).toBeGreaterThan(1);
    expect(seen.size).toBe(total);
  }, 240_000);

  it('an alias whose previousId then becomes a user: erasing that user, then erasing it again, never reaches the user it was aliased to', async () => {
    const a = uniqueId('ali-a');
    const b = uniqueId('ali-b');
    const linked = (other: string) => (p: Profile) => (p as Profile & { anonymousIds: string[] }).anonymousIds.includes(other);
    await sendEvents(api, [identify({ userId: a }, { firstName: 'Ana' })]);
    await waitForProfile(api, a, (p) => p.traits.firstName === 'Ana');
    await sendEvents(api, [{ type: 'alias', userId: a, previousId: b }]);
    await waitForProfile(api, a, linked(b));
    await sendEvents(api, [identify({ userId: b }, { firstName: 'Bo' })]);
    await waitForProfile(api, b, (p) => p.traits.firstName === 'Bo');
    // The alias back names a known user: it joins nobody.
    await sendEvents(api, [{ type: 'alias', userId: b, previousId: a }]);

    const profilePath = (id: string) => `/v1/admin/profiles/${encodeURIComponent(id)}`;
    const first = await call<{ customer: { userId?: string } }>(api, 'DELETE', profilePath(b), { auth: 'admin' });
    expect(first.status).toBe(200);
    expect(first.json.customer.userId).toBe(b);
    // Called again, as an operator completes an erasure: nothing of b is left, and a is not touched.
    expect((await call(api, 'DELETE', profilePath(b), { auth: 'admin' })).status).toBe(404);
    for (const path of [profilePath(b), `${profilePath(b)}/export`]) expect((await call(api, 'GET', path, { auth: 'admin' })).status).toBe(404);
    expect((await getProfile(api, a))?.traits).toMatchObject({ firstName: 'Ana' });
    const exported = await call<{ customer: { userId?: string } }>(api, 'GET', `${profilePath(a)}/export`, { auth: 'admin' });
    expect(exported.json.customer.userId).toBe(a);
  });
});
