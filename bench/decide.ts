/**
 * Decide benchmarks, one run, against the budgets of ARCHITECTURE.md:
 *
 * 1. the pure decision, warm, on a GENERATED catalog of 1,000 actions,
 *    100 segments and 20 policies: p50/p99 (budget p99 <= 1 ms);
 * 2. the same 1,000 eligibility rules (3 clauses each) in json-rules-engine
 *    against our compiled CEL, same profile, same run (budget >= 20x);
 * 3. decide over HTTP on the local server against a bare GetItem of the
 *    same profile behind the same server (a second instance of it, whose
 *    decide route does only the GetItem, with decide's client), both sent
 *    the same request, headers and body (budget p50 ratio <= 1.3):
 *    requests interleaved one by one (the side that goes first
 *    alternates), after a warm-up, 2,000 per side by default. The
 *    profile is built from events by the profile function's code and stored
 *    as that function stores it (enriched with the live catalog);
 * 4. DynamoDB requests per warm decision, counted by the process's one
 *    client (shared/store/client.ts; budget exactly 1); apart, the
 *    statistics cache's background reads (its own client; statistics for
 *    every action are written first), per second and per decision;
 * 5. the decide bundle as the CDK builds it (esbuild: ESM, minify, node24,
 *    platform node, AWS SDK bundled), budget 500 KB, and every other
 *    function's (500 KB each, admin 1 MB);
 * 6. the cold start proxy: 20 fresh node processes each import the decide
 *    bundle and answer one decide through its handler (a real read, over
 *    https as deployed: bench/tls-front.ts);
 *    median CPU time, import and first request reported apart (budget
 *    150 ms); beside it the floor, the import of the bundle's packages
 *    alone (bench/cold-start-libraries.ts).
 *
 * DynamoDB Local is slower than DynamoDB: only ratios within one run mean
 * anything for the HTTP part.
 *
 * Call `benchDecide(endpoint)` with DYNAMODB_ENDPOINT unset or equal to the
 * endpoint, before anything else has loaded shared/config.ts with another
 * one. It publishes the generated catalog as the live version for the run
 * and then publishes the previous live catalog again (as a new version).
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import type { CatalogInput } from '#domain/catalog/schema.ts';
import type { ProfileView } from '#domain/profile/view.ts';
import type { DecideRequest } from '#domain/decide/types.ts';
import { seededRandom } from '#domain/decide/random.ts';
import { LAZY_MODULES, buildLikeCdk } from '#infra/bundling.ts';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { startTlsFront } from './tls-front.ts';

const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DECIDE_ENTRY = join(ROOT, 'functions/decide/handler.ts');
/** The decide bundle's packages alone, no Kairos code: the floor under the cold start (bench/cold-start-libraries.ts). */
const LIBRARIES_ENTRY = join(ROOT, 'bench/cold-start-libraries.ts');

export const BUDGETS = {
  domainP99Ms: 1,
  rulesSpeedup: 20,
  httpP50Ratio: 1.3,
  requestsPerDecision: 1,
  /** decide, ingest, profile, health: the functions on the request path. */
  bundleBytes: 500 * 1024,
  otherBundleBytes: 500 * 1024,
  /** admin, and the evaluation's functions (off the request path: run by a state machine). */
  adminBundleBytes: 1024 * 1024,
  /** Median CPU time of a fresh process that imports the decide bundle and answers its first decide. */
  coldStartCpuMs: 150,
} as const;

/** A function off the request path (operators' admin routes, the evaluation's steps): the 1 MB budget. */
const offRequestPath = (name: string): boolean => name === 'admin' || name.startsWith('evaluation-');

/** Fresh processes of the cold-start proxy. */
const COLD_STARTS = 20;

export interface DecideBenchOptions {
  /** Measured decisions of the domain-only part. @default 5000 */
  readonly domainIterations?: number;
  /** Measured requests per side of the HTTP part (interleaved one by one). @default 2000 */
  readonly httpRequests?: number;
  /** Skip the HTTP part (no DynamoDB needed). */
  readonly skipHttp?: boolean;
}

export interface DecideBenchResult {
  readonly domain: {
    readonly p50Ms: number;
    readonly p99Ms: number;
    readonly cpuP50Ms: number;
    readonly cpuP99Ms: number;
    readonly explainP50Ms: number;
  };
  /** 1-minute load average and cores when the run started: a shared machine skews the tails. */
  readonly machine: { readonly load1: number; readonly cores: number };
  /** The decision record: decide alone (no record) in the same run, the eligible candidates logged, a record's log line bytes without and with features. */
  readonly record: { readonly withoutP50Ms: number; readonly withoutP99Ms: number; readonly eligible: number; readonly bytes: number; readonly sampledBytes: number };
  readonly rules: { readonly oursUs: number; readonly jsonRulesEngineUs: number; readonly speedup: number; readonly speedupVsDecide: number };
  readonly http?: { readonly decideP50Ms: number; readonly getItemP50Ms: number; readonly ratio: number; readonly decideP99Ms: number; readonly getItemP99Ms: number };
  readonly requestsPerDecision?: {
    readonly profileReads: number;
    readonly other: number;
    readonly byCommand: Record<string, number>;
    /** The statistics cache's background reads (its own client), over the timed part: not requests of any decision. */
    readonly backgroundStatistics: { readonly reads: number; readonly perDecision: number; readonly perSecond: number; readonly arms: number };
  };
  /** The decide bundle, bytes (budget 500 KB), and the lazily loaded packages shipped beside it, bytes on disk. */
  readonly bundle: { readonly bytes: number; readonly lazy: Record<string, number>; readonly topInputs: readonly [string, number][] };
  /** Every other function's bundle, bytes (budget 500 KB each, admin 1 MB). */
  readonly otherBundles: Record<string, number>;
  /** The lazily loaded packages shipped beside each other bundle, bytes on disk, by function. */
  readonly otherLazyModules: Record<string, Record<string, number>>;
  /** The cold start proxy with the generated 1,000-action catalog live (the budgeted figure). */
  readonly coldStart?: ColdStart;
  /** The same with the seed catalog (catalog/demo.yaml, 17 actions) live. */
  readonly coldStartSeed?: ColdStart;
  /** The floor under both: importing the decide bundle's packages alone, no Kairos code (benchLibrariesImport). */
  readonly coldStartLibraries?: { readonly importCpuMs: number; readonly bytes: number };
  readonly withinBudget: Record<string, boolean>;
}

// ---------------------------------------------------------------------------
// The generated catalog and profile

const TAGS = ['promo', 'vip', 'service', 'content', 'retention', 'cross-sell', 'upsell', 'loyalty', 'seasonal', 'new'];
const TIERS = ['gold', 'silver', 'bronze', 'VIP', 'basic'];
const DEVICES = ['mobile', 'desktop', 'tablet'];
const PLACEMENTS = ['home_hero', 'sidebar', 'cart', 'pdp'];
const CATEGORIES = ['running', 'cycling', 'outdoor', 'kids', 'shoes', 'swim'];

interface Generated {
  readonly document: CatalogInput;
  /** The three clauses of each action's eligibility, for json-rules-engine. */
  readonly clauses: readonly { readonly id: string; readonly visits: number; readonly tier: string; readonly device: string }[];
}

export function generateCatalog(actions = 1_000, segments = 100, seed = 42): Generated {
  const random = seededRandom(seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;
  const int = (max: number) => Math.floor(random() * max);

  const segmentRules = [
    (i: number) => `profile.stats.visitsToday > ${(i % 12) + 1}.0`,
    (i: number) => `profile.traits.tier == "${TIERS[i % TIERS.length]}"`,
    (i: number) => `likes("${CATEGORIES[i % CATEGORIES.length]}")`,
    (i: number) => `interest("${CATEGORIES[i % CATEGORIES.length]}") > 0.${(i % 9) + 1}`,
    (i: number) => `daysSince(profile.stats.lastPurchaseAt) > ${(i % 60) + 1}.0`,
    (i: number) => `profile.stats.orders >= ${i % 7}.0 && profile.identified`,
  ];
  const segmentList = Array.from({ length: segments }, (_, i) => ({
    id: `seg-${i}`,
    rule: (segmentRules[i % segmentRules.length] as (i: number) => string)(i),
    ...(i % 10 === 0 ? { exclude: 'profile.stats.openComplaints > 0.0' } : {}),
  }));

  const clauses: { id: string; visits: number; tier: string; device: string }[] = [];
  const actionList = Array.from({ length: actions }, (_, i) => {
    const id = `action-${i}`;
    const clause = { id, visits: int(6), tier: pick(TIERS), device: pick(DEVICES) };
    clauses.push(clause);
    const templated = i % 5 === 0;
    return {
      id,
      name: `Action ${i}`,
      tags: [pick(TAGS), ...(i % 3 === 0 ? [pick(TAGS)] : [])].filter((t, k, all) => all.indexOf(t) === k),
      value: 1 + int(100),
      priority: int(5),
      eligibility: `profile.stats.visitsToday > ${clause.visits}.0 && profile.traits.tier != "${clause.tier}" && context.device == "${clause.device}"`,
      ...(i % 3 === 0 ? { targeting: { segments: [`seg-${int(segments)}`, `seg-${int(segments)}`].filter((s, k, all) => all.indexOf(s) === k) } } : {}),
      ...(i % 4 === 0 ? { caps: ['1/day', '3/7d'] } : {}),
      ...(i % 50 === 0 ? { validity: { from: '2020-01-01T00:00:00Z', to: '2099-01-01T00:00:00Z' } } : {}),
      content: {
        web: {
          title: templated ? `Hola {{ firstName | default: "amigo" }}, oferta ${i}` : `Oferta ${i}`,
          body: `Cuerpo ${i}`,
          url: `https://shop.example.com/o/${i}`,
          ...(i % 2 === 0 ? { placements: [pick(PLACEMENTS)] } : {}),
        },
        ...(i % 7 === 0 ? { push: { title: `Push ${i}`, body: 'b', deepLink: `app://o/${i}` } } : {}),
        ...(i % 11 === 0 ? { email: { templateId: `t-${i}`, subject: 'Para ti', greeting: 'Estimado {{ firstName }}' } } : {}),
      },
      ...(templated ? { fallbacks: { firstName: 'cliente' } } : {}),
    };
  });

  // 20 policies: 12 suppressions, 4 channel caps, 4 quiet hours.
  const suppressions = Array.from({ length: 12 }, (_, i) => ({
    id: `suppress-${i}`,
    tags: [TAGS[i % TAGS.length] as string],
    when: [
      'profile.stats.openComplaints > 0.0',
      'daysSince(profile.stats.lastReturnAt) < 14.0',
      'profile.scores.churnRisk > 0.9',
      'profile.stats.visitsToday > 50.0',
    ][i % 4] as string,
  }));
  const document: CatalogInput = {
    tags: TAGS,
    // The model the churn suppression reads (profile.scores.churnRisk): a rule may only read a declared model.
    models: [{ id: 'churnRisk', kind: 'logistic', intercept: -3, features: [{ name: 'returns', expression: 'profile.stats.returns', weight: 0.9 }] }],
    segments: segmentList,
    actions: actionList,
    policies: {
      suppressions,
      channelCaps: [
        { id: 'push-day', channel: 'push', max: 1, per: '1d' },
        { id: 'email-week', channel: 'email', max: 2, per: '7d' },
        { id: 'sms-week', channel: 'sms', max: 1, per: '7d' },
        { id: 'web-hour', channel: 'web', max: 1_000, per: '1h' },
      ],
      quietHours: [
        { id: 'night-push', channels: ['push'], from: '21:00', to: '09:00' },
        { id: 'night-sms', channels: ['sms'], from: '20:00', to: '10:00' },
        { id: 'night-call', channels: ['call_center'], from: '20:00', to: '09:00' },
        { id: 'siesta-sms', channels: ['sms'], from: '14:00', to: '16:00' },
      ],
    },
    arbitration: {
      weights: { tags: { promo: 1.2, service: 0.8 } },
      placements: [{ channel: 'web', placement: 'home_hero', limit: 3, weights: { tags: { vip: 2 } } }],
    },
    learning: { enabled: true, exploration: 0.1, floor: 0.01 },
  };
  return { document, clauses };
}

export function benchProfile(now: Date): ProfileView {
  const hoursAgo = (h: number) => new Date(now.getTime() - h * 3_600_000).toISOString();
  const contacts: Record<string, ProfileView['contacts'][string]> = {};
  for (let i = 0; i < 40; i += 4) contacts[`action-${i}`] = { impressions: [hoursAgo(3), hoursAgo(30)], clicks: 1, conversions: 0 };
  return {
    userId: 'bench-user',
    anonymousIds: ['bench-anon'],
    identified: true,
    traits: { firstName: 'Luis', tier: 'gold', age: 34, email: 'luis@example.com' },
    timezone: 'Europe/Madrid',
    timezoneSource: 'trait',
    consent: { email: { granted: true, updatedAt: hoursAgo(500) }, push: { granted: true, updatedAt: hoursAgo(500) } },
    preferences: { interests: ['cycling', 'outdoor'] },
    stats: {
      visitsToday: 7,
      visits7d: 20,
      visits30d: 55,
      visitsTotal: 400,
      orders: 6,
      revenue: 540,
      lastPurchaseAt: hoursAgo(24 * 40),
      returns: 1,
      lastReturnAt: hoursAgo(24 * 90),
      openComplaints: 0,
      categoryInterests: { cycling: 0.8, running: 0.2 },
      eventCounts: { 'Product Viewed': { today: 3, last7d: 12, last30d: 40, total: 300 } },
    },
    engagement: { email: { delivered: 10, engaged: 4, rate: 0.4 } },
    contacts,
    channelContacts: { web: [hoursAgo(3)], email: [hoursAgo(100)] },
    segments: [],
    scores: { churnRisk: 0.2 },
  };
}

// ---------------------------------------------------------------------------

const percentile = (sorted: readonly number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] as number;
const sortNumbers = (values: number[]) => values.sort((a, b) => a - b);
const fmt = (ms: number) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`);
const verdict = (ok: boolean) => (ok ? 'ok' : 'OVER BUDGET');


/** The domain-only part (1, 2): no DynamoDB, no bundle. */
export async function benchDomain(iterations: number) {
  const { loadCatalog } = await import('#domain/catalog/load.ts');
  const { ActionArmsCache, decide, decideForLog } = await import('#domain/decide/decide.ts');
  const { customerPseudonym, decisionRecord, pseudonymKey } = await import('#domain/decide/decision-log.ts');
  const { decisionRecordLine } = await import('#domain/evaluation/decision-record.ts');
  const { decisionReference } = await import('#domain/decide/decision-id.ts');
  const { createRuleVariables, evaluateRule, DEFAULT_RULE_BUDGET_MS } = await import('#domain/catalog/rules.ts');
  const { evaluateAudience } = await import('#domain/catalog/audience.ts');
  const { ArmProbabilityCache } = await import('#domain/learning/policy.ts');
  const { cellKey } = await import('#domain/learning/statistics.ts');
  const { learningStatsOf } = await import('#store/statistics-cache.ts');
  const generated = generateCatalog();
  const loaded = loadCatalog(generated.document, 'object', { version: 1 });
  if (!loaded.ok) throw new Error(`generated catalog: ${JSON.stringify(loaded.problems.slice(0, 3))}`);
  const catalog = loaded.catalog;
  const now = new Date('2026-01-15T12:00:00Z');
  // Learning on, as the decide function runs it: windowed counts for every action on the placement (the
  // statistics cache's view of them) and a process cache of arm probabilities.
  const counting = seededRandom(7);
  const cells = new Map<string, { impressions: number; clicks: number; conversions: number }>();
  for (const action of catalog.actions) {
    const impressions = 50 + Math.floor(counting() * 2_000);
    cells.set(cellKey({ actionId: action.id, context: '-', channel: 'web', placement: 'home_hero' }), {
      impressions,
      clicks: Math.floor(impressions * counting() * 0.2),
      conversions: 0,
    });
  }
  const learning = learningStatsOf(cells, 1);
  const policies = new ArmProbabilityCache();
  const arms = new ActionArmsCache();
  const profile = benchProfile(now);
  const request: DecideRequest = {
    userId: 'bench-user',
    channel: 'web',
    placement: 'home_hero',
    limit: 3,
    context: { device: 'mobile', weather: 'rain', country: 'ES' },
    explain: false,
  };

  // Wall time is the budget; CPU time of the process (GC included) shows our own cost when the
  // machine is shared and the scheduler preempts the bench.
  const cpu: number[] = [];
  const pseudonyms = pseudonymKey('bench-decision-secret-0123456789abcdef');
  let recordBytes = 0;
  let sampledRecordBytes = 0;
  let loggedEligible = 0;
  /** As the decide function does: the decision with what its record needs, the record, and its log line's JSON. */
  const decideAndRecord = (req: DecideRequest, i: number) => {
    const { decision, log } = decideForLog(catalog, profile, req, now, { nonce: `n${i}`, ruleBudgetMs: DEFAULT_RULE_BUDGET_MS, learning, policies, arms });
    const record = decisionRecord({
      catalog,
      profile,
      context: req.context,
      decision,
      facts: log,
      decisionRef: decisionReference({ issuedAt: now, nonce: `n${i}` }),
      customer: customerPseudonym(pseudonyms, log.customerKey),
    });
    // The decide function's line: level, message and the record (decisionRecordLine).
    const bytes = decisionRecordLine(record).length;
    if (record.f) sampledRecordBytes = bytes;
    else recordBytes = bytes;
    loggedEligible = log.eligible.length;
  };
  const time = (req: DecideRequest, n: number, cpuSamples?: number[], withRecord = true) => {
    const samples: number[] = [];
    for (let i = 0; i < n; i++) {
      const cpuStart = process.cpuUsage();
      const started = performance.now();
      // As the decide function calls it: with its rule budget (and, unless told, its decision record).
      if (withRecord) decideAndRecord(req, i);
      else decide(catalog, profile, req, now, { nonce: `n${i}`, ruleBudgetMs: DEFAULT_RULE_BUDGET_MS, learning, policies, arms });
      samples.push(performance.now() - started);
      if (cpuSamples) {
        const used = process.cpuUsage(cpuStart);
        cpuSamples.push((used.user + used.system) / 1000);
      }
    }
    return sortNumbers(samples);
  };
  time(request, 1_000); // warm-up (JIT)
  const samples = time(request, iterations, cpu);
  sortNumbers(cpu);
  // The same decisions without their record, same run: what the record costs.
  time(request, 1_000, undefined, false);
  const withoutRecord = time(request, iterations, undefined, false);
  const explained = time({ ...request, explain: true }, Math.max(200, Math.floor(iterations / 10)));
  const sample = decide(catalog, profile, request, now, { nonce: 'x', learning, policies, arms });
  // The first decision of a (placement, context, eligible arms, statistics generation): the arm probabilities computed.
  const refreshed = learningStatsOf(cells, 2);
  const missStarted = performance.now();
  decide(catalog, profile, request, now, { nonce: 'miss', learning: refreshed, policies });
  const policyMissMs = performance.now() - missStarted;

  // The same 1,000 eligibility rules: compiled CEL, then json-rules-engine.
  const audience = evaluateAudience(catalog, profile, now, request.context);
  const vars = createRuleVariables({ profile, audience, context: request.context, channel: 'web', placement: 'home_hero', now, catalog });
  const rules = catalog.actions.map((a) => a.eligibility);
  let eligibleOurs = 0;
  const ours = () => {
    let n = 0;
    for (const rule of rules) if (evaluateRule(rule, vars)) n++;
    return n;
  };
  for (let i = 0; i < 200; i++) eligibleOurs = ours();
  const oursRuns = 2_000;
  let started = performance.now();
  for (let i = 0; i < oursRuns; i++) ours();
  const oursUs = ((performance.now() - started) / oursRuns) * 1000;

  const { Engine } = await import('json-rules-engine');
  const engine = new Engine([], { allowUndefinedFacts: true });
  for (const c of generated.clauses) {
    engine.addRule({
      name: c.id,
      conditions: {
        all: [
          { fact: 'profile', path: '$.stats.visitsToday', operator: 'greaterThan', value: c.visits },
          { fact: 'profile', path: '$.traits.tier', operator: 'notEqual', value: c.tier },
          { fact: 'context', path: '$.device', operator: 'equal', value: c.device },
        ],
      },
      event: { type: c.id },
    });
  }
  const facts = { profile, context: request.context };
  let eligibleJre = 0;
  for (let i = 0; i < 3; i++) eligibleJre = (await engine.run(facts)).events.length;
  const jreRuns = 20;
  started = performance.now();
  for (let i = 0; i < jreRuns; i++) await engine.run(facts);
  const jreUs = ((performance.now() - started) / jreRuns) * 1000;
  if (eligibleJre !== eligibleOurs) {
    throw new Error(`the two engines disagree: json-rules-engine ${eligibleJre} eligible, CEL ${eligibleOurs}`);
  }

  return {
    catalog: generated,
    sample,
    eligible: eligibleOurs,
    learning: { policyMissMs, cacheHits: policies.hits, cacheMisses: policies.misses },
    domain: {
      p50Ms: percentile(samples, 0.5),
      p99Ms: percentile(samples, 0.99),
      cpuP50Ms: percentile(cpu, 0.5),
      cpuP99Ms: percentile(cpu, 0.99),
      explainP50Ms: percentile(explained, 0.5),
    },
    record: {
      withoutP50Ms: percentile(withoutRecord, 0.5),
      withoutP99Ms: percentile(withoutRecord, 0.99),
      eligible: loggedEligible,
      bytes: recordBytes,
      sampledBytes: sampledRecordBytes,
    },
    rules: {
      oursUs,
      jsonRulesEngineUs: jreUs,
      speedup: jreUs / oursUs,
      speedupVsDecide: jreUs / (percentile(samples, 0.5) * 1000),
    },
  };
}

/** Bytes of each lazily loaded package (infra/bundling.ts) a bundle ships beside it: those whose loader it holds. */
function lazyBeside(result: Awaited<ReturnType<typeof buildLikeCdk>>): Record<string, number> {
  const inputs = Object.keys(result.metafile.inputs);
  return Object.fromEntries(
    LAZY_MODULES.filter((module) => inputs.some((path) => path.endsWith(module.loader))).map((module) => [module.name, result.lazyBytes[module.name] ?? 0]),
  );
}

/** "323 KB (+ re2js 254 KB beside it, loaded by catalogs using matches())". */
function bundleLabel(bytes: number, lazy: Record<string, number>): string {
  const extra = Object.entries(lazy).map(
    ([name, n]) => ` (+ ${name} ${(n / 1024).toFixed(0)} KB beside it, loaded by ${LAZY_MODULES.find((m) => m.name === name)?.loadedBy ?? 'its first use'})`,
  );
  return `${(bytes / 1024).toFixed(0)} KB${extra.join('')}`;
}

/** Bundle sizes of every function but decide, and the lazily loaded packages beside each. */
async function benchOtherBundles(): Promise<{ sizes: Record<string, number>; lazy: Record<string, Record<string, number>> }> {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-bundles-'));
  try {
    const sizes: Record<string, number> = {};
    const lazy: Record<string, Record<string, number>> = {};
    for (const name of readdirSync(join(ROOT, 'functions')).sort()) {
      const entry = join(ROOT, 'functions', name, 'handler.ts');
      if (name === 'decide' || !existsSync(entry)) continue;
      const outfile = join(dir, name, 'index.mjs');
      const result = await buildLikeCdk(entry, outfile);
      sizes[name] = statSync(outfile).size;
      lazy[name] = lazyBeside(result);
    }
    return { sizes, lazy };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function benchBundle(): Promise<{ bytes: number; lazy: Record<string, number>; topInputs: [string, number][]; outfile: string; dispose: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-decide-bundle-'));
  try {
    const outfile = join(dir, 'index.mjs');
    const profiles = process.env.KAIROS_BENCH_CPU_PROFILE;
    const result = await buildLikeCdk(DECIDE_ENTRY, outfile);
    if (result.errors.length > 0) throw new Error('the decide bundle does not build');
    // The bundle and its map beside the CPU profiles, so their frames can be read back to the sources.
    if (profiles !== undefined) {
      mkdirSync(profiles, { recursive: true });
      copyFileSync(outfile, join(profiles, 'decide-bundle.mjs'));
      copyFileSync(`${outfile}.map`, join(profiles, 'decide-bundle.mjs.map'));
    }
    const bytes = statSync(outfile).size;
    const byPackage = new Map<string, number>();
    for (const output of Object.values(result.metafile.outputs)) {
      for (const [path, input] of Object.entries(output.inputs)) {
        const at = path.lastIndexOf('node_modules/');
        let key: string;
        if (at === -1) key = path.split('/').slice(0, 2).join('/');
        else {
          const parts = path.slice(at + 'node_modules/'.length).split('/');
          key = parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? path);
        }
        byPackage.set(key, (byPackage.get(key) ?? 0) + input.bytesInOutput);
      }
    }
    const topInputs = [...byPackage.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12);

    return { bytes, lazy: lazyBeside(result), topInputs, outfile, dispose: () => rmSync(dir, { recursive: true, force: true }) };
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
}

/**
 * KAIROS_BENCH_CPU_PROFILE=<dir>: before the timed part, 3,000 requests of each side under V8's
 * sampling profiler, written as <dir>/decide-<side>.cpuprofile (open in Chrome DevTools or
 * speedscope). The difference between the two profiles is what decide costs beyond its read.
 */
async function profileSides(dir: string, sides: Record<string, () => Promise<void>>): Promise<void> {
  const { Session } = await import('node:inspector/promises');
  const { mkdirSync, writeFileSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  const session = new Session();
  session.connect();
  try {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 50 });
    for (const [side, call] of Object.entries(sides)) {
      await session.post('Profiler.start');
      for (let i = 0; i < 3_000; i++) await call();
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(join(dir, `decide-${side}.cpuprofile`), JSON.stringify(profile));
    }
  } finally {
    session.disconnect();
  }
}

export interface ColdStart {
  /** Median CPU time (user + system) of importing the bundle, ms. */
  readonly importCpuMs: number;
  /** Median CPU time of the first decide, ms (its wall time includes the first DynamoDB round trip). */
  readonly firstDecideCpuMs: number;
  /** Median of the per-process sums: the budgeted figure. */
  readonly totalCpuMs: number;
  /**
   * Median CPU time of the first decide spent on threads other than the main one, ms: V8's
   * background compilers and garbage-collector helpers (part of `firstDecideCpuMs`).
   */
  readonly firstDecideBackgroundCpuMs: number;
  readonly processes: number;
}

/**
 * The cold start proxy of ARCHITECTURE.md: COLD_STARTS fresh node processes
 * each import the decide bundle (as Lambda's runtime does) and answer one
 * decide through its handler (a real read of DynamoDB Local, over https
 * through a TLS front as a deployed decide reads DynamoDB: tls-front.ts); CPU time of
 * the import and of the first request, measured apart in the child with
 * process.cpuUsage() (every thread), and the first request's main-thread
 * share with process.threadCpuUsage().
 */
let coldStartRuns = 0;

/** Run this Node with `args` and `env` without blocking the event loop (the TLS front answers meanwhile); its status and output. */
function runProcess(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (status) => resolveRun({ status, stdout, stderr }));
  });
}

export async function benchColdStart(outfile: string, event: unknown): Promise<ColdStart> {
  const probe = `
    const before = process.cpuUsage();
    const { handler } = await import(process.argv[1]);
    const imported = process.cpuUsage(before);
    const mainBefore = process.threadCpuUsage();
    const context = { awsRequestId: 'cold', functionName: 'kairos-decide', getRemainingTimeInMillis: () => 5000 };
    const answer = await handler(JSON.parse(process.argv[2]), context);
    const main = process.threadCpuUsage(mainBefore);
    const total = process.cpuUsage(before);
    if (answer.statusCode !== 200 || JSON.parse(answer.body).degraded) throw new Error('first decide: ' + answer.statusCode + ' ' + answer.body);
    console.log(JSON.stringify({ importUs: imported.user + imported.system, totalUs: total.user + total.system, firstMainUs: main.user + main.system }));`;
  const imports: number[] = [];
  const firsts: number[] = [];
  const totals: number[] = [];
  const backgrounds: number[] = [];
  // KAIROS_BENCH_CPU_PROFILE=<dir>: one more process, under V8's profiler and left out of the figures (<dir>/coldstart-<n>/).
  const profiled = process.env.KAIROS_BENCH_CPU_PROFILE ? 1 : 0;
  // As deployed, the store over https (tls-front.ts): the first request loads https and tls and makes a handshake.
  const store = process.env.DYNAMODB_ENDPOINT;
  if (store === undefined) throw new Error('benchColdStart: DYNAMODB_ENDPOINT is not set');
  const front = await startTlsFront(store);
  try {
    for (let i = 0; i < COLD_STARTS + profiled; i++) {
      const profile = i < profiled ? [`--cpu-prof`, `--cpu-prof-interval=100`, `--cpu-prof-dir=${join(process.env.KAIROS_BENCH_CPU_PROFILE as string, `coldstart-${++coldStartRuns}`)}`] : [];
      const child = await runProcess([...profile, '--no-warnings', '--input-type=module', '-e', probe, outfile, JSON.stringify(event)], {
        ...process.env,
        DYNAMODB_ENDPOINT: front.endpoint,
        NODE_EXTRA_CA_CERTS: front.caFile,
        // As deployed: no NODE_OPTIONS (the map beside the bundle is read on the first error: shared/stack-traces.ts).
        NODE_OPTIONS: '',
        POWERTOOLS_LOG_LEVEL: 'ERROR',
        POWERTOOLS_METRICS_DISABLED: 'true',
        AWS_ACCESS_KEY_ID: 'local',
        AWS_SECRET_ACCESS_KEY: 'local',
        // A longer request deadline than the deployed 1 s: CPU time is the measure, and on a loaded shared
        // machine the wall time of a first decide (catalog read and compile, profile read) can pass 1 s.
        KAIROS_DECIDE_DEADLINE_MS: '10000',
      });
      const line = child.stdout.trim().split('\n').pop() ?? '';
      if (child.status !== 0 || !line.startsWith('{')) throw new Error(`cold start ${i + 1} of the decide bundle failed: ${child.stderr.slice(0, 500)}`);
      const { importUs, totalUs, firstMainUs } = JSON.parse(line) as { importUs: number; totalUs: number; firstMainUs: number };
      if (i < profiled) continue;
      imports.push(importUs / 1000);
      firsts.push((totalUs - importUs) / 1000);
      totals.push(totalUs / 1000);
      backgrounds.push((totalUs - importUs - firstMainUs) / 1000);
    }
  } finally {
    await front.close();
  }
  return {
    importCpuMs: percentile(sortNumbers(imports), 0.5),
    firstDecideCpuMs: percentile(sortNumbers(firsts), 0.5),
    totalCpuMs: percentile(sortNumbers(totals), 0.5),
    firstDecideBackgroundCpuMs: percentile(sortNumbers(backgrounds), 0.5),
    processes: COLD_STARTS,
  };
}

/** The cold start's floor, printed under the proxy's lines. */
const librariesLine = (l: { importCpuMs: number; bytes: number }) =>
  `  cold start floor             the decide bundle's packages alone, no Kairos code (bench/cold-start-libraries.ts, ${(l.bytes / 1024).toFixed(0)} KB): ` +
  `import ${fmt(l.importCpuMs)}, ${((100 * l.importCpuMs) / BUDGETS.coldStartCpuMs).toFixed(0)}% of the budget before any of our code runs`;

/**
 * The floor under the cold start proxy: the median CPU time (ms) of
 * COLD_STARTS fresh processes importing the decide bundle's packages alone
 * (LIBRARIES_ENTRY, built like the decide bundle), measured as
 * benchColdStart measures the decide bundle's import; and that bundle's size.
 */
export async function benchLibrariesImport(): Promise<{ importCpuMs: number; bytes: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'kairos-libraries-'));
  try {
    const outfile = join(dir, 'index.mjs');
    const result = await buildLikeCdk(LIBRARIES_ENTRY, outfile);
    if (result.errors.length > 0) throw new Error('the libraries bundle does not build');
    const probe = `
      const before = process.cpuUsage();
      await import(process.argv[1]);
      const imported = process.cpuUsage(before);
      console.log(JSON.stringify({ importUs: imported.user + imported.system }));`;
    const imports: number[] = [];
    for (let i = 0; i < COLD_STARTS; i++) {
      const child = spawnSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', probe, outfile], {
        encoding: 'utf8',
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      const line = child.stdout.trim().split('\n').pop() ?? '';
      if (child.status !== 0 || !line.startsWith('{')) throw new Error(`import ${i + 1} of the libraries bundle failed: ${child.stderr.slice(0, 500)}`);
      imports.push((JSON.parse(line) as { importUs: number }).importUs / 1000);
    }
    return { importCpuMs: percentile(sortNumbers(imports), 0.5), bytes: statSync(outfile).size };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * What the HTTP part and the cold start share: the tables, a server write key, `document` published as
 * the live catalog, and a customer's profile built from events by the profile function's code and stored
 * as that function stores it (enriched with the live catalog); the decide request's headers and body;
 * `restore()` publishes the previous live catalog again (as a new version).
 */
export async function prepareDecideFixture(endpoint: string, document: CatalogInput) {
  const { config } = await import('#shared/config.ts');
  if (config.DYNAMODB_ENDPOINT !== endpoint) {
    throw new Error(
      `benchDecide(${endpoint}) but the handlers were configured for ${config.DYNAMODB_ENDPOINT ?? 'AWS'}: ` +
        'set DYNAMODB_ENDPOINT before shared/config.ts is first imported',
    );
  }
  const { dynamo: sdkClient } = await import('#test/support/sdk-clients.ts');
  const { dynamo } = await import('#store/client.ts');
  const { ensureTables } = await import('#local/tables.ts');
  const { putWriteKey } = await import('#store/write-keys.ts');
  const { publishCatalog, readLiveCatalog } = await import('#store/catalog.ts');
  const { profileToItem } = await import('#store/profiles.ts');
  const { emptyProfileState } = await import('#domain/profile/state.ts');
  const { userProfileKey } = await import('#domain/stored-event.ts');
  const { basicAuth, apiGatewayEvent } = await import('#test/support/apigw.ts');
  const { statisticsUpdates } = await import('#store/statistics.ts');
  const { STATISTICS_BUCKET_MS } = await import('#domain/learning/statistics.ts');

  await ensureTables(sdkClient);
  const run = Date.now().toString(36);
  const secret = `wk_bench_decide_${run}`;
  await putWriteKey(secret, { keyId: `bench-decide-${run}`, name: 'decide bench', kind: 'server', createdAt: new Date().toISOString() });

  const previous = await readLiveCatalog();
  const published = await publishCatalog(JSON.stringify(document), 'json', { principal: 'bench' });
  if (!published.ok) throw new Error(`publishing the generated catalog: ${JSON.stringify(published.problems.slice(0, 3))}`);
  // Outcome statistics for every action on the placement, spread over the shards as the profile function
  // writes them: decide's background refresh reads all of them.
  const counting = seededRandom(7);
  const bucket = Math.floor(Date.now() / STATISTICS_BUCKET_MS) * STATISTICS_BUCKET_MS;
  const increments = (document.actions ?? []).map((action) => {
    const impressions = 50 + Math.floor(counting() * 2_000);
    const clicks = Math.floor(impressions * counting() * 0.2);
    return { cell: { actionId: action.id, context: '-', channel: 'web' as const, placement: 'home_hero' }, bucket, counts: { impressions, clicks, conversions: 0 } };
  });
  for (let i = 0; i < increments.length; i += 100) {
    await dynamo().send('TransactWriteItems', { TransactItems: statisticsUpdates(increments.slice(i, i + 100), (i / 100) % 16) });
  }

  const userId = `bench-user-${run}`;
  // The profile as the profile function writes it: events applied, then enriched with the live
  // catalog (segments, persona, scores and the catalog's stamp), at the instant it is written.
  const { applyEvents } = await import('#domain/profile/apply.ts');
  const { storedEvent } = await import('#test/support/stream.ts');
  const { toProfileView } = await import('#domain/profile/to-view.ts');
  const { boundEnrichment } = await import('#domain/profile/enrich.ts');
  const { createCatalogEnricher } = await import('#domain/catalog/enricher.ts');
  const { refreshLiveCatalog } = await import('#store/catalog-live.ts');
  const writtenAt = Date.now();
  const ago = (minutes: number) => new Date(writtenAt - minutes * 60_000).toISOString();
  // The generated catalog's rules read profile.stats.visitsToday (the customer's day: UTC here). When the page views
  // below (up to 40 minutes back) and the module's timed part (minutes after this) are not all on one UTC day, the
  // customer is eligible for nothing, and decide's figures would measure decisions that choose nothing: refuse.
  const dayOf = (ms: number) => Math.floor(ms / 86_400_000);
  if (dayOf(writtenAt - 40 * 60_000) !== dayOf(writtenAt) || dayOf(writtenAt + 15 * 60_000) !== dayOf(writtenAt)) {
    throw new Error(
      "the decide fixture's page views and the timed decisions would not all fall on one UTC day, where the generated catalog's " +
        'rules (profile.stats.visitsToday) look: run the bench between 00:40 and 23:45 UTC',
    );
  }
  const events = [
    storedEvent({ messageId: 'm-identify', userId, type: 'identify', timestamp: ago(1_440), traits: { firstName: 'Luis', tier: 'gold', email: 'luis@example.com' } }),
    storedEvent({ messageId: 'm-consent', userId, type: 'track', event: 'Consent Updated', timestamp: ago(1_440), properties: { channel: 'email', granted: true } }),
    ...Array.from({ length: 8 }, (_, i) =>
      storedEvent({ messageId: `m-page-${i}`, userId, type: 'page', name: 'Home', timestamp: ago(30 + i), properties: { category: 'cycling' } }),
    ),
    storedEvent({ messageId: 'm-viewed', userId, type: 'track', event: 'Product Viewed', timestamp: ago(20), properties: { category: 'running' } }),
  ];
  const state = applyEvents(emptyProfileState({ userId }), events, { halfLifeDays: 14 });
  const live = await refreshLiveCatalog();
  if (live?.version !== published.version) throw new Error(`the live catalog is version ${live?.version}, not the one published (${published.version})`);
  state.enrichment = boundEnrichment(createCatalogEnricher(() => live)(toProfileView(state, writtenAt), new Date(writtenAt)));
  state.updatedAt = writtenAt;
  const pk = userProfileKey(userId);
  await dynamo().send('PutItem', { TableName: config.PROFILES_TABLE, Item: profileToItem(pk, state, 1) });

  const decideBody = JSON.stringify({ userId, channel: 'web', placement: 'home_hero', limit: 3, context: { device: 'mobile' } });
  const headers = { authorization: basicAuth(secret), 'content-type': 'application/json' };
  return {
    config,
    pk,
    decideBody,
    headers,
    /** The decide request as API Gateway hands it to the function. */
    event: () => apiGatewayEvent({ method: 'POST', path: '/v1/decide', headers, body: decideBody }),
    /** Publish the seed catalog (catalog/demo.yaml) as the live version. */
    publishSeed: async () => {
      const seed = await publishCatalog(readFileSync(join(ROOT, 'catalog/demo.yaml'), 'utf8'), 'yaml', { principal: 'bench' });
      if (!seed.ok) throw new Error(`publishing the seed catalog: ${JSON.stringify(seed.problems.slice(0, 3))}`);
    },
    restore: async () => {
      if (previous) await publishCatalog(previous.text, previous.format === 'yaml' ? 'yaml' : 'json', { principal: 'bench (restore)' });
    },
  };
}

/**
 * Request pairs (decide, then the bare GetItem) sent before the HTTP part's timing. Decide's own code
 * (1,000 actions: the candidate loop, the bandit's ranking, rendering) runs in V8's optimised tier only
 * after a few thousand calls: after 200 pairs its share of a request was still about 1.8 times its
 * steady-state figure (the decide step 549 against 297 µs, p50, in one process, measured apart).
 */
const HTTP_WARM_UP_PAIRS = 3_000;

async function benchHttp(endpoint: string, document: CatalogInput, requests: number, bundleFile: string) {
  const fixture = await prepareDecideFixture(endpoint, document);
  const { config, pk, decideBody, headers } = fixture;
  const { dynamo } = await import('#store/client.ts');
  const { startLocalServer } = await import('#local/server.ts');
  const { handler: decideHandler, statistics: decideStatistics } = await import('#functions/decide/handler.ts');

  // The baseline: a second instance of the same server, the same route and the same request (headers and
  // body), whose decide function is one GetItem of the same profile through the same client as decide's
  // (the process's one DynamoDB client, shared/store/client.ts) and nothing else. Both sides pay the same
  // for the HTTP exchange; the difference is what decide does beyond its read.
  const bareGetItem = async (_event: APIGatewayProxyEventV2) => {
    const { Item: item } = await dynamo().send('GetItem', { TableName: config.PROFILES_TABLE, Key: { pk } }, { attempts: 2 });
    return { statusCode: 200, headers: { 'content-type': 'application/json' }, body: JSON.stringify(item ?? null) };
  };
  const unused = async () => ({ statusCode: 404, body: '' });
  const fn = (name: string, handler: (event: never, context: never) => unknown) => ({ name, handler: handler as never, timeoutSeconds: 10, memorySize: 1769 });
  const serverWith = (decideFunction: (event: never, context: never) => unknown) =>
    startLocalServer({
      functions: { decide: fn('decide', decideFunction), health: fn('health', unused), ingest: fn('ingest', unused), admin: fn('admin', unused) },
      port: 0,
    });
  const server = await serverWith(decideHandler as never);
  const bareServer = await serverWith(bareGetItem as never);
  // Decide's decision records go where the local stack puts them (a file, not the terminal), one per decision.
  const { captureDecisionRecords, decisionLogFiles, LocalDecisionLog } = await import('#local/decision-log.ts');
  const recordsFolder = mkdtempSync(join(tmpdir(), 'kairos-bench-decisions-'));
  const records = new LocalDecisionLog(recordsFolder);
  const releaseStdout = captureDecisionRecords(records);
  let decideCalls = 0;

  // Requests on the decide side only: the process's one DynamoDB client counts every HTTP request it sends
  // (profile, write key, catalog), read around each decide round (the baseline's run outside those rounds).
  const commands = new Map<string, number>();
  const add = (key: string, n = 1) => commands.set(key, (commands.get(key) ?? 0) + n);
  const liteClients = [dynamo()];
  const liteSnapshot = () => liteClients.map((c) => new Map(c.counts));
  const liteDelta = (before: Map<string, number>[]) =>
    liteClients.forEach((c, i) => {
      for (const [key, n] of c.counts) if (n - (before[i]?.get(key) ?? 0) > 0) add(key, n - (before[i]?.get(key) ?? 0));
    });

  const coldStart = await benchColdStart(bundleFile, fixture.event());
  // Both sides read the whole response as bytes inside the timing; decide's is checked after the clock
  // stops, so the client's JSON parsing is not counted against the server on one side only.
  const callDecide = async (): Promise<() => void> => {
    decideCalls++;
    const response = await fetch(`${server.url}/v1/decide`, { method: 'POST', headers, body: decideBody });
    const bytes = await response.arrayBuffer();
    return () => {
      const body = JSON.parse(Buffer.from(bytes).toString('utf8')) as { degraded?: boolean; actions?: unknown[] };
      if (response.status !== 200 || body.degraded) throw new Error(`decide answered ${response.status} ${JSON.stringify(body).slice(0, 200)}`);
    };
  };
  const callBare = async () => {
    const response = await fetch(`${bareServer.url}/v1/decide`, { method: 'POST', headers, body: decideBody });
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`baseline answered ${response.status}`);
  };

  try {
    // Warm: both sides until V8 has optimised their code (HTTP_WARM_UP_PAIRS; what a Lambda instance does
    // after its first few thousand requests, and for the rest of its life). The cold start is measured apart.
    for (let i = 0; i < HTTP_WARM_UP_PAIRS; i++) {
      (await callDecide())();
      await callBare();
    }
    if (process.env.KAIROS_BENCH_CPU_PROFILE) await profileSides(process.env.KAIROS_BENCH_CPU_PROFILE, { decide: async () => (await callDecide())(), bare: callBare });
    const decideSamples: number[] = [];
    const bareSamples: number[] = [];
    let decisions = 0;
    // The statistics cache's background reads go through its own client: counted here, apart.
    const statisticsReadsBefore = decideStatistics.client.requests;
    const timedFrom = performance.now();
    // One request of each side in turn, the side that goes first alternating: drift in the emulator,
    // the machine's load and the garbage collector hit both sides alike.
    const timeDecide = async () => {
      const before = liteSnapshot();
      const started = performance.now();
      const check = await callDecide();
      decideSamples.push(performance.now() - started);
      check();
      liteDelta(before);
      decisions++;
    };
    const timeBare = async () => {
      const started = performance.now();
      await callBare();
      bareSamples.push(performance.now() - started);
    };
    for (let i = 0; i < requests; i++) {
      if (i % 2 === 0) {
        await timeDecide();
        await timeBare();
      } else {
        await timeBare();
        await timeDecide();
      }
    }
    const statisticsReads = decideStatistics.client.requests - statisticsReadsBefore;
    const timedSeconds = (performance.now() - timedFrom) / 1000;
    sortNumbers(decideSamples);
    sortNumbers(bareSamples);
    // The cold start again with the seed catalog live (the same request and profile).
    await fixture.publishSeed();
    const coldStartSeed = await benchColdStart(bundleFile, fixture.event());
    const coldStartLibraries = await benchLibrariesImport();
    // On the request path: the profile read. Anything else (the catalog pointer check every 5 s,
    // a write key re-check every 30 s) runs in the background or is amortised.
    let profileReads = 0;
    let other = 0;
    for (const [name, n] of commands) {
      if (name.endsWith(` ${config.PROFILES_TABLE}`)) profileReads += n;
      else other += n;
    }
    const byCommand = Object.fromEntries([...commands.entries()].map(([k, v]) => [k, v / decisions]));
    records.close();
    const recordLines = decisionLogFiles(recordsFolder).reduce((n, file) => n + readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').length, 0);
    return {
      http: {
        decideP50Ms: percentile(decideSamples, 0.5),
        getItemP50Ms: percentile(bareSamples, 0.5),
        decideP99Ms: percentile(decideSamples, 0.99),
        getItemP99Ms: percentile(bareSamples, 0.99),
        ratio: percentile(decideSamples, 0.5) / percentile(bareSamples, 0.5),
      },
      requestsPerDecision: {
        profileReads: profileReads / decisions,
        other: other / decisions,
        byCommand,
        backgroundStatistics: { reads: statisticsReads, perDecision: statisticsReads / decisions, perSecond: statisticsReads / timedSeconds, arms: decideStatistics.status().arms },
      },
      coldStart,
      coldStartSeed,
      coldStartLibraries,
      recordsPerDecision: recordLines / decideCalls,
    };
  } finally {
    releaseStdout();
    records.close();
    rmSync(recordsFolder, { recursive: true, force: true });
    await Promise.all([server.stop(), bareServer.stop()]);
    await fixture.restore();
  }
}

/**
 * The cold start proxy alone (`npm run bench -- --only coldstart`): the decide bundle built as the CDK
 * builds it, the same fixture as the HTTP part (a stored profile, a write key), then COLD_STARTS fresh
 * processes with the generated 1,000-action catalog live and again with the seed catalog.
 */
export async function benchDecideColdStart(endpoint: string): Promise<{ coldStart: ColdStart; coldStartSeed: ColdStart; withinBudget: boolean }> {
  assertLocalEndpoint(endpoint, 'benchDecideColdStart');
  process.env.DYNAMODB_ENDPOINT ??= endpoint;
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';
  const load1 = loadavg()[0] ?? 0;
  const bundle = await benchBundle();
  try {
    const fixture = await prepareDecideFixture(endpoint, generateCatalog().document);
    try {
      const coldStart = await benchColdStart(bundle.outfile, fixture.event());
      await fixture.publishSeed();
      const coldStartSeed = await benchColdStart(bundle.outfile, fixture.event());
      const libraries = await benchLibrariesImport();
      const line = (label: string, c: ColdStart) =>
        `  ${label.padEnd(28)} import ${fmt(c.importCpuMs)} + first decide ${fmt(c.firstDecideCpuMs)} = ${fmt(c.totalCpuMs)} ` +
        `(budget <= 150 ms: ${verdict(c.totalCpuMs <= BUDGETS.coldStartCpuMs)}); the first decide's CPU off the main thread ` +
        `(V8's background compilers, GC helpers): ${fmt(c.firstDecideBackgroundCpuMs)}`;
      console.log(
        [
          '',
          `decide cold start proxy — median CPU of ${COLD_STARTS} fresh processes; load average ${load1.toFixed(1)} at the start, ` +
            `${(loadavg()[0] ?? 0).toFixed(1)} at the end, on ${availableParallelism()} cores; bundle ${bundleLabel(bundle.bytes, bundle.lazy)}`,
          line('1,000-action catalog', coldStart),
          line('seed catalog', coldStartSeed),
          librariesLine(libraries),
        ].join('\n'),
      );
      return { coldStart, coldStartSeed, withinBudget: Math.max(coldStart.totalCpuMs, coldStartSeed.totalCpuMs) <= BUDGETS.coldStartCpuMs };
    } finally {
      await fixture.restore();
    }
  } finally {
    bundle.dispose();
  }
}

/** Run every decide benchmark and print one report. */
export async function benchDecide(endpoint?: string, options: DecideBenchOptions = {}): Promise<DecideBenchResult> {
  const withHttp = !options.skipHttp && endpoint !== undefined;
  if (withHttp) {
    assertLocalEndpoint(endpoint, 'benchDecide');
    process.env.DYNAMODB_ENDPOINT ??= endpoint;
  }
  process.env.AWS_REGION ??= 'us-east-1';
  process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
  process.env.POWERTOOLS_LOG_LEVEL ??= 'ERROR';

  const machine = { load1: loadavg()[0] ?? 0, cores: availableParallelism() };
  const domain = await benchDomain(options.domainIterations ?? 5_000);
  const bundle = await benchBundle();
  const { sizes: otherBundles, lazy: otherLazyModules } = await benchOtherBundles();
  let httpPart: Awaited<ReturnType<typeof benchHttp>> | undefined;
  try {
    httpPart = withHttp ? await benchHttp(endpoint, domain.catalog.document, options.httpRequests ?? 2_000, bundle.outfile) : undefined;
  } finally {
    bundle.dispose();
  }

  const withinBudget: Record<string, boolean> = {
    domainP99: domain.domain.p99Ms <= BUDGETS.domainP99Ms,
    rulesSpeedup: domain.rules.speedup >= BUDGETS.rulesSpeedup,
    bundle: bundle.bytes <= BUDGETS.bundleBytes,
    otherBundles: Object.entries(otherBundles).every(([name, bytes]) => bytes <= (offRequestPath(name) ? BUDGETS.adminBundleBytes : BUDGETS.otherBundleBytes)),
  };
  if (httpPart) {
    withinBudget.httpRatio = httpPart.http.ratio <= BUDGETS.httpP50Ratio;
    withinBudget.coldStart = httpPart.coldStart.totalCpuMs <= BUDGETS.coldStartCpuMs;
    withinBudget.coldStartSeed = httpPart.coldStartSeed.totalCpuMs <= BUDGETS.coldStartCpuMs;
    withinBudget.requestsPerDecision = Math.abs(httpPart.requestsPerDecision.profileReads - 1) < 1e-9 && httpPart.requestsPerDecision.other < 0.05;
  }

  const lines = [
    '',
    `decide — 1,000 actions, 100 segments, 20 policies (generated); load average ${machine.load1.toFixed(1)} on ${machine.cores} cores`,
    `  domain only, warm            p50 ${fmt(domain.domain.p50Ms)}  p99 ${fmt(domain.domain.p99Ms)}  (budget p99 <= 1 ms: ${verdict(withinBudget.domainP99 as boolean)})` +
      `  CPU p50 ${fmt(domain.domain.cpuP50Ms)} p99 ${fmt(domain.domain.cpuP99Ms)}  explain p50 ${fmt(domain.domain.explainP50Ms)}; ` +
      `${domain.sample.actions.length} actions returned, ${domain.eligible} of 1,000 rules hold`,
    `  decision record (in the above) without it, same run p50 ${fmt(domain.record.withoutP50Ms)}  p99 ${fmt(domain.record.withoutP99Ms)}; ` +
      `${domain.record.eligible} eligible candidates logged; log line ${(domain.record.bytes / 1024).toFixed(1)} KB, with features ${(domain.record.sampledBytes / 1024).toFixed(1)} KB`,
    `  learning on                  arm probabilities cached: ${domain.learning.cacheHits} hits, ${domain.learning.cacheMisses} misses; ` +
      `a decision that computes them ${fmt(domain.learning.policyMissMs)}; served first with probability ${domain.sample.actions[0]?.probability ?? '-'}`,
    `  1,000 eligibility rules      CEL ${domain.rules.oursUs.toFixed(0)} µs  json-rules-engine ${domain.rules.jsonRulesEngineUs.toFixed(0)} µs  ` +
      `ratio ${domain.rules.speedup.toFixed(0)}x (budget >= 20x: ${verdict(withinBudget.rulesSpeedup as boolean)}); ` +
      `vs our whole decision ${domain.rules.speedupVsDecide.toFixed(0)}x`,
  ];
  if (httpPart) {
    const { http, requestsPerDecision } = httpPart;
    lines.push(
      `  HTTP, local server           decide p50 ${fmt(http.decideP50Ms)} p99 ${fmt(http.decideP99Ms)}  bare GetItem p50 ${fmt(http.getItemP50Ms)} p99 ${fmt(http.getItemP99Ms)}  ` +
        `ratio ${http.ratio.toFixed(2)} (budget <= 1.3: ${verdict(withinBudget.httpRatio as boolean)}); ` +
        `decision records logged per decision ${httpPart.recordsPerDecision.toFixed(3)}`,
      `  DynamoDB requests / decision profile reads ${requestsPerDecision.profileReads.toFixed(3)}, other (amortised background checks) ` +
        `${requestsPerDecision.other.toFixed(4)} ${JSON.stringify(requestsPerDecision.byCommand)} (budget exactly 1: ${verdict(withinBudget.requestsPerDecision as boolean)}); ` +
        `apart, the statistics cache's background reads: ${requestsPerDecision.backgroundStatistics.reads} Query ` +
        `(${requestsPerDecision.backgroundStatistics.perSecond.toFixed(1)}/s, ${requestsPerDecision.backgroundStatistics.perDecision.toFixed(4)} per decision; ` +
        `${requestsPerDecision.backgroundStatistics.arms} arms learnt)`,
    );
  } else {
    lines.push('  HTTP and DynamoDB requests   skipped (no DynamoDB endpoint)');
  }
  lines.push(
    `  bundle (esbuild, like CDK)   ${bundleLabel(bundle.bytes, bundle.lazy)} (budget 500 KB: ${verdict(withinBudget.bundle as boolean)}); ` +
      `largest: ${bundle.topInputs.map(([k, v]) => `${k} ${(v / 1024).toFixed(0)} KB`).join(', ')}`,
    ...(httpPart
      ? [
          `  cold start proxy             median CPU of ${httpPart.coldStart.processes} fresh processes, 1,000-action catalog: import ${fmt(httpPart.coldStart.importCpuMs)} + first decide ` +
            `${fmt(httpPart.coldStart.firstDecideCpuMs)} = ${fmt(httpPart.coldStart.totalCpuMs)} (budget <= 150 ms: ${verdict(withinBudget.coldStart as boolean)})`,
          `  cold start proxy, seed       same, seed catalog (catalog/demo.yaml): import ${fmt(httpPart.coldStartSeed.importCpuMs)} + first decide ` +
            `${fmt(httpPart.coldStartSeed.firstDecideCpuMs)} = ${fmt(httpPart.coldStartSeed.totalCpuMs)} (budget <= 150 ms: ${verdict(withinBudget.coldStartSeed as boolean)})`,
          librariesLine(httpPart.coldStartLibraries),
        ]
      : ['  cold start proxy             skipped (no DynamoDB endpoint)']),
    `  other bundles                ${Object.entries(otherBundles).map(([name, bytes]) => `${name} ${bundleLabel(bytes, otherLazyModules[name] ?? {})}`).join(', ')} ` +
      `(budget 500 KB each, admin and evaluation-* 1 MB: ${verdict(withinBudget.otherBundles as boolean)})`,
  );
  console.log(lines.join('\n'));

  return {
    domain: domain.domain,
    record: domain.record,
    machine,
    rules: domain.rules,
    ...(httpPart ? { http: httpPart.http, requestsPerDecision: httpPart.requestsPerDecision } : {}),
    bundle: { bytes: bundle.bytes, lazy: bundle.lazy, topInputs: bundle.topInputs },
    otherBundles,
    otherLazyModules,
    ...(httpPart ? { coldStart: httpPart.coldStart, coldStartSeed: httpPart.coldStartSeed, coldStartLibraries: httpPart.coldStartLibraries } : {}),
    withinBudget,
  };
}

// `node --import tsx bench/decide.ts [endpoint]`: run on its own.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await benchDecide(process.argv[2], { skipHttp: process.argv[2] === undefined });
}
