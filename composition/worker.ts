/**
 * The worker's half of the composition root: what only the worker process builds from config
 * (the activities' dependencies, the lead workflow settings, the schedules). The API never
 * imports this module (an ESLint rule says so): lead settings are read by the worker alone.
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../config';
import { ensureCreditSweepSchedule } from '../temporal/schedules';
import type { ActivityDeps } from '../activities';
import type { Logger } from '../lib/logger';
import type { Services } from '../services';
import { createMediaUrlTokens, mediaUrlSecret } from '../services/media-url-tokens';
import { createOpenAIEmbedder } from '../services/embeddings';
import { embeddingSettingsFrom } from './core';
import type { LeadWorkflowSettings } from '../workflows/lead/definitions';

/** What the activities need, from config and the shared services. */
export function activityDepsFrom(config: Config, services: Services, log: Logger): ActivityDeps {
  return {
    ...services,
    log,
    graph: { url: config.GRAPH_API_URL, version: config.GRAPH_API_VERSION, timeoutMs: config.GRAPH_API_TIMEOUT_MS, unconfirmedWaitMs: config.SEND_UNCONFIRMED_WAIT_MS },
    llm: { baseURL: config.OPENAI_BASE_URL, apiKey: config.OPENAI_API_KEY ?? 'offline-stand-in', timeoutMs: config.LLM_TIMEOUT_MS, prices: config.LLM_PRICES, maxTokens: config.LLM_MAX_TOKENS },
    mediaMaxBytes: config.MEDIA_MAX_BYTES,
    mediaSend: {
      metaIdTtlMs: Math.round(config.MEDIA_META_ID_TTL_HOURS * 3_600_000),
      urlTokens: config.MEDIA_URL_SECRET || config.PARLEY_ENCRYPTION_KEY ? createMediaUrlTokens(mediaUrlSecret(config)) : undefined,
      publicBaseUrl: config.PUBLIC_BASE_URL,
      urlTtlMs: config.MEDIA_URL_TTL_SECONDS * 1000,
    },
    knowledgeIngest: {
      embedder: createOpenAIEmbedder(embeddingSettingsFrom(config)),
      maxBytes: config.KNOWLEDGE_MAX_FILE_BYTES,
      fetchTimeoutMs: config.KNOWLEDGE_FETCH_TIMEOUT_MS,
      parseLimits: { memoryMb: config.KNOWLEDGE_PARSE_MEMORY_MB, timeoutMs: config.KNOWLEDGE_PARSE_TIMEOUT_MS, maxPages: config.KNOWLEDGE_PDF_MAX_PAGES, concurrency: config.KNOWLEDGE_PARSE_CONCURRENCY },
      // http and loopback urls only outside production (a local server in development and tests)
      allowLocalUrls: config.NODE_ENV !== 'production',
    },
    leadSettings: leadSettingsFrom(config),
    webhooks: {
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      retryInitialMs: config.WEBHOOK_RETRY_INITIAL_MS,
      retryMaxIntervalMs: config.WEBHOOK_RETRY_MAX_INTERVAL_MS,
      retryMaxDurationMs: config.WEBHOOK_RETRY_MAX_DURATION_MS,
      disableAfterFailures: config.WEBHOOK_DISABLE_AFTER_FAILURES,
      dispatchIntervalMs: config.WEBHOOK_DISPATCH_INTERVAL_MS,
      relay: config.WEBHOOK_RELAY,
      // http and loopback receivers only outside production (a local receiver in development and tests)
      allowLocal: config.NODE_ENV !== 'production',
    },
    sendRates: {
      messagesPerSecond: config.WHATSAPP_MESSAGES_PER_SECOND,
      pairIntervalMs: config.WHATSAPP_PAIR_INTERVAL_MS,
      pairBurst: config.WHATSAPP_PAIR_BURST,
      maxSleepMs: config.SEND_RATE_LIMIT_MAX_SLEEP_MS,
    },
  };
}

/** The lead workflow settings from LEAD_* (the worker's config only; runs receive them from `ensureLead`). */
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
    backgroundSpreadMs: config.LEAD_BACKGROUND_SPREAD_MS,
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
