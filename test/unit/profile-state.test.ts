/**
 * Parsing a stored profile state: the format version is checked, and fields a state lacks are filled; and which
 * Profiles items are an erased customer's (started, or merged, before their key's erasure).
 */
import { describe, expect, it } from 'vitest';
import { emptyProfileState, parseProfileState, serializeProfileState } from '#domain/profile/state.ts';
import { erasedCustomersItem, profileFromItem, type ProfileItem } from '#domain/profile/profile-item.ts';

describe('parseProfileState', () => {
  it('gives back what was stored', () => {
    const state = { ...emptyProfileState({ userId: 'u-1' }), orders: 3, traits: { tier: ['gold', 1] as [string, number] } };
    expect(parseProfileState(serializeProfileState(state))).toEqual(state);
  });

  it('fills the fields a state written before them lacks, with objects of its own', () => {
    const stored = JSON.parse(serializeProfileState(emptyProfileState({ userId: 'u-1' }))) as Record<string, unknown>;
    delete stored.channels;
    delete stored.actions;
    const a = parseProfileState(JSON.stringify(stored));
    const b = parseProfileState(JSON.stringify(stored));
    expect(a).toEqual(emptyProfileState({ userId: 'u-1' }));
    expect(a.channels).not.toBe(b.channels);
  });

  it("reads a state stored before it kept its key's erasure as started at its last write (updatedAt), else before any erasure", () => {
    const written = Date.parse('2026-04-01T00:00:00Z');
    const stored = JSON.parse(serializeProfileState({ ...emptyProfileState({ userId: 'u-1' }), updatedAt: written })) as Record<string, unknown>;
    delete stored.keyErasedAt;
    expect(parseProfileState(JSON.stringify(stored)).keyErasedAt).toBe(written);
    delete stored.updatedAt;
    expect(parseProfileState(JSON.stringify(stored)).keyErasedAt).toBe(0);
    // A state that keeps it is read as it is.
    expect(parseProfileState(serializeProfileState({ ...emptyProfileState(), updatedAt: written, keyErasedAt: 5 })).keyErasedAt).toBe(5);
  });

  it('refuses another format version', () => {
    expect(() => parseProfileState(JSON.stringify({ ...emptyProfileState(), sv: 99 }))).toThrow(/Unsupported profile state version: 99/);
    expect(() => parseProfileState('null')).toThrow(/Unsupported/);
  });
});

describe('erasedCustomersItem', () => {
  const ERASED = Date.parse('2026-04-01T00:00:00Z');
  const profile = (keyErasedAt: number): ProfileItem => ({ kind: 'profile', key: 'u#u-1', version: 3, state: { ...emptyProfileState({ userId: 'u-1' }), keyErasedAt } });
  const tombstone = (keyErasedAt: number): ProfileItem => ({ kind: 'tombstone', key: 'a#a-1', version: 2, mergedInto: 'u-1', keyErasedAt });

  it("is an item started, or merged, before its key's erasure; not one started at or after it, nor any item of a key never erased", () => {
    for (const item of [profile, tombstone]) {
      expect(erasedCustomersItem(item(0), ERASED)).toBe(true);
      expect(erasedCustomersItem(item(ERASED - 1), ERASED)).toBe(true);
      expect(erasedCustomersItem(item(ERASED), ERASED)).toBe(false);
      expect(erasedCustomersItem(item(ERASED + 1), ERASED)).toBe(false);
      expect(erasedCustomersItem(item(0), undefined)).toBe(false);
    }
    expect(erasedCustomersItem(undefined, ERASED)).toBe(false);
  });

  it('reads a tombstone stored before it kept its key\'s erasure as merged at its mergedAt', () => {
    const item = { pk: 'a#a-1', kind: 'tombstone', version: 1, mergedInto: 'u-1', mergedAt: new Date(ERASED + 1_000).toISOString() };
    expect(profileFromItem(item)).toEqual({ kind: 'tombstone', key: 'a#a-1', version: 1, mergedInto: 'u-1', keyErasedAt: ERASED + 1_000 });
    expect(erasedCustomersItem(profileFromItem(item), ERASED)).toBe(false);
    expect(erasedCustomersItem(profileFromItem({ ...item, mergedAt: new Date(ERASED - 1_000).toISOString() }), ERASED)).toBe(true);
    expect(profileFromItem({ ...item, keyErasedAt: ERASED })).toMatchObject({ keyErasedAt: ERASED });
  });
});
