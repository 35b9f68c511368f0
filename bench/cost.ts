/**
 * What a million decisions or ingested events cost on AWS list prices
 * (bench/prices.ts), from what one of them uses: API Gateway requests,
 * Lambda invocations with their billed duration and memory, DynamoDB read
 * and write request units, log and delivery-stream bytes.
 *
 * Billing rules applied (each pricing page): Lambda bills duration rounded up
 * to the millisecond per invocation (each measured invocation rounded, when
 * they are given one by one: `billedDurationMs`), times the configured memory in GB
 * (MB / 1024), the duration being the measured one with its CPU part
 * stretched below one vCPU (`lambdaDurationMs`); a DynamoDB read is 1 RRU per 4 KB of item (half for an
 * eventually consistent read), a write 1 WRU per 1 KB, a transactional read
 * or write twice that; Firehose bills each record rounded up to 5 KB; S3
 * bills storage per GB-month and each PUT.
 */
import { PRICES } from './prices.ts';

/** One Lambda invocation's share of a unit of work. */
export interface LambdaUse {
  readonly name: string;
  /** Invocations per unit (0.1 when a batch of 10 units is one invocation). */
  readonly invocations: number;
  /** Measured duration of one invocation on this machine (one full core), ms. */
  readonly durationMs: number;
  /**
   * Of `durationMs`, the CPU time the process spent, ms: the part that
   * stretches when the function has less than one vCPU (`lambdaDurationMs`).
   * @default durationMs (all of it CPU-bound: the most a lower memory can cost)
   */
  readonly cpuMs?: number;
  /** Configured memory, MB (shared/functions.ts). */
  readonly memoryMb: number;
  /**
   * The measured invocations one by one (duration and CPU, ms): when given,
   * each is billed rounded up to its millisecond and the mean of those is the
   * billed duration — what Lambda bills — instead of the mean rounded up.
   */
  readonly invocationsMeasured?: readonly { readonly durationMs: number; readonly cpuMs: number }[];
}

/**
 * The memory at which Lambda gives a function one full vCPU, MB: CPU is
 * allocated in proportion to memory, one vCPU's worth at 1,769 MB (the
 * Lambda developer guide, "Configure Lambda function memory",
 * https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
 */
export const ONE_VCPU_MB = 1769;

/**
 * The duration of an invocation at `memoryMb`, ms, from what was measured
 * on one full core: the CPU part stretched by 1769 / memory below one vCPU
 * (no faster above it: the handler runs on one thread), the rest — waiting
 * for DynamoDB — unchanged.
 */
export function lambdaDurationMs(use: Pick<LambdaUse, 'durationMs' | 'cpuMs' | 'memoryMb'>): number {
  const cpu = Math.min(use.cpuMs ?? use.durationMs, use.durationMs);
  return use.durationMs - cpu + cpu * Math.max(1, ONE_VCPU_MB / use.memoryMb);
}

/**
 * The billed duration of one invocation, ms: each measured invocation's
 * duration at `memoryMb` (`lambdaDurationMs`) rounded up to the millisecond,
 * as Lambda bills it, averaged; without the invocations one by one, their
 * mean rounded up.
 */
export function billedDurationMs(use: Pick<LambdaUse, 'durationMs' | 'cpuMs' | 'memoryMb' | 'invocationsMeasured'>): number {
  const measured = use.invocationsMeasured;
  if (measured === undefined || measured.length === 0) return Math.ceil(lambdaDurationMs(use));
  let sum = 0;
  for (const one of measured) sum += Math.ceil(lambdaDurationMs({ durationMs: one.durationMs, cpuMs: one.cpuMs, memoryMb: use.memoryMb }));
  return sum / measured.length;
}

/** What one decision or one ingested event uses. */
export interface UnitUse {
  readonly httpRequests: number;
  readonly lambdas: readonly LambdaUse[];
  readonly readUnits: number;
  readonly writeUnits: number;
  /** Bytes written to CloudWatch Logs (the decision record). */
  readonly logBytes: number;
  /** Firehose records per unit and their size, bytes (each billed at least 5 KB). */
  readonly firehoseRecords: number;
  readonly firehoseRecordBytes: number;
  /** Bytes stored in S3 per unit (the decision log's gzipped records), kept `s3Months` months. */
  readonly s3Bytes?: number;
  readonly s3Months?: number;
}

export interface CostLine {
  readonly item: string;
  /** USD per million units. */
  readonly usdPerMillion: number;
}

const GB = 1024 ** 3;

/** Read request units of one read of an item of `bytes` (4 KB steps). */
export const readUnits = (bytes: number, options: { consistent?: boolean; transactional?: boolean } = {}): number =>
  Math.max(1, Math.ceil(bytes / 4096)) * (options.transactional ? 2 : options.consistent ? 1 : 0.5);

/** Write request units of one write of an item of `bytes` (1 KB steps). */
export const writeUnits = (bytes: number, options: { transactional?: boolean } = {}): number =>
  Math.max(1, Math.ceil(bytes / 1024)) * (options.transactional ? 2 : 1);

/** The cost lines of a million units, USD, and their total last. */
export function costPerMillion(use: UnitUse): CostLine[] {
  const million = 1_000_000;
  const lines: CostLine[] = [{ item: 'API Gateway HTTP API requests', usdPerMillion: use.httpRequests * PRICES.httpApiPerMillionRequests }];
  for (const lambda of use.lambdas) {
    const billedMs = billedDurationMs(lambda);
    const gbSeconds = (billedMs / 1000) * (lambda.memoryMb / 1024) * lambda.invocations * million;
    lines.push({
      item: `Lambda ${lambda.name} (${lambda.memoryMb} MB, ${Number.isInteger(billedMs) ? billedMs : billedMs.toFixed(2)} ms billed, ${lambda.invocations} invocations per unit)`,
      usdPerMillion: gbSeconds * PRICES.lambdaArmPerGbSecond + lambda.invocations * PRICES.lambdaPerMillionRequests,
    });
  }
  lines.push({ item: 'DynamoDB on-demand reads', usdPerMillion: use.readUnits * PRICES.dynamoDbPerMillionReadUnits });
  lines.push({ item: 'DynamoDB on-demand writes', usdPerMillion: use.writeUnits * PRICES.dynamoDbPerMillionWriteUnits });
  if (use.logBytes > 0) lines.push({ item: 'CloudWatch Logs ingestion', usdPerMillion: ((use.logBytes * million) / GB) * PRICES.cloudWatchLogsIngestPerGb });
  if (use.firehoseRecords > 0) {
    const billed = Math.ceil(use.firehoseRecordBytes / 5120) * 5120;
    lines.push({ item: 'Firehose ingestion', usdPerMillion: ((use.firehoseRecords * billed * million) / GB) * PRICES.firehosePerGb });
  }
  if (use.s3Bytes !== undefined && use.s3Bytes > 0) {
    // Firehose writes an object per buffer (5 MB or 5 minutes, whichever first): at least one PUT per 5 MB.
    const puts = (use.s3Bytes * million) / (5 * 1024 * 1024);
    const months = use.s3Months ?? 1;
    lines.push({
      item: `S3 (${months} months of storage, PUT requests)`,
      usdPerMillion: ((use.s3Bytes * million) / GB) * PRICES.s3StandardPerGbMonth * months + (puts / 1000) * PRICES.s3PutPer1000Requests,
    });
  }
  lines.push({ item: 'total', usdPerMillion: lines.reduce((sum, line) => sum + line.usdPerMillion, 0) });
  return lines;
}
