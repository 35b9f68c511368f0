/**
 * The evaluation state machine's map step (shared/evaluation-steps.ts): one
 * batch of the decision log's S3 objects (Firehose's GZIP JSON lines) → the
 * partial sums of shared/domain/evaluation/evaluate.ts `evaluatePartition`,
 * merged over the batch. The candidate catalog, outcomes and statistics are
 * read once per execution and kept while the environment lives.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { getStringFromEnv } from '@aws-lambda-powertools/commons/utils/env';
import middy from '@middy/core';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { decisionKey } from '#domain/decide/decision-id.ts';
import type { LearningStats } from '#domain/decide/types.ts';
import { EMPTY_PARTITION, decisionRecordsOfText, evaluatePartition, mergePartitions, type OutcomeIndex, type PartitionSums } from '#domain/evaluation/evaluate.ts';
import { replayCache } from '#domain/evaluation/replay.ts';
import { getObject, getObjectText } from '#shared/aws-requests.ts';
import { requiredDecisionSecret } from '#shared/config.ts';
import { keyInRange, type EvaluationInputs, type MapEvent } from '#shared/evaluation-steps.ts';
import { functionLogger } from '#shared/observability.ts';
import { evaluationStatistics } from '#store/evaluation-inputs.ts';

const logger = functionLogger('evaluationMap');
const INPUTS_BUCKET = getStringFromEnv({ key: 'KAIROS_EVALUATION_BUCKET' });
const LOG_BUCKET = getStringFromEnv({ key: 'KAIROS_DECISION_LOG_BUCKET' });
const DECISION_KEY = decisionKey(requiredDecisionSecret());

interface Inputs {
  readonly key: string;
  readonly candidate: CompiledCatalog;
  readonly outcomes: OutcomeIndex;
  readonly learning: LearningStats;
}

let cached: Inputs | undefined;
const cache = replayCache();

async function inputsOf(key: string): Promise<Inputs> {
  if (cached?.key === key) return cached;
  const inputs = JSON.parse((await getObject(INPUTS_BUCKET, key)).toString('utf8')) as EvaluationInputs;
  const loaded = loadCatalog(inputs.catalog, inputs.catalog.trimStart().startsWith('{') ? 'json' : 'yaml');
  // The inputs step checked it: a problem here is a defect.
  if (!loaded.ok) throw new Error(`the candidate catalog of ${key} does not compile`);
  cached = { key, candidate: loaded.catalog, outcomes: inputs.outcomes, learning: evaluationStatistics(new Map(inputs.counts)) };
  return cached;
}

export async function evaluationMap(event: MapEvent): Promise<PartitionSums> {
  const { inputsKey } = event.BatchInput;
  const from = Date.parse(event.BatchInput.from);
  const to = Date.parse(event.BatchInput.to);
  const inputs = await inputsOf(inputsKey);
  let sums = EMPTY_PARTITION;
  // The batch's objects are one map step: a decision Firehose delivered twice within them is evaluated once.
  const seen = new Set<string>();
  for (const item of event.Items) {
    if (!keyInRange(item.Key, from, to)) continue;
    const { records, malformed } = decisionRecordsOfText(await getObjectText(LOG_BUCKET, item.Key));
    const part = evaluatePartition(records, { candidate: inputs.candidate, outcomes: inputs.outcomes, learning: inputs.learning, decisionKey: DECISION_KEY, from, to, cache, seen }, malformed);
    sums = mergePartitions(sums, part);
  }
  logger.info('partition evaluated', { objects: event.Items.length, records: sums.records, replayed: sums.sums.decisions });
  return sums;
}

export const handler = middy<MapEvent, PartitionSums>().use(injectLambdaContext(logger)).handler(evaluationMap);
