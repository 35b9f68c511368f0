/**
 * Triggers fire exactly once per real occurrence, whatever the stream does
 * (fast-check, in the style of the profile plan's properties): the pure
 * plan (shared/domain/profile/plan.ts with the triggers' reactor) against
 * a Profiles + Outbox table in memory that checks what the transactions
 * check — the profile's version, each applied marker's absence, each
 * outbox item's absence — and commits a write whole or not at all
 * (reactions-support.ts).
 *
 * For any delivery — batches cut anywhere, a record twice in a batch,
 * redelivery of a batch after a store fault (from its first record, like
 * a stream), any order —
 * - no outbox item is ever put twice (the markers alone refuse a
 *   redelivered event's reactions: the outbox condition never has to);
 * - an event trigger fires once for each matching event, none else;
 * - entering and leaving a segment alternate, starting with entering, and
 *   end where the customer's final membership is;
 * - delivered in order, the firings are exactly those of applying the
 *   events one at a time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { createCatalogEnricher } from '#domain/catalog/enricher.ts';
import { loadCatalog } from '#domain/catalog/load.ts';
import { applyEvents } from '#domain/profile/apply.ts';
import { boundEnrichment } from '#domain/profile/enrich.ts';
import type { PlanOptions } from '#domain/profile/plan.ts';
import { emptyProfileState, parseProfileState, type ProfileState } from '#domain/profile/state.ts';
import { toProfileView } from '#domain/profile/to-view.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import type { StoredEvent } from '#domain/stored-event.ts';
import { createTriggerReactor, triggersFiring } from '#domain/triggers/react.ts';
import { emissionId, MAX_EMISSION_ID_LENGTH } from '#domain/triggers/emission.ts';
import { ID_PATTERN } from '#domain/catalog/schema.ts';
import { eventPk } from '#domain/item-keys.ts';
import { storedEvent } from '../support/stream.ts';
import { deliver, delivery, type MemoryStore } from './reactions-support.ts';

const CATALOG = `
kind: kairos/v1
tags: [service]
segments:
  - { id: vip, rule: 'has(profile.traits.tier) && profile.traits.tier == "VIP"' }
actions:
  - { id: call, name: Call, tags: [service], content: { call_center: { script: Hola } } }
  - { id: note, name: Note, tags: [service], content: { sms: { text: Hola } } }
policies: { consentRequired: [] }
triggers:
  - { id: complaint, on: { event: Complaint Opened }, decide: { channel: call_center } }
  - { id: vip-in, on: { entered: vip }, decide: { channel: sms } }
  - { id: vip-out, on: { left: vip }, decide: { channel: sms } }
`;
const catalog: CompiledCatalog = (() => {
  const result = loadCatalog(CATALOG, 'yaml');
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.catalog;
})();

const NOW = Date.parse('2026-04-11T00:00:00Z');
const T0 = Date.parse('2026-04-01T00:00:00Z');
const options: PlanOptions = {
  settings: { halfLifeDays: 14 },
  enricher: createCatalogEnricher(() => catalog),
  reactor: createTriggerReactor(() => catalog),
  now: NOW,
};

/** Deliver batches in order; a faulty commit redelivers its batch (reactions-support.ts). */
const deliverAll = (batches: readonly StoredEvent[][], faults: readonly boolean[]): MemoryStore => deliver(batches, faults, () => options);

const kind = fc.constantFrom('vip', 'gold', 'complaint', 'visit');
const events = fc.array(fc.tuple(kind, fc.integer({ min: 0, max: 5 * 86_400 })), { minLength: 1, maxLength: 25 }).map((drafts) =>
  drafts.map(([k, s], i): StoredEvent => {
    const timestamp = new Date(T0 + s * 1000).toISOString();
    const base = { userId: 'u-1', messageId: `m-${i}`, timestamp };
    if (k === 'vip' || k === 'gold') return storedEvent({ ...base, type: 'identify', traits: { tier: k === 'vip' ? 'VIP' : 'gold' } });
    return storedEvent({ ...base, type: 'track', event: k === 'complaint' ? 'Complaint Opened' : 'Visit' });
  }),
);

const enriched = (state: ProfileState): ProfileView => {
  const view = toProfileView(state, NOW);
  const e = boundEnrichment(options.enricher(view, new Date(NOW)));
  return { ...view, segments: e.segments, scores: e.scores };
};

/** The firings of applying the events one at a time, in this order (each event once). */
function reference(list: readonly StoredEvent[]): string[] {
  let state = emptyProfileState({ userId: 'u-1' });
  let before = enriched(state);
  const out: string[] = [];
  for (const event of list) {
    state = applyEvents(state, [event], options.settings);
    const after = enriched(state);
    for (const t of triggersFiring(catalog, { event, before, after, now: NOW })) out.push(`${t.id}.${event.pk}`);
    before = after;
  }
  return out;
}

const firingsOf = (store: MemoryStore, trigger: string) => store.outbox.filter((e) => e.id.startsWith(`${trigger}.`));

describe('triggers fire exactly once per real occurrence', () => {
  it('any order, duplicates, batch cuts and redelivery after faults: no item twice, every event trigger once, transitions consistent', () => {
    fc.assert(
      fc.property(
        events.chain((list) => delivery(list, false).map((d) => ({ list, ...d }))),
        ({ list, batches, faults }) => {
          const store = deliverAll(batches, faults);
          expect(store.outboxRefusals).toBe(0);
          expect(store.outbox.length).toBe(store.outboxIds.size);
          // Every event was applied once.
          expect(store.markers.size).toBe(list.length);
          const complaints = list.filter((e) => e.event === 'Complaint Opened').map((e) => `complaint.${e.pk}`);
          expect(firingsOf(store, 'complaint').map((e) => e.id).sort()).toEqual(complaints.sort());
          // Entering and leaving alternate (in commit order), starting with entering; they end at the final membership.
          const transitions = store.outbox.filter((e) => !e.id.startsWith('complaint.')).map((e) => (e.id.startsWith('vip-in.') ? 'in' : 'out'));
          transitions.forEach((t, i) => expect(t).toBe(i % 2 === 0 ? 'in' : 'out'));
          const final = parseProfileState(store.profiles.get('u#u-1')!.state);
          expect(transitions.length % 2 === 1).toBe(enriched(final).segments.includes('vip'));
        },
      ),
      { numRuns: 100 },
    );
  });

  it('delivered in order (duplicates, cuts, redelivery after faults): exactly the firings of applying the events one at a time', () => {
    fc.assert(
      fc.property(
        events.chain((list) => delivery(list, true).map((d) => ({ list, ...d }))),
        ({ list, batches, faults }) => {
          const store = deliverAll(batches, faults);
          expect(store.outboxRefusals).toBe(0);
          expect(store.outbox.map((e) => e.id).sort()).toEqual(reference(list).sort());
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('emission ids are bounded and stable', () => {
  const catalogId = fc.stringMatching(ID_PATTERN);
  // Key ids and ingest's message ids (any text up to 100 characters), the timers' own source and message ids.
  const eventKey = fc.tuple(fc.oneof(fc.constant('kairos'), fc.stringMatching(/^key_[a-z0-9]{1,40}$/)), fc.string({ minLength: 1, maxLength: 100, unit: 'grapheme' })).map(([source, message]) => eventPk(source, message));

  it('a trigger firing: at most 200 characters; the same trigger and event always give the same id, different ones never the same', () => {
    fc.assert(
      fc.property(catalogId, eventKey, catalogId, eventKey, (triggerA, eventA, triggerB, eventB) => {
        const a = emissionId(triggerA, eventA);
        expect(a.length).toBeLessThanOrEqual(MAX_EMISSION_ID_LENGTH);
        expect(emissionId(triggerA, eventA)).toBe(a);
        expect(emissionId(triggerB, eventB) === a).toBe(triggerA === triggerB && eventA === eventB);
        // Short enough: the readable id, as before; else not.
        expect(a === `${triggerA}.${eventA}`).toBe(triggerA.length + 1 + eventA.length <= MAX_EMISSION_ID_LENGTH);
      }),
      { numRuns: 2_000 },
    );
  });

  it('the longest trigger id on the longest event key, and two long keys that differ only at the end', () => {
    const trigger = `t${'x'.repeat(127)}`;
    const key = (end: string) => eventPk(`key_${'k'.repeat(40)}`, `${'m'.repeat(99)}${end}`);
    const [a, b] = [emissionId(trigger, key('1')), emissionId(trigger, key('2'))];
    expect(a.length).toBeLessThanOrEqual(MAX_EMISSION_ID_LENGTH);
    expect(a.startsWith(`${trigger}.h-`)).toBe(true);
    expect(a).not.toBe(b);
  });
});
