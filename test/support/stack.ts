/**
 * A local stack for one e2e file: the real `startLocalStack` (the code
 * `npm start` runs), in this worker process, in memory, on a free port, with
 * fixed keys, and blind to the developer's own environment (PORT,
 * KAIROS_CATALOG...). In-process keeps parity (same handler modules, same
 * local API Gateway, same stream poller) and lets a test read the failure
 * queue; the README walk-through test covers the `npm start` process itself.
 *
 * Each e2e file gets its own stack (vitest isolates files, so the handler
 * modules and their configuration are loaded afresh after the stack has set
 * the environment).
 */
import { afterAll, beforeAll } from 'vitest';
import { assertLocalEndpoint } from '#local/dynamodb.ts';
import { startLocalStack as startStack, type LocalStack, type LocalStackOptions } from '#local/stack.ts';

export const TEST_WRITE_KEY = 'wk_e2e_test_write_key';
export const TEST_SERVER_KEY = 'sk_e2e_test_server_key';
export const TEST_USER_TOKEN_SECRET = 'uts_e2e_test_user_token_secret_0123456789';
export const TEST_ADMIN_TOKEN = 'kat_e2e_test_admin_token_0123456789';
/** The secret the test stacks seal decision ids with (so a test can issue the id of a decision made in the past). */
export const TEST_DECISION_KEY = 'kdk_e2e_test_decision_key_0123456789abcdef';

/**
 * Decide's deadline (KAIROS_DECIDE_DEADLINE_MS) in the e2e stacks unless a
 * file asks for another: generous, so that a loaded CI machine's slow round
 * trip is not taken for a store outage and answered degraded (within the
 * function's own 5 s timeout, which bounds it). The deadline itself is
 * measured where it is the subject: store-outage.e2e (the deployed 1 s),
 * the ddb store-outage test, and the bench.
 */
export const TEST_DECIDE_DEADLINE_MS = 10_000;

/** A test stack's options: the local stack's, and decide's deadline (ms, default TEST_DECIDE_DEADLINE_MS). */
export type TestStackOptions = LocalStackOptions & { readonly decideDeadlineMs?: number };

export interface TestStack extends LocalStack {
  /** Same as `url` (no trailing slash). */
  readonly baseUrl: string;
}


export async function startLocalStack(testOptions: TestStackOptions = {}): Promise<TestStack> {
  const { decideDeadlineMs = TEST_DECIDE_DEADLINE_MS, ...options } = testOptions;
  // Read by the handler modules when the stack first imports them (this file's process only: e2e files are isolated).
  process.env.KAIROS_DECIDE_DEADLINE_MS = String(decideDeadlineMs);
  const stack = await startStack({
    env: {},
    inMemory: true,
    port: 0,
    writeKey: TEST_WRITE_KEY,
    serverKey: TEST_SERVER_KEY,
    userTokenSecret: TEST_USER_TOKEN_SECRET,
    adminToken: TEST_ADMIN_TOKEN,
    decisionKey: TEST_DECISION_KEY,
    logLevel: process.env.KAIROS_TEST_LOG === '1' ? 'INFO' : 'SILENT',
    // Function errors and dead-lettered batches are part of what some tests provoke; keep them off the console
    // unless asked (KAIROS_TEST_LOG=1).
    ...(process.env.KAIROS_TEST_LOG === '1' ? {} : { log: () => undefined }),
    ...options,
  });
  try {
    assertLocalEndpoint(stack.dynamoEndpoint, 'The e2e tests');
  } catch (error) {
    await stack.stop();
    throw error;
  }
  return { ...stack, baseUrl: stack.url };
}

/** What the HTTP fixtures need of a stack (test/e2e/fixtures/kairos.ts `StackAccess`). */
export interface StackCredentials {
  readonly baseUrl: string;
  /** The public write key. */
  readonly writeKey: string;
  readonly serverKey: string;
  /** The secret the public key's user tokens are signed with. */
  readonly userTokenSecret: string;
  readonly adminToken: string;
}

/**
 * The test file's stack: started before its tests (`onStart` gets it and
 * its credentials), stopped after them.
 */
export function useLocalStack(onStart: (stack: TestStack, access: StackCredentials) => void, options: TestStackOptions = {}): void {
  let started: TestStack | undefined;
  beforeAll(async () => {
    started = await startLocalStack(options);
    onStart(started, {
      baseUrl: started.baseUrl,
      writeKey: started.writeKey,
      serverKey: started.serverKey,
      userTokenSecret: started.userTokenSecret,
      adminToken: started.adminToken,
    });
  });
  afterAll(async () => {
    await started?.stop();
  });
}
