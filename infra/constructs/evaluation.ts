import { Duration, RemovalPolicy, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, type IBucket } from 'aws-cdk-lib/aws-s3';
import { Effect, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  DefinitionBody,
  DistributedMap,
  ItemBatcher,
  JsonPath,
  LogLevel,
  ResultWriterV2,
  S3ObjectsItemReader,
  StateMachine,
  StateMachineType,
  TaskInput,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { RESULTS_PREFIX, SCRATCH_PREFIX } from '#shared/evaluation-steps.ts';
import { DECISION_LOG_PREFIX } from './decision-log.ts';
import type { KairosFunction } from './kairos-function.ts';

export interface EvaluationProps {
  /** The decision log's bucket (infra/constructs/decision-log.ts): its `decisions/dt=…/` objects are the shuffle's items. */
  readonly logBucket: IBucket;
  /** Where the evaluation bucket writes its access logs (the decision log's access log bucket). */
  readonly accessLogs: IBucket;
  /** The four steps (shared/functions.ts evaluationInputs, evaluationShuffle, evaluationMap, evaluationReduce). */
  readonly inputs: KairosFunction;
  readonly shuffle: KairosFunction;
  readonly map: KairosFunction;
  readonly reduce: KairosFunction;
  /**
   * Decision log objects per shuffle invocation.
   * @default 20
   */
  readonly objectsPerBatch?: number;
  /**
   * Shuffle invocations, and map invocations, at once.
   * @default 10
   */
  readonly maxConcurrency?: number;
  /**
   * How long an execution's inputs (candidate catalog, outcome index,
   * statistics) stay in the evaluation bucket.
   * @default Duration.days(7)
   */
  readonly inputsRetention?: Duration;
  /**
   * How long the shuffle's scratch objects (copies of the range's decision
   * records, under SCRATCH_PREFIX) and the Distributed Maps' results
   * (under RESULTS_PREFIX) stay in the evaluation bucket. At least a day:
   * an execution reads them for up to its 2-hour timeout.
   * @default Duration.days(1)
   */
  readonly scratchRetention?: Duration;
}

/**
 * Off-policy evaluation of a candidate catalog on the deployed decision log
 * (`npm run evaluate -- --deployed`): a Standard Step Functions state
 * machine — the inputs step (candidate checked, outcomes and statistics of
 * the range written to the evaluation bucket), the shuffle (a Distributed
 * Map over the decision log's objects under the range's `dt=` prefix,
 * ItemReader S3 ListObjectsV2, items batched: each batch one invocation of
 * the shuffle function, which writes each record to the scratch shard of
 * its decision's reference), a Distributed Map over the shards (each one
 * invocation of the map function running the same map step as
 * `npm run evaluate` locally, over every copy of its decisions' records and
 * its shard's outcomes: each decision evaluated once), and the reduce step,
 * whose result is the execution's output. The two Distributed Maps write
 * their results to the evaluation bucket (ResultWriter, under
 * `results/<execution>/`, a folder per map run), never into the execution's state,
 * and the reduce step reads them from there. The shard count is the inputs
 * function's KAIROS_EVALUATION_SHARDS. Input:
 * shared/evaluation-steps.ts `EvaluationRequest`. Each function and the
 * state machine may read or write only what its step needs; the state
 * machine logs every event and is traced.
 */
export class Evaluation extends Construct {
  public readonly bucket: Bucket;
  public readonly stateMachine: StateMachine;
  public readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: EvaluationProps) {
    super(scope, id);

    this.bucket = new Bucket(this, 'Bucket', {
      encryption: BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      blockPublicAccess: BlockPublicAccess.BLOCK_ALL,
      objectOwnership: ObjectOwnership.BUCKET_OWNER_ENFORCED,
      serverAccessLogsBucket: props.accessLogs,
      serverAccessLogsPrefix: 'evaluation/',
      lifecycleRules: [
        { id: 'Inputs', prefix: 'evaluations/', expiration: props.inputsRetention ?? Duration.days(7) },
        // Copies of decision records: kept no longer than an execution needs them.
        { id: 'Scratch', prefix: SCRATCH_PREFIX, expiration: props.scratchRetention ?? Duration.days(1) },
        // The Distributed Maps' results (per-batch counts, per-shard sums): read once by the reduce step.
        { id: 'Results', prefix: RESULTS_PREFIX, expiration: props.scratchRetention ?? Duration.days(1) },
      ],
      // Scratch data of executions: nothing to keep when the stack goes.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Exactly the actions each step takes (no CDK grant's wildcard actions): the inputs step puts its
    // execution's object; the shuffle step gets the decision log's objects and puts scratch parts; the map
    // step gets the inputs and the scratch parts, and lists the scratch prefix (its shard's parts) only; the
    // reduce step gets the maps' results (their manifests and result files) only.
    const resultsObjects = this.bucket.arnForObjects(`${RESULTS_PREFIX}*`);
    const inputsObjects = this.bucket.arnForObjects('evaluations/*');
    const scratchObjects = this.bucket.arnForObjects(`${SCRATCH_PREFIX}*`);
    props.inputs.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject'], resources: [inputsObjects] }));
    props.shuffle.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [props.logBucket.arnForObjects(`${DECISION_LOG_PREFIX}*`)] }));
    props.shuffle.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject'], resources: [scratchObjects] }));
    props.map.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [inputsObjects, scratchObjects] }));
    props.map.addToRolePolicy(
      new PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn], conditions: { StringLike: { 's3:prefix': [`${SCRATCH_PREFIX}*`] } } }),
    );
    props.reduce.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [resultsObjects] }));
    props.inputs.addEnvironment('KAIROS_EVALUATION_BUCKET', this.bucket.bucketName);
    props.shuffle.addEnvironment('KAIROS_EVALUATION_BUCKET', this.bucket.bucketName);
    props.shuffle.addEnvironment('KAIROS_DECISION_LOG_BUCKET', props.logBucket.bucketName);
    props.map.addEnvironment('KAIROS_EVALUATION_BUCKET', this.bucket.bucketName);

    const inputs = new LambdaInvoke(this, 'Inputs', {
      stateName: 'Inputs',
      comment: 'Check the candidate; index the outcomes and sum the statistics of the range for the map step',
      lambdaFunction: props.inputs,
      payload: TaskInput.fromObject({ request: JsonPath.entirePayload, execution: JsonPath.executionName, logPrefix: DECISION_LOG_PREFIX }),
      payloadResponseOnly: true,
    });

    const shuffle = new DistributedMap(this, 'Shuffle', {
      stateName: 'Shuffle',
      comment: "Each batch of decision log objects of the range: every record to the scratch shard of its decision's reference",
      itemReader: new S3ObjectsItemReader({ bucket: props.logBucket, prefix: JsonPath.stringAt('$.listPrefix') }),
      itemBatcher: new ItemBatcher({
        maxItemsPerBatch: props.objectsPerBatch ?? 20,
        // Rendered as written (ItemBatcher does not render JsonPath tokens): JSONPath keys end with `.$`.
        batchInput: { 'scratchPrefix.$': '$.scratchPrefix', 'shardCount.$': '$.shardCount', 'from.$': '$.from', 'to.$': '$.to' },
      }),
      maxConcurrency: props.maxConcurrency ?? 10,
      mapExecutionType: StateMachineType.STANDARD,
      resultWriterV2: new ResultsWriter(this.bucket, JsonPath.stringAt('$.resultsPrefix')),
      // The map's output is where its results are (ResultWriterDetails), not the results.
      resultPath: '$.shuffled',
    });
    shuffle.itemProcessor(
      new LambdaInvoke(this, 'ShuffleBatch', {
        stateName: 'ShuffleBatch',
        lambdaFunction: props.shuffle,
        payloadResponseOnly: true,
      }),
    );

    const partitions = new DistributedMap(this, 'Shards', {
      stateName: 'Shards',
      comment: "Each shard: the map step over every copy of its decisions and the shard's outcomes, each decision once, to partial sums",
      itemsPath: JsonPath.stringAt('$.shards'),
      itemSelector: {
        shard: JsonPath.stringAt('$$.Map.Item.Value'),
        scratchPrefix: JsonPath.stringAt('$.scratchPrefix'),
        inputsKey: JsonPath.stringAt('$.inputsKey'),
        outcomesPrefix: JsonPath.stringAt('$.outcomesPrefix'),
        from: JsonPath.stringAt('$.from'),
        to: JsonPath.stringAt('$.to'),
      },
      maxConcurrency: props.maxConcurrency ?? 10,
      mapExecutionType: StateMachineType.STANDARD,
      resultWriterV2: new ResultsWriter(this.bucket, JsonPath.stringAt('$.resultsPrefix')),
      resultPath: '$.partitions',
    });
    partitions.itemProcessor(
      new LambdaInvoke(this, 'Shard', {
        stateName: 'Shard',
        lambdaFunction: props.map,
        payloadResponseOnly: true,
      }),
    );

    const reduce = new LambdaInvoke(this, 'Reduce', {
      stateName: 'Reduce',
      comment: 'The partial sums to the estimates, or the reason there are none',
      lambdaFunction: props.reduce,
      payload: TaskInput.fromObject({
        shuffled: JsonPath.objectAt('$.shuffled.ResultWriterDetails'),
        partitions: JsonPath.objectAt('$.partitions.ResultWriterDetails'),
        reward: JsonPath.stringAt('$.reward'),
        minSupport: JsonPath.numberAt('$.minSupport'),
      }),
      payloadResponseOnly: true,
    });

    this.logGroup = new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      comment: 'Kairos off-policy evaluation of a candidate catalog on the decision log',
      definitionBody: DefinitionBody.fromChainable(inputs.next(shuffle).next(partitions).next(reduce)),
      stateMachineType: StateMachineType.STANDARD,
      timeout: Duration.hours(2),
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: LogLevel.ALL, includeExecutionData: true },
    });

    acknowledgeWildcards(this, props);
  }
}

/**
 * A Distributed Map's ResultWriter into the evaluation bucket under the
 * execution's prefix in RESULTS_PREFIX (Step Functions adds a folder per
 * map run: its manifest and result files), whose grant to the state machine is that prefix only
 * — CDK's own grants the writer's actions on every object of the bucket.
 */
class ResultsWriter extends ResultWriterV2 {
  /** `prefix`: the execution's (evaluation-steps.ts `resultsPrefixOf`, under RESULTS_PREFIX), as a JSONPath of the state. */
  constructor(
    private readonly resultsBucket: Bucket,
    prefix: string,
  ) {
    super({ bucket: resultsBucket, prefix });
  }

  override providePolicyStatements(): PolicyStatement[] {
    // The actions Step Functions documents for a ResultWriter (multipart uploads of large result files).
    return [
      new PolicyStatement({
        effect: Effect.ALLOW,
        actions: ['s3:PutObject', 's3:GetObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
        resources: [this.resultsBucket.arnForObjects(`${RESULTS_PREFIX}*`)],
      }),
    ];
  }
}

/**
 * cdk-nag's AwsSolutions-IAM5 findings on the grants above, each bounded to
 * what its step needs: a prefix of one bucket, the versions of the four
 * functions, the child executions of the state machine's own Distributed
 * Map.
 */
function acknowledgeWildcards(evaluation: Evaluation, props: EvaluationProps): void {
  const stack = Stack.of(evaluation);
  const arnOf = (construct: Construct) => `<${stack.getLogicalId(construct.node.defaultChild as CfnElement)}.Arn>`;
  const inputsObjects = `Resource::${arnOf(evaluation.bucket)}/evaluations/*`;
  Validations.of(props.inputs.executionRole).acknowledge({
    id: `AwsSolutions-IAM5[${inputsObjects}]`,
    reason: 'The inputs step may only PutObject under evaluations/ of the evaluation bucket: one object per execution, named by the execution, known at run time.',
  });
  const scratchObjects = `Resource::${arnOf(evaluation.bucket)}/${SCRATCH_PREFIX}*`;
  const logObjects = `Resource::${arnOf(props.logBucket as Bucket)}/${DECISION_LOG_PREFIX}*`;
  Validations.of(props.shuffle.executionRole).acknowledge({
    id: `AwsSolutions-IAM5[${logObjects}]`,
    reason: "The shuffle step may only GetObject of the decision log's objects under decisions/ (Firehose names them by day and time).",
  });
  Validations.of(props.shuffle.executionRole).acknowledge({
    id: `AwsSolutions-IAM5[${scratchObjects}]`,
    reason: `The shuffle step may only PutObject under ${SCRATCH_PREFIX} of the evaluation bucket: its execution's shard parts, named by execution, shard and batch at run time, expired by the bucket's lifecycle.`,
  });
  for (const applies of [inputsObjects, scratchObjects]) {
    Validations.of(props.map.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[${applies}]`,
      reason: `The map step may only GetObject of its execution's inputs under evaluations/ and of its shard's parts under ${SCRATCH_PREFIX} of the evaluation bucket (and list that prefix only).`,
    });
  }
  const resultsObjects = `Resource::${arnOf(evaluation.bucket)}/${RESULTS_PREFIX}*`;
  Validations.of(props.reduce.executionRole).acknowledge({
    id: `AwsSolutions-IAM5[${resultsObjects}]`,
    reason: `The reduce step may only GetObject under ${RESULTS_PREFIX} of the evaluation bucket: the manifests and result files of its execution's Distributed Maps, named by map run at run time.`,
  });
  Validations.of(evaluation.stateMachine).acknowledge({
    id: `AwsSolutions-IAM5[${resultsObjects}]`,
    reason: `The Distributed Maps' ResultWriter writes (and reads back, for multipart uploads) under ${RESULTS_PREFIX} of the evaluation bucket only: a folder per map run, named by Step Functions at run time.`,
  });
  for (const fn of [props.inputs, props.shuffle, props.map, props.reduce]) {
    Validations.of(evaluation.stateMachine).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${arnOf(fn)}:*]`,
      reason: 'CDK LambdaInvoke grant: the state machine invokes this evaluation function and its versions (`<function arn>:*`), no other function.',
    });
  }
  Validations.of(evaluation.stateMachine).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason: 'X-Ray tracing (PutTraceSegments, PutTelemetryRecords, GetSampling*) and CloudWatch Logs log delivery (CreateLogDelivery, ...) take no resource-level permission.',
  });
  const executions = `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${stack.getLogicalId(evaluation.stateMachine.node.defaultChild as CfnElement)}"}]}]}`;
  for (const resource of [`${executions}:*`, `${executions}/*:*`]) {
    Validations.of(evaluation.stateMachine).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${resource}]`,
      reason: 'CDK DistributedMap grant: the state machine starts, describes and stops the child executions of its own Distributed Map (their names are generated at run time), no other state machine.',
    });
  }
}
