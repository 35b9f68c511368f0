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
 * - nothing, while quiet hours hold on the channel: the send is NOT decided
 *   now. Its timer (`Kairos Send Timer`, emission.ts SendTimerDetail) is
 *   written `deferred` to the end of quiet hours (policies.ts
 *   `quietHoursEnd`, in the customer's zone), with no content, no decision
 *   and no contact. Due, it comes back as a `Send Timer` event
 *   (journeys/timer.ts) and `decideDueSend` decides the send then, on the
 *   profile as it is then (consent, suppression, segments, caps, quiet
 *   hours again — still quiet is a refusal, never a second deferral), for
 *   the trigger as the catalog has it then (its channel and placement now,
 *   not those it was deferred on: `dueSendSlot`), with the firing's context
 *   and the same emission id: `now` or `refused`. The trigger's `when` was
 *   judged at the firing and is not judged again; a trigger no longer in
 *   the catalog (or disabled) sends nothing;
 * - nothing: `refused`, with the first decision-wide policy that held it
 *   (consent, quiet hours, channel cap, suppression), else
 *   `no_eligible_action`. Refused entries are kept (and counted), never
 *   published.
 * The decision's nonce is a hash of the emission id: the same firing
 * decides the same way when its batch is planned again.
 *
 * A `now` entry carries its `contact` (channel, action, the decision, its
 * send time): the plan counts it on the profile at once, so the caps of
 * every later decision see it (profile/apply.ts `recordSend`); the
 * triggers one event sets off decide in turn, each seeing the sends before
 * it (`fireInTurn`). A send waiting for quiet hours to end is no contact
 * until it is decided.
 */
import type { CompiledCatalog, CompiledTrigger, TriggerCause } from '../catalog/compiled.ts';
import { createFailureTally, createRuleVariables, evaluateRule } from '../catalog/rules.ts';
import { customerKey, decide } from '../decide/decide.ts';
import { readDecisionId, sealDecisionId, type DecisionKey } from '../decide/decision-id.ts';
import { decisionOfRecord } from '../profile/outcomes.ts';
import { customerZone, quietHoursEnd } from '../decide/policies.ts';
import { hash32 } from '../decide/random.ts';
import type { Decision } from '../decide/types.ts';
import { semanticName } from '../semantic-events.ts';
import type { AppliedChange, OutboxEntry, ProfileReactor, SendContact } from '../profile/reactions.ts';
import type { ProfileView } from '../profile/view.ts';
import { viewWithContact } from '../profile/to-view.ts';
import type { StoredEvent } from '../stored-event.ts';
import {
  DETAIL_TYPES,
  emissionId,
  sendTimerId,
  type DecidedSendDetail,
  type JourneyEmissionDetail,
  type RefusalReason,
  type SendTimerDetail,
  type TriggerEmissionDetail,
} from './emission.ts';
import { sendTimerOf, type SendOrigin, type SendTimerRef } from '../journeys/timer.ts';
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

/** A decided send: its outbox status (`now` or `refused`), when it is to be sent (epoch ms), its detail's common part, and the contact it makes (none when refused). */
export interface DecidedSend {
  readonly status: 'now' | 'refused';
  readonly sendAt: number;
  readonly detail: DecidedSendDetail;
  readonly contact?: SendContact;
}

/** A send that quiet hours hold now: to be decided at `dueAt` (epoch ms), their end. */
export interface DeferredSend {
  readonly status: 'deferred';
  readonly dueAt: number;
}

/** The contact a decision that served `actionId` on `channel` makes (its issue second, its decision). */
function contactOf(decision: Decision, channel: Channel, actionId: string): SendContact | undefined {
  const record = readDecisionId(decision.decisionId, undefined);
  if (!record) return undefined;
  return { channel, actionId, decision: decisionOfRecord(record), at: Date.parse(record.issuedAt) };
}

/** What a send is decided with: the customer's view, the decision context, the instant (epoch ms), and the emission's stable id (the decision's nonce). */
interface SendRequest {
  readonly slot: EmissionSlot;
  readonly profile: ProfileView;
  readonly context: Readonly<Record<string, unknown>>;
  readonly now: number;
  readonly id: string;
}

/**
 * Decide `request` (see the module's docstring): `now` or `refused`; when
 * `defer` and nothing is served because quiet hours hold on the channel,
 * deferred to their end instead.
 */
function decideSendAt(catalog: CompiledCatalog, send: SendRequest, defer: true, options: FireOptions): DecidedSend | DeferredSend;
function decideSendAt(catalog: CompiledCatalog, send: SendRequest, defer: false, options: FireOptions): DecidedSend;
function decideSendAt(catalog: CompiledCatalog, send: SendRequest, defer: boolean, options: FireOptions): DecidedSend | DeferredSend {
  const { slot, profile, context } = send;
  const request = {
    ...(profile.userId !== undefined ? { userId: profile.userId } : {}),
    ...(profile.anonymousId !== undefined ? { anonymousId: profile.anonymousId } : {}),
    channel: slot.channel,
    ...(slot.placement !== undefined ? { placement: slot.placement } : {}),
    limit: 1,
    context: { ...context },
    explain: true,
  };
  const decision = decide(catalog, profile, request, new Date(send.now), { nonce: hash32(send.id).toString(36), failures: createFailureTally() });
  const action = decision.actions[0];
  const refusal = action ? undefined : refusalOf(decision);
  if (defer && refusal?.reason === 'quiet_hours') {
    const end = quietHoursEnd(catalog, slot.channel, new Date(send.now), customerZone(profile, context));
    if (end) return { status: 'deferred', dueAt: end.getTime() };
  }
  const at = new Date(send.now).toISOString();
  const detail: DecidedSendDetail = {
    customerKey: customerKey(profile, request),
    ...(profile.userId !== undefined ? { userId: profile.userId } : {}),
    ...(profile.userId === undefined && profile.anonymousId !== undefined ? { anonymousId: profile.anonymousId } : {}),
    channel: slot.channel,
    ...(slot.placement !== undefined ? { placement: slot.placement } : {}),
    decidedAt: at,
    sendAt: at,
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
  return { status: action ? 'now' : 'refused', sendAt: send.now, detail, ...(contact ? { contact } : {}) };
}

/** The outbox entry of a decided send `id` that `origin` set off (detail type `Kairos Trigger Action` or `Kairos Journey Action`). */
function emissionEntry(id: string, origin: SendOrigin, send: DecidedSend): OutboxEntry {
  const detail: TriggerEmissionDetail | JourneyEmissionDetail = { emissionId: id, ...origin, ...send.detail };
  return {
    id,
    status: send.status,
    sendAt: send.sendAt,
    detailType: origin.kind === 'trigger' ? DETAIL_TYPES.trigger : DETAIL_TYPES.journey,
    detail: detail as unknown as Record<string, unknown>,
    ...(send.contact ? { contact: send.contact } : {}),
  };
}

/**
 * The outbox entry of a send `id` that `origin` sets off on `slot` for
 * `change` (a trigger's firing, a journey's `act` step): decided on the
 * view after `change` (`now` or `refused`), or, while quiet hours hold on
 * the channel, its timer `deferred` to their end (see the module's
 * docstring); `id` seeds the decision's nonce.
 */
export function sendEntry(catalog: CompiledCatalog, slot: EmissionSlot, origin: SendOrigin, id: string, change: AppliedChange, options: FireOptions = {}): OutboxEntry {
  const context = eventContext(change.event);
  const send = decideSendAt(catalog, { slot, profile: change.after, context, now: change.now, id }, true, options);
  if (send.status !== 'deferred') return emissionEntry(id, origin, send);
  const detail: SendTimerDetail = {
    emissionId: sendTimerId(id),
    kind: 'send-timer',
    send: id,
    channel: slot.channel,
    ...(slot.placement !== undefined ? { placement: slot.placement } : {}),
    origin,
    context,
    profileKey: change.profileKey,
    dueAt: new Date(send.dueAt).toISOString(),
  };
  return { id: detail.emissionId, status: 'deferred', sendAt: send.dueAt, detailType: DETAIL_TYPES.sendTimer, detail: detail as unknown as Record<string, unknown> };
}

/**
 * Where a deferred send is decided when it is due: the slot (channel and
 * placement) of what set it off as `catalog` has it then — its trigger (an
 * enabled one), or its journey's `act` step of that id — whatever slot it
 * was deferred on (the timer's `channel`, `placement`: the operator may
 * have changed the catalog since). Undefined when that trigger or step is
 * gone (removed, disabled, or the step is no longer an act): the send is
 * not decided at all.
 */
export function dueSendSlot(catalog: CompiledCatalog, origin: SendOrigin): EmissionSlot | undefined {
  if (origin.kind === 'trigger') return catalog.triggers.find((t) => t.id === origin.trigger);
  const journey = catalog.journeys.find((j) => j.id === origin.journey);
  const index = journey?.stepIndex.get(origin.step);
  const step = index === undefined ? undefined : journey?.steps[index];
  return step?.kind === 'act' ? step : undefined;
}

/**
 * The send a due `Send Timer` names (`timer`, the event of `change`),
 * decided at the batch instant on the view after it (the profile as it is
 * now), for the slot of what set it off as the catalog has it now
 * (`dueSendSlot`; undefined when that is gone: nothing is decided), with
 * the firing's context and the send's own emission id: `now` (content,
 * sealed decision id, its contact) or `refused` (quiet hours still holding
 * included, on whichever channel it is decided for: a send is deferred once).
 */
export function decideDueSend(catalog: CompiledCatalog, timer: SendTimerRef, change: AppliedChange, options: FireOptions = {}): OutboxEntry | undefined {
  const slot = dueSendSlot(catalog, timer.origin);
  if (!slot) return undefined;
  const current = { channel: slot.channel, ...(slot.placement !== undefined ? { placement: slot.placement } : {}) };
  const send = decideSendAt(catalog, { slot: current, profile: change.after, context: timer.context, now: change.now, id: timer.send }, false, options);
  return emissionEntry(timer.send, timer.origin, send);
}

/** The outbox entry of one firing of `trigger` by `change` (see the module's docstring). */
export function fireTrigger(catalog: CompiledCatalog, trigger: CompiledTrigger, change: AppliedChange, options: FireOptions = {}): OutboxEntry {
  const origin: SendOrigin = { kind: 'trigger', trigger: trigger.id, cause: trigger.on, eventId: change.event.messageId };
  return sendEntry(catalog, trigger, origin, emissionId(trigger.id, change.eventPk), change, options);
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
 * triggers: nothing reacts. A due `Send Timer` of a trigger's send is that
 * send, decided now for the trigger's channel and placement as they are now
 * (`decideDueSend`; its trigger gone from the catalog: nothing), and fires
 * no trigger.
 */
export function createTriggerReactor(current: () => CompiledCatalog | undefined, options: FireOptions = {}): ProfileReactor {
  return {
    bound: (event) => {
      const catalog = current();
      if (!catalog || catalog.triggers.length === 0) return 0;
      const due = sendTimerOf(event);
      return due ? (due.origin.kind === 'trigger' ? 1 : 0) : triggerBound(catalog, event);
    },
    react: (change) => {
      const catalog = current();
      if (!catalog || catalog.triggers.length === 0) return [];
      const due = sendTimerOf(change.event);
      if (due) {
        const entry = due.origin.kind === 'trigger' ? decideDueSend(catalog, due, change, options) : undefined;
        return entry ? [entry] : [];
      }
      return fireInTurn(triggersFiring(catalog, change), change, (trigger, seen) => fireTrigger(catalog, trigger, seen, options));
    },
  };
}
