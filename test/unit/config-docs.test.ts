/**
 * Every configuration variable the code reads is documented: those
 * shared/config.ts reads (the handlers', deployed and local) and those the
 * local stack reads (local/), each named in the README (its configuration
 * section) or in docs/integration.md. The variables are read off the code,
 * so a new one fails here until it is documented. And the one the docs
 * missed, KAIROS_TABLE_PREFIX, is checked at start like the others.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONTEXT_KEYS } from '#infra/kairos-app.ts';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

/** Names read by shared/config.ts: the Config interface's fields are the variables' names, and the readers name them. */
function configVariables(): string[] {
  const source = read('shared/config.ts');
  const fields = [...source.matchAll(/^\s+readonly ([A-Z][A-Z0-9_]*)\??:/gm)].map((m) => m[1] as string);
  const readers = [...source.matchAll(/\b(?:text|optionalText|optionalUrl)\('([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1] as string);
  return [...new Set([...fields, ...readers])];
}

/** Names read from the environment in local/: `env.NAME` or `process.env.NAME` that is not only assigned or deleted (`??=` reads). */
function localVariables(): string[] {
  const names = new Set<string>();
  for (const file of readdirSync(new URL('../../local/', import.meta.url)).filter((f) => f.endsWith('.ts'))) {
    const source = read(`local/${file}`);
    for (const m of source.matchAll(/(?<!delete )\b(?:process\.)?env\.([A-Z][A-Z0-9_]*)\b(?!\s*=[^=])/g)) names.add(m[1] as string);
  }
  return [...names];
}

const docs = `${read('README.md')}\n${read('docs/integration.md')}`;

describe('configuration variables', () => {
  it('finds what the code reads (the readers above still match the code)', () => {
    expect(configVariables()).toEqual(expect.arrayContaining(['EVENTS_TABLE', 'DYNAMODB_ENDPOINT', 'KAIROS_DECIDE_DEADLINE_MS', 'KAIROS_VERSION']));
    expect(localVariables()).toEqual(expect.arrayContaining(['PORT', 'KAIROS_DATA_DIR', 'KAIROS_TABLE_PREFIX', 'KAIROS_ACCESS_LOG', 'KAIROS_DYNAMODB_HEAP']));
    // Assigned for the handlers, not read: not configuration.
    expect(localVariables()).not.toContain('AWS_ACCESS_KEY_ID');
  });

  it.each([...new Set([...configVariables(), ...localVariables()])].sort())('%s is documented in the README or docs/integration.md', (name) => {
    expect(docs.includes(`\`${name}\``) ? name : `${name} is documented nowhere`).toBe(name);
  });
});

describe('deployment settings', () => {
  it.each(Object.values(CONTEXT_KEYS))('the CDK context %s is documented in the README', (key) => {
    expect(read('README.md').includes(`-c ${key}=`) ? key : `${key} is not in the README's deployment settings`).toBe(key);
  });
});

describe('KAIROS_TABLE_PREFIX', () => {
  it('prefixes the local table names; one DynamoDB cannot name a table with is refused at start, naming the variable', async () => {
    const { resolveLocalStackConfig } = await import('#local/stack.ts');
    expect(resolveLocalStackConfig({ env: {} }).tablePrefix).toBe('');
    expect(resolveLocalStackConfig({ env: { KAIROS_TABLE_PREFIX: 'demo-2.' } }).tablePrefix).toBe('demo-2.');
    for (const prefix of ['my tables ', 'ü-', 'a/b', 'x'.repeat(201)]) {
      expect(() => resolveLocalStackConfig({ env: { KAIROS_TABLE_PREFIX: prefix } })).toThrow(/^KAIROS_TABLE_PREFIX must be at most 200 characters/);
    }
  });
});
