/**
 * The composition root both entry points share (api/main.ts, workers/main.ts, and the dev,
 * test and bench stacks): the database and the services over it, built from config.
 * What only the worker builds (activity deps, lead settings, schedules) is in ./worker.
 */
import type { Config } from '../config';
import { migrateDatabase, openDatabase, type Database } from '../db/client';
import { createSecretBox, parseEncryptionKey, parseEncryptionKeys } from '../lib/crypto';
import { configureMetrics } from '../lib/metrics';
import type { Logger } from '../lib/logger';
import type { PayloadCodec } from '@temporalio/common';
import { createServices, type Services } from '../services';
import { prepareVectorSearch } from '../db/vector';
import { createOpenAIEmbedder } from '../services/embeddings';
import { createPayloadCodec } from '../temporal/payload-codec';
import { createLeadIds, type LeadIds } from '../lib/lead-ids';
import { loadLeadIdKey } from '../services/lead-id-key';

export interface Core {
  database: Database;
  services: Services;
  /** The Temporal payload codec (temporal/payload-codec.ts) for the client and the worker; undefined when PARLEY_PAYLOAD_CODEC=false. */
  payloadCodec?: PayloadCodec;
  /** Lead workflow ids (lib/lead-ids.ts), keyed by the database's lead id key (services/lead-id-key.ts). */
  leadIds: LeadIds;
}

/** What `createParleyTemporal` calls to create a lead's payload key ahead of its signal; none without the codec. */
export function keyPreparer(core: Core): ((workflowId: string) => Promise<unknown>) | undefined {
  return core.payloadCodec ? (workflowId) => core.services.payloadKeys.forWorkflow(workflowId) : undefined;
}

/** The embeddings endpoint's settings (the API embeds queries, the worker documents). */
export function embeddingSettingsFrom(config: Config) {
  return {
    baseURL: config.OPENAI_BASE_URL,
    apiKey: config.OPENAI_API_KEY ?? 'offline-stand-in',
    model: config.OPENAI_EMBEDDING_MODEL,
    dimensions: config.OPENAI_EMBEDDING_DIMENSIONS,
    timeoutMs: config.LLM_TIMEOUT_MS,
    batchSize: config.KNOWLEDGE_EMBEDDING_BATCH_SIZE,
  };
}

/** The database and services every entry point shares. */
export async function buildCore(config: Config, opts: { migrate?: boolean; log: Logger }): Promise<Core> {
  if (!config.PARLEY_ENCRYPTION_KEY) {
    throw new Error('PARLEY_ENCRYPTION_KEY is not set (32 bytes as base64 or hex); `npm run dev` creates one under .data/');
  }
  configureMetrics({ tenantLabels: config.METRICS_TENANT_LABELS, tenantLabelCap: config.METRICS_TENANT_LABEL_CAP });
  const box = createSecretBox(parseEncryptionKey(config.PARLEY_ENCRYPTION_KEY), parseEncryptionKeys(config.PARLEY_ENCRYPTION_KEYS_OLD));
  const database = await openDatabase({ url: config.DATABASE_URL, pgliteDataDir: config.PGLITE_DATA_DIR });
  if (opts.migrate) {
    await migrateDatabase(database);
    opts.log.info({ database: database.describe }, 'database migrated');
  }
  // knowledge base: pgvector where the database has it, else cosine over real[] in SQL (db/vector.ts), chosen here and logged
  const vectorMode = await prepareVectorSearch(database, { dimensions: config.OPENAI_EMBEDDING_DIMENSIONS, log: opts.log });
  const services = createServices(database.db, box, {
    defaultCreditsPerReply: config.DEFAULT_CREDITS_PER_REPLY,
    limits: { apiRequestsPerMinute: config.TENANT_API_REQUESTS_PER_MINUTE, llmDailyBudgetMicros: config.LLM_DAILY_BUDGET_MICROS },
    knowledge: { vectorMode, embedder: createOpenAIEmbedder(embeddingSettingsFrom(config)), vectorScanLimit: config.KNOWLEDGE_VECTOR_SCAN_LIMIT, vectorWeight: config.KNOWLEDGE_VECTOR_WEIGHT },
  });
  const payloadCodec = config.PARLEY_PAYLOAD_CODEC ? createPayloadCodec(services.payloadKeys) : undefined;
  const leadIds = createLeadIds(await loadLeadIdKey(database.db, box));
  return { database, services, leadIds, ...(payloadCodec ? { payloadCodec } : {}) };
}

