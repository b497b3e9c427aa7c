/**
 * Web chat delivery. There is no provider to call: recording the reply as sent *is* the
 * delivery, and the visitor's browser reads it from the database through the API's SSE
 * stream (`api/routes/webchat.ts`). Effectively once like a Graph send: the row is created
 * under the workflow's deterministic id, and a retry returns the stored id.
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../contract/failures';
import type { LeadService } from '../../services/leads';
import { recordReply, recordSendDuration } from '../../lib/metrics';
import { replyOutcomeOf, settledOutbound, type SendResult } from './graph-send';
import { textDetails, type SendTextInput } from './whatsapp';

export interface WebChatDeps {
  leads: LeadService;
}

/** The provider id a web chat reply gets (unique, so the messages table's unique index holds). */
export function webChatProviderMessageId(outboundMessageId: string): string {
  return `webchat:${outboundMessageId}`;
}

export function createWebChatActivities(deps: WebChatDeps) {
  return {
    /** Publish a reply to the visitor's stream; effectively once per outboundMessageId. */
    async sendWebChatText(input: SendTextInput): Promise<SendResult> {
      try {
        const sent = await send(input);
        recordReply('webchat', sent.alreadySent ? 'already_sent' : 'sent');
        return sent;
      } catch (err) {
        recordReply('webchat', replyOutcomeOf(err));
        throw err;
      }
    },
  };

  async function send(input: SendTextInput): Promise<SendResult> {
    const row = await deps.leads.createOutbound({ id: input.outboundMessageId, tenantId: input.tenantId, leadId: input.leadId, body: input.text, type: 'text', ...textDetails(input) });
    const settled = await settledOutbound(deps.leads, row, 'the channel');
    if (settled) return settled;
    if (row.channelEnabled === false) {
      throw ApplicationFailure.create({ type: FailureType.ChannelCircuitOpen, message: 'the channel is disabled: the send waits until it is enabled again', nonRetryable: true, details: [{ reason: FailureType.ChannelDisabled }] });
    }
    const providerMessageId = webChatProviderMessageId(input.outboundMessageId);
    const startedAt = performance.now();
    await deps.leads.markOutboundSent({ id: input.outboundMessageId, leadId: input.leadId, providerMessageId });
    recordSendDuration('webchat', 'ok', (performance.now() - startedAt) / 1000);
    return { outboundMessageId: input.outboundMessageId, providerMessageId, alreadySent: false };
  }
}
