/**
 * What Kairos emits on the bus, and how it is named (docs/triggers.md):
 * the `source` and `detail-type` of each kind of emission, the stable
 * emission id consumers dedupe on, and the detail of a trigger's action.
 *
 * Deployed, each `now` outbox entry becomes one EventBridge event
 * (`source` EMISSION_SOURCE, `detail-type` the entry's, `detail` the
 * entry's); a `deferred` one becomes an EventBridge Scheduler one-time
 * schedule that puts the same event on the bus at `sendAt`. Delivery is at
 * least once: consumers dedupe on `detail.emissionId`.
 */
import type { Channel } from '../channels.ts';
import type { TriggerCause } from '../catalog/compiled.ts';

/** The `source` of every Kairos event on the bus. */
export const EMISSION_SOURCE = 'kairos';

/** `detail-type` per kind of emission: a rule routes on it (and on `detail.channel`). */
export const DETAIL_TYPES = {
  /** A trigger's decided action (shared/domain/triggers/react.ts). */
  trigger: 'Kairos Trigger Action',
} as const;

/** Why a send was not emitted (consent, caps, suppression, nothing eligible…). */
export type RefusalReason = 'consent' | 'quiet_hours' | 'channel_cap' | 'suppressed' | 'no_eligible_action';

/**
 * The stable id of what `source` (a trigger, a journey step) set off for
 * the event `eventPk`: the same occurrence always gets the same id, two
 * different ones never do.
 */
export const emissionId = (source: string, eventPk: string): string => `${source}.${eventPk}`;

/** The `detail` of a trigger's emission: JSON, as the bus carries it. */
export interface TriggerEmissionDetail {
  readonly emissionId: string;
  readonly kind: 'trigger';
  readonly trigger: string;
  /** What set it off. */
  readonly cause: TriggerCause;
  /** The `messageId` of the event that set it off. */
  readonly eventId: string;
  /** The customer: the key experiments and learning use (decide.ts `customerKey`), and its ids. */
  readonly customerKey: string;
  readonly userId?: string;
  readonly anonymousId?: string;
  readonly channel: Channel;
  readonly placement?: string;
  /** When it was decided, and when it is to be sent (ISO-8601). */
  readonly decidedAt: string;
  readonly sendAt: string;
  /** A send: the decision (sealed like decide's, so outcomes reported with it are attributed) and its rendered action. */
  readonly decisionId?: string;
  readonly actionId?: string;
  readonly variant?: string;
  readonly content?: Readonly<Record<string, string | string[]>>;
  /** A refusal: why, and what held it (the policy's id or channel). */
  readonly refused?: RefusalReason;
  readonly refusedBy?: string;
}
