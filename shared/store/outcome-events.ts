/**
 * The outcome events of a time range, read from the Events table for
 * off-policy evaluation (shared/domain/evaluation/evaluate.ts
 * `indexOutcomes`): the track events whose name is an outcome's
 * (profile/outcomes.ts OUTCOME_EVENTS) and that carry a decision id.
 *
 * A Scan of the whole table, filtered: it costs the read units of every item
 * (DynamoDB bills a Scan by what it reads, not what the filter keeps), so it
 * is an operator's batch read (`npm run evaluate`, the evaluation state
 * machine), never a request-path read. The table keeps events for the
 * history retention (KAIROS_HISTORY_DAYS), which bounds how far back an
 * evaluation can join outcomes.
 */
import { config } from '#shared/config.ts';
import { OUTCOME_EVENTS } from '#domain/profile/outcomes.ts';
import { semanticName } from '#domain/semantic-events.ts';
import type { OutcomeEvent } from '#domain/evaluation/evaluate.ts';
import { dynamo, type DynamoClient, type Item } from './client.ts';

/** Items read per Scan page. */
const SCAN_PAGE_ITEMS = 1_000;

export interface ReadOutcomeEventsOptions {
  /** Events stamped at or after this instant, epoch ms. */
  readonly from: number;
  /** Events stamped before this instant, epoch ms. */
  readonly to: number;
  readonly client?: DynamoClient;
  /** @default config.EVENTS_TABLE */
  readonly table?: string;
  /** A share of a parallel Scan: segment `segment` of `totalSegments` (DynamoDB Scan Segment/TotalSegments). @default the whole table */
  readonly segment?: { readonly segment: number; readonly totalSegments: number };
}

const outcomeOf = (item: Item): OutcomeEvent | undefined => {
  const { event, properties, timestamp, userId, anonymousId } = item;
  if (typeof event !== 'string' || typeof timestamp !== 'string') return undefined;
  if (!Object.hasOwn(OUTCOME_EVENTS, semanticName(event))) return undefined;
  const props = properties !== null && typeof properties === 'object' ? (properties as Record<string, unknown>) : undefined;
  if (props?.decision_id === undefined && props?.decisionId === undefined) return undefined;
  return {
    event,
    properties: props,
    timestamp,
    ...(typeof userId === 'string' ? { userId } : {}),
    ...(typeof anonymousId === 'string' ? { anonymousId } : {}),
  };
};

/** Every outcome event stamped in [from, to), page by page (see the module's docstring for the cost). */
export async function* readOutcomeEvents(options: ReadOutcomeEventsOptions): AsyncGenerator<OutcomeEvent> {
  const client = options.client ?? dynamo();
  let start: Item | undefined;
  do {
    const page = await client.send('Scan', {
      TableName: options.table ?? config.EVENTS_TABLE,
      FilterExpression: '#type = :track AND #ts >= :from AND #ts < :to',
      ProjectionExpression: '#event, #properties, #ts, #userId, #anonymousId',
      ExpressionAttributeNames: {
        '#type': 'type',
        '#ts': 'timestamp',
        '#event': 'event',
        '#properties': 'properties',
        '#userId': 'userId',
        '#anonymousId': 'anonymousId',
      },
      ExpressionAttributeValues: { ':track': 'track', ':from': new Date(options.from).toISOString(), ':to': new Date(options.to).toISOString() },
      Limit: SCAN_PAGE_ITEMS,
      ...(options.segment ? { Segment: options.segment.segment, TotalSegments: options.segment.totalSegments } : {}),
      ...(start ? { ExclusiveStartKey: start } : {}),
    });
    for (const item of page.Items ?? []) {
      const outcome = outcomeOf(item);
      if (outcome) yield outcome;
    }
    start = page.LastEvaluatedKey;
  } while (start);
}
