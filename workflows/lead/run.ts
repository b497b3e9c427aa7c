/**
 * One run of a lead's workflow: its identity, its settings, the state it carries to the next
 * run, and what lives only in this run (queued outbound requests, update results, pending
 * statuses). Every module of the lead workflow works on one `LeadRun`.
 */
import { allHandlersFinished, setCurrentDetails, upsertSearchAttributes, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import {
  DEFAULT_LEAD_SETTINGS,
  type Channel,
  type DeliveryStatus,
  type LeadCarriedState,
  type LeadWorkflowInput,
  type LeadWorkflowSettings,
  type OutboundRequest,
  type OutboundResult,
} from './definitions';
import { shouldContinueAsNew } from './policy/continue-as-new';
import { DEFAULT_OPT_OUT, type OptOutConfig } from './policy/opt-out';
import { leadDetails } from './policy/summary';
import { backgroundTaskQueue, LANE_PRIORITY, type Lane } from './lanes';
import { SA } from './search-attributes';

export class LeadRun {
  readonly tenantId: string;
  readonly channelAccountId: string;
  readonly channel: Channel;
  readonly contactId: string;
  readonly workflowId: string;
  /** Resolved by the worker (ensureLead) at the start of every run; defaults until then. */
  settings: LeadWorkflowSettings = DEFAULT_LEAD_SETTINGS;
  /** The agent's opt-out phrases and settings, resolved by ensureLead at the start of every run (not carried). */
  optOut: OptOutConfig = DEFAULT_OPT_OUT;
  readonly state: LeadCarriedState;
  /** Manual messages and API templates waiting for the loop (carried). */
  readonly outbox: OutboundRequest[];
  /** Results of outbound requests and replays, taken by the update that waits for them. */
  readonly results = new Map<string, OutboundResult>();
  /** Manual messages already answered as queued (circuit open): their result has no taker. */
  readonly queued = new Set<string>();
  readonly pendingStatuses: DeliveryStatus[] = [];
  readonly replayQueue: { deadLetterId: string; requestId: string }[] = [];
  readonly replaying = new Set<string>();
  /** Bumped by circuitClosedSignal. */
  circuitSignals = 0;
  /** Bumped by every change the main loop must look at again. */
  version = 0;
  turnInFlight = false;
  /**
   * Whose work runs now: 'live' (a lead who is writing, a person waiting on an update) or
   * 'background' (sequence steps, bump-ups, extraction, deferred sends). Background activities
   * run on their own task queue with the worker's few background slots (and the lane's task
   * priority), so a morning wave of background work does not delay live replies.
   */
  lane: Lane = 'live';

  constructor(readonly input: LeadWorkflowInput) {
    this.tenantId = input.tenantId;
    this.channelAccountId = input.channelAccountId;
    this.channel = input.channel;
    this.contactId = input.contactId;
    this.workflowId = workflowInfo().workflowId;

    this.state = {
      stage: 'New',
      mode: 'ai',
      blocked: false,
      seenInboundIds: [],
      inbox: [],
      counters: { inbound: 0, duplicates: 0, turns: 0, replies: 0, failedReplies: 0, blockedTurns: 0, runs: 0 },
      ...(input.carried ?? {}),
    };
    this.state.counters.runs += 1;
    this.outbox = this.state.outbox ?? [];
  }

  get leadId(): string {
    return this.state.leadId ?? '';
  }

  /**
   * An activity's options with a summary for the Web UI and the current lane's priority; the
   * background lane's activities go to the background task queue (never dispatched eagerly).
   */
  options(base: ActivityOptions, summary: string): ActivityOptions {
    const lane = this.lane === 'background' ? { taskQueue: backgroundTaskQueue(workflowInfo().taskQueue) } : {};
    return { ...base, ...lane, summary, priority: { priorityKey: LANE_PRIORITY[this.lane] } };
  }

  /** Tell the main loop to look again. */
  changed(): void {
    this.version += 1;
  }

  /** Work that must run before anything else and before a continue-as-new (it is not carried). */
  urgent(): boolean {
    return this.outbox.length > 0 || this.replayQueue.length > 0 || this.pendingStatuses.length > 0;
  }

  /** The history is long enough to hand over to a new run (between turns). */
  historyFull(turnInFlight = this.turnInFlight): boolean {
    const info = workflowInfo();
    return shouldContinueAsNew({ historyLength: info.historyLength, eventBudget: this.settings.eventBudget, serverSuggested: info.continueAsNewSuggested, turnInFlight });
  }

  /** A send waiting on the circuit may hand over when the history is full and nothing else waits for this run. */
  mayHandOverWhileWaiting(): boolean {
    return this.historyFull(false) && allHandlersFinished() && this.replayQueue.length === 0 && this.pendingStatuses.length === 0;
  }

  showDetails(): void {
    setCurrentDetails(leadDetails({ ...this.state, channel: this.channel, contactId: this.contactId, now: nowIso() }));
  }

  /** NeedsAttention: a dead letter is parked or sends wait for the circuit breaker. */
  refreshAttention(): void {
    const needs = (this.state.deadLetters?.length ?? 0) > 0 || this.state.circuitWaitSince !== undefined;
    upsertSearchAttributes([{ key: SA.NeedsAttention, value: needs }]);
    this.showDetails();
  }

  /** What the next run starts from: the identity and the carried state (settings come from the worker). */
  nextRunInput(): LeadWorkflowInput {
    const { carried: _carried, ...identity } = this.input;
    return { ...identity, carried: { ...this.state, outbox: this.outbox } };
  }
}

export function nowIso(): string {
  return new Date().toISOString();
}

export function msUntil(iso: string): number {
  return Math.max(0, new Date(iso).getTime() - Date.now());
}
