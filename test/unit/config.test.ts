/**
 * The configuration fails fast at module load, naming the variable and what
 * is wrong with it; with nothing set, the defaults apply.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Load shared/config.ts in a fresh process with exactly `env` (plus PATH). */
function load(env: Record<string, string>): { ok: true; config: Record<string, unknown> } | { ok: false; error: string } {
  const probe = "const { config } = await import('./shared/config.ts'); process.stdout.write(JSON.stringify(config));";
  try {
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', probe], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...env },
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { ok: true, config: JSON.parse(out) as Record<string, unknown> };
  } catch (error) {
    return { ok: false, error: String((error as { stderr?: string }).stderr) };
  }
}

describe('configuration', () => {
  it('applies the defaults when nothing is set', () => {
    expect(load({})).toEqual({
      ok: true,
      config: {
        EVENTS_TABLE: 'kairos-events',
        PROFILES_TABLE: 'kairos-profiles',
        CONTROL_TABLE: 'kairos-control',
        OUTBOX_TABLE: 'kairos-outbox',
        KAIROS_HISTORY_DAYS: 90,
        KAIROS_CORS_ORIGINS: '*',
        KAIROS_CORS_ALLOW_HEADERS: '',
        KAIROS_INTEREST_HALF_LIFE_DAYS: 14,
        KAIROS_VERSION: 'unknown',
        AWS_REGION: 'us-east-1',
        KAIROS_DECIDE_DEADLINE_MS: 1000,
        KAIROS_STALE_MAX_SECONDS: 3600,
        KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS: 86400,
        KAIROS_EVALUATION_SHARDS: 32,
      },
    });
  });

  it('reads the evaluation\'s shard count at the edges of its range (1 and 1000)', () => {
    expect(load({ KAIROS_EVALUATION_SHARDS: '1' })).toMatchObject({ ok: true, config: { KAIROS_EVALUATION_SHARDS: 1 } });
    expect(load({ KAIROS_EVALUATION_SHARDS: '1000' })).toMatchObject({ ok: true, config: { KAIROS_EVALUATION_SHARDS: 1000 } });
  });

  it('reads what is set', () => {
    const loaded = load({ PROFILES_TABLE: 'p', DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000', KAIROS_HISTORY_DAYS: '45', KAIROS_ADMIN_TOKEN: 'x'.repeat(16) });
    expect(loaded).toMatchObject({
      ok: true,
      config: { PROFILES_TABLE: 'p', DYNAMODB_ENDPOINT: 'http://127.0.0.1:8000', KAIROS_HISTORY_DAYS: 45, KAIROS_ADMIN_TOKEN: 'x'.repeat(16) },
    });
  });

  it.each([
    [{ EVENTS_TABLE: '' }, 'EVENTS_TABLE must not be empty'],
    [{ DYNAMODB_ENDPOINT: 'localhost:8000' }, 'DYNAMODB_ENDPOINT must be'],
    [{ DYNAMODB_ENDPOINT: 'ftp://x' }, 'DYNAMODB_ENDPOINT must be an http or https URL'],
    [{ KAIROS_HISTORY_DAYS: 'ninety' }, 'KAIROS_HISTORY_DAYS must be a number'],
    [{ KAIROS_HISTORY_DAYS: '7' }, 'KAIROS_HISTORY_DAYS must be a number from 30 to 3650'],
    [{ KAIROS_ADMIN_TOKEN: 'short' }, 'KAIROS_ADMIN_TOKEN must be at least 16 characters'],
    [{ KAIROS_DECIDE_DEADLINE_MS: '30000' }, 'KAIROS_DECIDE_DEADLINE_MS must be a number from 50 to 25000'],
    [{ KAIROS_STALE_MAX_SECONDS: '-1' }, 'KAIROS_STALE_MAX_SECONDS must be a number from 0 to 604800'],
    [{ KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS: '30' }, 'KAIROS_USER_TOKEN_MAX_LIFETIME_SECONDS must be a number from 60 to 604800'],
    [{ KAIROS_EVALUATION_SHARDS: '0' }, 'KAIROS_EVALUATION_SHARDS must be a whole number from 1 to 1000'],
    [{ KAIROS_EVALUATION_SHARDS: '1001' }, 'KAIROS_EVALUATION_SHARDS must be a whole number from 1 to 1000'],
    [{ KAIROS_EVALUATION_SHARDS: '2.5' }, 'KAIROS_EVALUATION_SHARDS must be a whole number from 1 to 1000'],
    [{ KAIROS_EVALUATION_SHARDS: 'many' }, 'KAIROS_EVALUATION_SHARDS must be a number'],
  ])('refuses %j: %s', (env, message) => {
    const loaded = load(env);
    expect(loaded.ok).toBe(false);
    expect(loaded.ok ? '' : loaded.error).toContain(`Invalid configuration: ${message}`);
  });
});
