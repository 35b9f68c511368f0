/** Factories for catalog tests: a complete ProfileView with overrides. */
import { emptyProfileView, type ProfileStats, type ProfileView } from '#domain/profile/view.ts';

export type ViewOverrides = Partial<Omit<ProfileView, 'stats'>> & { stats?: Partial<ProfileStats> };

export function makeView(overrides: ViewOverrides = {}): ProfileView {
  const { stats, ...rest } = overrides;
  const empty = emptyProfileView({ userId: 'u-1' });
  return { ...empty, ...rest, stats: { ...empty.stats, ...stats } };
}

export const NOW = new Date('2026-11-23T12:00:00Z');
export const daysAgo = (n: number, now: Date = NOW): string => new Date(now.getTime() - n * 86_400_000).toISOString();
