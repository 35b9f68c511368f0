/**
 * Whether an applied event is the cause a journey's entry names: the event
 * itself, or a transition between the customer's view just before it and
 * just after it (segments, persona and scores, both enriched at the same
 * instant so a difference is the event's doing).
 */
import type { JourneyCause } from '../catalog/compiled.ts';
import type { ProfileView } from '../profile/view.ts';

export interface Transition {
  /** The semantic name of the applied track event (apply.ts `semanticName`), else undefined. */
  readonly eventName: string | undefined;
  readonly before: Pick<ProfileView, 'segments' | 'persona' | 'scores'>;
  readonly after: Pick<ProfileView, 'segments' | 'persona' | 'scores'>;
}

/** True when `change` is a real occurrence of `cause`: a name, or a crossing from one side to the other. */
export function causeHappened(cause: JourneyCause, change: Transition): boolean {
  switch (cause.kind) {
    case 'event':
      return change.eventName === cause.event;
    case 'entered':
      return !change.before.segments.includes(cause.segment) && change.after.segments.includes(cause.segment);
    case 'left':
      return change.before.segments.includes(cause.segment) && !change.after.segments.includes(cause.segment);
    case 'persona': {
      const to = change.after.persona;
      if (to === change.before.persona) return false;
      return cause.persona === '*' || to === cause.persona;
    }
    case 'score': {
      const was = change.before.scores[cause.model];
      const is = change.after.scores[cause.model];
      if (is === undefined) return false;
      const side = (score: number | undefined): boolean | undefined => (score === undefined ? undefined : score >= cause.threshold);
      return cause.direction === 'above' ? side(is) === true && side(was) !== true : side(is) === false && side(was) === true;
    }
  }
}
