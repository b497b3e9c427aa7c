/**
 * The lead conversation: one long-lived workflow per (channel account, contact).
 * Glue only: it receives messages, asks the pure policies what to do, and carries it out.
 *
 * Versioning: runs that started before the conversation engine (patch ENGINE_PATCH) keep the
 * first version's behaviour until they continue as new; the recorded histories in
 * test/replay/histories prove that both paths replay.
 */
import {
  ActivityFailure,
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  log,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  uuid4,
  workflowInfo,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Activities } from '../../activities';
import {
  circuitClosedSignal,
  deliveryStatusSignal,
  discardDeadLetterUpdate,
  inboundSignal,
  replayDeadLetterUpdate,
  sendMessageUpdate,
  sequenceUpdate,
  setModeUpdate,
  setStageUpdate,
  stateQuery,
  type DeliveryStatus,
  type InboundMessage,
  type LeadCarriedState,
  type OutboundWhat,
  type ParkedOperation,
  type LeadStateSnapshot,
  type LeadWorkflowInput,
  type OutboundRequest,
  type OutboundResult,
  type SequenceCommand,
  DATABASE_REJECTED,
  DEFAULT_LEAD_SETTINGS,
} from './definitions';
import { shouldContinueAsNew } from './policy/continue-as-new';
import { bumpUpDueAt, DEFAULT_BUMP_UP, isRepeat, trimToWords } from './policy/bump-up';
import { DEFAULT_DEBOUNCE, flushAt } from './policy/debounce';
import { admitInbound } from './policy/dedup';
import { boundSentAt, capParked, inboxAdmission, MAX_OUTBOX, newInbound, parkedRef, resumesFirst } from './policy/bounds';
import { writtenByLead } from './policy/inbound';
import { aiMayReply, matchHandoffKeyword, sequencesMayRun, transitionMode, type ModeRequest, type ModeRequestSource } from './policy/handoff';
import { DEFAULT_PACING, nextSendAt } from './policy/pacing';
import * as seqPolicy from './policy/sequence';
import { leadDetails } from './policy/summary';
import { guessTimeZone } from './policy/time-zone';
import { planOutbound, windowClosesAt, type OutboundPlan, type TemplateRef } from './policy/window';
import { SA } from './search-attributes';

export const ENGINE_PATCH = 'conversation-engine-v1';
/** Dead letters, circuit breaker waits, 131047/131049 handling, failed-status signals, Instagram and web chat sends. */
export const DELIVERY_PATCH = 'delivery-v2';
/** 131049: Meta limits marketing messages to this user; try again after at least a day. */
const SPAM_LIMIT_WAIT_MS = 25 * 60 * 60 * 1000;
/** While the circuit breaker is open, check it this often (a close by API also signals). */
const CIRCUIT_POLL_MIN_MS = 5 * 60 * 1000;
const CIRCUIT_POLL_MAX_MS = 60 * 60 * 1000;
/** Failure types after which another try cannot help: recorded, not parked. */
const PERMANENT_SEND_FAILURES = new Set(['provider_permanent', 'channel_not_found', 'template_not_found', 'template_not_approved', 'template_variables', 'not_implemented']);
const DEFAULT_AUTO_HANDOFF_COOLDOWN_MS = 30 * 60 * 1000;
const DEFAULT_EXTRACTION_IDLE_MS = 10 * 60 * 1000;
const RECENT_BOT_MESSAGES = 5;

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
    nonRetryableErrorTypes: ['llm_config', 'agent_not_found', 'llm_budget_exceeded'],
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
    nonRetryableErrorTypes: [
      'provider_permanent',
      'provider_auth',
      'channel_not_found',
      'template_not_found',
      'template_not_approved',
      'template_variables',
      'provider_reengagement',
      'provider_spam_limited',
      'channel_circuit_open',
      'not_implemented',
    ],
  },
};

/** Read receipt and typing indicator: best effort, a few quick tries. */
const READ_RECEIPT: ActivityOptions = {
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '5 seconds', maximumAttempts: 3 },
};

/** Extraction: a few tries; repeated failure is recorded and counted, never fails the lead. */
const EXTRACTION: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 3, nonRetryableErrorTypes: ['llm_config', 'agent_not_found'] },
};

const db = proxyActivities<Activities>(PERSISTENCE);
const llm = proxyActivities<Activities>(LLM);
const delivery = proxyActivities<Activities>(DELIVERY);
const extraction = proxyActivities<Activities>(EXTRACTION);

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

function nowIso(): string {
  return new Date().toISOString();
}

function msUntil(iso: string): number {
  return Math.max(0, new Date(iso).getTime() - Date.now());
}

type Outbound = OutboundWhat;

/** How one send goes out once its text (or template) is known. */
type PlannedSend = NonNullable<ParkedOperation['send']>;

/** Where a send came from, so a parked one can be replayed the same way. */
interface SendContext {
  what: Outbound;
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
}

export async function leadConversation(input: LeadWorkflowInput): Promise<void> {
  const state = initialState(input);
  state.counters.runs += 1;
  // a run before ids-only carried whole parked operations: keep their ids (the database has them)
  if (state.deadLetters) state.deadLetters = state.deadLetters.map(parkedRef);
  const { tenantId, channelAccountId, channel, contactId } = input;
  // the worker's settings arrive with ensureLead (below); until then the input's (older runs) or the defaults
  let settings = input.settings ?? DEFAULT_LEAD_SETTINGS;
  const { workflowId } = workflowInfo();
  const engine = patched(ENGINE_PATCH);
  const delivery2 = engine && patched(DELIVERY_PATCH);
  const deliveryOptions = (): ActivityOptions => (settings.deliveryMaxAttempts ? { ...DELIVERY, retry: { ...DELIVERY.retry, maximumAttempts: settings.deliveryMaxAttempts } } : DELIVERY);
  let turnInFlight = false;
  /** Bumped by circuitClosedSignal. */
  let circuitSignals = 0;
  const pendingStatuses: DeliveryStatus[] = [];
  const replayQueue: { deadLetterId: string; requestId: string }[] = [];
  const replaying = new Set<string>();
  /** Bumped by every handler so the main loop re-evaluates its plan. */
  let version = 0;
  const outbox: OutboundRequest[] = state.outbox ?? [];
  const results = new Map<string, OutboundResult>();
  /** Manual messages already answered as queued (circuit open): their result has no taker. */
  const queued = new Set<string>();

  setHandler(inboundSignal, async (message: InboundMessage) => {
    const decision = admitInbound(state.seenInboundIds, message.providerMessageId, settings.dedupWindow);
    if (!decision.admitted) {
      state.counters.duplicates += 1;
      return;
    }
    state.seenInboundIds = decision.seen;
    state.counters.inbound += 1;
    if (engine) {
      const at = nowIso();
      // a provider time far ahead (Meta's 12-digit seconds) would poison the window and the search attributes
      const m: InboundMessage = { ...message, sentAt: boundSentAt(message.sentAt, at), receivedAt: at };
      state.inboxFirstAt ??= at;
      state.inboxLastAt = at;
      const current = state.leadId;
      if (!current || inboxAdmission(state.inbox, m) === 'buffer') {
        state.inbox.push(m);
      } else {
        // the buffer is full (count or bytes): write it and this message to the database now
        // and keep only a count; the next turn answers them all
        const batch = [...state.inbox.splice(0, state.inbox.length), m];
        const prev = state.inboxRecorded;
        const lastSentAt = batch.reduce((a, x) => (x.sentAt > a ? x.sentAt : a), prev?.lastSentAt ?? '');
        state.inboxRecorded = { count: (prev?.count ?? 0) + batch.length, lastSentAt };
        version += 1;
        await guarded('record buffered inbound messages', () => db.recordInbound.executeWithOptions({ ...PERSISTENCE, summary: `Record ${batch.length} buffered inbound message(s)` }, [{ tenantId, leadId: current, messages: batch, batchId: uuid4() }]), undefined);
      }
    } else {
      state.inbox.push(message);
    }
    version += 1;
  });

  setHandler(stateQuery, (): LeadStateSnapshot => {
    const { inbox, ...rest } = state;
    return {
      ...rest,
      outbox: [...outbox],
      workflowId,
      tenantId,
      channelAccountId,
      channel,
      contactId,
      pendingInbound: inbox.length + (state.inboxRecorded?.count ?? 0),
      historyLength: workflowInfo().historyLength,
    };
  });

  const showDetails = () => setCurrentDetails(leadDetails(state));

  // the engine refreshes the lead's facts (agent keywords, time zone) at every run start
  const lead =
    !state.leadId || engine
      ? await db.ensureLead.executeWithOptions({ ...PERSISTENCE, summary: 'Create or find the lead' }, [
          { tenantId, channelAccountId, channel, contactId, name: input.contactName, workflowId },
        ])
      : undefined;
  settings = lead?.settings ?? settings; // histories recorded before ensureLead returned settings have none
  if (!state.leadId && lead) {
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
  const leadId = state.leadId ?? '';
  if (!leadId) throw ApplicationFailure.create({ type: 'lead_missing', message: 'the lead has no id', nonRetryable: true });
  if (engine && lead) {
    state.handoffKeywords = lead.handoffKeywords;
    state.timeZone = lead.timeZone ?? state.timeZone ?? guessTimeZone(contactId);
    if (lead.autoEnroll && !state.sequence && sequencesMayRun(state.mode)) {
      const enrolled = seqPolicy.enroll(lead.autoEnroll, nowIso());
      if (enrolled.ok) {
        state.sequence = { def: lead.autoEnroll, cursor: enrolled.cursor };
        await event('sequence_enroll', { sequenceId: lead.autoEnroll.id, cursor: enrolled.cursor, auto: true });
      }
    }
    if (state.inbox.length > 0 && !state.inboxFirstAt) {
      // carried from a run before the engine: flush as a burst that starts now
      state.inboxFirstAt = nowIso();
      state.inboxLastAt = state.inboxFirstAt;
    }
  }
  showDetails();

  async function event(type: string, data?: unknown, dedupKey?: string): Promise<void> {
    await guarded(`record event ${type}`, () => db.recordLeadEvent.executeWithOptions({ ...PERSISTENCE, summary: `Event: ${type}` }, [{ tenantId, leadId, type, data, dedupKey }]), undefined);
  }

  // ---- database calls: each with a summary; a value the database refuses for good is parked ----

  /**
   * Run a database activity. A deterministic refusal (database_rejected: SQLSTATE class 22 or
   * 23, not retried by the activity) does not stall the lead: it is parked as a dead letter of
   * kind 'database' (ids and the SQLSTATE only) and the workflow carries on with `fallback`.
   */
  async function guarded<T>(what: string, call: () => Promise<T>, fallback: T): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (failureType(err) !== DATABASE_REJECTED) throw err;
      await parkRejected(what, err);
      return fallback;
    }
  }

  const store = {
    updateLeadState: (input: { stage?: string; mode?: LeadCarriedState['mode'] }) =>
      guarded('update the lead', () => db.updateLeadState.executeWithOptions({ ...PERSISTENCE, summary: `Mirror ${input.mode ? 'mode' : 'stage'} to the database` }, [{ leadId, ...input }]), undefined),
    setLeadBlocked: (blocked: boolean) =>
      guarded('mark the lead blocked', () => db.setLeadBlocked.executeWithOptions({ ...PERSISTENCE, summary: blocked ? 'Mark the lead blocked (no credit)' : 'Mark the lead unblocked' }, [{ leadId, blocked }]), undefined),
    releaseCredit: (reference: string) =>
      guarded('release a credit', () => db.releaseCredit.executeWithOptions({ ...PERSISTENCE, summary: 'Release the held credit' }, [{ reference }]), undefined),
    resolveDeadLetter: (id: string, status: 'replayed' | 'discarded') =>
      guarded('resolve a dead letter', () => db.resolveDeadLetter.executeWithOptions({ ...PERSISTENCE, summary: `Mark the dead letter ${status}` }, [{ id, status }]), undefined),
  };

  // ---- sequence, stage and mode: pure transitions applied by updates and events ----

  function applySequence(def: seqPolicy.SequenceDef, next: seqPolicy.SequenceTransition): seqPolicy.SequenceCursor {
    if (!next.ok) throw ApplicationFailure.create({ type: 'invalid_transition', message: next.reason, nonRetryable: true });
    state.sequence = { def, cursor: next.cursor };
    version += 1;
    return next.cursor;
  }

  function sequenceTransition(cmd: SequenceCommand): seqPolicy.SequenceTransition {
    const now = nowIso();
    if (cmd.action === 'enroll') {
      if (!sequencesMayRun(state.mode)) return { ok: false, reason: `sequences do not run while the lead is in ${state.mode} mode` };
      const current = state.sequence?.cursor;
      if (current && (current.status === 'active' || current.status === 'paused')) {
        return { ok: false, reason: `the lead is already in sequence ${state.sequence!.def.name}; reset or stop it first` };
      }
      return seqPolicy.enroll(cmd.sequence, now);
    }
    if (!state.sequence) return { ok: false, reason: 'the lead is not enrolled in a sequence' };
    const { def, cursor } = state.sequence;
    switch (cmd.action) {
      case 'pause':
        return seqPolicy.pause(cursor, now);
      case 'resume':
        return seqPolicy.resume(cursor, now);
      case 'reset':
        if (!sequencesMayRun(state.mode)) return { ok: false, reason: `sequences do not run while the lead is in ${state.mode} mode` };
        return seqPolicy.reset(cursor, def, now);
      case 'skip':
        return seqPolicy.skip(cursor, def, now);
    }
  }

  /** Stop the running sequence if it stops on this event; returns whether it stopped. */
  async function stopSequenceOn(evt: seqPolicy.StopCondition): Promise<boolean> {
    const s = state.sequence;
    if (!s || (s.cursor.status !== 'active' && s.cursor.status !== 'paused')) return false;
    const reason = evt === 'handed_off' ? evt : seqPolicy.stopReasonFor(s.def, evt);
    if (!reason) return false;
    const next = seqPolicy.stop(s.cursor, reason, nowIso());
    if (!next.ok) return false;
    state.sequence = { def: s.def, cursor: next.cursor };
    version += 1;
    await event('sequence_stopped', { sequenceId: s.def.id, reason, stepIndex: s.cursor.stepIndex });
    return true;
  }

  async function changeMode(request: ModeRequest, source: ModeRequestSource): Promise<boolean> {
    const t = transitionMode({
      mode: state.mode,
      request,
      source,
      now: nowIso(),
      lastHandbackAt: state.lastHandbackAt,
      autoHandoffCooldownMs: settings.autoHandoffCooldownMs ?? DEFAULT_AUTO_HANDOFF_COOLDOWN_MS,
    });
    if (!t.ok) {
      if (source !== 'api') await event('handoff_refused', { request, source, reason: t.reason });
      return false;
    }
    const from = state.mode;
    state.mode = t.mode;
    if (request === 'handback') state.lastHandbackAt = nowIso();
    version += 1;
    upsertSearchAttributes([{ key: SA.LeadMode, value: t.mode }]);
    await store.updateLeadState({ mode: t.mode });
    await event('mode_changed', { from, to: t.mode, request, source });
    if (!sequencesMayRun(t.mode)) await stopSequenceOn('handed_off');
    return true;
  }

  if (engine) {
    setHandler(
      sequenceUpdate,
      async (cmd) => {
        const cursor = applySequence(cmd.action === 'enroll' ? cmd.sequence : state.sequence!.def, sequenceTransition(cmd));
        await event(`sequence_${cmd.action}`, { sequenceId: state.sequence!.def.id, cursor });
        return cursor;
      },
      {
        validator: (cmd) => {
          const t = sequenceTransition(cmd);
          if (!t.ok) throw new Error(t.reason);
        },
      },
    );

    setHandler(
      setStageUpdate,
      async ({ stage }) => {
        const from = state.stage;
        state.stage = stage;
        version += 1;
        upsertSearchAttributes([{ key: SA.LeadStage, value: stage }]);
        await store.updateLeadState({ stage });
        await event('stage_changed', { from, to: stage });
        const sequenceStopped = await stopSequenceOn('stage_changed');
        return { stage, sequenceStopped };
      },
      {
        validator: ({ stage }) => {
          if (!stage || stage.length > 100) throw new Error('stage must be 1 to 100 characters');
          if (stage === state.stage) throw new Error(`the lead is already in stage ${stage}`);
        },
      },
    );

    setHandler(
      setModeUpdate,
      async ({ request }) => {
        await changeMode(request, 'api');
        return { mode: state.mode };
      },
      {
        validator: ({ request }) => {
          const t = transitionMode({
            mode: state.mode,
            request,
            source: 'api',
            now: nowIso(),
            lastHandbackAt: state.lastHandbackAt,
            autoHandoffCooldownMs: settings.autoHandoffCooldownMs ?? DEFAULT_AUTO_HANDOFF_COOLDOWN_MS,
          });
          if (!t.ok) throw new Error(t.reason);
        },
      },
    );

    setHandler(
      sendMessageUpdate,
      async (req) => {
        outbox.push({ ...req, source: req.source ?? 'manual' });
        version += 1;
        // behind an open circuit breaker the message is queued: answer at once (the caller gets
        // 202), so waiting requests never pile up against Temporal's in-flight update limit
        await condition(() => results.has(req.requestId) || state.circuitWaitSince !== undefined);
        const result = results.get(req.requestId);
        results.delete(req.requestId);
        if (result) return result;
        queued.add(req.requestId);
        return { requestId: req.requestId, status: 'queued' as const, reason: 'the channel\'s circuit breaker is open: sent once it closes' };
      },
      {
        validator: (req) => {
          if (state.mode === 'closed') throw new Error('the conversation is closed');
          if (outbox.length >= MAX_OUTBOX) throw new Error(`${outbox.length} messages are already queued for this lead; try again later`);
          if (req.kind === 'text' && !req.text?.trim()) throw new Error('text is required');
          if (req.kind === 'template' && !req.template) throw new Error('template is required');
          const outPlan = req.kind === 'template' ? plan('template', req.template, false) : plan(req.kind, req.template, (req.source ?? 'manual') === 'manual');
          if (outPlan.action === 'refuse') throw new Error(outPlan.reason);
        },
      },
    );
  }

  {
    // registered in every run: they add no commands, and a run before delivery-v2 never receives them
    setHandler(circuitClosedSignal, () => {
      circuitSignals += 1;
    });

    setHandler(deliveryStatusSignal, (status: DeliveryStatus) => {
      if (!delivery2) return; // a run before delivery-v2 has no use for it
      pendingStatuses.push(status);
      version += 1;
    });

    setHandler(
      replayDeadLetterUpdate,
      async ({ deadLetterId }) => {
        const requestId = uuid4();
        replaying.add(deadLetterId);
        replayQueue.push({ deadLetterId, requestId });
        version += 1;
        await condition(() => results.has(requestId));
        const result = results.get(requestId)!;
        results.delete(requestId);
        replaying.delete(deadLetterId);
        return result;
      },
      {
        validator: ({ deadLetterId }) => {
          if (!state.deadLetters?.some((d) => d.id === deadLetterId)) throw new Error(`dead letter ${deadLetterId} is not parked in this lead's workflow`);
          if (replaying.has(deadLetterId)) throw new Error(`dead letter ${deadLetterId} is being replayed`);
        },
      },
    );

    setHandler(
      discardDeadLetterUpdate,
      async ({ deadLetterId }) => {
        const op = await loadParked(deadLetterId);
        // a parked send still holds its credit reservation
        if (op?.kind === 'send' && op.send) await store.releaseCredit(op.send.reference);
        await resolveParked(deadLetterId, 'discarded');
        return { discarded: true as const };
      },
      {
        validator: ({ deadLetterId }) => {
          if (!state.deadLetters?.some((d) => d.id === deadLetterId)) throw new Error(`dead letter ${deadLetterId} is not parked in this lead's workflow`);
          if (replaying.has(deadLetterId)) throw new Error(`dead letter ${deadLetterId} is being replayed`);
        },
      },
    );
  }

  /** What the LLM should know that only the workflow knows. */
  function conversationFacts(): string[] {
    const facts = [`The lead is in stage ${state.stage}.`];
    const closes = windowClosesAt(state.lastInboundAt);
    if (closes && channel !== 'webchat') facts.push(`WhatsApp's 24-hour window for free-form messages closes at ${closes}.`);
    const s = state.sequence;
    if (s && (s.cursor.status === 'active' || s.cursor.status === 'paused')) {
      facts.push(`The lead is in the follow-up sequence "${s.def.name}", step ${s.cursor.stepIndex + 1} of ${s.def.steps.length}.`);
    }
    return facts;
  }

  // ---- one outbound message: window → credit → (LLM) → pacing → deliver → capture ----

  function plan(kind: Outbound['kind'], fallbackTemplate: TemplateRef | undefined, human: boolean | undefined): OutboundPlan {
    if (!engine || channel === 'webchat') return { action: 'free_form' };
    return planOutbound({
      kind,
      lastInboundAt: state.lastInboundAt,
      now: nowIso(),
      fallbackTemplate,
      ...(delivery2 ? { providerClosedAt: state.providerWindowClosedAt, channel: channel === 'instagram' ? 'instagram' : 'whatsapp', human } : {}),
    });
  }

  async function sendOutbound(what: Outbound, purpose: string, fallbackTemplate?: TemplateRef, ctx: Partial<SendContext> = {}): Promise<OutboundResult> {
    const context: SendContext = { byBot: true, ...ctx, what, purpose, fallbackTemplate };
    const requestId = uuid4();
    let outPlan: OutboundPlan = what.kind === 'template' ? { action: 'template', template: what.template, fallback: false } : plan(what.kind, fallbackTemplate, ctx.human);
    if (outPlan.action === 'refuse') {
      await event('outbound_refused', { purpose, reason: outPlan.reason });
      if (context.deadLetterId) await resolveParked(context.deadLetterId, 'replayed');
      return { requestId, status: 'refused', reason: outPlan.reason };
    }

    const outboundMessageId = uuid4();
    const reference = `reply:${outboundMessageId}`;
    const reservation = await guarded('reserve a credit', () => db.reserveCredit.executeWithOptions({ ...PERSISTENCE, summary: 'Reserve credit' }, [{ tenantId, reference }]), null);
    if (!reservation) {
      // refused by the database (parked as a 'database' dead letter): nothing reserved, nothing sent
      if (context.deadLetterId) await resolveParked(context.deadLetterId, 'replayed');
      return { requestId, status: 'refused', reason: 'database_rejected' };
    }
    if (!reservation.ok) {
      state.counters.blockedTurns += 1;
      if (!state.blocked) {
        state.blocked = true;
        await store.setLeadBlocked(true);
      }
      await event('credit_blocked', { balance: reservation.balance, needed: reservation.amount, purpose }, `credit_blocked:${outboundMessageId}`);
      log.warn('no credit: lead blocked', { leadId, balance: reservation.balance });
      return { requestId, status: 'refused', reason: 'insufficient_credits' };
    }
    if (state.blocked) {
      state.blocked = false;
      await store.setLeadBlocked(false);
      await event('credit_unblocked', undefined, `credit_unblocked:${outboundMessageId}`);
    }

    let text = what.kind === 'text' ? what.text : '';
    if (what.kind === 'ai' && outPlan.action === 'free_form') {
      context.beforeLlm?.();
      try {
        const reply = await llm.generateReply.executeWithOptions({ ...LLM, summary: `Ask the LLM (${purpose})` }, [
          {
            tenantId,
            leadId,
            channelAccountId,
            ...(engine
              ? { stage: state.stage, instruction: what.instruction, purpose: what.llmPurpose, allowHandoff: what.allowHandoff, facts: conversationFacts() }
              : {}),
          },
        ]);
        if (reply.handoff) {
          // the model asked for a human instead of answering
          await store.releaseCredit(reference);
          await event('llm_handoff', { reason: reply.handoff.reason });
          const handedOff = await changeMode('handoff', 'llm_tool');
          if (context.deadLetterId) await resolveParked(context.deadLetterId, 'replayed');
          return { requestId, status: 'refused', reason: handedOff ? 'handed_off' : 'handoff_refused' };
        }
        text = what.maxWords ? trimToWords(reply.text, what.maxWords) : reply.text;
        if (what.avoidRepeats && isRepeat(text, state.recentBotMessages ?? [])) {
          await store.releaseCredit(reference);
          await event('outbound_refused', { purpose, reason: 'repeat' });
          if (context.deadLetterId) await resolveParked(context.deadLetterId, 'replayed');
          return { requestId, status: 'refused', reason: 'repeat' };
        }
      } catch (err) {
        state.counters.failedReplies += 1;
        await store.releaseCredit(reference);
        await event('reply_failed', { step: 'llm', purpose, reason: failureReason(err), type: failureType(err) }, `reply_failed:${outboundMessageId}`);
        if (delivery2) {
          // the LLM's retries ran out (or its configuration is wrong): park the turn for an admin
          const deadLetterId = await park('reply', context, err);
          return { requestId, status: 'parked', deadLetterId, reason: failureReason(err) };
        }
        return { requestId, status: 'failed', reason: failureReason(err) };
      }
      // the window may have closed while the LLM worked
      outPlan = plan('ai', fallbackTemplate, ctx.human);
    }

    if (engine) {
      const pacing = settings.pacing ?? DEFAULT_PACING[channel];
      // Math.random in workflow code is the SDK's seeded, replay-safe replacement; the policy gets it as an input
      const jitter = Math.random();
      const at = nextSendAt({ lastOutboundAt: state.lastOutboundAt, now: nowIso(), policy: pacing, random: jitter });
      const wait = msUntil(at);
      if (wait > 0) await sleep(wait, { summary: `Pacing: ${Math.ceil(wait / 1000)} s since the last message` });
    }

    if (outPlan.action === 'refuse') {
      await store.releaseCredit(reference);
      await event('outbound_refused', { purpose, reason: outPlan.reason });
      if (context.deadLetterId) await resolveParked(context.deadLetterId, 'replayed');
      return { requestId, status: 'refused', reason: outPlan.reason };
    }
    const send: PlannedSend = {
      plan: outPlan.action === 'template' ? { action: 'template', template: outPlan.template } : { action: 'free_form' },
      text,
      outboundMessageId,
      reference,
      ...(outPlan.action === 'free_form' && outPlan.humanAgentTag ? { humanAgent: true } : {}),
    };
    return deliver(send, context, requestId);
  }

  /** Call the channel's send activity once (Temporal retries it by the DELIVERY policy). */
  async function callSend(send: PlannedSend, purpose: string): Promise<void> {
    const base = { tenantId, leadId, channelAccountId, outboundMessageId: send.outboundMessageId, to: contactId };
    if (send.plan.action === 'template') {
      await delivery.sendWhatsAppTemplate.executeWithOptions({ ...deliveryOptions(), summary: `Send template ${send.plan.template.name}` }, [
        { ...base, template: send.plan.template },
      ]);
    } else if (delivery2 && channel === 'instagram') {
      await delivery.sendInstagramText.executeWithOptions({ ...deliveryOptions(), summary: `Send ${purpose} on Instagram${send.humanAgent ? ' (HUMAN_AGENT)' : ''}` }, [
        { ...base, text: send.text, ...(send.humanAgent ? { humanAgent: true } : {}) },
      ]);
    } else if (delivery2 && channel === 'webchat') {
      await delivery.sendWebChatText.executeWithOptions({ ...deliveryOptions(), summary: `Send ${purpose} on web chat` }, [{ ...base, text: send.text }]);
    } else {
      await delivery.sendWhatsAppText.executeWithOptions({ ...deliveryOptions(), summary: `Send ${engine ? purpose : 'reply'} on WhatsApp` }, [{ ...base, text: send.text }]);
    }
  }

  /**
   * Deliver a planned send and capture its credit. The credit stays reserved while a send is
   * parked (dead letter, deferral) and the outbound id is kept, so a later attempt can never
   * send it twice.
   */
  async function deliver(planned: PlannedSend, context: SendContext, requestId: string): Promise<OutboundResult> {
    let send = planned;
    const { purpose } = context;
    for (;;) {
      try {
        await callSend(send, purpose);
        break;
      } catch (err) {
        const type = failureType(err);
        if (!delivery2) {
          state.counters.failedReplies += 1;
          await store.releaseCredit(send.reference);
          await event('reply_failed', { step: 'delivery', purpose, reason: failureReason(err), type, outboundMessageId: send.outboundMessageId }, `reply_failed:${send.outboundMessageId}`);
          return { requestId, status: 'failed', outboundMessageId: send.outboundMessageId, reason: failureReason(err) };
        }
        if (type === 'provider_auth' || type === 'channel_circuit_open') {
          // a long wait hands over to a new run with this send carried as a deferral (same outbound id, credit still held)
          await waitForCircuit(failureReason(err), () => ({
            id: uuid4(),
            kind: 'send',
            purpose,
            what: context.what,
            send,
            fallbackTemplate: context.fallbackTemplate,
            byBot: context.byBot,
            parkedAt: nowIso(),
            retryAt: nowIso(),
            error: { type, message: failureReason(err) },
            attempts: context.attempts ?? 0,
          }));
          continue; // same outbound id: effectively once
        }
        if (type === 'provider_reengagement') {
          // 131047: the provider says the window is closed; take the template path if there is one
          state.providerWindowClosedAt = nowIso();
          await event('window_closed_by_provider', { purpose, outboundMessageId: send.outboundMessageId });
          const replan = plan(context.what.kind === 'template' ? 'text' : context.what.kind, context.fallbackTemplate, context.human);
          if (replan.action === 'template' && send.plan.action !== 'template') {
            send = { ...send, plan: { action: 'template', template: replan.template }, text: '', outboundMessageId: uuid4() };
            continue;
          }
          await store.releaseCredit(send.reference);
          await event('outbound_refused', { purpose, reason: 'window_closed', outboundMessageId: send.outboundMessageId });
          if (context.deadLetterId) await resolveParked(context.deadLetterId, 'replayed');
          return { requestId, status: 'refused', outboundMessageId: send.outboundMessageId, reason: 'window_closed' };
        }
        state.counters.failedReplies += 1;
        await event('reply_failed', { step: 'delivery', purpose, reason: failureReason(err), type, outboundMessageId: send.outboundMessageId }, `reply_failed:${send.outboundMessageId}:${context.attempts ?? 0}`);
        if (type && PERMANENT_SEND_FAILURES.has(type)) {
          // recorded on the message; another try cannot help
          await store.releaseCredit(send.reference);
          if (context.deadLetterId) await resolveParked(context.deadLetterId, 'replayed');
          return { requestId, status: 'failed', outboundMessageId: send.outboundMessageId, reason: failureReason(err) };
        }
        if (type === 'provider_spam_limited' && !context.deadLetterId && (context.attempts ?? 0) === 0) {
          // 131049: wait at least a day, then try the same message once more
          const deferred: ParkedOperation = {
            id: uuid4(),
            kind: 'send',
            purpose,
            what: context.what,
            send,
            fallbackTemplate: context.fallbackTemplate,
            byBot: context.byBot,
            parkedAt: nowIso(),
            retryAt: new Date(Date.now() + SPAM_LIMIT_WAIT_MS).toISOString(),
            error: { type, message: failureReason(err) },
            attempts: 1,
          };
          state.deferred = [...(state.deferred ?? []), deferred];
          version += 1;
          await event('send_deferred', { purpose, outboundMessageId: send.outboundMessageId, retryAt: deferred.retryAt, reason: failureReason(err) });
          return { requestId, status: 'parked', outboundMessageId: send.outboundMessageId, reason: failureReason(err) };
        }
        // retries ran out (transient errors, rate limits, timeouts): park it for an admin
        const deadLetterId = await park('send', { ...context }, err, send);
        return { requestId, status: 'parked', deadLetterId, outboundMessageId: send.outboundMessageId, reason: failureReason(err) };
      }
    }
    await guarded('capture a credit', () => db.captureCredit.executeWithOptions({ ...PERSISTENCE, summary: 'Capture the credit' }, [{ reference: send.reference, messageId: send.outboundMessageId }]), undefined);
    state.counters.replies += 1;
    state.lastOutboundAt = nowIso();
    state.lastOutboundByBot = context.byBot;
    // (before delivery-v2 a manual text counted too)
    if (engine && context.what.kind !== 'template' && send.text && (delivery2 ? context.byBot && send.plan.action !== 'template' : true)) {
      state.recentBotMessages = [...(state.recentBotMessages ?? []), send.text].slice(-RECENT_BOT_MESSAGES);
    }
    if (context.deadLetterId) await resolveParked(context.deadLetterId, 'replayed');
    return { requestId, status: 'sent', outboundMessageId: send.outboundMessageId };
  }

  // ---- dead letters, deferrals, the circuit breaker ----

  function refreshAttention(): void {
    const needs = (state.deadLetters?.length ?? 0) > 0 || state.circuitWaitSince !== undefined;
    upsertSearchAttributes([{ key: SA.NeedsAttention, value: needs }]);
    showDetails();
  }

  /** Park an operation whose retries ran out: a dead-letter row, an event and NeedsAttention. */
  async function park(kind: 'reply' | 'send', context: SendContext, err: unknown, send?: PlannedSend): Promise<string> {
    const id = context.deadLetterId ?? uuid4();
    const op: ParkedOperation = {
      id,
      kind,
      purpose: context.purpose,
      what: context.what,
      ...(send ? { send } : {}),
      fallbackTemplate: context.fallbackTemplate,
      byBot: context.byBot,
      parkedAt: nowIso(),
      error: { type: failureType(err), message: failureReason(err) },
      attempts: (context.attempts ?? 0) + 1,
    };
    state.deadLetters = capParked([...(state.deadLetters ?? []).filter((d) => d.id !== id), parkedRef(op)]);
    version += 1;
    await guarded(
      'park a dead letter',
      () =>
        db.parkDeadLetter.executeWithOptions({ ...PERSISTENCE, summary: `Park as dead letter: ${context.purpose}` }, [
          { id, tenantId, leadId, workflowId, kind, operation: op, error: op.error, outboundMessageId: send?.outboundMessageId },
        ]),
      undefined,
    );
    refreshAttention();
    await event('dead_letter', { deadLetterId: id, kind, purpose: context.purpose, error: op.error, attempts: op.attempts }, `dead_letter:${id}:${op.attempts}`);
    log.warn('operation parked as dead letter', { leadId, deadLetterId: id, kind, type: op.error.type });
    return id;
  }

  /**
   * A database write refused for good: a dead letter of kind 'database' that names the write
   * and the SQLSTATE (never the values). Recording it may be refused too (the lead's rows are
   * gone): then it is only logged; either way the lead carries on.
   */
  async function parkRejected(what: string, err: unknown): Promise<void> {
    const id = uuid4();
    const op: ParkedOperation = {
      id,
      kind: 'database',
      purpose: what,
      byBot: false,
      parkedAt: nowIso(),
      error: { type: failureType(err), message: failureReason(err) },
      attempts: 1,
    };
    log.warn('database refused a write: parked', { leadId, deadLetterId: id, what, reason: op.error.message });
    state.deadLetters = capParked([...(state.deadLetters ?? []), parkedRef(op)]);
    version += 1;
    try {
      await db.parkDeadLetter.executeWithOptions({ ...PERSISTENCE, summary: `Park as dead letter: ${what}` }, [
        { id, tenantId, leadId, workflowId, kind: 'database', operation: op, error: op.error },
      ]);
      await db.recordLeadEvent.executeWithOptions({ ...PERSISTENCE, summary: 'Event: dead_letter' }, [
        { tenantId, leadId, type: 'dead_letter', data: { deadLetterId: id, kind: 'database', purpose: what, error: op.error }, dedupKey: `dead_letter:${id}:1` },
      ]);
    } catch (again) {
      if (failureType(again) !== DATABASE_REJECTED) throw again;
      log.error('database refused the dead letter too: kept in the workflow only', { leadId, deadLetterId: id, reason: failureReason(again) });
    }
    refreshAttention();
  }

  /** A parked operation from the dead_letters table (the state keeps only its id). */
  async function loadParked(id: string): Promise<ParkedOperation | undefined> {
    const op = await guarded('load a dead letter', () => db.loadDeadLetter.executeWithOptions({ ...PERSISTENCE, summary: 'Load the parked operation' }, [{ id }]), null);
    return op ?? undefined;
  }

  async function resolveParked(id: string, status: 'replayed' | 'discarded'): Promise<void> {
    state.deadLetters = (state.deadLetters ?? []).filter((d) => d.id !== id);
    version += 1;
    await store.resolveDeadLetter(id, status);
    refreshAttention();
    await event(`dead_letter_${status}`, { deadLetterId: id }, `dead_letter_${status}:${id}`);
  }

  /** Run a parked operation again: a reply from the LLM step, a send with its outbound id. */
  async function runParked(op: ParkedOperation, requestId: string, asDeadLetter: boolean): Promise<OutboundResult> {
    if (!op.what) return { requestId, status: 'refused', reason: `a refused database write (${op.purpose}) cannot be replayed; discard it` };
    const context: SendContext = {
      what: op.what,
      purpose: op.purpose,
      fallbackTemplate: op.fallbackTemplate,
      byBot: op.byBot,
      attempts: op.attempts,
      ...(asDeadLetter ? { deadLetterId: op.id } : {}),
    };
    const result = op.kind === 'send' && op.send ? await deliver(op.send, context, requestId) : await sendOutbound(op.what, op.purpose, op.fallbackTemplate, context);
    return { ...result, requestId };
  }

  /** Sends wait (they do not fail) while the channel's circuit breaker is open. */
  async function waitForCircuit(reason: string, carry?: () => ParkedOperation): Promise<void> {
    state.circuitWaitSince ??= nowIso();
    refreshAttention();
    await event('circuit_wait', { reason, since: state.circuitWaitSince }, `circuit_wait:${state.circuitWaitSince}`);
    let poll = CIRCUIT_POLL_MIN_MS;
    for (;;) {
      const seen = circuitSignals;
      await condition(() => circuitSignals !== seen, poll, { summary: `Circuit breaker open: sends wait until channel ${channelAccountId} is fixed` });
      const circuit = await guarded('read the circuit breaker', () => db.channelCircuitState.executeWithOptions({ ...PERSISTENCE, summary: 'Is the circuit breaker closed?' }, [{ channelAccountId }]), 'closed' as const);
      if (circuit !== 'open') break;
      poll = Math.min(poll * 2, CIRCUIT_POLL_MAX_MS);
      if (carry && mayHandOverWhileWaiting()) {
        // the history is full but the circuit stays open (for days): continue as new on schedule,
        // the waiting send carried as a deferral that the next run resumes at once
        state.deferred = [...(state.deferred ?? []), carry()];
        await continueAsNew<typeof leadConversation>({ ...input, carried: { ...state, outbox } });
      }
    }
    const since = state.circuitWaitSince;
    state.circuitWaitSince = undefined;
    refreshAttention();
    await event('circuit_resumed', { since }, `circuit_resumed:${since}`);
  }

  /** A delivery failed after the provider accepted it (status webhook). */
  async function handleDeliveryStatus(s: DeliveryStatus): Promise<void> {
    const codes = s.errors.map((e) => e.code);
    // a redelivered status webhook signals again: one event per provider id
    if ((state.failedDeliveries ?? []).includes(s.providerMessageId)) return;
    state.failedDeliveries = [...(state.failedDeliveries ?? []), s.providerMessageId].slice(-50);
    state.counters.failedReplies += 1;
    await event('delivery_failed', { outboundMessageId: s.outboundMessageId, providerMessageId: s.providerMessageId, errors: s.errors, at: s.timestamp }, `delivery_failed:${s.providerMessageId}`);
    // 131047: the window had closed; later sends take the template path until the lead writes
    if (codes.includes(131047)) state.providerWindowClosedAt = nowIso();
  }

  // ---- a turn: the lead wrote ----

  /** `recordedEarly`: messages the inbound handler already wrote (the buffer was full), answered in this turn too. */
  async function runTurn(received: InboundMessage[], recordedEarly?: LeadCarriedState['inboxRecorded']): Promise<void> {
    const recorded =
      received.length > 0
        ? await guarded(
            'record inbound messages',
            () => db.recordInbound.executeWithOptions({ ...PERSISTENCE, summary: `Record ${received.length} inbound message(s)` }, [{ tenantId, leadId, messages: received, batchId: uuid4() }]),
            undefined,
          )
        : undefined;
    // the database's unique message id decides what is new, not only the window of recent ids:
    // a redelivery older than the window is recorded once and gets no second turn (no charge)
    const batch = newInbound(received, recorded?.newIds);
    if (batch.length < received.length) {
      state.counters.duplicates += received.length - batch.length;
      state.counters.inbound -= received.length - batch.length;
      if (batch.length === 0 && !recordedEarly) return;
    }
    // Meta's notices (a changed number or user id) are recorded above; the lead wrote none of them
    const written = batch.filter(writtenByLead);
    if (written.length === 0 && !recordedEarly) return;
    const latest = written.reduce((a, m) => (m.sentAt > a ? m.sentAt : a), recordedEarly && recordedEarly.lastSentAt > (state.lastInboundAt ?? '') ? recordedEarly.lastSentAt : (state.lastInboundAt ?? ''));
    if (latest && latest !== state.lastInboundAt) {
      state.lastInboundAt = latest;
      upsertSearchAttributes([{ key: SA.LastInboundAt, value: new Date(latest) }]);
      if (engine) upsertSearchAttributes([{ key: SA.WindowClosesAt, value: new Date(windowClosesAt(latest)!) }]);
    }
    // the lead wrote after the provider closed the window (131047): it is open again
    const closedAt = state.providerWindowClosedAt;
    if (closedAt && written.some((m) => (m.receivedAt ?? '') > closedAt)) state.providerWindowClosedAt = undefined;
    if (engine) {
      const idle = settings.extractionIdleMs ?? DEFAULT_EXTRACTION_IDLE_MS;
      if (idle > 0) state.extractionDueAt = new Date(Date.now() + idle).toISOString();
      // only a message written after enrolment is a reply to the sequence
      const enrolledAt = state.sequence?.cursor.enrolledAt;
      if (enrolledAt && written.some((m) => (m.receivedAt ?? m.sentAt) > enrolledAt)) await stopSequenceOn('lead_replied');
      const keyword = state.mode === 'ai' ? written.map((m) => matchHandoffKeyword(m.text, state.handoffKeywords ?? [])).find(Boolean) : undefined;
      if (keyword) {
        await changeMode('handoff', 'keyword');
        if (state.mode === 'human') return;
      }
    }
    if (!aiMayReply(state.mode)) return;

    state.counters.turns += 1;
    // WhatsApp: blue ticks and "typing…" while the LLM works (once a reply is paid for), in parallel
    const last = written[written.length - 1];
    let receipt: Promise<unknown> | undefined;
    const beforeLlm =
      delivery2 && channel === 'whatsapp' && last
        ? () => {
            receipt = delivery.markWhatsAppRead
              .executeWithOptions({ ...READ_RECEIPT, summary: 'Mark read, show typing' }, [{ channelAccountId, providerMessageId: last.providerMessageId, typing: true }])
              .catch((err: unknown) => log.warn('read receipt failed', { leadId, reason: failureReason(err) }));
          }
        : undefined;
    await sendOutbound(engine ? { kind: 'ai', llmPurpose: 'reply', allowHandoff: true } : { kind: 'ai' }, 'reply', undefined, { beforeLlm });
    await receipt;
  }

  // ---- a due sequence step ----

  async function runSequenceStep(action: Extract<seqPolicy.SequenceAction, { type: 'send' }>): Promise<void> {
    const s = state.sequence!;
    const step = action.step;
    const what: Outbound =
      step.kind === 'template' ? { kind: 'template', template: step.template! } : step.kind === 'text' ? { kind: 'text', text: step.text ?? '' } : { kind: 'ai', instruction: step.aiInstruction, llmPurpose: 'sequence_step' };
    const result = await sendOutbound(what, `sequence step ${action.stepIndex + 1}`, step.template);
    await event('sequence_step', { sequenceId: s.def.id, stepIndex: action.stepIndex, status: result.status, reason: result.reason });
    // a refused or failed step is skipped, not retried forever; the next step follows its delay
    const current = state.sequence!;
    const next = seqPolicy.stepSent(current.cursor, current.def, nowIso(), action.stepIndex);
    if (next.ok) state.sequence = { def: current.def, cursor: next.cursor };
  }

  async function runOutbox(req: OutboundRequest): Promise<void> {
    const what: Outbound = req.kind === 'template' ? { kind: 'template', template: req.template! } : { kind: 'text', text: req.text! };
    const result = await sendOutbound(what, req.source === 'manual' ? 'manual reply' : 'api message', undefined, { byBot: false, human: req.source === 'manual' });
    if (queued.delete(req.requestId)) return; // its caller was answered 202 queued
    results.set(req.requestId, { ...result, requestId: req.requestId });
  }

  // ---- a bump-up: the lead went quiet after the bot's message ----

  function bumpUpPolicy() {
    return settings.bumpUp ?? DEFAULT_BUMP_UP;
  }

  function bumpUpDue(): string | undefined {
    if (!aiMayReply(state.mode)) return undefined;
    const seq = state.sequence?.cursor.status;
    if (seq === 'active' || seq === 'paused') return undefined; // a running sequence does the following up
    return bumpUpDueAt({
      channel,
      lastInboundAt: state.lastInboundAt,
      // a refused bump-up (a repeat, no credit) still starts a new idle period
      lastOutboundAt: state.lastBumpAt && (!state.lastOutboundAt || state.lastBumpAt > state.lastOutboundAt) ? state.lastBumpAt : state.lastOutboundAt,
      lastOutboundByBot: state.lastOutboundByBot ?? false,
      bumpsSent: state.bumpsSent ?? 0,
      policy: bumpUpPolicy(),
    });
  }

  async function runBumpUp(): Promise<void> {
    const policy = bumpUpPolicy();
    // counted before sending, so a failing or refused bump-up is never retried in a loop
    state.bumpsSent = (state.bumpsSent ?? 0) + 1;
    state.lastBumpAt = nowIso();
    const result = await sendOutbound(
      {
        kind: 'ai',
        instruction: `The lead has not answered your last message. Write one short, friendly follow-up of at most ${policy.maxWords} words that moves the conversation forward. Do not repeat anything you already said.`,
        maxWords: policy.maxWords,
        avoidRepeats: true,
        llmPurpose: 'bump_up',
      },
      `bump-up ${state.bumpsSent}`,
    );
    await event('bump_up', { n: state.bumpsSent, status: result.status, reason: result.reason });
  }

  // ---- lead extraction after a quiet period ----

  async function runExtraction(): Promise<void> {
    state.extractionDueAt = undefined;
    try {
      const r = await extraction.extractLead.executeWithOptions({ ...EXTRACTION, summary: 'Extract lead data and summary' }, [{ tenantId, leadId, channelAccountId }]);
      if (r.score !== null && r.score !== state.score) {
        state.score = r.score;
        upsertSearchAttributes([{ key: SA.LeadScore, value: r.score }]);
      }
    } catch (err) {
      // recorded as an event and counted in parley_extraction_failures; runs again after new messages
      await guarded(
        'record an extraction failure',
        () =>
          db.recordExtractionFailure.executeWithOptions({ ...PERSISTENCE, summary: 'Record the extraction failure' }, [
            { tenantId, leadId, error: failureReason(err), type: failureType(err), dedupKey: `extraction_failed:${workflowInfo().runId}:${uuid4()}` },
          ]),
        undefined,
      );
    }
  }

  // ---- the main loop ----

  const canNow = () =>
    shouldContinueAsNew({
      historyLength: workflowInfo().historyLength,
      eventBudget: settings.eventBudget,
      serverSuggested: workflowInfo().continueAsNewSuggested,
      turnInFlight,
    });

  function sequenceAction(): seqPolicy.SequenceAction {
    if (!state.sequence || !sequencesMayRun(state.mode)) return { type: 'idle' };
    return seqPolicy.nextAction({
      seq: state.sequence.def,
      cursor: state.sequence.cursor,
      now: nowIso(),
      lastInboundAt: state.lastInboundAt,
      timeZone: state.timeZone ?? 'UTC',
    });
  }

  /** The engine's next deadline: the burst flush or the sequence's next step. */
  function nextDeadline(): { at: string; what: string } | undefined {
    const candidates: { at: string; what: string }[] = [];
    if ((state.inbox.length > 0 || state.inboxRecorded) && state.inboxFirstAt && state.inboxLastAt) {
      const policy = settings.debounce ?? DEFAULT_DEBOUNCE;
      candidates.push({ at: flushAt({ ...policy, firstArrivalAt: state.inboxFirstAt, lastArrivalAt: state.inboxLastAt }), what: 'Wait for more messages (burst)' });
    }
    const a = sequenceAction();
    if (a.type === 'wait') candidates.push({ at: a.until, what: a.reason === 'quiet_hours' ? 'Sequence: quiet hours' : 'Sequence: next step delay' });
    if (a.type === 'send') candidates.push({ at: nowIso(), what: 'Sequence step due' });
    const bump = bumpUpDue();
    if (bump) candidates.push({ at: bump, what: 'Bump-up if the lead stays quiet' });
    if (state.extractionDueAt && state.inbox.length === 0) candidates.push({ at: state.extractionDueAt, what: 'Extract lead data after inactivity' });
    for (const d of state.deferred ?? []) if (d.retryAt) candidates.push({ at: d.retryAt, what: `Retry a deferred send (${d.purpose})` });
    candidates.sort((x, y) => (x.at < y.at ? -1 : x.at > y.at ? 1 : 0));
    return candidates[0];
  }

  /** Work that must run before anything else, and before a continue-as-new (it is not carried). */
  function urgent(): boolean {
    return outbox.length > 0 || replayQueue.length > 0 || pendingStatuses.length > 0;
  }

  /** A send waiting on the circuit may hand over when the history is full and nothing else waits for this run. */
  function mayHandOverWhileWaiting(): boolean {
    const full = shouldContinueAsNew({ historyLength: workflowInfo().historyLength, eventBudget: settings.eventBudget, serverSuggested: workflowInfo().continueAsNewSuggested, turnInFlight: false });
    return full && delivery2 && allHandlersFinished() && replayQueue.length === 0 && pendingStatuses.length === 0;
  }

  async function continueAsNewNow(): Promise<void> {
    // Hand over to a fresh run between turns, even for a lead that never goes quiet: wait
    // for running handlers, then pass on everything buffered in the carried state. A manual
    // message accepted meanwhile waits for the loop to send it: go back and send it first.
    // (a status signalled meanwhile is not carried over: handle it first too)
    await condition(() => allHandlersFinished() || urgent());
    if (urgent()) return;
    await continueAsNew<typeof leadConversation>({ ...input, carried: { ...state, ...(engine ? { outbox } : {}) } });
  }

  if (!engine) {
    // First version: a turn as soon as messages are buffered.
    for (;;) {
      await condition(() => state.inbox.length > 0 || canNow());
      if (canNow()) await continueAsNewNow();
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

  for (;;) {
    if (!urgent() && canNow()) await continueAsNewNow();
    const seen = version;
    const deadline = nextDeadline();
    const due = deadline !== undefined && msUntil(deadline.at) === 0;
    if (!urgent() && !due) {
      const wake = () => version !== seen || urgent() || canNow();
      if (deadline) await condition(wake, msUntil(deadline.at), { summary: deadline.what });
      else await condition(wake);
      continue;
    }
    turnInFlight = true;
    try {
      const dueDeferred = (state.deferred ?? []).find((d) => d.retryAt !== undefined && msUntil(d.retryAt) === 0);
      if (dueDeferred && resumesFirst(dueDeferred)) {
        // a send the previous run handed over while it waited on the circuit breaker: it was first
        state.deferred = (state.deferred ?? []).filter((d) => d.id !== dueDeferred.id);
        await runParked(dueDeferred, uuid4(), false);
      } else if (outbox.length > 0) {
        await runOutbox(outbox.shift()!);
      } else if (replayQueue.length > 0) {
        const { deadLetterId, requestId } = replayQueue.shift()!;
        const op = state.deadLetters?.some((d) => d.id === deadLetterId) ? await loadParked(deadLetterId) : undefined;
        if (!op && state.deadLetters?.some((d) => d.id === deadLetterId)) {
          // its row is gone or already resolved: forget the id too
          state.deadLetters = state.deadLetters.filter((d) => d.id !== deadLetterId);
          refreshAttention();
        }
        const result: OutboundResult = op ? await runParked(op, requestId, true) : { requestId, status: 'refused', reason: 'the dead letter is gone' };
        if (result.status === 'sent' && op) state.lastOutboundByBot = op.byBot;
        results.set(requestId, result);
      } else if (pendingStatuses.length > 0) {
        await handleDeliveryStatus(pendingStatuses.shift()!);
      } else if ((state.inbox.length > 0 || state.inboxRecorded) && state.inboxFirstAt) {
        // the burst is due, or something else is (a step, a bump-up): what the lead wrote
        // comes first, so a reply can stop the sequence before its step goes out
        const batch = state.inbox.splice(0, state.inbox.length);
        const recordedEarly = state.inboxRecorded;
        state.inboxFirstAt = undefined;
        state.inboxLastAt = undefined;
        state.inboxRecorded = undefined;
        await runTurn(batch, recordedEarly);
      } else {
        const a = sequenceAction();
        const bump = bumpUpDue();
        if (a.type === 'send') await runSequenceStep(a);
        else if (bump && msUntil(bump) === 0) await runBumpUp();
        else if (state.extractionDueAt && msUntil(state.extractionDueAt) === 0) await runExtraction();
        else if (dueDeferred) {
          state.deferred = (state.deferred ?? []).filter((d) => d.id !== dueDeferred.id);
          await runParked(dueDeferred, uuid4(), false);
        }
      }
    } finally {
      turnInFlight = false;
      showDetails();
    }
  }

}
