/**
 * The lead conversation workflow's contract: input, state, messages. Imported by the
 * workflow, the API's Temporal wrapper and the tests, so a rename breaks the build.
 * Everything here crosses a Temporal boundary: plain JSON only, times as ISO strings.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { FailureType } from '../../contract/failures';
import type {
  LeadWorkflowSettings,
  DeliveryStatus,
  InboundMessage,
  OutboundRequest,
  OutboundResult,
  ParkedOperation,
  ParkedRef,
  SequenceCursor,
  SequenceDef,
} from '../../contract/messages';
import type { Channel, LeadMode, ModeRequest } from '../../contract/vocabulary';
import { LeadMessage } from '../../contract/workflow-names';
import type { RecentMessage } from './policy/transcript';
import type { CancelFollowUpInput, CancelFollowUpResult } from './policy/follow-ups';
import type { FollowUp } from '../../contract/agent-tools';

// The shared vocabulary and message shapes live in contract/; re-exported so the workflow and
// its tests keep importing them from here.
export type { CancelFollowUpInput, CancelFollowUpResult } from './policy/follow-ups';
export type { Channel, InboundType, LeadMode, ModeRequest, ModeRequestSource } from '../../contract/vocabulary';
export type {
  LeadWorkflowSettings,
  ContactIdentity,
  DeliveryStatus,
  InboundMedia,
  InboundMessage,
  OutboundRequest,
  OutboundResult,
  OutboundWhat,
  ParkedOperation,
  ParkedRef,
  TemplateRef,
} from '../../contract/messages';
export { LEAD_WORKFLOW_TYPE } from '../../contract/workflow-names';

/**
 * ApplicationFailure type of a database error another try cannot fix (SQLSTATE class 22 data
 * exception, 23 integrity constraint): activities throw it non-retryable, the workflow parks it.
 */
export const DATABASE_REJECTED = FailureType.DatabaseRejected;
/** ApplicationFailure type of any other database error (connection, timeout): retried. */
export const DATABASE_UNAVAILABLE = FailureType.DatabaseUnavailable;

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
  backgroundSpreadMs: 60_000,
};

export interface LeadWorkflowInput {
  tenantId: string;
  channelAccountId: string;
  channel: Channel;
  contactId: string;
  contactName?: string;
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
  /**
   * The conversation's last few messages (policy/transcript: at most RECENT_MESSAGES, each cut to
   * RECENT_MESSAGE_CHARS), only for the Web UI's current details; the transcript is in PostgreSQL.
   */
  recentMessages?: RecentMessage[];
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
  /**
   * Whether the contact is on the tenant's suppression list, as this workflow last learned it (its
   * own STOP/START, the run start, the check before a step, bump-up or template). The database is
   * the authority: it is asked again before every send that needs consent.
   */
  optedOut?: boolean;
  /** Follow-ups the schedule_follow_up tool set (earliest first, at most MAX_PENDING_FOLLOW_UPS); absent: none. */
  followUps?: FollowUp[];
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

export const inboundSignal = defineSignal<[InboundMessage]>(LeadMessage.inbound);
export const stateQuery = defineQuery<LeadStateSnapshot>(LeadMessage.state);

/** Sequence admin actions, validated synchronously (a rejected update carries the reason). */
export type SequenceCommand =
  | { action: 'pause' }
  | { action: 'resume' }
  /** `sequence`: restart on this definition (the same sequence id, a newer version); absent = the lead's own. */
  | { action: 'reset'; sequence?: SequenceDef }
  | { action: 'skip' }
  | { action: 'enroll'; sequence: SequenceDef };
export const sequenceUpdate = defineUpdate<SequenceCursor, [SequenceCommand]>(LeadMessage.sequence);
export const setStageUpdate = defineUpdate<{ stage: string; sequenceStopped: boolean }, [{ stage: string }]>(LeadMessage.setStage);
export const setModeUpdate = defineUpdate<{ mode: LeadMode }, [{ request: ModeRequest }]>(LeadMessage.setMode);
/** Run a dead letter again (same outbound id: a send that already went out is not repeated). */
export const replayDeadLetterUpdate = defineUpdate<OutboundResult, [{ deadLetterId: string }]>(LeadMessage.replayDeadLetter);
/** Drop a dead letter: its held credit is released. */
export const discardDeadLetterUpdate = defineUpdate<{ discarded: true }, [{ deadLetterId: string }]>(LeadMessage.discardDeadLetter);
/** The channel's circuit breaker was closed: waiting sends go ahead. */
export const circuitClosedSignal = defineSignal<[]>(LeadMessage.circuitClosed);
/** A delivery failed after the provider accepted it (status webhook). */
export const deliveryStatusSignal = defineSignal<[DeliveryStatus]>(LeadMessage.deliveryStatus);
/** Run the lead's extraction now instead of after the quiet period (the loop picks it up next). */
export const extractNowUpdate = defineUpdate<{ extractionDueAt: string }, []>(LeadMessage.extractNow);
export const sendMessageUpdate = defineUpdate<OutboundResult, [Omit<OutboundRequest, 'source'> & { source?: OutboundRequest['source'] }]>(LeadMessage.sendMessage);


// ---- updates for people in the Temporal Web UI ("Send an update" with a small JSON body) ----
// Each takes one optional JSON object (the UI sends no argument when the input is empty), is
// checked by policy/web-ui.ts in its validator, runs the same code as the API's updates and is
// recorded as the Web UI's doing (source `web_ui` in the lead's events).

/** `{}` or `{"reason": "..."}`: the lead goes to a person (mode human); the AI stops answering. */
export interface HandOffInput {
  reason?: string;
}
/** `{"text": "..."}`: a manual message from the team, sent through the same delivery path as the API's. */
export interface ManualMessageInput {
  text: string;
}
export const handOffUpdate = defineUpdate<{ mode: LeadMode }, [HandOffInput?]>(LeadMessage.handOff);
export const handBackUpdate = defineUpdate<{ mode: LeadMode }, [Record<string, never>?]>(LeadMessage.handBack);
export const pauseSequenceUpdate = defineUpdate<SequenceCursor, [Record<string, never>?]>(LeadMessage.pauseSequence);
export const resumeSequenceUpdate = defineUpdate<SequenceCursor, [Record<string, never>?]>(LeadMessage.resumeSequence);
export const sendManualMessageUpdate = defineUpdate<OutboundResult, [ManualMessageInput]>(LeadMessage.sendManualMessage);

/**
 * `{"followUpId": "..."}` or `{"all": true}`: cancel a follow-up the model scheduled (schedule_follow_up)
 * before it goes out. For the Web UI (source `web_ui`) and the API (its wrapper adds `"source": "api"`);
 * checked by policy/follow-ups.ts in the validator, a follow-up that is not waiting is refused there.
 */
export const cancelFollowUpUpdate = defineUpdate<CancelFollowUpResult, [CancelFollowUpInput]>(LeadMessage.cancelFollowUp);
