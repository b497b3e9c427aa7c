import { Router } from 'express';
import { z } from 'zod';
import { API_KEY_ROLES } from '../../contract/vocabulary';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import { DEFAULT_ROTATION_GRACE_SECONDS, MAX_ROTATION_GRACE_SECONDS } from '../../services/api-keys';
import { allow, MANAGERS, OWNERS } from '../access';
import { tenantAuth } from '../middleware/rate-limit';
import { pageQuery, validate } from '../middleware/validate';
import { doc } from '../openapi';
import { apiKeyCreatedSchema, apiKeyRotatedSchema, apiKeySchema, auditEntrySchema } from '../schemas/accounts';
import { pageOf } from '../schemas/common';

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

  r.post(
    '/v1/api-keys',
    allow(...OWNERS),
    validate({ body: createKeyBody }),
    doc({ summary: 'Create an API key', description: 'The answer carries the key itself (`key`) this once: only its SHA-256 is stored.', responses: { 201: apiKeyCreatedSchema } }),
    async (_req, res) => {
      res.status(201).json(await services.apiKeys.create(res.locals.tenantId, res.locals.body));
    },
  );
  r.get('/v1/api-keys', allow(...OWNERS), validate({ query: pageQuery }), doc({ summary: 'List API keys', description: 'Oldest first, revoked and rotated keys included; never a secret.', responses: { 200: pageOf(apiKeySchema) } }), async (_req, res) => {
    res.json(await services.apiKeys.list(res.locals.tenantId, res.locals.query));
  });
  r.get('/v1/api-keys/:keyId', allow(...OWNERS), validate({ params: keyParams }), doc({ summary: 'Get an API key', responses: { 200: apiKeySchema } }), async (_req, res) => {
    const key = await services.apiKeys.get(res.locals.tenantId, res.locals.params.keyId);
    if (!key) throw new AppError('not_found', 'API key not found');
    res.json(key);
  });
  r.delete(
    '/v1/api-keys/:keyId',
    allow(...OWNERS),
    validate({ params: keyParams }),
    doc({
      summary: 'Revoke an API key',
      description:
        "At once: the next request with it is a 401. Idempotent (a revoked key answers as it is). The tenant's last lasting owner key (another owner key without an expiry is needed; one living on a rotation's grace does not count) → 409.",
      responses: { 200: apiKeySchema },
    }),
    async (_req, res) => {
      const before = await services.apiKeys.get(res.locals.tenantId, res.locals.params.keyId);
      const key = await services.apiKeys.revoke(res.locals.tenantId, res.locals.params.keyId);
      res.locals.audit = { before, after: key };
      res.json(key);
    },
  );
  r.post(
    '/v1/api-keys/:keyId/rotate',
    allow(...OWNERS),
    validate({ params: keyParams, body: rotateBody }),
    doc({
      summary: 'Rotate an API key',
      description:
        'Creates a new key with the same name and role (its `key` shown this once) and answers it with `previous`, the old key, which keeps working for `graceSeconds` (default 1 hour, at most 7 days, 0 = it stops now). A revoked or already rotated key → 409.',
      responses: { 201: apiKeyRotatedSchema },
    }),
    async (_req, res) => {
      const { key, previous } = await services.apiKeys.rotate(res.locals.tenantId, res.locals.params.keyId, res.locals.body.graceSeconds);
      res.locals.audit = { after: { key: { ...key, key: undefined }, previous } };
      res.status(201).json({ ...key, previous });
    },
  );

  r.get(
    '/v1/audit-log',
    allow(...MANAGERS),
    validate({ query: pageQuery }),
    doc({
      summary: 'List audit log entries',
      description:
        'Every change a tenant API key made (POST, PUT, PATCH, DELETE answered 2xx), newest first. Fields named like secrets are stored as "[redacted]", long strings are cut at 2,000 characters. Reads, refused calls and platform-admin calls are not recorded.',
      responses: { 200: pageOf(auditEntrySchema) },
    }),
    async (_req, res) => {
      res.json(await services.auditLog.list(res.locals.tenantId, res.locals.query));
    },
  );
  return r;
}
