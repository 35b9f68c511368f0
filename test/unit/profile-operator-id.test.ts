/**
 * What an operator's id names (domain/profile/profile-item.ts
 * `operatorIdTarget`, `operatorIdKeys`), on random Profiles tables in
 * memory: users live or erased, anonymous ids kept, merged into a user
 * (aliases included, whose previousId may be another user's id, so two users
 * can list each other) or never seen. An id named as a userId names that
 * user only, never an anonymous visitor; one named as an anonymousId names
 * its visitor or the user it was merged into, never the user of the same
 * text; the keys an id reaches (read, export, erasure) are its customer's
 * and never another's.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { emptyProfileState } from '#domain/profile/state.ts';
import {
  customerProfileKeys,
  OPERATOR_ID_KINDS,
  operatorIdIsOtherKind,
  operatorIdKeys,
  operatorIdTarget,
  type OperatorIdKind,
  type OperatorIdReads,
  type ProfileItem,
  type StoredProfile,
} from '#domain/profile/profile-item.ts';

const IDS = ['a', 'b', 'c', 'd'] as const;
type Id = (typeof IDS)[number];

/** Per id: its user (live, erased, never) and its anonymous key (absent, a profile, a tombstone into a user). */
interface World {
  readonly users: Record<Id, 'live' | 'erased' | 'never'>;
  readonly anonymous: Record<Id, { kind: 'none' } | { kind: 'profile' } | { kind: 'tombstone'; into: Id }>;
}

type UserKind = World['users'][Id];
type AnonymousKind = World['anonymous'][Id];
const userKinds: fc.Arbitrary<UserKind> = fc.constantFrom('live', 'erased', 'never');
const anonymousKinds: fc.Arbitrary<AnonymousKind> = fc.oneof(
  fc.constant<AnonymousKind>({ kind: 'none' }),
  fc.constant<AnonymousKind>({ kind: 'profile' }),
  fc.constantFrom(...IDS).map((into): AnonymousKind => ({ kind: 'tombstone', into })),
);
const worlds: fc.Arbitrary<World> = fc.record({
  users: fc.record({ a: userKinds, b: userKinds, c: userKinds, d: userKinds }),
  anonymous: fc.record({ a: anonymousKinds, b: anonymousKinds, c: anonymousKinds, d: anonymousKinds }),
});

/** The user profile of a live user: the anonymous ids merged into it are listed in its state. */
function userProfile(world: World, id: Id): StoredProfile | undefined {
  if (world.users[id] !== 'live') return undefined;
  const state = emptyProfileState({ userId: id });
  state.anonymousIds = IDS.filter((x) => {
    const anonymous = world.anonymous[x];
    return anonymous.kind === 'tombstone' && anonymous.into === id;
  });
  return { kind: 'profile', key: `u#${id}`, version: 1, state };
}

function anonymousItem(world: World, id: Id): ProfileItem | undefined {
  const anonymous = world.anonymous[id];
  if (anonymous.kind === 'profile') return { kind: 'profile', key: `a#${id}`, version: 1, state: emptyProfileState({ anonymousId: id }) };
  if (anonymous.kind === 'tombstone') return { kind: 'tombstone', key: `a#${id}`, version: 1, mergedInto: anonymous.into, keyErasedAt: 0 };
  return undefined;
}

/** What the store does (shared/store/operator-id.ts), on the world in memory. */
function resolve(world: World, id: Id, kind: OperatorIdKind) {
  // Every event of this world is applied: no anonymous visitor's events wait under a#<id> without its item.
  const reads: OperatorIdReads = { user: userProfile(world, id), wasUser: world.users[id] === 'erased', anonymous: anonymousItem(world, id), anonymousEvents: false };
  const target = operatorIdTarget(id, reads, kind);
  const profile =
    target.names === 'user'
      ? userProfile(world, id)
      : target.names === 'anonymous'
        ? (anonymousItem(world, id) as StoredProfile)
        : target.names === 'merged'
          ? userProfile(world, target.userId as Id)
          : undefined;
  return { target, profile, keys: operatorIdKeys(id, target, reads, profile, kind), otherKind: target.names === 'unknown' && operatorIdIsOtherKind(reads, kind) };
}

/** Who holds a key in the world: a user key its user, an anonymous key itself or the user it was merged into. */
function ownerOf(world: World, key: string): string {
  const id = key.slice(2) as Id;
  if (key.startsWith('u#')) return `user ${id}`;
  const anonymous = world.anonymous[id];
  return anonymous.kind === 'tombstone' ? `user ${anonymous.into}` : `anonymous ${id}`;
}

describe('what an operator id names', () => {
  it('an id named as a userId names that user only, while it is or was one; never an anonymous visitor', () => {
    fc.assert(
      fc.property(worlds, fc.constantFrom(...IDS), (world, id) => {
        const anonymous = world.anonymous[id];
        const isUser = world.users[id] !== 'never' || (anonymous.kind === 'tombstone' && anonymous.into === id);
        const { target, otherKind } = resolve(world, id, 'user');
        expect(target).toEqual(isUser ? { names: 'user', userId: id } : { names: 'unknown' });
        // Nobody as a user, but an anonymous visitor (or one merged into someone) of the same text: the 404 says so.
        expect(otherKind).toBe(!isUser && anonymous.kind !== 'none');
      }),
      { numRuns: 2_000 },
    );
  });

  it('an id named as an anonymousId names its visitor, or the user it was merged into; never the user of the same text', () => {
    fc.assert(
      fc.property(worlds, fc.constantFrom(...IDS), (world, id) => {
        const anonymous = world.anonymous[id];
        const expected =
          anonymous.kind === 'tombstone'
            ? { names: 'merged', anonymousId: id, userId: anonymous.into }
            : anonymous.kind === 'profile'
              ? { names: 'anonymous', anonymousId: id }
              : { names: 'unknown' };
        const { target, otherKind } = resolve(world, id, 'anonymous');
        expect(target).toEqual(expected);
        expect(otherKind).toBe(anonymous.kind === 'none' && world.users[id] !== 'never');
      }),
      { numRuns: 2_000 },
    );
  });

  it('every key an id reaches, named as either kind, is held by the customer it names, never by another', () => {
    fc.assert(
      fc.property(worlds, fc.constantFrom(...IDS), fc.constantFrom(...OPERATOR_ID_KINDS), (world, id, kind) => {
        const { target, keys, profile } = resolve(world, id, kind);
        expect(keys).toEqual(profile ? customerProfileKeys(profile) : keys);
        const customer =
          target.names === 'user' || target.names === 'merged' ? `user ${target.userId}` : target.names === 'anonymous' ? `anonymous ${id}` : undefined;
        // An unknown id reaches only its own key of the kind named, where events not applied yet may wait; a merged
        // anonymous id, its own key (events stored under it before the merge are its user's).
        const strangers = keys.filter((key) =>
          customer === undefined ? key !== (kind === 'user' ? `u#${id}` : `a#${id}`) : !(target.names === 'merged' && key === `a#${id}`) && ownerOf(world, key) !== customer,
        );
        expect(strangers).toEqual([]);
      }),
      { numRuns: 2_000 },
    );
  });

  it('two users aliased to each other, one erased: its id, read or erased again, names it and reaches nothing of the other', () => {
    const world: World = {
      users: { a: 'live', b: 'erased', c: 'never', d: 'never' },
      anonymous: { a: { kind: 'none' }, b: { kind: 'tombstone', into: 'a' }, c: { kind: 'none' }, d: { kind: 'none' } },
    };
    expect(resolve(world, 'b', 'user')).toEqual({ target: { names: 'user', userId: 'b' }, profile: undefined, keys: ['u#b'], otherKind: false });
    expect(resolve(world, 'a', 'user').keys).toEqual(['u#a', 'a#b']);
    // Named as an anonymousId, b is the visitor whose history went to a: that customer, explicitly.
    expect(resolve(world, 'b', 'anonymous').target).toEqual({ names: 'merged', anonymousId: 'b', userId: 'a' });
  });

  it('an anonymous visitor named as a userId is nobody (the 404 says to name it as an anonymousId), named as one it is found', () => {
    const world: World = {
      users: { a: 'never', b: 'live', c: 'never', d: 'never' },
      anonymous: { a: { kind: 'profile' }, b: { kind: 'none' }, c: { kind: 'tombstone', into: 'b' }, d: { kind: 'none' } },
    };
    expect(resolve(world, 'a', 'user')).toEqual({ target: { names: 'unknown' }, profile: undefined, keys: ['u#a'], otherKind: true });
    expect(resolve(world, 'a', 'anonymous')).toMatchObject({ target: { names: 'anonymous', anonymousId: 'a' }, keys: ['a#a'], otherKind: false });
    // The cookie id of user b's visitor does not reach b as a userId: an erasure by it cannot erase b by mistake.
    expect(resolve(world, 'c', 'user')).toEqual({ target: { names: 'unknown' }, profile: undefined, keys: ['u#c'], otherKind: true });
    expect(resolve(world, 'c', 'anonymous')).toMatchObject({ target: { names: 'merged', anonymousId: 'c', userId: 'b' }, keys: ['u#b', 'a#c'] });
  });
});
