import type { ParkedOperation } from '../../contract/messages';
import { recordDeadLetterParked } from '../../lib/metrics';
import type { DeadLetterService } from '../../services/dead-letters';

export function createDeadLetterActivities(deps: { deadLetters: DeadLetterService }) {
  return {
    /** Record (or reopen) a dead letter the workflow parked. */
    async parkDeadLetter(input: { id: string; tenantId: string; leadId: string; workflowId: string; kind: string; operation: unknown; error: unknown; outboundMessageId?: string }): Promise<void> {
      await deps.deadLetters.park(input);
      recordDeadLetterParked(input.kind);
    },
    /** The operation a dead letter parked (the workflow keeps only its id); null when it is gone. */
    async loadDeadLetter(input: { id: string }): Promise<ParkedOperation | null> {
      return (await deps.deadLetters.operation(input.id)) as ParkedOperation | null;
    },
    async resolveDeadLetter(input: { id: string; status: 'replayed' | 'discarded' }): Promise<void> {
      await deps.deadLetters.resolve(input);
    },
    /** 'open' while the channel's circuit breaker stops sends. */
    async channelCircuitState(input: { channelAccountId: string }): Promise<'open' | 'closed'> {
      return deps.deadLetters.circuitState(input.channelAccountId);
    },
  };
}
