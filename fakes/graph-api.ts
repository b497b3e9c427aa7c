/**
 * Fake Meta WhatsApp Cloud API (Graph API): a real local HTTP server that speaks the
 * `POST /:version/:phoneNumberId/messages` protocol, validates bodies the way Meta does and
 * answers with Meta's success and error shapes. Used by integration tests, the benchmark and
 * `--simulate` mode. It never logs anything.
 *
 * The same endpoint speaks the Instagram Messaging send API (`POST /:version/:igAccountId/messages`
 * with `{ recipient: { id }, message: { text }, messaging_type, tag? }` → `{ recipient_id, message_id }`):
 * a body without `messaging_product` is an Instagram send. Those are recorded in `requests`
 * with `channel: 'instagram'` and `to` = the recipient's IGSID.
 *
 * Control endpoints (so it can run as its own process, see fakes/main.ts):
 *   GET    /healthz               -> { ok: true }
 *   GET    /__fake/requests       -> { requests: GraphRequestRecord[] }
 *   GET    /__fake/sent           -> { requests: GraphRequestRecord[] }  (sentMessages())
 *   DELETE /__fake/requests       -> clears the request log
 *   POST   /__fake/errors         body GraphErrorRule ("times": "Infinity" or -1 for forever)
 *   DELETE /__fake/errors         -> clears injected error rules
 *   POST   /__fake/delay          body { ms }
 *   POST   /__fake/tokens         body { tokens: string[] | null }
 *   POST   /__fake/reset          -> reset()
 *   GET    /__fake/media/:mediaId -> the media bytes (needs a bearer, like Meta's lookaside URLs)
 *   GET    /__fake/ig-cdn/:mediaId -> the media bytes without a bearer (Instagram attachment CDN urls)
 *   GET    /:version/:wabaId/message_templates?limit=&after= -> the account's templates (setTemplates), paged like
 *          Meta: { data, paging: { cursors: { before, after }, next? } } (default 25 a page; the owner check as below)
 *   PUT    /__fake/templates/:wabaId  body { templates: FakeMessageTemplate[] | null, maxPageSize? } -> setTemplates()
 *   POST   /__fake/templates/:wabaId/events body { name, language, event? | quality? | category?, reason?,
 *          deliverTo?, appSecret? } -> { webhook } the template webhook Meta would send for that change; with
 *          deliverTo (a Parley /webhooks/whatsapp url) and appSecret, also POSTs it signed -> { webhook, delivered: status }
 *   POST   /:version/:phoneNumberId/media  multipart (messaging_product=whatsapp, type, file) -> { id } (Meta's upload
 *          answer); the id then serves the bytes through GET /:version/:mediaId until expireMedia(id)
 *   GET    /:version/:accountId?fields=... -> a WhatsApp phone number or Instagram account the token can read
 *          (any valid token reads any id unless setAccountOwner names its owners; others get code 100 / subcode 33)
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import type { AddressInfo } from 'node:net';
import { whatsAppTemplateCategoryWebhook, whatsAppTemplateQualityWebhook, whatsAppTemplateStatusWebhook } from './meta-webhooks';

/** A message template as the Graph API lists it (GET /<WABA_ID>/message_templates). */
export interface FakeMessageTemplate {
  id: string;
  name: string;
  language: string;
  status: string;
  category: string;
  components: Record<string, unknown>[];
  parameter_format?: 'POSITIONAL' | 'NAMED';
  quality_score?: { score: string };
  rejected_reason?: string;
}

export interface GraphRequestRecord {
  at: string;
  method: string;
  path: string;
  phoneNumberId: string;
  /** Sends only: which API the body spoke ('instagram' = Instagram Messaging send API). */
  channel?: 'whatsapp' | 'instagram';
  /** Sends only: the recipient (WhatsApp `to` or `recipient`, Instagram `recipient.id`). */
  to?: string;
  /**
   * WhatsApp sends only: how the body addressed the user: `to` (a phone number) or `recipient`
   * (a business-scoped user id or parent BSUID; `to` wins when a body has both, as at Meta).
   */
  recipientForm?: 'to' | 'recipient';
  authorization?: string;
  body: unknown;
  response: { status: number; body: unknown };
}

export interface GraphErrorRule {
  code: number;
  httpStatus?: number;
  subcode?: number;
  message?: string;
  /** How many matching requests fail; default 1. `Infinity` allowed. */
  times?: number;
  phoneNumberId?: string;
  to?: string;
  /**
   * Which requests the rule hits: user-visible message sends (default), mark-as-read/typing
   * requests, or any request to the messages endpoint; `upload`: media uploads
   * (`POST /:phoneNumberId/media`) only.
   */
  kind?: 'message' | 'read' | 'any' | 'upload';
  /** Goes to `error.error_data.details`. */
  details?: string;
}

export interface FakeGraphApi {
  /** e.g. http://127.0.0.1:54321 (no trailing slash) */
  url: string;
  /** Every request to the send endpoint, in order. */
  requests: GraphRequestRecord[];
  /** Media lookups and downloads (`GET /:version/:mediaId`, `GET /__fake/media/:mediaId`). */
  mediaRequests: GraphRequestRecord[];
  /**
   * Media uploads (`POST /:version/:phoneNumberId/media`), in order; `body` is
   * `{ messaging_product, type, filename, fileType, size, sha256 }` of the multipart form.
   */
  uploadRequests: GraphRequestRecord[];
  /** Forget an uploaded media id as Meta does after 30 days: lookups, and WhatsApp sends naming it, answer code 100 from then on. */
  expireMedia(mediaId: string): void;
  /** Whether an uploaded media id is known (uploaded and not expired). */
  hasUploadedMedia(mediaId: string): boolean;
  /** Successful sends of user-visible messages (excludes mark-as-read/typing). */
  sentMessages(): GraphRequestRecord[];
  failNext(rule: GraphErrorRule): void;
  /** Delay before every Graph API response (control endpoints are not delayed). */
  setDelay(ms: number): void;
  /** null = accept any bearer; otherwise other tokens -> error 190. */
  setValidTokens(tokens: string[] | null): void;
  /**
   * Only these tokens may read the account (phone number id / Instagram account id) through
   * `GET /:version/:id?fields=...`; null = any valid token (the default for every id).
   */
  setAccountOwner(accountId: string, tokens: string[] | null): void;
  /** Account reads (`GET /:version/:id?fields=...`), in order. */
  accountRequests: GraphRequestRecord[];
  /** Serve these bytes for a media id (otherwise a small deterministic PNG is served). */
  setMedia(mediaId: string, data: Buffer | string, mimeType?: string): void;
  /** An Instagram-attachment-like CDN url for a media id (served without a bearer). */
  igCdnUrl(mediaId: string): string;
  /** Successful Instagram sends (excludes sender actions). */
  instagramSends(): GraphRequestRecord[];
  /** The WhatsApp Business Account's templates, served paged by `GET /:version/:wabaId/message_templates` (null removes the account). */
  setTemplates(wabaId: string, templates: (Omit<FakeMessageTemplate, 'id'> & { id?: string })[] | null, opts?: { maxPageSize?: number }): FakeMessageTemplate[];
  /** The account's templates as the fake holds them now. */
  templates(wabaId: string): FakeMessageTemplate[];
  /**
   * Change a template's status as Meta would (REINSTATED = APPROVED again; FLAGGED, LOCKED, ...
   * change none) and return the `message_template_status_update` webhook body Meta sends for it.
   */
  templateStatusEvent(wabaId: string, name: string, language: string, event: string, reason?: string): unknown;
  /** Change a template's quality score; returns the `message_template_quality_update` webhook body. */
  templateQualityEvent(wabaId: string, name: string, language: string, score: string): unknown;
  /** Change a template's category; returns the `template_category_update` webhook body. */
  templateCategoryEvent(wabaId: string, name: string, language: string, category: string): unknown;
  /** Template list reads, in order. */
  templateRequests: GraphRequestRecord[];
  /** Clears requests, rules, delay (and custom media). Valid tokens are kept. */
  reset(): void;
  /** Resolves when >= n successful sends are recorded; rejects after timeoutMs (default 10000). */
  waitForSends(n: number, timeoutMs?: number): Promise<GraphRequestRecord[]>;
  close(): Promise<void>;
}

export interface FakeGraphApiOptions {
  port?: number;
  host?: string;
  delayMs?: number;
}

interface MetaErrorBody {
  error: {
    message: string;
    type: string;
    code: number;
    error_subcode?: number;
    error_data: { messaging_product: 'whatsapp' | 'instagram'; details: string };
    fbtrace_id: string;
  };
}

interface ActiveRule extends GraphErrorRule {
  remaining: number;
}

interface Waiter {
  n: number;
  resolve: (records: GraphRequestRecord[]) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

const MAX_BODY_BYTES = 10 * 1024 * 1024;
const MAX_TEXT_BODY = 4096;

const DEFAULT_MESSAGES: Record<number, string> = {
  1: 'An unknown error occurred',
  2: 'Service temporarily unavailable',
  4: '(#4) Application request limit reached',
  10: '(#10) Permission denied',
  100: '(#100) Invalid parameter',
  190: 'Invalid OAuth access token - Cannot parse access token',
  200: '(#200) Permissions error',
  368: '(#368) Temporarily blocked for policies violations',
  80007: '(#80007) Rate limit issues',
  130429: '(#130429) Rate limit hit',
  131000: '(#131000) Something went wrong',
  131005: '(#131005) Access denied',
  131008: '(#131008) Required parameter is missing',
  131009: '(#131009) Parameter value is not valid',
  131016: '(#131016) Service unavailable',
  131021: '(#131021) Recipient cannot be sender',
  131026: '(#131026) Message undeliverable',
  131030: '(#131030) Recipient phone number not in allowed list',
  131031: '(#131031) Business Account locked',
  131042: '(#131042) Business eligibility payment issue',
  131045: '(#131045) Incorrect certificate',
  131047: '(#131047) Re-engagement message',
  131048: '(#131048) Spam rate limit hit',
  131051: '(#131051) Unsupported message type',
  131052: '(#131052) Media download error',
  131053: '(#131053) Media upload error',
  131056: '(#131056) (Business Account, Consumer Account) pair rate limit hit',
  132000: '(#132000) Number of parameters does not match the expected number of params',
  132001: '(#132001) Template name does not exist in the translation',
  133010: '(#133010) Account not registered',
};

const MEDIA_TYPES = ['image', 'audio', 'video', 'document', 'sticker'] as const;
const MESSAGE_TYPES = new Set<string>([
  'text',
  'template',
  ...MEDIA_TYPES,
  'location',
  'contacts',
  'interactive',
  'reaction',
]);

/** 1x1 transparent PNG. */
const DEFAULT_MEDIA = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);

export function defaultGraphHttpStatus(code: number): number {
  if (code === 190) return 401;
  if (code === 4 || code === 80007 || code === 130429 || code === 131056) return 429;
  if (code === 1 || code === 2 || code === 131000) return 500;
  return 400;
}

function fbtraceId(): string {
  return randomBytes(16).toString('base64').replace(/[^A-Za-z0-9]/g, '').slice(0, 11).padEnd(11, 'A');
}

function metaError(code: number, opts: { message?: string; subcode?: number; details?: string; product?: 'whatsapp' | 'instagram' } = {}): MetaErrorBody {
  const message = opts.message ?? DEFAULT_MESSAGES[code] ?? `(#${code}) Error`;
  return {
    error: {
      message,
      type: 'OAuthException',
      code,
      ...(opts.subcode !== undefined ? { error_subcode: opts.subcode } : {}),
      error_data: { messaging_product: opts.product ?? 'whatsapp', details: opts.details ?? message.replace(/^\(#\d+\)\s*/, '') },
      fbtrace_id: fbtraceId(),
    },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonEmptyString(v: unknown): v is string {
  return typeof v === 'string' && v.trim() !== '';
}

function normalizeTimes(times: unknown): number {
  if (times === undefined || times === null) return 1;
  if (times === 'Infinity' || times === -1 || times === Infinity) return Infinity;
  const n = Number(times);
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 1;
}

/** A Graph API message send or a mark-as-read/typing request (Instagram: a sender action)? */
function isReadRequest(body: unknown): boolean {
  return isRecord(body) && ('status' in body || (isInstagramBody(body) && 'sender_action' in body));
}

/** The Instagram send API's body has a recipient and no messaging_product. */
function isInstagramBody(body: unknown): body is Record<string, unknown> {
  return isRecord(body) && body.messaging_product === undefined && 'recipient' in body;
}

/** The recipient of a send: WhatsApp `to` (phone number) or `recipient` (BSUID), Instagram `recipient.id`. */
function recipientOf(body: unknown): string | undefined {
  if (!isRecord(body)) return undefined;
  if (typeof body.to === 'string') return body.to;
  if (typeof body.recipient === 'string') return body.recipient;
  if (isRecord(body.recipient) && typeof body.recipient.id === 'string') return body.recipient.id;
  return undefined;
}

/** WhatsApp: which field addressed the user (`to` takes precedence over `recipient`, as at Meta). */
function whatsAppRecipientForm(body: unknown): 'to' | 'recipient' | undefined {
  if (!isRecord(body) || body.messaging_product === undefined || 'status' in body) return undefined;
  if (nonEmptyString(body.to)) return 'to';
  if (nonEmptyString(body.recipient)) return 'recipient';
  return undefined;
}

/** Meta's business-scoped user id (BSUID) and parent BSUID format: "US.13491208655302741918", "US.ENT.11815799212886844830". */
const BSUID = /^[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}$/;

const IG_MESSAGING_TYPES = new Set(['RESPONSE', 'UPDATE', 'MESSAGE_TAG']);
/** The only message tag Instagram Messaging supports. */
const IG_TAGS = new Set(['HUMAN_AGENT']);
const IG_SENDER_ACTIONS = new Set(['typing_on', 'typing_off', 'mark_seen', 'react', 'unreact']);
const IG_ATTACHMENT_TYPES = new Set(['image', 'video', 'audio', 'file', 'template', 'MEDIA_SHARE', 'like_heart']);
/** Instagram text messages: at most 1000 bytes of UTF-8. */
const IG_MAX_TEXT_BYTES = 1000;

/** Validate an Instagram send API body like Meta does; returns the problem, or null when valid. */
export function validateInstagramMessageBody(body: unknown): string | null {
  if (!isRecord(body)) return 'Request body must be a JSON object';
  if (!isRecord(body.recipient)) return 'The parameter recipient is required.';
  const r = body.recipient;
  if (!nonEmptyString(r.id) && !nonEmptyString(r.comment_id) && !nonEmptyString(r.post_id)) {
    return 'The parameter recipient[id] is required.';
  }
  if (body.sender_action !== undefined) {
    if (typeof body.sender_action !== 'string' || !IG_SENDER_ACTIONS.has(body.sender_action)) {
      return `Param sender_action must be one of {${[...IG_SENDER_ACTIONS].join(', ')}}`;
    }
    if (body.message !== undefined) return 'sender_action cannot be sent with message.';
    return null;
  }
  if (body.messaging_type !== undefined && (typeof body.messaging_type !== 'string' || !IG_MESSAGING_TYPES.has(body.messaging_type))) {
    return `Param messaging_type must be one of {${[...IG_MESSAGING_TYPES].join(', ')}}`;
  }
  if (body.messaging_type === 'MESSAGE_TAG') {
    if (body.tag === undefined) return 'The parameter tag is required when messaging_type is MESSAGE_TAG.';
    if (typeof body.tag !== 'string' || !IG_TAGS.has(body.tag)) return 'Param tag must be HUMAN_AGENT: it is the only tag Instagram supports.';
  } else if (body.tag !== undefined) {
    return 'Param tag is only allowed with messaging_type MESSAGE_TAG.';
  }
  if (!isRecord(body.message)) return 'The parameter message is required.';
  const m = body.message;
  const hasText = m.text !== undefined;
  const hasAttachment = m.attachment !== undefined || m.attachments !== undefined;
  if (hasText && hasAttachment) return 'message must have either text or an attachment, not both.';
  if (m.quick_replies !== undefined) {
    // Instagram quick replies: at most 13, a title of at most 20 characters (Meta's quick-replies page)
    if (!Array.isArray(m.quick_replies) || m.quick_replies.length === 0 || m.quick_replies.length > 13) return 'Param message[quick_replies] must have 1 to 13 quick replies.';
    for (const q of m.quick_replies) {
      if (!isRecord(q) || q.content_type !== 'text') return 'Param message[quick_replies][][content_type] must be text.';
      if (!nonEmptyString(q.title) || tooLong(q.title, 20)) return 'Param message[quick_replies][][title] must be 1 to 20 characters long.';
      if (!nonEmptyString(q.payload) || tooLong(q.payload, 1000)) return 'Param message[quick_replies][][payload] must be 1 to 1000 characters long.';
    }
  }
  if (hasText) {
    if (typeof m.text !== 'string' || m.text.length === 0) return 'The parameter message[text] is required.';
    if (Buffer.byteLength(m.text, 'utf8') > IG_MAX_TEXT_BYTES) return `Param message[text] must be at most ${IG_MAX_TEXT_BYTES} bytes (UTF-8).`;
    return null;
  }
  if (m.attachment !== undefined) {
    if (!isRecord(m.attachment) || typeof m.attachment.type !== 'string' || !IG_ATTACHMENT_TYPES.has(m.attachment.type)) {
      return `Param message[attachment][type] must be one of {${[...IG_ATTACHMENT_TYPES].join(', ')}}`;
    }
    const p = m.attachment.payload;
    if (m.attachment.type === 'image' && (!isRecord(p) || (!nonEmptyString(p.url) && !nonEmptyString(p.attachment_id)))) return 'Param message[attachment][payload][url] is required.';
    if (m.attachment.type === 'template' && isRecord(p) && p.template_type === 'generic') {
      // generic template: at most 10 elements, title and subtitle at most 80 characters, at most 3 buttons
      if (!Array.isArray(p.elements) || p.elements.length === 0 || p.elements.length > 10) return 'Param message[attachment][payload][elements] must have 1 to 10 elements.';
      for (const e of p.elements) {
        if (!isRecord(e) || !nonEmptyString(e.title) || tooLong(e.title, 80)) return 'Param elements[][title] must be 1 to 80 characters long.';
        if (tooLong(e.subtitle, 80)) return 'Param elements[][subtitle] must be at most 80 characters long.';
        if (e.buttons !== undefined && (!Array.isArray(e.buttons) || e.buttons.length > 3)) return 'Param elements[][buttons] must have at most 3 buttons.';
      }
    }
    return null;
  }
  if (m.attachments !== undefined) {
    if (!Array.isArray(m.attachments) || m.attachments.length === 0) return 'Param message[attachments] must be a non-empty array.';
    return null;
  }
  return 'message must have text or an attachment.';
}

const tooLong = (v: unknown, max: number): boolean => typeof v === 'string' && [...v].length > max;

/**
 * Meta's documented limits of reply-button, list and CTA URL messages (interactive-reply-buttons,
 * interactive-list and interactive-cta-url message pages); other interactive types pass.
 */
function validateInteractive(type: string, m: Record<string, unknown>, action: Record<string, unknown>): string | null {
  if (type !== 'button' && type !== 'list' && type !== 'cta_url') return null;
  if (!isRecord(m.body) || !nonEmptyString(m.body.text)) return 'The parameter interactive[body][text] is required.';
  if (tooLong(m.body.text, type === 'list' ? 4096 : 1024)) return `Param interactive[body][text] must be at most ${type === 'list' ? 4096 : 1024} characters long.`;
  if (isRecord(m.footer) && tooLong(m.footer.text, 60)) return 'Param interactive[footer][text] must be at most 60 characters long.';
  if (isRecord(m.header)) {
    if (m.header.type === 'text' && tooLong(m.header.text, 60)) return 'Param interactive[header][text] must be at most 60 characters long.';
    if (type === 'list' && m.header.type !== 'text') return 'Param interactive[header][type] must be text for a list message.';
  }
  if (type === 'button') {
    const buttons = action.buttons;
    if (!Array.isArray(buttons) || buttons.length < 1 || buttons.length > 3) return 'Param interactive[action][buttons] must have 1 to 3 buttons.';
    for (const b of buttons) {
      if (!isRecord(b) || b.type !== 'reply' || !isRecord(b.reply)) return 'Param interactive[action][buttons][][type] must be reply.';
      if (!nonEmptyString(b.reply.id) || tooLong(b.reply.id, 256)) return 'Param interactive[action][buttons][][reply][id] must be 1 to 256 characters long.';
      if (!nonEmptyString(b.reply.title) || tooLong(b.reply.title, 20)) return 'Param interactive[action][buttons][][reply][title] must be 1 to 20 characters long.';
    }
    return null;
  }
  if (type === 'list') {
    if (!nonEmptyString(action.button) || tooLong(action.button, 20)) return 'Param interactive[action][button] must be 1 to 20 characters long.';
    const sections = action.sections;
    if (!Array.isArray(sections) || sections.length < 1 || sections.length > 10) return 'Param interactive[action][sections] must have 1 to 10 sections.';
    let rows = 0;
    for (const sec of sections) {
      if (!isRecord(sec) || !Array.isArray(sec.rows) || sec.rows.length === 0) return 'Param interactive[action][sections][][rows] is required.';
      if (sections.length > 1 && !nonEmptyString(sec.title)) return 'Param interactive[action][sections][][title] is required with more than one section.';
      if (tooLong(sec.title, 24)) return 'Param interactive[action][sections][][title] must be at most 24 characters long.';
      for (const r of sec.rows) {
        rows += 1;
        if (!isRecord(r) || !nonEmptyString(r.id) || tooLong(r.id, 200)) return 'Param interactive[action][sections][][rows][][id] must be 1 to 200 characters long.';
        if (!nonEmptyString(r.title) || tooLong(r.title, 24)) return 'Param interactive[action][sections][][rows][][title] must be 1 to 24 characters long.';
        if (tooLong(r.description, 72)) return 'Param interactive[action][sections][][rows][][description] must be at most 72 characters long.';
      }
    }
    if (rows > 10) return 'Param interactive[action][sections] must have at most 10 rows in all.';
    return null;
  }
  if (action.name !== 'cta_url' || !isRecord(action.parameters)) return 'Param interactive[action][name] must be cta_url with parameters.';
  if (!nonEmptyString(action.parameters.display_text) || tooLong(action.parameters.display_text, 20)) return 'Param interactive[action][parameters][display_text] must be 1 to 20 characters long.';
  if (!nonEmptyString(action.parameters.url)) return 'The parameter interactive[action][parameters][url] is required.';
  return null;
}

/** Validate a messages-endpoint body like Meta does; returns the problem, or null when valid. */
export function validateGraphMessageBody(body: unknown): string | null {
  if (!isRecord(body)) return 'Request body must be a JSON object';
  if (body.messaging_product !== 'whatsapp') {
    return body.messaging_product === undefined
      ? 'The parameter messaging_product is required.'
      : 'Param messaging_product must be "whatsapp"';
  }
  if ('status' in body) {
    if (body.status !== 'read') return 'Param status must be "read"';
    if (!nonEmptyString(body.message_id)) return 'The parameter message_id is required.';
    if (body.typing_indicator !== undefined) {
      if (!isRecord(body.typing_indicator) || body.typing_indicator.type !== 'text') {
        return 'Param typing_indicator[type] must be "text"';
      }
    }
    return null;
  }
  if (body.recipient_type !== undefined && body.recipient_type !== 'individual' && body.recipient_type !== 'group') {
    return 'Param recipient_type must be one of {individual, group}';
  }
  // `to` takes a phone number, `recipient` a BSUID or parent BSUID; `to` wins when both are given
  if (!nonEmptyString(body.to)) {
    if (body.recipient === undefined) return 'The parameter to is required.';
    if (typeof body.recipient !== 'string' || !BSUID.test(body.recipient)) return 'Param recipient must be a business-scoped user ID.';
  }
  const type = body.type === undefined ? (isRecord(body.text) ? 'text' : undefined) : body.type;
  if (type === undefined) return 'The parameter type is required.';
  if (typeof type !== 'string' || !MESSAGE_TYPES.has(type)) return `Param type must be one of {${[...MESSAGE_TYPES].join(', ')}}`;
  const payload = body[type];
  if (!isRecord(payload)) return `The parameter ${type} is required.`;
  switch (type) {
    case 'text': {
      if (typeof payload.body !== 'string' || payload.body.length === 0) return 'The parameter text[body] is required.';
      if (payload.body.length > MAX_TEXT_BODY) return `Param text[body] must be at most ${MAX_TEXT_BODY} characters long.`;
      if (payload.preview_url !== undefined && typeof payload.preview_url !== 'boolean') {
        return 'Param text[preview_url] must be a boolean.';
      }
      return null;
    }
    case 'template': {
      if (!nonEmptyString(payload.name)) return 'The parameter template[name] is required.';
      if (!isRecord(payload.language) || !nonEmptyString(payload.language.code)) {
        return 'The parameter template[language][code] is required.';
      }
      if (payload.components !== undefined && !Array.isArray(payload.components)) {
        return 'Param template[components] must be an array.';
      }
      return null;
    }
    case 'image':
    case 'audio':
    case 'video':
    case 'document':
    case 'sticker': {
      if (!nonEmptyString(payload.id) && !nonEmptyString(payload.link)) return `Param ${type} must have an id or a link.`;
      if (typeof payload.caption === 'string' && payload.caption.length > 1024) {
        return `Param ${type}[caption] must be at most 1024 characters long.`;
      }
      return null;
    }
    case 'reaction': {
      if (!nonEmptyString(payload.message_id)) return 'The parameter reaction[message_id] is required.';
      if (typeof payload.emoji !== 'string') return 'The parameter reaction[emoji] is required.';
      return null;
    }
    case 'interactive': {
      if (!nonEmptyString(payload.type)) return 'The parameter interactive[type] is required.';
      if (!isRecord(payload.action)) return 'The parameter interactive[action] is required.';
      return validateInteractive(payload.type, payload, payload.action);
    }
    case 'location': {
      if (payload.latitude === undefined || payload.longitude === undefined) {
        return 'The parameters location[latitude] and location[longitude] are required.';
      }
      return null;
    }
    default:
      return null;
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.destroyed || res.writableEnded) return;
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=UTF-8',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

class BodyTooLarge extends Error {}

const MB = 1024 * 1024;
/** What Meta's upload endpoint takes, and how many bytes of each type (stickers: the animated limit). */
const UPLOAD_LIMITS: Record<string, number> = {
  'image/jpeg': 5 * MB,
  'image/png': 5 * MB,
  'image/webp': 500 * 1024,
  'video/mp4': 16 * MB,
  'video/3gpp': 16 * MB,
  'audio/aac': 16 * MB,
  'audio/amr': 16 * MB,
  'audio/mpeg': 16 * MB,
  'audio/mp4': 16 * MB,
  'audio/ogg': 16 * MB,
  'text/plain': 100 * MB,
  'application/pdf': 100 * MB,
  'application/msword': 100 * MB,
  'application/vnd.ms-excel': 100 * MB,
  'application/vnd.ms-powerpoint': 100 * MB,
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 100 * MB,
  'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet': 100 * MB,
  'application/vnd.openxmlformats-officedocument.presentationml.presentation': 100 * MB,
};

function readBody(req: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new BodyTooLarge('body too large'));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

type Parsed = { ok: true; value: unknown } | { ok: false; raw: string };

/** Meta accepts JSON and form-encoded bodies (nested values as JSON strings). */
function parseBody(raw: string, contentType: string | undefined): Parsed {
  if (raw.trim() === '') return { ok: true, value: {} };
  if (contentType?.includes('application/x-www-form-urlencoded')) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of new URLSearchParams(raw)) {
      const t = v.trim();
      if (t.startsWith('{') || t.startsWith('[')) {
        try {
          out[k] = JSON.parse(t);
          continue;
        } catch {
          /* keep as string */
        }
      }
      out[k] = v;
    }
    return { ok: true, value: out };
  }
  try {
    return { ok: true, value: JSON.parse(raw) as unknown };
  } catch {
    return { ok: false, raw };
  }
}

function formatUrl(host: string, port: number): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `http://${h}:${port}`;
}

function extractToken(req: http.IncomingMessage, url: URL): string | undefined {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1];
  }
  const q = url.searchParams.get('access_token');
  return q && q.trim() !== '' ? q : undefined;
}

export async function startFakeGraphApi(opts: FakeGraphApiOptions = {}): Promise<FakeGraphApi> {
  const host = opts.host ?? '127.0.0.1';
  let delayMs = Math.max(0, opts.delayMs ?? 0);
  let validTokens: Set<string> | null = null;
  let rules: ActiveRule[] = [];
  const media = new Map<string, { data: Buffer; mimeType: string }>();
  const waiters = new Set<Waiter>();
  const pendingTimers = new Set<NodeJS.Timeout>();
  let counter = 0;
  let closed = false;

  const requests: GraphRequestRecord[] = [];
  const mediaRequests: GraphRequestRecord[] = [];
  const uploadRequests: GraphRequestRecord[] = [];
  /** Uploaded media ids Meta still keeps, and the ones it has dropped. */
  const uploaded = new Set<string>();
  const expired = new Set<string>();
  const accountRequests: GraphRequestRecord[] = [];
  const accountOwners = new Map<string, Set<string>>();
  const messageTemplates = new Map<string, FakeMessageTemplate[]>();
  /** Per account: the most templates one page holds whatever `limit` asks (Meta caps pages too). */
  const templatePageCaps = new Map<string, number>();
  const templateRequests: GraphRequestRecord[] = [];
  let templateCounter = 0;
  const findTemplate = (wabaId: string, name: string, language: string): FakeMessageTemplate => {
    const t = (messageTemplates.get(wabaId) ?? []).find((x) => x.name === name && x.language === language);
    if (!t) throw new Error(`fake Graph API: no template ${name} (${language}) in account ${wabaId}`);
    return t;
  };

  const isSuccessfulSend = (r: GraphRequestRecord): boolean => r.response.status === 200 && !isReadRequest(r.body);
  const sentMessages = (): GraphRequestRecord[] => requests.filter(isSuccessfulSend);

  const notifyWaiters = (): void => {
    if (waiters.size === 0) return;
    const sent = sentMessages();
    for (const w of [...waiters]) {
      if (sent.length >= w.n) {
        clearTimeout(w.timer);
        waiters.delete(w);
        w.resolve(sent);
      }
    }
  };

  const sleep = (ms: number): Promise<void> =>
    ms <= 0
      ? Promise.resolve()
      : new Promise((resolve) => {
          const t = setTimeout(() => {
            pendingTimers.delete(t);
            resolve();
          }, ms);
          pendingTimers.add(t);
        });

  const newWamid = (to: string): string => {
    counter += 1;
    const counterBuf = Buffer.alloc(4);
    counterBuf.writeUInt32BE(counter);
    const raw = Buffer.concat([Buffer.from([0x1c, 0x18, 0x0b]), Buffer.from(to), Buffer.from([0x15, 0x02, 0x00]), counterBuf, randomBytes(9)]);
    return `wamid.${raw.toString('base64').replace(/[^A-Za-z0-9]/g, '')}`;
  };

  const newIgMid = (igAccountId: string): string => {
    counter += 1;
    const raw = `ig_message_item:1:IGMessageThread:${igAccountId}:${counter}${randomBytes(6).toString('hex')}`;
    return Buffer.from(raw).toString('base64').replace(/=+$/, '');
  };

  const tokenProblem = (token: string | undefined): MetaErrorBody | null => {
    if (token === undefined) return metaError(190, { message: 'Invalid OAuth access token - Cannot parse access token' });
    if (validTokens !== null && !validTokens.has(token)) {
      return metaError(190, {
        message: 'Error validating access token: The session is invalid because the user logged out.',
        subcode: 467,
      });
    }
    return null;
  };

  const takeRule = (phoneNumberId: string, body: unknown): ActiveRule | null => {
    const read = isReadRequest(body);
    const to = recipientOf(body);
    for (const rule of rules) {
      const kind = rule.kind ?? 'message';
      if (kind === 'upload') continue;
      if (kind === 'message' && read) continue;
      if (kind === 'read' && !read) continue;
      if (rule.phoneNumberId !== undefined && rule.phoneNumberId !== phoneNumberId) continue;
      if (rule.to !== undefined && rule.to !== to) continue;
      rule.remaining -= 1;
      if (rule.remaining <= 0) rules = rules.filter((r) => r !== rule);
      return rule;
    }
    return null;
  };

  const mediaFor = (mediaId: string): { data: Buffer; mimeType: string } =>
    media.get(mediaId) ?? { data: DEFAULT_MEDIA, mimeType: 'image/png' };

  let baseUrl = '';

  /** The parameter (`image['id']`, `interactive.header.image['id']`) of a WhatsApp send that names a media id this fake has dropped. */
  const droppedMediaParam = (body: unknown): string | undefined => {
    const b = body as Record<string, unknown> | null;
    if (!b || typeof b !== 'object') return undefined;
    const check = (holder: unknown, prefix: string): string | undefined => {
      if (!holder || typeof holder !== 'object') return undefined;
      for (const kind of ['image', 'video', 'audio', 'document', 'sticker']) {
        const id = ((holder as Record<string, unknown>)[kind] as { id?: unknown } | undefined)?.id;
        if (typeof id === 'string' && expired.has(id)) return `${prefix}${kind}['id']`;
      }
      return undefined;
    };
    return check(b, '') ?? check((b.interactive as { header?: unknown } | undefined)?.header, 'interactive.header.');
  };

  const handleSend = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    phoneNumberId: string,
  ): Promise<void> => {
    const at = new Date().toISOString();
    let raw: string;
    try {
      raw = await readBody(req);
    } catch (err) {
      const status = err instanceof BodyTooLarge ? 413 : 400;
      sendJson(res, status, metaError(100, { details: 'Request body could not be read' }));
      return;
    }
    const parsed = parseBody(raw, req.headers['content-type']);
    const body = parsed.ok ? parsed.value : parsed.raw;
    const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
    const instagram = isInstagramBody(body);
    const product = instagram ? ('instagram' as const) : ('whatsapp' as const);

    let status: number;
    let responseBody: unknown;
    const authError = tokenProblem(extractToken(req, url));
    if (authError) {
      status = 401;
      responseBody = authError;
    } else if (!parsed.ok) {
      status = 400;
      responseBody = metaError(100, { details: 'Request body is not valid JSON' });
    } else {
      const rule = takeRule(phoneNumberId, body);
      if (rule) {
        status = rule.httpStatus ?? defaultGraphHttpStatus(rule.code);
        responseBody = metaError(rule.code, { message: rule.message, subcode: rule.subcode, details: rule.details, product });
      } else {
        const problem = instagram ? validateInstagramMessageBody(body) : validateGraphMessageBody(body);
        const droppedMedia = instagram ? undefined : droppedMediaParam(body);
        if (problem !== null) {
          status = 400;
          responseBody = metaError(100, { details: problem, product });
        } else if (droppedMedia) {
          // a media id uploaded here and since dropped (expireMedia), as Meta answers an unknown media id in a send
          status = 400;
          responseBody = metaError(100, { details: `Param ${droppedMedia} is not a valid whatsapp business account media attachment ID`, product });
        } else if (instagram) {
          const recipientId = recipientOf(body) ?? '';
          status = 200;
          responseBody = isReadRequest(body) ? { recipient_id: recipientId } : { recipient_id: recipientId, message_id: newIgMid(phoneNumberId) };
        } else if (isReadRequest(body)) {
          status = 200;
          responseBody = { success: true };
        } else {
          const to = recipientOf(body) ?? '';
          status = 200;
          responseBody = {
            messaging_product: 'whatsapp',
            // a send to a BSUID answers with user_id instead of wa_id
            contacts: [whatsAppRecipientForm(body) === 'recipient' ? { input: to, user_id: to } : { input: to, wa_id: to }],
            messages: [{ id: newWamid(to) }],
          };
        }
      }
    }

    const record: GraphRequestRecord = {
      at,
      method: req.method ?? 'POST',
      path: url.pathname,
      phoneNumberId,
      channel: product,
      ...(recipientOf(body) !== undefined ? { to: recipientOf(body) } : {}),
      ...(whatsAppRecipientForm(body) !== undefined ? { recipientForm: whatsAppRecipientForm(body) } : {}),
      ...(authorization !== undefined ? { authorization } : {}),
      body,
      response: { status, body: responseBody },
    };
    await sleep(delayMs);
    requests.push(record);
    sendJson(res, status, responseBody);
    notifyWaiters();
  };

  const handleMediaInfo = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL, mediaId: string): Promise<void> => {
    const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
    const authError = tokenProblem(extractToken(req, url));
    let status = 200;
    let body: unknown;
    if (authError) {
      status = 401;
      body = authError;
    } else if (expired.has(mediaId)) {
      status = 400;
      body = metaError(100, {
        message: `Unsupported get request. Object with ID '${mediaId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
        subcode: 33,
      });
    } else {
      const m = mediaFor(mediaId);
      body = {
        messaging_product: 'whatsapp',
        url: `${baseUrl}/__fake/media/${encodeURIComponent(mediaId)}`,
        mime_type: m.mimeType,
        sha256: createHash('sha256').update(m.data).digest('hex'),
        file_size: m.data.length,
        id: mediaId,
      };
    }
    mediaRequests.push({
      at: new Date().toISOString(),
      method: 'GET',
      path: url.pathname,
      phoneNumberId: '',
      ...(authorization !== undefined ? { authorization } : {}),
      body: null,
      response: { status, body },
    });
    await sleep(delayMs);
    sendJson(res, status, body);
  };

  /**
   * `POST /{phone-number-id}/media`: Meta's media upload. multipart/form-data with
   * `messaging_product=whatsapp`, `type` (the MIME type) and `file`; answers `{ id }`. Checks
   * what Meta checks: the bearer, the three parts, a supported type, the file's size for its type.
   */
  const handleMediaUpload = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL, phoneNumberId: string): Promise<void> => {
    const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
    const authError = tokenProblem(extractToken(req, url));
    let status = 200;
    let body: unknown;
    let recorded: Record<string, unknown> = {};
    let form: FormData | undefined;
    try {
      form = await new Response(Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>, { headers: { 'content-type': String(req.headers['content-type'] ?? '') } }).formData();
    } catch {
      form = undefined;
    }
    const file = form?.get('file');
    const type = form?.get('type');
    const product = form?.get('messaging_product');
    let data: Buffer | undefined;
    if (file instanceof Blob) {
      data = Buffer.from(await file.arrayBuffer());
      recorded = {
        messaging_product: product ?? null,
        type: type ?? null,
        filename: (file as File).name ?? null,
        fileType: file.type || null,
        size: data.length,
        sha256: createHash('sha256').update(data).digest('hex'),
      };
    }
    const rule = rules.find((r) => r.kind === 'upload' && (r.phoneNumberId === undefined || r.phoneNumberId === phoneNumberId));
    if (authError) {
      status = 401;
      body = authError;
    } else if (rule) {
      rule.remaining -= 1;
      if (rule.remaining <= 0) rules = rules.filter((r) => r !== rule);
      status = rule.httpStatus ?? defaultGraphHttpStatus(rule.code);
      body = metaError(rule.code, { message: rule.message, subcode: rule.subcode, details: rule.details });
    } else if (!form) {
      status = 400;
      body = metaError(100, { details: 'The request body must be multipart/form-data' });
    } else if (product !== 'whatsapp') {
      status = 400;
      body = metaError(100, { message: '(#100) The parameter messaging_product is required.' });
    } else if (!data) {
      status = 400;
      body = metaError(100, { message: '(#100) The parameter file is required.' });
    } else if (typeof type !== 'string' || !(type in UPLOAD_LIMITS)) {
      status = 400;
      body = metaError(100, { message: `(#100) Param file must be a file with one of the following types: ${Object.keys(UPLOAD_LIMITS).join(', ')}. Received file of type '${String(type)}'.` });
    } else if (data.length > UPLOAD_LIMITS[type]!) {
      status = 400;
      body = metaError(131053, { message: '(#131053) Media upload error', details: `file of ${data.length} bytes is over the ${UPLOAD_LIMITS[type]} bytes allowed for ${type}` });
    } else {
      const id = String(1_000_000_000_000_000 + randomBytes(6).readUIntBE(0, 6));
      media.set(id, { data, mimeType: type });
      uploaded.add(id);
      body = { id };
    }
    uploadRequests.push({
      at: new Date().toISOString(),
      method: 'POST',
      path: url.pathname,
      phoneNumberId,
      ...(authorization !== undefined ? { authorization } : {}),
      body: recorded,
      response: { status, body },
    });
    await sleep(delayMs);
    sendJson(res, status, body);
  };

  /** `GET /{phone-number-id}` / `GET /{ig-account-id}` with `fields`: the object, if the token may read it. */
  const handleAccountRead = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL, accountId: string): Promise<void> => {
    const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
    const token = extractToken(req, url);
    const authError = tokenProblem(token);
    const owners = accountOwners.get(accountId);
    let status = 200;
    let body: unknown;
    if (authError) {
      status = 401;
      body = authError;
    } else if (owners && !owners.has(token ?? '')) {
      status = 400;
      body = metaError(100, {
        message: `Unsupported get request. Object with ID '${accountId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api`,
        subcode: 33,
      });
    } else {
      const fields = (url.searchParams.get('fields') ?? '').split(',').map((f) => f.trim());
      body = fields.includes('username')
        ? { id: accountId, username: `fake_business_${accountId.slice(-4)}` }
        : { id: accountId, display_phone_number: `+1 555-${accountId.slice(-7, -4) || '000'}-${accountId.slice(-4)}`, verified_name: 'Fake Business', quality_rating: 'GREEN' };
    }
    accountRequests.push({
      at: new Date().toISOString(),
      method: 'GET',
      path: url.pathname,
      phoneNumberId: accountId,
      ...(authorization !== undefined ? { authorization } : {}),
      body: null,
      response: { status, body },
    });
    await sleep(delayMs);
    sendJson(res, status, body);
  };

  /** `GET /{waba-id}/message_templates`: one page of the account's templates, Meta's paging shape. */
  const handleTemplateList = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL, wabaId: string): Promise<void> => {
    const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
    const token = extractToken(req, url);
    const authError = tokenProblem(token);
    const owners = accountOwners.get(wabaId);
    const list = messageTemplates.get(wabaId);
    let status = 200;
    let body: unknown;
    if (authError) {
      status = 401;
      body = authError;
    } else if ((owners && !owners.has(token ?? '')) || !list) {
      status = 400;
      body = metaError(100, {
        message: `Unsupported get request. Object with ID '${wabaId}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api`,
        subcode: 33,
      });
    } else {
      const limit = Math.min(Math.max(Number(url.searchParams.get('limit') ?? 25) || 25, 1), templatePageCaps.get(wabaId) ?? 1000);
      const afterRaw = url.searchParams.get('after');
      const start = afterRaw ? Number(Buffer.from(afterRaw, 'base64url').toString('utf8')) + 1 : 0;
      if (!Number.isInteger(start) || start < 0) {
        status = 400;
        body = metaError(100, { details: 'Invalid cursor' });
      } else {
        const page = list.slice(start, start + limit);
        const cursor = (i: number) => Buffer.from(String(i)).toString('base64url');
        const hasMore = start + limit < list.length;
        const nextQs = new URLSearchParams(url.searchParams);
        nextQs.set('after', cursor(start + page.length - 1));
        body = {
          data: page,
          ...(page.length > 0
            ? {
                paging: {
                  cursors: { before: cursor(start), after: cursor(start + page.length - 1) },
                  // like Meta: an absolute url on the Graph host (clients should page by cursor)
                  ...(hasMore ? { next: `https://graph.facebook.com${url.pathname}?${nextQs}` } : {}),
                },
              }
            : {}),
        };
      }
    }
    templateRequests.push({
      at: new Date().toISOString(),
      method: 'GET',
      path: `${url.pathname}${url.search}`,
      phoneNumberId: wabaId,
      ...(authorization !== undefined ? { authorization } : {}),
      body: null,
      response: { status, body },
    });
    await sleep(delayMs);
    sendJson(res, status, body);
  };

  const handleMediaDownload = async (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    url: URL,
    mediaId: string,
    opts: { public?: boolean } = {},
  ): Promise<void> => {
    const authorization = typeof req.headers.authorization === 'string' ? req.headers.authorization : undefined;
    const authError = opts.public ? null : tokenProblem(extractToken(req, url));
    const m = mediaFor(mediaId);
    mediaRequests.push({
      at: new Date().toISOString(),
      method: 'GET',
      path: url.pathname,
      phoneNumberId: '',
      ...(authorization !== undefined ? { authorization } : {}),
      body: null,
      response: { status: authError ? 401 : 200, body: authError ?? `<${m.data.length} bytes ${m.mimeType}>` },
    });
    await sleep(delayMs);
    if (res.destroyed) return;
    if (authError) {
      sendJson(res, 401, authError);
      return;
    }
    res.writeHead(200, { 'content-type': m.mimeType, 'content-length': m.data.length });
    res.end(m.data);
  };

  const handleControl = async (req: http.IncomingMessage, res: http.ServerResponse, path: string): Promise<boolean> => {
    const method = req.method ?? 'GET';
    const readJson = async (): Promise<Record<string, unknown> | null> => {
      const parsed = parseBody(await readBody(req), 'application/json');
      return parsed.ok && isRecord(parsed.value) ? parsed.value : null;
    };
    if (path === '/__fake/requests' && method === 'GET') {
      sendJson(res, 200, { requests });
      return true;
    }
    if (path === '/__fake/sent' && method === 'GET') {
      sendJson(res, 200, { requests: sentMessages() });
      return true;
    }
    if (path === '/__fake/requests' && method === 'DELETE') {
      requests.length = 0;
      mediaRequests.length = 0;
      sendJson(res, 200, { ok: true });
      return true;
    }
    if (path === '/__fake/errors' && method === 'POST') {
      const body = await readJson();
      if (!body || typeof body.code !== 'number') {
        sendJson(res, 400, { ok: false, error: 'body must be a GraphErrorRule with a numeric code' });
        return true;
      }
      api.failNext(body as unknown as GraphErrorRule);
      sendJson(res, 200, { ok: true, rules: rules.length });
      return true;
    }
    if (path === '/__fake/errors' && method === 'DELETE') {
      rules = [];
      sendJson(res, 200, { ok: true });
      return true;
    }
    if (path === '/__fake/delay' && method === 'POST') {
      const body = await readJson();
      const ms = Number(body?.ms);
      if (!Number.isFinite(ms) || ms < 0) {
        sendJson(res, 400, { ok: false, error: 'body must be { ms: number >= 0 }' });
        return true;
      }
      api.setDelay(ms);
      sendJson(res, 200, { ok: true, ms });
      return true;
    }
    if (path === '/__fake/tokens' && method === 'POST') {
      const body = await readJson();
      const tokens = body?.tokens;
      if (tokens !== null && !(Array.isArray(tokens) && tokens.every((t) => typeof t === 'string'))) {
        sendJson(res, 400, { ok: false, error: 'body must be { tokens: string[] | null }' });
        return true;
      }
      api.setValidTokens(tokens as string[] | null);
      sendJson(res, 200, { ok: true });
      return true;
    }
    const templatesPath = /^\/__fake\/templates\/(\d{1,30})(\/events)?$/.exec(path);
    if (templatesPath && method === 'PUT' && !templatesPath[2]) {
      const body = await readJson();
      const list = body?.templates;
      if (!body || (list !== null && !Array.isArray(list))) {
        sendJson(res, 400, { ok: false, error: 'body must be { templates: FakeMessageTemplate[] | null, maxPageSize? }' });
        return true;
      }
      const maxPageSize = typeof body.maxPageSize === 'number' ? body.maxPageSize : undefined;
      const stored = api.setTemplates(templatesPath[1]!, list as FakeMessageTemplate[] | null, maxPageSize !== undefined ? { maxPageSize } : {});
      sendJson(res, 200, { ok: true, templates: stored });
      return true;
    }
    if (templatesPath && method === 'POST' && templatesPath[2]) {
      const body = await readJson();
      const wabaId = templatesPath[1]!;
      const str = (k: string) => (typeof body?.[k] === 'string' ? (body[k] as string) : undefined);
      const [name, language] = [str('name'), str('language')];
      let webhook: unknown;
      try {
        if (!name || !language) throw new Error('body must name the template: { name, language, event | quality | category }');
        if (str('event')) webhook = api.templateStatusEvent(wabaId, name, language, str('event')!, str('reason'));
        else if (str('quality')) webhook = api.templateQualityEvent(wabaId, name, language, str('quality')!);
        else if (str('category')) webhook = api.templateCategoryEvent(wabaId, name, language, str('category')!);
        else throw new Error('give one of event, quality, category');
      } catch (err) {
        sendJson(res, 400, { ok: false, error: (err as Error).message });
        return true;
      }
      const deliverTo = str('deliverTo');
      const appSecret = str('appSecret');
      if (!deliverTo || !appSecret) {
        sendJson(res, 200, { ok: true, webhook });
        return true;
      }
      const raw = JSON.stringify(webhook);
      let delivered: number;
      try {
        const r = await fetch(deliverTo, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': `sha256=${createHmac('sha256', appSecret).update(raw).digest('hex')}` },
          body: raw,
          signal: AbortSignal.timeout(10_000),
        });
        delivered = r.status;
      } catch {
        delivered = 0;
      }
      sendJson(res, 200, { ok: true, webhook, delivered });
      return true;
    }
    if (path === '/__fake/reset' && method === 'POST') {
      api.reset();
      sendJson(res, 200, { ok: true });
      return true;
    }
    return false;
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://fake.local');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';

    if (path === '/healthz' && method === 'GET') {
      sendJson(res, 200, { ok: true, fake: 'graph-api' });
      return;
    }
    if (path.startsWith('/__fake/')) {
      const mediaMatch = /^\/__fake\/media\/([^/]+)$/.exec(path);
      if (mediaMatch && method === 'GET') {
        await handleMediaDownload(req, res, url, decodeURIComponent(mediaMatch[1] ?? ''));
        return;
      }
      const cdnMatch = /^\/__fake\/ig-cdn\/([^/]+)$/.exec(path);
      if (cdnMatch && method === 'GET') {
        await handleMediaDownload(req, res, url, decodeURIComponent(cdnMatch[1] ?? ''), { public: true });
        return;
      }
      if (await handleControl(req, res, path)) return;
    }
    const send = /^\/(v\d+\.\d+)\/([^/]+)\/messages$/.exec(path);
    if (send && method === 'POST') {
      await handleSend(req, res, url, decodeURIComponent(send[2] ?? ''));
      return;
    }
    const mediaUpload = /^\/(v\d+\.\d+)\/([^/]+)\/media$/.exec(path);
    if (mediaUpload && method === 'POST') {
      await handleMediaUpload(req, res, url, decodeURIComponent(mediaUpload[2] ?? ''));
      return;
    }
    const templateList = /^\/(v\d+\.\d+)\/([^/]+)\/message_templates$/.exec(path);
    if (templateList && method === 'GET') {
      await handleTemplateList(req, res, url, decodeURIComponent(templateList[2] ?? ''));
      return;
    }
    const mediaInfo = /^\/(v\d+\.\d+)\/([^/]+)$/.exec(path);
    if (mediaInfo && method === 'GET' && url.searchParams.has('fields')) {
      await handleAccountRead(req, res, url, decodeURIComponent(mediaInfo[2] ?? ''));
      return;
    }
    if (mediaInfo && method === 'GET') {
      await handleMediaInfo(req, res, url, decodeURIComponent(mediaInfo[2] ?? ''));
      return;
    }
    req.resume();
    sendJson(
      res,
      404,
      metaError(100, {
        message: `Unsupported ${method.toLowerCase()} request. Object with ID '${path.split('/').filter(Boolean).pop() ?? ''}' does not exist, cannot be loaded due to missing permissions, or does not support this operation.`,
        subcode: 33,
        details: `Unknown route: ${method} ${path}`,
      }),
    );
  };

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendJson(res, 500, metaError(1));
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  baseUrl = formatUrl(host, port);

  const api: FakeGraphApi = {
    url: baseUrl,
    requests,
    mediaRequests,
    uploadRequests,
    expireMedia(mediaId: string): void {
      if (uploaded.delete(mediaId)) expired.add(mediaId);
      media.delete(mediaId);
    },
    hasUploadedMedia(mediaId: string): boolean {
      return uploaded.has(mediaId);
    },
    accountRequests,
    templateRequests,
    sentMessages,
    setTemplates(wabaId, list, opts = {}) {
      if (opts.maxPageSize !== undefined) templatePageCaps.set(wabaId, opts.maxPageSize);
      if (list === null) {
        messageTemplates.delete(wabaId);
        return [];
      }
      const stored = list.map((t) => ({ ...t, id: t.id ?? String(1_000_000_000_000_000 + (templateCounter += 1)) }));
      messageTemplates.set(wabaId, stored);
      return stored;
    },
    templates(wabaId) {
      return messageTemplates.get(wabaId) ?? [];
    },
    templateStatusEvent(wabaId, name, language, event, reason) {
      const t = findTemplate(wabaId, name, language);
      const statuses: Record<string, string> = { REINSTATED: 'APPROVED' };
      const status = statuses[event] ?? (['APPROVED', 'REJECTED', 'PENDING', 'PAUSED', 'DISABLED', 'IN_APPEAL', 'PENDING_DELETION', 'DELETED', 'ARCHIVED', 'LIMIT_EXCEEDED'].includes(event) ? event : undefined);
      if (status) t.status = status;
      return whatsAppTemplateStatusWebhook({ wabaId, id: t.id, name, language }, { event, reason, category: t.category });
    },
    templateQualityEvent(wabaId, name, language, score) {
      const t = findTemplate(wabaId, name, language);
      const previous = t.quality_score?.score ?? 'UNKNOWN';
      t.quality_score = { score };
      return whatsAppTemplateQualityWebhook({ wabaId, id: t.id, name, language }, { previous, next: score });
    },
    templateCategoryEvent(wabaId, name, language, category) {
      const t = findTemplate(wabaId, name, language);
      const previous = t.category;
      t.category = category;
      return whatsAppTemplateCategoryWebhook({ wabaId, id: t.id, name, language }, { previous, next: category });
    },
    setAccountOwner(accountId: string, tokens: string[] | null): void {
      if (tokens === null) accountOwners.delete(accountId);
      else accountOwners.set(accountId, new Set(tokens));
    },
    failNext(rule: GraphErrorRule): void {
      rules.push({ ...rule, remaining: normalizeTimes(rule.times) });
    },
    setDelay(ms: number): void {
      delayMs = Math.max(0, Number.isFinite(ms) ? ms : 0);
    },
    setValidTokens(tokens: string[] | null): void {
      validTokens = tokens === null ? null : new Set(tokens);
    },
    setMedia(mediaId: string, data: Buffer | string, mimeType = 'application/octet-stream'): void {
      media.set(mediaId, { data: typeof data === 'string' ? Buffer.from(data) : data, mimeType });
    },
    igCdnUrl(mediaId: string): string {
      return `${baseUrl}/__fake/ig-cdn/${encodeURIComponent(mediaId)}?stp=dst-jpg&oh=${createHash('sha256').update(mediaId).digest('hex').slice(0, 16)}`;
    },
    instagramSends(): GraphRequestRecord[] {
      return sentMessages().filter((r) => r.channel === 'instagram');
    },
    reset(): void {
      requests.length = 0;
      mediaRequests.length = 0;
      uploadRequests.length = 0;
      accountRequests.length = 0;
      templateRequests.length = 0;
      rules = [];
      delayMs = 0;
      media.clear();
    },
    waitForSends(n: number, timeoutMs = 10_000): Promise<GraphRequestRecord[]> {
      const sent = sentMessages();
      if (sent.length >= n) return Promise.resolve(sent);
      if (closed) return Promise.reject(new Error('fake Graph API is closed'));
      return new Promise((resolve, reject) => {
        const waiter: Waiter = {
          n,
          resolve,
          reject,
          timer: setTimeout(() => {
            waiters.delete(waiter);
            reject(new Error(`waitForSends(${n}): only ${sentMessages().length} successful sends after ${timeoutMs}ms`));
          }, timeoutMs),
        };
        waiters.add(waiter);
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      for (const w of waiters) {
        clearTimeout(w.timer);
        w.reject(new Error('fake Graph API closed'));
      }
      waiters.clear();
      for (const t of pendingTimers) clearTimeout(t);
      pendingTimers.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
  return api;
}
