/**
 * AWS list prices the cost table uses: us-east-1, on-demand, no free tier,
 * first pricing tier. Source: the public pricing pages named beside each
 * price, as recorded by the team on the date below. This machine has no
 * network access to re-read them: check them before quoting a figure to a
 * customer, and update the date when you do.
 */
export const PRICES_RECORDED = '2025-06 (us-east-1 list prices; not re-read since)';

export const PRICES = {
  /** https://aws.amazon.com/api-gateway/pricing/ — HTTP APIs, first 300 million requests a month, USD per million. */
  httpApiPerMillionRequests: 1.0,
  /** https://aws.amazon.com/lambda/pricing/ — Arm, first 6 billion GB-seconds a month, USD per GB-second. */
  lambdaArmPerGbSecond: 0.0000133334,
  /** https://aws.amazon.com/lambda/pricing/ — USD per million requests. */
  lambdaPerMillionRequests: 0.2,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ — USD per million read request units. */
  dynamoDbPerMillionReadUnits: 0.125,
  /** https://aws.amazon.com/dynamodb/pricing/on-demand/ — USD per million write request units. */
  dynamoDbPerMillionWriteUnits: 0.625,
  /** https://aws.amazon.com/cloudwatch/pricing/ — Logs, standard ingestion, USD per GB. */
  cloudWatchLogsIngestPerGb: 0.5,
  /** https://aws.amazon.com/firehose/pricing/ — Direct PUT ingestion, first 500 TB a month, USD per GB (records rounded up to 5 KB). */
  firehosePerGb: 0.029,
  /** https://aws.amazon.com/s3/pricing/ — S3 Standard, first 50 TB a month, USD per GB-month. */
  s3StandardPerGbMonth: 0.023,
} as const;
