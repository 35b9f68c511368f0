import { defineConfig } from 'vitest/config';

/**
 * Test tiers by file name (STYLE.md):
 * - unit:  *.test.ts          pure domain, no I/O
 * - ddb:   *.ddb.test.ts      real DynamoDB Local
 * - infra: *.infra.test.ts    CDK assertions and cdk-nag
 * - e2e:   *.e2e.test.ts      HTTP on the local stack
 */
export default defineConfig({
  test: {
    // Two cores on CI: two test files at a time across the tiers.
    maxWorkers: 2,
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.ddb.test.ts', 'test/**/*.infra.test.ts', 'test/**/*.e2e.test.ts'],
          // Property tests run thousands of cases: on a loaded CI machine that is slow, not wrong.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'ddb',
          include: ['test/**/*.ddb.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'infra',
          include: ['test/**/*.infra.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/**/*.e2e.test.ts'],
          // Each file starts its own local stack (a DynamoDB Local JVM and the handlers) in its own
          // process: isolated modules, so the handlers read the environment that stack set.
          pool: 'forks',
          isolate: true,
          // Midday UTC (test/support/clock.ts): the demo catalog's quiet hours hold at night.
          setupFiles: ['test/support/midday-clock.ts'],
          maxWorkers: 2,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
