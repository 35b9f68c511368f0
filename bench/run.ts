/**
 * `npm run bench`: every bench module in one run, each in its own Node
 * process with what it needs started for it (an in-memory local stack, or an
 * in-memory DynamoDB Local), so one module's work (the stream draining an
 * ingest bench's events, a live catalog) never skews another's figures, and
 * each gets a fresh handler configuration. Every module prints its figures
 * with their budgets and their ratios to baselines measured in the same run;
 * this prints a summary at the end.
 *
 *   npm run bench                       all modules
 *   npm run bench -- --only freshness   one module (in this process)
 *   npm run bench -- --only coldstart   decide's cold start proxy alone (not in the full run: decide has it)
 *   npm run bench -- --strict           exit 1 when a budget is missed
 *
 * Benchmarks are never timed assertions in `npm test`.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

/** What a module needs started before it runs. */
type Needs = 'stack' | 'dynamodb';

interface BenchTarget {
  readonly url?: string;
  readonly writeKey?: string;
  readonly adminToken?: string;
  readonly endpoint: string;
  /** A local stack's bus deliveries (local/stack.ts `emissions`). */
  readonly emissions?: () => readonly { readonly time: string; readonly detail: Readonly<Record<string, unknown>> }[];
}

interface BenchModule {
  readonly name: string;
  readonly needs: Needs;
  readonly description: string;
  /** Run only with `--only <name>` (a part of another module, measured alone). */
  readonly onlyWhenAsked?: boolean;
  /** Runs the bench; returns whether every budget held (undefined: the module reports no verdict). */
  run(target: BenchTarget): Promise<boolean | undefined>;
}

const MODULES: readonly BenchModule[] = [
  {
    name: 'freshness',
    needs: 'stack',
    description: 'event accepted → visible on the profile (local stack)',
    async run(target) {
      const { benchFreshness } = await import('./freshness.ts');
      const result = await benchFreshness({ url: target.url ?? '', writeKey: target.writeKey ?? '', adminToken: target.adminToken ?? '' });
      return result.withinBudget;
    },
  },
  {
    name: 'emission',
    needs: 'stack',
    description: 'event accepted → trigger emission on the bus (local stack)',
    async run(target) {
      const { benchEmission } = await import('./emission.ts');
      const result = await benchEmission({ url: target.url ?? '', writeKey: target.writeKey ?? '', emissions: target.emissions ?? (() => []) });
      return result.withinBudget;
    },
  },
  {
    name: 'ingest',
    needs: 'dynamodb',
    description: 'ingest handler vs raw TransactWriteItems / BatchWriteItem',
    async run(target) {
      const { benchIngest } = await import('./ingest.ts');
      await benchIngest(target.endpoint);
      return undefined;
    },
  },
  {
    name: 'decide',
    needs: 'dynamodb',
    description: 'decide: domain p99, rules vs json-rules-engine, HTTP vs GetItem, requests, bundle, module load',
    async run(target) {
      const { benchDecide } = await import('./decide.ts');
      const result = await benchDecide(target.endpoint);
      return Object.values(result.withinBudget).every(Boolean);
    },
  },
  {
    name: 'coldstart',
    needs: 'dynamodb',
    description: "decide's cold start proxy alone (also part of decide): fresh processes import the bundle and answer one decide",
    onlyWhenAsked: true,
    async run(target) {
      const { benchDecideColdStart } = await import('./decide.ts');
      const result = await benchDecideColdStart(target.endpoint);
      return result.withinBudget;
    },
  },
  {
    name: 'profile',
    needs: 'dynamodb',
    description: 'profile stream apply rate at saturation vs raw TransactWriteItems of the same items',
    async run(target) {
      const { benchProfile } = await import('./profile.ts');
      const result = await benchProfile(target.endpoint);
      return result.withinBudget;
    },
  },
  {
    name: 'load',
    needs: 'stack',
    description: 'autocannon on the local stack: decide and ingest throughput and latency under concurrent clients',
    async run(target) {
      const { benchLoad } = await import('./load.ts');
      await benchLoad({ url: target.url ?? '', writeKey: target.writeKey ?? '' });
      return undefined;
    },
  },
  {
    name: 'cost',
    needs: 'dynamodb',
    description: 'what 1M decisions and 1M ingested events cost on AWS list prices, from the durations, units and bytes measured here',
    async run(target) {
      const { benchCost } = await import('./cost-measure.ts');
      const result = await benchCost(target.endpoint);
      return result.withinBudget;
    },
  },
  // A new bench module goes here: { name, needs, description, run }.
];

const RESULT_PREFIX = 'KAIROS_BENCH_RESULT ';

/** Run one module in this process, with what it needs. */
async function runModule(module: BenchModule): Promise<boolean | undefined> {
  // The modules configure the handlers through the environment: nothing inherited may point elsewhere.
  delete process.env.DYNAMODB_ENDPOINT;
  if (module.needs === 'stack') {
    const { startLocalStack } = await import('#local/stack.ts');
    const stack = await startLocalStack({ env: {}, inMemory: true, port: 0, logLevel: 'ERROR', log: () => undefined });
    try {
      return await module.run({ url: stack.url, writeKey: stack.writeKey, adminToken: stack.adminToken, endpoint: stack.dynamoEndpoint, emissions: stack.emissions });
    } finally {
      await stack.stop();
    }
  }
  // The decide and profile handlers seal and open decision ids with this key (the local stack makes its own).
  process.env.KAIROS_DECISION_KEY ??= randomBytes(32).toString('base64url');
  const { startDynamoLocal } = await import('#local/dynamodb.ts');
  const dynamo = await startDynamoLocal({ inMemory: true });
  try {
    return await module.run({ endpoint: dynamo.endpoint });
  } finally {
    await dynamo.stop();
  }
}

/** Run one module in a child process; its output goes straight to ours. */
function runChild(module: BenchModule): Promise<{ ok: boolean; withinBudget: boolean | undefined; seconds: number }> {
  const started = performance.now();
  return new Promise((resolveRun) => {
    const env: NodeJS.ProcessEnv = { ...process.env };
    delete env.DYNAMODB_ENDPOINT;
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--only', module.name, '--child'], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let withinBudget: boolean | undefined;
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      let newline: number;
      while ((newline = pending.indexOf('\n')) !== -1) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.startsWith(RESULT_PREFIX)) {
          const verdict = JSON.parse(line.slice(RESULT_PREFIX.length)) as { withinBudget: boolean | null };
          withinBudget = verdict.withinBudget ?? undefined;
        } else {
          process.stdout.write(`${line}\n`);
        }
      }
    });
    child.on('exit', (code) => {
      if (pending) process.stdout.write(pending);
      resolveRun({ ok: code === 0, withinBudget, seconds: (performance.now() - started) / 1000 });
    });
  });
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const strict = args.includes('--strict');
  const onlyIndex = args.indexOf('--only');
  const only = onlyIndex === -1 ? undefined : args[onlyIndex + 1];
  if (only !== undefined) {
    const module = MODULES.find((m) => m.name === only);
    if (!module) throw new Error(`No bench module "${only}"; there are: ${MODULES.map((m) => m.name).join(', ')}`);
    const withinBudget = await runModule(module);
    if (args.includes('--child')) console.log(`${RESULT_PREFIX}${JSON.stringify({ withinBudget: withinBudget ?? null })}`);
    process.exitCode = strict && withinBudget === false ? 1 : 0;
    return;
  }

  const modules = MODULES.filter((m) => !m.onlyWhenAsked);
  console.log(`Kairos bench — ${modules.length} modules; load average ${(loadavg()[0] ?? 0).toFixed(1)} on ${availableParallelism()} cores`);
  console.log('DynamoDB Local is slower than DynamoDB: read the ratios to same-run baselines, not absolute figures.');
  const summary: string[] = [];
  let missed = false;
  let failed = false;
  for (const module of modules) {
    console.log(`\n── ${module.name}: ${module.description}`);
    const outcome = await runChild(module);
    const verdict = !outcome.ok ? 'FAILED' : outcome.withinBudget === undefined ? 'done (see figures)' : outcome.withinBudget ? 'within budget' : 'OVER BUDGET';
    failed ||= !outcome.ok;
    missed ||= outcome.withinBudget === false;
    summary.push(`  ${module.name.padEnd(10)} ${verdict.padEnd(20)} ${outcome.seconds.toFixed(0)} s`);
  }
  console.log(`\nsummary\n${summary.join('\n')}`);
  process.exitCode = failed || (strict && missed) ? 1 : 0;
}

await main();
