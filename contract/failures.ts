/**
 * Every `ApplicationFailure` type Parley throws and matches, in one place: activities throw
 * `ApplicationFailure.create({ type: FailureType.X, ... })`, workflows put them in retry
 * policies (`nonRetryableErrorTypes`) and branch on them. Never type one of these strings by hand.
 *
 * The values are on the wire: they are in recorded workflow histories, in the dead_letters
 * table (error.type) and in lead events. Add types; never change a value.
 *
 * Workflow-safe: imports nothing.
 */

export const FailureType = {
  // ---------------------------------------------------------------- provider_* (Graph API: WhatsApp, Instagram)
  /** 429 / throughput / pair rate (ours or Meta's): retried, often with `nextRetryDelay`. */
  ProviderRateLimited: 'provider_rate_limited',
  /** Network error, timeout, 5xx, an answer without a message id: retried. */
  ProviderTransient: 'provider_transient',
  /** The provider refused the message for good (bad recipient, bad parameters): not retried. */
  ProviderPermanent: 'provider_permanent',
  /** 131047 (or Instagram's outside-window subcodes): the customer-service window is closed; switch to a template. */
  ProviderReengagement: 'provider_reengagement',
  /** 131049: Meta limits marketing messages to this user; wait at least a day. */
  ProviderSpamLimited: 'provider_spam_limited',
  /** Auth and account errors: the channel's circuit breaker opens. */
  ProviderAuth: 'provider_auth',
  /** An earlier attempt may have gone out: wait for its status webhook before sending again (retried). */
  ProviderUnconfirmed: 'provider_unconfirmed',

  // ---------------------------------------------------------------- channel_*
  /** The channel account is unknown (or another tenant's). */
  ChannelNotFound: 'channel_not_found',
  /** The channel's circuit breaker is open: the send waits until it is closed. */
  ChannelCircuitOpen: 'channel_circuit_open',
  /** The tenant disabled the channel (PATCH /v1/channels/:id { enabled: false }): the AI does not reply (an event says so); other sends wait as for an open circuit. */
  ChannelDisabled: 'channel_disabled',
  /**
   * The tenant deleted the channel (DELETE /v1/channels/:id): nothing is sent on it again and no
   * lead starts on it; not retried (a send records a permanent failure, a new run ends at once).
   */
  ChannelDeleted: 'channel_deleted',
  /** Closing a deleted channel's leads started before the route marked it deleted: retried a few attempts, then left alone. */
  ChannelNotMarkedDeleted: 'channel_not_marked_deleted',
  /** The platform admin suspended the tenant: a send that gets this far is parked (a dead letter to replay or discard once it is active again). */
  TenantSuspended: 'tenant_suspended',

  // ---------------------------------------------------------------- template_*
  TemplateNotFound: 'template_not_found',
  TemplateNotApproved: 'template_not_approved',
  /** The parameters given (header, body variables, buttons) do not fit the template's components. */
  TemplateVariables: 'template_variables',

  // ---------------------------------------------------------------- llm_*
  /** The LLM rejected the request (key, model, parameters): not retried. */
  LlmConfig: 'llm_config',
  /** The LLM is unavailable (5xx, timeout, network): retried. */
  LlmTransient: 'llm_transient',
  /** The tenant's daily LLM budget is spent: not retried (nothing changes until tomorrow). */
  LlmBudgetExceeded: 'llm_budget_exceeded',

  // ---------------------------------------------------------------- media_*
  /** Over MEDIA_MAX_BYTES: not retried. */
  MediaTooLarge: 'media_too_large',
  /** The bytes do not match Meta's sha256: retried (a fresh download). */
  MediaChecksumMismatch: 'media_checksum_mismatch',
  /** Not a media id the Graph API knows, nor a Meta CDN url: not retried. */
  MediaInvalidId: 'media_invalid_id',
  /** A media library file the send names is gone (deleted, or another tenant's): not retried. */
  MediaNotFound: 'media_not_found',
  /** Library media for Instagram or web chat needs a public url and PUBLIC_BASE_URL is not set: not retried. */
  MediaUrlNotConfigured: 'media_url_not_configured',
  /** A media library file's kind does not fit the message that names it (a document sent as an image): not retried. */
  MediaKindMismatch: 'media_kind_mismatch',

  // ---------------------------------------------------------------- database_*
  /**
   * SQLSTATE class 22/23, or a row the write needs is gone (a credit reserve for a deleted
   * tenant): another try cannot fix it; not retried, the lead workflow parks it.
   */
  DatabaseRejected: 'database_rejected',
  /** Any other database error (connection, timeout): retried. */
  DatabaseUnavailable: 'database_unavailable',

  // ---------------------------------------------------------------- extraction, lookups
  /** The LLM's extraction failed validation: retried (the model may do better). */
  ExtractionInvalid: 'extraction_invalid',
  LeadNotFound: 'lead_not_found',
  /** No agent configured for the channel account. */
  AgentNotFound: 'agent_not_found',

  // ---------------------------------------------------------------- lead workflow
  /** A mode or sequence transition the lead workflow refuses. */
  InvalidTransition: 'invalid_transition',
  /** The lead workflow has no lead id where it needs one. */
  LeadMissing: 'lead_missing',
  /**
   * What the channel cannot do, e.g. a WhatsApp template on an Instagram or web chat channel
   * (thrown before any provider call; the lead workflow records it as a permanent send failure).
   */
  NotImplemented: 'not_implemented',
  /** An activity's input failed its schema (a bug in the caller): never retried. */
  InvalidInput: 'invalid_input',
  /** The worker was composed without something an activity needs (a Temporal client): not retried. */
  Configuration: 'configuration',

  // ---------------------------------------------------------------- webhook_* (outbound webhooks)
  /** The endpoint answered 3xx or 4xx other than 408 and 429: final, not retried. */
  WebhookRejected: 'webhook_rejected',
  /** Network error, timeout, 5xx, 408, 429: retried with backoff for up to 3 days. */
  WebhookTransient: 'webhook_transient',
  /** The endpoint's url is refused (SSRF rules: scheme, non-public address): final. */
  WebhookUrlRefused: 'webhook_url_refused',
  /** The endpoint was deleted or disabled while the delivery waited: final. */
  WebhookEndpointGone: 'webhook_endpoint_gone',

  // ---------------------------------------------------------------- knowledge_* (knowledge base ingestion)
  /**
   * A document that cannot be indexed as it is: unreadable PDF, no text, unsupported type, too
   * large, its url refused (SSRF rules) or answering 4xx. Final: the document is marked failed.
   */
  KnowledgeDocumentRejected: 'knowledge_document_rejected',
  /**
   * A PDF or HTML document over a parsing limit: it needs more memory (KNOWLEDGE_PARSE_MEMORY_MB)
   * or time (KNOWLEDGE_PARSE_TIMEOUT_MS) than the parser is given, has more pages
   * (KNOWLEDGE_PDF_MAX_PAGES) or more text than the chunk limit allows. Final: the document is
   * marked failed.
   */
  KnowledgeParseLimit: 'knowledge_parse_limit',
} as const;

export type FailureTypeKey = keyof typeof FailureType;
export type FailureTypeName = (typeof FailureType)[FailureTypeKey];

/** Every failure type, in declaration order. */
export const FAILURE_TYPES: readonly FailureTypeName[] = Object.freeze(Object.values(FailureType));

/** Whether `type` (e.g. an `ApplicationFailure.type` from the wire) is one of ours. */
export function isFailureType(type: unknown): type is FailureTypeName {
  return typeof type === 'string' && (FAILURE_TYPES as readonly string[]).includes(type);
}

const F = FailureType;

/** Graph API and Meta CDN failures (provider_*). */
export const PROVIDER_FAILURES = freeze([
  F.ProviderRateLimited,
  F.ProviderTransient,
  F.ProviderPermanent,
  F.ProviderReengagement,
  F.ProviderSpamLimited,
  F.ProviderAuth,
  F.ProviderUnconfirmed,
]);
export const CHANNEL_FAILURES = freeze([F.ChannelNotFound, F.ChannelCircuitOpen, F.ChannelDisabled, F.ChannelDeleted, F.ChannelNotMarkedDeleted]);
export const TEMPLATE_FAILURES = freeze([F.TemplateNotFound, F.TemplateNotApproved, F.TemplateVariables]);
export const LLM_FAILURES = freeze([F.LlmConfig, F.LlmTransient, F.LlmBudgetExceeded]);
export const MEDIA_FAILURES = freeze([F.MediaTooLarge, F.MediaChecksumMismatch, F.MediaInvalidId, F.MediaNotFound, F.MediaUrlNotConfigured, F.MediaKindMismatch]);
export const DATABASE_FAILURES = freeze([F.DatabaseRejected, F.DatabaseUnavailable]);
/** Knowledge document ingestion (knowledgeDocumentWorkflow): failures no retry can fix. */
export const KNOWLEDGE_NON_RETRYABLE = freeze([F.KnowledgeDocumentRejected, F.KnowledgeParseLimit, F.LlmConfig, F.InvalidInput, F.DatabaseRejected]);
/** Outbound webhook deliveries that end at once (no retry). */
export const FINAL_WEBHOOK_FAILURES = freeze([F.WebhookRejected, F.WebhookUrlRefused, F.WebhookEndpointGone]);

// ------------------------------------------------------------------------------ retry policies

/**
 * Sends after which another try cannot help: the lead workflow records them (no dead letter).
 * A Set because the workflow asks `PERMANENT_SEND_FAILURES.has(type)` with a plain string.
 */
export const PERMANENT_SEND_FAILURES: ReadonlySet<string> = new Set<FailureTypeName>([
  F.ProviderPermanent,
  F.ChannelNotFound,
  F.ChannelDeleted,
  F.TemplateNotFound,
  F.TemplateNotApproved,
  F.TemplateVariables,
  F.NotImplemented,
]);

/**
 * Delivery activities (sendWhatsApp*, sendInstagram*, sendWebChat*): rate limits and transient
 * provider errors retry; these do not (the workflow handles each: template switch, circuit wait,
 * deferral, or a recorded failure). Spread it into `nonRetryableErrorTypes`.
 */
export const DELIVERY_NON_RETRYABLE = freeze([
  F.ProviderPermanent,
  F.ProviderAuth,
  F.ChannelNotFound,
  F.ChannelDeleted,
  F.TemplateNotFound,
  F.TemplateNotApproved,
  F.TemplateVariables,
  F.ProviderReengagement,
  F.ProviderSpamLimited,
  F.ChannelCircuitOpen,
  F.NotImplemented,
]);

/** LLM reply activities: a rejected request, a missing agent or a spent budget is not retried. */
export const LLM_NON_RETRYABLE = freeze([F.LlmConfig, F.AgentNotFound, F.LlmBudgetExceeded]);

/** Lead extraction: a rejected request or a missing agent is not retried. */
export const EXTRACTION_NON_RETRYABLE = freeze([F.LlmConfig, F.AgentNotFound]);

/** On-demand media download (fetchMediaWorkflow). */
export const MEDIA_NON_RETRYABLE = freeze([F.MediaTooLarge, F.MediaInvalidId, F.ChannelNotFound, F.ChannelDeleted, F.ProviderAuth, F.ProviderPermanent]);

/**
 * Failures that make a send wait for the channel's circuit breaker to close (and resume first in
 * the next run): the breaker is open, or the provider refused the channel's token.
 */
export const CIRCUIT_WAIT_FAILURES = freeze([F.ChannelCircuitOpen, F.ProviderAuth]);

/** Whether `type` is in `list` (a failure type from the wire is a plain string, maybe absent). */
export function failureIn(list: readonly FailureTypeName[], type: string | null | undefined): boolean {
  return type != null && (list as readonly string[]).includes(type);
}

function freeze<const T extends readonly FailureTypeName[]>(list: T): T {
  return Object.freeze(list);
}
