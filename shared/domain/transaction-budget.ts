/**
 * What one event's write may hold: the profile function commits an event
 * with its profile, its applied marker, its tombstones, what it sets off and
 * the outcome statistics it adds in ONE DynamoDB transaction (exactly once:
 * the marker commits with the profile), and DynamoDB takes at most
 * MAX_TRANSACTION_ITEMS items in one. The catalog is held to the parts it
 * decides, at publish (catalog/compile.ts, compile-journeys.ts), so that the
 * sum always fits:
 *
 *   1 profile + 1 marker + 2 tombstones (an alias's anonymousId and previousId)
 *   + MAX_REACTIONS_PER_EVENT (triggers' sends)
 *   + MAX_JOURNEY_ITEMS_PER_EVENT + 1 (journeys; a timer of a journey gone from the catalog ends its run)
 *   + 1 (the outcome's action cell) + MAX_HOLDOUT_EXPERIMENTS (its control cells, one per experiment the decision held out of)
 *   = MAX_TRANSACTION_ITEMS.
 *
 * What the catalog cannot bound is held by the profile plan beside it
 * (plan.ts `entryCost`, a write of several events cut to fit): a merge's
 * take-back of outcome statistics (`fitStatistics`), and the journey runs a
 * write ends that are not its events' doing, one `exited` counter each — an
 * erased customer's runs in progress ended with the item replaced, and the
 * runs in progress of an anonymous profile that its merge drops (the
 * customer has a run of the same journey on the profile it joins:
 * journeys/machine.ts `joinRuns`). Runs add up over catalog versions (a run
 * of a journey gone from the catalog stays in progress until its timer
 * fires), so there may be more of them than a transaction holds: past the
 * write's room they are ended by writes of their own before it, 99 at a
 * time (profile/erasure.ts `nextRunEnding`), and the event's write holds
 * the parts above alone.
 *
 * DynamoDB also takes at most MAX_TRANSACTION_BYTES in one transaction. The
 * catalog cannot bound that at publish (a send's content is rendered for
 * the customer, up to 100 KB, and one event may set off dozens of sends),
 * so the profile plan holds what one event's reactions write to
 * MAX_REACTION_BYTES_PER_EVENT (plan.ts): beside a profile item of at most
 * MAX_ITEM_BYTES and ITEM_OVERHEAD_BYTES for each other item, the event's
 * write alone always fits.
 */
import { MAX_JOURNEY_ITEMS_PER_EVENT } from './catalog/compile-journeys.ts';
import { utf8Length } from './ingest/limits.ts';

/** The most items DynamoDB takes in one TransactWriteItems. */
export const MAX_TRANSACTION_ITEMS = 100;

/** The most outbox entries one event's triggers add to its write (the rest of the transaction's room is its profile's). */
export const MAX_REACTIONS_PER_EVENT = 20;

/** The items of an event's write that the catalog does not decide: profile, marker, two tombstones, the outcome's action cell. */
const FIXED_ITEMS_PER_EVENT = 5;

/**
 * The most experiments that can hold customers out (`holdout` above 0,
 * running, not ended) a catalog may hold at the instant it is published
 * (catalog/compile.ts `liveHoldoutExperiments`; ended and paused ones do not
 * count, however many): a decision is held out of at most that many, so an
 * outcome naming it counts at most that many control cells, within the
 * write's room beside everything else the catalog lets one event set off.
 * A catalog over it is refused at publish (400).
 */
export const MAX_HOLDOUT_EXPERIMENTS = MAX_TRANSACTION_ITEMS - FIXED_ITEMS_PER_EVENT - MAX_REACTIONS_PER_EVENT - (MAX_JOURNEY_ITEMS_PER_EVENT + 1);

/** The most bytes DynamoDB takes in one TransactWriteItems (its items' sizes together): 4 MB. */
export const MAX_TRANSACTION_BYTES = 4 * 1024 * 1024;

/** The most bytes DynamoDB stores in one item (a profile item, its state included): 400 KB. */
export const MAX_ITEM_BYTES = 400 * 1024;

/**
 * What each item of an event's write takes beside its bulk (the profile's
 * state, an outbox entry's `detail`), at most: keys and ids (up to about
 * 1 KB each), numbers, flags.
 */
export const ITEM_OVERHEAD_BYTES = 2 * 1024;

/**
 * The most bytes the outbox entries one event sets off (its triggers' and
 * journeys' sends and timers) may write, as `storedBytes` counts their
 * `detail`s (a send's is its rendered content, up to 100 KB, and its ids):
 * what MAX_TRANSACTION_BYTES leaves beside a profile item of MAX_ITEM_BYTES
 * and ITEM_OVERHEAD_BYTES for each of the transaction's other items
 * (3,581,952 bytes: 35 sends of 100 KB). The plan writes what fits and
 * leaves out the rest with a warning (plan.ts `reactions`).
 */
export const MAX_REACTION_BYTES_PER_EVENT = MAX_TRANSACTION_BYTES - MAX_ITEM_BYTES - (MAX_TRANSACTION_ITEMS - 1) * ITEM_OVERHEAD_BYTES;

/**
 * The bytes DynamoDB counts for a value stored as an attribute (a JSON-like
 * value: string, number, boolean, null, list, map), at most: a string's
 * UTF-8 length, 21 for a number, 1 for a boolean or null, and for a list or
 * a map 3 plus 1 per element and each element's (a map's with its name's
 * UTF-8 length); undefined members are not stored. Iterative, so any depth
 * is counted without recursion.
 */
export function storedBytes(value: unknown): number {
  let bytes = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const next = pending.pop();
    if (typeof next === 'string') bytes += utf8Length(next);
    else if (typeof next === 'number' || typeof next === 'bigint') bytes += 21;
    else if (next === null || typeof next === 'boolean') bytes += 1;
    else if (Array.isArray(next)) {
      bytes += 3 + next.length;
      for (const member of next) pending.push(member);
    } else if (typeof next === 'object') {
      bytes += 3;
      for (const [name, member] of Object.entries(next)) {
        if (member === undefined) continue;
        bytes += 1 + utf8Length(name);
        pending.push(member);
      }
    }
  }
  return bytes;
}
