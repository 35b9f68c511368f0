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
import { ApiError } from '#http/errors.ts';
import type { HttpRequest, HttpResponse } from '#http/handler-adapter.ts';
import { refreshLiveCatalog } from '#store/catalog.ts';
import { getProfileView } from '#store/profiles.ts';
import { decide, emptyProfile } from '#domain/decide/decide.ts';
import { emptyCatalog } from '#domain/decide/empty-catalog.ts';
import { DEFAULT_RULE_BUDGET_MS } from '#domain/catalog/rules.ts';
import { isoInstant, issueDetails, parseSimulateRequest } from '#domain/decide/request.ts';
import { CHANNELS } from '#domain/channels.ts';
import { TIME_ZONE_MESSAGE, isValidTimeZone } from '#domain/profile/time.ts';
import { PROFILE_CEL_SCHEMA, PROFILE_CEL_TYPES, PROFILE_TEXT_FORMATS, type ProfileTextFormat, type ProfileView } from '#domain/profile/view.ts';

const TEXT_MAX = 10_000;
const LIST_MAX = 1_000;
// A schema's own message (the type's) is zod's message for its checks too: each bound names itself.
const text = z.string('must be a string').check(z.maxLength(TEXT_MAX, `must be at most ${TEXT_MAX} characters`));

type CelTypeName = keyof typeof PROFILE_CEL_TYPES;
type CelField = string | { readonly [field: string]: CelField };

/**
 * The schema of a text field with a format (PROFILE_TEXT_FORMATS): an
 * instant is read as UTC (`toISOString`, as the view holds its times), so
 * that rules read it as they read a stored profile's.
 */
const formattedText: Readonly<Record<ProfileTextFormat, z.ZodMiniType>> = {
  instant: z.pipe(isoInstant(), z.transform((value: string) => new Date(value).toISOString())),
  timeZone: z.string('must be a string').check(z.refine(isValidTimeZone, TIME_ZONE_MESSAGE)),
  channel: z.enum(CHANNELS, `must be one of ${CHANNELS.join(', ')}`),
};

const formatOf = (name: string | undefined): ProfileTextFormat | undefined =>
  name !== undefined && Object.hasOwn(PROFILE_TEXT_FORMATS, name) ? PROFILE_TEXT_FORMATS[name as keyof typeof PROFILE_TEXT_FORMATS] : undefined;

/**
 * The zod schema of a CEL field of the profile's one declaration
 * (PROFILE_CEL_SCHEMA, typed from ProfileView in profile/view.ts): strings
 * (≤ 10,000 characters; a field `name` of PROFILE_TEXT_FORMATS in its
 * format: an ISO-8601 instant, an IANA time zone, a channel), doubles,
 * booleans, lists (≤ 1,000 items) and maps of those, and the named
 * `kairos.*` types. `required`: inside a named type a number or list the
 * operator leaves out is 0 or empty, a boolean is required and a string (a
 * time) optional; elsewhere every field is optional.
 */
function zodOfCel(field: CelField, inNamedType = false, name?: string): z.ZodMiniType {
  if (typeof field !== 'string') {
    const shape: Record<string, z.ZodMiniType> = {};
    for (const [inner, type] of Object.entries(field)) shape[inner] = z.optional(zodOfCel(type, false, inner));
    // A misspelled field (`trait`, `consents`) is refused, not dropped: dropped, the simulation
    // would silently be of another profile. The profile GET /v1/admin/profiles/{userId} answers passes.
    return z.strictObject(shape);
  }
  const list = /^list<(.+)>$/.exec(field);
  const map = /^map<string, (.+)>$/.exec(field);
  if (list) {
    const items = z.array(zodOfCel(list[1] as string, false, name), 'must be a list').check(z.maxLength(LIST_MAX, `must be at most ${LIST_MAX} items`));
    return inNamedType ? z._default(items, []) : items;
  }
  if (map) return z.record(z.string(), zodOfCel(map[1] as string, false, name));
  if (field in PROFILE_CEL_TYPES) {
    const shape: Record<string, z.ZodMiniType> = {};
    for (const [inner, type] of Object.entries(PROFILE_CEL_TYPES[field as CelTypeName])) {
      const schema = zodOfCel(type as string, true, inner);
      shape[inner] = type === 'string' ? z.optional(schema) : schema;
    }
    return z.object(shape);
  }
  switch (field) {
    case 'string': {
      const format = formatOf(name);
      return format !== undefined ? formattedText[format] : text;
    }
    case 'double':
      return inNamedType ? z._default(z.number('must be a number'), 0) : z.number('must be a number');
    case 'bool':
      return z.boolean('must be true or false');
    case 'dyn':
      return z.unknown();
    default:
      throw new Error(`No zod schema for the CEL type ${field}`);
  }
}

/**
 * The parts of a ProfileView an operator may give (the one declaration's
 * fields); wrong types are refused, and so are a time that is no ISO-8601
 * instant (`stats.lastSeenAt: "yesterday"`), a time zone the platform does
 * not know (`timezone: "Mars/Olympus"`), a channel that is none, and an
 * unknown field of the profile, its `stats` or its `preferences` (inside
 * the named types, such as a consent, unknown fields are ignored). Times
 * with an offset are read as UTC.
 */
const inlineProfileSchema = zodOfCel(PROFILE_CEL_SCHEMA) as z.ZodMiniType<DeepPartial<ProfileView>>;

type DeepPartial<T> = T extends readonly (infer U)[] ? readonly U[] : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;

function inlineProfile(value: unknown): ProfileView {
  const parsed = inlineProfileSchema.safeParse(value);
  if (!parsed.success) {
    const details = issueDetails(parsed.error.issues).map((d) => ({ ...d, path: d.path === '(root)' ? 'profile' : `profile.${d.path}` }));
    throw new ApiError('validation_failed', 'The profile is not valid', details);
  }
  const p = parsed.data;
  const base = emptyProfile({ userId: p.userId, anonymousId: p.anonymousId });
  // Contacts, engagement, consent and event counts come with their numbers and lists filled (zodOfCel).
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
    contacts: p.contacts ?? {},
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
  let unknown: string | undefined;
  if (input.profile !== undefined) {
    view = inlineProfile(input.profile);
  } else {
    const lookup = { userId: input.userId, anonymousId: input.anonymousId };
    const found = await getProfileView(lookup, now, { consistent: true });
    // No profile (a typo of the id, or a customer never seen): decided as for a new customer, and said so.
    if (!found) unknown = input.userId !== undefined ? `userId ${input.userId}` : `anonymousId ${input.anonymousId}`;
    view = found ?? emptyProfile(lookup);
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
  const explanation =
    unknown !== undefined && decision.explanation
      ? { ...decision.explanation, policies: [`profile:no profile for ${unknown}: decided as for a new customer`, ...decision.explanation.policies] }
      : decision.explanation;
  return { status: 200, body: { ...decision, ...(explanation ? { explanation } : {}), simulated: true } };
}
