/**
 * The lead conversation: one long-lived workflow per (channel account, contact).
 * Glue only: it receives messages, asks the pure policies what to do, and carries it out.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import {
  inboundSignal,
  stateQuery,
  type InboundMessage,
  type LeadCarriedState,
  type LeadStateSnapshot,
  type LeadWorkflowInput,
} from './definitions';
import { SA } from './search-attributes';
import { shouldContinueAsNew } from './policy/continue-as-new';
import { admitInbound } from './policy/dedup';
import { leadDetails } from './policy/summary';

/** Database work: retried until the database is back (nothing is lost while it is down). */
const PERSISTENCE: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute' },
};
/** LLM: a few tries with backoff; a rejected request (key, model) is not retried. */
const LLM: ActivityOptions = {
  startToCloseTimeout: '90 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '30 seconds',
    maximumAttempts: 4,
    nonRetryableErrorTypes: ['llm_config', 'agent_not_found'],
  },
};
/** Delivery: rate limits and transient provider errors retry; permanent and auth errors do not. */
const DELIVERY: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '1 second',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 10,
    nonRetryableErrorTypes: ['provider_permanent', 'provider_auth', 'channel_not_found'],
  },
};

const db = proxyActivities<Activities>(PERSISTENCE);
const llm = proxyActivities<Activities>(LLM);
const delivery = proxyActivities<Activities>(DELIVERY);

function initialState(input: LeadWorkflowInput): LeadCarriedState {
  return {
    stage: 'New',
    mode: 'ai',
    blocked: false,
    seenInboundIds: [],
    inbox: [],
    counters: { inbound: 0, duplicates: 0, turns: 0, replies: 0, failedReplies: 0, blockedTurns: 0, runs: 0 },
    ...(input.carried ?? {}),
  };
}

function failureReason(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return `${(err.cause as Error).name}: ${err.cause.message}`;
  return err instanceof Error ? err.message : String(err);
}

function failureType(err: unknown): string | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? (err.cause.type ?? undefined) : undefined;
}

export async function leadConversation(input: LeadWorkflowInput): Promise<void> {
  const state = initialState(input);
  state.counters.runs += 1;
  const { tenantId, channelAccountId, channel, contactId, settings } = input;
  const { workflowId } = workflowInfo();
  let turnInFlight = false;

  setHandler(inboundSignal, (message: InboundMessage) => {
    const decision = admitInbound(state.seenInboundIds, message.providerMessageId, settings.dedupWindow);
    if (!decision.admitted) {
      state.counters.duplicates += 1;
      return;
    }
    state.seenInboundIds = decision.seen;
    state.counters.inbound += 1;
    state.inbox.push(message);
  });

  setHandler(stateQuery, (): LeadStateSnapshot => {
    const { inbox, ...rest } = state;
    return {
      ...rest,
      workflowId,
      tenantId,
      channelAccountId,
      channel,
      contactId,
      pendingInbound: inbox.length,
      historyLength: workflowInfo().historyLength,
    };
  });

  const showDetails = () => setCurrentDetails(leadDetails(state));

  if (!state.leadId) {
    const lead = await db.ensureLead.executeWithOptions({ ...PERSISTENCE, summary: 'Create or find the lead' }, [
      { tenantId, channelAccountId, channel, contactId, name: input.contactName, workflowId },
    ]);
    state.leadId = lead.leadId;
    state.stage = lead.stage;
    state.mode = lead.mode;
    state.blocked = lead.blocked;
    upsertSearchAttributes([
      { key: SA.LeadId, value: lead.leadId },
      { key: SA.LeadStage, value: lead.stage },
      { key: SA.LeadMode, value: lead.mode },
    ]);
  }
  const leadId = state.leadId;
  showDetails();

  async function event(type: string, data?: unknown, dedupKey?: string): Promise<void> {
    await db.recordLeadEvent.executeWithOptions({ ...PERSISTENCE, summary: `Event: ${type}` }, [{ tenantId, leadId, type, data, dedupKey }]);
  }

  async function runTurn(batch: InboundMessage[]): Promise<void> {
    await db.recordInbound.executeWithOptions({ ...PERSISTENCE, summary: `Record ${batch.length} inbound message(s)` }, [
      { tenantId, leadId, messages: batch },
    ]);
    const latest = batch.reduce((a, m) => (m.sentAt > a ? m.sentAt : a), state.lastInboundAt ?? '');
    if (latest && latest !== state.lastInboundAt) {
      state.lastInboundAt = latest;
      upsertSearchAttributes([{ key: SA.LastInboundAt, value: new Date(latest) }]);
    }
    if (state.mode !== 'ai') return;

    state.counters.turns += 1;
    const outboundMessageId = uuid4();
    const reference = `reply:${outboundMessageId}`;
    const reservation = await db.reserveCredit.executeWithOptions({ ...PERSISTENCE, summary: 'Reserve credit for a reply' }, [
      { tenantId, reference },
    ]);
    if (!reservation.ok) {
      state.counters.blockedTurns += 1;
      if (!state.blocked) {
        state.blocked = true;
        await db.setLeadBlocked({ leadId, blocked: true });
      }
      await event('credit_blocked', { balance: reservation.balance, needed: reservation.amount }, `credit_blocked:${outboundMessageId}`);
      log.warn('no credit for a reply: lead blocked', { leadId, balance: reservation.balance });
      return;
    }
    if (state.blocked) {
      state.blocked = false;
      await db.setLeadBlocked({ leadId, blocked: false });
      await event('credit_unblocked', undefined, `credit_unblocked:${outboundMessageId}`);
    }

    let replyText: string;
    try {
      const reply = await llm.generateReply.executeWithOptions({ ...LLM, summary: 'Ask the LLM for a reply' }, [
        { tenantId, leadId, channelAccountId },
      ]);
      replyText = reply.text;
    } catch (err) {
      state.counters.failedReplies += 1;
      await db.releaseCredit({ reference });
      await event('reply_failed', { step: 'llm', reason: failureReason(err), type: failureType(err) }, `reply_failed:${outboundMessageId}`);
      return;
    }

    try {
      await delivery.sendWhatsAppText.executeWithOptions({ ...DELIVERY, summary: `Send reply to ${contactId}` }, [
        { tenantId, leadId, channelAccountId, outboundMessageId, to: contactId, text: replyText },
      ]);
    } catch (err) {
      state.counters.failedReplies += 1;
      await db.releaseCredit({ reference });
      await event('reply_failed', { step: 'delivery', reason: failureReason(err), type: failureType(err), outboundMessageId }, `reply_failed:${outboundMessageId}`);
      return;
    }
    await db.captureCredit.executeWithOptions({ ...PERSISTENCE, summary: 'Capture the reply credit' }, [{ reference, messageId: outboundMessageId }]);
    state.counters.replies += 1;
    state.lastOutboundAt = new Date().toISOString();
  }

  const canNow = () =>
    shouldContinueAsNew({
      historyLength: workflowInfo().historyLength,
      eventBudget: settings.eventBudget,
      serverSuggested: workflowInfo().continueAsNewSuggested,
      turnInFlight,
    });

  for (;;) {
    await condition(() => state.inbox.length > 0 || canNow());
    if (canNow()) {
      // Hand over to a fresh run between turns, even for a lead that never goes quiet: wait
      // for running handlers, then pass on everything buffered in the carried inbox.
      await condition(allHandlersFinished);
      await continueAsNew<typeof leadConversation>({ ...input, carried: { ...state } });
    }
    const batch = state.inbox.splice(0, state.inbox.length);
    turnInFlight = true;
    try {
      await runTurn(batch);
    } finally {
      turnInFlight = false;
      showDetails();
    }
  }
}
