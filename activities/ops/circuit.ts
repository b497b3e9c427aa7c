/**
 * `signalCircuitWaiters`: wake the lead workflows of one channel that wait on its (now closed)
 * circuit breaker. Run by `resumeCircuitWaitersWorkflow`, never inside an API request. Only
 * running leads of the channel that flag `NeedsAttention` are listed (a lead waiting on the
 * breaker sets it); a signal to a lead that is not waiting is harmless, so a retry may repeat them.
 */
import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { LEAD_WORKFLOW_TYPE, LeadMessage } from '../../contract/workflow-names';
import type { Logger } from '../../lib/logger';

export interface SignalCircuitWaitersInput {
  tenantId: string;
  channelAccountId: string;
}

export interface CircuitDeps {
  /** A Temporal client on the worker's connection; without it the activity fails (non-retryable config error). */
  temporalClient?: Client;
  log: Logger;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function createCircuitActivities(deps: CircuitDeps) {
  const log = deps.log.child({ module: 'circuit' });
  return {
    async signalCircuitWaiters(input: SignalCircuitWaitersInput): Promise<{ signalled: number }> {
      const client = deps.temporalClient;
      if (!client) throw new Error('no Temporal client configured for signalCircuitWaiters');
      if (!UUID.test(input.channelAccountId)) throw new Error('channelAccountId must be a uuid');
      const query = `WorkflowType = '${LEAD_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND ChannelAccountId = '${input.channelAccountId}' AND NeedsAttention = true`;
      let signalled = 0;
      for await (const wf of client.workflow.list({ query })) {
        try {
          // circuitClosedSignal (no arguments), by its contract name: activities do not import workflow code
          await client.workflow.getHandle(wf.workflowId).signal(LeadMessage.circuitClosed);
          signalled += 1;
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
        }
        Context.current().heartbeat(signalled);
      }
      log.info({ channelAccountId: input.channelAccountId, signalled }, 'circuit waiters signalled');
      return { signalled };
    },
  };
}
