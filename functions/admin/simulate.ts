/**
 * POST /v1/admin/simulate — what decide would answer, with its explanation,
 * for a stored customer (`userId` / `anonymousId`) or an inline `profile`
 * (any part of the profile shape of API.md §3; the rest is empty), at now or
 * at another instant (`at`). No side effect: decide never writes, and
 * simulate reads the live catalog and at most the customer's profile. A
 * simulation is not traffic: it writes no decision record (the decision log
 * holds what the decide function answered, for off-policy evaluation).
 */
import * as z from 'zod/mini';
import { CHANNELS } from '#domain/channels.ts';
import { ApiError } from '#http/errors.ts';
import type { HttpRequest, HttpResponse } from '#http/handler-adapter.ts';
import { refreshLiveCatalog } from '#store/catalog.ts';
import { getProfileView } from '#store/profiles.ts';
import { decide, emptyProfile } from '#domain/decide/decide.ts';
import { emptyCatalog } from '#domain/decide/empty-catalog.ts';
import { DEFAULT_RULE_BUDGET_MS } from '#domain/catalog/rules.ts';
import { issueDetails, parseSimulateRequest } from '#domain/decide/request.ts';
import type { ProfileView } from '#domain/profile/view.ts';

const text = z.string('must be a string').check(z.maxLength(10_000));
const count = z.number('must be a number');
const times = z.array(text, 'must be a list of ISO-8601 times').check(z.maxLength(1_000));
const channelRecord = <T extends z.core.SomeType>(value: T) => z.partialRecord(z.enum(CHANNELS), value);

/** The parts of a ProfileView an operator may give; unknown fields are ignored, wrong types refused. */
const inlineProfileSchema = z.object({
  userId: z.optional(text),
  anonymousId: z.optional(text),
  anonymousIds: z.optional(z.array(text)),
  identified: z.optional(z.boolean('must be true or false')),
  traits: z.optional(z.record(z.string(), z.unknown())),
  timezone: z.optional(text),
  consent: z.optional(channelRecord(z.object({ granted: z.boolean('must be true or false'), updatedAt: z.optional(text) }))),
  preferences: z.optional(
    z.object({
      interests: z.optional(z.array(text)),
      preferredChannel: z.optional(z.enum(CHANNELS, `must be one of ${CHANNELS.join(', ')}`)),
      updatedAt: z.optional(text),
    }),
  ),
  stats: z.optional(
    z.object({
      visitsToday: z.optional(count),
      visits7d: z.optional(count),
      visits30d: z.optional(count),
      visitsTotal: z.optional(count),
      firstSeenAt: z.optional(text),
      lastSeenAt: z.optional(text),
      orders: z.optional(count),
      revenue: z.optional(count),
      lastPurchaseAt: z.optional(text),
      returns: z.optional(count),
      lastReturnAt: z.optional(text),
      openComplaints: z.optional(count),
      categoryInterests: z.optional(z.record(z.string(), count)),
      eventCounts: z.optional(
        z.record(z.string(), z.object({ today: count, last7d: count, last30d: count, total: count })),
      ),
    }),
  ),
  engagement: z.optional(
    channelRecord(
      z.object({
        delivered: count,
        engaged: count,
        rate: count,
        lastDeliveredAt: z.optional(text),
        lastEngagedAt: z.optional(text),
      }),
    ),
  ),
  contacts: z.optional(
    z.record(
      z.string(),
      z.object({ impressions: times, clicks: z.optional(count), conversions: z.optional(count), lastImpressionAt: z.optional(text) }),
    ),
  ),
  channelContacts: z.optional(channelRecord(times)),
  segments: z.optional(z.array(text)),
  persona: z.optional(text),
  scores: z.optional(z.record(z.string(), count)),
  updatedAt: z.optional(text),
});

function inlineProfile(value: unknown): ProfileView {
  const parsed = inlineProfileSchema.safeParse(value);
  if (!parsed.success) {
    const details = issueDetails(parsed.error.issues).map((d) => ({ ...d, path: d.path === '(root)' ? 'profile' : `profile.${d.path}` }));
    throw new ApiError('validation_failed', 'The profile is not valid', details);
  }
  const p = parsed.data;
  const base = emptyProfile({ userId: p.userId, anonymousId: p.anonymousId });
  const contacts: Record<string, ProfileView['contacts'][string]> = {};
  for (const [id, c] of Object.entries(p.contacts ?? {})) {
    contacts[id] = { impressions: c.impressions, clicks: c.clicks ?? 0, conversions: c.conversions ?? 0, ...(c.lastImpressionAt ? { lastImpressionAt: c.lastImpressionAt } : {}) };
  }
  return {
    ...base,
    ...p,
    identified: p.identified ?? p.userId !== undefined,
    anonymousIds: p.anonymousIds ?? base.anonymousIds,
    traits: p.traits ?? {},
    timezone: p.timezone ?? 'UTC',
    timezoneSource: p.timezone !== undefined ? 'trait' : 'none',
    preferences: { ...base.preferences, ...p.preferences, interests: p.preferences?.interests ?? [] },
    stats: { ...base.stats, ...p.stats },
    contacts,
  } as ProfileView;
}

export async function simulateRoute(request: HttpRequest): Promise<HttpResponse> {
  const parsed = parseSimulateRequest(request.body);
  if (!parsed.ok) throw new ApiError('validation_failed', 'The simulate request is not valid', parsed.details);
  const input = parsed.value;
  const now = input.at !== undefined ? new Date(input.at) : new Date();

  // An operator simulates right after publishing: make sure the catalog is the live one.
  const catalog = (await refreshLiveCatalog()) ?? emptyCatalog();
  let view: ProfileView;
  if (input.profile !== undefined) {
    view = inlineProfile(input.profile);
  } else {
    const lookup = { userId: input.userId, anonymousId: input.anonymousId };
    view = (await getProfileView(lookup, now, { consistent: true })) ?? emptyProfile(lookup);
  }
  const decision = decide(
    catalog,
    view,
    {
      ...(input.userId !== undefined ? { userId: input.userId } : {}),
      ...(input.anonymousId !== undefined ? { anonymousId: input.anonymousId } : {}),
      channel: input.channel,
      ...(input.placement !== undefined ? { placement: input.placement } : {}),
      limit: input.limit,
      context: input.context,
      explain: true,
    },
    now,
    // Exploration draws are seeded by the request: the same simulation gives the same answer.
    { nonce: 'simulated', ruleBudgetMs: DEFAULT_RULE_BUDGET_MS },
  );
  return { status: 200, body: { ...decision, simulated: true } };
}
