/**
 * The kinds of work the main loop runs, one function each: a reply to what the lead wrote
 * (`reply.ts`), a sequence step, a bump-up, an extraction, an outbox message, a replayed or deferred
 * operation, a failed-delivery status. Each asks the policies, then sends through the
 * outbound pipeline.
 */
import { upsertSearchAttributes, uuid4, workflowInfo } from '@temporalio/workflow';
import { DATABASE, database, EXTRACTION, extraction } from './proxies';
import type { DeliveryStatus, OutboundRequest, OutboundResult, OutboundWhat, ParkedOperation } from './definitions';
import { failureReason, failureType } from './outcome';
import { contactSuppressed, deliver, refuse, sendOutbound, type SendContext } from './outbound';
import { loadParked } from './parked';
import { bumpUpDueAt, DEFAULT_BUMP_UP } from './policy/bump-up';
import { aiMayReply, sequencesMayRun } from './policy/handoff';
import { needsConsent, OPTED_OUT, pendingOptOut, sendCategory } from './policy/opt-out';
import * as seqPolicy from './policy/sequence';
import { event, guarded } from './records';
import { nowIso, type LeadRun } from './run';
import { SA } from './search-attributes';
import { stopSequence } from './transitions';
import { takeDueFollowUp } from './tools';
export { replyTurn } from './reply';

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
