/**
 * Web chat: a public, embeddable chat channel. No API key: a channel's public widget key
 * (`wc_…`) names the channel, a random visitor id kept in the visitor's browser names the
 * lead. Inbound messages go to the same lead workflow as WhatsApp's (signalWithStart with a
 * per-message dedup id); replies come back over Server-Sent Events read from the database,
 * which is the source of truth because the worker may run in another process.
 *
 *   GET  /webchat/widget.js                 the embeddable script (api/public/webchat/widget.js)
 *   GET  /webchat/:widgetKey                a page hosting the widget
 *   POST /webchat/:widgetKey/messages       { visitorId, text, clientMessageId } → 202 { messageId }
 *   GET  /webchat/:widgetKey/messages       ?visitorId= → { items, lastEventId } (history, oldest first)
 *   GET  /webchat/:widgetKey/stream         ?visitorId=[&lastEventId=] → text/event-stream
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import express, { Router, type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { ChannelRouting, ChannelService } from '../../services/channels';
import type { ChatMessage, LeadService } from '../../services/leads';
import type { RateLimiter } from '../../services/rate-limit';
import type { ParleyTemporal } from '../../temporal/client';
import type { InboundMessage } from '../../workflows/lead/definitions';
import { parseOr400 } from '../middleware/validate';

export interface WebChatRouterDeps {
  channels: ChannelService;
  leads: LeadService;
  temporal: ParleyTemporal;
  log: Logger;
  /** How often an open stream reads new messages (WEBCHAT_POLL_MS). */
  pollMs: number;
  /** SSE heartbeat comment interval (WEBCHAT_HEARTBEAT_MS). */
  heartbeatMs: number;
  /** Messages one visitor may post per minute (five times that per client address); 0 = no limit (WEBCHAT_MAX_MESSAGES_PER_MINUTE). */
  maxMessagesPerMinute: number;
  /** The shared rate limiter (PostgreSQL token buckets); without one, posts are not limited. */
  limiter?: RateLimiter;
  /** A stream ends after this long; the browser reconnects with Last-Event-ID (default 10 min). */
  maxStreamMs?: number;
  /** Open streams per visitor (default 5). */
  maxStreamsPerVisitor?: number;
  /** How long a widget key → channel lookup is cached (default 30 s). */
  routingCacheMs?: number;
  /** Where widget.js and page.html live (default: api/public/webchat). */
  assetsDir?: string;
}

export const WEBCHAT_BODY_LIMIT = '16kb';
export const WEBCHAT_MAX_TEXT = 4096;
const HISTORY_DEFAULT = 50;
const STREAM_BATCH = 200;
/** An outbound row not yet sent is waited for this long before the resume point moves past it. */
const PENDING_HOLD_MS = 2 * 60_000;

const widgetKeySchema = z.string().regex(/^wc_[A-Za-z0-9_-]{8,64}$/);
export const visitorIdSchema = z.string().regex(/^v_[A-Za-z0-9_-]{16,64}$/, 'must be "v_" followed by 16 to 64 letters, digits, "_" or "-"');
const seqSchema = z.string().regex(/^\d{1,15}$/, 'must be a message sequence number').transform(Number);

export const postMessageBody = z.strictObject({
  visitorId: visitorIdSchema,
  text: z
    .string()
    .trim()
    .min(1, 'must not be empty')
    .max(WEBCHAT_MAX_TEXT, `must be at most ${WEBCHAT_MAX_TEXT} characters`),
  clientMessageId: z.string().regex(/^[\x21-\x7e]{1,100}$/, 'must be 1 to 100 visible ASCII characters (no spaces)'),
});
const historyQuery = z.strictObject({
  visitorId: visitorIdSchema,
  limit: z.coerce.number().int().min(1).max(200).default(HISTORY_DEFAULT),
});
const streamQuery = z.strictObject({
  visitorId: visitorIdSchema,
  /** The resume point when the browser cannot send the Last-Event-ID header (a fresh EventSource). */
  lastEventId: seqSchema.optional(),
});

/** A message as the widget sees it. `inbound` = written by the visitor, `outbound` = the reply. */
export interface WebChatMessage {
  id: string;
  seq: number;
  direction: 'inbound' | 'outbound';
  text: string;
  /** The id the visitor's browser chose for its own message (inbound only). */
  clientMessageId?: string;
  at: string;
}

/** The inbound dedup key: a retried POST of the same message is recorded once. */
export function webChatInboundId(visitorId: string, clientMessageId: string): string {
  return `webchat:${visitorId}:${clientMessageId}`;
}

function present(m: ChatMessage, visitorId: string): WebChatMessage {
  const prefix = `webchat:${visitorId}:`;
  const clientMessageId = m.direction === 'inbound' && m.providerMessageId?.startsWith(prefix) ? m.providerMessageId.slice(prefix.length) : undefined;
  return { id: m.id, seq: m.seq, direction: m.direction, text: m.body, ...(clientMessageId ? { clientMessageId } : {}), at: m.createdAt };
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

/**
 * Per visitor and per client address, in the shared PostgreSQL token buckets (every API
 * process counts together): a visitor id is free to change, an address is not.
 */
function createPostLimiter(limiter: RateLimiter | undefined, perMinute: number) {
  return async (keys: { channelId: string; visitorId: string; ip: string }): Promise<{ ok: true } | { ok: false; retryAfterS: number }> => {
    if (!limiter || perMinute <= 0) return { ok: true };
    const visitor = await limiter.take(`webchat:${keys.channelId}:${keys.visitorId}`, { ratePerSec: perMinute / 60, burst: perMinute, maxWaitMs: 0 });
    if (!visitor.ok) return { ok: false, retryAfterS: Math.max(1, Math.ceil(visitor.waitMs / 1000)) };
    // several visitors may share an address (an office): a looser limit there
    const address = await limiter.take(`webchat-ip:${keys.channelId}:${keys.ip}`, { ratePerSec: (perMinute * 5) / 60, burst: perMinute * 5, maxWaitMs: 0 });
    if (!address.ok) return { ok: false, retryAfterS: Math.max(1, Math.ceil(address.waitMs / 1000)) };
    return { ok: true };
  };
}

/** Public routes: any site may embed the widget, so any origin may call them (never with credentials). */
function cors(req: Request, res: Response, next: NextFunction) {
  res.setHeader('Access-Control-Allow-Origin', '*');
  res.setHeader('Access-Control-Allow-Methods', 'GET, POST, OPTIONS');
  res.setHeader('Access-Control-Allow-Headers', 'content-type, last-event-id');
  res.setHeader('Access-Control-Max-Age', '600');
  if (req.method === 'OPTIONS') {
    res.status(204).end();
    return;
  }
  next();
}

export function createWebChatRouter(deps: WebChatRouterDeps): Router {
  const r = Router();
  const log = deps.log.child({ module: 'webchat' });
  const assetsDir = deps.assetsDir ?? findAssetsDir();
  const widgetJs = readFileSync(path.join(assetsDir, 'widget.js'), 'utf8');
  const pageHtml = readFileSync(path.join(assetsDir, 'page.html'), 'utf8');
  const maxStreamMs = deps.maxStreamMs ?? 10 * 60_000;
  const maxStreamsPerVisitor = deps.maxStreamsPerVisitor ?? 5;
  // rows touched this recently are read again: a reply turns sent after newer rows got their seq
  const recentMs = Math.max(10_000, deps.pollMs * 4);
  const rateLimit = createPostLimiter(deps.limiter, deps.maxMessagesPerMinute);
  const openStreams = new Map<string, number>();

  const cacheMs = deps.routingCacheMs ?? 30_000;
  const routingCache = new Map<string, { at: number; routing: ChannelRouting }>();
  /** widget key → its web chat channel, or a 404. */
  async function channelOf(rawKey: unknown): Promise<ChannelRouting> {
    const key = widgetKeySchema.safeParse(rawKey);
    if (!key.success) throw new AppError('not_found', 'unknown widget key');
    const hit = routingCache.get(key.data);
    if (hit && Date.now() - hit.at < cacheMs) return hit.routing;
    const routing = await deps.channels.routingByPhoneNumberId('webchat', key.data);
    if (!routing) {
      routingCache.delete(key.data);
      throw new AppError('not_found', 'unknown widget key');
    }
    if (routingCache.size > 10_000) routingCache.clear();
    routingCache.set(key.data, { at: Date.now(), routing });
    return routing;
  }

  r.use('/webchat', cors);

  r.get('/webchat/widget.js', (_req, res) => {
    res.setHeader('Cache-Control', 'public, max-age=300');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.type('application/javascript').send(widgetJs);
  });

  r.get('/webchat/:widgetKey', async (req, res) => {
    const routing = await channelOf(req.params.widgetKey);
    res.setHeader('Cache-Control', 'no-cache');
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('Content-Security-Policy', "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; form-action 'none'");
    // the key passed widgetKeySchema: letters, digits, "_" and "-" only, safe inside an attribute
    res.type('html').send(pageHtml.split('{{WIDGET_KEY}}').join(routing.phoneNumberId));
  });

  r.post('/webchat/:widgetKey/messages', express.json({ limit: WEBCHAT_BODY_LIMIT, strict: true }), async (req, res) => {
    const routing = await channelOf(req.params.widgetKey);
    if (!req.is('application/json')) throw new AppError('unsupported_media_type', 'send the message as application/json');
    const body = parseOr400(postMessageBody, req.body ?? {}, 'body');
    const limited = await rateLimit({ channelId: routing.id, visitorId: body.visitorId, ip: req.ip ?? 'unknown' });
    if (!limited.ok) {
      res.setHeader('Retry-After', String(limited.retryAfterS));
      throw new AppError('rate_limited', `too many messages; try again in ${limited.retryAfterS} s`);
    }
    const messageId = webChatInboundId(body.visitorId, body.clientMessageId);
    const message: InboundMessage = {
      providerMessageId: messageId,
      channel: 'webchat',
      contactId: body.visitorId,
      sentAt: new Date().toISOString(),
      type: 'text',
      text: body.text,
    };
    try {
      await deps.temporal.signalInbound({ tenantId: routing.tenantId, channelAccountId: routing.id, channel: 'webchat', contactId: body.visitorId }, message);
    } catch (err) {
      log.error({ err, channelAccountId: routing.id }, 'web chat message not accepted: Temporal refused');
      throw new AppError('unavailable', 'could not accept the message now; retry later with the same clientMessageId');
    }
    // never the text: visitors write personal data
    log.info({ channelAccountId: routing.id, visitorId: body.visitorId, clientMessageId: body.clientMessageId, chars: body.text.length }, 'web chat message accepted');
    res.status(202).json({ messageId });
  });

  r.get('/webchat/:widgetKey/messages', async (req, res) => {
    const routing = await channelOf(req.params.widgetKey);
    const q = parseOr400(historyQuery, req.query, 'query');
    res.setHeader('Cache-Control', 'no-store');
    const lead = await deps.leads.findByContact(routing.id, q.visitorId);
    if (!lead) {
      res.json({ items: [], lastEventId: 0 });
      return;
    }
    const rows = await deps.leads.chatHistory(lead.id, q.limit);
    const pending = new Map<string, { seq: number; since: number }>();
    const now = Date.now();
    for (const m of rows) if (visibility(m) === 'pending') pending.set(m.id, { seq: m.seq, since: Date.parse(m.createdAt) || now });
    const readUpTo = rows.reduce((a, m) => Math.max(a, m.seq), 0);
    res.json({ items: rows.filter((m) => visibility(m) === 'show').map((m) => present(m, q.visitorId)), lastEventId: resumePoint(readUpTo, pending, now) });
  });

  r.get('/webchat/:widgetKey/stream', async (req, res) => {
    const routing = await channelOf(req.params.widgetKey);
    const q = parseOr400(streamQuery, req.query, 'query');
    const header = req.header('last-event-id');
    let resumeFrom: number | undefined;
    if (header !== undefined && header.trim() !== '') {
      const parsed = seqSchema.safeParse(header.trim());
      if (!parsed.success) throw new AppError('validation_failed', 'invalid Last-Event-ID header', [{ path: 'Last-Event-ID', message: 'must be a message sequence number', code: 'invalid_format' }]);
      resumeFrom = parsed.data; // the browser's own reconnect: newer than the query's
    } else {
      resumeFrom = q.lastEventId;
    }
    const visitorKey = `${routing.id}:${q.visitorId}`;
    const open = openStreams.get(visitorKey) ?? 0;
    if (open >= maxStreamsPerVisitor) throw new AppError('rate_limited', `at most ${maxStreamsPerVisitor} open streams per visitor`);
    openStreams.set(visitorKey, open + 1);

    res.status(200);
    res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
    res.setHeader('Cache-Control', 'no-cache, no-transform');
    res.setHeader('Connection', 'keep-alive');
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.write(`retry: 2000\n: connected\n\n`);

    let closed = false;
    let pollTimer: NodeJS.Timeout | undefined;
    const heartbeat = setInterval(() => res.write(`: heartbeat\n\n`), deps.heartbeatMs);
    const lifetime = setTimeout(() => res.end(), maxStreamMs);
    res.on('close', () => {
      closed = true;
      clearTimeout(pollTimer);
      clearInterval(heartbeat);
      clearTimeout(lifetime);
      const n = (openStreams.get(visitorKey) ?? 1) - 1;
      if (n <= 0) openStreams.delete(visitorKey);
      else openStreams.set(visitorKey, n);
      log.debug({ channelAccountId: routing.id, visitorId: q.visitorId }, 'web chat stream closed');
    });
    log.debug({ channelAccountId: routing.id, visitorId: q.visitorId, resumeFrom }, 'web chat stream opened');

    let leadId: string | undefined;
    /** Highest seq read so far (undefined: no resume point; the first read is the recent history). */
    let readUpTo = resumeFrom;
    const emitted = new Set<string>();
    const pending = new Map<string, { seq: number; since: number }>();
    let failures = 0;
    /** Where this stream started: the visitor's resume point (undefined: from the start or the recent history). */
    const floor = resumeFrom;

    const emit = (rows: ChatMessage[]) => {
      const now = Date.now();
      for (const m of rows) {
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
        res.write(`id: ${resumePoint(readUpTo, pending, now)}\ndata: ${JSON.stringify(present(m, q.visitorId))}\n\n`);
      }
      if (emitted.size > 5000) {
        let drop = emitted.size - 2500;
        for (const id of emitted) {
          if (drop-- <= 0) break;
          emitted.delete(id);
        }
      }
    };

    const tick = async () => {
      if (!leadId) {
        const lead = await deps.leads.findByContact(routing.id, q.visitorId);
        if (!lead) {
          readUpTo ??= 0; // a new visitor: everything from the first message on
          return;
        }
        leadId = lead.id;
      }
      if (readUpTo === undefined) {
        emit(await deps.leads.chatHistory(leadId, HISTORY_DEFAULT));
        readUpTo ??= 0;
        return;
      }
      // Also read again what changed lately after the point this stream started from: a reply
      // that turned sent after newer rows were read. Below that point the visitor had everything
      // (the resume point never passes a pending reply).
      emit(await deps.leads.chatMessagesAfter(leadId, { afterSeq: readUpTo, limit: STREAM_BATCH, lookBack: { afterSeq: floor ?? 0, recentMs } }));
    };

    const loop = async () => {
      if (closed) return;
      try {
        await tick();
        failures = 0;
      } catch (err) {
        failures += 1;
        if (failures === 1 || failures % 20 === 0) log.warn({ err, failures, channelAccountId: routing.id }, 'web chat stream: reading messages failed; retrying');
      }
      if (!closed) pollTimer = setTimeout(() => void loop(), failures ? Math.min(deps.pollMs * 2 ** failures, 10_000) : deps.pollMs);
    };
    await loop();
  });

  return r;
}
