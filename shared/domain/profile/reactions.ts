/**
 * What an applied event sets off (triggers, journeys): the reaction hook of
 * the batch plan (plan.ts), and the outbox entries it returns.
 *
 * For every event a write applies, the plan calls the reactor once with the
 * customer's view just before and just after that event (segments, persona
 * and scores evaluated by the plan's enricher at the batch instant, so a
 * difference is the event's doing, not the clock's or a catalog change's).
 * The entries it returns are written to the outbox in the SAME conditional
 * transaction as the profile and the event's "applied" marker (a
 * transactional outbox): a redelivered event whose marker exists is a
 * duplicate and reacts no more, a write that loses a race is planned anew
 * and its entries with it, so each entry is written exactly once. An entry's
 * id must be a function of the event and what reacted (e.g. trigger id +
 * event key): the store's put is also conditioned on its absence.
 *
 * The reactor is pure like the plan (no I/O; the profile function passes one
 * built from the live catalog, shared/domain/triggers/react.ts).
 */
import type { Channel } from '../channels.ts';
import type { StoredEvent } from '../stored-event.ts';
import type { JourneyCount, JourneyRuns } from '../journeys/machine.ts';
import type { ProfileView } from './view.ts';

/** One applied event and the view around it. */
export interface AppliedChange {
  /** The event's key (`<sourceId>#<messageId>`): with what reacted, a stable id. */
  readonly eventPk: string;
  readonly event: StoredEvent;
  /** The profile key the event was applied to (`u#…`, `a#…`). */
  readonly profileKey: string;
  /** Just before the event, enriched at `now`. */
  readonly before: ProfileView;
  /** Just after the event (and the merges it caused), enriched at `now`. */
  readonly after: ProfileView;
  /** The batch instant, epoch ms. */
  readonly now: number;
}

/**
 * An item of the outbox: something to publish on the bus (or kept refused,
 * for the record). Stored in the Outbox table (shared/store/outbox.ts); its
 * stream feeds the dispatcher (functions/dispatcher/handler.ts).
 */
export interface OutboxEntry {
  /** Stable id (at most 200 characters): the dedupe key of every consumer; the same occurrence always gets the same id. */
  readonly id: string;
  /**
   * `now`: publish at once; `deferred`: a timer due at `sendAt` (a
   * journey's wait, or a send that fell in quiet hours, decided then:
   * journeys/timer.ts), written to the Events table when due, never
   * published; `refused`: never published, kept and counted (consent,
   * caps, suppression, nothing eligible).
   */
  readonly status: 'now' | 'deferred' | 'refused';
  /** When it is (or was to be) published, epoch ms. */
  readonly sendAt: number;
  /** The bus event's `detail-type` (one per kind of emission). */
  readonly detailType: string;
  /** The bus event's `detail`: JSON. */
  readonly detail: Readonly<Record<string, unknown>>;
  /**
   * A `now` send: the contact it is for the customer, which the plan
   * records on the profile in the same write (caps count it at once). Not
   * stored in the outbox.
   */
  readonly contact?: SendContact;
}

/**
 * The contact a decided send makes: counted on the profile's channel and
 * action contact times (the basis of channel and frequency caps) when it is
 * decided, at `at`: the instant it is sent (a send deferred by quiet hours
 * is decided, and counted, only when they end).
 */
export interface SendContact {
  readonly channel: Channel;
  readonly actionId: string;
  /** The decision, `<issued s>.<nonce>` (outcomes.ts `decisionOfOutcome`): the impression reported for it counts no second contact. */
  readonly decision: string;
  /** Epoch ms, the decision's issue second (the time an impression of it is recorded at). */
  readonly at: number;
}

export interface ProfileReactor {
  /**
   * The most outbox entries one applied event of this kind can add (its
   * room in the transaction): the plan keeps every write within DynamoDB's
   * 100 items with it, and drops (with a warning) what a reaction returns
   * beyond it. 0: this event never reacts, and costs nothing.
   */
  bound(event: StoredEvent): number;
  /** The entries this change sets off; [] for none. Must not throw for a customer's data (a throw drops its reactions, with a warning). */
  react(change: AppliedChange): readonly OutboxEntry[];
}

/**
 * The customer's journeys (shared/domain/journeys/react.ts): unlike a
 * reactor, a state machine the plan folds over the write's applied events
 * in order, from the runs stored on the profile; the runs it ends with are
 * stored with the profile, and its entries and report counts go in the same
 * transaction.
 */
export interface JourneyStepper {
  /** The most items (outbox entries and report counters) one applied event can add; 0: it moves no journey. */
  bound(event: StoredEvent): number;
  /** The runs after `change`, and what it writes; must not throw for a customer's data (a throw leaves the runs as they were, with a warning, but for the run a wait's timer would have moved on: it exits, plan.ts). */
  step(runs: JourneyRuns, change: AppliedChange): { readonly runs: JourneyRuns; readonly outbox: readonly OutboxEntry[]; readonly counts: readonly JourneyCount[] };
}
