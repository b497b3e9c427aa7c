import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../contract/failures';
import type { InboundMessage, LeadWorkflowSettings } from '../../contract/messages';
import type { Channel, LeadMode } from '../../contract/vocabulary';
import type { AgentService } from '../../services/agents';
import type { ChannelService } from '../../services/channels';
import { ChannelNotLive, type LeadService } from '../../services/leads';
import type { SequenceService } from '../../services/sequences';
import type { SuppressionService } from '../../services/suppressions';

export function createPersistenceActivities(deps: { leads: LeadService; channels: ChannelService; agents: AgentService; sequences: SequenceService; suppressions: SuppressionService; leadSettings: LeadWorkflowSettings }) {
  return {
    /**
     * Create or find the lead; also what the workflow needs of its agent, and the lead settings
     * this worker was configured with (the workflow calls this at every run start, so a changed
     * LEAD_* setting reaches a running lead at its next run).
     */
    async ensureLead(input: { tenantId: string; channelAccountId: string; channel: Channel; contactId: string; name?: string; workflowId: string }) {
      // opt-out: whether the contact is on the tenant's suppression list now (asked alongside the channel)
      const [channel, suppressed] = await Promise.all([deps.channels.agentIdFor(input.channelAccountId), deps.suppressions.covers(input)]);
      if (channel?.deleted) {
        // a message routed to a deleted channel (a webhook cache of another API process): no lead, the run ends
        throw ApplicationFailure.create({ type: FailureType.ChannelDeleted, message: `channel account ${input.channelAccountId} is deleted: no lead starts on it`, nonRetryable: true });
      }
      const agentId = channel?.agentId ?? undefined;
      const [lead, agent] = await Promise.all([
        deps.leads.ensure(input).catch((err: unknown) => {
          // deleted between the check above and the insert (the insert waits for a delete in flight)
          if (err instanceof ChannelNotLive) throw ApplicationFailure.create({ type: FailureType.ChannelDeleted, message: err.message, nonRetryable: true });
          throw err;
        }),
        agentId ? deps.agents.get(input.tenantId, agentId) : undefined,
      ]);
      const autoEnroll = lead.created ? await deps.sequences.autoEnrollment(input.tenantId, agentId, input.channelAccountId) : undefined;
      return { ...lead, handoffKeywords: agent?.handoffKeywords ?? [], autoEnroll, settings: deps.leadSettings, optOutSettings: agent?.optOut ?? undefined, suppressed };
    },
    /** Whether the contact is on the tenant's suppression list (any channel, any of its forms): asked just before a send that needs consent. */
    async contactSuppressed(input: { tenantId: string; channelAccountId: string; contactId: string }): Promise<{ suppressed: boolean }> {
      return { suppressed: await deps.suppressions.covers(input) };
    },
    /**
     * The contact wrote an opt-out or opt-in phrase: put it on the suppression list or take it
     * off, and record the event (once per message). `changed`: it was not on the list before
     * (opt_out) or was (opt_in); the confirmation is sent only when an opt-out changed something.
     */
    async applyOptPhrase(input: { tenantId: string; channelAccountId: string; contactId: string; leadId: string; action: 'opt_out' | 'opt_in'; keyword: string; providerMessageId: string }): Promise<{ changed: boolean; suppressionIds: string[] }> {
      const { tenantId, leadId, action, keyword, providerMessageId } = input;
      if (action === 'opt_out') {
        const { suppression, created } = await deps.suppressions.optOut({ ...input });
        await deps.leads.recordEvent({ tenantId, leadId, type: 'opted_out', data: { source: 'keyword', keyword, suppressionId: suppression.id, alreadySuppressed: !created }, dedupKey: `opted_out:${providerMessageId}` });
        return { changed: created, suppressionIds: [suppression.id] };
      }
      const removed = await deps.suppressions.optIn(input);
      await deps.leads.recordEvent({ tenantId, leadId, type: 'opted_in', data: { source: 'keyword', keyword, suppressionIds: removed, wasSuppressed: removed.length > 0 }, dedupKey: `opted_in:${providerMessageId}` });
      return { changed: removed.length > 0, suppressionIds: removed };
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
