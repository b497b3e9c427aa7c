/**
 * Parley's shared vocabulary: every closed set of words that crosses a boundary (HTTP API,
 * database column, Temporal payload). Each set is one `as const` array (for zod's `z.enum`, for
 * drizzle's `text(..., { enum })`, for loops) and the union type derived from it.
 *
 * Workflow-safe: this folder imports nothing but itself, so workflow code, activities, services,
 * the API and db/schema.ts can all use it. Changing a word here changes stored data and
 * recorded histories: add words, never rename them.
 */

/** Where a lead talks to us. Also the platform of a channel account. */
export const CHANNELS = ['whatsapp', 'instagram', 'webchat'] as const;
export type Channel = (typeof CHANNELS)[number];

/**
 * Who answers the lead. `ai`: the AI replies and sequences run; `human`: an agent has the
 * conversation; `paused`: nobody answers automatically; `closed`: over until reopened.
 */
export const LEAD_MODES = ['ai', 'human', 'paused', 'closed'] as const;
export type LeadMode = (typeof LEAD_MODES)[number];

/** A request to change a lead's mode (see workflows/lead/policy/handoff.ts for the transitions). */
export const MODE_REQUESTS = ['handoff', 'handback', 'pause', 'resume', 'close', 'reopen'] as const;
export type ModeRequest = (typeof MODE_REQUESTS)[number];

/**
 * Who asked for a mode change: a person (the API, or the Temporal Web UI's updates) always may;
 * a keyword or the LLM tool is subject to the cooldown.
 */
export const MODE_REQUEST_SOURCES = ['api', 'keyword', 'llm_tool', 'web_ui'] as const;
export type ModeRequestSource = (typeof MODE_REQUEST_SOURCES)[number];

/** Every inbound message type Meta documents for WhatsApp, normalized (Instagram and web chat map onto it). */
export const INBOUND_TYPES = [
  'text',
  'image',
  'audio',
  'video',
  'document',
  'sticker',
  'location',
  'contacts',
  'interactive',
  'button',
  'reaction',
  'order',
  'system',
  'request_welcome',
  'unsupported',
] as const;
export type InboundType = (typeof INBOUND_TYPES)[number];

/** Events that stop a follow-up sequence (a sequence lists the ones it stops on). */
export const STOP_CONDITIONS = ['lead_replied', 'stage_changed', 'handed_off'] as const;
export type StopCondition = (typeof STOP_CONDITIONS)[number];

/** What one sequence step sends: an approved template, an AI-written message, fixed text, or a rich message (contract/rich.ts). */
export const SEQUENCE_STEP_KINDS = ['template', 'ai', 'text', 'rich'] as const;
export type SequenceStepKind = (typeof SEQUENCE_STEP_KINDS)[number];

/** Meta's template categories. */
export const TEMPLATE_CATEGORIES = ['marketing', 'utility', 'authentication'] as const;
export type TemplateCategory = (typeof TEMPLATE_CATEGORIES)[number];

/** What a parked operation (dead letter or deferral) was doing: the LLM step, a send, or a database write. */
export const PARKED_KINDS = ['reply', 'send', 'database'] as const;
export type ParkedKind = (typeof PARKED_KINDS)[number];

/** A dead letter's life: open until an admin replays or discards it. */
export const DEAD_LETTER_STATUSES = ['open', 'replaying', 'replayed', 'discarded'] as const;
export type DeadLetterStatus = (typeof DEAD_LETTER_STATUSES)[number];

/** Why an LLM call was made (llm_calls.purpose); `follow_up`: a follow-up the schedule_follow_up tool set. */
export const LLM_PURPOSES = ['reply', 'bump_up', 'sequence_step', 'extraction', 'summary', 'follow_up'] as const;
export type LlmPurpose = (typeof LLM_PURPOSES)[number];
/** The LLM purposes of an outbound message the lead workflow asks the AI to write. */
export const OUTBOUND_LLM_PURPOSES = ['reply', 'bump_up', 'sequence_step', 'follow_up'] as const satisfies readonly LlmPurpose[];
export type OutboundLlmPurpose = (typeof OUTBOUND_LLM_PURPOSES)[number];

/**
 * What an agent with knowledge bases does when retrieval finds nothing relevant for the lead's
 * question: `say_unknown` says it does not know (no guessing), `offer_human` says so and offers a
 * person, `answer_anyway` answers from its system prompt as if it had no knowledge base.
 */
export const KNOWLEDGE_FALLBACKS = ['say_unknown', 'offer_human', 'answer_anyway'] as const;
export type KnowledgeFallback = (typeof KNOWLEDGE_FALLBACKS)[number];

/** A channel's circuit breaker: `open` stops every send of the channel until an admin closes it. */
export const CIRCUIT_STATES = ['closed', 'open'] as const;
export type CircuitState = (typeof CIRCUIT_STATES)[number];

/** The forms under which a WhatsApp user is known (contact_identities.kind). */
export const CONTACT_IDENTITY_KINDS = ['phone', 'bsuid', 'parent_bsuid'] as const;
export type ContactIdentityKind = (typeof CONTACT_IDENTITY_KINDS)[number];

/**
 * What a tenant API key may do (api_keys.role; api/access.ts declares each route's roles):
 * `owner` everything, API keys included; `manager` everything but API keys; `agent` reads leads
 * and messages, sends manual messages, hands off and back, changes stages; `readonly` reads.
 */
export const API_KEY_ROLES = ['owner', 'manager', 'agent', 'readonly'] as const;
export type ApiKeyRole = (typeof API_KEY_ROLES)[number];
