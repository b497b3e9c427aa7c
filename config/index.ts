import { z } from 'zod';

/** `'true' | 'false'` from the environment; never `Boolean(str)`. */
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

/**
 * Every environment variable Parley reads. Documented one by one in `.env.example`
 * and in the README's configuration table; keep the three in step.
 */
export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),

  DATABASE_URL: optionalString,
  PGLITE_DATA_DIR: z.string().default('.data/pglite'),

  TEMPORAL_ADDRESS: optionalString,
  TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('parley-leads'),
  TEMPORAL_CLI_PATH: optionalString,
  TEMPORAL_TEST_SERVER_PATH: optionalString,
  TEMPORAL_DEV_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
  TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),

  PARLEY_ADMIN_TOKEN: optionalString,
  /** 32 bytes, base64 or hex: encrypts access tokens and app secrets at rest. */
  PARLEY_ENCRYPTION_KEY: optionalString,
  DEFAULT_CREDITS_PER_REPLY: z.coerce.number().int().min(0).default(1),

  META_APP_SECRET: optionalString,
  META_VERIFY_TOKEN: optionalString,
  GRAPH_API_URL: z.string().url().default('https://graph.facebook.com'),
  GRAPH_API_VERSION: z
    .string()
    .regex(/^v\d+\.\d+$/, 'must look like v21.0')
    .default('v21.0'),
  GRAPH_API_TIMEOUT_MS: z.coerce.number().int().min(100).default(15000),

  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString,
  LLM_TIMEOUT_MS: z.coerce.number().int().min(100).default(60000),

  LEAD_EVENT_BUDGET: z.coerce.number().int().min(50).default(2000),
  LEAD_DEDUP_WINDOW: z.coerce.number().int().min(10).default(500),
  LEAD_DEBOUNCE_GAP_MS: z.coerce.number().int().min(0).max(60_000).default(3000),
  LEAD_DEBOUNCE_MAX_WAIT_MS: z.coerce.number().int().min(0).max(300_000).default(15_000),
  /** Overrides the channel's minimum gap between two outbound messages to one lead (WhatsApp: 6000). */
  LEAD_PACING_MIN_GAP_MS: z.coerce.number().int().min(0).max(3_600_000).optional(),
  LEAD_AUTO_HANDOFF_COOLDOWN_MS: z.coerce.number().int().min(0).default(30 * 60 * 1000),
  LEAD_BUMP_UP_IDLE_MS: z.coerce.number().int().min(60_000).default(4 * 60 * 60 * 1000),
  LEAD_BUMP_UP_MAX: z.coerce.number().int().min(0).max(10).default(2),
  LEAD_BUMP_UP_MAX_WORDS: z.coerce.number().int().min(5).max(200).default(40),
  LEAD_EXTRACTION_IDLE_MS: z.coerce.number().int().min(0).default(10 * 60 * 1000),

  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).default(100),
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce.number().int().min(1).default(40),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),

  PARLEY_SIMULATE: bool.default(false),
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Parse the environment once per entry point; fail fast with every problem listed. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  }
  const config = parsed.data;
  if (config.NODE_ENV === 'production') {
    const missing = (['PARLEY_ADMIN_TOKEN', 'PARLEY_ENCRYPTION_KEY', 'META_APP_SECRET', 'DATABASE_URL', 'TEMPORAL_ADDRESS'] as const).filter(
      (k) => !config[k],
    );
    if (missing.length) throw new ConfigError(missing.map((k) => `${k}: required when NODE_ENV=production`));
  }
  return config;
}
