/**
 * The operator's reports.
 *
 * GET /v1/admin/reports/actions (API.md §5): the outcome statistics and
 * the decision counts (counted from the decision log) of a time range per
 * action, variant, experiment arm and learning context, with rates, uplift
 * against control and the sample-ratio check
 * (shared/domain/reports/actions.ts gives the answer's shape and formulas).
 *
 * Query (all optional): `from`, `to` — ISO-8601 date-times with an offset
 * (`2026-11-20T00:00:00Z`; a `+01:00` offset written unescaped, which
 * arrives as a space, is read as `+01:00`, and `%2B01:00` is the escaped
 * form) or dates (`2026-11-20`, midnight UTC); default
 * the 7 days before now; from < to, at most MAX_REPORT_RANGE_DAYS apart;
 * hourly buckets whose hour starts in [from, to) are read. `channel`,
 * `placement`, `experiment`: keep only the cells of that channel,
 * placement or experiment (404 not_found for an experiment neither the
 * live catalog has nor the range's statistics name, naming the catalog's).
 * Anything else: 400 validation_failed with the
 * parameter in `details`; so is a report too large for one answer (Lambda's
 * 6 MB), naming the filters that narrow it.
 *
 * It reads the aggregates (every statistics shard, one Query each), never
 * the events: its cost follows the number of cells and hours, not traffic.
 *
 * GET /v1/admin/reports/journeys: per journey of the live catalog and per
 * UTC day, runs entered, times each step was reached, runs completed and
 * exited (shared/domain/journeys/report.ts). Query (all optional): `from`,
 * `to` — dates (`2026-11-20`, UTC), both days included; default the 7 days
 * ending today; from ≤ to, at most MAX_REPORT_RANGE_DAYS apart; `journey`:
 * only that journey (404 not_found when the live catalog has no such
 * journey, naming the catalog's). It reads the journey counters (every shard, one Query
 * each), never the profiles.
 */
import * as z from 'zod/mini';
import { CHANNELS } from '#domain/channels.ts';
import { issueDetails } from '#domain/decide/request.ts';
import { emptyCatalog } from '#domain/decide/empty-catalog.ts';
import { buildActionsReport } from '#domain/reports/actions.ts';
import { ApiError } from '#http/errors.ts';
import type { HttpRequest, HttpResponse } from '#http/handler-adapter.ts';
import { RESPONSE_BODY_BUDGET_BYTES, bodyPayloadBytes } from '#http/response-size.ts';
import { refreshLiveCatalog } from '#store/catalog.ts';
import { STATISTICS_RETENTION_S, readStatistics } from '#store/statistics.ts';
import { dayNumber, journeyReport } from '#domain/journeys/report.ts';
import { readJourneyCounts } from '#store/journey-counts.ts';

const DAY_MS = 86_400_000;

/** Longest range a report reads, days: as long as statistics are kept (400 days). */
export const MAX_REPORT_RANGE_DAYS = Math.floor((STATISTICS_RETENTION_S * 1000) / DAY_MS);
/** Range read when `from` is not given, days before `to`. */
export const DEFAULT_REPORT_RANGE_DAYS = 7;

const isoDateTime = z.iso.datetime({ offset: true });
const isoDate = z.iso.date();
/**
 * A date-time whose `+hh:mm` offset was written unescaped in the query
 * string: `+` there means a space (form encoding, which API Gateway and the
 * local server both apply), so `2026-11-20T00:00:00+01:00` arrives as
 * `2026-11-20T00:00:00 01:00`. No ISO-8601 date-time has a space before its
 * offset, so the space can only be that `+`: it is read as one.
 */
const SPACED_OFFSET = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}(?::?\d{2})?)$/;
const instant = z.pipe(
  z.pipe(
    z.string('must be a string'),
    z.transform((value: string) => value.replace(SPACED_OFFSET, '$1+$2')),
  ),
  z.string().check(
    z.refine((value) => isoDateTime.safeParse(value).success || isoDate.safeParse(value).success, {
      error: (issue) =>
        `must be an ISO-8601 date-time with an offset (2026-11-20T00:00:00Z) or a date (2026-11-20)${
          typeof issue.input === 'string' && /T\S* /.test(issue.input)
            ? '; a + in a query string arrives as a space: write an offset such as +01:00 as %2B01:00'
            : ''
        }`,
    }),
  ),
);
const name = z.string('must be a string').check(z.minLength(1, 'must not be empty'), z.maxLength(200, 'must be at most 200 characters'));

/** The route's query string; every parameter optional, no other allowed. */
export const actionsReportQuerySchema = z.strictObject({
  from: z.optional(instant),
  to: z.optional(instant),
  channel: z.optional(z.enum(CHANNELS, `must be one of ${CHANNELS.join(', ')}`)),
  placement: z.optional(name),
  experiment: z.optional(name),
});

const invalid = (path: string, message: string) => new ApiError('validation_failed', 'The report request is not valid', [{ path, message }]);

/**
 * The report for the request's query string, `now` (epoch ms) the end of
 * the default range: 200 with the report (shared/domain/reports/actions.ts
 * `ActionsReport`). `budgetBytes`: the most its answer may take of a Lambda
 * response (shared/http/response-size.ts).
 * @throws ApiError validation_failed (400) on a parameter it does not take,
 *   a malformed value, from ≥ to, a range over MAX_REPORT_RANGE_DAYS, or a
 *   report too large for one answer (it names its rows and the filters that
 *   narrow it); not_found (404) on an `experiment` neither the live catalog
 *   has nor the range's statistics name, naming it and the catalog's
 *   experiments; a store fault as the store reports it (429/503).
 */
export async function actionsReportRoute(request: HttpRequest, now = Date.now(), budgetBytes = RESPONSE_BODY_BUDGET_BYTES): Promise<HttpResponse> {
  const unknown = Object.keys(request.query).find((parameter) => !Object.hasOwn(actionsReportQuerySchema.shape, parameter));
  if (unknown !== undefined) throw invalid(unknown, `is not a parameter of this route (it takes ${Object.keys(actionsReportQuerySchema.shape).join(', ')})`);
  const parsed = actionsReportQuerySchema.safeParse({ ...request.query });
  if (!parsed.success) throw new ApiError('validation_failed', 'The report request is not valid', issueDetails(parsed.error.issues));
  const query = parsed.data;
  const to = query.to !== undefined ? Date.parse(query.to) : now;
  const from = query.from !== undefined ? Date.parse(query.from) : to - DEFAULT_REPORT_RANGE_DAYS * DAY_MS;
  if (from >= to) throw invalid(query.from !== undefined ? 'from' : 'to', 'from must be before to');
  if (to - from > MAX_REPORT_RANGE_DAYS * DAY_MS) throw invalid('from', `the range must be at most ${MAX_REPORT_RANGE_DAYS} days`);

  const [catalog, rows] = await Promise.all([refreshLiveCatalog(), readStatistics({ from, to })]);
  if (query.experiment !== undefined) {
    // An experiment is reported when the live catalog has it or the range's statistics name it (one since removed);
    // any other id is a typo, which an empty report would hide.
    const live = (catalog?.experiments ?? []).map((experiment) => experiment.id);
    const counted = rows.some((row) => row.cell.experiment === query.experiment && row.bucket >= from && row.bucket < to);
    if (!live.includes(query.experiment) && !counted) throw unknownId('experiment', query.experiment, live, 'nor do the statistics of the range name it');
  }
  const report = buildActionsReport(rows, catalog ?? emptyCatalog(), {
    from,
    to,
    ...(query.channel !== undefined ? { channel: query.channel } : {}),
    ...(query.placement !== undefined ? { placement: query.placement } : {}),
    ...(query.experiment !== undefined ? { experiment: query.experiment } : {}),
  });
  // The rows are the range's cells: a catalog of many actions, contexts and placements can hold more than one
  // answer carries (Lambda refuses it, a 500). Say so, and how to ask for less.
  const bytes = bodyPayloadBytes(report);
  if (bytes > budgetBytes) {
    const filters = { channel: 'a channel', placement: 'a placement', experiment: 'an experiment' } as const;
    const narrowing = (Object.keys(filters) as (keyof typeof filters)[]).filter((filter) => query[filter] === undefined);
    throw invalid(
      narrowing[0] ?? 'from',
      `the report holds ${report.rows.length} rows (${bytes} bytes), more than one answer holds (${budgetBytes}); ask for less: ${[...narrowing.map((filter) => filters[filter]), 'a shorter range'].join(', ')}`,
    );
  }
  return { status: 200, body: report };
}

const day = z.string('must be a string').check(z.refine((value) => Number.isFinite(dayNumber(value)), 'must be a date such as 2026-11-20'));

/** The journeys report's query string; every parameter optional, no other allowed. */
export const journeysReportQuerySchema = z.strictObject({
  from: z.optional(day),
  to: z.optional(day),
  journey: z.optional(name),
});

/**
 * The journeys report for the request's query string, `now` (epoch ms)
 * giving today: 200 with the report (shared/domain/journeys/report.ts
 * `JourneyReport`).
 * @throws ApiError validation_failed (400) on a parameter it does not take,
 *   a malformed date, from after to, or a range over MAX_REPORT_RANGE_DAYS
 *   days; not_found (404) on a `journey` the live catalog does not have,
 *   naming it and the catalog's journeys; a store fault as the store
 *   reports it (429/503).
 */
export async function journeysReportRoute(request: HttpRequest, now = Date.now()): Promise<HttpResponse> {
  const unknown = Object.keys(request.query).find((parameter) => !Object.hasOwn(journeysReportQuerySchema.shape, parameter));
  if (unknown !== undefined) throw invalid(unknown, `is not a parameter of this route (it takes ${Object.keys(journeysReportQuerySchema.shape).join(', ')})`);
  const parsed = journeysReportQuerySchema.safeParse({ ...request.query });
  if (!parsed.success) throw new ApiError('validation_failed', 'The report request is not valid', issueDetails(parsed.error.issues));
  const query = parsed.data;
  const to = query.to !== undefined ? dayNumber(query.to) : Math.floor(now / DAY_MS);
  const from = query.from !== undefined ? dayNumber(query.from) : to - (DEFAULT_REPORT_RANGE_DAYS - 1);
  if (from > to) throw invalid('from', 'from must not be after to');
  if (to - from + 1 > MAX_REPORT_RANGE_DAYS) throw invalid('from', `the range must be at most ${MAX_REPORT_RANGE_DAYS} days`);

  const [catalog, rows] = await Promise.all([refreshLiveCatalog(), readJourneyCounts({ from, to })]);
  const live = catalog?.journeys ?? [];
  const journeys = live.filter((j) => query.journey === undefined || j.id === query.journey);
  if (query.journey !== undefined && journeys.length === 0) throw unknownId('journey', query.journey, live.map((j) => j.id));
  return { status: 200, body: journeyReport(journeys, rows, from, to) };
}

/** How many of the catalog's ids an unknown journey's or experiment's 404 lists. */
const LISTED_IDS = 20;

/**
 * The 404 of a `journey` or an `experiment` the report does not cover (an
 * empty report would hide a typo): it names the id asked for and the live
 * catalog's ids of that kind (the first 20); `also`, what else was looked in.
 */
function unknownId(kind: 'journey' | 'experiment', id: string, ids: readonly string[], also?: string): ApiError {
  const listed = ids.slice(0, LISTED_IDS).map((j) => JSON.stringify(j));
  const more = ids.length > LISTED_IDS ? ` and ${ids.length - LISTED_IDS} more` : '';
  const where =
    ids.length === 0
      ? `no ${kind} ${JSON.stringify(id)}: the live catalog has no ${kind}s`
      : `no ${kind} ${JSON.stringify(id)} in the live catalog; its ${kind}s: ${listed.join(', ')}${more}`;
  const message = also !== undefined ? `${where}; ${also}` : where;
  return new ApiError('not_found', `The report request names ${message}`, [{ path: kind, message }]);
}

export const reportRoutes = {
  'GET /v1/admin/reports/actions': (request: HttpRequest) => actionsReportRoute(request),
  'GET /v1/admin/reports/journeys': (request: HttpRequest) => journeysReportRoute(request),
} as const;
