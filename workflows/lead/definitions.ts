/**
 * The lead conversation workflow's contract: input, state, messages. Imported by the
 * workflow, the API's Temporal wrapper and the tests, so a rename breaks the build.
 * Everything here crosses a Temporal boundary: plain JSON only, times as ISO strings.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ModeRequest } from './policy/handoff';
import type { SequenceCursor, SequenceDef } from './policy/sequence';
import type { TemplateRef } from './policy/window';

export const LEAD_WORKFLOW_TYPE = 'leadConversation';

/**
 * ApplicationFailure type of a database error another try cannot fix (SQLSTATE class 22 data
 * exception, 23 integrity constraint): activities throw it non-retryable, the workflow parks it.
 */
export const DATABASE_REJECTED = 'database_rejected';
/** ApplicationFailure type of any other database error (connection, timeout): retried. */
export const DATABASE_UNAVAILABLE = 'database_unavailable';

export type Channel = 'whatsapp' | 'instagram' | 'webchat';
export type LeadMode = 'ai' | 'human' | 'paused' | 'closed';

/** Every inbound type Meta documents for WhatsApp, normalized. */
export type InboundType =
  | 'text'
  | 'image'
  | 'audio'
  | 'video'
  | 'document'
  | 'sticker'
  | 'location'
  | 'contacts'
  | 'interactive'
  | 'button'
  | 'reaction'
  | 'order'
  | 'system'
  | 'request_welcome'
  | 'unsupported';

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
}

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
}

/**
 * What a run uses until its `ensureLead` activity returns the worker's settings (the inbound
 * handler may run first). The same values as config's LEAD_* defaults (a unit test checks);
 * no pacing: the channel's own default applies.
 */
export const DEFAULT_LEAD_SETTINGS: Readonly<LeadWorkflowSettings> = {
  eventBudget: 2000,
  dedupWindow: 500,
  debounce: { gapMs: 3000, maxWaitMs: 15_000 },
  autoHandoffCooldownMs: 30 * 60 * 1000,
  bumpUp: { idleMs: 4 * 60 * 60 * 1000, maxPerConversation: 2, maxWords: 40, channels: ['whatsapp'] },
  extractionIdleMs: 10 * 60 * 1000,
  deliveryMaxAttempts: 10,
};

export interface LeadWorkflowInput {
  tenantId: string;
  channelAccountId: string;
  channel: Channel;
  contactId: string;
  contactName?: string;
  /**
   * Deprecated: runs started before the worker resolved lead settings carry them here. Every
   * run now takes its settings from `ensureLead` (the worker's LEAD_* config) at its start.
   */
  settings?: LeadWorkflowSettings;
  /** Present only when the workflow continues as new. */
  carried?: LeadCarriedState;
}

/** Everything that survives continue-as-new. Plain JSON. */
export interface LeadCarriedState {
  leadId?: string;
  stage: string;
  mode: LeadMode;
  blocked: boolean;
  lastInboundAt?: string;
  lastOutboundAt?: string;
  /** Most recent inbound provider ids, oldest first, bounded by settings.dedupWindow. */
  seenInboundIds: string[];
  /** Signals received but not yet handled when the run continued as new. */
  inbox: InboundMessage[];
  counters: LeadCounters;
  /** Conversation-engine state (runs started before the engine existed have none of these). */
  timeZone?: string;
  /** Whether our last outbound came from the bot (AI or sequence), not a human. */
  lastOutboundByBot?: boolean;
  lastHandbackAt?: string;
  /** Phrases that hand the lead to a human; the agent's, refreshed each run. */
  handoffKeywords?: string[];
  sequence?: { def: SequenceDef; cursor: SequenceCursor };
  /**
   * Inbound messages written to the database early because the buffer reached its bound
   * (policy/bounds inboxAdmission): how many, and the latest provider time among them. The next
   * turn answers them together with whatever is still buffered.
   */
  inboxRecorded?: { count: number; lastSentAt: string };
  /** Workflow time the first and last buffered inbound message arrived (burst debounce). */
  inboxFirstAt?: string;
  inboxLastAt?: string;
  /** Outbound requests from updates (manual messages, templates) waiting for the loop. */
  outbox?: OutboundRequest[];
  bumpsSent?: number;
  /** When the last bump-up was attempted (sent or not): the next one waits a full idle period. */
  lastBumpAt?: string;
  /** The bot's last few messages, so a bump-up never repeats one. */
  recentBotMessages?: string[];
  /** When lead extraction is due (set by new inbound messages, cleared when it ran). */
  extractionDueAt?: string;
  score?: number;
  /**
   * Delivery (patch delivery-v2): operations parked after their retries ran out. Only their ids
   * (the newest MAX_PARKED_IN_STATE): the operations themselves live in the dead_letters table.
   */
  deadLetters?: ParkedRef[];
  /** Sends waiting for a later attempt (131049: at least a day). */
  deferred?: ParkedOperation[];
  /** Set while sends wait for the channel's circuit breaker to close. */
  circuitWaitSince?: string;
  /** When the provider said the window is closed (131047); a newer inbound message reopens it. */
  providerWindowClosedAt?: string;
  /** Provider ids of sends whose failure status was handled (bounded). */
  failedDeliveries?: string[];
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
  kind: 'reply' | 'send' | 'database';
  purpose: string;
  /** What to send: AI instructions, fixed text or a template (absent for 'database'). */
  what?: OutboundWhat;
  /** For 'send': the message's text or template as planned, the id it goes out under, the credit reference. */
  send?: { plan: { action: 'free_form' } | { action: 'template'; template: TemplateRef }; text: string; outboundMessageId: string; reference: string; humanAgent?: boolean };
  fallbackTemplate?: TemplateRef;
  /** Who the sent message counts as (a human's manual reply or the bot). */
  byBot: boolean;
  parkedAt: string;
  retryAt?: string;
  error: { type?: string; message: string };
  attempts: number;
}

/** A parked operation as the workflow state keeps it (a run before ids-only kept the whole operation). */
export interface ParkedRef {
  id: string;
  kind: ParkedOperation['kind'];
  parkedAt: string;
}

/** What one outbound message is: free-form text (given or from the LLM) or a template. */
export type OutboundWhat =
  | { kind: 'text'; text: string }
  | { kind: 'ai'; instruction?: string; maxWords?: number; avoidRepeats?: boolean; llmPurpose?: 'reply' | 'bump_up' | 'sequence_step'; allowHandoff?: boolean }
  | { kind: 'template'; template: TemplateRef };

/** A provider status the workflow must act on (a failed delivery), from the status webhook. */
export interface DeliveryStatus {
  outboundMessageId?: string;
  providerMessageId: string;
  status: 'failed';
  errors: { code: number; title?: string; message?: string }[];
  timestamp: string;
}

/** A manual message or template to send, queued by an update and sent by the main loop. */
export interface OutboundRequest {
  requestId: string;
  kind: 'text' | 'template';
  text?: string;
  template?: TemplateRef;
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

export interface LeadCounters {
  inbound: number;
  duplicates: number;
  turns: number;
  replies: number;
  failedReplies: number;
  blockedTurns: number;
  runs: number;
}

export interface LeadStateSnapshot extends Omit<LeadCarriedState, 'inbox'> {
  workflowId: string;
  tenantId: string;
  channelAccountId: string;
  channel: Channel;
  contactId: string;
  pendingInbound: number;
  historyLength: number;
}

export const inboundSignal = defineSignal<[InboundMessage]>('inbound');
export const stateQuery = defineQuery<LeadStateSnapshot>('state');

/** Sequence admin actions, validated synchronously (a rejected update carries the reason). */
export type SequenceCommand =
  | { action: 'pause' }
  | { action: 'resume' }
  | { action: 'reset' }
  | { action: 'skip' }
  | { action: 'enroll'; sequence: SequenceDef };
export const sequenceUpdate = defineUpdate<SequenceCursor, [SequenceCommand]>('sequence');
export const setStageUpdate = defineUpdate<{ stage: string; sequenceStopped: boolean }, [{ stage: string }]>('setStage');
export const setModeUpdate = defineUpdate<{ mode: LeadMode }, [{ request: ModeRequest }]>('setMode');
/** Run a dead letter again (same outbound id: a send that already went out is not repeated). */
export const replayDeadLetterUpdate = defineUpdate<OutboundResult, [{ deadLetterId: string }]>('replayDeadLetter');
/** Drop a dead letter: its held credit is released. */
export const discardDeadLetterUpdate = defineUpdate<{ discarded: true }, [{ deadLetterId: string }]>('discardDeadLetter');
/** The channel's circuit breaker was closed: waiting sends go ahead. */
export const circuitClosedSignal = defineSignal<[]>('circuitClosed');
/** A delivery failed after the provider accepted it (status webhook). */
export const deliveryStatusSignal = defineSignal<[DeliveryStatus]>('deliveryStatus');
export const sendMessageUpdate = defineUpdate<OutboundResult, [Omit<OutboundRequest, 'source'> & { source?: OutboundRequest['source'] }]>('sendMessage');

export function leadWorkflowId(channelAccountId: string, contactId: string): string {
  return `lead:${channelAccountId}:${contactId}`;
}
