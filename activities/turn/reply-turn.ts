/**
 * The fast path of an ordinary reply turn: ONE activity that records the lead's messages,
 * reserves the credit, asks the LLM (read receipt and typing in parallel), paces, sends and
 * captures, where the workflow otherwise runs seven activities. It calls the same code as
 * those activities (the lead and credit services, the reply writer, the channel senders),
 * with the workflow's ids, so that when it throws the workflow can run the step-by-step
 * pipeline with the same batchId, credit reference and outboundMessageId and get what it
 * would have got had the fast path never run:
 *
 * - recordInbound is idempotent per batchId (the same `newIds` again);
 * - reserve is idempotent per reference (no second hold, none after a capture), and the
 *   reservation is never released on a throw (a released reference would answer the
 *   workflow's reserve with `ok: false`);
 * - a send is effectively once per outboundMessageId (graph-send.ts / webchat.ts), capture once
 *   per reference.
 *
 * A retried call with the same ids does not ask the LLM again once the outbound message is
 * recorded: it sends (or finds sent) the recorded text.
 */
import { recordTurn } from '../../lib/metrics';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../contract/failures';
import { z } from 'zod';
import type { DbTransaction } from '../../db/client';
import type { Logger } from '../../lib/logger';
import type { CreditService } from '../../services/credits';
import type { LeadService } from '../../services/leads';
import type { InboundMessage } from '../../contract/messages';
import type { Channel } from '../../contract/vocabulary';
import { activityCancellationSignal } from '../activity-context';
import { callerWorkflowId, reserveCreditOrRefuse } from '../credits';
import { databaseFailure } from '../database-errors';
import type { SendResult } from '../channels/graph-send';
import { fitInstagramText } from '../channels/instagram';
import { fitTextLength } from '../channels/text-limit';
import type { createWhatsAppActivities, SendTextInput } from '../channels/whatsapp';
import type { KnowledgeUsed } from '../llm/knowledge-context';
import type { ReplyWriter } from '../llm/reply';
import type { PendingFollowUp, ToolCallRecord, ToolEffects } from '../../contract/agent-tools';
import type { RichMessage } from '../../contract/rich';

/** The longest pacing wait the turn sleeps; a later `notBefore` is held for the careful path (the workflow asks for ~8 s at most). */
export const MAX_TURN_PACING_MS = 30_000;

/** `held` failure types the turn itself chooses (a send's own failure keeps its ApplicationFailure type). */
export const TURN_HELD = {
  /** `windowClosesAt` had passed when the text was ready to go. */
  windowClosed: 'window_closed',
  /** `notBefore` was further away than MAX_TURN_PACING_MS. */
  pacingTooLong: 'pacing_too_long',
  /** Too little of the activity's start-to-close time was left to send (and store the answer) before it. */
  deadline: 'turn_deadline',
} as const;

/** The `held` failure types the turn chooses itself; the workflow can `import type` it to match them. */
export type TurnHeldType = (typeof TURN_HELD)[keyof typeof TURN_HELD];

/** How often a running turn heartbeats (the workflow's heartbeat timeout is a few times this). */
export const HEARTBEAT_EVERY_MS = 5_000;

/** Whether Temporal cancelled this attempt (learned from a heartbeat's answer). */
function cancelled(): boolean {
  return activityCancellationSignal()?.aborted ?? false;
}

function heartbeat(): void {
  try {
    const context = Context.current();
    // a local activity has no heartbeat (the worker keeps its workflow task alive instead)
    if (!context.info.isLocal) context.heartbeat();
  } catch {
    /* outside an activity (a direct call in a test): nothing to tell */
  }
}

/** Room kept before the activity's deadline besides the send's own timeout and rate-limit sleep (database writes, clock skew). */
export const TURN_DEADLINE_MARGIN_MS = 5_000;

/**
 * When this activity attempt times out, at the latest (epoch ms): scheduled + start-to-close
 * (the start is later, so this is early), or the schedule-to-close end if sooner. Undefined
 * outside an activity.
 */
function activityDeadline(): number | undefined {
  let info;
  try {
    info = Context.current().info;
  } catch {
    return undefined;
  }
  const ends = [
    info.startToCloseTimeoutMs > 0 ? info.currentAttemptScheduledTimestampMs + info.startToCloseTimeoutMs : Infinity,
    info.scheduleToCloseTimeoutMs > 0 ? info.scheduledTimestampMs + info.scheduleToCloseTimeoutMs : Infinity,
  ];
  const end = Math.min(...ends);
  return Number.isFinite(end) ? end : undefined;
}

const inboundMessageSchema = z.looseObject({
  providerMessageId: z.string().min(1),
  channel: z.enum(['whatsapp', 'instagram', 'webchat']),
  contactId: z.string(),
  sentAt: z.string(),
  type: z.string(),
  text: z.string(),
});

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO time');

export const replyTurnInputSchema = z.object({
  tenantId: z.string().min(1),
  leadId: z.string().min(1),
  channelAccountId: z.string().min(1),
  channel: z.enum(['whatsapp', 'instagram', 'webchat']),
  contactId: z.string().min(1),
  messages: z.array(inboundMessageSchema),
  batchId: z.string().min(1),
  reply: z
    .object({
      requireNewOf: z.array(z.string()).optional(),
      outboundMessageId: z.string().min(1),
      reference: z.string().min(1),
      llm: z.object({
        stage: z.string().optional(),
        facts: z.array(z.string()).optional(),
        purpose: z.literal('reply').optional(),
        allowHandoff: z.boolean().optional(),
        instruction: z.string().optional(),
        followUps: z.array(z.object({ id: z.string().min(1), at: z.string(), note: z.string() })).optional(),
      }),
      windowClosesAt: isoTime.optional(),
      notBefore: isoTime.optional(),
      readReceipt: z.object({ providerMessageId: z.string().min(1) }).optional(),
    })
    .optional(),
});

export interface ReplyTurnInput {
  tenantId: string;
  leadId: string;
  channelAccountId: string;
  channel: Channel;
  contactId: string;
  /** Recorded first, always (idempotent per batchId). */
  messages: InboundMessage[];
  batchId: string;
  /** Absent: only record. */
  reply?: {
    /** Provider ids of lead-written messages: reply only if one of them is in newIds (absent: always reply). */
    requireNewOf?: string[];
    outboundMessageId: string;
    /** The credit reservation's reference (`reply:<outboundMessageId>`). */
    reference: string;
    /** `followUps`: the lead's waiting follow-ups (cancel_follow_up's choices). */
    llm: { stage?: string; facts?: string[]; purpose?: 'reply'; allowHandoff?: boolean; instruction?: string; followUps?: PendingFollowUp[] };
    /** End of the free-form window: when reached as the text is ready to go, nothing is sent (`held`, window_closed). */
    windowClosesAt?: string;
    /** Pacing: the send waits until then (at most MAX_TURN_PACING_MS away, else `held`). */
    notBefore?: string;
    /** WhatsApp: mark this message read and show typing while the LLM writes (best effort). */
    readReceipt?: { providerMessageId: string };
  };
}

/** The model's tool calls in this turn (README "Agent tools"): what the lead's events record and what the workflow does after the turn. */
export interface TurnTools {
  calls: ToolCallRecord[];
  effects?: ToolEffects;
}

export type ReplyTurnOutcome =
  /** No new lead-written message: nothing reserved. */
  | { outcome: 'not_needed' }
  /** The reservation was refused: the shape reserveCredit answers the workflow with. */
  | { outcome: 'no_credit'; balance: number; amount: number; suspended?: true; channelDisabled?: true }
  /** The model asked for a human: nothing sent, the credit still held (the workflow releases it). */
  | { outcome: 'handoff'; reason: string; tools?: TurnTools }
  /**
   * The model answered with send_buttons or send_list: nothing sent, the credit still held; the
   * workflow sends `message` through the rich path (degraded to the channel) with the same outboundMessageId.
   */
  | { outcome: 'rich'; message: RichMessage; tools?: TurnTools; knowledge?: KnowledgeUsed[] }
  /** Sent (now or by an earlier attempt) and the credit captured; `text` is what went out. */
  | { outcome: 'sent'; text: string; outboundMessageId: string; providerMessageId?: string; tools?: TurnTools }
  /**
   * Written but NOT sent; the credit stays reserved. The workflow delivers `text` carefully
   * with the same outboundMessageId. `failure.type`: window_closed, pacing_too_long,
   * turn_deadline, or the ApplicationFailure type of the send's failure (provider_*,
   * channel_circuit_open, database_*).
   */
  | { outcome: 'held'; text: string; failure: { type?: string; message: string }; tools?: TurnTools; knowledge?: KnowledgeUsed[] };

export interface ReplyTurnResult {
  newIds: string[];
  stored: number;
  reply?: ReplyTurnOutcome;
}

type SendText = (input: SendTextInput) => Promise<SendResult>;

export interface TurnDeps {
  leads: Pick<LeadService, 'recordInbound' | 'outbound'>;
  credits: Pick<CreditService, 'reserve' | 'capture' | 'release'>;
  /** One transaction for recording and reserving (services.transaction); absent: one each. */
  transaction?: <T>(fn: (tx: DbTransaction) => Promise<T>) => Promise<T>;
  /** The generateReply activity's core. */
  writeReply: ReplyWriter;
  /** The channel send activities' functions: effectively once per outboundMessageId. */
  send: Record<Channel, SendText>;
  markWhatsAppRead: ReturnType<typeof createWhatsAppActivities>['markWhatsAppRead'];
  log: Logger;
  /**
   * The longest a send may take (the Graph API timeout): a send starts only when that and
   * TURN_DEADLINE_MARGIN_MS fit before the activity's deadline, so a timed-out turn never
   * sends while the workflow's careful deliver does.
   */
  sendTimeoutMs?: number;
  /**
   * The longest a send sleeps for its rate-limit slot before it calls the provider
   * (SEND_RATE_LIMIT_MAX_SLEEP_MS; absent when sends are not rate limited): counted with
   * sendTimeoutMs before the deadline.
   */
  sendRateLimitMaxSleepMs?: number;
  /** Test seams; real time by default. */
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** The text as the channel's sender will send it (the senders shorten the same way; fitting twice changes nothing). */
export function fitForChannel(channel: Channel, text: string): string {
  if (channel === 'whatsapp') return fitTextLength(text);
  if (channel === 'instagram') return fitInstagramText(text);
  return text;
}

/** What may be said about a failure: its ApplicationFailure type and message, a database error scrubbed of its values. */
function describeFailure(err: unknown): { type?: string; message: string } {
  const f = databaseFailure(err) ?? err;
  if (f instanceof ApplicationFailure) return { ...(f.type ? { type: f.type } : {}), message: f.message };
  return { message: f instanceof Error ? f.message : String(f) };
}

export function createTurnActivities(deps: TurnDeps) {
  const log = deps.log.child({ module: 'reply-turn' });
  const now = deps.now ?? Date.now;
  const sleep = deps.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));

  /** Mark read + typing, in parallel with the LLM; never fails the turn. */
  function startReadReceipt(input: ReplyTurnInput): Promise<void> {
    const receipt = input.reply?.readReceipt;
    if (input.channel !== 'whatsapp' || !receipt) return Promise.resolve();
    return deps.markWhatsAppRead({ channelAccountId: input.channelAccountId, providerMessageId: receipt.providerMessageId, typing: true }).then(
      (r) => {
        if (!r.done) log.debug({ leadId: input.leadId, reason: r.reason?.slice(0, 100) }, 'read receipt skipped');
      },
      (err: unknown) => {
        const { type, message } = describeFailure(err);
        log.warn({ leadId: input.leadId, type, reason: message }, 'read receipt failed');
      },
    );
  }

  return {
    /**
     * One ordinary reply turn (see the module comment). Throws, with nothing released, when
     * recording, reserving, the LLM or the capture fails: the workflow then runs the careful
     * pipeline with the same ids.
     */
    async replyTurn(raw: ReplyTurnInput): Promise<ReplyTurnResult> {
      // a heartbeat while the turn runs: a worker that dies mid-turn is noticed in the heartbeat
      // timeout (seconds), not the turn's start-to-close timeout (minutes), and the workflow goes on
      const beat = setInterval(heartbeat, HEARTBEAT_EVERY_MS);
      try {
        const result = await runTurn(raw);
        recordTurn(result.reply?.outcome ?? 'recorded', raw.tenantId);
        // one line a turn; the logger adds trace_id and the requestIds of the messages it answers (workers/tracing.ts)
        log.info({ leadId: raw.leadId, batchId: raw.batchId, messages: raw.messages.length, outcome: result.reply?.outcome ?? 'recorded' }, 'reply turn done');
        return result;
      } catch (err) {
        recordTurn('error', raw.tenantId);
        throw err;
      } finally {
        clearInterval(beat);
      }
    },
  };

  async function runTurn(raw: ReplyTurnInput): Promise<ReplyTurnResult> {
    const parsed = replyTurnInputSchema.safeParse(raw);
    if (!parsed.success) {
      throw ApplicationFailure.create({ type: FailureType.InvalidInput, message: `replyTurn: ${z.prettifyError(parsed.error)}`, nonRetryable: true });
    }
    const input = raw;
    const reply = input.reply;
    // record, and reserve when a lead-written message is new, in one transaction when the deps allow
    const recordAndReserve = async (tx?: DbTransaction) => {
      const { stored } = await deps.leads.recordInbound({ tenantId: input.tenantId, leadId: input.leadId, messages: input.messages, batchId: input.batchId }, { tx });
      if (!reply || (reply.requireNewOf && !reply.requireNewOf.some((id) => stored.includes(id)))) return { stored };
      // the reservation remembers the lead workflow (for the stale-reservation sweep), as reserveCredit does
      const reservation = await reserveCreditOrRefuse(deps.credits, { tenantId: input.tenantId, reference: reply.reference, workflowId: callerWorkflowId(), replyChannelId: input.channelAccountId }, { tx });
      return { stored, reservation };
    };
    const { stored, reservation } = deps.transaction ? await deps.transaction((tx) => recordAndReserve(tx)) : await recordAndReserve();
    const recorded = { newIds: stored, stored: stored.length };
    if (!reply) return recorded;
    if (!reservation) return { ...recorded, reply: { outcome: 'not_needed' } };
    if (!reservation.ok) return { ...recorded, reply: { outcome: 'no_credit', balance: reservation.balance, amount: reservation.amount, ...(reservation.suspended ? { suspended: true as const } : {}), ...(reservation.channelDisabled ? { channelDisabled: true as const } : {}) } };

    const receipt = startReadReceipt(input);
    try {
      // a retry of this turn (or of its careful pipeline) finds the message an earlier attempt recorded: that text, no second LLM call
      const prior = reservation.existing ? await deps.leads.outbound(reply.outboundMessageId) : undefined;
      let text: string;
      let tools: { tools?: TurnTools } = {};
      let knowledge: KnowledgeUsed[] | undefined;
      if (prior) {
        text = prior.body;
      } else {
        const written = await deps.writeReply({ tenantId: input.tenantId, leadId: input.leadId, channelAccountId: input.channelAccountId, channel: input.channel, ...reply.llm }, { signal: activityCancellationSignal() });
        if (written.toolCalls?.length) tools = { tools: { calls: written.toolCalls, ...(written.effects ? { effects: written.effects } : {}) } };
        // the credit stays held: the workflow releases it when it hands the lead over (a lost
        // result then leaves a held reservation the careful retry finds, never a released one)
        if (written.handoff) return { ...recorded, reply: { outcome: 'handoff', reason: written.handoff.reason, ...tools } };
        // buttons or a list: the workflow sends it through the rich path (the credit stays held for it)
        if (written.rich) return { ...recorded, reply: { outcome: 'rich', message: written.rich, ...tools, ...(written.knowledge?.length ? { knowledge: written.knowledge } : {}) } };
        text = fitForChannel(input.channel, written.text);
        knowledge = written.knowledge;
      }

      // the passages the text was written from: recorded by the send (here, or the careful deliver's when held)
      const used = knowledge?.length ? { knowledge } : {};
      let providerMessageId = prior?.providerMessageId ?? undefined;
      if (!providerMessageId) {
        const waitMs = reply.notBefore ? Date.parse(reply.notBefore) - now() : 0;
        if (waitMs > MAX_TURN_PACING_MS) {
          return { ...recorded, reply: { outcome: 'held', text, failure: { type: TURN_HELD.pacingTooLong, message: `pacing asks to wait ${Math.ceil(waitMs / 1000)} s` }, ...tools, ...used } };
        }
        const deadline = activityDeadline();
        if (deadline !== undefined && now() + Math.max(0, waitMs) + (deps.sendRateLimitMaxSleepMs ?? 0) + (deps.sendTimeoutMs ?? 0) + TURN_DEADLINE_MARGIN_MS > deadline) {
          return { ...recorded, reply: { outcome: 'held', text, failure: { type: TURN_HELD.deadline, message: `too little time left before the activity's deadline (${new Date(deadline).toISOString()}) to send` }, ...tools, ...used } };
        }
        if (waitMs > 0) await sleep(waitMs);
        if (reply.windowClosesAt && now() >= Date.parse(reply.windowClosesAt)) {
          return { ...recorded, reply: { outcome: 'held', text, failure: { type: TURN_HELD.windowClosed, message: `the free-form window closed at ${reply.windowClosesAt}` }, ...tools, ...used } };
        }
        // the workflow gave up on this attempt (heartbeat timeout, cancellation): its careful retry sends
        if (cancelled()) throw ApplicationFailure.create({ type: FailureType.ProviderTransient, message: 'the reply turn was cancelled before its send', nonRetryable: true });
        try {
          const sent = await deps.send[input.channel]({
            tenantId: input.tenantId,
            leadId: input.leadId,
            channelAccountId: input.channelAccountId,
            outboundMessageId: reply.outboundMessageId,
            to: input.contactId,
            text,
            ...used,
          });
          providerMessageId = sent.providerMessageId;
        } catch (err) {
          const failure = describeFailure(err);
          log.info({ leadId: input.leadId, outboundMessageId: reply.outboundMessageId, type: failure.type }, 'reply held: the first send attempt failed');
          return { ...recorded, reply: { outcome: 'held', text, failure, ...tools, ...used } };
        }
      }
      await deps.credits.capture({ reference: reply.reference, messageId: reply.outboundMessageId });
      return { ...recorded, reply: { outcome: 'sent', text, outboundMessageId: reply.outboundMessageId, ...(providerMessageId ? { providerMessageId } : {}), ...tools } };
    } finally {
      await receipt;
    }
  }
}
