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

  function send(input: SendTextInput): Promise<SendResult> {
    return deliverWebChat(deps, { id: input.outboundMessageId, tenantId: input.tenantId, leadId: input.leadId, body: input.text, type: 'text', ...textDetails(input) });
  }
}

/**
 * Deliver one web chat message (text or rich): record it under the workflow's id, or find the
 * earlier attempt's; recording it as sent is the delivery. A disabled channel waits.
 */
export async function deliverWebChat(
  deps: WebChatDeps,
  outbound: { id: string; tenantId: string; leadId: string; body: string; type: string; details?: Record<string, unknown> },
): Promise<SendResult> {
  const row = await deps.leads.createOutbound(outbound);
  const settled = await settledOutbound(deps.leads, row, 'the channel');
  if (settled) return settled;
  if (row.channelEnabled === false) {
    throw ApplicationFailure.create({ type: FailureType.ChannelCircuitOpen, message: 'the channel is disabled: the send waits until it is enabled again', nonRetryable: true, details: [{ reason: FailureType.ChannelDisabled }] });
  }
  const providerMessageId = webChatProviderMessageId(outbound.id);
  const startedAt = performance.now();
  await deps.leads.markOutboundSent({ id: outbound.id, leadId: outbound.leadId, providerMessageId });
  recordSendDuration('webchat', 'ok', (performance.now() - startedAt) / 1000);
  return { outboundMessageId: outbound.id, providerMessageId, alreadySent: false };
}
