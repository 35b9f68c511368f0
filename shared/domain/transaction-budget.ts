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
 */
import { MAX_JOURNEY_ITEMS_PER_EVENT } from './catalog/compile-journeys.ts';

/** The most items DynamoDB takes in one TransactWriteItems. */
export const MAX_TRANSACTION_ITEMS = 100;

/** The most outbox entries one event's triggers add to its write (the rest of the transaction's room is its profile's). */
export const MAX_REACTIONS_PER_EVENT = 20;

/** The items of an event's write that the catalog does not decide: profile, marker, two tombstones, the outcome's action cell. */
const FIXED_ITEMS_PER_EVENT = 5;

/**
 * The most experiments with a holdout (`holdout` above 0) a catalog may
 * hold: a decision is held out of at most that many, so an outcome naming
 * it counts at most that many control cells, within the write's room beside
 * everything else the catalog lets one event set off. A catalog over it is
 * refused at publish (400).
 */
export const MAX_HOLDOUT_EXPERIMENTS = MAX_TRANSACTION_ITEMS - FIXED_ITEMS_PER_EVENT - MAX_REACTIONS_PER_EVENT - (MAX_JOURNEY_ITEMS_PER_EVENT + 1);
