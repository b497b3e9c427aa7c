/**
 * Rich messages out (contract/rich.ts): Meta's JSON built by pure functions (`whatsAppRichPayload`,
 * `instagramRichPayload`), sent through the same effectively-once Graph send as text (graph-send.ts:
 * the outbound row under the workflow's id, the circuit breaker, rate limits, one claimed provider
 * call), or on web chat recorded as sent (the widget renders it from `details.rich`).
 *
 * The workflow already degraded the message to the lead's channel; the limits are checked here once
 * more (a dead letter replayed after a change, a caller that skipped the API): a message that breaks
 * one fails for good (provider_permanent) without calling Meta.
 */
import { ApplicationFailure } from '@temporalio/common';
import { FailureType } from '../../contract/failures';
import { richForm, richProblems, richTranscript, type InteractiveHeader, type MediaSource, type MediaType, type RichMessage } from '../../contract/rich';
import type { Channel } from '../../contract/vocabulary';
import type { LeadService } from '../../services/leads';
import { recordReply } from '../../lib/metrics';
import { isUnknownMediaError } from '../../lib/graph-errors';
import { createGraphSender, replyOutcomeOf, type GraphSendDeps, type SendBase, type SendResult } from './graph-send';
import { fitInstagramText } from './instagram';
import { deliverWebChat } from './webchat';
import type { KnowledgeUsed } from '../llm/knowledge-context';
import { whatsAppRecipient } from './whatsapp';

export interface SendRichInput extends SendBase {
  channel: Channel;
  /** As the channel sends it (degraded by the workflow). */
  message: RichMessage;
  /** Instagram: a human agent's message outside 24 hours (HUMAN_AGENT tag). */
  humanAgent?: boolean;
  /** The knowledge-base passages the reply was written from (an AI reply's buttons, list or media). */
  knowledge?: KnowledgeUsed[];
}

/** A media source as Meta takes it: a link or a Meta media id. */
export type MetaMediaSource = { link: string } | { id: string };

/**
 * The one hook where a Parley media library id (`libraryId`) becomes what a channel sends: on
 * WhatsApp a Meta media id (uploaded on first use per channel, cached until it expires), on
 * Instagram and web chat a signed url of this deployment (activities/media/resolve.ts via
 * activities/index.ts). `type` is the message's media type (the file's kind must fit it);
 * `staleMetaMediaId` is a Meta id the Graph API just refused as unknown: it is forgotten and the
 * file uploaded again. `filename` is the library file's name (used for a document that names none).
 * Absent: a message naming a library id fails for good (not_implemented).
 */
export type ResolveLibraryMedia = (input: { tenantId: string; channelAccountId: string; libraryId: string; type?: MediaType; staleMetaMediaId?: string }) => Promise<MetaMediaSource & { filename?: string }>;

export interface RichDeps extends GraphSendDeps {
  leads: LeadService;
  resolveLibraryMedia?: ResolveLibraryMedia;
}

// ------------------------------------------------------------------------------ payload builders (pure)

function source(m: MediaSource): MetaMediaSource {
  if (m.id !== undefined) return { id: m.id };
  if (m.link !== undefined) return { link: m.link };
  throw new Error('a media library id must be resolved before the payload is built');
}

function whatsAppHeader(h: InteractiveHeader | undefined): Record<string, unknown> | undefined {
  if (!h) return undefined;
  if (h.text !== undefined) return { type: 'text', text: h.text };
  const m = h.media!;
  return { type: m.type, [m.type]: { ...source(m), ...(m.type === 'document' && m.filename ? { filename: m.filename } : {}) } };
}

/**
 * The WhatsApp Cloud API message object (without messaging_product, recipient and callback data,
 * which the sender adds) for one rich message. Throws for a form WhatsApp lacks (the workflow
 * degrades those first).
 */
export function whatsAppRichPayload(message: RichMessage): Record<string, unknown> {
  switch (message.kind) {
    case 'interactive': {
      const i = message.interactive;
      const common = (header: Record<string, unknown> | undefined, body: string, footer: string | undefined) => ({
        ...(header ? { header } : {}),
        body: { text: body },
        ...(footer ? { footer: { text: footer } } : {}),
      });
      switch (i.type) {
        case 'button':
          return { type: 'interactive', interactive: { type: 'button', ...common(whatsAppHeader(i.header), i.body, i.footer), action: { buttons: i.buttons.map((b) => ({ type: 'reply', reply: { id: b.id, title: b.title } })) } } };
        case 'list':
          return {
            type: 'interactive',
            interactive: {
              type: 'list',
              ...common(i.header ? { type: 'text', text: i.header } : undefined, i.body, i.footer),
              action: {
                button: i.button,
                sections: i.sections.map((s) => ({ ...(s.title ? { title: s.title } : {}), rows: s.rows.map((r) => ({ id: r.id, title: r.title, ...(r.description ? { description: r.description } : {}) })) })),
              },
            },
          };
        case 'cta_url':
          return { type: 'interactive', interactive: { type: 'cta_url', ...common(whatsAppHeader(i.header), i.body, i.footer), action: { name: 'cta_url', parameters: { display_text: i.displayText, url: i.url } } } };
        default:
          throw new Error(`WhatsApp has no ${richForm(message)} message: degrade it first`);
      }
    }
    case 'media': {
      const m = message.media;
      return {
        type: m.type,
        [m.type]: { ...source(m), ...(m.caption && m.type !== 'audio' ? { caption: m.caption } : {}), ...(m.type === 'document' && m.filename ? { filename: m.filename } : {}) },
      };
    }
    case 'location': {
      const l = message.location;
      return { type: 'location', location: { latitude: l.latitude, longitude: l.longitude, ...(l.name ? { name: l.name } : {}), ...(l.address ? { address: l.address } : {}) } };
    }
    case 'reaction':
      return { type: 'reaction', reaction: { message_id: message.reaction.messageId, emoji: message.reaction.emoji } };
  }
}

/** The Instagram Messaging API `message` object for one rich message (quick replies, generic template, image). */
export function instagramRichPayload(message: RichMessage): Record<string, unknown> {
  if (message.kind === 'interactive' && message.interactive.type === 'quick_replies') {
    const i = message.interactive;
    return { text: fitInstagramText(i.text), quick_replies: i.replies.map((r) => ({ content_type: 'text', title: r.title, payload: r.payload })) };
  }
  if (message.kind === 'interactive' && message.interactive.type === 'generic') {
    return {
      attachment: {
        type: 'template',
        payload: {
          template_type: 'generic',
          elements: message.interactive.cards.map((c) => ({
            title: c.title,
            ...(c.subtitle ? { subtitle: c.subtitle } : {}),
            ...(c.imageUrl ? { image_url: c.imageUrl } : {}),
            ...(c.defaultUrl ? { default_action: { type: 'web_url', url: c.defaultUrl } } : {}),
            ...(c.buttons?.length ? { buttons: c.buttons.map((b) => (b.type === 'web_url' ? { type: 'web_url', url: b.url, title: b.title } : { type: 'postback', title: b.title, payload: b.payload })) } : {}),
          })),
        },
      },
    };
  }
  if (message.kind === 'media' && message.media.type === 'image' && message.media.link) {
    return { attachment: { type: 'image', payload: { url: message.media.link } } };
  }
  throw new Error(`Instagram has no ${richForm(message)} message: degrade it first`);
}

// ------------------------------------------------------------------------------ the activity

export function createRichActivities(deps: RichDeps) {
  const whatsApp = createGraphSender({ ...deps, platform: 'whatsapp' });
  const instagram = createGraphSender({ ...deps, platform: 'instagram' });

  /** A media library file the message named, and the Meta media id it went out with (WhatsApp). */
  type LibraryUse = { libraryId: string; metaMediaId?: string };

  /** A media library id becomes a Meta media id (or link) here, and only here. */
  async function resolveSource<T extends MediaSource & { type: MediaType; filename?: string }>(input: SendRichInput, m: T, used: LibraryUse[], stale: Map<string, string>): Promise<T> {
    if (m.libraryId === undefined) return m;
    if (!deps.resolveLibraryMedia) {
      throw ApplicationFailure.create({ type: FailureType.NotImplemented, message: `media library id ${m.libraryId}: the media library is not available`, nonRetryable: true });
    }
    const staleMetaMediaId = stale.get(m.libraryId);
    const { filename, ...source } = await deps.resolveLibraryMedia({
      tenantId: input.tenantId,
      channelAccountId: input.channelAccountId,
      libraryId: m.libraryId,
      type: m.type,
      ...(staleMetaMediaId ? { staleMetaMediaId } : {}),
    });
    used.push({ libraryId: m.libraryId, ...('id' in source ? { metaMediaId: source.id } : {}) });
    const { libraryId: _unused, ...rest } = m;
    // a document shows a file name: the message's, else the library file's
    return { ...rest, ...source, ...(m.type === 'document' && rest.filename === undefined && filename ? { filename } : {}) } as T;
  }

  /** The message with its library media resolved (`stale`: library id → a Meta id just refused), and the library files it used. */
  async function resolved(input: SendRichInput, stale = new Map<string, string>()): Promise<{ message: RichMessage; used: LibraryUse[] }> {
    const m = input.message;
    const used: LibraryUse[] = [];
    if (m.kind === 'media') return { message: { kind: 'media', media: await resolveSource(input, m.media, used, stale) }, used };
    if (m.kind === 'interactive' && (m.interactive.type === 'button' || m.interactive.type === 'cta_url') && m.interactive.header?.media) {
      return { message: { kind: 'interactive', interactive: { ...m.interactive, header: { media: await resolveSource(input, m.interactive.header.media, used, stale) } } }, used };
    }
    return { message: m, used };
  }

  /** Whether the message names a media library file. */
  const namesLibraryMedia = (m: RichMessage): boolean =>
    (m.kind === 'media' && m.media.libraryId !== undefined) || (m.kind === 'interactive' && (m.interactive.type === 'button' || m.interactive.type === 'cta_url') && m.interactive.header?.media?.libraryId !== undefined);

  function sendWebChat(input: SendRichInput, transcript: { body: string; type: string }): Promise<SendResult> {
    return deliverWebChat(deps, { id: input.outboundMessageId, tenantId: input.tenantId, leadId: input.leadId, body: transcript.body, type: transcript.type, details: richDetails(input) });
  }

  return {
    /**
     * Send one rich message (buttons, list, CTA URL, quick replies, cards, media, location,
     * reaction) on the lead's channel; effectively once per outboundMessageId, like text. The
     * outbound row keeps the kind (`type`), the text rendering (`body`) and the message (`details.rich`).
     */
    async sendRichMessage(input: SendRichInput): Promise<SendResult> {
      const problems = richProblems(input.message, input.channel);
      if (problems.length) {
        throw ApplicationFailure.create({
          type: FailureType.ProviderPermanent,
          message: `the ${richForm(input.message)} message breaks ${input.channel}'s limits: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
          nonRetryable: true,
          details: [{ problems }],
        });
      }
      const transcript = { body: richTranscript(input.message), type: input.message.kind, details: richDetails(input) };
      if (input.channel === 'webchat') {
        try {
          // a library image becomes a signed url of this deployment (no provider call, no upload) that the widget shows; the row keeps it
          const message = namesLibraryMedia(input.message) ? (await resolved(input)).message : input.message;
          const sent = await sendWebChat({ ...input, message }, transcript);
          recordReply('webchat', sent.alreadySent ? 'already_sent' : 'sent');
          return sent;
        } catch (err) {
          recordReply('webchat', replyOutcomeOf(err));
          throw err;
        }
      }
      // the payload is built (and a media library id resolved) only when the send goes ahead: not for a retry of a message already sent
      if (input.channel === 'instagram') {
        const messaging = input.humanAgent ? { messaging_type: 'MESSAGE_TAG', tag: 'HUMAN_AGENT' } : { messaging_type: 'RESPONSE' };
        return instagram({
          input,
          path: (igAccountId) => `${encodeURIComponent(igAccountId)}/messages`,
          body: async () => ({ recipient: { id: input.to }, message: instagramRichPayload((await resolved(input)).message), ...messaging }),
          transcript,
        });
      }
      const whatsAppBody = (message: RichMessage) => ({ messaging_product: 'whatsapp', recipient_type: 'individual', ...whatsAppRichPayload(message), biz_opaque_callback_data: input.outboundMessageId });
      let used: LibraryUse[] = [];
      return whatsApp({
        input,
        path: (phoneNumberId) => `${encodeURIComponent(phoneNumberId)}/messages`,
        body: async () => {
          const r = await resolved(input);
          used = r.used;
          return whatsAppBody(r.message);
        },
        // Meta no longer knows the library file's media id (expired, or dropped early): upload it
        // again and resend, once (the sender asks at most once per attempt; a second refusal fails
        // the send for good like any permanent error)
        retryRefused: async (refusal) => {
          const stale = new Map(used.flatMap((u) => (u.metaMediaId ? [[u.libraryId, u.metaMediaId] as const] : [])));
          if (stale.size === 0 || !isUnknownMediaError(refusal)) return undefined;
          deps.log.warn({ outboundMessageId: input.outboundMessageId, code: refusal.code, libraryIds: [...stale.keys()] }, 'meta refused a media library id as unknown: uploading it again');
          const r = await resolved(input, stale);
          return whatsAppBody(r.message);
        },
        recipient: (lead) => whatsAppRecipient(input.to, lead),
        transcript,
      });
    },
  };
}

/** What the outbound row keeps of a rich send: the message as sent and the passages it was written from. */
function richDetails(input: SendRichInput): Record<string, unknown> {
  return { rich: input.message, ...(input.knowledge?.length ? { knowledge: input.knowledge } : {}) };
}
