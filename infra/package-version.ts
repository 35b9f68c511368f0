/**
 * The product's version: package.json's `version`, what `GET /v1/health`
 * answers (KAIROS_VERSION). The CDK stack sets it on every function and
 * the local stack on its handlers, both from here.
 * @throws Error when package.json has no version.
 */
import { readFileSync } from 'node:fs';

export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string' || pkg.version === '') throw new Error('package.json has no version');
  return pkg.version;
}
