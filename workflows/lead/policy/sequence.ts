/**
 * Follow-up sequences as a pure state machine. The workflow keeps a `SequenceCursor` in its
 * state (plain JSON, carried through continue-as-new), applies transitions from updates and
 * events, and asks `nextAction` what to do: wait, send a step, or nothing.
 *
 * Transitions return `{ ok: false, reason }` instead of throwing, so the admin API can answer
 * 409 with the reason. Cursor conventions:
 * - `active` has `dueAt` (when the current step goes out); `paused` has `remainingMs` (the
 *   delay left when it was paused); `stopped` has `stopReason`; `completed` has none of these.
 * - When completed, `stepIndex` equals the number of steps (every step is behind it).
 */
import type { SequenceCursor, SequenceDef, SequenceStep } from '../../../contract/messages';
import type { StopCondition } from '../../../contract/vocabulary';
import { isAllowed, nextAllowedSlot } from './quiet-hours';
import { formatInstant, parseInstant, planOutbound, type OutboundPlan } from './window';

export type { SequenceCursor, SequenceDef, SequenceStatus, SequenceStep } from '../../../contract/messages';
export type { SequenceStepKind, StopCondition } from '../../../contract/vocabulary';
export { STOP_CONDITIONS } from '../../../contract/vocabulary';

export type SequenceTransition = { ok: true; cursor: SequenceCursor } | { ok: false; reason: string };

export interface NextActionInput {
  seq: SequenceDef;
  cursor: SequenceCursor;
  now: string;
  lastInboundAt?: string;
  /** The lead's IANA time zone, for the step's send window. */
  timeZone: string;
}

export type SequenceAction =
  | { type: 'idle' }
  | { type: 'wait'; until: string; reason: 'delay' | 'quiet_hours' }
  | { type: 'send'; step: SequenceStep; stepIndex: number; plan: OutboundPlan }
  | { type: 'done' };

// ------------------------------------------------------------------------------ transitions

/** Start a sequence: step 0 is due after its delay. */
export function enroll(seq: SequenceDef, now: string): SequenceTransition {
  const first = seq.steps[0];
  if (!first) return fail(`sequence "${seq.id}" has no steps`);
  const at = parseInstant(now, 'now');
  return ok({ sequenceId: seq.id, stepIndex: 0, status: 'active', dueAt: formatInstant(at + first.delayMs), enrolledAt: now, updatedAt: now });
}

/** Hold an active sequence, keeping the delay that is left. */
export function pause(cursor: SequenceCursor, now: string): SequenceTransition {
  const at = parseInstant(now, 'now');
  if (cursor.status !== 'active') return fail(cursor.status === 'paused' ? 'sequence is already paused' : `sequence is ${cursor.status}; only an active sequence can be paused`);
  const due = cursor.dueAt === undefined ? at : parseInstant(cursor.dueAt, 'cursor.dueAt');
  return ok({ ...base(cursor, now), status: 'paused', remainingMs: Math.max(0, due - at) });
}

/** Continue a paused sequence: the current step is due after the delay that was left. */
export function resume(cursor: SequenceCursor, now: string): SequenceTransition {
  const at = parseInstant(now, 'now');
  if (cursor.status !== 'paused') return fail(cursor.status === 'active' ? 'sequence is not paused' : `sequence is ${cursor.status}; only a paused sequence can be resumed`);
  return ok({ ...base(cursor, now), status: 'active', dueAt: formatInstant(at + Math.max(0, cursor.remainingMs ?? 0)) });
}

/** Back to step one, active, from any status. The original enrolment time is kept. */
export function reset(cursor: SequenceCursor, seq: SequenceDef, now: string): SequenceTransition {
  const at = parseInstant(now, 'now');
  const mismatch = sequenceMismatch(cursor, seq);
  if (mismatch) return fail(mismatch);
  const first = seq.steps[0];
  if (!first) return fail(`sequence "${seq.id}" has no steps`);
  return ok({ ...base(cursor, now), stepIndex: 0, status: 'active', dueAt: formatInstant(at + first.delayMs) });
}

/**
 * Skip the current step: the next one is due now (a paused sequence stays paused, with nothing
 * left to wait when resumed). Skipping the last step completes the sequence.
 */
export function skip(cursor: SequenceCursor, seq: SequenceDef, now: string): SequenceTransition {
  parseInstant(now, 'now');
  const mismatch = sequenceMismatch(cursor, seq);
  if (mismatch) return fail(mismatch);
  if (cursor.status !== 'active' && cursor.status !== 'paused') return fail(`sequence is ${cursor.status}; only an active or paused sequence can skip a step`);
  const next = cursor.stepIndex + 1;
  if (next >= seq.steps.length) return ok(completed(cursor, seq, now));
  if (cursor.status === 'paused') return ok({ ...base(cursor, now), stepIndex: next, status: 'paused', remainingMs: 0 });
  return ok({ ...base(cursor, now), stepIndex: next, status: 'active', dueAt: now });
}

/** End the sequence for good (until a reset). */
export function stop(cursor: SequenceCursor, reason: string, now: string): SequenceTransition {
  parseInstant(now, 'now');
  if (cursor.status === 'stopped' || cursor.status === 'completed') return fail(`sequence is already ${cursor.status}`);
  if (!reason.trim()) return fail('a stop reason is required');
  return ok({ ...base(cursor, now), status: 'stopped', stopReason: reason });
}

/**
 * The current step went out: the next one is due after its delay, or the sequence is complete.
 * Pass `sentStepIndex` (the step the send was planned for) to refuse advancing a cursor that
 * moved while the message was being delivered (e.g. a skip or reset in between).
 */
export function stepSent(cursor: SequenceCursor, seq: SequenceDef, now: string, sentStepIndex?: number): SequenceTransition {
  const at = parseInstant(now, 'now');
  const mismatch = sequenceMismatch(cursor, seq);
  if (mismatch) return fail(mismatch);
  if (cursor.status !== 'active') return fail(`sequence is ${cursor.status}; only an active sequence advances`);
  if (sentStepIndex !== undefined && sentStepIndex !== cursor.stepIndex) {
    return fail(`step ${sentStepIndex} was sent but the sequence is now at step ${cursor.stepIndex}`);
  }
  const next = cursor.stepIndex + 1;
  const step = seq.steps[next];
  if (!step) return ok(completed(cursor, seq, now));
  return ok({ ...base(cursor, now), stepIndex: next, status: 'active', dueAt: formatInstant(at + step.delayMs) });
}

/** The stop reason to record when `event` happens, if this sequence stops on it. */
export function stopReasonFor(seq: SequenceDef, event: StopCondition): StopCondition | undefined {
  return seq.stopOn.includes(event) ? event : undefined;
}

// ------------------------------------------------------------------------------ what to do now

/**
 * What the workflow should do about the sequence at `now`: nothing (not active, or the cursor
 * is for another sequence), finish (every step done), wait (for the delay or for the step's
 * send window in the lead's time zone), or send the current step as the 24-hour window allows.
 */
export function nextAction(input: NextActionInput): SequenceAction {
  const { seq, cursor, now, timeZone } = input;
  const at = parseInstant(now, 'now');
  if (cursor.status === 'completed') return { type: 'done' };
  if (cursor.status !== 'active' || cursor.sequenceId !== seq.id) return { type: 'idle' };
  const step = seq.steps[cursor.stepIndex];
  if (!step) return { type: 'done' };

  // An active cursor without dueAt (not one these transitions make) is treated as due now.
  if (cursor.dueAt !== undefined && parseInstant(cursor.dueAt, 'cursor.dueAt') > at) {
    // nextAllowedSlot answers dueAt itself when the step may go out then, a later instant if not.
    const slot = nextAllowedSlot(cursor.dueAt, step.sendWindow, timeZone);
    return slot === cursor.dueAt ? { type: 'wait', until: slot, reason: 'delay' } : { type: 'wait', until: slot, reason: 'quiet_hours' };
  }
  if (!isAllowed(now, step.sendWindow, timeZone)) {
    return { type: 'wait', until: nextAllowedSlot(now, step.sendWindow, timeZone), reason: 'quiet_hours' };
  }
  const plan = planOutbound({ kind: step.kind, lastInboundAt: input.lastInboundAt, now, fallbackTemplate: step.template });
  return { type: 'send', step, stepIndex: cursor.stepIndex, plan };
}

// ------------------------------------------------------------------------------ internals

function ok(cursor: SequenceCursor): SequenceTransition {
  return { ok: true, cursor };
}

function fail(reason: string): SequenceTransition {
  return { ok: false, reason };
}

/** The fields every status keeps; status-specific ones (dueAt, remainingMs, stopReason) are dropped. */
function base(cursor: SequenceCursor, now: string): Pick<SequenceCursor, 'sequenceId' | 'stepIndex' | 'enrolledAt' | 'updatedAt'> {
  return { sequenceId: cursor.sequenceId, stepIndex: cursor.stepIndex, enrolledAt: cursor.enrolledAt, updatedAt: now };
}

function completed(cursor: SequenceCursor, seq: SequenceDef, now: string): SequenceCursor {
  return { ...base(cursor, now), stepIndex: seq.steps.length, status: 'completed' };
}

function sequenceMismatch(cursor: SequenceCursor, seq: SequenceDef): string | undefined {
  return cursor.sequenceId === seq.id ? undefined : `cursor belongs to sequence "${cursor.sequenceId}", not "${seq.id}"`;
}
