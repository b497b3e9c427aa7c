import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../contract/failures';
import type { DbTransaction } from '../db/client';
import type { Logger } from '../lib/logger';
import type { AgentService } from '../services/agents';
import type { PipelineService } from '../services/pipelines';
import type { ChannelService } from '../services/channels';
import type { CreditService } from '../services/credits';
import type { DeadLetterService } from '../services/dead-letters';
import type { ExtractionService } from '../services/extractions';
import type { LeadService } from '../services/leads';
import type { LimitService } from '../services/limits';
import type { MediaService } from '../services/media';
import type { MediaLibraryService } from '../services/media-library';
import type { MediaUrlTokens } from '../services/media-url-tokens';
import type { KnowledgeService } from '../services/knowledge';
import type { Embedder } from '../services/embeddings';
import type { RateLimiter } from '../services/rate-limit';
import type { SequenceService } from '../services/sequences';
import type { SuppressionService } from '../services/suppressions';
import type { TemplateService } from '../services/templates';
import type { WebhookEndpointService } from '../services/webhook-endpoints';
import { createWebhookActivities, type WebhookSettings } from './webhooks/deliver';
import { createInstagramActivities } from './channels/instagram';
import { createRichActivities, type ResolveLibraryMedia } from './channels/rich';
import { createWebChatActivities } from './channels/webchat';
import { createWhatsAppActivities } from './channels/whatsapp';
import { createCreditActivities } from './credits';
import { createExtractionActivities } from './extraction/extract';
import type { PriceTable } from './llm/pricing';
import type { LeadWorkflowSettings } from '../contract/messages';
import type { AgentAssetService } from '../services/agent-assets';
import { createLlmActivities, createReplyWriter } from './llm/reply';
import { createMediaActivities } from './media/fetch';
import { createMediaResolver, type MediaResolver } from './media/resolve';
import { createKnowledgeActivities, type KnowledgeActivityDeps } from './knowledge/ingest';
import { withDatabaseErrors } from './database-errors';
import { createDeadLetterActivities } from './persistence/dead-letters';
import { createPersistenceActivities } from './persistence/leads';
import { createChannelDeleteActivities } from './ops/channel-delete';
import { createCircuitActivities } from './ops/circuit';
import { createCreditSweepActivities } from './ops/credit-sweep';
import { createTurnActivities } from './turn/reply-turn';

export interface ActivityDeps {
  leads: LeadService;
  credits: CreditService;
  deadLetters: DeadLetterService;
  channels: ChannelService;
  agents: AgentService;
  /** The tenant's stage names for the set_stage tool (services.pipelines); absent = any stage name. */
  pipelines?: Pick<PipelineService, 'stageNames'>;
  templates: TemplateService;
  sequences: SequenceService;
  suppressions: SuppressionService;
  extractions: ExtractionService;
  log: Logger;
  graph: { url: string; version: string; timeoutMs: number; unconfirmedWaitMs?: number };
  llm: { baseURL?: string; apiKey: string; timeoutMs: number; prices?: PriceTable; maxTokens?: number };
  /** Inbound media fetched on demand (services.media). */
  media: MediaService;
  /** Agents' assets (services.agentAssets): the send_media tool; absent = send_media is never offered. */
  agentAssets?: Pick<AgentAssetService, 'listAgentAssets'>;
  /** Knowledge bases (services.knowledge): documents, chunks, retrieval. */
  knowledge: KnowledgeService;
  /** Knowledge document ingestion: the embedder and the url fetch limits; absent = defaults, no embedder (documents fail with llm_config). */
  knowledgeIngest?: { embedder?: Embedder; maxBytes: number; fetchTimeoutMs: number; allowLocalUrls: boolean; parseLimits?: KnowledgeActivityDeps['parseLimits'] };
  /** MEDIA_MAX_BYTES; 16 MB when absent. */
  mediaMaxBytes?: number;
  /** The media library (services.mediaLibrary): files sends name by `mediaId`. */
  mediaLibrary?: MediaLibraryService;
  /** How library media is sent: Meta media ids kept MEDIA_META_ID_TTL_HOURS; signed urls (PUBLIC_BASE_URL, MEDIA_URL_TTL_SECONDS) for Instagram and web chat. */
  mediaSend?: { metaIdTtlMs: number; urlTokens?: MediaUrlTokens; publicBaseUrl?: string; urlTtlMs: number };
  /** Per-tenant LLM budget (services.limits); absent = no budget check. */
  limits?: Pick<LimitService, 'llmBudget'>;
  /** Token buckets shared by every process (services.rateLimiter). */
  rateLimiter?: RateLimiter;
  /** Send rate limits from config; sends are rate limited only when this and rateLimiter are set. */
  sendRates?: { messagesPerSecond: number; pairIntervalMs: number; pairBurst: number; maxSleepMs: number };
  /** The lead workflow settings (LEAD_* config): `ensureLead` hands them to every run at its start. */
  leadSettings: LeadWorkflowSettings;
  /** One transaction across services (services.transaction): the reply turn records and reserves in one. */
  transaction?: <T>(fn: (tx: DbTransaction) => Promise<T>) => Promise<T>;
  /** A Temporal client for the operational activities (circuit fan-out, reservation sweep, a deleted channel's leads); the worker sets it. */
  temporalClient?: Client;
  /** Outbound webhooks (services.webhookEndpoints) and their settings (WEBHOOK_* config); absent = no relay, no deliveries. */
  webhookEndpoints?: WebhookEndpointService;
  webhooks?: WebhookSettings;
  /** The media library's resolver of a Parley media id to a Meta media id (activities/channels/rich.ts); absent = library ids are refused. */
  resolveLibraryMedia?: ResolveLibraryMedia;
}

/**
 * The media library resolver the send path calls (activities/media/resolve.ts): a Meta media id
 * for WhatsApp (uploaded on first use per channel), a signed url for Instagram and web chat.
 * Undefined when the deps carry no media library.
 */
export function mediaResolverFrom(deps: ActivityDeps): MediaResolver | undefined {
  if (!deps.mediaLibrary) return undefined;
  const send = deps.mediaSend ?? { metaIdTtlMs: 29 * 24 * 3_600_000, urlTtlMs: 7 * 24 * 3_600_000 };
  return createMediaResolver({
    mediaLibrary: deps.mediaLibrary,
    channels: deps.channels,
    log: deps.log,
    graphApiUrl: deps.graph.url,
    graphApiVersion: deps.graph.version,
    timeoutMs: deps.graph.timeoutMs,
    ...send,
  });
}

/**
 * The rich send path's hook (activities/channels/rich.ts `resolveLibraryMedia`) over the media
 * library resolver: a Meta media id on WhatsApp, a signed url elsewhere. The file's kind must fit
 * the message's media type (the API checks it at request time; a send checks again): otherwise the
 * send fails for good (`media_kind_mismatch`).
 */
export function libraryMediaHook(resolver: MediaResolver): ResolveLibraryMedia {
  return async ({ tenantId, channelAccountId, libraryId, type, staleMetaMediaId }) => {
    const got = await resolver.resolveMediaForSend({ tenantId, mediaId: libraryId, channelAccountId, ...(staleMetaMediaId ? { staleMetaMediaId } : {}) });
    if (type !== undefined && got.kind !== type) {
      throw ApplicationFailure.create({ type: FailureType.MediaKindMismatch, message: `media ${libraryId} is a ${got.kind}: it cannot be sent as ${type === 'image' ? 'an' : 'a'} ${type}`, nonRetryable: true });
    }
    const filename = got.filename ? { filename: got.filename } : {};
    return got.platform === 'whatsapp' ? { id: got.metaMediaId, ...filename } : { link: got.url, ...filename };
  };
}

/** The union the worker registers; the workflow proxies its type. */
export function createActivities(deps: ActivityDeps) {
  const rateLimits = deps.rateLimiter && deps.sendRates ? { limiter: deps.rateLimiter, ...deps.sendRates } : undefined;
  const resolver = deps.resolveLibraryMedia ? undefined : mediaResolverFrom(deps);
  const resolveLibraryMedia = deps.resolveLibraryMedia ?? (resolver ? libraryMediaHook(resolver) : undefined);
  const channelDeps = { ...deps, resolveLibraryMedia, graphApiUrl: deps.graph.url, graphApiVersion: deps.graph.version, timeoutMs: deps.graph.timeoutMs, unconfirmedWaitMs: deps.graph.unconfirmedWaitMs, rateLimits };
  const credits = createCreditActivities(deps);
  const whatsApp = createWhatsAppActivities(channelDeps);
  const instagram = createInstagramActivities(channelDeps);
  const webChat = createWebChatActivities(channelDeps);
  // every activity: inputs safe to write, database errors classified (22/23 not retried) and scrubbed
  return withDatabaseErrors({
    ...createPersistenceActivities(deps),
    ...createDeadLetterActivities(deps),
    ...credits,
    ...createLlmActivities({ ...deps, ...deps.llm }),
    ...createExtractionActivities({ ...deps, ...deps.llm }),
    ...whatsApp,
    ...instagram,
    ...webChat,
    ...createRichActivities(channelDeps),
    // an ordinary reply turn in one activity, over the same functions as the step-by-step activities above
    ...createTurnActivities({
      leads: deps.leads,
      credits: deps.credits,
      transaction: deps.transaction,
      writeReply: createReplyWriter({ ...deps, ...deps.llm }),
      send: { whatsapp: whatsApp.sendWhatsAppText, instagram: instagram.sendInstagramText, webchat: webChat.sendWebChatText },
      markWhatsAppRead: whatsApp.markWhatsAppRead,
      sendTimeoutMs: deps.graph.timeoutMs,
      sendRateLimitMaxSleepMs: rateLimits?.maxSleepMs,
      log: deps.log,
    }),
    // media downloads may go to Meta's hosts over https (every redirect hop checked) and, explicitly, to the configured Graph API origin (the local fake in tests)
    ...createMediaActivities({ ...channelDeps, maxBytes: deps.mediaMaxBytes, trustedOrigins: [new URL(deps.graph.url).origin] }),
    // knowledge-base documents (workflows/knowledge.ts): url fetches with the outbound SSRF rules
    ...createKnowledgeActivities({
      knowledge: deps.knowledge,
      log: deps.log,
      embedder: deps.knowledgeIngest?.embedder,
      maxBytes: deps.knowledgeIngest?.maxBytes ?? 10 * 1024 * 1024,
      fetchTimeoutMs: deps.knowledgeIngest?.fetchTimeoutMs ?? 20_000,
      allowLocalUrls: deps.knowledgeIngest?.allowLocalUrls ?? false,
      parseLimits: deps.knowledgeIngest?.parseLimits,
    }),
    ...createCircuitActivities(deps),
    ...createChannelDeleteActivities(deps),
    ...createCreditSweepActivities(deps),
    // outbound webhook deliveries (workflows/webhook-delivery.ts)
    ...createWebhookActivities(deps),
  });
}

export type Activities = ReturnType<typeof createActivities>;
