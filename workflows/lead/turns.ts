/**
 * The kinds of work the main loop runs, one function each: a reply to what the lead wrote, a
 * sequence step, a bump-up, an extraction, an outbox message, a replayed or deferred
 * operation, a failed-delivery status. Each asks the policies, then sends through the
 * outbound pipeline.
 */
import { log, upsertSearchAttributes, uuid4, workflowInfo } from '@temporalio/workflow';
import { DATABASE, database, EXTRACTION, extraction, READ_RECEIPT, receipts, REPLY_TURN, turn } from './proxies';
import type { ReplyTurnInput, ReplyTurnResult, TurnHeldType } from '../../activities/turn/reply-turn';
import { DEFAULT_LEAD_SETTINGS, type DeliveryStatus, type InboundMessage, type LeadCarriedState, type OutboundRequest, type OutboundResult, type OutboundWhat, type ParkedOperation } from './definitions';
import { failureReason, failureType } from './outcome';
import { contactSuppressed, conversationFacts, creditAvailable, creditBlocked, deliver, handedOff, noteSent, pace, plan, refuse, reserve, sendOutbound, type SendContext } from './outbound';
import { loadParked } from './parked';
import { newInbound } from './policy/bounds';
import { bumpUpDueAt, DEFAULT_BUMP_UP } from './policy/bump-up';
import { aiMayReply, matchHandoffKeyword, sequencesMayRun } from './policy/handoff';
import { writtenByLead } from './policy/inbound';
import { aiMayAnswer, applyOptPhrase } from './opt-out';
import { needsConsent, OPTED_OUT, optTurn, pendingOptOut, sendCategory } from './policy/opt-out';
import * as seqPolicy from './policy/sequence';
import { windowClosesAt } from './policy/window';
import { event, guarded, recordInbound, releaseCredit } from './records';
import { nowIso, type LeadRun } from './run';
import { SA } from './search-attributes';
import { changeMode, replyStopsSequence, stopSequence, stopSequenceOn } from './transitions';
import { applyTools, takeDueFollowUp } from './tools';
import { degrade, richText, type RichMessage } from '../../contract/rich';

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
      llm: { stage: state.stage, facts: conversationFacts(run, lastInboundAt, written), purpose: 'reply', allowHandoff: true },
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
  const out: { text: string; rich?: RichMessage } = reply.outcome === 'rich' ? channelForm(run, reply.message) : { text: reply.text };
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

/** A rich message as the lead's channel sends it (contract/rich.ts degrade): the native or converted message and its text, or the text alone. */
function channelForm(run: LeadRun, message: RichMessage): { text: string; rich?: RichMessage } {
  const out = degrade(message, run.channel);
  return out.kind === 'text' ? { text: out.text } : { text: richText(out.message), rich: out.message };
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

// ---- a due sequence step ----

export function sequenceAction(run: LeadRun): seqPolicy.SequenceAction {
  const { state } = run;
  if (!state.sequence || !sequencesMayRun(state.mode)) return { type: 'idle' };
  // a STOP waits in the buffer: its turn (which stops the sequence) goes first
  if (pendingOptOut(state.inbox, run.optOut)) return { type: 'idle' };
  return seqPolicy.nextAction({ seq: state.sequence.def, cursor: state.sequence.cursor, now: nowIso(), lastInboundAt: state.lastInboundAt, timeZone: state.timeZone ?? 'UTC' });
}

export async function sequenceStep(run: LeadRun, action: Extract<seqPolicy.SequenceAction, { type: 'send' }>): Promise<void> {
  const s = run.state.sequence!;
  const step = action.step;
  const what: OutboundWhat =
    step.kind === 'template'
      ? { kind: 'template', template: step.template! }
      : step.kind === 'text'
        ? { kind: 'text', text: step.text ?? '' }
        : step.kind === 'rich' && step.message
          ? { kind: 'rich', message: step.message }
          : { kind: 'ai', instruction: step.aiInstruction, llmPurpose: 'sequence_step' };
  const result = await sendOutbound(run, what, `sequence step ${action.stepIndex + 1}`, step.template);
  if (result.status === 'refused' && result.reason === OPTED_OUT) {
    // the contact is on the suppression list (a STOP here or on another channel, or the API): no step goes out any more
    await event(run, 'sequence_step_suppressed', { sequenceId: s.def.id, stepIndex: action.stepIndex });
    await stopSequence(run, 'opted_out');
    return;
  }
  await event(run, 'sequence_step', { sequenceId: s.def.id, stepIndex: action.stepIndex, status: result.status, reason: result.reason });
  // a refused or failed step is skipped, not retried forever; the next step follows its delay
  const current = run.state.sequence!;
  const next = seqPolicy.stepSent(current.cursor, current.def, nowIso(), action.stepIndex);
  if (next.ok) run.state.sequence = { def: current.def, cursor: next.cursor };
}

// ---- a bump-up: the lead went quiet after the bot's message ----

export function bumpUpDue(run: LeadRun): string | undefined {
  const { state } = run;
  if (!aiMayReply(state.mode) || state.optedOut) return undefined;
  const seq = state.sequence?.cursor.status;
  if (seq === 'active' || seq === 'paused') return undefined; // a running sequence does the following up
  return bumpUpDueAt({
    channel: run.channel,
    lastInboundAt: state.lastInboundAt,
    // a refused bump-up (a repeat, no credit) still starts a new idle period
    lastOutboundAt: state.lastBumpAt && (!state.lastOutboundAt || state.lastBumpAt > state.lastOutboundAt) ? state.lastBumpAt : state.lastOutboundAt,
    lastOutboundByBot: state.lastOutboundByBot ?? false,
    bumpsSent: state.bumpsSent ?? 0,
    policy: run.settings.bumpUp ?? DEFAULT_BUMP_UP,
  });
}

export async function bumpUp(run: LeadRun): Promise<void> {
  const { state } = run;
  const policy = run.settings.bumpUp ?? DEFAULT_BUMP_UP;
  // counted before sending, so a failing or refused bump-up is never retried in a loop
  state.bumpsSent = (state.bumpsSent ?? 0) + 1;
  state.lastBumpAt = nowIso();
  const instruction = `The lead has not answered your last message. Write one short, friendly follow-up of at most ${policy.maxWords} words that moves the conversation forward. Do not repeat anything you already said.`;
  const result = await sendOutbound(run, { kind: 'ai', instruction, maxWords: policy.maxWords, avoidRepeats: true, llmPurpose: 'bump_up' }, `bump-up ${state.bumpsSent}`);
  await event(run, 'bump_up', { n: state.bumpsSent, status: result.status, reason: result.reason });
}

// ---- a follow-up the model scheduled (agent tool schedule_follow_up) ----

/**
 * Send a due follow-up like a bump-up: an AI message inside the 24-hour window; outside it the
 * agent's follow-up template (kept with the follow-up), or refused and recorded (window_closed)
 * when it has none; refused too when a human has the lead or the contact opted out.
 */
export async function followUp(run: LeadRun): Promise<void> {
  const { state } = run;
  const due = takeDueFollowUp(run);
  if (!due) return;
  run.changed();
  if (!aiMayReply(state.mode)) {
    await event(run, 'follow_up', { followUpId: due.id, at: due.at, status: 'refused', reason: `mode_${state.mode}` });
    return;
  }
  const instruction = `Earlier in this conversation you scheduled a follow-up for now, noting: "${due.note}". Write that follow-up message to the lead now: short, friendly, and about what you noted.`;
  const result = await sendOutbound(run, { kind: 'ai', instruction, llmPurpose: 'follow_up' }, 'follow-up', due.template);
  await event(run, 'follow_up', { followUpId: due.id, at: due.at, status: result.status, reason: result.reason, ...(due.template ? { template: due.template.name } : {}) });
}

// ---- lead extraction after a quiet period ----

export async function extract(run: LeadRun): Promise<void> {
  const { state } = run;
  state.extractionDueAt = undefined;
  try {
    const r = await extraction.extractLead.executeWithOptions(run.options(EXTRACTION, 'Extract lead data and summary'), [{ tenantId: run.tenantId, leadId: run.leadId, channelAccountId: run.channelAccountId }]);
    if (r.score !== null && r.score !== state.score) {
      state.score = r.score;
      upsertSearchAttributes([{ key: SA.LeadScore, value: r.score }]);
    }
  } catch (err) {
    // recorded as an event and counted in parley_extraction_failures; runs again after new messages
    await guarded(
      run,
      'record an extraction failure',
      () =>
        database.recordExtractionFailure.executeWithOptions(run.options(DATABASE, 'Record the extraction failure'), [
          { tenantId: run.tenantId, leadId: run.leadId, error: failureReason(err), type: failureType(err), dedupKey: `extraction_failed:${workflowInfo().runId}:${uuid4()}` },
        ]),
      undefined,
    );
  }
}

// ---- a manual message or API template ----

export async function outboxMessage(run: LeadRun, req: OutboundRequest): Promise<void> {
  const what: OutboundWhat =
    req.kind === 'template' ? { kind: 'template', template: req.template! } : req.kind === 'rich' && req.message ? { kind: 'rich', message: req.message } : { kind: 'text', text: req.text! };
  const result = await sendOutbound(run, what, req.source === 'manual' ? 'manual reply' : 'api message', undefined, { byBot: false, human: req.source === 'manual' });
  if (run.queued.delete(req.requestId)) return; // its caller was answered 202 queued
  run.results.set(req.requestId, { ...result, requestId: req.requestId });
}

// ---- parked operations run again ----

/** Run a parked operation again: a reply from the LLM step, a send with its outbound id. */
export async function runParked(run: LeadRun, op: ParkedOperation, requestId: string, asDeadLetter: boolean): Promise<OutboundResult> {
  if (!op.what) return { requestId, status: 'refused', reason: `a refused database write (${op.purpose}) cannot be replayed; discard it` };
  const context: SendContext = { what: op.what, purpose: op.purpose, fallbackTemplate: op.fallbackTemplate, byBot: op.byBot, attempts: op.attempts, ...(asDeadLetter ? { deadLetterId: op.id } : {}) };
  // a written send (deferred, parked) skips sendOutbound's check: the same question here
  if (op.kind === 'send' && op.send && needsConsent(sendCategory(op.what, op.purpose)) && (await contactSuppressed(run))) {
    return { ...(await refuse(run, context, requestId, OPTED_OUT, op.send.reference, op.send.outboundMessageId)), requestId };
  }
  const result = op.kind === 'send' && op.send ? await deliver(run, op.send, context, requestId) : await sendOutbound(run, op.what, op.purpose, op.fallbackTemplate, context);
  return { ...result, requestId };
}

/** An admin asked to replay a dead letter: run it and hand the result to the waiting update. */
export async function replay(run: LeadRun, item: { deadLetterId: string; requestId: string }): Promise<void> {
  const { state } = run;
  const { deadLetterId, requestId } = item;
  const known = state.deadLetters?.some((d) => d.id === deadLetterId) ?? false;
  const op = known ? await loadParked(run, deadLetterId) : undefined;
  if (!op && known) {
    // its row is gone or already resolved: forget the id too
    state.deadLetters = (state.deadLetters ?? []).filter((d) => d.id !== deadLetterId);
    run.refreshAttention();
  }
  const result: OutboundResult = op ? await runParked(run, op, requestId, true) : { requestId, status: 'refused', reason: 'the dead letter is gone' };
  if (result.status === 'sent' && op) state.lastOutboundByBot = op.byBot;
  run.results.set(requestId, result);
}

/** A deferred send whose time came (or one carried over a circuit wait): taken out of the state and sent. */
export async function resumeDeferred(run: LeadRun, id: string): Promise<void> {
  const op = (run.state.deferred ?? []).find((d) => d.id === id);
  run.state.deferred = (run.state.deferred ?? []).filter((d) => d.id !== id);
  if (op) await runParked(run, op, uuid4(), false);
}

// ---- a delivery failed after the provider accepted it (status webhook) ----

export async function deliveryFailed(run: LeadRun, s: DeliveryStatus): Promise<void> {
  const { state } = run;
  const codes = s.errors.map((e) => e.code);
  // a redelivered status webhook signals again: one event per provider id
  if ((state.failedDeliveries ?? []).includes(s.providerMessageId)) return;
  state.failedDeliveries = [...(state.failedDeliveries ?? []), s.providerMessageId].slice(-50);
  state.counters.failedReplies += 1;
  await event(run, 'delivery_failed', { outboundMessageId: s.outboundMessageId, providerMessageId: s.providerMessageId, errors: s.errors, at: s.timestamp }, `delivery_failed:${s.providerMessageId}`);
  // 131047: the window had closed; later sends take the template path until the lead writes
  if (codes.includes(131047)) state.providerWindowClosedAt = nowIso();
}
