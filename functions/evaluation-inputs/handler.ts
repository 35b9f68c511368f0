/**
 * The evaluation state machine's first step (shared/evaluation-steps.ts):
 * checks the candidate catalog (a catalog with problems fails the execution
 * with them), reads the outcomes of the decisions of the range (a Scan of
 * the Events table) and the learning statistics, writes them with the
 * catalog to the evaluation bucket for the map step, and returns the prefix
 * of the decision log's objects to list, the execution's scratch prefix and
 * its shards.
 */
import '#shared/source-maps-register.ts';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { getStringFromEnv } from '@aws-lambda-powertools/commons/utils/env';
import middy from '@middy/core';
import { loadCatalog } from '#domain/catalog/load.ts';
import { decisionKey } from '#domain/decide/decision-id.ts';
import { DEFAULT_MIN_SUPPORT } from '#domain/evaluation/evaluate.ts';
import { MAX_SHARDS } from '#domain/evaluation/shuffle.ts';
import { putJsonObject } from '#shared/aws-requests.ts';
import { requiredDecisionSecret } from '#shared/config.ts';
import { inputsKeyOf, listPrefixOf, scratchPrefixOf, type EvaluationInputs, type InputsEvent, type InputsResult } from '#shared/evaluation-steps.ts';
import { functionLogger } from '#shared/observability.ts';
import { readEvaluationCounts, readOutcomeIndex } from '#store/evaluation-inputs.ts';

const logger = functionLogger('evaluationInputs');
const BUCKET = getStringFromEnv({ key: 'KAIROS_EVALUATION_BUCKET' });
const DECISION_KEY = decisionKey(requiredDecisionSecret());

/** A mistake in the request: fails the execution with this message (its error name is the state's `Error`). */
export class EvaluationRequestError extends Error {
  override readonly name = 'EvaluationRequestError';
}

export async function evaluationInputs(event: InputsEvent): Promise<InputsResult> {
  const { request } = event;
  const from = Date.parse(request.from);
  const to = Date.parse(request.to);
  if (!Number.isFinite(from) || !Number.isFinite(to) || from >= to) throw new EvaluationRequestError(`from and to must be ISO-8601 instants, from before to (got "${request.from}", "${request.to}")`);
  // The construct sets it: a count outside the range is a defect of the state machine, not of the request.
  if (!(Number.isInteger(event.shardCount) && event.shardCount >= 1 && event.shardCount <= MAX_SHARDS)) throw new Error(`shardCount must be an integer from 1 to ${MAX_SHARDS} (got ${event.shardCount})`);
  const minSupport = request.minSupport ?? DEFAULT_MIN_SUPPORT;
  if (!(minSupport >= 0 && minSupport <= 1)) throw new EvaluationRequestError(`minSupport must be a share from 0 to 1 (got ${request.minSupport})`);
  const loaded = loadCatalog(request.catalog, request.catalog.trimStart().startsWith('{') ? 'json' : 'yaml');
  if (!loaded.ok) {
    const problems = loaded.problems.slice(0, 5).map((p) => `${p.line !== undefined ? `line ${p.line}: ` : ''}${p.path}: ${p.message}`);
    throw new EvaluationRequestError(`the candidate catalog has problems: ${problems.join('; ')}`);
  }
  const candidate = loaded.catalog;
  const range = { from, to };
  const [outcomes, counts] = await Promise.all([readOutcomeIndex(candidate, range, DECISION_KEY), readEvaluationCounts(candidate, range)]);
  const inputs: EvaluationInputs = { catalog: request.catalog, outcomes, counts: [...counts] };
  const inputsKey = inputsKeyOf(event.execution);
  await putJsonObject(BUCKET, inputsKey, inputs);
  logger.info('evaluation inputs written', { inputsKey, decisionsWithOutcomes: Object.keys(outcomes).length, cells: counts.size });
  return {
    inputsKey,
    listPrefix: listPrefixOf(event.logPrefix, from, to),
    scratchPrefix: scratchPrefixOf(event.execution),
    shardCount: event.shardCount,
    shards: Array.from({ length: event.shardCount }, (_, shard) => shard),
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    reward: candidate.learning.reward,
    minSupport,
  };
}

export const handler = middy<InputsEvent, InputsResult>().use(injectLambdaContext(logger)).handler(evaluationInputs);
