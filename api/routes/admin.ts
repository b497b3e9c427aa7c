import { Router } from 'express';
import { z } from 'zod';
import { AppError } from '../../lib/errors';
import type { Services } from '../../services';
import { RESERVED_REFERENCE_PREFIXES, reservedReferencePrefix } from '../../services/credits';
import { requireAdmin } from '../middleware/auth';
import { pageQuery, validate } from '../middleware/validate';
import { adminOnly } from '../access';
import { doc } from '../openapi';
import { tenantCreatedSchema, tenantSchema, tenantWithLimitsSchema, topUpSchema } from '../schemas/accounts';
import { pageOf } from '../schemas/common';

const createTenantBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  creditsPerReply: z.number().int().min(0).max(1000).optional(),
});
const topUpBody = z.strictObject({
  amount: z.number().int().positive().max(100_000_000),
  reference: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .refine((r) => !reservedReferencePrefix(r), { message: `must not start with a reserved prefix (${RESERVED_REFERENCE_PREFIXES.join(', ')})` }),
});
const tenantParams = z.object({ tenantId: z.uuid() });
/** A tenant's name, suspension and own limits (null = back to the deployment default). */
const tenantPatchBody = z
  .strictObject({
    name: z.string().trim().min(1).max(200).optional(),
    /** true: webhooks are still recorded, but no bot sends and the tenant's API keys answer 403; false: active again. */
    suspended: z.boolean().optional(),
    apiRequestsPerMinute: z.number().int().min(1).max(1_000_000).nullable().optional(),
    /** micro-USD per UTC day; 0 = no LLM calls (llm_daily_budget_micros is a 32-bit integer). */
    llmDailyBudgetMicros: z.number().int().min(0).max(2_147_483_647).nullable().optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), 'set at least one of name, suspended, apiRequestsPerMinute, llmDailyBudgetMicros');

/** Platform-admin routes: tenants and their credits. */
export function createAdminRouter(deps: { services: Services; adminToken?: string }): Router {
  const r = Router();
  r.use('/v1/tenants', requireAdmin(deps.adminToken));

  r.post(
    '/v1/tenants',
    adminOnly(),
    validate({ body: createTenantBody }),
    doc({
      summary: 'Create a tenant',
      description: 'With its first API key (role owner, answered once as `apiKey`) and the default pipeline. `creditsPerReply` defaults to DEFAULT_CREDITS_PER_REPLY.',
      responses: { 201: tenantCreatedSchema },
    }),
    async (_req, res) => {
      const t = await deps.services.tenants.create(res.locals.body);
      res.status(201).json(t);
    },
  );

  r.post(
    '/v1/tenants/:tenantId/credits', adminOnly(),
    validate({ body: topUpBody }),
    doc({
      summary: "Top up a tenant's credits",
      description: `Idempotent by \`reference\`: 201 when applied, 200 when that reference was already applied with the same amount (nothing changes); the same reference with another amount → 409. A reference may not start with Parley's own prefixes (${RESERVED_REFERENCE_PREFIXES.join(', ')}).`,
      responses: { 201: { schema: topUpSchema, description: 'Applied' }, 200: { schema: topUpSchema, description: 'Already applied (same reference and amount): nothing changed' } },
    }),
    async (req, res) => {
      const params = tenantParams.safeParse(req.params);
      if (!params.success || !(await deps.services.tenants.exists(params.data.tenantId))) {
        throw new AppError('not_found', 'tenant not found');
      }
      const result = await deps.services.credits.topUp({ tenantId: params.data.tenantId, ...res.locals.body });
      res.status(result.applied ? 201 : 200).json({ ...result, reference: res.locals.body.reference });
    },
  );

  r.get('/v1/tenants', adminOnly(), validate({ query: pageQuery }), doc({ summary: 'List tenants', description: 'Oldest first.', responses: { 200: pageOf(tenantSchema) } }), async (_req, res) => {
    res.json(await deps.services.tenants.list(res.locals.query));
  });

  /** One tenant with its limits. */
  r.get('/v1/tenants/:tenantId', adminOnly(), doc({ summary: 'Get a tenant with its limits', responses: { 200: tenantWithLimitsSchema } }), async (req, res) => {
    const tenant = await deps.services.tenants.get(String(req.params.tenantId));
    if (!tenant) throw new AppError('not_found', 'tenant not found');
    res.json({ ...tenant, ...(await deps.services.limits.get(tenant.id)) });
  });

  /** A tenant's name, suspension and limits: API requests per minute and daily LLM budget (OWASP API4). */
  r.patch(
    '/v1/tenants/:tenantId',
    adminOnly(),
    validate({ body: tenantPatchBody }),
    doc({
      summary: "Change a tenant's name, suspension or limits",
      description:
        'Limits (OWASP API4): `apiRequestsPerMinute` and `llmDailyBudgetMicros` (micro-USD per UTC day, 0 = no LLM calls); null = back to the deployment default. `suspended: true`: its webhooks are still recorded, but its bot sends nothing and its API keys answer 403 `tenant_suspended`; `false` reactivates it.',
      responses: { 200: tenantWithLimitsSchema },
    }),
    async (req, res) => {
      const params = tenantParams.safeParse(req.params);
      if (!params.success) throw new AppError('not_found', 'tenant not found');
      const { name, suspended, ...limitPatch } = res.locals.body as z.infer<typeof tenantPatchBody>;
      const tenant = await deps.services.tenants.update(params.data.tenantId, { name, suspended });
      const limits = await deps.services.limits.update(params.data.tenantId, limitPatch);
      res.json({ ...tenant, ...limits });
    },
  );
  return r;
}
