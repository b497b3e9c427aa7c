/**
 * Agent tools, the workflow's side (README "Agent tools"): the LLM's tool calls happen inside the
 * reply activity (or the generateReply activity of the careful path), which validates them and
 * hands back what they ask for. Here each call becomes a `tool_called` lead event (its own step
 * in the history, with a summary naming the tool), set_stage moves the lead (changeStage: the
 * same steps as the API's stage change) and schedule_follow_up adds a durable follow-up that the
 * main loop waits for (nextWork's `follow_up`, background lane) and sends like a bump-up.
 */
import { uuid4 } from '@temporalio/workflow';
import { MAX_PENDING_FOLLOW_UPS, type FollowUp, type ToolCallRecord, type ToolEffects } from '../../contract/agent-tools';
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
  if (effects?.followUp) await scheduleFollowUp(run, effects.followUp);
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
