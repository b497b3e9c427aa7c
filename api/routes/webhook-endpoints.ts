/**
 * Outbound webhooks (issue 12): a tenant's endpoints and their deliveries. Managers change them,
 * setup readers read them. The signing secret is answered once (creation, rotation) and is never
 * logged: the audit log redacts fields named like secrets.
 */
import { Router } from 'express';
import { z } from 'zod';
import { checkWebhookUrlForm } from '../../activities/webhooks/url-guard';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import { WEBHOOK_EVENT_TYPES } from '../../services/webhook-endpoints';
import { allow, MANAGERS, SETUP_READERS } from '../access';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';
import { doc } from '../openapi';
import { pageOf } from '../schemas/common';
import { webhookDeliverySchema, webhookEndpointSchema, webhookEndpointWithSecretSchema } from '../schemas/webhooks';

const events = z.array(z.enum(WEBHOOK_EVENT_TYPES)).min(1).max(WEBHOOK_EVENT_TYPES.length);
const url = z.string().trim().max(2000);
const createBody = z.strictObject({ url, events, description: z.string().trim().max(500).optional() });
const patchBody = z.strictObject({ url: url.optional(), events: events.optional(), description: z.string().trim().max(500).nullable().optional(), enabled: z.boolean().optional() });
const idParams = z.object({ id: z.string().max(100) });
const deliveryParams = z.object({ id: z.string().max(100), deliveryId: z.string().max(100) });

export function createWebhookEndpointRouter(deps: { services: Services; allowLocalUrls: boolean }): Router {
  const { services } = deps;
  const r = Router();
  r.use('/v1/webhook-endpoints', tenantAuth(services));

  /** The SSRF rules on the url's form (the resolved address is checked again on every delivery). */
  const checkUrl = (value: string | undefined) => {
    if (value === undefined) return;
    const v = checkWebhookUrlForm(value, { allowLocal: deps.allowLocalUrls });
    if (!v.ok) throw new AppError('validation_failed', `url refused: ${v.reason}`, [{ path: 'url', message: v.reason, code: 'custom' }]);
  };

  r.post(
    '/v1/webhook-endpoints',
    allow(...MANAGERS),
    validate({ body: createBody }),
    doc({
      summary: 'Register a webhook endpoint',
      description:
        'The answer carries the signing secret (`secret`, `whsec_` + base64) this once: it is stored encrypted and never shown again (rotate it to get a new one). In production the url must be https and resolve to public addresses only.',
      responses: { 201: webhookEndpointWithSecretSchema },
    }),
    async (_req, res) => {
      checkUrl(res.locals.body.url);
      const created = await services.webhookEndpoints.create(res.locals.tenantId, res.locals.body);
      res.status(201).json(created);
    },
  );
  r.get('/v1/webhook-endpoints', allow(...SETUP_READERS), validate({ query: pageQuery }), doc({ summary: 'List webhook endpoints', description: 'Oldest first; never a secret.', responses: { 200: pageOf(webhookEndpointSchema) } }), async (_req, res) => {
    res.json(await services.webhookEndpoints.list(res.locals.tenantId, res.locals.query));
  });
  r.get('/v1/webhook-endpoints/:id', allow(...SETUP_READERS), validate({ params: idParams }), doc({ summary: 'Get a webhook endpoint', responses: { 200: webhookEndpointSchema } }), async (_req, res) => {
    res.json(await services.webhookEndpoints.get(res.locals.tenantId, res.locals.params.id));
  });
  r.patch(
    '/v1/webhook-endpoints/:id',
    allow(...MANAGERS),
    validate({ params: idParams, body: patchBody }),
    doc({
      summary: 'Change a webhook endpoint',
      description: '`enabled: true` re-enables an endpoint disabled after failed deliveries (its failure count starts again); `enabled: false` stops new deliveries.',
      responses: { 200: webhookEndpointSchema },
    }),
    async (_req, res) => {
      checkUrl(res.locals.body.url);
      const before = await services.webhookEndpoints.get(res.locals.tenantId, res.locals.params.id);
      const after = await services.webhookEndpoints.update(res.locals.tenantId, res.locals.params.id, res.locals.body);
      res.locals.audit = { before, after };
      res.json(after);
    },
  );
  r.delete(
    '/v1/webhook-endpoints/:id',
    allow(...MANAGERS),
    validate({ params: idParams }),
    doc({ summary: 'Delete a webhook endpoint', description: 'With its deliveries; a delivery still being retried stops.', responses: { 200: webhookEndpointSchema } }),
    async (_req, res) => {
      res.json(await services.webhookEndpoints.remove(res.locals.tenantId, res.locals.params.id));
    },
  );
  r.post(
    '/v1/webhook-endpoints/:id/rotate-secret',
    allow(...MANAGERS),
    validate({ params: idParams }),
    doc({ summary: "Rotate a webhook endpoint's signing secret", description: 'The new secret is answered this once; deliveries are signed with it from the next attempt on (the old one stops at once).', responses: { 201: webhookEndpointWithSecretSchema } }),
    async (_req, res) => {
      res.status(201).json(await services.webhookEndpoints.rotateSecret(res.locals.tenantId, res.locals.params.id));
    },
  );
  r.get(
    '/v1/webhook-endpoints/:id/deliveries',
    allow(...SETUP_READERS),
    validate({ params: idParams, query: pageQuery }),
    doc({ summary: "List a webhook endpoint's deliveries", description: 'Newest first: status, attempts, the last answer (status and at most 500 characters of its body) and timestamps.', responses: { 200: pageOf(webhookDeliverySchema) } }),
    async (_req, res) => {
      res.json(await services.webhookEndpoints.deliveries(res.locals.tenantId, res.locals.params.id, res.locals.query));
    },
  );
  r.post(
    '/v1/webhook-endpoints/:id/deliveries/:deliveryId/retry',
    allow(...MANAGERS),
    validate({ params: deliveryParams }),
    doc({
      summary: 'Retry a webhook delivery',
      description: 'A finished delivery (succeeded or failed) is delivered again, with the same `webhook-id`, retried as a new one. Still pending or delivering, or the endpoint disabled → 409.',
      responses: { 202: webhookDeliverySchema },
    }),
    async (_req, res) => {
      res.status(202).json(await services.webhookEndpoints.retryDelivery(res.locals.tenantId, res.locals.params.id, res.locals.params.deliveryId));
    },
  );
  return r;
}
