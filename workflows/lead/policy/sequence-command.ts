/**
 * An admin's sequence command (enroll, pause, resume, reset, skip) against the lead's
 * current sequence and mode: the transition it makes, or why it is refused. Pure; the update
 * validator and the handler ask the same question.
 */
import type { LeadMode, SequenceCommand } from '../definitions';
import { sequencesMayRun } from './handoff';
import * as seq from './sequence';

export interface SequenceCommandInput {
  mode: LeadMode;
  sequence?: { def: seq.SequenceDef; cursor: seq.SequenceCursor };
  now: string;
}

export function sequenceCommand(cmd: SequenceCommand, input: SequenceCommandInput): seq.SequenceTransition {
  const { mode, sequence, now } = input;
  const running = sequence && (sequence.cursor.status === 'active' || sequence.cursor.status === 'paused');
  if (cmd.action === 'enroll') {
    if (!sequencesMayRun(mode)) return { ok: false, reason: `sequences do not run while the lead is in ${mode} mode` };
    if (running) return { ok: false, reason: `the lead is already in sequence ${sequence.def.name}; reset or stop it first` };
    return seq.enroll(cmd.sequence, now);
  }
  if (!sequence) return { ok: false, reason: 'the lead is not enrolled in a sequence' };
  const { def, cursor } = sequence;
  switch (cmd.action) {
    case 'pause':
      return seq.pause(cursor, now);
    case 'resume':
      return seq.resume(cursor, now);
    case 'reset':
      if (!sequencesMayRun(mode)) return { ok: false, reason: `sequences do not run while the lead is in ${mode} mode` };
      return seq.reset(cursor, cmd.sequence ?? def, now);
    case 'skip':
      return seq.skip(cursor, def, now);
  }
}

/** The stop reason when `event` happens to a running sequence, if it stops on it ('handed_off' always stops). */
export function stopOn(sequence: SequenceCommandInput['sequence'], event: seq.StopCondition): string | undefined {
  if (!sequence || (sequence.cursor.status !== 'active' && sequence.cursor.status !== 'paused')) return undefined;
  return event === 'handed_off' ? event : seq.stopReasonFor(sequence.def, event);
}
