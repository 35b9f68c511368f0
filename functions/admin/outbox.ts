/**
 * GET /v1/admin/outbox (API.md §5): what the triggers set off, as the
 * Outbox table keeps it (shared/store/outbox.ts) for OUTBOX_RETENTION_DAYS
 * after each send time: each emission's id, `status` (`now`: published at
 * once; `deferred`: a timer scheduled for `sendAt` — a send that fell in
 * quiet hours, decided then and listed again under its own id, `now` or
 * `refused`; a journey's wait;
 * `refused`: a policy held it — consent, caps, suppression — never
 * published), `sendAt`, `createdAt` (ISO-8601), `detailType` and `detail`
 * (what the bus carries: decision id, customer, channel, rendered content,
 * or why it was refused). The same route on the local stack and deployed;
 * locally the bus's own record is `<dataDir>/outbox.jsonl`.
 *
 * Query (all optional): `limit` 1..1000 (default 100) items read,
 * `cursor` (the `next` of the page before), `status` (keep only that one).
 * A page's entries are newest `sendAt` first; pages follow the table's
 * order, not time. A page holds fewer than `limit` when its emissions would
 * not fit in one answer (shared/http/response-size.ts).
 */
import { ApiError } from '#http/errors.ts';
import { decodeKeyCursor, encodeKeyCursor } from '#http/key-cursor.ts';
import type { HttpRequest, HttpResponse } from '#http/handler-adapter.ts';
import { listOutbox } from '#store/outbox.ts';
import { RESPONSE_BODY_BUDGET_BYTES, bodyPayloadBytes } from '#http/response-size.ts';
import type { OutboxEntry } from '#domain/profile/reactions.ts';

const PARAMETERS = ['limit', 'cursor', 'status'] as const;
const STATUSES = ['now', 'deferred', 'refused'] as const;

const invalid = (path: string, message: string) => new ApiError('validation_failed', 'The outbox request is not valid', [{ path, message }]);

/**
 * @throws ApiError validation_failed (400) on an unknown parameter or a
 *   malformed value; a store fault as the store reports it (429/503).
 */
export async function listOutboxRoute(request: HttpRequest): Promise<HttpResponse> {
  const unknown = Object.keys(request.query).find((p) => !(PARAMETERS as readonly string[]).includes(p));
  if (unknown !== undefined) throw invalid(unknown, `is not a parameter of this route (it takes ${PARAMETERS.join(', ')})`);
  const { limit: rawLimit, cursor, status } = request.query;
  const limit = rawLimit === undefined ? 100 : /^\d{1,4}$/.test(rawLimit) ? Number(rawLimit) : Number.NaN;
  if (!(limit >= 1 && limit <= 1_000)) throw invalid('limit', 'must be an integer from 1 to 1000');
  if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) throw invalid('status', `must be one of ${STATUSES.join(', ')}`);
  let start: string | undefined;
  if (cursor !== undefined) {
    start = decodeKeyCursor(cursor);
    if (!start.startsWith('o#')) throw invalid('cursor', 'is not the `next` of a page of this listing');
  }
  // A page holds what fits in one answer (emissions carry rendered content): the rest is the next page's.
  const kept = (e: OutboxEntry) => status === undefined || e.status === status;
  const budget = {
    weigh: (e: OutboxEntry & { readonly createdAt: number }) => (kept(e) ? bodyPayloadBytes(emission(e)) : 0),
    maxWeight: RESPONSE_BODY_BUDGET_BYTES - bodyPayloadBytes({ emissions: [], next: 'x'.repeat(4_096) }),
  };
  const page = await listOutbox({ limit, budget, ...(start !== undefined ? { cursor: start } : {}) });
  return {
    status: 200,
    body: {
      emissions: page.entries.filter(kept).map(emission),
      ...(page.cursor !== undefined ? { next: encodeKeyCursor(page.cursor) } : {}),
    },
  };
}

/** An emission as the route shows it. */
const emission = (e: OutboxEntry & { readonly createdAt: number }) => ({
  id: e.id,
  status: e.status,
  sendAt: new Date(e.sendAt).toISOString(),
  createdAt: new Date(e.createdAt).toISOString(),
  detailType: e.detailType,
  detail: e.detail,
});
