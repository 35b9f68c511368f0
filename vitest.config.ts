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
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.ddb.test.ts', 'test/**/*.infra.test.ts', 'test/**/*.e2e.test.ts'],
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
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
