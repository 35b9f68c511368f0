/**
 * AWS list prices the cost table uses: us-east-1, on-demand, no free tier,
 * first pricing tier. Source: the public pricing pages named beside each
 * price; checked on the date below against those pages and pages quoting
 * them (no network access to the pages themselves from this machine: the
 * `search` tool's stored copies). Check them again before quoting a figure
 * to a customer, and update the date when you do.
 */
export const PRICES_RECORDED = '2026-11-30 (us-east-1 list prices, first tier)';

export const PRICES = {
  /** https://aws.amazon.com/api-gateway/pricing/ — HTTP APIs, first 300 million requests a month (metered in 512 KB increments), USD per million. */
  httpApiPerMillionRequests: 1.0,
  /** https://aws.amazon.com/lambda/pricing/ — Arm, first 7.5 billion GB-seconds a month (x86: first 6 billion), USD per GB-second, billed per 1 ms. */
  lambdaArmPerGbSecond: 0.0000133334,
  /** https://aws.amazon.com/lambda/pricing/ — USD per million requests (Arm and x86). */
  lambdaPerMillionRequests: 0.2,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ — USD per million read request units (after the November 2024 on-demand price cut). */
  dynamoDbPerMillionReadUnits: 0.125,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ — USD per million write request units (after the November 2024 cut). */
  dynamoDbPerMillionWriteUnits: 0.625,
  /** https://aws.amazon.com/cloudwatch/pricing/ — Logs, Standard class ingestion, USD per GB (for Lambda logs, the first tier of the May 2025 tiered pricing). */
  cloudWatchLogsIngestPerGb: 0.5,
  /**
   * https://aws.amazon.com/firehose/pricing/ — Direct PUT ingestion (a CloudWatch Logs subscription puts records), first 500 TB a month,
   * USD per GB, each record rounded up to 5 KB. The 5 KB rounding was confirmed on 2026-11-30; the figure itself was not found in the
   * stored copies of the page and is as recorded in 2025-06.
   */
  firehosePerGb: 0.029,
  /** https://aws.amazon.com/s3/pricing/ — S3 Standard, first 50 TB a month, USD per GB-month. */
  s3StandardPerGbMonth: 0.023,
  /** https://aws.amazon.com/s3/pricing/ — S3 Standard PUT, COPY, POST, LIST requests, USD per 1,000. */
  s3PutPer1000Requests: 0.005,
} as const;
