/**
 * Mode, stage and sequence changes: the pure policies decide, this module applies the answer
 * to the state, the search attributes and the database, and records the event.
 */
import { ApplicationFailure, upsertSearchAttributes } from '@temporalio/workflow';
import { DEFAULT_LEAD_SETTINGS, type SequenceCommand } from './definitions';
import { FailureType } from '../../contract/failures';
import { isAutomatic, sequencesMayRun, transitionMode, type ModeRequest, type ModeRequestSource, type ModeTransition } from './policy/handoff';
import * as seqPolicy from './policy/sequence';
import { sequenceCommand, stopOn } from './policy/sequence-command';
import { event, updateLead } from './records';
import { nowIso, type LeadRun } from './run';
import { SA } from './search-attributes';

export function modeTransition(run: LeadRun, request: ModeRequest, source: ModeRequestSource): ModeTransition {
  return transitionMode({
    mode: run.state.mode,
    request,
    source,
    now: nowIso(),
    lastHandbackAt: run.state.lastHandbackAt,
    autoHandoffCooldownMs: run.settings.autoHandoffCooldownMs ?? DEFAULT_LEAD_SETTINGS.autoHandoffCooldownMs!,
  });
}

/** Change the lead's mode (handoff, handback, pause, ...); a refused automatic request is recorded. */
/** `note`: more for the event (a handoff's reason given in the Web UI). */
export async function changeMode(run: LeadRun, request: ModeRequest, source: ModeRequestSource, note?: { reason?: string }): Promise<boolean> {
  const { state } = run;
  const t = modeTransition(run, request, source);
  if (!t.ok) {
    if (isAutomatic(source)) await event(run, 'handoff_refused', { request, source, reason: t.reason });
    return false;
  }
  const from = state.mode;
  state.mode = t.mode;
  if (request === 'handback') state.lastHandbackAt = nowIso();
  run.changed();
  upsertSearchAttributes([{ key: SA.LeadMode, value: t.mode }]);
  run.showDetails();
  await updateLead(run, { mode: t.mode });
  await event(run, 'mode_changed', { from, to: t.mode, request, source, ...note });
  if (!sequencesMayRun(t.mode)) await stopSequenceOn(run, 'handed_off');
  return true;
}

export async function changeStage(run: LeadRun, stage: string): Promise<{ stage: string; sequenceStopped: boolean }> {
  const from = run.state.stage;
  run.state.stage = stage;
  run.changed();
  upsertSearchAttributes([{ key: SA.LeadStage, value: stage }]);
  run.showDetails();
  await updateLead(run, { stage });
  await event(run, 'stage_changed', { from, to: stage });
  const sequenceStopped = await stopSequenceOn(run, 'stage_changed');
  return { stage, sequenceStopped };
}

export function sequenceTransition(run: LeadRun, cmd: SequenceCommand): seqPolicy.SequenceTransition {
  return sequenceCommand(cmd, { mode: run.state.mode, sequence: run.state.sequence, now: nowIso() });
}

/** Apply an admin's sequence command (already validated); returns the new cursor. `source`: who asked, when not the API (the Web UI). */
export async function commandSequence(run: LeadRun, cmd: SequenceCommand, source?: 'web_ui'): Promise<seqPolicy.SequenceCursor> {
  const t = sequenceTransition(run, cmd);
  // the validator asked the same question; the update fails (not the workflow) if the answer changed
  if (!t.ok) throw ApplicationFailure.create({ type: FailureType.InvalidTransition, message: t.reason, nonRetryable: true });
  const def = cmd.action === 'enroll' || (cmd.action === 'reset' && cmd.sequence) ? cmd.sequence! : run.state.sequence!.def;
  run.state.sequence = { def, cursor: t.cursor };
  run.changed();
  run.showDetails();
  await event(run, `sequence_${cmd.action}`, { sequenceId: def.id, cursor: t.cursor, ...(source ? { source } : {}) });
  return t.cursor;
}

/** Whether these messages the lead wrote stop the running sequence: one came after the enrolment, and the sequence stops on lead_replied. */
export function replyStopsSequence(run: LeadRun, written: readonly { sentAt: string; receivedAt?: string }[]): boolean {
  const s = run.state.sequence;
  const enrolledAt = s?.cursor.enrolledAt;
  return Boolean(enrolledAt && written.some((m) => (m.receivedAt ?? m.sentAt) > enrolledAt) && stopOn(s, 'lead_replied'));
}

/** Stop the running sequence if it stops on this event; returns whether it stopped. */
export async function stopSequenceOn(run: LeadRun, evt: seqPolicy.StopCondition): Promise<boolean> {
  const s = run.state.sequence;
  const reason = stopOn(s, evt);
  if (!s || !reason) return false;
  const next = seqPolicy.stop(s.cursor, reason, nowIso());
  if (!next.ok) return false;
  run.state.sequence = { def: s.def, cursor: next.cursor };
  run.changed();
  await event(run, 'sequence_stopped', { sequenceId: s.def.id, reason, stepIndex: s.cursor.stepIndex });
  return true;
}

/** Stop the running sequence whatever it stops on (the contact opted out); returns whether it stopped. */
export async function stopSequence(run: LeadRun, reason: string): Promise<boolean> {
  const s = run.state.sequence;
  if (!s) return false;
  const next = seqPolicy.stop(s.cursor, reason, nowIso());
  if (!next.ok) return false;
  run.state.sequence = { def: s.def, cursor: next.cursor };
  run.changed();
  await event(run, 'sequence_stopped', { sequenceId: s.def.id, reason, stepIndex: s.cursor.stepIndex });
  return true;
}
