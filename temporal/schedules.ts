/**
 * Temporal Schedules Parley keeps: created or brought up to date at worker start (idempotent:
 * a second worker, or a restart, updates the same schedule instead of adding one).
 */
import { ScheduleAlreadyRunning, ScheduleOverlapPolicy, type Client } from '@temporalio/client';
import { CREDIT_SWEEP_WORKFLOW_TYPE, type creditSweepWorkflow } from '../workflows/credit-sweep';

export interface CreditSweepScheduleOptions {
  taskQueue: string;
  /** How often the sweep runs. */
  everyMs: number;
  /** A held reservation older than this whose lead is gone or not running is released. */
  staleAfterMs: number;
}

/** One schedule per task queue (a deployment normally has one). */
export function creditSweepScheduleId(taskQueue: string): string {
  return `parley-credit-sweep-${taskQueue}`;
}

/** Create the credit sweep schedule, or update its interval and arguments when it exists. Returns its id. */
export async function ensureCreditSweepSchedule(client: Client, opts: CreditSweepScheduleOptions): Promise<string> {
  const scheduleId = creditSweepScheduleId(opts.taskQueue);
  const spec = { intervals: [{ every: opts.everyMs }] };
  const action = {
    type: 'startWorkflow' as const,
    workflowType: CREDIT_SWEEP_WORKFLOW_TYPE,
    workflowId: `credit-sweep-${opts.taskQueue}`,
    taskQueue: opts.taskQueue,
    args: [{ staleAfterMs: opts.staleAfterMs }] as Parameters<typeof creditSweepWorkflow>,
    workflowExecutionTimeout: 30 * 60 * 1000,
    staticSummary: 'Release credit reservations held by leads that are gone',
  };
  try {
    await client.schedule.create({
      scheduleId,
      spec,
      action,
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      memo: { purpose: 'stale credit reservation sweep' },
    });
  } catch (err) {
    if (!(err instanceof ScheduleAlreadyRunning)) throw err;
    await client.schedule.getHandle(scheduleId).update((prev) => ({ ...prev, spec, action, policies: { ...prev.policies, overlap: ScheduleOverlapPolicy.SKIP } }));
  }
  return scheduleId;
}
