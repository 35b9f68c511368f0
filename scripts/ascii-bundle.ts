/**
 * Make a built bundle pure ASCII and move its source map to match
 * (infra/bundling.ts `asciiBundle`). The CDK's `afterBundling` hook runs it
 * on every function's `index.mjs` (infra/constructs/kairos-function.ts):
 *
 *   node --import tsx scripts/ascii-bundle.ts <bundle.mjs>
 */
import { asciiBundle } from '#infra/bundling.ts';

const [bundleFile] = process.argv.slice(2);
if (!bundleFile) {
  console.error('usage: node --import tsx scripts/ascii-bundle.ts <bundle.mjs>');
  process.exit(2);
}
asciiBundle(bundleFile);
