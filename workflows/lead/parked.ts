/**
 * Parked operations: dead letters (an admin replays or discards them), the circuit-breaker
 * wait, and the database rows behind both. The workflow state keeps only the ids.
 */
import { condition, continueAsNew, log, uuid4 } from '@temporalio/workflow';
import { DATABASE, database } from './proxies';
import type { LeadWorkflowInput, ParkedOperation } from './definitions';
import { capParked, parkedRef } from './policy/bounds';
import { failureReason, failureType } from './outcome';
import type { PlannedSend, SendContext } from './outbound';
import { event, guarded } from './records';
import { nowIso, type LeadRun } from './run';

/** While the circuit breaker is open, check it this often (a close by API also signals). */
const CIRCUIT_POLL_MIN_MS = 5 * 60 * 1000;
const CIRCUIT_POLL_MAX_MS = 60 * 60 * 1000;

/** A parked operation as stored: a dead letter or a deferral. */
export function parkedOperation(run: LeadRun, kind: ParkedOperation['kind'], context: SendContext, err: unknown, extra: { id: string; send?: PlannedSend; retryAt?: string; attempts: number }): ParkedOperation {
  return {
    id: extra.id,
    kind,
    purpose: context.purpose,
    what: context.what,
    ...(extra.send ? { send: extra.send } : {}),
    fallbackTemplate: context.fallbackTemplate,
    byBot: context.byBot,
    parkedAt: nowIso(),
    ...(extra.retryAt ? { retryAt: extra.retryAt } : {}),
    error: { type: failureType(err), message: failureReason(err) },
    attempts: extra.attempts,
  };
}

/** Park an operation whose retries ran out: a dead-letter row, an event and NeedsAttention. */
export async function park(run: LeadRun, kind: 'reply' | 'send', context: SendContext, err: unknown, send?: PlannedSend): Promise<string> {
  const id = context.deadLetterId ?? uuid4();
  const op = parkedOperation(run, kind, context, err, { id, send, attempts: (context.attempts ?? 0) + 1 });
  const { tenantId, leadId, workflowId } = run;
  run.state.deadLetters = capParked([...(run.state.deadLetters ?? []).filter((d) => d.id !== id), parkedRef(op)]);
  run.changed();
  await guarded(
    run,
    'park a dead letter',
    () =>
      database.parkDeadLetter.executeWithOptions(run.options(DATABASE, `Park as dead letter: ${context.purpose}`), [
        { id, tenantId, leadId, workflowId, kind, operation: op, error: op.error, outboundMessageId: send?.outboundMessageId },
      ]),
    undefined,
  );
  run.refreshAttention();
  await event(run, 'dead_letter', { deadLetterId: id, kind, purpose: context.purpose, error: op.error, attempts: op.attempts }, `dead_letter:${id}:${op.attempts}`);
  log.warn('operation parked as dead letter', { leadId, deadLetterId: id, kind, type: op.error.type });
  return id;
}

/** A parked operation from the dead_letters table (the state keeps only its id). */
export async function loadParked(run: LeadRun, id: string): Promise<ParkedOperation | undefined> {
  const op = await guarded(run, 'load a dead letter', () => database.loadDeadLetter.executeWithOptions(run.options(DATABASE, 'Load the parked operation'), [{ id }]), null);
  return op ?? undefined;
}

export async function resolveParked(run: LeadRun, id: string, status: 'replayed' | 'discarded'): Promise<void> {
  run.state.deadLetters = (run.state.deadLetters ?? []).filter((d) => d.id !== id);
  run.changed();
  await guarded(run, 'resolve a dead letter', () => database.resolveDeadLetter.executeWithOptions(run.options(DATABASE, `Mark the dead letter ${status}`), [{ id, status }]), undefined);
  run.refreshAttention();
  await event(run, `dead_letter_${status}`, { deadLetterId: id }, `dead_letter_${status}:${id}`);
}

/** Settle a replayed dead letter once its operation ended (sent, refused, failed for good). */
export async function settleReplay(run: LeadRun, context: SendContext): Promise<void> {
  if (context.deadLetterId) await resolveParked(run, context.deadLetterId, 'replayed');
}

/**
 * Sends wait (they do not fail) while the channel's circuit breaker is open. When the history
 * fills up during a long wait, the run hands over to a new one with the waiting send carried
 * as a deferral that the next run resumes first (same outbound id, credit still held).
 */
export async function waitForCircuit(run: LeadRun, reason: string, carry: () => ParkedOperation): Promise<void> {
  const { state } = run;
  state.circuitWaitSince ??= nowIso();
  run.refreshAttention();
  await event(run, 'circuit_wait', { reason, since: state.circuitWaitSince }, `circuit_wait:${state.circuitWaitSince}`);
  let poll = CIRCUIT_POLL_MIN_MS;
  for (;;) {
    const seen = run.circuitSignals;
    await condition(() => run.circuitSignals !== seen, poll, { summary: `Circuit breaker open: sends wait until channel ${run.channelAccountId} is fixed` });
    const circuit = await guarded(
      run,
      'read the circuit breaker',
      () => database.channelCircuitState.executeWithOptions(run.options(DATABASE, 'Is the circuit breaker closed?'), [{ channelAccountId: run.channelAccountId }]),
      'closed' as const,
    );
    if (circuit !== 'open') break;
    poll = Math.min(poll * 2, CIRCUIT_POLL_MAX_MS);
    if (run.mayHandOverWhileWaiting()) {
      state.deferred = [...(state.deferred ?? []), carry()];
      await continueAsNew<(input: LeadWorkflowInput) => Promise<void>>(run.nextRunInput());
    }
  }
  const since = state.circuitWaitSince;
  state.circuitWaitSince = undefined;
  run.refreshAttention();
  await event(run, 'circuit_resumed', { since }, `circuit_resumed:${since}`);
}
