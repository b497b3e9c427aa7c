/**
 * Resuming the sends that wait on a channel's circuit breaker, outside the API request: the
 * close route closes the circuit in the database (only when it was open) and starts this
 * workflow once per opening (`circuit-resume:{channelAccountId}:{openedAtMs}`), so a repeated
 * close call never signals twice and the fan-out is retried by Temporal and visible in the Web UI.
 * Waiting leads also re-check the circuit on their own (5 to 60 minutes): a lost signal only delays.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { createCircuitActivities, SignalCircuitWaitersInput } from '../activities/ops/circuit';

export const RESUME_CIRCUIT_WORKFLOW_TYPE = 'resumeCircuitWaitersWorkflow';

const { signalCircuitWaiters } = proxyActivities<ReturnType<typeof createCircuitActivities>>({
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', backoffCoefficient: 2, maximumInterval: '1 minute', maximumAttempts: 10 },
});

export async function resumeCircuitWaitersWorkflow(input: SignalCircuitWaitersInput): Promise<{ signalled: number }> {
  return signalCircuitWaiters(input);
}

/** One fan-out per opening of a channel's circuit. */
export function resumeCircuitWorkflowId(channelAccountId: string, openedAt: string): string {
  return `circuit-resume:${channelAccountId}:${Date.parse(openedAt)}`;
}
