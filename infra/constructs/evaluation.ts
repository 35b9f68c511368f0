import { Duration, RemovalPolicy, Stack, Validations, type CfnElement } from 'aws-cdk-lib';
import { BlockPublicAccess, Bucket, BucketEncryption, ObjectOwnership, type IBucket } from 'aws-cdk-lib/aws-s3';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  DefinitionBody,
  DistributedMap,
  ItemBatcher,
  JsonPath,
  LogLevel,
  S3ObjectsItemReader,
  StateMachine,
  StateMachineType,
  TaskInput,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { DECISION_LOG_PREFIX } from './decision-log.ts';
import type { KairosFunction } from './kairos-function.ts';

export interface EvaluationProps {
  /** The decision log's bucket (infra/constructs/decision-log.ts): its `decisions/dt=…/` objects are the map's items. */
  readonly logBucket: IBucket;
  /** Where the evaluation bucket writes its access logs (the decision log's access log bucket). */
  readonly accessLogs: IBucket;
  /** The three steps (shared/functions.ts evaluationInputs, evaluationMap, evaluationReduce). */
  readonly inputs: KairosFunction;
  readonly map: KairosFunction;
  readonly reduce: KairosFunction;
  /**
   * Decision log objects per map invocation.
   * @default 20
   */
  readonly objectsPerBatch?: number;
  /**
   * Map invocations at once.
   * @default 10
   */
  readonly maxConcurrency?: number;
  /**
   * How long an execution's inputs (candidate catalog, outcome index,
   * statistics) stay in the evaluation bucket.
   * @default Duration.days(7)
   */
  readonly inputsRetention?: Duration;
}

/**
 * Off-policy evaluation of a candidate catalog on the deployed decision log
 * (`npm run evaluate -- --deployed`): a Standard Step Functions state
 * machine — the inputs step (candidate checked, outcomes and statistics of
 * the range written to the evaluation bucket), a Distributed Map over the
 * decision log's objects under the range's `dt=` prefix (ItemReader S3
 * ListObjectsV2, items batched, each batch one invocation of the map
 * function running the same map step as `npm run evaluate` locally), and
 * the reduce step, whose result is the execution's output. Input:
 * shared/evaluation-steps.ts `EvaluationRequest`. Each function may read
 * or write only what its step needs; the state machine logs every event
 * and is traced.
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
      lifecycleRules: [{ expiration: props.inputsRetention ?? Duration.days(7) }],
      // Scratch data of executions: nothing to keep when the stack goes.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    // Exactly the actions each step takes (no CDK grant's wildcard actions): the inputs step puts its
    // execution's object, the map step gets it and the decision log's objects.
    const inputsObjects = this.bucket.arnForObjects('evaluations/*');
    props.inputs.addToRolePolicy(new PolicyStatement({ actions: ['s3:PutObject'], resources: [inputsObjects] }));
    props.map.addToRolePolicy(new PolicyStatement({ actions: ['s3:GetObject'], resources: [inputsObjects, props.logBucket.arnForObjects(`${DECISION_LOG_PREFIX}*`)] }));
    props.inputs.addEnvironment('KAIROS_EVALUATION_BUCKET', this.bucket.bucketName);
    props.map.addEnvironment('KAIROS_EVALUATION_BUCKET', this.bucket.bucketName);
    props.map.addEnvironment('KAIROS_DECISION_LOG_BUCKET', props.logBucket.bucketName);

    const inputs = new LambdaInvoke(this, 'Inputs', {
      stateName: 'Inputs',
      comment: 'Check the candidate; index the outcomes and sum the statistics of the range for the map step',
      lambdaFunction: props.inputs,
      payload: TaskInput.fromObject({ request: JsonPath.entirePayload, execution: JsonPath.executionName, logPrefix: DECISION_LOG_PREFIX }),
      payloadResponseOnly: true,
    });

    const partitions = new DistributedMap(this, 'Partitions', {
      stateName: 'Partitions',
      comment: 'Each batch of decision log objects of the range: the map step, to partial sums',
      itemReader: new S3ObjectsItemReader({ bucket: props.logBucket, prefix: JsonPath.stringAt('$.listPrefix') }),
      itemBatcher: new ItemBatcher({
        maxItemsPerBatch: props.objectsPerBatch ?? 20,
        // Rendered as written (ItemBatcher does not render JsonPath tokens): JSONPath keys end with `.$`.
        batchInput: { 'inputsKey.$': '$.inputsKey', 'from.$': '$.from', 'to.$': '$.to' },
      }),
      maxConcurrency: props.maxConcurrency ?? 10,
      mapExecutionType: StateMachineType.STANDARD,
      resultPath: '$.partitions',
    });
    partitions.itemProcessor(
      new LambdaInvoke(this, 'Partition', {
        stateName: 'Partition',
        lambdaFunction: props.map,
        payloadResponseOnly: true,
      }),
    );

    const reduce = new LambdaInvoke(this, 'Reduce', {
      stateName: 'Reduce',
      comment: 'The partial sums to the estimates, or the reason there are none',
      lambdaFunction: props.reduce,
      payload: TaskInput.fromObject({
        partitions: JsonPath.listAt('$.partitions'),
        reward: JsonPath.stringAt('$.reward'),
        minSupport: JsonPath.numberAt('$.minSupport'),
      }),
      payloadResponseOnly: true,
    });

    this.logGroup = new LogGroup(this, 'Logs', { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
    this.stateMachine = new StateMachine(this, 'StateMachine', {
      comment: 'Kairos off-policy evaluation of a candidate catalog on the decision log',
      definitionBody: DefinitionBody.fromChainable(inputs.next(partitions).next(reduce)),
      stateMachineType: StateMachineType.STANDARD,
      timeout: Duration.hours(2),
      tracingEnabled: true,
      logs: { destination: this.logGroup, level: LogLevel.ALL, includeExecutionData: true },
    });

    acknowledgeWildcards(this, props);
  }
}

/**
 * cdk-nag's AwsSolutions-IAM5 findings on the grants above, each bounded to
 * what its step needs: a prefix of one bucket, the versions of the three
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
  for (const applies of [inputsObjects, `Resource::${arnOf(props.logBucket as Bucket)}/${DECISION_LOG_PREFIX}*`]) {
    Validations.of(props.map.executionRole).acknowledge({
      id: `AwsSolutions-IAM5[${applies}]`,
      reason: "The map step may only GetObject: the decision log's objects under decisions/ (Firehose names them by day and time) and its execution's inputs under evaluations/ of the evaluation bucket.",
    });
  }
  for (const fn of [props.inputs, props.map, props.reduce]) {
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
