/**
 * The evaluation state machine's first step (shared/evaluation-steps.ts):
 * checks the candidate catalog (a catalog with problems fails the execution
 * with them), reads the outcomes of the decisions of the range (a Scan of
 * the Events table) and the learning statistics, writes them with the
 * catalog to the evaluation bucket for the map step (the outcomes split
 * into KAIROS_EVALUATION_SHARDS shards by decision reference, one object
 * each), and returns the prefix of the decision log's objects to list, the
 * execution's scratch prefix and its shards.
 */
import '#shared/source-maps-register.ts';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { getStringFromEnv } from '@aws-lambda-powertools/commons/utils/env';
import middy from '@middy/core';
import { loadCatalog } from '#domain/catalog/load.ts';
import { decisionKey } from '#domain/decide/decision-id.ts';
import { DEFAULT_MIN_SUPPORT } from '#domain/evaluation/evaluate.ts';
import { s3Objects } from '#shared/aws-requests.ts';
import { config, requiredDecisionSecret } from '#shared/config.ts';
import { listPrefixOf, resultsPrefixOf, scratchPrefixOf, writeEvaluationInputs, type InputsEvent, type InputsResult } from '#shared/evaluation-steps.ts';
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
  const minSupport = request.minSupport ?? DEFAULT_MIN_SUPPORT;
  if (!(minSupport >= 0 && minSupport <= 1)) throw new EvaluationRequestError(`minSupport must be a share from 0 to 1 (got ${request.minSupport})`);
  // Checked as a publish now would check it (the holdout bound counts the experiments that can still assign).
  const loaded = loadCatalog(request.catalog, request.catalog.trimStart().startsWith('{') ? 'json' : 'yaml', { at: Date.now() });
  if (!loaded.ok) {
    const problems = loaded.problems.slice(0, 5).map((p) => `${p.line !== undefined ? `line ${p.line}: ` : ''}${p.path}: ${p.message}`);
    throw new EvaluationRequestError(`the candidate catalog has problems: ${problems.join('; ')}`);
  }
  const candidate = loaded.catalog;
  const range = { from, to };
  const [outcomes, counts] = await Promise.all([readOutcomeIndex(candidate, range, DECISION_KEY), readEvaluationCounts(candidate, range)]);
  // Checked at start (shared/config.ts, config-ranges.ts EVALUATION_SHARDS).
  const shardCount = config.KAIROS_EVALUATION_SHARDS;
  const { inputsKey, outcomesPrefix } = await writeEvaluationInputs(s3Objects, BUCKET, event.execution, { catalog: request.catalog, outcomes, counts: [...counts] }, shardCount);
  logger.info('evaluation inputs written', { inputsKey, shards: shardCount, decisionsWithOutcomes: Object.keys(outcomes).length, cells: counts.size });
  return {
    inputsKey,
    outcomesPrefix,
    listPrefix: listPrefixOf(event.logPrefix, from, to),
    scratchPrefix: scratchPrefixOf(event.execution),
    resultsPrefix: resultsPrefixOf(event.execution),
    shardCount,
    shards: Array.from({ length: shardCount }, (_, shard) => shard),
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    reward: candidate.learning.reward,
    minSupport,
  };
}

export const handler = middy<InputsEvent, InputsResult>().use(injectLambdaContext(logger)).handler(evaluationInputs);
