import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { MODEL_PRICES, parsePriceTable } from '../activities/llm/pricing';
import { resolveTemporalSettings, type TemporalSettings } from '../temporal/connection-config';

/** `'true' | 'false'` from the environment; never `Boolean(str)`. */
const bool = z.enum(['true', 'false']).transform((v) => v === 'true');

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

/** An http(s) URL, or unset (empty counts as unset). */
const optionalHttpUrl = optionalString.pipe(z.string().url().regex(/^https?:\/\//, 'must be an http:// or https:// URL').optional());

/**
 * Every environment variable Parley reads. Documented one by one in `.env.example`
 * and in the README's configuration table; keep the three in step.
 */
export const configSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** The API's access log: `all` (one line per request: method, route pattern, status, ms), `errors` (4xx and 5xx only) or `off`. */
  LOG_REQUESTS: z.enum(['all', 'errors', 'off']).default('all'),
  /** OTLP/HTTP base URL (`/v1/traces` is added); unset (and no OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): no span is exported (lib/tracing.ts). */
  OTEL_EXPORTER_OTLP_ENDPOINT: optionalHttpUrl,
  /** OTLP/HTTP traces URL, used as given; wins over OTEL_EXPORTER_OTLP_ENDPOINT. */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: optionalHttpUrl,
  /** service.name of the spans; default parley-api for the API, parley-worker for the worker. */
  OTEL_SERVICE_NAME: optionalString,
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),

  DATABASE_URL: optionalString,
  PGLITE_DATA_DIR: z.string().default('.data/pglite'),

  /**
   * The Temporal connection follows the SDK's environment configuration (@temporalio/envconfig,
   * temporal/connection-config.ts): these variables override the profile TEMPORAL_PROFILE of the
   * TOML file TEMPORAL_CONFIG_FILE. After loadConfig, TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE hold
   * the resolved values and `config.temporal` the connection (TLS, API key) for both processes.
   */
  TEMPORAL_ADDRESS: optionalString,
  /** Empty or unset: the profile's namespace, else `default` (resolved by loadConfig: always a string after it). */
  TEMPORAL_NAMESPACE: optionalString,
  /** Temporal Cloud API key (a secret): sent as a bearer token; implies TLS unless TEMPORAL_TLS=false. */
  TEMPORAL_API_KEY: optionalString,
  /** `true` connects with TLS (system roots unless a CA is given), `false` forces plain text. */
  TEMPORAL_TLS: optionalString,
  /** mTLS client certificate and private key (PEM files); or the PEM itself in the `_DATA` variants. */
  TEMPORAL_TLS_CLIENT_CERT_PATH: optionalString,
  TEMPORAL_TLS_CLIENT_KEY_PATH: optionalString,
  TEMPORAL_TLS_CLIENT_CERT_DATA: optionalString,
  TEMPORAL_TLS_CLIENT_KEY_DATA: optionalString,
  /** CA that signed the server's certificate (PEM file or data), when not a system root. */
  TEMPORAL_TLS_SERVER_CA_CERT_PATH: optionalString,
  TEMPORAL_TLS_SERVER_CA_CERT_DATA: optionalString,
  /** Server name (SNI) checked against the server certificate, when it differs from the address' host. */
  TEMPORAL_TLS_SERVER_NAME: optionalString,
  /** Profile of the Temporal config file to use (default: `default`). */
  TEMPORAL_PROFILE: optionalString,
  /** Temporal TOML config file (default: ~/.config/temporalio/temporal.toml when it exists). */
  TEMPORAL_CONFIG_FILE: optionalString,
  TEMPORAL_TASK_QUEUE: z.string().min(1).default('parley-leads'),
  TEMPORAL_CLI_PATH: optionalString,
  TEMPORAL_TEST_SERVER_PATH: optionalString,
  TEMPORAL_DEV_PORT: z.coerce.number().int().min(1).max(65535).default(7233),
  TEMPORAL_UI_PORT: z.coerce.number().int().min(1).max(65535).default(8233),

  PARLEY_ADMIN_TOKEN: optionalString,
  /** 32 bytes, base64 or hex: encrypts access tokens and app secrets at rest. */
  PARLEY_ENCRYPTION_KEY: optionalString,
  /** Previous encryption keys, comma-separated: still read (by key id) until `npm run secrets:rewrap` re-encrypted everything. */
  PARLEY_ENCRYPTION_KEYS_OLD: optionalString,
  /** Encrypt every Temporal payload (temporal/payload-codec.ts) with per-lead data keys wrapped by PARLEY_ENCRYPTION_KEY; `false` turns it off. */
  PARLEY_PAYLOAD_CODEC: bool.default(true),
  /** Origins of the Temporal Web UI allowed to call the codec server (`/codec/*`) from the browser, comma-separated. */
  TEMPORAL_UI_ORIGINS: z
    .string()
    .default('http://localhost:8233,http://127.0.0.1:8233')
    .transform((v) => v.split(',').map((o) => o.trim()).filter((o) => o !== '')),
  DEFAULT_CREDITS_PER_REPLY: z.coerce.number().int().min(0).default(1),

  META_APP_SECRET: optionalString,
  META_VERIFY_TOKEN: optionalString,
  GRAPH_API_URL: z.string().url().default('https://graph.facebook.com'),
  GRAPH_API_VERSION: z
    .string()
    .regex(/^v\d+\.\d+$/, 'must look like v21.0')
    .default('v21.0'),
  GRAPH_API_TIMEOUT_MS: z.coerce.number().int().min(100).default(15000),
  /** Largest inbound media file `media.fetch` downloads and stores (bytes); bigger is a non-retryable failure. */
  MEDIA_MAX_BYTES: z.coerce.number().int().min(1024).max(100 * 1024 * 1024).default(16 * 1024 * 1024),
  /**
   * Media library (POST /v1/media): the largest file kept (bytes). Below WhatsApp's own limits
   * (100 MB for documents): the bytes live in PostgreSQL and one upload is held in memory.
   */
  MEDIA_LIBRARY_MAX_BYTES: z.coerce.number().int().min(1024).max(100 * 1024 * 1024).default(16 * 1024 * 1024),
  /** Media library: uploads one API process reads at once (each may hold MEDIA_LIBRARY_MAX_BYTES in memory); one tenant at most half (at least 1). */
  MEDIA_LIBRARY_MAX_CONCURRENT_UPLOADS: z.coerce.number().int().min(1).max(1000).default(8),
  /** Media library: the slowest average upload an upload slot is held for, after its first 10 s (bytes/s; 0 = no floor, only Node's 300 s request timeout). */
  MEDIA_LIBRARY_MIN_UPLOAD_BYTES_PER_SECOND: z.coerce.number().int().min(0).max(100 * 1024 * 1024).default(16 * 1024),
  /** Media library: files one tenant may keep. */
  MEDIA_LIBRARY_MAX_ITEMS: z.coerce.number().int().min(1).max(1_000_000).default(500),
  /** Media library: bytes one tenant may keep in all. */
  MEDIA_LIBRARY_MAX_TENANT_BYTES: z.coerce.number().int().min(1024).max(Number.MAX_SAFE_INTEGER).default(1024 * 1024 * 1024),
  /** How long a media id Meta answered for an upload is used (hours); Meta keeps uploads 30 days (720 h). */
  MEDIA_META_ID_TTL_HOURS: z.coerce.number().min(0.001).max(720).default(29 * 24),
  /** The key that signs public media urls (GET /media/:token; at least 32 characters); default: derived from PARLEY_ENCRYPTION_KEY. */
  MEDIA_URL_SECRET: z.string().min(32).optional(),
  /** How long a signed public media url stays valid (seconds). */
  MEDIA_URL_TTL_SECONDS: z.coerce.number().int().min(60).max(30 * 24 * 3600).default(7 * 24 * 3600),
  /** Reads of one signed media url (GET /media/:token) per client address and minute, per API process; 0 = no limit. */
  MEDIA_URL_READS_PER_MINUTE: z.coerce.number().int().min(0).max(100_000).default(120),
  /** This deployment's public origin (https://parley.example.com): signed media urls for Instagram and web chat are built on it. */
  PUBLIC_BASE_URL: z.url({ protocol: /^https?$/, error: 'an http(s) url, e.g. https://parley.example.com' }).optional(),

  OPENAI_API_KEY: optionalString,
  OPENAI_BASE_URL: optionalString,
  LLM_TIMEOUT_MS: z.coerce.number().int().min(100).default(60000),
  /**
   * Deployment LLM prices merged over the built-in table: JSON `{"<model>": {"input": USD per 1M
   * prompt tokens, "output": USD per 1M completion tokens}}`, or a path to a file holding it. The
   * key `*` prices every model not listed (default 15 / 60 USD per 1M: never free).
   */
  LLM_PRICES: optionalString.transform((v, ctx) => {
    if (v === undefined) return MODEL_PRICES;
    try {
      return parsePriceTable(v.trim().startsWith('{') ? v : readFileSync(v.trim(), 'utf8'));
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `must be a JSON price table or a path to one: ${(err as Error).message}` });
      return z.NEVER;
    }
  }),
  /** Knowledge base: the embeddings model (OpenAI-compatible `POST /v1/embeddings` at OPENAI_BASE_URL; the offline stand-in without OPENAI_API_KEY in `npm run dev`). */
  OPENAI_EMBEDDING_MODEL: z.string().trim().min(1).default('text-embedding-3-small'),
  /** Knowledge base: embedding dimensions, sent as `dimensions`; a change of model or dimensions needs POST /v1/knowledge-bases/:kbId/reindex. */
  OPENAI_EMBEDDING_DIMENSIONS: z.coerce.number().int().min(8).max(4096).default(1536),
  /** Knowledge base: texts per embeddings request. */
  KNOWLEDGE_EMBEDDING_BATCH_SIZE: z.coerce.number().int().min(1).max(2048).default(64),
  /** Knowledge base: the largest uploaded file or fetched url document (bytes); bigger is a 413 (upload) or a failed document (url). */
  KNOWLEDGE_MAX_FILE_BYTES: z.coerce.number().int().min(1024).max(100 * 1024 * 1024).default(10 * 1024 * 1024),
  /** Knowledge base: one url document fetch's timeout (connect, redirects, body). */
  KNOWLEDGE_FETCH_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(20_000),
  /** Knowledge base: the memory (resident, MB) of the child process that parses one PDF or HTML document (~90 MB of it is Node and pdf.js); more is a failed document (knowledge_parse_limit). */
  KNOWLEDGE_PARSE_MEMORY_MB: z.coerce.number().int().min(192).max(16_384).default(256),
  /** Knowledge base: the deadline of one PDF or HTML parse (ms; below the 5-minute activity timeout); later is a failed document. */
  KNOWLEDGE_PARSE_TIMEOUT_MS: z.coerce.number().int().min(1_000).max(240_000).default(30_000),
  /** Knowledge base: a PDF with more pages is a failed document (refused before any page is read). */
  KNOWLEDGE_PDF_MAX_PAGES: z.coerce.number().int().min(1).max(100_000).default(1_000),
  /** Knowledge base: PDF/HTML parses running at once in one worker (each a child process of up to KNOWLEDGE_PARSE_MEMORY_MB). */
  KNOWLEDGE_PARSE_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  /** Knowledge base without pgvector: chunks ranked by cosine in SQL per query, at most this many (the knowledge bases' chunks beyond it are not compared). */
  KNOWLEDGE_VECTOR_SCAN_LIMIT: z.coerce.number().int().min(100).max(1_000_000).default(20_000),
  /** Knowledge search: the vector list's weight in the fused score, full text weighing 1 (services/knowledge.ts DEFAULT_VECTOR_WEIGHT). */
  KNOWLEDGE_VECTOR_WEIGHT: z.coerce.number().min(0).max(10).default(0.3),
  /** `max_tokens` of every AI reply (bounds the cost and the length of one call). */
  LLM_MAX_TOKENS: z.coerce.number().int().min(16).max(32_768).default(1024),

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
  /** How many times a send is tried (transient errors, rate limits) before it is parked as a dead letter. */
  LEAD_DELIVERY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(10),
  /** Background deadlines (sequence steps, bump-ups, extraction) wake each lead at an offset of its own in [0, this) after they fall due; 0 = exactly on time. */
  LEAD_BACKGROUND_SPREAD_MS: z.coerce.number().int().min(0).max(3_600_000).default(60_000),

  /** Web chat: how often an open SSE stream reads new messages from the database. */
  WEBCHAT_POLL_MS: z.coerce.number().int().min(50).max(10_000).default(500),
  /** Web chat: SSE heartbeat comment interval (keeps proxies from closing an idle stream). */
  WEBCHAT_HEARTBEAT_MS: z.coerce.number().int().min(1000).max(120_000).default(15_000),
  /** Web chat: messages one visitor may post per minute (per API process; 0 = no limit). */
  WEBCHAT_MAX_MESSAGES_PER_MINUTE: z.coerce.number().int().min(0).max(10_000).default(20),
  /** Web chat: open streams per API process (all channels); over it a new stream is a 429. */
  WEBCHAT_MAX_STREAMS: z.coerce.number().int().min(1).max(100_000).default(2000),
  /** Web chat: open streams per client address per API process. */
  WEBCHAT_MAX_STREAMS_PER_ADDRESS: z.coerce.number().int().min(1).max(100_000).default(20),
  /** Web chat: history reads and stream opens per client address per minute, per API process (0 = no limit). */
  WEBCHAT_MAX_READS_PER_MINUTE_PER_ADDRESS: z.coerce.number().int().min(0).max(1_000_000).default(120),
  /** Web chat: new visitors (conversations) per widget per hour, shared by all API processes (0 = no limit). */
  WEBCHAT_NEW_CONVERSATIONS_PER_HOUR: z.coerce.number().int().min(0).max(1_000_000).default(600),
  /** Web chat: new visitors (conversations) per client address per widget per hour (0 = no limit). */
  WEBCHAT_NEW_CONVERSATIONS_PER_HOUR_PER_ADDRESS: z.coerce.number().int().min(0).max(1_000_000).default(10),
  /** Web chat: the key that signs visitor tokens (at least 32 characters); default: derived from PARLEY_ENCRYPTION_KEY. */
  WEBCHAT_VISITOR_SECRET: z.string().min(32).optional(),
  /**
   * Express `trust proxy`: which proxies' X-Forwarded-For decides the client address (per-address
   * limits). `false` (default: the TCP peer), `true` (any: only behind a proxy that overwrites the
   * header), a hop count (`1`), or a comma-separated list of addresses/subnets or `loopback`,
   * `linklocal`, `uniquelocal`.
   */
  /**
   * Check every JSON answer of a documented route against its OpenAPI response schema; a mismatch
   * becomes a 500 `response_schema_mismatch` (the tests run with it on; off in production: it costs a parse per answer).
   */
  PARLEY_CHECK_RESPONSES: bool.default(false),
  TRUST_PROXY: z
    .string()
    .trim()
    .default('false')
    .transform((v, ctx): boolean | number | string[] => {
      if (v === 'false' || v === '') return false;
      if (v === 'true') return true;
      if (/^\d{1,2}$/.test(v)) return Number(v);
      const list = v.split(',').map((x) => x.trim()).filter(Boolean);
      if (list.every((x) => /^(loopback|linklocal|uniquelocal|[0-9a-fA-F:.]+(\/\d{1,3})?)$/.test(x))) return list;
      ctx.addIssue({ code: 'custom', message: 'must be false, true, a hop count, or a comma-separated list of addresses, subnets, loopback, linklocal, uniquelocal' });
      return z.NEVER;
    }),

  /** Rate limits (services/rate-limit.ts: token buckets in the database, shared by every process). */
  /** Sends per second per business number when the channel sets none (Meta's default throughput: 80). */
  WHATSAPP_MESSAGES_PER_SECOND: z.coerce.number().int().min(1).max(10_000).default(80),
  /** Pair rate: one message per this interval from a business number to one user (Meta: ~6 s); 0 = off. */
  WHATSAPP_PAIR_INTERVAL_MS: z.coerce.number().int().min(0).max(60_000).default(6000),
  /** Pair rate: messages to one user that may go out back to back before the interval applies (Meta allows small bursts). */
  WHATSAPP_PAIR_BURST: z.coerce.number().int().min(1).max(45).default(1),
  /** A send waits in the activity for a rate-limited slot up to this long; a later slot is a Temporal retry at that time. */
  SEND_RATE_LIMIT_MAX_SLEEP_MS: z.coerce.number().int().min(0).max(10_000).default(2000),
  /**
   * When an earlier attempt of a send may have reached Meta (the worker died or the call timed
   * out before the answer was stored), a retry waits this long after that attempt for the status
   * webhook (it carries our id) before sending again.
   */
  SEND_UNCONFIRMED_WAIT_MS: z.coerce.number().int().min(0).max(3_600_000).default(120_000),
  /** Tenant API requests per minute when the tenant sets none (tenants.api_requests_per_minute). */
  TENANT_API_REQUESTS_PER_MINUTE: z.coerce.number().int().min(1).max(1_000_000).default(600),
  /** Failed authentications (wrong API key or admin token) per minute per client IP before 429; 0 = off. */
  AUTH_FAILURES_PER_MINUTE: z.coerce.number().int().min(0).max(100_000).default(30),
  /** LLM spend per tenant per UTC day in micro-USD when the tenant sets none (0 = no LLM); default 50 USD. */
  LLM_DAILY_BUDGET_MICROS: z.coerce.number().int().min(0).max(2_147_483_647).default(50_000_000),

  /** How often the stale credit reservation sweep runs (a Temporal Schedule made at worker start); 0 = no sweep. */
  CREDIT_SWEEP_INTERVAL_MINUTES: z.coerce.number().int().min(0).max(7 * 24 * 60).default(60),
  /** A reservation held this long whose lead is gone or whose workflow is not running is released by the sweep. */
  CREDIT_RESERVATION_STALE_HOURS: z.coerce.number().min(0.01).max(24 * 365).default(24),

  /**
   * Outbound webhooks: whether this worker runs the outbox relay (starts delivery workflows).
   * Every worker may (a delivery starts once, whoever claims it); `false` leaves it to others.
   */
  WEBHOOK_RELAY: bool.default(true),
  /** Outbound webhooks: how often the worker's relay looks for deliveries to start (the outbox). */
  WEBHOOK_DISPATCH_INTERVAL_MS: z.coerce.number().int().min(50).max(60_000).default(1000),
  /** Outbound webhooks: one delivery attempt's timeout (connect, send, read the answer). */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(10_000),
  /** Outbound webhooks: the first retry's delay; each next one doubles, up to WEBHOOK_RETRY_MAX_INTERVAL_MS. */
  WEBHOOK_RETRY_INITIAL_MS: z.coerce.number().int().min(10).max(3_600_000).default(30_000),
  /** Outbound webhooks: the longest delay between two attempts (default 1 hour). */
  WEBHOOK_RETRY_MAX_INTERVAL_MS: z.coerce.number().int().min(10).max(24 * 3_600_000).default(3_600_000),
  /** Outbound webhooks: how long a delivery is retried before it is marked failed (default 3 days). */
  WEBHOOK_RETRY_MAX_DURATION_MS: z.coerce.number().int().min(100).max(30 * 24 * 3_600_000).default(3 * 24 * 3_600_000),
  /** Outbound webhooks: an endpoint is disabled after this many failed deliveries in a row. */
  WEBHOOK_DISABLE_AFTER_FAILURES: z.coerce.number().int().min(1).max(10_000).default(5),

  WORKER_MAX_CONCURRENT_ACTIVITIES: z.coerce.number().int().min(1).default(100),
  WORKER_MAX_CONCURRENT_WORKFLOW_TASKS: z.coerce.number().int().min(1).default(40),
  /** Activity slots of the background lane (sequence steps, bump-ups, extraction), on its own task queue `<TEMPORAL_TASK_QUEUE>-background`. */
  WORKER_MAX_CONCURRENT_BACKGROUND_ACTIVITIES: z.coerce.number().int().min(1).default(4),
  /**
   * Activity slots of the webhook lane (outbound webhook delivery attempts, each up to WEBHOOK_TIMEOUT_MS on the network), on its own
   * task queue `<TEMPORAL_TASK_QUEUE>-webhooks` with the delivery workflows (workers/worker.ts).
   */
  WORKER_MAX_CONCURRENT_WEBHOOK_ACTIVITIES: z.coerce.number().int().min(1).max(1000).default(10),
  /** Lead workflows kept in the worker's memory between tasks (an evicted one is replayed from its history when it wakes). */
  WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).default(1000),
  METRICS_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  /**
   * Worker: the Temporal SDK core's own Prometheus endpoint, on 127.0.0.1 only; the worker's
   * METRICS_PORT serves its text merged with Parley's metrics. Default METRICS_PORT + 1.
   */
  METRICS_CORE_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** Label per-tenant metrics with `tenant_id` (off: no tenant label anywhere). */
  METRICS_TENANT_LABELS: bool.default(false),
  /** Distinct tenant_id values per process before "other" (and tenants in the credit balance gauge). */
  METRICS_TENANT_LABEL_CAP: z.coerce.number().int().min(1).max(10_000).default(100),

  PARLEY_SIMULATE: bool.default(false),
});

export type Config = Omit<z.infer<typeof configSchema>, 'TEMPORAL_NAMESPACE'> & {
  /** Resolved: TEMPORAL_NAMESPACE, else the profile's namespace, else `default`. */
  TEMPORAL_NAMESPACE: string;
  /** The resolved Temporal connection (environment over profile), for the client and the worker. */
  temporal: TemporalSettings;
};

/** Shortest PARLEY_ADMIN_TOKEN accepted in production (32 random characters ≈ 190 bits as base64). */
export const ADMIN_TOKEN_MIN_LENGTH = 32;

export class ConfigError extends Error {
  constructor(public readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

/** Which process parses the config ('all': one that runs both, or a tool); README "read by". */
export type ConfigReader = 'api' | 'worker' | 'all';

/** What NODE_ENV=production requires, per process: only what that process reads. */
const REQUIRED_IN_PRODUCTION: Record<ConfigReader, readonly (keyof Config)[]> = {
  api: ['PARLEY_ADMIN_TOKEN', 'PARLEY_ENCRYPTION_KEY', 'META_APP_SECRET', 'DATABASE_URL', 'TEMPORAL_ADDRESS'],
  worker: ['PARLEY_ENCRYPTION_KEY', 'DATABASE_URL', 'TEMPORAL_ADDRESS'],
  all: ['PARLEY_ADMIN_TOKEN', 'PARLEY_ENCRYPTION_KEY', 'META_APP_SECRET', 'DATABASE_URL', 'TEMPORAL_ADDRESS'],
};

/** Parse the environment once per entry point; fail fast with every problem listed. */
export function loadConfig(env: Record<string, string | undefined> = process.env, opts: { reader?: ConfigReader } = {}): Config {
  const parsed = configSchema.safeParse(env);
  // the Temporal connection (variables, profile file, certificate files), by the SDK's loader
  const resolved = resolveTemporalSettings(env);
  if (!parsed.success || !resolved.settings) {
    const schemaProblems = parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new ConfigError([...schemaProblems, ...resolved.problems]);
  }
  const temporal = resolved.settings;
  // one source of truth: the SDK's resolution (environment over profile) is what the rest of Parley reads
  const config: Config = { ...parsed.data, TEMPORAL_ADDRESS: temporal.address, TEMPORAL_NAMESPACE: temporal.namespace, temporal };
  if (config.NODE_ENV === 'production') {
    const missing = REQUIRED_IN_PRODUCTION[opts.reader ?? 'all'].filter((k) => !config[k]);
    if (missing.length) throw new ConfigError(missing.map((k) => `${k}: required when NODE_ENV=production`));
    if (config.PARLEY_ADMIN_TOKEN && config.PARLEY_ADMIN_TOKEN.trim().length < ADMIN_TOKEN_MIN_LENGTH) {
      throw new ConfigError([`PARLEY_ADMIN_TOKEN: must be at least ${ADMIN_TOKEN_MIN_LENGTH} characters when NODE_ENV=production (e.g. openssl rand -base64 32)`]);
    }
    // signed media urls are bearer credentials for a tenant's files: never handed out over plain http
    if (config.PUBLIC_BASE_URL && !/^https:\/\//i.test(config.PUBLIC_BASE_URL)) {
      throw new ConfigError(['PUBLIC_BASE_URL: must be an https url when NODE_ENV=production (signed media urls carry their credential)']);
    }
    // a change that committed but answers outside its schema would become a 500 (and a client retry)
    if (config.PARLEY_CHECK_RESPONSES) throw new ConfigError(['PARLEY_CHECK_RESPONSES: a test setting, refused when NODE_ENV=production']);
  }
  return config;
}
