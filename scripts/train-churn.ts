/**
 * Fit the weights of a catalog's logistic model (default `churnRisk`) from
 * labelled profiles, and write them back into the catalog file (comments and
 * layout kept).
 *
 *   npx tsx scripts/train-churn.ts --data churn.jsonl [--catalog catalog/demo.yaml] [--model churnRisk] [--write]
 *   npx tsx scripts/train-churn.ts --synthetic 5000 --write      # demo data
 *
 * Data: one JSON object per line, `{"profile": <ProfileView, as GET
 * /v1/admin/profiles returns it>, "churned": true|false, "at"?: ISO}` where
 * `at` is the instant the features are read (default now). The features are
 * the model's CEL expressions, evaluated exactly as the profile function
 * does; the fit is L2-regularised logistic regression by gradient descent on
 * standardised features. Without --write the updated catalog is printed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseDocument } from 'yaml';
import { loadCatalog } from '../shared/domain/catalog/load.ts';
import { createRuleVariables, evaluateNumber } from '../shared/domain/catalog/rules.ts';
import type { CompiledModel } from '../shared/domain/catalog/compiled.ts';
import { emptyProfileView, type ProfileView } from '../shared/domain/profile/view.ts';

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

/** L2-regularised logistic regression (batch gradient descent on standardised features). Pure. */
export function fitLogistic(examples: readonly Example[], options: { iterations?: number; rate?: number; l2?: number } = {}): Fit {
  const { iterations = 3_000, rate = 0.5, l2 = 1e-3 } = options;
  if (examples.length === 0) throw new Error('no examples');
  const k = examples[0]?.x.length ?? 0;
  const mean = new Array<number>(k).fill(0);
  const sd = new Array<number>(k).fill(0);
  for (const e of examples) e.x.forEach((v, j) => (mean[j] = (mean[j] ?? 0) + v / examples.length));
  for (const e of examples) e.x.forEach((v, j) => (sd[j] = (sd[j] ?? 0) + ((v - (mean[j] ?? 0)) ** 2) / examples.length));
  for (let j = 0; j < k; j++) sd[j] = Math.sqrt(sd[j] ?? 0) || 1;
  const z = examples.map((e) => e.x.map((v, j) => (v - (mean[j] ?? 0)) / (sd[j] ?? 1)));
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
  const weights = w.map((wj, j) => wj / (sd[j] ?? 1));
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

function main(): void {
  const { values } = parseArgs({
    options: {
      catalog: { type: 'string', default: 'catalog/demo.yaml' },
      model: { type: 'string', default: 'churnRisk' },
      data: { type: 'string' },
      synthetic: { type: 'string' },
      write: { type: 'boolean', default: false },
    },
  });
  const path = values.catalog;
  const text = readFileSync(path, 'utf8');
  const format = path.endsWith('.json') ? 'json' : 'yaml';
  const loaded = loadCatalog(text, format);
  if (!loaded.ok) throw new Error(`${path} is not valid: ${loaded.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`);
  const modelIndex = loaded.catalog.models.findIndex((m) => m.id === values.model);
  const model = loaded.catalog.models[modelIndex];
  if (!model) throw new Error(`no model "${values.model}" in ${path}`);

  let rows: { profile: ProfileView; churned: boolean; at?: string }[];
  let source: string;
  if (values.data) {
    rows = readFileSync(values.data, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as { profile: ProfileView; churned: boolean; at?: string });
    source = values.data;
  } else {
    const n = Number(values.synthetic ?? 0);
    if (!(n > 0)) throw new Error('give --data <file.jsonl> or --synthetic <n>');
    rows = syntheticProfiles(n);
    source = `synthetic (${n} profiles)`;
  }
  const examples = rows.map((r) => ({ x: featuresOf(model, r.profile, r.at ? new Date(r.at) : new Date()), y: r.churned ? (1 as const) : (0 as const) }));
  const fit = fitLogistic(examples);
  const round = (v: number) => Math.round(v * 1e6) / 1e6;

  const doc = parseDocument(text);
  doc.setIn(['models', modelIndex, 'intercept'], round(fit.intercept));
  model.features.forEach((_, j) => doc.setIn(['models', modelIndex, 'features', j, 'weight'], round(fit.weights[j] ?? 0)));
  doc.setIn(['models', modelIndex, 'trainedAt'], new Date().toISOString());
  doc.setIn(['models', modelIndex, 'trainedOn'], `${source}; log loss ${fit.logLoss.toFixed(4)}, accuracy ${(fit.accuracy * 100).toFixed(1)}%`);
  const out = format === 'json' ? `${JSON.stringify(doc.toJS(), null, 2)}\n` : doc.toString();
  const check = loadCatalog(out, format);
  if (!check.ok) throw new Error('the updated catalog does not validate');
  console.error(
    `${model.id}: intercept ${round(fit.intercept)}, ${model.features.map((f, j) => `${f.name} ${round(fit.weights[j] ?? 0)}`).join(', ')}; ` +
      `log loss ${fit.logLoss.toFixed(4)}, accuracy ${(fit.accuracy * 100).toFixed(1)}% on ${examples.length} examples`,
  );
  if (values.write) writeFileSync(path, out);
  else process.stdout.write(out);
}

if (import.meta.url === `file://${process.argv[1]}`) main();
