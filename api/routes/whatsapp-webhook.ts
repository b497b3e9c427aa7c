import { recordInbound } from '../../lib/metrics';
import express, { Router, type Request, type Response } from 'express';
import type { InboundMessage } from '../../contract/messages';
import type { Logger } from '../../lib/logger';
import type { ChannelRouting, ChannelService } from '../../services/channels';
import { identityForms, type ContactIdentityService, type IdentityQuery } from '../../services/contact-identities';
import type { LeadService } from '../../services/leads';
import type { TemplateChange, TemplateService } from '../../services/templates';
import { verifyMetaSignature } from '../../lib/crypto';
import type { ParleyTemporal } from '../../temporal/client';
import { acceptAll, createAccountRouter, createSignatureCheck, MAX_ACCOUNT_ID_LENGTH, MAX_ACCOUNT_IDS_PER_UNTRUSTED_BODY, unlessRefused, verifyHandshake, WEBHOOK_BODY_LIMIT, type DroppedItem } from '../webhooks/meta-receiver';
import { parseWhatsAppWebhook, TEMPLATE_WEBHOOK_FIELDS, type ParsedChange, type ParsedStatus, type ParsedTemplateChange } from '../webhooks/whatsapp-payload';
import { publicRoute } from '../access';
import { doc, type RouteDoc } from '../openapi';
import { WEBHOOK_ACCEPT_ALL_DESCRIPTION, WEBHOOK_HANDSHAKE_DESCRIPTION, WEBHOOK_SIGNED_BODY_DESCRIPTION, webhookHandshakeQuery, webhookHandshakeResponses, webhookWhatsAppBody, webhookWhatsAppReceipt } from '../schemas/public';

export { WEBHOOK_BODY_LIMIT } from '../webhooks/meta-receiver';

export interface WhatsAppWebhookDeps {
  channels: ChannelService;
  leads: LeadService;
  /** Template status, quality and category webhooks update the stored templates (absent: acknowledged only). */
  templates?: Pick<TemplateService, 'applyChange'>;
  /** The per-channel identity map (phone, BSUID → the lead's contact id); without it the sender's own form is used. */
  identities?: ContactIdentityService;
  temporal: ParleyTemporal;
  log: Logger;
  /** Deployment-wide Meta app secret; a channel account may override it. */
  appSecret?: string;
  /** Deployment-wide verify token for the subscription handshake. */
  verifyToken?: string;
  /** How long a phone_number_id → channel lookup is cached. */
  routingCacheMs?: number;
}

/** Every distinct phone_number_id a body names (to find per-channel app secrets before it is trusted). */
function phoneNumberIdsOf(json: unknown): string[] {
  const ids = new Set<string>();
  const entries = (json as { entry?: unknown })?.entry;
  if (!Array.isArray(entries)) return [];
  for (const e of entries) {
    const changes = (e as { changes?: unknown })?.changes;
    if (!Array.isArray(changes)) continue;
    for (const c of changes) {
      const id = (c as { value?: { metadata?: { phone_number_id?: unknown } } })?.value?.metadata?.phone_number_id;
      if (typeof id === 'string' && id.length <= MAX_ACCOUNT_ID_LENGTH) ids.add(id);
    }
  }
  return [...ids];
}

/** Every distinct entry.id (WhatsApp Business Account id) a body names with a template change; none when over the cap. */
function businessAccountIdsOf(json: unknown): string[] {
  const ids = new Set<string>();
  const entries = (json as { entry?: unknown })?.entry;
  if (!Array.isArray(entries)) return [];
  for (const e of entries) {
    const id = (e as { id?: unknown })?.id;
    const changes = (e as { changes?: unknown })?.changes;
    if (typeof id !== 'string' || !/^\d{1,30}$/.test(id) || !Array.isArray(changes)) continue;
    if (changes.some((c) => (TEMPLATE_WEBHOOK_FIELDS as readonly string[]).includes((c as { field?: unknown })?.field as string))) ids.add(id);
    if (ids.size > MAX_ACCOUNT_IDS_PER_UNTRUSTED_BODY) return [];
  }
  return [...ids];
}

const HANDSHAKE_DOC: RouteDoc = {
  summary: "Meta's WhatsApp webhook subscription handshake",
  description: WEBHOOK_HANDSHAKE_DESCRIPTION,
  tags: ['webhooks'],
  query: webhookHandshakeQuery,
  responses: webhookHandshakeResponses,
};

const WEBHOOK_DOC: RouteDoc = {
  summary: 'Receive WhatsApp Cloud API webhooks (messages, delivery statuses, template changes)',
  description: [
    'Called by Meta. ' +
      WEBHOOK_SIGNED_BODY_DESCRIPTION +
      ' A wrong envelope (not `object: "whatsapp_business_account"` with a non-empty `entry` of objects with a `changes` array) is a 400 `invalid_payload`.',
    "Inside a valid envelope everything is acknowledged with 200, even what is ignored, so that Meta does not redeliver it: malformed items and fields other than `messages` and the template fields count in `ignored`, changes for a phone_number_id no channel has in `unknownChannels`. Messages go to their lead's conversation (deduplicated by message id: a redelivery is harmless); statuses update the messages that channel sent (a failure also reaches the conversation); template status, quality and category changes (entry.id: the WhatsApp Business Account) update the synced templates of the tenants whose WhatsApp channels name that account.",
    WEBHOOK_ACCEPT_ALL_DESCRIPTION,
  ].join('\n\n'),
  tags: ['webhooks'],
  requestBody: { contentType: 'application/json', schema: webhookWhatsAppBody, description: 'Read as raw bytes (at most 3 MB): the signature covers them exactly' },
  responses: { 200: webhookWhatsAppReceipt },
};

export function createWhatsAppWebhookRouter(deps: WhatsAppWebhookDeps): Router {
  const r = Router();
  const log = deps.log.child({ module: 'webhook.whatsapp' });
  const router = createAccountRouter(deps.channels, 'whatsapp', { ttlMs: deps.routingCacheMs ?? 30_000 });
  const signatures = createSignatureCheck({
    router,
    appSecret: deps.appSecret,
    log,
    accountIdsOf: phoneNumberIdsOf,
    // template webhooks of a channel on its own app secret: signed by that secret, naming only its account
    businessAccountSecretsOf: async (json) => {
      const ids = businessAccountIdsOf(json);
      if (ids.length === 0) return [];
      const byWaba = await deps.channels.routingsByWabaIds(ids);
      return [...new Set([...byWaba.values()].flat().flatMap((r) => (r.appSecret ? [r.appSecret] : [])))];
    },
  });

  // Meta's subscription handshake.
  r.get('/webhooks/whatsapp', publicRoute('Meta webhook handshake: verify token checked by the route'), doc(HANDSHAKE_DOC), verifyHandshake({ channels: deps.channels, verifyToken: deps.verifyToken, log }));

  /**
   * Apply template changes to the synced templates of the tenants whose WhatsApp channels name
   * that account. A channel on its own app secret is only reached when that secret signed the
   * body (as for messages); an account no channel names is acknowledged and dropped.
   */
  async function applyTemplateChanges(changes: ParsedTemplateChange[], signed: { raw: Buffer; signature: string; checked: Set<string | undefined>; trusted: boolean }) {
    const result = { changes: changes.length, updated: 0, unmatched: 0, unknownAccounts: 0 };
    if (changes.length === 0 || !deps.templates) return result;
    if (!signed.trusted && new Set(changes.map((c) => c.wabaId)).size > MAX_ACCOUNT_IDS_PER_UNTRUSTED_BODY) {
      // signed by one channel's own secret only: as many accounts as any body of ours may name
      result.unknownAccounts = changes.length;
      return result;
    }
    const byWaba = await deps.channels.routingsByWabaIds(changes.map((c) => c.wabaId));
    const tenantsOf = new Map<string, string[]>();
    for (const [wabaId, routings] of byWaba) {
      const tenants = new Set<string>();
      for (const routing of routings) {
        const secret = routing.appSecret ?? deps.appSecret;
        if (!signed.checked.has(secret)) {
          if (!secret || !verifyMetaSignature(signed.raw, signed.signature, secret)) {
            log.warn({ channels: 1 }, 'template webhook not signed with the channel\'s own app secret: not applied to that channel');
            continue;
          }
          signed.checked.add(secret);
        }
        tenants.add(routing.tenantId);
      }
      tenantsOf.set(wabaId, [...tenants]);
    }
    for (const c of changes) {
      const tenantIds = tenantsOf.get(c.wabaId) ?? [];
      if (tenantIds.length === 0) {
        result.unknownAccounts += 1;
        continue;
      }
      const n = await deps.templates.applyChange(tenantIds, c.wabaId, templateChangeOf(c));
      if (n === 0) result.unmatched += 1;
      result.updated += n;
    }
    if (result.unknownAccounts > 0 || result.unmatched > 0) log.info({ ...result }, 'template webhook: changes for unknown accounts or templates acknowledged');
    return result;
  }

  r.post('/webhooks/whatsapp', publicRoute('Meta webhook: X-Hub-Signature-256 checked by the route'), doc(WEBHOOK_DOC), express.raw({ type: () => true, limit: WEBHOOK_BODY_LIMIT }), async (req: Request, res: Response) => {
    const signed = await signatures.read(req, res);
    if (!signed) return;
    const { routings } = signed;
    const parsed = parseWhatsAppWebhook(signed.json);
    if (!parsed.ok) {
      res.status(400).json({ error: { code: 'invalid_payload', message: parsed.reason, issues: parsed.issues } });
      return;
    }
    if (!(await signatures.verifyAccounts(signed, parsed.changes.map((c) => c.phoneNumberId), res))) return;
    if (parsed.ignored.length > 0) {
      // one line per body, not per item: a hostile batch cannot flood the logs
      log.warn({ ignored: parsed.ignored.length, first: parsed.ignored.slice(0, 5) }, 'webhook items ignored');
    }
    if (parsed.adjusted.length > 0) {
      log.warn({ adjusted: parsed.adjusted.length, first: parsed.adjusted.slice(0, 5) }, 'webhook items cut to fit limits');
    }
    const dropped: DroppedItem[] = [];

    // every sender and recipient of the body, with the forms it came in (phone, BSUID)
    type Item = { routing: ChannelRouting; query: IdentityQuery } & ({ message: InboundMessage } | { status: ParsedStatus });
    const items: Item[] = [];
    let unknownChannels = 0;
    for (const change of parsed.changes as ParsedChange[]) {
      const routing = routings.get(change.phoneNumberId);
      if (!routing) {
        unknownChannels += 1;
        log.warn({ phoneNumberId: change.phoneNumberId }, 'webhook for an unknown phone_number_id (or a deleted channel): acknowledged and dropped');
        continue;
      }
      for (const message of change.messages) {
        items.push({ routing, message, query: { channelAccountId: routing.id, forms: identityForms(message.identity, message.contactId), fallback: message.contactId } });
      }
      for (const status of change.statuses) {
        // a status links a second form to a known lead; it never starts one
        items.push({ routing, status, query: { channelAccountId: routing.id, forms: identityForms(status.recipient, status.recipientId), fallback: status.recipientId, create: false } });
      }
    }
    // which lead each one is: the identity map, one statement per body at most (none when cached).
    // Statuses only ask when they matter: a failure for the lead's workflow, or a second form to learn.
    const asks = items.filter((it) => 'message' in it || it.status.status === 'failed' || it.query.forms.length > 1);
    // a message from a contact known by one form is for the lead of that form: its payload key
    // (a new lead's: one database statement) is created while the identity lookup runs, not after
    for (const it of items) if ('message' in it && it.query.forms.length <= 1) deps.temporal.prepareLead(it.routing.id, it.query.fallback);
    const contactOf = new Map<Item, string>();
    if (deps.identities && asks.length > 0) {
      const identities = deps.identities;
      const lookup = identities.resolve(asks.map((it) => it.query));
      if (!(await acceptAll([lookup], res, log))) return;
      const resolved = await lookup;
      asks.forEach((it, i) => contactOf.set(it, resolved.contactIds[i]!));
      if (resolved.conflicts > 0) log.warn({ conflicts: resolved.conflicts }, 'webhook items whose forms belong to two leads: sent to the older one');
    }

    const signals: Promise<unknown>[] = [];
    const statusUpdates: Promise<unknown>[] = [];
    for (const it of items) {
      const { routing } = it;
      const contactId = contactOf.get(it) ?? it.query.fallback;
      if ('message' in it) {
        const message: InboundMessage = { ...it.message, contactId };
        signals.push(
          unlessRefused(
            deps.temporal.signalInbound(
              { tenantId: routing.tenantId, channelAccountId: routing.id, channel: 'whatsapp', contactId, contactName: message.contactName },
              message,
            ),
            `message ${message.providerMessageId}`,
            dropped,
          ),
        );
        continue;
      }
      const s = it.status;
      statusUpdates.push(
        (async () => {
          // a failure after the provider accepted the message matters to the lead's workflow:
          // signalled first, so a redelivered webhook signals again (the workflow dedups by provider id)
          if (s.status === 'failed') {
            await unlessRefused(
              deps.temporal.signalDeliveryStatus(deps.temporal.leadWorkflowId(routing.id, contactId), {
                providerMessageId: s.providerMessageId,
                outboundMessageId: s.bizOpaqueCallbackData,
                status: 'failed',
                errors: s.errors.map((e) => ({ code: e.code, title: e.title, message: e.message })),
                timestamp: s.timestamp,
              }),
              `status of ${s.providerMessageId}`,
              dropped,
            );
          }
          // only this channel account's (and tenant's) messages: a signed webhook of one tenant
          // must not move another tenant's send
          await deps.leads.applyStatus({
            tenantId: routing.tenantId,
            channelAccountId: routing.id,
            providerMessageId: s.providerMessageId,
            status: s.status,
            error: s.errors.length ? s.errors : undefined,
            outboundMessageId: s.bizOpaqueCallbackData,
          });
        })(),
      );
    }
    // template changes address a WhatsApp Business Account (entry.id): its channels, one query
    const templateWork = applyTemplateChanges(parsed.templateChanges, signed);
    if (!(await acceptAll([...signals, ...statusUpdates, templateWork], res, log))) return;
    const templates = await templateWork;
    if (dropped.length > 0) log.warn({ dropped: dropped.length, first: dropped.slice(0, 5) }, 'webhook items refused by Temporal for good: dropped');
    const received = signals.length - dropped.filter((d) => d.item.startsWith('message ')).length;
    const droppedItems = new Set(dropped.map((d) => d.item));
    for (const it of items) if ('message' in it && !droppedItems.has(`message ${it.message.providerMessageId}`)) recordInbound('whatsapp', it.routing.tenantId);
    res.status(200).json({
      received,
      statuses: statusUpdates.length,
      ignored: parsed.ignored.length,
      // only when something was cut or refused (the usual answer keeps its shape)
      ...(parsed.adjusted.length > 0 ? { adjusted: parsed.adjusted.length } : {}),
      ...(dropped.length > 0 ? { dropped: dropped.length } : {}),
      unknownChannels,
      // only when the body carried template changes
      ...(parsed.templateChanges.length > 0 ? { templates } : {}),
    });
  });
  return r;
}

/** A parsed template change as the template service applies it (and records it as the template's last event). */
function templateChangeOf(c: ParsedTemplateChange): TemplateChange {
  const { wabaId: _wabaId, ...event } = c;
  return {
    field: c.field,
    at: c.at,
    metaTemplateId: c.metaTemplateId,
    name: c.name,
    language: c.language,
    status: c.status,
    reason: c.reason,
    qualityScore: c.newQualityScore,
    category: c.newCategory,
    event,
  };
}
