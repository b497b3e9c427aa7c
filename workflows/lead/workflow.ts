/**
 * The lead conversation: one long-lived workflow per (channel account, contact). Wiring only:
 * the message handlers, the start of a run, the main loop and the hand-over to the next run.
 * What to do next is policy/next-work; each kind of work is in turns.ts; one message out is
 * outbound.ts; parked operations and the circuit wait are parked.ts. See README.md here.
 */
import { ActivityFailure, allHandlersFinished, ApplicationFailure, condition, continueAsNew, log, setHandler, upsertSearchAttributes, uuid4, workflowInfo } from '@temporalio/workflow';
import { DATABASE, database, RUN_START, runStart } from './proxies';
import {
  circuitClosedSignal,
  deliveryStatusSignal,
  discardDeadLetterUpdate,
  inboundSignal,
  replayDeadLetterUpdate,
  sendMessageUpdate,
  extractNowUpdate,
  sequenceUpdate,
  setModeUpdate,
  setStageUpdate,
  stateQuery,
  type InboundMessage,
  type LeadStateSnapshot,
  type OutboundRequest,
  type OutboundResult,
  type LeadWorkflowInput,
} from './definitions';
import { FailureType } from '../../contract/failures';
import { plan } from './outbound';
import { loadParked, resolveParked } from './parked';
import { boundSentAt, inboxAdmission, MAX_OUTBOX, resumesFirst } from './policy/bounds';
import { DEFAULT_DEBOUNCE, flushAt } from './policy/debounce';
import { admitInbound } from './policy/dedup';
import { sequencesMayRun } from './policy/handoff';
import { spreadAt } from './policy/spread';
import { nextWork, type Work } from './policy/next-work';
import { OPTED_OUT, optOutConfig } from './policy/opt-out';
import * as seqPolicy from './policy/sequence';
import { appendRecent } from './policy/transcript';
import { guessTimeZone } from './policy/time-zone';
import { event, guarded, releaseCredit } from './records';
import { LeadRun, msUntil, nowIso } from './run';
import { SA } from './search-attributes';
import { changeMode, changeStage, commandSequence, modeTransition, sequenceTransition } from './transitions';
import { followUpDue, registerFollowUpHandlers } from './tools';
import * as turns from './turns';
import { registerWebUiHandlers } from './web-ui';

export async function leadConversation(input: LeadWorkflowInput): Promise<void> {
  const run = new LeadRun(input);
  const { state, outbox } = run;
  registerHandlers(run);
  try {
    await startRun(run);
  } catch (err) {
    // the channel was deleted (DELETE /v1/channels/:id): no lead starts on it, this run just ends
    if (channelDeleted(err)) {
      log.info('the channel is deleted: the lead workflow ends without a lead', { channelAccountId: run.channelAccountId });
      return;
    }
    throw err;
  }
  run.showDetails();

  for (;;) {
    if (!run.urgent() && run.historyFull()) await handOver(run);
    const seen = run.version;
    const next = nextWork({
      now: nowIso(),
      outbox: outbox.length,
      replays: run.replayQueue.length,
      statuses: run.pendingStatuses.length,
      inbox: inboxFlushAt(run),
      sequence: turns.sequenceAction(run),
      bumpUpAt: turns.bumpUpDue(run),
      followUpAt: followUpDue(run),
      extractionAt: state.extractionDueAt,
      deferred: (state.deferred ?? []).map((d) => ({ id: d.id, retryAt: d.retryAt, resumesFirst: resumesFirst(d) })),
    });
    if ('wait' in next) {
      const wake = () => run.version !== seen || run.urgent() || run.historyFull();
      // background deadlines wake at this lead's offset, so a wave of leads due together does not wake at once
      const until = next.wait?.background ? spreadAt(run.workflowId, next.wait.until, run.settings.backgroundSpreadMs ?? 0) : next.wait?.until;
      if (next.wait && until) await condition(wake, msUntil(until), { summary: next.wait.what });
      else await condition(wake);
      continue;
    }
    run.turnInFlight = true;
    try {
      await runWork(run, next.run);
    } finally {
      run.turnInFlight = false;
      run.lane = 'live'; // handlers that run while the loop waits are someone's live request
      run.showDetails();
    }
  }
}

/** The run-start activity refused because the lead's channel is deleted (a local activity's failure may come unwrapped). */
function channelDeleted(err: unknown): boolean {
  const failure = err instanceof ActivityFailure ? err.cause : err;
  return failure instanceof ApplicationFailure && failure.type === FailureType.ChannelDeleted;
}

/** Work nobody is waiting for right now: it yields to live replies (task priority). */
const BACKGROUND_WORK: readonly Work['kind'][] = ['sequence_step', 'bump_up', 'follow_up', 'extraction', 'deferred'];

/** Carry out one piece of work that nextWork chose. */
async function runWork(run: LeadRun, work: Work): Promise<void> {
  const { state } = run;
  run.lane = BACKGROUND_WORK.includes(work.kind) ? 'background' : 'live';
  switch (work.kind) {
    case 'resume_carried':
    case 'deferred':
      return turns.resumeDeferred(run, work.id);
    case 'outbox':
      return turns.outboxMessage(run, run.outbox.shift()!);
    case 'replay':
      return turns.replay(run, run.replayQueue.shift()!);
    case 'status':
      return turns.deliveryFailed(run, run.pendingStatuses.shift()!);
    case 'reply': {
      const batch = state.inbox.splice(0, state.inbox.length);
      const recordedEarly = state.inboxRecorded;
      state.inboxFirstAt = undefined;
      state.inboxLastAt = undefined;
      state.inboxRecorded = undefined;
      return turns.replyTurn(run, batch, recordedEarly);
    }
    case 'sequence_step': {
      const action = turns.sequenceAction(run);
      if (action.type === 'send') await turns.sequenceStep(run, action);
      return;
    }
    case 'bump_up':
      return turns.bumpUp(run);
    case 'follow_up':
      return turns.followUp(run);
    case 'extraction':
      return turns.extract(run);
  }
}

/** When the buffered burst is answered (debounce), if anything is buffered. */
function inboxFlushAt(run: LeadRun): { flushAt: string } | undefined {
  const { state } = run;
  if ((state.inbox.length === 0 && !state.inboxRecorded) || !state.inboxFirstAt || !state.inboxLastAt) return undefined;
  const policy = run.settings.debounce ?? DEFAULT_DEBOUNCE;
  return { flushAt: flushAt({ ...policy, firstArrivalAt: state.inboxFirstAt, lastArrivalAt: state.inboxLastAt }) };
}

/**
 * The start of every run: create or find the lead and refresh what the worker knows about it
 * (settings, the agent's handoff keywords, time zone), and enrol a new lead in its sequence.
 */
async function startRun(run: LeadRun): Promise<void> {
  const { state, input } = run;
  const lead = await runStart.ensureLead.executeWithOptions({ ...RUN_START, summary: 'Create or find the lead' }, [
    { tenantId: run.tenantId, channelAccountId: run.channelAccountId, channel: run.channel, contactId: run.contactId, name: input.contactName, workflowId: run.workflowId },
  ]);
  run.settings = lead.settings;
  // opt-out phrases and settings of the agent, and the suppression list's answer now (histories older than opt-out have neither)
  if ('optOutSettings' in lead) run.optOut = optOutConfig(lead.optOutSettings);
  if (lead.suppressed !== undefined) state.optedOut = lead.suppressed;
  if (!state.leadId) {
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
  if (!state.leadId) throw ApplicationFailure.create({ type: FailureType.LeadMissing, message: 'the lead has no id', nonRetryable: true });
  state.handoffKeywords = lead.handoffKeywords;
  state.timeZone = lead.timeZone ?? state.timeZone ?? guessTimeZone(run.contactId);
  if (lead.autoEnroll && !state.sequence && sequencesMayRun(state.mode) && lead.suppressed) {
    // a new lead of a contact on the tenant's suppression list (a STOP on another channel): no sequence
    await event(run, 'sequence_enroll_skipped', { sequenceId: lead.autoEnroll.id, reason: OPTED_OUT, auto: true });
  } else if (lead.autoEnroll && !state.sequence && sequencesMayRun(state.mode)) {
    const enrolled = seqPolicy.enroll(lead.autoEnroll, nowIso());
    if (enrolled.ok) {
      state.sequence = { def: lead.autoEnroll, cursor: enrolled.cursor };
      await event(run, 'sequence_enroll', { sequenceId: lead.autoEnroll.id, cursor: enrolled.cursor, auto: true });
    }
  }
}

/**
 * Hand over to a fresh run between turns, even for a lead that never goes quiet: wait for
 * running handlers, then pass on everything buffered in the carried state. Work that arrives
 * meanwhile and is not carried (a manual message, a status) goes first: back to the loop.
 */
async function handOver(run: LeadRun): Promise<void> {
  await condition(() => allHandlersFinished() || run.urgent());
  if (run.urgent()) return;
  await continueAsNew<typeof leadConversation>(run.nextRunInput());
}

function registerHandlers(run: LeadRun): void {
  const { state, outbox, results } = run;

  setHandler(inboundSignal, async (message: InboundMessage) => {
    const decision = admitInbound(state.seenInboundIds, message.providerMessageId, run.settings.dedupWindow);
    if (!decision.admitted) {
      state.counters.duplicates += 1;
      return;
    }
    state.seenInboundIds = decision.seen;
    state.counters.inbound += 1;
    const at = nowIso();
    // a provider time far ahead (Meta's 12-digit seconds) would poison the window and the search attributes
    const m: InboundMessage = { ...message, sentAt: boundSentAt(message.sentAt, at), receivedAt: at };
    state.recentMessages = appendRecent(state.recentMessages, { from: 'lead', at, text: m.text || `[${m.type}]` });
    state.inboxFirstAt ??= at;
    state.inboxLastAt = at;
    run.changed();
    run.showDetails();
    const leadId = state.leadId;
    if (!leadId || inboxAdmission(state.inbox, m) === 'buffer') {
      state.inbox.push(m);
      return;
    }
    // the buffer is full (count or bytes): write it and this message to the database now and
    // keep only a count; the next turn answers them all
    const batch = [...state.inbox.splice(0, state.inbox.length), m];
    const prev = state.inboxRecorded;
    const lastSentAt = batch.reduce((a, x) => (x.sentAt > a ? x.sentAt : a), prev?.lastSentAt ?? '');
    state.inboxRecorded = { count: (prev?.count ?? 0) + batch.length, lastSentAt };
    await guarded(
      run,
      'record buffered inbound messages',
      () => database.recordInbound.executeWithOptions(run.options(DATABASE, `Record ${batch.length} buffered inbound message(s)`), [{ tenantId: run.tenantId, leadId, messages: batch, batchId: uuid4() }]),
      undefined,
    );
  });

  setHandler(stateQuery, (): LeadStateSnapshot => {
    const { inbox, ...rest } = state;
    return {
      ...rest,
      outbox: [...outbox],
      workflowId: run.workflowId,
      tenantId: run.tenantId,
      channelAccountId: run.channelAccountId,
      channel: run.channel,
      contactId: run.contactId,
      pendingInbound: inbox.length + (state.inboxRecorded?.count ?? 0),
      historyLength: workflowInfo().historyLength,
    };
  });

  setHandler(
    extractNowUpdate,
    () => {
      state.extractionDueAt = nowIso();
      run.changed();
      return { extractionDueAt: state.extractionDueAt };
    },
    {
      validator: () => {
        if (!state.leadId) throw new Error('the lead has no record yet: its first message is still being answered');
      },
    },
  );

  setHandler(sequenceUpdate, (cmd) => commandSequence(run, cmd), {
    validator: (cmd) => {
      const t = sequenceTransition(run, cmd);
      if (!t.ok) throw new Error(t.reason);
    },
  });

  setHandler(setStageUpdate, ({ stage }) => changeStage(run, stage), {
    validator: ({ stage }) => {
      if (!stage || stage.length > 100) throw new Error('stage must be 1 to 100 characters');
      if (stage === state.stage) throw new Error(`the lead is already in stage ${stage}`);
    },
  });

  setHandler(
    setModeUpdate,
    async ({ request }) => {
      await changeMode(run, request, 'api');
      return { mode: state.mode };
    },
    {
      validator: ({ request }) => {
        const t = modeTransition(run, request, 'api');
        if (!t.ok) throw new Error(t.reason);
      },
    },
  );

  const sendMessage = async (req: OutboundRequest): Promise<OutboundResult> => {
    outbox.push(req);
    run.changed();
    // behind an open circuit breaker the message is queued: answer at once (the caller gets
    // 202), so waiting requests never pile up against Temporal's in-flight update limit
    await condition(() => results.has(req.requestId) || state.circuitWaitSince !== undefined);
    const result = results.get(req.requestId);
    results.delete(req.requestId);
    if (result) return result;
    run.queued.add(req.requestId);
    return { requestId: req.requestId, status: 'queued' as const, reason: "the channel's circuit breaker is open: sent once it closes" };
  };
  const checkMessage = (req: Omit<OutboundRequest, 'source'> & { source?: OutboundRequest['source'] }): void => {
    if (state.mode === 'closed') throw new Error('the conversation is closed');
    if (outbox.length >= MAX_OUTBOX) throw new Error(`${outbox.length} messages are already queued for this lead; try again later`);
    if (req.kind === 'text' && !req.text?.trim()) throw new Error('text is required');
    if (req.kind === 'template' && !req.template) throw new Error('template is required');
    if (req.kind === 'rich' && !req.message) throw new Error('message is required');
    const outPlan = req.kind === 'template' ? plan(run, 'template', req.template, false) : plan(run, req.kind, req.template, (req.source ?? 'manual') === 'manual');
    if (outPlan.action === 'refuse') throw new Error(outPlan.reason);
  };
  setHandler(sendMessageUpdate, (req) => sendMessage({ ...req, source: req.source ?? 'manual' }), { validator: checkMessage });
  registerWebUiHandlers(run, { sendMessage, checkMessage });
  registerFollowUpHandlers(run);

  setHandler(circuitClosedSignal, () => {
    run.circuitSignals += 1;
  });

  setHandler(deliveryStatusSignal, (status) => {
    run.pendingStatuses.push(status);
    run.changed();
  });

  const parkedHere = ({ deadLetterId }: { deadLetterId: string }) => {
    if (!state.deadLetters?.some((d) => d.id === deadLetterId)) throw new Error(`dead letter ${deadLetterId} is not parked in this lead's workflow`);
    if (run.replaying.has(deadLetterId)) throw new Error(`dead letter ${deadLetterId} is being replayed`);
  };

  setHandler(
    replayDeadLetterUpdate,
    async ({ deadLetterId }) => {
      const requestId = uuid4();
      run.replaying.add(deadLetterId);
      run.replayQueue.push({ deadLetterId, requestId });
      run.changed();
      await condition(() => results.has(requestId));
      const result = results.get(requestId)!;
      results.delete(requestId);
      run.replaying.delete(deadLetterId);
      return result;
    },
    { validator: parkedHere },
  );

  setHandler(
    discardDeadLetterUpdate,
    async ({ deadLetterId }) => {
      const op = await loadParked(run, deadLetterId);
      // a parked send still holds its credit reservation
      if (op?.kind === 'send' && op.send) await releaseCredit(run, op.send.reference);
      await resolveParked(run, deadLetterId, 'discarded');
      return { discarded: true as const };
    },
    { validator: parkedHere },
  );
}
