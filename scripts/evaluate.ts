/**
 * `npm run evaluate`: off-policy evaluation of a candidate catalog on the
 * decision log — would it have done better than the catalog that decided?
 * (shared/domain/evaluation/evaluate.ts: each sampled decision replayed
 * through the candidate with the one decide, joined with its outcomes,
 * IPS / SNIPS / DR with 95% intervals.)
 *
 * Locally (`--log <folder>`, default `<KAIROS_DATA_DIR or .kairos>/decisions`):
 * every JSONL file of the folder whose day is in the range is one partition
 * of the map step, run in process; the outcomes and the learning statistics
 * are read from the local stack's DynamoDB Local (`--dynamodb <url>` or
 * DYNAMODB_ENDPOINT; `npm start` prints it), with its decision key
 * (KAIROS_DECISION_KEY, else the data folder's local-secrets.json: the
 * folder of KAIROS_DATA_DIR, else the one the `--log` folder is in, else
 * `.kairos`).
 *
 * Deployed (`--deployed`): starts the stack's evaluation state machine
 * (`--state-machine <arn>`, the stack output EvaluationStateMachineArn) with
 * the candidate catalog and the range as input, waits for it, and prints its
 * result; AWS credentials and region from the environment.
 *
 * Exit codes: 0 estimates printed, 3 refused (no support, nothing to
 * replay: the reason on stderr), 2 a usage or input mistake, 1 anything else.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAX_CATALOG_BYTES, loadCatalog } from '#domain/catalog/load.ts';
import type { CompiledCatalog } from '#domain/catalog/compiled.ts';
import { decisionKey, type DecisionKey } from '#domain/decide/decision-id.ts';
import { DEFAULT_MIN_SUPPORT, decisionRecordsOfText, mapStep, type Evaluation, type PartitionSums } from '#domain/evaluation/evaluate.ts';
import type { DecisionLogRecord } from '#domain/evaluation/decision-record.ts';
import { MIN_INTERVAL_DECISIONS } from '#domain/evaluation/estimators.ts';
import { parseIsoDateTime } from '#domain/ingest/timestamps.ts';
import { DynamoClient } from '#store/client.ts';
import { evaluationStatistics, readEvaluationCounts, readOutcomeIndex, type EvaluationRange } from '#store/evaluation-inputs.ts';
import { describeExecution, startExecution } from '#shared/aws-requests.ts';
import { logDayMayHold, resultsPrefixOf, reduceMapResults, writeMapResults, type EvaluationObjects } from '#shared/evaluation-steps.ts';
import { parseCommandLine, readText, runCommand, UsageError } from './cli.ts';

export const USAGE = `Usage: npm run evaluate -- --catalog <candidate.yaml> [--log <folder> | --deployed] [options]

Estimates the reward rate (click or conversion: the candidate's learning.reward)
a candidate catalog would have had on the logged decisions, by replaying each
sampled decision through it: IPS, self-normalised IPS and doubly robust, each
with its 95% interval (none, and why, on fewer than ${MIN_INTERVAL_DECISIONS} evaluated decisions
or a zero spread), beside the logged policy's observed rate.

  --catalog <file>        the candidate catalog (YAML or JSON)
  --log <folder>          the decision log's JSONL files (default: the local
                          stack's, <KAIROS_DATA_DIR or .kairos>/decisions)
  --deployed              run the deployed stack's evaluation state machine
  --state-machine <arn>   with --deployed: its ARN (stack output
                          EvaluationStateMachineArn; default env
                          KAIROS_EVALUATION_STATE_MACHINE)
  --from <date>           decisions made from this UTC day or instant
                          (YYYY-MM-DD or ISO-8601; default: the log's first)
  --to <date>             decisions made up to the end of this UTC day, or
                          before this instant (default: the log's last)
  --dynamodb <url>        the local stack's DynamoDB Local (default env
                          DYNAMODB_ENDPOINT; npm start prints it)
  --min-support <share>   refuse below this share of replayed decisions whose
                          candidate choice the logging policy could have made
                          (0..1, default ${DEFAULT_MIN_SUPPORT})
  --json                  print the result as JSON
  -h, --help              this text

Exit codes: 0 estimates, 3 refused (the reason on stderr), 2 usage, 1 other.
`;

export interface EvaluateOptions {
  readonly catalog: string;
  readonly log?: string;
  readonly deployed: boolean;
  readonly stateMachine?: string;
  readonly from?: number;
  readonly to?: number;
  readonly dynamodb?: string;
  readonly minSupport: number;
  readonly json: boolean;
}

const DAY_MS = 86_400_000;
const DAY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A `--from`/`--to` value as epoch ms; a bare day of `--to` means its end;
 * an instant without a zone is UTC. Read strictly (#domain/ingest/timestamps.ts),
 * never by the engine's lenient Date.parse, which moves 2026-11-31 to December 1st.
 * Throws UsageError.
 */
function instant(name: string, text: string, end: boolean): number {
  if (DAY.test(text)) {
    const day = parseIsoDateTime(`${text}T00:00:00Z`);
    if (day === undefined) throw new UsageError(`--${name} must be a day of the calendar, YYYY-MM-DD (got "${text}": there is no such day)`);
    return day + (end ? DAY_MS : 0);
  }
  const ms = parseIsoDateTime(text) ?? Number.NaN;
  if (!Number.isFinite(ms)) throw new UsageError(`--${name} must be a day (YYYY-MM-DD) or an ISO-8601 instant (got "${text}")`);
  return ms;
}

/** The command line, checked; 'help' for -h/--help. Throws UsageError. */
export function parseEvaluateArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): EvaluateOptions | 'help' {
  const values = parseCommandLine(argv, {
    catalog: { type: 'string' },
    log: { type: 'string' },
    deployed: { type: 'boolean', default: false },
    'state-machine': { type: 'string' },
    from: { type: 'string' },
    to: { type: 'string' },
    dynamodb: { type: 'string' },
    'min-support': { type: 'string' },
    json: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) return 'help';
  if (values.catalog === undefined) throw new UsageError('--catalog <candidate.yaml> is required (see --help)');
  if (values.deployed && values.log !== undefined) throw new UsageError('--log and --deployed exclude each other: a local folder or the deployed log');
  const stateMachine = values['state-machine'] ?? (values.deployed ? env.KAIROS_EVALUATION_STATE_MACHINE : undefined);
  if (values.deployed && (stateMachine === undefined || !stateMachine.startsWith('arn:'))) {
    throw new UsageError('--deployed needs --state-machine <arn> (the stack output EvaluationStateMachineArn) or KAIROS_EVALUATION_STATE_MACHINE');
  }
  if (!values.deployed && values['state-machine'] !== undefined) throw new UsageError('--state-machine goes with --deployed');
  const from = values.from !== undefined ? instant('from', values.from, false) : undefined;
  const to = values.to !== undefined ? instant('to', values.to, true) : undefined;
  if (from !== undefined && to !== undefined && from >= to) throw new UsageError('--from must come before --to');
  if (values.deployed && (from === undefined || to === undefined)) throw new UsageError('--deployed needs --from and --to (the days of the log to read)');
  const minSupportText = values['min-support'] ?? String(DEFAULT_MIN_SUPPORT);
  const minSupport = Number(minSupportText);
  if (minSupportText.trim() === '' || !(minSupport >= 0 && minSupport <= 1)) throw new UsageError(`--min-support must be a share from 0 to 1 (got "${minSupportText}")`);
  const dynamodb = values.dynamodb ?? env.DYNAMODB_ENDPOINT;
  if (dynamodb !== undefined && !/^https?:\/\/[^\s/]+/.test(dynamodb)) throw new UsageError(`--dynamodb must be a URL such as http://127.0.0.1:8000 (got "${dynamodb}")`);
  return {
    catalog: values.catalog,
    deployed: values.deployed,
    minSupport,
    json: values.json,
    ...(values.log !== undefined ? { log: values.log } : {}),
    ...(stateMachine !== undefined && values.deployed ? { stateMachine } : {}),
    ...(from !== undefined ? { from } : {}),
    ...(to !== undefined ? { to } : {}),
    ...(dynamodb !== undefined ? { dynamodb } : {}),
  };
}

/** The candidate catalog of a file, compiled; its problems are a UsageError naming the file and the first problem's line. */
export function readCandidate(path: string): { readonly text: string; readonly catalog: CompiledCatalog } {
  const text = readText(path, 'candidate catalog', MAX_CATALOG_BYTES);
  // Checked as a publish now would check it (the holdout bound counts the experiments that can still assign).
  const result = loadCatalog(text, /\.json$/i.test(path) ? 'json' : 'yaml', { at: Date.now() });
  if (!result.ok) {
    const first = result.problems[0];
    const where = first?.line !== undefined ? `${path}:${first.line}${first.column !== undefined ? `:${first.column}` : ''}` : path;
    throw new UsageError(`${where}: ${first ? `${first.path}: ${first.message}` : 'not a valid catalog'}${result.problems.length > 1 ? ` (and ${result.problems.length - 1} more problem(s))` : ''}`);
  }
  return { text, catalog: result.catalog };
}

/** A decision log file's day (`yyyy-mm-dd…jsonl`), or undefined when its name holds none. */
const dayOfFile = (name: string): string | undefined => /^(\d{4}-\d{2}-\d{2})/.exec(name)?.[1];

/**
 * The JSONL files of `folder` whose day may hold decisions of [from, to)
 * (a file named by the UTC day its lines were written, which may be the day
 * after the decision: #shared/evaluation-steps.ts `logDayMayHold`; a file
 * named otherwise is always read).
 * Throws UsageError for a folder that does not exist.
 */
export function logFiles(folder: string, range: { readonly from?: number; readonly to?: number } = {}): string[] {
  if (!existsSync(folder)) throw new UsageError(`no decision log at ${folder} (give the folder with --log)`);
  return readdirSync(folder)
    .filter((name) => /\.jsonl(\.\d+)?$/.test(name))
    .filter((name) => {
      const day = dayOfFile(name);
      return day === undefined || logDayMayHold(day, range.from, range.to);
    })
    .sort()
    .map((name) => join(folder, name));
}

export interface LocalEvaluationInput {
  readonly candidate: CompiledCatalog;
  readonly files: readonly string[];
  readonly from?: number;
  readonly to?: number;
  readonly decisionKey: DecisionKey;
  readonly client: DynamoClient;
  readonly minSupport?: number;
  /** @default config's table names */
  readonly tables?: { readonly events?: string; readonly control?: string };
  /**
   * The folder the map results are written to for the reduce step, as the
   * deployed maps' ResultWriter writes them (kept; absent: a temporary
   * folder, removed after the reduce).
   */
  readonly resultsFolder?: string;
}

/** The bucket of the local run's map results in its folder. */
const LOCAL_RESULTS_BUCKET = 'evaluation';

/**
 * A folder standing in for S3 (`<folder>/<bucket>/<key>`): the local run's
 * map results are written and read through it as deployed through S3.
 */
export function folderObjects(folder: string): EvaluationObjects {
  const path = (bucket: string, key: string) => join(folder, bucket, ...key.split('/'));
  const walk = (dir: string): string[] =>
    existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? walk(join(dir, entry.name)) : [join(dir, entry.name)])) : [];
  return {
    get: async (bucket, key) => readFileSync(path(bucket, key)),
    put: async (bucket, key, body) => {
      mkdirSync(dirname(path(bucket, key)), { recursive: true });
      writeFileSync(path(bucket, key), body);
    },
    list: async (bucket, prefix) =>
      walk(join(folder, bucket))
        .map((file) => relative(join(folder, bucket), file).split(/[\\/]/).join('/'))
        .filter((key) => key.startsWith(prefix))
        .sort(),
  };
}

/**
 * The evaluation of a local decision log: each file a partition of the map
 * step (in process), the outcomes and statistics of the range read once,
 * the partitions' sums written as a Distributed Map's ResultWriter writes
 * them (`resultsFolder`), and the deployed reduce step
 * (#shared/evaluation-steps.ts `reduceMapResults`) run on them. The range
 * defaults to the first and last decision of the files.
 */
export async function evaluateLocalLog(input: LocalEvaluationInput): Promise<Evaluation> {
  // One file in memory at a time (a day's file rotates at 64 MB): the range's ends, when not given, are a first pass over them.
  const read = (file: string): { records: DecisionLogRecord[]; malformed: number } => decisionRecordsOfText(readFileSync(file, 'utf8'));
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  if (input.from === undefined || input.to === undefined) {
    for (const file of input.files) {
      for (const r of read(file).records) {
        const at = Date.parse(r.at);
        if (at < first) first = at;
        if (at > last) last = at;
      }
    }
  }
  const range: EvaluationRange = { from: input.from ?? (Number.isFinite(first) ? first : 0), to: input.to ?? (Number.isFinite(last) ? last + 1 : 1) };
  const outcomes = await readOutcomeIndex(input.candidate, range, input.decisionKey, { client: input.client, ...(input.tables?.events ? { table: input.tables.events } : {}) });
  const learning = evaluationStatistics(await readEvaluationCounts(input.candidate, range, { client: input.client, ...(input.tables?.control ? { table: input.tables.control } : {}) }));
  // One map step reads every file: a decision in two files (or twice in one) is evaluated once.
  const step = mapStep({ candidate: input.candidate, outcomes, learning, decisionKey: input.decisionKey, from: range.from, to: range.to });
  const sums: PartitionSums[] = input.files.map((file) => step(read(file)));
  const folder = input.resultsFolder ?? mkdtempSync(join(tmpdir(), 'kairos-evaluate-'));
  try {
    const objects = folderObjects(folder);
    // No shuffle locally: its results are an empty map run.
    const prefix = resultsPrefixOf('local');
    const shuffled = await writeMapResults(objects, LOCAL_RESULTS_BUCKET, prefix, 'shuffle', []);
    const partitions = await writeMapResults(objects, LOCAL_RESULTS_BUCKET, prefix, 'files', sums);
    const { evaluation } = await reduceMapResults(objects, { shuffled, partitions, reward: input.candidate.learning.reward, minSupport: input.minSupport ?? DEFAULT_MIN_SUPPORT });
    return evaluation;
  } finally {
    if (input.resultsFolder === undefined) rmSync(folder, { recursive: true, force: true });
  }
}

const rate = (n: number) => n.toFixed(4);

/** The evaluation as the command prints it. */
export function formatEvaluation(evaluation: Evaluation, candidate: string): string {
  const lines = [
    `candidate      ${candidate}`,
    `records        ${evaluation.records} read: ${evaluation.replayed} replayed (${evaluation.unrendered} first-ranked not rendered), ${evaluation.notSampled} without features (not sampled), ${evaluation.degraded} degraded, ${evaluation.outsideRange} outside the range, ${evaluation.duplicates} duplicates, ${evaluation.malformed} unreadable`,
  ];
  if (!evaluation.ok) return `${lines.join('\n')}\nrefused        ${evaluation.reason}\n`;
  const e = evaluation.estimate;
  const interval = (name: 'ips' | 'snips' | 'dr') => {
    const r = e[name];
    return r.low === null ? `${rate(r.estimate)}  (${r.noInterval})` : `${rate(r.estimate)}  [${rate(r.low)}, ${rate(r.high)}]  (95%)`;
  };
  lines.push(
    `evaluable      ${e.evaluated} of ${e.decisions} (${(e.evaluatedShare * 100).toFixed(1)}%): the candidate's choice was one the logging policy could make`,
    `effective n    ${e.effectiveSampleSize.toFixed(1)}`,
    `reward         ${evaluation.reward} rate, position 1`,
    `logged policy  ${rate(e.loggedRate)}  (observed)`,
    `IPS            ${interval('ips')}`,
    `SNIPS          ${interval('snips')}`,
    `DR             ${interval('dr')}`,
  );
  return `${lines.join('\n')}\n`;
}

/** How often `--deployed` asks whether the execution ended, ms. */
const POLL_MS = 5_000;

/**
 * Runs the deployed evaluation state machine (infra/constructs/evaluation.ts)
 * on the candidate catalog's text and the range, waits for it, and returns
 * its result. A failed execution is an Error with its error and cause.
 */
export async function startEvaluation(input: {
  readonly stateMachineArn: string;
  readonly catalog: string;
  readonly from: number;
  readonly to: number;
  readonly minSupport: number;
}): Promise<Evaluation> {
  const executionArn = await startExecution(input.stateMachineArn, {
    catalog: input.catalog,
    from: new Date(input.from).toISOString(),
    to: new Date(input.to).toISOString(),
    minSupport: input.minSupport,
  });
  console.error(`evaluate: started ${executionArn}`);
  for (;;) {
    const execution = await describeExecution(executionArn);
    if (execution.status === 'SUCCEEDED') return JSON.parse(execution.output ?? '{}') as Evaluation;
    if (execution.status !== 'RUNNING') throw new Error(`the execution ended ${execution.status}: ${execution.error ?? ''} ${execution.cause ?? ''}`.trim());
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * The local stack's data folder, where its local-secrets.json is:
 * KAIROS_DATA_DIR; else, for a `--log` folder that sits in a data folder
 * (`<data folder>/decisions`, where `npm start` writes it), that one; else
 * `.kairos`, npm start's default.
 */
export function localDataDir(env: NodeJS.ProcessEnv, log: string | undefined): string {
  if (env.KAIROS_DATA_DIR !== undefined) return resolve(env.KAIROS_DATA_DIR);
  if (log !== undefined) {
    const parent = resolve(log, '..');
    if (existsSync(join(parent, 'local-secrets.json'))) return parent;
  }
  return resolve('.kairos');
}

/** The local stack's decision key: KAIROS_DECISION_KEY, else the data folder's local-secrets.json. Throws UsageError. */
export function localDecisionKey(env: NodeJS.ProcessEnv, dataDir: string): DecisionKey {
  const secret =
    env.KAIROS_DECISION_KEY ??
    (() => {
      const file = join(dataDir, 'local-secrets.json');
      if (!existsSync(file)) return undefined;
      try {
        const secrets = JSON.parse(readFileSync(file, 'utf8')) as { decisionKey?: unknown };
        return typeof secrets.decisionKey === 'string' ? secrets.decisionKey : undefined;
      } catch {
        return undefined;
      }
    })();
  if (secret === undefined) {
    throw new UsageError(
      `no decision key: set KAIROS_DECISION_KEY to the one the stack sealed its decisions with, or KAIROS_DATA_DIR to its data folder (there is no ${join(dataDir, 'local-secrets.json')})`,
    );
  }
  try {
    return decisionKey(secret);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** The command: see the module's docstring for the exit codes. */
export async function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  return runCommand('evaluate', async () => {
    const options = parseEvaluateArgs(argv, env);
    if (options === 'help') {
      process.stdout.write(USAGE);
      return;
    }
    const candidate = readCandidate(options.catalog);
    let evaluation: Evaluation;
    if (options.deployed) {
      evaluation = await startEvaluation({
        stateMachineArn: options.stateMachine as string,
        catalog: candidate.text,
        from: options.from as number,
        to: options.to as number,
        minSupport: options.minSupport,
      });
    } else {
      const dataDir = localDataDir(env, options.log);
      const folder = options.log ?? join(dataDir, 'decisions');
      const files = logFiles(folder, options);
      if (files.length === 0) throw new UsageError(`no decision log file (*.jsonl) in ${folder}${options.from !== undefined || options.to !== undefined ? ' for these days' : ''}`);
      if (options.dynamodb === undefined) throw new UsageError('give the local stack\'s DynamoDB Local with --dynamodb <url> (npm start prints it) or DYNAMODB_ENDPOINT');
      evaluation = await evaluateLocalLog({
        candidate: candidate.catalog,
        files,
        ...(options.from !== undefined ? { from: options.from } : {}),
        ...(options.to !== undefined ? { to: options.to } : {}),
        decisionKey: localDecisionKey(env, dataDir),
        client: new DynamoClient({ endpoint: options.dynamodb }),
        minSupport: options.minSupport,
      });
    }
    process.stdout.write(options.json ? `${JSON.stringify(evaluation, null, 2)}\n` : formatEvaluation(evaluation, options.catalog));
    if (!evaluation.ok) {
      console.error(`evaluate: refused: ${evaluation.reason}`);
      return 3;
    }
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main(process.argv.slice(2));
