/**
 * Configuration, parsed once at module load with zod (its tree-shakable
 * "mini" build, so every function's bundle stays small): a missing or
 * malformed variable fails fast with its name.
 */
import * as z from 'zod/mini';
import { en } from 'zod/locales';

// Mini ships no messages: English ones name what is wrong with a variable.
z.config(en());

const number = (min: number, max: number, fallback: number) =>
  z._default(z.pipe(z.coerce.number(), z.number().check(z.minimum(min), z.maximum(max))), fallback);

const schema = z.object({
  EVENTS_TABLE: z._default(z.string().check(z.minLength(1)), 'kairos-events'),
  PROFILES_TABLE: z._default(z.string().check(z.minLength(1)), 'kairos-profiles'),
  CONTROL_TABLE: z._default(z.string().check(z.minLength(1)), 'kairos-control'),
  /** Set only on the local stack: DynamoDB Local's URL. */
  DYNAMODB_ENDPOINT: z.optional(z.url()),
  /** Set only on the local stack: the operator's bearer token. Deployed, admin routes use IAM. */
  KAIROS_ADMIN_TOKEN: z.optional(z.string().check(z.minLength(16))),
  /** Days an event is kept; at least the 30-day deduplication window. */
  KAIROS_HISTORY_DAYS: number(30, 3650, 90),
  /** Comma-separated origins allowed on source routes; `*` by default. */
  KAIROS_CORS_ORIGINS: z._default(z.string(), '*'),
  /** Half-life of category interest, in days. */
  KAIROS_INTEREST_HALF_LIFE_DAYS: number(0.001, 3650, 14),
  KAIROS_VERSION: z._default(z.string(), '0.1.0'),
  AWS_REGION: z._default(z.string(), 'us-east-1'),
});

export type Config = z.infer<typeof schema>;

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`Invalid configuration: ${problems}`);
  }
  return parsed.data;
}

export const config: Config = loadConfig();
