/**
 * The plain-JSON shapes shared by the API, services, activities and the lead workflow: what an
 * inbound message is, what goes out, what is parked, what a sequence is. Everything here crosses
 * a Temporal boundary or a database column: plain JSON only, times as ISO strings.
 *
 * Workflow-safe: imports only the contract's vocabulary. Zod schemas for these shapes live at the
 * edges that parse them (api/, workflows/lead/policy/*), typed against these interfaces.
 */
import type { RichMessage } from './rich';
import type { Channel, InboundType, OutboundLlmPurpose, ParkedKind, SequenceStepKind, StopCondition } from './vocabulary';

export interface InboundMedia {
  id: string;
  mimeType?: string;
  sha256?: string;
  caption?: string;
  filename?: string;
  voice?: boolean;
  animated?: boolean;
}

/**
 * The forms under which a WhatsApp user is known (phone number and/or business-scoped user
 * id, BSUID); `previous` only on an identity change (Meta's user_changed_number /
 * user_changed_user_id system messages). Plain JSON.
 */
export interface ContactIdentity {
  phone?: string;
  bsuid?: string;
  parentBsuid?: string;
  username?: string;
  previous?: { phone?: string; bsuid?: string; parentBsuid?: string };
}

/** One user message from any channel, as the workflow sees it. */
export interface InboundMessage {
  /** The provider's id (WhatsApp wamid): the dedup key everywhere. */
  providerMessageId: string;
  channel: Channel;
  /** WhatsApp wa_id or BSUID (the lead's first-seen form), Instagram IGSID, or the web chat contact id derived from the visitor token (`wv_…`, never the token). */
  contactId: string;
  contactName?: string;
  /** WhatsApp: every form of the sender this message carried (phone, BSUID, username). */
  identity?: ContactIdentity;
  /** ISO time the provider says the user sent it. */
  sentAt: string;
  type: InboundType;
  /** A readable rendering for transcripts and the LLM ("[image] This is the damaged box"). */
  text: string;
  media?: InboundMedia;
  /** Provider id of the message this one replies to (WhatsApp `context.id`). */
  replyToProviderId?: string;
  /** The type-specific fields, kept as the provider sent them (small). */
  details?: Record<string, unknown>;
  /** Workflow time the lead workflow received it (set by the workflow). */
  receivedAt?: string;
  /**
   * The API request that delivered it (set by temporal/client.ts signalInbound): its X-Request-Id
   * and W3C traceparent, so the turn answering it logs that request id and joins its trace
   * (workers/tracing.ts). Ids only, no personal data.
   */
  trace?: MessageTrace;
}

export interface MessageTrace {
  requestId?: string;
  traceparent?: string;
}

/** A provider status the workflow must act on (a failed delivery), from the status webhook. */
export interface DeliveryStatus {
  outboundMessageId?: string;
  providerMessageId: string;
  status: 'failed';
  errors: { code: number; title?: string; message?: string }[];
  timestamp: string;
}

/** An approved message template: name, language code (e.g. `en_US`) and body variables in order. */
export interface TemplateRef {
  name: string;
  language: string;
  /** Body parameters, in order ({{1}}, {{2}}, ... or the named ones in the order they appear). */
  variables?: string[];
  /** The header's parameter: text for a TEXT header with {{1}}, media (link or id) for IMAGE/VIDEO/DOCUMENT, a location. */
  header?: TemplateHeaderParameter;
  /** Button parameters by button index: a dynamic URL suffix, a COPY_CODE or OTP code, a QUICK_REPLY payload. */
  buttons?: { index: number; value: string }[];
}

export interface TemplateHeaderParameter {
  text?: string;
  media?: { link?: string; id?: string; filename?: string };
  location?: { latitude: number; longitude: number; name?: string; address?: string };
}

/** What one outbound message is: free-form text (given or from the LLM) or a template. */
export type OutboundWhat =
  | { kind: 'text'; text: string }
  | { kind: 'ai'; instruction?: string; maxWords?: number; avoidRepeats?: boolean; llmPurpose?: OutboundLlmPurpose; allowHandoff?: boolean }
  | { kind: 'template'; template: TemplateRef }
  /** Buttons, a list, media, a location, a reaction (contract/rich.ts): degraded to the lead's channel when it is sent. */
  | { kind: 'rich'; message: RichMessage };

/** A manual message or template to send, queued by an update and sent by the main loop. */
export interface OutboundRequest {
  requestId: string;
  kind: 'text' | 'template' | 'rich';
  text?: string;
  template?: TemplateRef;
  /** The message of a `rich` request. */
  message?: RichMessage;
  /** Who asked: a human agent (manual reply) or the admin API. */
  source: 'manual' | 'api';
}

export interface OutboundResult {
  requestId: string;
  /**
   * parked: a dead letter (`deadLetterId`) or deferred; it may still go out later. queued: a
   * manual message accepted while the channel's circuit breaker is open; it goes out (once)
   * when the circuit closes.
   */
  status: 'sent' | 'failed' | 'refused' | 'parked' | 'queued';
  deadLetterId?: string;
  outboundMessageId?: string;
  providerMessageId?: string;
  reason?: string;
}

/**
 * An outbound operation parked by the workflow: as a dead letter (an admin replays or
 * discards it) or deferred (the workflow retries it at `retryAt`).
 */
export interface ParkedOperation {
  /** The dead letter's id (also its database row id), or the deferral's id. */
  id: string;
  /**
   * 'reply': the LLM step failed (nothing was reserved); 'send': delivery failed (the credit
   * stays reserved, the outbound id is kept); 'database': the database refused a write for good
   * (database_rejected; `purpose` names the write; it cannot be replayed, only discarded).
   */
  kind: ParkedKind;
  purpose: string;
  /** What to send: AI instructions, fixed text or a template (absent for 'database'). */
  what?: OutboundWhat;
  /** For 'send': the message's text or template as planned, the id it goes out under, the credit reference. */
  send?: {
    plan: { action: 'free_form' } | { action: 'template'; template: TemplateRef };
    text: string;
    outboundMessageId: string;
    reference: string;
    humanAgent?: boolean;
    /** A rich message as the channel sends it (already degraded); `text` is its rendering. Absent: a text. */
    rich?: RichMessage;
    /** The knowledge-base passages an AI text was written from: recorded on the message (activities/llm/knowledge-context.ts KnowledgeUsed). */
    knowledge?: { chunkId: string; documentId: string; title: string; score: number }[];
  };
  fallbackTemplate?: TemplateRef;
  /** Who the sent message counts as (a human's manual reply or the bot). */
  byBot: boolean;
  parkedAt: string;
  retryAt?: string;
  /** `type` is an ApplicationFailure type (contract/failures.ts), when the failure had one. */
  error: { type?: string; message: string };
  attempts: number;
}

/** A parked operation as the workflow state keeps it (a run before ids-only kept the whole operation). */
export interface ParkedRef {
  id: string;
  kind: ParkedKind;
  parkedAt: string;
}

// ------------------------------------------------------------------------------ sequences

/** Quiet hours in the lead's time zone. */
export interface SendWindow {
  /** Local week days a slot may start on: 0 = Sunday … 6 = Saturday. Unique, at least one. */
  days: number[];
  /** Local `HH:MM`, inclusive. */
  start: string;
  /** Local `HH:MM`, exclusive; before `start` means the slot ends the next day. */
  end: string;
}

export interface SequenceStep {
  /** Delay after the previous step was sent (after enrolment for the first step). */
  delayMs: number;
  kind: SequenceStepKind;
  /** Required for `template`; the fallback outside the 24-hour window for `ai` and `text`. */
  template?: TemplateRef;
  /** The message of a `text` step. */
  text?: string;
  /** The message of a `rich` step (buttons, list, media, location, …); degraded to the lead's channel at send time. */
  message?: RichMessage;
  /** What the AI should write for an `ai` step. */
  aiInstruction?: string;
  /** Quiet hours in the lead's time zone; none means any time. */
  sendWindow?: SendWindow;
}

export interface SequenceDef {
  id: string;
  /** The sequence's version this definition is (absent: enrolled before versions were kept). */
  version?: number;
  name: string;
  steps: SequenceStep[];
  stopOn: StopCondition[];
}

export type SequenceStatus = 'active' | 'paused' | 'stopped' | 'completed';

/**
 * Where a lead is in its sequence. `active` has `dueAt`; `paused` has `remainingMs`; `stopped`
 * has `stopReason`; when `completed`, `stepIndex` equals the number of steps.
 */
export interface SequenceCursor {
  sequenceId: string;
  stepIndex: number;
  status: SequenceStatus;
  /** When the current step is due; present while active. */
  dueAt?: string;
  /** The delay left when paused; present while paused. */
  remainingMs?: number;
  /** Why it stopped; present while stopped. */
  stopReason?: string;
  enrolledAt: string;
  updatedAt: string;
}

/** The lead workflow's settings (LEAD_*): the worker reads them from its configuration and hands them to every run (ensureLead). */
export interface LeadWorkflowSettings {
  /** Continue-as-new once history reaches this many events (or when the server suggests it). */
  eventBudget: number;
  /** How many recent inbound message ids are remembered for dedup. */
  dedupWindow: number;
  /** Burst debounce: inbound messages closer than gapMs become one turn (at most maxWaitMs). */
  debounce?: { gapMs: number; maxWaitMs: number };
  /** Minimum gap between two outbound messages to this lead (+ random jitter up to jitterMs). */
  pacing?: { minGapMs: number; jitterMs: number };
  /** An automatic handoff (keyword, LLM tool) is refused this long after a handback. */
  autoHandoffCooldownMs?: number;
  /** Short AI nudges when the lead goes quiet after a bot message (WhatsApp by default). */
  bumpUp?: { idleMs: number; maxPerConversation: number; maxWords: number; channels: Channel[] };
  /** Run lead extraction once the conversation has been quiet this long (0 = never). */
  extractionIdleMs?: number;
  /** Tries per send before it is parked as a dead letter (default 10). */
  deliveryMaxAttempts?: number;
  /**
   * Background deadlines (sequence steps, bump-ups, extraction, deferred sends) wake the lead at
   * an offset of its own in [0, this) after they fall due, so a wave of leads due together wakes
   * spread out (workflows/lead/policy/spread.ts); absent or 0 = exactly on time.
   */
  backgroundSpreadMs?: number;
}

/** An agent's opt-out settings (workflows/lead/policy/opt-out.ts uses them); every field optional. */
export interface AgentOptOutSettings {
  /** Languages whose default phrases apply (default: all of en, hi, es, pt). */
  languages?: string[];
  /** Extra phrases per language code (any code; its phrases apply whatever `languages` says). */
  keywords?: Record<string, { stop?: string[]; start?: string[] }>;
  /** Sent once when a contact opts out (a free-form text: the contact just wrote, the window is open). */
  confirmationText?: string;
  /** Whether the AI still answers a suppressed contact who writes again (default true: Meta allows replies in the window). */
  replyAfterOptOut?: boolean;
}
