/**
 * Response (and self-parsed request) schemas of the public edges and the data-rights routes:
 * the web chat widget's routes (api/routes/webchat.ts), Meta's webhooks
 * (api/routes/whatsapp-webhook.ts, api/routes/instagram-webhook.ts), the contact export and
 * erasure (api/routes/contacts.ts) and the suppression list (api/routes/suppressions.ts).
 * Built from what those routes and their services answer (JSON wire form: times are ISO strings).
 */
import { z } from 'zod';
import { CHANNELS, LEAD_MODES } from '../../contract/vocabulary';
import { WHATSAPP_WEBHOOK_OBJECT } from '../webhooks/whatsapp-payload';
import { INSTAGRAM_WEBHOOK_OBJECT } from '../webhooks/instagram-payload';
import { jsonObject, pageOf, timestamp, uuid } from './common';

const count = z.number().int().min(0);

// ---------------------------------------------------------------------------------------------
// Web chat
// ---------------------------------------------------------------------------------------------

/** services/webchat-visitors.ts: a signed token, kept by the visitor's browser. */
export const webChatVisitor = z
  .strictObject({
    visitorToken: z.string().meta({ description: 'The visitor\'s credential (`vt1.…`): send it as `Authorization: Bearer <visitorToken>` on the visitor\'s other calls. Keep it in the browser; it is not shown again.' }),
  })
  .meta({ id: 'WebChatVisitor', description: 'A new web chat visitor' });

export const webChatMessageAccepted = z
  .strictObject({
    messageId: z.string().meta({ description: 'The message\'s dedup id (`webchat:<contact>:<clientMessageId>`): the same clientMessageId posted again gives the same id and is recorded once' }),
  })
  .meta({ id: 'WebChatMessageAccepted', description: 'The message was handed to the conversation; the reply comes on the stream' });

/** api/routes/webchat.ts `WebChatMessage`. */
export const webChatMessage = z
  .strictObject({
    id: uuid,
    seq: z.number().int().min(1).meta({ description: 'The message\'s place in the conversation (ascending); the stream\'s event ids and `before` cursors are such numbers' }),
    direction: z.enum(['inbound', 'outbound']).meta({ description: '`inbound`: written by the visitor; `outbound`: the reply' }),
    text: z.string(),
    rich: z
      .strictObject({
        type: z.enum(['buttons', 'list', 'image']),
        header: z.string().optional(),
        body: z.string().optional(),
        footer: z.string().optional(),
        button: z.string().optional().meta({ description: "A list's button label" }),
        options: z
          .array(z.strictObject({ id: z.string(), title: z.string(), description: z.string().optional(), section: z.string().optional() }))
          .optional()
          .meta({ description: 'Buttons or list rows: post the title as `text` and `{ option: { id } }` when the visitor picks one' }),
        imageUrl: z.string().optional(),
        caption: z.string().optional(),
      })
      .optional()
      .meta({ description: 'A reply with buttons, a list or an image (outbound only); `text` is its plain rendering' }),
    clientMessageId: z.string().optional().meta({ description: 'The id the visitor\'s browser chose for its own message (inbound only)' }),
    at: timestamp,
  })
  .meta({ id: 'WebChatMessage', description: 'A chat message as the widget shows it. Replies show once sent; a failed reply never shows.' });

export const webChatHistory = z
  .strictObject({
    items: z.array(webChatMessage).meta({ description: 'Oldest first' }),
    lastEventId: z
      .number()
      .int()
      .min(0)
      .optional()
      .meta({ description: 'The newest page only (no `before`): where the stream should resume (`?lastEventId=` or the Last-Event-ID header). Below a reply still pending, so it is not missed.' }),
    nextCursor: z.string().nullable().meta({ description: 'Older messages: pass as `?before=`; null when there are none' }),
  })
  .meta({ id: 'WebChatHistory', description: 'A page of the visitor\'s conversation' });

// ---------------------------------------------------------------------------------------------
// Meta webhooks
// ---------------------------------------------------------------------------------------------

/** Meta's subscription handshake (api/webhooks/meta-receiver.ts verifyHandshake). */
export const webhookHandshakeQuery = z.object({
  'hub.mode': z.literal('subscribe'),
  'hub.verify_token': z.string().meta({ description: 'The deployment\'s META_VERIFY_TOKEN or a channel\'s registered verify token' }),
  'hub.challenge': z.string().max(200).meta({ description: 'Echoed back as the answer' }),
});

/** What both handshakes answer (text, not JSON: Meta reads the challenge back as it is). */
export const webhookHandshakeResponses = {
  200: { contentType: 'text/plain', description: 'The `hub.challenge`, as it came' },
  403: { contentType: 'text/plain', description: '`forbidden`: not `hub.mode=subscribe`, no or an unknown verify token, or a challenge over 200 characters' },
};

export const WEBHOOK_HANDSHAKE_DESCRIPTION =
  'Called by Meta when the webhook is subscribed in the app dashboard. With `hub.mode=subscribe` and a verify token that is the deployment\'s META_VERIFY_TOKEN or one a channel registered (`verifyToken`), the answer is the `hub.challenge`, as text. Anything else is a 403 with the text `forbidden`. Wrong verify tokens count as failed authentications of the client address: too many in a minute and it gets 429 for a while.';

export const WEBHOOK_SIGNED_BODY_DESCRIPTION =
  'The body is read as raw bytes (at most 3 MB) and must carry `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of those exact bytes>` made with the Meta app secret: the deployment\'s META_APP_SECRET, or the own app secret of each channel the body names (a channel with its own secret is only reached by a body that secret signed). No signature or a wrong one is a 401 `invalid_signature`, and counts as a failed authentication of the client address: too many in a minute and it gets 429 (a body the deployment\'s secret signs still gets through). A body that names more than 100 accounts and is not signed with the deployment\'s secret is refused the same way. A signed body that is not JSON is a 400 `invalid_json`.';

export const WEBHOOK_ACCEPT_ALL_DESCRIPTION =
  'All or nothing: when the database or the workflow engine cannot take every item now, the answer is a 503 `unavailable` and Meta retries the whole body later (redelivered items are deduplicated). An item the workflow engine refuses for good (its content) is dropped and counted in `dropped`, never a 5xx.';

/**
 * The WhatsApp envelope as the route requires it (whatsAppWebhookEnvelopeSchema): a wrong
 * envelope is a 400, anything inside a valid one that is broken or unknown is ignored and counted.
 */
export const webhookWhatsAppBody = z
  .looseObject({
    object: z.literal(WHATSAPP_WEBHOOK_OBJECT),
    entry: z
      .array(
        z.looseObject({
          id: z.string().optional().meta({ description: 'The WhatsApp Business Account id (needed by template changes)' }),
          changes: z.array(
            z.unknown().meta({
              description:
                '`{ field, value }`: field `messages` (value: `{ messaging_product, metadata: { phone_number_id, display_phone_number }, contacts, messages, statuses }`) or a template field (`message_template_status_update`, `message_template_quality_update`, `template_category_update`); other fields and malformed changes are ignored',
            }),
          ),
        }),
      )
      .min(1),
  })
  .meta({
    id: 'WebhookWhatsAppBody',
    description: 'A WhatsApp Cloud API webhook body, as Meta sends it',
    examples: [
      {
        object: 'whatsapp_business_account',
        entry: [
          {
            id: '102290129340398',
            changes: [
              {
                field: 'messages',
                value: {
                  messaging_product: 'whatsapp',
                  metadata: { display_phone_number: '15550783881', phone_number_id: '106540352242922' },
                  contacts: [{ profile: { name: 'Sheena Nelson' }, wa_id: '16505551234' }],
                  messages: [{ from: '16505551234', id: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=', timestamp: '1749416383', type: 'text', text: { body: 'Does it come in another color?' } }],
                },
              },
            ],
          },
        ],
      },
    ],
  });

/** The Instagram envelope as the route requires it (instagramWebhookEnvelopeSchema). */
export const webhookInstagramBody = z
  .looseObject({
    object: z.literal(INSTAGRAM_WEBHOOK_OBJECT),
    entry: z
      .array(
        z.unknown().meta({
          description:
            '`{ id, time, messaging: [...] }`: id is the Instagram professional account id; each messaging event `{ sender: { id }, recipient: { id }, timestamp, message | postback | reaction | read | … }`. Malformed entries and events are ignored; echoes, receipts and other notifications are acknowledged without a message',
        }),
      )
      .min(1),
  })
  .meta({
    id: 'WebhookInstagramBody',
    description: 'An Instagram Messaging webhook body, as Meta sends it',
    examples: [
      {
        object: 'instagram',
        entry: [
          {
            id: '17841400000000000',
            time: 1749416383000,
            messaging: [{ sender: { id: '1234567890123456' }, recipient: { id: '17841400000000000' }, timestamp: 1749416383000, message: { mid: 'aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAw', text: 'Hi, is this available?' } }],
          },
        ],
      },
    ],
  });

const receiptCounts = {
  received: count.meta({ description: 'Messages handed to their conversations' }),
  ignored: count.meta({ description: 'Items dropped as malformed or not handled (logged, never retried)' }),
  adjusted: count.optional().meta({ description: 'Messages kept with a field cut to fit a limit (present only when some were)' }),
  dropped: count.optional().meta({ description: 'Messages the workflow engine refused for good (present only when some were)' }),
  unknownChannels: count.meta({ description: 'Changes or entries for an account no channel names: acknowledged and dropped' }),
};

export const webhookWhatsAppReceipt = z
  .strictObject({
    received: receiptCounts.received,
    statuses: count.meta({ description: 'Delivery statuses of known channels applied to the messages they sent' }),
    ignored: receiptCounts.ignored,
    adjusted: receiptCounts.adjusted,
    dropped: receiptCounts.dropped,
    unknownChannels: receiptCounts.unknownChannels,
    templates: z
      .strictObject({
        changes: count.meta({ description: 'Template changes in the body' }),
        updated: count.meta({ description: 'Stored templates updated (one change may update a template of several tenants)' }),
        unmatched: count.meta({ description: 'Changes for a known account but no stored template' }),
        unknownAccounts: count.meta({ description: 'Changes for a WhatsApp Business Account no channel names (or not signed with its channel\'s own app secret)' }),
      })
      .optional()
      .meta({ description: 'Present only when the body carried template changes' }),
  })
  .meta({ id: 'WebhookWhatsAppReceipt', description: 'What the webhook did with the body' });

export const webhookInstagramReceipt = z.strictObject(receiptCounts).meta({ id: 'WebhookInstagramReceipt', description: 'What the webhook did with the body' });

// ---------------------------------------------------------------------------------------------
// Data rights (services/contacts.ts)
// ---------------------------------------------------------------------------------------------

const exportedLead = z.strictObject({
  id: uuid,
  channelAccountId: uuid,
  channel: z.enum(CHANNELS),
  contactId: z.string(),
  name: z.string().nullable(),
  phone: z.string().nullable(),
  bsuid: z.string().nullable(),
  parentBsuid: z.string().nullable(),
  username: z.string().nullable(),
  stage: z.string(),
  mode: z.enum(LEAD_MODES),
  score: z.number().int().nullable(),
  attributes: jsonObject,
  summary: z.string().nullable(),
  timeZone: z.string().nullable(),
  lastInboundAt: timestamp.nullable(),
  lastOutboundAt: timestamp.nullable(),
  createdAt: timestamp,
  updatedAt: timestamp,
});

const exportedMessage = z.strictObject({
  id: uuid,
  direction: z.enum(['inbound', 'outbound']),
  type: z.string(),
  body: z.string(),
  status: z.string(),
  providerMessageId: z.string().nullable(),
  details: jsonObject.nullable(),
  sentAt: timestamp.nullable(),
  createdAt: timestamp,
});

export const contactExport = z
  .strictObject({
    contactId: z.string(),
    exportedAt: timestamp,
    leads: z.array(
      z.strictObject({
        lead: exportedLead,
        messages: z.array(exportedMessage).meta({ description: 'Oldest first; at most the newest 10,000 per lead' }),
        messagesOmitted: count.meta({ description: 'Older messages left out over the 10,000 limit' }),
        extractions: z.array(z.strictObject({ version: z.number().int(), data: jsonObject, score: z.number().int().nullable(), model: z.string().nullable(), createdAt: timestamp })),
        events: z.array(z.strictObject({ type: z.string(), data: jsonObject.nullable(), createdAt: timestamp })),
      }),
    ),
  })
  .meta({ id: 'ContactExport', description: 'Everything stored about a contact on the tenant\'s channels: each of its leads with messages, extractions and events' });

export const contactErasure = z
  .strictObject({
    erased: z.strictObject({ leads: count, messages: count, media: count.meta({ description: 'Stored media objects deleted' }) }),
    workflowsEnded: count.meta({ description: 'Conversation workflows that were running and were ended' }),
  })
  .meta({ id: 'ContactErasure', description: 'What the erasure removed' });

// ---------------------------------------------------------------------------------------------
// Suppressions (services/suppressions.ts)
// ---------------------------------------------------------------------------------------------

export const suppression = z
  .strictObject({
    id: uuid,
    contact: z.string().meta({ description: 'The contact as the suppression names it (a lead\'s contact id, or the normalized value given to the API)' }),
    forms: z.array(z.string()).meta({ description: 'Every identity form of the contact known when it was suppressed (contact id, phone number, BSUID, parent BSUID); a lead with any of them is suppressed' }),
    source: z.enum(['keyword', 'api']).meta({ description: '`keyword`: the contact wrote a STOP phrase; `api`: added through this API' }),
    keyword: z.string().nullable().meta({ description: 'The STOP phrase (source keyword)' }),
    note: z.string().nullable(),
    leadId: uuid.nullable().meta({ description: 'The lead whose message opted out (source keyword), if it still exists' }),
    createdAt: timestamp,
  })
  .meta({ id: 'Suppression', description: 'A contact that gets no sequence step, bump-up or template on any of the tenant\'s channels' });

export const suppressionPage = pageOf(suppression);
export const suppressionDeleted = z.strictObject({ id: uuid, deleted: z.literal(true) });
