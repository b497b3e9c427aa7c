import { randomBytes } from 'node:crypto';

export interface TextWebhookOptions {
  phoneNumberId: string;
  from: string;
  text: string;
  /** wamid; a fresh random one by default. */
  id?: string;
  name?: string;
  /** Unix seconds the user sent it; now by default. */
  timestamp?: number;
  displayPhoneNumber?: string;
}

/** The envelope Meta wraps one WhatsApp `messages` change in. */
function whatsAppEnvelope<V extends Record<string, unknown>>(phoneNumberId: string, value: V, displayPhoneNumber = '15557320418') {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '230981457709312',
        changes: [{ field: 'messages', value: { messaging_product: 'whatsapp', metadata: { display_phone_number: displayPhoneNumber, phone_number_id: phoneNumberId }, ...value } }],
      },
    ],
  };
}

/** A WhatsApp Cloud API text-message webhook body, shaped as Meta sends it. */
export function whatsAppTextWebhook(o: TextWebhookOptions) {
  return whatsAppEnvelope(
    o.phoneNumberId,
    {
      contacts: [{ profile: { name: o.name ?? 'Priya Sharma' }, wa_id: o.from }],
      messages: [
        {
          from: o.from,
          id: o.id ?? `wamid.${randomBytes(16).toString('hex')}`,
          timestamp: String(o.timestamp ?? Math.floor(Date.now() / 1000)),
          type: 'text',
          text: { body: o.text },
        },
      ],
    },
    o.displayPhoneNumber,
  );
}

/** A fresh business-scoped user id (BSUID), shaped like Meta's ("US.13491208655302741918"). */
export function randomBsuid(country = 'US'): string {
  return `${country}.${BigInt(`0x${randomBytes(8).toString('hex')}`).toString().padStart(20, '1')}`;
}

export interface IdentityTextWebhookOptions {
  phoneNumberId: string;
  text: string;
  /** The user's phone number (from / wa_id); omit for a username user whose number Meta withholds. */
  phone?: string;
  /** The user's BSUID (from_user_id / user_id). */
  bsuid?: string;
  parentBsuid?: string;
  username?: string;
  name?: string;
  id?: string;
  timestamp?: number;
}

/**
 * A text message as Meta sends it since business-scoped user ids (April 2026): the BSUID in
 * contacts[].user_id and messages[].from_user_id, the phone number only when Meta shares it,
 * the username in contacts[].profile.username.
 */
export function whatsAppIdentityTextWebhook(o: IdentityTextWebhookOptions) {
  const contact: Record<string, unknown> = {
    profile: { ...(o.name !== undefined ? { name: o.name } : {}), ...(o.username !== undefined ? { username: o.username } : {}) },
    ...(o.phone !== undefined ? { wa_id: o.phone } : {}),
    ...(o.bsuid !== undefined ? { user_id: o.bsuid } : {}),
    ...(o.parentBsuid !== undefined ? { parent_user_id: o.parentBsuid } : {}),
  };
  return whatsAppEnvelope(o.phoneNumberId, {
    contacts: [contact],
    messages: [
      {
        ...(o.phone !== undefined ? { from: o.phone } : {}),
        ...(o.bsuid !== undefined ? { from_user_id: o.bsuid } : {}),
        ...(o.parentBsuid !== undefined ? { from_parent_user_id: o.parentBsuid } : {}),
        id: o.id ?? `wamid.${randomBytes(16).toString('hex')}`,
        timestamp: String(o.timestamp ?? Math.floor(Date.now() / 1000)),
        type: 'text',
        text: { body: o.text },
      },
    ],
  });
}

export interface IdentityChangeWebhookOptions {
  phoneNumberId: string;
  /** user_changed_user_id: the BSUID changed; user_changed_number: the phone number (and so the BSUID) changed. */
  type: 'user_changed_user_id' | 'user_changed_number';
  previousBsuid?: string;
  newBsuid?: string;
  /** user_changed_number: the old number (from) and the new one (system.wa_id). */
  previousPhone?: string;
  newPhone?: string;
  name?: string;
  id?: string;
  timestamp?: number;
}

/** Meta's identity-change system message (messages field, no contacts[]): user_changed_user_id or user_changed_number. */
export function whatsAppIdentityChangeWebhook(o: IdentityChangeWebhookOptions) {
  const who = o.name ?? 'Priya Sharma';
  const system: Record<string, unknown> =
    o.type === 'user_changed_number'
      ? { body: `User ${who} changed from ${o.previousPhone} to ${o.newPhone}`, wa_id: o.newPhone, type: o.type }
      : { body: `User ${who} changed their business-scoped user ID`, type: o.type };
  if (o.newBsuid !== undefined) system.user_id = o.newBsuid;
  if (o.previousBsuid !== undefined) system.previous_user_id = o.previousBsuid;
  return whatsAppEnvelope(o.phoneNumberId, {
    messages: [
      {
        ...(o.type === 'user_changed_number' && o.previousPhone !== undefined ? { from: o.previousPhone } : {}),
        ...(o.type === 'user_changed_user_id' && o.newBsuid !== undefined ? { from_user_id: o.newBsuid } : {}),
        id: o.id ?? `wamid.${randomBytes(16).toString('hex')}`,
        timestamp: String(o.timestamp ?? Math.floor(Date.now() / 1000)),
        type: 'system',
        system,
      },
    ],
  });
}

export interface MediaWebhookOptions extends Omit<TextWebhookOptions, 'text'> {
  type: 'image' | 'video' | 'audio' | 'document' | 'sticker';
  mediaId: string;
  mimeType?: string;
  sha256?: string;
  caption?: string;
  filename?: string;
  voice?: boolean;
}

/** A WhatsApp Cloud API media-message webhook body (image, video, audio, document, sticker). */
export function whatsAppMediaWebhook(o: MediaWebhookOptions) {
  const body = whatsAppTextWebhook({ ...o, text: '' });
  const message = body.entry[0]!.changes[0]!.value.messages[0]! as Record<string, unknown>;
  delete message.text;
  message.type = o.type;
  message[o.type] = {
    id: o.mediaId,
    mime_type: o.mimeType ?? 'image/jpeg',
    ...(o.sha256 !== undefined ? { sha256: o.sha256 } : {}),
    ...(o.caption !== undefined ? { caption: o.caption } : {}),
    ...(o.filename !== undefined ? { filename: o.filename } : {}),
    ...(o.voice !== undefined ? { voice: o.voice } : {}),
  };
  return body;
}

// ---------------------------------------------------------------------------------------------
// Instagram Messaging (object "instagram", entry[].messaging[])
// ---------------------------------------------------------------------------------------------

/** A fresh Instagram message id (Meta's are base64 of "ig_message_item:1:IGMessageThread:…"). */
export function instagramMid(): string {
  return Buffer.from(`ig_message_item:1:IGMessageThread:${randomBytes(12).toString('hex')}`).toString('base64').replace(/=+$/, '');
}

export interface InstagramEventOptions {
  /** The Instagram professional account id (entry.id, recipient.id). */
  igAccountId: string;
  /** The user's IGSID (sender.id). */
  from: string;
  /** Unix milliseconds; now by default. */
  timestamp?: number;
}

/** One `messaging[]` event from the user to the account, with the given payload fields. */
export function instagramEvent(o: InstagramEventOptions, payload: Record<string, unknown>): Record<string, unknown> {
  return { sender: { id: o.from }, recipient: { id: o.igAccountId }, timestamp: o.timestamp ?? Date.now(), ...payload };
}

/** An Instagram webhook body: one entry for the account carrying these messaging events. */
export function instagramWebhook(igAccountId: string, messaging: Record<string, unknown>[], time = Date.now()) {
  return { object: 'instagram', entry: [{ id: igAccountId, time, messaging }] };
}

/** A text DM (optionally a quick-reply tap or a reply to another message). */
export function instagramTextWebhook(o: InstagramEventOptions & { text: string; mid?: string; quickReplyPayload?: string; replyToMid?: string }) {
  const message: Record<string, unknown> = { mid: o.mid ?? instagramMid(), text: o.text };
  if (o.quickReplyPayload !== undefined) message.quick_reply = { payload: o.quickReplyPayload };
  if (o.replyToMid !== undefined) message.reply_to = { mid: o.replyToMid };
  return instagramWebhook(o.igAccountId, [instagramEvent(o, { message })]);
}

/** A DM with attachments (`image`, `video`, `audio`, `file`, `share`, `story_mention`, `ig_reel`, ...). */
export function instagramAttachmentWebhook(
  o: InstagramEventOptions & { attachments: { type: string; url?: string; title?: string }[]; text?: string; mid?: string },
) {
  const message: Record<string, unknown> = {
    mid: o.mid ?? instagramMid(),
    attachments: o.attachments.map((a) => ({ type: a.type, payload: { ...(a.url ? { url: a.url } : {}), ...(a.title ? { title: a.title } : {}) } })),
  };
  if (o.text !== undefined) message.text = o.text;
  return instagramWebhook(o.igAccountId, [instagramEvent(o, { message })]);
}

/** A reaction (or its removal) to a message. */
export function instagramReactionWebhook(o: InstagramEventOptions & { mid: string; emoji?: string; action?: 'react' | 'unreact' }) {
  const action = o.action ?? 'react';
  const reaction = action === 'react' ? { mid: o.mid, action, reaction: 'love', emoji: o.emoji ?? '❤️' } : { mid: o.mid, action };
  return instagramWebhook(o.igAccountId, [instagramEvent(o, { reaction })]);
}

/** An ice-breaker / generic-template button tap. */
export function instagramPostbackWebhook(o: InstagramEventOptions & { title: string; payload: string; mid?: string }) {
  return instagramWebhook(o.igAccountId, [instagramEvent(o, { postback: { mid: o.mid ?? instagramMid(), title: o.title, payload: o.payload } })]);
}

/** The echo Meta sends of a message the account itself sent (must be ignored). */
export function instagramEchoWebhook(o: InstagramEventOptions & { text: string; mid?: string }) {
  return instagramWebhook(o.igAccountId, [
    { sender: { id: o.igAccountId }, recipient: { id: o.from }, timestamp: o.timestamp ?? Date.now(), message: { mid: o.mid ?? instagramMid(), text: o.text, is_echo: true } },
  ]);
}

/** A read receipt ("messaging_seen") for a message the account sent (must be ignored). */
export function instagramReadWebhook(o: InstagramEventOptions & { mid: string }) {
  return instagramWebhook(o.igAccountId, [instagramEvent(o, { read: { mid: o.mid } })]);
}

export interface StatusWebhookOptions {
  phoneNumberId: string;
  /** The wamid of our outbound message. */
  id: string;
  status: 'sent' | 'delivered' | 'read' | 'played' | 'failed';
  /** recipient_id (the phone number); Meta omits it for a send to a BSUID when it withholds the number. */
  recipientId?: string;
  /** recipient_user_id (BSUID): every status of a send to a BSUID carries it (and contacts[], except on failed). */
  recipientUserId?: string;
  /** contacts[].profile.username (delivered / read). */
  username?: string;
  errors?: { code: number; title?: string; message?: string }[];
  /** Our outbound message id, echoed back by Meta. */
  bizOpaqueCallbackData?: string;
  /** Unix seconds; now by default. */
  timestamp?: number;
}

/** A WhatsApp Cloud API status webhook body (sent, delivered, read, failed), shaped as Meta sends it. */
export function whatsAppStatusWebhook(o: StatusWebhookOptions) {
  const contacts =
    o.recipientUserId !== undefined && o.status !== 'failed'
      ? [{ ...(o.username !== undefined ? { profile: { username: o.username } } : {}), ...(o.recipientId !== undefined ? { wa_id: o.recipientId } : {}), user_id: o.recipientUserId }]
      : undefined;
  return whatsAppEnvelope(o.phoneNumberId, {
    ...(contacts ? { contacts } : {}),
    statuses: [
      {
        id: o.id,
        status: o.status,
        timestamp: String(o.timestamp ?? Math.floor(Date.now() / 1000)),
        ...(o.recipientId !== undefined ? { recipient_id: o.recipientId } : {}),
        ...(o.recipientUserId !== undefined ? { recipient_user_id: o.recipientUserId } : {}),
        ...(o.errors ? { errors: o.errors } : {}),
        ...(o.bizOpaqueCallbackData ? { biz_opaque_callback_data: o.bizOpaqueCallbackData } : {}),
      },
    ],
  });
}

/** A template as the Graph API lists it (GET /<WABA_ID>/message_templates): what the template webhooks name. */
export interface TemplateWebhookTarget {
  wabaId: string;
  /** Meta's template id (sent as a number, as Meta does). */
  id: string;
  name: string;
  language: string;
}

/** The WhatsApp Business Account envelope: entry.id is the account id, no phone number metadata. */
function wabaEnvelope(wabaId: string, field: string, value: Record<string, unknown>) {
  return {
    object: 'whatsapp_business_account',
    entry: [{ id: wabaId, time: Math.floor(Date.now() / 1000), changes: [{ value, field }] }],
  };
}

/** message_template_status_update, shaped as Meta sends it (event APPROVED, REJECTED, PAUSED, DISABLED, ...). */
export function whatsAppTemplateStatusWebhook(t: TemplateWebhookTarget, o: { event: string; reason?: string; category?: string; disableDate?: string }) {
  return wabaEnvelope(t.wabaId, 'message_template_status_update', {
    event: o.event,
    message_template_id: Number(t.id),
    message_template_name: t.name,
    message_template_language: t.language,
    reason: o.reason ?? 'NONE',
    ...(o.category ? { message_template_category: o.category } : {}),
    ...(o.disableDate ? { disable_info: { disable_date: o.disableDate } } : {}),
  });
}

/** message_template_quality_update (GREEN, YELLOW, RED, UNKNOWN). */
export function whatsAppTemplateQualityWebhook(t: TemplateWebhookTarget, o: { previous: string; next: string }) {
  return wabaEnvelope(t.wabaId, 'message_template_quality_update', {
    previous_quality_score: o.previous,
    new_quality_score: o.next,
    message_template_id: Number(t.id),
    message_template_name: t.name,
    message_template_language: t.language,
  });
}

/** template_category_update (MARKETING, UTILITY, AUTHENTICATION). */
export function whatsAppTemplateCategoryWebhook(t: TemplateWebhookTarget, o: { previous: string; next: string }) {
  return wabaEnvelope(t.wabaId, 'template_category_update', {
    message_template_id: Number(t.id),
    message_template_name: t.name,
    message_template_language: t.language,
    previous_category: o.previous,
    new_category: o.next,
  });
}
