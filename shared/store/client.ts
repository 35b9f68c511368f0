/**
 * The one DynamoDB client of the product: aws-lite (`@aws-lite/client` with
 * the `@aws-lite/dynamodb` plugin), behind `DynamoClient.send`. Every store
 * module reads and writes through it, in every function.
 *
 * Why aws-lite (ARCHITECTURE.md, Budgets; `bench/clients.ts` measures it):
 * it bundles to about 116 KB against the AWS SDK v3 document client's
 * 205 KB, loads faster and reads faster warm; it is maintained (OpenJS
 * Architect) and signs with SigV4 (aws4).
 *
 * How it is made (`createDynamoClient`):
 * - region `AWS_REGION`; endpoint `DYNAMODB_ENDPOINT` on the local stack
 *   (DynamoDB Local, with dummy credentials), else DynamoDB's regional one;
 * - credentials from the environment as Lambda provides them
 *   (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), passed in
 *   explicitly so no file under ~/.aws is read; only without them does
 *   aws-lite look further (its own chain: files, SSO, container);
 * - no plugin autoloading, no ~/.aws/config; the DynamoDB plugin cut to
 *   the operations the product sends (`Operations`);
 * - keep-alive connections;
 * - bounded retries: aws-lite's own are off (they ignore deadlines); a
 *   throttled or unavailable request is sent again by shared/store/retry.ts
 *   (full jitter, `maxAttempts` in all) while the call's deadline allows;
 * - a deadline per call (`CallOptions.deadline`, default now + `timeoutMs`),
 *   retries included: past it the call rejects with a `timed-out` StoreFault
 *   (aws-lite takes no abort signal: the request itself is left to finish
 *   on its socket, its answer ignored);
 * - every failure is a typed `StoreFault` (shared/store/faults.ts);
 * - every HTTP request is counted (`requests`, `counts`): "one DynamoDB
 *   request per warm decision" is measured on this client.
 *
 * Items are plain objects (aws-lite marshals `Item`, `Key` and
 * `ExpressionAttributeValues`, undefined values removed, and unmarshals
 * answers, numbers as JS numbers). Binary attributes: written from a
 * Uint8Array, read back as their base64 text (aws-lite passes DynamoDB
 * JSON's `B` through as is); `bytesOf` turns either into bytes.
 */
import awsLite from '@aws-lite/client';
import dynamodbPlugin from '@aws-lite/dynamodb';
import { marshall, unmarshall } from '@aws-lite/client/src/_vendor/aws.js';
import { config } from '#shared/config.ts';
import { withDeadline } from './deadline.ts';
import { StoreFault, isTransient, toStoreFault } from './faults.ts';
import { retrying } from './retry.ts';

export type Item = Record<string, unknown>;

type Expressions = {
  ExpressionAttributeNames?: Record<string, string>;
  ExpressionAttributeValues?: Item;
};

export type TransactWriteItem =
  | { Put: { TableName: string; Item: Item; ConditionExpression?: string } & Expressions }
  | { Update: { TableName: string; Key: Item; UpdateExpression: string; ConditionExpression?: string } & Expressions }
  | { Delete: { TableName: string; Key: Item; ConditionExpression?: string } & Expressions }
  | { ConditionCheck: { TableName: string; Key: Item; ConditionExpression: string } & Expressions };

export type WriteRequest = { PutRequest: { Item: Item } } | { DeleteRequest: { Key: Item } };

interface Page {
  Items?: Item[];
  Count?: number;
  LastEvaluatedKey?: Item;
}

type QueryInput = {
  TableName: string;
  IndexName?: string;
  KeyConditionExpression?: string;
  FilterExpression?: string;
  ProjectionExpression?: string;
  ConsistentRead?: boolean;
  ScanIndexForward?: boolean;
  Limit?: number;
  ExclusiveStartKey?: Item;
  Select?: string;
} & Expressions;

/** The DynamoDB operations the product uses, their input and answer (items as plain objects). */
export interface Operations {
  GetItem: {
    input: { TableName: string; Key: Item; ConsistentRead?: boolean; ProjectionExpression?: string } & Expressions;
    output: { Item?: Item };
  };
  BatchGetItem: {
    input: { RequestItems: Record<string, { Keys: Item[]; ConsistentRead?: boolean; ProjectionExpression?: string } & Expressions> };
    output: { Responses?: Record<string, Item[]>; UnprocessedKeys?: Record<string, { Keys?: Item[] }> };
  };
  PutItem: {
    input: { TableName: string; Item: Item; ConditionExpression?: string; ReturnValues?: string } & Expressions;
    output: { Attributes?: Item };
  };
  UpdateItem: {
    input: { TableName: string; Key: Item; UpdateExpression: string; ConditionExpression?: string; ReturnValues?: string } & Expressions;
    output: { Attributes?: Item };
  };
  DeleteItem: {
    input: { TableName: string; Key: Item; ConditionExpression?: string; ReturnValues?: string } & Expressions;
    output: { Attributes?: Item };
  };
  Query: { input: QueryInput; output: Page };
  Scan: { input: Omit<QueryInput, 'KeyConditionExpression' | 'ScanIndexForward'>; output: Page };
  TransactWriteItems: { input: { TransactItems: TransactWriteItem[]; ClientRequestToken?: string }; output: Record<string, unknown> };
  BatchWriteItem: {
    input: { RequestItems: Record<string, WriteRequest[]> };
    output: { UnprocessedItems?: Record<string, WriteRequest[]> };
  };
}

export type Operation = keyof Operations;

/**
 * Every operation of `Operations`, once (the compiler holds the two equal).
 * The client is given the DynamoDB plugin cut to these: aws-lite copies its
 * whole configuration, plugins included, as JSON when a client is made, and
 * the plugin's other 44 methods (their validation tables and comments) were
 * about a millisecond of CPU of a cold start (client creation: median
 * 2.6 against 3.5 ms, 15 fresh processes each, alternating).
 */
const OPERATIONS = {
  GetItem: true,
  BatchGetItem: true,
  PutItem: true,
  UpdateItem: true,
  DeleteItem: true,
  Query: true,
  Scan: true,
  TransactWriteItems: true,
  BatchWriteItem: true,
} as const satisfies Record<Operation, true>;

/** `@aws-lite/dynamodb` with only the methods of OPERATIONS. */
const operationsPlugin = {
  ...dynamodbPlugin,
  methods: Object.fromEntries(Object.keys(OPERATIONS).map((name) => [name, (dynamodbPlugin.methods as Record<string, unknown>)[name]])),
} as typeof dynamodbPlugin;

export interface CallOptions {
  /** Instant (epoch ms) by which the call, retries included, answers or rejects `timed-out`. Default: now + the client's `timeoutMs`. */
  readonly deadline?: number;
  /** Attempts of this call (retries of throttled/unavailable requests included); default the client's `maxAttempts`. */
  readonly attempts?: number;
}

export interface DynamoClientOptions {
  /** DynamoDB's URL; default `DYNAMODB_ENDPOINT`, else the regional endpoint. */
  readonly endpoint?: string;
  /** Default `AWS_REGION`. */
  readonly region?: string;
  /** Default: dummy ones with an endpoint (DynamoDB Local), else the environment's (Lambda's). */
  readonly credentials?: Credentials;
  /** Default deadline of a call, retries included (ms). @default 10000 */
  readonly timeoutMs?: number;
  /** Attempts per call for throttled or unavailable requests. @default 3 */
  readonly maxAttempts?: number;
}

interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

type AwsLiteDynamo = { [O in Operation]: (input: Operations[O]['input']) => Promise<Operations[O]['output']> };

/** A binary attribute as read (base64 text) or written (bytes) as bytes; undefined for anything else. */
export function bytesOf(value: unknown): Uint8Array | undefined {
  if (value instanceof Uint8Array) return value;
  if (typeof value === 'string') return new Uint8Array(Buffer.from(value, 'base64'));
  return undefined;
}

/**
 * Bytes that serialise as DynamoDB JSON wants them: a Buffer (which the
 * marshaller takes as binary) whose JSON form is its base64 text.
 */
function wireBytes(bytes: Uint8Array): Buffer {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Object.defineProperty(Buffer.from(buffer), 'toJSON', { value: () => buffer.toString('base64') });
}

/** `value` with every Uint8Array (at any depth of maps and lists) made `wireBytes`; the same object when it has none. */
function withWireBytes<T>(value: T): T {
  if (value instanceof Uint8Array) return wireBytes(value) as T;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    value.forEach((v, i) => {
      const w = withWireBytes(v);
      if (w !== v) (out ??= [...value])[i] = w;
    });
    return (out ?? value) as T;
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    let out: Record<string, unknown> | undefined;
    for (const [k, v] of Object.entries(value)) {
      const w = withWireBytes(v);
      if (w !== v) (out ??= { ...(value as Record<string, unknown>) })[k] = w;
    }
    return (out ?? value) as T;
  }
  return value;
}

const WRITES = new Set<Operation>(['PutItem', 'UpdateItem', 'DeleteItem', 'TransactWriteItems', 'BatchWriteItem']);

/**
 * The input as the plugin wants it: a copy of what it marshals in place
 * (transaction items, batch key lists), so a caller's input can be sent
 * again; a page's start key marshalled (the plugin leaves it as given).
 */
function detached<O extends Operation>(operation: O, input: Operations[O]['input']): Operations[O]['input'] {
  if ((operation === 'Query' || operation === 'Scan') && (input as QueryInput).ExclusiveStartKey) {
    const start = (input as QueryInput).ExclusiveStartKey as Item;
    return { ...input, ExclusiveStartKey: marshall(start) } as Operations[O]['input'];
  }
  if (WRITES.has(operation)) input = withWireBytes(input);
  if (operation === 'TransactWriteItems') {
    const { TransactItems, ...rest } = input as Operations['TransactWriteItems']['input'];
    return {
      ...rest,
      TransactItems: TransactItems.map((item) => Object.fromEntries(Object.entries(item).map(([k, v]) => [k, { ...(v as object) }]))),
    } as Operations[O]['input'];
  }
  if (operation === 'BatchGetItem') {
    const { RequestItems } = input as Operations['BatchGetItem']['input'];
    return { RequestItems: Object.fromEntries(Object.entries(RequestItems).map(([t, r]) => [t, { ...r }])) } as Operations[O]['input'];
  }
  return input;
}

const tableOf = (operation: Operation, input: Record<string, unknown>): string => {
  if (typeof input.TableName === 'string') return input.TableName;
  if (input.RequestItems && typeof input.RequestItems === 'object') return Object.keys(input.RequestItems).join(',');
  if (operation === 'TransactWriteItems') {
    const tables = new Set((input.TransactItems as Record<string, { TableName?: string }>[]).map((i) => Object.values(i)[0]?.TableName));
    return [...tables].join(',');
  }
  return '';
};

export class DynamoClient {
  endpoint: string | undefined;
  readonly region: string;
  /** HTTP requests sent (attempts included). */
  requests = 0;
  /** HTTP requests by `<Operation> <table>`. */
  readonly counts = new Map<string, number>();
  private readonly timeoutMs: number;
  private readonly maxAttempts: number;
  private api: Promise<AwsLiteDynamo> | undefined;
  private readonly initialEndpoint: string | undefined;
  private readonly credentials: Credentials | undefined;

  constructor(options: DynamoClientOptions = {}) {
    this.endpoint = options.endpoint ?? config.DYNAMODB_ENDPOINT;
    this.initialEndpoint = this.endpoint;
    this.region = options.region ?? config.AWS_REGION;
    this.credentials = options.credentials;
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  }

  /**
   * One DynamoDB operation. Rejects with a StoreFault (shared/store/faults.ts):
   * throttled and unavailable requests are sent again while attempts and the
   * deadline allow; `timed-out` at the deadline.
   */
  send<O extends Operation>(operation: O, input: Operations[O]['input'], options: CallOptions = {}): Promise<Operations[O]['output']> {
    const deadline = options.deadline ?? Date.now() + this.timeoutMs;
    return retrying(() => this.attempt(operation, input, deadline), isTransient, {
      attempts: options.attempts ?? this.maxAttempts,
      baseMs: 10,
      capMs: 200,
      deadline,
    });
  }

  private async attempt<O extends Operation>(operation: O, input: Operations[O]['input'], deadline: number): Promise<Operations[O]['output']> {
    if (deadline - Date.now() <= 0) throw new StoreFault('TimeoutError', `DynamoDB ${operation} did not answer before the deadline`, 'timed-out');
    const countKey = `${operation} ${tableOf(operation, input)}`;
    try {
      const api = await this.connect();
      this.requests++;
      this.counts.set(countKey, (this.counts.get(countKey) ?? 0) + 1);
      const call = api[operation] as (input: Operations[O]['input']) => Promise<Operations[O]['output']>;
      const output = await withDeadline(call(detached(operation, input)), deadline, `DynamoDB ${operation}`);
      // The plugin unmarshals a page's items, not where it stopped.
      const page = output as Page;
      if (page.LastEvaluatedKey) page.LastEvaluatedKey = unmarshall(page.LastEvaluatedKey, { wrapNumbers: false });
      return output;
    } catch (error) {
      throw toStoreFault(error);
    }
  }

  private connect(): Promise<AwsLiteDynamo> {
    this.api ??= createAwsLite(this.endpoint, this.region, this.credentials ?? environmentCredentials(this.endpoint !== undefined)).catch((error: unknown) => {
      this.api = undefined;
      throw error;
    });
    return this.api;
  }

  /**
   * Send this client's requests to another endpoint from now on (undefined:
   * back to the one it was made with). Tests point it at a closed port or a
   * server that never answers: a real outage, for the faults DynamoDB Local
   * itself cannot produce.
   */
  useEndpoint(endpoint: string | undefined): void {
    this.endpoint = endpoint ?? this.initialEndpoint;
    this.api = undefined;
  }

  /** Forget the request counts. */
  resetCounts(): void {
    this.requests = 0;
    this.counts.clear();
  }
}

/**
 * The credentials every AWS client of the product signs with (the bus's
 * too, shared/bus/eventbridge.ts): dummy ones on the local stack (`local`),
 * else the environment's as Lambda provides them (undefined: aws-lite looks
 * further).
 */
export function environmentCredentials(local: boolean): Credentials | undefined {
  if (local) return { accessKeyId: 'local', secretAccessKey: 'local' };
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) return undefined;
  const sessionToken = process.env.AWS_SESSION_TOKEN;
  return sessionToken ? { accessKeyId, secretAccessKey, sessionToken } : { accessKeyId, secretAccessKey };
}

async function createAwsLite(endpoint: string | undefined, region: string, credentials: Credentials | undefined): Promise<AwsLiteDynamo> {
  const client = await awsLite({
    region,
    ...(endpoint ? { endpoint } : {}),
    ...credentials,
    plugins: [operationsPlugin],
    autoloadPlugins: false,
    awsConfigFile: false,
    keepAlive: true,
    retries: 0,
    // Not in aws-lite's types: the marshalling options of its vendored @aws-sdk/util-dynamodb.
    ...({ awsjsonMarshall: { removeUndefinedValues: true } } as object),
  });
  return (client as unknown as { DynamoDB: AwsLiteDynamo }).DynamoDB;
}

let shared: DynamoClient | undefined;

/** The process's client (made on first use, from the environment). */
export function dynamo(): DynamoClient {
  shared ??= new DynamoClient();
  return shared;
}
