/**
 * Response schemas of the accounts and operations routes (channels, credits, dead letters,
 * tenants, API keys, usage): the wire form of what services/channels.ts, credits.ts,
 * dead-letters.ts, tenants.ts, limits.ts and api-keys.ts answer. Secrets are never in them,
 * except the API key (`key`, `apiKey`) on the one answer that creates or rotates it.
 */
import { z } from 'zod';
import { API_KEY_ROLES, CIRCUIT_STATES, DEAD_LETTER_STATUSES, PARKED_KINDS } from '../../contract/vocabulary';
import { jsonObject, timestamp, uuid } from './common';

// ---------------------------------------------------------------------------------- channels

const circuitSchema = z
  .strictObject({
    state: z.enum(CIRCUIT_STATES).meta({ description: '`open`: every send of the channel waits (an auth or account error) until the circuit is closed (POST /v1/channels/{id}/circuit/close)' }),
    openedAt: timestamp.nullable(),
    reason: jsonObject.nullable().meta({ description: 'Why it opened: the Graph API error (`httpStatus`, `code`, `subcode`, `class`, `message`), never a token; null while closed' }),
  })
  .meta({ description: "The channel's circuit breaker" });

/** What every channel answers, whatever its platform (services/channels.ts `present`). */
const channelCommon = {
  id: uuid,
  phoneNumberId: z.string().meta({ description: "The platform's account id: the WhatsApp phone_number_id, the Instagram professional account id, or the web chat's widget key" }),
  displayPhoneNumber: z.string().nullable(),
  agentId: uuid.meta({ description: 'The agent that answers on this channel' }),
  hasAppSecret: z.boolean().meta({ description: 'An app secret of its own is set (it is never returned)' }),
  messagesPerSecond: z.number().int().nullable().meta({ description: 'Throughput limit; null = the deployment default' }),
  markRead: z.boolean().meta({ description: 'Inbound messages are marked read and the typing indicator shows while the AI writes' }),
  enabled: z.boolean().meta({ description: 'false: inbound is recorded, the AI does not reply and other sends wait until it is enabled again' }),
  circuit: circuitSchema,
  createdAt: timestamp,
};

/** A channel as answered, per platform; `extra` adds the fields of an answer built on it. */
function channelVariants<E extends Record<string, z.ZodType>>(extra: E) {
  return z.discriminatedUnion('platform', [
    z.strictObject({
      ...channelCommon,
      platform: z.literal('whatsapp'),
      wabaId: z.string().nullable().meta({ description: 'The WhatsApp Business Account id (template sync and template webhooks); null when not set' }),
      ...extra,
    }),
    z.strictObject({ ...channelCommon, platform: z.literal('instagram'), ...extra }),
    z.strictObject({
      ...channelCommon,
      platform: z.literal('webchat'),
      widgetKey: z.string().meta({ description: "The widget's public key (the same as phoneNumberId)" }),
      allowedOrigins: z.array(z.string()).nullable().meta({ description: 'Origins whose pages may use the widget; null = any' }),
      ...extra,
    }),
  ]);
}

export const channelSchema = channelVariants({}).meta({
  id: 'Channel',
  description: 'A channel account (WhatsApp number, Instagram account or web chat widget) with its circuit breaker. Its access token, app secret and verify token are never returned.',
});

export const circuitCloseSchema = channelVariants({
  alreadyClosed: z.boolean().meta({ description: 'true: the circuit was not open, nothing was signalled' }),
  message: z.string().optional().meta({ description: 'Only when alreadyClosed: "the circuit is already closed"' }),
  resumeWorkflowId: z
    .string()
    .nullable()
    .meta({ description: 'The workflow that signals the waiting sends (one per opening); null when the circuit was already closed, or when it could not be started (the waiting sends then resume on their next poll)' }),
}).meta({ id: 'AccountCircuitClose', description: 'The channel after closing its circuit breaker' });

// ----------------------------------------------------------------------------------- credits

export const creditBalanceSchema = z
  .strictObject({
    balance: z.number().int().meta({ description: 'Available credits (held reservations already taken out); never below zero' }),
    reserved: z.number().int().meta({ description: 'Credits held by replies in flight (captured on delivery or given back)' }),
    creditsPerReply: z.number().int().meta({ description: 'The price of one delivered reply' }),
  })
  .meta({ id: 'CreditBalance', description: "The tenant's credits" });

export const creditLedgerEntrySchema = z
  .strictObject({
    id: uuid,
    amount: z.number().int().meta({ description: 'Positive for a top-up, negative for a debit' }),
    kind: z.enum(['topup', 'debit', 'adjustment']),
    reference: z.string().meta({ description: 'Unique per tenant: the top-up reference, or `message:{outboundMessageId}` for a delivered reply' }),
    messageId: uuid.nullable().meta({ description: 'The delivered message a debit paid for' }),
    createdAt: timestamp,
  })
  .meta({ id: 'CreditLedgerEntry', description: 'One credit movement' });

// ------------------------------------------------------------------------------ dead letters

export const deadLetterSchema = z
  .strictObject({
    id: uuid,
    leadId: uuid,
    workflowId: z.string().meta({ description: "The lead workflow that parked it (replay and discard are updates to it)" }),
    kind: z.enum(PARKED_KINDS).meta({ description: '`send`: a delivery failed (its credit stays reserved, its outbound id is kept); `reply`: the LLM step failed' }),
    status: z.enum(DEAD_LETTER_STATUSES),
    error: jsonObject.meta({ description: 'The last failure: `type` (a failure type when it had one) and `message`' }),
    outboundMessageId: uuid.nullable().meta({ description: 'The message id a send goes out under (kept on replay)' }),
    operation: jsonObject.meta({ description: 'What runs again on replay: purpose, what to send, attempts so far' }),
    replays: z.number().int().meta({ description: 'How many replays failed again and reopened it' }),
    createdAt: timestamp,
    updatedAt: timestamp,
    resolvedAt: timestamp.nullable(),
  })
  .meta({ id: 'DeadLetter', description: 'An operation a lead workflow parked after its retries ran out, until it is replayed or discarded' });

// ----------------------------------------------------------------------------------- tenants

export const tenantSchema = z
  .strictObject({
    id: uuid,
    name: z.string(),
    suspended: z.boolean().meta({ description: 'true: webhooks are still recorded, but the bot sends nothing and the API keys answer 403 `tenant_suspended`' }),
    suspendedAt: timestamp.nullable(),
    creditBalance: z.number().int(),
    creditsPerReply: z.number().int(),
    createdAt: timestamp,
  })
  .meta({ id: 'Tenant', description: 'A tenant as the platform admin sees it' });

const tenantLimits = {
  apiRequestsPerMinute: z.number().int().meta({ description: 'Tenant API requests per minute that apply now (its own value or the deployment default)' }),
  llmDailyBudgetMicros: z.number().int().meta({ description: 'LLM spend allowed per UTC day in micro-USD that applies now; 0 = no LLM calls' }),
  overrides: z
    .strictObject({ apiRequestsPerMinute: z.number().int().nullable(), llmDailyBudgetMicros: z.number().int().nullable() })
    .meta({ description: "The tenant's own values; null = the deployment default applies" }),
};

export const tenantWithLimitsSchema = z.strictObject({ ...tenantSchema.shape, ...tenantLimits }).meta({ id: 'AccountTenantWithLimits', description: 'A tenant with its limits' });

export const tenantCreatedSchema = z
  .strictObject({
    id: uuid,
    name: z.string(),
    apiKey: z.string().meta({ description: "The tenant's first API key (role owner): shown this once, only its hash is stored" }),
    apiKeyId: uuid,
    creditsPerReply: z.number().int(),
  })
  .meta({ id: 'AccountTenantCreated', description: 'A new tenant with its first (owner) API key' });

export const topUpSchema = z
  .strictObject({
    applied: z.boolean().meta({ description: 'false: this reference was already applied, nothing changed' }),
    balance: z.number().int().meta({ description: 'The available balance after it' }),
    reference: z.string(),
  })
  .meta({ id: 'AccountTopUp', description: 'A credit top-up (idempotent by reference)' });

export const usageSchema = z
  .strictObject({
    llm: z.strictObject({
      day: z.string().meta({ description: 'The UTC day the spend is counted for (YYYY-MM-DD)' }),
      spentMicros: z.number().int(),
      budgetMicros: z.number().int(),
      remainingMicros: z.number().int(),
      exceeded: z.boolean().meta({ description: 'true: no LLM calls until the next UTC day' }),
    }),
    api: z.strictObject({ perMinute: z.number().int().meta({ description: 'Tenant API requests allowed per minute' }) }),
  })
  .meta({ id: 'Usage', description: "The tenant's consumption against its limits: today's LLM spend (micro-USD) and the API rate" });

// ---------------------------------------------------------------------------------- API keys

const apiKeyShape = {
  id: uuid,
  name: z.string(),
  role: z.enum(API_KEY_ROLES),
  prefix: z.string().meta({ description: "The key's first characters, to tell keys apart" }),
  createdAt: timestamp,
  lastUsedAt: timestamp.nullable().meta({ description: 'Last successful authentication, written at most once a minute' }),
  expiresAt: timestamp.nullable().meta({ description: 'A rotated key works until then (its grace period); null = no end' }),
  replacedBy: uuid.nullable().meta({ description: 'The key that replaced it by a rotation' }),
  revokedAt: timestamp.nullable(),
};

export const apiKeySchema = z.strictObject(apiKeyShape).meta({ id: 'ApiKey', description: 'A tenant API key, without its secret' });

const secretKey = z.string().meta({ description: 'The key itself: shown this once (only its SHA-256 is stored); send it as `Authorization: Bearer <key>`' });

export const apiKeyCreatedSchema = z.strictObject({ ...apiKeyShape, key: secretKey }).meta({ id: 'ApiKeyCreated', description: 'A new API key with its secret, shown this once' });

export const apiKeyRotatedSchema = z
  .strictObject({ ...apiKeyShape, key: secretKey, previous: apiKeySchema.meta({ description: 'The old key: it works until its `expiresAt`' }) })
  .meta({ id: 'AccountApiKeyRotated', description: 'The new key (same name and role) with its secret, shown this once, and the key it replaces' });

export const auditEntrySchema = z
  .strictObject({
    id: uuid,
    at: timestamp,
    actor: z.strictObject({ keyId: uuid.nullable(), role: z.enum(API_KEY_ROLES).nullable() }).meta({ description: 'The API key that made the change (kept when the key is revoked)' }),
    action: z.string().meta({ description: '`METHOD /route/pattern`, e.g. `PATCH /v1/channels/:id`' }),
    target: z.record(z.string(), z.string()).meta({ description: "The route's ids by their names (`{ id }`, `{ agentId }`, …; `{}` for a create; `[erased]` after a contact's erasure)" }),
    status: z.number().int().meta({ description: "The answer's status code" }),
    request: z.unknown().meta({ description: 'The request body as the route validated it, secrets as "[redacted]"; null when none' }),
    before: z.unknown().meta({ description: "The setting's value before the change, where the route records it; else null" }),
    after: z.unknown().meta({ description: 'The value after the change (or the answer), secrets as "[redacted]"; null when none' }),
  })
  .meta({ id: 'AuditEntry', description: 'One change a tenant API key made' });
