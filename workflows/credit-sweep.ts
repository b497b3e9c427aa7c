/**
 * The periodic sweep of stale credit reservations, started by a Temporal Schedule
 * (temporal/schedules.ts, created or updated at worker start). One activity does the work;
 * see activities/ops/credit-sweep.ts for what "stale" means.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { createCreditSweepActivities, SweepReservationsInput, SweepReservationsResult } from '../activities/ops/credit-sweep';

export const CREDIT_SWEEP_WORKFLOW_TYPE = 'creditSweepWorkflow';

const { sweepStaleReservations } = proxyActivities<ReturnType<typeof createCreditSweepActivities>>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumInterval: '2 minutes', maximumAttempts: 5 },
});

export async function creditSweepWorkflow(input: SweepReservationsInput): Promise<SweepReservationsResult> {
  return sweepStaleReservations(input);
}
