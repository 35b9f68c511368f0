import { RemovalPolicy, Stack, type CfnElement } from 'aws-cdk-lib';
import {
  AttributeType,
  Billing,
  ProjectionType,
  StreamViewType,
  TableEncryptionV2,
  TableV2,
  type Attribute,
} from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import type { KeyDefinition, TableDefinition } from '#store/tables.ts';

export interface KairosTableProps {
  /** The table's one definition (shared/store/tables.ts), also read by the store and the local stack. */
  readonly definition: TableDefinition;

  /**
   * What CloudFormation does with the table when it leaves the stack.
   * Customer data: kept unless the operator says otherwise.
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Refuse DeleteTable while set (a second lock besides the removal policy).
   * @default true
   */
  readonly deletionProtection?: boolean;
}

const ATTRIBUTE_TYPES: Record<KeyDefinition['type'], AttributeType> = {
  S: AttributeType.STRING,
  N: AttributeType.NUMBER,
  B: AttributeType.BINARY,
};

const toAttribute = (key: KeyDefinition): Attribute => ({ name: key.name, type: ATTRIBUTE_TYPES[key.type] });

/**
 * A DynamoDB table built from its shared definition: on demand,
 * point-in-time recovery, TTL, stream and indexes exactly as declared,
 * AWS-managed encryption, deletion protection and RETAIN.
 * The physical name is left to CloudFormation so that several stacks can
 * share an account; functions learn it through the definition's `envVar`.
 */
export class KairosTable extends Construct {
  public readonly definition: TableDefinition;
  public readonly table: TableV2;

  constructor(scope: Construct, id: string, props: KairosTableProps) {
    super(scope, id);
    const { definition } = props;
    if (definition.stream && definition.stream !== 'NEW_IMAGE') {
      throw new Error(`Table ${definition.id}: unsupported stream view type ${String(definition.stream)}`);
    }
    this.definition = definition;
    this.table = new TableV2(this, 'Table', {
      partitionKey: toAttribute(definition.partitionKey),
      sortKey: definition.sortKey ? toAttribute(definition.sortKey) : undefined,
      billing: Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      timeToLiveAttribute: definition.timeToLiveAttribute,
      dynamoStream: definition.stream === 'NEW_IMAGE' ? StreamViewType.NEW_IMAGE : undefined,
      globalSecondaryIndexes: definition.globalSecondaryIndexes?.map((index) => ({
        indexName: index.indexName,
        partitionKey: toAttribute(index.partitionKey),
        sortKey: index.sortKey ? toAttribute(index.sortKey) : undefined,
        projectionType: index.projection === 'ALL' ? ProjectionType.ALL : ProjectionType.KEYS_ONLY,
      })),
      encryption: TableEncryptionV2.awsManagedKey(),
      deletionProtection: props.deletionProtection ?? true,
      removalPolicy: props.removalPolicy ?? RemovalPolicy.RETAIN,
    });
  }

  /** CloudFormation logical id of the table (as cdk-nag names it in findings). */
  public get logicalId(): string {
    const stack = Stack.of(this);
    return stack.resolve((this.table.node.defaultChild as CfnElement).logicalId) as string;
  }

  /** ARN of the table's stream; throws if the definition declares none. */
  public get streamArn(): string {
    if (!this.definition.stream || !this.table.tableStreamArn) {
      throw new Error(`Table ${this.definition.id} has no stream`);
    }
    return this.table.tableStreamArn;
  }
}
