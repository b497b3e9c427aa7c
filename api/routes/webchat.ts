/**
 * Web chat: a public, embeddable chat channel. No API key: a channel's public widget key
 * (`wc_…`) names the channel; a server-signed visitor token (services/webchat-visitors.ts),
 * kept in the visitor's browser and sent as `Authorization: Bearer vt1.…`, is the visitor's
 * credential. The lead's contact id is derived from the token one way (`wv_…`): it appears in
 * workflow ids and logs, the token never does, and no route takes it in a URL.
 *
 * Inbound messages go to the same lead workflow as WhatsApp's (signalWithStart with a
 * per-message dedup id); replies come back over Server-Sent Events read from the database,
 * which is the source of truth because the worker may run in another process. The widget reads
 * the stream with fetch (a header can carry the token; EventSource cannot send one).
 *
 *   GET  /webchat/widget.js                 the embeddable script (api/public/webchat/widget.js)
 *   GET  /webchat/:widgetKey                a page hosting the widget
 *   POST /webchat/:widgetKey/visitors       {} → 201 { visitorToken } (new conversations are rate limited)
 *   POST /webchat/:widgetKey/messages       { text, clientMessageId } → 202 { messageId }
 *   GET  /webchat/:widgetKey/messages       ?limit=&before= → { items, lastEventId, nextCursor } (history, oldest first)
 *   GET  /webchat/:widgetKey/stream         [?lastEventId=] (or Last-Event-ID) → text/event-stream
 */
import { recordInbound, recordWebChatStream } from '../../lib/metrics';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import type { InboundMessage } from '../../contract/messages';
import type { RichMessage } from '../../contract/rich';
import { optionChoice } from '../webhooks/meta-common';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { ChannelRouting, ChannelService } from '../../services/channels';
import type { ChatMessage, LeadService } from '../../services/leads';
import type { RateLimiter } from '../../services/rate-limit';
import { createStreamHub, type StreamHub, type StreamSubscriber } from '../../services/webchat-stream-hub';
import type { VisitorTokens } from '../../services/webchat-visitors';
import type { ParleyTemporal } from '../../temporal/client';
import { parseOr400 } from '../middleware/validate';
import { publicRoute } from '../access';
import { doc, type RouteDoc } from '../openapi';
import { webChatHistory, webChatMessageAccepted, webChatVisitor } from '../schemas/public';

export interface WebChatRouterDeps {
  channels: ChannelService;
  leads: LeadService;
  temporal: ParleyTemporal;
  log: Logger;
  /** Signs and checks visitor tokens. */
  visitors: VisitorTokens;
  /** How often a channel's open streams read new messages (WEBCHAT_POLL_MS): one query per channel. */
  pollMs: number;
  /** SSE heartbeat comment interval (WEBCHAT_HEARTBEAT_MS). */
  heartbeatMs: number;
  /** Messages one visitor may post per minute (five times that per client address); 0 = no limit (WEBCHAT_MAX_MESSAGES_PER_MINUTE). */
  maxMessagesPerMinute: number;
  /** New visitors per widget per hour, all processes (WEBCHAT_NEW_CONVERSATIONS_PER_HOUR; 0 = no limit; default 600). */
  newConversationsPerHour?: number;
  /** New visitors per client address per widget per hour (WEBCHAT_NEW_CONVERSATIONS_PER_HOUR_PER_ADDRESS; 0 = no limit; default 10). */
  newConversationsPerHourPerAddress?: number;
  /** The shared rate limiter (PostgreSQL token buckets); without one, nothing is rate limited. */
  limiter?: RateLimiter;
  /** A stream ends after this long; the widget reconnects with Last-Event-ID (default 10 min). */
  maxStreamMs?: number;
  /** Open streams per visitor (default 5). */
  maxStreamsPerVisitor?: number;
  /** Open streams per client address in this process (WEBCHAT_MAX_STREAMS_PER_ADDRESS; default 20). */
  maxStreamsPerAddress?: number;
  /** Open streams in this process (WEBCHAT_MAX_STREAMS; default 2000). */
  maxStreams?: number;
  /** History reads and stream opens per client address per minute, in this process (WEBCHAT_MAX_READS_PER_MINUTE_PER_ADDRESS; 0 = no limit; default 120). */
  maxReadsPerMinutePerAddress?: number;
  /** How long a widget key → channel lookup is cached (default 30 s). */
  routingCacheMs?: number;
  /** Where widget.js and page.html live (default: api/public/webchat). */
  assetsDir?: string;
  /** The shared per-channel pollers (default: one made here). */
  hub?: StreamHub;
}

export const WEBCHAT_BODY_LIMIT = '16kb';
export const WEBCHAT_MAX_TEXT = 4096;
const HISTORY_DEFAULT = 50;
export const HISTORY_MAX = 200;
const STREAM_BATCH = 200;
/** A resumed stream reads at most this many batches before it follows the shared poller. */
const CATCH_UP_BATCHES = 10;
/** An outbound row not yet sent is waited for this long before the resume point moves past it. */
const PENDING_HOLD_MS = 2 * 60_000;

const widgetKeySchema = z.string().regex(/^wc_[A-Za-z0-9_-]{8,64}$/);
const seqSchema = z.string().regex(/^\d{1,15}$/, 'must be a message sequence number').transform(Number);

/** Origins a widget accepts calls from (channel setting `allowedOrigins`; null = any). */
export const webChatOriginsSchema = z
  .array(
    z
      .string()
      .trim()
      .toLowerCase()
      .max(300)
      .refine((o) => {
        try {
          const u = new URL(o);
          return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === o;
        } catch {
          return false;
        }
      }, 'must be an origin: scheme, host and optional port, such as https://shop.example (no path, no trailing slash)'),
  )
  .min(1)
  .max(50);

export const postMessageBody = z.strictObject({
  text: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(WEBCHAT_MAX_TEXT, `must be at most ${WEBCHAT_MAX_TEXT} characters`),
  clientMessageId: z.string().regex(/^[\x21-\x7e]{1,100}$/, 'must be 1 to 100 visible ASCII characters (no spaces)'),
  /** The visitor clicked an option of a reply (a button or list row): its id; `text` is its title. */
  option: z.strictObject({ id: z.string().min(1).max(256) }).optional(),
});
const historyQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(HISTORY_MAX).default(HISTORY_DEFAULT),
  /** Older messages: the `nextCursor` of the previous page (a seq). */
  before: seqSchema.optional(),
});
const streamQuery = z.strictObject({
  /** The resume point when the client cannot send the Last-Event-ID header. */
  lastEventId: seqSchema.optional(),
});

/** A message as the widget sees it. `inbound` = written by the visitor, `outbound` = the reply. */
export interface WebChatMessage {
  id: string;
  seq: number;
  direction: 'inbound' | 'outbound';
  text: string;
  /** A reply with buttons, a list or an image, as the widget renders it. */
  rich?: WebChatRich;
  /** The id the visitor's browser chose for its own message (inbound only). */
  clientMessageId?: string;
  at: string;
}

/** The inbound dedup key: a retried POST of the same message is recorded once. */
export function webChatInboundId(contactId: string, clientMessageId: string): string {
  return `webchat:${contactId}:${clientMessageId}`;
}

/** What the widget renders of a rich reply: options to click (buttons, list rows) or an image. */
export interface WebChatRich {
  type: 'buttons' | 'list' | 'image';
  header?: string;
  body?: string;
  footer?: string;
  /** The list's button label. */
  button?: string;
  options?: { id: string; title: string; description?: string; section?: string }[];
  imageUrl?: string;
  caption?: string;
}

/** The widget's form of a rich message web chat sends natively (contract/rich.ts CHANNEL_FORMS.webchat); undefined otherwise. */
export function webChatRich(rich: unknown): WebChatRich | undefined {
  const m = rich as RichMessage | undefined;
  if (!m || typeof m !== 'object') return undefined;
  if (m.kind === 'interactive' && m.interactive.type === 'button') {
    const i = m.interactive;
    return { type: 'buttons', ...(i.header?.text ? { header: i.header.text } : {}), body: i.body, ...(i.footer ? { footer: i.footer } : {}), options: i.buttons.map((b) => ({ id: b.id, title: b.title })) };
  }
  if (m.kind === 'interactive' && m.interactive.type === 'list') {
    const i = m.interactive;
    return {
      type: 'list',
      ...(i.header ? { header: i.header } : {}),
      body: i.body,
      ...(i.footer ? { footer: i.footer } : {}),
      button: i.button,
      options: i.sections.flatMap((s) => s.rows.map((r) => ({ id: r.id, title: r.title, ...(r.description ? { description: r.description } : {}), ...(s.title ? { section: s.title } : {}) }))),
    };
  }
  if (m.kind === 'media' && m.media.type === 'image' && m.media.link) return { type: 'image', imageUrl: m.media.link, ...(m.media.caption ? { caption: m.media.caption } : {}) };
  return undefined;
}

function present(m: ChatMessage, contactId: string): WebChatMessage {
  const prefix = `webchat:${contactId}:`;
  const clientMessageId = m.direction === 'inbound' && m.providerMessageId?.startsWith(prefix) ? m.providerMessageId.slice(prefix.length) : undefined;
  const rich = m.direction === 'outbound' ? webChatRich(m.rich) : undefined;
  // an option the visitor clicked reads as its title (the LLM got the title and the id)
  const option = m.direction === 'inbound' && m.option && typeof m.option === 'object' ? (m.option as { title?: unknown }) : undefined;
  const text = typeof option?.title === 'string' ? option.title : m.body;
  return { id: m.id, seq: m.seq, direction: m.direction, text, ...(rich ? { rich } : {}), ...(clientMessageId ? { clientMessageId } : {}), at: m.createdAt };
}

/** Outbound replies show once they are sent; a pending one is waited for, a failed one never shows. */
function visibility(m: ChatMessage): 'show' | 'pending' | 'hide' {
  if (m.direction === 'inbound') return 'show';
  if (m.status === 'pending') return 'pending';
  return m.status === 'failed' ? 'hide' : 'show';
}

/**
 * The point a reconnecting stream resumes after: the highest seq read, but never past a reply
 * still pending (it may turn sent while the visitor is away), unless it has been pending for long.
 */
function resumePoint(readUpTo: number, pending: Map<string, { seq: number; since: number }>, now: number): number {
  let point = readUpTo;
  for (const [id, p] of pending) {
    if (now - p.since > PENDING_HOLD_MS) pending.delete(id);
    else point = Math.min(point, p.seq - 1);
  }
  return Math.max(point, 0);
}

function findAssetsDir(): string {
  const candidates = [path.resolve(__dirname, '../public/webchat'), path.resolve(process.cwd(), 'api/public/webchat')];
  const dir = candidates.find((d) => existsSync(path.join(d, 'widget.js')));
  if (!dir) throw new Error(`web chat assets not found (looked in ${candidates.join(', ')})`);
  return dir;
}

type Limited = { ok: true } | { ok: false; retryAfterS: number; reason: string };
const retryAfter = (waitMs: number) => Math.max(1, Math.ceil(waitMs / 1000));

/**
 * Per visitor and per client address, in the shared PostgreSQL token buckets (every API
 * process counts together): a visitor token is cheap to replace, an address is not.
 */
function createPostLimiter(limiter: RateLimiter | undefined, perMinute: number) {
  return async (keys: { channelId: string; contactId: string; ip: string }): Promise<Limited> => {
    if (!limiter || perMinute <= 0) return { ok: true };
    const visitor = await limiter.take(`webchat:${keys.channelId}:${keys.contactId}`, { ratePerSec: perMinute / 60, burst: perMinute, maxWaitMs: 0 });
    if (!visitor.ok) return { ok: false, retryAfterS: retryAfter(visitor.waitMs), reason: 'too many messages' };
    // several visitors may share an address (an office): a looser limit there
    const address = await limiter.take(`webchat-ip:${keys.channelId}:${keys.ip}`, { ratePerSec: (perMinute * 5) / 60, burst: perMinute * 5, maxWaitMs: 0 });
    if (!address.ok) return { ok: false, retryAfterS: retryAfter(address.waitMs), reason: 'too many messages from this address' };
    return { ok: true };
  };
}

/**
 * New visitors = new AI conversations, which cost the tenant: per client address (checked first,
 * so one address cannot drain the widget's budget) and per widget, per hour.
 */
function createNewVisitorLimiter(limiter: RateLimiter | undefined, perHour: number, perHourPerAddress: number) {
  return async (keys: { channelId: string; ip: string }): Promise<Limited> => {
    if (!limiter) return { ok: true };
    if (perHourPerAddress > 0) {
      const a = await limiter.take(`webchat-new-ip:${keys.channelId}:${keys.ip}`, { ratePerSec: perHourPerAddress / 3600, burst: perHourPerAddress, maxWaitMs: 0 });
      if (!a.ok) return { ok: false, retryAfterS: retryAfter(a.waitMs), reason: `too many new conversations from this address (at most ${perHourPerAddress} an hour)` };
    }
    if (perHour > 0) {
      const w = await limiter.take(`webchat-new:${keys.channelId}`, { ratePerSec: perHour / 3600, burst: perHour, maxWaitMs: 0 });
      if (!w.ok) return { ok: false, retryAfterS: retryAfter(w.waitMs), reason: `this chat has too many new conversations right now (at most ${perHour} an hour)` };
    }
    return { ok: true };
  };
}

/**
 * History reads and stream opens per client address, in memory (each costs two statements; a
 * shared bucket would cost one more): a token bucket per address, the map pruned of full buckets.
 */
function createReadLimiter(perMinute: number) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const rate = perMinute / 60_000;
  return (ip: string): Limited => {
    if (perMinute <= 0) return { ok: true };
    const now = Date.now();
    if (buckets.size > 50_000) {
      for (const [k, b] of buckets) if (b.tokens + (now - b.at) * rate >= perMinute) buckets.delete(k);
    }
    const b = buckets.get(ip) ?? { tokens: perMinute, at: now };
    b.tokens = Math.min(perMinute, b.tokens + (now - b.at) * rate);
    b.at = now;
    buckets.set(ip, b);
    if (b.tokens < 1) return { ok: false, retryAfterS: retryAfter((1 - b.tokens) / rate), reason: `too many chat reads from this address (at most ${perMinute} a minute)` };
    b.tokens -= 1;
    return { ok: true };
  };
}

/** Public routes: any site may embed the widget, so any origin may call them (never with cookies). */
function cors(req: Request, res: Response, next: NextFunction) {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, last-event-id');
  res.setHeader('Access-Control-Max-Age', '600');
  if (req.method === 'OPTIONS') {
    res.status(204).end();
    return;
  }
  next();
}

/**
 * The widget's origin allowlist: a browser's cross-origin call always carries `Origin`; one
 * from an origin not on the list (other than the API's own, the hosted page) is a 403. Calls
 * without `Origin` (same-origin GETs, servers) pass: the list stops other sites embedding the
 * widget, it is no authentication.
 */
function checkOrigin(req: Request, routing: ChannelRouting) {
  const allowed = routing.allowedOrigins;
  if (!allowed || allowed.length === 0) return;
  const origin = req.header('origin');
  if (origin === undefined) return;
  const o = origin.trim().toLowerCase();
  if (allowed.includes(o)) return;
  if (o === `${req.protocol}://${req.get('host') ?? ''}`.toLowerCase()) return;
  throw new AppError('forbidden', 'this chat widget does not accept requests from this origin');
}

const VISITOR_TOKEN = "Needs the visitor token: `Authorization: Bearer <visitorToken>` (401 without a valid one for this widget; 404 for an unknown widget key; 403 from an origin the widget's allowlist does not name).";
const PUBLIC_CHAT = 'Public (the widget key names the channel); any origin may call it (CORS `*`, no cookies) unless the widget has an origin allowlist.';

const DOCS = {
  widget: {
    summary: 'The embeddable web chat widget script',
    description:
      'Embed on any site: `<script src="https://<host>/webchat/widget.js" data-widget-key="wc_…" async></script>` (optional `data-mode="inline"` with `data-container`, `data-title`, `data-api`). Plain JavaScript, cached 5 minutes.',
    tags: ['webchat'],
    responses: { 200: { contentType: 'application/javascript', description: 'The widget script' } },
  },
  page: {
    summary: 'A page hosting the web chat widget',
    description: 'A ready page to link visitors to; 404 for an unknown widget key. Served with a strict Content-Security-Policy.',
    tags: ['webchat'],
    responses: { 200: { contentType: 'text/html', description: 'The chat page' } },
  },
  visitor: {
    summary: 'Create a web chat visitor',
    description: `${PUBLIC_CHAT} Answers a signed visitor token, the visitor's credential on the other chat routes (kept by the browser; the server keeps no copy). Each visitor is a new AI conversation, so new visitors are limited per client address and per widget per hour (WEBCHAT_NEW_CONVERSATIONS_PER_HOUR[_PER_ADDRESS]): 429 with \`Retry-After\`. 404 for an unknown widget key; 403 from an origin the widget's allowlist does not name.`,
    tags: ['webchat'],
    requestBody: { contentType: 'application/json', schema: z.strictObject({}), description: '`{}` or no body (at most 1 kB)' },
    responses: { 201: webChatVisitor },
  },
  post: {
    summary: "Send a visitor's message",
    description: `${VISITOR_TOKEN} The message goes to the channel's AI conversation (accepted, not yet answered: the reply comes on the stream). A retried POST with the same \`clientMessageId\` is recorded and answered once. JSON only (415 otherwise), at most 16 kB; limited per visitor and per client address per minute (WEBCHAT_MAX_MESSAGES_PER_MINUTE): 429 with \`Retry-After\`. 503 when the conversation engine cannot take it now: retry with the same \`clientMessageId\`. A click on a reply's option (a button or list row of a message's \`rich.options\`) is posted as its title in \`text\` with \`option: { id }\`: the AI reads both (\`[button] Title (id: …)\`).`,
    tags: ['webchat'],
    requestBody: { contentType: 'application/json', schema: postMessageBody },
    responses: { 202: webChatMessageAccepted },
  },
  history: {
    summary: "The visitor's conversation history",
    description: `${VISITOR_TOKEN} Oldest first: the last \`limit\` messages, or those before \`before\` (a previous page's \`nextCursor\`). Replies show once sent. The newest page carries \`lastEventId\`, where the stream should resume. Reads and stream opens are limited per client address per minute (WEBCHAT_MAX_READS_PER_MINUTE_PER_ADDRESS): 429 with \`Retry-After\`.`,
    tags: ['webchat'],
    query: historyQuery,
    responses: { 200: webChatHistory },
  },
  stream: {
    summary: "The visitor's conversation as Server-Sent Events",
    description: `${VISITOR_TOKEN} A \`text/event-stream\`: each event's \`data\` is a WebChatMessage as JSON (\`inbound\`: the visitor's own, so a second tab sees it too; \`outbound\`: the reply, once sent) and its \`id\` the resume point; heartbeat comments keep it open, and it ends after 10 minutes. Resume after a drop with the \`Last-Event-ID\` header (or \`?lastEventId=\`; the header wins): the id never moves past a reply still being sent. Without one, the stream starts with the last 50 messages. Read it with fetch (EventSource cannot send the Authorization header). Open streams are capped per visitor (5), per client address and per process, and opens count with history reads per address per minute: 429 with \`Retry-After\`.`,
    tags: ['webchat'],
    query: streamQuery,
    responses: { 200: { contentType: 'text/event-stream', description: 'Message events until the client closes or the stream times out' } },
  },
} satisfies Record<string, RouteDoc>;

export function createWebChatRouter(deps: WebChatRouterDeps): Router {
  const r = Router();
  const log = deps.log.child({ module: 'webchat' });
  const assetsDir = deps.assetsDir ?? findAssetsDir();
  const widgetJs = readFileSync(path.join(assetsDir, 'widget.js'), 'utf8');
  const pageHtml = readFileSync(path.join(assetsDir, 'page.html'), 'utf8');
  const maxStreamMs = deps.maxStreamMs ?? 10 * 60_000;
  const maxStreamsPerVisitor = deps.maxStreamsPerVisitor ?? 5;
  const maxStreamsPerAddress = deps.maxStreamsPerAddress ?? 20;
  const maxStreams = deps.maxStreams ?? 2000;
  // rows touched this recently are read again: a reply turns sent after newer rows got their seq
  const recentMs = Math.max(10_000, deps.pollMs * 4);
  const rateLimit = createPostLimiter(deps.limiter, deps.maxMessagesPerMinute);
  const newVisitorLimit = createNewVisitorLimiter(deps.limiter, deps.newConversationsPerHour ?? 600, deps.newConversationsPerHourPerAddress ?? 10);
  const readLimit = createReadLimiter(deps.maxReadsPerMinutePerAddress ?? 120);
  const hub = deps.hub ?? createStreamHub({ leads: deps.leads, log: deps.log, pollMs: deps.pollMs });
  const streamsByVisitor = new Map<string, number>();
  const streamsByAddress = new Map<string, number>();
  let streamsOpen = 0;
  const inc = (m: Map<string, number>, k: string, d: number) => {
    const n = (m.get(k) ?? 0) + d;
    if (n <= 0) m.delete(k);
    else m.set(k, n);
  };

  const cacheMs = deps.routingCacheMs ?? 30_000;
  const routingCache = new Map<string, { at: number; routing: ChannelRouting }>();
  /** Widget keys with no channel, and when that was read (at most 10,000). */
  const unknownKeys = new Map<string, number>();
  const UNKNOWN_KEY_MS = 10_000;
  // a channel this process deletes is forgotten at once (other processes: within cacheMs, and no run starts on it)
  deps.channels.onDeleted?.((c) => {
    if (c.platform === 'webchat') routingCache.delete(c.phoneNumberId);
  });
  /** widget key → its web chat channel, or a 404. */
  async function channelOf(rawKey: unknown): Promise<ChannelRouting> {
    const key = widgetKeySchema.safeParse(rawKey);
    if (!key.success) throw new AppError('not_found', 'unknown widget key');
    const hit = routingCache.get(key.data);
    if (hit && Date.now() - hit.at < cacheMs) return hit.routing;
    // an unknown key is remembered briefly: guessing keys costs one query per key, not per request
    const miss = unknownKeys.get(key.data);
    if (miss !== undefined && Date.now() - miss < UNKNOWN_KEY_MS) throw new AppError('not_found', 'unknown widget key');
    const routing = await deps.channels.routingByPhoneNumberId('webchat', key.data);
    if (!routing) {
      routingCache.delete(key.data);
      if (unknownKeys.size >= 10_000) unknownKeys.clear();
      unknownKeys.set(key.data, Date.now());
      throw new AppError('not_found', 'unknown widget key');
    }
    unknownKeys.delete(key.data);
    if (routingCache.size > 10_000) routingCache.clear();
    routingCache.set(key.data, { at: Date.now(), routing });
    return routing;
  }

  /** The channel, after the origin check, and the visitor its token names (401 without a valid one). */
  async function visitorOf(req: Request): Promise<{ routing: ChannelRouting; contactId: string }> {
    const routing = await channelOf(req.params.widgetKey);
    checkOrigin(req, routing);
    const auth = req.header('authorization');
    if (!auth) throw new AppError('unauthorized', 'send the visitor token as "Authorization: Bearer <visitorToken>" (POST /webchat/:widgetKey/visitors creates one)');
    const m = /^Bearer\s+(\S+)$/i.exec(auth.trim());
    const v = m ? deps.visitors.verify(routing.id, m[1]!) : undefined;
    if (!v) throw new AppError('unauthorized', 'invalid visitor token for this widget; create a new visitor');
    return { routing, contactId: v.contactId };
  }

  r.use('/webchat', cors);

  r.get('/webchat/widget.js', publicRoute('web chat widget script'), doc(DOCS.widget), (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.type('application/javascript').send(widgetJs);
  });

  r.get('/webchat/:widgetKey', publicRoute('web chat: the public widget key; visitors carry a signed token'), doc(DOCS.page), async (req, res) => {
    const routing = await channelOf(req.params.widgetKey);
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Content-Security-Policy', "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: https:; base-uri 'none'; form-action 'none'");
    // the key passed widgetKeySchema: letters, digits, "_" and "-" only, safe inside an attribute
    res.type('html').send(pageHtml.split('{{WIDGET_KEY}}').join(routing.phoneNumberId));
  });

  r.post('/webchat/:widgetKey/visitors', publicRoute('web chat: the public widget key; visitors carry a signed token'), doc(DOCS.visitor), express.json({ limit: '1kb', strict: true }), async (req, res) => {
    const routing = await channelOf(req.params.widgetKey);
    checkOrigin(req, routing);
    parseOr400(z.strictObject({}), req.body ?? {}, 'body');
    const limited = await newVisitorLimit({ channelId: routing.id, ip: req.ip ?? 'unknown' });
    if (!limited.ok) {
      res.setHeader('Retry-After', String(limited.retryAfterS));
      throw new AppError('rate_limited', `${limited.reason}; try again in ${limited.retryAfterS} s`);
    }
    const v = deps.visitors.issue(routing.id);
    log.info({ channelAccountId: routing.id, contactId: v.contactId }, 'web chat visitor created');
    res.setHeader('Cache-Control', 'no-store');
    res.status(201).json({ visitorToken: v.token });
  });

  r.post('/webchat/:widgetKey/messages', publicRoute('web chat: the public widget key; visitors carry a signed token'), doc(DOCS.post), express.json({ limit: WEBCHAT_BODY_LIMIT, strict: true }), async (req, res) => {
    const { routing, contactId } = await visitorOf(req);
    if (!req.is('application/json')) throw new AppError('unsupported_media_type', 'send the message as application/json');
    const body = parseOr400(postMessageBody, req.body ?? {}, 'body');
    const limited = await rateLimit({ channelId: routing.id, contactId, ip: req.ip ?? 'unknown' });
    if (!limited.ok) {
      res.setHeader('Retry-After', String(limited.retryAfterS));
      throw new AppError('rate_limited', `${limited.reason}; try again in ${limited.retryAfterS} s`);
    }
    const messageId = webChatInboundId(contactId, body.clientMessageId);
    const message: InboundMessage = {
      providerMessageId: messageId,
      channel: 'webchat',
      contactId,
      sentAt: new Date().toISOString(),
      // a click on an option reaches the LLM as its title and id, like a WhatsApp button reply
      ...(body.option
        ? { type: 'interactive' as const, text: optionChoice('[button]', body.text, body.option.id), details: { option: { id: body.option.id, title: body.text } } }
        : { type: 'text' as const, text: body.text }),
    };
    try {
      await deps.temporal.signalInbound({ tenantId: routing.tenantId, channelAccountId: routing.id, channel: 'webchat', contactId }, message);
    } catch (err) {
      log.error({ err, channelAccountId: routing.id }, 'web chat message not accepted: Temporal refused');
      throw new AppError('unavailable', 'could not accept the message now; retry later with the same clientMessageId');
    }
    recordInbound('webchat', routing.tenantId);
    hub.wake(routing.id, contactId);
    // never the text (visitors write personal data), never the token
    log.info({ channelAccountId: routing.id, contactId, clientMessageId: body.clientMessageId, chars: body.text.length }, 'web chat message accepted');
    res.status(202).json({ messageId });
  });

  r.get('/webchat/:widgetKey/messages', publicRoute('web chat: the public widget key; visitors carry a signed token'), doc(DOCS.history), async (req, res) => {
    const { routing, contactId } = await visitorOf(req);
    const q = parseOr400(historyQuery, req.query, 'query');
    const read = readLimit(req.ip ?? 'unknown');
    if (!read.ok) {
      res.setHeader('Retry-After', String(read.retryAfterS));
      throw new AppError('rate_limited', `${read.reason}; try again in ${read.retryAfterS} s`);
    }
    res.setHeader('Cache-Control', 'no-store');
    const lead = await deps.leads.findByContact(routing.id, contactId);
    if (!lead) {
      res.json({ items: [], lastEventId: 0, nextCursor: null });
      return;
    }
    const rows = await deps.leads.chatHistory(lead.id, q.limit, q.before);
    const nextCursor = rows.length === q.limit && rows[0] ? String(rows[0].seq) : null;
    const items = rows.filter((m) => visibility(m) === 'show').map((m) => present(m, contactId));
    if (q.before !== undefined) {
      // an older page: the resume point belongs to the newest page
      res.json({ items, nextCursor });
      return;
    }
    const pending = new Map<string, { seq: number; since: number }>();
    const now = Date.now();
    for (const m of rows) if (visibility(m) === 'pending') pending.set(m.id, { seq: m.seq, since: Date.parse(m.createdAt) || now });
    const readUpTo = rows.reduce((a, m) => Math.max(a, m.seq), 0);
    res.json({ items, lastEventId: resumePoint(readUpTo, pending, now), nextCursor });
  });

  r.get('/webchat/:widgetKey/stream', publicRoute('web chat: the public widget key; visitors carry a signed token'), doc(DOCS.stream), async (req, res) => {
    const { routing, contactId } = await visitorOf(req);
    const q = parseOr400(streamQuery, req.query, 'query');
    const header = req.header('last-event-id');
    let resumeFrom: number | undefined;
    if (header !== undefined && header.trim() !== '') {
      const parsed = seqSchema.safeParse(header.trim());
      if (!parsed.success) throw new AppError('validation_failed', 'invalid Last-Event-ID header', [{ path: 'Last-Event-ID', message: 'must be a message sequence number', code: 'invalid_format' }]);
      resumeFrom = parsed.data; // the client's own reconnect: newer than the query's
    } else {
      resumeFrom = q.lastEventId;
    }
    const ip = req.ip ?? 'unknown';
    const visitorKey = `${routing.id}:${contactId}`;
    const refuse = (reason: string): never => {
      res.setHeader('Retry-After', '30');
      log.info({ channelAccountId: routing.id, contactId, reason }, 'web chat stream refused');
      throw new AppError('rate_limited', reason);
    };
    if (streamsOpen >= maxStreams) refuse(`this server has too many open chat streams (at most ${maxStreams}); try again later`);
    if ((streamsByAddress.get(ip) ?? 0) >= maxStreamsPerAddress) refuse(`too many open chat streams from this address (at most ${maxStreamsPerAddress})`);
    if ((streamsByVisitor.get(visitorKey) ?? 0) >= maxStreamsPerVisitor) refuse(`too many open chat streams for this visitor (at most ${maxStreamsPerVisitor})`);
    const read = readLimit(ip);
    if (!read.ok) {
      res.setHeader('Retry-After', String(read.retryAfterS));
      throw new AppError('rate_limited', `${read.reason}; try again in ${read.retryAfterS} s`);
    }
    streamsOpen += 1;
    recordWebChatStream(1);
    inc(streamsByAddress, ip, 1);
    inc(streamsByVisitor, visitorKey, 1);

    let closed = false;
    const subscription: { off?: () => void } = {};
    const heartbeat = setInterval(() => res.write(`: heartbeat\n\n`), deps.heartbeatMs);
    const lifetime = setTimeout(() => res.end(), maxStreamMs);
    res.on('close', () => {
      closed = true;
      subscription.off?.();
      clearInterval(heartbeat);
      clearTimeout(lifetime);
      streamsOpen -= 1;
      recordWebChatStream(-1);
      inc(streamsByAddress, ip, -1);
      inc(streamsByVisitor, visitorKey, -1);
      log.debug({ channelAccountId: routing.id, contactId }, 'web chat stream closed');
    });

    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write(`retry: 2000\n: connected\n\n`);
    log.debug({ channelAccountId: routing.id, contactId, resumeFrom }, 'web chat stream opened');

    let leadId: string | undefined;
    /** Highest seq read so far (undefined: no resume point; the first read is the recent history). */
    let readUpTo = resumeFrom;
    /** Rows at or below this the visitor already has (its resume point, or below the history it got). */
    let floor = resumeFrom;
    const emitted = new Set<string>();
    const pending = new Map<string, { seq: number; since: number }>();

    const emit = (rows: ChatMessage[]) => {
      if (closed) return;
      const now = Date.now();
      for (const m of rows) {
        if (floor !== undefined && m.seq <= floor) continue;
        readUpTo = Math.max(readUpTo ?? 0, m.seq);
        if (emitted.has(m.id)) continue;
        const v = visibility(m);
        if (v === 'pending') {
          if (!pending.has(m.id)) pending.set(m.id, { seq: m.seq, since: now });
          continue;
        }
        pending.delete(m.id);
        if (v === 'hide') continue;
        emitted.add(m.id);
        res.write(`id: ${resumePoint(readUpTo, pending, now)}\ndata: ${JSON.stringify(present(m, contactId))}\n\n`);
      }
      if (emitted.size > 5000) {
        let drop = emitted.size - 2500;
        for (const id of emitted) {
          if (drop-- <= 0) break;
          emitted.delete(id);
        }
      }
    };

    /** This stream's own read: at open, and when the shared read was cut short. */
    const catchUp = async () => {
      if (!leadId) {
        const lead = await deps.leads.findByContact(routing.id, contactId);
        if (!lead) return false;
        leadId = lead.id;
      }
      if (readUpTo === undefined) {
        const rows = await deps.leads.chatHistory(leadId, HISTORY_DEFAULT);
        floor = rows.length ? rows[0]!.seq - 1 : 0;
        emit(rows);
        readUpTo ??= floor;
        return true;
      }
      for (let i = 0; i < CATCH_UP_BATCHES && !closed; i++) {
        const rows = await deps.leads.chatMessagesAfter(leadId, { afterSeq: readUpTo, limit: STREAM_BATCH, lookBack: { afterSeq: floor ?? 0, recentMs } });
        emit(rows);
        if (rows.length < STREAM_BATCH) break;
      }
      return true;
    };

    let hasConversation = false;
    try {
      hasConversation = await catchUp();
    } catch (err) {
      log.warn({ err, channelAccountId: routing.id }, 'web chat stream: first read failed; the shared reader carries on');
    }
    if (!hasConversation) {
      readUpTo ??= 0; // a new visitor: everything from the first message on
      floor ??= 0;
    }
    if (closed) return;
    const sub: StreamSubscriber = {
      contactId,
      hasConversation,
      includeUntil: 0, // the hub gives a new stream its grace period
      deliver: emit,
      resync: () => {
        catchUp().catch((err: unknown) => log.warn({ err, channelAccountId: routing.id }, 'web chat stream: catching up failed'));
      },
    };
    subscription.off = hub.subscribe(routing.id, sub);
  });

  return r;
}
