/** Factories for catalog tests: a complete ProfileView with overrides. */
import type { ProfileStats, ProfileView } from '../../shared/domain/profile/view.ts';

export type ViewOverrides = Partial<Omit<ProfileView, 'stats'>> & { stats?: Partial<ProfileStats> };

export function makeView(overrides: ViewOverrides = {}): ProfileView {
  const { stats, ...rest } = overrides;
  return {
    anonymousIds: [],
    identified: true,
    userId: 'u-1',
    traits: {},
    timezone: 'UTC',
    consent: {},
    preferences: { interests: [] },
    engagement: {},
    contacts: {},
    channelContacts: {},
    segments: [],
    scores: {},
    ...rest,
    stats: {
      visitsToday: 0,
      visits7d: 0,
      visits30d: 0,
      visitsTotal: 0,
      orders: 0,
      revenue: 0,
      returns: 0,
      openComplaints: 0,
      categoryInterests: {},
      eventCounts: {},
      ...stats,
    },
  };
}

export const NOW = new Date('2026-11-23T12:00:00Z');
export const daysAgo = (n: number, now: Date = NOW): string => new Date(now.getTime() - n * 86_400_000).toISOString();
