/**
 * The key of every item type (shared/store/items.ts), pinned: stored data
 * depends on these shapes, so changing one must change this test. And no two
 * item types on one table can build the same key, for any ids.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  anonymousProfileItem,
  appliedMarkerItem,
  catalogChunkItem,
  catalogCounterItem,
  catalogDocumentChunkItem,
  statisticsItem,
  statisticsShardOf,
  journeyCountItem,
  decisionChunkItem,
  JOURNEY_COUNT_PK_PREFIX,
  STATISTICS_SHARDS,
  catalogLiveItem,
  catalogMetaItem,
  catalogVersionPk,
  CATALOG_CHUNK_SK_PREFIX,
  CATALOG_DOCUMENT_CHUNK_SK_PREFIX,
  erasedMessageItem,
  erasureRecordItem,
  eventItem,
  eventSortKey,
  healthProbeItem,
  itemTypes,
  outboxItem,
  userProfileItem,
  WRITE_KEY_LIST_PK,
  writeKeyListItem,
  writeKeyLookupItem,
  type ItemKey,
} from '#store/items.ts';
import { tables } from '#store/tables.ts';

type AnyItemType = (typeof itemTypes)[number];

/** name → table → the key built for example ids, exactly as stored. */
const pinned: readonly [AnyItemType, string, string, ItemKey][] = [
  [eventItem, 'event', 'Events', eventItem.key('src-1', 'msg-1')],
  [userProfileItem, 'user profile', 'Profiles', userProfileItem.key('user-1')],
  [anonymousProfileItem, 'anonymous profile or tombstone', 'Profiles', anonymousProfileItem.key('anon-1')],
  [appliedMarkerItem, 'applied marker', 'Profiles', appliedMarkerItem.key('src-1#msg-1')],
  [erasureRecordItem, 'erasure record', 'Profiles', erasureRecordItem.key('u#user-1')],
  [erasedMessageItem, 'erased message', 'Profiles', erasedMessageItem.key('src-1#msg-1')],
  [writeKeyLookupItem, 'write key lookup', 'Control', writeKeyLookupItem.key('ab12')],
  [writeKeyListItem, 'write key list entry', 'Control', writeKeyListItem.key('key_0123456789abcdef')],
  [catalogLiveItem, 'catalog live pointer', 'Control', catalogLiveItem.key()],
  [catalogCounterItem, 'catalog version counter', 'Control', catalogCounterItem.key()],
  [catalogMetaItem, 'catalog version meta', 'Control', catalogMetaItem.key(7)],
  [catalogChunkItem, 'catalog source chunk', 'Control', catalogChunkItem.key(7, 3)],
  [catalogDocumentChunkItem, 'catalog document chunk', 'Control', catalogDocumentChunkItem.key(7, 12)],
  [healthProbeItem, 'health probe', 'Control', healthProbeItem.key()],
  [statisticsItem, 'outcome statistics', 'Control', statisticsItem.key(7, 1_790_000_000_000, 'banner\u001fb\u001f\u001f\u001f-\u001fweb\u001fhome_hero')],
  [journeyCountItem, 'journey report counter', 'Control', journeyCountItem.key(3, 20_422, 'retention', 'step:email')],
  [decisionChunkItem, 'decision log chunk counted', 'Control', decisionChunkItem.key('s3://log/decisions/dt=2026-11-30/a.gz', 2)],
  [outboxItem, 'outbox emission', 'Outbox', outboxItem.key('vip-complaint.src-1#msg-1')],
];

describe('item keys (shared/store/items.ts)', () => {
  it('pins every item type: name, table and key shape', () => {
    expect(pinned.map(([t]) => t)).toEqual([...itemTypes]);
    expect(pinned.map(([t, , , key]) => [t.name, t.table, key])).toEqual(pinned.map(([, name, table, key]) => [name, table, key]));
    expect(pinned.map(([, , , key]) => key)).toEqual([
      { pk: 'src-1#msg-1' },
      { pk: 'u#user-1' },
      { pk: 'a#anon-1' },
      { pk: 'm#src-1#msg-1' },
      { pk: 'x#9e63b4b4fe11b7640ca8e87cf6cb2ef400f66435b01b560a60c3c5ba1a485e7a' },
      { pk: 'xm#b59a5834fce2fafd407850c99f574a6fb7398a001c421c2e985440ba446dbde4' },
      { pk: 'KEY#ab12', sk: 'KEY' },
      { pk: 'KEYS', sk: 'key_0123456789abcdef' },
      { pk: 'CATALOG', sk: 'LIVE' },
      { pk: 'CATALOG', sk: 'COUNTER' },
      { pk: 'CATALOG#7', sk: 'META' },
      { pk: 'CATALOG#7', sk: 'CHUNK#00003' },
      { pk: 'CATALOG#7', sk: 'DOC#00012' },
      { pk: 'HEALTH', sk: 'PROBE' },
      { pk: 'STAT#07', sk: '1790000000000#banner\u001fb\u001f\u001f\u001f-\u001fweb\u001fhome_hero' },
      { pk: 'JOURNEY#03', sk: '020422#retention#step:email' },
      { pk: 'DLOG#1ddd8ffca0dfe325d4b7e66f364e22fe5319e130d2de6597e75a365d016221d6', sk: 'PART#00002' },
      { pk: 'o#vip-complaint.src-1#msg-1' },
    ]);
  });

  it('pins the partitions and prefixes read by Query and by filters', () => {
    expect(catalogVersionPk(42)).toBe('CATALOG#42');
    expect(CATALOG_CHUNK_SK_PREFIX).toBe('CHUNK#');
    expect(CATALOG_DOCUMENT_CHUNK_SK_PREFIX).toBe('DOC#');
    expect(WRITE_KEY_LIST_PK).toBe('KEYS');
    expect(STATISTICS_SHARDS).toBe(16);
    expect(JOURNEY_COUNT_PK_PREFIX).toBe('JOURNEY#');
    expect(statisticsShardOf('u#user-1')).toBe(statisticsShardOf('u#user-1'));
    expect(new Set(Array.from({ length: 400 }, (_, i) => statisticsShardOf(`u#user-${i}`))).size).toBe(STATISTICS_SHARDS);
    expect(catalogChunkItem.key(1, 123456).sk).toBe('CHUNK#123456');
    expect(eventSortKey('2026-11-29T20:00:00.000Z', 'msg-1')).toBe('2026-11-29T20:00:00.000Z#msg-1');
  });

  it("builds exactly its table's key attributes", () => {
    const shapes = pinned.map(([type, , , key]) => {
      const table = tables.find((t) => t.id === type.table);
      const names = [table?.partitionKey.name, ...(table && 'sortKey' in table ? [table.sortKey.name] : [])];
      return { type: type.name, attributes: Object.keys(key).sort(), tableKey: names.sort() };
    });
    expect(shapes.filter((s) => s.attributes.join() !== s.tableKey.join())).toEqual([]);
    expect(shapes.map((s) => s.attributes.length)).toEqual([1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1]);
  });

  // Ids made of the fragments the templates use, so a collision (one
  // template's output spelling another's) is within reach of the search.
  const fragment = fc.constantFrom('', '#', 'u', 'a', 'm', 'x', 'u#', 'a#', 'm#', 'x#', 'xm#', 'KEY', 'KEYS', 'S', 'JOURNEY#', 'STAT#', 'CATALOG', 'LIVE', 'COUNTER', 'META', 'CHUNK#', 'DOC#', 'HEALTH', 'PROBE', '0', '1');
  const id = fc.oneof(fc.array(fragment, { maxLength: 5 }).map((parts) => parts.join('')), fc.string({ unit: 'binary' }));
  const number = fc.oneof(fc.nat({ max: 200_000 }), fc.integer());
  const arbitraryIds = new Map<AnyItemType, fc.Arbitrary<readonly unknown[]>>([
    [eventItem, fc.tuple(id, id)],
    [userProfileItem, fc.tuple(id)],
    [anonymousProfileItem, fc.tuple(id)],
    [appliedMarkerItem, fc.tuple(id)],
    [erasureRecordItem, fc.tuple(id)],
    [erasedMessageItem, fc.tuple(id)],
    [writeKeyLookupItem, fc.tuple(id)],
    [writeKeyListItem, fc.tuple(id)],
    [catalogLiveItem, fc.constant([])],
    [catalogCounterItem, fc.constant([])],
    [catalogMetaItem, fc.tuple(number)],
    [catalogChunkItem, fc.tuple(number, number)],
    [catalogDocumentChunkItem, fc.tuple(number, number)],
    [healthProbeItem, fc.constant([])],
    [statisticsItem, fc.tuple(fc.nat({ max: 15 }), fc.nat({ max: 9_999_999_999_999 }), id)],
    [journeyCountItem, fc.tuple(fc.nat({ max: 15 }), fc.nat({ max: 999_999 }), id, id)],
    [decisionChunkItem, fc.tuple(id, fc.nat({ max: 99_999 }))],
    [outboxItem, fc.tuple(id)],
  ]);
  const build = (type: AnyItemType, ids: readonly unknown[]): ItemKey => (type.key as (...ids: readonly unknown[]) => ItemKey)(...ids);

  it('gives every item type arbitrary ids', () => {
    expect([...arbitraryIds.keys()]).toEqual([...itemTypes]);
  });

  const pairs = itemTypes.flatMap((a, i) => itemTypes.slice(i + 1).filter((b) => b.table === a.table).map((b) => [a, b] as const));

  it.each(pairs.map(([a, b]) => [a.name, b.name, a, b] as const))('%s and %s never build the same key', (_a, _b, a, b) => {
    fc.assert(
      fc.property(arbitraryIds.get(a) as fc.Arbitrary<readonly unknown[]>, arbitraryIds.get(b) as fc.Arbitrary<readonly unknown[]>, (idsA, idsB) => {
        expect(build(a, idsA)).not.toEqual(build(b, idsB));
      }),
      { numRuns: 500 },
    );
  });
});
