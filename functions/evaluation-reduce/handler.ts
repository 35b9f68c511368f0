/**
 * The evaluation state machine's last step (shared/evaluation-steps.ts
 * `reduceMapResults`): the shuffle's counts and the map step's partial
 * sums, read from the evaluation bucket where the two Distributed Maps'
 * ResultWriters put them (the manifest, then its result files) → the
 * candidate's estimates, or the reason there are none
 * (shared/domain/evaluation/evaluate.ts `reduceEvaluation`). Its result is
 * the execution's output. The local run (scripts/evaluate.ts) writes its
 * map results in the same shape and reduces them with the same function.
 */
import '#shared/source-maps-register.ts';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Evaluation } from '#domain/evaluation/evaluate.ts';
import { s3Objects } from '#shared/aws-requests.ts';
import { reduceMapResults, type EvaluationObjects, type ReduceEvent } from '#shared/evaluation-steps.ts';
import { functionLogger } from '#shared/observability.ts';

const logger = functionLogger('evaluationReduce');

/** The reduce step reading the maps' results from `objects`. */
export function evaluationReduce(objects: EvaluationObjects): (event: ReduceEvent) => Promise<Evaluation> {
  return async (event) => {
    const { evaluation, batches, shards } = await reduceMapResults(objects, event);
    logger.info('evaluation reduced', { ok: evaluation.ok, batches, shards, replayed: evaluation.replayed, duplicates: evaluation.duplicates });
    return evaluation;
  };
}

export const handler = middy<ReduceEvent, Evaluation>().use(injectLambdaContext(logger)).handler(evaluationReduce(s3Objects));
