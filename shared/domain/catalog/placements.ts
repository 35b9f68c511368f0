/**
 * The placements a catalog's content names: one definition for decide's
 * explanation (a request whose placement no content names) and the
 * catalog's warnings (a trigger or a journey's act step that names one).
 * No dependency on the validator, so the decide bundle carries it.
 */
import type { Channel } from '../channels.ts';
import type { CompiledAction } from './compiled.ts';

/**
 * The placements the actions' content for `channel` names (actions and
 * their variants, `placements:`), sorted; content that names none fills
 * every placement and adds nothing here. A placement outside this list is
 * filled only by content without placements (a misspelling answers with
 * that content, or nothing).
 */
export function namedPlacements(actions: readonly CompiledAction[], channel: Channel): readonly string[] {
  const named = new Set<string>();
  for (const action of actions) {
    for (const content of [action.content[channel], ...action.variants.map((v) => v.content[channel])]) {
      for (const placement of content?.placements ?? []) named.add(placement);
    }
  }
  return [...named].sort();
}
