/**
 * A reply to what the lead wrote: the one-activity turn (`replyTurn`) for an ordinary batch,
 * the step-by-step turn for anything unusual or after a failed try, and what follows from the
 * lead writing (the window, extraction, a sequence that stops on a reply).
 */
import { log, upsertSearchAttributes, uuid4 } from '@temporalio/workflow';
import { DATABASE, database, READ_RECEIPT, receipts, REPLY_TURN, turn } from './proxies';
import type { ReplyTurnInput, ReplyTurnResult, TurnHeldType } from '../../activities/turn/reply-turn';
import { DEFAULT_LEAD_SETTINGS, type InboundMessage, type LeadCarriedState, type OutboundWhat } from './definitions';
import { failureReason } from './outcome';
import { conversationFacts, creditAvailable, creditBlocked, deliver, handedOff, noteSent, pace, plan, refuse, reserve, sendOutbound, type SendContext } from './outbound';
import { newInbound } from './policy/bounds';
import { aiMayReply, matchHandoffKeyword } from './policy/handoff';
import { writtenByLead } from './policy/inbound';
import { aiMayAnswer, applyOptPhrase } from './opt-out';
import { optTurn } from './policy/opt-out';
import { windowClosesAt } from './policy/window';
import { guarded, recordInbound, releaseCredit } from './records';
import type { LeadRun } from './run';
import { SA } from './search-attributes';
import { changeMode, replyStopsSequence, stopSequenceOn } from './transitions';
import { applyTools, followUpsForTurn } from './tools';
import { channelForm, type RichMessage } from '../../contract/rich';

// ---- a reply: the lead wrote ----

/**
 * Answer what the lead wrote. An ordinary turn is one activity (record, reserve, LLM, pace,
 * send, capture: `replyTurn`); anything unusual (a handoff keyword, a closed window, messages
 * recorded early) or a failure of that one try takes the step-by-step pipeline, with the same
 * ids so nothing is recorded, charged or sent twice.
 * `recordedEarly`: messages the inbound handler already wrote (the buffer was full), answered in this turn too.
 */
export async function replyTurn(run: LeadRun, received: InboundMessage[], recordedEarly?: LeadCarriedState['inboxRecorded']): Promise<void> {
  const ids = { batchId: uuid4(), outboundMessageId: uuid4() };
  const fast = fastTurnInput(run, received, recordedEarly, ids);
  if (fast) {
    // pacing before the turn (a durable timer, only when the lead wrote right after our last
    // message): the activity then sends as soon as the text is ready
    await pace(run);
    try {
      const result = await turn.replyTurn.executeWithOptions(run.options(REPLY_TURN, 'Reply: record, reserve, ask the LLM, send, capture'), [fast]);
      return await afterFastTurn(run, received, result, ids.outboundMessageId);
    } catch (err) {
      log.warn('the one-activity reply turn failed: replying step by step', { leadId: run.leadId, reason: failureReason(err) });
      return carefulTurn(run, received, recordedEarly, ids, err);
    }
  }
  return carefulTurn(run, received, recordedEarly, ids);
}

/** The one-activity turn's input, when this turn is an ordinary one. */
function fastTurnInput(run: LeadRun, received: InboundMessage[], recordedEarly: LeadCarriedState['inboxRecorded'], ids: { batchId: string; outboundMessageId: string }): ReplyTurnInput | undefined {
  const { state } = run;
  const written = received.filter(writtenByLead);
  if (recordedEarly || written.length === 0 || !aiMayReply(state.mode)) return undefined;
  // an opt-out or opt-in phrase, or an agent that stops replying to opted-out contacts: the step-by-step turn decides
  if (optTurn({ messages: written, keywords: run.optOut }).last || !run.optOut.replyAfterOptOut) return undefined;
  if (state.mode === 'ai' && written.some((m) => matchHandoffKeyword(m.text, state.handoffKeywords ?? []))) return undefined;
  // the window as it will be once these messages count
  const lastInboundAt = written.reduce((a, m) => (m.sentAt > a ? m.sentAt : a), state.lastInboundAt ?? '');
  const closedAt = state.providerWindowClosedAt;
  const providerClosedAt = closedAt && !written.some((m) => (m.receivedAt ?? '') > closedAt) ? closedAt : undefined;
  if (plan(run, 'ai', undefined, false, { lastInboundAt, providerClosedAt }).action !== 'free_form') return undefined;
  const last = written[written.length - 1]!;
  return {
    tenantId: run.tenantId,
    leadId: run.leadId,
    channelAccountId: run.channelAccountId,
    channel: run.channel,
    contactId: run.contactId,
    messages: received,
    batchId: ids.batchId,
    reply: {
      requireNewOf: written.map((m) => m.providerMessageId),
      outboundMessageId: ids.outboundMessageId,
      reference: `reply:${ids.outboundMessageId}`,
      llm: { stage: state.stage, facts: conversationFacts(run, lastInboundAt, written), purpose: 'reply', allowHandoff: true, ...followUpsForTurn(run) },
      ...(run.channel === 'webchat' ? {} : { windowClosesAt: windowClosesAt(lastInboundAt) }),
      ...(run.channel === 'whatsapp' ? { readReceipt: { providerMessageId: last.providerMessageId } } : {}),
    },
  };
}

/** Apply what the one-activity turn did. */
async function afterFastTurn(run: LeadRun, received: InboundMessage[], result: ReplyTurnResult, outboundMessageId: string): Promise<void> {
  const { state } = run;
  const written = admitRecorded(run, received, result.newIds);
  if (written.length === 0) return;
  await afterLeadWrote(run, written);
  state.counters.turns += 1;
  const reply = result.reply;
  const context: SendContext = { what: REPLY, purpose: 'reply', byBot: true };
  const requestId = uuid4();
  const reference = `reply:${outboundMessageId}`;
  if (!reply || reply.outcome === 'not_needed') return;
  if (reply.outcome === 'no_credit') return creditBlocked(run, 'reply', outboundMessageId, reply);
  await creditAvailable(run, outboundMessageId);
  // the model's tool calls: events, a stage change, a scheduled follow-up (only turns with tools have any)
  if (reply.tools) await applyTools(run, reply.tools, outboundMessageId);
  if (reply.outcome === 'handoff') {
    await handedOff(run, context, requestId, reference, reply.reason);
    return;
  }
  if (reply.outcome === 'sent') {
    noteSent(run, { text: reply.text, plan: { action: 'free_form' } }, true, true);
    return;
  }
  // buttons or a list (send_buttons, send_list): not sent yet, the credit still held; it goes out
  // through the rich path, degraded to the channel, with the turn's outbound id
  const out: { text: string; rich?: RichMessage } = reply.outcome === 'rich' ? channelForm(reply.message, run.channel) : { text: reply.text };
  // written, not sent (the window closed meanwhile, or the first send failed): the credit is still held
  const outPlan = plan(run, 'ai', undefined, false);
  if (!aiMayReply(state.mode)) {
    // a human took the lead (or it was paused) while the turn ran: the AI's text stays unsent
    await refuse(run, context, requestId, `mode_${state.mode}`, reference);
    return;
  }
  if (outPlan.action !== 'free_form') {
    await refuse(run, context, requestId, outPlan.action === 'refuse' ? outPlan.reason : 'window_closed', reference);
    return;
  }
  await pace(run);
  // the turn's own reasons to hold (the deadline) are no try at the send; a send's failure is its first try
  const failure = reply.outcome === 'held' ? reply.failure : undefined;
  const firstTry = !failure || (failure.type && (TURN_HELD_TYPES as readonly string[]).includes(failure.type)) ? undefined : failure;
  await deliver(run, { plan: { action: 'free_form' }, text: out.text, outboundMessageId, reference, ...(out.rich ? { rich: out.rich } : {}), ...((reply.outcome === 'held' || reply.outcome === 'rich') && reply.knowledge?.length ? { knowledge: reply.knowledge } : {}) }, context, requestId, firstTry);
}

/** Why the turn held a reply without trying to send it (activities/turn/reply-turn.ts TURN_HELD). */
const TURN_HELD_TYPES: readonly TurnHeldType[] = ['window_closed', 'pacing_too_long', 'turn_deadline'];

const REPLY: OutboundWhat = { kind: 'ai', llmPurpose: 'reply', allowHandoff: true };

/** Keep what the database says is new (a redelivery older than the dedup window is not); the messages the lead wrote among them. */
function admitRecorded(run: LeadRun, received: InboundMessage[], newIds: string[] | undefined, recordedEarly?: LeadCarriedState['inboxRecorded']): InboundMessage[] {
  const { state } = run;
  const batch = newInbound(received, newIds);
  if (batch.length < received.length) {
    state.counters.duplicates += received.length - batch.length;
    state.counters.inbound -= received.length - batch.length;
  }
  // Meta's notices (a changed number or user id) are recorded; the lead wrote none of them
  const written = batch.filter(writtenByLead);
  noteInbound(run, written, recordedEarly);
  return written;
}

/** What follows from the lead writing: extraction later, a sequence that stops on a reply. */
async function afterLeadWrote(run: LeadRun, written: InboundMessage[]): Promise<void> {
  const { state } = run;
  const idle = run.settings.extractionIdleMs ?? DEFAULT_LEAD_SETTINGS.extractionIdleMs ?? 0;
  if (idle > 0) state.extractionDueAt = new Date(Date.now() + idle).toISOString();
  // only a message written after enrolment is a reply to the sequence
  if (replyStopsSequence(run, written)) await stopSequenceOn(run, 'lead_replied');
}

/**
 * The one-activity try wrote (and maybe sent) a reply before its result was lost: deliver that
 * text under the same id (the sender finds it sent, or sends it once) instead of asking the LLM
 * for another one. Returns whether there was one.
 */
async function resumeWritten(run: LeadRun, outboundMessageId: string, reference: string): Promise<boolean> {
  const row = await guarded(run, 'find the written reply', () => database.findOutbound.executeWithOptions(run.options(DATABASE, 'Find the reply the turn wrote'), [{ outboundMessageId }]), null);
  if (!row) return false;
  run.state.counters.turns += 1;
  const context: SendContext = { what: REPLY, purpose: 'reply', byBot: true };
  const requestId = uuid4();
  const refused = await reserve(run, context, requestId, outboundMessageId, reference);
  if (refused) return true;
  await deliver(run, { plan: { action: 'free_form' }, text: row.text, outboundMessageId, reference }, context, requestId);
  return true;
}

/** The step-by-step turn: every step its own activity with its own retry policy. */
async function carefulTurn(run: LeadRun, received: InboundMessage[], recordedEarly: LeadCarriedState['inboxRecorded'], ids: { batchId: string; outboundMessageId: string }, firstTry?: unknown): Promise<void> {
  const { state } = run;
  const reference = `reply:${ids.outboundMessageId}`;
  // after a failed one-activity try a credit may be held under this turn's reference: a turn that ends without a reply gives it back
  const noReply = async () => {
    if (firstTry !== undefined) await releaseCredit(run, reference);
  };
  const recorded = received.length > 0 ? await recordInbound(run, received, `Record ${received.length} inbound message(s)`, ids.batchId) : undefined;
  const written = admitRecorded(run, received, recorded?.newIds, recordedEarly);
  if (written.length === 0 && !recordedEarly) return noReply();
  await afterLeadWrote(run, written);
  const opt = optTurn({ messages: written, keywords: run.optOut });
  if (opt.last) await applyOptPhrase(run, opt.last);
  // the phrase itself gets no AI reply; what the lead wrote after it may (the setting says)
  if (opt.last && !opt.writesAfter) return noReply();
  if (!(await aiMayAnswer(run))) return noReply();
  const keyword = state.mode === 'ai' ? written.map((m) => matchHandoffKeyword(m.text, state.handoffKeywords ?? [])).find(Boolean) : undefined;
  if (keyword) {
    await changeMode(run, 'handoff', 'keyword');
    if (state.mode === 'human') return noReply();
  }
  if (!aiMayReply(state.mode)) return noReply();
  if (firstTry !== undefined && (await resumeWritten(run, ids.outboundMessageId, reference))) return;

  state.counters.turns += 1;
  // WhatsApp: blue ticks and "typing…" while the LLM works (once a reply is paid for), in parallel
  const last = written[written.length - 1];
  let receipt: Promise<unknown> | undefined;
  const beforeLlm =
    run.channel === 'whatsapp' && last
      ? () => {
          receipt = receipts.markWhatsAppRead
            .executeWithOptions(run.options(READ_RECEIPT, 'Mark read, show typing'), [{ channelAccountId: run.channelAccountId, providerMessageId: last.providerMessageId, typing: true }])
            .catch((err: unknown) => log.warn('read receipt failed', { leadId: run.leadId, reason: failureReason(err) }));
        }
      : undefined;
  await sendOutbound(run, REPLY, 'reply', undefined, { beforeLlm, outboundMessageId: ids.outboundMessageId, firstTry });
  await receipt;
}

/** The lead's latest message time moves the window (search attributes too); a message after a 131047 reopens it. */
function noteInbound(run: LeadRun, written: InboundMessage[], recordedEarly?: LeadCarriedState['inboxRecorded']): void {
  const { state } = run;
  const start = recordedEarly && recordedEarly.lastSentAt > (state.lastInboundAt ?? '') ? recordedEarly.lastSentAt : (state.lastInboundAt ?? '');
  const latest = written.reduce((a, m) => (m.sentAt > a ? m.sentAt : a), start);
  if (latest && latest !== state.lastInboundAt) {
    state.lastInboundAt = latest;
    upsertSearchAttributes([
      { key: SA.LastInboundAt, value: new Date(latest) },
      { key: SA.WindowClosesAt, value: new Date(windowClosesAt(latest)!) },
    ]);
  }
  const closedAt = state.providerWindowClosedAt;
  if (closedAt && written.some((m) => (m.receivedAt ?? '') > closedAt)) state.providerWindowClosedAt = undefined;
}

