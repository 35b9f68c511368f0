/**
 * The learning simulation: a synthetic population with known click rates
 * per persona and arm (action, variant), served through the real local HTTP
 * API, round after round, and what the served policy earned against two
 * references on the very same decisions.
 *
 *   npm run bench:learning                          defaults (about 2 minutes here)
 *   npm run bench:learning -- --customers 120 --rounds 6 --seed 7
 *
 * Each round, every customer who visits (each with its own visit
 * probability) asks `POST /v1/decide` (server key, web, placement `offer`)
 * and the bench reports what it was shown — `Promotion Viewed`, and with the
 * persona × arm click rate `Promotion Clicked` — in `POST /v1/batch` with
 * decision_id, action_id and variant. Between rounds it waits until the
 * Events stream has delivered every accepted event to the profile function,
 * so the next round's decisions see every earlier outcome (caps included).
 *
 * Printed, in one run:
 * - reward per decision that served an action (expected clicks, from the
 *   known rates, and the clicks drawn): the served policy; the oracle (per
 *   decision, the best arm for the customer's persona among the arms it may
 *   be served: action caps respected); a static policy (the one arm best on
 *   the whole population, whenever it may be served, else the next);
 * - each arm's share of the served traffic, round by round;
 * - decisions that broke consent or a cap: any action served to a customer
 *   without web consent, past the channel cap or past the action's cap, by
 *   the bench's own ledger of counted impressions (must be 0), and how many
 *   of the checked decisions explored (`explain` is asked on every other
 *   decision, so both of decide's paths are checked);
 * - the actions report (`GET /v1/admin/reports/actions`) of the run.
 *
 * Population: a third each of three personas (from an `identify` trait);
 * 10% never grant web consent; 15% are heavy visitors who come every round
 * and reach the channel cap. Seeded: the same seed gives the same
 * population and draws (decide's own exploration draws are its own).
 */
import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalStack, type LocalStack } from '#local/stack.ts';
import { seededRandom } from '#domain/decide/random.ts';

/** The slot every decision is for. */
const CHANNEL = 'web';
const PLACEMENT = 'offer';
/** Web contacts per customer per day (the catalog's channel cap). */
const CHANNEL_CAP = 6;
/** Per-action cap of `offer-gift` (contacts per day). */
const GIFT_CAP = 2;

const PERSONAS = ['student', 'family', 'premium'] as const;
type Persona = (typeof PERSONAS)[number];

/** The arms decide can serve here: action, and variant when the action has them. */
const ARMS = ['offer-discount', 'offer-gift', 'offer-content/short', 'offer-content/long'] as const;
type Arm = (typeof ARMS)[number];

/** The population's true click rate per persona and arm (unknown to Kairos). */
const CLICK_RATE: Readonly<Record<Persona, Readonly<Record<Arm, number>>>> = {
  student: { 'offer-discount': 0.3, 'offer-gift': 0.05, 'offer-content/short': 0.12, 'offer-content/long': 0.04 },
  family: { 'offer-discount': 0.08, 'offer-gift': 0.25, 'offer-content/short': 0.06, 'offer-content/long': 0.1 },
  premium: { 'offer-discount': 0.04, 'offer-gift': 0.08, 'offer-content/short': 0.1, 'offer-content/long': 0.22 },
};

const ACTION_CAP: Readonly<Record<string, number>> = { 'offer-gift': GIFT_CAP };

/** The bench's catalog: three actions (one with two variants), personas from a trait, web consent required. */
function benchCatalog(): unknown {
  const action = (id: string, extra: Record<string, unknown> = {}) => ({ id, name: id, content: { web: { title: `${id} title` } }, ...extra });
  return {
    name: 'learning simulation',
    personas: PERSONAS.map((id) => ({ id, name: id, rule: `has(profile.traits.plan) && profile.traits.plan == "${id}"` })),
    actions: [
      action('offer-discount'),
      action('offer-gift', { caps: [`${GIFT_CAP}/day`] }),
      action('offer-content', {
        variants: [
          { id: 'short', content: { web: { title: 'short' } } },
          { id: 'long', content: { web: { title: 'long' } } },
        ],
      }),
    ],
    policies: { consentRequired: ['web'], channelCaps: [{ id: 'web-daily', channel: 'web', max: CHANNEL_CAP, per: 'day' }] },
    arbitration: { placements: [{ channel: 'web', placement: PLACEMENT, limit: 1, learning: true }] },
    learning: { enabled: true, exploration: 0.2, floor: 0.02, contextBy: 'persona', reward: 'click', prior: { alpha: 1, beta: 1 } },
  };
}

interface Customer {
  readonly userId: string;
  readonly persona: Persona;
  readonly consent: boolean;
  /** Chance of a visit per round. */
  readonly visit: number;
  /** Counted impressions: per action, and on the channel. */
  readonly seen: Map<string, number>;
  web: number;
}

interface ServedAction {
  readonly actionId: string;
  readonly variant?: string;
  readonly reasons?: readonly string[];
}

interface DecideAnswer {
  readonly decisionId: string;
  readonly actions: readonly ServedAction[];
  readonly explanation?: { readonly explored: boolean };
}

export interface LearningSimulationOptions {
  readonly customers?: number;
  readonly rounds?: number;
  readonly seed?: number;
  /** Requests in flight at once. @default 6 */
  readonly concurrency?: number;
}

export interface LearningSimulationResult {
  readonly decisions: number;
  readonly served: number;
  readonly reward: { readonly served: number; readonly oracle: number; readonly static: number; readonly clicksDrawn: number };
  readonly violations: number;
  readonly exploredViolations: number;
  readonly checkedExplained: number;
  readonly explored: number;
  readonly seconds: number;
}

const armOf = (action: ServedAction): string => (action.variant !== undefined ? `${action.actionId}/${action.variant}` : action.actionId);
const actionOfArm = (arm: string): string => arm.split('/')[0] as string;

/** Runs `work` over `items`, `limit` at a time. */
async function pool<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await work(items[next++] as T);
    }),
  );
}

export async function benchLearning(stack: LocalStack, options: LearningSimulationOptions = {}): Promise<LearningSimulationResult> {
  const started = performance.now();
  const customersWanted = options.customers ?? 240;
  const rounds = options.rounds ?? 10;
  const concurrency = options.concurrency ?? 6;
  const random = seededRandom(options.seed ?? 1);
  const server = `Basic ${Buffer.from(`${stack.serverKey}:`).toString('base64')}`;
  const admin = { authorization: `Bearer ${stack.adminToken}` };
  const run = randomUUID().slice(0, 8);

  let accepted = 0;
  const send = async (batch: readonly Record<string, unknown>[]): Promise<void> => {
    for (let i = 0; i < batch.length; i += 100) {
      const part = batch.slice(i, i + 100);
      const response = await fetch(`${stack.url}/v1/batch`, {
        method: 'POST',
        headers: { authorization: server, 'content-type': 'application/json' },
        body: JSON.stringify({ batch: part }),
      });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`POST /v1/batch answered ${response.status}: ${text.slice(0, 300)}`);
      accepted += (JSON.parse(text) as { accepted: number }).accepted;
    }
  };
  /** Until the profile function has been handed every accepted event. */
  const drained = async (): Promise<void> => {
    const deadline = performance.now() + 60_000;
    while (stack.streamStats().recordsDelivered < accepted) {
      if (performance.now() > deadline) throw new Error(`the stream delivered ${stack.streamStats().recordsDelivered} of ${accepted} events within 60 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  // The population: personas, consent, visit rates.
  const customers: Customer[] = Array.from({ length: customersWanted }, (_, i) => {
    const draw = random();
    return {
      userId: `sim-${run}-${i}`,
      persona: PERSONAS[i % PERSONAS.length] as Persona,
      consent: draw >= 0.1,
      visit: draw >= 0.85 ? 1 : 0.5,
      seen: new Map(),
      web: 0,
    };
  });
  const now = () => new Date().toISOString();
  await send(
    customers.flatMap((c) => [
      { type: 'identify', messageId: randomUUID(), userId: c.userId, traits: { plan: c.persona }, timestamp: now() },
      ...(c.consent ? [{ type: 'track', messageId: randomUUID(), userId: c.userId, event: 'Consent Updated', properties: { channel: 'web', granted: true }, timestamp: now() }] : []),
    ]),
  );
  await drained();

  // The static policy's arm: best on the whole population.
  const populationRate = (arm: Arm) => customers.reduce((sum, c) => sum + CLICK_RATE[c.persona][arm], 0) / customers.length;
  const staticOrder = [...ARMS].sort((a, b) => populationRate(b) - populationRate(a));

  let decisions = 0;
  let served = 0;
  let violations = 0;
  let checkedExplained = 0;
  let explored = 0;
  let exploredViolations = 0;
  /** Decisions where the ledger allowed no arm (no consent, or at the channel cap), and of those, the ones answered with nothing. */
  const protectedDecisions = { all: 0, answeredEmpty: 0 };
  const reward = { served: 0, oracle: 0, static: 0, clicksDrawn: 0 };
  const violationsSeen: string[] = [];
  const shareRows: string[] = [];

  for (let round = 1; round <= rounds; round++) {
    const visitors = customers.filter((c) => random() < c.visit);
    const outcomes: Record<string, unknown>[] = [];
    const armCounts = new Map<string, number>();
    let roundServed = 0;
    // Draws for clicks made up front, in customer order, so they follow the seed whatever the request order.
    const clickDraw = new Map(visitors.map((c) => [c.userId, random()]));
    let index = 0;
    await pool(visitors, concurrency, async (customer) => {
      const explain = index++ % 2 === 0;
      const response = await fetch(`${stack.url}/v1/decide`, {
        method: 'POST',
        headers: { authorization: server, 'content-type': 'application/json' },
        body: JSON.stringify({ userId: customer.userId, channel: CHANNEL, placement: PLACEMENT, explain }),
      });
      const text = await response.text();
      if (response.status !== 200) throw new Error(`POST /v1/decide answered ${response.status}: ${text.slice(0, 300)}`);
      const answer = JSON.parse(text) as DecideAnswer;
      decisions++;
      if (explain) {
        checkedExplained++;
        if (answer.explanation?.explored) explored++;
      }
      // Allowed arms by the bench's ledger (consent, channel cap, action caps).
      const allowed = (arm: string) =>
        customer.consent && customer.web < CHANNEL_CAP && (customer.seen.get(actionOfArm(arm)) ?? 0) < (ACTION_CAP[actionOfArm(arm)] ?? Infinity);
      if (!ARMS.some(allowed)) {
        protectedDecisions.all++;
        if (answer.actions.length === 0) protectedDecisions.answeredEmpty++;
      }
      for (const action of answer.actions) {
        if (!allowed(armOf(action))) {
          violations++;
          if (answer.explanation?.explored) exploredViolations++;
          if (violationsSeen.length < 5) violationsSeen.push(`${customer.userId} (${customer.consent ? 'consent' : 'no consent'}, web ${customer.web}) got ${armOf(action)}`);
        }
      }
      const shown = answer.actions[0];
      if (!shown) return;
      served++;
      roundServed++;
      const arm = armOf(shown);
      armCounts.set(arm, (armCounts.get(arm) ?? 0) + 1);
      const rates = CLICK_RATE[customer.persona];
      const rate = (rates as Record<string, number>)[arm] ?? 0;
      const allowedArms = ARMS.filter(allowed);
      reward.served += rate;
      reward.oracle += allowedArms.length > 0 ? Math.max(...allowedArms.map((a) => rates[a])) : 0;
      const staticArm = staticOrder.find(allowed);
      reward.static += staticArm !== undefined ? rates[staticArm] : 0;
      const clicked = (clickDraw.get(customer.userId) ?? 1) < rate;
      if (clicked) reward.clicksDrawn++;
      customer.seen.set(shown.actionId, (customer.seen.get(shown.actionId) ?? 0) + 1);
      customer.web++;
      const properties = { decision_id: answer.decisionId, action_id: shown.actionId, ...(shown.variant !== undefined ? { variant: shown.variant } : {}) };
      outcomes.push({ type: 'track', messageId: randomUUID(), userId: customer.userId, event: 'Promotion Viewed', properties, timestamp: now() });
      if (clicked) outcomes.push({ type: 'track', messageId: randomUUID(), userId: customer.userId, event: 'Promotion Clicked', properties, timestamp: now() });
    });
    await send(outcomes);
    await drained();
    const share = (arm: string) => (roundServed ? `${((100 * (armCounts.get(arm) ?? 0)) / roundServed).toFixed(0).padStart(3)}%` : '   -');
    const others = [...armCounts.keys()].filter((arm) => !(ARMS as readonly string[]).includes(arm));
    shareRows.push(
      `  ${String(round).padStart(5)}  ${String(visitors.length).padStart(8)}  ${String(roundServed).padStart(6)}  ${ARMS.map((arm) => share(arm).padStart(arm.length)).join('  ')}` +
        (others.length ? `  other: ${others.map((arm) => `${arm} ${share(arm)}`).join(', ')}` : ''),
    );
  }

  // What the actions report says about the run (the profile function's statistics).
  const reportResponse = await fetch(`${stack.url}/v1/admin/reports/actions?channel=${CHANNEL}&placement=${PLACEMENT}`, { headers: admin });
  const report = (await reportResponse.json()) as { rows?: { actionId?: string; variant?: string; context: string; impressions: number; clicks: number }[] };

  const reportImpressions = report.rows?.reduce((sum, r) => sum + r.impressions, 0) ?? 0;
  const seconds = (performance.now() - started) / 1000;
  const perDecision = (value: number) => (served ? (value / served).toFixed(4) : '-');
  const lines = [
    '',
    `learning simulation — ${customers.length} customers (3 personas, 10% without web consent, 15% heavy visitors), ${rounds} rounds, local stack (load average ${(loadavg()[0] ?? 0).toFixed(1)}), ${seconds.toFixed(0)} s`,
    `  decisions ${decisions}, served an action ${served}`,
    '  reward per served decision (expected clicks from the known rates; same decisions, same caps):',
    `    served policy  ${perDecision(reward.served)}   (clicks drawn ${reward.clicksDrawn}, ${perDecision(reward.clicksDrawn)} per decision)`,
    `    oracle         ${perDecision(reward.oracle)}   (best arm for the persona among those allowed)`,
    `    static         ${perDecision(reward.static)}   (one arm for everyone: ${staticOrder[0]}, else the next allowed)`,
    `    served / oracle ${served ? (reward.served / reward.oracle).toFixed(3) : '-'}; served / static ${served ? (reward.served / reward.static).toFixed(3) : '-'}`,
    '  traffic share per arm, by round:',
    `  round  visitors  served  ${ARMS.join('  ')}`,
    ...shareRows,
    `  decisions that broke consent or a cap: ${violations} (must be 0)${violationsSeen.length ? `: ${violationsSeen.join('; ')}` : ''}`,
    `    checked with explain: ${checkedExplained}, of which explored ${explored} (${exploredViolations} broke a rule); the other ${decisions - checkedExplained} checked on decide's plain path`,
    `    decisions for a customer without consent or at the channel cap: ${protectedDecisions.all}, answered with no action: ${protectedDecisions.answeredEmpty}`,
    `  actions report (GET /v1/admin/reports/actions, ${CHANNEL}/${PLACEMENT}): ${report.rows?.length ?? 0} rows, ` +
      `${reportImpressions} impressions, ${report.rows?.reduce((sum, r) => sum + r.clicks, 0) ?? 0} clicks ` +
      `(the bench sent ${served} counted views)`,
    ...(reportImpressions === 0 && served > 0
      ? ['    no outcome statistics were written: decide had nothing to learn from, so the served policy is the catalog ranking plus exploration']
      : []),
  ];
  console.log(lines.join('\n'));
  return { decisions, served, reward, violations, exploredViolations, checkedExplained, explored, seconds };
}

/** `npm run bench:learning [-- --customers N --rounds N --seed N]`: an in-memory local stack with the bench's catalog. */
async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const number = (name: string): number | undefined => {
    const at = args.indexOf(`--${name}`);
    if (at === -1) return undefined;
    const value = Number(args[at + 1]);
    if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} takes a positive integer`);
    return value;
  };
  delete process.env.DYNAMODB_ENDPOINT;
  const folder = mkdtempSync(join(tmpdir(), 'kairos-learning-'));
  const catalogFile = join(folder, 'catalog.json');
  writeFileSync(catalogFile, JSON.stringify(benchCatalog()));
  const stack = await startLocalStack({ env: {}, inMemory: true, port: 0, logLevel: 'ERROR', log: () => undefined, catalogFile });
  try {
    if (stack.catalog.status !== 'loaded') throw new Error(`the bench catalog was not loaded: ${stack.catalog.message}`);
    const result = await benchLearning(stack, {
      ...(number('customers') !== undefined ? { customers: number('customers') } : {}),
      ...(number('rounds') !== undefined ? { rounds: number('rounds') } : {}),
      ...(number('seed') !== undefined ? { seed: number('seed') } : {}),
    });
    process.exitCode = result.violations === 0 ? 0 : 1;
  } finally {
    await stack.stop();
    rmSync(folder, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) await main();
