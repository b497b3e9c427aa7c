import { Router } from 'express';
import { z } from 'zod';
import type { Config } from '../../config';
import { TEMPLATE_CATEGORIES } from '../../contract/vocabulary';
import { AppError } from '../../lib/errors';
import type { Logger } from '../../lib/logger';
import type { Services } from '../../services';
import { createTemplateSync, type TemplateSync } from '../../services/template-sync';
import { tenantAuth } from '../middleware/rate-limit';
import { validate } from '../middleware/validate';
import { MANAGERS, SETUP_READERS, allow } from '../access';
import { doc } from '../openapi';
import { setupDeleted, template, templateSyncResult } from '../schemas/setup';

const templateParams = z.strictObject({ templateId: z.uuid('must be a uuid') });
const channelParams = z.strictObject({ channelId: z.uuid('must be a uuid') });
const templatePatch = z
  .strictObject({
    category: z.enum(TEMPLATE_CATEGORIES).optional(),
    body: z.string().min(1).max(1024).optional(),
    approved: z.boolean().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one field to change');

/**
 * Templates beyond create and list (those are in tenant.ts): the sync with Meta, GET, PATCH and
 * DELETE of one template. Every route is scoped to the key's tenant (another tenant's id → 404).
 */
export function createTemplateRouter(deps: {
  services: Services;
  config: Partial<Pick<Config, 'GRAPH_API_URL' | 'GRAPH_API_VERSION' | 'GRAPH_API_TIMEOUT_MS'>>;
  log: Logger;
  sync?: TemplateSync;
}): Router {
  const { services } = deps;
  const r = Router();
  const auth = tenantAuth(services);
  const sync =
    deps.sync ??
    (deps.config.GRAPH_API_URL
      ? createTemplateSync({
          channels: services.channels,
          templates: services.templates,
          graphApiUrl: deps.config.GRAPH_API_URL,
          graphApiVersion: deps.config.GRAPH_API_VERSION ?? 'v21.0',
          timeoutMs: deps.config.GRAPH_API_TIMEOUT_MS ?? 15_000,
          log: deps.log,
        })
      : undefined);

  r.post(
    '/v1/channels/:channelId/templates/sync',
    auth,
    allow(...MANAGERS),
    validate({ params: channelParams }),
    doc({
      summary: "Sync a WhatsApp channel's templates from Meta",
      tags: ['templates'],
      description:
        "Reads every template of the channel's WhatsApp Business Account from the Graph API (all pages, synchronously) and upserts them by name and language: a local template of the same name and language becomes the synced one, its status Meta's from then on. Synced templates Meta no longer lists are marked DELETED (not approved). 409 `not_whatsapp` on another platform, 409 `waba_id_missing` until the channel has a `wabaId` (PATCH /v1/channels/{channelId}). The Graph API refusing (token, permissions, a list over 100 pages) is a 502, a transient failure or no Graph API configured a 503: nothing is changed then.",
      responses: { 200: templateSyncResult },
    }),
    async (_req, res) => {
      if (!sync) throw new AppError('unavailable', 'no Graph API is configured (GRAPH_API_URL)');
      res.json(await sync.sync(res.locals.tenantId, res.locals.params.channelId));
    },
  );

  r.get(
    '/v1/templates/:templateId',
    auth,
    allow(...SETUP_READERS),
    validate({ params: templateParams }),
    doc({ summary: 'Get a template', responses: { 200: template } }),
    async (_req, res) => {
      const t = await services.templates.get(res.locals.tenantId, res.locals.params.templateId);
      if (!t) throw new AppError('not_found', 'template not found');
      res.json(t);
    },
  );

  r.patch(
    '/v1/templates/:templateId',
    auth,
    allow(...MANAGERS),
    validate({ params: templateParams, body: templatePatch }),
    doc({
      summary: 'Change a local template',
      description: "The category, body or approval of a template created through the API. A synced template is Meta's (edit it in WhatsApp Manager, then sync): 409 `synced_template`.",
      responses: { 200: template },
    }),
    async (_req, res) => {
      const t = await services.templates.update(res.locals.tenantId, res.locals.params.templateId, res.locals.body);
      if (!t) throw new AppError('not_found', 'template not found');
      res.json(t);
    },
  );

  r.delete(
    '/v1/templates/:templateId',
    auth,
    allow(...MANAGERS),
    validate({ params: templateParams }),
    doc({ summary: 'Delete a template', description: "Deletes the tenant's copy; a synced template comes back with the next sync while Meta lists it. A sequence step naming a deleted template is skipped (`template_not_found`).", responses: { 200: setupDeleted } }),
    async (_req, res) => {
      const before = await services.templates.get(res.locals.tenantId, res.locals.params.templateId);
      if (!before || !(await services.templates.remove(res.locals.tenantId, res.locals.params.templateId))) throw new AppError('not_found', 'template not found');
      // a JSON answer, so the audit log records the deletion with what was deleted
      res.locals.audit = { before, after: null };
      res.json({ id: before.id, deleted: true });
    },
  );

  return r;
}
