/**
 * How every Lambda bundle is built: the settings the CDK construct
 * (infra/constructs/kairos-function.ts) and the bench (bench/decide.ts,
 * which builds the bundles as the CDK does) share. No CDK import here.
 */
import { fileURLToPath } from 'node:url';

/**
 * esbuild banner for ESM bundles: a few CommonJS dependencies still call
 * `require()` for Node built-ins, which does not exist in an ES module.
 */
export const ESM_REQUIRE_BANNER = "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/**
 * Packages replaced in the bundles (esbuild `alias`), with absolute paths:
 * the SDK's default credential chain becomes the environment provider
 * Lambda needs (see shared/lambda/env-credentials.ts).
 */
export const BUNDLE_ALIASES: Readonly<Record<string, string>> = {
  '@aws-sdk/credential-provider-node': fileURLToPath(new URL('../shared/lambda/env-credentials.ts', import.meta.url)),
};
