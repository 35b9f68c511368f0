/**
 * How every Lambda bundle is built: the settings the CDK construct
 * (infra/constructs/kairos-function.ts) and the bench (bench/decide.ts,
 * which builds the bundles as the CDK does) share. No CDK import here.
 */

/**
 * esbuild banner for ESM bundles: a few CommonJS dependencies still call
 * `require()` for Node built-ins, which does not exist in an ES module.
 */
export const ESM_REQUIRE_BANNER = "import { createRequire } from 'module'; const require = createRequire(import.meta.url);";

/**
 * Packages replaced in the bundles (esbuild `alias`, name → absolute path).
 * None: the functions carry no AWS SDK (their one DynamoDB client is
 * aws-lite, shared/store/client.ts, which reads Lambda's credentials from
 * the environment itself), so there is no default credential chain to cut.
 */
export const BUNDLE_ALIASES: Readonly<Record<string, string>> = {};
