import express, { Router, type Request, type Response } from 'express';
import { safeEqual, verifyMetaSignature } from '../../lib/crypto';
import type { Logger } from '../../lib/logger';
import type { ChannelRouting, ChannelService } from '../../services/channels';
import type { LeadService } from '../../services/leads';
import type { ParleyTemporal } from '../../temporal/client';
import { parseWhatsAppWebhook, type ParsedChange } from '../webhooks/whatsapp-payload';

export const WEBHOOK_BODY_LIMIT = '3mb';

export interface WhatsAppWebhookDeps {
  channels: ChannelService;
  leads: LeadService;
  temporal: ParleyTemporal;
  log: Logger;
  /** Deployment-wide Meta app secret; a channel account may override it. */
  appSecret?: string;
  /** Deployment-wide verify token for the subscription handshake. */
  verifyToken?: string;
  /** How long a phone_number_id → channel lookup is cached. */
  routingCacheMs?: number;
}

/** phone_number_id → channel account, cached briefly: the hot path reads no database on a hit. */
function createRoutingCache(channels: ChannelService, ttlMs: number) {
  const cache = new Map<string, { at: number; routing: ChannelRouting }>();
  return async (phoneNumberId: string): Promise<ChannelRouting | undefined> => {
    const hit = cache.get(phoneNumberId);
    if (hit && Date.now() - hit.at < ttlMs) return hit.routing;
    const routing = await channels.routingByPhoneNumberId('whatsapp', phoneNumberId);
    if (routing) cache.set(phoneNumberId, { at: Date.now(), routing });
    else cache.delete(phoneNumberId);
    return routing;
  };
}

/** Best-effort list of phone_number_ids in a body (to find per-channel app secrets before it is trusted). */
function phoneNumberIdsOf(json: unknown): string[] {
  const ids = new Set<string>();
  const entries = (json as { entry?: unknown })?.entry;
  if (!Array.isArray(entries)) return [];
  for (const e of entries.slice(0, 100)) {
    const changes = (e as { changes?: unknown })?.changes;
    if (!Array.isArray(changes)) continue;
    for (const c of changes.slice(0, 100)) {
      const id = (c as { value?: { metadata?: { phone_number_id?: unknown } } })?.value?.metadata?.phone_number_id;
      if (typeof id === 'string' && id.length <= 64) ids.add(id);
    }
  }
  return [...ids];
}

export function createWhatsAppWebhookRouter(deps: WhatsAppWebhookDeps): Router {
  const r = Router();
  const log = deps.log.child({ module: 'webhook.whatsapp' });
  const route = createRoutingCache(deps.channels, deps.routingCacheMs ?? 30_000);

  // Meta's subscription handshake.
  r.get('/webhooks/whatsapp', async (req: Request, res: Response) => {
    const mode = req.query['hub.mode'];
    const token = req.query['hub.verify_token'];
    const challenge = req.query['hub.challenge'];
    if (mode !== 'subscribe' || typeof token !== 'string' || typeof challenge !== 'string' || challenge.length > 200) {
      res.status(403).type('text/plain').send('forbidden');
      return;
    }
    const ok = (deps.verifyToken !== undefined && safeEqual(token, deps.verifyToken)) || (await deps.channels.verifyTokenRegistered(token));
    if (!ok) {
      log.warn('webhook verification with an unknown verify token');
      res.status(403).type('text/plain').send('forbidden');
      return;
    }
    res.status(200).type('text/plain').send(challenge);
  });

  r.post('/webhooks/whatsapp', express.raw({ type: () => true, limit: WEBHOOK_BODY_LIMIT }), async (req: Request, res: Response) => {
    const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const signature = req.header('x-hub-signature-256');
    if (!signature) {
      res.status(401).json({ error: { code: 'invalid_signature', message: 'X-Hub-Signature-256 header is missing' } });
      return;
    }
    let json: unknown;
    let jsonError: string | undefined;
    try {
      json = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      jsonError = (err as Error).message;
    }

    // Which secret must have signed this body: each known channel's own, else the deployment's.
    const routings = new Map<string, ChannelRouting | undefined>();
    for (const id of phoneNumberIdsOf(json)) routings.set(id, await route(id));
    const secrets = new Set<string | undefined>();
    for (const routing of routings.values()) if (routing) secrets.add(routing.appSecret ?? deps.appSecret);
    if (secrets.size === 0) secrets.add(deps.appSecret);
    for (const secret of secrets) {
      if (!secret) {
        log.error('webhook rejected: no Meta app secret configured (META_APP_SECRET or the channel\'s appSecret)');
        res.status(401).json({ error: { code: 'invalid_signature', message: 'no app secret configured to verify this webhook' } });
        return;
      }
      if (!verifyMetaSignature(raw, signature, secret)) {
        log.warn({ phoneNumberIds: [...routings.keys()] }, 'webhook rejected: bad signature');
        res.status(401).json({ error: { code: 'invalid_signature', message: 'X-Hub-Signature-256 does not match the body' } });
        return;
      }
    }

    if (jsonError !== undefined) {
      res.status(400).json({ error: { code: 'invalid_json', message: `body is not valid JSON: ${jsonError}` } });
      return;
    }
    const parsed = parseWhatsAppWebhook(json);
    if (!parsed.ok) {
      res.status(400).json({ error: { code: 'invalid_payload', message: parsed.reason, issues: parsed.issues } });
      return;
    }
    // phoneNumberIdsOf() is bounded, so a change past its bounds had no secret checked yet: every
    // change acted on below must have been signed with its own channel's secret (unknown ones are dropped).
    const checked = new Set<string | undefined>(secrets);
    for (const change of parsed.changes) {
      if (routings.has(change.phoneNumberId)) continue;
      const routing = await route(change.phoneNumberId);
      routings.set(change.phoneNumberId, routing);
      if (!routing) continue;
      const secret = routing.appSecret ?? deps.appSecret;
      if (checked.has(secret)) continue;
      if (!secret || !verifyMetaSignature(raw, signature, secret)) {
        log.warn({ phoneNumberIds: [change.phoneNumberId] }, 'webhook rejected: bad signature');
        res.status(401).json({ error: { code: 'invalid_signature', message: 'X-Hub-Signature-256 does not match the body' } });
        return;
      }
      checked.add(secret);
    }
    if (parsed.ignored.length > 0) {
      // one line per body, not per item: a hostile batch cannot flood the logs
      log.warn({ ignored: parsed.ignored.length, first: parsed.ignored.slice(0, 5) }, 'webhook items ignored');
    }

    const signals: Promise<unknown>[] = [];
    const statusUpdates: Promise<unknown>[] = [];
    let unknownChannels = 0;
    for (const change of parsed.changes as ParsedChange[]) {
      const routing = routings.get(change.phoneNumberId);
      if (!routing) {
        unknownChannels += 1;
        log.warn({ phoneNumberId: change.phoneNumberId }, 'webhook for an unknown phone_number_id: acknowledged and dropped');
        continue;
      }
      for (const message of change.messages) {
        signals.push(
          deps.temporal.signalInbound(
            { tenantId: routing.tenantId, channelAccountId: routing.id, channel: 'whatsapp', contactId: message.contactId, contactName: message.contactName },
            message,
          ),
        );
      }
      for (const s of change.statuses) {
        statusUpdates.push(
          deps.leads.applyStatus({ providerMessageId: s.providerMessageId, status: s.status, error: s.errors.length ? s.errors : undefined }),
        );
      }
    }
    const results = await Promise.allSettled([...signals, ...statusUpdates]);
    const failed = results.filter((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed.length > 0) {
      log.error({ failed: failed.length, err: failed[0]!.reason }, 'webhook not accepted: Temporal or the database refused; Meta will retry');
      res.status(503).json({ error: { code: 'unavailable', message: 'could not accept the webhook now; retry later' } });
      return;
    }
    res.status(200).json({
      received: signals.length,
      statuses: statusUpdates.length,
      ignored: parsed.ignored.length,
      unknownChannels,
    });
  });
  return r;
}
