/**
 * The local stack (ARCHITECTURE.md, "The local stack"): DynamoDB Local, the
 * tables from the shared definitions, the write key, the same handler
 * modules the CDK stack deploys behind a local API Gateway, the Events
 * stream polled into the profile function like Lambda's event source
 * mapping, and the Outbox stream into the dispatcher, which publishes to a
 * local bus (`<dataDir>/outbox.jsonl`) and scheduler (`<dataDir>/schedules/`,
 * local/outbox.ts) in place of EventBridge and EventBridge Scheduler.
 * Used by `npm start`, the e2e tests and the bench.
 *
 * Handler modules read their configuration from `process.env` when they are
 * first imported (shared/config.ts), so this module sets the environment
 * first and imports them dynamically afterwards; nothing here imports
 * `#shared/config.ts` statically. One stack per process.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type * as AdminModule from '#functions/admin/handler.ts';
import type * as DispatcherModule from '#functions/dispatcher/handler.ts';
import { functionDefinitions, type LambdaName } from '#shared/functions.ts';
import type { FunctionName } from '#http/routes.ts';
import { eventsTable, outboxTable, profilesTable } from '#store/tables.ts';
import { packageVersion } from '#infra/package-version.ts';
import { loadLocalCatalog, type CatalogLoader, type CatalogLoadResult } from './catalog.ts';
import { claimDataFolder } from './data-folder-lock.ts';
import { DECISION_COUNT_FAILURES_FILE, LocalDecisionCounter } from './decision-counter.ts';
import { captureDecisionRecords, LocalDecisionLog } from './decision-log.ts';
import { resolveMaxHeap, superviseDynamoLocal, type DynamoLocal } from './dynamodb.ts';
import { FailureQueue, type OnFailureRecord } from './failure-queue.ts';
import type { LambdaHandler, LocalFunction } from './lambda.ts';
import { startLocalServer, type LocalServer } from './server.ts';
import { LocalBus, LocalScheduler, type DeliveredEvent } from './outbox.ts';
import { StreamPoller, eventNameFilter, type StreamPollerOptions, type StreamPollerStats } from './stream-poller.ts';
import { ensureTables, indexesActive } from './tables.ts';
import { dispatcherStreamSettings, profileStreamSettings } from '#shared/functions.ts';

/** How long a start waits for an index added to a kept Profiles table to be built (ms). */
const INDEX_BUILD_WAIT_MS = 10_000;

/** How long stopping waits for the decision counts of the last decisions, ms. */
const DECISION_COUNT_DRAIN_MS = 2_000;

export const REPOSITORY_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

export interface LocalStackOptions {
  /** HTTP port; 0 for a free one. @default env PORT, else 3000 */
  readonly port?: number;
  /** @default 127.0.0.1 */
  readonly host?: string;
  /** Where DynamoDB Local keeps its data, plus the generated keys and the failure queue. @default env KAIROS_DATA_DIR, else `.kairos/` */
  readonly dataDir?: string;
  /** Keep nothing on disk (tests). @default env KAIROS_IN_MEMORY=1 */
  readonly inMemory?: boolean;
  /** A fixed public write key (the one a page or an app ships) instead of a generated one. @default env KAIROS_WRITE_KEY */
  readonly writeKey?: string;
  /** A fixed server write key (a back-end's secret) instead of a generated one. @default env KAIROS_SERVER_KEY */
  readonly serverKey?: string;
  /** A fixed user-token secret of the public write key (32-512 characters) instead of a generated one. @default env KAIROS_USER_TOKEN_SECRET */
  readonly userTokenSecret?: string;
  /** A fixed secret decision ids are sealed with (32-512 characters) instead of a generated one. @default env KAIROS_DECISION_KEY */
  readonly decisionKey?: string;
  /** A fixed admin token instead of a generated one. @default env KAIROS_ADMIN_TOKEN */
  readonly adminToken?: string;
  /** A catalog file to load. @default env KAIROS_CATALOG */
  readonly catalogFile?: string;
  /** Prefix of the physical table names. @default env KAIROS_TABLE_PREFIX, else none */
  readonly tablePrefix?: string;
  /** @default env AWS_REGION, else us-east-1 */
  readonly region?: string;
  /** Log level of the handlers' Powertools logger. @default env POWERTOOLS_LOG_LEVEL, else WARN */
  readonly logLevel?: string;
  /** One line per HTTP request. */
  readonly accessLog?: (line: string) => void;
  /** Operator messages (stream failures, function errors, DynamoDB Local restarts). @default stderr */
  readonly log?: (line: string) => void;
  /** Maximum heap of DynamoDB Local's JVM (`-Xmx`). @default env KAIROS_DYNAMODB_HEAP, else 512m */
  readonly dynamoMaxHeap?: string;
  /**
   * DynamoDB Local died and is not coming back: in memory (its data died
   * with it), or it could not be restarted. The stack cannot serve; `npm
   * start` stops and exits non-zero. A persistent emulator that dies is
   * restarted and this is not called. @default log the error
   */
  readonly onStoreLost?: (error: Error) => void;
  /** Time allowed to receive a request body. @default 30 s */
  readonly bodyTimeoutMs?: number;
  /** Tuning of the stream poller (batch size, retries, backoff...). */
  readonly stream?: Partial<
    Pick<StreamPollerOptions, 'batchSize' | 'idlePollMs' | 'maxRetryAttempts' | 'retryBackoffMs' | 'bisectOnError' | 'discoverIntervalMs'>
  >;
  /** Catalog loading step (local/catalog.ts by default). */
  readonly loadCatalog?: CatalogLoader;
  /** Where the environment settings are read from. @default process.env */
  readonly env?: NodeJS.ProcessEnv;
}

export interface LocalStack {
  /** Base URL of the HTTP API, e.g. http://127.0.0.1:3000 */
  readonly url: string;
  readonly port: number;
  /** The public write key. */
  readonly writeKey: string;
  /** The server write key. */
  readonly serverKey: string;
  /** The secret user tokens of the public write key are signed with (HS256). */
  readonly userTokenSecret: string;
  readonly adminToken: string;
  /** Whether each credential was generated, by this start or an earlier one over the same data folder (which remembers it), rather than set by the environment. */
  readonly generated: {
    readonly writeKey: boolean;
    readonly serverKey: boolean;
    readonly userTokenSecret: boolean;
    readonly adminToken: boolean;
  };
  readonly inMemory: boolean;
  /** Absent for an in-memory stack. */
  readonly dataDir?: string;
  /**
   * Where the decide function's decision records are appended
   * (local/decision-log.ts): `<dataDir>/decisions/`; for an in-memory stack
   * a temporary folder, removed when the stack stops.
   */
  readonly decisionLog: string;
  readonly dynamoEndpoint: string;
  readonly tables: Readonly<Record<'EVENTS_TABLE' | 'PROFILES_TABLE' | 'CONTROL_TABLE' | 'OUTBOX_TABLE', string>>;
  readonly streamArn: string;
  readonly catalog: CatalogLoadResult;
  /** Records sent to the failure queue by the stream pollers since start. */
  failures(): readonly OnFailureRecord[];
  /** What the local bus delivered (the lines of outbox.jsonl), oldest first. */
  emissions(): readonly DeliveredEvent[];
  /** The timers (deferred sends, journey waits) the local scheduler has not fired yet, soonest first. */
  schedules(): readonly { readonly event: { readonly id: string }; readonly at: number }[];
  streamStats(): StreamPollerStats;
  /** Stop HTTP (in-flight requests finish), the poller (in-flight batch finishes), then DynamoDB Local. */
  stop(): Promise<void>;
}

const WRITE_KEY_SHAPE = /^[\x21-\x39\x3b-\x7e]{1,200}$/; // printable ASCII, no ':' (it is a Basic user name)
const ADMIN_TOKEN_SHAPE = /^[\x21-\x7e]{16,512}$/;
/** A prefix of the local table names: what DynamoDB table names hold (`[A-Za-z0-9_.-]`, 3-255 in all). */
const TABLE_PREFIX_SHAPE = /^[A-Za-z0-9_.-]{0,200}$/;
const SECRET_SHAPE = /^[\x21-\x7e]{32,512}$/; // user-token secret, decision key

export interface ResolvedLocalStackConfig {
  readonly port: number;
  readonly host: string;
  readonly inMemory: boolean;
  readonly dataDir: string;
  readonly writeKey?: string;
  readonly serverKey?: string;
  readonly userTokenSecret?: string;
  readonly decisionKey?: string;
  readonly adminToken?: string;
  readonly catalogFile?: string;
  readonly tablePrefix: string;
  readonly region: string;
  readonly logLevel: string;
  readonly dynamoMaxHeap: string;
}

/** Options over environment over defaults; a bad value fails with its name. */
export function resolveLocalStackConfig(options: LocalStackOptions = {}): ResolvedLocalStackConfig {
  const env = options.env ?? process.env;
  const nonEmpty = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());
  const portText = options.port ?? nonEmpty(env.PORT) ?? 3000;
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number (0-65535), got "${portText}"`);
  const writeKey = options.writeKey ?? nonEmpty(env.KAIROS_WRITE_KEY);
  if (writeKey !== undefined && !WRITE_KEY_SHAPE.test(writeKey)) {
    throw new Error('KAIROS_WRITE_KEY must be 1-200 printable ASCII characters without spaces or ":"');
  }
  const serverKey = options.serverKey ?? nonEmpty(env.KAIROS_SERVER_KEY);
  if (serverKey !== undefined && !WRITE_KEY_SHAPE.test(serverKey)) {
    throw new Error('KAIROS_SERVER_KEY must be 1-200 printable ASCII characters without spaces or ":"');
  }
  if (serverKey !== undefined && serverKey === writeKey) throw new Error('KAIROS_SERVER_KEY must differ from KAIROS_WRITE_KEY');
  const userTokenSecret = options.userTokenSecret ?? nonEmpty(env.KAIROS_USER_TOKEN_SECRET);
  if (userTokenSecret !== undefined && !SECRET_SHAPE.test(userTokenSecret)) {
    throw new Error('KAIROS_USER_TOKEN_SECRET must be 32-512 printable ASCII characters without spaces');
  }
  const decisionKey = options.decisionKey ?? nonEmpty(env.KAIROS_DECISION_KEY);
  if (decisionKey !== undefined && !SECRET_SHAPE.test(decisionKey)) {
    throw new Error('KAIROS_DECISION_KEY must be 32-512 printable ASCII characters without spaces');
  }
  const adminToken = options.adminToken ?? nonEmpty(env.KAIROS_ADMIN_TOKEN);
  if (adminToken !== undefined && !ADMIN_TOKEN_SHAPE.test(adminToken)) {
    throw new Error('KAIROS_ADMIN_TOKEN must be 16-512 printable ASCII characters without spaces');
  }
  const tablePrefix = options.tablePrefix ?? env.KAIROS_TABLE_PREFIX ?? '';
  if (!TABLE_PREFIX_SHAPE.test(tablePrefix)) {
    throw new Error('KAIROS_TABLE_PREFIX must be at most 200 characters: letters, digits, "_", "-" and "." (what DynamoDB table names hold)');
  }
  const inMemoryText = nonEmpty(env.KAIROS_IN_MEMORY)?.toLowerCase();
  const catalogFile = options.catalogFile ?? nonEmpty(env.KAIROS_CATALOG);
  return {
    port,
    host: options.host ?? '127.0.0.1',
    inMemory: options.inMemory ?? (inMemoryText === '1' || inMemoryText === 'true'),
    dataDir: resolve(options.dataDir ?? nonEmpty(env.KAIROS_DATA_DIR) ?? '.kairos'),
    ...(writeKey !== undefined ? { writeKey } : {}),
    ...(serverKey !== undefined ? { serverKey } : {}),
    ...(userTokenSecret !== undefined ? { userTokenSecret } : {}),
    ...(decisionKey !== undefined ? { decisionKey } : {}),
    ...(adminToken !== undefined ? { adminToken } : {}),
    ...(catalogFile !== undefined ? { catalogFile: resolve(catalogFile) } : {}),
    tablePrefix,
    region: options.region ?? nonEmpty(env.AWS_REGION) ?? 'us-east-1',
    logLevel: options.logLevel ?? nonEmpty(env.POWERTOOLS_LOG_LEVEL) ?? 'WARN',
    dynamoMaxHeap: resolveMaxHeap(options.dynamoMaxHeap, env),
  };
}

interface Secrets {
  writeKey?: string;
  serverKey?: string;
  userTokenSecret?: string;
  decisionKey?: string;
  adminToken?: string;
}

const secretsFile = (dataDir: string) => join(dataDir, 'local-secrets.json');

function readSecrets(dataDir: string): Secrets {
  try {
    const parsed = JSON.parse(readFileSync(secretsFile(dataDir), 'utf8')) as Secrets;
    const shapes: Record<keyof Secrets, RegExp> = {
      writeKey: WRITE_KEY_SHAPE,
      serverKey: WRITE_KEY_SHAPE,
      userTokenSecret: SECRET_SHAPE,
      decisionKey: SECRET_SHAPE,
      adminToken: ADMIN_TOKEN_SHAPE,
    };
    const secrets: Secrets = {};
    for (const [name, shape] of Object.entries(shapes) as [keyof Secrets, RegExp][]) {
      const value = parsed[name];
      if (typeof value === 'string' && shape.test(value)) secrets[name] = value;
    }
    return secrets;
  } catch {
    return {};
  }
}

function writeSecrets(dataDir: string, secrets: Secrets): void {
  mkdirSync(dataDir, { recursive: true });
  const file = secretsFile(dataDir);
  writeFileSync(file, `${JSON.stringify(secrets, null, 2)}\n`, { encoding: 'utf8', mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * A start-up step against a DynamoDB Local that has only just come up: the
 * store's short per-call deadline can pass while its JVM is still cold on a
 * loaded machine, so an `unavailable` answer is tried again for up to a
 * minute (every step here is idempotent). Anything else fails at once.
 */
async function whileStarting<T>(what: string, step: () => Promise<T>, log: (line: string) => void): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      const unavailable = (error as { kind?: unknown }).kind === 'unavailable' || (error as Error).name === 'TimeoutError';
      if (!unavailable || Date.now() > deadline) throw error;
      if (attempt === 1) log(`${what}: DynamoDB Local is slow to answer (${(error as Error).message}); trying again`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

const generateAdminToken = () => `kat_${randomBytes(24).toString('base64url')}`;
const generateSecret = (prefix: string) => `${prefix}_${randomBytes(32).toString('base64url')}`;

let running = false;

/** The environment the handler modules read at load (what the CDK stack sets on each function, plus the local endpoint). */
function exportEnvironment(values: {
  endpoint: string;
  tables: Record<string, string>;
  adminToken: string;
  decisionKey: string;
  region: string;
  logLevel: string;
}): void {
  const env = process.env;
  env.DYNAMODB_ENDPOINT = values.endpoint;
  Object.assign(env, values.tables);
  env.KAIROS_ADMIN_TOKEN = values.adminToken;
  env.KAIROS_DECISION_KEY = values.decisionKey;
  env.AWS_REGION = values.region;
  env.AWS_DEFAULT_REGION = values.region;
  // Dummy credentials: nothing local may ever reach a real AWS account.
  env.AWS_ACCESS_KEY_ID = 'local';
  env.AWS_SECRET_ACCESS_KEY = 'local';
  delete env.AWS_SESSION_TOKEN;
  delete env.AWS_PROFILE;
  // What GET /v1/health answers, as the CDK stack sets it: package.json's version, unless set.
  env.KAIROS_VERSION ??= packageVersion();
  env.POWERTOOLS_SERVICE_NAME ??= 'kairos';
  env.POWERTOOLS_METRICS_NAMESPACE ??= 'Kairos';
  // EMF metrics only mean something in CloudWatch; locally they would flood the console.
  env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  env.POWERTOOLS_TRACE_ENABLED = 'false';
  env.POWERTOOLS_LOG_LEVEL = values.logLevel;
}

async function loadFunction(name: LambdaName): Promise<LocalFunction> {
  const definition = functionDefinitions[name];
  const module = (await import(pathToFileURL(join(REPOSITORY_ROOT, definition.entry)).href)) as { handler?: unknown };
  if (typeof module.handler !== 'function') {
    throw new Error(`${definition.entry} does not export a \`handler\` function`);
  }
  return {
    name,
    handler: module.handler as LambdaHandler,
    timeoutSeconds: definition.timeoutSeconds,
    memorySize: definition.memorySize,
  };
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  if (running) throw new Error('A local stack is already running in this process (handler modules read their configuration once)');
  running = true;
  const cfg = resolveLocalStackConfig(options);
  const log = options.log ?? ((line: string) => console.error(`[kairos] ${line}`));
  let ready = false;
  const functions = {} as Record<FunctionName, LocalFunction>;
  let server: LocalServer | undefined;
  let dynamo: DynamoLocal | undefined;
  let poller: StreamPoller | undefined;
  // The decide function's decision records, as the deployed subscription filter would send them to Firehose.
  const decisionsFolder = cfg.inMemory ? mkdtempSync(join(tmpdir(), 'kairos-decisions-')) : join(cfg.dataDir, 'decisions');
  // Each write of the log is counted into the actions report's decisions, as the deployed decision counter counts each
  // object Firehose delivers: the same counting code, imported once the stack's environment is set (the first write
  // follows the first decision).
  const counter = new LocalDecisionCounter(
    async (chunk, text) => (await import('#store/statistics.ts')).countDecisionLogChunk(chunk, text),
    {
      onFailure: (chunk, error) => log(`decision counts of ${chunk} not written yet (tried again): ${error instanceof Error ? error.message : String(error)}`),
      ...(cfg.inMemory ? {} : { failureFile: join(cfg.dataDir, DECISION_COUNT_FAILURES_FILE) }),
      onSetAside: (aside) =>
        log(`decision counts of ${aside.chunk} given up after ${aside.attempts} attempts${cfg.inMemory ? '' : ` (set aside in ${DECISION_COUNT_FAILURES_FILE})`}: ${aside.reason}`),
    },
  );
  const decisions = new LocalDecisionLog(decisionsFolder, { onWrite: counter.add });
  const releaseStdout = captureDecisionRecords(decisions);
  /** Write what the log holds and count it, while DynamoDB Local still runs (at most DECISION_COUNT_DRAIN_MS: within start.ts's stop deadline). */
  const countDecisions = async () => {
    decisions.flush();
    await counter.drain(Date.now() + DECISION_COUNT_DRAIN_MS);
    if (counter.pending > 0) log(`decision counts of ${counter.pending} decision log chunks not written: the store did not answer`);
  };
  const closeDecisionLog = () => {
    releaseStdout();
    decisions.close();
    if (cfg.inMemory) rmSync(decisionsFolder, { recursive: true, force: true });
  };
  let outboxPoller: StreamPoller | undefined;
  let scheduler: LocalScheduler | undefined;
  let releaseDataFolder = () => {};
  const cleanup = async () => {
    await server?.stop().catch(() => undefined);
    await poller?.stop().catch(() => undefined);
    await outboxPoller?.stop().catch(() => undefined);
    scheduler?.stop();
    await dynamo?.stop().catch(() => undefined);
    closeDecisionLog();
    releaseDataFolder();
  };

  try {
    // Claim the port first: a clash is reported before DynamoDB Local is started. Until ready: 503.
    try {
      server = await startLocalServer({
        functions,
        host: cfg.host,
        port: cfg.port,
        region: cfg.region,
        isReady: () => ready,
        ...(options.bodyTimeoutMs !== undefined ? { bodyTimeoutMs: options.bodyTimeoutMs } : {}),
        ...(options.accessLog ? { accessLog: options.accessLog } : {}),
        onFunctionError: (route, error, reason) => log(`${route}: function ${reason}: ${error.stack ?? error.message}`),
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
        throw new Error(`Port ${cfg.port} is already in use on ${cfg.host}; set PORT to another port (or stop the other process)`);
      }
      throw error;
    }

    // One stack per data folder: a second one over it is refused before it starts a DynamoDB Local there.
    if (!cfg.inMemory) releaseDataFolder = claimDataFolder(cfg.dataDir);

    const onStoreLost = options.onStoreLost ?? ((error: Error) => log(error.message));
    dynamo = await superviseDynamoLocal({
      inMemory: cfg.inMemory,
      dataDir: cfg.dataDir,
      maxHeap: cfg.dynamoMaxHeap,
      onDown: (how) => {
        poller?.pause();
        outboxPoller?.pause();
        log(`DynamoDB Local exited unexpectedly (${how})${cfg.inMemory ? '' : '; restarting it on the same port over the same data'}`);
      },
      onRestarted: (pid) => {
        log(`DynamoDB Local is back (process ${pid}); the stream is read again from shortly before the outage`);
        poller?.resume();
        outboxPoller?.resume();
      },
      onLost: (error) => onStoreLost(error),
    });
    const client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: cfg.region,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    let tables: Record<'EVENTS_TABLE' | 'PROFILES_TABLE' | 'CONTROL_TABLE' | 'OUTBOX_TABLE', string>;
    // A kept data folder's identity links written before the Profiles table's `byProfile` index: indexed below, once
    // the index is built (at every start of a kept folder, so that a start stopped before the end is made up for).
    let linksToIndex = false;
    try {
      tables = await ensureTables(client, cfg.tablePrefix, (table) => {
        if (table === profilesTable.id) linksToIndex = true;
      });
      if (linksToIndex && !(await indexesActive(client, tables.PROFILES_TABLE, INDEX_BUILD_WAIT_MS))) {
        linksToIndex = false;
        log('the Profiles index is still being built: identity links written before it are indexed at the next start');
      }
    } finally {
      client.destroy();
    }

    const remembered = cfg.inMemory ? {} : readSecrets(cfg.dataDir);
    const adminToken = cfg.adminToken ?? remembered.adminToken ?? generateAdminToken();
    const decisionKey = cfg.decisionKey ?? remembered.decisionKey ?? generateSecret('kdk');
    const userTokenSecret = cfg.userTokenSecret ?? remembered.userTokenSecret ?? generateSecret('uts');

    exportEnvironment({ endpoint: dynamo.endpoint, tables, adminToken, decisionKey, region: cfg.region, logLevel: cfg.logLevel });
    const { config } = await import('#shared/config.ts');
    if (config.DYNAMODB_ENDPOINT !== dynamo.endpoint || config.EVENTS_TABLE !== tables.EVENTS_TABLE) {
      throw new Error(
        'shared/config.ts was loaded before the local stack set its environment: import handler modules only after startLocalStack',
      );
    }

    if (linksToIndex) {
      const { indexIdentityLinks } = await import('#store/profiles.ts');
      const { indexed } = await indexIdentityLinks();
      if (indexed > 0) log(`indexed ${indexed} identity link(s) of the data folder, for the export and the erasure`);
    }

    const keys = await import('#store/write-keys.ts');
    /**
     * The stack's key of a kind: the configured secret, else the remembered
     * one unless an operator revoked it, else a new one; stored if missing,
     * and the public key given the stack's user-token secret.
     */
    const ensureKey = async (configured: string | undefined, rememberedKey: string | undefined, kind: 'public' | 'server') => {
      const variable = kind === 'public' ? 'KAIROS_WRITE_KEY' : 'KAIROS_SERVER_KEY';
      let secret = configured ?? rememberedKey;
      const candidate = secret;
      const existing = candidate === undefined ? undefined : await whileStarting(`the ${kind} key`, () => keys.findWriteKey(candidate), log);
      if (existing?.revokedAt) {
        if (configured !== undefined) {
          log(`${variable} was revoked on ${existing.revokedAt}; it is refused. Create a key with POST /v1/admin/keys.`);
        } else {
          secret = undefined; // a generated key an operator revoked: make a new one
        }
      }
      const generated = secret === undefined;
      secret ??= keys.generateWriteKey(kind);
      const stored = generated ? undefined : existing;
      const tokenSecret = kind === 'public' ? userTokenSecret : undefined;
      const stackKey = secret;
      await whileStarting(
        `the ${kind} key`,
        async () => {
          if (!stored) {
            await keys.putWriteKey(stackKey, {
              keyId: `local-${keys.hashWriteKey(stackKey).slice(0, 12)}`,
              name: kind === 'public' ? 'local stack key' : 'local stack server key',
              kind,
              createdAt: new Date().toISOString(),
              ...(tokenSecret !== undefined ? { userTokenSecret: tokenSecret } : {}),
            });
          } else if (tokenSecret !== undefined && !stored.revokedAt && stored.kind === 'public' && stored.userTokenSecret !== tokenSecret) {
            await keys.setUserTokenSecret(stored.keyId, tokenSecret);
          }
        },
        log,
      );
      return { secret, generated };
    };
    const publicKey = await ensureKey(cfg.writeKey, remembered.writeKey, 'public');
    const serverKey = await ensureKey(cfg.serverKey, remembered.serverKey, 'server');
    const writeKey = publicKey.secret;
    if (!cfg.inMemory) {
      writeSecrets(cfg.dataDir, {
        ...remembered,
        ...(cfg.writeKey === undefined ? { writeKey } : {}),
        ...(cfg.serverKey === undefined ? { serverKey: serverKey.secret } : {}),
        ...(cfg.userTokenSecret === undefined ? { userTokenSecret } : {}),
        ...(cfg.decisionKey === undefined ? { decisionKey } : {}),
        ...(cfg.adminToken === undefined ? { adminToken } : {}),
      });
    }

    const [ingest, profile, decide, health] = await Promise.all((['ingest', 'profile', 'decide', 'health'] as const).map(loadFunction));

    const failures = new FailureQueue(cfg.inMemory ? undefined : join(cfg.dataDir, 'failures.jsonl'));
    poller = new StreamPoller({
      endpoint: dynamo.endpoint,
      region: cfg.region,
      tableName: tables[eventsTable.envVar],
      fn: profile as LocalFunction,
      failures,
      // The deployed mapping's settings (shared/functions.ts).
      batchSize: profileStreamSettings.batchSize,
      maxRetryAttempts: profileStreamSettings.retryAttempts,
      bisectOnError: profileStreamSettings.bisectOnError,
      filter: eventNameFilter(profileStreamSettings.eventNames),
      ...(cfg.inMemory ? {} : { checkpointFile: join(cfg.dataDir, 'stream-checkpoints.json') }),
      ...options.stream,
      log: (line) => log(`stream: ${line}`),
    });
    await poller.start();

    // The outbox: its stream into the same dispatcher handler, publishing to the local bus and scheduler.
    const bus = new LocalBus(cfg.inMemory ? undefined : join(cfg.dataDir, 'outbox.jsonl'));
    scheduler = new LocalScheduler(bus, { ...(cfg.inMemory ? {} : { folder: join(cfg.dataDir, 'schedules') }), log: (line) => log(`scheduler: ${line}`) });
    const { createDispatchHandler } = (await import(
      pathToFileURL(join(REPOSITORY_ROOT, functionDefinitions.dispatcher.entry)).href
    )) as typeof DispatcherModule;
    outboxPoller = new StreamPoller({
      endpoint: dynamo.endpoint,
      region: cfg.region,
      tableName: tables[outboxTable.envVar],
      fn: {
        name: 'dispatcher',
        handler: createDispatchHandler({ bus, scheduler }) as LambdaHandler,
        timeoutSeconds: functionDefinitions.dispatcher.timeoutSeconds,
        memorySize: functionDefinitions.dispatcher.memorySize,
      },
      failures,
      batchSize: dispatcherStreamSettings.batchSize,
      maxRetryAttempts: dispatcherStreamSettings.retryAttempts,
      bisectOnError: dispatcherStreamSettings.bisectOnError,
      filter: eventNameFilter(dispatcherStreamSettings.eventNames),
      ...(cfg.inMemory ? {} : { checkpointFile: join(cfg.dataDir, 'outbox-stream-checkpoints.json') }),
      ...options.stream,
      log: (line) => log(`outbox stream: ${line}`),
    });
    await outboxPoller.start();
    const activeScheduler = scheduler;
    // The admin function's erasure cancels pending sends on the same scheduler the dispatcher schedules them on.
    const { createAdminHandler } = (await import(pathToFileURL(join(REPOSITORY_ROOT, functionDefinitions.admin.entry)).href)) as typeof AdminModule;
    const admin: LocalFunction = {
      name: 'admin',
      handler: createAdminHandler({ scheduler }) as LambdaHandler,
      timeoutSeconds: functionDefinitions.admin.timeoutSeconds,
      memorySize: functionDefinitions.admin.memorySize,
    };
    Object.assign(functions, { ingest, decide, admin, health } satisfies Record<FunctionName, LocalFunction | undefined>);

    const catalog = await whileStarting(
      'the catalog',
      () =>
        (options.loadCatalog ?? loadLocalCatalog)({
          ...(cfg.catalogFile ? { catalogFile: cfg.catalogFile } : {}),
          inMemory: cfg.inMemory,
          log,
        }),
      log,
    );

    ready = true;
    const activeServer = server;
    const activePoller = poller;
    const activeOutboxPoller = outboxPoller;
    const activeDynamo = dynamo;
    let stopping: Promise<void> | undefined;
    return {
      url: activeServer.url,
      port: activeServer.port,
      writeKey,
      serverKey: serverKey.secret,
      userTokenSecret,
      adminToken,
      generated: {
        // Generated by this stack, now or by an earlier start over the same folder (remembered there), as the
        // user-token secret and the admin token are: not set by the environment.
        writeKey: cfg.writeKey === undefined,
        serverKey: cfg.serverKey === undefined,
        userTokenSecret: cfg.userTokenSecret === undefined,
        adminToken: cfg.adminToken === undefined,
      },
      inMemory: cfg.inMemory,
      ...(cfg.inMemory ? {} : { dataDir: cfg.dataDir }),
      decisionLog: decisionsFolder,
      dynamoEndpoint: activeDynamo.endpoint,
      tables,
      streamArn: activePoller.streamArn,
      catalog,
      failures: () => failures.list(),
      emissions: () => bus.events(),
      schedules: () => activeScheduler.pending(),
      streamStats: () => activePoller.stats(),
      stop() {
        stopping ??= (async () => {
          await activeServer.stop();
          await countDecisions();
          await activePoller.stop();
          await activeOutboxPoller.stop();
          activeScheduler.stop();
          await activeDynamo.stop();
          closeDecisionLog();
          releaseDataFolder();
          running = false;
        })();
        return stopping;
      },
    };
  } catch (error) {
    await cleanup();
    running = false;
    throw error;
  }
}
