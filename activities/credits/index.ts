import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../contract/failures';
import type { DbTransaction } from '../../db/client';
import { isAppError } from '../../lib/errors';
import type { CreditService } from '../../services/credits';

/** The id of the workflow running this activity (the lead's), or undefined outside an activity. */
export function callerWorkflowId(): string | undefined {
  try {
    return Context.current().info.workflowExecution?.workflowId;
  } catch {
    return undefined;
  }
}

/**
 * `credits.reserve` for an activity: a tenant that is gone (the service's not_found AppError,
 * which Temporal would retry forever under the database retry policy) is refused for good as a
 * non-retryable database_rejected, which the lead workflow parks (workflows/lead/records.ts).
 */
export async function reserveCreditOrRefuse(
  credits: Pick<CreditService, 'reserve'>,
  input: Parameters<CreditService['reserve']>[0],
  opts?: { tx?: DbTransaction },
): ReturnType<CreditService['reserve']> {
  try {
    return await credits.reserve(input, opts);
  } catch (err) {
    if (isAppError(err) && err.code === 'not_found') {
      throw ApplicationFailure.create({ type: FailureType.DatabaseRejected, message: `cannot reserve a credit: tenant ${input.tenantId} not found`, nonRetryable: true, details: [{ reason: 'tenant_not_found' }] });
    }
    throw err;
  }
}

export function createCreditActivities(deps: { credits: CreditService }) {
  return {
    /** Hold credit for one reply; the reservation remembers the lead workflow (for the stale-reservation sweep). */
    async reserveCredit(input: { tenantId: string; reference: string; replyChannelId?: string }) {
      return reserveCreditOrRefuse(deps.credits, { ...input, workflowId: callerWorkflowId() });
    },
    async captureCredit(input: { reference: string; messageId: string }) {
      return deps.credits.capture(input);
    },
    async releaseCredit(input: { reference: string }) {
      return deps.credits.release(input);
    },
  };
}
