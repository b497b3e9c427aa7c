import type { Tracer } from '@opentelemetry/api';
import { trace } from '@opentelemetry/api';
import express, { type Express } from 'express';
import type { Config } from '../config';
import type { Database } from '../db/client';
import { AppError } from '../lib/errors';
import type { Logger } from '../lib/logger';
import type { Services } from '../services';
import type { ParleyTemporal } from '../temporal/client';
import { errorHandler } from './middleware/errors';
import { requestContext } from './middleware/request-context';
import { auditChanges } from './middleware/audit';
import { authFailureGuard } from './middleware/rate-limit';
import { webhookMetrics } from './middleware/webhook-metrics';
import { createAdminRouter } from './routes/admin';
import { createAnalyticsRouter } from './routes/analytics';
import { createApiKeyRouter } from './routes/api-keys';
import { createChannelLifecycleRouter } from './routes/channel-lifecycle';
import { createContactRouter } from './routes/contacts';
import { createDeliveryRouter } from './routes/delivery';
import { createMetricsRouter } from './routes/metrics';
import { createAgentAssetRouter } from './routes/agent-assets';
import { createEngineRouter } from './routes/engine';
import { createExtractionRouter } from './routes/extractions';
import { createHealthRouter } from './routes/health';
import { createDocsRouter } from './routes/docs';
import { createCodecRouter } from './routes/codec';
import { version } from '../package.json';
import { createInstagramWebhookRouter } from './routes/instagram-webhook';
import { createMediaRouter } from './routes/media';
import { createMediaLibraryRouter } from './routes/media-library';
import { createMediaUrlTokens, mediaUrlSecret } from '../services/media-url-tokens';
import { createKnowledgeBaseRouter } from './routes/knowledge-bases';
import { embeddingKey } from '../services/embeddings';
import { createSetupRouter } from './routes/setup';
import { createTemplateRouter } from './routes/templates';
import { createSuppressionRouter } from './routes/suppressions';
import { createTenantRouter } from './routes/tenant';
import { createChannelOwnershipVerifier } from '../services/channel-ownership';
import { createUsageRouter } from './routes/usage';
import { createWebChatRouter } from './routes/webchat';
import { createWhatsAppWebhookRouter } from './routes/whatsapp-webhook';
import { createWebhookEndpointRouter } from './routes/webhook-endpoints';
import { createVisitorTokens, webChatVisitorSecret } from '../services/webchat-visitors';

export interface AppDeps {
  config: Pick<Config, 'PARLEY_ADMIN_TOKEN' | 'META_APP_SECRET' | 'META_VERIFY_TOKEN' | 'WEBCHAT_POLL_MS' | 'WEBCHAT_HEARTBEAT_MS' | 'WEBCHAT_MAX_MESSAGES_PER_MINUTE'> &
    Partial<Pick<Config, 'AUTH_FAILURES_PER_MINUTE'>> &
    Partial<
      Pick<
        Config,
        | 'TRUST_PROXY'
        | 'LOG_REQUESTS'
        | 'NODE_ENV'
        | 'PARLEY_CHECK_RESPONSES'
        | 'PARLEY_ENCRYPTION_KEY'
        | 'WEBCHAT_VISITOR_SECRET'
        | 'WEBCHAT_MAX_STREAMS'
        | 'WEBCHAT_MAX_STREAMS_PER_ADDRESS'
        | 'WEBCHAT_MAX_READS_PER_MINUTE_PER_ADDRESS'
        | 'WEBCHAT_NEW_CONVERSATIONS_PER_HOUR'
        | 'WEBCHAT_NEW_CONVERSATIONS_PER_HOUR_PER_ADDRESS'
        | 'TEMPORAL_UI_ORIGINS'
        | 'TEMPORAL_NAMESPACE'
        | 'MEDIA_LIBRARY_MAX_BYTES'
        | 'MEDIA_LIBRARY_MAX_ITEMS'
        | 'MEDIA_LIBRARY_MAX_TENANT_BYTES'
        | 'MEDIA_URL_SECRET'
        | 'MEDIA_URL_READS_PER_MINUTE'
        | 'MEDIA_LIBRARY_MAX_CONCURRENT_UPLOADS'
        | 'MEDIA_LIBRARY_MIN_UPLOAD_BYTES_PER_SECOND'
        | 'KNOWLEDGE_MAX_FILE_BYTES'
        | 'OPENAI_EMBEDDING_MODEL'
        | 'OPENAI_EMBEDDING_DIMENSIONS'
      >
    > &
    Partial<Pick<Config, 'GRAPH_API_URL' | 'GRAPH_API_VERSION' | 'GRAPH_API_TIMEOUT_MS'>>;
  log: Logger;
  database: Pick<Database, 'ping'>;
  services: Services;
  temporal: ParleyTemporal;
  /** The API's tracer (lib/tracing.ts createTracing(...).tracer); absent: the global one (a no-op unless registered). */
  tracer?: Tracer;
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  // which X-Forwarded-For hops decide req.ip (every per-address limit); default: the TCP peer
  app.set('trust proxy', deps.config.TRUST_PROXY ?? false);
  // first: every request (webhooks and unauthenticated ones included) gets its X-Request-Id and span
  app.use(requestContext({ tracer: deps.tracer ?? trace.getTracer('parley-api'), log: deps.log, logRequests: deps.config.LOG_REQUESTS ?? 'all' }));
  const log = deps.log.child({ module: 'api' });
  // routers and guards that name their own module get the process's logger (a child of `log` would write `module` twice)
  const moduleRoot = deps.log;
  // api/openapi.ts: check every documented JSON answer against the document (the tests)
  app.set('parley check responses', deps.config.PARLEY_CHECK_RESPONSES ?? false);
  app.set('parley log', log);
  // channel squatting guard: a token must read the id it registers (every config from loadConfig has a Graph API url)
  const verifyChannel = deps.config.GRAPH_API_URL
    ? createChannelOwnershipVerifier({ graphApiUrl: deps.config.GRAPH_API_URL, graphApiVersion: deps.config.GRAPH_API_VERSION ?? 'v21.0', timeoutMs: deps.config.GRAPH_API_TIMEOUT_MS ?? 15_000 })
    : undefined;

  app.use(createHealthRouter({ pingDatabase: () => deps.database.ping(), pingTemporal: () => deps.temporal.ping(), log }));
  app.use(createDocsRouter({ version }));
  // Per client IP, one budget for both Meta routes: refused webhook signatures (401) and wrong
  // handshake verify tokens (403) count as failed authentications. A blocked address gets no
  // database work (only a webhook body the deployment's secret signs still gets through).
  const webhookGuard = {
    rateLimiter: deps.services.rateLimiter,
    perMinute: deps.config.AUTH_FAILURES_PER_MINUTE ?? 30,
    log: moduleRoot,
    prefixes: ['/webhooks/whatsapp', '/webhooks/instagram'],
    keyPrefix: 'authfail:webhook',
  };
  app.use(webhookMetrics()); // Meta webhooks received and refused by reason (lib/metrics.ts)
  app.use(authFailureGuard({ ...webhookGuard, presented: (req) => req.method === 'POST' && req.headers['x-hub-signature-256'] !== undefined, onBlocked: 'mark' }));
  app.use(authFailureGuard({ ...webhookGuard, presented: (req) => req.method === 'GET' && req.query['hub.verify_token'] !== undefined, refusedStatus: 403 }));
  // The webhook reads its own raw body (signature over the exact bytes), so it comes before express.json.
  app.use(
    createWhatsAppWebhookRouter({
      channels: deps.services.channels,
      leads: deps.services.leads,
      templates: deps.services.templates,
      identities: deps.services.contactIdentities,
      temporal: deps.temporal,
      log: moduleRoot,
      appSecret: deps.config.META_APP_SECRET,
      verifyToken: deps.config.META_VERIFY_TOKEN,
    }),
  );
  app.use(
    createInstagramWebhookRouter({
      channels: deps.services.channels,
      temporal: deps.temporal,
      log: moduleRoot,
      appSecret: deps.config.META_APP_SECRET,
      verifyToken: deps.config.META_VERIFY_TOKEN,
    }),
  );
  // Public web chat (CORS, its own small body limit): before express.json as well.
  app.use(
    createWebChatRouter({
      channels: deps.services.channels,
      leads: deps.services.leads,
      temporal: deps.temporal,
      log: moduleRoot,
      pollMs: deps.config.WEBCHAT_POLL_MS,
      heartbeatMs: deps.config.WEBCHAT_HEARTBEAT_MS,
      maxMessagesPerMinute: deps.config.WEBCHAT_MAX_MESSAGES_PER_MINUTE,
      limiter: deps.services.rateLimiter,
      visitors: createVisitorTokens(webChatVisitorSecret(deps.config)),
      maxStreams: deps.config.WEBCHAT_MAX_STREAMS,
      maxStreamsPerAddress: deps.config.WEBCHAT_MAX_STREAMS_PER_ADDRESS,
      maxReadsPerMinutePerAddress: deps.config.WEBCHAT_MAX_READS_PER_MINUTE_PER_ADDRESS,
      newConversationsPerHour: deps.config.WEBCHAT_NEW_CONVERSATIONS_PER_HOUR,
      newConversationsPerHourPerAddress: deps.config.WEBCHAT_NEW_CONVERSATIONS_PER_HOUR_PER_ADDRESS,
    }),
  );
  // Temporal's remote codec for the Web UI (CORS for its origins, its own 4 MB body limit): before express.json as well;
  // its refused credentials count in the same per-IP budget as the tenant API's
  app.use(authFailureGuard({ rateLimiter: deps.services.rateLimiter, perMinute: deps.config.AUTH_FAILURES_PER_MINUTE ?? 30, log: moduleRoot, prefixes: ['/codec'] }));
  app.use(createCodecRouter({ services: deps.services, adminToken: deps.config.PARLEY_ADMIN_TOKEN, origins: deps.config.TEMPORAL_UI_ORIGINS ?? ['http://localhost:8233', 'http://127.0.0.1:8233'], namespace: deps.config.TEMPORAL_NAMESPACE ?? 'default', development: deps.config.NODE_ENV === 'development', log }));
  app.use(express.json({ limit: '1mb', strict: true }));
  // per client IP: too many refused credentials → 429 before any key is checked (OWASP API4)
  app.use(authFailureGuard({ rateLimiter: deps.services.rateLimiter, perMinute: deps.config.AUTH_FAILURES_PER_MINUTE ?? 30, log: moduleRoot }));
  // every change a tenant key makes is written to the audit log before its answer goes out
  app.use(auditChanges({ auditLog: deps.services.auditLog, log }));
  app.use(createMetricsRouter({ services: deps.services, adminToken: deps.config.PARLEY_ADMIN_TOKEN }));
  app.use(createAdminRouter({ services: deps.services, adminToken: deps.config.PARLEY_ADMIN_TOKEN }));
  // before the engine and tenant routers: their `/v1/leads…` auth would otherwise run a second time
  app.use(createExtractionRouter({ services: deps.services, log }));
  app.use(createMediaRouter({ services: deps.services, temporal: deps.temporal, log: moduleRoot }));
  // the media library; its public GET /media/:token checks the signed token before any database work
  app.use(
    createMediaLibraryRouter({
      services: deps.services,
      limits: {
        maxBytes: deps.config.MEDIA_LIBRARY_MAX_BYTES ?? 16 * 1024 * 1024,
        maxItems: deps.config.MEDIA_LIBRARY_MAX_ITEMS ?? 500,
        maxTenantBytes: deps.config.MEDIA_LIBRARY_MAX_TENANT_BYTES ?? 1024 * 1024 * 1024,
      },
      urlTokens: createMediaUrlTokens(mediaUrlSecret(deps.config)),
      readsPerMinute: deps.config.MEDIA_URL_READS_PER_MINUTE,
      maxConcurrentUploads: deps.config.MEDIA_LIBRARY_MAX_CONCURRENT_UPLOADS,
      minUploadBytesPerSecond: deps.config.MEDIA_LIBRARY_MIN_UPLOAD_BYTES_PER_SECOND,
      log: moduleRoot,
    }),
  );
  app.use(createTemplateRouter({ services: deps.services, config: deps.config, log })); // before delivery and tenant: their /v1/channels/:id and /v1/templates auth would run twice
  app.use(createChannelLifecycleRouter({ services: deps.services, temporal: deps.temporal, log: moduleRoot })); // DELETE /v1/channels/:id: before delivery, whose /v1/channels/:id auth would run twice
  app.use(createDeliveryRouter({ services: deps.services, temporal: deps.temporal, log: moduleRoot, verifyChannel }));
  // before setup and tenant: their /v1/agents/:agentId auth would otherwise run a second time
  app.use(createAgentAssetRouter({ services: deps.services }));
  app.use(createSetupRouter({ services: deps.services, temporal: deps.temporal }));
  app.use(createEngineRouter({ services: deps.services, temporal: deps.temporal }));
  app.use(createTenantRouter({ services: deps.services, temporal: deps.temporal, verifyChannel }));
  app.use(createUsageRouter({ services: deps.services }));
  app.use(createApiKeyRouter({ services: deps.services }));
  app.use(createContactRouter({ services: deps.services, temporal: deps.temporal, log }));
  app.use(createSuppressionRouter({ services: deps.services }));
  app.use(createAnalyticsRouter({ services: deps.services }));
  app.use(
    createKnowledgeBaseRouter({
      services: deps.services,
      temporal: deps.temporal,
      log,
      maxFileBytes: deps.config.KNOWLEDGE_MAX_FILE_BYTES ?? 10 * 1024 * 1024,
      allowLocalUrls: (deps.config.NODE_ENV ?? 'development') !== 'production',
      embeddingKey: embeddingKey(deps.config.OPENAI_EMBEDDING_MODEL ?? 'text-embedding-3-small', deps.config.OPENAI_EMBEDDING_DIMENSIONS ?? 1536),
    }),
  );
  app.use(createWebhookEndpointRouter({ services: deps.services, allowLocalUrls: (deps.config.NODE_ENV ?? 'development') !== 'production' }));
  app.use((req, _res, next) => next(new AppError('not_found', `no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(log));
  return app;
}
