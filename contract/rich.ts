/**
 * Rich outbound messages: the one contract for every kind beyond plain text (interactive buttons,
 * lists, call-to-action URLs, Instagram quick replies and cards, media, location, reactions), the
 * channels' documented limits, the checks against them (`richProblems`), the text rendering a
 * transcript and the LLM read (`richText`) and the documented downgrade of a kind a channel lacks
 * (`degrade`). Pure and workflow-safe (no zod, no Node APIs): the lead workflow degrades at send
 * time, the API checks before it asks the workflow, the send activities build Meta's payloads.
 *
 * Limits, from Meta's documentation:
 * - WhatsApp Cloud API, interactive reply buttons: 1–3 buttons, `reply.id` ≤ 256 characters,
 *   `reply.title` ≤ 20 characters (unique); body ≤ 1,024; header text ≤ 60; footer ≤ 60.
 * - interactive list: `action.button` ≤ 20; 1–10 sections, at most 10 rows in all; a section title
 *   ≤ 24 (required when there is more than one section); row id ≤ 200, title ≤ 24, description ≤ 72;
 *   body ≤ 4,096; header (text only) ≤ 60; footer ≤ 60.
 * - interactive cta_url: `display_text` ≤ 20, `url`; body ≤ 1,024; header text ≤ 60 (or media); footer ≤ 60.
 * - media: caption ≤ 1,024 (image, video, document; audio has none); `filename` for documents;
 *   supported types and sizes in MEDIA_RULES (checked by a link's file extension when it has one;
 *   the size when a caller knows it, e.g. the media library).
 * - location: latitude −90…90, longitude −180…180, name and address (no documented bound: 1,000).
 * - reaction: the message id it reacts to and one emoji (an empty emoji removes a reaction).
 * - Instagram quick replies: 1–13, title ≤ 20 characters, payload ≤ 1,000; the text ≤ 1,000 bytes.
 * - Instagram generic template: 1–10 elements, title ≤ 80, subtitle ≤ 80, ≤ 3 buttons each
 *   (web_url or postback, title ≤ 20), image_url and default_action optional.
 * - Instagram image attachment: `attachment: { type: 'image', payload: { url } }` (png, jpeg, gif, ≤ 8 MB).
 */
import type { Channel } from './vocabulary';

/** Where a media file comes from: a public https link, or a Meta media id uploaded before. */
export interface MediaSource {
  link?: string;
  /** A Meta media id (WhatsApp: the id `POST /{phone-number-id}/media` answered). */
  id?: string;
  /**
   * A Parley media library id (POST /v1/media). Resolved to a Meta media id per channel by the one
   * hook in activities/channels/rich.ts (`resolveLibraryMedia`) when the message is sent (WhatsApp: a
   * Meta media id uploaded on first use per channel; Instagram and web chat: a signed url).
   */
  libraryId?: string;
}

export const MEDIA_TYPES = ['image', 'document', 'video', 'audio'] as const;
export type MediaType = (typeof MEDIA_TYPES)[number];

export interface MediaMessage extends MediaSource {
  type: MediaType;
  /** Image, video, document (not audio). */
  caption?: string;
  /** Documents: the file name the user sees. */
  filename?: string;
}

/** An interactive header: text, or (buttons, cta_url) a media file. */
export interface InteractiveHeader {
  text?: string;
  media?: MediaSource & { type: Exclude<MediaType, 'audio'>; filename?: string };
}

export interface ReplyButton {
  id: string;
  title: string;
}

export interface ListRow {
  id: string;
  title: string;
  description?: string;
}

export interface ListSection {
  title?: string;
  rows: ListRow[];
}

export type CardButton = { type: 'web_url'; title: string; url: string } | { type: 'postback'; title: string; payload: string };

export interface Card {
  title: string;
  subtitle?: string;
  imageUrl?: string;
  /** Opened when the card itself is tapped. */
  defaultUrl?: string;
  buttons?: CardButton[];
}

export type InteractiveMessage =
  | { type: 'button'; body: string; header?: InteractiveHeader; footer?: string; buttons: ReplyButton[] }
  | { type: 'list'; body: string; header?: string; footer?: string; button: string; sections: ListSection[] }
  | { type: 'cta_url'; body: string; header?: InteractiveHeader; footer?: string; displayText: string; url: string }
  /** Instagram quick replies (`payload` is what the webhook returns). */
  | { type: 'quick_replies'; text: string; replies: { title: string; payload: string }[] }
  /** Instagram generic template (a carousel of cards). */
  | { type: 'generic'; cards: Card[] };

export interface LocationMessage {
  latitude: number;
  longitude: number;
  name?: string;
  address?: string;
}

export interface ReactionMessage {
  /** The provider id of the message reacted to (WhatsApp wamid). */
  messageId: string;
  emoji: string;
}

/** One rich outbound message. Plain JSON (it crosses Temporal boundaries and the messages table). */
export type RichMessage =
  | { kind: 'interactive'; interactive: InteractiveMessage }
  | { kind: 'media'; media: MediaMessage }
  | { kind: 'location'; location: LocationMessage }
  | { kind: 'reaction'; reaction: ReactionMessage };

export type RichKind = RichMessage['kind'];
/** `interactive:button`, `media:image`, `location`, … : what a channel supports, what the messages table's `type` says. */
export type RichForm = 'interactive:button' | 'interactive:list' | 'interactive:cta_url' | 'interactive:quick_replies' | 'interactive:generic' | `media:${MediaType}` | 'location' | 'reaction';

export function richForm(m: RichMessage): RichForm {
  switch (m.kind) {
    case 'interactive':
      return `interactive:${m.interactive.type}`;
    case 'media':
      return `media:${m.media.type}`;
    default:
      return m.kind;
  }
}

/** Which forms each channel sends natively; anything else is degraded (see `degrade`). */
export const CHANNEL_FORMS: Record<Channel, readonly RichForm[]> = {
  whatsapp: ['interactive:button', 'interactive:list', 'interactive:cta_url', 'media:image', 'media:document', 'media:video', 'media:audio', 'location', 'reaction'],
  instagram: ['interactive:quick_replies', 'interactive:generic', 'media:image'],
  webchat: ['interactive:button', 'interactive:list', 'media:image'],
};

export const RICH_LIMITS = {
  interactiveBody: 1024,
  listBody: 4096,
  headerText: 60,
  footer: 60,
  buttons: 3,
  buttonId: 256,
  buttonTitle: 20,
  listButton: 20,
  listSections: 10,
  listRows: 10,
  listSectionTitle: 24,
  listRowId: 200,
  listRowTitle: 24,
  listRowDescription: 72,
  ctaDisplayText: 20,
  url: 2000,
  caption: 1024,
  filename: 240,
  locationLabel: 1000,
  reactionMessageId: 256,
  /** One emoji: a few code points (flags, skin tones, ZWJ sequences). */
  emoji: 16,
  quickReplies: 13,
  quickReplyTitle: 20,
  quickReplyPayload: 1000,
  instagramTextBytes: 1000,
  cards: 10,
  cardTitle: 80,
  cardSubtitle: 80,
  cardButtons: 3,
  cardButtonTitle: 20,
  /** Web chat renders up to this many buttons (no provider limit; kept readable). */
  webchatButtons: 13,
} as const;

/**
 * Meta's supported media types and sizes (WhatsApp Cloud API "Supported media types"; Instagram:
 * image png/jpeg/gif ≤ 8 MB). Extensions are checked on a link's path when it has one.
 */
export const MEDIA_RULES: Record<MediaType, { extensions: readonly string[]; mimeTypes: readonly string[]; maxBytes: number }> = {
  image: { extensions: ['jpg', 'jpeg', 'png'], mimeTypes: ['image/jpeg', 'image/png'], maxBytes: 5 * 1024 * 1024 },
  video: { extensions: ['mp4', '3gp', '3gpp'], mimeTypes: ['video/mp4', 'video/3gpp'], maxBytes: 16 * 1024 * 1024 },
  audio: { extensions: ['aac', 'amr', 'mp3', 'm4a', 'ogg', 'opus'], mimeTypes: ['audio/aac', 'audio/amr', 'audio/mpeg', 'audio/mp4', 'audio/ogg'], maxBytes: 16 * 1024 * 1024 },
  document: {
    extensions: ['txt', 'pdf', 'doc', 'docx', 'xls', 'xlsx', 'ppt', 'pptx'],
    mimeTypes: [
      'text/plain',
      'application/pdf',
      'application/msword',
      'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
      'application/vnd.ms-excel',
      'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
      'application/vnd.ms-powerpoint',
      'application/vnd.openxmlformats-officedocument.presentationml.presentation',
    ],
    maxBytes: 100 * 1024 * 1024,
  },
};
export const INSTAGRAM_IMAGE_RULES = { extensions: ['jpg', 'jpeg', 'png', 'gif'], maxBytes: 8 * 1024 * 1024 } as const;

/** Whether a media file of this MIME type and size may go out as `type` (the media library's check). */
export function mediaFileProblem(type: MediaType, file: { mimeType: string; bytes: number }): string | undefined {
  const rule = MEDIA_RULES[type];
  if (!rule.mimeTypes.includes(file.mimeType.toLowerCase())) return `${type}: type ${file.mimeType} is not supported (allowed: ${rule.mimeTypes.join(', ')})`;
  if (file.bytes > rule.maxBytes) return `${type}: ${file.bytes} bytes is over Meta's limit of ${rule.maxBytes} bytes`;
  return undefined;
}

/** One broken limit: where (a dotted path under the message) and what. */
export interface RichProblem {
  path: string;
  message: string;
}

function utf8Bytes(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/** The file extension of a link's path (lower case), if it has one. */
function linkExtension(link: string): string | undefined {
  const path = link.replace(/[?#].*$/, '');
  const m = /\.([A-Za-z0-9]{1,5})$/.exec(path.slice(path.lastIndexOf('/') + 1));
  return m ? m[1]!.toLowerCase() : undefined;
}

class Checker {
  readonly problems: RichProblem[] = [];
  max(path: string, value: string | undefined, max: number, what: string): void {
    if (value !== undefined && value.length > max) this.problems.push({ path, message: `${what} is ${value.length} characters; the limit is ${max}` });
  }
  required(path: string, value: string | undefined, what: string): boolean {
    if (value === undefined || value.trim() === '') {
      this.problems.push({ path, message: `${what} is required` });
      return false;
    }
    return true;
  }
  count(path: string, n: number, min: number, max: number, what: string): void {
    if (n < min || n > max) this.problems.push({ path, message: `${n} ${what}; allowed ${min === max ? min : `${min} to ${max}`}` });
  }
  unique(path: string, values: string[], what: string): void {
    const seen = new Set<string>();
    for (const v of values) {
      if (seen.has(v)) this.problems.push({ path, message: `${what} "${v}" appears twice; each must be unique` });
      seen.add(v);
    }
  }
  url(path: string, value: string | undefined, what: string): void {
    if (value === undefined) return;
    if (!/^https?:\/\/[^\s/]+\S*$/i.test(value)) this.problems.push({ path, message: `${what} must be an http(s) URL` });
    this.max(path, value, RICH_LIMITS.url, what);
  }
  add(path: string, message: string): void {
    this.problems.push({ path, message });
  }
}

function checkSource(c: Checker, path: string, m: MediaSource, type: MediaType, channel: Channel): void {
  const given = [m.link, m.id, m.libraryId].filter((x) => x !== undefined).length;
  if (given !== 1) c.add(path, 'give exactly one of link, id, libraryId');
  if (m.link !== undefined) {
    c.url(`${path}.link`, m.link, 'link');
    const ext = linkExtension(m.link);
    const allowed = channel === 'instagram' ? INSTAGRAM_IMAGE_RULES.extensions : MEDIA_RULES[type].extensions;
    if (ext && /^[a-z]/.test(ext) && !allowed.includes(ext) && (channel !== 'webchat' || type === 'image')) {
      c.add(`${path}.link`, `a ${type} of type .${ext} is not supported on ${channel} (allowed: ${allowed.join(', ')})`);
    }
  }
  if (m.id !== undefined) {
    if (!/^\d{1,40}$/.test(m.id)) c.add(`${path}.id`, 'id must be a Meta media id (digits)');
    if (channel !== 'whatsapp') c.add(`${path}.id`, `a Meta media id can only be sent on WhatsApp; give a link on ${channel}`);
  }
}

/**
 * Every limit `message` breaks when sent natively on `channel`; [] when it fits. A form the channel
 * lacks is not a problem here (it degrades): call with the degraded message to check what goes out.
 */
export function richProblems(message: RichMessage, channel: Channel): RichProblem[] {
  const c = new Checker();
  const L = RICH_LIMITS;
  switch (message.kind) {
    case 'interactive': {
      const i = message.interactive;
      const p = 'interactive';
      switch (i.type) {
        case 'button': {
          if (c.required(`${p}.body`, i.body, 'body')) c.max(`${p}.body`, i.body, L.interactiveBody, 'body');
          c.max(`${p}.footer`, i.footer, L.footer, 'footer');
          checkHeader(c, `${p}.header`, i.header, channel);
          c.count(`${p}.buttons`, i.buttons.length, 1, channel === 'webchat' ? L.webchatButtons : L.buttons, 'buttons');
          i.buttons.forEach((b, n) => {
            if (c.required(`${p}.buttons.${n}.id`, b.id, 'button id')) c.max(`${p}.buttons.${n}.id`, b.id, L.buttonId, 'button id');
            if (c.required(`${p}.buttons.${n}.title`, b.title, 'button title')) c.max(`${p}.buttons.${n}.title`, b.title, L.buttonTitle, 'button title');
          });
          c.unique(`${p}.buttons`, i.buttons.map((b) => b.id), 'button id');
          c.unique(`${p}.buttons`, i.buttons.map((b) => b.title), 'button title');
          break;
        }
        case 'list': {
          if (c.required(`${p}.body`, i.body, 'body')) c.max(`${p}.body`, i.body, L.listBody, 'body');
          c.max(`${p}.header`, i.header, L.headerText, 'header');
          c.max(`${p}.footer`, i.footer, L.footer, 'footer');
          if (c.required(`${p}.button`, i.button, 'button label')) c.max(`${p}.button`, i.button, L.listButton, 'button label');
          c.count(`${p}.sections`, i.sections.length, 1, L.listSections, 'sections');
          const rows = i.sections.flatMap((s) => s.rows);
          c.count(`${p}.sections`, rows.length, 1, L.listRows, 'rows in all sections');
          i.sections.forEach((s, n) => {
            const sp = `${p}.sections.${n}`;
            if (i.sections.length > 1) c.required(`${sp}.title`, s.title, 'a section title (more than one section)');
            c.max(`${sp}.title`, s.title, L.listSectionTitle, 'section title');
            if (s.rows.length === 0) c.add(`${sp}.rows`, 'a section needs at least one row');
            s.rows.forEach((r, k) => {
              if (c.required(`${sp}.rows.${k}.id`, r.id, 'row id')) c.max(`${sp}.rows.${k}.id`, r.id, L.listRowId, 'row id');
              if (c.required(`${sp}.rows.${k}.title`, r.title, 'row title')) c.max(`${sp}.rows.${k}.title`, r.title, L.listRowTitle, 'row title');
              c.max(`${sp}.rows.${k}.description`, r.description, L.listRowDescription, 'row description');
            });
          });
          c.unique(`${p}.sections`, rows.map((r) => r.id), 'row id');
          break;
        }
        case 'cta_url': {
          if (c.required(`${p}.body`, i.body, 'body')) c.max(`${p}.body`, i.body, L.interactiveBody, 'body');
          c.max(`${p}.footer`, i.footer, L.footer, 'footer');
          checkHeader(c, `${p}.header`, i.header, channel);
          if (c.required(`${p}.displayText`, i.displayText, 'displayText')) c.max(`${p}.displayText`, i.displayText, L.ctaDisplayText, 'displayText');
          if (c.required(`${p}.url`, i.url, 'url')) c.url(`${p}.url`, i.url, 'url');
          break;
        }
        case 'quick_replies': {
          if (c.required(`${p}.text`, i.text, 'text') && utf8Bytes(i.text) > L.instagramTextBytes) c.add(`${p}.text`, `text is ${utf8Bytes(i.text)} bytes; the limit is ${L.instagramTextBytes} bytes of UTF-8`);
          c.count(`${p}.replies`, i.replies.length, 1, L.quickReplies, 'quick replies');
          i.replies.forEach((r, n) => {
            if (c.required(`${p}.replies.${n}.title`, r.title, 'quick reply title')) c.max(`${p}.replies.${n}.title`, r.title, L.quickReplyTitle, 'quick reply title');
            if (c.required(`${p}.replies.${n}.payload`, r.payload, 'quick reply payload')) c.max(`${p}.replies.${n}.payload`, r.payload, L.quickReplyPayload, 'quick reply payload');
          });
          break;
        }
        case 'generic': {
          c.count(`${p}.cards`, i.cards.length, 1, L.cards, 'cards');
          i.cards.forEach((card, n) => {
            const cp = `${p}.cards.${n}`;
            if (c.required(`${cp}.title`, card.title, 'card title')) c.max(`${cp}.title`, card.title, L.cardTitle, 'card title');
            c.max(`${cp}.subtitle`, card.subtitle, L.cardSubtitle, 'card subtitle');
            c.url(`${cp}.imageUrl`, card.imageUrl, 'imageUrl');
            c.url(`${cp}.defaultUrl`, card.defaultUrl, 'defaultUrl');
            const buttons = card.buttons ?? [];
            c.count(`${cp}.buttons`, buttons.length, 0, L.cardButtons, 'card buttons');
            buttons.forEach((b, k) => {
              if (c.required(`${cp}.buttons.${k}.title`, b.title, 'card button title')) c.max(`${cp}.buttons.${k}.title`, b.title, L.cardButtonTitle, 'card button title');
              if (b.type === 'web_url') {
                if (c.required(`${cp}.buttons.${k}.url`, b.url, 'url')) c.url(`${cp}.buttons.${k}.url`, b.url, 'url');
              } else if (c.required(`${cp}.buttons.${k}.payload`, b.payload, 'payload')) c.max(`${cp}.buttons.${k}.payload`, b.payload, L.quickReplyPayload, 'payload');
            });
          });
          break;
        }
      }
      break;
    }
    case 'media': {
      const m = message.media;
      checkSource(c, 'media', m, m.type, channel);
      if (m.type === 'audio' && m.caption !== undefined) c.add('media.caption', 'audio has no caption');
      c.max('media.caption', m.caption, L.caption, 'caption');
      if (m.filename !== undefined && m.type !== 'document') c.add('media.filename', 'a filename is for documents only');
      c.max('media.filename', m.filename, L.filename, 'filename');
      break;
    }
    case 'location': {
      const l = message.location;
      if (!(Number.isFinite(l.latitude) && l.latitude >= -90 && l.latitude <= 90)) c.add('location.latitude', 'latitude must be between -90 and 90');
      if (!(Number.isFinite(l.longitude) && l.longitude >= -180 && l.longitude <= 180)) c.add('location.longitude', 'longitude must be between -180 and 180');
      c.max('location.name', l.name, L.locationLabel, 'name');
      c.max('location.address', l.address, L.locationLabel, 'address');
      break;
    }
    case 'reaction': {
      const r = message.reaction;
      if (c.required('reaction.messageId', r.messageId, 'messageId')) c.max('reaction.messageId', r.messageId, L.reactionMessageId, 'messageId');
      if (c.required('reaction.emoji', r.emoji, 'emoji')) c.max('reaction.emoji', r.emoji, L.emoji, 'emoji');
      break;
    }
  }
  return c.problems;
}

function checkHeader(c: Checker, path: string, h: InteractiveHeader | undefined, channel: Channel): void {
  if (!h) return;
  if ((h.text === undefined) === (h.media === undefined)) c.add(path, 'a header is text or media, exactly one');
  c.max(`${path}.text`, h.text, RICH_LIMITS.headerText, 'header text');
  if (h.media) checkSource(c, `${path}.media`, h.media, h.media.type, channel);
}

/** The media library files a message names (`libraryId`), with where and as what: the API checks each exists and fits. */
export function libraryMediaRefs(message: RichMessage): { path: string; libraryId: string; type: MediaType }[] {
  if (message.kind === 'media' && message.media.libraryId !== undefined) return [{ path: 'media.libraryId', libraryId: message.media.libraryId, type: message.media.type }];
  if (message.kind === 'interactive' && (message.interactive.type === 'button' || message.interactive.type === 'cta_url')) {
    const m = message.interactive.header?.media;
    if (m?.libraryId !== undefined) return [{ path: 'interactive.header.media.libraryId', libraryId: m.libraryId, type: m.type }];
  }
  return [];
}

// ------------------------------------------------------------------------------ text renderings

function lines(...parts: (string | undefined | false)[]): string {
  return parts.filter((p): p is string => typeof p === 'string' && p !== '').join('\n');
}

function mediaLabel(m: MediaMessage): string {
  return `[${m.type}${m.filename ? ` ${m.filename}` : ''}]`;
}

/**
 * How a rich message reads as text: the transcript's body, what the LLM sees of our earlier
 * messages, and (via `degrade`) what a channel without the kind receives. Options are numbered
 * so the user can answer with the number or the title.
 */
export function richText(message: RichMessage): string {
  switch (message.kind) {
    case 'interactive': {
      const i = message.interactive;
      switch (i.type) {
        case 'button':
          return lines(i.header?.text, i.body, i.buttons.map((b, n) => `${n + 1}. ${b.title}`).join('\n'), i.footer);
        case 'list': {
          let n = 0;
          const sections = i.sections.map((s) => lines(s.title, s.rows.map((r) => `${++n}. ${r.title}${r.description ? ` — ${r.description}` : ''}`).join('\n'))).join('\n');
          return lines(i.header, i.body, sections, i.footer);
        }
        case 'cta_url':
          return lines(i.header?.text, i.body, `${i.displayText}: ${i.url}`, i.footer);
        case 'quick_replies':
          return lines(i.text, i.replies.map((r, n) => `${n + 1}. ${r.title}`).join('\n'));
        case 'generic':
          return i.cards
            .map((card, n) =>
              lines(
                `${n + 1}. ${card.title}`,
                card.subtitle,
                card.defaultUrl,
                ...(card.buttons ?? []).map((b) => (b.type === 'web_url' ? `${b.title}: ${b.url}` : `- ${b.title}`)),
              ),
            )
            .join('\n\n');
      }
      break;
    }
    case 'media': {
      const m = message.media;
      return lines(m.caption ?? mediaLabel(m), m.link);
    }
    case 'location': {
      const l = message.location;
      return lines([l.name, l.address].filter(Boolean).join(', ') || undefined, `https://maps.google.com/?q=${l.latitude},${l.longitude}`);
    }
    case 'reaction':
      return message.reaction.emoji;
  }
}

/** The transcript's body of a rich message (the messages table): its text rendering, marked with its form when it has no words of its own. */
export function richTranscript(message: RichMessage): string {
  if (message.kind === 'media' && !message.media.caption) return `${mediaLabel(message.media)}${message.media.link ? ` ${message.media.link}` : ''}`;
  if (message.kind === 'reaction') return `[reaction ${message.reaction.emoji} to ${message.reaction.messageId}]`;
  return richText(message);
}

/** What goes out on a channel: the message itself, or text. */
export type ChannelMessage = { kind: 'text'; text: string; degradedFrom: RichForm } | { kind: 'rich'; message: RichMessage; convertedFrom?: RichForm };

/**
 * The message as `channel` can send it. Native forms go out as they are. Otherwise, in order:
 * - reply buttons on Instagram → quick replies (same titles, ids as payloads) when they have no
 *   header or footer and the body fits Instagram's 1,000 bytes;
 * - quick replies on WhatsApp → reply buttons (≤ 3) or a list (≤ 10, button label "Options");
 *   on web chat → buttons;
 * - a list on Instagram → quick replies when it has ≤ 13 rows whose titles fit 20 characters
 *   and its header, body and footer fit 1,000 bytes;
 * - anything else → text (`richText`): options numbered one per line, a URL button as
 *   "label: url", a location as its name/address and a maps link, a medium as its caption and
 *   link, a reaction as the emoji alone; text over Instagram's 1,000 bytes is cut by the send.
 */
export function degrade(message: RichMessage, channel: Channel): ChannelMessage {
  const form = richForm(message);
  if (CHANNEL_FORMS[channel].includes(form) && !(message.kind === 'media' && message.media.id !== undefined && channel !== 'whatsapp')) return { kind: 'rich', message };
  if (message.kind === 'interactive') {
    const i = message.interactive;
    if (i.type === 'button' && channel === 'instagram' && !i.header && !i.footer && utf8Bytes(i.body) <= RICH_LIMITS.instagramTextBytes) {
      return { kind: 'rich', convertedFrom: form, message: { kind: 'interactive', interactive: { type: 'quick_replies', text: i.body, replies: i.buttons.map((b) => ({ title: b.title, payload: b.id })) } } };
    }
    if (i.type === 'quick_replies' && channel !== 'instagram') {
      const buttons = i.replies.map((r) => ({ id: r.payload, title: r.title }));
      if (channel === 'webchat' || buttons.length <= RICH_LIMITS.buttons) return { kind: 'rich', convertedFrom: form, message: { kind: 'interactive', interactive: { type: 'button', body: i.text, buttons } } };
      if (buttons.length <= RICH_LIMITS.listRows && buttons.every((b) => b.id.length <= RICH_LIMITS.listRowId)) {
        return { kind: 'rich', convertedFrom: form, message: { kind: 'interactive', interactive: { type: 'list', body: i.text, button: 'Options', sections: [{ rows: buttons }] } } };
      }
    }
    if (i.type === 'list' && channel === 'instagram') {
      const rows = i.sections.flatMap((s) => s.rows);
      const text = lines(i.header, i.body, i.footer);
      if (rows.length <= RICH_LIMITS.quickReplies && rows.every((r) => r.title.length <= RICH_LIMITS.quickReplyTitle) && utf8Bytes(text) <= RICH_LIMITS.instagramTextBytes) {
        return { kind: 'rich', convertedFrom: form, message: { kind: 'interactive', interactive: { type: 'quick_replies', text, replies: rows.map((r) => ({ title: r.title, payload: r.id })) } } };
      }
    }
  }
  return { kind: 'text', text: richText(message), degradedFrom: form };
}

/** What goes out on `channel` for `message` (`degrade`): the text the transcript and the LLM read, and the rich message when the channel sends one (native or converted). */
export function channelForm(message: RichMessage, channel: Channel): { text: string; rich?: RichMessage } {
  const out = degrade(message, channel);
  return out.kind === 'text' ? { text: out.text } : { text: richText(out.message), rich: out.message };
}

/**
 * The limits `message` breaks on `channel` as it would go out there (after `degrade`): the native
 * (or converted) message's limits, or, degraded to text, that some text is left. The API answers
 * 400 with these; a sequence step is checked for every channel it may run on.
 */
export function channelProblems(message: RichMessage, channel: Channel): RichProblem[] {
  const out = degrade(message, channel);
  if (out.kind === 'rich') {
    const problems = richProblems(out.message, channel);
    return out.convertedFrom ? problems.map((p) => ({ path: p.path, message: `${p.message} (sent as ${richForm(out.message)} on ${channel})` })) : problems;
  }
  return out.text.trim() === '' ? [{ path: message.kind, message: `nothing to send on ${channel}: its text rendering is empty` }] : [];
}
