import type { LeadService } from '../../services/leads';
import type { Channel, InboundMessage } from '../../workflows/lead/definitions';

export function createPersistenceActivities(deps: { leads: LeadService }) {
  return {
    async ensureLead(input: { tenantId: string; channelAccountId: string; channel: Channel; contactId: string; name?: string; workflowId: string }) {
      return deps.leads.ensure(input);
    },
    async recordInbound(input: { tenantId: string; leadId: string; messages: InboundMessage[] }): Promise<{ stored: number }> {
      const { stored } = await deps.leads.recordInbound(input);
      return { stored: stored.length };
    },
    async recordLeadEvent(input: { tenantId: string; leadId: string; type: string; data?: unknown; dedupKey?: string }): Promise<void> {
      await deps.leads.recordEvent(input);
    },
    async setLeadBlocked(input: { leadId: string; blocked: boolean }): Promise<void> {
      await deps.leads.setBlocked(input);
    },
  };
}
