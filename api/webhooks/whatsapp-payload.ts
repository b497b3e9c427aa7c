/**
 * Validation and normalization of Meta WhatsApp Cloud API webhook POST bodies.
 *
 * Pure: no I/O, no logging, never throws. The envelope (`object`, `entry[].changes[]`) is
 * validated strictly and a bad envelope fails the whole body (the route answers 4xx).
 * Inside a valid envelope every change, message and status is validated on its own: a broken
 * item lands in `ignored` with its path and reason and its valid siblings are kept.
 *
 * Message types Meta documents are normalized into `InboundMessage`; any type we do not
 * know (Meta adds new ones) becomes `unsupported`, keeping its fields, never rejected.
 */
import { z } from 'zod';
import type { ContactIdentity, InboundMedia, InboundMessage } from '../../contract/messages';
import type { InboundType } from '../../contract/vocabulary';
import { BSUID_PATTERN } from '../../lib/bsuid';
import {
  compact,
  isRecord,
  issuesOf,
  kind,
  mustBeObject,
  numberLike,
  optionalBoolean,
  optionalString,
  ownField,
  parseGuarded,
  payload,
  reasonOf,
  requiredString,
  truncate,
  type IgnoredItem,
  optionChoice,
  withSuffix,
} from './meta-common';

import { boundTime, clampItem, limitInbound, LIMITS, WHATSAPP_CONTACT_LIMITS, WHATSAPP_MESSAGE_LIMITS, WHATSAPP_STATUS_LIMITS } from './meta-limits';

export type { IgnoredItem } from './meta-common';

export const WHATSAPP_WEBHOOK_OBJECT = 'whatsapp_business_account';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface ParsedStatus {
  /** statuses[].id: the wamid of OUR outbound message. */
  providerMessageId: string;
  /** Unknown status strings are kept as sent. */
  status: 'sent' | 'delivered' | 'read' | 'played' | 'failed' | 'deleted' | (string & {});
  /** recipient_id (phone number), else recipient_user_id (BSUID): who the message went to. */
  recipientId: string;
  /** Every form of the recipient the status carried (phone, BSUID, parent BSUID, username). */
  recipient: ContactIdentity;
  /** ISO time from Meta's unix-seconds string. */
  timestamp: string;
  errors: { code: number; title?: string; message?: string; details?: string }[];
  bizOpaqueCallbackData?: string;
  /** conversation, pricing, recipient_type, ... kept as sent. */
  details?: Record<string, unknown>;
}

export interface ParsedChange {
  phoneNumberId: string;
  displayPhoneNumber?: string;
  /** InboundMessage[] with channel 'whatsapp'. */
  messages: Omit<InboundMessage, never>[];
  statuses: ParsedStatus[];
}

/** The WhatsApp Business Account webhook fields about message templates (entry.id is the account id). */
export const TEMPLATE_WEBHOOK_FIELDS = ['message_template_status_update', 'message_template_quality_update', 'template_category_update'] as const;
export type TemplateWebhookField = (typeof TEMPLATE_WEBHOOK_FIELDS)[number];

/**
 * message_template_status_update `event` values that are a template status (REINSTATED means
 * APPROVED again). Other events (FLAGGED, LOCKED, UNLOCKED, UNARCHIVED, anything new) change no
 * status: they are recorded on the template as its last event.
 */
export const TEMPLATE_STATUS_EVENTS: Readonly<Record<string, string>> = Object.freeze({
  APPROVED: 'APPROVED',
  REJECTED: 'REJECTED',
  PENDING: 'PENDING',
  PAUSED: 'PAUSED',
  DISABLED: 'DISABLED',
  IN_APPEAL: 'IN_APPEAL',
  PENDING_DELETION: 'PENDING_DELETION',
  DELETED: 'DELETED',
  ARCHIVED: 'ARCHIVED',
  LIMIT_EXCEEDED: 'LIMIT_EXCEEDED',
  REINSTATED: 'APPROVED',
});

/** One template change: the account (entry.id), the template (id and/or name + language) and what changed. */
export interface ParsedTemplateChange {
  wabaId: string;
  field: TemplateWebhookField;
  /** When Meta says it happened (entry.time; the receipt time when absent or implausible): later changes win. */
  at: string;
  metaTemplateId?: string;
  name?: string;
  language?: string;
  /** message_template_status_update: Meta's event as sent, and the status it sets (null: none). */
  event?: string;
  status?: string | null;
  reason?: string;
  /** message_template_quality_update */
  previousQualityScore?: string;
  newQualityScore?: string;
  /** template_category_update (new_category absent: a notice of a coming change, recorded only) */
  previousCategory?: string;
  newCategory?: string;
}

export type WebhookParseResult =
  | {
      ok: true;
      changes: ParsedChange[];
      /** Template status, quality and category changes (WhatsApp Business Account fields). */
      templateChanges: ParsedTemplateChange[];
      ignored: IgnoredItem[];
      /** Items kept with a field cut, removed or a time replaced (api/webhooks/meta-limits.ts): path and what. */
      adjusted: IgnoredItem[];
    }
  | { ok: false; reason: string; issues: { path: string; message: string }[] };

// ---------------------------------------------------------------------------------------------
// Times (shared zod helpers live in ./meta-common)
// ---------------------------------------------------------------------------------------------

/** Meta sends times as unix seconds in a string ("1760172000"). Up to 12 digits keeps the Date valid. */
function unixSecondsString() {
  return z
    .string({
      error: (iss) =>
        iss.input === undefined ? 'is required' : `must be a unix-seconds string, got ${kind(iss.input)}`,
    })
    .regex(/^\d{1,12}$/, { error: (iss) => `must be a unix-seconds numeric string, got ${kind(iss.input)}` });
}

function toIso(unixSeconds: string): string {
  return new Date(Number(unixSeconds) * 1000).toISOString();
}

// ---------------------------------------------------------------------------------------------
// Envelope schemas (strict about what we rely on, loose about extra fields)
// ---------------------------------------------------------------------------------------------

export const whatsAppEntrySchema = z.looseObject(
  {
    id: z.string().optional().catch(undefined),
    changes: z.array(z.unknown(), {
      error: (iss) => (iss.input === undefined ? 'is required' : `must be an array, got ${kind(iss.input)}`),
    }),
  },
  { error: mustBeObject },
);

export const whatsAppWebhookEnvelopeSchema = z.looseObject(
  {
    object: z.literal(WHATSAPP_WEBHOOK_OBJECT, {
      error: (iss) =>
        iss.input === undefined
          ? 'is required'
          : `expected object "${WHATSAPP_WEBHOOK_OBJECT}", got ${kind(iss.input)}`,
    }),
    entry: z
      .array(whatsAppEntrySchema, {
        error: (iss) => (iss.input === undefined ? 'is required' : `must be an array, got ${kind(iss.input)}`),
      })
      .min(1, 'must not be empty'),
  },
  { error: (iss) => `must be a JSON object, got ${kind(iss.input)}` },
);

export const whatsAppChangeSchema = z.looseObject(
  {
    field: requiredString(),
    value: z.unknown(),
  },
  { error: mustBeObject },
);

export const whatsAppChangeValueSchema = z.looseObject(
  {
    messaging_product: optionalString,
    metadata: z.looseObject(
      {
        phone_number_id: requiredString(),
        display_phone_number: optionalString,
      },
      { error: mustBeObject },
    ),
    contacts: z.unknown().optional(),
    messages: z.unknown().optional(),
    statuses: z.unknown().optional(),
  },
  { error: mustBeObject },
);

/** A business-scoped user id (lib/bsuid.ts); a malformed one is dropped, not trusted as an identity. */
const optionalBsuid = z.string().regex(BSUID_PATTERN).optional().catch(undefined);

export const whatsAppContactSchema = z.looseObject({
  wa_id: optionalString,
  /** BSUID (always present since Meta's April 2026 rollout) and parent BSUID (some businesses). */
  user_id: optionalBsuid,
  parent_user_id: optionalBsuid,
  profile: z.looseObject({ name: optionalString, username: optionalString }).optional().catch(undefined),
});

// ---------------------------------------------------------------------------------------------
// Message schemas
// ---------------------------------------------------------------------------------------------

export const whatsAppMessageSchema = z.looseObject(
  {
    id: requiredString(),
    /** The sender's phone number: absent for a user with a username whose number Meta withholds. */
    from: requiredString().optional(),
    /** The sender's BSUID (and parent BSUID): the identity when `from` is absent. */
    from_user_id: optionalBsuid,
    from_parent_user_id: optionalBsuid,
    timestamp: unixSecondsString(),
    type: requiredString(),
    context: z
      .looseObject({ id: optionalString, from: optionalString })
      .optional()
      .catch(undefined),
  },
  { error: mustBeObject },
).superRefine((m, ctx) => {
  if (m.from === undefined && m.from_user_id === undefined) {
    ctx.addIssue({ code: 'custom', path: ['from'], message: 'from or from_user_id is required' });
  }
});

const textPayloadSchema = z.looseObject(
  {
    body: z.string({
      error: (iss) => (iss.input === undefined ? 'is required' : `must be a string, got ${kind(iss.input)}`),
    }),
  },
  { error: mustBeObject },
);

const mediaPayloadSchema = z.looseObject(
  {
    id: requiredString(),
    mime_type: optionalString,
    sha256: optionalString,
    caption: optionalString,
    filename: optionalString,
    voice: optionalBoolean,
    animated: optionalBoolean,
  },
  { error: mustBeObject },
);

const locationPayloadSchema = z.looseObject(
  {
    latitude: numberLike,
    longitude: numberLike,
    name: optionalString,
    address: optionalString,
    url: optionalString,
  },
  { error: mustBeObject },
);

const contactCardSchema = z.looseObject(
  {
    name: z
      .looseObject({
        formatted_name: optionalString,
        first_name: optionalString,
        last_name: optionalString,
      })
      .optional()
      .catch(undefined),
    phones: z
      .array(z.looseObject({ phone: optionalString, wa_id: optionalString }).catch({}))
      .optional()
      .catch(undefined),
  },
  { error: mustBeObject },
);

const contactsPayloadSchema = z.array(contactCardSchema, {
  error: (iss) => (iss.input === undefined ? 'is required' : `must be an array, got ${kind(iss.input)}`),
});

const interactivePayloadSchema = z
  .looseObject(
    {
      type: requiredString(),
      button_reply: z.looseObject({ id: requiredString(), title: optionalString }, { error: mustBeObject }).optional(),
      list_reply: z
        .looseObject(
          { id: requiredString(), title: optionalString, description: optionalString },
          { error: mustBeObject },
        )
        .optional(),
      nfm_reply: z
        .looseObject(
          { name: optionalString, body: optionalString, response_json: optionalString },
          { error: mustBeObject },
        )
        .optional(),
    },
    { error: mustBeObject },
  )
  .superRefine((value, ctx) => {
    const sub = value.type;
    if ((sub === 'button_reply' || sub === 'list_reply' || sub === 'nfm_reply') && value[sub] === undefined) {
      ctx.addIssue({ code: 'custom', path: [sub], message: `is required for interactive type "${sub}"` });
    }
  });

const buttonPayloadSchema = z.looseObject({ payload: optionalString, text: optionalString }, { error: mustBeObject });

const reactionPayloadSchema = z.looseObject(
  {
    message_id: requiredString(),
    /** Empty or missing emoji means the reaction was removed. */
    emoji: optionalString,
  },
  { error: mustBeObject },
);

const orderPayloadSchema = z.looseObject(
  {
    catalog_id: requiredString(),
    text: optionalString,
    product_items: z.array(
      z.looseObject(
        {
          product_retailer_id: optionalString,
          quantity: numberLike.optional().catch(undefined),
          item_price: numberLike.optional().catch(undefined),
          currency: optionalString,
        },
        { error: mustBeObject },
      ),
      { error: (iss) => (iss.input === undefined ? 'is required' : `must be an array, got ${kind(iss.input)}`) },
    ),
  },
  { error: mustBeObject },
);

const systemPayloadSchema = z.looseObject(
  {
    body: optionalString,
    type: optionalString,
    wa_id: optionalString,
    new_wa_id: z.union([z.string(), z.number()]).optional().catch(undefined),
    /** Identity changes: the new BSUIDs and the previous ones (user_changed_number, user_changed_user_id). */
    user_id: optionalBsuid,
    parent_user_id: optionalBsuid,
    previous_user_id: optionalBsuid,
    previous_parent_user_id: optionalBsuid,
  },
  { error: mustBeObject },
);

/** The type-specific schemas, keyed by message type (the payload sits under the same key). */
export const whatsAppMessagePayloadSchemas = {
  text: textPayloadSchema,
  image: mediaPayloadSchema,
  video: mediaPayloadSchema,
  audio: mediaPayloadSchema,
  document: mediaPayloadSchema,
  sticker: mediaPayloadSchema,
  location: locationPayloadSchema,
  contacts: contactsPayloadSchema,
  interactive: interactivePayloadSchema,
  button: buttonPayloadSchema,
  reaction: reactionPayloadSchema,
  order: orderPayloadSchema,
  system: systemPayloadSchema,
} as const;

// ---------------------------------------------------------------------------------------------
// Status schemas
// ---------------------------------------------------------------------------------------------

const statusErrorSchema = z.looseObject({
  code: numberLike.catch(0),
  title: optionalString,
  message: optionalString,
  error_data: z.looseObject({ details: optionalString }).optional().catch(undefined),
});

export const whatsAppStatusSchema = z.looseObject(
  {
    id: requiredString(),
    status: requiredString(),
    timestamp: unixSecondsString(),
    /** Phone number; absent when the message was sent to a BSUID and Meta withholds the number. */
    recipient_id: requiredString().optional(),
    recipient_user_id: optionalBsuid,
    recipient_parent_user_id: optionalBsuid,
    errors: z.array(z.unknown()).optional().catch(undefined),
    biz_opaque_callback_data: optionalString,
  },
  { error: mustBeObject },
).superRefine((st, ctx) => {
  if (st.recipient_id === undefined && st.recipient_user_id === undefined) {
    ctx.addIssue({ code: 'custom', path: ['recipient_id'], message: 'recipient_id or recipient_user_id is required' });
  }
});

const STATUS_OWN_FIELDS = new Set([
  'id',
  'status',
  'timestamp',
  'recipient_id',
  'recipient_user_id',
  'recipient_parent_user_id',
  'errors',
  'biz_opaque_callback_data',
]);

function parseStatus(raw: unknown, contacts: Contact[]): { ok: true; value: ParsedStatus } | { ok: false; reason: string } {
  const parsed = whatsAppStatusSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: reasonOf(parsed.error) };
  const s = parsed.data;

  const errors: ParsedStatus['errors'] = [];
  for (const item of s.errors ?? []) {
    const e = statusErrorSchema.safeParse(item);
    if (!e.success) continue; // not even an object: nothing to keep
    errors.push(
      compact({
        code: e.data.code,
        title: e.data.title,
        message: e.data.message,
        details: e.data.error_data?.details,
      }),
    );
  }

  const details: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
    if (!STATUS_OWN_FIELDS.has(k)) details[k] = v;
  }

  const contact = contactFor(contacts, s.recipient_id, s.recipient_user_id, 'status');
  const recipient: ContactIdentity = compact({
    phone: s.recipient_id ?? contact?.wa_id,
    bsuid: s.recipient_user_id ?? contact?.user_id,
    parentBsuid: s.recipient_parent_user_id ?? contact?.parent_user_id,
    username: contact?.profile?.username || undefined,
  });
  return {
    ok: true,
    value: compact({
      providerMessageId: s.id,
      status: s.status,
      recipientId: (s.recipient_id ?? s.recipient_user_id)!,
      recipient,
      timestamp: toIso(s.timestamp),
      errors,
      bizOpaqueCallbackData: s.biz_opaque_callback_data,
      details: Object.keys(details).length > 0 ? details : undefined,
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Message normalization
// ---------------------------------------------------------------------------------------------

interface Normalized {
  type: InboundType;
  text: string;
  media?: InboundMedia;
  details?: Record<string, unknown>;
}

type NormalizeResult = { ok: true; value: Normalized } | { ok: false; reason: string };

const MEDIA_TYPES = new Set(['image', 'video', 'audio', 'document', 'sticker']);
const BASE_FIELDS = new Set(['id', 'from', 'from_user_id', 'from_parent_user_id', 'timestamp', 'type', 'context']);

function normalizeUnsupported(raw: Record<string, unknown>, type: string): Normalized {
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) if (!BASE_FIELDS.has(k)) rest[k] = v;

  let originalType = type;
  if (type === 'unsupported' || type === 'unknown') {
    const inner = ownField(raw, 'unsupported');
    const innerType = isRecord(inner) ? inner['type'] : undefined;
    if (typeof innerType === 'string' && innerType) originalType = innerType;
  }

  const errors = ownField(raw, 'errors');
  const firstError = Array.isArray(errors) && isRecord(errors[0]) ? errors[0] : undefined;
  const errorTitle = firstError && typeof firstError['title'] === 'string' ? firstError['title'] : undefined;

  return {
    type: 'unsupported',
    text: withSuffix(`[unsupported: ${originalType}]`, errorTitle),
    details: { ...rest, originalType },
  };
}

function normalizeByType(raw: Record<string, unknown>, type: string): NormalizeResult {
  const rawPayload = ownField(raw, type);
  const asDetails = isRecord(rawPayload) ? { ...rawPayload } : undefined;

  if (MEDIA_TYPES.has(type)) {
    const p = payload(mediaPayloadSchema, raw, type);
    if (!p.ok) return p;
    const m = p.data;
    const media: InboundMedia = compact({
      id: m.id,
      mimeType: m.mime_type,
      sha256: m.sha256,
      caption: m.caption,
      filename: m.filename,
      voice: m.voice,
      animated: m.animated,
    });
    let text: string;
    if (type === 'audio') text = m.voice ? '[voice note]' : '[audio]';
    else if (type === 'sticker') text = m.animated ? '[sticker] (animated)' : '[sticker]';
    else if (type === 'document') {
      const parts = [m.filename, m.caption].filter((x): x is string => !!x);
      text = withSuffix('[document]', parts.join(' — ') || undefined);
    } else text = withSuffix(`[${type}]`, m.caption);
    return { ok: true, value: { type: type as InboundType, text, media, details: asDetails } };
  }

  switch (type) {
    case 'text': {
      const p = payload(textPayloadSchema, raw, 'text');
      if (!p.ok) return p;
      // The body is the text itself; details would only duplicate it.
      return { ok: true, value: { type: 'text', text: p.data.body } };
    }
    case 'location': {
      const p = payload(locationPayloadSchema, raw, 'location');
      if (!p.ok) return p;
      const l = p.data;
      const label = [l.name, l.address].filter((x): x is string => !!x).join(', ');
      const text = `[location] ${l.latitude}, ${l.longitude}${label ? ` (${label})` : ''}`;
      return { ok: true, value: { type: 'location', text, details: asDetails } };
    }
    case 'contacts': {
      const p = payload(contactsPayloadSchema, raw, 'contacts');
      if (!p.ok) return p;
      const cards = p.data.map((c) => {
        const name =
          c.name?.formatted_name ||
          [c.name?.first_name, c.name?.last_name].filter((x): x is string => !!x).join(' ') ||
          undefined;
        const phone = c.phones?.find((ph) => ph.phone || ph.wa_id);
        const number = phone?.phone ?? phone?.wa_id;
        if (name && number) return `${name} (${number})`;
        return name ?? number ?? 'contact';
      });
      return {
        ok: true,
        value: { type: 'contacts', text: withSuffix('[contacts]', cards.join('; ') || undefined), details: { contacts: rawPayload } },
      };
    }
    case 'interactive': {
      const p = payload(interactivePayloadSchema, raw, 'interactive');
      if (!p.ok) return p;
      const i = p.data;
      let text: string;
      if (i.type === 'button_reply' && i.button_reply) {
        text = optionChoice('[button]', i.button_reply.title, i.button_reply.id);
      } else if (i.type === 'list_reply' && i.list_reply) {
        const r = i.list_reply;
        text = optionChoice('[list]', r.title, r.id, r.description);
      } else if (i.type === 'nfm_reply' && i.nfm_reply) {
        const r = i.nfm_reply;
        const head = r.name ? `[flow ${r.name}]` : '[flow]';
        const parts = [r.body, r.response_json ? truncate(r.response_json, 300) : undefined].filter(
          (x): x is string => !!x,
        );
        text = withSuffix(head, parts.join(' ') || undefined);
      } else {
        text = `[interactive ${i.type}]`;
      }
      return { ok: true, value: { type: 'interactive', text, details: asDetails } };
    }
    case 'button': {
      const p = payload(buttonPayloadSchema, raw, 'button');
      if (!p.ok) return p;
      return {
        ok: true,
        value: { type: 'button', text: optionChoice('[button]', p.data.text, p.data.payload), details: asDetails },
      };
    }
    case 'reaction': {
      const p = payload(reactionPayloadSchema, raw, 'reaction');
      if (!p.ok) return p;
      const r = p.data;
      const text = r.emoji ? `[reaction ${r.emoji} to ${r.message_id}]` : `[reaction removed from ${r.message_id}]`;
      return { ok: true, value: { type: 'reaction', text, details: asDetails } };
    }
    case 'order': {
      const p = payload(orderPayloadSchema, raw, 'order');
      if (!p.ok) return p;
      const o = p.data;
      const items = o.product_items
        .map((it) => `${it.quantity ?? 1} × ${it.product_retailer_id ?? 'item'}`)
        .join(', ');
      const head = `[order] ${o.product_items.length} item${o.product_items.length === 1 ? '' : 's'}`;
      const text = `${head}${items ? `: ${items}` : ''}${o.text ? ` — ${o.text}` : ''}`;
      return { ok: true, value: { type: 'order', text, details: asDetails } };
    }
    case 'system': {
      const p = payload(systemPayloadSchema, raw, 'system');
      if (!p.ok) return p;
      const s = p.data;
      return {
        ok: true,
        value: { type: 'system', text: withSuffix('[system]', s.body || s.type), details: asDetails },
      };
    }
    case 'request_welcome':
      return { ok: true, value: { type: 'request_welcome', text: '[request_welcome]', details: asDetails } };
    default:
      // 'unsupported', legacy 'unknown', and every type Meta adds after this was written.
      return { ok: true, value: normalizeUnsupported(raw, type) };
  }
}

type Contact = z.output<typeof whatsAppContactSchema>;

function parseContacts(raw: unknown): Contact[] {
  if (!Array.isArray(raw)) return [];
  const out: Contact[] = [];
  for (const item of raw.slice(0, LIMITS.anyArray)) {
    const clamped = clampItem(item, WHATSAPP_CONTACT_LIMITS);
    if (!clamped.ok) continue;
    const c = whatsAppContactSchema.safeParse(clamped.value);
    if (c.success) out.push(c.data);
  }
  return out;
}

/** The contacts[] entry of a sender or recipient: by phone, else by BSUID, else the only one. */
/**
 * The contacts[] entry of an item: the one whose wa_id or user_id is the item's own. A message
 * (never a status: a status batch's contacts may describe another recipient) may also take the
 * body's only contact when nothing in it contradicts the message's own forms, since that contact
 * is its sender; a contradicting one would link two people in the identity map.
 */
function contactFor(contacts: Contact[], phone: string | undefined, bsuid: string | undefined, item: 'message' | 'status'): Contact | undefined {
  const exact =
    (phone !== undefined ? contacts.find((c) => c.wa_id === phone) : undefined) ??
    (bsuid !== undefined ? contacts.find((c) => c.user_id === bsuid) : undefined);
  if (exact || item === 'status' || contacts.length !== 1) return exact;
  const only = contacts[0]!;
  const contradicts = (phone !== undefined && only.wa_id !== undefined && only.wa_id !== phone) || (bsuid !== undefined && only.user_id !== undefined && only.user_id !== bsuid);
  return contradicts ? undefined : only;
}

type MessageBase = z.output<typeof whatsAppMessageSchema>;

/**
 * Every form of the sender: the message's own fields first, then its contacts[] entry.
 * Identity-change system messages (Meta: user_changed_number, user_changed_user_id) also
 * say what the user was known as before, so the lead can be re-linked.
 */
function identityOf(m: MessageBase, raw: Record<string, unknown>, contact: Contact | undefined): ContactIdentity {
  const current: ContactIdentity = compact({
    phone: m.from ?? contact?.wa_id,
    bsuid: m.from_user_id ?? contact?.user_id,
    parentBsuid: m.from_parent_user_id ?? contact?.parent_user_id,
    username: contact?.profile?.username || undefined,
  });
  if (m.type !== 'system') return current;
  const sys = systemPayloadSchema.safeParse(ownField(raw, 'system'));
  if (!sys.success) return current;
  const s = sys.data;
  if (s.type === 'user_changed_number') {
    // from = the old number; system.wa_id = the new one; a number change also regenerates the BSUID
    const newPhone = s.wa_id ?? (s.new_wa_id !== undefined ? String(s.new_wa_id) : undefined);
    return compact({
      phone: newPhone ?? current.phone,
      bsuid: s.user_id ?? (s.previous_user_id === undefined ? current.bsuid : m.from_user_id !== s.previous_user_id ? m.from_user_id : undefined),
      parentBsuid: s.parent_user_id,
      username: current.username,
      previous: nonEmpty(compact({ phone: m.from, bsuid: s.previous_user_id, parentBsuid: s.previous_parent_user_id })),
    });
  }
  if (s.type === 'user_changed_user_id') {
    const previousBsuid = s.previous_user_id ?? (s.user_id !== undefined && m.from_user_id !== s.user_id ? m.from_user_id : undefined);
    return compact({
      phone: current.phone,
      bsuid: s.user_id ?? (m.from_user_id !== previousBsuid ? m.from_user_id : undefined),
      parentBsuid: s.parent_user_id ?? (m.from_parent_user_id !== s.previous_parent_user_id ? m.from_parent_user_id : undefined),
      username: current.username,
      previous: nonEmpty(compact({ bsuid: previousBsuid, parentBsuid: s.previous_parent_user_id })),
    });
  }
  return current;
}

function nonEmpty<T extends object>(obj: T): T | undefined {
  return Object.keys(obj).length > 0 ? obj : undefined;
}

function parseMessage(
  raw: unknown,
  contacts: Contact[],
): { ok: true; value: InboundMessage } | { ok: false; reason: string } {
  const base = whatsAppMessageSchema.safeParse(raw);
  if (!base.success) return { ok: false, reason: reasonOf(base.error) };
  const m = base.data;
  const rawObj = raw as Record<string, unknown>;

  const normalized = normalizeByType(rawObj, m.type);
  if (!normalized.ok) return normalized;
  const n = normalized.value;

  let details = n.details;
  if (n.type !== 'unsupported') {
    // Message-level extras worth keeping (click-to-WhatsApp ad referral, errors).
    const referral = ownField(rawObj, 'referral');
    const errors = ownField(rawObj, 'errors');
    if (referral !== undefined || errors !== undefined) {
      details = compact({ ...(details ?? {}), referral, errors });
    }
  }

  const contact = contactFor(contacts, m.from, m.from_user_id, 'message');
  return {
    ok: true,
    value: compact({
      providerMessageId: m.id,
      channel: 'whatsapp' as const,
      // the form the sender wrote with; the webhook maps it to the lead's first-seen form
      contactId: (m.from ?? m.from_user_id)!,
      // Meta: a username may stand in for the profile name
      contactName: contact?.profile?.name || contact?.profile?.username || undefined,
      identity: identityOf(m, rawObj, contact),
      sentAt: toIso(m.timestamp),
      type: n.type,
      text: n.text,
      media: n.media,
      replyToProviderId: m.context?.id || undefined,
      details,
    }),
  };
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

export function parseWhatsAppWebhook(body: unknown, opts: { receivedAtMs?: number } = {}): WebhookParseResult {
  const receivedAtMs = opts.receivedAtMs ?? Date.now();
  return parseGuarded(body, (b) => parseUnsafe(b, receivedAtMs));
}

function parseUnsafe(body: unknown, receivedAtMs: number): WebhookParseResult {
  const envelope = whatsAppWebhookEnvelopeSchema.safeParse(body);
  if (!envelope.success) {
    const issues = issuesOf(envelope.error);
    return { ok: false, reason: reasonOf(envelope.error) || 'invalid webhook body', issues };
  }

  const changes: ParsedChange[] = [];
  const templateChanges: ParsedTemplateChange[] = [];
  const ignored: IgnoredItem[] = [];
  const adjusted: IgnoredItem[] = [];
  const seenMessageIds = new Set<string>();

  envelope.data.entry.forEach((entry, ei) => {
    entry.changes.forEach((rawChange, ci) => {
      const changePath = `entry[${ei}].changes[${ci}]`;

      const change = whatsAppChangeSchema.safeParse(rawChange);
      if (!change.success) {
        ignored.push({ path: changePath, reason: reasonOf(change.error) });
        return;
      }
      if ((TEMPLATE_WEBHOOK_FIELDS as readonly string[]).includes(change.data.field)) {
        const t = parseTemplateChange(entry.id, change.data.field as TemplateWebhookField, change.data.value, entryTime((entry as { time?: unknown }).time, receivedAtMs));
        if (t.ok) templateChanges.push(t.value);
        else ignored.push({ path: `${changePath}.value`, reason: t.reason });
        return;
      }
      if (change.data.field !== 'messages') {
        ignored.push({ path: changePath, reason: `field "${truncate(change.data.field, 100)}" is not handled (only "messages" and the template fields)` });
        return;
      }

      const valuePath = `${changePath}.value`;
      const value = whatsAppChangeValueSchema.safeParse(change.data.value);
      if (!value.success) {
        ignored.push({ path: valuePath, reason: reasonOf(value.error) });
        return;
      }
      const v = value.data;
      const contacts = parseContacts(v.contacts);

      const parsed: ParsedChange = compact({
        phoneNumberId: v.metadata.phone_number_id,
        displayPhoneNumber: v.metadata.display_phone_number,
        messages: [] as InboundMessage[],
        statuses: [] as ParsedStatus[],
      });

      if (v.messages !== undefined && !Array.isArray(v.messages)) {
        ignored.push({ path: `${valuePath}.messages`, reason: `messages must be an array, got ${kind(v.messages)}` });
      } else {
        (v.messages ?? []).forEach((rawMessage: unknown, mi: number) => {
          const path = `${valuePath}.messages[${mi}]`;
          // every field bounded before it is read (Meta's limits; api/webhooks/meta-limits.ts)
          const clamped = clampItem(rawMessage, WHATSAPP_MESSAGE_LIMITS);
          if (!clamped.ok) {
            ignored.push({ path, reason: clamped.reason });
            return;
          }
          const parsedMsg = parseMessage(clamped.value, contacts);
          const msg = parsedMsg.ok ? limitInbound(parsedMsg.value, receivedAtMs, clamped.adjusted) : parsedMsg;
          if (!msg.ok) {
            ignored.push({ path, reason: msg.reason });
            return;
          }
          for (const what of msg.adjusted) adjusted.push({ path, reason: what });
          if (seenMessageIds.has(msg.value.providerMessageId)) {
            ignored.push({ path, reason: 'duplicate message id in body' });
            return;
          }
          seenMessageIds.add(msg.value.providerMessageId);
          parsed.messages.push(msg.value);
        });
      }

      if (v.statuses !== undefined && !Array.isArray(v.statuses)) {
        ignored.push({ path: `${valuePath}.statuses`, reason: `statuses must be an array, got ${kind(v.statuses)}` });
      } else {
        (v.statuses ?? []).forEach((rawStatus: unknown, si: number) => {
          const path = `${valuePath}.statuses[${si}]`;
          const clamped = clampItem(rawStatus, WHATSAPP_STATUS_LIMITS);
          const status = clamped.ok ? parseStatus(clamped.value, contacts) : clamped;
          if (!status.ok) {
            ignored.push({ path, reason: status.reason });
            return;
          }
          const s = status.value;
          if (s.providerMessageId.length > LIMITS.messageId || s.recipientId.length > LIMITS.contactId) {
            ignored.push({ path, reason: `status id or recipient_id over its bound (${LIMITS.messageId} / ${LIMITS.contactId} characters)` });
            return;
          }
          const notes = clamped.ok ? [...clamped.adjusted] : [];
          s.timestamp = boundTime(s.timestamp, receivedAtMs, 'timestamp', notes);
          for (const what of notes) adjusted.push({ path, reason: what });
          parsed.statuses.push(s);
        });
      }

      changes.push(parsed);
    });
  });

  return { ok: true, changes, templateChanges, ignored, adjusted };
}

/** Bounded strings of a template change (Meta: names ≤ 512, language codes ≤ 15, ids are digits). */
const templateText = (max: number) => z.string().min(1).max(max).optional().catch(undefined);
const templateChangeValueSchema = z.looseObject(
  {
    event: templateText(64),
    message_template_id: z
      .union([z.number().int().nonnegative(), z.string().regex(/^\d{1,30}$/)])
      .transform(String)
      .optional()
      .catch(undefined),
    message_template_name: templateText(512),
    message_template_language: templateText(20),
    reason: z.string().optional().catch(undefined),
    previous_quality_score: templateText(32),
    new_quality_score: templateText(32),
    previous_category: templateText(32),
    new_category: templateText(32),
  },
  { error: mustBeObject },
);

/** entry.time (unix seconds) as ISO; the receipt time when it is absent, not a number, or in the future. */
function entryTime(time: unknown, receivedAtMs: number): string {
  const seconds = typeof time === 'number' ? time : typeof time === 'string' && /^\d{1,12}$/.test(time) ? Number(time) : NaN;
  const ms = seconds * 1000;
  return Number.isFinite(ms) && ms > 0 && ms <= receivedAtMs + 5 * 60_000 ? new Date(ms).toISOString() : new Date(receivedAtMs).toISOString();
}

function parseTemplateChange(entryId: string | undefined, field: TemplateWebhookField, raw: unknown, at: string): { ok: true; value: ParsedTemplateChange } | { ok: false; reason: string } {
  if (!entryId || !/^\d{1,30}$/.test(entryId)) return { ok: false, reason: 'a template change needs the WhatsApp Business Account id in entry.id' };
  const parsed = templateChangeValueSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: reasonOf(parsed.error) };
  const v = parsed.data;
  if (!v.message_template_id && !(v.message_template_name && v.message_template_language)) {
    return { ok: false, reason: 'a template change needs message_template_id or message_template_name and message_template_language' };
  }
  const upper = (x: string | undefined) => x?.toUpperCase();
  const base = compact({
    wabaId: entryId,
    field,
    at,
    metaTemplateId: v.message_template_id,
    name: v.message_template_name,
    language: v.message_template_language,
  }) as ParsedTemplateChange;
  if (field === 'message_template_status_update') {
    const event = upper(v.event);
    if (!event) return { ok: false, reason: 'message_template_status_update needs an event' };
    return { ok: true, value: compact({ ...base, event, status: TEMPLATE_STATUS_EVENTS[event] ?? null, reason: v.reason !== undefined ? truncate(v.reason, 1000) : undefined }) as ParsedTemplateChange };
  }
  if (field === 'message_template_quality_update') {
    if (!v.new_quality_score) return { ok: false, reason: 'message_template_quality_update needs new_quality_score' };
    return { ok: true, value: compact({ ...base, previousQualityScore: upper(v.previous_quality_score), newQualityScore: upper(v.new_quality_score) }) as ParsedTemplateChange };
  }
  return { ok: true, value: compact({ ...base, previousCategory: upper(v.previous_category), newCategory: upper(v.new_category) }) as ParsedTemplateChange };
}
