/**
 * Validation and normalization of Instagram Messaging webhook POST bodies
 * (`object: "instagram"`, `entry[].messaging[]`).
 *
 * Pure: no I/O, no logging, never throws. The envelope (`object`, `entry[]`) is validated
 * strictly and a bad envelope fails the whole body (the route answers 4xx). Inside it every
 * entry and messaging event is validated on its own: a broken one lands in `ignored` with its
 * path and reason, and its valid siblings are kept.
 *
 * Events from the user (messages with text, attachments, quick replies, replies; postbacks;
 * reactions) become `InboundMessage`s with channel 'instagram', contactId = the sender's IGSID.
 * Echoes of our own messages, read and delivery receipts and other notifications that are
 * not a user's message are ignored too, marked `expected` so the route logs them at debug.
 *
 * Reactions (and postbacks from old API versions) carry no message id of their own: they get a
 * deterministic one from a hash of account, sender, time and content, so a redelivered webhook
 * deduplicates like any message.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { InboundMedia, InboundMessage } from '../../contract/messages';
import type { InboundType } from '../../contract/vocabulary';
import {
  compact,
  isRecord,
  issuesOf,
  kind,
  mustBeArray,
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
  optionChoice,
  withSuffix,
} from './meta-common';
import { clampItem, INSTAGRAM_EVENT_LIMITS, limitInbound } from './meta-limits';

export const INSTAGRAM_WEBHOOK_OBJECT = 'instagram';

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

export interface InstagramIgnoredItem {
  /** Like "entry[0].messaging[2]". */
  path: string;
  reason: string;
  /**
   * True for events that are not a user's message by design (echoes of our sends, read and
   * delivery receipts, edits, deletions, referrals without a message): logged at debug.
   * False for broken or unknown items: logged as a warning.
   */
  expected: boolean;
  /** For expected items: what it was ('echo', 'read', 'delivery', ...), for the debug counts. */
  event?: string;
}

export interface ParsedInstagramEntry {
  /** entry.id: the Instagram professional account id (the channel's account id). */
  accountId: string;
  /** InboundMessage[] with channel 'instagram', in the order Meta sent them. */
  messages: InboundMessage[];
}

export type InstagramParseResult =
  | {
      ok: true;
      entries: ParsedInstagramEntry[];
      ignored: InstagramIgnoredItem[];
      /** Messages kept with a field cut, removed or a time replaced (api/webhooks/meta-limits.ts). */
      adjusted: { path: string; reason: string }[];
    }
  | { ok: false; reason: string; issues: { path: string; message: string }[] };

// ---------------------------------------------------------------------------------------------
// Schemas (strict about what we rely on, loose about extra fields)
// ---------------------------------------------------------------------------------------------

export const instagramWebhookEnvelopeSchema = z.looseObject(
  {
    object: z.literal(INSTAGRAM_WEBHOOK_OBJECT, {
      error: (iss) =>
        iss.input === undefined ? 'is required' : `expected object "${INSTAGRAM_WEBHOOK_OBJECT}", got ${kind(iss.input)}`,
    }),
    entry: z.array(z.unknown(), { error: mustBeArray }).min(1, 'must not be empty'),
  },
  { error: (iss) => `must be a JSON object, got ${kind(iss.input)}` },
);

export const instagramEntrySchema = z.looseObject(
  {
    /** The Instagram professional account id (a numeric string). */
    id: requiredString(),
    time: numberLike.optional().catch(undefined),
    messaging: z.array(z.unknown(), { error: mustBeArray }).optional(),
    changes: z.unknown().optional(),
    standby: z.unknown().optional(),
  },
  { error: mustBeObject },
);

/** Meta sends milliseconds; a seconds value (10 digits or fewer) is taken as seconds. */
const timestampSchema = numberLike.refine((n) => Number.isInteger(n) && n >= 0 && n < 1e14, {
  message: 'must be a unix timestamp in milliseconds',
});

const partySchema = z.looseObject({ id: requiredString() }, { error: mustBeObject });

export const instagramMessagingSchema = z.looseObject(
  {
    sender: partySchema,
    recipient: partySchema,
    timestamp: timestampSchema,
  },
  { error: mustBeObject },
);

const attachmentSchema = z.looseObject(
  {
    type: requiredString(),
    payload: z
      .looseObject({
        url: optionalString,
        title: optionalString,
        sticker_id: z.union([z.string(), z.number()]).optional().catch(undefined),
        reel_video_id: z.union([z.string(), z.number()]).optional().catch(undefined),
      })
      .optional()
      .catch(undefined),
  },
  { error: mustBeObject },
);

const messageSchema = z.looseObject(
  {
    mid: requiredString(),
    text: optionalString,
    attachments: z.array(z.unknown(), { error: mustBeArray }).optional(),
    quick_reply: z.looseObject({ payload: optionalString }).optional().catch(undefined),
    reply_to: z
      .looseObject({
        mid: optionalString,
        story: z.looseObject({ id: optionalString, url: optionalString }).optional().catch(undefined),
      })
      .optional()
      .catch(undefined),
    is_echo: optionalBoolean,
    is_deleted: optionalBoolean,
    is_unsupported: optionalBoolean,
  },
  { error: mustBeObject },
);

const reactionSchema = z.looseObject(
  {
    /** The message reacted to. */
    mid: requiredString(),
    action: z.enum(['react', 'unreact'], {
      error: (iss) => (iss.input === undefined ? 'is required' : `must be "react" or "unreact", got ${kind(iss.input)}`),
    }),
    reaction: optionalString,
    emoji: optionalString,
  },
  { error: mustBeObject },
);

const postbackSchema = z.looseObject(
  {
    mid: optionalString,
    title: optionalString,
    payload: optionalString,
  },
  { error: mustBeObject },
);

// ---------------------------------------------------------------------------------------------
// Normalization
// ---------------------------------------------------------------------------------------------

type ItemResult = { ok: true; messages: InboundMessage[] } | { ok: false; reason: string; expected?: string };

/** How an attachment type reads and which inbound type it becomes. */
const ATTACHMENTS: Record<string, { type: InboundType; label: string }> = {
  image: { type: 'image', label: 'image' },
  video: { type: 'video', label: 'video' },
  audio: { type: 'audio', label: 'audio' },
  file: { type: 'document', label: 'file' },
  sticker: { type: 'sticker', label: 'sticker' },
  animated_image_share: { type: 'image', label: 'GIF' },
  like_heart: { type: 'sticker', label: 'like ❤️' },
  share: { type: 'image', label: 'shared post' },
  ig_post: { type: 'image', label: 'shared post' },
  story_mention: { type: 'image', label: 'story mention' },
  ig_reel: { type: 'video', label: 'shared reel' },
  reel: { type: 'video', label: 'shared reel' },
};

const MAX_TEXT = 4096;

/** ms (Meta's unit), or seconds when the number is too small to be a recent time in ms. */
function toIso(timestamp: number): string {
  return new Date(timestamp < 1e11 ? timestamp * 1000 : timestamp).toISOString();
}

/** A stable id for an event that has no id of its own (redelivery gives the same id). */
export function derivedEventId(kindOf: string, parts: unknown[]): string {
  const digest = createHash('sha256').update(JSON.stringify(parts)).digest('base64url').slice(0, 32);
  return `ig.${kindOf}.${digest}`;
}

interface Base {
  accountId: string;
  contactId: string;
  sentAt: string;
  timestamp: number;
}

function inbound(base: Base, fields: Omit<InboundMessage, 'channel' | 'contactId' | 'sentAt'>): InboundMessage {
  return compact({ ...fields, channel: 'instagram' as const, contactId: base.contactId, sentAt: base.sentAt });
}

function normalizeMessage(base: Base, raw: unknown): ItemResult {
  if (isRecord(raw) && raw['is_echo'] === true) return { ok: false, reason: 'echo of a message the account sent', expected: 'echo' };
  const parsed = messageSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: reasonOf(parsed.error, 'message') };
  const m = parsed.data;
  if (m.is_deleted) return { ok: false, reason: 'the user deleted a message', expected: 'deleted' };

  const rawObj = raw as Record<string, unknown>;
  const referral = ownField(rawObj, 'referral');
  const story = m.reply_to?.story;
  const replyToProviderId = m.reply_to?.mid || undefined;
  const baseDetails = compact({
    referral,
    replyToStory: story ? compact({ id: story.id, url: story.url }) : undefined,
  });
  const details = (extra: Record<string, unknown> = {}) => {
    const d = { ...baseDetails, ...extra };
    return Object.keys(d).length > 0 ? d : undefined;
  };
  const prefix = story ? '[reply to story] ' : '';

  if (m.is_unsupported) {
    return {
      ok: true,
      messages: [inbound(base, { providerMessageId: m.mid, type: 'unsupported', text: `${prefix}[unsupported: instagram message]`, replyToProviderId, details: details() })],
    };
  }

  const text = m.text !== undefined ? truncate(m.text, MAX_TEXT) : undefined;
  const attachments = m.attachments ?? [];
  if (attachments.length > 0) {
    const messages: InboundMessage[] = [];
    for (let i = 0; i < attachments.length; i += 1) {
      const a = attachmentSchema.safeParse(attachments[i]);
      if (!a.success) return { ok: false, reason: reasonOf(a.error, `message.attachments[${i}]`) };
      const { type: attType, payload: p } = a.data;
      const known = ATTACHMENTS[attType];
      const title = p?.title ? truncate(p.title, 300) : undefined;
      // Instagram gives no media id, only a (signed, expiring) CDN url: the url is the media's id.
      const media: InboundMedia | undefined = p?.url ? compact({ id: p.url, caption: i === 0 ? text : undefined }) : undefined;
      const label = known ? `[${known.label}]` : `[attachment: ${attType}]`;
      const caption = [title, i === 0 ? text : undefined].filter((x): x is string => !!x).join(' — ') || undefined;
      messages.push(
        inbound(base, {
          // the first keeps the message id; the others get stable ids derived from it
          providerMessageId: i === 0 ? m.mid : `${m.mid}#${i}`,
          type: known?.type ?? 'unsupported',
          text: prefix + withSuffix(label, caption),
          media,
          replyToProviderId,
          details: details(
            compact({
              attachmentType: attType,
              title,
              stickerId: p?.sticker_id,
              reelVideoId: p?.reel_video_id,
            }),
          ),
        }),
      );
    }
    return { ok: true, messages };
  }

  if (m.quick_reply?.payload !== undefined) {
    return {
      ok: true,
      messages: [
        inbound(base, {
          providerMessageId: m.mid,
          type: 'button',
          text: prefix + optionChoice('[quick reply]', text, m.quick_reply.payload),
          replyToProviderId,
          details: details({ quickReply: { payload: m.quick_reply.payload } }),
        }),
      ],
    };
  }

  if (text === undefined) return { ok: false, reason: 'message has neither text nor attachments' };
  return {
    ok: true,
    messages: [inbound(base, { providerMessageId: m.mid, type: 'text', text: prefix + text, replyToProviderId, details: details() })],
  };
}

function normalizeReaction(base: Base, raw: Record<string, unknown>): ItemResult {
  const p = payload(reactionSchema, raw, 'reaction');
  if (!p.ok) return p;
  const r = p.data;
  const emoji = r.emoji || r.reaction;
  const text = r.action === 'react' ? `[reaction ${emoji ?? '?'} to ${r.mid}]` : `[reaction removed from ${r.mid}]`;
  return {
    ok: true,
    messages: [
      inbound(base, {
        providerMessageId: derivedEventId('reaction', [base.accountId, base.contactId, base.timestamp, r.mid, r.action, r.reaction ?? null, r.emoji ?? null]),
        type: 'reaction',
        text,
        details: { reaction: compact({ mid: r.mid, action: r.action, reaction: r.reaction, emoji: r.emoji }) },
      }),
    ],
  };
}

function normalizePostback(base: Base, raw: Record<string, unknown>): ItemResult {
  const p = payload(postbackSchema, raw, 'postback');
  if (!p.ok) return p;
  const b = p.data;
  if (!b.title && !b.payload) return { ok: false, reason: 'postback has neither title nor payload' };
  return {
    ok: true,
    messages: [
      inbound(base, {
        providerMessageId: b.mid || derivedEventId('postback', [base.accountId, base.contactId, base.timestamp, b.title ?? null, b.payload ?? null]),
        type: 'interactive',
        text: optionChoice('[button]', b.title ? truncate(b.title, 300) : undefined, b.payload ? truncate(b.payload, 300) : undefined),
        details: { postback: compact({ title: b.title, payload: b.payload }) },
      }),
    ],
  };
}

/** Notifications that are not a user's message (key present in the event → what it is). */
const NOT_MESSAGES: [key: string, event: string, reason: string][] = [
  ['read', 'read', 'read receipt'],
  ['delivery', 'delivery', 'delivery receipt'],
  ['message_edit', 'edit', 'message edit'],
  ['referral', 'referral', 'referral without a message'],
  ['optin', 'optin', 'opt-in'],
  ['pass_thread_control', 'handover', 'handover protocol event'],
  ['take_thread_control', 'handover', 'handover protocol event'],
  ['request_thread_control', 'handover', 'handover protocol event'],
];

function normalizeEvent(accountId: string, raw: unknown): ItemResult {
  const parsed = instagramMessagingSchema.safeParse(raw);
  if (!parsed.success) {
    if (isRecord(raw) && isRecord(raw['message']) && raw['message']['is_echo'] === true) {
      return { ok: false, reason: 'echo of a message the account sent', expected: 'echo' };
    }
    return { ok: false, reason: reasonOf(parsed.error) };
  }
  const e = parsed.data;
  const rawObj = raw as Record<string, unknown>;
  if (e.sender.id === accountId) return { ok: false, reason: 'sent by the account itself', expected: 'echo' };
  const base: Base = { accountId, contactId: e.sender.id, timestamp: e.timestamp, sentAt: toIso(e.timestamp) };

  if (ownField(rawObj, 'message') !== undefined) return normalizeMessage(base, rawObj['message']);
  if (ownField(rawObj, 'reaction') !== undefined) return normalizeReaction(base, rawObj);
  if (ownField(rawObj, 'postback') !== undefined) return normalizePostback(base, rawObj);
  for (const [key, event, reason] of NOT_MESSAGES) {
    if (ownField(rawObj, key) !== undefined) return { ok: false, reason, expected: event };
  }
  const keys = Object.keys(rawObj).filter((k) => !['sender', 'recipient', 'timestamp'].includes(k));
  return { ok: false, reason: `unknown event (${keys.slice(0, 5).join(', ') || 'no payload'})` };
}

// ---------------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------------

export function parseInstagramWebhook(body: unknown, opts: { receivedAtMs?: number } = {}): InstagramParseResult {
  const receivedAtMs = opts.receivedAtMs ?? Date.now();
  return parseGuarded(body, (b) => parseUnsafe(b, receivedAtMs));
}

function parseUnsafe(body: unknown, receivedAtMs: number): InstagramParseResult {
  const envelope = instagramWebhookEnvelopeSchema.safeParse(body);
  if (!envelope.success) {
    return { ok: false, reason: reasonOf(envelope.error) || 'invalid webhook body', issues: issuesOf(envelope.error) };
  }

  const entries: ParsedInstagramEntry[] = [];
  const ignored: InstagramIgnoredItem[] = [];
  const adjusted: { path: string; reason: string }[] = [];
  const seen = new Set<string>();

  envelope.data.entry.forEach((rawEntry, ei) => {
    const entryPath = `entry[${ei}]`;
    const entry = instagramEntrySchema.safeParse(rawEntry);
    if (!entry.success) {
      ignored.push({ path: entryPath, reason: reasonOf(entry.error), expected: false });
      return;
    }
    const e = entry.data;
    if (e.changes !== undefined) {
      // comments, mentions, story insights: not conversations
      ignored.push({ path: `${entryPath}.changes`, reason: 'changes (comments, mentions, ...) are not handled', expected: true, event: 'changes' });
    }
    if (e.standby !== undefined) {
      ignored.push({ path: `${entryPath}.standby`, reason: 'standby events belong to the app in control of the thread', expected: true, event: 'standby' });
    }
    const parsed: ParsedInstagramEntry = { accountId: e.id, messages: [] };
    (e.messaging ?? []).forEach((rawEvent, mi) => {
      const path = `${entryPath}.messaging[${mi}]`;
      // every field bounded before it is read (Meta's limits; api/webhooks/meta-limits.ts)
      const clamped = clampItem(rawEvent, INSTAGRAM_EVENT_LIMITS);
      const result: ItemResult = clamped.ok ? normalizeEvent(e.id, clamped.value) : { ok: false, reason: clamped.reason };
      if (!result.ok) {
        ignored.push(compact({ path, reason: result.reason, expected: result.expected !== undefined, event: result.expected }));
        return;
      }
      for (const normalized of result.messages) {
        const limited = limitInbound(normalized, receivedAtMs, clamped.ok ? clamped.adjusted : []);
        if (!limited.ok) {
          ignored.push({ path, reason: limited.reason, expected: false });
          continue;
        }
        const message = limited.value;
        for (const what of limited.adjusted) adjusted.push({ path, reason: what });
        if (seen.has(message.providerMessageId)) {
          ignored.push({ path, reason: 'duplicate message id in body', expected: false });
          continue;
        }
        seen.add(message.providerMessageId);
        parsed.messages.push(message);
      }
    });
    entries.push(parsed);
  });

  return { ok: true, entries, ignored, adjusted };
}
