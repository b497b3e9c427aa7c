import { Router } from 'express';
import { z } from 'zod';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import { requireAdmin } from '../middleware/auth';
import { validate } from '../middleware/validate';

const createTenantBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  creditsPerReply: z.number().int().min(0).max(1000).optional(),
});
const topUpBody = z.strictObject({
  amount: z.number().int().positive().max(100_000_000),
  reference: z.string().trim().min(1).max(200),
});
const tenantParams = z.object({ tenantId: z.uuid() });

/** Platform-admin routes: tenants and their credits. */
export function createAdminRouter(deps: { services: Services; adminToken?: string }): Router {
  const r = Router();
  r.use('/v1/tenants', requireAdmin(deps.adminToken));

  r.post('/v1/tenants', validate({ body: createTenantBody }), async (_req, res) => {
    const t = await deps.services.tenants.create(res.locals.body);
    res.status(201).json(t);
  });

  r.post(
    '/v1/tenants/:tenantId/credits',
    validate({ body: topUpBody }),
    async (req, res) => {
      const params = tenantParams.safeParse(req.params);
      if (!params.success || !(await deps.services.tenants.exists(params.data.tenantId))) {
        throw new AppError('not_found', 'tenant not found');
      }
      const result = await deps.services.credits.topUp({ tenantId: params.data.tenantId, ...res.locals.body });
      res.status(result.applied ? 201 : 200).json({ ...result, reference: res.locals.body.reference });
    },
  );
  return r;
}
