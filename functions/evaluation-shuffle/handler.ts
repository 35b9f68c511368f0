/**
 * The evaluation state machine's shuffle step (shared/evaluation-steps.ts):
 * one batch of the decision log's S3 objects (Firehose's GZIP JSON lines),
 * each line sent to the shard of its decision's reference
 * (shared/domain/evaluation/shuffle.ts) and written, GZIP JSON lines, to
 * the execution's scratch prefix of the evaluation bucket: one part per
 * shard that got lines, `<shard prefix><batch>-<part>.jsonl.gz`. `<batch>`
 * names the batch's objects (a hash of their keys), so a retried
 * invocation writes the same parts again; a copy written under another
 * name would still be in its decision's shard, where the map step reads it
 * once. Memory: one object's text and at most `flushBytes` of lines
 * waiting (then written as the next part of each shard).
 * Returns the counts of the lines no shard takes (ShuffleCounts).
 */
import '#shared/source-maps-register.ts';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { getStringFromEnv } from '@aws-lambda-powertools/commons/utils/env';
import middy from '@middy/core';
import { decisionKey, type DecisionKey } from '#domain/decide/decision-id.ts';
import { NO_SHUFFLE_COUNTS, addShuffleCounts, shuffleText, type ShuffleCounts } from '#domain/evaluation/shuffle.ts';
import { s3Objects, textOfObject } from '#shared/aws-requests.ts';
import { requiredDecisionSecret } from '#shared/config.ts';
import { EVALUATION_SHARDS, rangeProblem } from '#shared/config-ranges.ts';
import { keyInRange, shardPartKeyOf, type EvaluationObjects, type ShuffleEvent } from '#shared/evaluation-steps.ts';
import { functionLogger } from '#shared/observability.ts';

const logger = functionLogger('evaluationShuffle');

/** Lines waiting to be written, bytes (UTF-16 code units), before they are written as parts. */
export const SHUFFLE_FLUSH_BYTES = 64 * 1024 * 1024;

/** Parts written at once. */
const PUTS_AT_ONCE = 16;

export interface ShuffleSettings {
  readonly objects: EvaluationObjects;
  /** The decision log's bucket (the batch's objects) and the evaluation bucket (the scratch parts). */
  readonly logBucket: string;
  readonly evaluationBucket: string;
  /** The key the decision ids are sealed with (absent: plain ids). */
  readonly decisionKey?: DecisionKey;
  /** @default SHUFFLE_FLUSH_BYTES */
  readonly flushBytes?: number;
}

/** The shuffle step reading and writing `settings.objects`. Throws on a shard count outside EVALUATION_SHARDS (a defect of the state machine's input). */
export function evaluationShuffle(settings: ShuffleSettings): (event: ShuffleEvent) => Promise<ShuffleCounts> {
  const flushBytes = settings.flushBytes ?? SHUFFLE_FLUSH_BYTES;
  return async (event) => {
    const { scratchPrefix, shardCount } = event.BatchInput;
    const problem = rangeProblem(shardCount, EVALUATION_SHARDS);
    if (problem !== undefined) throw new Error(`shardCount ${problem} (got ${shardCount})`);
    const from = Date.parse(event.BatchInput.from);
    const to = Date.parse(event.BatchInput.to);
    const batch = createHash('sha256')
      .update(event.Items.map((item) => item.Key).join('\n'))
      .digest('hex')
      .slice(0, 16);
    const waiting = new Map<number, string[]>();
    let waitingBytes = 0;
    let part = 0;
    let parts = 0;
    const flush = async (): Promise<void> => {
      const shards = [...waiting];
      waiting.clear();
      waitingBytes = 0;
      for (let i = 0; i < shards.length; i += PUTS_AT_ONCE) {
        await Promise.all(
          shards.slice(i, i + PUTS_AT_ONCE).map(([shard, lines]) => settings.objects.put(settings.evaluationBucket, shardPartKeyOf(scratchPrefix, shard, batch, part), gzipSync(`${lines.join('\n')}\n`))),
        );
      }
      parts += shards.length;
      part++;
    };
    let kept = NO_SHUFFLE_COUNTS;
    let objects = 0;
    for (const item of event.Items) {
      if (!keyInRange(item.Key, from, to)) continue;
      objects++;
      const text = textOfObject(await settings.objects.get(settings.logBucket, item.Key));
      kept = addShuffleCounts(
        kept,
        shuffleText(text, shardCount, settings.decisionKey, (shard, line) => {
          let lines = waiting.get(shard);
          if (!lines) waiting.set(shard, (lines = []));
          lines.push(line);
          waitingBytes += line.length + 1;
        }),
      );
      if (waitingBytes >= flushBytes) await flush();
    }
    if (waiting.size > 0) await flush();
    logger.info('batch shuffled', { objects, parts, unreadable: kept.malformed });
    return kept;
  };
}

let step: ((event: ShuffleEvent) => Promise<ShuffleCounts>) | undefined;

const fromEnvironment = () =>
  evaluationShuffle({
    objects: s3Objects,
    logBucket: getStringFromEnv({ key: 'KAIROS_DECISION_LOG_BUCKET' }),
    evaluationBucket: getStringFromEnv({ key: 'KAIROS_EVALUATION_BUCKET' }),
    decisionKey: decisionKey(requiredDecisionSecret()),
  });

export const handler = middy<ShuffleEvent, ShuffleCounts>()
  .use(injectLambdaContext(logger))
  .handler((event) => (step ??= fromEnvironment())(event));
