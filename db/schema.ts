import { sql } from 'drizzle-orm';
import {
  bigserial,
  boolean,
  check,
  customType,
  index,
  integer,
  jsonb,
  pgTable,
  real,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
import type { AgentOptOutSettings, SequenceStep, TemplateRef } from '../contract/messages';
import type { AgentToolName } from '../contract/agent-tools';
import { MEDIA_KINDS } from '../contract/media-types';
import {
  API_KEY_ROLES,
  CHANNELS,
  CIRCUIT_STATES,
  CONTACT_IDENTITY_KINDS,
  KNOWLEDGE_FALLBACKS,
  DEAD_LETTER_STATUSES,
  LEAD_MODES,
  LLM_PURPOSES,
  TEMPLATE_CATEGORIES,
  type StopCondition,
} from '../contract/vocabulary';

const id = () => uuid('id').primaryKey().defaultRandom();
/** PostgreSQL bytea: a Buffer in, a Buffer (postgres.js) or Uint8Array (PGlite) out. */
const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => (Buffer.isBuffer(v) ? v : Buffer.from(v.buffer, v.byteOffset, v.byteLength)),
});
const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow();
const updatedAt = () => timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow();
const ts = (name: string) => timestamp(name, { withTimezone: true, mode: 'string' });
/** PostgreSQL tsvector (full-text search); written and read only in SQL. */
const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });

export const tenants = pgTable(
  'tenants',
  {
    id: id(),
    name: text('name').notNull(),
    /** Available credits; reservations are already taken out. Never below zero. */
    creditBalance: integer('credit_balance').notNull().default(0),
    creditsPerReply: integer('credits_per_reply').notNull().default(1),
    /** Admin/tenant API requests allowed per minute (null = the deployment default). */
    apiRequestsPerMinute: integer('api_requests_per_minute'),
    /** LLM spend allowed per UTC day in micro-USD (null = the deployment default; 0 = no LLM). */
    llmDailyBudgetMicros: integer('llm_daily_budget_micros'),
    /** Set by the platform admin: webhooks still recorded, no bot sends, API keys answer 403. Null = active. */
    suspendedAt: ts('suspended_at'),
    createdAt: createdAt(),
  },
  (t) => [
    check('tenants_credit_balance_non_negative', sql`${t.creditBalance} >= 0`),
    check('tenants_credits_per_reply_non_negative', sql`${t.creditsPerReply} >= 0`),
  ],
);

export const apiKeys = pgTable(
  'api_keys',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /** SHA-256 of the key; the key itself is shown once and never stored. */
    keyHash: text('key_hash').notNull(),
    /** First characters, to tell keys apart in a UI. */
    prefix: text('prefix').notNull(),
    /** What the key is for, as its creator named it. */
    name: text('name').notNull().default('default'),
    /** What the key may do (api/access.ts); keys from before roles are owners. */
    role: text('role', { enum: API_KEY_ROLES }).notNull().default('owner'),
    createdAt: createdAt(),
    /** Last successful authentication, written at most once a minute per key. */
    lastUsedAt: ts('last_used_at'),
    /** A rotated key stays valid until then (the grace period); null = no end. */
    expiresAt: ts('expires_at'),
    /** The key that replaced this one by a rotation. */
    replacedBy: uuid('replaced_by'),
    revokedAt: ts('revoked_at'),
  },
  (t) => [uniqueIndex('api_keys_key_hash_uq').on(t.keyHash), index('api_keys_tenant_idx').on(t.tenantId)],
);

/** Changes made through the tenant API: who (the key), what, when, and before/after where a setting changed. Secrets are never stored. */
export const auditLog = pgTable(
  'audit_log',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /** The API key that made the change (kept when the key is revoked). */
    actorKeyId: uuid('actor_key_id'),
    actorRole: text('actor_role'),
    /** `METHOD /route/pattern`, e.g. `PATCH /v1/channels/:id`. */
    action: text('action').notNull(),
    /** The route's parameters (ids), e.g. { id: <channelId> }. */
    target: jsonb('target').$type<Record<string, string>>(),
    /** The answer's status code. */
    status: integer('status').notNull(),
    /** The request body with secrets redacted. */
    request: jsonb('request'),
    before: jsonb('before'),
    after: jsonb('after'),
    createdAt: createdAt(),
  },
  (t) => [index('audit_log_tenant_created_idx').on(t.tenantId, t.createdAt, t.id)],
);

export const agents = pgTable(
  'agents',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    systemPrompt: text('system_prompt').notNull(),
    model: text('model').notNull(),
    fallbackModel: text('fallback_model'),
    temperature: real('temperature').notNull().default(0.4),
    /** Stage name → text added to the system prompt while the lead is in that stage. */
    stagePrompts: jsonb('stage_prompts').$type<Record<string, string>>().notNull().default({}),
    /** Agent-defined extraction fields: name → description. */
    extractionFields: jsonb('extraction_fields').$type<Record<string, string>>().notNull().default({}),
    /** Phrases that hand the lead to a human (keyword rule). */
    handoffKeywords: jsonb('handoff_keywords').$type<string[]>().notNull().default([]),
    /** The current version (agent_versions holds every version's fields, this row the current ones). */
    version: integer('version').notNull().default(1),
    /** Opt-out settings (languages, extra phrases, confirmation text, replies after opt-out); null = the defaults. */
    optOut: jsonb('opt_out').$type<AgentOptOutSettings>(),
    /** Outbound webhooks: the score (0–100) at which a lead is qualified (lead.qualified when a lead's score reaches it); null = none. */
    qualifiedScore: integer('qualified_score'),
    /** Knowledge bases the agent may retrieve from (the tenant's own; a deleted one is removed from the list). */
    knowledgeBaseIds: jsonb('knowledge_base_ids').$type<string[]>().notNull().default([]),
    /** The tools the LLM may call (contract/agent-tools.ts); null = the default (handoff_to_human). */
    tools: jsonb('tools').$type<AgentToolName[]>(),
    /** The template a scheduled follow-up sends when the 24-hour window is closed then; null = such a follow-up is refused. */
    followUpTemplate: jsonb('follow_up_template').$type<TemplateRef>(),
    /** What a reply does when its knowledge bases have nothing relevant (contract/vocabulary.ts KNOWLEDGE_FALLBACKS). */
    knowledgeFallback: text('knowledge_fallback', { enum: KNOWLEDGE_FALLBACKS }).notNull().default('say_unknown'),
    createdAt: createdAt(),
  },
  (t) => [index('agents_tenant_idx').on(t.tenantId)],
);

/** Every version of an agent's settings, 1.. (a change or a restore adds one); deleted with the agent. */
export const agentVersions = pgTable(
  'agent_versions',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    agentId: uuid('agent_id')
      .notNull()
      .references(() => agents.id, { onDelete: 'cascade' }),
    version: integer('version').notNull(),
    name: text('name').notNull(),
    systemPrompt: text('system_prompt').notNull(),
    model: text('model').notNull(),
    fallbackModel: text('fallback_model'),
    temperature: real('temperature').notNull(),
    stagePrompts: jsonb('stage_prompts').$type<Record<string, string>>().notNull(),
    extractionFields: jsonb('extraction_fields').$type<Record<string, string>>().notNull(),
    handoffKeywords: jsonb('handoff_keywords').$type<string[]>().notNull(),
    optOut: jsonb('opt_out').$type<AgentOptOutSettings>(),
    /** Outbound webhooks: the score (0–100) at which a lead is qualified (lead.qualified when a lead's score reaches it); null = none. */
    qualifiedScore: integer('qualified_score'),
    knowledgeBaseIds: jsonb('knowledge_base_ids').$type<string[]>().notNull().default([]),
    tools: jsonb('tools').$type<AgentToolName[]>(),
    followUpTemplate: jsonb('follow_up_template').$type<TemplateRef>(),
    knowledgeFallback: text('knowledge_fallback', { enum: KNOWLEDGE_FALLBACKS }).notNull().default('say_unknown'),
    /** Set when this version was made by restoring an older one. */
    restoredFrom: integer('restored_from'),
    /** The API key that made it (null: created before versions were kept, or not through the API). */
    createdBy: uuid('created_by'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('agent_versions_agent_version_uq').on(t.agentId, t.version)],
);

export const channelAccounts = pgTable(
  'channel_accounts',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    platform: text('platform', { enum: CHANNELS }).notNull(),
    /** WhatsApp phone_number_id (or the Instagram account id). */
    phoneNumberId: text('phone_number_id').notNull(),
    displayPhoneNumber: text('display_phone_number'),
    /** AES-256-GCM, see lib/crypto.ts. */
    accessTokenEnc: text('access_token_enc').notNull(),
    /** Overrides META_APP_SECRET for this account's webhooks; encrypted. */
    appSecretEnc: text('app_secret_enc'),
    /** SHA-256 of the webhook verify token. */
    verifyTokenHash: text('verify_token_hash').notNull(),
    /** The agent that answers; null only on a deleted channel whose agent was deleted after it (check constraint). */
    agentId: uuid('agent_id').references(() => agents.id),
    /** Business-number throughput limit in messages per second (null = the deployment default). */
    messagesPerSecond: integer('messages_per_second'),
    /** Circuit breaker: 'closed' sends flow; 'open' sends wait (auth or account errors). */
    circuitState: text('circuit_state', { enum: CIRCUIT_STATES }).notNull().default('closed'),
    circuitOpenedAt: ts('circuit_opened_at'),
    /** Why it opened: the Graph API error (code, class, message), never a token. */
    circuitReason: jsonb('circuit_reason'),
    /** Mark inbound messages read and show the typing indicator while the LLM works. */
    markRead: boolean('mark_read').notNull().default(true),
    /** false: inbound is still recorded, but the AI does not reply and every other send waits (as for an open circuit) until it is enabled again. */
    enabled: boolean('enabled').notNull().default(true),
    /** Web chat: origins allowed to call the widget's routes (null = any origin). */
    allowedOrigins: jsonb('allowed_origins').$type<string[]>(),
    /** WhatsApp: the WhatsApp Business Account id (template sync; template webhooks' entry.id). */
    wabaId: text('waba_id'),
    /**
     * Deleted (DELETE /v1/channels/:id): no webhook, widget, send or tenant API call reaches it;
     * its secrets are wiped, its leads closed, every lead, message and event kept. Null = live.
     */
    deletedAt: ts('deleted_at'),
    createdAt: createdAt(),
  },
  (t) => [
    /** One live channel per account id: a deleted channel's number can be connected again. */
    uniqueIndex('channel_accounts_platform_phone_uq').on(t.platform, t.phoneNumberId).where(sql`${t.deletedAt} is null`),
    index('channel_accounts_waba_idx').on(t.wabaId),
    index('channel_accounts_tenant_idx').on(t.tenantId),
    index('channel_accounts_verify_token_idx').on(t.verifyTokenHash),
    check('channel_accounts_live_has_agent', sql`${t.deletedAt} is not null or ${t.agentId} is not null`),
  ],
);

export const leads = pgTable(
  'leads',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    channelAccountId: uuid('channel_account_id')
      .notNull()
      .references(() => channelAccounts.id),
    channel: text('channel', { enum: CHANNELS }).notNull(),
    contactId: text('contact_id').notNull(),
    name: text('name'),
    /** WhatsApp: the user's phone number (wa_id) and business-scoped user id, as last seen (either may be unknown). */
    phone: text('phone'),
    bsuid: text('bsuid'),
    parentBsuid: text('parent_bsuid'),
    /** WhatsApp username (display only: users change it). */
    username: text('username'),
    stage: text('stage').notNull().default('New'),
    mode: text('mode', { enum: LEAD_MODES }).notNull().default('ai'),
    /** True while the tenant has no credit for this lead's next reply. */
    blocked: boolean('blocked').notNull().default(false),
    workflowId: text('workflow_id').notNull(),
    lastInboundAt: ts('last_inbound_at'),
    lastOutboundAt: ts('last_outbound_at'),
    /** IANA time zone for send windows; defaults from the phone number's country when known. */
    timeZone: text('time_zone'),
    /** Merged extracted attributes (latest extraction wins per field). */
    attributes: jsonb('attributes').$type<Record<string, unknown>>().notNull().default({}),
    /** A short running summary of the conversation, used as LLM context. */
    summary: text('summary'),
    score: integer('score'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('leads_channel_contact_uq').on(t.channelAccountId, t.contactId),
    index('leads_tenant_created_idx').on(t.tenantId, t.createdAt, t.id),
  ],
);

/**
 * Every form under which one contact reached one channel account (WhatsApp phone number,
 * BSUID, parent BSUID) → the contact id its lead workflow was started with (the first form
 * seen). Insert-only: a form never moves to another contact, so it is safe to cache.
 */
export const contactIdentities = pgTable(
  'contact_identities',
  {
    channelAccountId: uuid('channel_account_id')
      .notNull()
      .references(() => channelAccounts.id, { onDelete: 'cascade' }),
    identity: text('identity').notNull(),
    kind: text('kind', { enum: CONTACT_IDENTITY_KINDS }).notNull(),
    contactId: text('contact_id').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('contact_identities_account_identity_uq').on(t.channelAccountId, t.identity),
    /** Every form of one contact (the suppression check before a step, bump-up or template). */
    index('contact_identities_account_contact_idx').on(t.channelAccountId, t.contactId),
  ],
);

export const messages = pgTable(
  'messages',
  {
    /** Outbound: a deterministic id chosen by the workflow before the provider call. */
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    leadId: uuid('lead_id')
      .notNull()
      .references(() => leads.id, { onDelete: 'cascade' }),
    direction: text('direction', { enum: ['inbound', 'outbound'] }).notNull(),
    /** Insertion order: the transcript's order, also within one batch insert. */
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    /** WhatsApp wamid; unique, so a retried webhook or send can never record twice. */
    providerMessageId: text('provider_message_id'),
    type: text('type').notNull().default('text'),
    body: text('body').notNull().default(''),
    /** inbound: received; outbound: pending → sent → delivered → read, or failed. */
    status: text('status').notNull(),
    error: jsonb('error'),
    details: jsonb('details'),
    /** When the provider says the user sent it (inbound) or when we sent it (outbound). */
    sentAt: ts('sent_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('messages_provider_message_id_uq').on(t.providerMessageId),
    index('messages_lead_created_idx').on(t.leadId, t.createdAt),
    index('messages_lead_seq_idx').on(t.leadId, t.seq),
    /** Web chat streams read what changed lately per conversation. */
    index('messages_lead_updated_idx').on(t.leadId, t.updatedAt),
    /** GET /v1/messages: a tenant's messages across leads, newest first. */
    index('messages_tenant_created_idx').on(t.tenantId, t.createdAt, t.id),
  ],
);

/**
 * The tenant's suppression list: contacts that opted out (a STOP phrase, or the API). Tenant-wide:
 * no sequence step, bump-up or template goes to any lead of the tenant whose identity forms
 * (contact id, phone, BSUID, parent BSUID: services/contact-identities.ts) meet `forms`.
 */
export const suppressions = pgTable(
  'suppressions',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /** The contact as the suppression names it (the lead's contact id, or the API's normalized value). */
    contact: text('contact').notNull(),
    /** Every identity form of the contact known when it was suppressed (contact included). */
    forms: text('forms').array().notNull(),
    /** 'keyword' (the contact wrote a STOP phrase) or 'api'. */
    source: text('source', { enum: ['keyword', 'api'] }).notNull(),
    keyword: text('keyword'),
    note: text('note'),
    /** The lead whose message opted out (keyword), if any. */
    leadId: uuid('lead_id').references(() => leads.id, { onDelete: 'set null' }),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('suppressions_tenant_contact_uq').on(t.tenantId, t.contact),
    index('suppressions_tenant_created_idx').on(t.tenantId, t.createdAt, t.id),
    index('suppressions_forms_idx').using('gin', t.forms),
  ],
);

export const leadEvents = pgTable(
  'lead_events',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    leadId: uuid('lead_id')
      .notNull()
      .references(() => leads.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    data: jsonb('data'),
    /** Set by activities so a retried activity records an event once. */
    dedupKey: text('dedup_key'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('lead_events_dedup_key_uq').on(t.dedupKey),
    index('lead_events_lead_idx').on(t.leadId, t.createdAt),
    /** GET /v1/analytics/summary: a tenant's events in a time range. */
    index('lead_events_tenant_created_idx').on(t.tenantId, t.createdAt),
  ],
);

export const creditLedger = pgTable(
  'credit_ledger',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /** Positive for top-ups, negative for spend. */
    amount: integer('amount').notNull(),
    kind: text('kind', { enum: ['topup', 'debit', 'adjustment'] }).notNull(),
    /** Unique per tenant: the top-up reference, or `message:{outboundMessageId}` for a reply. */
    reference: text('reference').notNull(),
    messageId: uuid('message_id'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('credit_ledger_tenant_reference_uq').on(t.tenantId, t.reference), index('credit_ledger_tenant_idx').on(t.tenantId, t.createdAt)],
);

/** Credits held for a reply in flight: taken from the balance at reserve, captured into the ledger on delivery or released. */
export const creditReservations = pgTable(
  'credit_reservations',
  {
    reference: text('reference').primaryKey(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    amount: integer('amount').notNull(),
    status: text('status', { enum: ['held', 'captured', 'released'] }).notNull(),
    messageId: uuid('message_id'),
    /** The workflow that holds it (the lead's); the stale-reservation sweep asks Temporal whether it still runs. */
    workflowId: text('workflow_id'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check('credit_reservations_amount_non_negative', sql`${t.amount} >= 0`),
    index('credit_reservations_tenant_idx').on(t.tenantId),
    index('credit_reservations_held_idx').on(t.createdAt).where(sql`${t.status} = 'held'`),
  ],
);

export const templates = pgTable(
  'templates',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    channelAccountId: uuid('channel_account_id').references(() => channelAccounts.id),
    name: text('name').notNull(),
    language: text('language').notNull(),
    category: text('category', { enum: TEMPLATE_CATEGORIES }).notNull(),
    body: text('body').notNull(),
    /** The send gate: true only while the status is APPROVED (a local template: set by the tenant). */
    approved: boolean('approved').notNull().default(false),
    /** 'local' (POST /v1/templates) or 'meta' (synced from the WhatsApp Business Account; Meta owns its status). */
    source: text('source', { enum: ['local', 'meta'] }).notNull().default('local'),
    /** Meta's status as sent (APPROVED, PENDING, REJECTED, PAUSED, DISABLED, ...; DELETED when a sync no longer lists it); null for a local template. */
    status: text('status'),
    /** Meta's template id and the account it came from (webhooks match on these). */
    metaTemplateId: text('meta_template_id'),
    wabaId: text('waba_id'),
    /** Header, body, footer and buttons (services/template-components.ts); null for a local body-only template. */
    components: jsonb('components'),
    /** Meta's quality score (GREEN, YELLOW, RED, UNKNOWN). */
    qualityScore: text('quality_score'),
    /** Why Meta last changed it (rejection or pause reason). */
    statusReason: text('status_reason'),
    /** The last template webhook applied per field (status, quality, category): its values and Meta's time (`at`). */
    events: jsonb('events').$type<Record<string, Record<string, unknown>>>(),
    syncedAt: ts('synced_at'),
    updatedAt: ts('updated_at'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('templates_tenant_name_lang_uq').on(t.tenantId, t.name, t.language),
    index('templates_waba_idx').on(t.wabaId, t.metaTemplateId),
  ],
);

/** A tenant's sales pipeline; a default one (New, Qualified, Nurture, Converted, Lost) comes with every tenant. */
export const pipelines = pgTable(
  'pipelines',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    isDefault: boolean('is_default').notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('pipelines_tenant_name_uq').on(t.tenantId, t.name)],
);

export const stages = pgTable(
  'stages',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    pipelineId: uuid('pipeline_id')
      .notNull()
      .references(() => pipelines.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    position: integer('position').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('stages_pipeline_name_uq').on(t.pipelineId, t.name)],
);

/** Follow-up sequences: steps (delay, kind, template, send window) and stop conditions, as JSON. */
export const sequences = pgTable(
  'sequences',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    steps: jsonb('steps').$type<SequenceStep[]>().notNull(),
    stopOn: jsonb('stop_on').$type<StopCondition[]>().notNull(),
    /** The current version; a lead keeps the definition (and version) it was enrolled with. */
    version: integer('version').notNull().default(1),
    /** Archived: no new enrolments (manual or by a rule); still readable, enrolled leads go on. */
    archivedAt: ts('archived_at'),
    createdAt: createdAt(),
  },
  (t) => [index('sequences_tenant_idx').on(t.tenantId)],
);

/** Every version of a sequence's definition, 1..; the sequence id stays the same across versions. */
export const sequenceVersions = pgTable(
  'sequence_versions',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    sequenceId: uuid('sequence_id')
      .notNull()
      .references(() => sequences.id, { onDelete: 'cascade' }),
    version: integer('version').notNull(),
    name: text('name').notNull(),
    steps: jsonb('steps').$type<SequenceStep[]>().notNull(),
    stopOn: jsonb('stop_on').$type<StopCondition[]>().notNull(),
    /** The API key that made it (null: created before versions were kept). */
    createdBy: uuid('created_by'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('sequence_versions_sequence_version_uq').on(t.sequenceId, t.version)],
);

/** Auto-enrolment: a new lead of this agent (or channel) enrols in this sequence. */
export const enrollmentRules = pgTable(
  'enrollment_rules',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    sequenceId: uuid('sequence_id')
      .notNull()
      .references(() => sequences.id, { onDelete: 'cascade' }),
    agentId: uuid('agent_id').references(() => agents.id, { onDelete: 'cascade' }),
    channelAccountId: uuid('channel_account_id').references(() => channelAccounts.id, { onDelete: 'cascade' }),
    trigger: text('trigger', { enum: ['new_lead'] }).notNull().default('new_lead'),
    createdAt: createdAt(),
  },
  (t) => [index('enrollment_rules_tenant_idx').on(t.tenantId)],
);

/** Versioned structured lead data; a new version only when the data changed. */
export const extractions = pgTable(
  'extractions',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    leadId: uuid('lead_id')
      .notNull()
      .references(() => leads.id, { onDelete: 'cascade' }),
    version: integer('version').notNull(),
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
    score: integer('score'),
    model: text('model'),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('extractions_lead_version_uq').on(t.leadId, t.version), index('extractions_tenant_created_idx').on(t.tenantId, t.createdAt)],
);

/** One row per LLM call: tokens and estimated cost, for spend reports and limits. */
export const llmCalls = pgTable(
  'llm_calls',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    /** Null once the lead is erased (data rights): the cost still counts against the tenant's budget. */
    leadId: uuid('lead_id').references(() => leads.id, { onDelete: 'set null' }),
    purpose: text('purpose', { enum: LLM_PURPOSES }).notNull(),
    model: text('model').notNull(),
    promptTokens: integer('prompt_tokens').notNull().default(0),
    completionTokens: integer('completion_tokens').notNull().default(0),
    /** Estimated cost in micro-USD. */
    costMicros: integer('cost_micros').notNull().default(0),
    /**
     * The agent and agent version whose settings made the call (replies, sequence AI steps,
     * bump-ups, extraction): which version answered a turn. No foreign key: the record stays
     * when the agent is deleted.
     */
    agentId: uuid('agent_id'),
    agentVersion: integer('agent_version'),
    createdAt: createdAt(),
  },
  (t) => [index('llm_calls_tenant_created_idx').on(t.tenantId, t.createdAt)],
);

/**
 * An operation whose retries ran out, parked by the lead workflow instead of failing it.
 * Replay is a Temporal update to the lead workflow; the outbound id is kept, so a replayed
 * send can still go out only once.
 */
export const deadLetters = pgTable(
  'dead_letters',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    leadId: uuid('lead_id')
      .notNull()
      .references(() => leads.id, { onDelete: 'cascade' }),
    workflowId: text('workflow_id').notNull(),
    /** What was parked: 'send' (an outbound message), 'reply' (an LLM turn), ... */
    kind: text('kind').notNull(),
    /** What the workflow needs to run it again (plain JSON). */
    operation: jsonb('operation').notNull(),
    /** The last failure: type, message, provider error details. */
    error: jsonb('error').notNull(),
    outboundMessageId: uuid('outbound_message_id'),
    /** open → replaying → replayed, or open → discarded. */
    status: text('status', { enum: DEAD_LETTER_STATUSES }).notNull().default('open'),
    replays: integer('replays').notNull().default(0),
    resolvedAt: ts('resolved_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('dead_letters_tenant_status_idx').on(t.tenantId, t.status, t.createdAt), index('dead_letters_lead_idx').on(t.leadId)],
);

/**
 * Token buckets shared by every worker and API process (rate limits by key: a business
 * number's throughput, a user pair rate, a tenant's API budget). One row per key.
 */
export const rateBuckets = pgTable('rate_buckets', {
  key: text('key').primaryKey(),
  /** Tokens left at updated_at (may be negative: a reservation in the future). */
  tokens: real('tokens').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true, mode: 'string' }).notNull().defaultNow(),
});

/** Media downloaded on demand from the provider (Graph API media endpoint), cached. */
export const mediaObjects = pgTable(
  'media_objects',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    channelAccountId: uuid('channel_account_id')
      .notNull()
      .references(() => channelAccounts.id, { onDelete: 'cascade' }),
    providerMediaId: text('provider_media_id').notNull(),
    mimeType: text('mime_type'),
    sha256: text('sha256'),
    sizeBytes: integer('size_bytes').notNull(),
    /** The bytes (bounded by MEDIA_MAX_BYTES); read in slices (`substring`), never whole. */
    data: bytea('data'),
    /** Objects stored before `data` existed: the bytes as base64 text, moved to `data` on first read. */
    dataBase64: text('data_base64'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('media_objects_channel_media_uq').on(t.channelAccountId, t.providerMediaId),
    check('media_objects_has_bytes', sql`${t.data} is not null or ${t.dataBase64} is not null`),
  ],
);

/**
 * The tenant's media library (issue 11): files uploaded through `POST /v1/media` to send later
 * (by Meta media id on WhatsApp, by a signed Parley url elsewhere). The bytes live here (bytea,
 * read in slices), bounded per file by MEDIA_LIBRARY_MAX_BYTES and per tenant by
 * MEDIA_LIBRARY_MAX_ITEMS / MEDIA_LIBRARY_MAX_TENANT_BYTES. One row per content (sha256) and
 * tenant: a re-upload of the same bytes answers the stored row.
 */
export const mediaLibrary = pgTable(
  'media_library',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    kind: text('kind', { enum: MEDIA_KINDS }).notNull(),
    mimeType: text('mime_type').notNull(),
    filename: text('filename'),
    sizeBytes: integer('size_bytes').notNull(),
    /** Hex SHA-256 of the bytes: the dedup key within the tenant, and the ETag. */
    sha256: text('sha256').notNull(),
    data: bytea('data').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('media_library_tenant_sha256_uq').on(t.tenantId, t.sha256), index('media_library_tenant_created_idx').on(t.tenantId, t.createdAt, t.id)],
);

/**
 * A library file uploaded to Meta for one WhatsApp channel (`POST /{phone-number-id}/media`):
 * the media id Meta answered and when the library stops using it (Meta keeps uploads 30 days;
 * MEDIA_META_ID_TTL_HOURS is shorter). One row per (file, channel); the first writer wins.
 */
export const mediaChannelUploads = pgTable(
  'media_channel_uploads',
  {
    mediaId: uuid('media_id')
      .notNull()
      .references(() => mediaLibrary.id, { onDelete: 'cascade' }),
    channelAccountId: uuid('channel_account_id')
      .notNull()
      .references(() => channelAccounts.id, { onDelete: 'cascade' }),
    metaMediaId: text('meta_media_id').notNull(),
    uploadedAt: ts('uploaded_at').notNull().defaultNow(),
    expiresAt: ts('expires_at').notNull(),
  },
  (t) => [uniqueIndex('media_channel_uploads_media_channel_uq').on(t.mediaId, t.channelAccountId)],
);

/**
 * An agent's assets (issue 11): media library files the agent may send by name (the `send_media`
 * tool picks one by `name`; `description` tells the model when it fits). At most
 * AGENT_ASSET_LIMITS.perAgent per agent, names unique per agent (case-insensitive, checked by the
 * service under a per-agent lock; the index backs it exactly). Deleted with the agent or tenant; the
 * library file cannot be deleted while an asset names it (`media_id` without ON DELETE: the API
 * answers 409 `media_in_use` naming the agents).
 */
export const agentAssets = pgTable(
  'agent_assets',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    agentId: uuid('agent_id')
      .notNull()
      .references(() => agents.id, { onDelete: 'cascade' }),
    mediaId: uuid('media_id')
      .notNull()
      .references(() => mediaLibrary.id),
    name: text('name').notNull(),
    description: text('description').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('agent_assets_agent_name_uq').on(t.agentId, t.name), index('agent_assets_media_idx').on(t.mediaId), index('agent_assets_tenant_agent_idx').on(t.tenantId, t.agentId, t.createdAt)],
);

/**
 * Outbound webhooks (issue 12): a tenant's endpoints. The signing secret (`whsec_` + base64) is
 * encrypted at rest like channel tokens (SecretBox, bound to the row); shown once, at creation
 * and rotation. `events` lists the event types the endpoint receives. Disabled (disabled_at)
 * by the tenant (PATCH) or after WEBHOOK_DISABLE_AFTER_FAILURES consecutive failed deliveries.
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    url: text('url').notNull(),
    description: text('description'),
    events: text('events').array().notNull(),
    secretEnc: text('secret_enc').notNull(),
    disabledAt: ts('disabled_at'),
    /** 'manual' (PATCH enabled: false) or 'failures' (too many consecutive failed deliveries). */
    disabledReason: text('disabled_reason'),
    consecutiveFailures: integer('consecutive_failures').notNull().default(0),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('webhook_endpoints_tenant_idx').on(t.tenantId, t.createdAt)],
);

/**
 * The outbox and the delivery record in one: one row per (endpoint, event), inserted in the
 * same transaction as the fact it reports. The worker's relay starts a delivery workflow for
 * each row not yet dispatched (`dispatched_at` null; workflow id from the row id and `generation`).
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    endpointId: uuid('endpoint_id')
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    /** The event's id: the `webhook-id` header, the same for every endpoint and every attempt. */
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    /** The JSON body sent: `{ type, timestamp, data }`. */
    payload: jsonb('payload').notNull(),
    /** pending → delivering → succeeded | failed. */
    status: text('status').notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    lastStatus: integer('last_status'),
    /** At most 500 characters of the last answer's body, or the network error. */
    lastResponse: text('last_response'),
    lastAttemptAt: ts('last_attempt_at'),
    /** A manual retry starts a new workflow run: its id carries the generation. */
    generation: integer('generation').notNull().default(0),
    dispatchedAt: ts('dispatched_at'),
    completedAt: ts('completed_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('webhook_deliveries_endpoint_event_uq').on(t.endpointId, t.eventId),
    index('webhook_deliveries_endpoint_idx').on(t.endpointId, t.createdAt),
    index('webhook_deliveries_undispatched_idx').on(t.createdAt).where(sql`${t.dispatchedAt} is null`),
  ],
);

/**
 * Payload encryption (temporal/payload-codec.ts): one random 256-bit data key per lead workflow
 * id (tenant set) and one platform key per master key (tenant null, workflow id `*platform*:<master key id>`) for the other
 * workflows, wrapped by PARLEY_ENCRYPTION_KEY (lib/crypto.ts SecretBox, bound to the row id).
 * Erasing a contact destroys its leads' keys (wrapped key null, `destroyed_at` set): their
 * histories can no longer be decoded anywhere. A workflow id reused after that gets a new key.
 */
export const payloadKeys = pgTable(
  'payload_keys',
  {
    id: id(),
    /**
     * No foreign key on purpose: a key is created inside a workflow task or a webhook's signal,
     * and a foreign key would take a share lock on the tenant's row (which credit operations
     * hold FOR UPDATE), making the first payload of a lead wait on them.
     */
    tenantId: uuid('tenant_id'),
    workflowId: text('workflow_id').notNull(),
    /** The data key, base64, encrypted by the master key; null once destroyed. */
    wrappedKey: text('wrapped_key'),
    createdAt: createdAt(),
    destroyedAt: ts('destroyed_at'),
  },
  (t) => [
    uniqueIndex('payload_keys_live_workflow_uq').on(t.workflowId).where(sql`${t.destroyedAt} is null`),
    check('payload_keys_destroyed_ck', sql`(${t.wrappedKey} is null) = (${t.destroyedAt} is not null)`),
  ],
);

// ------------------------------------------------------------------------------ knowledge base

/** A tenant's knowledge base: documents an agent may retrieve passages from (services/knowledge.ts). */
export const knowledgeBases = pgTable(
  'knowledge_bases',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    name: text('name').notNull(),
    description: text('description'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('knowledge_bases_tenant_idx').on(t.tenantId, t.createdAt)],
);

/**
 * One document of a knowledge base and its ingestion state (`knowledgeDocumentWorkflow`):
 * pending → indexing → ready | failed. The content (text, uploaded file) is kept so a re-index
 * needs no upload; a url document keeps its url and is fetched by the workflow.
 */
export const kbDocuments = pgTable(
  'kb_documents',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    knowledgeBaseId: uuid('knowledge_base_id')
      .notNull()
      .references(() => knowledgeBases.id, { onDelete: 'cascade' }),
    title: text('title').notNull(),
    /** text | url | file */
    sourceKind: text('source_kind').notNull(),
    sourceUrl: text('source_url'),
    /** text/plain, text/markdown, text/html, application/pdf (a url document: from its answer). */
    mimeType: text('mime_type'),
    /** The uploaded bytes (text and file documents); null for a url document until fetched (then the fetched bytes). */
    content: bytea('content'),
    sizeBytes: integer('size_bytes'),
    /** sha256 hex of the content (a url document: of `url:` + its url): the same hash in one knowledge base is the same document. */
    contentHash: text('content_hash').notNull(),
    status: text('status').notNull().default('pending'),
    error: text('error'),
    chunkCount: integer('chunk_count').notNull().default(0),
    /** `model@dimensions` of the stored chunks' embeddings (null until indexed). */
    embeddingModel: text('embedding_model'),
    /** Each (re-)index run is a new generation: its workflow id carries it, and a superseded run stops. */
    generation: integer('generation').notNull().default(0),
    indexedAt: ts('indexed_at'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('kb_documents_kb_hash_uq').on(t.knowledgeBaseId, t.contentHash),
    index('kb_documents_kb_idx').on(t.knowledgeBaseId, t.createdAt),
    check('kb_documents_status_ck', sql`${t.status} in ('pending', 'indexing', 'ready', 'failed')`),
    check('kb_documents_source_kind_ck', sql`${t.sourceKind} in ('text', 'url', 'file')`),
  ],
);

/**
 * A passage of a document: its text, a full-text vector (generated, english configuration) and
 * its embedding (`real[]`, L2-normalized, on every database). Where pgvector exists, a start-up
 * step (db/vector.ts) adds an HNSW index over `embedding::vector(dims)`; elsewhere the cosine is
 * computed in SQL over the knowledge bases' chunks.
 */
export const kbChunks = pgTable(
  'kb_chunks',
  {
    id: id(),
    tenantId: uuid('tenant_id')
      .notNull()
      .references(() => tenants.id, { onDelete: 'cascade' }),
    knowledgeBaseId: uuid('knowledge_base_id')
      .notNull()
      .references(() => knowledgeBases.id, { onDelete: 'cascade' }),
    documentId: uuid('document_id')
      .notNull()
      .references(() => kbDocuments.id, { onDelete: 'cascade' }),
    ordinal: integer('ordinal').notNull(),
    text: text('text').notNull(),
    tsv: tsvector('tsv')
      .notNull()
      .generatedAlwaysAs(sql`to_tsvector('english'::regconfig, text)`),
    embedding: real('embedding').array(),
    embeddingModel: text('embedding_model'),
    embeddingDims: integer('embedding_dims'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('kb_chunks_document_ordinal_uq').on(t.documentId, t.ordinal),
    index('kb_chunks_kb_idx').on(t.knowledgeBaseId),
    index('kb_chunks_tsv_idx').using('gin', t.tsv),
  ],
);
