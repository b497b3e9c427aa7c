import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../contract/failures';
import type { TemplateRef } from '../../contract/messages';
import { isBsuid } from '../../lib/bsuid';
import { buildTemplateParameters, renderTemplateText } from '../../services/template-components';
import { APPROVED, type TemplateService } from '../../services/templates';
import type { KnowledgeUsed } from '../llm/knowledge-context';
import { fitTextLength } from './text-limit';
import { createGraphSender, type GraphSendDeps, type SendBase, type SendResult } from './graph-send';

export type { SendBase, SendResult } from './graph-send';

export interface WhatsAppDeps extends GraphSendDeps {
  templates: TemplateService;
}

export interface SendTextInput extends SendBase {
  text: string;
  /** The knowledge-base passages the reply was written from (activities/llm/knowledge-context.ts): kept in the message's `details.knowledge`. */
  knowledge?: KnowledgeUsed[];
}

/** The transcript details of a text send: the knowledge it used, when any. */
export function textDetails(input: Pick<SendTextInput, 'knowledge'>): { details?: Record<string, unknown> } {
  return input.knowledge?.length ? { details: { knowledge: input.knowledge } } : {};
}

export interface SendTemplateInput extends SendBase {
  template: TemplateRef;
}

/**
 * How a WhatsApp send addresses the user (Meta, business-scoped user ids): `to` takes a phone
 * number, `recipient` a BSUID or parent BSUID; Meta recommends the phone number when it is
 * known. The lead's current phone number (a user_changed_number moves it), else the contact
 * id when it is a number; else the lead's BSUID, else the contact id (a BSUID-first lead).
 */
export function whatsAppRecipient(contactId: string, lead?: { phone: string | null; bsuid: string | null }): { to: string } | { recipient: string } {
  const phone = lead?.phone ?? (isBsuid(contactId) ? undefined : contactId);
  if (phone) return { to: phone };
  return { recipient: lead?.bsuid ?? contactId };
}

export function createWhatsAppActivities(deps: WhatsAppDeps) {
  const sendGraphMessage = createGraphSender({ ...deps, platform: 'whatsapp' });
  /** Effectively-once send of one WhatsApp message object, recorded under outboundMessageId. */
  function send(input: SendBase, message: Record<string, unknown>, transcript: { body: string; type: string; details?: Record<string, unknown> }): Promise<SendResult> {
    return sendGraphMessage({
      input,
      path: (phoneNumberId) => `${encodeURIComponent(phoneNumberId)}/messages`,
      // our id rides along so a status webhook can be matched even if the id write was lost
      body: { messaging_product: 'whatsapp', recipient_type: 'individual', ...message, biz_opaque_callback_data: input.outboundMessageId },
      recipient: (lead) => whatsAppRecipient(input.to, lead),
      transcript,
    });
  }

  const doFetch = deps.fetch ?? fetch;
  const log = deps.log.child({ module: 'whatsapp' });

  return {
    /**
     * Mark the lead's message read and show the typing indicator while the AI writes (one
     * Graph call; Meta hides the indicator when the reply arrives or after 25 s). Best effort:
     * skipped when the channel turned it off or its circuit breaker is open; never fails a turn.
     */
    async markWhatsAppRead(input: { channelAccountId: string; providerMessageId: string; typing: boolean }): Promise<{ done: boolean; reason?: string }> {
      const creds = await deps.channels.sendCredentials(input.channelAccountId);
      if (!creds) return { done: false, reason: FailureType.ChannelNotFound };
      if (creds.deleted) return { done: false, reason: FailureType.ChannelDeleted };
      if (!creds.markRead) return { done: false, reason: 'disabled' };
      if (creds.circuitState === 'open') return { done: false, reason: 'circuit_open' };
      const url = `${deps.graphApiUrl.replace(/\/$/, '')}/${deps.graphApiVersion}/${encodeURIComponent(creds.phoneNumberId)}/messages`;
      const body = {
        messaging_product: 'whatsapp',
        status: 'read',
        message_id: input.providerMessageId,
        ...(input.typing ? { typing_indicator: { type: 'text' } } : {}),
      };
      let res: Response;
      try {
        res = await doFetch(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${creds.accessToken}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(deps.timeoutMs),
        });
      } catch (err) {
        throw ApplicationFailure.create({ type: FailureType.ProviderTransient, message: `Graph API unreachable: ${(err as Error).message}` });
      }
      if (res.ok) return { done: true };
      const text = (await res.text()).slice(0, 300);
      log.warn({ httpStatus: res.status, channelAccountId: input.channelAccountId }, 'mark-as-read failed');
      if (res.status >= 500 || res.status === 429) throw ApplicationFailure.create({ type: FailureType.ProviderTransient, message: `mark-as-read: Graph API answered ${res.status}` });
      return { done: false, reason: `http_${res.status}: ${text}` };
    },

    /**
     * Send a free-form text (only inside the 24-hour window); effectively once per outboundMessageId.
     * A text over Meta's 4,096 characters is shortened at a sentence (or word) boundary: one message, one id, one credit.
     */
    async sendWhatsAppText(input: SendTextInput): Promise<SendResult> {
      const text = fitTextLength(input.text);
      if (text.length !== input.text.length) log.info({ leadId: input.leadId, outboundMessageId: input.outboundMessageId, from: input.text.length, to: text.length }, 'reply shortened to the WhatsApp text limit');
      return send(input, { type: 'text', text: { body: text, preview_url: false } }, { body: text, type: 'text', ...textDetails(input) });
    },

    /**
     * Send an APPROVED template with its header, body and button parameters (checked against the
     * stored components first); effectively once per outboundMessageId. A template that is not
     * APPROVED now (paused, disabled by Meta, deleted) fails with template_not_approved: the lead
     * workflow records the failure and skips that sequence step.
     */
    async sendWhatsAppTemplate(input: SendTemplateInput): Promise<SendResult> {
      const creds = await deps.channels.sendCredentials(input.channelAccountId);
      if (creds?.deleted) {
        throw ApplicationFailure.create({ type: FailureType.ChannelDeleted, message: `channel account ${input.channelAccountId} is deleted: nothing is sent on it`, nonRetryable: true });
      }
      if (creds && creds.platform !== 'whatsapp') {
        // never call the WhatsApp template API with a web chat (empty) or Instagram token: that would open the breaker.
        // Non-retryable and not an auth error (the breaker stays closed): the lead workflow treats
        // not_implemented as a permanent send failure (credit released, `reply_failed` recorded).
        throw ApplicationFailure.create({
          type: FailureType.NotImplemented,
          message: `template ${input.template.name} cannot be sent on a ${creds.platform} channel: WhatsApp templates exist on WhatsApp only`,
          nonRetryable: true,
          details: [{ platform: creds.platform }],
        });
      }
      const template = await deps.templates.find(input.tenantId, input.template.name, input.template.language);
      if (!template) {
        throw ApplicationFailure.create({ type: FailureType.TemplateNotFound, message: `template ${input.template.name} (${input.template.language}) is not registered`, nonRetryable: true });
      }
      // a synced template's status is Meta's, kept current by the template webhooks: PAUSED, DISABLED, ... stop here
      if (!template.approved || template.status !== APPROVED) {
        throw ApplicationFailure.create({
          type: FailureType.TemplateNotApproved,
          message: `template ${template.name} (${template.language}) is ${template.status}, not APPROVED${template.statusReason ? ` (${template.statusReason})` : ''}`,
          nonRetryable: true,
          details: [{ status: template.status, reason: template.statusReason ?? null }],
        });
      }
      // header, body and button parameters checked against the components before calling Meta
      const params = buildTemplateParameters(template.components, input.template);
      if (!params.ok) {
        throw ApplicationFailure.create({
          type: FailureType.TemplateVariables,
          message: `template ${template.name} (${template.language}): ${params.reason}`,
          nonRetryable: true,
        });
      }
      const message = {
        type: 'template',
        template: {
          name: template.name,
          language: { code: template.language },
          ...(params.components.length ? { components: params.components } : {}),
        },
      };
      return send(input, message, { body: renderTemplateText(template.components, input.template), type: 'template' });
    },
  };
}
