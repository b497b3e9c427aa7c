/**
 * Agent tools, the workflow's side (README "Agent tools"): the LLM's tool calls happen inside the
 * reply activity (or the generateReply activity of the careful path), which validates them and
 * hands back what they ask for. Here each call becomes a `tool_called` lead event (its own step
 * in the history, with a summary naming the tool), set_stage moves the lead (changeStage: the
 * same steps as the API's stage change), schedule_follow_up adds a durable follow-up that the
 * main loop waits for (nextWork's `follow_up`, background lane) and sends like a bump-up, and
 * cancel_follow_up takes waiting ones out again. The `cancelFollowUp` update (the API and the Web
 * UI) cancels them too, through the same steps (`dropFollowUps`).
 */
import { ApplicationFailure, setHandler, uuid4 } from '@temporalio/workflow';
import { MAX_PENDING_FOLLOW_UPS, pendingForTurn, type FollowUp, type PendingFollowUp, type ToolCallRecord, type ToolEffects } from '../../contract/agent-tools';
import { FailureType } from '../../contract/failures';
import { cancelFollowUpUpdate } from './definitions';
import { cancelByIds, cancelFollowUps, checkCancelRequest, type FollowUpCancelSource } from './policy/follow-ups';
import { DATABASE, database } from './proxies';
import { event, guarded } from './records';
import { nowIso, type LeadRun } from './run';
import { changeStage } from './transitions';

/** One line for the Web UI's step summary: the tool, its outcome and its recorded arguments. */
export function toolSummary(call: ToolCallRecord): string {
  const args = call.args && Object.keys(call.args).length ? ` ${JSON.stringify(call.args).slice(0, 120)}` : '';
  return `Tool ${call.name}: ${call.outcome}${args}`;
}

/**
 * Record the turn's tool calls and carry out their effects. `key`: the turn's outbound id, so a
 * retried write of the same call is one event.
 */
export async function applyTools(run: LeadRun, tools: { calls: ToolCallRecord[]; effects?: ToolEffects } | undefined, key: string): Promise<void> {
  if (!tools) return;
  for (const [n, call] of tools.calls.entries()) {
    await guarded(
      run,
      'record a tool call',
      () =>
        database.recordLeadEvent.executeWithOptions(run.options(DATABASE, toolSummary(call)), [
          { tenantId: run.tenantId, leadId: run.leadId, type: 'tool_called', data: call, dedupKey: `tool_called:${key}:${n}` },
        ]),
      undefined,
    );
  }
  const { state } = run;
  const effects = tools.effects;
  if (effects?.setStage && effects.setStage.stage !== state.stage) await changeStage(run, effects.setStage.stage);
  // a cancel first: "forget Friday, remind me Monday" frees its place before the new one is counted
  if (effects?.cancelFollowUps) {
    // the ones the turn was given that still wait (one may have gone out while the turn ran)
    const c = cancelByIds(state.followUps, effects.cancelFollowUps.ids);
    if (c.cancelled.length) await dropFollowUps(run, c.cancelled, c.remaining, 'agent');
  }
  if (effects?.followUp) await scheduleFollowUp(run, effects.followUp);
}

/** Take cancelled follow-ups out of the state (the loop's timer goes with them) and record each. */
async function dropFollowUps(run: LeadRun, cancelled: readonly FollowUp[], remaining: FollowUp[], source: FollowUpCancelSource): Promise<void> {
  run.state.followUps = remaining.length ? remaining : undefined;
  run.changed();
  run.showDetails();
  for (const f of cancelled) {
    await event(run, 'follow_up_cancelled', { followUpId: f.id, at: f.at, source, ...(f.template ? { template: f.template.name } : {}) }, `follow_up_cancelled:${f.id}`);
  }
}

/**
 * The `cancelFollowUp` update: `{ followUpId }` or `{ all: true }`, from the API (`source: 'api'`)
 * or the Web UI. The validator refuses a bad body or a follow-up that is not waiting (the API's
 * 404), so a refusal never reaches the history.
 */
export function registerFollowUpHandlers(run: LeadRun): void {
  const decide = (input: unknown) => {
    const check = checkCancelRequest(input);
    if (!check.ok) return check;
    const c = cancelFollowUps(run.state.followUps, check.value);
    return c.ok ? { ...c, source: check.source } : c;
  };
  setHandler(
    cancelFollowUpUpdate,
    async (input) => {
      const d = decide(input);
      // the validator asked the same question in this activation; the update fails (not the workflow) if the answer changed
      if (!d.ok) throw ApplicationFailure.create({ type: FailureType.InvalidTransition, message: d.reason, nonRetryable: true });
      await dropFollowUps(run, d.cancelled, d.remaining, d.source);
      return { cancelled: d.cancelled };
    },
    {
      validator: (input) => {
        const d = decide(input);
        if (!d.ok) throw new Error(d.reason);
      },
    },
  );
}

async function scheduleFollowUp(run: LeadRun, f: NonNullable<ToolEffects['followUp']>): Promise<void> {
  const { state } = run;
  const pending = state.followUps ?? [];
  if (pending.length >= MAX_PENDING_FOLLOW_UPS) {
    await event(run, 'follow_up_refused', { at: f.at, reason: `${pending.length} follow-ups are already scheduled (at most ${MAX_PENDING_FOLLOW_UPS})` });
    return;
  }
  const followUp: FollowUp = { id: uuid4(), at: f.at, note: f.note, ...(f.template ? { template: f.template } : {}) };
  state.followUps = [...pending, followUp].sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  run.changed();
  await event(run, 'follow_up_scheduled', { followUpId: followUp.id, at: followUp.at, template: followUp.template?.name ?? null, scheduledAt: nowIso() });
}

/** The waiting follow-ups a reply turn is given (cancel_follow_up's choices); nothing when none wait. */
export function followUpsForTurn(run: LeadRun): { followUps?: PendingFollowUp[] } {
  const followUps = pendingForTurn(run.state.followUps);
  return followUps ? { followUps } : {};
}

/** When the next scheduled follow-up is due, if any. */
export function followUpDue(run: LeadRun): string | undefined {
  return run.state.followUps?.[0]?.at;
}

/** Take the follow-up that is due out of the state. */
export function takeDueFollowUp(run: LeadRun): FollowUp | undefined {
  const [first, ...rest] = run.state.followUps ?? [];
  if (!first || Date.parse(first.at) > Date.parse(nowIso())) return undefined;
  run.state.followUps = rest.length ? rest : undefined;
  return first;
}
