/**
 * One outbound message, in the order it happens: plan (the 24-hour window) → reserve a credit →
 * generate (the LLM, for AI messages) → pace → deliver → capture the credit. A failure at any
 * step ends in a result (refused, failed, parked, deferred), never in a lost credit: a parked or
 * deferred send keeps its reservation and its outbound id, so a later attempt cannot send twice.
 */
import { ApplicationFailure, log, sleep, uuid4 } from '@temporalio/workflow';
import { failureIn, FailureType, LLM_NON_RETRYABLE } from '../../contract/failures';
import { channelForm, type RichMessage } from '../../contract/rich';
import { applyTools, followUpsForTurn } from './tools';
import { DATABASE, database, deliveryOptions, delivery, LLM, llm } from './proxies';
import { DEFAULT_LEAD_SETTINGS, type InboundMessage, type OutboundResult, type OutboundWhat, type ParkedOperation } from './definitions';
import { failureReason, failureType } from './outcome';
import { isRepeat, trimToWords } from './policy/bump-up';
import { needsConsent, OPTED_OUT, pendingOptOut, sendCategory } from './policy/opt-out';
import { DEFAULT_PACING, nextSendAt } from './policy/pacing';
import { isNonRetryableSendFailure, onSendFailure } from './policy/send-failure';
import { planOutbound, windowClosesAt, type OutboundPlan, type TemplateRef } from './policy/window';
import { appendRecent } from './policy/transcript';
import { park, parkedOperation, settleReplay, waitForCircuit } from './parked';
import { captureCredit, event, guarded, releaseCredit, reserveCredit, setBlocked } from './records';
import { msUntil, nowIso, type LeadRun } from './run';
import { changeMode, replyStopsSequence } from './transitions';

const RECENT_BOT_MESSAGES = 5;
/** LEAD_DELIVERY_MAX_ATTEMPTS' default. */
const DEFAULT_DELIVERY_ATTEMPTS = DEFAULT_LEAD_SETTINGS.deliveryMaxAttempts ?? 10;

/** How one send goes out once its text (or template) is known. */
export type PlannedSend = NonNullable<ParkedOperation['send']>;

/** Where a send came from, so a parked one can be replayed the same way. */
export interface SendContext {
  what: OutboundWhat;
  purpose: string;
  fallbackTemplate?: TemplateRef;
  /** Whether the message counts as the bot's (AI, sequence) rather than a human's. */
  byBot: boolean;
  /** A human agent's message (Instagram: HUMAN_AGENT tag outside 24 hours). */
  human?: boolean;
  /** Set when replaying a dead letter: a new failure re-parks it under the same id. */
  deadLetterId?: string;
  attempts?: number;
  /** Called once the credit is reserved, just before the LLM is asked. */
  beforeLlm?: () => void;
  /** The outbound id to use (the reply turn's, when its one-activity try failed): the credit reference follows it. */
  outboundMessageId?: string;
  /** How the reply turn's one try failed: an LLM failure the LLM's retry policy would not retry is not asked again. */
  firstTry?: unknown;
}

/** The window's answer for a message of this kind now (web chat has no window). */
export function plan(
  run: LeadRun,
  kind: OutboundWhat['kind'],
  fallbackTemplate: TemplateRef | undefined,
  human: boolean | undefined,
  as: { providerClosedAt?: string; lastInboundAt?: string } = { providerClosedAt: run.state.providerWindowClosedAt, lastInboundAt: run.state.lastInboundAt },
): OutboundPlan {
  if (run.channel === 'webchat') return { action: 'free_form' };
  return planOutbound({
    kind,
    lastInboundAt: as.lastInboundAt,
    now: nowIso(),
    fallbackTemplate,
    providerClosedAt: as.providerClosedAt,
    channel: run.channel === 'instagram' ? 'instagram' : 'whatsapp',
    human,
  });
}

/**
 * What the LLM should know that only the workflow knows. `written`: the lead's messages this
 * reply answers before the workflow applied them (the one-activity turn): a sequence they
 * stop is not mentioned, as it is not once they were applied.
 */
export function conversationFacts(run: LeadRun, lastInboundAt = run.state.lastInboundAt, written: readonly InboundMessage[] = []): string[] {
  const { state } = run;
  const facts = [`The lead is in stage ${state.stage}.`];
  const closes = windowClosesAt(lastInboundAt);
  if (closes && run.channel !== 'webchat') facts.push(`WhatsApp's 24-hour window for free-form messages closes at ${closes}.`);
  const s = state.sequence;
  if (s && (s.cursor.status === 'active' || s.cursor.status === 'paused') && !replyStopsSequence(run, written)) {
    facts.push(`The lead is in the follow-up sequence "${s.def.name}", step ${s.cursor.stepIndex + 1} of ${s.def.steps.length}.`);
  }
  return facts;
}

/** Refused before or after the LLM: the credit (if any) goes back, the event is recorded. */
export async function refuse(run: LeadRun, context: SendContext, requestId: string, reason: string, reference?: string, outboundMessageId?: string): Promise<OutboundResult> {
  if (reference) await releaseCredit(run, reference);
  await event(run, 'outbound_refused', { purpose: context.purpose, reason, ...(outboundMessageId ? { outboundMessageId } : {}) });
  await settleReplay(run, context);
  return { requestId, status: 'refused', reason, ...(outboundMessageId ? { outboundMessageId } : {}) };
}

/** Reserve the message's credit; blocks or unblocks the lead as the balance says. */
export async function reserve(run: LeadRun, context: SendContext, requestId: string, outboundMessageId: string, reference: string): Promise<OutboundResult | undefined> {
  const reservation = await reserveCredit(run, reference, context.purpose === 'reply');
  if (!reservation) {
    // refused by the database (parked as a 'database' dead letter): nothing reserved, nothing sent
    await settleReplay(run, context);
    return { requestId, status: 'refused', reason: FailureType.DatabaseRejected };
  }
  if (!reservation.ok) {
    await creditBlocked(run, context.purpose, outboundMessageId, reservation);
    return { requestId, status: 'refused', reason: reservation.suspended ? FailureType.TenantSuspended : reservation.channelDisabled ? FailureType.ChannelDisabled : 'insufficient_credits' };
  }
  await creditAvailable(run, outboundMessageId);
  return undefined;
}

export async function creditBlocked(run: LeadRun, purpose: string, outboundMessageId: string, reservation: { balance: number; amount: number; suspended?: true; channelDisabled?: true }): Promise<void> {
  run.state.counters.blockedTurns += 1;
  if (reservation.channelDisabled) {
    // the tenant disabled the lead's channel: the message is recorded, the AI does not answer it
    await event(run, FailureType.ChannelDisabled, { purpose }, `channel_disabled:${outboundMessageId}`);
    return;
  }
  if (reservation.suspended) {
    // the platform admin suspended the tenant: nothing goes out, the lead is not credit-blocked
    await event(run, FailureType.TenantSuspended, { purpose }, `tenant_suspended:${outboundMessageId}`);
    return;
  }
  if (!run.state.blocked) {
    run.state.blocked = true;
    await setBlocked(run, true);
  }
  await event(run, 'credit_blocked', { balance: reservation.balance, needed: reservation.amount, purpose }, `credit_blocked:${outboundMessageId}`);
  log.warn('no credit: lead blocked', { leadId: run.leadId, balance: reservation.balance });
}

export async function creditAvailable(run: LeadRun, outboundMessageId: string): Promise<void> {
  if (!run.state.blocked) return;
  run.state.blocked = false;
  await setBlocked(run, false);
  await event(run, 'credit_unblocked', undefined, `credit_unblocked:${outboundMessageId}`);
}

/** Send one message through the whole pipeline. */
export async function sendOutbound(run: LeadRun, what: OutboundWhat, purpose: string, fallbackTemplate?: TemplateRef, ctx: Partial<SendContext> = {}): Promise<OutboundResult> {
  const context: SendContext = { byBot: true, ...ctx, what, purpose, fallbackTemplate };
  const requestId = uuid4();
  // a step, bump-up or template needs consent: the suppression list says, just before the send
  if (needsConsent(sendCategory(what, purpose)) && (await contactSuppressed(run))) {
    return refuse(run, context, requestId, OPTED_OUT, ctx.outboundMessageId ? `reply:${ctx.outboundMessageId}` : undefined);
  }
  let outPlan: OutboundPlan = what.kind === 'template' ? { action: 'template', template: what.template, fallback: false } : plan(run, what.kind, fallbackTemplate, ctx.human);
  // (a reused id may hold a reservation from the reply turn's one-activity try: it goes back)
  if (outPlan.action === 'refuse') return refuse(run, context, requestId, outPlan.reason, ctx.outboundMessageId ? `reply:${ctx.outboundMessageId}` : undefined);

  const outboundMessageId = ctx.outboundMessageId ?? uuid4();
  const reference = `reply:${outboundMessageId}`;
  const refused = await reserve(run, context, requestId, outboundMessageId, reference);
  if (refused) return refused;

  let text = what.kind === 'text' ? what.text : '';
  let knowledge: PlannedSend['knowledge'];
  // a rich message goes out as the lead's channel can send it (contract/rich.ts degrade): natively, converted, or as text
  let rich: RichMessage | undefined;
  if (what.kind === 'rich') ({ text, rich } = channelForm(what.message, run.channel));
  if (what.kind === 'ai' && outPlan.action === 'free_form') {
    const generated = await generate(run, what, context, requestId, outboundMessageId, reference);
    if ('status' in generated) return generated;
    text = generated.text;
    // the model answered with buttons or a list (send_buttons, send_list): sent as a rich message, degraded to the channel
    if (generated.rich) ({ text, rich } = channelForm(generated.rich, run.channel));
    knowledge = generated.knowledge;
    // the window may have closed while the LLM worked
    outPlan = plan(run, 'ai', fallbackTemplate, ctx.human);
  }
  await pace(run);
  if (outPlan.action === 'refuse') return refuse(run, context, requestId, outPlan.reason, reference);
  const send: PlannedSend = {
    plan: outPlan.action === 'template' ? { action: 'template', template: outPlan.template } : { action: 'free_form' },
    text,
    outboundMessageId,
    reference,
    ...(outPlan.action === 'free_form' && outPlan.humanAgentTag ? { humanAgent: true } : {}),
    ...(rich && outPlan.action === 'free_form' ? { rich } : {}),
    ...(knowledge && outPlan.action === 'free_form' ? { knowledge } : {}),
  };
  return deliver(run, send, context, requestId);
}

/**
 * Whether the contact is suppressed now: a STOP still in the buffer says so at once (its turn has
 * not run yet); otherwise the tenant's suppression list in the database, which a STOP on any
 * channel of the tenant (or the API) wrote. The answer is kept in the state (the lead's query).
 */
export async function contactSuppressed(run: LeadRun): Promise<boolean> {
  const { state } = run;
  if (pendingOptOut(state.inbox, run.optOut)) return true;
  const r = await guarded(
    run,
    'check the suppression list',
    () => database.contactSuppressed.executeWithOptions(run.options(DATABASE, 'Check the suppression list'), [{ tenantId: run.tenantId, channelAccountId: run.channelAccountId, contactId: run.contactId }]),
    { suppressed: true }, // refused for good (parked): the safe side
  );
  if (state.optedOut !== r.suppressed) {
    state.optedOut = r.suppressed;
    run.showDetails();
  }
  return r.suppressed;
}

/** Ask the LLM; a handoff, a repeat or a failure ends the send here (credit released). */
async function generate(run: LeadRun, what: Extract<OutboundWhat, { kind: 'ai' }>, context: SendContext, requestId: string, outboundMessageId: string, reference: string): Promise<{ text: string; rich?: RichMessage; knowledge?: PlannedSend['knowledge'] } | OutboundResult> {
  const { state } = run;
  context.beforeLlm?.();
  try {
    if (failureIn(LLM_NON_RETRYABLE, failureType(context.firstTry))) throw context.firstTry;
    const reply = await llm.generateReply.executeWithOptions(run.options(LLM, `Ask the LLM (${context.purpose})`), [
      {
        tenantId: run.tenantId,
        leadId: run.leadId,
        channelAccountId: run.channelAccountId,
        stage: state.stage,
        instruction: what.instruction,
        purpose: what.llmPurpose,
        allowHandoff: what.allowHandoff,
        facts: conversationFacts(run),
        ...(what.allowHandoff ? { channel: run.channel, ...followUpsForTurn(run) } : {}),
      },
    ]);
    // the model's tool calls (only a reply offers tools): events, a stage change, a scheduled follow-up
    if (reply.toolCalls?.length) await applyTools(run, { calls: reply.toolCalls, ...(reply.effects ? { effects: reply.effects } : {}) }, outboundMessageId);
    if (reply.handoff) return handedOff(run, context, requestId, reference, reply.handoff.reason);
    if (reply.rich) return { text: reply.text, rich: reply.rich, ...(reply.knowledge?.length ? { knowledge: reply.knowledge } : {}) };
    const text = what.maxWords ? trimToWords(reply.text, what.maxWords) : reply.text;
    if (what.avoidRepeats && isRepeat(text, state.recentBotMessages ?? [])) return refuse(run, context, requestId, 'repeat', reference);
    return { text, ...(reply.knowledge?.length ? { knowledge: reply.knowledge } : {}) };
  } catch (err) {
    state.counters.failedReplies += 1;
    await releaseCredit(run, reference);
    await event(run, 'reply_failed', { step: 'llm', purpose: context.purpose, reason: failureReason(err), type: failureType(err) }, `reply_failed:${outboundMessageId}`);
    // the LLM's retries ran out (or its configuration is wrong): park the turn for an admin
    const deadLetterId = await park(run, 'reply', context, err);
    return { requestId, status: 'parked', deadLetterId, reason: failureReason(err) };
  }
}

/** The model asked for a human instead of answering (`reference`: the credit to release, if still held). */
export async function handedOff(run: LeadRun, context: SendContext, requestId: string, reference: string | undefined, reason: string): Promise<OutboundResult> {
  if (reference) await releaseCredit(run, reference);
  await event(run, 'llm_handoff', { reason });
  const ok = await changeMode(run, 'handoff', 'llm_tool');
  await settleReplay(run, context);
  return { requestId, status: 'refused', reason: ok ? 'handed_off' : 'handoff_refused' };
}

/** When the next message to this lead may go out (minimum gap plus jitter). */
export function sendNotBefore(run: LeadRun): string {
  const pacing = run.settings.pacing ?? DEFAULT_PACING[run.channel];
  // Math.random in workflow code is the SDK's seeded, replay-safe replacement; the policy gets it as an input
  return nextSendAt({ lastOutboundAt: run.state.lastOutboundAt, now: nowIso(), policy: pacing, random: Math.random() });
}

export async function pace(run: LeadRun): Promise<void> {
  const wait = msUntil(sendNotBefore(run));
  if (wait > 0) await sleep(wait, { summary: `Pacing: ${Math.ceil(wait / 1000)} s since the last message` });
}

/** Call the channel's send activity once (Temporal retries it by the delivery policy, `attemptsUsed` tries fewer). */
async function callSend(run: LeadRun, send: PlannedSend, purpose: string, attemptsUsed = 0): Promise<void> {
  const options = deliveryOptions((run.settings.deliveryMaxAttempts ?? DEFAULT_DELIVERY_ATTEMPTS) - attemptsUsed);
  const base = { tenantId: run.tenantId, leadId: run.leadId, channelAccountId: run.channelAccountId, outboundMessageId: send.outboundMessageId, to: run.contactId };
  // an AI text records the knowledge-base passages it was written from
  const knowledge = send.knowledge?.length ? { knowledge: send.knowledge } : {};
  if (send.plan.action === 'free_form' && send.rich) {
    // buttons, lists, media, location, reactions: one activity for every channel (activities/channels/rich.ts)
    await delivery.sendRichMessage.executeWithOptions(run.options(options, `Send ${purpose} (${send.rich.kind}) on ${run.channel}${send.humanAgent ? ' (HUMAN_AGENT)' : ''}`), [
      { ...base, channel: run.channel, message: send.rich, ...knowledge, ...(send.humanAgent ? { humanAgent: true } : {}) },
    ]);
  } else if (send.plan.action === 'template') {
    await delivery.sendWhatsAppTemplate.executeWithOptions(run.options(options, `Send template ${send.plan.template.name}`), [{ ...base, template: send.plan.template }]);
  } else if (run.channel === 'instagram') {
    await delivery.sendInstagramText.executeWithOptions(run.options(options, `Send ${purpose} on Instagram${send.humanAgent ? ' (HUMAN_AGENT)' : ''}`), [
      { ...base, text: send.text, ...knowledge, ...(send.humanAgent ? { humanAgent: true } : {}) },
    ]);
  } else if (run.channel === 'webchat') {
    await delivery.sendWebChatText.executeWithOptions(run.options(options, `Send ${purpose} on web chat`), [{ ...base, text: send.text, ...knowledge }]);
  } else {
    await delivery.sendWhatsAppText.executeWithOptions(run.options(options, `Send ${purpose} on WhatsApp`), [{ ...base, text: send.text, ...knowledge }]);
  }
}

/**
 * Deliver a planned send and capture its credit; a failure goes where policy/send-failure says.
 * `firstTry`: how the reply turn's one attempt at this send failed; it counts as the first try.
 */
export async function deliver(run: LeadRun, planned: PlannedSend, context: SendContext, requestId: string, firstTry?: { type?: string; message: string }): Promise<OutboundResult> {
  let send = planned;
  let pending: unknown;
  let attemptsUsed = 0;
  if (firstTry) {
    attemptsUsed = 1;
    const tries = run.settings.deliveryMaxAttempts ?? DEFAULT_DELIVERY_ATTEMPTS;
    // a failure the send's retry policy would not retry (or no try left) goes straight to the policy
    if (isNonRetryableSendFailure(firstTry.type) || tries <= 1) pending = ApplicationFailure.create({ type: firstTry.type, message: firstTry.message, nonRetryable: true });
  }
  for (;;) {
    if (pending === undefined) {
      try {
        await callSend(run, send, context.purpose, attemptsUsed);
        return sent(run, send, context, requestId);
      } catch (err) {
        pending = err;
      }
    }
    const err = pending;
    pending = undefined;
    attemptsUsed = 0;
    const next = await afterSendFailure(run, send, context, requestId, err);
    if ('status' in next) return next;
    send = next.send;
  }
}

/** Apply the send-failure policy: a result, or the send to try again (after a circuit wait, as a template). */
async function afterSendFailure(run: LeadRun, send: PlannedSend, context: SendContext, requestId: string, err: unknown): Promise<OutboundResult | { send: PlannedSend }> {
  const { state } = run;
  const type = failureType(err);
  const reason = failureReason(err);
  const { purpose } = context;
  const human = context.human;
  const decision = onSendFailure({
    type,
    now: nowIso(),
    attempts: context.attempts ?? 0,
    replaying: context.deadLetterId !== undefined,
    isTemplate: send.plan.action === 'template',
    templateAfterClose: (() => {
      const p = plan(run, context.what.kind === 'template' ? 'text' : context.what.kind, context.fallbackTemplate, human, { providerClosedAt: nowIso(), lastInboundAt: state.lastInboundAt });
      return p.action === 'template' ? p.template : undefined;
    })(),
  });
  switch (decision.action) {
    case 'wait_for_circuit':
      // a long wait hands over to a new run with this send carried as a deferral (same outbound id, credit still held)
      await waitForCircuit(run, reason, () => parkedOperation(run, 'send', context, err, { id: uuid4(), send, retryAt: nowIso(), attempts: context.attempts ?? 0 }));
      return { send }; // same outbound id: effectively once
    case 'switch_to_template':
    case 'refuse':
      // 131047: the provider says the window is closed; later sends take the template path until the lead writes
      state.providerWindowClosedAt = nowIso();
      await event(run, 'window_closed_by_provider', { purpose, outboundMessageId: send.outboundMessageId });
      if (decision.action === 'switch_to_template') return { send: { ...send, plan: { action: 'template', template: decision.template }, text: '', outboundMessageId: uuid4() } };
      return refuse(run, context, requestId, decision.reason, send.reference, send.outboundMessageId);
    case 'fail':
    case 'defer':
    case 'park':
      break;
  }
  state.counters.failedReplies += 1;
  await event(run, 'reply_failed', { step: 'delivery', purpose, reason, type, outboundMessageId: send.outboundMessageId }, `reply_failed:${send.outboundMessageId}:${context.attempts ?? 0}`);
  if (decision.action === 'fail') {
    // recorded on the message; another try cannot help
    await releaseCredit(run, send.reference);
    await settleReplay(run, context);
    return { requestId, status: 'failed', outboundMessageId: send.outboundMessageId, reason };
  }
  if (decision.action === 'defer') {
    // 131049: wait at least a day, then try the same message once more
    const deferred = parkedOperation(run, 'send', context, err, { id: uuid4(), send, retryAt: decision.retryAt, attempts: 1 });
    state.deferred = [...(state.deferred ?? []), deferred];
    run.changed();
    await event(run, 'send_deferred', { purpose, outboundMessageId: send.outboundMessageId, retryAt: deferred.retryAt, reason });
    return { requestId, status: 'parked', outboundMessageId: send.outboundMessageId, reason };
  }
  // retries ran out (transient errors, rate limits, timeouts): park it for an admin
  const deadLetterId = await park(run, 'send', { ...context }, err, send);
  return { requestId, status: 'parked', deadLetterId, outboundMessageId: send.outboundMessageId, reason };
}

/** The provider accepted the message: capture the credit and remember it. */
async function sent(run: LeadRun, send: PlannedSend, context: SendContext, requestId: string): Promise<OutboundResult> {
  await captureCredit(run, send.reference, send.outboundMessageId);
  noteSent(run, send, context.byBot, context.what.kind !== 'template');
  await settleReplay(run, context);
  return { requestId, status: 'sent', outboundMessageId: send.outboundMessageId };
}

/** The state after a message went out (and its credit was captured). */
export function noteSent(run: LeadRun, send: Pick<PlannedSend, 'text' | 'plan'>, byBot: boolean, freeText: boolean): void {
  const { state } = run;
  state.counters.replies += 1;
  state.lastOutboundAt = nowIso();
  state.lastOutboundByBot = byBot;
  const shown = send.plan.action === 'template' ? `[template ${send.plan.template.name}]` : send.text || '[message]';
  state.recentMessages = appendRecent(state.recentMessages, { from: byBot ? 'bot' : 'human', at: state.lastOutboundAt, text: shown });
  if (freeText && send.text && byBot && send.plan.action !== 'template') {
    state.recentBotMessages = [...(state.recentBotMessages ?? []), send.text].slice(-RECENT_BOT_MESSAGES);
  }
}
