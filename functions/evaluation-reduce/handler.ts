/**
 * The evaluation state machine's last step (shared/evaluation-steps.ts):
 * the shuffle's counts and the map step's partial sums → the candidate's estimates, or the reason
 * there are none (shared/domain/evaluation/evaluate.ts `reduceEvaluation`).
 * Its result is the execution's output.
 */
import '#shared/source-maps-register.ts';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import { reduceEvaluation, type Evaluation } from '#domain/evaluation/evaluate.ts';
import { shuffledPartitions } from '#domain/evaluation/shuffle.ts';
import type { ReduceEvent } from '#shared/evaluation-steps.ts';
import { functionLogger } from '#shared/observability.ts';

const logger = functionLogger('evaluationReduce');

export async function evaluationReduce(event: ReduceEvent): Promise<Evaluation> {
  const evaluation = reduceEvaluation(shuffledPartitions(event.shuffled, event.partitions), { reward: event.reward, minSupport: event.minSupport });
  logger.info('evaluation reduced', { ok: evaluation.ok, batches: event.shuffled.length, shards: event.partitions.length, replayed: evaluation.replayed, duplicates: evaluation.duplicates });
  return evaluation;
}

export const handler = middy<ReduceEvent, Evaluation>().use(injectLambdaContext(logger)).handler(evaluationReduce);
