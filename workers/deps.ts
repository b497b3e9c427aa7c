import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import { ensureCreditSweepSchedule } from '../temporal/schedules';
import { migrateDatabase, openDatabase, type Database } from '../db/client';
import type { ActivityDeps } from '../activities';
import { createSecretBox, parseEncryptionKey, parseEncryptionKeys } from '../lib/crypto';
import type { Logger } from '../lib/logger';
import { createServices, type Services } from '../services';
import type { LeadWorkflowSettings } from '../workflows/lead/definitions';

export interface Core {
  database: Database;
  services: Services;
}

/** The database and services every entry point shares. */
export async function buildCore(config: Config, opts: { migrate?: boolean; log: Logger }): Promise<Core> {
  if (!config.PARLEY_ENCRYPTION_KEY) {
    throw new Error('PARLEY_ENCRYPTION_KEY is not set (32 bytes as base64 or hex); `npm run dev` creates one under .data/');
  }
  const box = createSecretBox(parseEncryptionKey(config.PARLEY_ENCRYPTION_KEY), parseEncryptionKeys(config.PARLEY_ENCRYPTION_KEYS_OLD));
  const database = await openDatabase({ url: config.DATABASE_URL, pgliteDataDir: config.PGLITE_DATA_DIR });
  if (opts.migrate) {
    await migrateDatabase(database);
    opts.log.info({ database: database.describe }, 'database migrated');
  }
  const services = createServices(database.db, box, {
    defaultCreditsPerReply: config.DEFAULT_CREDITS_PER_REPLY,
    limits: { apiRequestsPerMinute: config.TENANT_API_REQUESTS_PER_MINUTE, llmDailyBudgetMicros: config.LLM_DAILY_BUDGET_MICROS },
  });
  return { database, services };
}

/** What the activities need, from config and the shared services. */
export function activityDepsFrom(config: Config, services: Services, log: Logger): ActivityDeps {
  return {
    ...services,
    log,
    graph: { url: config.GRAPH_API_URL, version: config.GRAPH_API_VERSION, timeoutMs: config.GRAPH_API_TIMEOUT_MS, unconfirmedWaitMs: config.SEND_UNCONFIRMED_WAIT_MS },
    llm: { baseURL: config.OPENAI_BASE_URL, apiKey: config.OPENAI_API_KEY ?? 'offline-stand-in', timeoutMs: config.LLM_TIMEOUT_MS, prices: config.LLM_PRICES, maxTokens: config.LLM_MAX_TOKENS },
    mediaMaxBytes: config.MEDIA_MAX_BYTES,
    leadSettings: leadSettingsFrom(config),
    sendRates: {
      messagesPerSecond: config.WHATSAPP_MESSAGES_PER_SECOND,
      pairIntervalMs: config.WHATSAPP_PAIR_INTERVAL_MS,
      pairBurst: config.WHATSAPP_PAIR_BURST,
      maxSleepMs: config.SEND_RATE_LIMIT_MAX_SLEEP_MS,
    },
  };
}

export function leadSettingsFrom(config: Config): LeadWorkflowSettings {
  return {
    eventBudget: config.LEAD_EVENT_BUDGET,
    dedupWindow: config.LEAD_DEDUP_WINDOW,
    debounce: { gapMs: config.LEAD_DEBOUNCE_GAP_MS, maxWaitMs: config.LEAD_DEBOUNCE_MAX_WAIT_MS },
    ...(config.LEAD_PACING_MIN_GAP_MS !== undefined ? { pacing: { minGapMs: config.LEAD_PACING_MIN_GAP_MS, jitterMs: 0 } } : {}),
    autoHandoffCooldownMs: config.LEAD_AUTO_HANDOFF_COOLDOWN_MS,
    bumpUp: { idleMs: config.LEAD_BUMP_UP_IDLE_MS, maxPerConversation: config.LEAD_BUMP_UP_MAX, maxWords: config.LEAD_BUMP_UP_MAX_WORDS, channels: ['whatsapp'] },
    extractionIdleMs: config.LEAD_EXTRACTION_IDLE_MS,
    deliveryMaxAttempts: config.LEAD_DELIVERY_MAX_ATTEMPTS,
  };
}

/** Create or update the schedules a worker deployment keeps (idempotent; every worker start calls it). */
export async function ensureSchedules(client: Client, config: Config, log: Logger): Promise<void> {
  if (config.CREDIT_SWEEP_INTERVAL_MINUTES === 0) return;
  let scheduleId: string;
  try {
    scheduleId = await ensureCreditSweepSchedule(client, {
      taskQueue: config.TEMPORAL_TASK_QUEUE,
      everyMs: config.CREDIT_SWEEP_INTERVAL_MINUTES * 60_000,
      staleAfterMs: Math.round(config.CREDIT_RESERVATION_STALE_HOURS * 3_600_000),
    });
  } catch (err) {
    // the worker still serves leads; the next start tries again
    log.error({ err: (err as Error).message }, 'could not create or update the credit reservation sweep schedule');
    return;
  }
  log.info({ scheduleId, everyMinutes: config.CREDIT_SWEEP_INTERVAL_MINUTES, staleAfterHours: config.CREDIT_RESERVATION_STALE_HOURS }, 'credit reservation sweep scheduled');
}
