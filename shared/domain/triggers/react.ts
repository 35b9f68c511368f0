/**
 * Triggers (catalog `triggers:`, docs/catalog.md): when an applied event
 * sets one off, decide for its channel (and placement) with the one decide
 * core — consent, suppression, quiet hours, channel and frequency caps,
 * eligibility, arbitration, rendering — and write what to emit to the
 * outbox. Pure: the profile function's plan calls it (a ProfileReactor,
 * shared/domain/profile/reactions.ts) between the view just before and
 * just after each event, and the entries go in the profile's own
 * transaction, so each real occurrence is emitted exactly once.
 *
 * `triggersFiring`: the triggers an applied change sets off, in catalog
 * order. A cause:
 * - `event`: the event's name (a track event's `event`, else its type),
 *   compared as the profile reads names (`Complaint Opened`,
 *   `complaint_opened` and `complaint opened` are one event);
 * - `entered` / `left`: the segment is in the view after and not before,
 *   or the other way round;
 * - `persona`: the persona differs, and is the trigger's (any, for `*`);
 * - `score`: upwards, below the threshold before (or no score) and at least
 *   it after; downwards, at least it before and below it after.
 * Then its `when` (CEL) must hold on the view after, with `context` the
 * event (`eventContext`); a rule that fails at run time is "no match".
 *
 * `fireTrigger`: the entry of one firing. decide runs at the batch instant
 * with `limit` 1 and `explain` (its policy facts say why nothing was
 * served):
 * - an action: `now`, with its rendered content and the sealed decision id;
 * - nothing, while quiet hours hold on the channel: decided again at their
 *   end (policies.ts `quietHoursEnd`, in the customer's zone) — an action
 *   then is `deferred` to that instant; nothing then is refused for what
 *   holds then;
 * - nothing: `refused`, with the first decision-wide policy that held it
 *   (consent, quiet hours, channel cap, suppression), else
 *   `no_eligible_action`. Refused entries are kept (and counted), never
 *   published.
 * The decision's nonce is a hash of the emission id: the same firing
 * decides the same way when its batch is planned again.
 *
 * A `now` or `deferred` entry carries its `contact` (channel, action, the
 * decision, its send time): the plan counts it on the profile at once, so
 * the caps of every later decision see it (profile/apply.ts `recordSend`);
 * the triggers one event sets off decide in turn, each seeing the sends
 * before it (`fireInTurn`).
 */
import type { CompiledCatalog, CompiledTrigger, TriggerCause } from '../catalog/compiled.ts';
import { createFailureTally, createRuleVariables, evaluateRule } from '../catalog/rules.ts';
import { customerKey, decide } from '../decide/decide.ts';
import { readDecisionId, sealDecisionId, type DecisionKey } from '../decide/decision-id.ts';
import { decisionOfRecord } from '../profile/outcomes.ts';
import { customerZone, quietHoursEnd } from '../decide/policies.ts';
import { hash32 } from '../decide/random.ts';
import type { Decision } from '../decide/types.ts';
import { semanticName } from '../profile/apply.ts';
import type { AppliedChange, OutboxEntry, ProfileReactor, SendContact } from '../profile/reactions.ts';
import type { ProfileView } from '../profile/view.ts';
import { viewWithContact } from '../profile/to-view.ts';
import type { StoredEvent } from '../stored-event.ts';
import { DETAIL_TYPES, emissionId, type DecidedSendDetail, type RefusalReason, type TriggerEmissionDetail } from './emission.ts';
import type { Channel } from '../channels.ts';

/** The name an `event` trigger matches: a track event's name, else the message type (`identify`, `page`…). */
export const eventNameOf = (event: StoredEvent): string => (event.type === 'track' ? (event.event ?? 'track') : event.type);

/**
 * The `context` a trigger's rule and decision see: the event. Its
 * `timezone` (the device's, from the event's context) places quiet hours.
 */
export function eventContext(event: StoredEvent): Record<string, unknown> {
  const timezone = event.context?.timezone;
  return {
    event: eventNameOf(event),
    type: event.type,
    messageId: event.messageId,
    timestamp: event.timestamp,
    properties: event.properties ?? {},
    traits: event.traits ?? {},
    ...(typeof timezone === 'string' ? { timezone } : {}),
  };
}

/** Whether `change` is an occurrence of the cause `on` (a trigger's, or a journey's entry): see the module's docstring. */
export function caused(on: TriggerCause, change: Pick<AppliedChange, 'event' | 'before' | 'after'>): boolean {
  const { before, after } = change;
  switch (on.kind) {
    case 'event':
      return semanticName(eventNameOf(change.event)) === semanticName(on.event);
    case 'entered':
      return !before.segments.includes(on.segment) && after.segments.includes(on.segment);
    case 'left':
      return before.segments.includes(on.segment) && !after.segments.includes(on.segment);
    case 'persona':
      return before.persona !== after.persona && (on.persona === '*' || after.persona === on.persona);
    case 'score': {
      const was = before.scores[on.model];
      const is = after.scores[on.model];
      const atLeast = (score: number | undefined) => typeof score === 'number' && score >= on.threshold;
      return on.direction === 'above' ? !atLeast(was) && atLeast(is) : atLeast(was) && typeof is === 'number' && !atLeast(is);
    }
  }
}

/** The triggers this change sets off, in catalog order. */
export function triggersFiring(catalog: CompiledCatalog, change: Pick<AppliedChange, 'event' | 'before' | 'after' | 'now'>): CompiledTrigger[] {
  const out: CompiledTrigger[] = [];
  let context: Record<string, unknown> | undefined;
  for (const trigger of catalog.triggers) {
    if (!caused(trigger.on, change)) continue;
    if (trigger.when) {
      context ??= eventContext(change.event);
      const vars = createRuleVariables({
        profile: change.after,
        context,
        channel: trigger.channel,
        ...(trigger.placement !== undefined ? { placement: trigger.placement } : {}),
        now: new Date(change.now),
        catalog,
      });
      if (!evaluateRule(trigger.when, vars)) continue;
    }
    out.push(trigger);
  }
  return out;
}

/** The most entries one event can set off: the `event` triggers of its name and every transition trigger. */
export function triggerBound(catalog: CompiledCatalog, event: StoredEvent): number {
  let n = 0;
  const name = semanticName(eventNameOf(event));
  for (const trigger of catalog.triggers) if (trigger.on.kind !== 'event' || semanticName(trigger.on.event) === name) n++;
  return n;
}

const REFUSALS: readonly RefusalReason[] = ['consent', 'quiet_hours', 'channel_cap', 'suppressed'];

/** Why nothing was served: the first decision-wide policy fact of the explanation, with its detail. */
function refusalOf(decision: Decision): { readonly reason: RefusalReason; readonly by?: string } {
  for (const reason of REFUSALS) {
    const fact = decision.explanation?.policies.find((p) => p.startsWith(`${reason}:`));
    if (fact !== undefined) return { reason, by: fact.slice(reason.length + 1).split(' ')[0] as string };
  }
  return { reason: 'no_eligible_action' };
}

export interface FireOptions {
  /** Seals the decision id as decide's answers are (outcomes reported with it are then attributed); absent: the plain id. */
  readonly decisionKey?: DecisionKey;
}

/** Where a decided emission goes: a channel and, for web and app, a placement. */
export interface EmissionSlot {
  readonly channel: Channel;
  readonly placement?: string;
}

/** A decided send: its outbox status, when it is to be sent (epoch ms), its detail's common part, and the contact it makes (none when refused). */
export interface DecidedSend {
  readonly status: OutboxEntry['status'];
  readonly sendAt: number;
  readonly detail: DecidedSendDetail;
  readonly contact?: SendContact;
}

/** The contact a decision that served `actionId` on `channel` makes (its issue second, its decision). */
function contactOf(decision: Decision, channel: Channel, actionId: string): SendContact | undefined {
  const record = readDecisionId(decision.decisionId, undefined);
  if (!record) return undefined;
  return { channel, actionId, decision: decisionOfRecord(record), at: Date.parse(record.issuedAt) };
}

/**
 * Decide for `slot` on the view after `change`, as a firing does (see the
 * module's docstring: `now`, `deferred` past quiet hours, or `refused`);
 * `id`, the emission's stable id, seeds the decision's nonce.
 */
export function decideSend(catalog: CompiledCatalog, slot: EmissionSlot, change: AppliedChange, id: string, options: FireOptions = {}): DecidedSend {
  const profile: ProfileView = change.after;
  const context = eventContext(change.event);
  const request = {
    ...(profile.userId !== undefined ? { userId: profile.userId } : {}),
    ...(profile.anonymousId !== undefined ? { anonymousId: profile.anonymousId } : {}),
    channel: slot.channel,
    ...(slot.placement !== undefined ? { placement: slot.placement } : {}),
    limit: 1,
    context,
    explain: true,
  };
  const nonce = hash32(id).toString(36);
  const decideAt = (at: number) => decide(catalog, profile, request, new Date(at), { nonce, failures: createFailureTally() });
  let sendAt = change.now;
  let decision = decideAt(sendAt);
  let status: OutboxEntry['status'] = 'now';
  if (decision.actions.length === 0 && refusalOf(decision).reason === 'quiet_hours') {
    const end = quietHoursEnd(catalog, slot.channel, new Date(change.now), customerZone(profile, context));
    if (end) {
      sendAt = end.getTime();
      decision = decideAt(sendAt);
      status = 'deferred';
    }
  }
  const action = decision.actions[0];
  const refusal = action ? undefined : refusalOf(decision);
  const detail: DecidedSendDetail = {
    customerKey: customerKey(profile, request),
    ...(profile.userId !== undefined ? { userId: profile.userId } : {}),
    ...(profile.userId === undefined && profile.anonymousId !== undefined ? { anonymousId: profile.anonymousId } : {}),
    channel: slot.channel,
    ...(slot.placement !== undefined ? { placement: slot.placement } : {}),
    decidedAt: new Date(change.now).toISOString(),
    sendAt: new Date(sendAt).toISOString(),
    ...(action
      ? {
          decisionId: options.decisionKey ? sealDecisionId(decision.decisionId, options.decisionKey) : decision.decisionId,
          actionId: action.actionId,
          ...(action.variant !== undefined ? { variant: action.variant } : {}),
          content: action.content,
        }
      : { refused: refusal?.reason, ...(refusal?.by !== undefined ? { refusedBy: refusal.by } : {}) }),
  };
  const contact = action ? contactOf(decision, slot.channel, action.actionId) : undefined;
  return { status: action ? status : 'refused', sendAt, detail, ...(contact ? { contact } : {}) };
}

/** The outbox entry of one firing of `trigger` by `change` (see the module's docstring). */
export function fireTrigger(catalog: CompiledCatalog, trigger: CompiledTrigger, change: AppliedChange, options: FireOptions = {}): OutboxEntry {
  const id = emissionId(trigger.id, change.eventPk);
  const send = decideSend(catalog, trigger, change, id, options);
  const detail: TriggerEmissionDetail = { emissionId: id, kind: 'trigger', trigger: trigger.id, cause: trigger.on, eventId: change.event.messageId, ...send.detail };
  return {
    id,
    status: send.status,
    sendAt: send.sendAt,
    detailType: DETAIL_TYPES.trigger,
    detail: detail as unknown as Record<string, unknown>,
    ...(send.contact ? { contact: send.contact } : {}),
  };
}

/**
 * `fire` each of `items` in turn on `change`, each seeing the contacts of
 * the sends before it (to-view.ts `viewWithContact`): two sends set off by
 * one event pass a cap of one no more than two set off by two events.
 */
export function fireInTurn<T>(items: readonly T[], change: AppliedChange, fire: (item: T, change: AppliedChange) => OutboxEntry): OutboxEntry[] {
  let seen = change;
  return items.map((item) => {
    const entry = fire(item, seen);
    if (entry.contact) seen = { ...seen, after: viewWithContact(seen.after, entry.contact) };
    return entry;
  });
}

/**
 * The profile plan's reactor for the catalog's triggers, read through
 * `current` (the live catalog) on each call; no catalog, or none with
 * triggers: nothing reacts.
 */
export function createTriggerReactor(current: () => CompiledCatalog | undefined, options: FireOptions = {}): ProfileReactor {
  return {
    bound: (event) => {
      const catalog = current();
      return catalog && catalog.triggers.length > 0 ? triggerBound(catalog, event) : 0;
    },
    react: (change) => {
      const catalog = current();
      if (!catalog || catalog.triggers.length === 0) return [];
      return fireInTurn(triggersFiring(catalog, change), change, (trigger, seen) => fireTrigger(catalog, trigger, seen, options));
    },
  };
}
