import { Context } from '@temporalio/activity';
import type { CreditService } from '../../services/credits';

/** The id of the workflow running this activity (the lead's), or undefined outside an activity. */
export function callerWorkflowId(): string | undefined {
  try {
    return Context.current().info.workflowExecution?.workflowId;
  } catch {
    return undefined;
  }
}

export function createCreditActivities(deps: { credits: CreditService }) {
  return {
    /** Hold credit for one reply; the reservation remembers the lead workflow (for the stale-reservation sweep). */
    async reserveCredit(input: { tenantId: string; reference: string }) {
      return deps.credits.reserve({ ...input, workflowId: callerWorkflowId() });
    },
    async captureCredit(input: { reference: string; messageId: string }) {
      return deps.credits.capture(input);
    },
    async releaseCredit(input: { reference: string }) {
      return deps.credits.release(input);
    },
  };
}
