/** Parsing a stored profile state: the format version is checked, and fields a state lacks are filled. */
import { describe, expect, it } from 'vitest';
import { emptyProfileState, parseProfileState, serializeProfileState } from '#domain/profile/state.ts';

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

  it('refuses another format version', () => {
    expect(() => parseProfileState(JSON.stringify({ ...emptyProfileState(), sv: 99 }))).toThrow(/Unsupported profile state version: 99/);
    expect(() => parseProfileState('null')).toThrow(/Unsupported/);
  });
});
