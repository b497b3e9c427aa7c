import { Router } from 'express';
import { z } from 'zod';
import { API_KEY_ROLES } from '../../contract/vocabulary';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import { DEFAULT_ROTATION_GRACE_SECONDS, MAX_ROTATION_GRACE_SECONDS } from '../../services/api-keys';
import { allow, MANAGERS, OWNERS } from '../access';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';

const createKeyBody = z.strictObject({
  name: z.string().trim().min(1).max(100),
  role: z.enum(API_KEY_ROLES),
});
const rotateBody = z.strictObject({
  /** How long the old key keeps working, in seconds (0 = it stops now); default 1 hour, at most 7 days. */
  graceSeconds: z.number().int().min(0).max(MAX_ROTATION_GRACE_SECONDS).default(DEFAULT_ROTATION_GRACE_SECONDS),
});
const keyParams = z.object({ keyId: z.string().max(100) });

/** API keys (owners only) and the audit log (owners and managers). */
export function createApiKeyRouter(deps: { services: Services }): Router {
  const { services } = deps;
  const r = Router();
  const auth = tenantAuth(services);
  for (const p of ['/v1/api-keys', '/v1/audit-log']) r.use(p, auth);

  r.post('/v1/api-keys', allow(...OWNERS), validate({ body: createKeyBody }), async (_req, res) => {
    res.status(201).json(await services.apiKeys.create(res.locals.tenantId, res.locals.body));
  });
  r.get('/v1/api-keys', allow(...OWNERS), validate({ query: pageQuery }), async (_req, res) => {
    res.json(await services.apiKeys.list(res.locals.tenantId, res.locals.query));
  });
  r.get('/v1/api-keys/:keyId', allow(...OWNERS), validate({ params: keyParams }), async (_req, res) => {
    const key = await services.apiKeys.get(res.locals.tenantId, res.locals.params.keyId);
    if (!key) throw new AppError('not_found', 'API key not found');
    res.json(key);
  });
  r.delete('/v1/api-keys/:keyId', allow(...OWNERS), validate({ params: keyParams }), async (_req, res) => {
    const before = await services.apiKeys.get(res.locals.tenantId, res.locals.params.keyId);
    const key = await services.apiKeys.revoke(res.locals.tenantId, res.locals.params.keyId);
    res.locals.audit = { before, after: key };
    res.json(key);
  });
  r.post('/v1/api-keys/:keyId/rotate', allow(...OWNERS), validate({ params: keyParams, body: rotateBody }), async (_req, res) => {
    const { key, previous } = await services.apiKeys.rotate(res.locals.tenantId, res.locals.params.keyId, res.locals.body.graceSeconds);
    res.locals.audit = { after: { key: { ...key, key: undefined }, previous } };
    res.status(201).json({ ...key, previous });
  });

  r.get('/v1/audit-log', allow(...MANAGERS), validate({ query: pageQuery }), async (_req, res) => {
    res.json(await services.auditLog.list(res.locals.tenantId, res.locals.query));
  });
  return r;
}
