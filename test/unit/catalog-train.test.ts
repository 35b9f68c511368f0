/** The churn training command: the fit recovers a known model; features are the catalog's own. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { featuresOf, fitLogistic, syntheticProfiles, type Example } from '#scripts/train-churn.ts';
import { loadCatalog } from '#domain/catalog/load.ts';

describe('train-churn', () => {
  it('recovers the weights of a known logistic model', () => {
    let state = 7;
    const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const truth = { intercept: -1, weights: [2, -0.5] };
    const examples: Example[] = Array.from({ length: 4_000 }, () => {
      const x = [random() * 4 - 2, random() * 10];
      const p = 1 / (1 + Math.exp(-(truth.intercept + 2 * (x[0] ?? 0) - 0.5 * (x[1] ?? 0))));
      return { x, y: random() < p ? 1 : 0 };
    });
    const fit = fitLogistic(examples, { l2: 0 });
    expect(fit.intercept).toBeCloseTo(truth.intercept, 0);
    expect(fit.weights[0]).toBeCloseTo(2, 0);
    expect(fit.weights[1]).toBeCloseTo(-0.5, 0);
  });

  it('gives a feature that does not vary weight 0 instead of an unbounded one, and still fits the others', () => {
    // Feature 1 varies by micro-units only (customers seen within the same second); feature 0 separates the classes.
    const examples: Example[] = Array.from({ length: 40 }, (_, i) => ({ x: [i % 2 === 0 ? 2 : 0, 1e-6 * i], y: i % 2 === 0 ? 1 : 0 }));
    const fit = fitLogistic(examples);
    expect(fit.weights[1]).toBe(0);
    expect(fit.weights[0]).toBeGreaterThan(0);
    expect(Number.isFinite(fit.intercept)).toBe(true);
    expect(fit.accuracy).toBe(1);
  });

  it('fits the demo churn model from synthetic profiles through its CEL features', () => {
    const loaded = loadCatalog(readFileSync(new URL('../../catalog/demo.yaml', import.meta.url), 'utf8'), 'yaml');
    if (!loaded.ok) throw new Error('demo catalog invalid');
    const model = loaded.catalog.modelsById.get('churnRisk');
    if (!model) throw new Error('no churnRisk model');
    const rows = syntheticProfiles(1_500);
    const examples = rows.map((r) => ({ x: featuresOf(model, r.profile, new Date(r.at)), y: r.churned ? (1 as const) : (0 as const) }));
    expect(examples[0]?.x).toHaveLength(model.features.length);
    const fit = fitLogistic(examples);
    expect(fit.accuracy).toBeGreaterThan(0.9);
    expect(fit.weights[0]).toBeGreaterThan(0); // silence raises the risk
    expect(fit.weights[2]).toBeGreaterThan(0); // returns raise it
  });
});
