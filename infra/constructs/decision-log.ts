import { Duration, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import { CfnDatabase, CfnTable } from 'aws-cdk-lib/aws-glue';
import {
  AppendDelimiterToRecordProcessor,
  CloudWatchLogProcessor,
  Compression,
  DecompressionProcessor,
  DeliveryStream,
  S3Bucket,
  StreamEncryption,
} from 'aws-cdk-lib/aws-kinesisfirehose';
import { FilterPattern, SubscriptionFilter, type ILogGroup } from 'aws-cdk-lib/aws-logs';
import { FirehoseDestination } from 'aws-cdk-lib/aws-logs-destinations';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, type CfnBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DECISION_LOG_COLUMNS, DECISION_RECORD_MESSAGE } from '#domain/evaluation/decision-record.ts';

export interface DecisionLogProps {
  /** The decide function's log group, where the decision records are written. */
  readonly source: ILogGroup;
  /**
   * How long decision records are kept in S3 (lifecycle expiry); it bounds
   * how long a pseudonymous record outlives a customer's erasure.
   * @default Duration.days(90)
   */
  readonly retention?: Duration;
  /** @default RemovalPolicy.RETAIN (the log is evidence; delete it deliberately) */
  readonly removalPolicy?: RemovalPolicy;
}

/** Where Firehose writes the records: one folder per UTC day, the Glue table's partitions. */
export const DECISION_LOG_PREFIX = 'decisions/';

/**
 * The deployed decision log: the decide function's decision records
 * (shared/domain/evaluation/decision-record.ts) selected from its log group
 * by a CloudWatch Logs subscription filter, delivered by Amazon Data
 * Firehose (CloudWatch Logs decompression and message extraction, one JSON
 * line per record, GZIP, encrypted) to an S3 bucket partitioned by day
 * (`decisions/dt=yyyy-MM-dd/`), SSE-S3 encrypted, TLS only, no public
 * access, expiring after `retention`; and a Glue table over it with
 * partition projection, so Athena queries it with no crawler. The decide
 * function writes one record per decision as an INFO line (its application
 * log level stays INFO, KairosFunction's default, or Lambda drops them).
 */
export class DecisionLog extends Construct {
  public readonly bucket: Bucket;
  public readonly accessLogs: Bucket;
  public readonly deliveryStream: DeliveryStream;
  public readonly subscription: SubscriptionFilter;
  public readonly database: CfnDatabase;
  public readonly table: CfnTable;

  constructor(scope: Construct, id: string, props: DecisionLogProps) {
    super(scope, id);
    const retention = props.retention ?? Duration.days(90);
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;

    this.accessLogs = new Bucket(this, 'AccessLogs', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ expiration: retention }],
      removalPolicy,
    });

    this.bucket = new Bucket(this, 'Bucket', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'decision-log/',
      lifecycleRules: [{ expiration: retention }],
      removalPolicy,
    });

    this.deliveryStream = new DeliveryStream(this, 'DeliveryStream', {
      encryption: StreamEncryption.awsOwnedKey(),
      destination: new S3Bucket(this.bucket, {
        dataOutputPrefix: `${DECISION_LOG_PREFIX}dt=!{timestamp:yyyy-MM-dd}/`,
        errorOutputPrefix: 'errors/!{firehose:error-output-type}/dt=!{timestamp:yyyy-MM-dd}/',
        compression: Compression.GZIP,
        bufferingInterval: Duration.minutes(5),
        processors: [new DecompressionProcessor(), new CloudWatchLogProcessor({ dataMessageExtraction: true }), new AppendDelimiterToRecordProcessor()],
      }),
    });

    // The S3 destination's role: CDK grants it read/write on this one bucket (bucket.grantReadWrite).
    const firehoseBucketGrant =
      "Granted by CDK's Firehose S3 destination (bucket.grantReadWrite) on the decision log bucket and its objects only: Firehose needs PutObject, AbortMultipartUpload, GetBucketLocation, GetObject and ListBucket(MultipartUploads) there (Firehose developer guide, 'Grant Firehose access to an Amazon S3 destination'); no other bucket is reachable.";
    for (const applies of ['Action::s3:Abort*', 'Action::s3:DeleteObject*', 'Action::s3:GetBucket*', 'Action::s3:GetObject*', 'Action::s3:List*', `Resource::<${Stack.of(this).getLogicalId(this.bucket.node.defaultChild as CfnBucket)}.Arn>/*`]) {
      Validations.of(this.deliveryStream).acknowledge({ id: `AwsSolutions-IAM5[${applies}]`, reason: firehoseBucketGrant });
    }

    // CDK's Firehose module adds a mapping of Firehose's CIDR blocks per region, read only by
    // Redshift/Splunk destinations; with an S3 destination nothing refers to it (CloudFormation warns W7001).
    const stack0 = Stack.of(this);
    stack0.node.tryRemoveChild('@aws-cdk--aws-kinesisfirehose.CidrBlocks');

    this.subscription = new SubscriptionFilter(this, 'Subscription', {
      logGroup: props.source,
      destination: new FirehoseDestination(this.deliveryStream),
      filterPattern: FilterPattern.stringValue('$.message', '=', DECISION_RECORD_MESSAGE),
    });

    const stack = Stack.of(this);
    const databaseName = `${stack.stackName.toLowerCase().replace(/[^a-z0-9]+/g, '_')}_decision_log`;
    this.database = new CfnDatabase(this, 'Database', {
      catalogId: stack.account,
      databaseInput: { name: databaseName, description: 'Kairos decision log (decision records, one row per decision)' },
    });
    const location = `s3://${this.bucket.bucketName}/${DECISION_LOG_PREFIX}`;
    this.table = new CfnTable(this, 'Table', {
      catalogId: stack.account,
      databaseName,
      tableInput: {
        name: 'decisions',
        description: 'Decision records (shared/domain/evaluation/decision-record.ts), partitioned by UTC day',
        tableType: 'EXTERNAL_TABLE',
        parameters: {
          classification: 'json',
          'projection.enabled': 'true',
          'projection.dt.type': 'date',
          'projection.dt.format': 'yyyy-MM-dd',
          'projection.dt.range': '2026-01-01,NOW',
          'projection.dt.interval': '1',
          'projection.dt.interval.unit': 'DAYS',
          'storage.location.template': `${location}dt=\${dt}/`,
        },
        partitionKeys: [{ name: 'dt', type: 'string' }],
        storageDescriptor: {
          location,
          columns: DECISION_LOG_COLUMNS.map((c) => ({ name: c.name, type: c.type })),
          inputFormat: 'org.apache.hadoop.mapred.TextInputFormat',
          outputFormat: 'org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat',
          serdeInfo: {
            serializationLibrary: 'org.openx.data.jsonserde.JsonSerDe',
            parameters: { 'ignore.malformed.json': 'true' },
          },
        },
      },
    });
    this.table.node.addDependency(this.database);
  }
}
