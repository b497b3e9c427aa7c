import type { Db, DbTransaction } from '../db/client';
import type { SecretBox } from '../lib/crypto';
import { createAgentService } from './agents';
import { createAnalyticsService } from './analytics';
import { createApiKeyService } from './api-keys';
import { createAuditLogService } from './audit-log';
import { createChannelService } from './channels';
import { createContactService } from './contacts';
import { createContactIdentityService } from './contact-identities';
import { createCreditService } from './credits';
import { createDeadLetterService } from './dead-letters';
import { createExtractionService } from './extractions';
import { createLeadService } from './leads';
import { createKnowledgeService, type KnowledgeServiceOptions } from './knowledge';
import { createLimitService, type LimitDefaults } from './limits';
import { createMediaService } from './media';
import { createAgentAssetService } from './agent-assets';
import { createMediaLibraryService } from './media-library';
import { createPayloadKeyService } from './payload-keys';
import { createPipelineService } from './pipelines';
import { createRateLimiter } from './rate-limit';
import { createSequenceService } from './sequences';
import { createSuppressionService } from './suppressions';
import { createTemplateService } from './templates';
import { createTenantService } from './tenants';
import { createWebhookEndpointService } from './webhook-endpoints';

export function createServices(db: Db, box: SecretBox, opts: { defaultCreditsPerReply: number; limits?: LimitDefaults; knowledge?: KnowledgeServiceOptions }) {
  return {
    tenants: createTenantService(db, opts),
    /** Tenant API keys with roles: create, list, revoke, rotate. */
    apiKeys: createApiKeyService(db),
    /** Changes made through the tenant API (who, what, when, before and after). */
    auditLog: createAuditLogService(db),
    agents: createAgentService(db),
    channels: createChannelService(db, box),
    credits: createCreditService(db),
    deadLetters: createDeadLetterService(db),
    leads: createLeadService(db),
    /** Every form (phone, BSUID) a WhatsApp contact reached a channel under → its lead's contact id. */
    contactIdentities: createContactIdentityService(db),
    /** A contact's data across the tenant's channels: export and erase (data rights). */
    contacts: createContactService(db),
    pipelines: createPipelineService(db),
    templates: createTemplateService(db),
    sequences: createSequenceService(db),
    /** The tenant's opt-out list (STOP phrases and the API). */
    suppressions: createSuppressionService(db),
    extractions: createExtractionService(db),
    /** Knowledge bases, their documents and chunks, and hybrid retrieval (issue 11). */
    knowledge: createKnowledgeService(db, opts.knowledge),
    /** Inbound media fetched on demand from the provider, cached. */
    media: createMediaService(db),
    /** The tenant's media library (POST /v1/media) and the Meta media ids of its files per channel. */
    mediaLibrary: createMediaLibraryService(db),
    /** Agents' assets: library files an agent may send by name (the agent tools' send_media: listAgentAssets). */
    agentAssets: createAgentAssetService(db),
    /** Token buckets shared by every process (sends, tenant API, failed auth). */
    rateLimiter: createRateLimiter(db),
    /** Per-tenant API and LLM limits (tenant value or the deployment default). */
    limits: createLimitService(db, opts.limits),
    /** Per-tenant analytics over a time range, computed in SQL (GET /v1/analytics/summary). */
    analytics: createAnalyticsService(db),
    /** Outbound webhooks: endpoints, signing secrets, deliveries. */
    webhookEndpoints: createWebhookEndpointService(db, box),
    /** Data keys of the Temporal payload codec (one per lead workflow, wrapped by the master key). */
    payloadKeys: createPayloadKeyService(db, box),
    /** One transaction across services (their methods that take `{ tx }` join it). */
    transaction: <T>(fn: (tx: DbTransaction) => Promise<T>): Promise<T> => db.transaction(fn),
  };
}

export type Services = ReturnType<typeof createServices>;
