import { recordInbound } from '../../lib/metrics';
import express, { Router, type Request, type Response } from 'express';
import type { InboundMessage } from '../../contract/messages';
import type { Logger } from '../../lib/logger';
import type { ChannelService } from '../../services/channels';
import type { ParleyTemporal } from '../../temporal/client';
import { parseInstagramWebhook } from '../webhooks/instagram-payload';
import { acceptAll, createAccountRouter, createSignatureCheck, MAX_ACCOUNT_ID_LENGTH, unlessRefused, verifyHandshake, WEBHOOK_BODY_LIMIT, type DroppedItem } from '../webhooks/meta-receiver';
import { publicRoute } from '../access';
import { doc, type RouteDoc } from '../openapi';
import { WEBHOOK_ACCEPT_ALL_DESCRIPTION, WEBHOOK_HANDSHAKE_DESCRIPTION, WEBHOOK_SIGNED_BODY_DESCRIPTION, webhookHandshakeQuery, webhookHandshakeResponses, webhookInstagramBody, webhookInstagramReceipt } from '../schemas/public';

export interface InstagramWebhookDeps {
  channels: ChannelService;
  temporal: ParleyTemporal;
  log: Logger;
  /** Deployment-wide Meta app secret; a channel account may override it. */
  appSecret?: string;
  /** Deployment-wide verify token for the subscription handshake. */
  verifyToken?: string;
  /** How long an Instagram account id → channel lookup is cached. */
  routingCacheMs?: number;
}

/** Every distinct Instagram account id (entry[].id) a body names, to find per-channel app secrets before it is trusted. */
function accountIdsOf(json: unknown): string[] {
  const ids = new Set<string>();
  const entries = (json as { entry?: unknown })?.entry;
  if (!Array.isArray(entries)) return [];
  for (const e of entries) {
    const id = (e as { id?: unknown })?.id;
    if (typeof id === 'string' && id.length <= MAX_ACCOUNT_ID_LENGTH) ids.add(id);
  }
  return [...ids];
}

/** Count of expected (non-message) events by kind, for one debug line per body. */
function countByEvent(items: { event?: string }[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const i of items) out[i.event ?? 'other'] = (out[i.event ?? 'other'] ?? 0) + 1;
  return out;
}

const HANDSHAKE_DOC: RouteDoc = {
  summary: "Meta's Instagram webhook subscription handshake",
  description: WEBHOOK_HANDSHAKE_DESCRIPTION,
  tags: ['webhooks'],
  query: webhookHandshakeQuery,
  responses: webhookHandshakeResponses,
};

const WEBHOOK_DOC: RouteDoc = {
  summary: 'Receive Instagram Messaging webhooks (direct messages)',
  description: [
    'Called by Meta. ' + WEBHOOK_SIGNED_BODY_DESCRIPTION + ' A wrong envelope (not `object: "instagram"` with a non-empty `entry` array) is a 400 `invalid_payload`.',
    "Inside a valid envelope everything is acknowledged with 200, even what is ignored, so that Meta does not redeliver it: malformed entries and events, and events that are no user's message (echoes of our own messages, read and delivery receipts, other notifications), count in `ignored`; entries for an Instagram account no channel has in `unknownChannels`. Each user message (text, attachments, quick replies, postbacks, reactions) goes to its lead's conversation (`entry.id` = the channel's Instagram account, the sender's IGSID = the contact), deduplicated by message id; one sender's messages in order.",
    WEBHOOK_ACCEPT_ALL_DESCRIPTION,
  ].join('\n\n'),
  tags: ['webhooks'],
  requestBody: { contentType: 'application/json', schema: webhookInstagramBody, description: 'Read as raw bytes (at most 3 MB): the signature covers them exactly' },
  responses: { 200: webhookInstagramReceipt },
};

/**
 * Instagram Messaging webhook: same signature scheme, handshake and failure answers as the
 * WhatsApp one. Each message signals its lead workflow (`lead:{channelAccountId}:{keyed digest of the IGSID}`, lib/lead-ids.ts);
 * messages of one sender are signalled in order, senders in parallel.
 */
export function createInstagramWebhookRouter(deps: InstagramWebhookDeps): Router {
  const r = Router();
  const log = deps.log.child({ module: 'webhook.instagram' });
  const router = createAccountRouter(deps.channels, 'instagram', { ttlMs: deps.routingCacheMs ?? 30_000 });
  const signatures = createSignatureCheck({ router, appSecret: deps.appSecret, log, accountIdsOf });

  r.get('/webhooks/instagram', publicRoute('Meta webhook handshake: verify token checked by the route'), doc(HANDSHAKE_DOC), verifyHandshake({ channels: deps.channels, verifyToken: deps.verifyToken, log }));

  r.post('/webhooks/instagram', publicRoute('Meta webhook: X-Hub-Signature-256 checked by the route'), doc(WEBHOOK_DOC), express.raw({ type: () => true, limit: WEBHOOK_BODY_LIMIT }), async (req: Request, res: Response) => {
    const signed = await signatures.read(req, res);
    if (!signed) return;
    const parsed = parseInstagramWebhook(signed.json);
    if (!parsed.ok) {
      res.status(400).json({ error: { code: 'invalid_payload', message: parsed.reason, issues: parsed.issues } });
      return;
    }
    if (!(await signatures.verifyAccounts(signed, parsed.entries.map((e) => e.accountId), res))) return;

    const expected = parsed.ignored.filter((i) => i.expected);
    const broken = parsed.ignored.filter((i) => !i.expected);
    // one line per body, not per item: a hostile batch cannot flood the logs
    if (expected.length > 0) log.debug({ events: countByEvent(expected) }, 'webhook events without a user message ignored');
    if (broken.length > 0) {
      log.warn({ ignored: broken.length, first: broken.slice(0, 5).map(({ path, reason }) => ({ path, reason })) }, 'webhook items ignored');
    }

    // per (channel, sender): in order; across senders: in parallel
    const queues = new Map<string, { target: Parameters<ParleyTemporal['signalInbound']>[0]; messages: InboundMessage[] }>();
    let unknownChannels = 0;
    let received = 0;
    for (const entry of parsed.entries) {
      const routing = signed.routings.get(entry.accountId);
      if (!routing) {
        unknownChannels += 1;
        log.warn({ instagramAccountId: entry.accountId }, 'webhook for an unknown Instagram account id (or a deleted channel): acknowledged and dropped');
        continue;
      }
      for (const message of entry.messages) {
        const key = `${routing.id}:${message.contactId}`;
        let q = queues.get(key);
        if (!q) {
          q = { target: { tenantId: routing.tenantId, channelAccountId: routing.id, channel: 'instagram', contactId: message.contactId, contactName: message.contactName }, messages: [] };
          queues.set(key, q);
        }
        q.messages.push(message);
        received += 1;
      }
    }
    if (parsed.adjusted.length > 0) {
      log.warn({ adjusted: parsed.adjusted.length, first: parsed.adjusted.slice(0, 5) }, 'webhook items cut to fit limits');
    }
    const dropped: DroppedItem[] = [];
    const work = [...queues.values()].map(async (q) => {
      for (const message of q.messages) await unlessRefused(deps.temporal.signalInbound(q.target, message), `message ${message.providerMessageId}`, dropped);
    });
    if (!(await acceptAll(work, res, log))) return;
    if (dropped.length > 0) log.warn({ dropped: dropped.length, first: dropped.slice(0, 5) }, 'webhook items refused by Temporal for good: dropped');
    const droppedItems = new Set(dropped.map((d) => d.item));
    for (const q of queues.values()) recordInbound('instagram', q.target.tenantId, q.messages.filter((m) => !droppedItems.has(`message ${m.providerMessageId}`)).length);
    res.status(200).json({
      received: received - dropped.length,
      ignored: parsed.ignored.length,
      // only when something was cut or refused (the usual answer keeps its shape)
      ...(parsed.adjusted.length > 0 ? { adjusted: parsed.adjusted.length } : {}),
      ...(dropped.length > 0 ? { dropped: dropped.length } : {}),
      unknownChannels,
    });
  });
  return r;
}
