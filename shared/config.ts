/**
 * Configuration, parsed once at module load with zod: a missing or malformed
 * variable fails fast with its name.
 */
import * as z from 'zod';

const schema = z.object({
  EVENTS_TABLE: z.string().min(1).default('kairos-events'),
  PROFILES_TABLE: z.string().min(1).default('kairos-profiles'),
  CONTROL_TABLE: z.string().min(1).default('kairos-control'),
  /** Set only on the local stack: DynamoDB Local's URL. */
  DYNAMODB_ENDPOINT: z.url().optional(),
  /** Set only on the local stack: the operator's bearer token. Deployed, admin routes use IAM. */
  KAIROS_ADMIN_TOKEN: z.string().min(16).optional(),
  /** Days an event is kept; at least the 30-day deduplication window. */
  KAIROS_HISTORY_DAYS: z.coerce.number().int().min(30).max(3650).default(90),
  /** Comma-separated origins allowed on source routes; `*` by default. */
  KAIROS_CORS_ORIGINS: z.string().default('*'),
  /** Half-life of category interest, in days. */
  KAIROS_INTEREST_HALF_LIFE_DAYS: z.coerce.number().positive().default(14),
  KAIROS_VERSION: z.string().default('0.1.0'),
  AWS_REGION: z.string().default('us-east-1'),
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
