/**
 * Fit the weights of a catalog's logistic model (default `churnRisk`) from
 * labelled profiles, and write the updated catalog (comments and layout
 * kept) to a new file, or publish it as a new catalog version through the
 * admin API. `npx tsx scripts/train-churn.ts --help` prints the usage.
 *
 * Data: one JSON object per line, `{"profile": <ProfileView, as GET
 * /v1/admin/profiles returns it>, "churned": true|false, "at"?: ISO}` where
 * `at` is the instant the features are read (default now). The features are
 * the model's CEL expressions, evaluated exactly as the profile function
 * does; the fit is L2-regularised logistic regression by gradient descent on
 * standardised features.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { loadCatalog } from '#domain/catalog/load.ts';
import { createRuleVariables, evaluateNumber } from '#domain/catalog/rules.ts';
import { parseIsoDateTime } from '#domain/ingest/timestamps.ts';
import type { CompiledModel } from '#domain/catalog/compiled.ts';
import { emptyProfileView, type ProfileView } from '#domain/profile/view.ts';
import { parseCommandLine, readText, runCommand, UsageError } from './cli.ts';

export interface Example {
  readonly x: readonly number[];
  readonly y: 0 | 1;
}

export interface Fit {
  readonly intercept: number;
  readonly weights: number[];
  readonly logLoss: number;
  readonly accuracy: number;
}

const sigmoid = (z: number) => 1 / (1 + Math.exp(-z));

/** Standard deviation under which a feature counts as constant across the examples (and gets weight 0). */
export const MIN_FEATURE_SD = 1e-3;

/** L2-regularised logistic regression (batch gradient descent on standardised features). Pure. */
export function fitLogistic(examples: readonly Example[], options: { iterations?: number; rate?: number; l2?: number } = {}): Fit {
  const { iterations = 3_000, rate = 0.5, l2 = 1e-3 } = options;
  if (examples.length === 0) throw new Error('no examples');
  const k = examples[0]?.x.length ?? 0;
  const mean = new Array<number>(k).fill(0);
  const sd = new Array<number>(k).fill(0);
  for (const e of examples) e.x.forEach((v, j) => (mean[j] = (mean[j] ?? 0) + v / examples.length));
  for (const e of examples) e.x.forEach((v, j) => (sd[j] = (sd[j] ?? 0) + ((v - (mean[j] ?? 0)) ** 2) / examples.length));
  for (let j = 0; j < k; j++) sd[j] = Math.sqrt(sd[j] ?? 0);
  // A feature that (nearly) does not vary says nothing and would get an unbounded raw weight: it is left out (weight 0).
  const varies = sd.map((s) => s >= MIN_FEATURE_SD);
  for (let j = 0; j < k; j++) if (!varies[j]) sd[j] = 1;
  const z = examples.map((e) => e.x.map((v, j) => (varies[j] ? (v - (mean[j] ?? 0)) / (sd[j] ?? 1) : 0)));
  let b = 0;
  const w = new Array<number>(k).fill(0);
  for (let it = 0; it < iterations; it++) {
    let gb = 0;
    const gw = new Array<number>(k).fill(0);
    for (let i = 0; i < examples.length; i++) {
      const zi = z[i] as number[];
      let s = b;
      for (let j = 0; j < k; j++) s += (w[j] ?? 0) * (zi[j] ?? 0);
      const err = sigmoid(s) - (examples[i] as Example).y;
      gb += err;
      for (let j = 0; j < k; j++) gw[j] = (gw[j] ?? 0) + err * (zi[j] ?? 0);
    }
    b -= (rate * gb) / examples.length;
    for (let j = 0; j < k; j++) w[j] = (w[j] ?? 0) - rate * ((gw[j] ?? 0) / examples.length + l2 * (w[j] ?? 0));
  }
  // Back to raw features: s = b + Σ w_j (x_j - m_j)/sd_j.
  const weights = w.map((wj, j) => (varies[j] ? wj / (sd[j] ?? 1) : 0));
  const intercept = b - weights.reduce((acc, wj, j) => acc + wj * (mean[j] ?? 0), 0);
  let loss = 0;
  let right = 0;
  for (const e of examples) {
    const p = Math.min(1 - 1e-12, Math.max(1e-12, sigmoid(intercept + e.x.reduce((acc, v, j) => acc + v * (weights[j] ?? 0), 0))));
    loss -= e.y ? Math.log(p) : Math.log(1 - p);
    if ((p >= 0.5 ? 1 : 0) === e.y) right++;
  }
  return { intercept, weights, logLoss: loss / examples.length, accuracy: right / examples.length };
}

/** The model's feature vector for a profile, as the profile function computes it. */
export function featuresOf(model: CompiledModel, profile: ProfileView, at: Date): number[] {
  const vars = createRuleVariables({ profile, now: at });
  return model.features.map((f) => evaluateNumber(f.expression, vars, f.default));
}

/** Synthetic customers: churners are silent longer, visit less and return more. */
export function syntheticProfiles(n: number, seed = 42): { profile: ProfileView; churned: boolean; at: string }[] {
  let state = seed >>> 0;
  const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const now = Date.parse('2026-11-01T00:00:00Z');
  return Array.from({ length: n }, () => {
    const churned = random() < 0.3;
    const silentDays = churned ? 20 + random() * 100 : random() * 30;
    const visits30d = Math.round(churned ? random() * 3 : 2 + random() * 15);
    const returns = Math.round(churned ? random() * 3 : random() * 1.2);
    const orders = Math.round(churned ? random() * 4 : 1 + random() * 12);
    const empty = emptyProfileView({ userId: 'synthetic' });
    const profile: ProfileView = {
      ...empty,
      stats: {
        ...empty.stats,
        visits7d: Math.min(visits30d, 3),
        visits30d,
        visitsTotal: visits30d * 3,
        orders,
        revenue: orders * 40,
        returns,
        lastSeenAt: new Date(now - silentDays * 86_400_000).toISOString(),
      },
    };
    return { profile, churned, at: new Date(now).toISOString() };
  });
}

export const USAGE = `Usage: npx tsx scripts/train-churn.ts [options]

Fits the weights of a catalog model (a logistic model over CEL features) from
labelled profiles and writes the updated catalog.

Data (one of):
  --data <file.jsonl>     one {"profile": …, "churned": true|false, "at"?: ISO} per line
  --synthetic <n>         n synthetic profiles (a demonstration)

Catalog and model:
  --catalog <file>        the catalog to update (YAML or JSON; default catalog/demo.yaml)
  --model <id>            the model to fit (default churnRisk)

Output (one of; without either, the updated catalog goes to standard output):
  --out <file>            write the updated catalog to this file (refuses to
                          overwrite an existing file unless --force)
  --publish <url>         PUT it to <url>/v1/admin/catalog as a new version, with
                          the admin token of KAIROS_ADMIN_TOKEN (the local stack's)
  --force                 let --out replace an existing file

  -h, --help              this text
`;

export { UsageError };

export interface TrainOptions {
  readonly catalog: string;
  readonly model: string;
  readonly data?: string;
  readonly synthetic?: string;
  readonly out?: string;
  readonly publish?: string;
  readonly force: boolean;
}

/** The command line, checked; 'help' for -h/--help. Throws UsageError. */
export function parseTrainArgs(argv: readonly string[]): TrainOptions | 'help' {
  const values = parseCommandLine(argv, {
    catalog: { type: 'string', default: 'catalog/demo.yaml' },
    model: { type: 'string', default: 'churnRisk' },
    data: { type: 'string' },
    synthetic: { type: 'string' },
    out: { type: 'string' },
    publish: { type: 'string' },
    force: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  });
  if (values.help) return 'help';
  if ((values.data === undefined) === (values.synthetic === undefined)) throw new UsageError('give either --data <file.jsonl> or --synthetic <n> (see --help)');
  if (values.synthetic !== undefined && !/^[1-9]\d{0,6}$/.test(values.synthetic)) {
    throw new UsageError('--synthetic must be a number of profiles from 1 to 9999999');
  }
  if (values.out !== undefined && values.publish !== undefined) throw new UsageError('give --out or --publish, not both');
  if (values.publish !== undefined && !/^https?:\/\/[^\s/]+/.test(values.publish)) {
    throw new UsageError(`--publish must be the API's base URL, such as http://127.0.0.1:3000 (got "${values.publish}")`);
  }
  return {
    catalog: values.catalog,
    model: values.model,
    force: values.force,
    ...(values.data !== undefined ? { data: values.data } : {}),
    ...(values.synthetic !== undefined ? { synthetic: values.synthetic } : {}),
    ...(values.out !== undefined ? { out: values.out } : {}),
    ...(values.publish !== undefined ? { publish: values.publish.replace(/\/+$/, '') } : {}),
  };
}

export interface TrainingRow {
  readonly profile: ProfileView;
  readonly churned: boolean;
  /** When the features are read, ISO-8601 in UTC (`…Z`). */
  readonly at?: string;
}

/** The labelled rows of a JSONL text; a malformed line is a UsageError naming `path:line`. */
export function parseTrainingData(text: string, path: string): TrainingRow[] {
  const rows: TrainingRow[] = [];
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const where = `${path}:${i + 1}`;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      throw new UsageError(`${where}: not a JSON object`);
    }
    const r = (row ?? {}) as { profile?: unknown; churned?: unknown; at?: unknown };
    if (typeof r !== 'object' || typeof r.profile !== 'object' || r.profile === null) throw new UsageError(`${where}: "profile" must be an object`);
    if (typeof r.churned !== 'boolean') throw new UsageError(`${where}: "churned" must be true or false`);
    // Read strictly: the engine's Date.parse would move 2026-02-30 to March 2nd, and read a time without a zone as local.
    const at = typeof r.at === 'string' ? parseIsoDateTime(r.at) : undefined;
    if (r.at !== undefined && at === undefined) {
      throw new UsageError(`${where}: "at" must be an ISO-8601 date-time such as 2026-11-01T00:00:00Z`);
    }
    const empty = emptyProfileView({ userId: 'training' });
    const given = r.profile as Partial<ProfileView>;
    rows.push({
      profile: { ...empty, ...given, stats: { ...empty.stats, ...(given.stats ?? {}) } },
      churned: r.churned,
      ...(at !== undefined ? { at: new Date(at).toISOString() } : {}),
    });
  });
  if (rows.length === 0) throw new UsageError(`${path}: no labelled profiles`);
  return rows;
}

/** Fit the model; the updated catalog text and a one-line summary. Throws UsageError for bad input. */
export function train(options: TrainOptions): { text: string; format: 'json' | 'yaml'; summary: string } {
  const path = options.catalog;
  const text = readText(path, 'catalog');
  const format = path.endsWith('.json') ? 'json' : 'yaml';
  const loaded = loadCatalog(text, format);
  if (!loaded.ok) {
    const first = loaded.problems[0];
    throw new UsageError(`${path} is not a valid catalog (${loaded.problems.length} problem(s); first: ${first?.path}: ${first?.message})`);
  }
  const modelIndex = loaded.catalog.models.findIndex((m) => m.id === options.model);
  const model = loaded.catalog.models[modelIndex];
  if (!model) {
    const known = loaded.catalog.models.map((m) => m.id);
    throw new UsageError(`no model "${options.model}" in ${path} (it has: ${known.length ? known.join(', ') : 'none'})`);
  }

  let rows: TrainingRow[];
  let source: string;
  if (options.data !== undefined) {
    rows = parseTrainingData(readText(options.data, 'data file'), options.data);
    source = options.data;
  } else {
    const n = Number(options.synthetic);
    rows = syntheticProfiles(n);
    source = `synthetic (${n} profiles)`;
  }
  const examples = rows.map((r) => ({ x: featuresOf(model, r.profile, r.at ? new Date(r.at) : new Date()), y: r.churned ? (1 as const) : (0 as const) }));
  if (new Set(examples.map((e) => e.y)).size < 2) throw new UsageError('the data needs both churned and retained customers to fit a model');
  const fit = fitLogistic(examples);
  const round = (v: number) => Math.round(v * 1e6) / 1e6;

  const doc = parseDocument(text);
  doc.setIn(['models', modelIndex, 'intercept'], round(fit.intercept));
  model.features.forEach((_, j) => doc.setIn(['models', modelIndex, 'features', j, 'weight'], round(fit.weights[j] ?? 0)));
  doc.setIn(['models', modelIndex, 'trainedAt'], new Date().toISOString());
  doc.setIn(['models', modelIndex, 'trainedOn'], `${source}; log loss ${fit.logLoss.toFixed(4)}, accuracy ${(fit.accuracy * 100).toFixed(1)}%`);
  const out = format === 'json' ? `${JSON.stringify(doc.toJS(), null, 2)}\n` : doc.toString();
  const check = loadCatalog(out, format);
  if (!check.ok) {
    const first = check.problems[0];
    throw new UsageError(`the fitted model does not make a valid catalog (${first?.path}: ${first?.message}); more or more varied data may help`);
  }
  const summary =
    `${model.id}: intercept ${round(fit.intercept)}, ${model.features.map((f, j) => `${f.name} ${round(fit.weights[j] ?? 0)}`).join(', ')}; ` +
    `log loss ${fit.logLoss.toFixed(4)}, accuracy ${(fit.accuracy * 100).toFixed(1)}% on ${examples.length} examples`;
  return { text: out, format, summary };
}

/** PUT the catalog to the admin API as a new version; its version number. */
async function publish(baseUrl: string, text: string, format: 'json' | 'yaml'): Promise<number> {
  const token = process.env.KAIROS_ADMIN_TOKEN;
  if (!token) throw new UsageError('--publish needs the admin token in KAIROS_ADMIN_TOKEN');
  let response: Response;
  try {
    response = await fetch(`${baseUrl}/v1/admin/catalog`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': format === 'json' ? 'application/json' : 'application/yaml' },
      body: text,
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    const cause = (error as Error).cause as Error | undefined;
    throw new UsageError(`cannot reach ${baseUrl}: ${cause?.message ?? (error as Error).message}`);
  }
  const body = (await response.json().catch(() => undefined)) as { version?: number; error?: { message?: string } } | undefined;
  if (!response.ok || typeof body?.version !== 'number') {
    throw new UsageError(`${baseUrl} refused the catalog: ${response.status} ${body?.error?.message ?? ''}`.trim());
  }
  return body.version;
}

/** The command: 0 done, 2 a usage or input mistake (one line on stderr), 1 anything else. */
export async function main(argv: readonly string[]): Promise<number> {
  return runCommand('train-churn', async () => {
    const options = parseTrainArgs(argv);
    if (options === 'help') {
      process.stdout.write(USAGE);
      return;
    }
    if (options.out !== undefined && !options.force && existsSync(options.out)) {
      throw new UsageError(`${options.out} exists; choose another --out file, or add --force to replace it`);
    }
    const result = train(options);
    console.error(result.summary);
    if (options.out !== undefined) {
      writeFileSync(options.out, result.text);
      console.error(`wrote ${options.out}`);
    } else if (options.publish !== undefined) {
      const version = await publish(options.publish, result.text, result.format);
      console.error(`published as catalog version ${version} on ${options.publish}`);
    } else {
      process.stdout.write(result.text);
    }
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) process.exitCode = await main(process.argv.slice(2));
