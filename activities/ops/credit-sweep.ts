/**
 * `sweepStaleReservations`: give back credits held by leads that can no longer use them.
 *
 * A reservation is stale when BOTH hold:
 *  - it has been `held` for longer than `staleAfterMs` (CREDIT_RESERVATION_STALE_HOURS), and
 *  - its lead row is gone, or the lead's workflow (latest run of its id) is not running
 *    (completed, failed, terminated, timed out, or unknown to Temporal).
 * A running lead keeps its reservations however old (a send parked as a dead letter or waiting
 * on an open circuit keeps its credit on purpose). Releasing is the ledger's idempotent
 * `release`, so a retried or overlapping sweep never gives a credit back twice.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { Logger } from '../../lib/logger';
import type { CreditService } from '../../services/credits';

export interface SweepReservationsInput {
  /** Only reservations held longer than this are looked at. */
  staleAfterMs: number;
  /** At most this many per run (oldest first); the next scheduled run takes the rest. */
  limit?: number;
}

export interface SweepReservationsResult {
  examined: number;
  released: number;
  /** Credits given back in total. */
  creditsReleased: number;
}

export function createCreditSweepActivities(deps: { credits: CreditService; temporalClient?: Client; log: Logger }) {
  const log = deps.log.child({ module: 'credit-sweep' });

  async function workflowRunning(client: Client, workflowId: string): Promise<boolean> {
    try {
      const d = await client.workflow.getHandle(workflowId).describe();
      return d.status.name === 'RUNNING';
    } catch (err) {
      if (err instanceof WorkflowNotFoundError) return false;
      throw err;
    }
  }

  return {
    async sweepStaleReservations(input: SweepReservationsInput): Promise<SweepReservationsResult> {
      const client = deps.temporalClient;
      if (!client) throw new Error('no Temporal client configured for sweepStaleReservations');
      const candidates = await deps.credits.heldOlderThan({ olderThanMs: input.staleAfterMs, limit: input.limit ?? 500 });
      let released = 0;
      let creditsReleased = 0;
      for (const r of candidates) {
        const stale = !r.leadExists || !r.workflowId || !(await workflowRunning(client, r.workflowId));
        if (stale && (await deps.credits.release({ reference: r.reference })).released) {
          released += 1;
          creditsReleased += r.amount;
          log.info({ reference: r.reference, tenantId: r.tenantId, amount: r.amount, heldSince: r.createdAt, leadExists: r.leadExists }, 'stale credit reservation released');
        }
        Context.current().heartbeat(released);
      }
      return { examined: candidates.length, released, creditsReleased };
    },
  };
}
