import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import { Effect, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  LoggingFormat,
  RecursiveLoop,
  Runtime,
  SystemLogLevel,
  Tracing,
} from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { Access } from '#shared/functions.ts';
import { BUNDLE_ALIASES, ESM_REQUIRE_BANNER, asciiBundleCommand, bundleExternals, lazyModuleCommands } from '../bundling.ts';
import type { KairosTable } from './kairos-table.ts';

/** The repository root: entries in the function manifest are relative to it. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The Lambda runtime every Kairos function runs on. */
export const KAIROS_RUNTIME = Runtime.NODEJS_24_X;

export { ESM_REQUIRE_BANNER } from '../bundling.ts';

export interface KairosFunctionProps {
  /**
   * Handler module, relative to the repository root (an `entry` of
   * `shared/functions.ts`). It must export `handler`.
   */
  readonly entry: string;

  /** What the function does, shown in the Lambda console. */
  readonly description: string;

  /**
   * Memory in MB; CPU is allocated in proportion (1,769 MB = one full vCPU).
   * @default 1024
   */
  readonly memorySize?: number;

  /**
   * Maximum run time of one invocation.
   * @default Duration.seconds(10)
   */
  readonly timeout?: Duration;

  /**
   * How long the function's logs are kept.
   * @default RetentionDays.ONE_MONTH
   */
  readonly logRetention?: RetentionDays;

  /**
   * What happens to the log group when the stack is deleted.
   * @default RemovalPolicy.RETAIN (logs outlive the stack for audits)
   */
  readonly logRemovalPolicy?: RemovalPolicy;

  /**
   * Powertools service name (logger `service` key, metrics dimension, trace annotation).
   * @default 'kairos'
   */
  readonly serviceName?: string;

  /**
   * CloudWatch namespace of the Powertools metrics (EMF).
   * @default 'Kairos'
   */
  readonly metricsNamespace?: string;

  /**
   * Application log level (Lambda advanced logging; Powertools follows it).
   * @default ApplicationLogLevel.INFO
   */
  readonly logLevel?: ApplicationLogLevel;

  /**
   * Extra environment variables. Table names are added by `bindTable`, never here.
   * @default - none
   */
  readonly environment?: Record<string, string>;

  /**
   * Root of the project holding `package.json`, `tsconfig.json` and the lock file.
   * @default the repository root (two levels above this file)
   */
  readonly projectRoot?: string;
}

/**
 * A Node.js Lambda function with the Kairos defaults: nodejs24.x on arm64,
 * one minified ESM bundle per function built by the local esbuild (never
 * Docker), the AWS SDK v3 bundled (a pinned, tree-shaken SDK instead of
 * whichever version the runtime ships), the lazily loaded packages of
 * infra/bundling.ts (re2js) shipped beside the bundle in
 * `node_modules/`, aws-lite's XML parser left out of the bundle of a function
 * that makes no S3 request (`bundleExternals`), each bundle pure ASCII (`asciiBundle`), a source map beside it for stack traces
 * (read on the first error, not at cold start: shared/stack-traces.ts; no `--enable-source-maps`), an
 * explicit log group with retention, JSON logs, active X-Ray tracing and the
 * Powertools environment.
 *
 * It gets its own role without AWS managed policies: the only rights are
 * writing to its own log group, X-Ray, and what `bindTable` grants.
 */
export class KairosFunction extends NodejsFunction {
  /** The function's log group (retention set, not Lambda's implicit one). */
  public readonly functionLogGroup: LogGroup;

  /** The execution role; every grant lands here. */
  public readonly executionRole: Role;

  /** Tables bound to this function and the access granted, by table id. */
  public readonly boundTables = new Map<string, Access>();

  constructor(scope: Construct, id: string, props: KairosFunctionProps) {
    if (!/\.ts$/.test(props.entry)) {
      throw new Error(`KairosFunction ${id}: entry must be a TypeScript module path, got "${props.entry}"`);
    }
    const projectRoot = props.projectRoot ?? PROJECT_ROOT;

    // The log group and role are created before super() can run, so they
    // live beside the function: scope/<id>LogGroup, scope/<id>Role.
    const logGroup = new LogGroup(scope, `${id}LogGroup`, {
      retention: props.logRetention ?? RetentionDays.ONE_MONTH,
      removalPolicy: props.logRemovalPolicy ?? RemovalPolicy.RETAIN,
    });
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of the Kairos ${id} function`,
    });
    logGroup.grantWrite(role);

    super(scope, id, {
      entry: join(projectRoot, props.entry),
      handler: 'handler',
      projectRoot,
      depsLockFilePath: join(projectRoot, 'package-lock.json'),
      description: props.description,
      runtime: KAIROS_RUNTIME,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 1024,
      timeout: props.timeout ?? Duration.seconds(10),
      role,
      logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: props.logLevel ?? ApplicationLogLevel.INFO,
      systemLogLevelV2: SystemLogLevel.WARN,
      tracing: Tracing.ACTIVE,
      recursiveLoop: RecursiveLoop.TERMINATE,
      environment: {
        POWERTOOLS_SERVICE_NAME: props.serviceName ?? 'kairos',
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace ?? 'Kairos',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        mainFields: ['module', 'main'],
        banner: ESM_REQUIRE_BANNER,
        target: 'node24',
        minify: true,
        sourceMap: true,
        sourceMapMode: SourceMapMode.DEFAULT,
        // Stack traces need the mappings, not a copy of every source file.
        sourcesContent: false,
        bundleAwsSDK: true,
        // Lazily loaded packages (infra/bundling.ts): left out of the bundle and
        // copied beside it from the local node_modules (offline), loaded on first use;
        // and aws-lite's XML parser, left out unless the function makes S3 requests.
        externalModules: bundleExternals(props.entry),
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          // The bundle made pure ASCII, its source map moved to match (infra/bundling.ts
          // `asciiBundle`: esbuild leaves non-ASCII inside regular-expression literals).
          afterBundling: (_inputDir: string, outputDir: string) => [asciiBundleCommand(outputDir), ...lazyModuleCommands(outputDir)],
        },
        // `--alias:<package>=<path>` (CDK writes the key's value after a colon).
        esbuildArgs: { '--alias': Object.entries(BUNDLE_ALIASES).map(([name, path]) => `${name}=${path}`) },
        forceDockerBundling: false,
      },
    });

    this.functionLogGroup = logGroup;
    this.executionRole = role;

    Validations.of(role).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        'X-Ray active tracing: xray:PutTraceSegments and xray:PutTelemetryRecords do not support resource-level permissions, so the resource must be *.',
    });
  }

  /**
   * Grant exactly `access` on a table (and its indexes) and tell the function
   * the table's physical name through the table definition's `envVar`.
   * `read` never includes a write action; `write` never includes a read;
   * `readdelete` is `read` and `dynamodb:DeleteItem` alone; `get` is
   * `dynamodb:GetItem` and `dynamodb:BatchGetItem` on the table (never an
   * index), limited to the partition keys of `leadingKeys` when given;
   * `put` is `dynamodb:PutItem` only, limited to the partition keys of
   * `leadingKeys` when given (IAM `dynamodb:LeadingKeys`, `StringLike`).
   */
  public bindTable(table: KairosTable, access: Access, leadingKeys?: readonly string[]): this {
    if (this.boundTables.has(table.definition.id)) {
      throw new Error(`${this.node.id}: table ${table.definition.id} is already bound`);
    }
    if (access === 'read') table.table.grantReadData(this);
    else if (access === 'write') table.table.grantWriteData(this);
    else if (access === 'readwrite') table.table.grantReadWriteData(this);
    else if (access === 'readdelete') {
      table.table.grantReadData(this);
      table.table.grant(this, 'dynamodb:DeleteItem');
    }
    else if (access === 'get') {
      // Items by key alone (no Query, no Scan), and where leadingKeys are given, those partition keys only.
      this.addToRolePolicy(
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ['dynamodb:GetItem', 'dynamodb:BatchGetItem'],
          resources: [table.table.tableArn],
          ...(leadingKeys !== undefined ? { conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...leadingKeys] } } } : {}),
        }),
      );
    } else if (access === 'put' && leadingKeys !== undefined) {
      if (leadingKeys.length === 0) throw new Error(`${this.node.id}: empty leadingKeys on ${table.definition.id}`);
      this.addToRolePolicy(
        new PolicyStatement({
          effect: Effect.ALLOW,
          actions: ['dynamodb:PutItem'],
          resources: [table.table.tableArn],
          conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [...leadingKeys] } },
        }),
      );
    } else if (access === 'put') table.table.grant(this, 'dynamodb:PutItem');
    else throw new Error(`${this.node.id}: unknown access "${String(access)}" on ${table.definition.id}`);

    this.addEnvironment(table.definition.envVar, table.table.tableName);
    this.boundTables.set(table.definition.id, access);

    if ((table.definition.globalSecondaryIndexes?.length ?? 0) > 0 && leadingKeys === undefined && access !== 'get') {
      Validations.of(this.executionRole).acknowledge({
        id: `AwsSolutions-IAM5[Resource::<${table.logicalId}.Arn>/index/*]`,
        reason: `Access to the indexes of the ${table.definition.id} table only (${table.definition.globalSecondaryIndexes
          ?.map((i) => i.indexName)
          .join(', ')}), as granted by TableV2; no other table is reachable.`,
      });
    }
    return this;
  }
}
