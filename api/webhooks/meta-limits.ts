/**
 * Size and range limits for what the Meta webhooks hand to Temporal and the database.
 *
 * A signed webhook is answered 200 only if every item in it can be delivered, and Meta redelivers
 * a whole batch (valid messages included) for up to 7 days after a 5xx. So no single field may be
 * able to make Temporal or PostgreSQL refuse an item: every string is bounded by Meta's own limit
 * for that field where Meta documents one, by a generous bound where it does not, and every item
 * as a whole is bounded far below Temporal's payload limits (warning at 256 KB, refused at 2 MB;
 * workflow ids at most 1,000 characters: Temporal's self-hosted defaults, `limit.blobSize.error`
 * and `limit.maxIDLength`). Strings are cut on a code point (never inside a surrogate pair) and
 * made well formed (a lone surrogate from a `\ud83d` escape would be refused by PostgreSQL's JSONB).
 *
 * What happens to an item over a limit:
 * - text-like fields are cut, with an ellipsis, and the cut is recorded (the item's
 *   `details.adjusted` and the parse result's `adjusted` list, with its path);
 * - a field that only means something whole (a URL, an id we would look up) is removed, recorded
 *   the same way;
 * - an item whose identity is over its limit (message id, contact id) is dropped with a reason in
 *   `ignored`: an id cannot be cut without becoming someone else's.
 *
 * Timestamps: Meta's must fall between META_EARLIEST_TIME (2009, before any WhatsApp or Instagram
 * message) and the time of receipt plus MAX_CLOCK_SKEW_MS. Outside that the item is kept (the
 * message is genuine, only its clock is not) and its time is replaced by the time of receipt,
 * recorded like a cut. A time far in the future would otherwise hold the lead's 24-hour window open
 * for ever, and a year past 9999 does not even fit a PostgreSQL timestamp.
 *
 * Pure: no I/O; the time of receipt is passed in.
 */
import type { InboundMessage } from '../../contract/messages';

/**
 * Meta's documented limits (WhatsApp Cloud API message reference; Instagram Messaging send API),
 * used for the fields Meta fills from what a user typed:
 * - text message body: 4,096 characters;
 * - media caption (image, video, document): 1,024 characters;
 * - reply button: title 20 characters, id 256 characters;
 * - list row: title 24 characters, description 72 characters, id 200 characters;
 * - template quick-reply button label: 25 characters;
 * - Instagram message text: 1,000 bytes of UTF-8;
 * - Instagram quick reply and postback payloads: 1,000 characters.
 * Where Meta documents nothing (file names, location names and addresses, profile names) the
 * bound is generous and stated next to it. Sources:
 * - https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/text-messages/
 *   ("Body text … Maximum 4096 characters") and .../messages/image-messages/ ("Media asset caption
 *   text. Maximum 1024 characters.");
 * - https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-list-messages
 *   for list rows (title 24, description 72, id 200 characters) and the reply-button message for
 *   buttons (title 20, id 256), as SDKs built on them enforce (whatsapp-api-js `Row`, `Button`);
 * - https://developers.facebook.com/docs/instagram-platform/instagram-api-with-instagram-login/messaging-api/
 *   (Instagram message text: at most 1,000 bytes of UTF-8);
 * - https://docs.temporal.io/self-hosted-guide/defaults (ids 1,000 characters; payloads warn at
 *   256 KB, fail at 2 MB; gRPC messages 4 MB).
 */
export const LIMITS = {
  whatsappText: 4096,
  caption: 1024,
  buttonReplyTitle: 20,
  buttonReplyId: 256,
  listReplyTitle: 24,
  listReplyDescription: 72,
  listReplyId: 200,
  templateButtonText: 25,
  instagramTextBytes: 1000,
  instagramPayload: 1000,
  /** Not documented by Meta; most file systems stop at 255 bytes. */
  filename: 255,
  /** Not documented by Meta for received locations. */
  locationLabel: 1000,
  /** WhatsApp Flows' response_json is JSON of the user's answers; generous. */
  flowResponseJson: 10_000,
  /** URLs (Meta's CDN links are a few hundred characters). */
  url: 2048,
  /** Not documented; WhatsApp profile names are short (the app allows 25 characters). */
  contactName: 256,
  /** wamid.… (about 60–100 characters), Instagram mids (about 150): the dedup key kept in workflow state. */
  messageId: 256,
  /**
   * wa_id (E.164, at most 15 digits), business-scoped user ids ("US.13491208655302741918" and
   * longer parent forms), IGSIDs (about 17 digits). The workflow id has a fixed length whatever
   * the contact id (lib/lead-ids.ts); the contact id is still kept in workflow state and rows.
   */
  contactId: 128,
  /** Any other string Meta sends (referrals, errors, order notes, system texts, ...). */
  anyString: 4096,
  /** Elements kept of any array (a multi-product order holds at most 30 items). */
  anyArray: 100,
  /** Nesting kept of any object. */
  depth: 8,
  /** One item's JSON after the cuts above; far below Temporal's 256 KB warning. */
  itemJsonBytes: 64 * 1024,
  /** The rendered text of one message (a document's name and caption, a flow's answers...). */
  renderedText: 8192,
} as const;

/** 2009-01-01T00:00:00Z: nothing Meta sends about WhatsApp or Instagram messages is older. */
export const META_EARLIEST_TIME = Date.UTC(2009, 0, 1);
/** A time this far after receipt is still taken as Meta's clock running ahead of ours. */
export const MAX_CLOCK_SKEW_MS = 15 * 60 * 1000;

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

/** The string with lone surrogates replaced (U+FFFD), as PostgreSQL and JSON encoders need. */
export function wellFormed(value: string): string {
  return value.toWellFormed();
}

/** At most `max` UTF-16 code units, cut on a code point, ending with "…" when cut. */
export function clipChars(value: string, max: number): string {
  if (value.length <= max) return wellFormed(value);
  let end = Math.max(0, max - 1);
  const c = value.charCodeAt(end - 1);
  if (c >= 0xd800 && c <= 0xdbff) end -= 1; // do not keep half of a pair
  return `${wellFormed(value.slice(0, end))}…`;
}

const utf8Bytes = (value: string) => Buffer.byteLength(value, 'utf8');

/** At most `maxBytes` bytes of UTF-8, cut on a code point, ending with "…" when cut. */
export function clipUtf8(value: string, maxBytes: number): string {
  const v = wellFormed(value);
  if (utf8Bytes(v) <= maxBytes) return v;
  const budget = maxBytes - 3; // "…" is 3 bytes
  let bytes = 0;
  let out = '';
  for (const ch of v) {
    const n = utf8Bytes(ch);
    if (bytes + n > budget) break;
    bytes += n;
    out += ch;
  }
  return `${out}…`;
}

// ---------------------------------------------------------------------------------------------
// Raw items (before normalization): field limits by path, then everything else
// ---------------------------------------------------------------------------------------------

export interface FieldLimit {
  /** Path inside the item; "*" matches any array index or key. */
  path: string[];
  max: number;
  unit?: 'chars' | 'bytes';
  /** 'cut' (default) or 'remove' for values that mean nothing when cut (URLs). */
  action?: 'cut' | 'remove';
  /** Why this number, for the recorded reason ("Meta's limit for a caption"). */
  why: string;
}

export type ClampResult = { ok: true; value: unknown; adjusted: string[] } | { ok: false; reason: string };

function matches(pattern: string[], path: string[]): boolean {
  if (pattern.length !== path.length) return false;
  return pattern.every((p, i) => p === '*' || p === path[i]);
}

const describe = (path: string[]) => path.join('.').replace(/\.(\d+)(?=\.|$)/g, '[$1]');

/**
 * A bounded copy of a raw item: each field limit applied, every other string cut at
 * LIMITS.anyString, arrays at LIMITS.anyArray elements, objects at LIMITS.depth levels. Fails
 * (the item is dropped) only when what is left is still over LIMITS.itemJsonBytes.
 */
export function clampItem(raw: unknown, limits: readonly FieldLimit[]): ClampResult {
  const adjusted: string[] = [];
  const walk = (value: unknown, path: string[]): unknown => {
    if (typeof value === 'string') {
      const limit = limits.find((l) => matches(l.path, path));
      const unit = limit?.unit ?? 'chars';
      const max = limit?.max ?? LIMITS.anyString;
      const size = unit === 'bytes' ? utf8Bytes(value) : value.length;
      if (size <= max) return wellFormed(value);
      const why = limit?.why ?? 'bound for any field';
      if (limit?.action === 'remove') {
        adjusted.push(`${describe(path)} removed: ${size} ${unit === 'bytes' ? 'bytes' : 'characters'}, over ${max} (${why})`);
        return undefined;
      }
      adjusted.push(`${describe(path)} cut from ${size} to ${max} ${unit === 'bytes' ? 'bytes' : 'characters'} (${why})`);
      return unit === 'bytes' ? clipUtf8(value, max) : clipChars(value, max);
    }
    if (value === null || typeof value !== 'object') return value;
    if (path.length >= LIMITS.depth) {
      adjusted.push(`${describe(path)} removed: nested deeper than ${LIMITS.depth} levels`);
      return undefined;
    }
    if (Array.isArray(value)) {
      if (value.length > LIMITS.anyArray) adjusted.push(`${describe(path)} cut from ${value.length} to ${LIMITS.anyArray} elements`);
      return value.slice(0, LIMITS.anyArray).map((v, i) => walk(v, [...path, String(i)]));
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const key = clipChars(k, 256);
      const w = walk(v, [...path, k]);
      if (w !== undefined) out[key] = w;
    }
    return out;
  };
  const value = walk(raw, []);
  const bytes = utf8Bytes(JSON.stringify(value) ?? '');
  if (bytes > LIMITS.itemJsonBytes) {
    return { ok: false, reason: `item is ${bytes} bytes of JSON after cutting its fields, over the ${LIMITS.itemJsonBytes}-byte bound for one item` };
  }
  return { ok: true, value, adjusted };
}

const MEDIA = ['image', 'video', 'audio', 'document', 'sticker'];

/** A WhatsApp Cloud API `messages[]` item. */
export const WHATSAPP_MESSAGE_LIMITS: readonly FieldLimit[] = [
  { path: ['text', 'body'], max: LIMITS.whatsappText, why: "Meta's limit for a text message body" },
  ...MEDIA.map((t): FieldLimit => ({ path: [t, 'caption'], max: LIMITS.caption, why: "Meta's limit for a media caption" })),
  { path: ['document', 'filename'], max: LIMITS.filename, why: 'bound for a file name' },
  ...MEDIA.map((t): FieldLimit => ({ path: [t, 'id'], max: LIMITS.messageId, action: 'remove', why: 'bound for a media id' })),
  ...MEDIA.map((t): FieldLimit => ({ path: [t, 'url'], max: LIMITS.url, action: 'remove', why: 'bound for a URL' })),
  { path: ['location', 'name'], max: LIMITS.locationLabel, why: 'bound for a location name' },
  { path: ['location', 'address'], max: LIMITS.locationLabel, why: 'bound for an address' },
  { path: ['location', 'url'], max: LIMITS.url, action: 'remove', why: 'bound for a URL' },
  { path: ['interactive', 'button_reply', 'title'], max: LIMITS.buttonReplyTitle, why: "Meta's limit for a reply button title" },
  { path: ['interactive', 'button_reply', 'id'], max: LIMITS.buttonReplyId, why: "Meta's limit for a reply button id" },
  { path: ['interactive', 'list_reply', 'title'], max: LIMITS.listReplyTitle, why: "Meta's limit for a list row title" },
  { path: ['interactive', 'list_reply', 'description'], max: LIMITS.listReplyDescription, why: "Meta's limit for a list row description" },
  { path: ['interactive', 'list_reply', 'id'], max: LIMITS.listReplyId, why: "Meta's limit for a list row id" },
  { path: ['interactive', 'nfm_reply', 'response_json'], max: LIMITS.flowResponseJson, why: "bound for a flow's answers" },
  { path: ['button', 'text'], max: LIMITS.templateButtonText, why: "Meta's limit for a template button label" },
  { path: ['context', 'id'], max: LIMITS.messageId, action: 'remove', why: 'bound for a message id' },
  { path: ['reaction', 'message_id'], max: LIMITS.messageId, why: 'bound for a message id' },
];

/** A WhatsApp Cloud API `statuses[]` item (errors and pricing are bounded like any field). */
export const WHATSAPP_STATUS_LIMITS: readonly FieldLimit[] = [
  // biz_opaque_callback_data is ours (an outbound message id); Meta allows 512 characters
  { path: ['biz_opaque_callback_data'], max: 512, action: 'remove', why: "Meta's limit for biz_opaque_callback_data" },
];

/** A WhatsApp `contacts[]` entry: its forms feed the identity map, so an over-long one is removed, not cut. */
export const WHATSAPP_CONTACT_LIMITS: readonly FieldLimit[] = [
  { path: ['wa_id'], max: LIMITS.contactId, action: 'remove', why: 'bound for a contact id' },
  { path: ['user_id'], max: LIMITS.contactId, action: 'remove', why: 'bound for a contact id' },
  { path: ['parent_user_id'], max: LIMITS.contactId, action: 'remove', why: 'bound for a contact id' },
  { path: ['profile', 'name'], max: LIMITS.contactName, why: 'bound for a profile name' },
  { path: ['profile', 'username'], max: LIMITS.contactName, action: 'remove', why: 'bound for a username' },
];

/** An Instagram `messaging[]` event. */
export const INSTAGRAM_EVENT_LIMITS: readonly FieldLimit[] = [
  { path: ['message', 'text'], max: LIMITS.instagramTextBytes, unit: 'bytes', why: "Meta's limit for an Instagram message text" },
  { path: ['message', 'attachments', '*', 'payload', 'url'], max: LIMITS.url, action: 'remove', why: 'bound for a URL' },
  { path: ['message', 'attachments', '*', 'payload', 'title'], max: 300, why: 'bound for an attachment title' },
  { path: ['message', 'quick_reply', 'payload'], max: LIMITS.instagramPayload, why: "Meta's limit for a quick reply payload" },
  { path: ['message', 'reply_to', 'story', 'url'], max: LIMITS.url, action: 'remove', why: 'bound for a URL' },
  { path: ['message', 'reply_to', 'mid'], max: LIMITS.messageId, action: 'remove', why: 'bound for a message id' },
  { path: ['postback', 'payload'], max: LIMITS.instagramPayload, why: "Meta's limit for a postback payload" },
  { path: ['postback', 'title'], max: 300, why: 'bound for a button title' },
  { path: ['reaction', 'mid'], max: LIMITS.messageId, why: 'bound for a message id' },
];

// ---------------------------------------------------------------------------------------------
// Normalized items
// ---------------------------------------------------------------------------------------------

/** An ISO time, or the time of receipt (with a note) when outside Meta's plausible range. */
export function boundTime(iso: string, receivedAtMs: number, field: string, adjusted: string[]): string {
  const t = Date.parse(iso);
  if (Number.isFinite(t) && t >= META_EARLIEST_TIME && t <= receivedAtMs + MAX_CLOCK_SKEW_MS) return iso;
  const received = new Date(receivedAtMs).toISOString();
  adjusted.push(`${field} ${iso} is outside the plausible range (2009 to the time of receipt + ${MAX_CLOCK_SKEW_MS / 60_000} min): replaced by the time of receipt ${received}`);
  return received;
}

export type LimitResult<T> = { ok: true; value: T; adjusted: string[] } | { ok: false; reason: string };

/**
 * The last word on a normalized inbound message before it is signalled: identities over their
 * bounds drop it, text-like fields are cut, the time is bounded, and what was changed (here or
 * on the raw item) is recorded in `details.adjusted`.
 */
export function limitInbound(m: InboundMessage, receivedAtMs: number, earlier: readonly string[] = []): LimitResult<InboundMessage> {
  if (m.providerMessageId.length > LIMITS.messageId) {
    return { ok: false, reason: `message id is ${m.providerMessageId.length} characters, over the ${LIMITS.messageId} any Meta message id fits in` };
  }
  if (m.contactId.length > LIMITS.contactId) {
    return { ok: false, reason: `contact id is ${m.contactId.length} characters, over the ${LIMITS.contactId} any wa_id, business-scoped user id or IGSID fits in (Temporal refuses workflow ids over 1,000)` };
  }
  const adjusted = [...earlier];
  const out: InboundMessage = { ...m, providerMessageId: wellFormed(m.providerMessageId), contactId: wellFormed(m.contactId) };
  if (out.contactName !== undefined && out.contactName.length > LIMITS.contactName) {
    adjusted.push(`contactName cut from ${out.contactName.length} to ${LIMITS.contactName} characters (bound for a profile name)`);
    out.contactName = clipChars(out.contactName, LIMITS.contactName);
  } else if (out.contactName !== undefined) out.contactName = wellFormed(out.contactName);
  if (out.text.length > LIMITS.renderedText) {
    adjusted.push(`text cut from ${out.text.length} to ${LIMITS.renderedText} characters (bound for a rendered message)`);
    out.text = clipChars(out.text, LIMITS.renderedText);
  } else out.text = wellFormed(out.text);
  if (out.replyToProviderId !== undefined && out.replyToProviderId.length > LIMITS.messageId) {
    adjusted.push(`replyToProviderId removed: over ${LIMITS.messageId} characters`);
    delete out.replyToProviderId;
  }
  if (out.media && out.media.id.length > LIMITS.url) {
    adjusted.push(`media removed: its id is over ${LIMITS.url} characters`);
    delete out.media;
  }
  out.sentAt = boundTime(out.sentAt, receivedAtMs, 'sentAt', adjusted);
  if (adjusted.length > 0) out.details = { ...(out.details ?? {}), adjusted };
  const bytes = utf8Bytes(JSON.stringify(out));
  if (bytes > 2 * LIMITS.itemJsonBytes) return { ok: false, reason: `message is ${bytes} bytes of JSON, over the ${2 * LIMITS.itemJsonBytes}-byte bound` };
  return { ok: true, value: out, adjusted };
}
