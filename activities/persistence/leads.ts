import type { InboundMessage, LeadWorkflowSettings } from '../../contract/messages';
import type { Channel, LeadMode } from '../../contract/vocabulary';
import type { AgentService } from '../../services/agents';
import type { ChannelService } from '../../services/channels';
import type { LeadService } from '../../services/leads';
import type { SequenceService } from '../../services/sequences';

export function createPersistenceActivities(deps: { leads: LeadService; channels: ChannelService; agents: AgentService; sequences: SequenceService; leadSettings: LeadWorkflowSettings }) {
  return {
    /**
     * Create or find the lead; also what the workflow needs of its agent, and the lead settings
     * this worker was configured with (the workflow calls this at every run start, so a changed
     * LEAD_* setting reaches a running lead at its next run).
     */
    async ensureLead(input: { tenantId: string; channelAccountId: string; channel: Channel; contactId: string; name?: string; workflowId: string }) {
      const lead = await deps.leads.ensure(input);
      const agentId = await deps.channels.agentIdFor(input.channelAccountId);
      const agent = agentId ? await deps.agents.get(input.tenantId, agentId) : undefined;
      const autoEnroll = lead.created ? await deps.sequences.autoEnrollment(input.tenantId, agentId, input.channelAccountId) : undefined;
      return { ...lead, handoffKeywords: agent?.handoffKeywords ?? [], autoEnroll, settings: deps.leadSettings };
    },
    /** `newIds`: the messages the database had not recorded before (a redelivery is not among them). */
    async recordInbound(input: { tenantId: string; leadId: string; messages: InboundMessage[]; batchId?: string }): Promise<{ stored: number; newIds: string[] }> {
      const { stored } = await deps.leads.recordInbound(input);
      return { stored: stored.length, newIds: stored };
    },
    async recordLeadEvent(input: { tenantId: string; leadId: string; type: string; data?: unknown; dedupKey?: string }): Promise<void> {
      await deps.leads.recordEvent(input);
    },
    async updateLeadState(input: { leadId: string; stage?: string; mode?: LeadMode }): Promise<void> {
      await deps.leads.updateState(input);
    },
    async setLeadBlocked(input: { leadId: string; blocked: boolean }): Promise<void> {
      await deps.leads.setBlocked(input);
    },
    /** The outbound message recorded under this id, if any: what a reply turn wrote (and maybe sent) before its result was lost. */
    async findOutbound(input: { outboundMessageId: string }): Promise<{ text: string; status: string; providerMessageId: string | null } | null> {
      const row = await deps.leads.outbound(input.outboundMessageId);
      return row ? { text: row.body, status: row.status, providerMessageId: row.providerMessageId } : null;
    },
  };
}
