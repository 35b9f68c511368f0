/**
 * The evaluation state machine's map step (shared/evaluation-steps.ts): one
 * shard of the shuffled decision log (the parts the shuffle step wrote
 * under the shard's prefix, GZIP JSON lines, listed and read one at a
 * time) → the partial sums of shared/domain/evaluation/evaluate.ts
 * `mapStep`, one set of the references read over all the parts,
 * merged. Every copy of a decision's record is in its one shard, so a
 * decision is evaluated once in the whole execution. The outcomes read are
 * the shard's own (the inputs step split them by decision reference as the
 * shuffle split the log); the candidate catalog and statistics are read
 * once per execution and kept while the environment lives.
 */
import '#shared/source-maps-register.ts';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { getStringFromEnv } from '@aws-lambda-powertools/commons/utils/env';
import middy from '@middy/core';
import { loadCatalog } from '#domain/catalog/load.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { decisionKey, type DecisionKey } from '#domain/decide/decision-id.ts';
import type { LearningStats } from '#domain/decide/types.ts';
import { EMPTY_PARTITION, decisionRecordsOfText, mapStep, mergePartitions, type OutcomeIndex, type PartitionSums } from '#domain/evaluation/evaluate.ts';
import { replayCache } from '#domain/evaluation/replay.ts';
import { s3Objects, textOfObject } from '#shared/aws-requests.ts';
import { requiredDecisionSecret } from '#shared/config.ts';
import { shardOutcomesKeyOf, shardPrefixOf, type EvaluationInputs, type EvaluationObjects, type MapEvent } from '#shared/evaluation-steps.ts';
import { functionLogger } from '#shared/observability.ts';
import { evaluationStatistics } from '#store/evaluation-inputs.ts';

const logger = functionLogger('evaluationMap');

export interface MapSettings {
  readonly objects: EvaluationObjects;
  /** The evaluation bucket: the execution's inputs, the shards' outcomes and the shuffle's parts. */
  readonly evaluationBucket: string;
  /** The key the decision ids are sealed with (absent: plain ids). */
  readonly decisionKey?: DecisionKey;
}

interface Inputs {
  readonly key: string;
  readonly candidate: CompiledCatalog;
  readonly learning: LearningStats;
}

/** The map step reading `settings.objects`. */
export function evaluationMap(settings: MapSettings): (event: MapEvent) => Promise<PartitionSums> {
  let cached: Inputs | undefined;
  const cache = replayCache();
  const inputsOf = async (key: string): Promise<Inputs> => {
    if (cached?.key === key) return cached;
    const inputs = JSON.parse((await settings.objects.get(settings.evaluationBucket, key)).toString('utf8')) as EvaluationInputs;
    // At this later instant an experiment the inputs step counted may have ended, never one it did not count begun.
    const loaded = loadCatalog(inputs.catalog, inputs.catalog.trimStart().startsWith('{') ? 'json' : 'yaml', { at: Date.now() });
    // The inputs step checked it: a problem here is a defect.
    if (!loaded.ok) throw new Error(`the candidate catalog of ${key} does not compile`);
    cached = { key, candidate: loaded.catalog, learning: evaluationStatistics(new Map(inputs.counts)) };
    return cached;
  };
  return async (event) => {
    const inputs = await inputsOf(event.inputsKey);
    const outcomes = JSON.parse((await settings.objects.get(settings.evaluationBucket, shardOutcomesKeyOf(event.outcomesPrefix, event.shard))).toString('utf8')) as OutcomeIndex;
    const keys = await settings.objects.list(settings.evaluationBucket, shardPrefixOf(event.scratchPrefix, event.shard));
    const step = mapStep({
      candidate: inputs.candidate,
      outcomes,
      learning: inputs.learning,
      from: Date.parse(event.from),
      to: Date.parse(event.to),
      cache,
      ...(settings.decisionKey ? { decisionKey: settings.decisionKey } : {}),
    });
    let sums = EMPTY_PARTITION;
    // One part in memory at a time; the step's references read span the shard.
    for (const key of keys) sums = mergePartitions(sums, step(decisionRecordsOfText(textOfObject(await settings.objects.get(settings.evaluationBucket, key)))));
    logger.info('shard evaluated', { shard: event.shard, parts: keys.length, decisionsWithOutcomes: Object.keys(outcomes).length, records: sums.records, replayed: sums.sums.decisions, duplicates: sums.duplicates });
    return sums;
  };
}

let step: ((event: MapEvent) => Promise<PartitionSums>) | undefined;

const fromEnvironment = () =>
  evaluationMap({ objects: s3Objects, evaluationBucket: getStringFromEnv({ key: 'KAIROS_EVALUATION_BUCKET' }), decisionKey: decisionKey(requiredDecisionSecret()) });

export const handler = middy<MapEvent, PartitionSums>()
  .use(injectLambdaContext(logger))
  .handler((event) => (step ??= fromEnvironment())(event));
