/**
 * The lead's database writes, each with a summary for the Web UI. A value the database refuses
 * for good (database_rejected: SQLSTATE class 22 or 23, not retried) does not stall the lead: it
 * is parked as a dead letter of kind 'database' (ids and the SQLSTATE only) and the lead carries on.
 */
import { log, uuid4 } from '@temporalio/workflow';
import { DATABASE, database } from './proxies';
import type { LeadCarriedState, ParkedOperation } from './definitions';
import { FailureType } from '../../contract/failures';
import { capParked, parkedRef } from './policy/bounds';
import { failureReason, failureType } from './outcome';
import { nowIso, type LeadRun } from './run';


/** Run a database call; a refusal for good is parked and `fallback` returned. */
export async function guarded<T>(run: LeadRun, what: string, call: () => Promise<T>, fallback: T): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (failureType(err) !== FailureType.DatabaseRejected) throw err;
    await parkRejected(run, what, err);
    return fallback;
  }
}

/** A lead event (the timeline in the API); `dedupKey` makes a repeated write a no-op. */
export function event(run: LeadRun, type: string, data?: unknown, dedupKey?: string): Promise<void> {
  return guarded(run, `record event ${type}`, () => database.recordLeadEvent.executeWithOptions(run.options(DATABASE, `Event: ${type}`), [{ tenantId: run.tenantId, leadId: run.leadId, type, data, dedupKey }]), undefined);
}

export function updateLead(run: LeadRun, input: { stage?: string; mode?: LeadCarriedState['mode'] }): Promise<void> {
  const summary = `Mirror ${input.mode ? 'mode' : 'stage'} to the database`;
  return guarded(run, 'update the lead', () => database.updateLeadState.executeWithOptions(run.options(DATABASE, summary), [{ leadId: run.leadId, ...input }]), undefined);
}

export function setBlocked(run: LeadRun, blocked: boolean): Promise<void> {
  const summary = blocked ? 'Mark the lead blocked (no credit)' : 'Mark the lead unblocked';
  return guarded(run, 'mark the lead blocked', () => database.setLeadBlocked.executeWithOptions(run.options(DATABASE, summary), [{ leadId: run.leadId, blocked }]), undefined);
}

export async function releaseCredit(run: LeadRun, reference: string): Promise<void> {
  await guarded(run, 'release a credit', () => database.releaseCredit.executeWithOptions(run.options(DATABASE, 'Release the held credit'), [{ reference }]), undefined);
}

export async function captureCredit(run: LeadRun, reference: string, messageId: string): Promise<void> {
  await guarded(run, 'capture a credit', () => database.captureCredit.executeWithOptions(run.options(DATABASE, 'Capture the credit'), [{ reference, messageId }]), undefined);
}

/** Reserve a credit; `null` when the database refused for good (parked). */
/** `forReply`: an AI reply, refused while the lead's channel is disabled. */
export function reserveCredit(run: LeadRun, reference: string, forReply = false) {
  const input = { tenantId: run.tenantId, reference, ...(forReply ? { replyChannelId: run.channelAccountId } : {}) };
  return guarded(run, 'reserve a credit', () => database.reserveCredit.executeWithOptions(run.options(DATABASE, 'Reserve credit'), [input]), null);
}

export function recordInbound(run: LeadRun, messages: LeadCarriedState['inbox'], summary: string, batchId = uuid4()) {
  return guarded(
    run,
    'record inbound messages',
    () => database.recordInbound.executeWithOptions(run.options(DATABASE, summary), [{ tenantId: run.tenantId, leadId: run.leadId, messages, batchId }]),
    undefined,
  );
}

/**
 * A database write refused for good: a dead letter of kind 'database' that names the write and
 * the SQLSTATE (never the values). Recording it may be refused too (the lead's rows are gone):
 * then it is only logged; either way the lead carries on.
 */
async function parkRejected(run: LeadRun, what: string, err: unknown): Promise<void> {
  const id = uuid4();
  const op: ParkedOperation = { id, kind: 'database', purpose: what, byBot: false, parkedAt: nowIso(), error: { type: failureType(err), message: failureReason(err) }, attempts: 1 };
  const { tenantId, leadId, workflowId } = run;
  log.warn('database refused a write: parked', { leadId, deadLetterId: id, what, reason: op.error.message });
  run.state.deadLetters = capParked([...(run.state.deadLetters ?? []), parkedRef(op)]);
  run.changed();
  try {
    await database.parkDeadLetter.executeWithOptions(run.options(DATABASE, `Park as dead letter: ${what}`), [{ id, tenantId, leadId, workflowId, kind: 'database', operation: op, error: op.error }]);
    await database.recordLeadEvent.executeWithOptions(run.options(DATABASE, 'Event: dead_letter'), [
      { tenantId, leadId, type: 'dead_letter', data: { deadLetterId: id, kind: 'database', purpose: what, error: op.error }, dedupKey: `dead_letter:${id}:1` },
    ]);
  } catch (again) {
    if (failureType(again) !== FailureType.DatabaseRejected) throw again;
    log.error('database refused the dead letter too: kept in the workflow only', { leadId, deadLetterId: id, reason: failureReason(again) });
  }
  run.refreshAttention();
}
