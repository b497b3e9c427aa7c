import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { Logger } from '../../lib/logger';
import type { ChannelService } from '../../services/channels';
import type { LeadService } from '../../services/leads';
import { renderTemplate, type TemplateService } from '../../services/templates';
import { classifyGraphError, isRetryableGraphError } from './graph-errors';

export interface WhatsAppDeps {
  leads: LeadService;
  channels: ChannelService;
  templates: TemplateService;
  log: Logger;
  graphApiUrl: string;
  graphApiVersion: string;
  timeoutMs: number;
  fetch?: typeof fetch;
}

interface SendBase {
  tenantId: string;
  leadId: string;
  channelAccountId: string;
  /** Deterministic id chosen by the workflow before the call: the send's idempotency key. */
  outboundMessageId: string;
  to: string;
}

export interface SendTextInput extends SendBase {
  text: string;
}

export interface SendTemplateInput extends SendBase {
  template: { name: string; language: string; variables?: string[] };
}

export interface SendResult {
  outboundMessageId: string;
  providerMessageId: string;
  /** True when an earlier attempt had already sent it: nothing went out this time. */
  alreadySent: boolean;
}

const sendResponseSchema = z.object({
  messages: z.array(z.object({ id: z.string().min(1) })).min(1),
});
const graphErrorSchema = z.object({
  error: z.looseObject({
    message: z.string().optional(),
    type: z.string().optional(),
    code: z.number().optional(),
    error_subcode: z.number().optional(),
    error_data: z.looseObject({ details: z.string().optional() }).optional(),
    fbtrace_id: z.string().optional(),
  }),
});

export function createWhatsAppActivities(deps: WhatsAppDeps) {
  const doFetch = deps.fetch ?? fetch;
  const log = deps.log.child({ module: 'whatsapp' });
  /** Effectively-once send of one Graph API message object, recorded under outboundMessageId. */
  async function send(input: SendBase, message: Record<string, unknown>, transcript: { body: string; type: string }): Promise<SendResult> {
    const row = await deps.leads.createOutbound({ id: input.outboundMessageId, tenantId: input.tenantId, leadId: input.leadId, body: transcript.body, type: transcript.type });
    if (row.providerMessageId) {
      return { outboundMessageId: row.id, providerMessageId: row.providerMessageId, alreadySent: true };
    }
    if (row.status === 'failed') {
      throw ApplicationFailure.create({ type: 'provider_permanent', message: 'message already failed permanently', nonRetryable: true, details: [row.error] });
    }
    const creds = await deps.channels.sendCredentials(input.channelAccountId);
    if (!creds) {
      throw ApplicationFailure.create({ type: 'channel_not_found', message: `channel account ${input.channelAccountId} not found`, nonRetryable: true });
    }
    const url = `${deps.graphApiUrl.replace(/\/$/, '')}/${deps.graphApiVersion}/${encodeURIComponent(creds.phoneNumberId)}/messages`;
    const body = {
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: input.to,
      ...message,
      biz_opaque_callback_data: input.outboundMessageId,
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
      // network error or timeout: retryable; the send may or may not have happened (issue: reconcile via status webhooks)
      throw ApplicationFailure.create({ type: 'provider_transient', message: `Graph API unreachable: ${(err as Error).message}` });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.ok) {
      const parsed = sendResponseSchema.safeParse(json);
      if (!parsed.success) {
        throw ApplicationFailure.create({ type: 'provider_transient', message: `Graph API answered ${res.status} without a message id` });
      }
      const providerMessageId = parsed.data.messages[0]!.id;
      await deps.leads.markOutboundSent({ id: input.outboundMessageId, leadId: input.leadId, providerMessageId });
      return { outboundMessageId: input.outboundMessageId, providerMessageId, alreadySent: false };
    }
    const err = graphErrorSchema.safeParse(json);
    const code = err.success ? err.data.error.code : undefined;
    const cls = classifyGraphError(code);
    const retryable = isRetryableGraphError(cls, res.status);
    const detail = {
      httpStatus: res.status,
      code: code ?? null,
      subcode: err.success ? (err.data.error.error_subcode ?? null) : null,
      class: cls,
      message: err.success ? err.data.error.message : text.slice(0, 300),
      details: err.success ? err.data.error.error_data?.details : undefined,
    };
    log.warn({ leadId: input.leadId, outboundMessageId: input.outboundMessageId, error: detail }, 'graph api send failed');
    if (!retryable) {
      await deps.leads.markOutboundFailed({ id: input.outboundMessageId, error: detail });
      throw ApplicationFailure.create({
        type: cls === 'auth' ? 'provider_auth' : 'provider_permanent',
        message: `Graph API error ${code ?? res.status} (${cls}): ${detail.message ?? ''}`,
        nonRetryable: true,
        details: [detail],
      });
    }
    throw ApplicationFailure.create({
      type: cls === 'rate_limited' ? 'provider_rate_limited' : 'provider_transient',
      message: `Graph API error ${code ?? res.status} (${cls}): ${detail.message ?? ''}`,
      details: [detail],
    });
  }

  return {
    /** Send a free-form text (only inside the 24-hour window); effectively once per outboundMessageId. */
    async sendWhatsAppText(input: SendTextInput): Promise<SendResult> {
      return send(input, { type: 'text', text: { body: input.text, preview_url: false } }, { body: input.text, type: 'text' });
    },

    /** Send an approved template with its body parameters; effectively once per outboundMessageId. */
    async sendWhatsAppTemplate(input: SendTemplateInput): Promise<SendResult> {
      const template = await deps.templates.find(input.tenantId, input.template.name, input.template.language);
      if (!template) {
        throw ApplicationFailure.create({ type: 'template_not_found', message: `template ${input.template.name} (${input.template.language}) is not registered`, nonRetryable: true });
      }
      if (!template.approved) {
        throw ApplicationFailure.create({ type: 'template_not_approved', message: `template ${template.name} (${template.language}) is not approved`, nonRetryable: true });
      }
      const variables = input.template.variables ?? [];
      if (variables.length !== template.variables) {
        throw ApplicationFailure.create({
          type: 'template_variables',
          message: `template ${template.name} takes ${template.variables} variable(s), got ${variables.length}`,
          nonRetryable: true,
        });
      }
      const message = {
        type: 'template',
        template: {
          name: template.name,
          language: { code: template.language },
          ...(variables.length ? { components: [{ type: 'body', parameters: variables.map((text) => ({ type: 'text', text })) }] } : {}),
        },
      };
      return send(input, message, { body: renderTemplate(template.body, variables), type: 'template' });
    },
  };
}
